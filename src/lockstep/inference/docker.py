"""``lockstep docker``: the build context of an image that serves one model version.

The folder holds everything the image needs, nothing is downloaded but the
pinned packages::

    Dockerfile          python:<recorded version>-slim, the pinned requirements, lockstep, the bundle
    requirements.txt    the model's requirements pinned to the recorded environment (`lockstep env lock`)
    lib/                lockstep's own source (it is not on PyPI), importable through PYTHONPATH
    model/              the model bundle (`lockstep serve --bundle`), checked when the service starts
    README.md           how to build and run it
    .dockerignore

The image runs ``python -m lockstep serve --bundle /app/model`` as an
unprivileged user, writes the audit log to the volume ``/data``, and has a
health check on ``/health``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from lockstep._version import __version__
from lockstep.core.usercode import LOCKSTEP_ROOT
from lockstep.registry.bundle import bundle_files

if TYPE_CHECKING:  # pragma: no cover
    from lockstep.core.requirements import LockedRequirements
    from lockstep.registry.mlflow_registry import Registry
    from lockstep.registry.versions import VersionInfo

__all__ = ["DockerContext", "docker_context"]

_PLATFORMS = {"x86_64": "linux/amd64", "amd64": "linux/amd64", "aarch64": "linux/arm64", "arm64": "linux/arm64"}


@dataclass
class DockerContext:
    """The files of a build context, and what they pin."""

    files: dict[str, bytes | str]
    base_image: str
    platform: str | None
    pins: dict[str, str]
    warnings: list[str]


def _lockstep_source() -> dict[str, bytes]:
    root = LOCKSTEP_ROOT
    files = {}
    for path in sorted(root.rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts and path.suffix in (".py", ".typed", ".txt", ".json"):
            files[f"lib/lockstep/{path.relative_to(root).as_posix()}"] = path.read_bytes()
    metadata = f"Metadata-Version: 2.1\nName: lockstep\nVersion: {__version__}\n"
    files[f"lib/lockstep-{__version__}.dist-info/METADATA"] = metadata.encode()
    files[f"lib/lockstep-{__version__}.dist-info/INSTALLER"] = b"lockstep docker\n"
    return files


def _dockerfile(info: VersionInfo, base: str, platform: str | None, env: dict, port: int) -> str:
    variables = env.get("variables") or {}
    hashseed = variables.get("PYTHONHASHSEED") or "0"
    from_line = f"FROM --platform={platform} {base}" if platform else f"FROM {base}"
    return f"""# syntax=docker/dockerfile:1
# Serves {info.name} version {info.version} (model fingerprint {info.fingerprint}),
# with the Python and package versions recorded when it was trained. Written by lockstep {__version__}.
{from_line}

ENV PYTHONDONTWRITEBYTECODE=1 \\
    PYTHONUNBUFFERED=1 \\
    PYTHONHASHSEED={hashseed} \\
    PIP_NO_CACHE_DIR=1 \\
    PIP_DISABLE_PIP_VERSION_CHECK=1 \\
    OMP_NUM_THREADS=1 \\
    OPENBLAS_NUM_THREADS=1 \\
    MKL_NUM_THREADS=1 \\
    PYTHONPATH=/app/lib

WORKDIR /app
# The complete, pinned list: nothing else is resolved or installed.
COPY requirements.txt /app/requirements.txt
RUN pip install --no-deps -r /app/requirements.txt

# lockstep itself (not on PyPI): its source, importable through PYTHONPATH.
COPY lib/ /app/lib/
# The model bundle; the service checks its hashes and fingerprint before it listens.
COPY model/ /app/model/

RUN useradd --system --uid 10001 --no-create-home lockstep \\
    && mkdir -p /data && chown lockstep /data
USER lockstep
VOLUME ["/data"]
EXPOSE {port}
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \\
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:{port}/health', timeout=4)"]
CMD ["python", "-m", "lockstep", "serve", "--bundle", "/app/model", "--store", "/data", \\
     "--host", "0.0.0.0", "--port", "{port}"]
"""


def _readme(info: VersionInfo, base: str, platform: str | None, locked: LockedRequirements, port: int,
            warnings: list[str]) -> str:
    tag = f"{info.name.lower()}:{info.version}"
    lines = [
        f"# {info.name} version {info.version}: serving image",
        "",
        f"Written by `lockstep docker` ({__version__}). Model fingerprint `{info.fingerprint}`.",
        "",
        "```sh",
        f"docker build -t {tag} .",
        f"docker run --rm -p {port}:{port} -v {info.name}-audit:/data {tag}",
        f"curl -s http://127.0.0.1:{port}/model",
        "```",
        "",
        f"- Base image `{base}`" + (f" for `{platform}`" if platform else "")
        + ": the Python version the model was trained with.",
        f"- `requirements.txt` pins {len(locked.pins)} packages to the versions recorded at training and is "
        "installed with `--no-deps`: nothing else is resolved.",
        "- `lib/` is lockstep's source; `model/` the model bundle, whose file hashes and fingerprint are checked "
        "when the service starts (a modified model is refused).",
        "- The service writes its audit log to the volume `/data`; set `LOCKSTEP_API_TOKEN` to require a bearer "
        "token.",
    ]
    if warnings:
        lines += ["", "## Warnings", ""] + [f"- {w}" for w in warnings]
    return "\n".join(lines) + "\n"


def docker_context(registry: Registry, info: VersionInfo, locked: LockedRequirements, environment: dict, *,
                   port: int = 8000) -> DockerContext:
    """The build context for serving ``info``, from its recorded environment and its bundle."""
    python = environment.get("python", {})
    machine = environment.get("platform", {}).get("machine")
    base = f"python:{python.get('version', '3.11')}-slim"
    platform = _PLATFORMS.get(str(machine).lower()) if machine else None
    warnings = []
    recorded_lockstep = (environment.get("packages") or {}).get("lockstep")
    if recorded_lockstep and recorded_lockstep != __version__:
        warnings.append(f"the model was trained with lockstep {recorded_lockstep}; this image holds lockstep "
                        f"{__version__}")
    if locked.missing:
        warnings.append("not in the recorded environment, so not pinned: " + ", ".join(locked.missing))
    files: dict[str, bytes | str] = {
        "Dockerfile": _dockerfile(info, base, platform, environment, port),
        "requirements.txt": locked.text(),
        ".dockerignore": "**/__pycache__\n**/*.pyc\n.lockstep-generated\n",
        "README.md": _readme(info, base, platform, locked, port, warnings),
    }
    files.update(_lockstep_source())
    files.update({f"model/{k}": v for k, v in bundle_files(registry, info).items()})
    return DockerContext(files=files, base_image=base, platform=platform, pins=dict(locked.pins), warnings=warnings)
