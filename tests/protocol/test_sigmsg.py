"""The CMS wrapper of RFC 6492 / RFC 8181 messages: every real message verifies against its sender's
identity at a time inside its validity, every kind of forgery or damage is refused with its reason, and
what we sign verifies here and in OpenSSL.

Signing times and key identifiers below were read with ``openssl cms -cmsout -print`` (OpenSSL 3.0).
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from asn1crypto import cms
from asn1crypto import crl as asn1_crl
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from reconciler.protocol import xmlutil
from reconciler.protocol.bpki import IdentityCertificate, create_identity, identity_label, load_identity
from reconciler.protocol.errors import CmsError, ProtocolError
from reconciler.protocol.sigmsg import CT_XML, MAX_CMS_BYTES, Verified, econtent, sign, verify
from reconciler.rpki.der import sequence
from reconciler.signers.adapter import SignerKey
from reconciler.signers.base import Signer
from reconciler.signers.files import FileSigner
from tests.signers.test_pkcs11 import HsmToken, hsm_token_fixture, softhsm_fixture  # noqa: F401

REAL = Path(__file__).parent.parent / "fixtures" / "real-world"
PROTOCOLS = REAL / "protocols"
NOW = datetime(2026, 12, 7, 12, 0, 0, tzinfo=UTC)
XML = b'<message xmlns="http://www.apnic.net/specs/rescerts/up-down/" version="1" type="list"/>'


def _utc(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)


def _from_file(name: str) -> Callable[[], IdentityCertificate]:
    return lambda: load_identity((REAL / name).read_bytes(), name)


def _from_xml(name: str) -> Callable[[], IdentityCertificate]:
    def load() -> IdentityCertificate:
        root = xmlutil.parse((PROTOCOLS / name).read_bytes(), name)
        text = next(
            e.text
            for e in root.iter()
            if isinstance(e.tag, str) and xmlutil.split_tag(e.tag)[1].endswith("_bpki_ta")
        )
        return load_identity(xmlutil.b64decode(text, name), name)

    return load


AFRINIC = _from_file("rpki-rs-test-data/ca/id_afrinic.cer")
APNIC = _from_xml("rpki-rs/rfc8183/apnic-parent-response.xml")
# rpkid's test exchange: Alice's resource identity is in its parent_response (offer), Carol's in her
# child_request; both also exist as plain files.
ALICE = _from_xml("rpki-rs/rfc8183/rpkid-parent-response-offer.xml")
ALICE_KRILL = _from_xml("krill/remote/rpkid-parent-response-offer.xml")
CAROL = _from_file("rpki-rs-test-data/ca/sigmsg/cms_ta.cer")
CAROL_KRILL = _from_file("protocols/krill/remote/cms_ta.cer")
APNIC_2019 = _from_file("protocols/krill/remote/apnic-id.der")
RIPE_NCC = _from_file("protocols/krill/remote/ncc-id.der")

#: message, its sender's identity, signing time and EE key identifier (from openssl).
REAL_MESSAGES = [
    (
        "rpki-rs/rfc6492/apnic-response.der",
        APNIC,
        "2022-09-13 16:46:52",
        "18ac8248a72b5b844eefdbf26deda5db71ccecce",
    ),
    ("rpki-rs/rfc6492/issue.der", ALICE, "2011-07-01 04:09:02", "e5da600ccd2fe20f4608765b6aae4a347a4d686f"),
    ("rpki-rs/rfc6492/list.der", ALICE, "2011-07-01 04:09:01", "e5da600ccd2fe20f4608765b6aae4a347a4d686f"),
    ("rpki-rs/sigmsg/pdu_200.der", CAROL, "2011-07-01 04:09:05", "c849b2ea24a6909c8667af29175412d8bb1d0039"),
    (
        "krill/remote/apnic-list-response.der",
        APNIC_2019,
        "2019-07-26 14:24:17",
        "edf7dd922cb30546cbf05faa5d93f5499171ee00",
    ),
    (
        "krill/remote/ncc-response.ber",
        RIPE_NCC,
        "2019-10-03 10:58:58",
        "3ff1689e65fed7a107af92397534b1bed25d7f08",
    ),
    (
        "krill/remote/pdu_200.der",
        CAROL_KRILL,
        "2011-07-01 04:09:05",
        "c849b2ea24a6909c8667af29175412d8bb1d0039",
    ),
    (
        "krill/remote/rpkid-rfc6492-issue.der",
        ALICE_KRILL,
        "2011-07-01 04:09:02",
        "e5da600ccd2fe20f4608765b6aae4a347a4d686f",
    ),
    (
        "krill/remote/rpkid-rfc6492-list.der",
        ALICE_KRILL,
        "2011-07-01 04:09:01",
        "e5da600ccd2fe20f4608765b6aae4a347a4d686f",
    ),
]

#: Messages whose sender's identity is in none of the fixtures (rpkid's "Alice BPKI Server Trust Anchor",
#: key bd5c…; APNIC's testbed, key 88c5…): each is refused, naming the key that did sign it, against
#: the identity nearest to hand.
NO_IDENTITY = [
    (
        "rpki-rs/rfc6492/issue-response.der",
        ALICE,
        "bd5c103ffcb88e775cff7feb35b8a1f0e5d3ec4d",
        "2011-07-01 04:09:02",
    ),
    (
        "krill/remote/rpkid-rfc6492-issue_response.der",
        ALICE,
        "bd5c103ffcb88e775cff7feb35b8a1f0e5d3ec4d",
        "2011-07-01 04:09:02",
    ),
    (
        "krill/remote/rpkid-rfc6492-list_response.der",
        ALICE,
        "bd5c103ffcb88e775cff7feb35b8a1f0e5d3ec4d",
        "2011-07-01 04:09:01",
    ),
    (
        "rpki-rs/rfc6492/apnic-testbed-response.der",
        APNIC,
        "88c59a0b07c8dc9d9cae04612a3ddb5e8e391fe4",
        "2022-09-13 07:14:20",
    ),
]


def _openssl_content(path: Path) -> bytes:
    return subprocess.run(
        ["openssl", "cms", "-verify", "-inform", "DER", "-in", str(path), "-noverify", "-nosigs", "-binary"],
        check=True,
        capture_output=True,
    ).stdout


@pytest.mark.parametrize(
    ("name", "peer", "signed", "ee_ski"), REAL_MESSAGES, ids=[m[0] for m in REAL_MESSAGES]
)
def test_real_messages_verify_against_their_sender(
    name: str, peer: Callable[[], IdentityCertificate], signed: str, ee_ski: str
) -> None:
    path = PROTOCOLS / name
    at = _utc(signed)
    result = verify(path.read_bytes(), peer(), at, name)
    assert result.signing_time == at
    assert result.ee_ski.hex() == ee_ski
    assert result.xml == _openssl_content(path) == econtent(path.read_bytes(), name)
    assert b"http://www.apnic.net/specs/rescerts/up-down/" in result.xml


@pytest.mark.parametrize(
    ("name", "peer", "signed", "ee_ski"), REAL_MESSAGES, ids=[m[0] for m in REAL_MESSAGES]
)
def test_real_messages_tampered_are_refused(
    name: str, peer: Callable[[], IdentityCertificate], signed: str, ee_ski: str
) -> None:
    der = bytearray((PROTOCOLS / name).read_bytes())
    at = der.index(b"up-down")
    der[at] ^= 0x20  # "Up-down": one letter of the XML changed
    with pytest.raises(CmsError, match="message digest does not match the content"):
        verify(bytes(der), peer(), _utc(signed), name)


def test_real_messages_are_refused_once_expired() -> None:
    der = (PROTOCOLS / "rpki-rs/rfc6492/list.der").read_bytes()
    with pytest.raises(
        CmsError, match=r"the EE certificate expired at 2012-06-30T04:07:47Z, and now is 2026"
    ):
        verify(der, ALICE(), NOW, "list.der")
    assert verify(der, ALICE(), NOW, "list.der", strict_time=False).signing_time == _utc(
        "2011-07-01 04:09:01"
    )


def test_afrinic_expired_crl_refused_strict_accepted_relaxed() -> None:
    der = (PROTOCOLS / "rpki-rs/rfc6492/afrinic-response.der").read_bytes()
    at = _utc("2022-09-26 12:30:11")
    with pytest.raises(
        CmsError,
        match=r"^afrinic: the CRL's nextUpdate 2021-03-31T07:46:30Z is before now \(2022-09-26T12:30:11Z\)",
    ):
        verify(der, AFRINIC(), at, "afrinic")
    result = verify(der, AFRINIC(), at, "afrinic", strict_time=False)
    assert result.ee_ski.hex() == "836aa429affdf4c6606970829980b08fe5c6ba0a"
    assert b"list_response" in result.xml
    # Relaxed time is not relaxed keys: another identity is still refused.
    with pytest.raises(CmsError, match="not by this peer's identity key"):
        verify(der, APNIC(), at, "afrinic", strict_time=False)


@pytest.mark.parametrize(
    ("name", "wrong", "signer_key", "signed"), NO_IDENTITY, ids=[m[0] for m in NO_IDENTITY]
)
def test_messages_without_their_identity_are_refused_for_the_key(
    name: str, wrong: Callable[[], IdentityCertificate], signer_key: str, signed: str
) -> None:
    der = (PROTOCOLS / name).read_bytes()
    peer = wrong()
    expected = (
        f"EE certificate was issued by key {signer_key}, not by this peer's identity key {peer.ski.hex()}"
    )
    for strict in (True, False):
        with pytest.raises(CmsError, match=expected):
            verify(der, peer, _utc(signed), name, strict_time=strict)


def test_verification_is_by_key_not_by_key_identifier() -> None:
    """An identity claiming the right SKI with another key does not pass: the EE's signature decides."""
    impostor_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Alice BPKI Resource Trust Anchor")])
    impostor = load_identity(
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(impostor_key.public_key())
        .serial_number(1)
        .not_valid_before(datetime(2011, 1, 1, tzinfo=UTC))
        .not_valid_after(datetime(2013, 1, 1, tzinfo=UTC))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier(ALICE().ski), critical=False)
        .sign(impostor_key, hashes.SHA256())
        .public_bytes(serialization.Encoding.DER),
        "impostor",
    )
    assert impostor.ski == ALICE().ski and impostor.subject == ALICE().subject
    refusal = r"^list: the EE certificate is not signed by this peer's identity key"
    with pytest.raises(CmsError, match=refusal):
        verify(
            (PROTOCOLS / "rpki-rs/rfc6492/list.der").read_bytes(),
            impostor,
            _utc("2011-07-01 04:09:01"),
            "list",
        )


