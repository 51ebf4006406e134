"""lockstep features: versioned feature sets, step caching, the stateless check, bad pipelines."""

from __future__ import annotations

import json
import os
import sys
import textwrap
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from typer.testing import CliRunner

from lockstep import Project
from lockstep.cli import app
from lockstep.core.errors import CodeError, LeakageError, NotFoundError, PipelineError
from lockstep.core.fingerprint import fingerprint_table
from lockstep.core.frames import feature_frame, raw_frame
from lockstep.core.usercode import load_object

from .conftest import read_rows, write_rows

runner = CliRunner()


def run(*args: str):
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def project(telco_project: Path) -> Project:
    p = Project(telco_project)
    p.ingest()
    return p


def use_pipeline(project_dir: Path, body: str, ref: str = "custom:features") -> Project:
    """Write custom.py with ``body`` and point [features] pipeline at it."""
    (project_dir / ref.split(":")[0].replace(".", "/")).with_suffix(".py").write_text(textwrap.dedent(body))
    toml = (project_dir / "lockstep.toml").read_text()
    toml = toml.replace('pipeline = "pipeline:features"', f'pipeline = "{ref}"')
    (project_dir / "lockstep.toml").write_text(toml)
    return Project(project_dir)


def test_builds_a_versioned_feature_set(project: Project) -> None:
    result = project.build_features()
    info = result.info
    assert not result.skipped and info.version == 0
    assert info.rows == 600 and "charges_per_month" in info.columns and "tenure_band" in info.columns
    assert info.dtypes["tenure_band"] == "str" and info.dtypes["charges_per_month"] == "float"
    assert info.raw_version == 0 and info.raw_fingerprint == project.snapshot(0).fingerprint
    assert info.code["files"].keys() == {"pipeline.py"}
    assert info.parity == {"rows_checked": 100, "identical": True}
    assert sum(info.splits.values()) == 600
    assert info.environment["packages"]["scikit-learn"]
    table = project.read_features(0)
    assert table.column_names == ["rownames", *info.columns, "churn", "split"]
    assert fingerprint_table(table) == info.fingerprint
    assert set(table.column("split").to_pylist()) == {"train", "valid", "test"}


def test_same_inputs_skip_without_running_the_pipeline(project: Project, monkeypatch) -> None:
    first = project.build_features()
    import lockstep.core.usercode as usercode

    monkeypatch.setattr(usercode, "load_object", lambda *a, **k: pytest.fail("the pipeline was imported"))
    again = Project(project.path).build_features()
    assert again.skipped and again.info == first.info
    assert len(project.feature_versions()) == 1
    monkeypatch.undo()
    forced = project.build_features(force=True)
    assert not forced.skipped and forced.info.version == 1
    assert forced.info.fingerprint == first.info.fingerprint  # same inputs, same bytes


def test_editing_a_helper_invalidates_the_cache(project: Project) -> None:
    first = project.build_features()
    source = (project.path / "pipeline.py").read_text()
    # change only the helper class's body, not features() itself
    (project.path / "pipeline.py").write_text(source.replace("hits = np.zeros(len(X), dtype=np.float64)",
                                                             "hits = np.zeros(len(X), dtype=np.float64) + 0.0"))
    second = Project(project.path).build_features()
    assert not second.skipped and second.info.version == 1
    assert second.info.code["fingerprint"] != first.info.code["fingerprint"]
    assert second.info.fingerprint == first.info.fingerprint  # same values: the code change was neutral
    diff = Project(project.path).diff_features(0, 1)
    assert diff["lineage"]["code_changed"] and diff["lineage"]["code_files_changed"] == ["pipeline.py"]
    assert diff["identical"]


