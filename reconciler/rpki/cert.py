"""Resource certificates (RFC 6487 with RFC 3779 extensions): build CA and EE certificates, and read them.

Built with pyca/cryptography's builder; the RFC 3779 extensions are DER from ``rfc3779`` wrapped as
``UnrecognizedExtension``. Every extension the profile allows appears at most once with the criticality
RFC 6487 §4.8 gives it, and nothing else is added (FORT rejects unknown critical extensions).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtensionOID, NameOID

from reconciler.resources import AsnSet, Resources
from reconciler.rpki import der as strict
from reconciler.rpki import oids, rfc3779
from reconciler.signers.base import key_id

# What cryptography raises on a damaged certificate or CRL besides ValueError: a reader must turn each
# into "unreadable", never let it stop a plan.
X509_ERRORS: tuple[type[Exception], ...] = (
    ValueError,
    UnsupportedAlgorithm,
    x509.InvalidVersion,
    x509.DuplicateExtension,
    x509.UnsupportedGeneralNameType,
)


_DECODE_ERRORS: tuple[type[Exception], ...] = (*X509_ERRORS, *strict.DECODE_ERRORS)


class CertificateError(ValueError):
    """A certificate that does not follow the RPKI profile."""


def subject_name(ski: bytes) -> x509.Name:
    """RFC 6487 §4.5: a CommonName only, PrintableString; the key identifier in hex keeps it unique."""
    return x509.Name(
        [
            x509.NameAttribute(
                NameOID.COMMON_NAME, ski.hex().upper(), _type=x509.name._ASN1Type.PrintableString
            )
        ]
    )


@dataclass(frozen=True, slots=True)
class Issuer:
    """Who signs: the issuing CA's key (as a private-key handle), name and key identifier."""

    key: rsa.RSAPrivateKey
    key_id: bytes
    certificate_uri: str | None  # AIA; None for a self-signed trust anchor
    crl_uri: str | None  # CRLDP; None for a self-signed trust anchor

    @property
    def name(self) -> x509.Name:
        return subject_name(self.key_id)


@dataclass(frozen=True, slots=True)
class CaAccess:
    """SIA of a CA certificate (RFC 6487 §4.8.8.1)."""

    repository: str  # rsync URI ending in "/"
    manifest: str
    notify: str | None = None


@dataclass(frozen=True, slots=True)
class EeResources:
    """The RFC 3779 extensions of a signed object's EE certificate (DER values; None: absent), as each
    object type wants them: a ROA's its prefixes and no AS numbers, a manifest's both inherited (RFC 9286
    §5.1), an ASPA's exactly the customer AS and no IP addresses (what FORT requires, and rpki-client's
    "superfluous IP Resources extension" otherwise)."""

    ip: bytes | None
    asn: bytes | None

    @classmethod
    def prefixes(cls, resources: Resources) -> EeResources:
        return cls(rfc3779.encode_ip(resources), None)

    @classmethod
    def inherit(cls) -> EeResources:
        return cls(rfc3779.encode_ip(None), rfc3779.encode_asn(None))

    @classmethod
    def asns(cls, asns: AsnSet) -> EeResources:
        return cls(None, rfc3779.encode_asn(asns))


def _access(method: x509.ObjectIdentifier, uri: str) -> x509.AccessDescription:
    return x509.AccessDescription(method, x509.UniformResourceIdentifier(uri))