# ------------------------------------------------------------------------------------------- signing


@pytest.fixture(name="signer")
def signer_fixture(tmp_path: Path) -> FileSigner:
    keys = tmp_path / "keys"
    keys.mkdir(mode=0o700)
    return FileSigner(keys)


@pytest.fixture(name="ours")
def ours_fixture(signer: FileSigner) -> tuple[bytes, IdentityCertificate]:
    key = signer.create_key(identity_label("acme"))
    return key, create_identity(signer, key, NOW - timedelta(days=1))


def _signed(
    signer: Signer, ours: tuple[bytes, IdentityCertificate], at: datetime = NOW, xml: bytes = XML
) -> bytes:
    return sign(xml, signer, ours[0], ours[1], at)


def test_sign_then_verify(signer: FileSigner, ours: tuple[bytes, IdentityCertificate]) -> None:
    der = _signed(signer, ours, NOW + timedelta(microseconds=700_000))
    result = verify(der, ours[1], NOW, "ours")
    assert result == Verified(XML, NOW, result.ee_ski)  # the signing time has whole seconds
    assert econtent(der, "ours") == XML
    # Each message has its own one-off EE key, and no key is added to the signer.
    assert verify(_signed(signer, ours), ours[1], NOW, "ours").ee_ski != result.ee_ski
    assert [p.name for p in signer.directory.glob("*.pem")] == ["bpki-identity.acme.pem"]


