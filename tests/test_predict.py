"""lockstep predict: validated batches, exact model identity on every row, atomic outputs, parity."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from lockstep import Project
from lockstep.cli import app
from lockstep.core.errors import NotFoundError, SchemaValidationError, SourceError, UserError
from lockstep.core.fingerprint import fingerprint_table
from lockstep.inference.batch import predict_batch

from .conftest import read_rows, write_rows
from .serving import make_trained_project

runner = CliRunner()


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Project:
    return make_trained_project(tmp_path_factory.mktemp("predict") / "telco")


def _predict(project: Project, **kwargs):
    ref = project.model_ref(kwargs.pop("model", None), "champion")
    return predict_batch(project.config, project.store, project.registry, ref, **kwargs)


def test_predicts_a_csv_with_the_model_identity_on_every_row(project: Project, tmp_path: Path) -> None:
    out = tmp_path / "preds.parquet"
    result = _predict(project, input_path=project.path / "data" / "wa_churn.csv", output=str(out))
    table = pq.read_table(out)
    assert result.rows == table.num_rows == 600 and result.quarantined == 0
    assert table.column_names == ["rownames", "prediction", "proba_No", "proba_Yes", "model_name", "model_version",
                                  "model_fingerprint", "run_id"]
    champion = project.model_version("churn-serve@champion")
    assert set(table.column("model_version").to_pylist()) == {champion.version}
    assert set(table.column("model_fingerprint").to_pylist()) == {champion.fingerprint}
    assert set(table.column("run_id").to_pylist()) == {result.run_id}
    # the same numbers as the registered model on the same rows
    loaded = project.load_model("churn-serve@champion")
    raw = project.read_snapshot()
    expected = loaded.model.predict_proba(loaded.schema.frame(raw))[:, 1]
    assert table.column("proba_Yes").to_numpy().tobytes() == expected.tobytes()
    # the input fingerprint is that of the validated model inputs
    assert result.input_fingerprint == fingerprint_table(raw.select(loaded.schema.inputs))
    runs = project.store.predictions.runs().to_pylist()
    assert any(r["run_id"] == result.run_id and r["input_fingerprint"] == result.input_fingerprint for r in runs)


def test_a_run_log_written_by_an_older_lockstep_takes_new_runs(project: Project, tmp_path: Path) -> None:
    """A store made before a field was added to the run records (``compute``) and one made after it was
    dropped: ``predict`` appends to both, the older rows get nulls."""
    import shutil

    from lockstep.store import _delta

    log = project.store.predictions.root / "_runs"
    saved = tmp_path / "runs-before"
    if log.exists():
        shutil.copytree(log, saved)
        shutil.rmtree(log)
    try:
        older = {"run_id": "old", "model": "churn-serve", "version": 1, "rows": 3, "seconds": 0.5,
                 "time": "2026-01-01T00:00:00+00:00", "retired_field": "x"}
        _delta.write_table(log, pa.Table.from_pylist([older]), {"kind": "batch-run"}, mode="append")
        result = _predict(project, input_path=project.path / "data" / "wa_churn.csv",
                          output=str(tmp_path / "p.parquet"))
        runs = {r["run_id"]: r for r in project.store.predictions.runs().to_pylist()}
        assert set(runs) == {"old", result.run_id}
        assert runs["old"]["compute"] is None and runs["old"]["retired_field"] == "x"
        assert json.loads(runs[result.run_id]["compute"])["backend"] == "local"
        assert runs[result.run_id]["retired_field"] is None
    finally:
        shutil.rmtree(log, ignore_errors=True)
        if saved.exists():
            shutil.copytree(saved, log)


def test_chunking_changes_nothing(project: Project, tmp_path: Path) -> None:
    source = project.path / "data" / "wa_churn.csv"
    whole = _predict(project, input_path=source, output=str(tmp_path / "a.parquet"))
    pieces = _predict(project, input_path=source, output=str(tmp_path / "b.parquet"), chunk_rows=37)
    assert whole.input_fingerprint == pieces.input_fingerprint
    assert whole.output_fingerprint == pieces.output_fingerprint
    a, b = pq.read_table(tmp_path / "a.parquet"), pq.read_table(tmp_path / "b.parquet")
    assert a.drop_columns(["run_id"]).equals(b.drop_columns(["run_id"]))


def test_parquet_input_csv_output_and_a_store_table(project: Project, tmp_path: Path) -> None:
    table = pacsv.read_csv(project.path / "data" / "wa_churn.csv")
    pq.write_table(table, tmp_path / "in.parquet")
    csv_result = _predict(project, input_path=tmp_path / "in.parquet", output=str(tmp_path / "out.csv"))
    assert pacsv.read_csv(tmp_path / "out.csv").num_rows == 600
    delta = _predict(project, input_path=tmp_path / "in.parquet", output="scored", fmt="delta")
    stored = project.store.predictions.read_table("scored")
    assert stored.num_rows == 600 and set(stored.column("run_id").to_pylist()) == {delta.run_id}
    assert csv_result.output_fingerprint == delta.output_fingerprint


def test_feature_version_rows(project: Project, tmp_path: Path) -> None:
    result = _predict(project, features_version=0, output=str(tmp_path / "f.parquet"))
    assert result.rows == 600 and "feature set version 0" in result.input


def test_schema_violations_stop_the_run_and_write_nothing(project: Project, tmp_path: Path) -> None:
    header, rows = read_rows(project.path / "data" / "wa_churn.csv")
    rows[7][header.index("contract")] = "Weekly"
    rows[400][header.index("tenure")] = "-2"
    bad = write_rows(tmp_path / "bad.csv", header, rows)
    out = tmp_path / "never.parquet"
    with pytest.raises(SchemaValidationError) as info:
        _predict(project, input_path=bad, output=str(out), chunk_rows=100)
    assert 'row 8 ("Weekly")' in str(info.value) and "--quarantine" in info.value.hint
    assert not out.exists() and not list(tmp_path.glob(".never.parquet.*"))
    result = _predict(project, input_path=bad, output=str(out), quarantine=True, chunk_rows=100)
    assert result.rows == 598 and result.quarantined == 2
    ids = pq.read_table(out).column("rownames").to_pylist()
    assert 8 not in ids and 401 not in ids
    quarantined = project.store.quarantine.read().to_pylist()
    assert {r["row"] for r in quarantined if r["source"].endswith("bad.csv")} == {8, 401}


def test_missing_columns_and_extra_columns(project: Project, tmp_path: Path) -> None:
    table = pacsv.read_csv(project.path / "data" / "wa_churn.csv")
    pq.write_table(table.drop_columns(["contract"]), tmp_path / "no_contract.parquet")
    with pytest.raises(SchemaValidationError, match="column 'contract': declared in"):
        _predict(project, input_path=tmp_path / "no_contract.parquet", output=str(tmp_path / "x.parquet"))
    pq.write_table(table.append_column("note", pa.array(["x"] * table.num_rows)), tmp_path / "extra.parquet")
    assert _predict(project, input_path=tmp_path / "extra.parquet", output=str(tmp_path / "y.parquet")).rows == 600


def test_bad_arguments(project: Project, tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="does not exist"):
        _predict(project, input_path=tmp_path / "none.csv", output=str(tmp_path / "o.parquet"))
    with pytest.raises(UserError, match="cannot tell the output format"):
        _predict(project, input_path=project.path / "data" / "wa_churn.csv", output=str(tmp_path / "o.xlsx"))
    with pytest.raises(NotFoundError, match="has no version 9"):
        _predict(project, model="churn-serve/9", input_path=project.path / "data" / "wa_churn.csv",
                 output=str(tmp_path / "o.parquet"))
    with pytest.raises(UserError, match="exactly one of"):
        _predict(project, output=str(tmp_path / "o.parquet"))


def test_cli_predict_json(project: Project, tmp_path: Path) -> None:
    result = runner.invoke(app, ["predict", "--input", str(project.path / "data" / "wa_churn.csv"), "--output",
                                 str(tmp_path / "cli.parquet"), "--project", str(project.path), "--json"])
    assert result.exit_code == 0, result.stderr
    payload = json.loads(result.stdout)
    assert payload["rows"] == 600 and payload["model"] == "churn-serve" and len(payload["input_fingerprint"]) == 64
    result = runner.invoke(app, ["predict", "--input", str(tmp_path / "nope.csv"), "--output",
                                 str(tmp_path / "cli.parquet"), "--project", str(project.path)])
    assert result.exit_code == 2 and "does not exist" in result.stderr


def test_a_large_input_in_chunks_has_bounded_memory(project: Project, tmp_path: Path) -> None:
    """200k rows in 20k-row chunks: every row predicted, and the predictions equal those of one chunk."""
    table = pacsv.read_csv(project.path / "data" / "wa_churn.csv")
    big = pa.concat_tables([table] * 334).slice(0, 200_000)
    big = big.set_column(0, "rownames", pa.array(np.arange(200_000)))
    pq.write_table(big, tmp_path / "big.parquet", row_group_size=20_000)
    result = _predict(project, input_path=tmp_path / "big.parquet", output=str(tmp_path / "big_out.parquet"),
                      chunk_rows=20_000)
    out = pq.read_table(tmp_path / "big_out.parquet")
    assert result.rows == 200_000 and out.num_rows == 200_000
    first = out.column("proba_Yes").to_numpy()[:600]
    again = out.column("proba_Yes").to_numpy()[600:1200]
    assert first.tobytes() == again.tobytes()  # the same rows repeated give the same bits


@pytest.mark.parametrize("labels", [
    np.array(["Yes", "No", "No"], dtype=object), np.array(["a", "bb", "ccc"]), np.array([3, -1, 3], np.int32),
    np.array([0, 255, 7], np.uint8), np.array([2**63 + 1, 0], np.uint64), np.array([True, False]),
    np.array([0.5, -0.0, np.nan], np.float32), np.array([1.5, np.inf]), np.array(["a", b"x"], dtype=object),
    np.array([1, "one", None], dtype=object), np.array([np.int64(4), np.int64(5)], dtype=object),
    np.array([True, 1], dtype=object), np.array([], dtype=object)], ids=repr)
def test_labels_converted_whole_are_the_values_and_type_of_one_at_a_time(labels: np.ndarray) -> None:
    """Predicted labels become Arrow values as a whole array where that gives what converting each label's Python
    value (``.item()``) gives: the same values, bits and type, whatever the NumPy kind; and where one at a time
    fails (mixed types Arrow cannot hold in one column), the same failure."""
    from lockstep.core.prediction import label_array

    try:
        one_at_a_time = pa.array([v.item() if hasattr(v, "item") else v for v in labels])
    except (pa.ArrowException, OverflowError) as error:
        with pytest.raises(type(error)):
            label_array(labels)
        return
    whole = label_array(labels)
    assert whole.type == one_at_a_time.type
    if pa.types.is_floating(whole.type):
        assert whole.to_numpy().tobytes() == one_at_a_time.to_numpy().tobytes()  # NaN and -0.0 too
    else:
        assert whole.equals(one_at_a_time)


def test_a_parquet_input_is_checked_and_quarantined_as_the_same_rows_in_csv(project: Project, tmp_path: Path) -> None:
    """A Parquet input's text is read dictionary-encoded and validated that way (its distinct values checked and
    converted once): the rows refused, their reasons and values, the predictions and both fingerprints are those
    of the same rows read from CSV."""
    header, rows = read_rows(project.path / "data" / "wa_churn.csv")
    rows[7][header.index("contract")] = "Weekly"
    rows[400][header.index("tenure")] = "-2"
    rows[12][header.index("payment_method")] = ""
    bad = write_rows(tmp_path / "both.csv", header, rows)  # a name no other test of the module quarantines
    pq.write_table(pacsv.read_csv(bad, convert_options=pacsv.ConvertOptions(strings_can_be_null=True)),
                   tmp_path / "both.parquet")
    assert pa.types.is_dictionary(pq.read_table(tmp_path / "both.parquet", read_dictionary=["contract"])
                                  .schema.field("contract").type)
    results, reasons = [], []
    for name in ("both.csv", "both.parquet"):
        with pytest.raises(SchemaValidationError) as info:
            _predict(project, input_path=tmp_path / name, output=str(tmp_path / "never.parquet"))
        assert 'row 8 ("Weekly")' in str(info.value)
        results.append(_predict(project, input_path=tmp_path / name, output=str(tmp_path / f"{name}.out.parquet"),
                                quarantine=True))
        reasons.append(sorted((r["row"], r["reasons"]) for r in project.store.quarantine.read().to_pylist()
                              if r["source"].endswith(name)))
    assert results[0].rows == results[1].rows == 597 and results[1].quarantined == 3
    assert results[0].input_fingerprint == results[1].input_fingerprint
    assert results[0].output_fingerprint == results[1].output_fingerprint
    assert reasons[0] == reasons[1] and [row for row, _ in reasons[1]] == [8, 13, 401]
    written = [pq.read_table(tmp_path / f"{name}.out.parquet") for name in ("both.csv", "both.parquet")]
    assert written[0].schema == written[1].schema
