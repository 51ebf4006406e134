"""How the CLI talks: rich tables for people, JSON for scripts, errors on stderr.

With ``--json`` a command prints exactly one JSON document on stdout (an
error too, as ``{"error": ..., "message": ..., "hint": ...}``); progress and
messages go to stderr, so ``lockstep ... --json | jq`` always works.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import sys
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import typer
from rich.console import Console

from lockstep.core.errors import FileSystemError, LockstepError

__all__ = ["Output", "command", "fmt_int", "print_json"]


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=str, ensure_ascii=False) + "\n")
    sys.stdout.flush()


def fmt_int(n: int | None) -> str:
    return "-" if n is None else f"{n:,}"


class Output:
    """The output of one command.

    Parameters
    ----------
    json_mode : bool
        Print JSON on stdout instead of tables.
    """

    def __init__(self, json_mode: bool) -> None:
        self.json_mode = json_mode
        self.console = Console(highlight=False, soft_wrap=False)
        if not self.console.is_terminal and "COLUMNS" not in os.environ:
            # Piped into a file or a pager: rich would assume 80 columns.
            self.console = Console(highlight=False, soft_wrap=False, width=140)
        self.err = Console(stderr=True, highlight=False)

    def result(self, data: Any, render: Callable[[Console], None]) -> None:
        """Print ``data`` as JSON, or call ``render`` for people."""
        if self.json_mode:
            print_json(data)
        else:
            render(self.console)

    def note(self, text: str) -> None:
        """A message for people (stderr), silent in JSON mode."""
        if not self.json_mode:
            self.err.print(text)

    @contextmanager
    def progress(self, title: str) -> Iterator[Callable[[str], None]]:
        """A spinner on stderr showing the current step; yields ``step(name)``."""
        if self.json_mode or not self.err.is_terminal:
            yield lambda _name: None
            return
        with self.err.status(f"{title}...") as status:
            yield lambda name: status.update(f"{title}: {name}...")


def _report(exc: LockstepError, json_mode: bool) -> None:
    if json_mode:
        print_json(exc.to_dict())
    err = Console(stderr=True, highlight=False)
    label = "error" if exc.exit_code == 2 else "internal error"
    err.print(f"[bold red]{label}:[/] ", end="")
    err.print(exc.message, markup=False, soft_wrap=True)
    if exc.hint:
        err.print("[yellow]hint:[/] ", end="")
        err.print(exc.hint, markup=False, soft_wrap=True)


#: What an interrupted command says (exit code 130, as a shell reports a Ctrl-C): lockstep's writes are atomic (a
#: Delta commit, a file renamed into place, a registry version removed when its run fails), so what was not finished
#: left nothing behind.
INTERRUPTED = {"error": "Interrupted", "message": "interrupted: the command stopped before it finished; nothing "
               "half-done was kept", "hint": "run the same command again to do the rest"}


def _interrupted(json_mode: bool) -> None:
    if json_mode:
        print_json(INTERRUPTED)
    err = Console(stderr=True, highlight=False)
    err.print(f"[bold yellow]{INTERRUPTED['message']}[/]", soft_wrap=True)
    err.print("[yellow]hint:[/] ", end="")
    err.print(INTERRUPTED["hint"], markup=False, soft_wrap=True)


@contextmanager
def warnings_to_stderr() -> Iterator[None]:
    """Print what lockstep logs as a warning (a lineage backend down, a Dask worker lost) on stderr while a command
    runs, whatever the logging configuration of the process."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setLevel(logging.WARNING)
    handler.setFormatter(logging.Formatter("warning: %(message)s"))
    logger = logging.getLogger("lockstep")
    logger.addHandler(handler)
    try:
        yield
    finally:
        logger.removeHandler(handler)


def command(func: Callable[..., Any]) -> Callable[..., Any]:
    """Decorate a CLI command: user errors exit 2 with their message, bugs exit 1.

    ``LOCKSTEP_DEBUG=1`` prints the traceback as well.
    """

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        json_mode = bool(kwargs.get("json_mode", False))
        debug = os.environ.get("LOCKSTEP_DEBUG", "") not in ("", "0")
        try:
            with warnings_to_stderr():
                return func(*args, **kwargs)
        except (typer.Exit, typer.Abort):
            raise
        except LockstepError as exc:
            if debug:
                traceback.print_exc()
            _report(exc, json_mode)
            raise typer.Exit(exc.exit_code) from None
        except KeyboardInterrupt:
            _interrupted(json_mode)
            raise typer.Exit(130) from None
        except BaseException as exc:  # a bug (or a Rust panic, a BaseException): say so plainly, never hide it
            if isinstance(exc, (SystemExit, GeneratorExit)):
                raise
            if debug:
                traceback.print_exc()
            refused = FileSystemError.of(exc, "access")  # a full disk or a read-only folder is not a bug
            if refused is not None:
                _report(refused, json_mode)
                raise typer.Exit(refused.exit_code) from None
            _report(LockstepError(f"{type(exc).__name__}: {exc}",
                                  hint="this is a bug in lockstep; rerun with LOCKSTEP_DEBUG=1 to see the "
                                  "traceback, and report it"), json_mode)
            raise typer.Exit(1) from None

    return wrapper