def test_signed_message_profile(signer: FileSigner, ours: tuple[bytes, IdentityCertificate]) -> None:
    key, identity = ours
    sd = cms.ContentInfo.load(_signed(signer, ours))["content"]
    assert sd["version"].native == "v3"
    assert sd["encap_content_info"]["content_type"].dotted == CT_XML
    assert len(sd["certificates"]) == 1 and len(sd["crls"]) == 1 and len(sd["signer_infos"]) == 1
    ee = x509.load_der_x509_certificate(sd["certificates"][0].chosen.dump())
    assert ee.not_valid_before_utc == NOW - timedelta(minutes=5)
    assert ee.not_valid_after_utc == NOW + timedelta(minutes=5)
    assert ee.issuer == x509.load_der_x509_certificate(identity.der).subject
    assert ee.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value.key_identifier == key
    with pytest.raises(x509.ExtensionNotFound):
        ee.extensions.get_extension_for_class(x509.BasicConstraints)
    crl = x509.load_der_x509_crl(sd["crls"][0].chosen.dump())
    assert len(crl) == 0 and crl.is_signature_valid(identity.public_key)
    assert crl.next_update_utc == NOW + timedelta(minutes=5)
    si = sd["signer_infos"][0]
    ski = ee.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
    assert si["sid"].name == "subject_key_identifier" and si["sid"].native == ski
    assert si["digest_algorithm"]["algorithm"].native == "sha256"
    assert si["signature_algorithm"]["algorithm"].native == "rsassa_pkcs1v15"
    assert sorted(a["type"].native for a in si["signed_attrs"]) == [
        "content_type",
        "message_digest",
        "signing_time",
    ]


