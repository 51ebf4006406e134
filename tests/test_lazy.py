"""The stand-in for a library imported on first use (:mod:`lockstep.core.lazy`)."""

from __future__ import annotations

import subprocess
import sys


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
