"""Resource certificates: what we build follows RFC 6487 as the validators enforce it, and reads back."""

from __future__ import annotations

from cryptography import x509
from cryptography.x509.oid import ExtensionOID, NameOID

from reconciler.resources import Resources
from reconciler.rpki import cert, oids, rfc3779
from reconciler.signers.adapter import SignerKey
from reconciler.signers.files import FileSigner, OneTimeKey
from tests.rpki.conftest import BASE, FIXTURES, NOW, validity

RESOURCES = Resources.parse(["AS64496-AS64511"], ["192.0.2.0/24"], ["2001:db8::/32"])


def _ca_cert(issuer: cert.Issuer, signer: FileSigner, ca_key: bytes) -> cert.ResourceCertificate:
    der = cert.build(
        issuer=issuer,
        subject_key=signer.public_key(ca_key),
        serial=12345,
        not_before=validity()[0],
        not_after=validity()[1],
        ip_resources=rfc3779.encode_ip(RESOURCES),
        as_resources=rfc3779.encode_asn(RESOURCES.asn),
        ca=cert.CaAccess(BASE + "ca/", BASE + "ca/ca.mft"),
    )
    return cert.decode(der)


def test_ca_certificate_round_trips(issuer: cert.Issuer, signer: FileSigner, ca_key: bytes) -> None:
    """A CA certificate reads back with its key, resources, URIs and validity."""
    found = _ca_cert(issuer, signer, ca_key)
    assert found.is_ca
    assert found.key_id == ca_key
    assert found.authority_key_id == ca_key
    assert found.resources.resources == RESOURCES
    assert found.repository == BASE + "ca/"
    assert found.manifest_uri == BASE + "ca/ca.mft"
    assert found.aia == BASE + "ta/ca.cer"
    assert found.crldp == BASE + "ca/ca.crl"
    assert found.not_before == NOW
    assert cert.verify_signed_by(found.cert, signer.public_key(ca_key))


def test_ca_certificate_profile(issuer: cert.Issuer, signer: FileSigner, ca_key: bytes) -> None:
    """RFC 6487 §4.8: the criticality of each extension, one policy, a PrintableString CN only."""
    c = _ca_cert(issuer, signer, ca_key).cert
    critical = {e.oid.dotted_string: e.critical for e in c.extensions}
    assert critical == {
        ExtensionOID.SUBJECT_KEY_IDENTIFIER.dotted_string: False,
        ExtensionOID.AUTHORITY_KEY_IDENTIFIER.dotted_string: False,
        ExtensionOID.CRL_DISTRIBUTION_POINTS.dotted_string: False,
        ExtensionOID.AUTHORITY_INFORMATION_ACCESS.dotted_string: False,
        ExtensionOID.BASIC_CONSTRAINTS.dotted_string: True,
        ExtensionOID.KEY_USAGE.dotted_string: True,
        ExtensionOID.SUBJECT_INFORMATION_ACCESS.dotted_string: False,
        ExtensionOID.CERTIFICATE_POLICIES.dotted_string: True,
        oids.IP_ADDR_BLOCKS.dotted_string: True,
        oids.AUTONOMOUS_SYS_IDS.dotted_string: True,
    }
    bc = c.extensions.get_extension_for_class(x509.BasicConstraints).value
    assert bc.ca and bc.path_length is None
    ku = c.extensions.get_extension_for_class(x509.KeyUsage).value
    assert ku.key_cert_sign and ku.crl_sign and not ku.digital_signature
    (cn,) = c.subject
    assert cn.oid == NameOID.COMMON_NAME
    assert cn._type == x509.name._ASN1Type.PrintableString
    aki = c.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    assert aki.authority_cert_issuer is None and aki.authority_cert_serial_number is None
    assert c.signature_algorithm_oid.dotted_string == "1.2.840.113549.1.1.11"


def test_ee_certificate_profile(issuer: cert.Issuer) -> None:
    """An EE certificate: no BasicConstraints, digitalSignature only, SIA signedObject only."""
    ee_key = OneTimeKey()
    der = cert.build(
        issuer=issuer,
        subject_key=ee_key.public,
        serial=7,
        not_before=validity()[0],
        not_after=validity()[1],
        ip_resources=rfc3779.encode_ip(None),
        as_resources=rfc3779.encode_asn(None),
        signed_object=BASE + "ca/ca.mft",
    )
    found = cert.decode(der)
    assert not found.is_ca
    assert found.resources.inherit_asn and found.resources.inherit_ip == {4, 6}
    assert found.sia == {oids.SIGNED_OBJECT.dotted_string: BASE + "ca/ca.mft"}
    ext_oids = {e.oid for e in found.cert.extensions}
    assert ExtensionOID.BASIC_CONSTRAINTS not in ext_oids
    ku = found.cert.extensions.get_extension_for_class(x509.KeyUsage).value
    assert ku.digital_signature and not ku.key_cert_sign and not ku.crl_sign


def test_trust_anchor_has_no_aia_crldp_or_aki(signer: FileSigner, ca_key: bytes) -> None:
    """RFC 6487 §4.8.3, §4.8.6, §4.8.7: a self-signed TA carries none of the issuer pointers."""
    ta = cert.Issuer(SignerKey(signer, ca_key), ca_key, None, None)
    found = _ca_cert(ta, signer, ca_key)
    assert found.aia is None and found.crldp is None and found.authority_key_id is None


def test_decodes_real_trust_anchors() -> None:
    """Published TA certificates from real registries read back with all resources."""
    for name in ("AfriNIC.cer", "ripe-ncc-ta.cer"):
        found = cert.decode((FIXTURES / "rpki-client-regress" / "ta" / name).read_bytes())
        assert found.is_ca
        assert found.resources.resources == Resources.parse(["0-4294967295"], ["0.0.0.0/0"], ["::/0"])


def test_rejects_garbage_with_where() -> None:
    """Unreadable bytes give a CertificateError that names the file."""
    try:
        cert.decode(b"\x30\x03\x02\x01\x00", where="ca/broken.cer")
    except cert.CertificateError as exc:
        assert "ca/broken.cer" in str(exc)
    else:
        raise AssertionError("garbage was accepted")


def test_rejects_non_rsa_keys() -> None:
    """A router (ECDSA) certificate is not an RSA resource certificate (RFC 7935)."""
    der = (FIXTURES / "rpki-rs-test-data" / "repository" / "router.cer").read_bytes()
    try:
        cert.decode(der)
    except cert.CertificateError as exc:
        assert "RSA" in str(exc)
    else:
        raise AssertionError("an ECDSA key was accepted")
