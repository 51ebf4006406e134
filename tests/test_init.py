"""lockstep init: a draft schema from the data, a valid project, a template that runs."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pyarrow as pa
import pytest

from lockstep import Project, init_project
from lockstep.core.config import load_config
from lockstep.core.errors import ProjectError, SourceError
from lockstep.data.infer import infer_draft

from .conftest import AMES_CSV, TELCO_CSV, read_rows, write_rows

pytestmark = [pytest.mark.integration]


def test_init_telco_infers_a_valid_draft_with_observations_as_comments(tmp_path: Path) -> None:
    result = init_project(TELCO_CSV, target="churn", id_column="rownames", directory=tmp_path / "p")
    config = load_config(tmp_path / "p")
    schema = config.data.columns
    assert result.task == "classification" and config.data.task == "classification"
    assert schema["tenure"].dtype == "int" and schema["tenure"].min is None and schema["tenure"].max is None
    assert schema["total_charges"].nullable and not schema["tenure"].nullable
    assert schema["contract"].allowed is None  # a later batch may have a new category
    assert schema["churn"].allowed == ["No", "Yes"]  # the target's classes
    text = (tmp_path / "p" / "lockstep.toml").read_text()
    assert 'tenure = { dtype = "int" }  # 0 .. 72' in text
    assert 'contract = { dtype = "str" }  # Month-to-month, One year, Two year' in text
    assert config.data.source.endswith("wa_churn.csv")
    assert (tmp_path / "p" / ".gitignore").read_text().splitlines() == [".lockstep/"]
    assert any("comments, not limits" in note for note in result.notes)


def test_init_writes_a_whole_project_training_and_promotion_included(tmp_path: Path) -> None:
    init_project(TELCO_CSV, target="churn", id_column="rownames", directory=tmp_path / "p")
    config = load_config(tmp_path / "p")
    assert config.train is not None and config.train.model == "pipeline:model" and config.train.threads == 1
    assert config.primary_metric == "roc_auc" and config.registry.improvement == "bootstrap"
    assert config.split.by == "content"
    source = (tmp_path / "p" / "pipeline.py").read_text()
    assert "HistGradientBoostingClassifier(categorical_features=categorical" in source


def test_init_splits_by_content_and_reports_repeated_inputs(tmp_path: Path) -> None:
    result = init_project(TELCO_CSV, target="churn", id_column="rownames", directory=tmp_path / "p")
    note = next(n for n in result.notes if "same inputs as another row" in n)
    assert "keeps each group in one split" in note
    text = (tmp_path / "p" / "lockstep.toml").read_text()
    assert 'by = "content"' in text and "max_shared_fraction" not in text


def test_init_ames_infers_regression(tmp_path: Path) -> None:
    result = init_project(AMES_CSV, target="Sale_Price", id_column="rownames", directory=tmp_path / "a")
    assert result.task == "regression"
    assert result.columns == 75
    config = load_config(tmp_path / "a")
    assert config.data.columns["Sale_Price"].allowed is None
    assert config.data.columns["Mas_Vnr_Type"].nullable


def test_scaffolded_project_ingests_its_own_data_and_builds_features(tmp_path: Path) -> None:
    header, rows = read_rows(AMES_CSV)
    data = write_rows(tmp_path / "p" / "data" / "sales.csv", header, rows[:300])
    init_project(data, target="Sale_Price", id_column="rownames", directory=tmp_path / "p")
    project = Project(tmp_path / "p")
    assert project.config.features.pipeline == "pipeline:features"
    assert project.ingest().snapshot.rows == 300
    features = project.build_features().info
    assert features.columns == project.config.data.feature_columns  # the template is the identity


def test_pipeline_template_imports_and_its_model_fits(tmp_path: Path) -> None:
    init_project(TELCO_CSV, target="churn", id_column="rownames", directory=tmp_path / "p")
    spec = importlib.util.spec_from_file_location("user_pipeline", tmp_path / "p" / "pipeline.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    import pandas as pd

    frame = pd.read_csv(TELCO_CSV).head(300)
    X = frame.drop(columns=["churn", "rownames"])
    features = module.features().fit_transform(X)
    assert list(features.columns) == list(X.columns)
    model = module.model().fit(features, frame["churn"])
    assert set(model.predict(features)) <= {"No", "Yes"}


def test_without_id_a_derived_id_is_documented_and_candidates_suggested(tmp_path: Path) -> None:
    result = init_project(TELCO_CSV, target="churn", directory=tmp_path / "p")
    note = next(n for n in result.notes if "_row_id" in n)
    assert "--id rownames" in note
    text = (tmp_path / "p" / "lockstep.toml").read_text()
    assert "derives '_row_id'" in text
    assert load_config(tmp_path / "p").data.id is None


def test_refuses_to_overwrite_without_force(tmp_path: Path) -> None:
    init_project(TELCO_CSV, target="churn", id_column="rownames", directory=tmp_path / "p")
    with pytest.raises(ProjectError, match="already exists"):
        init_project(TELCO_CSV, target="churn", id_column="rownames", directory=tmp_path / "p")
    again = init_project(TELCO_CSV, target="churn", id_column="rownames", directory=tmp_path / "p", force=True)
    assert again.pipeline_path is None  # an existing pipeline.py is never overwritten
    assert any("left as it is" in n for n in again.notes)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"target": "churned"}, "has no column 'churned' (given as --target)"),
        ({"target": "churn", "id_column": "customer"}, "has no column 'customer' (given as --id)"),
        ({"target": "churn", "id_column": "contract"}, "the id column 'contract'"),
    ],
)
def test_bad_columns_are_named(tmp_path: Path, kwargs: dict, message: str) -> None:
    with pytest.raises(SourceError) as info:
        init_project(TELCO_CSV, directory=tmp_path / "p", **kwargs)
    assert message in str(info.value)
    assert not (tmp_path / "p" / "lockstep.toml").exists()


def test_missing_data_file(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="does not exist"):
        init_project(tmp_path / "none.csv", target="y", directory=tmp_path)


def test_semicolon_file_is_sniffed(tmp_path: Path) -> None:
    path = tmp_path / "semi.csv"
    path.write_text("id;y;x\n1;a;0.5\n2;b;1.5\n3;a;2.5\n4;b;0.1\n")
    init_project(path, target="y", id_column="id", directory=tmp_path / "p")
    config = load_config(tmp_path / "p")
    assert config.data.delimiter == ";"
    assert Project(tmp_path / "p").ingest().snapshot.rows == 4


def test_infer_task_and_types_from_arrow() -> None:
    table = pa.table({"y": [1, 2, 3, 4], "c": ["a", "b", "a", None], "v": [0.5, 1.5, None, 2.0],
                      "b": [True, False, True, True]})
    draft = infer_draft(table, target="y", id_column=None, task=None)
    assert draft.task == "classification"  # a small integer target
    assert draft.schema["c"] == {"dtype": "str", "nullable": True}
    assert draft.columns["c"].role == "categorical" and draft.columns["c"].observed == "a, b; 25.0% missing"
    assert draft.schema["v"] == {"dtype": "float", "nullable": True}
    assert draft.columns["v"].observed.startswith("0.5 .. 2")
    assert draft.schema["b"]["dtype"] == "bool" and draft.columns["b"].role == "numeric"
    assert draft.schema["y"]["allowed"] == [1, 2, 3, 4]
    many = pa.table({"y": [float(i) for i in range(50)]})
    assert infer_draft(many, target="y", id_column=None, task=None).task == "regression"


def test_id_like_free_text_and_row_numbers_are_left_out_of_the_model() -> None:
    n = 200
    table = pa.table({
        "y": [i % 2 for i in range(n)],
        "name": [f"Person {i}, of somewhere" for i in range(n)],  # distinct per row: it names rows
        "case_id": [10_000 + 7 * i for i in range(n)],  # unique and named like an id
        "row": list(range(1, n + 1)),  # counts the rows
        "notes": ["a long free-text remark that goes on and on about the case, item " + str(i % 3)
                  for i in range(n)],
        "city": [["Paris", "Lyon", "Nice"][i % 3] for i in range(n)],
        "amount": [float(i % 17) for i in range(n)],
        "day": pa.array([19_000 + i for i in range(n)], pa.int32()).cast(pa.date32()),
    })
    draft = infer_draft(table, target="y", id_column=None, task=None)
    roles = {name: column.role for name, column in draft.columns.items()}
    assert roles == {"y": "target", "name": "excluded", "case_id": "excluded", "row": "excluded",
                     "notes": "excluded", "city": "categorical", "amount": "numeric", "day": "date"}
    assert "id-like" in draft.columns["name"].reason and "free text" in draft.columns["notes"].reason
    assert "row number" in draft.columns["row"].reason
    assert any("left out of the model" in note for note in draft.notes)


def test_left_out_columns_are_named_in_the_configuration(tmp_path: Path) -> None:
    from .corpus import INIT_CORPUS

    csv = INIT_CORPUS["titanic"].write_csv(tmp_path / "data" / "titanic.csv")
    init_project(csv, target="survived", id_column="row_id", directory=tmp_path / "t")
    text = (tmp_path / "t" / "lockstep.toml").read_text()
    assert 'rownames = { dtype = "str" }  # not a model input: id-like' in text  # passengers' names
    config = load_config(tmp_path / "t")
    assert config.feature_inputs == ["sex", "age", "passengerClass"]


def test_dates_become_numbers_and_later_dates_are_accepted(tmp_path: Path) -> None:
    """A date column: features() turns it into year, month, day and day of week; a date after every date of
    the data is predicted, not refused."""
    from dataclasses import replace

    import pandas as pd

    from .corpus import INIT_CORPUS

    data = replace(INIT_CORPUS["hotels"], rows=400)
    csv = data.write_csv(tmp_path / "data" / "hotels.csv")
    init_project(csv, target="avg_price_per_room", id_column="row_id", directory=tmp_path / "h")
    project = Project(tmp_path / "h")
    assert project.config.data.columns["arrival_date"].dtype == "date"
    project.ingest()
    info = project.build_features().info
    assert {"arrival_date_year", "arrival_date_month", "arrival_date_day", "arrival_date_dayofweek"} <= set(
        info.columns) and "arrival_date" not in info.columns
    version = project.train().version
    later = pd.read_csv(csv).head(5).drop(columns=["avg_price_per_room"])
    later["arrival_date"] = "2031-02-14"
    later.to_csv(tmp_path / "later.csv", index=False)
    result = project.predict(str(tmp_path / "out.parquet"), input=tmp_path / "later.csv",
                             model=f"{version.name}/{version.version}")
    assert result.rows == 5 and result.quarantined == 0
