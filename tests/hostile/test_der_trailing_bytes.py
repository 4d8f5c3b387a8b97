"""Every DER decoder refuses data after the structure it reads -- after the outer value, after the last
field of a SEQUENCE, inside an EXPLICIT tag, after the value an OCTET STRING wraps (a signed object's
eContent, an extension's extnValue) -- with its own error class and a message naming the rule, as
rpki-client does. Objects with such data are otherwise well-formed and correctly signed, so nothing but
this rule stops them from being read as published."""

from __future__ import annotations

import base64
import ipaddress
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from reconciler.offline import ceremony
from reconciler.offline.request import CeremonyError, SigningRequest
from reconciler.published import read
from reconciler.published.reader import PublishedState, Unreadable
from reconciler.resources import AsnSet, Resources
from reconciler.rpki import cert, cms, crl, manifest, rfc3779, roa, tal
from reconciler.signers.adapter import SignerKey
from reconciler.signers.files import FileSigner, OneTimeKey
from tests.helpers import T0, scratch_copy
from tests.hostile import dertree

BASE = "rsync://rpki.test/repo/"
TRAILING = r"trailing data"
#: What is appended: one zero octet, a whole NULL value, and a long run.
EXTRAS = [
    pytest.param(b"\x00", id="zero"),
    pytest.param(b"\x05\x00", id="null"),
    pytest.param(b"\x30\x00" * 40, id="run"),
]


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    scratch = scratch_copy(tmp_path_factory.mktemp("trailing"))
    assert scratch.apply(T0) is not None
    return read(scratch.rsync).files


@pytest.fixture(scope="module")
def issuer(tmp_path_factory: pytest.TempPathFactory) -> cert.Issuer:
    signer = FileSigner(tmp_path_factory.mktemp("keys"))
    key = signer.create_key("ca")
    return cert.Issuer(SignerKey(signer, key), key, BASE + "ta/ca.cer", BASE + "ca/ca.crl")


def _one(files: dict[str, bytes], suffix: str, part: str = "") -> tuple[str, bytes]:
    path = sorted(p for p in files if p.endswith(suffix) and part in p)[0]
    return path, files[path]


def _roa_content() -> roa.RoaContent:
    return roa.RoaContent.of(64496, [roa.RoaPrefix(ipaddress.ip_network("192.0.2.0/24"), 24)])


def _signed(issuer: cert.Issuer, content_type: str, econtent: bytes, ip: bytes | None) -> bytes:
    """A signed object whose signature, digest and EE certificate are all correct for ``econtent``."""
    key = OneTimeKey()
    ee = cert.build(
        issuer=issuer,
        subject_key=key.public,
        serial=7,
        not_before=T0,
        not_after=T0 + timedelta(days=1),
        ip_resources=ip,
        as_resources=None,
        signed_object=BASE + "ca/x.roa",
    )
    return cms.build(content_type=content_type, econtent=econtent, ee_cert=ee, ee_key=key, signing_time=T0)


@pytest.mark.parametrize("extra", EXTRAS)
@pytest.mark.parametrize(
    ("suffix", "decoder", "error"),
    [
        (".cer", cert.decode, cert.CertificateError),
        (".crl", crl.decode, crl.CrlError),
        (".roa", cms.decode, cms.CmsError),
        (".mft", cms.decode, cms.CmsError),
    ],
)
def test_bytes_after_a_published_object(
    tree: dict[str, bytes],
    suffix: str,
    decoder: Callable[[bytes], object],
    error: type[Exception],
    extra: bytes,
) -> None:
    path, data = _one(tree, suffix)
    decoder(data)  # the object as published reads
    with pytest.raises(error, match=TRAILING):
        decoder(data + extra)
    readers = {".cer": "certificate", ".crl": "crl", ".roa": "roa", ".mft": "manifest"}
    found = getattr(PublishedState(files={path: data + extra}), readers[suffix])(path)
    assert isinstance(found, Unreadable) and "trailing data" in found.reason


@pytest.mark.parametrize("extra", EXTRAS)
def test_bytes_after_the_econtent_of_a_correctly_signed_roa(issuer: cert.Issuer, extra: bytes) -> None:
    econtent = roa.encode(_roa_content()) + extra
    ip = rfc3779.encode_ip(Resources.of_prefixes([ipaddress.ip_network("192.0.2.0/24")]))
    signed = cms.decode(_signed(issuer, roa.CONTENT_TYPE, econtent, ip))  # the envelope is sound
    with pytest.raises(roa.RoaError, match=r"RFC 6488 §3.*trailing data"):
        roa.decode(signed.econtent)


@pytest.mark.parametrize("extra", EXTRAS)
def test_bytes_after_the_econtent_of_a_correctly_signed_manifest(issuer: cert.Issuer, extra: bytes) -> None:
    content = manifest.ManifestContent(5, T0, T0 + timedelta(days=1), (("a.roa", bytes(32)),))
    signed = cms.decode(_signed(issuer, manifest.CONTENT_TYPE, manifest.encode(content) + extra, None))
    with pytest.raises(manifest.ManifestError, match=r"RFC 6488 §3.*trailing data"):
        manifest.decode(signed.econtent)