def build(
    *,
    issuer: Issuer,
    subject_key: rsa.RSAPublicKey,
    serial: int,
    not_before: datetime,
    not_after: datetime,
    ip_resources: bytes | None,
    as_resources: bytes | None,
    ca: CaAccess | None = None,
    signed_object: str | None = None,
) -> bytes:
    """Issue a CA certificate (``ca`` given) or an EE certificate (``signed_object`` given); DER."""
    ski = key_id(subject_key)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject_name(ski))
        .issuer_name(issuer.name)
        .public_key(subject_key)
        .serial_number(serial)
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        # RFC 6487 §4.8.2: SKI is the SHA-1 of the key.
        .add_extension(x509.SubjectKeyIdentifier(ski), critical=False)
    )
    if issuer.certificate_uri is not None:
        # §4.8.3: AKI holds the keyIdentifier only; a self-signed trust anchor carries none.
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier(issuer.key_id, None, None), critical=False
        )
        # §4.8.6, §4.8.7: one CRL distribution point and one caIssuers URI, both rsync.
        dp = x509.DistributionPoint([x509.UniformResourceIdentifier(issuer.crl_uri or "")], None, None, None)
        builder = builder.add_extension(x509.CRLDistributionPoints([dp]), critical=False)
        builder = builder.add_extension(
            x509.AuthorityInformationAccess(
                [_access(AuthorityInformationAccessOID.CA_ISSUERS, issuer.certificate_uri)]
            ),
            critical=False,
        )
    if ca is not None:
        # §4.8.1, §4.8.4: a CA has cA=TRUE without a path length and signs certificates and CRLs.
        builder = builder.add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        builder = builder.add_extension(_key_usage(ca=True), critical=True)
        access = [_access(oids.CA_REPOSITORY, ca.repository), _access(oids.RPKI_MANIFEST, ca.manifest)]
        if ca.notify:
            access.append(_access(oids.RPKI_NOTIFY, ca.notify))
        builder = builder.add_extension(x509.SubjectInformationAccess(access), critical=False)
    else:
        # §4.8.4: an EE certificate only signs its one object; no BasicConstraints at all.
        if signed_object is None:
            raise CertificateError("an EE certificate needs the URI of its signed object")
        builder = builder.add_extension(_key_usage(ca=False), critical=True)
        builder = builder.add_extension(
            x509.SubjectInformationAccess([_access(oids.SIGNED_OBJECT, signed_object)]), critical=False
        )
    # §4.8.9: exactly one policy, no qualifiers.
    builder = builder.add_extension(
        x509.CertificatePolicies([x509.PolicyInformation(oids.RPKI_POLICY, None)]), critical=True
    )
    # §4.8.10, §4.8.11: RFC 3779 resources, critical.
    if ip_resources is not None:
        builder = builder.add_extension(
            x509.UnrecognizedExtension(oids.IP_ADDR_BLOCKS, ip_resources), critical=True
        )
    if as_resources is not None:
        builder = builder.add_extension(
            x509.UnrecognizedExtension(oids.AUTONOMOUS_SYS_IDS, as_resources), critical=True
        )
    return builder.sign(issuer.key, hashes.SHA256()).public_bytes(Encoding.DER)


def _key_usage(*, ca: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=not ca,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=ca,
        crl_sign=ca,
        encipher_only=False,
        decipher_only=False,
    )


@dataclass(frozen=True, slots=True)
class ResourceCertificate:
    """What the reconciler needs to know of a published certificate."""

    der: bytes
    serial: int
    key_id: bytes
    authority_key_id: bytes | None
    not_before: datetime
    not_after: datetime
    is_ca: bool
    resources: rfc3779.DecodedResources
    sia: dict[str, str]  # access method dotted OID -> URI (first of each)
    aia: str | None
    crldp: str | None
    #: The certificate as ``cryptography`` parsed it, and its key; for one rebuilt from the object memo,
    #: parsed from ``der`` when first asked for: a registry's plan rebuilds 40,000 certificates and checks
    #: a signature with a handful.
    _parsed: list[tuple[x509.Certificate, rsa.RSAPublicKey]] = field(
        default_factory=list, compare=False, repr=False
    )

    @property
    def cert(self) -> x509.Certificate:
        return self._parse()[0]

    @property
    def public_key(self) -> rsa.RSAPublicKey:
        return self._parse()[1]

    def _parse(self) -> tuple[x509.Certificate, rsa.RSAPublicKey]:
        if not self._parsed:
            cert = x509.load_der_x509_certificate(self.der)
            public = cert.public_key()
            if not isinstance(public, rsa.RSAPublicKey):  # decoding refused it before it was remembered
                raise CertificateError("RFC 7935 §3: the key is not RSA")
            self._parsed.append((cert, public))
        return self._parsed[0]

    @property
    def notify(self) -> str | None:
        return self.sia.get(oids.RPKI_NOTIFY.dotted_string)

    @property
    def repository(self) -> str | None:
        return self.sia.get(oids.CA_REPOSITORY.dotted_string)

    @property
    def manifest_uri(self) -> str | None:
        return self.sia.get(oids.RPKI_MANIFEST.dotted_string)

    @property
    def signed_object(self) -> str | None:
        return self.sia.get(oids.SIGNED_OBJECT.dotted_string)


