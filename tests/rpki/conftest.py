"""Shared material for the object tests: a real software key pair standing in for a CA."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from reconciler.rpki import cert
from reconciler.signers.adapter import SignerKey
from reconciler.signers.files import FileSigner

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
BASE = "rsync://rpki.test/repo/"
FIXTURES = Path(__file__).parent.parent / "fixtures" / "real-world"


@pytest.fixture(scope="session")
def signer(tmp_path_factory: pytest.TempPathFactory) -> FileSigner:
    return FileSigner(tmp_path_factory.mktemp("keys"))


@pytest.fixture(scope="session")
def ca_key(signer: FileSigner) -> bytes:
    return signer.create_key("ca")


@pytest.fixture(scope="session")
def issuer(signer: FileSigner, ca_key: bytes) -> cert.Issuer:
    """The CA ``ca`` as the issuer of objects in its own directory."""
    return cert.Issuer(SignerKey(signer, ca_key), ca_key, BASE + "ta/ca.cer", BASE + "ca/ca.crl")


def validity() -> tuple[datetime, datetime]:
    return NOW, NOW + timedelta(days=1)
