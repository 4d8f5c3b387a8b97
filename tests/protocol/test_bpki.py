"""BPKI identity certificates: every identity real peers sent is read, our own are made in the profile
Krill generates, and what cannot be an identity is refused with the reason.

Expected subjects and key identifiers were printed by
``openssl x509 -inform DER -noout -subject -ext subjectKeyIdentifier`` (OpenSSL 3.0) on each certificate,
and are hard-coded here as OpenSSL printed them.
"""

from __future__ import annotations

import base64
import hashlib
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from reconciler.protocol import xmlutil
from reconciler.protocol.bpki import (
    IdentityCertificate,
    create_identity,
    identity_label,
    load_identity,
)
from reconciler.protocol.errors import ProtocolError
from reconciler.signers.base import key_id
from reconciler.signers.files import FileSigner
from tests.signers.test_pkcs11 import HsmToken, hsm_token_fixture, softhsm_fixture  # noqa: F401

REAL = Path(__file__).parent.parent / "fixtures" / "real-world"
PROTOCOLS = REAL / "protocols"
NOW = datetime(2026, 12, 7, 12, 0, 0, tzinfo=UTC)

# Subjects and SKIs as printed by openssl (see the module docstring).
AFRINIC = (
    "C = ZA, ST = Gauteng, O = AFRINIC Ltd, OU = Infrastructure Unit, CN = RPKI Intermediate CA, "
    "emailAddress = sysadmin@afrinic.net",
    "DF:D9:58:B2:3D:9F:7D:1B:CF:E9:BB:8F:AA:6B:98:B1:2D:7C:A5:51",
)
BOB = ("CN = Bob BPKI Resource Trust Anchor", "E4:45:38:2D:C6:3E:36:0A:9F:B5:75:FC:12:47:0E:66:78:5B:B2:7E")
CAROL = (
    "CN = Carol BPKI Resource Trust Anchor",
    "EB:03:2B:BC:6F:C8:8B:D2:B0:29:6A:4E:20:51:66:87:C8:D8:DC:09",
)
ALICE = (
    "CN = Alice BPKI Resource Trust Anchor",
    "23:B6:8B:C7:60:E6:73:52:7A:3A:32:C1:63:63:22:9D:25:97:F7:34",
)
APNIC = (
    "CN = APNIC Server CA, OU = Infrastructure Services, O = APNIC Pty Ltd, DC = CA, C = AU",
    "19:5B:F4:AF:D0:C5:79:C0:3E:54:52:4C:7A:70:3C:F9:31:5A:53:6F",
)
KRILL_APNIC = (
    "CN = 74A7A6264C4B3800B49A7AC87E23766D57B7C575",
    "74:A7:A6:26:4C:4B:38:00:B4:9A:7A:C8:7E:23:76:6D:57:B7:C5:75",
)
DROPKICK = (
    "C = US, O = Amazon Web Services, OU = Dropkick BPKI, ST = Virginia, CN = www.amazonaws.com, "
    "L = Arlington",
    "AF:1D:0F:51:73:34:E9:EE:30:F8:FD:9C:BF:EB:2B:B6:88:2E:42:1E",
)
RIPE_RPKID = (
    "CN = ripe-ncc-rpkid-test BPKI Resource Trust Anchor",
    "4F:21:B7:34:D7:88:59:3F:F2:68:7D:B6:C3:FD:11:7E:D4:C8:4B:DB",
)

CERTIFICATE_FILES = {
    "rpki-rs-test-data/ca/id_afrinic.cer": AFRINIC,
    "rpki-rs-test-data/ca/id_ta.cer": BOB,
    "rpki-rs-test-data/ca/sigmsg/cms_ta.cer": CAROL,
    "protocols/krill/remote/apnic-id.der": (
        "C = AU, ST = Some-State, O = Internet Widgits Pty Ltd",
        "88:5E:AE:56:4D:06:88:E0:3D:A3:D5:12:09:CD:C3:39:04:94:F5:06",
    ),
    "protocols/krill/remote/lacnic-id.der": (
        "CN = bpki O=lacnic",
        "56:4C:83:6C:AA:4C:2A:C9:FF:93:6C:24:B2:75:0D:E2:5A:A9:05:43",
    ),
    "protocols/krill/remote/ncc-id.der": (
        "C = NL, O = RIPE NCC, CN = RIPE NCC Resources",
        "C3:DC:12:D6:7A:E4:46:65:8C:AE:06:E4:45:2F:FE:81:D3:15:30:DD",
    ),
    "protocols/krill/remote/cms_ta.cer": CAROL,
    "protocols/krill/oob/id_publisher_ta.cer": BOB,
}

