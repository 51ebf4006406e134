"""Two environments compared: every difference, with how much it can matter.

Severities:

``high``
    Can change the numbers: the Python minor version or implementation, the
    operating system or machine architecture, a numerical package (NumPy,
    SciPy, scikit-learn, pandas, PyArrow, lockstep, and the packages the
    model's own classes come from), the BLAS or OpenMP library.
``medium``
    Can change the numbers in rare cases, or changes how a result is
    stored or served: the Python patch version, the CPU model (BLAS picks
    its kernels by CPU), ``PYTHONHASHSEED``, and the packages lockstep
    stores and serves with (skops, MLflow, deltalake, onnx, ...).
``low``
    Cannot change the numbers: every other package (``rich``, ``typer``,
    ...), the number of CPUs and the thread-count variables (lockstep limits
    the thread pools itself while it fits), the kernel release.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

__all__ = ["EnvDifference", "NUMERICAL_PACKAGES", "SERVING_PACKAGES", "diff_environments", "summarize"]

#: Packages whose version can change what a model computes.
NUMERICAL_PACKAGES = frozenset({"numpy", "scipy", "scikit-learn", "pandas", "pyarrow", "lockstep",
                                "threadpoolctl", "joblib"})
#: Packages that store, load or serve models: a change rarely changes numbers.
SERVING_PACKAGES = frozenset({"skops", "mlflow", "mlflow-skinny", "deltalake", "duckdb", "onnx", "onnxruntime",
                              "skl2onnx", "fastapi", "uvicorn", "pydantic", "pandera", "blake3", "xxhash"})
SEVERITIES = ("high", "medium", "low")


@dataclass(frozen=True)
class EnvDifference:
    """One difference between a recorded environment and another."""

    kind: str  # python, platform, cpu, package, library, variable
    name: str
    recorded: str | None
    current: str | None
    severity: str
    why: str

    def to_dict(self) -> dict:
        return asdict(self)

    def describe(self) -> str:
        return f"{self.name}: {self.recorded or 'absent'} -> {self.current or 'absent'}"


def _text(value: object) -> str | None:
    return None if value is None else str(value)


def _python(recorded: dict, current: dict) -> list[EnvDifference]:
    out = []
    old, new = recorded.get("python", {}), current.get("python", {})
    if old.get("implementation") != new.get("implementation"):
        out.append(EnvDifference("python", "python implementation", old.get("implementation"),
                                 new.get("implementation"), "high", "a different interpreter"))
    ov, nv = str(old.get("version", "")), str(new.get("version", ""))
    if ov != nv:
        same_minor = ov.split(".")[:2] == nv.split(".")[:2]
        out.append(EnvDifference("python", "python", ov, nv, "medium" if same_minor else "high",
                                 "a patch release" if same_minor else "a different Python minor version: hashing, "
                                 "float formatting and the standard library can differ"))
    return out


def _platform(recorded: dict, current: dict) -> list[EnvDifference]:
    out = []
    old, new = recorded.get("platform", {}), current.get("platform", {})
    for key, severity, why in (("system", "high", "a different operating system (math library, file system)"),
                               ("machine", "high", "a different CPU architecture: floating point kernels differ"),
                               ("release", "low", "the kernel release does not change computations")):
        if old.get(key) != new.get(key):
            out.append(EnvDifference("platform", f"platform {key}", _text(old.get(key)), _text(new.get(key)),
                                     severity, why))
    old_cpu, new_cpu = recorded.get("cpu", {}), current.get("cpu", {})
    if old_cpu.get("byteorder") != new_cpu.get("byteorder"):
        out.append(EnvDifference("cpu", "byte order", old_cpu.get("byteorder"), new_cpu.get("byteorder"), "high",
                                 "a different byte order"))
    if old_cpu.get("count") != new_cpu.get("count"):
        out.append(EnvDifference("cpu", "cpu count", _text(old_cpu.get("count")), _text(new_cpu.get("count")), "low",
                                 "lockstep fixes the thread count of every fit"))
    return out


def _libraries(recorded: dict, current: dict) -> list[EnvDifference]:
    """BLAS/OpenMP libraries, matched by API and library name."""
    def index(env: dict) -> dict[tuple, list[dict]]:
        out: dict[tuple, list[dict]] = {}
        for pool in env.get("threadpools", []) or []:
            out.setdefault((pool.get("user_api"), pool.get("internal_api"), pool.get("prefix")), []).append(pool)
        return out

    old, new = index(recorded), index(current)
    out = []
    for key in sorted(set(old) | set(new), key=str):
        user_api, internal_api, prefix = key
        name = f"{user_api} library {prefix or internal_api}"
        old_versions = sorted(str(p.get("version")) for p in old.get(key, []))
        new_versions = sorted(str(p.get("version")) for p in new.get(key, []))
        if old_versions != new_versions:
            out.append(EnvDifference("library", name, ", ".join(old_versions) or None, ", ".join(new_versions) or None,
                                     "high", "a different BLAS/OpenMP library or version: kernels and their "
                                     "rounding can differ"))
        old_arch = sorted(str(p.get("architecture")) for p in old.get(key, []) if p.get("architecture"))
        new_arch = sorted(str(p.get("architecture")) for p in new.get(key, []) if p.get("architecture"))
        if old_arch and new_arch and old_arch != new_arch:
            out.append(EnvDifference("library", f"{name} kernels", ", ".join(old_arch), ", ".join(new_arch), "high",
                                     "BLAS chose kernels for another CPU family: the last bits can differ"))
    return out


def _packages(recorded: dict, current: dict, model_packages: frozenset[str]) -> list[EnvDifference]:
    old, new = recorded.get("packages", {}) or {}, current.get("packages", {}) or {}
    out = []
    for name in sorted(set(old) | set(new)):
        if old.get(name) == new.get(name):
            continue
        if name in NUMERICAL_PACKAGES or name in model_packages:
            severity, why = "high", ("the model's own classes come from it" if name in model_packages and
                                     name not in NUMERICAL_PACKAGES else "a numerical package")
        elif name in SERVING_PACKAGES:
            severity, why = "medium", "stores, loads or serves models"
        else:
            severity, why = "low", "does not compute model outputs"
        out.append(EnvDifference("package", name, old.get(name), new.get(name), severity, why))
    return out


def _variables(recorded: dict, current: dict) -> list[EnvDifference]:
    old, new = recorded.get("variables", {}) or {}, current.get("variables", {}) or {}
    out = []
    for name in sorted(set(old) | set(new)):
        if old.get(name) == new.get(name):
            continue
        if name == "PYTHONHASHSEED":
            severity, why = "medium", "changes the order of sets of strings, which code may depend on"
        else:
            severity, why = "low", "lockstep sets the thread pools itself during fits"
        out.append(EnvDifference("variable", name, old.get(name), new.get(name), severity, why))
    return out


def diff_environments(recorded: dict, current: dict, *,
                      model_packages: frozenset[str] | set[str] = frozenset()) -> list[EnvDifference]:
    """Every difference between two :func:`lockstep.core.environment.capture` records, most severe first.

    Parameters
    ----------
    recorded, current : dict
    model_packages : set of str
        Distributions the model's classes come from (their changes are ``high``).
    """
    diffs = (_python(recorded, current) + _platform(recorded, current) + _libraries(recorded, current)
             + _packages(recorded, current, frozenset(model_packages)) + _variables(recorded, current))
    return sorted(diffs, key=lambda d: SEVERITIES.index(d.severity))


def summarize(diffs: list[EnvDifference]) -> str:
    """A one-line account: the high-severity differences by name, the rest by count."""
    if not diffs:
        return "identical"
    counts = {s: sum(d.severity == s for d in diffs) for s in SEVERITIES}
    high = [d.describe() for d in diffs if d.severity == "high"]
    parts = []
    if high:
        parts.append("high: " + "; ".join(high[:6]) + (f" and {len(high) - 6} more" if len(high) > 6 else ""))
    parts += [f"{counts[s]} {s}" for s in ("medium", "low") if counts[s]]
    return ", ".join(parts)