def test_openssl_accepts_what_we_sign(
    tmp_path: Path, signer: FileSigner, ours: tuple[bytes, IdentityCertificate]
) -> None:
    message = tmp_path / "message.der"
    message.write_bytes(_signed(signer, ours))
    checked = subprocess.run(
        ["openssl", "cms", "-verify", "-inform", "DER", "-in", str(message), "-noverify", "-binary"],
        capture_output=True,
        check=False,
    )
    assert checked.returncode == 0, checked.stderr
    assert checked.stdout == XML
    # With the identity as trust anchor and the message's own CRL checked, the whole chain passes too.
    anchor = tmp_path / "identity.pem"
    anchor.write_bytes(x509.load_der_x509_certificate(ours[1].der).public_bytes(serialization.Encoding.PEM))
    at_now = str(int(NOW.timestamp()))
    chained = subprocess.run(
        [
            *("openssl", "cms", "-verify", "-inform", "DER", "-in", str(message), "-binary"),
            *("-CAfile", str(anchor), "-purpose", "any", "-crl_check", "-attime", at_now),
        ],
        capture_output=True,
        check=False,
    )
    assert chained.returncode == 0, chained.stderr
    printed = subprocess.run(
        ["openssl", "cms", "-cmsout", "-print", "-inform", "DER", "-in", str(message)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "eContentType: id-ct-xml (1.2.840.113549.1.9.16.1.28)" in printed


def test_openssl_notices_a_tampered_message(
    tmp_path: Path, signer: FileSigner, ours: tuple[bytes, IdentityCertificate]
) -> None:
    """The interoperability check above can fail: OpenSSL refuses our message once altered."""
    message = tmp_path / "message.der"
    message.write_bytes(_signed(signer, ours).replace(b'type="list"', b'type="lust"'))
    checked = subprocess.run(
        ["openssl", "cms", "-verify", "-inform", "DER", "-in", str(message), "-noverify", "-binary"],
        capture_output=True,
        check=False,
    )
    assert checked.returncode != 0


def test_sign_and_verify_with_a_pkcs11_identity(hsm_token: HsmToken) -> None:
    with hsm_token.signer() as signer:
        key = signer.create_key(identity_label("acme"))
        identity = create_identity(signer, key, NOW)
        der = sign(XML, signer, key, identity, NOW)
    assert verify(der, identity, NOW, "hsm").xml == XML


def test_sign_refuses_an_identity_of_another_key(
    signer: FileSigner, ours: tuple[bytes, IdentityCertificate]
) -> None:
    other = signer.create_key(identity_label("other"))
    with pytest.raises(ProtocolError, match="is not for the signer's key"):
        sign(XML, signer, other, ours[1], NOW)


def test_naive_time_is_a_programming_error(
    signer: FileSigner, ours: tuple[bytes, IdentityCertificate]
) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        verify(_signed(signer, ours), ours[1], NOW.replace(tzinfo=None), "ours")


# ------------------------------------------------------------------------------------------ refusals


def _replace_crl(der: bytes, crl_der: bytes) -> bytes:
    info = cms.ContentInfo.load(der)
    info["content"]["crls"] = cms.RevocationInfoChoices(
        [cms.RevocationInfoChoice(name="crl", value=asn1_crl.CertificateList.load(crl_der))]
    )
    return bytes(info.dump())


def _crl(
    identity: IdentityCertificate, key: rsa.RSAPrivateKey, *, aki: bytes, revoked: int | None = None
) -> bytes:
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(x509.load_der_x509_certificate(identity.der).subject)
        .last_update(NOW - timedelta(minutes=5))
        .next_update(NOW + timedelta(minutes=5))
        .add_extension(x509.AuthorityKeyIdentifier(aki, None, None), critical=False)
        .add_extension(x509.CRLNumber(1), critical=False)
    )
    if revoked is not None:
        builder = builder.add_revoked_certificate(
            x509.RevokedCertificateBuilder()
            .serial_number(revoked)
            .revocation_date(NOW - timedelta(minutes=1))
            .build()
        )
    return builder.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)


