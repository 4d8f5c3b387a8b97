"""BGPsec router certificates (RFC 8209): the router's key in, the certificate out, and read back.

A router makes its own key pair and sends a PKCS#10 request (RFC 8635 §4, router-driven keying), or its
operator hands over the public key (operator-driven keying): either way the private key never reaches
the CA. The key must be ECDSA on P-256 (RFC 8608 §3.1); a request must carry a valid signature by that
key (proof that whoever made it holds the key). The AS numbers and the BGP Identifier are not in the
request: the operator declares them (RFC 8635 §5).

The certificate is an EE certificate of the CA that holds the AS numbers: ``ROUTER-<AS, 8 hex digits>``
as CommonName and the BGP Identifier as serialNumber (RFC 8209 §3.1.1), the BGPsec-router extended key
usage, digitalSignature, the AS numbers (never ``inherit``) and no IP addresses, no SIA and no
BasicConstraints (§3.1.3), the CA's CRL and certificate as for every EE certificate (RFC 6487).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from ipaddress import IPv4Address

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtensionOID, NameOID

from reconciler.resources import AsnSet
from reconciler.rpki import oids, rfc3779
from reconciler.rpki.cert import X509_ERRORS, Issuer

#: id-kp-bgpsec-router (RFC 8209 §3.1.3.2).
BGPSEC_ROUTER = x509.ObjectIdentifier("1.3.6.1.5.5.7.3.30")


class RouterKeyError(ValueError):
    """A router key or request that cannot be certified: the message says why and what to send instead."""


@dataclass(frozen=True)
class RouterKey:
    """A router's public key, checked: P-256, and proven by its request's signature when it came in one."""

    public_key: ec.EllipticCurvePublicKey
    requested: bool  # came in a PKCS#10 request (else: a bare public key)

    @property
    def key_id(self) -> bytes:
        """RFC 6487 §4.8.2: the SHA-1 of the key, which BGPsec signatures name (RFC 8205 §4.2)."""
        return x509.SubjectKeyIdentifier.from_public_key(self.public_key).digest


def read_key(data: bytes, where: str) -> RouterKey:
    """The router key in ``data``: a PKCS#10 request or a SubjectPublicKeyInfo, in DER or PEM."""
    request = _request(data)
    if request is not None:
        key = request.public_key()
        _require_p256(key, where)
        if not request.is_signature_valid:
            raise RouterKeyError(
                f"{where}: the request's signature does not verify with its key: it was altered or made "
                "wrongly; ask the router for a new one"
            )
        if request.signature_hash_algorithm is None or request.signature_hash_algorithm.name != "sha256":
            raise RouterKeyError(f"{where}: the request is not signed with ecdsa-with-SHA256 (RFC 8608 §3.1)")
        assert isinstance(key, ec.EllipticCurvePublicKey)  # noqa: S101 - _require_p256 checked it
        return RouterKey(key, requested=True)
    try:
        public: object = (
            serialization.load_pem_public_key(data)
            if data.lstrip().startswith(b"-----")
            else serialization.load_der_public_key(data)
        )
    except (ValueError, TypeError) as exc:
        raise RouterKeyError(
            f"{where}: neither a PKCS#10 request nor a public key ({exc}); give the file the router wrote "
            "(DER or PEM)"
        ) from exc
    _require_p256(public, where)
    assert isinstance(public, ec.EllipticCurvePublicKey)  # noqa: S101 - _require_p256 checked it
    return RouterKey(public, requested=False)


def load_public_key(spki: bytes) -> ec.EllipticCurvePublicKey:
    """The router key of a SubjectPublicKeyInfo in DER that :func:`read_key` accepted before."""
    key = serialization.load_der_public_key(spki)
    _require_p256(key, "the router key")
    assert isinstance(key, ec.EllipticCurvePublicKey)  # noqa: S101 - _require_p256 checked it
    return key


