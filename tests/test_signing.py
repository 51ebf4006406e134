"""Signed models: signed at registration with model-signing, verified on every load, refused otherwise."""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from lockstep import Project
from lockstep.core.errors import ConfigError, IntegrityError, UserError
from lockstep.registry.bundle import Bundle, bundle_files

from .serving import make_trained_project

pytestmark = [pytest.mark.integration]


def _key_pair(folder: Path, name: str) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    private, public = folder / f"{name}.key", folder / f"{name}.pub"
    private.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()))
    public.write_bytes(key.public_key().public_bytes(serialization.Encoding.PEM,
                                                     serialization.PublicFormat.SubjectPublicKeyInfo))
    return private, public


def _require_signatures(project: Path, public: Path) -> None:
    toml = project / "lockstep.toml"
    toml.write_text(toml.read_text().replace("[registry]\n", f'[registry]\npublic_key = "{public}"\n'))


@pytest.fixture(scope="module")
def unsigned(tmp_path_factory) -> Path:
    return make_trained_project(tmp_path_factory.mktemp("signing") / "telco").path


@pytest.fixture
def signed(unsigned: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Project, Path, Path]:
    project = tmp_path / "telco"
    shutil.copytree(unsigned, project)
    private, public = _key_pair(tmp_path, "lockstep")
    _require_signatures(project, public)
    monkeypatch.setenv("LOCKSTEP_SIGNING_KEY", str(private))
    p = Project(project)
    p.train(force=True)
    return p, private, public


def test_a_signed_version_loads_and_carries_its_claims(signed) -> None:
    project, _private, _public = signed
    loaded = project.load_model("churn-serve@challenger")
    folder = project.registry._version_dir(loaded.info)
    claims = json.loads((folder / "lockstep-claims.json").read_text())
    assert claims["version"] == loaded.info.version and claims["tags"]["lockstep.model.fingerprint"] == \
        loaded.info.fingerprint
    assert (folder / "model.sig").is_file()


def test_rewriting_the_file_and_its_recorded_digest_together_is_caught(signed) -> None:
    """The probe's attack: a changed model file, and the digest tag in mlflow.db changed to match it."""
    from lockstep.core.fingerprint import fingerprint_file

    project, _private, _public = signed
    info = project.model_version("churn-serve@challenger")
    model_file = project.registry._version_dir(info) / "model.skops"
    data = bytearray(model_file.read_bytes())
    data[len(data) // 2] ^= 0x01
    model_file.write_bytes(bytes(data))
    with sqlite3.connect(project.store.root / "mlflow.db") as db:
        db.execute("UPDATE model_version_tags SET value = ? WHERE key = 'lockstep.model.file_digest' AND version = ?",
                   (fingerprint_file(model_file), str(info.version)))
    with pytest.raises(IntegrityError, match=r"signature does not verify .*files differ from the signed ones: "
                                              r"model.skops"):
        project.load_model("churn-serve@challenger")


def test_a_record_that_differs_from_the_signed_claims_is_refused(signed) -> None:
    project, _private, _public = signed
    info = project.model_version("churn-serve@challenger")
    with sqlite3.connect(project.store.root / "mlflow.db") as db:
        db.execute("UPDATE model_version_tags SET value = ? WHERE key = 'lockstep.model.fingerprint' AND version = ?",
                   ("0" * 64, str(info.version)))
    with pytest.raises(IntegrityError, match=r"record differs from what was signed \(lockstep.model.fingerprint\)"):
        project.load_model("churn-serve@challenger")


def test_unsigned_and_wrongly_signed_versions_are_refused(signed, tmp_path: Path) -> None:
    project, _private, _public = signed
    with pytest.raises(IntegrityError, match="is not signed, and a public key is configured"):
        project.load_model("churn-serve@champion")  # trained before signing was configured
    _other_private, other_public = _key_pair(tmp_path, "other")
    text = (project.path / "lockstep.toml").read_text()
    (project.path / "lockstep.toml").write_text(text.replace(str(_public), str(other_public)))
    with pytest.raises(IntegrityError, match="signature does not verify"):
        Project(project.path).load_model("churn-serve@challenger")


def test_training_without_the_private_key_registers_nothing(signed, monkeypatch: pytest.MonkeyPatch) -> None:
    project, _private, _public = signed
    before = [v.version for v in project.model_versions()]
    monkeypatch.delenv("LOCKSTEP_SIGNING_KEY")
    with pytest.raises(ConfigError, match="LOCKSTEP_SIGNING_KEY is not set"):
        project.train(force=True)
    assert [v.version for v in project.model_versions()] == before


def test_a_bundle_is_verified_with_the_key_given_to_the_service(signed, tmp_path: Path) -> None:
    project, _private, public = signed
    info = project.model_version("churn-serve@challenger")
    folder = tmp_path / "bundle"
    for relative, data in bundle_files(project.registry, info).items():
        (folder / relative).parent.mkdir(parents=True, exist_ok=True)
        (folder / relative).write_bytes(data)
    assert Bundle(folder, public).load().info.version == info.version
    record = json.loads((folder / "version.json").read_text())
    record["tags"]["lockstep.model.trusted_types"] = json.dumps(["builtins.eval"])
    (folder / "version.json").write_text(json.dumps(record))
    with pytest.raises(UserError, match="record differs from what was signed"):
        Bundle(folder, public).load()
