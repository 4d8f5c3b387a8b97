"""A damaged key file is said to be damaged, with how to restore it -- never that it needs encrypting,
never in the cryptography library's words (or its FAQ link), and never quoting the file."""

from __future__ import annotations

import base64
import os
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from reconciler.signers import FileSigner, SignerError
from tests.helpers import Scratch, later, scratch_copy
from tests.test_cli import rpkictl

PASSPHRASE = b"correct horse battery staple"
PASSPHRASE_ENV = "RPKI_TEST_KEY_PASSPHRASE"
RESTORE = 'restore it from your key backup (see docs/runbook.md, "A key file is damaged")'


def _pem(encrypted: bool) -> bytes:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(PASSPHRASE) if encrypted else serialization.NoEncryption()
    )
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption)


def _write(directory: Path, data: bytes, name: str = "ca") -> Path:
    directory.mkdir(mode=0o700, exist_ok=True)
    path = directory / f"{name}.pem"
    path.write_bytes(data)
    path.chmod(0o600)
    return path


def _signers(directory: Path) -> dict[str, FileSigner]:
    return {
        "plain": FileSigner(directory),
        "encrypted": FileSigner(directory, PASSPHRASE, passphrase_env=PASSPHRASE_ENV),
    }


def _refusal(directory: Path, signer: FileSigner) -> str:
    """What loading and signing with ``ca.pem`` says; nothing of the file or the passphrase in it."""
    with pytest.raises(SignerError) as info:
        key = signer.find_key("ca")
        assert key is not None
        signer.sign(key, b"tbs")
    message = str(info.value)
    pem = (directory / "ca.pem").read_bytes()
    for line in pem.splitlines():
        if len(line) >= 16 and not line.startswith(b"-----"):
            assert line.decode("latin-1") not in message, "key material echoed"
    assert "cryptography.io" not in message and "faq" not in message.lower()
    assert PASSPHRASE.decode() not in message
    return message


def _cut(pem: bytes) -> bytes:
    return pem[: len(pem) // 2]


def _broken_base64(pem: bytes) -> bytes:
    lines = pem.splitlines(keepends=True)
    lines[5] = b"!!!!" + lines[5][4:]
    return b"".join(lines)


def _lines_lost(pem: bytes) -> bytes:
    lines = pem.splitlines(keepends=True)
    return b"".join(lines[:5] + lines[8:])


DAMAGE: dict[str, tuple[Callable[[bytes], bytes], str]] = {
    "truncated": (_cut, "it is cut short: its '-----END' line is missing"),
    "lines lost": (_lines_lost, "it is cut short: it holds"),
    "broken base64": (_broken_base64, "line 6 is not base64 text"),
    "garbage": (lambda _: os.urandom(512).replace(b"-----", b"....."), "it is not a PEM key file"),
    "zeros": (lambda pem: b"\0" * len(pem), "it is not a PEM key file"),
    "empty": (lambda _: b"", "it is empty"),
}


@pytest.mark.parametrize("signer_kind", ["plain", "encrypted"])
@pytest.mark.parametrize("case", sorted(DAMAGE))
def test_damaged_plaintext_key_file(tmp_path: Path, case: str, signer_kind: str) -> None:
    """Whether or not the signer has a passphrase: a passphrase signer used to say a cut-off plaintext
    file was "not encrypted" and give a command to encrypt it."""
    damage, what = DAMAGE[case]
    _write(tmp_path, damage(_pem(encrypted=False)))
    message = _refusal(tmp_path, _signers(tmp_path)[signer_kind])
    assert message.startswith(f"{tmp_path / 'ca.pem'}: the key file is damaged (")
    assert what in message and message.endswith(RESTORE)
    assert "not encrypted" not in message and "openssl pkcs8" not in message


@pytest.mark.parametrize("case", ["truncated", "broken base64", "lines lost"])
def test_damaged_encrypted_key_file_is_damage_not_a_passphrase_problem(tmp_path: Path, case: str) -> None:
    damage, what = DAMAGE[case]
    _write(tmp_path, damage(_pem(encrypted=True)))
    message = _refusal(tmp_path, _signers(tmp_path)["encrypted"])
    assert "the key file is damaged" in message and what in message
    assert "passphrase" not in message


def test_inconsistent_rsa_numbers_are_damage(tmp_path: Path) -> None:
    """A key whose PEM is whole but whose numbers are altered fails its check before the first signature."""
    numbers = rsa.generate_private_key(65537, 2048).private_numbers()
    broken = rsa.RSAPrivateNumbers(
        numbers.p, numbers.q, numbers.d, numbers.dmp1, numbers.dmq1, numbers.iqmp ^ 1, numbers.public_numbers
    ).private_key(unsafe_skip_rsa_key_validation=True)
    pem = broken.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    _write(tmp_path, pem)
    message = _refusal(tmp_path, FileSigner(tmp_path))
    assert "the key file is damaged (its RSA numbers do not fit together)" in message


def test_wrong_passphrase_is_a_passphrase_problem(tmp_path: Path) -> None:
    _write(tmp_path, _pem(encrypted=True))
    signer = FileSigner(tmp_path, b"wrong horse", passphrase_env=PASSPHRASE_ENV)
    message = _refusal(tmp_path, signer)
    assert "cannot be decrypted with the passphrase from the environment variable" in message
    assert "the passphrase is wrong" in message
    assert f"export the right passphrase in {PASSPHRASE_ENV}" in message
    assert "wrong horse" not in message


def test_a_valid_key_of_another_type_is_named(tmp_path: Path) -> None:
    pem = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    _write(tmp_path, pem)
    for signer in _signers(tmp_path).values():
        message = _refusal(tmp_path, signer)
        assert "holds an EC (secp256r1) key, not an RSA-2048 key" in message
        assert "not this CA's key file" in message and message.endswith(RESTORE)
        assert "not encrypted" not in message


def test_a_public_key_file_is_named(tmp_path: Path) -> None:
    public = rsa.generate_private_key(65537, 2048).public_key()
    _write(
        tmp_path,
        public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo),
    )
    message = _refusal(tmp_path, FileSigner(tmp_path))
    assert "holds a PEM public key, not a private key" in message


def test_binary_key_is_not_shown(tmp_path: Path) -> None:
    """A key saved as DER is not PEM: said so, and none of its bytes appear (base64 or otherwise)."""
    der = rsa.generate_private_key(65537, 2048).private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    _write(tmp_path, der)
    message = _refusal(tmp_path, FileSigner(tmp_path))
    assert "it is not a PEM key file" in message
    assert base64.b64encode(der)[:16].decode() not in message


# --- where the operator meets it ------------------------------------------------------------------------


@pytest.fixture
def applied(tmp_path: Path) -> Scratch:
    scratch = scratch_copy(tmp_path)
    scratch.apply()
    return scratch


def test_apply_says_the_key_file_is_damaged(applied: Scratch) -> None:
    key_file = applied.root / "keys" / "example-isp.pem"
    key_file.write_bytes(_cut(key_file.read_bytes()))
    before = sorted(p.name for p in applied.rsync.rglob("*"))
    result = rpkictl("apply", str(applied.repo), "--yes", "--now", later(30).isoformat(), "--simulate-time")
    assert result.returncode != 0, result.stdout + result.stderr
    assert f"{key_file}: the key file is damaged (it is cut short" in result.stderr
    assert RESTORE in result.stderr
    assert "cryptography.io" not in result.stdout + result.stderr
    assert sorted(p.name for p in applied.rsync.rglob("*")) == before
