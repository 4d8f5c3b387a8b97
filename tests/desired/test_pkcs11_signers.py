"""rpki.yaml's ``type: pkcs11`` signers: what loads, and each mistake pointed at by line and column."""

from __future__ import annotations

from pathlib import Path

import pytest

from reconciler.desired.model import Pkcs11SignerConfig

from .helpers import RPKI_YAML, Repo, expect

HEAD = RPKI_YAML  # rpki.yaml with the default file signer; tests append more signers


def test_pkcs11_signer_loads_without_the_pin(repo: Repo, monkeypatch: pytest.MonkeyPatch) -> None:
    """``validate`` must work where the PIN is not available: the loader only keeps the variable's name."""
    monkeypatch.delenv("RPKI_HSM_PIN", raising=False)
    repo.write(
        "rpki.yaml",
        HEAD + "  hsm:\n    type: pkcs11\n    module: /usr/lib/softhsm/libsofthsm2.so\n    token: rpki\n"
        "    pin_env: RPKI_HSM_PIN\n",
    )
    signer = repo.load().signers["hsm"]
    assert isinstance(signer, Pkcs11SignerConfig)
    assert (signer.type, signer.module, signer.token, signer.pin_env, signer.directory) == (
        "pkcs11",
        Path("/usr/lib/softhsm/libsofthsm2.so").resolve(),
        "rpki",
        "RPKI_HSM_PIN",
        None,
    )


def test_relative_module_is_relative_to_rpki_yaml(repo: Repo) -> None:
    repo.write("rpki.yaml", HEAD + "  hsm: {type: pkcs11, module: ../lib/p11.so, token: t, pin_env: P}\n")
    signer = repo.load().signers["hsm"]
    assert isinstance(signer, Pkcs11SignerConfig) and signer.module == repo.root.parent / "lib" / "p11.so"


@pytest.mark.parametrize(
    ("entry", "line", "column", "phrase"),
    [
        (
            "  hsm:\n    type: pkcs11\n    token: rpki\n    pin_env: PIN\n",
            8,
            3,
            "missing required key 'module' in signers.hsm",
        ),
        (
            "  hsm:\n    type: pkcs11\n    module: /p11.so\n    pin_env: PIN\n",
            8,
            3,
            "missing required key 'token' in signers.hsm",
        ),
        (
            "  hsm:\n    type: pkcs11\n    module: /p11.so\n    token: rpki\n",
            8,
            3,
            "missing required key 'pin_env' in signers.hsm",
        ),
        (
            "  hsm:\n    type: pkcs11\n    module: /p11.so\n    token: rpki\n    pin_env: PIN\n"
            "    directory: ../keys\n",
            13,
            5,
            "'directory' does not apply to a pkcs11 signer (signers.hsm)",
        ),
        (
            "  hsm:\n    type: pkcs11\n    module: /p11.so\n    token: rpki\n    pin_env: PIN\n"
            "    pin: '1234'\n",
            13,
            5,
            "unknown key 'pin' in signers.hsm",
        ),
        (
            "  hsm:\n    type: pkcs11\n    module: /p11.so\n    token: rpki\n    pin_env: '1234'\n",
            12,
            14,
            "'1234' is not an environment variable name",
        ),
        (
            "  hsm:\n    type: pkcs11\n    module: /p11.so\n    token: rpki\n    pin_env: 1234\n",
            12,
            14,
            "expected the name of an environment variable, found the number 1234",
        ),
        (
            f"  hsm:\n    type: pkcs11\n    module: /p11.so\n    token: {'x' * 33}\n    pin_env: PIN\n",
            11,
            12,
            "longer than 32 bytes",
        ),
        (
            "  hsm:\n    type: pkcs11\n    module: ''\n    token: rpki\n    pin_env: PIN\n",
            10,
            13,
            "expected the path of a PKCS#11 library, found empty text",
        ),
    ],
)
def test_pkcs11_signer_errors(repo: Repo, entry: str, line: int, column: int, phrase: str) -> None:
    repo.write("rpki.yaml", HEAD + entry)
    expect(repo.error(), repo, "rpki.yaml", line, column, phrase)


def test_module_on_a_file_signer(repo: Repo) -> None:
    repo.write("rpki.yaml", HEAD + "    module: /p11.so\n")
    problem = repo.error()
    expect(problem, repo, "rpki.yaml", 8, 5, "'module' does not apply to a file signer (signers.default)")
    assert problem.hint == "remove it; a file signer takes directory (and optionally passphrase_env)"


def test_missing_key_hint_says_what_it_is_for(repo: Repo) -> None:
    repo.write("rpki.yaml", HEAD + "  hsm: {type: pkcs11, module: /p11.so, token: rpki}\n")
    problem = repo.error()
    expect(problem, repo, "rpki.yaml", 8, 3, "missing required key 'pin_env' in signers.hsm")
    assert problem.hint is not None and problem.hint.startswith("add 'pin_env:'")
    assert "environment variable" in problem.hint