def _request(data: bytes) -> x509.CertificateSigningRequest | None:
    try:
        if data.lstrip().startswith(b"-----BEGIN CERTIFICATE REQUEST") or data.lstrip().startswith(
            b"-----BEGIN NEW CERTIFICATE REQUEST"
        ):
            return x509.load_pem_x509_csr(data)
        if data.lstrip().startswith(b"-----"):
            return None
        return x509.load_der_x509_csr(data)
    except ValueError:
        return None


def _require_p256(key: object, where: str) -> None:
    if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(key.curve, ec.SECP256R1):
        found = (
            f"ECDSA on {key.curve.name}"
            if isinstance(key, ec.EllipticCurvePublicKey)
            else type(key).__name__.removeprefix("_").replace("PublicKey", "")
        )
        raise RouterKeyError(
            f"{where}: a BGPsec router key is ECDSA on P-256 (RFC 8608 §3.1), this one is {found}: "
            "make the key on the router with that algorithm"
        )


def subject(asn: int, router_id: IPv4Address | None) -> x509.Name:
    """RFC 8209 §3.1.1: CommonName ``ROUTER-`` and the AS in 8 hex digits; serialNumber the BGP
    Identifier in 8 hex digits when one is given. PrintableString, as RFC 6487 §4.5 wants."""
    printable = x509.name._ASN1Type.PrintableString
    attributes = [x509.NameAttribute(NameOID.COMMON_NAME, f"ROUTER-{asn:08X}", _type=printable)]
    if router_id is not None:
        attributes.append(x509.NameAttribute(NameOID.SERIAL_NUMBER, f"{int(router_id):08X}", _type=printable))
    return x509.Name(attributes)


def build(
    *,
    issuer: Issuer,
    key: RouterKey,
    asns: AsnSet,
    router_id: IPv4Address | None,
    serial: int,
    not_before: datetime,
    not_after: datetime,
) -> bytes:
    """The router certificate (DER), signed by the CA key in ``issuer``."""
    first = asns.ranges[0][0] if asns.ranges else None
    if first is None:
        raise RouterKeyError("a router certificate holds at least one AS number")
    as_resources = rfc3779.encode_asn(asns)
    dp = x509.DistributionPoint([x509.UniformResourceIdentifier(issuer.crl_uri or "")], None, None, None)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject(first, router_id))
        .issuer_name(issuer.name)
        .public_key(key.public_key)
        .serial_number(serial)
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.SubjectKeyIdentifier(key.key_id), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier(issuer.key_id, None, None), critical=False)
        .add_extension(x509.CRLDistributionPoints([dp]), critical=False)
        .add_extension(
            x509.AuthorityInformationAccess(
                [
                    x509.AccessDescription(
                        AuthorityInformationAccessOID.CA_ISSUERS,
                        x509.UniformResourceIdentifier(issuer.certificate_uri or ""),
                    )
                ]
            ),
            critical=False,
        )
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([BGPSEC_ROUTER]), critical=False)
        .add_extension(
            x509.CertificatePolicies([x509.PolicyInformation(oids.RPKI_POLICY, None)]), critical=True
        )
        .add_extension(
            x509.UnrecognizedExtension(oids.AUTONOMOUS_SYS_IDS, as_resources or b""), critical=True
        )
    )
    return builder.sign(issuer.key, hashes.SHA256()).public_bytes(Encoding.DER)


@dataclass(frozen=True)
class RouterCertificate:
    """What a published router certificate says: the AS numbers, the key and its identifier, the
    validity, and the key that signed it."""

    asns: AsnSet
    key_id: bytes
    public_key: bytes  # SubjectPublicKeyInfo DER, as relying parties export it
    authority_key_id: bytes | None
    serial: int
    not_before: datetime
    not_after: datetime
    cert: x509.Certificate
    router_id: IPv4Address | None = None  # the subject's serialNumber, read as a BGP Identifier
    crldp: str | None = None
    aia: str | None = None