def _ext_value(cert: x509.Certificate, oid: x509.ObjectIdentifier) -> x509.ExtensionType | None:
    try:
        return cert.extensions.get_extension_for_oid(oid).value
    except x509.ExtensionNotFound:
        return None


def _raw(cert: x509.Certificate, oid: x509.ObjectIdentifier) -> bytes | None:
    value = _ext_value(cert, oid)
    return value.value if isinstance(value, x509.UnrecognizedExtension) else None


def decode(der: bytes, *, where: str = "certificate") -> ResourceCertificate:
    """Read a resource certificate; raise CertificateError naming ``where`` when it cannot be read, or
    when it is not exactly one DER value (RFC 6487 §4)."""
    try:
        strict.require_der(der)
        cert = x509.load_der_x509_certificate(der)
        public = cert.public_key()
        if not isinstance(public, rsa.RSAPublicKey):
            raise CertificateError(f"{where}: RFC 7935 §3: the key is not RSA")
        ski = _ext_value(cert, ExtensionOID.SUBJECT_KEY_IDENTIFIER)
        aki = _ext_value(cert, ExtensionOID.AUTHORITY_KEY_IDENTIFIER)
        bc = _ext_value(cert, ExtensionOID.BASIC_CONSTRAINTS)
        sia_ext = _ext_value(cert, ExtensionOID.SUBJECT_INFORMATION_ACCESS)
        aia_ext = _ext_value(cert, ExtensionOID.AUTHORITY_INFORMATION_ACCESS)
        crldp_ext = _ext_value(cert, ExtensionOID.CRL_DISTRIBUTION_POINTS)
        resources = rfc3779.decode(_raw(cert, oids.IP_ADDR_BLOCKS), _raw(cert, oids.AUTONOMOUS_SYS_IDS))
        not_before, not_after = cert.not_valid_before_utc, cert.not_valid_after_utc
    except CertificateError:
        raise
    except strict.NotDerError as exc:
        raise CertificateError(f"{where}: RFC 6487 §4: the certificate is not DER: {exc}") from exc
    except rfc3779.ResourceEncodingError as exc:
        raise CertificateError(f"{where}: RFC 6487 §4.8.10, §4.8.11: {exc}") from exc
    except _DECODE_ERRORS as exc:
        raise CertificateError(f"{where}: not a readable certificate: {exc}") from exc
    if not isinstance(ski, x509.SubjectKeyIdentifier):
        raise CertificateError(f"{where}: RFC 6487 §4.8.2: no subject key identifier")
    sia: dict[str, str] = {}
    if isinstance(sia_ext, x509.SubjectInformationAccess):
        for desc in sia_ext:
            sia.setdefault(desc.access_method.dotted_string, str(desc.access_location.value))
    aia = None
    if isinstance(aia_ext, x509.AuthorityInformationAccess):
        aia = next((str(d.access_location.value) for d in aia_ext), None)
    crldp = None
    if isinstance(crldp_ext, x509.CRLDistributionPoints):
        crldp = next((str(n.value) for dp in crldp_ext for n in dp.full_name or ()), None)
    return ResourceCertificate(
        der=der,
        serial=cert.serial_number,
        key_id=ski.digest,
        authority_key_id=aki.key_identifier if isinstance(aki, x509.AuthorityKeyIdentifier) else None,
        not_before=not_before,
        not_after=not_after,
        is_ca=isinstance(bc, x509.BasicConstraints) and bc.ca,
        resources=resources,
        sia=sia,
        aia=aia,
        crldp=crldp,
        _parsed=[(cert, public)],
    )


def verify_signed_by(cert: x509.Certificate, issuer_key: rsa.RSAPublicKey) -> bool:
    """True when ``issuer_key`` made this certificate's signature."""
    try:
        issuer_key.verify(cert.signature, cert.tbs_certificate_bytes, padding.PKCS1v15(), hashes.SHA256())
    except InvalidSignature:
        return False
    return True
