"""Atomic writes of small text files (configuration, templates, manifests) and of generated folders."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path

from lockstep.core.errors import ConfigError, UserError

__all__ = ["GENERATED_MARKER", "atomic_write_text", "ensure_line", "read_text", "write_generated_folder"]


def read_text(path: str | Path, *, what: str) -> str:
    """The UTF-8 text of a small file a user gave (``what`` names it in errors).

    Raises
    ------
    ConfigError
        If the file does not exist, cannot be read, or is not UTF-8 text.
    """
    path = Path(path)
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{what} {path} does not exist", hint="check the path") from None
    except IsADirectoryError:
        raise ConfigError(f"{what} {path} is a folder, not a file", hint="give the file's path") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{what} {path} is not UTF-8 text (byte {exc.start})",
                          hint="save it as UTF-8") from None
    except OSError as exc:
        raise ConfigError(f"{what} {path} cannot be read: {exc.strerror}", hint="check its permissions") from None


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Write ``text`` to ``path`` so that readers see the old file or the new one, never half.

    The text goes to a temporary file in the same folder, is flushed to disk,
    then renamed over ``path``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def ensure_line(path: str | Path, line: str) -> bool:
    """Append ``line`` to the text file ``path`` (created if needed) unless a line equals it already.

    Returns whether the file changed.
    """
    path = Path(path)
    existing = path.read_text(encoding="utf-8") if path.exists() else ""
    if line in existing.splitlines():
        return False
    sep = "" if not existing or existing.endswith("\n") else "\n"
    atomic_write_text(path, existing + sep + line + "\n")
    return True


#: The file that marks a folder as written by lockstep (so that it may be replaced).
GENERATED_MARKER = ".lockstep-generated"


def _digest(content: bytes | str) -> str:
    return hashlib.sha256(content.encode("utf-8") if isinstance(content, str) else content).hexdigest()


def _refuse_user_changes(path: Path) -> None:
    """A folder lockstep wrote is replaced only as lockstep left it: no file added, changed or removed since.

    Its marker lists what lockstep wrote (a marker of an older lockstep, plain
    text, lists nothing: such a folder is replaced as before).
    """
    try:
        manifest = json.loads((path / GENERATED_MARKER).read_text())
    except (json.JSONDecodeError, UnicodeDecodeError):
        return
    written = manifest.get("files", {})
    present = {p.relative_to(path).as_posix(): p for p in path.rglob("*") if p.is_file()}
    present.pop(GENERATED_MARKER, None)
    added = sorted(set(present) - set(written))
    changed = sorted(r for r in set(present) & set(written) if _digest(present[r].read_bytes()) != written[r])
    if added or changed:
        named = ", ".join([*(f"{r} (added)" for r in added), *(f"{r} (changed)" for r in changed)][:8])
        raise UserError(f"{path} holds files that lockstep did not write there: {named}; refusing to replace it "
                        "and lose them", hint="move them elsewhere, or choose another --out folder")


def write_generated_folder(path: str | Path, files: dict[str, bytes | str], *, what: str) -> Path:
    """Write ``files`` (relative path to content) as the folder ``path``, all at once.

    The files are written to a temporary sibling folder, then swapped in: a
    reader sees the previous folder or the new one, and a failure leaves the
    previous one untouched. An existing folder is replaced only if lockstep
    wrote it (it holds :data:`GENERATED_MARKER`) and nobody changed it since,
    or it is empty.

    Raises
    ------
    UserError
        If ``path`` is a file, a non-empty folder lockstep did not write, or
        a folder it wrote where files were added or changed since (naming them).
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise UserError(f"{path} is a file, not a folder", hint="choose another --out folder")
    if path.is_dir() and any(path.iterdir()) and not (path / GENERATED_MARKER).exists():
        raise UserError(f"{path} is not empty and was not written by lockstep; refusing to replace it",
                        hint="choose a new or empty --out folder")
    if path.is_dir() and (path / GENERATED_MARKER).exists():
        _refuse_user_changes(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    umask = os.umask(0)
    os.umask(umask)
    staging.chmod(0o777 & ~umask)  # mkdtemp makes it private; the result is an ordinary folder
    try:
        digests = {relative: _digest(content) for relative, content in files.items()}
        manifest = json.dumps({"written_by": f"lockstep ({what})", "files": digests}, indent=2, sort_keys=True)
        for relative, content in {**files, GENERATED_MARKER: manifest + "\n"}.items():
            target = staging / relative
            if not target.resolve().is_relative_to(staging.resolve()):
                raise ValueError(f"{relative} is outside the folder")
            target.parent.mkdir(parents=True, exist_ok=True)
            data = content.encode("utf-8") if isinstance(content, str) else content
            target.write_bytes(data)
        old = None
        if path.exists():
            old = path.with_name(f".{path.name}.old-{os.getpid()}")
            os.replace(path, old)
        os.replace(staging, path)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return path
