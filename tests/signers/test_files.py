"""File signer: keys stay private on disk and are found again by label."""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from reconciler.desired.model import SignerConfig
from reconciler.signers import FileSigner, Signer, SignerError, open_signer
from reconciler.signers.base import key_id
from reconciler.signers.files import CHECKED_KEYS
from tests.helpers import missing_tool


def test_is_a_signer(tmp_path: Path) -> None:
    assert isinstance(FileSigner(tmp_path), Signer)


def test_create_find_and_sign(tmp_path: Path) -> None:
    """A created key is found by a fresh signer (as after a restart) and its signatures verify."""
    kid = FileSigner(tmp_path / "keys").create_key("online")
    again = FileSigner(tmp_path / "keys")
    assert again.find_key("online") == kid
    assert again.find_key("missing") is None
    public = again.public_key(kid)
    assert key_id(public) == kid and public.key_size == 2048
    signature = again.sign(kid, b"tbs")
    public.verify(signature, b"tbs", padding.PKCS1v15(), hashes.SHA256())


def test_files_are_private(tmp_path: Path) -> None:
    FileSigner(tmp_path / "keys").create_key("ta")
    assert stat.S_IMODE((tmp_path / "keys").stat().st_mode) == 0o700
    assert stat.S_IMODE((tmp_path / "keys" / "ta.pem").stat().st_mode) == 0o600


def test_refuses_a_key_others_can_read(tmp_path: Path) -> None:
    FileSigner(tmp_path).create_key("ta")
    (tmp_path / "ta.pem").chmod(0o644)
    with pytest.raises(SignerError, match="chmod 600"):
        FileSigner(tmp_path).find_key("ta")


def test_refuses_to_overwrite(tmp_path: Path) -> None:
    FileSigner(tmp_path).create_key("ta")
    with pytest.raises(SignerError, match="already exists"):
        FileSigner(tmp_path).create_key("ta")


def test_unknown_key_id(tmp_path: Path) -> None:
    with pytest.raises(SignerError, match="no key"):
        FileSigner(tmp_path).sign(b"\x00" * 20, b"x")


# --- the consistency check, once per key file ------------------------------------------------------------


def _full_checks(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """Record, for each key file loaded from now on, whether OpenSSL checked its consistency in full."""
    calls: list[bool] = []
    load = serialization.load_pem_private_key

    def recording(pem: bytes, password: bytes | None, **options: bool) -> object:
        calls.append(not options["unsafe_skip_rsa_key_validation"])
        return load(pem, password, **options)

    monkeypatch.setattr(serialization, "load_pem_private_key", recording)
    return calls


def _inconsistent_copy(path: Path) -> None:
    """Rewrite the key file with a wrong private exponent: same public key (same key identifier), a key
    whose signatures no one could verify -- what a damaged or tampered file looks like."""
    key = serialization.load_pem_private_key(path.read_bytes(), None)
    assert isinstance(key, rsa.RSAPrivateKey)
    numbers = key.private_numbers()
    wrong = rsa.RSAPrivateNumbers(
        numbers.p, numbers.q, numbers.d + 2, numbers.dmp1, numbers.dmq1, numbers.iqmp, numbers.public_numbers
    ).private_key(unsafe_skip_rsa_key_validation=True)
    pem = wrong.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    path.write_bytes(pem)


def test_a_key_file_is_checked_in_full_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The first signature with a key file's bytes checks them in full; a later run trusts that verdict
    (the check costs as much as the rest of a one-ROA change) and its signatures still verify."""
    kid = FileSigner(tmp_path).create_key("ca")
    checks = _full_checks(monkeypatch)
    first = FileSigner(tmp_path)
    first.find_key("ca")
    first.sign(kid, b"one")
    assert checks == [False, True]  # looked up unchecked, checked before signing
    later = FileSigner(tmp_path)
    later.find_key("ca")
    signature = later.sign(kid, b"two")
    assert checks == [False, True, False, False]
    later.public_key(kid).verify(signature, b"two", padding.PKCS1v15(), hashes.SHA256())
    assert stat.S_IMODE((tmp_path / CHECKED_KEYS).stat().st_mode) == 0o600


def test_altered_key_bytes_are_checked_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A key file whose bytes changed after its check -- here to a key with the same public half and a
    wrong private exponent -- is checked again and refused, not signed with."""
    kid = FileSigner(tmp_path).create_key("ca")
    signer = FileSigner(tmp_path)
    assert signer.find_key("ca") == kid
    signer.sign(kid, b"checked")
    _inconsistent_copy(tmp_path / "ca.pem")
    checks = _full_checks(monkeypatch)
    damaged = FileSigner(tmp_path)
    assert damaged.find_key("ca") == kid  # the identifier alone does not tell
    with pytest.raises(SignerError, match="the key file is damaged"):
        damaged.sign(kid, b"x")
    assert checks == [False, True, False]  # the refusal reads it once more, unchecked, to say what is wrong


@pytest.mark.parametrize("header", ["# rpki-reconciler 0.0.0-other: checked\n", "", "not a header\n"])
def test_verdicts_of_another_release_are_not_trusted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, header: str
) -> None:
    """Verdicts written by another release (or a damaged list) are ignored, and the list is started anew."""
    kid = FileSigner(tmp_path).create_key("ca")
    digest = hashlib.sha256((tmp_path / "ca.pem").read_bytes()).hexdigest()
    (tmp_path / CHECKED_KEYS).write_text(header + digest + "\n")
    checks = _full_checks(monkeypatch)
    signer = FileSigner(tmp_path)
    signer.find_key("ca")
    signer.sign(kid, b"x")
    assert checks == [False, True]
    lines = (tmp_path / CHECKED_KEYS).read_text().splitlines()
    assert lines[1:] == [digest] and lines[0] != header.strip()