def test_a_module_edited_within_the_second_at_the_same_size_runs_its_new_code(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Python trusts a ``.pyc`` whose source has the same size and whole-second mtime: the project's modules are
    compiled from their source instead, so the code that runs is the code that was fingerprinted."""
    monkeypatch.setattr(sys, "dont_write_bytecode", False)  # as on a user's machine
    package = tmp_path / "helpers"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "values.py").write_text("VALUE = 1\n")
    (tmp_path / "code.py").write_text("from helpers.values import VALUE\n\ndef get():\n    return VALUE\n")
    assert load_object("code:get", tmp_path)() == 1
    stat = (package / "values.py").stat()
    (package / "values.py").write_text("VALUE = 2\n")
    os.utime(package / "values.py", ns=(stat.st_atime_ns, stat.st_mtime_ns))  # the same second, the same size
    assert load_object("code:get", tmp_path)() == 2
    assert not list(tmp_path.rglob("*.pyc"))


def test_a_local_helper_module_is_part_of_the_code_fingerprint(telco_project: Path) -> None:
    Project(telco_project).ingest()
    (telco_project / "helpers.py").write_text("FACTOR = 2.0\n")
    project = use_pipeline(telco_project, """
        from helpers import FACTOR
        from lockstep.features.transformers import ColumnArithmetic, SelectColumns
        from sklearn.pipeline import make_pipeline

        def features():
            return make_pipeline(ColumnArithmetic([("double", "tenure", "*", FACTOR)]), SelectColumns(["double"]))
    """)
    first = project.build_features()
    assert set(first.info.code["files"]) == {"custom.py", "helpers.py"}
    (telco_project / "helpers.py").write_text("FACTOR = 3.0\n")
    second = Project(telco_project).build_features()
    assert not second.skipped
    assert second.info.fingerprint != first.info.fingerprint
    values = Project(telco_project).read_features().column("double").to_pylist()
    tenure = Project(telco_project).read_snapshot().column("tenure").to_pylist()
    assert values[:5] == [3.0 * t for t in tenure[:5]]


def test_new_raw_data_and_older_raw_versions(project: Project) -> None:
    project.build_features()
    header, rows = read_rows(project.path / "data" / "wa_churn.csv")
    write_rows(project.path / "data" / "wa_churn.csv", header, rows[:500])
    project.ingest()
    on_new = project.build_features()
    assert not on_new.skipped and on_new.info.raw_version == 1 and on_new.info.rows == 500
    on_old = project.build_features(raw_version=0)
    assert on_old.skipped and on_old.info.version == 0
    diff = project.diff_features(0, 1)
    assert diff["rows"]["removed"] == 100 and diff["lineage"]["raw_changed"]


def test_identity_pipeline_when_none_is_configured(project: Project) -> None:
    toml = (project.path / "lockstep.toml").read_text().replace('pipeline = "pipeline:features"\n', "")
    (project.path / "lockstep.toml").write_text(toml)
    info = Project(project.path).build_features().info
    assert info.columns == Project(project.path).config.data.feature_columns
    assert info.code["ref"] is None


def test_json_contract_and_cli_commands(project: Project) -> None:
    code, out, err = run("features", "--project", str(project.path), "--json")
    assert code == 0, err
    payload = json.loads(out)
    assert isinstance(payload["version"], int) and isinstance(payload["fingerprint"], str)
    assert isinstance(payload["rows"], int) and isinstance(payload["columns"], list)
    assert payload["skipped"] is False
    code, out, _ = run("features", "--project", str(project.path), "--json")
    assert json.loads(out)["skipped"] is True
    code, out, _ = run("features", "--project", str(project.path))
    assert code == 0 and "is up to date" in out
    code, out, _ = run("features", "--project", str(project.path), "--force")
    assert code == 0 and "version 1 written" in out and "stateless check passed on 100 rows" in out
    listing = json.loads(run("features", "list", "--project", str(project.path), "--json")[1])
    assert [v["version"] for v in listing] == [0, 1]
    shown = json.loads(run("features", "show", "--project", str(project.path), "--json")[1])
    assert shown["lineage"]["raw_version"] == 0 and shown["lineage"]["raw_exists"]
    assert shown["summary"]["charges_per_month"]["missing"] >= 0
    code, out, _ = run("features", "show", "0", "--project", str(project.path))
    assert "Lineage" in out and "pipeline.py" in out and "charges_per_month" in out
    code, out, _ = run("features", "diff", "0", "1", "--project", str(project.path))
    assert code == 0 and "identical" in out


def _expect(project_dir: Path, error: type, message: str) -> None:
    with pytest.raises(error) as info:
        Project(project_dir).build_features()
    assert message in str(info.value), str(info.value)
    assert not (project_dir / ".lockstep" / "features").exists()
    code, _, err = run("features", "--project", str(project_dir))
    assert code == 2 and "Traceback" not in err


@pytest.mark.parametrize(
    ("body", "ref", "error", "message"),
    [
        ("def features():\n    return 1\n", "custom:missing", CodeError, "custom has no attribute 'missing'"),
        ("import not_a_module_anywhere\n", "custom:features", CodeError,
         "importing 'custom' (for 'custom:features') failed: ModuleNotFoundError"),
        ("def features(:\n", "custom:features", CodeError, "custom.py line 1: syntax error"),
        ("def features():\n    return {'a': 1}\n", "custom:features", PipelineError,
         "returned a dict, not a scikit-learn transformer"),
        ("features = 42\n", "custom:features", PipelineError, "is not callable"),
        ("""
         from sklearn.base import BaseEstimator, TransformerMixin
         class ToArray(TransformerMixin, BaseEstimator):
             def fit(self, X, y=None):
                 return self
             def transform(self, X):
                 return X[["tenure"]].to_numpy()
         def features():
             return ToArray()
         """, "custom:features", PipelineError, "returned a ndarray, not a pandas DataFrame"),
        ("""
         from sklearn.preprocessing import FunctionTransformer
         def features():
             return FunctionTransformer(lambda X: X.dropna())
         """, "custom:features", PipelineError, "returned 599 rows for 600 input rows"),
        ("""
         from sklearn.preprocessing import FunctionTransformer
         def features():
             return FunctionTransformer(lambda X: X.sort_values("tenure"))
         """, "custom:features", PipelineError, "reordered or re-indexed rows"),
        ("""
         import pandas as pd
         from sklearn.preprocessing import FunctionTransformer
         def features():
             return FunctionTransformer(lambda X: X.assign(when=pd.Timestamp("2024-01-01")))
         """, "custom:features", PipelineError, "column 'when' of dtype datetime64"),
        ("""
         from sklearn.preprocessing import FunctionTransformer
         def features():
             return FunctionTransformer(lambda X: X.assign(churn=1))
         """, "custom:features", LeakageError, "outputs a column named like the target 'churn'"),
        ("""
         from sklearn.preprocessing import FunctionTransformer
         def features():
             return FunctionTransformer(lambda X: X.assign(big=2**70))
         """, "custom:features", PipelineError, "feature 'big' of 'custom:features' mixes types that cannot be "
         "stored: Python int too large"),
    ],
    ids=["no-attribute", "import-error", "syntax-error", "not-a-transformer", "not-callable", "ndarray",
         "drops-rows", "reorders-rows", "datetime-column", "target-column", "int-beyond-64-bits"],
)
def test_bad_pipelines_are_user_errors_and_write_nothing(project: Project, body, ref, error, message) -> None:
    use_pipeline(project.path, body, ref)
    _expect(project.path, error, message)


def test_missing_module_is_named(project: Project) -> None:
    toml = (project.path / "lockstep.toml").read_text().replace('"pipeline:features"', '"nowhere:features"')
    (project.path / "lockstep.toml").write_text(toml)
    _expect(project.path, CodeError, "no module 'nowhere'")


def test_a_stateful_step_is_caught_with_column_row_and_advice(project: Project) -> None:
    use_pipeline(project.path, """
        from sklearn.compose import ColumnTransformer
        from sklearn.preprocessing import StandardScaler

        def features():
            return ColumnTransformer([("scaled", StandardScaler(), ["monthly_charges"])],
                                     verbose_feature_names_out=False)
    """)
    with pytest.raises(PipelineError) as info:
        Project(project.path).build_features()
    message = str(info.value)
    assert "is not stateless: row 0 (id 1) transformed alone gives monthly_charges value 0," in message
    assert "model pipeline" in info.value.hint
    assert not (project.path / ".lockstep" / "features").exists()


def test_a_step_that_looks_at_other_rows_is_caught(project: Project) -> None:
    use_pipeline(project.path, """
        from sklearn.preprocessing import FunctionTransformer

        def centre(X):
            return X.assign(tenure_vs_mean=X["tenure"] - X["tenure"].mean())

        def features():
            return FunctionTransformer(centre)
    """)
    _expect(project.path, PipelineError, "transformed alone gives tenure_vs_mean value 0, but -30.93")


def test_a_data_dependent_dtype_is_caught(project: Project) -> None:
    use_pipeline(project.path, """
        from sklearn.preprocessing import FunctionTransformer

        def rounded(X):
            out = X[["total_charges"]].copy()
            if out["total_charges"].notna().all():  # int64 without missing values, float64 with them
                out["total_charges"] = out["total_charges"].round().astype("int64")
            return out

        def features():
            return FunctionTransformer(rounded)
    """)
    _expect(project.path, PipelineError, 'transformed alone gives total_charges dtype "int64", but "float64"')


def test_unknown_raw_version(project: Project) -> None:
    with pytest.raises(NotFoundError, match=r"raw snapshot version 7 does not exist \(versions: 0\)"):
        project.build_features(raw_version=7)
    code, _, err = run("features", "--raw-version", "7", "--project", str(project.path))
    assert code == 2 and "does not exist" in err


def test_features_before_any_ingest(telco_project: Path) -> None:
    code, _, err = run("features", "--project", str(telco_project))
    assert code == 2 and "no raw snapshot exists yet" in err


def test_two_projects_with_the_same_module_name_in_one_process(tmp_path: Path, telco_project: Path) -> None:
    import shutil

    other = tmp_path / "other"
    shutil.copytree(telco_project, other)
    for path, factor in ((telco_project, 2), (other, 5)):
        use_pipeline(path, f"""
            from lockstep.features.transformers import ColumnArithmetic, SelectColumns
            from sklearn.pipeline import make_pipeline

            def features():
                return make_pipeline(ColumnArithmetic([("x", "tenure", "*", {factor})]), SelectColumns(["x"]))
        """, ref="pipeline:features")
        Project(path).ingest()
    a = Project(telco_project).build_features()
    b = Project(other).build_features()
    first_tenure = Project(telco_project).read_snapshot().column("tenure")[1].as_py()
    assert Project(telco_project).read_features().column("x")[1].as_py() == 2 * first_tenure
    assert Project(other).read_features().column("x")[1].as_py() == 5 * first_tenure
    assert a.info.code["fingerprint"] != b.info.code["fingerprint"]


def test_raw_frame_dtypes_come_from_the_schema_not_the_values(project: Project) -> None:
    table = project.read_snapshot()
    schema = project.config.data.columns
    whole = raw_frame(table, schema)
    without_missing = raw_frame(table.slice(0, 1), schema)
    assert list(whole.dtypes) == list(without_missing.dtypes)
    assert whole["total_charges"].dtype == np.float64  # nullable float
    assert whole["tenure"].dtype == np.int64 and whole["contract"].dtype == object
    assert whole["total_charges"].isna().sum() == table.column("total_charges").null_count
    nullable_int = raw_frame(pa.table({"n": pa.array([1, None], pa.int64())}),
                             {"n": schema["tenure"].model_copy(update={"nullable": True})})
    assert nullable_int["n"].dtype == np.float64


def test_example_model_pipelines_fit_on_their_features(project: Project, tmp_path: Path) -> None:
    """The examples' model() use the stateful transformers on the feature set."""
    import shutil

    from lockstep.core.usercode import load_object

    from .conftest import AMES_CSV, EXAMPLES

    info = project.build_features().info
    table = feature_frame(project.read_features())
    model = load_object("pipeline:model", project.path)()
    train = table[table["split"] == "train"]
    model.fit(train[info.columns], train["churn"])
    assert set(model.predict(table[info.columns])) <= {"No", "Yes"}

    ames = tmp_path / "ames"
    shutil.copytree(EXAMPLES / "ames-housing", ames, ignore=shutil.ignore_patterns(".lockstep", "data"))
    header, rows = read_rows(AMES_CSV)
    write_rows(ames / "data" / "ames.csv", header, rows[:400])
    house = Project(ames)
    house.ingest()
    features = house.build_features().info
    frame = feature_frame(house.read_features())
    regressor = load_object("pipeline:model", ames)().fit(frame[features.columns], frame["Sale_Price"])
    assert np.isfinite(regressor.predict(frame[features.columns])).all()
    assert "sale_date_quarter" in features.columns and "Overall_Cond_score" in features.columns


@pytest.mark.parametrize("key", ["credit", "loans", "penguins", "weather"])
def test_the_stateless_checks_rows_with_missing_values_are_found_in_arrow_as_pandas_sees_them(
        key: str, tmp_path: Path) -> None:
    """The first row where each input is missing comes from Arrow's validity and dictionaries (a scan of the
    pandas frame's text took 0.25 s on 1M rows): the same rows as ``isna`` on the pipeline's input frame."""
    from lockstep.features.table import first_missing_rows

    from .corpus import INIT_CORPUS

    data = INIT_CORPUS[key]
    csv = data.write_csv(tmp_path / "data" / f"{key}.csv")
    result = CliRunner().invoke(app, ["init", str(csv), "--target", data.target, "--id", "row_id",
                                      "--project", str(tmp_path)])
    assert result.exit_code == 0, result.stdout + result.stderr
    project = Project(tmp_path)
    project.ingest()
    raw = project.store.snapshots.read(None, text_as_dictionary=True)
    frame = raw_frame(raw, project.config.data.columns, project.config.feature_inputs)
    expected = [int(np.flatnonzero(frame[c].isna().to_numpy())[0]) if frame[c].isna().any() else None
                for c in frame.columns]
    assert any(row is not None for row in expected)  # the data set has missing values to find
    assert first_missing_rows(raw, list(frame.columns)) == expected


def _ingested_corpus_project(key: str, tmp_path: Path) -> Project:
    """``lockstep init`` on the corpus data set ``key`` (hotels cut to 1,500 rows) in ``tmp_path``, then ingested."""
    from dataclasses import replace

    from .corpus import INIT_CORPUS

    data = replace(INIT_CORPUS[key], rows=1500) if key == "hotels" else INIT_CORPUS[key]
    csv = data.write_csv(tmp_path / "data" / f"{key}.csv")
    result = CliRunner().invoke(app, ["init", str(csv), "--target", data.target, "--id", "row_id",
                                      "--project", str(tmp_path)])
    assert result.exit_code == 0, result.stdout + result.stderr
    project = Project(tmp_path)
    project.ingest()
    return project


@pytest.mark.parametrize("key", ["credit", "hotels", "titanic"])
def test_a_single_partition_is_fingerprinted_as_written_and_many_as_read_back_alike(key: str, tmp_path: Path) -> None:
    """The whole snapshot in one partition is fingerprinted in memory, in the thread that writes it; partitions
    of a larger one are read back in order. Both give the fingerprint of the same stored rows."""
    _ingested_corpus_project(key, tmp_path)
    steps: list[str] = []
    whole = Project(tmp_path).build_features(progress=steps.append).info
    assert not [s for s in steps if s.endswith("partition(s)") and s.startswith("fingerprinting")], steps
    toml = tmp_path / "lockstep.toml"
    toml.write_text(toml.read_text() + "\n[compute]\npartition_rows = 97\n")
    steps.clear()
    pieces = Project(tmp_path).build_features(force=True, progress=steps.append).info
    assert pieces.version == whole.version + 1
    read_back = [s for s in steps if s.endswith("partition(s)") and s.startswith("fingerprinting")]
    assert read_back and not read_back[0].startswith("fingerprinting the 1 "), steps  # partitions read back
    assert pieces.fingerprint == whole.fingerprint
    assert fingerprint_table(Project(tmp_path).read_features(whole.version)) == whole.fingerprint
    stored = [Project(tmp_path).read_features(v) for v in (whole.version, pieces.version)]
    assert stored[0].equals(stored[1])


def _fork_every_partition(monkeypatch: pytest.MonkeyPatch) -> list[int | None]:
    """From now on, every partition's table is assembled and written by a forked child, however small the
    partition and the machine; the children's pids."""
    from lockstep.compute import fork as forked
    from lockstep.features import partitioned

    monkeypatch.setattr(partitioned, "FORK_ROWS", 0)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1})
    monkeypatch.setattr(os, "getloadavg", lambda: (0.0, 0.0, 0.0))  # an idle machine, whatever runs the tests
    pids: list[int | None] = []
    start = forked.start

    def recorded(work):
        child = start(work)
        pids.append(child.pid)
        return child

    monkeypatch.setattr(forked, "start", recorded)
    return pids