#: Every RFC 8183 file with an identity: what openssl printed for it, or why it cannot be read.
XML_IDENTITIES: dict[str, tuple[str, str] | str] = {
    "krill/oob/apnic/child_request.xml": KRILL_APNIC,
    "krill/oob/apnic/parent.response.xml": APNIC,
    "krill/oob/apnic/publisher_request.xml": KRILL_APNIC,
    "krill/oob/apnic/repository.response.xml": APNIC,
    "krill/oob/publisher_request.xml": BOB,
    "krill/oob/repository_response.xml": ALICE,
    "krill/remote/carol_child_id.xml": CAROL,
    "krill/remote/rpkid-child-id.xml": CAROL,
    "krill/remote/rpkid-parent-response-offer.xml": ALICE,
    "krill/remote/rpkid-parent-response-referral.xml": RIPE_RPKID,
    "krill/testbed/child_request_compact.xml": DROPKICK,
    "krill/testbed/child_request_with_whitespace.xml": DROPKICK,
    "krill/testbed/child_request_with_unicode_space_entity_reference_in_handle.xml": DROPKICK,
    "krill/testbed/publisher_request_compact.xml": KRILL_APNIC,
    "krill/testbed/publisher_request_with_whitespace.xml": KRILL_APNIC,
    "krill/testbed/publisher_request_with_unicode_space_entity_reference_in_handle.xml": KRILL_APNIC,
    "rpki-rs/rfc8183/afrinic-parent-response.xml": AFRINIC,
    "rpki-rs/rfc8183/apnic-parent-response.xml": APNIC,
    "rpki-rs/rfc8183/apnic-repository-response.xml": APNIC,
    "rpki-rs/rfc8183/krill-0-9-parent-response.xml": (
        "CN = 0DB84F7E16E32E741B466A321A64261888D49187",
        "0D:B8:4F:7E:16:E3:2E:74:1B:46:6A:32:1A:64:26:18:88:D4:91:87",
    ),
    "rpki-rs/rfc8183/krill-0-9-repository-response.xml": (
        "CN = 952D862C717484CEE7FCD4B9BE223AE3AB6DF603",
        "95:2D:86:2C:71:74:84:CE:E7:FC:D4:B9:BE:22:3A:E3:AB:6D:F6:03",
    ),
    "rpki-rs/rfc8183/rpkid-child-id.xml": CAROL,
    "rpki-rs/rfc8183/rpkid-parent-response-offer.xml": ALICE,
    "rpki-rs/rfc8183/rpkid-parent-response-referral.xml": RIPE_RPKID,
    "rpki-rs/rfc8183/rpkid-publisher-request.xml": BOB,
    # Damaged on purpose in the fixture set (one character too many): the XML layer refuses the Base64;
    # decoded leniently anyway, as Python's base64 does, the bytes are no certificate.
    "krill/testbed/child_request_invalid_base64.xml": "X.690 §8.1.3.5: the length at offset 52",
    "krill/testbed/publisher_request_invalid_base64.xml": "X.690 §8.1.1: the value at offset 37 runs past",
}
#: A zero-width space in the Base64 (raw, or as a character reference): the XML layer refuses these
#: before any certificate is read.
UNREADABLE_BASE64 = {
    "krill/testbed/child_request_with_unicode_space_char.xml",
    "krill/testbed/child_request_with_unicode_space_entity_reference.xml",
    "krill/testbed/publisher_request_with_unicode_space_char.xml",
    "krill/testbed/publisher_request_with_unicode_space_entity_reference.xml",
}


def _ski(openssl_text: str) -> bytes:
    return bytes.fromhex(openssl_text.replace(":", ""))


def identity_element_text(path: Path) -> str | None:
    """The Base64 text of the ``*_bpki_ta`` element of an RFC 8183 file."""
    root = xmlutil.parse(path.read_bytes(), str(path))
    for element in root.iter():
        if isinstance(element.tag, str) and xmlutil.split_tag(element.tag)[1].endswith("_bpki_ta"):
            return element.text
    return None


def identity_from_xml(path: Path) -> IdentityCertificate:
    return load_identity(xmlutil.b64decode(identity_element_text(path), str(path)), str(path))


