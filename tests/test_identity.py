"""Our BPKI identities: one key per owner in the signer, its certificate kept beside the publication and
made again over the same key whenever the file is lost, broken, for another key or expired."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from reconciler import identity
from reconciler.protocol import bpki
from reconciler.protocol.errors import ProtocolError
from reconciler.signers import FileSigner
from reconciler.signers.base import key_id

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)


def spki(public: rsa.RSAPublicKey) -> bytes:
    return public.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)


@pytest.fixture
def signer(tmp_path: Path) -> FileSigner:
    return FileSigner(tmp_path / "keys")


@pytest.fixture
def store(tmp_path: Path) -> Path:
    return tmp_path / "published" / identity.STORE


def test_ensure_creates_the_key_and_a_self_signed_certificate(signer: FileSigner, store: Path) -> None:
    assert identity.load("online", store) is None
    key, made = identity.ensure(signer, "online", store, NOW)
    assert signer.find_key(bpki.identity_label("online")) == key
    assert made.ski == key == key_id(signer.public_key(key))
    assert made.self_signed and made.not_before <= NOW < made.not_after
    assert (store / "online.cer").read_bytes() == made.der
    assert identity.load("online", store) == made


def test_ensure_hands_out_the_stored_certificate_again(signer: FileSigner, store: Path) -> None:
    _, first = identity.ensure(signer, "online", store, NOW)
    _, again = identity.ensure(signer, "online", store, NOW + timedelta(days=30))
    assert again.der == first.der  # the same bytes, though a new one would have other dates
    assert len(list((signer.directory).glob("*.pem"))) == 1


def test_owners_have_separate_keys(signer: FileSigner, store: Path) -> None:
    key_ca, _ = identity.ensure(signer, "online", store, NOW)
    key_repo, repo_cert = identity.ensure(signer, identity.REPOSITORY, store, NOW)
    assert key_ca != key_repo
    assert identity.load(identity.REPOSITORY, store) == repo_cert


def test_a_lost_certificate_is_made_again_over_the_same_key(signer: FileSigner, store: Path) -> None:
    key, first = identity.ensure(signer, "online", store, NOW)
    (store / "online.cer").unlink()
    later = NOW + timedelta(days=1)
    same_key, second = identity.ensure(signer, "online", store, later)
    assert same_key == key
    assert second.der != first.der  # a new certificate ...
    assert second.ski == first.ski  # ... over the same key: peers that check by key accept it
    assert spki(second.public_key) == spki(first.public_key)
    assert second.not_before == later - bpki.CLOCK_SKEW


def test_a_broken_certificate_file_is_made_again(signer: FileSigner, store: Path) -> None:
    key, _ = identity.ensure(signer, "online", store, NOW)
    (store / "online.cer").write_bytes(b"garbage")
    with pytest.raises(ProtocolError, match=r"online\.cer"):
        identity.load("online", store)  # a read-only caller is told, not given a certificate
    _, made = identity.ensure(signer, "online", store, NOW)
    assert made.ski == key and identity.load("online", store) == made


def test_a_certificate_for_another_key_is_replaced(signer: FileSigner, store: Path) -> None:
    key, _ = identity.ensure(signer, "online", store, NOW)
    _, other = identity.ensure(signer, "isp", store, NOW)
    (store / "online.cer").write_bytes(other.der)  # e.g. a copy from another machine
    _, made = identity.ensure(signer, "online", store, NOW)
    assert made.ski == key != other.ski


def test_an_expired_certificate_is_made_again(signer: FileSigner, store: Path) -> None:
    _, first = identity.ensure(signer, "online", store, NOW)
    after = first.not_after + timedelta(seconds=1)
    _, renewed = identity.ensure(signer, "online", store, after)
    assert renewed.ski == first.ski and renewed.not_after > after


def test_owner_must_be_a_ca_name_or_the_repository(store: Path) -> None:
    with pytest.raises(ValueError, match="not a CA name"):
        identity.certificate_path("../etc/passwd", store)


def test_a_link_planted_as_the_store_lock_is_not_followed(tmp_path: Path) -> None:
    """The store's lock is never a way to create or lock a file elsewhere."""
    elsewhere = tmp_path / "elsewhere"
    store = tmp_path / "bpki"
    store.mkdir()
    (store / ".lock").symlink_to(elsewhere)
    signer = FileSigner(tmp_path / "keys")
    with pytest.raises(OSError):
        identity.ensure(signer, "repository", store, NOW)
    assert not elsewhere.exists()