@pytest.mark.parametrize("key", ["credit", "hotels", "titanic", "attrition"])
def test_a_table_written_by_a_forked_child_is_the_table_written_here(key: str, tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """The feature table assembled, written and fingerprinted in a forked child while the pipeline is checked
    here: the same version, byte for byte in its values, as when this process does it all."""
    _ingested_corpus_project(key, tmp_path)
    here = Project(tmp_path).build_features().info
    pids = _fork_every_partition(monkeypatch)
    forked = Project(tmp_path).build_features(force=True).info
    assert pids and all(pid is not None for pid in pids)  # a child did it
    assert forked.version == here.version + 1 and forked.fingerprint == here.fingerprint
    assert forked.parity == here.parity and forked.splits == here.splits and forked.dtypes == here.dtypes
    stored = [Project(tmp_path).read_features(v) for v in (here.version, forked.version)]
    assert stored[0].equals(stored[1])


@pytest.mark.parametrize(("body", "message"), [
    ("""
     from sklearn.compose import ColumnTransformer
     from sklearn.preprocessing import StandardScaler
     def features():
         return ColumnTransformer([("scaled", StandardScaler(), ["monthly_charges"])],
                                  verbose_feature_names_out=False)
     """, "is not stateless"),
    ("""
     from sklearn.preprocessing import FunctionTransformer
     def features():
         return FunctionTransformer(lambda X: X.assign(big=[2**70 if i % 2 else 1 for i in range(len(X))]))
     """, "feature 'big' of 'custom:features' mixes types that cannot be stored"),  # and is not stateless: the
    # table's error comes first
], ids=["check", "table-and-check"])
def test_errors_are_the_same_with_a_forked_child(project: Project, body: str, message: str,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    use_pipeline(project.path, body)
    with pytest.raises(PipelineError) as here:
        Project(project.path).build_features()
    pids = _fork_every_partition(monkeypatch)
    with pytest.raises(PipelineError) as forked:
        Project(project.path).build_features()
    assert pids and all(pid is not None for pid in pids)
    assert message in str(here.value) and str(forked.value) == str(here.value)
    assert not (project.path / ".lockstep" / "features").exists()  # the child's file removed, as this process's
