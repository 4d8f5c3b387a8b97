"""rpki.yaml's ``type: file`` signers with ``passphrase_env``: what loads, and each mistake pointed at."""

from __future__ import annotations

import importlib
from typing import Any

import pytest

from reconciler.desired.model import Pkcs11SignerConfig
from reconciler.desired.schema import json_schema

from .helpers import RPKI_YAML, Repo, expect

HEAD = RPKI_YAML  # rpki.yaml whose last entry is the file signer 'default'; tests append to it
HSM = "  hsm:\n    type: pkcs11\n    module: /p11.so\n    token: rpki\n    pin_env: PIN\n"


def test_passphrase_env_loads_without_the_passphrase(repo: Repo, monkeypatch: pytest.MonkeyPatch) -> None:
    """Like the PIN, only the variable's name is kept: ``validate`` works where the secret is absent."""
    monkeypatch.delenv("RPKI_KEY_PASSPHRASE", raising=False)
    repo.write("rpki.yaml", HEAD + "    passphrase_env: RPKI_KEY_PASSPHRASE\n")
    signer = repo.load().signers["default"]
    assert (signer.type, signer.directory, signer.passphrase_env) == (
        "file",
        repo.root.parent / "keys",
        "RPKI_KEY_PASSPHRASE",
    )


def test_passphrase_env_is_optional(repo: Repo) -> None:
    assert repo.load().signers["default"].passphrase_env is None


def test_passphrase_env_on_a_pkcs11_signer_is_refused(repo: Repo) -> None:
    repo.write("rpki.yaml", HEAD + HSM + "    passphrase_env: PASS\n")
    problem = repo.error()
    expect(
        problem, repo, "rpki.yaml", 13, 5, "'passphrase_env' does not apply to a pkcs11 signer (signers.hsm)"
    )
    assert problem.hint == "remove it; a pkcs11 signer takes module, token, pin_env"


def test_pkcs11_signer_still_loads(repo: Repo) -> None:
    repo.write("rpki.yaml", HEAD + HSM)
    signer = repo.load().signers["hsm"]
    assert isinstance(signer, Pkcs11SignerConfig) and signer.passphrase_env is None


@pytest.mark.parametrize(
    ("value", "column", "phrase"),
    [
        ("'my secret'", 21, "'my secret' is not an environment variable name"),
        ("1234", 21, "expected the name of an environment variable, found the number 1234"),
        ("''", 21, "expected the name of an environment variable, found empty text"),
        ("~", 5, "expected the name of an environment variable, found nothing"),  # an empty value: at its key
    ],
)
def test_bad_passphrase_env(repo: Repo, value: str, column: int, phrase: str) -> None:
    repo.write("rpki.yaml", HEAD + f"    passphrase_env: {value}\n")
    problem = repo.error()
    expect(problem, repo, "rpki.yaml", 8, column, phrase)
    assert "my secret" not in (problem.hint or "")


def test_pin_env_on_a_file_signer_names_the_optional_key(repo: Repo) -> None:
    repo.write("rpki.yaml", HEAD + "    pin_env: PIN\n")
    problem = repo.error()
    expect(problem, repo, "rpki.yaml", 8, 5, "'pin_env' does not apply to a file signer (signers.default)")
    assert problem.hint == "remove it; a file signer takes directory (and optionally passphrase_env)"


def _signer_errors(signer: dict[str, Any]) -> list[str]:
    """What the JSON Schema's SignerSection says about one signer entry (needs jsonschema)."""
    jsonschema = importlib.import_module("jsonschema")  # a test dependency without type information
    schema = json_schema()
    validator = jsonschema.Draft202012Validator({"$defs": schema["$defs"], "$ref": "#/$defs/SignerSection"})
    return [error.message for error in validator.iter_errors(signer)]


def test_json_schema_allows_passphrase_env_on_file_signers_only() -> None:
    pytest.importorskip("jsonschema")
    assert _signer_errors({"type": "file", "directory": "../keys", "passphrase_env": "PASS"}) == []
    assert _signer_errors({"type": "file", "directory": "../keys"}) == []
    assert _signer_errors({"type": "file", "passphrase_env": "PASS"})  # directory is still required
    hsm = {"type": "pkcs11", "module": "/p11.so", "token": "rpki", "pin_env": "PIN"}
    assert _signer_errors(hsm) == []
    assert _signer_errors({**hsm, "passphrase_env": "PASS"})
    assert _signer_errors({"type": "file", "directory": "../keys", "passphrase_env": "not a name"})
