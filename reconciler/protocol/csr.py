"""The PKCS#10 request a child CA sends in an RFC 6492 ``issue`` (RFC 6487 §6).

A child proves it holds the key it wants certified and tells its parent where it publishes: the SIA of
the request (caRepository, rpkiManifest, and rpkiNotify when it offers RRDP) becomes the SIA of the
certificate the parent issues. The subject is only a suggestion (the parent picks the real one), so it is
``CN=<hex SKI>`` like every name this reconciler writes.

A parent refuses a request outside the profile -- RFC 6492 error 1203 -- and says what is wrong: a
relying party would reject the certificate it led to (an SIA without a trailing slash, krill#1030), or it
is not a CA request at all (a BGPsec router's P-256 request, RFC 8209, has no SIA and an EKU instead).
"""

from __future__ import annotations

from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import ExtensionOID, SignatureAlgorithmOID

from reconciler.protocol.errors import ProtocolError
from reconciler.rpki import der as strict
from reconciler.rpki import oids
from reconciler.rpki.cert import X509_ERRORS, subject_name
from reconciler.signers.adapter import SignerKey
from reconciler.signers.base import RSA_KEY_BITS, RSA_PUBLIC_EXPONENT, Signer, key_id

#: A CA request is about 1 KB; the bound keeps a hostile child from making the parent parse megabytes.
MAX_REQUEST_BYTES = 16 << 10

#: What reading a hostile request can raise besides the X.509 loader's own errors.
_DECODE_ERRORS: tuple[type[Exception], ...] = (*X509_ERRORS, *strict.DECODE_ERRORS)

_ALLOWED = {
    ExtensionOID.BASIC_CONSTRAINTS: "BasicConstraints",
    ExtensionOID.KEY_USAGE: "KeyUsage",
    ExtensionOID.SUBJECT_INFORMATION_ACCESS: "SubjectInfoAccess",
}
_ACCESS_NAMES = {
    oids.CA_REPOSITORY: "caRepository",
    oids.RPKI_MANIFEST: "rpkiManifest",
    oids.RPKI_NOTIFY: "rpkiNotify",
}
#: RFC 8209 §3.1.3.2: the EKU of a BGPsec router certificate.
_BGPSEC_ROUTER = x509.ObjectIdentifier("1.3.6.1.5.5.7.3.30")


@dataclass(frozen=True)
class CaRequest:
    """What a parent takes from a valid CA request: the key to certify and the SIA to put in the
    certificate."""

    public_key: rsa.RSAPublicKey
    ski: bytes
    ca_repository: str
    manifest: str
    notify: str | None


def build_ca_request(
    signer: Signer, key: bytes, ca_repository: str, manifest: str, notify: str | None
) -> bytes:
    """A PKCS#10 request (DER) for a CA certificate of ``key``, signed in ``signer``: BasicConstraints
    critical cA, KeyUsage critical keyCertSign and cRLSign, and the SIA; nothing else (RFC 6487 §6)."""
    where = "certificate request"
    _check_access(ca_repository, manifest, notify, where)
    public_key = signer.public_key(key)
    _check_key(public_key, where)
    access = [
        x509.AccessDescription(oids.CA_REPOSITORY, x509.UniformResourceIdentifier(ca_repository)),
        x509.AccessDescription(oids.RPKI_MANIFEST, x509.UniformResourceIdentifier(manifest)),
    ]
    if notify is not None:
        access.append(x509.AccessDescription(oids.RPKI_NOTIFY, x509.UniformResourceIdentifier(notify)))
    usage = x509.KeyUsage(
        digital_signature=False,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=True,
        crl_sign=True,
        encipher_only=False,
        decipher_only=False,
    )
    request = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(subject_name(key_id(public_key)))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(usage, critical=True)
        .add_extension(x509.SubjectInformationAccess(access), critical=False)
        .sign(SignerKey(signer, key), hashes.SHA256())
    )
    return request.public_bytes(Encoding.DER)


