"""What the benchmark scripts share: where things are, and how a measurement runs in a fresh process."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LOCKSTEP = str(Path(sys.executable).with_name("lockstep"))

#: Put before every measured script: ``hwm()`` is the resident high-water mark of that process in MB
#: (``ru_maxrss`` would include the parent's: Linux carries it across exec).
PRELUDE = """
def hwm():
    return int(next(l for l in open('/proc/self/status') if l.startswith('VmHWM')).split()[1]) / 1024
"""


def run_python(code: str, *args: object) -> dict:
    """Run ``code`` (after :data:`PRELUDE`) in a fresh interpreter; the JSON document on its last line."""
    out = subprocess.run([sys.executable, "-c", PRELUDE + code, *map(str, args)], capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(out.stderr)
    return json.loads(out.stdout.strip().splitlines()[-1])


def byte_compiled() -> None:
    """lockstep's sources byte-compiled where stale, as pip leaves an installed wheel (``dev.py env`` does it for
    the editable install): with ``PYTHONDONTWRITEBYTECODE`` set, a command would otherwise compile every module
    it imports, every time, and the start-up measured would be no user's."""
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(ROOT / "src" / "lockstep")], check=True)


def lockstep(project: Path, *commands: list[str]) -> None:
    """Run lockstep commands on ``project``, one after the other, quietly; stop at the first failure."""
    for command in commands:
        subprocess.run([LOCKSTEP, *command, "-p", str(project)], check=True, capture_output=True)


def telco_project(folder: Path, rows: int) -> Path:
    """A copy of the telco example in ``folder`` with the first ``rows`` rows of its data."""
    import shutil

    from tests.conftest import TELCO_CSV, read_rows, write_rows

    shutil.copytree(ROOT / "examples" / "telco-churn", folder, ignore=shutil.ignore_patterns(".lockstep", "data"))
    header, data = read_rows(TELCO_CSV)
    write_rows(folder / "data" / "wa_churn.csv", header, data[:rows])
    return folder


def on_shared_services(project: Path, bucket: str, tracking_uri: str) -> Path:
    """Point ``project`` at a store in S3 (``bucket``) and a database registry with its files in the bucket."""
    text = (project / "lockstep.toml").read_text()
    text = text.replace('store = ".lockstep"', f'store = "s3://{bucket}/telco"', 1)
    text = text.replace("[registry]\n", f'[registry]\ntracking_uri = "{tracking_uri}"\n'
                                        f'artifacts = "s3://{bucket}/mlflow"\n', 1)
    (project / "lockstep.toml").write_text(text)
    return project
