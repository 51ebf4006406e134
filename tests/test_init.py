"""lockstep init: a draft schema from the data, a valid project, a template that runs."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pyarrow as pa
import pytest

from lockstep import Project, init_project
from lockstep.config import load_config
from lockstep.data.infer import infer_draft
from lockstep.errors import ProjectError, SourceError

from .conftest import AMES_CSV, TELCO_CSV, read_rows, write_rows


def test_init_telco_infers_a_valid_reviewed_draft(tmp_path: Path) -> None:
    result = init_project(TELCO_CSV, target="churn", id_column="rownames", directory=tmp_path / "p")
    config = load_config(tmp_path / "p")
    schema = config.data.columns
    assert result.task == "classification" and config.data.task == "classification"
    assert schema["tenure"].dtype == "int" and schema["tenure"].min == 0 and schema["tenure"].max == 72
    assert schema["total_charges"].nullable and not schema["tenure"].nullable
    assert schema["contract"].allowed == ["Month-to-month", "One year", "Two year"]
    assert schema["churn"].allowed == ["No", "Yes"]
    assert schema["rownames"].min is None  # ids get no range
    assert config.data.source.endswith("wa_churn.csv")
    assert (tmp_path / "p" / ".gitignore").read_text().splitlines() == [".lockstep/"]
    assert any("observed ranges" in note for note in result.notes)


def test_init_warns_about_rows_shared_between_splits(tmp_path: Path) -> None:
    result = init_project(TELCO_CSV, target="churn", id_column="rownames", directory=tmp_path / "p")
    note = next(n for n in result.notes if "identical to a train row" in n)
    assert "max_shared_fraction" in note
    text = (tmp_path / "p" / "lockstep.toml").read_text()
    assert "max_shared_fraction = 0.0" in text and "found" in text
    assert load_config(tmp_path / "p").split.max_shared_fraction == 0.0


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
    assert draft.schema["c"] == {"dtype": "str", "nullable": True, "allowed": ["a", "b"]}
    assert draft.schema["v"]["nullable"] and draft.schema["v"]["min"] == 0.5
    assert draft.schema["b"]["dtype"] == "bool"
    many = pa.table({"y": [float(i) for i in range(50)]})
    assert infer_draft(many, target="y", id_column=None, task=None).task == "regression"
