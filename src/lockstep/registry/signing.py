"""Signed models: a registered version's files and what lockstep recorded about them, signed with a key pair.

The fingerprints and digests the registry records are stored next to the
model, so whoever can rewrite the model can rewrite them too. With
``[registry] public_key`` set, every version is signed at registration with
the OpenSSF ``model-signing`` package (an elliptic-curve key pair), and every
load verifies it:

* the *claims* (``lockstep-claims.json`` in the model folder) are what
  loading checks: the version's name and number, its model fingerprint, the
  model file's digest, the trusted types and the digests of the stored code;
* the *signature* (``model.sig``) covers every file of the model folder,
  the claims included. A changed, added or removed file, or claims that are
  not those of the version in the registry, refuse the model.

The private key signs (its path in the environment variable
``LOCKSTEP_SIGNING_KEY``, never in the project); the public key verifies (a
file the project holds, ``[registry] public_key``, or ``serve --public-key``
for a bundle).
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lockstep.core.errors import ConfigError, IntegrityError, UserError
from lockstep.core.lazy import lazy_module

if TYPE_CHECKING:  # imported by the first signature made or checked
    from model_signing import hashing, signing, verifying
else:
    hashing = lazy_module("model_signing.hashing")
    signing = lazy_module("model_signing.signing")
    verifying = lazy_module("model_signing.verifying")

__all__ = ["CLAIMS_FILE", "SIGNATURE_FILE", "SIGNING_KEY_ENV", "claims_of", "private_key", "sign_model",
           "verify_model"]

CLAIMS_FILE = "lockstep-claims.json"
SIGNATURE_FILE = "model.sig"
SIGNING_KEY_ENV = "LOCKSTEP_SIGNING_KEY"
#: The version tags the claims hold: loading checks the model against them.
_CLAIMED_TAGS = ("lockstep.model.fingerprint", "lockstep.model.file_digest", "lockstep.model.trusted_types",
                 "lockstep.code.files")


def _builder(module: Any) -> Any:
    """A model_signing configuration builder (``hashing``, ``signing`` or ``verifying``): its API is not
    annotated, so it is called through ``Any`` here, once."""
    return module.Config()


def claims_of(name: str, version: int, tags: dict[str, str]) -> dict[str, Any]:
    """What a version's signature vouches for."""
    return {"name": name, "version": int(version), "tags": {k: tags.get(k, "") for k in _CLAIMED_TAGS}}


def private_key(public_key: Path) -> Path:
    """The private key to sign with: the file ``LOCKSTEP_SIGNING_KEY`` names.

    Raises
    ------
    ConfigError
        When it is not set or not a file.
    """
    value = os.environ.get(SIGNING_KEY_ENV)
    if not value:
        raise ConfigError(f"[registry] public_key ({public_key}) says models are signed, but {SIGNING_KEY_ENV} is not "
                          "set", hint=f"set {SIGNING_KEY_ENV} to the path of the private key (PEM) that matches it")
    path = Path(value)
    if not path.is_file():
        raise ConfigError(f"{SIGNING_KEY_ENV} names {path}, which is not a file",
                          hint="point it at the private key (PEM) that matches [registry] public_key")
    return path


def _hashing() -> Any:
    return _builder(hashing).set_ignored_paths(paths=[SIGNATURE_FILE, "__pycache__"], ignore_git_paths=True)


def sign_model(model_dir: Path, claims: dict[str, Any], key: Path, public_key: Path) -> None:
    """Write the claims into ``model_dir``, sign the folder with ``key``, and check it with ``public_key``.

    Raises
    ------
    UserError
        When the private key cannot sign, or does not match the public key.
    """
    (model_dir / CLAIMS_FILE).write_text(json.dumps(claims, indent=2, sort_keys=True))
    try:
        _builder(signing).use_elliptic_key_signer(private_key=key).set_hashing_config(_hashing()).sign(
            model_dir, model_dir / SIGNATURE_FILE)
    except Exception as exc:  # noqa: BLE001 - a bad key file, in any of the forms cryptography reports
        raise UserError(f"signing the model with {key} failed: {type(exc).__name__}: {exc}",
                        hint=f"{SIGNING_KEY_ENV} must name an elliptic-curve private key in PEM") from None
    verify_model(model_dir, claims, public_key, label="the new version")


def verify_model(model_dir: Path, expected: dict[str, Any], public_key: Path, *, label: str) -> None:
    """Check the signature of ``model_dir`` with ``public_key`` and that its claims are ``expected``.

    Raises
    ------
    UserError
        Unsigned, wrongly signed, changed since signing, or claims that are
        not those of the version.
    """
    signature, claims_file = model_dir / SIGNATURE_FILE, model_dir / CLAIMS_FILE
    hint = "the model is not the one that was signed: retrain it, or restore its files"
    if not public_key.is_file():
        raise ConfigError(f"the public key {public_key} ([registry] public_key) does not exist")
    if not signature.is_file() or not claims_file.is_file():
        raise IntegrityError(f"{label} is not signed, and a public key is configured ({public_key}); refusing to "
                             "load it", hint="sign models by training them with the private key set, or remove "
                             "[registry] public_key to load unsigned models")
    try:
        _builder(verifying).use_elliptic_key_verifier(public_key=public_key).set_hashing_config(_hashing()).verify(
            model_dir, signature)
    except Exception as exc:  # noqa: BLE001 - model_signing raises ValueError and cryptography's errors
        changed = sorted(set(re.findall(r"(?:Hash mismatch for|[Ff]ile) \\?'([^'\\]+)\\?'", str(exc))))
        what = (f"files differ from the signed ones: {', '.join(changed)}" if changed else
                f"{type(exc).__name__}: {str(exc)[:200]}")
        raise IntegrityError(f"{label}: its signature does not verify with {public_key} ({what}); refusing to load it",
                        hint=hint) from None
    claims = json.loads(claims_file.read_text())
    if claims != expected:
        differing = sorted(k for k in {*claims, *expected} if claims.get(k) != expected.get(k)) or ["tags"]
        tags = sorted(k for k in expected.get("tags", {}) if claims.get("tags", {}).get(k) != expected["tags"][k])
        raise IntegrityError(f"{label}: the registry's record differs from what was signed "
                             f"({', '.join(tags or differing)}); refusing to load it", hint=hint)