# --- passphrase-encrypted key files ---------------------------------------------------------------------

PASSPHRASE = b"correct horse battery staple"
PASSPHRASE_ENV = "RPKI_TEST_KEY_PASSPHRASE"


def _encrypted(directory: Path, passphrase: bytes = PASSPHRASE) -> FileSigner:
    return FileSigner(directory, passphrase, passphrase_env=PASSPHRASE_ENV)


def _refused(call: Callable[[], object], pattern: str) -> str:
    """The SignerError message of ``call``; it matches ``pattern`` and never contains a passphrase."""
    with pytest.raises(SignerError, match=pattern) as info:
        call()
    message = str(info.value)
    assert PASSPHRASE.decode() not in message and "wrong horse" not in message
    return message


def test_encrypted_key_round_trip(tmp_path: Path) -> None:
    kid = _encrypted(tmp_path / "keys").create_key("ta")
    pem = (tmp_path / "keys" / "ta.pem").read_bytes()
    assert pem.startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----")
    assert stat.S_IMODE((tmp_path / "keys" / "ta.pem").stat().st_mode) == 0o600
    assert serialization.load_pem_private_key(pem, password=PASSPHRASE) is not None
    again = _encrypted(tmp_path / "keys")  # as after a restart
    assert again.find_key("ta") == kid
    public = again.public_key(kid)
    assert key_id(public) == kid
    public.verify(again.sign(kid, b"tbs"), b"tbs", padding.PKCS1v15(), hashes.SHA256())


def test_encrypted_key_without_a_passphrase(tmp_path: Path) -> None:
    _encrypted(tmp_path).create_key("ta")
    message = _refused(lambda: FileSigner(tmp_path).find_key("ta"), "ta.pem is encrypted")
    assert "passphrase_env" in message and "export" in message


def test_wrong_passphrase_names_the_variable_not_the_passphrase(tmp_path: Path) -> None:
    _encrypted(tmp_path).create_key("ta")
    signer = _encrypted(tmp_path, b"wrong horse")
    message = _refused(lambda: signer.find_key("ta"), "ta.pem cannot be decrypted")
    assert f"the environment variable {PASSPHRASE_ENV}" in message
    assert f"export the right passphrase in {PASSPHRASE_ENV}" in message
    assert "wrong horse" not in repr(signer) and PASSPHRASE.decode() not in repr(_encrypted(tmp_path))


