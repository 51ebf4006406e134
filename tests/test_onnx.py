"""ONNX export: every transformer's ONNX form equals its transform; the exported model matches scikit-learn."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pandas as pd
import pytest
from fastapi.testclient import TestClient
from hypothesis import given, settings
from hypothesis import strategies as st
from onnx import TensorProto, helper

from lockstep import Project
from lockstep.core.errors import IntegrityError, UserError
from lockstep.features.transformers import (
    Clip,
    ColumnArithmetic,
    DropColumns,
    FixedBins,
    LogTransform,
    NormalizeStrings,
    PowerTransform,
    RenameColumns,
    SelectColumns,
)
from lockstep.inference.onnx.graph import OPSET, FrameGraph, OnnxExportError
from lockstep.inference.service import ServeSettings, create_app

from .conftest import read_rows
from .serving import make_trained_project, record

pytestmark = [pytest.mark.service]

CATEGORIES = [" Yes", "no", "No internet service", "Month-to-month"]


def run_graph(step, frame: pd.DataFrame) -> pd.DataFrame:
    """Run ``step.lockstep_onnx`` on ``frame`` with onnxruntime; return the columns as a DataFrame."""
    graph = FrameGraph()
    feeds = {}
    for name in frame.columns:
        column = frame[name]
        if column.dtype == object:
            graph.add_input(name, "string", frozenset(CATEGORIES))
            feeds[f"in_{name}"] = column.fillna("").to_numpy(dtype=object).reshape(-1, 1)
        elif column.dtype == np.int64:
            graph.add_input(name, "int64")
            feeds[f"in_{name}"] = column.to_numpy().reshape(-1, 1)
        else:
            graph.add_input(name, "double")
            feeds[f"in_{name}"] = column.to_numpy(dtype=np.float64).reshape(-1, 1)
    graph.step = type(step).__name__
    step.lockstep_onnx(graph)
    outputs = []
    for name, column in graph.columns.items():
        elem = {"double": TensorProto.DOUBLE, "int64": TensorProto.INT64, "string": TensorProto.STRING}[column.kind]
        graph.nodes.append(helper.make_node("Identity", [column.tensor], [f"out_{name}"]))
        outputs.append(helper.make_tensor_value_info(f"out_{name}", elem, [None, 1]))
    model = helper.make_model(helper.make_graph(graph.nodes, "t", graph.inputs, outputs, graph.initializers),
                              opset_imports=[helper.make_opsetid(d, v) for d, v in OPSET.items()])
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    results = session.run(None, feeds)
    return pd.DataFrame({name: r.ravel() for name, r in zip(graph.columns, results)})


def ulps(a: np.ndarray, b: np.ndarray) -> int:
    """The largest distance in units in the last place between two float arrays (NaN equal to NaN)."""
    same = (np.isnan(a) & np.isnan(b)) | (a == b)  # -0.0 and 0.0 are the same number
    ia, ib = a.view(np.int64).astype(object), b.view(np.int64).astype(object)
    return max([abs(x - y) for x, y, s in zip(ia, ib, same) if not s] or [0])


def assert_same(onnx_out: pd.DataFrame, pandas_out: pd.DataFrame, max_ulps: int = 0) -> None:
    assert list(onnx_out.columns) == list(pandas_out.columns)
    for name in pandas_out.columns:
        expected = pandas_out[name]
        got = onnx_out[name]
        if expected.dtype == object or pd.api.types.is_string_dtype(expected.dtype):
            assert [("" if pd.isna(v) else v) for v in expected] == got.tolist(), name
        else:
            a, b = got.to_numpy(dtype=np.float64), expected.to_numpy(dtype=np.float64)
            if max_ulps:
                assert np.array_equal(np.isnan(a), np.isnan(b)), (name, a, b)
                assert ulps(a, b) <= max_ulps, (name, a, b)
            else:
                assert np.array_equal(a, b, equal_nan=True), (name, a, b)


@st.composite
def frames(draw):
    n = draw(st.integers(1, 30))
    floats = st.one_of(st.none(), st.floats(-1e6, 1e6, allow_nan=False), st.sampled_from([0.0, -0.0, 1.0]))
    return pd.DataFrame({
        "a": pd.Series(draw(st.lists(floats, min_size=n, max_size=n)), dtype=np.float64),
        "b": pd.Series(draw(st.lists(floats, min_size=n, max_size=n)), dtype=np.float64),
        "n": np.asarray(draw(st.lists(st.integers(-100, 100), min_size=n, max_size=n)), dtype=np.int64),
        "s": pd.Series(draw(st.lists(st.one_of(st.none(), st.sampled_from(CATEGORIES)), min_size=n, max_size=n)),
                       dtype=object),
    })


STEPS = [
    SelectColumns(["b", "a", "s"]),
    DropColumns(["n"]),
    RenameColumns({"a": "alpha"}),
    ColumnArithmetic([("r", "a", "/", "b"), ("d", "a", "-", "n"), ("p", "n", "*", 2.5), ("s2", "a", "+", "b")]),
    ColumnArithmetic([("r", "a", "/", "b")], on_zero_division="inf"),
    Clip(lower=-10.0, upper={"b": 5.0}, columns=["a", "b", "n"]),
    LogTransform(["a", "n"], offset=1.0),
    LogTransform(["a"], offset=0.0, base=10),
    PowerTransform(["b", "n"], power=0.5),
    PowerTransform(["a"], power=2),
    NormalizeStrings(["s"], mapping={"no internet service": "no"}),
    FixedBins({"a": [-100.0, 0.0, 100.0, float("inf")]}),
    FixedBins({"n": [-50, 0, 50]}, right=True, labels=["low", "high"], suffix=None),
    FixedBins({"b": [-1.0, 1.0, 10.0]}, output="code"),
]


@pytest.mark.parametrize("step", STEPS, ids=lambda s: repr(s)[:60])
@settings(max_examples=40, deadline=None)
@given(frame=frames())
def test_every_transformer_exports_exactly(step, frame: pd.DataFrame) -> None:
    from sklearn.base import clone

    fitted = clone(step).fit(frame)
    with np.errstate(all="ignore"):
        expected = fitted.transform(frame)
    # + - * /, comparisons and lookups are exact; onnxruntime's log and pow are not NumPy's to the last bit
    transcendental = isinstance(step, (LogTransform, PowerTransform))
    assert_same(run_graph(fitted, frame), expected, max_ulps=2 if transcendental else 0)


def test_text_without_known_values_cannot_be_normalized() -> None:
    graph = FrameGraph()
    graph.add_input("s", "string", None)
    graph.step = "NormalizeStrings"
    with pytest.raises(OnnxExportError, match="declare allowed values"):
        NormalizeStrings(["s"]).fit(pd.DataFrame({"s": ["x"]})).lockstep_onnx(graph)


# ---------------------------------------------------------------------- exporting a registered model


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Project:
    return make_trained_project(tmp_path_factory.mktemp("onnx") / "telco")


def test_export_checks_parity_and_stores_the_file(project: Project) -> None:
    result = project.export_onnx()
    parity = result.parity
    assert parity["passed"] and parity["label_mismatches"] == 0 and parity["max_abs_diff"] <= 1e-5
    assert parity["rows"] == int(project.feature_info().splits["test"])
    info = project.model_version("churn-serve@champion")
    assert info.tags["lockstep.onnx.digest"]
    data, recorded = project.registry.onnx(info)
    assert recorded["passed"] and data[:4] != b""


def test_the_onnx_runtime_serves_the_same_predictions(project: Project) -> None:
    project.export_onnx()
    header, rows = read_rows(project.path / "data" / "wa_churn.csv")
    records = [record(dict(zip(header, row))) for row in rows[:200]]
    base = dict(store_root=str(project.store.root), experiment=project.config.project.name, model="@champion",
                default_name=project.config.model_name)
    with TestClient(create_app(ServeSettings(**base))) as sk, \
            TestClient(create_app(ServeSettings(**base, runtime="onnx"))) as ox:
        a = sk.post("/predict", json=records).json()
        b = ox.post("/predict", json=records).json()
        assert a["predictions"] == b["predictions"]
        diff = max(abs(p["Yes"] - q["Yes"]) for p, q in zip(a["probabilities"], b["probabilities"]))
        assert diff <= 1e-12
        one = ox.post("/predict", json=records[0])
        assert one.status_code == 200 and ox.get("/model").json()["runtime"] == "onnx"
        assert ox.post("/predict", json={**records[0], "contract": "Weekly"}).status_code == 422


def test_a_tampered_onnx_file_is_refused(project: Project) -> None:
    project.export_onnx()
    info = project.model_version("churn-serve@champion")
    path = project.registry._artifact_path(info.run_id, "onnx/model.onnx")
    original = path.read_bytes()
    try:
        path.write_bytes(original + b"\x00")
        with pytest.raises(IntegrityError, match="ONNX file changed since it was exported"):
            project.registry.onnx(info)
    finally:
        path.write_bytes(original)


def test_serving_onnx_without_an_export_is_a_clear_error(project: Project) -> None:
    version = project.train(force=True).version  # a new version, never exported
    from lockstep.inference.service import load_serving_model

    base = ServeSettings(store_root=str(project.store.root), experiment=project.config.project.name,
                         model=f"churn-serve/{version.version}", default_name=project.config.model_name,
                         runtime="onnx")
    with pytest.raises(UserError, match="has no ONNX export"):
        load_serving_model(base)


def test_a_step_without_an_onnx_form_is_named(project: Project, tmp_path) -> None:
    """A custom transformer without lockstep_onnx: the export names it and suggests the sklearn runtime."""
    import shutil

    other = tmp_path / "custom"
    shutil.copytree(project.path, other, ignore=shutil.ignore_patterns(".lockstep"))
    source = (other / "pipeline.py").read_text()
    without = source.replace("    def lockstep_onnx(self, graph):", "    def _unused(self, graph):")
    (other / "pipeline.py").write_text(without)
    p = Project(other)
    p.ingest()
    p.build_features()
    p.train()
    with pytest.raises(UserError) as info:
        p.export_onnx("churn-serve@challenger")
    assert "feature step 'countequal' (CountEqual) has no ONNX form" in str(info.value)


def test_an_unconvertible_model_step_is_named(project: Project) -> None:
    """skl2onnx cannot convert histogram gradient boosting with onnx 1.23: the message names the step."""
    text = (project.path / "lockstep.toml").read_text()
    if "[train.candidates.boosted]" not in text:
        text = text.replace('[registry]', '[train.candidates.boosted]\nmodel = "pipeline:boosted_model"\n\n[registry]')
        (project.path / "lockstep.toml").write_text(text)
    version = Project(project.path).train(candidate="boosted").version
    try:
        Project(project.path).export_onnx(f"churn-serve/{version.version}")
    except UserError as exc:
        assert "HistGradientBoostingClassifier" in str(exc) and "cannot be exported to ONNX" in str(exc)
    else:  # a later skl2onnx may convert it: then it must also match scikit-learn
        info = Project(project.path).model_version(f"churn-serve/{version.version}")
        assert Project(project.path).registry.onnx(info)[1]["passed"]


# ---------------------------------------------------------------------- the model pipelines people write


def _train_and_export(folder, data, model_source: str | None = None, features_source: str | None = None):
    """Scaffold ``data`` with lockstep init, optionally replace model() / features(), train, export."""
    from lockstep.scaffold import init_project

    csv = data.write_csv(folder / "data" / "raw.csv")
    init_project(csv, target=data.target, id_column="row_id", directory=folder)
    pipeline = folder / "pipeline.py"
    pipeline.write_text(pipeline.read_text() + (model_source or "") + (features_source or ""))
    project = Project(folder)
    project.ingest()
    project.build_features()
    version = project.train().version
    return project, f"{version.name}/{version.version}"


@pytest.mark.parametrize("key", ["credit_data:Status", "penguins:body_mass_g", "penguins:species"])
def test_the_scaffolded_pipeline_exports_at_parity(key: str, tmp_path) -> None:
    """`lockstep init`'s model (text as ordinal codes with unknown and missing ones, histogram gradient boosting
    with native categories) converts, in double precision."""
    from .corpus import CORPUS

    project, ref = _train_and_export(tmp_path / "scaffolded", CORPUS[key])
    result = project.export_onnx(ref)
    assert result.parity["passed"] and result.parity["label_mismatches"] == 0
    paths = {p.name: p for p in project.parity(ref, http=False, batch=False).paths}
    assert paths["onnx"].status == "PASS" and paths["onnx"].max_abs_diff <= 1e-9  # double precision throughout


LOCKSTEP_MODEL = '''

from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from lockstep.features.transformers import (CategoryMissingFiller, MissingIndicatorImputer, RareCategoryGrouper,
                                            SelectColumns)


def features():
    return SelectColumns(NUMERIC + CATEGORICAL).set_output(transform="pandas")


def model():
    preprocess = ColumnTransformer([
        ("numeric", make_pipeline(MissingIndicatorImputer(strategy="median"), StandardScaler()), NUMERIC),
        ("categorical", make_pipeline(CategoryMissingFiller(), RareCategoryGrouper(min_frequency=0.05),
                                      OneHotEncoder(handle_unknown="ignore")), CATEGORICAL),
    ])
    return Pipeline([("preprocess", preprocess), ("estimator", LogisticRegression(max_iter=1000))])
'''


def test_lockstep_transformers_in_both_pipelines_export_at_parity(tmp_path) -> None:
    """docs/features.md's advice (SelectColumns in features, lockstep's stateful transformers in the model): the
    two graphs declare different ai.onnx.ml opsets and must still be joined."""
    from .corpus import CORPUS

    project, ref = _train_and_export(tmp_path / "lockstep-steps", CORPUS["credit_data:Status"], LOCKSTEP_MODEL)
    result = project.export_onnx(ref)
    assert result.parity["passed"] and result.parity["max_abs_diff"] <= 1e-9


def test_simple_imputer_converts_exactly_for_text_and_numbers() -> None:
    """lockstep's SimpleImputer converter: missing text is the empty string in ONNX, numbers stay double,
    indicators are added and columns missing at fit are dropped, as transform does."""
    from skl2onnx import to_onnx
    from skl2onnx.common.data_types import DoubleTensorType, StringTensorType
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer

    from lockstep.inference.onnx.converters import register_converters

    frame = pd.DataFrame({
        "a": [1.5, np.nan, 3.25, 0.1, np.nan], "b": [np.nan] * 5, "c": [2.0, 2.0, np.nan, 7.0, 1.0],
        "s": ["x", None, "y", "x", None], "t": ["p", "q", None, "q", "q"],
    })
    register_converters()

    def run(ct, types, feeds):
        onx = to_onnx(ct.fit(frame), initial_types=types, target_opset=dict(OPSET))
        return ort.InferenceSession(onx.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, feeds)[0]

    numbers = ColumnTransformer([("numbers", SimpleImputer(strategy="mean", add_indicator=True), ["a", "b", "c"])])
    with pytest.warns(UserWarning, match="Skipping features without any observed values"):
        out = run(numbers, [(n, DoubleTensorType([None, 1])) for n in "abc"],
                  {n: frame[[n]].to_numpy(dtype=np.float64) for n in "abc"})
        expected = numbers.transform(frame)
    assert out.dtype == np.float64 and out.shape == expected.shape == (5, 5)  # b dropped; indicators of a, b, c
    assert np.array_equal(out, expected)

    text = ColumnTransformer([("constant", SimpleImputer(strategy="constant", fill_value="missing"), ["s"]),
                              ("frequent", SimpleImputer(strategy="most_frequent"), ["t"])])
    out = run(text, [(n, StringTensorType([None, 1])) for n in "st"],
              {n: frame[[n]].fillna("").to_numpy(dtype=object) for n in "st"})
    assert out.tolist() == text.transform(frame).tolist() == [["x", "p"], ["missing", "q"], ["y", "q"], ["x", "q"],
                                                              ["missing", "q"]]


def test_a_model_step_without_a_converter_is_named_by_its_path(tmp_path) -> None:
    """The step skl2onnx fails on is named where it sits (not the estimator at the end); exit 2, no traceback."""
    from .corpus import CORPUS

    custom = LOCKSTEP_MODEL.replace('make_pipeline(MissingIndicatorImputer(strategy="median"), StandardScaler())',
                                    'make_pipeline(MissingIndicatorImputer(strategy="median"), Doubler())')
    custom = custom.replace("def features():", """class Doubler(StandardScaler):
    def transform(self, X, copy=None):
        return super().transform(X, copy) * 2