def parse_ca_request(der: bytes, where: str) -> CaRequest:
    """Read a child's CA request and check it against the profile: a valid signature by an RSA-2048 key,
    exactly the three extensions a CA request carries, an rsync caRepository ending in ``/``. A
    :class:`ProtocolError` says what is wrong otherwise."""
    if len(der) > MAX_REQUEST_BYTES:
        raise ProtocolError(f"{where}: {len(der)} bytes, more than a CA certificate request has")
    try:
        request = x509.load_der_x509_csr(der)
        public_key = request.public_key()
        extensions = list(request.extensions)
        signature_oid = request.signature_algorithm_oid
    except _DECODE_ERRORS as exc:
        raise ProtocolError(f"{where}: not a PKCS#10 certificate request ({exc})") from exc
    if not isinstance(public_key, rsa.RSAPublicKey):
        raise ProtocolError(f"{where}: {_not_rsa(public_key, extensions)}")
    _check_key(public_key, where)
    if signature_oid != SignatureAlgorithmOID.RSA_WITH_SHA256:
        raise ProtocolError(
            f"{where}: signed with {signature_oid.dotted_string}, not sha256WithRSAEncryption (RFC 7935 §2)"
        )
    if not request.is_signature_valid:
        raise ProtocolError(f"{where}: the signature does not verify with the key in the request")
    ca_repository, manifest, notify = _check_extensions(extensions, where)
    return CaRequest(public_key, key_id(public_key), ca_repository, manifest, notify)


def _check_extensions(
    extensions: list[x509.Extension[x509.ExtensionType]], where: str
) -> tuple[str, str, str | None]:
    """Exactly BasicConstraints cA, KeyUsage keyCertSign+cRLSign and the SIA; the SIA's three URIs."""
    found = {extension.oid: extension.value for extension in extensions}
    for oid in found:
        if oid not in _ALLOWED:
            raise ProtocolError(
                f"{where}: the extension {_extension_name(oid)} is not allowed in a CA certificate request "
                "(RFC 6487 §6 allows BasicConstraints, KeyUsage and SubjectInfoAccess only)"
            )
    constraints = found.get(ExtensionOID.BASIC_CONSTRAINTS)
    usage = found.get(ExtensionOID.KEY_USAGE)
    access = found.get(ExtensionOID.SUBJECT_INFORMATION_ACCESS)
    if not isinstance(constraints, x509.BasicConstraints):
        raise ProtocolError(f"{where}: no BasicConstraints extension (a CA certificate request needs it)")
    if not isinstance(usage, x509.KeyUsage):
        raise ProtocolError(f"{where}: no KeyUsage extension (a CA certificate request needs it)")
    if not isinstance(access, x509.SubjectInformationAccess):
        raise ProtocolError(f"{where}: no SubjectInfoAccess extension (a CA certificate request needs it)")
    if not constraints.ca:
        raise ProtocolError(
            f"{where}: BasicConstraints says cA FALSE; a CA certificate request needs cA TRUE"
        )
    if constraints.path_length is not None:
        raise ProtocolError(f"{where}: BasicConstraints has a path length, which RFC 6487 §4.8.1 forbids")
    if _usages(usage) != ["keyCertSign", "cRLSign"]:
        raise ProtocolError(
            f"{where}: KeyUsage is {', '.join(_usages(usage)) or 'empty'}; a CA certificate request has "
            "keyCertSign and cRLSign only (RFC 6487 §4.8.4)"
        )
    ca_repository, manifest, notify = _read_access(access, where)
    _check_access(ca_repository, manifest, notify, where)
    return ca_repository, manifest, notify


def _not_rsa(public_key: object, extensions: list[x509.Extension[x509.ExtensionType]]) -> str:
    """Why a non-RSA key cannot be a CA request, recognising the one such request RPKI knows of."""
    kind = type(public_key).__name__
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        kind = f"an EC key ({public_key.curve.name})"
    for extension in extensions:
        value = extension.value
        if isinstance(value, x509.ExtendedKeyUsage) and _BGPSEC_ROUTER in list(value):
            return (
                f"this is a BGPsec router key request (RFC 8209: {kind}, EKU bgpsec-router), not a CA "
                "certificate request"
            )
    return f"the key is {kind}; a CA certificate request needs an RSA-2048 key (RFC 7935 §3)"