def _ee_serial(der: bytes) -> int:
    cert: asn1_x509.Certificate = cms.ContentInfo.load(der)["content"]["certificates"][0].chosen
    return int(cert.serial_number)


def test_refuses_another_peer(signer: FileSigner, ours: tuple[bytes, IdentityCertificate]) -> None:
    other = create_identity(signer, signer.create_key(identity_label("other")), NOW)
    with pytest.raises(
        CmsError, match=f"issued by key {ours[0].hex()}, not by this peer's identity key {other.ski.hex()}"
    ):
        verify(_signed(signer, ours), other, NOW, "child acme")


def test_refuses_tampered_content(signer: FileSigner, ours: tuple[bytes, IdentityCertificate]) -> None:
    der = _signed(signer, ours).replace(b'type="list"', b'type="lust"')
    with pytest.raises(CmsError, match=r"^child acme: the message digest does not match the content"):
        verify(der, ours[1], NOW, "child acme")


def test_refuses_tampered_signature(signer: FileSigner, ours: tuple[bytes, IdentityCertificate]) -> None:
    der = bytearray(_signed(signer, ours))
    der[-1] ^= 0x01  # the SignerInfo's signature is the last value of the message
    with pytest.raises(CmsError, match="the signature does not verify with the EE certificate's key"):
        verify(bytes(der), ours[1], NOW, "child acme")


def test_refuses_a_revoked_ee(signer: FileSigner, ours: tuple[bytes, IdentityCertificate]) -> None:
    key, identity = ours
    der = _signed(signer, ours)
    serial = _ee_serial(der)
    revoking = _replace_crl(der, _crl(identity, SignerKey(signer, key), aki=key, revoked=serial))
    with pytest.raises(
        CmsError, match=f"the EE certificate \\(serial {serial}\\) is revoked by the peer's own CRL"
    ):
        verify(revoking, identity, NOW, "child acme")
    # The same CRL revoking another serial is fine: the check looks at the EE's serial.
    assert verify(
        _replace_crl(der, _crl(identity, SignerKey(signer, key), aki=key, revoked=serial + 1)),
        identity,
        NOW,
        "x",
    )


def test_refuses_a_crl_not_signed_by_the_peer(
    signer: FileSigner, ours: tuple[bytes, IdentityCertificate]
) -> None:
    key, identity = ours
    der = _signed(signer, ours)
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    forged = _replace_crl(der, _crl(identity, stranger, aki=key))  # claims the peer's key, signed by another
    with pytest.raises(
        CmsError, match=f"^child acme: the CRL is not signed by this peer's identity key {key.hex()}$"
    ):
        verify(forged, identity, NOW, "child acme")
    foreign = _replace_crl(der, _crl(identity, stranger, aki=b"\x07" * 20))
    with pytest.raises(CmsError, match="the CRL was issued by key 0707"):
        verify(foreign, identity, NOW, "child acme")


def test_refuses_expired_and_future_ee_when_strict(
    signer: FileSigner, ours: tuple[bytes, IdentityCertificate]
) -> None:
    der = _signed(signer, ours)
    later = NOW + timedelta(minutes=6)
    with pytest.raises(
        CmsError, match=r"the EE certificate expired at 2026-12-07T12:05:00Z, and now is 2026-12-07T12:06:00Z"
    ):
        verify(der, ours[1], later, "child acme")
    with pytest.raises(CmsError, match=r"the EE certificate is not valid before 2026-12-07T11:55:00Z"):
        verify(der, ours[1], NOW - timedelta(minutes=6), "child acme")
    assert verify(der, ours[1], later, "child acme", strict_time=False).xml == XML


