"""The ``lockstep`` command line.

Commands are thin: they parse options, call the Python API and print. Every
command accepts ``--project DIR`` and ``--json``. Exit codes: 0 success,
2 a user error (bad configuration, data or arguments; the message says what
to fix), 1 an internal error (a bug: please report it; ``LOCKSTEP_DEBUG=1``
shows the traceback).
"""

from __future__ import annotations

import atexit
import copy
import gc
import sys
from collections.abc import Sequence

import typer

from lockstep._version import __version__
from lockstep.cli import _data, _features, _init, _monitor, _repro, _run, _serve, _store, _train

__all__ = ["app", "app_for", "main"]

app = typer.Typer(
    name="lockstep",
    help="Reproducible ML systems on tabular data: versioned data, features and models, "
    "and commands that prove the results.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # help text is plain: [serve] or [/VERSION] are words, not markup
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"lockstep {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                 help="Print the version and exit."),
) -> None:
    """lockstep: same raw data in, same model and predictions out, and a command that proves it."""


_init.register(app)
_data.register(app)
_features.register(app)
_train.register(app)
_serve.register(app)
_repro.register(app)
_run.register(app)
_monitor.register(app)
_store.register(app)


def app_for(args: Sequence[str]) -> typer.Typer:
    """The app to run ``args`` with: the root and the one command ``args`` names first, or the whole app.

    Typer turns the signature of every command into click parameters before it
    parses anything (about 40 ms for lockstep's commands), and a command needs
    only its own. The root's callback and options stay, so usage lines, help
    and errors are the same; no command, a root option first or a name that is
    no command get the whole app, and with it the list of commands.

    Parameters
    ----------
    args : sequence of str
        The command line without the program's name.

    Returns
    -------
    typer.Typer
    """
    name = args[0] if args else None
    commands = [info for info in app.registered_commands if info.name == name]
    groups = [info for info in app.registered_groups if info.name == name]
    if not commands and not groups:
        return app
    one = copy.copy(app)
    one.registered_commands, one.registered_groups = commands, groups
    return one


def main(argv: list[str] | None = None) -> None:
    """Run the CLI; exit 0 on success, 2 for user errors, 1 for internal errors."""
    args = sys.argv[1:] if argv is None else argv
    # At exit, the objects still alive are frozen: the interpreter's last garbage collections then skip them, which
    # took about 45 ms of a command that finds its step up to date (0.31 s). The threads are joined before, and the
    # exit handlers and finalizers registered to run at exit still run; only reference cycles still alive at exit
    # are left to the OS, whose finalizers Python does not promise to run anyway.
    atexit.unregister(gc.freeze)  # once, however often main is called in one process
    atexit.register(gc.freeze)
    app_for(args)(args=args, prog_name="lockstep")
