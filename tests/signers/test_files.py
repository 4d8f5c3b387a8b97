"""File signer: keys stay private on disk and are found again by label."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding

from reconciler.signers import FileSigner, Signer, SignerError
from reconciler.signers.base import key_id


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
