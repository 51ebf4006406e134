"""lockstep.toml: valid files load; every mistake is an error naming the file and the key."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from lockstep.core.config import Config, load_config, parse_config
from lockstep.core.errors import ConfigError, ProjectError

from .conftest import SMALL_CONFIG


def _raw() -> dict:
    return tomllib.loads(SMALL_CONFIG)


def _error(raw: dict) -> str:
    with pytest.raises(ConfigError) as info:
        parse_config(raw, source="proj/lockstep.toml")
    return str(info.value)


def test_valid_config_loads_with_defaults(small_project: Path) -> None:
    config = load_config(small_project)
    assert isinstance(config, Config)
    assert config.data.id_column == "id"
    assert config.data.feature_columns == ["age", "income", "city", "member", "signup"]
    assert config.project.store == ".lockstep"
    assert config.store_path == (small_project / ".lockstep").resolve()
    assert config.split.by == "hash"


def test_examples_configs_are_valid() -> None:
    root = Path(__file__).resolve().parent.parent / "examples"
    for name in ("telco-churn", "ames-housing"):
        config = load_config(root / name)
        assert config.data.target in config.data.columns


def test_unknown_key_is_named_with_a_suggestion() -> None:
    raw = _raw()
    raw["data"]["targt"] = "label"
    message = _error(raw)
    assert "proj/lockstep.toml" in message
    assert "unknown key 'targt' in [data]" in message
    assert "did you mean 'target'" in message


def test_unknown_key_in_a_column_schema_lists_allowed_keys() -> None:
    raw = _raw()
    raw["data"]["schema"]["age"]["maximum"] = 3
    message = _error(raw)
    assert "unknown key 'maximum' in [data.schema.age]" in message
    assert "allowed: dtype, nullable, min, max, allowed, description" in message


def test_unknown_section_is_an_error() -> None:
    raw = _raw()
    raw["trian"] = {}
    assert "unknown key 'trian' in the top level" in _error(raw)


def test_wrong_type_names_key_and_expected_type() -> None:
    raw = _raw()
    raw["split"]["valid"] = "0.2"
    message = _error(raw)
    assert "split.valid" in message
    assert "expected" in message and "'0.2' (str)" in message


def test_bad_literal_lists_choices() -> None:
    raw = _raw()
    raw["data"]["task"] = "clasification"
    message = _error(raw)
    assert "data.task: expected one of 'classification' or 'regression'" in message


def test_missing_required_key() -> None:
    raw = _raw()
    del raw["data"]["target"]
    assert "data.target: required key is missing" in _error(raw)


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (lambda r: r["data"].update(target="nope"), "target column 'nope' is not in [data.schema]"),
        (lambda r: r["data"].update(id="ids"), "id column 'ids' is not in [data.schema] (did you mean 'id'?)"),
        (lambda r: r["data"]["schema"]["id"].update(nullable=True), "id column 'id' cannot be nullable"),
        (lambda r: r["split"].update(valid=0.5, test=0.5), "valid + test must be below 1"),
        (lambda r: r["data"]["schema"]["age"].update(min=10, max=5), "min (10) is greater than max (5)"),
        (lambda r: r["data"]["schema"]["income"].update(allowed=["x"]), "allowed values do not apply to dtype 'float'"),
        (lambda r: r["data"]["schema"]["city"].update(allowed=[1.5]),
         "data.schema.city.allowed.0: expected a string, an integer or true or false, got 1.5 (float)"),
        (lambda r: r["data"]["schema"]["city"].update(min=1), "min/max do not apply to dtype 'str'"),
        (lambda r: r["data"].update(delimiter=";;"), "delimiter must be a single character"),
        (lambda r: r["data"].update(encoding="utf-99"), "unknown encoding 'utf-99'"),
        (lambda r: r["data"].update(sql="select 1"), "set exactly one of 'source'"),
        (lambda r: r["data"].update(task="regression"), "a regression target must be numeric"),
        (lambda r: r.setdefault("features", {}).update(columns=["agee"]), "features.columns names 'agee'"),
        (lambda r: r["split"].update(by="time"), "by = 'time' needs time_column, valid_from and test_from"),
        (lambda r: r["split"].update(by="time", time_column="age", valid_from="2024-01-01", test_from="2024-02-01"),
         "split.time_column 'age' must have dtype 'datetime' or 'date'"),
    ],
)
def test_semantic_errors(mutate, expected: str) -> None:
    raw = _raw()
    mutate(raw)
    assert expected in _error(raw)


def test_all_problems_are_reported_at_once() -> None:
    raw = _raw()
    raw["data"]["targt"] = "x"
    raw["split"]["salt"] = 3
    message = _error(raw)
    assert "2 problem(s)" in message
    assert "targt" in message and "split.salt" in message


def test_invalid_toml_names_the_file_and_line(small_project: Path) -> None:
    (small_project / "lockstep.toml").write_text("[project]\nname = \"x\nbroken\n")
    with pytest.raises(ConfigError) as info:
        load_config(small_project)
    assert "lockstep.toml: invalid TOML" in str(info.value)
    assert "line 2" in str(info.value)


def test_missing_config_file(tmp_path: Path) -> None:
    with pytest.raises(ProjectError) as info:
        load_config(tmp_path)
    assert "no lockstep.toml" in str(info.value)
    assert "lockstep init" in info.value.hint


def test_missing_project_folder(tmp_path: Path) -> None:
    with pytest.raises(ProjectError, match="does not exist"):
        load_config(tmp_path / "nowhere")


def test_time_split_config() -> None:
    raw = _raw()
    raw["split"].update(by="time", time_column="signup", valid_from="2024-03-01", test_from="2024-04-01")
    config = parse_config(raw)
    assert config.split.cutoffs()[0].month == 3


def test_normalized_config_is_stable_and_sorted() -> None:
    a = parse_config(_raw()).normalized()
    b = parse_config(tomllib.loads(SMALL_CONFIG)).normalized()
    assert a == b
    assert list(a) == sorted(a)
    assert a["split"]["valid"] == 0.2


# ---- where the store and the registry are; ${NAME} in values


def _with(text: str, project: Path, extra: str) -> Path:
    (project / "lockstep.toml").write_text(text + extra, encoding="utf-8")
    return project


def test_environment_variables_are_expanded_and_kept_out_of_the_record(small_project: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEAM_BUCKET", "team-bucket")
    monkeypatch.setenv("TEAM_DB_PASSWORD", "hunter2")
    text = SMALL_CONFIG.replace('name = "small"', 'name = "small"\nstore = "s3://${TEAM_BUCKET}/small"', 1)
    _with(text, small_project, '\n[registry]\ntracking_uri = "postgresql://me:${TEAM_DB_PASSWORD}@db:5432/ml"\n'
                               'artifacts = "s3://${TEAM_BUCKET}/mlflow"\n')
    config = load_config(small_project)
    assert config.store_remote and config.store_location == "s3://team-bucket/small"
    assert config.registry.tracking_uri == "postgresql://me:hunter2@db:5432/ml"
    recorded = str(config.normalized())
    assert "hunter2" not in recorded and "${TEAM_DB_PASSWORD}" in recorded and "${TEAM_BUCKET}" in recorded
    with pytest.raises(ConfigError, match="s3://team-bucket/small, not a folder"):
        _ = config.store_path


def test_a_missing_environment_variable_names_the_key_and_the_variable(small_project: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NOT_SET_ANYWHERE", raising=False)
    _with(SMALL_CONFIG, small_project, '\n[registry]\ntracking_uri = "postgresql://me:${NOT_SET_ANYWHERE}@db/ml"\n')
    with pytest.raises(ConfigError) as info:
        load_config(small_project)
    assert "registry.tracking_uri" in info.value.message and "NOT_SET_ANYWHERE" in info.value.message


def test_a_doubled_dollar_is_a_literal(small_project: Path) -> None:
    text = SMALL_CONFIG.replace('name = "small"', 'name = "small"\ndescription = "costs $${PRICE}"', 1)
    _with(text, small_project, "")
    assert load_config(small_project).project.description == "costs ${PRICE}"


@pytest.mark.parametrize(("project_keys", "registry_keys", "expected"), [
    ('store = "s3://team-bucket/x"', "", "set registry.tracking_uri"),
    ('store = "s3://team-bucket/x"', 'tracking_uri = "postgresql://u:p@h/db"', "set registry.artifacts"),
    ('store = "gs://team-bucket/x"', "", "gs:// is not supported"),
    ('store = "s3://Bad_Bucket/x"', "", "is not s3://BUCKET/PREFIX"),
    ("", 'tracking_uri = "mongodb://h/db"', "is not a database URI"),
    ("", 'tracking_uri = "http://h:5000"\nartifacts = "s3://team-bucket/m"', "only applies with a database"),
    ("", 'artifacts = "/tmp/artifacts"', "is not s3://BUCKET/PREFIX"),
])
def test_store_and_registry_locations_are_checked(small_project: Path, project_keys: str, registry_keys: str,
                                                  expected: str) -> None:
    text = SMALL_CONFIG.replace('name = "small"', f'name = "small"\n{project_keys}', 1)
    _with(text, small_project, f"\n[registry]\n{registry_keys}\n")
    with pytest.raises(ConfigError, match=expected.replace("(", r"\(")):
        load_config(small_project)
