"""BGPsec router certificates (RFC 8209): the routers' real requests are taken, keys in another algorithm
or altered requests refused with the reason, the certificate we issue carries exactly the profile (read
back by our reader and by OpenSSL), and a router certificate published by another CA is read."""

from __future__ import annotations

import subprocess
from datetime import UTC, datetime, timedelta
from ipaddress import IPv4Address
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import NameOID

from reconciler.resources import AsnSet
from reconciler.rpki import router
from reconciler.rpki.cert import Issuer
from reconciler.signers.base import key_id
from tests.rpki.conftest import FIXTURES

PROTOCOLS = FIXTURES / "protocols"
NOW = datetime.now(UTC).replace(microsecond=0)


@pytest.mark.parametrize("path", ["rpki-rs/router-csr.der", "krill/bgpsec/router-csr.der"])
def test_the_routers_real_requests_are_taken(path: str) -> None:
    found = router.read_key((PROTOCOLS / path).read_bytes(), path)
    assert found.requested and isinstance(found.public_key.curve, ec.SECP256R1)
    assert len(found.key_id) == 20


def test_a_bare_public_key_in_pem_is_taken() -> None:
    key = ec.generate_private_key(ec.SECP256R1()).public_key()
    pem = key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    found = router.read_key(pem, "router.pem")
    assert not found.requested and found.public_key == key


def _request(key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) -> bytes:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ROUTER-0000FBF0")])
    built = x509.CertificateSigningRequestBuilder().subject_name(name).sign(key, hashes.SHA256())
    return built.public_bytes(serialization.Encoding.DER)


def test_keys_in_another_algorithm_are_refused() -> None:
    with pytest.raises(router.RouterKeyError, match=r"ECDSA on P-256 \(RFC 8608 .*this one is RSA"):
        router.read_key(_request(rsa.generate_private_key(public_exponent=65537, key_size=2048)), "r.csr")
    with pytest.raises(router.RouterKeyError, match="this one is ECDSA on secp384r1"):
        router.read_key(_request(ec.generate_private_key(ec.SECP384R1())), "r.csr")
    with pytest.raises(router.RouterKeyError, match="neither a PKCS#10 request nor a public key"):
        router.read_key(b"not a key", "r.csr")


def test_an_altered_request_is_refused() -> None:
    good = bytearray(_request(ec.generate_private_key(ec.SECP256R1())))
    good[-5] ^= 0x01  # inside the signature
    with pytest.raises(router.RouterKeyError, match="signature does not verify"):
        router.read_key(bytes(good), "r.csr")


def _issued(tmp_path: Path) -> tuple[bytes, rsa.RSAPrivateKey, router.RouterKey]:
    ca = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    key = router.read_key((PROTOCOLS / "rpki-rs/router-csr.der").read_bytes(), "router-csr.der")
    issuer = Issuer(
        ca,
        key_id(ca.public_key()),
        "rsync://example.net/repo/ta/isp.cer",
        "rsync://example.net/repo/isp/X.crl",
    )
    der = router.build(
        issuer=issuer,
        key=key,
        asns=AsnSet.parse(["AS64496", "AS64500"]),
        router_id=IPv4Address("192.0.2.1"),
        serial=42,
        not_before=NOW,
        not_after=NOW + timedelta(days=365),
    )
    return der, ca, key


def test_the_certificate_follows_the_profile(tmp_path: Path) -> None:
    der, ca, key = _issued(tmp_path)
    found = router.decode(der)
    assert found.asns == AsnSet.parse(["AS64496", "AS64500"])
    assert found.key_id == key.key_id and found.authority_key_id == key_id(ca.public_key())
    cert = found.cert
    ca.public_key().verify(cert.signature, cert.tbs_certificate_bytes, padding.PKCS1v15(), hashes.SHA256())
    assert cert.subject.rfc4514_string() == "2.5.4.5=C0000201,CN=ROUTER-0000FBF0"
    names = {e.oid._name: e.critical for e in cert.extensions}
    assert names == {
        "subjectKeyIdentifier": False,
        "authorityKeyIdentifier": False,
        "cRLDistributionPoints": False,
        "authorityInfoAccess": False,
        "keyUsage": True,
        "extendedKeyUsage": False,
        "certificatePolicies": True,
        "Unknown OID": True,  # sbgp-autonomousSysNum, and no sbgp-ipAddrBlock
    }
    assert cert.extensions.get_extension_for_class(x509.KeyUsage).value.digital_signature
    (tmp_path / "router.cer").write_bytes(der)
    shown = subprocess.run(
        ["openssl", "x509", "-inform", "DER", "-in", str(tmp_path / "router.cer"), "-noout", "-text"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "BGPsec Router" in shown and "64496" in shown and "64500" in shown
    assert (
        "IPAddrBlock" not in shown and "Basic Constraints" not in shown and "Subject Information" not in shown
    )


def test_a_router_certificate_of_another_ca_is_read() -> None:
    found = router.decode((FIXTURES / "rpki-rs-test-data" / "repository" / "router.cer").read_bytes())
    assert found.asns == AsnSet.parse(["AS3000-AS9001", "AS199664"])
    assert found.key_id.hex() == "f5f3c2dd2b91bf154552edc0179b58dff3676b23"


def test_a_ca_certificate_is_not_a_router_certificate() -> None:
    with pytest.raises(router.RouterKeyError, match="ECDSA on P-256"):
        router.decode((FIXTURES / "rpki-rs-test-data" / "repository" / "ca1.cer").read_bytes())
