"""The stand-in for a library imported on first use (:mod:`lockstep.core.lazy`)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def test_a_lazy_module_imports_on_first_attribute_from_any_thread() -> None:
    probe = (
        "import sys, threading\n"
        "from lockstep.core.lazy import lazy_module, loaded\n"
        "mod = lazy_module('email.mime.text')\n"
        "assert 'email.mime.text' not in sys.modules, 'imported too early'\n"
        "print(repr(mod))\n"
        "found = []\n"
        "threads = [threading.Thread(target=lambda: found.append(mod.MIMEText)) for _ in range(8)]\n"
        "[t.start() for t in threads]; [t.join() for t in threads]\n"
        "real = sys.modules['email.mime.text']\n"
        "assert all(f is real.MIMEText for f in found) and len(found) == 8\n"
        "assert loaded(mod) is real and loaded(real) is real\n"
        "assert lazy_module('email.mime.text') is real  # imported already: the module itself\n"
        "print('OK')\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and "<lazy module 'email.mime.text'>" in done.stdout and "OK" in done.stdout, (
        done.stdout + done.stderr)


def test_the_collector_is_paused_while_a_stand_in_imports_and_left_as_it_was(tmp_path: Path) -> None:
    (tmp_path / "recorder.py").write_text("import gc\nCOLLECTING = gc.isenabled()\n")
    (tmp_path / "second.py").write_text("import gc\nCOLLECTING = gc.isenabled()\n")
    probe = (
        "import gc, sys\n"
        f"sys.path.insert(0, {str(tmp_path)!r})\n"
        "from lockstep.core.lazy import lazy_module, loaded\n"
        "assert gc.isenabled()\n"
        "assert lazy_module('recorder').COLLECTING is False and gc.isenabled()\n"
        "gc.disable()  # the caller's own pause is the caller's\n"
        "assert loaded(lazy_module('second')).COLLECTING is False and not gc.isenabled()\n"
        "print('OK')\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and "OK" in done.stdout, done.stdout + done.stderr