def _check_key(public_key: rsa.RSAPublicKey, where: str) -> None:
    if public_key.key_size != RSA_KEY_BITS:
        raise ProtocolError(
            f"{where}: the key is RSA-{public_key.key_size}; RPKI CA keys are RSA-{RSA_KEY_BITS} "
            "(RFC 7935 §3)"
        )
    exponent = public_key.public_numbers().e
    if exponent != RSA_PUBLIC_EXPONENT:
        raise ProtocolError(
            f"{where}: the key's public exponent is {exponent}; RFC 7935 §3 requires {RSA_PUBLIC_EXPONENT}"
        )


def _extension_name(oid: x509.ObjectIdentifier) -> str:
    if oid == ExtensionOID.EXTENDED_KEY_USAGE:
        return f"ExtendedKeyUsage ({oid.dotted_string})"
    name = getattr(oid, "_name", "")
    return f"{name} ({oid.dotted_string})" if name and name != "Unknown OID" else oid.dotted_string


def _usages(usage: x509.KeyUsage) -> list[str]:
    names = [
        ("digitalSignature", usage.digital_signature),
        ("nonRepudiation", usage.content_commitment),
        ("keyEncipherment", usage.key_encipherment),
        ("dataEncipherment", usage.data_encipherment),
        ("keyAgreement", usage.key_agreement),
        ("keyCertSign", usage.key_cert_sign),
        ("cRLSign", usage.crl_sign),
    ]
    if usage.key_agreement:
        names += [("encipherOnly", usage.encipher_only), ("decipherOnly", usage.decipher_only)]
    return [name for name, present in names if present]


def _read_access(access: x509.SubjectInformationAccess, where: str) -> tuple[str, str, str | None]:
    seen: dict[x509.ObjectIdentifier, str] = {}
    for description in access:
        method = description.access_method
        name = _ACCESS_NAMES.get(method)
        if name is None:
            raise ProtocolError(
                f"{where}: the SIA holds the access method {method.dotted_string}; a CA certificate request "
                "has caRepository, rpkiManifest and rpkiNotify only"
            )
        location = description.access_location
        if not isinstance(location, x509.UniformResourceIdentifier):
            raise ProtocolError(f"{where}: the SIA {name} is not a URI")
        if method in seen:
            raise ProtocolError(f"{where}: the SIA holds more than one {name}")
        seen[method] = location.value
    for method in (oids.CA_REPOSITORY, oids.RPKI_MANIFEST):
        if method not in seen:
            raise ProtocolError(f"{where}: the SIA has no {_ACCESS_NAMES[method]}")
    return seen[oids.CA_REPOSITORY], seen[oids.RPKI_MANIFEST], seen.get(oids.RPKI_NOTIFY)


def _check_access(ca_repository: str, manifest: str, notify: str | None, where: str) -> None:
    if not ca_repository.startswith("rsync://"):
        raise ProtocolError(
            f"{where}: caRepository {ca_repository!r} is not an rsync URI (RFC 6487 §4.8.8.1)"
        )
    if not ca_repository.endswith("/"):
        raise ProtocolError(
            f"{where}: caRepository {ca_repository!r} does not end with '/' (it names a directory; "
            f"write {ca_repository + '/'!r})"
        )
    if not manifest.startswith("rsync://"):
        raise ProtocolError(f"{where}: rpkiManifest {manifest!r} is not an rsync URI (RFC 6487 §4.8.8.1)")
    if notify is not None and not notify.startswith("https://"):
        raise ProtocolError(f"{where}: rpkiNotify {notify!r} is not an https URI (RFC 8182 §3.2)")