def features():""")
    project, ref = _train_and_export(tmp_path / "custom", CORPUS["credit_data:Status"], custom)
    from typer.testing import CliRunner

    from lockstep.cli import app

    done = CliRunner().invoke(app, ["export", "onnx", ref, "--project", str(project.path)])
    assert done.exit_code == 2
    assert "step 'preprocess/numeric/doubler', Doubler" in done.stderr and "Traceback" not in done.output


def test_date_parts_export_exactly_over_four_centuries() -> None:
    """DateTimeParts in ONNX (Hinnant's civil calendar in double arithmetic) equals pandas on every part,
    for datetimes from 1811 to 2223, around the epoch, and missing ones."""
    from lockstep.features.transformers import DateTimeParts
    from lockstep.inference.onnx import microseconds

    rng = np.random.default_rng(0)
    ticks = rng.integers(-5_000_000_000_000_000, 8_000_000_000_000_000, 20_000)
    ticks[:60] = (np.arange(60) - 30) * 86_400_000_000 + 3_599_999_999  # days around 1970-01-01, one hour in
    values = pd.Series(pd.to_datetime(ticks, unit="us")).astype("datetime64[us]")
    values[rng.random(len(values)) < 0.05] = pd.NaT
    frame = pd.DataFrame({"t": values})
    step = DateTimeParts(parts=["year", "quarter", "month", "day", "dayofweek", "dayofyear", "hour", "minute",
                                "is_weekend"]).fit(frame)
    graph = FrameGraph()
    graph.add_input("t", "datetime")
    graph.step = "DateTimeParts"
    step.lockstep_onnx(graph)
    outputs = []
    for name, column in graph.columns.items():
        graph.nodes.append(helper.make_node("Identity", [column.tensor], [f"out_{name}"]))
        outputs.append(helper.make_tensor_value_info(f"out_{name}", TensorProto.DOUBLE, [None, 1]))
    model = helper.make_model(helper.make_graph(graph.nodes, "t", graph.inputs, outputs, graph.initializers),
                              opset_imports=[helper.make_opsetid(d, v) for d, v in OPSET.items()])
    results = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(
        None, {"in_t": microseconds(values).reshape(-1, 1)})
    expected = step.transform(frame)
    assert list(graph.columns) == list(expected.columns)
    for name, got in zip(graph.columns, results):
        assert np.array_equal(got.ravel(), expected[name].to_numpy(dtype=np.float64), equal_nan=True), name


def test_a_scaffolded_project_with_dates_exports_and_serves_with_onnx(tmp_path) -> None:
    from dataclasses import replace

    from .corpus import INIT_CORPUS

    project, ref = _train_and_export(tmp_path / "hotels", replace(INIT_CORPUS["hotels"], rows=600))
    assert project.config.data.columns["arrival_date"].dtype == "date"
    result = project.export_onnx(ref)
    assert result.parity["passed"] and result.parity["max_rel_diff"] <= 1e-12
    import json

    rows = pd.read_csv(project.path / "data" / "raw.csv").head(50).drop(columns=["row_id", "avg_price_per_room"])
    records = json.loads(rows.to_json(orient="records"))
    records[0]["arrival_date"] = "2031-02-14"  # after every date of the data
    base = dict(store_root=str(project.store.root), experiment=project.config.project.name, model=ref,
                default_name=project.config.model_name)
    with TestClient(create_app(ServeSettings(**base))) as sk, \
            TestClient(create_app(ServeSettings(**base, runtime="onnx"))) as ox:
        a, b = sk.post("/predict", json=records), ox.post("/predict", json=records)
        assert a.status_code == b.status_code == 200, (a.text, b.text)
        assert max(abs(x - y) for x, y in zip(a.json()["predictions"], b.json()["predictions"])) <= 1e-9
