"""The command line: JSON contracts, exit codes, messages, fast start-up."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from lockstep.cli import app, app_for

from .conftest import TELCO_CSV, read_rows, write_rows

runner = CliRunner()


def run(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def run_json(*args: str):
    code, out, err = run(*args, "--json")
    assert code == 0, err
    return json.loads(out)


def test_ingest_json_contract(telco_project: Path) -> None:
    first = run_json("ingest", "--project", str(telco_project))
    assert isinstance(first["version"], int) and first["version"] == 0
    assert isinstance(first["fingerprint"], str) and len(first["fingerprint"]) == 64
    assert first["rows"] == 600 and first["columns"] == 21
    assert first["changed"] is True
    second = run_json("ingest", "--project", str(telco_project))
    assert second["changed"] is False and second["fingerprint"] == first["fingerprint"]
    assert first["cached"] is False and second["cached"] is True


def test_data_list_show_diff_json_contract(telco_project: Path) -> None:
    run_json("ingest", "--project", str(telco_project))
    header, rows = read_rows(telco_project / "data" / "wa_churn.csv")
    rows.append([str(9001), *rows[0][1:]])
    del rows[1]
    write_rows(telco_project / "data" / "wa_churn.csv", header, rows)
    run_json("ingest", "--project", str(telco_project), "--quarantine")
    listing = run_json("data", "list", "--project", str(telco_project))
    assert [item["version"] for item in listing] == [0, 1]
    for item in listing:
        assert {"version", "fingerprint", "rows", "columns"} <= set(item)
        assert isinstance(item["columns"], int)
    shown = run_json("data", "show", "0", "--project", str(telco_project))
    assert shown["version"] == 0 and shown["rows"] == 600 and shown["columns"] == 21
    assert set(shown["splits"]) == {"train", "valid", "test"}
    assert shown["summary"]["tenure"]["dtype"] == "int"
    diff = run_json("data", "diff", "0", "1", "--project", str(telco_project))
    assert diff["rows"] == {"added": 1, "removed": 1, "changed": 0}
    assert diff["examples"]["added"] == ["9001"] and diff["examples"]["removed"] == ["2"]


def test_human_output(telco_project: Path) -> None:
    code, out, _ = run("ingest", "--project", str(telco_project))
    assert code == 0 and "Snapshot version 0 written: 600 rows x 21 columns" in out
    code, out, _ = run("ingest", "--project", str(telco_project))
    assert "Inputs unchanged: snapshot version 0 is up to date" in out
    code, out, _ = run("ingest", "--project", str(telco_project), "--force")
    assert "Data unchanged: snapshot version 0 is up to date" in out
    code, out, _ = run("data", "show", "--project", str(telco_project))
    assert code == 0 and "Raw snapshot 0" in out and "Splits" in out and "tenure" in out
    code, out, _ = run("data", "list", "--project", str(telco_project))
    assert code == 0 and "wa_churn.csv" in out
    code, out, _ = run("data", "diff", "0", "0", "--project", str(telco_project))
    assert "identical" in out


def test_init_then_ingest(tmp_path: Path) -> None:
    code, out, err = run("init", str(TELCO_CSV), "--target", "churn", "--id", "rownames", "--dir", str(tmp_path / "p"))
    assert code == 0, err
    assert "Wrote lockstep.toml and pipeline.py" in out and "[data.schema]" in out
    payload = run_json("init", str(TELCO_CSV), "--target", "churn", "--dir", str(tmp_path / "q"))
    assert payload["task"] == "classification" and payload["review"]


@pytest.mark.parametrize(
    ("setup", "args", "message"),
    [
        (lambda p: (p / "lockstep.toml").write_text("[project\n"), ["ingest"], "invalid TOML"),
        (lambda p: (p / "lockstep.toml").write_text((p / "lockstep.toml").read_text().replace("target", "targt")),
         ["ingest"], "unknown key 'targt' in [data]"),
        (lambda p: (p / "data" / "wa_churn.csv").unlink(), ["ingest"], "data/wa_churn.csv does not exist"),
        (lambda p: (p / "data" / "wa_churn.csv").write_text(""), ["ingest"], "is empty"),
        (lambda p: (p / "data" / "wa_churn.csv").write_text(
            (p / "data" / "wa_churn.csv").read_text().replace(",", ";")), ["ingest"], "delimiter = ';'"),
        (lambda p: (p / "data" / "wa_churn.csv").write_bytes(
            (p / "data" / "wa_churn.csv").read_bytes().replace(b"Mailed", b"Ma\xefled")), ["ingest"],
         "not valid utf-8"),
        (lambda p: (p / "data" / "wa_churn.csv").write_text(
            (p / "data" / "wa_churn.csv").read_text().replace("churn,", "churned,", 1)), ["ingest"],
         "column 'churn': declared in [data.schema] (the target) but missing"),
        (lambda p: (p / "data" / "wa_churn.csv").write_text(
            (p / "data" / "wa_churn.csv").read_text().replace("rownames,", "row,", 1)), ["ingest"],
         "column 'rownames': declared in [data.schema] (the id column) but missing"),
        (lambda p: (p / "data" / "wa_churn.csv").write_text(
            (p / "data" / "wa_churn.csv").read_text().replace("Month-to-month", "Monthly", 1)), ["ingest"],
         "column 'contract': allowed values"),
        (lambda p: None, ["data", "show", "7"], "no raw snapshot exists yet"),
    ],
)
def test_user_errors_exit_2_with_a_message_and_write_nothing(telco_project: Path, setup, args, message) -> None:
    setup(telco_project)
    code, out, err = run(*args, "--project", str(telco_project))
    assert code == 2
    assert message in " ".join(err.split())
    assert "Traceback" not in err
    assert not (telco_project / ".lockstep").exists()


def test_unknown_version_lists_the_existing_ones(telco_project: Path) -> None:
    run("ingest", "--project", str(telco_project))
    for args in (["data", "show", "3"], ["data", "diff", "0", "5"]):
        code, _, err = run(*args, "--project", str(telco_project))
        assert code == 2
        assert "does not exist (versions: 0)" in err


def test_errors_in_json_mode_are_json(telco_project: Path) -> None:
    code, out, _ = run("data", "show", "--project", str(telco_project), "--json")
    assert code == 2
    payload = json.loads(out)
    assert payload["error"] == "NotFoundError" and "ingest" in payload["hint"]


def test_schema_errors_in_json_mode_list_failures(telco_project: Path) -> None:
    header, rows = read_rows(telco_project / "data" / "wa_churn.csv")
    rows[3][header.index("tenure")] = "-9"
    write_rows(telco_project / "data" / "wa_churn.csv", header, rows)
    code, out, _ = run("ingest", "--project", str(telco_project), "--json")
    assert code == 2
    failure = json.loads(out)["failures"][0]
    assert failure == {"column": "tenure", "rule": "min 0", "rows": 1,
                       "examples": [{"location": "data/wa_churn.csv row 4", "value": -9}]}


def test_an_interrupted_command_says_so_and_exits_130(telco_project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt  # what Python raises on a Ctrl-C

    monkeypatch.setattr("lockstep.data.ingest.ingest", interrupted)
    code, out, err = run("ingest", "--project", str(telco_project))
    assert code == 130 and out == ""
    assert "interrupted: the command stopped before it finished" in err and "run the same command again" in err
    code, out, _ = run("ingest", "--project", str(telco_project), "--json")
    assert code == 130 and json.loads(out)["error"] == "Interrupted"


def test_missing_project_is_a_user_error(tmp_path: Path) -> None:
    code, _, err = run("ingest", "--project", str(tmp_path))
    assert code == 2 and "no lockstep.toml" in err


def test_usage_errors_exit_2() -> None:
    code, _, _ = run("data", "show", "not-a-number")
    assert code == 2
    code, _, _ = run("init")
    assert code == 2


def test_version() -> None:
    from lockstep import __version__

    code, out, _ = run("--version")
    assert code == 0 and __version__ in out


def test_help_is_fast_and_imports_no_heavy_library(tmp_path: Path) -> None:
    probe = (
        "import sys\n"
        "from lockstep.cli import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        "heavy = [m for m in ('pandas', 'pyarrow', 'numpy', 'deltalake', 'duckdb', 'pandera', 'sklearn', 'scipy')"
        " if m in sys.modules]\n"
        "print('HEAVY', heavy)\n"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert "HEAVY []" in result.stdout, result.stdout + result.stderr
    assert "ingest" in result.stdout


def test_at_exit_the_heap_is_frozen_after_the_other_exit_handlers_and_finalizers_still_run(tmp_path: Path) -> None:
    """The interpreter's last collections skip what is alive at exit (``gc.freeze``, registered by ``main``): the
    exit handlers registered before it still run, after it, and so do the finalizers registered to run at exit."""
    marker = tmp_path / "finalized"
    probe = (
        "import atexit, gc, pathlib, weakref\n"
        "atexit.register(lambda: print('FROZEN', gc.get_freeze_count() > 0, flush=True))\n"
        "class Kept:\n    pass\n"
        "kept = Kept()\n"
        f"weakref.finalize(kept, pathlib.Path({str(marker)!r}).write_text, 'yes')\n"
        "from lockstep.cli import main\n"
        "main(['--version'])\n"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "FROZEN True" in result.stdout and "lockstep" in result.stdout
    assert marker.read_text() == "yes"


def _every_command_line() -> list[list[str]]:
    """Each command and group of the app, and each command of each group."""
    lines = [[info.name] for info in app.registered_commands]
    for group in app.registered_groups:
        lines.append([group.name])
        lines += [[group.name, info.name] for info in group.typer_instance.registered_commands]
    return lines


@pytest.mark.parametrize("suffix", [["--help"], ["--no-such-option"]], ids=["help", "usage-error"])
def test_a_command_runs_in_an_app_of_its_own_with_the_same_help_and_errors(suffix: list[str]) -> None:
    """``main`` builds only the command it runs (typer converts every command's signature before parsing); the help,
    usage lines and usage errors are those of the whole app, and anything that names no command gets the whole app."""
    lines = _every_command_line()
    assert len(lines) > 30
    for line in lines:
        args = [*line, *suffix]
        one = app_for(args)
        assert one is not app and len(one.registered_commands) + len(one.registered_groups) == 1, line
        alone, whole = CliRunner().invoke(one, args), CliRunner().invoke(app, args)
        assert (alone.exit_code, alone.stdout, alone.stderr) == (whole.exit_code, whole.stdout, whole.stderr), line
        assert alone.exit_code == (0 if suffix == ["--help"] else 2), line
    for args in ([], ["--help"], ["--version", "ingest"], ["-h", "ingest"], ["ingets"]):
        assert app_for(args) is app


def test_console_script_runs(tmp_path: Path) -> None:
    exe = Path(sys.executable).with_name("lockstep")
    result = subprocess.run([str(exe), "data", "list", "--project", str(tmp_path)], capture_output=True, text=True)
    assert result.returncode == 2 and "no lockstep.toml" in result.stderr


# ---------------------------------------------------------------------- rough edges a new user hit


def _help_of(command: list[str]) -> str:
    exe = Path(sys.executable).with_name("lockstep")
    done = subprocess.run([str(exe), *command, "--help"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_help_shows_bracketed_words_and_never_crashes() -> None:
    """Help text is plain: ``[/VERSION]`` crashed rich's markup, ``[serve] runtime`` vanished from it."""
    assert "MODEL[/VERSION] or MODEL@ALIAS" in " ".join(_help_of(["promote"]).split())
    assert "(default: [serve] runtime)" in " ".join(_help_of(["serve"]).split())
    assert "Train [train.candidates.NAME] instead of [train] model" in " ".join(_help_of(["train"]).split())


def test_values_in_messages_are_shown_as_people_write_them(telco_project: Path) -> None:
    text = (telco_project / "lockstep.toml").read_text()
    (telco_project / "lockstep.toml").write_text(text.replace('tenure = { dtype = "int", min = 0,',
                                                               'tenure = { dtype = "int", min = 0, max = 60,'))
    code, _, err = run("ingest", "--project", str(telco_project))
    message = " ".join(err.split())
    assert code == 2 and "column 'tenure': max 60" in message
    assert "np.int64" not in message and "(61)" in message or "(72)" in message


def test_project_option_names_a_file_given_instead_of_a_folder(telco_project: Path) -> None:
    code, _, err = run("data", "list", "--project", str(telco_project / "pipeline.py"))
    assert code == 2 and "is a file, not a project folder" in err
    code, _, _ = run("data", "list", "--project", str(telco_project / "lockstep.toml"))  # the file means its folder
    assert code == 0


def test_env_show_takes_a_project_and_says_where_its_store_and_registry_are(telco_project: Path) -> None:
    payload = run_json("env", "show", "--project", str(telco_project))
    assert payload["project"]["store"] == str((telco_project / ".lockstep").resolve())
    assert payload["project"]["registry"].startswith("sqlite:///") and payload["python"]["version"]


def test_a_misspelled_model_is_found_before_anything_runs(telco_project: Path) -> None:
    toml = telco_project / "lockstep.toml"
    toml.write_text(toml.read_text().replace('model = "pipeline:model"', 'model = "pipeline:modle"', 1))
    code, _, err = run("run", "--project", str(telco_project))
    assert code == 2 and "did you mean 'pipeline:model'?" in err
    assert not (telco_project / ".lockstep").exists()  # nothing was ingested


def test_an_exception_in_the_users_code_names_their_file_and_line(telco_project: Path) -> None:
    pipeline = telco_project / "pipeline.py"
    docstring = '    """Preprocessing fitted on the training split, then a logistic regression."""'
    source = pipeline.read_text().replace(docstring, docstring + '\n    raise RuntimeError("no model today")')
    pipeline.write_text(source)
    line = next(i for i, text in enumerate(source.splitlines(), 1) if "no model today" in text)
    run("ingest", "--project", str(telco_project))
    run("features", "--project", str(telco_project))
    code, _, err = run("train", "--project", str(telco_project))
    message = " ".join(err.split())
    assert code == 2 and "RuntimeError: no model today (" in message
    assert f"{telco_project / 'pipeline.py'} line {line}, in model)" in message


def test_modules_import_the_heavy_libraries_they_use_only_when_they_use_them() -> None:
    """Listing models needs no skops, a local build no Dask, a skip decision no scikit-learn; a first use imports
    them, and the environment key read from metadata is the one of the whole record."""
    probe = (
        "import sys\n"
        "from lockstep.core import environment\n"
        "key = environment.core_fingerprint()\n"
        "print('KEY', [m for m in ('sklearn', 'scipy') if m in sys.modules])\n"
        "import lockstep.registry.mlflow_registry, lockstep.compute, lockstep.evaluation.plots\n"
        "import lockstep.monitoring.report, lockstep.registry.signing\n"
        "watched = ('skops.io', 'distributed', 'matplotlib', 'model_signing')\n"
        "print('BEFORE', [m for m in watched if m in sys.modules])\n"
        "from lockstep.registry import loading\n"
        "assert callable(loading.skops_io().load)\n"
        "from lockstep.compute import cluster\n"
        "assert cluster.worker_setup.WorkerSetup.name == 'lockstep-worker-setup'\n"
        "record = environment.capture()\n"
        "print('AFTER', [m for m in watched if m in sys.modules])\n"
        "print('SAME KEY', key == environment.core_fingerprint(record))\n"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert "KEY []" in result.stdout and "BEFORE []" in result.stdout, result.stdout + result.stderr
    assert "AFTER ['skops.io', 'distributed']" in result.stdout, result.stdout + result.stderr
    assert "SAME KEY True" in result.stdout
