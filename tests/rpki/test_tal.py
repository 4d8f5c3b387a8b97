"""Trust anchor locators (RFC 8630)."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from reconciler.rpki import tal
from reconciler.signers.files import FileSigner
from tests.rpki.conftest import FIXTURES


def test_round_trip(signer: FileSigner, ca_key: bytes) -> None:
    public = signer.public_key(ca_key)
    text = tal.encode(("rsync://rpki.test/repo/ta.cer",), public, comments=("test trust anchor",))
    assert text.startswith("# test trust anchor\nrsync://rpki.test/repo/ta.cer\n\n")
    back = tal.decode(text)
    assert back.uris == ("rsync://rpki.test/repo/ta.cer",)
    assert back.public_key_der == public.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    assert all(len(line) <= 64 for line in text.splitlines()[3:])


def test_reads_real_tals() -> None:
    for path in sorted((FIXTURES / "rpki-client-regress" / "tal").glob("*.tal")):
        assert tal.decode(path.read_text()).uris


@pytest.mark.parametrize(
    "text", ["rsync://x/ta.cer\nMIIB\n", "\n\nMIIB\n", "rsync://x/ta.cer\n\nnot base64!\n"]
)
def test_refuses_malformed(text: str) -> None:
    with pytest.raises(tal.TalError):
        tal.decode(text)
