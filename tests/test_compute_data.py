"""The data work on Dask: the feature pipeline partition by partition on the workers, with one machine's results.

Real clusters: a ``LocalCluster`` of 2 worker processes shared by the tests
of this module (reached by address, as a team's cluster is), and one that
lockstep starts itself. Every comparison is of fingerprints computed from
the stored bytes: the same raw rows give the same feature set whatever the
backend and however the rows are cut into partitions.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import distributed
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from lockstep import Project
from lockstep.core.errors import PipelineError, SchemaValidationError, SourceError
from lockstep.core.fingerprint import fingerprint_table
from lockstep.features import partitioned
from lockstep.scaffold import init_project
from lockstep.store.parts import PartFile

from .conftest import EXAMPLES, TELCO_CSV, read_rows, restore_environment, write_rows
from .corpus import INIT_CORPUS

pytestmark = [pytest.mark.slow, pytest.mark.integration]

LOCKSTEP = [sys.executable, "-m", "lockstep"]


@pytest.fixture(scope="module")
def cluster():
    """Two worker processes, one thread each, on 127.0.0.1: the address of their scheduler. The variables Dask
    sets here for the workers it spawns (``PYTHONHASHSEED``, thread counts) are put back at once: the module's
    tests would otherwise keep them (each test's ``_environment_kept`` starts from them), and so would the later
    files of this worker, whose recorded environments would show them."""
    saved = dict(os.environ)
    try:
        with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                                      dashboard_address=":0") as running:
            restore_environment(saved)
            yield running.scheduler_address
    finally:
        restore_environment(saved)


def _compute(project: Path, address: str | None, partition_rows: int) -> None:
    toml = project / "lockstep.toml"
    text = toml.read_text().split("\n[compute]\n")[0]
    where = f'backend = "dask"\naddress = "{address}"\n' if address else ""
    toml.write_text(f"{text}\n[compute]\n{where}partition_rows = {partition_rows}\n")


def _example(name: str, tmp_path: Path) -> Path:
    project = tmp_path / name
    shutil.copytree(EXAMPLES / name, project, ignore=shutil.ignore_patterns(".lockstep"))
    return project


def _scaffolded(data, tmp_path: Path) -> Path:
    project = tmp_path / data.key
    csv = data.write_csv(project / "data" / f"{data.key}.csv")
    init_project(csv, target=data.target, id_column="row_id", directory=project)
    return project


def _same_feature_set(project: Path, local: int, other: int) -> None:
    """Versions ``local`` and ``other`` of the project's feature set hold the same rows, read back from the store,
    and their records agree on everything but where they ran."""
    features = Project(project).store.features(Project(project).config.features.name)
    a, b = features.info(local), features.info(other)
    assert b.fingerprint == a.fingerprint
    assert fingerprint_table(features.read(other)) == a.fingerprint  # the bytes, in row order
    assert (b.rows, b.columns, b.dtypes, b.splits, b.inputs) == (a.rows, a.columns, a.dtypes, a.splits, a.inputs)
    assert a.compute["backend"] == "local" and b.compute == {"backend": "dask", "workers": "2"}
    assert b.parity["rows_checked"] == a.parity["rows_checked"]


CASES = {
    "telco-churn": lambda tmp: _example("telco-churn", tmp),
    "ames-housing": lambda tmp: _example("ames-housing", tmp),
    "titanic": lambda tmp: _scaffolded(INIT_CORPUS["titanic"], tmp),  # text ids, missing ages
    "airquality": lambda tmp: _scaffolded(INIT_CORPUS["airquality"], tmp),  # rows without the target: unlabeled
    "hotels": lambda tmp: _scaffolded(replace(INIT_CORPUS["hotels"], rows=1500), tmp),  # dates made features
    "credit": lambda tmp: _scaffolded(INIT_CORPUS["credit"], tmp),  # missing text and numbers
}


@pytest.mark.parametrize("case", list(CASES))
def test_features_on_dask_are_the_local_features(case: str, cluster: str, tmp_path: Path) -> None:
    project = CASES[case](tmp_path)
    _compute(project, cluster, partition_rows=97)  # many partitions, cut inside the row groups
    local = Project(project)
    local.ingest()
    built = local.build_features(compute="local").info
    on_dask = Project(project).build_features(force=True, compute="dask").info
    assert on_dask.version == built.version + 1
    _same_feature_set(project, built.version, on_dask.version)


def test_the_feature_set_does_not_depend_on_the_partitions(cluster: str, tmp_path: Path) -> None:
    project = _example("telco-churn", tmp_path)
    header, rows = read_rows(TELCO_CSV)
    write_rows(project / "data" / "wa_churn.csv", header, rows[:200])
    Project(project).ingest()
    versions = [Project(project).build_features(compute="local").info.version]
    for size in (1, 7, 64, 1_000_000):  # one row each, uneven cuts, one partition
        _compute(project, cluster, partition_rows=size)
        versions.append(Project(project).build_features(force=True, compute="dask").info.version)
    for version in versions[1:]:
        _same_feature_set(project, versions[0], version)


def _done(table: pa.Table):
    missing = frozenset(c for c in table.column_names if table.column(c).null_count == table.num_rows)
    return partitioned._Done(PartFile("f", 0, table.num_rows), table.schema, missing, (table.num_rows, 0, 0, 0), 0)


def test_the_partitions_columns_take_the_type_the_whole_table_gives_them() -> None:
    text = pa.table({"id": [1, 2], "late": ["new", None], "n": pa.array([1, 2], pa.int64())})
    nothing = pa.table({"id": [3, 4], "late": pa.array([None, None], pa.float64()), "n": [0.5, None]})
    schema = partitioned._unified([_done(text), _done(nothing)])
    assert schema.field("late").type == pa.string() and schema.field("n").type == pa.float64()
    other = pa.table({"id": [5], "late": [2.5], "n": [1]})
    with pytest.raises(PipelineError, match="'late'.*different types"):
        partitioned._unified([_done(text), _done(other)])
    with pytest.raises(PipelineError, match="different columns"):
        partitioned._unified([_done(text), _done(text.drop_columns(["n"]))])


FAILS = """
import pipeline
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer


def _refuse(frame):
    if frame["total_charges"].isna().any():
        raise ValueError("a customer without charges is not welcome")
    return frame


def features():
    return make_pipeline(FunctionTransformer(_refuse, feature_names_out="one-to-one"), pipeline.features())
"""


def test_a_partition_that_fails_writes_nothing(cluster: str, tmp_path: Path) -> None:
    project = _example("telco-churn", tmp_path)
    _compute(project, cluster, partition_rows=1000)
    Project(project).ingest()
    before = Project(project).build_features(compute="local").info
    table = project / ".lockstep" / "features" / before.name
    files = sorted(p.name for p in table.iterdir())
    (project / "fails.py").write_text(FAILS)  # on the partitions with a new customer
    toml = project / "lockstep.toml"
    toml.write_text(toml.read_text().replace('pipeline = "pipeline:features"', 'pipeline = "fails:features"'))
    with pytest.raises(PipelineError, match="without charges.*raw rows"):
        Project(project).build_features(compute="dask")
    assert [v.version for v in Project(project).feature_versions()] == [before.version]
    assert sorted(p.name for p in table.iterdir()) == files  # the partitions' files were removed


def test_a_worker_killed_while_transforming_does_not_change_the_feature_set(tmp_path: Path) -> None:
    project = _example("telco-churn", tmp_path)
    _compute(project, None, partition_rows=1500)
    (project / "flaky_features.py").write_text(
        "import os, signal\nfrom pathlib import Path\n\nimport pipeline\n\n\n"
        "def features():\n"
        "    try:\n        from distributed import get_worker\n        get_worker()\n"
        "    except (ImportError, ValueError):\n        return pipeline.features()\n"
        "    marker = Path(os.environ['LOCKSTEP_KILL_MARKER'])\n"
        "    if not marker.exists():\n        marker.touch()\n        os.kill(os.getpid(), signal.SIGKILL)\n"
        "    return pipeline.features()\n")
    toml = project / "lockstep.toml"
    toml.write_text(toml.read_text().replace('pipeline = "pipeline:features"', 'pipeline = "flaky_features:features"'))
    Project(project).ingest()
    local = Project(project).build_features().info
    marker = tmp_path / "killed"
    done = subprocess.run([*LOCKSTEP, "features", "--force", "--compute", "dask", "--json", "--project",
                           str(project)], capture_output=True, text=True, timeout=600,
                          env={**os.environ, "LOCKSTEP_KILL_MARKER": str(marker)})
    assert done.returncode == 0, done.stderr
    assert marker.exists()  # a worker died in the middle of a partition; its task ran again on the other
    _same_feature_set(project, local.version, json.loads(done.stdout)["version"])


# ---------------------------------------------------------------------------------------------- predict, monitor

MODELS = {
    "telco-churn": lambda tmp: _example("telco-churn", tmp),  # logistic regression on one-hot codes
    "ames-housing": lambda tmp: _example("ames-housing", tmp),  # ridge on a log target
    "hotels": lambda tmp: _scaffolded(replace(INIT_CORPUS["hotels"], rows=1500), tmp),  # gradient boosting
    "titanic": lambda tmp: _scaffolded(INIT_CORPUS["titanic"], tmp),  # native categories, text ids
}


@pytest.fixture(scope="module", params=list(MODELS))
def trained(request, tmp_path_factory) -> Path:
    """A project with its champion trained here (one seed), and its raw rows as a folder of 3 Parquet files."""
    project = MODELS[request.param](tmp_path_factory.mktemp("trained"))
    toml = project / "lockstep.toml"
    toml.write_text(toml.read_text().replace("seeds = [0, 1, 2]", "seeds = [0]"))
    local = Project(project)
    local.ingest()
    local.build_features()
    version = local.train().version
    local.promote(f"{version.name}/{version.version}")
    raw = local.store.snapshots.read()
    folder = project / "incoming"
    folder.mkdir()
    third = raw.num_rows // 3 + 1
    for i in range(3):
        pq.write_table(raw.slice(i * third, third), folder / f"part-{i}.parquet", row_group_size=400)
    return project


def _prediction_rows(path: Path | None, table: pa.Table | None = None) -> str:
    """The fingerprint of predictions without the run id (which differs between runs by design)."""
    rows = table if table is not None else pq.read_table(path)
    return fingerprint_table(rows.drop_columns(["run_id"]))


def test_predictions_on_dask_are_the_local_predictions(trained: Path, cluster: str, tmp_path: Path) -> None:
    _compute(trained, cluster, partition_rows=1000)
    project = Project(trained)
    local = project.predict(str(tmp_path / "local.parquet"), features_version=0, chunk_rows=500, compute="local")
    on_dask = Project(trained).predict(str(tmp_path / "dask.parquet"), features_version=0, chunk_rows=500,
                                       compute="dask")
    assert on_dask.compute == {"backend": "dask", "workers": "2"} and local.compute["backend"] == "local"
    assert (on_dask.rows, on_dask.input_fingerprint, on_dask.output_fingerprint) == (
        local.rows, local.input_fingerprint, local.output_fingerprint)
    assert _prediction_rows(tmp_path / "dask.parquet") == _prediction_rows(tmp_path / "local.parquet")

    # the same rows stored otherwise (3 files, row groups of 400): the same batches of 500, the same outputs
    folder = trained / "incoming"
    for given, where in ((folder, "dask"), (Path(f"{folder}/*.parquet"), "dask"), (folder, "local")):
        result = Project(trained).predict(str(tmp_path / "folder.parquet"), input=given, compute=where,
                                          chunk_rows=500)
        assert (result.input_fingerprint, result.output_fingerprint) == (local.input_fingerprint,
                                                                         local.output_fingerprint)
    # a Delta table in the store, one data file per piece of [compute] partition_rows (1,000), in one commit
    table = Project(trained).predict("scored", fmt="delta", features_version=0, chunk_rows=500, compute="dask")
    assert table.output_fingerprint == local.output_fingerprint
    stored = Project(trained).store.predictions
    assert _prediction_rows(None, stored.read_table("scored")) == _prediction_rows(tmp_path / "local.parquet")
    files = [p for p in Path(stored.table_path("scored")).iterdir() if p.suffix == ".parquet"]
    assert len(files) == -(-local.rows // 1000)

    # a folder of Parquet files, one per piece, replaced whole by the next run
    for _ in range(2):
        folder_run = Project(trained).predict(f"{tmp_path / 'parts'}/", features_version=0, chunk_rows=500,
                                              compute="dask")
        assert folder_run.output_fingerprint == local.output_fingerprint
        written = sorted((tmp_path / "parts").iterdir())
        assert [p.name for p in written] == [f"part-{i:06d}.parquet" for i in range(-(-local.rows // 1000))]
        together = pa.concat_tables([pq.read_table(p) for p in written])
        assert _prediction_rows(None, together) == _prediction_rows(tmp_path / "local.parquet")


def test_training_on_dask_registers_the_local_model(trained: Path, cluster: str) -> None:
    _compute(trained, cluster, partition_rows=1000)
    champion = Project(trained).model_version(f"{Project(trained).config.model_name}@champion")
    again = Project(trained).train(force=True, compute="dask").version
    assert again.version != champion.version and again.tags["lockstep.compute.backend"] == "dask"
    assert again.fingerprint == champion.fingerprint and again.metrics == champion.metrics


def test_drift_statistics_on_dask_are_the_local_ones(trained: Path, cluster: str) -> None:
    _compute(trained, cluster, partition_rows=1000)
    folder = trained / "incoming"
    local, _ = Project(trained).monitor(data=folder, chunk_rows=100_000, compute="local")
    on_dask, _ = Project(trained).monitor(data=folder, chunk_rows=1000, compute="dask")
    assert on_dask.rows == local.rows and on_dask.invalid == local.invalid
    assert on_dask.compute == {"backend": "dask", "workers": "2"} and local.compute["backend"] == "local"
    assert [c.name for c in on_dask.columns] == [c.name for c in local.columns]
    for mine, theirs in zip(on_dask.columns, local.columns):
        assert [s.to_dict() for s in mine.statistics] == [s.to_dict() for s in theirs.statistics], mine.name
        assert mine.current.to_dict() == theirs.current.to_dict(), mine.name


def test_rows_that_break_the_schema_on_dask_are_found_as_here(trained: Path, cluster: str, tmp_path: Path) -> None:
    """A bad row on a worker: refused naming the input and its row (counted in the whole input), nothing written;
    with quarantine, set aside with the same records as here."""
    _compute(trained, cluster, partition_rows=1000)
    raw = Project(trained).store.snapshots.read()
    config = Project(trained).config
    inputs = {n: c for n, c in config.data.columns.items() if n in config.feature_inputs and n != config.data.target}
    name = next((n for n, c in inputs.items() if c.allowed), None) or next(n for n, c in inputs.items()
                                                                            if not c.nullable)
    column, values = inputs[name], raw.column(name).to_pylist()
    if column.allowed:  # a value the schema does not allow, or a missing value where none may be
        values[1234] = "surely not a category" if column.dtype == "str" else max(column.allowed) + 7
    else:
        values[1234] = None
    bad = tmp_path / "bad"
    bad.mkdir()
    pq.write_table(raw.set_column(raw.column_names.index(name), name, pa.array(values, raw.schema.field(name).type)),
                   bad / "rows.parquet", row_group_size=300)
    with pytest.raises(SchemaValidationError, match=r"row 1235\b"):
        Project(trained).predict("refused", fmt="delta", input=bad, compute="dask", chunk_rows=200)
    assert not Path(Project(trained).store.predictions.table_path("refused")).exists()  # no table, no file
    here = Project(trained).predict(str(tmp_path / "here.parquet"), input=bad, quarantine=True, chunk_rows=200,
                                    compute="local")
    there = Project(trained).predict(str(tmp_path / "there.parquet"), input=bad, quarantine=True, chunk_rows=200,
                                     compute="dask")
    assert here.quarantined == there.quarantined == 1 and there.rows == here.rows == raw.num_rows - 1
    assert there.output_fingerprint == here.output_fingerprint


def test_inputs_that_cannot_be_read_are_refused_naming_them(trained: Path, tmp_path: Path) -> None:
    (tmp_path / "incoming").mkdir()
    (tmp_path / "incoming" / "notes.csv").write_text("a,b\n1,2\n")
    for given, said in ((tmp_path / "nothing" / "*.parquet", "no file matches"),
                        (tmp_path / "incoming", "notes.csv, which is not a Parquet file")):
        with pytest.raises(SourceError, match=said) as raised:
            Project(trained).predict(str(tmp_path / "out.parquet"), input=given)
        assert raised.value.exit_code == 2
        assert not (tmp_path / "out.parquet").exists()


KILLS_IN_PREDICT = '''
"""The example's model, behind a step that kills the Dask worker process making its first predictions."""
import os
import signal
from pathlib import Path

from sklearn.base import BaseEstimator, TransformerMixin

import pipeline


class KillOnce(TransformerMixin, BaseEstimator):
    def fit(self, X, y=None):
        return self

    def transform(self, X):
        try:
            from distributed import get_worker

            get_worker()
        except (ImportError, ValueError):  # not on a Dask worker: nothing to do
            return X
        marker = Path(os.environ["LOCKSTEP_KILL_MARKER"])
        if not marker.exists():
            marker.touch()
            os.kill(os.getpid(), signal.SIGKILL)
        return X


def model():
    made = pipeline.model()
    made.steps.insert(0, ("kill_once", KillOnce()))
    return made
'''


def test_a_worker_killed_while_predicting_does_not_change_the_predictions(tmp_path: Path) -> None:
    project = _example("telco-churn", tmp_path)
    (project / "flaky.py").write_text(KILLS_IN_PREDICT)
    toml = project / "lockstep.toml"
    text = toml.read_text().replace("seeds = [0, 1, 2]", "seeds = [0]").replace('model = "pipeline:model"',
                                                                               'model = "flaky:model"', 1)
    toml.write_text(text)
    _compute(project, None, partition_rows=2000)
    local = Project(project)
    local.ingest()
    local.build_features()
    version = local.train().version
    here = local.predict(str(tmp_path / "here.parquet"), features_version=0, model=f"telco-churn/{version.version}",
                         chunk_rows=500, compute="local")
    marker = tmp_path / "killed"
    done = subprocess.run([*LOCKSTEP, "predict", "--features-version", "0", "-o", str(tmp_path / "there.parquet"),
                           "--model", f"telco-churn/{version.version}", "--chunk-rows", "500", "--compute", "dask",
                           "--json", "--project", str(project)], capture_output=True, text=True, timeout=600,
                          env={**os.environ, "LOCKSTEP_KILL_MARKER": str(marker)})
    assert done.returncode == 0, done.stderr
    assert marker.exists()  # a worker died making predictions; Dask ran its piece again on the other
    there = json.loads(done.stdout)
    assert (there["output_fingerprint"], there["rows"]) == (here.output_fingerprint, here.rows)
    assert _prediction_rows(tmp_path / "there.parquet") == _prediction_rows(tmp_path / "here.parquet")