@pytest.mark.parametrize("name", sorted(CERTIFICATE_FILES))
def test_reads_identity_certificate_files(name: str) -> None:
    identity = load_identity((REAL / name).read_bytes(), name)
    subject, ski = CERTIFICATE_FILES[name]
    assert identity.subject == subject
    assert identity.ski == _ski(ski)
    assert identity.public_key.key_size in {2048, 4096}


@pytest.mark.parametrize("name", sorted(XML_IDENTITIES))
def test_reads_identities_embedded_in_rfc8183_files(name: str) -> None:
    path = PROTOCOLS / name
    expected = XML_IDENTITIES[name]
    if isinstance(expected, str):
        der = base64.b64decode("".join((identity_element_text(path) or "").split()))
        with pytest.raises(ProtocolError, match=f"^{name}: not an identity certificate: {expected}"):
            load_identity(der, name)
        return
    der = xmlutil.b64decode(identity_element_text(path), name)
    identity = load_identity(der, name)
    assert (identity.subject, identity.ski) == (expected[0], _ski(expected[1]))
    assert identity.der == der


def test_every_rfc8183_file_with_an_identity_is_covered() -> None:
    """A fixture added later must be added to the table above, not silently skipped."""
    found = {
        str(path.relative_to(PROTOCOLS))
        for path in PROTOCOLS.rglob("*.xml")
        if b"_bpki_ta" in path.read_bytes()
    }
    assert found == set(XML_IDENTITIES) | UNREADABLE_BASE64


@pytest.mark.parametrize("name", sorted(UNREADABLE_BASE64))
def test_raw_unicode_space_is_refused_before_the_certificate(name: str) -> None:
    with pytest.raises(ProtocolError, match="U\\+200B"):
        identity_from_xml(PROTOCOLS / name)


@pytest.mark.parametrize("name", ["krill-0-9-parent-response.xml", "krill-0-9-repository-response.xml"])
def test_krill_0_9_identities_are_read_though_not_der(name: str) -> None:
    """cryptography refuses these (explicit ``critical FALSE``); asn1crypto reads them and their
    self-signature verifies over the original bytes."""
    path = PROTOCOLS / "rpki-rs" / "rfc8183" / name
    der = xmlutil.b64decode(identity_element_text(path), name)
    with pytest.raises(ValueError):
        x509.load_der_x509_certificate(der)
    identity = load_identity(der, name)
    assert identity.self_signed
    assert identity.not_after.year == 2119


def test_registry_identities_that_are_not_self_signed_are_read() -> None:
    afrinic = load_identity((REAL / "rpki-rs-test-data/ca/id_afrinic.cer").read_bytes(), "afrinic")
    apnic = identity_from_xml(PROTOCOLS / "rpki-rs/rfc8183/apnic-parent-response.xml")
    assert not afrinic.self_signed and afrinic.public_key.key_size == 4096  # also pathLen 0, AKI+serial
    assert not apnic.self_signed
    carol = load_identity((REAL / "rpki-rs-test-data/ca/sigmsg/cms_ta.cer").read_bytes(), "carol")
    assert carol.self_signed
    # Expired long ago, still read: validity is the caller's judgement.
    assert carol.not_after == datetime(2012, 6, 30, 4, 7, 24, tzinfo=UTC)


def test_fingerprint_matches_openssl() -> None:
    path = REAL / "protocols/krill/remote/ncc-id.der"
    shown = subprocess.run(
        ["openssl", "x509", "-inform", "DER", "-in", str(path), "-noout", "-fingerprint", "-sha256"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    fingerprint = shown.strip().split("=", 1)[1].replace(":", "").lower()
    assert load_identity(path.read_bytes(), "ncc").fingerprint() == fingerprint


# ------------------------------------------------------------------------------------------- refusals


def _certificate(
    key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey,
    *,
    ca: bool | None,
    ski: bytes | None = None,
) -> bytes:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test identity")])
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(NOW)
        .not_valid_after(NOW + timedelta(days=1))
    )
    if ca is not None:
        builder = builder.add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    if ski is not None:
        builder = builder.add_extension(x509.SubjectKeyIdentifier(ski), critical=False)
    return builder.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)


@pytest.fixture(scope="module", name="rsa_key")
def rsa_key_fixture() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def test_refuses_a_key_that_is_not_rsa() -> None:
    der = _certificate(ec.generate_private_key(ec.SECP256R1()), ca=True)
    with pytest.raises(ProtocolError, match=r"^peer\.xml: the identity certificate's key is not RSA"):
        load_identity(der, "peer.xml")