def test_unencrypted_key_with_a_passphrase_is_refused(tmp_path: Path) -> None:
    """A plaintext key in a directory meant to be encrypted is refused, with a command that encrypts it."""
    kid = FileSigner(tmp_path).create_key("ta")
    message = _refused(lambda: _encrypted(tmp_path).find_key("ta"), "ta.pem is not encrypted")
    assert "openssl pkcs8 -topk8 -v2 aes-256-cbc" in message and f"env:{PASSPHRASE_ENV}" in message
    if shutil.which("openssl") is None:
        missing_tool(
            "openssl is not installed (apt-get install openssl), so the suggested command cannot be tried",
            "the key-encryption tests",
        )
    command = message.split("encrypt it in place with: ", 1)[1].split(" -- or ", 1)[0]
    env = {"PATH": os.environ.get("PATH", ""), PASSPHRASE_ENV: PASSPHRASE.decode()}
    subprocess.run(["sh", "-c", command], check=True, env=env, capture_output=True)
    assert (tmp_path / "ta.pem").read_bytes().startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----")
    assert _encrypted(tmp_path).find_key("ta") == kid  # the fix works, and left the file private


def test_empty_passphrase_is_refused(tmp_path: Path) -> None:
    _refused(lambda: FileSigner(tmp_path, b"", passphrase_env=PASSPHRASE_ENV), f"empty.*{PASSPHRASE_ENV}")


def _config(directory: Path, passphrase_env: str | None = PASSPHRASE_ENV) -> SignerConfig:
    return SignerConfig(name="default", type="file", directory=directory, passphrase_env=passphrase_env)


def test_open_signer_reads_the_passphrase_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(PASSPHRASE_ENV, PASSPHRASE.decode())
    kid = open_signer(_config(tmp_path)).create_key("ta")
    assert (tmp_path / "ta.pem").read_bytes().startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----")
    assert _encrypted(tmp_path).find_key("ta") == kid
    assert open_signer(_config(tmp_path)).find_key("ta") == kid
    assert not (tmp_path / "plain").exists()
    open_signer(_config(tmp_path / "plain", None)).create_key("ta")
    assert (tmp_path / "plain" / "ta.pem").read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")


@pytest.mark.parametrize("value", [None, ""])
def test_open_signer_without_the_passphrase(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, value: str | None
) -> None:
    if value is None:
        monkeypatch.delenv(PASSPHRASE_ENV, raising=False)
    else:
        monkeypatch.setenv(PASSPHRASE_ENV, value)
    message = _refused(
        lambda: open_signer(_config(tmp_path)),
        f"signer 'default': the environment variable {PASSPHRASE_ENV} .* is (not set|empty)",
    )
    assert f"export {PASSPHRASE_ENV}=<the key passphrase>" in message


# --- destroy_key ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("passphrase", [None, PASSPHRASE])
def test_destroy_key(tmp_path: Path, passphrase: bytes | None) -> None:
    signer = FileSigner(tmp_path, passphrase)
    old = signer.create_key("ta")
    new = signer.create_key("ta-2")
    signer.destroy_key(old)
    assert not (tmp_path / "ta.pem").exists()
    assert signer.find_key("ta") is None and FileSigner(tmp_path, passphrase).find_key("ta") is None
    with pytest.raises(SignerError, match="no key"):
        signer.sign(old, b"x")
    with pytest.raises(SignerError, match=f"no key with identifier {old.hex()}"):
        signer.destroy_key(old)
    assert signer.find_key("ta-2") == new  # the other key is untouched
    signer.public_key(new).verify(signer.sign(new, b"x"), b"x", padding.PKCS1v15(), hashes.SHA256())


def test_destroy_key_known_only_by_its_identifier(tmp_path: Path) -> None:
    """A fresh signer (a later run) destroys a retired key it has not looked up by label."""
    kid = _encrypted(tmp_path).create_key("ta")
    keep = _encrypted(tmp_path).create_key("other")
    signer = _encrypted(tmp_path)
    signer.destroy_key(kid)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["other.pem"]
    assert signer.find_key("ta") is None and signer.find_key("other") == keep


def test_destroy_unknown_key(tmp_path: Path) -> None:
    FileSigner(tmp_path).create_key("ta")
    with pytest.raises(SignerError, match=f"no key with identifier {'00' * 20} in {tmp_path}"):
        FileSigner(tmp_path).destroy_key(b"\x00" * 20)
    assert (tmp_path / "ta.pem").exists()
    with pytest.raises(SignerError, match="no key"):
        FileSigner(tmp_path / "missing").destroy_key(b"\x00" * 20)