def decode(der: bytes, *, where: str = "router certificate") -> RouterCertificate:
    """A router certificate, checked against the points of RFC 8209 §3.1 a relying party checks first;
    :class:`RouterKeyError` says which it breaks."""
    try:
        cert = x509.load_der_x509_certificate(der)
        key = cert.public_key()
        _require_p256(key, where)
        extensions = {e.oid: e for e in cert.extensions}
    except RouterKeyError:
        raise
    except X509_ERRORS as exc:
        raise RouterKeyError(f"{where}: not a readable certificate: {exc}") from exc
    usage = extensions.get(ExtensionOID.EXTENDED_KEY_USAGE)
    if usage is None or BGPSEC_ROUTER not in usage.value:
        raise RouterKeyError(f"{where}: no BGPsec-router extended key usage (RFC 8209 §3.1.3.2)")
    if ExtensionOID.BASIC_CONSTRAINTS in extensions:
        raise RouterKeyError(f"{where}: a router certificate has no BasicConstraints (RFC 8209 §3.1.3)")
    if ExtensionOID.SUBJECT_INFORMATION_ACCESS in extensions:
        raise RouterKeyError(f"{where}: a router certificate has no SIA (RFC 8209 §3.1.3.3)")
    if oids.IP_ADDR_BLOCKS in extensions:
        raise RouterKeyError(f"{where}: a router certificate holds no IP addresses (RFC 8209 §3.1.3.5)")
    raw = extensions.get(oids.AUTONOMOUS_SYS_IDS)
    if raw is None:
        raise RouterKeyError(f"{where}: a router certificate holds AS numbers (RFC 8209 §3.1.3.5)")
    try:
        resources = rfc3779.decode(None, raw.value.value)
    except rfc3779.ResourceEncodingError as exc:
        raise RouterKeyError(f"{where}: {exc}") from exc
    if resources.inherit_asn or not resources.resources.asn:
        raise RouterKeyError(f"{where}: the AS numbers of a router certificate are explicit, not inherit")
    ski = extensions.get(ExtensionOID.SUBJECT_KEY_IDENTIFIER)
    aki = extensions.get(ExtensionOID.AUTHORITY_KEY_IDENTIFIER)
    crldp = extensions.get(ExtensionOID.CRL_DISTRIBUTION_POINTS)
    aia = extensions.get(ExtensionOID.AUTHORITY_INFORMATION_ACCESS)
    return RouterCertificate(
        asns=resources.resources.asn,
        key_id=ski.value.digest if ski is not None else b"",
        public_key=key.public_bytes(Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo),
        authority_key_id=aki.value.key_identifier if aki is not None else None,
        serial=cert.serial_number,
        not_before=cert.not_valid_before_utc,
        not_after=cert.not_valid_after_utc,
        cert=cert,
        router_id=_router_id(cert),
        crldp=_first_uri(crldp.value[0].full_name if crldp is not None and crldp.value else None),
        aia=_first_uri(
            [
                d.access_location
                for d in aia.value
                if d.access_method == AuthorityInformationAccessOID.CA_ISSUERS
            ]
            if aia is not None
            else None
        ),
    )


def _router_id(cert: x509.Certificate) -> IPv4Address | None:
    """The BGP Identifier a subject's serialNumber gives in 8 hex digits (None when absent or not that)."""
    found = cert.subject.get_attributes_for_oid(NameOID.SERIAL_NUMBER)
    text = str(found[0].value) if found else ""
    if len(text) != 8 or any(c not in "0123456789ABCDEFabcdef" for c in text):
        return None
    return IPv4Address(int(text, 16))


def _first_uri(names: list[x509.GeneralName] | None) -> str | None:
    uri = next((n for n in names or () if isinstance(n, x509.UniformResourceIdentifier)), None)
    return uri.value if uri is not None else None