@pytest.mark.parametrize("extra", EXTRAS)
@pytest.mark.parametrize("extension", ["ip", "as"])
def test_bytes_after_an_rfc3779_extension_value_in_a_signed_certificate(
    issuer: cert.Issuer, extension: str, extra: bytes
) -> None:
    ip = rfc3779.encode_ip(Resources.of_prefixes([ipaddress.ip_network("192.0.2.0/24")]))
    asn = rfc3779.encode_asn(AsnSet.of([(64496, 64496)]))
    assert ip is not None and asn is not None
    der = cert.build(
        issuer=issuer,
        subject_key=OneTimeKey().public,
        serial=8,
        not_before=T0,
        not_after=T0 + timedelta(days=1),
        ip_resources=ip + extra if extension == "ip" else ip,
        as_resources=asn + extra if extension == "as" else asn,
        signed_object=BASE + "ca/x.roa",
    )
    with pytest.raises(cert.CertificateError, match=r"RFC 6487 §4\.8\.1[01].*trailing data"):
        cert.decode(der)
    with pytest.raises(rfc3779.ResourceEncodingError, match=TRAILING):
        rfc3779.decode(ip + extra, None) if extension == "ip" else rfc3779.decode(None, asn + extra)


def test_an_element_after_the_last_field_of_a_roa(issuer: cert.Issuer) -> None:
    econtent = dertree.parse(roa.encode(_roa_content()))
    econtent.children.append(dertree.Tlv(0x05))  # a NULL after ipAddrBlocks
    with pytest.raises(roa.RoaError, match=r"trailing data: RouteOriginAttestation has an element after"):
        roa.decode(econtent.encode())


def test_data_inside_an_explicit_tag_of_an_as_extension() -> None:
    value = rfc3779.encode_asn(AsnSet.of([(64496, 64497)]))
    assert value is not None
    edited = dertree.parse(value)
    edited.at(0).children.append(dertree.Tlv(0x05))  # inside asnum [0] EXPLICIT, after the choice
    with pytest.raises(rfc3779.ResourceEncodingError, match=r"trailing data inside the EXPLICIT tag"):
        rfc3779.decode(None, edited.encode())


#: Places inside a signed object's envelope where a NULL is planted: the signature, the message digest
#: and the EE certificate all stay correct, for none of them covers these bytes.
ENVELOPE_PLACES = {
    "after the last field of SignedData": (1, 0),
    "after the last field of SignerInfo": (1, 0, 4, 0),
    "inside ContentInfo's [0] EXPLICIT, after SignedData": (1,),
    "inside the eContent's [0] EXPLICIT, after the OCTET STRING": (1, 0, 2, 1),
    "after the last field of EncapsulatedContentInfo": (1, 0, 2),
}


@pytest.mark.parametrize("place", sorted(ENVELOPE_PLACES))
@pytest.mark.parametrize("suffix", [".roa", ".mft"])
def test_data_planted_inside_a_signed_object_envelope(
    tree: dict[str, bytes], suffix: str, place: str
) -> None:
    path, data = _one(tree, suffix)
    edited = dertree.parse(data)
    edited.at(*ENVELOPE_PLACES[place]).children.append(dertree.Tlv(0x05))
    with pytest.raises(cms.CmsError, match=r"RFC 6488 §3.*trailing data"):
        cms.decode(edited.encode())
    state = PublishedState(files={path: edited.encode()})
    found = state.roa(path) if suffix == ".roa" else state.manifest(path)
    assert isinstance(found, Unreadable)


def test_data_after_a_certificate_extension_value(tree: dict[str, bytes]) -> None:
    """The subject key identifier's extnValue wraps one OCTET STRING; a byte after it is refused."""
    _, data = _one(tree, ".cer", "online/")
    edited = dertree.parse(data)
    extensions = edited.at(0, 7, 0)  # tbsCertificate, extensions [3], the SEQUENCE OF Extension
    ski = next(e for e in extensions.children if e.at(0).contents == bytes.fromhex("551d0e"))
    ski.at(1).contents += b"\x00"
    with pytest.raises(cert.CertificateError, match=r"not a readable certificate"):
        cert.decode(edited.encode())


def test_bytes_after_a_tal_key() -> None:
    spki = base64.b64encode(_spki() + b"\x00").decode()
    with pytest.raises(tal.TalError, match=r"RFC 8630 §2\.2.*trailing data"):
        tal.decode(f"rsync://rpki.test/ta.cer\n\n{spki}\n")


def _spki() -> bytes:
    return OneTimeKey().public.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)


def test_a_signing_request_with_bytes_after_its_resources_is_refused_before_signing(tmp_path: Path) -> None:
    ip = rfc3779.encode_ip(Resources.of_prefixes([ipaddress.ip_network("192.0.2.0/24")]))
    assert ip is not None
    request = SigningRequest.model_validate(
        {
            "request_id": "r1",
            "created_at": T0,
            "expires_at": T0 + timedelta(days=1),
            "trust_anchor": "ta",
            "key_label": "ta",
            "key_id": None,
            "rsync_base": BASE,
            "directory": "ta/",
            "desired_digest": "0" * 64,
            "git_commit": None,
            "certificates": [
                {
                    "path": "ta/child.cer",
                    "subject": "child",
                    "self_signed": False,
                    "subject_key": base64.b64encode(_spki()).decode(),
                    "resources": "192.0.2.0/24",
                    "ip_resources": base64.b64encode(ip + b"\x00").decode(),
                    "as_resources": None,
                    "repository": BASE + "child/",
                    "manifest": BASE + "child/x.mft",
                    "validity_seconds": 86400,
                    "why": "test",
                }
            ],
            "point": {
                "previous_manifest_number": 1,
                "previous_crl_number": 1,
                "revoked": [],
                "keep": {},
                "validity_seconds": 86400,
            },
            "summary": [],
        }
    )
    with pytest.raises(CeremonyError, match=r"the request is damaged: .*trailing data"):
        ceremony.check_request(request, T0)
