"""Data contracts: ``lockstep data contract`` (ODCS v3.2) and ``lockstep init --contract``.

The round trip runs on every data set of the corpus (real data, bundled in
packages): scaffold a project, export its contract, check the document
against the standard's own JSON schema (read here, not through lockstep),
then scaffold a second project from the same data and that contract; its
``[data.schema]``, id, target and task must be the first project's.
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

import jsonschema
import pytest
import yaml

from lockstep.core.config import load_config
from lockstep.scaffold import init_project

from .conftest import TELCO_CSV, lockstep_here, read_rows, write_rows
from .corpus import INIT_CORPUS

ODCS = json.loads(resources.files("open_data_contract_standard").joinpath("schema.json").read_text())


def _schema(project: Path) -> tuple[dict, str | None, str, str]:
    data = load_config(project).data
    return ({name: spec.model_dump(exclude_none=True) for name, spec in data.columns.items()}, data.id, data.target,
            data.task)


@pytest.mark.parametrize("data", list(INIT_CORPUS.values()), ids=lambda d: d.key)
def test_a_contract_round_trip_gives_the_same_schema(data, tmp_path: Path) -> None:
    csv = data.write_csv(tmp_path / f"{data.key}.csv")
    first = tmp_path / "first"
    init_project(csv, target=data.target, id_column="row_id", directory=first)
    contract = tmp_path / "contract.yaml"
    done = lockstep_here("data", "contract", "--out", str(contract), "--project", str(first), "--json")
    assert done.returncode == 0, done.stderr
    document = yaml.safe_load(contract.read_text())
    jsonschema.validate(document, ODCS)  # the standard's schema itself
    assert document["apiVersion"] == "v3.2.0" and document["kind"] == "DataContract"
    columns = {p["name"]: p for p in document["schema"][0]["properties"]}
    assert columns["row_id"]["primaryKey"] is True and columns["row_id"]["required"] is True

    second = tmp_path / "second"
    done = lockstep_here("init", str(csv), "--contract", str(contract), "--project", str(second), "--json")
    assert done.returncode == 0, done.stderr  # no --target, --id or --task: the contract has them
    assert _schema(second) == _schema(first)
    assert "the data contract" in (second / "lockstep.toml").read_text()


def test_export_prints_yaml_and_json(tmp_path: Path) -> None:
    project = tmp_path / "telco"
    header, rows = read_rows(TELCO_CSV)
    init_project(write_rows(tmp_path / "telco.csv", header, rows[:300]), target="churn", id_column="rownames",
                 directory=project)
    printed = lockstep_here("data", "contract", "--version", "2.1.0", "--project", str(project))
    assert printed.returncode == 0 and yaml.safe_load(printed.stdout)["version"] == "2.1.0"
    as_json = json.loads(lockstep_here("data", "contract", "--json", "--project", str(project)).stdout)
    assert as_json["path"] is None and as_json["columns"] == len(header)
    jsonschema.validate(as_json["contract"], ODCS)


def _telco(tmp_path: Path, rows: int = 200) -> Path:
    header, data = read_rows(TELCO_CSV)
    return write_rows(tmp_path / "telco.csv", header, data[:rows])


def _minimal(columns: list[dict]) -> dict:
    """A contract as another tool writes it: no lockstep properties."""
    return {"apiVersion": "v3.0.2", "kind": "DataContract", "id": "churn", "version": "1.0.0", "status": "active",
            "schema": [{"name": "customers", "logicalType": "object", "properties": columns}]}


def test_a_contract_from_another_tool_is_read_by_its_logical_types(tmp_path: Path) -> None:
    header, _ = read_rows(TELCO_CSV)
    numbers = {"rownames", "female", "senior_citizen", "partner", "dependents", "tenure", "phone_service",
               "paperless_billing"}
    columns = [{"name": name, "logicalType": "integer" if name in numbers else "number"
                if name in ("monthly_charges", "total_charges") else "string", "required": name != "total_charges"}
               for name in header]
    columns[0]["primaryKey"] = True
    columns[header.index("tenure")]["logicalTypeOptions"] = {"minimum": 0, "maximum": 100}
    columns[header.index("contract")]["enum"] = [{"value": v} for v in ("Month-to-month", "One year", "Two year")]
    path = tmp_path / "contract.yaml"
    path.write_text(yaml.safe_dump(_minimal(columns)))
    done = lockstep_here("init", str(_telco(tmp_path)), "--contract", str(path), "--target", "churn", "--project",
                         str(tmp_path / "p"))
    assert done.returncode == 0, done.stderr
    schema, id_column, target, task = _schema(tmp_path / "p")
    assert id_column == "rownames" and target == "churn" and task == "classification"
    assert schema["tenure"] == {"dtype": "int", "nullable": False, "min": 0, "max": 100}
    assert schema["contract"]["allowed"] == ["Month-to-month", "One year", "Two year"]
    assert schema["total_charges"] == {"dtype": "float", "nullable": True}


@pytest.mark.parametrize(("change", "expected"), [
    (lambda d: d.pop("kind"), "'kind' is a required property"),
    (lambda d: d["schema"][0]["properties"][1].update(logicalType="text"), "schema[0].properties[1].logicalType"),
    (lambda d: d["schema"][0]["properties"][2].update(colour="red"), "schema[0].properties[2]"),
    (lambda d: d.update(apiVersion="v9"), "apiVersion"),
])
def test_a_contract_that_breaks_the_standard_is_exit_2_naming_the_field(change, expected, tmp_path: Path) -> None:
    header, _ = read_rows(TELCO_CSV)
    document = _minimal([{"name": n, "logicalType": "string"} for n in header])
    change(document)
    path = tmp_path / "contract.yaml"
    path.write_text(yaml.safe_dump(document))
    done = lockstep_here("init", str(_telco(tmp_path)), "--contract", str(path), "--target", "churn", "--project",
                         str(tmp_path / "p"))
    assert done.returncode == 2, done.stderr
    assert "not a valid ODCS data contract" in done.stderr and expected in done.stderr, done.stderr
    assert str(path) in done.stderr and not (tmp_path / "p" / "lockstep.toml").exists()


def test_contract_user_errors_name_the_file_and_what_is_wrong(tmp_path: Path) -> None:
    csv = _telco(tmp_path)
    header, _ = read_rows(TELCO_CSV)

    def init(contract: Path, *extra: str):
        return lockstep_here("init", str(csv), "--contract", str(contract), "--project", str(tmp_path / "p"), *extra)

    missing = init(tmp_path / "nope.yaml", "--target", "churn")
    assert missing.returncode == 2 and "data contract" in missing.stderr and "nope.yaml" in missing.stderr
    bad_yaml = tmp_path / "bad.yaml"
    bad_yaml.write_text("apiVersion: v3.2.0\nkind: [DataContract\n")
    done = init(bad_yaml, "--target", "churn")
    assert done.returncode == 2 and "is not YAML (line" in done.stderr, done.stderr

    fewer = tmp_path / "fewer.yaml"
    fewer.write_text(yaml.safe_dump(_minimal([{"name": n, "logicalType": "string"} for n in header[:-1]]
                                             + [{"name": "extra_col", "logicalType": "string"}])))
    done = init(fewer, "--target", "churn")
    assert done.returncode == 2 and "not in the data: extra_col" in done.stderr
    assert f"not in the contract: {header[-1]}" in done.stderr

    no_target = tmp_path / "no-target.yaml"
    no_target.write_text(yaml.safe_dump(_minimal([{"name": n, "logicalType": "string"} for n in header])))
    done = init(no_target)
    assert done.returncode == 2 and "no target: give --target" in done.stderr

    strict = _minimal([{"name": n, "logicalType": "string"} for n in header])
    contract_column = next(p for p in strict["schema"][0]["properties"] if p["name"] == "contract")
    contract_column["enum"] = [{"value": "Month-to-month"}]  # the data has yearly contracts too
    broken = tmp_path / "strict.yaml"
    broken.write_text(yaml.safe_dump(strict))
    done = init(broken, "--target", "churn")
    assert done.returncode == 2 and "contract" in done.stderr and "strict.yaml" in done.stderr, done.stderr
    assert not (tmp_path / "p" / "lockstep.toml").exists()  # nothing written on any failure
