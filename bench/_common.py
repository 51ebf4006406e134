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


def lockstep(project: Path, *commands: list[str]) -> None:
    """Run lockstep commands on ``project``, one after the other, quietly; stop at the first failure."""
    for command in commands:
        subprocess.run([LOCKSTEP, *command, "-p", str(project)], check=True, capture_output=True)
