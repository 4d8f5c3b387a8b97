"""CMS envelope, ROA and manifest eContent: encode, decode, and the RFC details validators check."""

from __future__ import annotations

import hashlib
import ipaddress
from datetime import timedelta

import pytest
from asn1crypto import cms as asn1_cms

from reconciler.resources import Resources
from reconciler.rpki import asn1, cert, cms, manifest, rfc3779, roa
from reconciler.signers.files import OneTimeKey
from tests.rpki.conftest import BASE, FIXTURES, NOW


def _net(text: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    return ipaddress.ip_network(text)


CONTENT = roa.RoaContent.of(
    64496,
    [
        roa.RoaPrefix(_net("2001:db8::/32"), 48),
        roa.RoaPrefix(_net("198.51.100.0/24"), 24),
        roa.RoaPrefix(_net("192.0.2.0/24"), 26),
    ],
)


def _sign(issuer: cert.Issuer, content_type: str, econtent: bytes, resources: Resources | None) -> bytes:
    key = OneTimeKey()
    ee = cert.build(
        issuer=issuer,
        subject_key=key.public,
        serial=99,
        not_before=NOW,
        not_after=NOW + timedelta(days=1),
        ip_resources=rfc3779.encode_ip(resources),
        as_resources=None if resources is not None else rfc3779.encode_asn(None),
        signed_object=BASE + "ca/x.roa",
    )
    return cms.build(content_type=content_type, econtent=econtent, ee_cert=ee, ee_key=key, signing_time=NOW)


def test_roa_econtent_round_trip() -> None:
    """Prefixes come back with their max lengths, in canonical order."""
    assert roa.decode(roa.encode(CONTENT)) == CONTENT
    assert [str(p.prefix) for p in CONTENT.prefixes] == ["192.0.2.0/24", "198.51.100.0/24", "2001:db8::/32"]


def test_roa_econtent_details() -> None:
    """RFC 9582: version omitted, IPv4 family first, maxLength only when it differs from the length."""
    parsed = asn1.RouteOriginAttestation.load(roa.encode(CONTENT))
    assert parsed.dump()[2] == 0x02  # first field is asID: no [0] version
    families = parsed["ipAddrBlocks"]
    assert [bytes(f["addressFamily"].native) for f in families] == [b"\x00\x01", b"\x00\x02"]
    v4 = families[0]["addresses"]
    assert [a["maxLength"].native for a in v4] == [26, None]


def test_roa_signed_object_round_trip(issuer: cert.Issuer) -> None:
    """The envelope verifies and gives back the eContent, its type and the EE certificate."""
    econtent = roa.encode(CONTENT)
    resources = Resources.of_prefixes(p.prefix for p in CONTENT.prefixes)
    der = _sign(issuer, roa.CONTENT_TYPE, econtent, resources)
    signed = cms.decode(der)
    assert signed.content_type == roa.CONTENT_TYPE
    assert signed.econtent == econtent
    assert signed.ee.resources.resources == resources
    assert signed.signing_time == NOW


def test_cms_profile(issuer: cert.Issuer) -> None:
    """RFC 6488: v3, SHA-256 without parameters, sid = SKI, exactly the three signed attributes."""
    der = _sign(issuer, roa.CONTENT_TYPE, roa.encode(CONTENT), Resources.of_prefixes([_net("192.0.2.0/24")]))
    sd = asn1_cms.ContentInfo.load(der)["content"]
    assert sd["version"].native == "v3"
    (digest_alg,) = sd["digest_algorithms"]
    assert digest_alg.dump() == bytes.fromhex("300b0609608648016503040201")
    (si,) = sd["signer_infos"]
    assert si["version"].native == "v3"
    assert si["sid"].name == "subject_key_identifier"
    attrs = {a["type"].native: a["values"] for a in si["signed_attrs"]}
    assert sorted(attrs) == ["content_type", "message_digest", "signing_time"]
    assert all(len(values) == 1 for values in attrs.values())
    assert attrs["signing_time"][0].name == "utc_time"
    encoded = [a.dump() for a in si["signed_attrs"]]
    assert encoded == sorted(encoded)  # DER: SET OF in ascending order of encodings
    assert not si["unsigned_attrs"]
    assert not sd["crls"]


def test_tampered_content_is_refused(issuer: cert.Issuer) -> None:
    """One flipped bit in the eContent breaks the message digest."""
    econtent = roa.encode(CONTENT)
    der = bytearray(
        _sign(issuer, roa.CONTENT_TYPE, econtent, Resources.of_prefixes(p.prefix for p in CONTENT.prefixes))
    )
    at = bytes(der).find(econtent)
    der[at + len(econtent) - 1] ^= 1
    with pytest.raises(cms.CmsError, match="message digest"):
        cms.decode(bytes(der))


def test_manifest_round_trip(issuer: cert.Issuer) -> None:
    files = (("b.roa", hashlib.sha256(b"b").digest()), ("a.crl", hashlib.sha256(b"a").digest()))
    content = manifest.ManifestContent(10**15, NOW, NOW + timedelta(days=1), files)
    signed = cms.decode(_sign(issuer, manifest.CONTENT_TYPE, manifest.encode(content), None))
    back = manifest.decode(signed.econtent)
    assert back.number == 10**15
    assert back.files == tuple(sorted(files))
    assert back.this_update == NOW
    assert signed.ee.resources.inherit_asn and signed.ee.resources.inherit_ip == {4, 6}


@pytest.mark.parametrize("name", ["two.dots.roa", "no-dot", "bad name.roa", "../up.roa"])
def test_manifest_refuses_bad_file_names(name: str) -> None:
    """RFC 9286 §4.2.2: [A-Za-z0-9._-] with exactly one dot."""
    content = manifest.ManifestContent(1, NOW, NOW, ((name, bytes(32)),))
    with pytest.raises(manifest.ManifestError):
        manifest.encode(content)


def test_decodes_real_objects() -> None:
    """Objects published by real CAs read back (BER eContent included)."""
    mft = cms.decode((FIXTURES / "rpki-client-regress" / "mft" / "ripe-ncc-ta.mft").read_bytes())
    assert manifest.decode(mft.econtent).files
    for path in sorted((FIXTURES / "rpki-client-regress" / "roa").glob("*.roa")):
        signed = cms.decode(path.read_bytes(), where=path.name)
        content = roa.decode(signed.econtent, where=path.name)
        assert content.prefixes
        ee_space = signed.ee.resources.resources
        assert ee_space.contains(Resources.of_prefixes(p.prefix for p in content.prefixes))


@pytest.mark.parametrize("name", ["maxlen-overflow.roa", "maxlen-underflow.roa", "prefix-len-overflow.roa"])
def test_refuses_broken_roas(name: str) -> None:
    """Broken ROAs from rpki-rs's test data are refused with a reason."""
    der = (FIXTURES / "rpki-rs-test-data" / "repository" / name).read_bytes()
    with pytest.raises(ValueError, match=r"maxLength|longer than"):
        roa.decode(cms.decode(der).econtent)