@pytest.mark.parametrize(
    ("mangle", "reason"),
    [
        (lambda der: der[: len(der) // 2], "CMS message: X.690"),
        (lambda der: der[:-1], "CMS message: X.690"),
        (lambda der: der + b"\x00", "CMS message: X.690 §8.1.1: 1 byte of trailing data"),
        (lambda der: b"", "CMS message: X.690 §8.1.1: empty input"),
        (lambda der: b"GET / HTTP/1.1\r\n\r\n", "CMS message"),
        (lambda der: b"\x30\x03\x02\x01\x01", "readable CMS message"),
        (lambda der: _nested(5000), "readable CMS message"),
    ],
    ids=["half", "one-byte-short", "trailing", "empty", "http", "small-sequence", "deep-nesting"],
)
def test_refuses_damaged_input(
    signer: FileSigner, ours: tuple[bytes, IdentityCertificate], mangle: Callable[[bytes], bytes], reason: str
) -> None:
    with pytest.raises(CmsError, match=f"^child acme: not a {reason}"):
        verify(mangle(_signed(signer, ours)), ours[1], NOW, "child acme")
    with pytest.raises(CmsError, match=f"^child acme: not a {reason}"):
        econtent(mangle(_signed(signer, ours)), "child acme")


def _nested(depth: int) -> bytes:
    value = b"\x05\x00"
    for _ in range(depth):
        value = sequence(value)
    return value


def test_refuses_oversize_input_before_reading_it(ours: tuple[bytes, IdentityCertificate]) -> None:
    with pytest.raises(CmsError, match=rf"^big: {MAX_CMS_BYTES + 1} bytes, more than the {MAX_CMS_BYTES}"):
        verify(b"\x30" * (MAX_CMS_BYTES + 1), ours[1], NOW, "big")
    with pytest.raises(CmsError, match=r"^big: 1001 bytes, more than the 1000"):
        verify(b"\x30" * 1001, ours[1], NOW, "big", limit=1000)


def test_refuses_another_content_type(signer: FileSigner, ours: tuple[bytes, IdentityCertificate]) -> None:
    der = _signed(signer, ours)
    xml_oid = bytes.fromhex("060b2a864886f70d0109100 11c".replace(" ", ""))
    roa_oid = xml_oid[:-1] + b"\x18"
    assert der.count(xml_oid) == 2  # the eContentType, then the signed content-type attribute
    with pytest.raises(
        CmsError, match=r"the content type is 1\.2\.840\.113549\.1\.9\.16\.1\.24, not id-ct-xml"
    ):
        verify(der.replace(xml_oid, roa_oid, 1), ours[1], NOW, "child acme")
    # Only the signed attribute changed: caught there.
    head, _, tail = der.rpartition(xml_oid)
    with pytest.raises(
        CmsError, match=r"signed content-type attribute is 1\.2\.840\.113549\.1\.9\.16\.1\.24"
    ):
        verify(head + roa_oid + tail, ours[1], NOW, "child acme")


def test_refuses_what_is_not_signed_data(ours: tuple[bytes, IdentityCertificate]) -> None:
    data = cms.ContentInfo({"content_type": "data", "content": XML}).dump()
    with pytest.raises(
        CmsError, match=r"^m: not CMS SignedData \(the content type is 1\.2\.840\.113549\.1\.7\.1\)"
    ):
        verify(data, ours[1], NOW, "m")


def test_refuses_two_certificates_or_no_crl(
    signer: FileSigner, ours: tuple[bytes, IdentityCertificate]
) -> None:
    der = _signed(signer, ours)
    info = cms.ContentInfo.load(der)
    certificates = info["content"]["certificates"]
    info["content"]["certificates"] = cms.CertificateSet([certificates[0], certificates[0]])
    with pytest.raises(CmsError, match="2 certificates; exactly one EE certificate is required"):
        verify(info.dump(), ours[1], NOW, "m")
    info = cms.ContentInfo.load(der)
    info["content"]["crls"] = cms.RevocationInfoChoices([])
    with pytest.raises(CmsError, match="0 CRLs; exactly one CRL"):
        verify(info.dump(), ours[1], NOW, "m")