@pytest.mark.parametrize(("ca", "said"), [(None, "missing"), (False, "false")])
def test_refuses_a_certificate_without_ca(rsa_key: rsa.RSAPrivateKey, ca: bool | None, said: str) -> None:
    with pytest.raises(
        ProtocolError, match=f"^peer.xml: the certificate is not a CA certificate.*cA is {said}"
    ):
        load_identity(_certificate(rsa_key, ca=ca), "peer.xml")


def test_without_ski_extension_the_key_hash_is_used(rsa_key: rsa.RSAPrivateKey) -> None:
    identity = load_identity(_certificate(rsa_key, ca=True), "peer.xml")
    assert identity.ski == key_id(rsa_key.public_key())
    assert identity.self_signed


def test_ski_extension_is_taken_as_written(rsa_key: rsa.RSAPrivateKey) -> None:
    """Peers name the identity's key by its SKI extension in their EE certificates' AKI."""
    identity = load_identity(_certificate(rsa_key, ca=True, ski=b"\x01" * 20), "peer.xml")
    assert identity.ski == b"\x01" * 20


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "empty input"),
        (b"not a certificate at all", "not a"),
        (b"\x30\x03\x02\x01\x01", "not a readable X.509 identity certificate"),
    ],
)
def test_refuses_garbage(data: bytes, reason: str) -> None:
    with pytest.raises(ProtocolError, match=f"^child.xml: .*{reason}"):
        load_identity(data, "child.xml")


def test_refuses_truncated_and_trailing_data(rsa_key: rsa.RSAPrivateKey) -> None:
    der = _certificate(rsa_key, ca=True)
    with pytest.raises(ProtocolError, match=r"truncated|runs past"):
        load_identity(der[:-10], "child.xml")
    with pytest.raises(ProtocolError, match="trailing data"):
        load_identity(der + b"\x00\x00", "child.xml")


def test_refuses_oversize_input() -> None:
    with pytest.raises(ProtocolError, match=r"^child\.xml: 400000 bytes, more than"):
        load_identity(b"\x30" * 400_000, "child.xml")


# ------------------------------------------------------------------------------------ our identities


def test_identity_label() -> None:
    assert identity_label("acme") == "bpki-identity.acme"
    assert identity_label("repository") == "bpki-identity.repository"
    for bad in ("", "a/b", "../x", "a b", "-x", "x" * 65):
        with pytest.raises(ValueError, match="not a CA name"):
            identity_label(bad)


def test_create_identity_in_a_file_signer(tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    keys.mkdir(mode=0o700)
    signer = FileSigner(keys)
    key = signer.create_key(identity_label("acme"))
    identity = create_identity(signer, key, NOW)

    assert identity.ski == key == key_id(signer.public_key(key))
    assert identity.subject == f"CN = {key.hex().upper()}"
    assert identity.self_signed
    assert identity.not_before == NOW - timedelta(minutes=5)
    assert identity.not_after == datetime(2041, 12, 7, 11, 55, tzinfo=UTC)
    cert = x509.load_der_x509_certificate(identity.der)
    assert cert.serial_number == 1
    constraints = cert.extensions.get_extension_for_class(x509.BasicConstraints)
    assert constraints.critical and constraints.value.ca
    assert cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest == key
    assert cert.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value.key_identifier == key
    assert [p.name for p in keys.glob("*.pem")] == ["bpki-identity.acme.pem"]
    # The key is found again under its label by a signer opened later.
    assert FileSigner(keys).find_key(identity_label("acme")) == key

    pem = tmp_path / "identity.pem"
    pem.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    verified = subprocess.run(
        [
            "openssl",
            "verify",
            "-attime",
            str(int(NOW.timestamp())),
            "-CAfile",
            str(pem),
            "-check_ss_sig",
            str(pem),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert verified.returncode == 0, verified.stderr
    assert hashlib.sha256(identity.der).hexdigest() == identity.fingerprint()


def test_create_identity_in_a_pkcs11_token(hsm_token: HsmToken) -> None:
    with hsm_token.signer() as signer:
        key = signer.create_key(identity_label("repository"))
        identity = create_identity(signer, key, NOW)
        assert signer.find_key(identity_label("repository")) == key
    assert identity.ski == key
    assert identity.self_signed
    assert load_identity(identity.der, "again") == identity
