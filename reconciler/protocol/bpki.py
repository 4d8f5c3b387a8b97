"""BPKI identity certificates: the self-made trust anchors that CAs exchange in RFC 8183 files.

An identity certificate does one thing: its key signs the one-off EE certificates (and the CRL) of each
RFC 6492 / RFC 8181 message. So a peer is recognised by its identity's **key**, never by a chain of names:
real registries' identities are not self-signed (APNIC, AFRINIC), name issuers that differ from their own
subject (LACNIC), carry path length constraints, 4096-bit keys, authority key identifiers with issuer and
serial, and Krill before 0.10 wrote them in BER that is not DER (an explicit ``critical FALSE``), which
pyca/cryptography refuses to load. They are therefore read with asn1crypto, and only what the signature
check needs is demanded: an RSA key and ``cA`` set. Whether an identity is still valid is the caller's
decision (it depends on the time of the message and on the peer's policy), never this module's.

Our own identities follow the profile Krill and rpki-rs generate (delegated-ca.md §1.3): RSA-2048 in a
signer, self-signed, ``CN=<hex SKI>``, serial 1, valid for 15 years from five minutes ago.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from asn1crypto import keys as asn1_keys
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.serialization import Encoding, load_der_public_key

from reconciler.protocol.errors import ProtocolError
from reconciler.rpki import der as strict
from reconciler.rpki.cert import subject_name
from reconciler.signers.adapter import SignerKey
from reconciler.signers.base import Signer, key_id

#: An identity certificate is about a kilobyte; RFC 8183's schema allows 512000 Base64 characters for
#: the whole element, which is the bound here too: nothing larger is a certificate a peer meant to send.
MAX_IDENTITY_BYTES = 384_000

#: Krill's ``ID_CERTIFICATE_VALIDITY_YEARS``: an identity cannot be rolled without a new RFC 8183
#: exchange with every peer, so it is made to outlive any CA that uses it.
IDENTITY_VALIDITY_YEARS = 15
#: Backdated a little so that a peer whose clock is slightly behind already accepts it.
CLOCK_SKEW = timedelta(minutes=5)

#: The prefix of an identity key's label in a signer. CA names are ``[A-Za-z0-9-]`` and CA key labels
#: ``<ca>`` or ``<ca>_g<N>``; the dot keeps an identity label from ever being a CA key's label, and a dot
#: is a valid character both in a file name (the file signer's ``<label>.pem``) and in a PKCS#11
#: ``CKA_LABEL`` (a colon, by contrast, cannot be copied to a FAT or SMB backup of the key directory).
IDENTITY_LABEL_PREFIX = "bpki-identity."
_OWNER = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]{0,63}")

#: Short names of attribute types as OpenSSL prints them, so that the subject shown here reads exactly
#: like ``openssl x509 -noout -subject`` (the tool an operator compares it with).
_SHORT_NAMES = {
    "2.5.4.3": "CN",
    "2.5.4.4": "SN",
    "2.5.4.5": "serialNumber",
    "2.5.4.6": "C",
    "2.5.4.7": "L",
    "2.5.4.8": "ST",
    "2.5.4.9": "street",
    "2.5.4.10": "O",
    "2.5.4.11": "OU",
    "2.5.4.12": "title",
    "2.5.4.42": "GN",
    "2.5.4.46": "dnQualifier",
    "0.9.2342.19200300.100.1.1": "UID",
    "0.9.2342.19200300.100.1.25": "DC",
    "1.2.840.113549.1.9.1": "emailAddress",
}
_ESCAPED = re.compile(r'([,+"\\<>;])')

#: The digests an RSA PKCS#1 v1.5 signature of an identity certificate may use, for ``self_signed``.
_HASHES: dict[str, type[hashes.HashAlgorithm]] = {
    "sha1": hashes.SHA1,
    "sha224": hashes.SHA224,
    "sha256": hashes.SHA256,
    "sha384": hashes.SHA384,
    "sha512": hashes.SHA512,
}


@dataclass(frozen=True)
class IdentityCertificate:
    """A peer's (or our own) BPKI trust anchor, as far as verifying and signing messages needs it.

    ``ski`` is the certificate's subject key identifier, or the SHA-1 of its key when it has none (the
    value a peer's EE certificates carry as their authority key identifier). ``subject`` is for people
    only: it is never compared, since peers are recognised by key. ``self_signed`` says whether the
    certificate's own key verifies its signature (informative: APNIC's and AFRINIC's are not)."""

    der: bytes
    public_key: rsa.RSAPublicKey
    ski: bytes
    subject: str
    not_before: datetime
    not_after: datetime
    self_signed: bool

    def fingerprint(self) -> str:
        """Hex SHA-256 of the certificate, for showing an operator which identity is configured (the
        value to compare over the phone with the peer's own)."""
        return hashlib.sha256(self.der).hexdigest()


def identity_label(owner: str) -> str:
    """The signer label of the identity key of ``owner``: a CA's name, or ``"repository"`` for the
    publication server. One key per owner, found again by this label after a restart."""
    if not _OWNER.fullmatch(owner):
        raise ValueError(f"not a CA name or 'repository': {owner!r}")
    return IDENTITY_LABEL_PREFIX + owner


def _value_text(value: object) -> str:
    if isinstance(value, bytes):
        return "#" + value.hex()
    text = _ESCAPED.sub(r"\\\1", str(value))
    return "".join(f"\\{ord(c):02X}" if ord(c) < 0x20 or ord(c) == 0x7F else c for c in text)


def name_text(name: asn1_x509.Name) -> str:
    """A distinguished name in OpenSSL's default one-line form (``C = AU, O = APNIC Pty Ltd, CN = …``),
    attributes in the order the certificate holds them."""
    parts = []
    for rdn in name.chosen:
        pieces = []
        for attribute in rdn:
            oid = attribute["type"].dotted
            pieces.append(f"{_SHORT_NAMES.get(oid, oid)} = {_value_text(attribute['value'].native)}")
        parts.append(" + ".join(pieces))
    return ", ".join(parts)


def _verifies(cert: asn1_x509.Certificate, key: rsa.RSAPublicKey) -> bool:
    """True when ``key`` made the signature of ``cert``, checked over the certificate's original bytes
    (re-encoding a Krill 0.9 certificate as DER would change them)."""
    algorithm = cert["signature_algorithm"]
    try:
        digest = _HASHES.get(algorithm.hash_algo)
        if algorithm.signature_algo != "rsassa_pkcs1v15" or digest is None:
            return False
        key.verify(
            cert["signature_value"].native, cert["tbs_certificate"].dump(), padding.PKCS1v15(), digest()
        )
    except (InvalidSignature, ValueError):
        return False
    return True


def _rsa_key(spki: asn1_keys.PublicKeyInfo, where: str) -> rsa.RSAPublicKey:
    if spki["algorithm"]["algorithm"].native != "rsa":
        found = spki["algorithm"]["algorithm"].dotted
        raise ProtocolError(
            f"{where}: the identity certificate's key is not RSA (algorithm {found}); RFC 6492 and RFC 8181 "
            "messages are signed with RSA keys: ask the peer for an RSA identity"
        )
    try:
        public = load_der_public_key(spki.dump())
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise ProtocolError(f"{where}: the identity certificate's RSA key cannot be read: {exc}") from exc
    if not isinstance(public, rsa.RSAPublicKey):  # pragma: no cover - the algorithm said RSA
        raise ProtocolError(f"{where}: the identity certificate's key is not RSA")
    return public


def load_identity(der: bytes, where: str) -> IdentityCertificate:
    """Read a peer's identity certificate, tolerant of every form real peers send (see the module's
    docstring). Refuses a key that is not RSA, a certificate without ``cA`` (an EE certificate pasted
    instead of the trust anchor is the usual mistake) and anything that is not one certificate, with a
    :class:`ProtocolError` naming ``where`` and the reason. Validity dates are read, not judged."""
    if len(der) > MAX_IDENTITY_BYTES:
        raise ProtocolError(
            f"{where}: {len(der)} bytes, more than the {MAX_IDENTITY_BYTES} an identity certificate may have"
        )
    try:
        strict.require_one_ber(der)
        cert = asn1_x509.Certificate.load(der, strict=True)
        tbs = cert["tbs_certificate"]
        spki = tbs["subject_public_key_info"]
        constraints = cert.basic_constraints_value
        is_ca = bool(constraints is not None and constraints["ca"].native)
        ski = cert.key_identifier
        subject = name_text(tbs["subject"])
        not_before = tbs["validity"]["not_before"].native
        not_after = tbs["validity"]["not_after"].native
        bits = spki["public_key"].contents[1:] if spki["algorithm"]["algorithm"].native == "rsa" else b""
    except strict.NotDerError as exc:
        raise ProtocolError(f"{where}: not an identity certificate: {exc}") from exc
    except strict.DECODE_ERRORS as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ProtocolError(f"{where}: not a readable X.509 identity certificate: {reason}") from exc
    public = _rsa_key(spki, where)
    if not is_ca:
        raise ProtocolError(
            f"{where}: the certificate is not a CA certificate (BasicConstraints cA is "
            f"{'missing' if constraints is None else 'false'}): RFC 8183 wants the sender's BPKI trust "
            "anchor here, not an EE certificate; ask the peer for the identity certificate from its "
            "child_request, parent_response, publisher_request or repository_response"
        )
    return IdentityCertificate(
        der=bytes(der),
        public_key=public,
        ski=bytes(ski) if ski else hashlib.sha1(bits).digest(),  # noqa: S324 - RFC 6487 §4.8.2 key id
        subject=subject,
        not_before=not_before,
        not_after=not_after,
        self_signed=_verifies(cert, public),
    )


def _years_later(moment: datetime, years: int) -> datetime:
    try:
        return moment.replace(year=moment.year + years)
    except ValueError:  # 29 February into a year without one
        return moment.replace(year=moment.year + years, day=28)


def create_identity(signer: Signer, key: bytes, now: datetime) -> IdentityCertificate:
    """A self-signed BPKI trust anchor for ``key`` (which stays in ``signer``), in the profile Krill and
    rpki-rs generate, so that every implementation that talks to Krill accepts it. The certificate is
    made again from the key whenever needed; it is the key, not these bytes, that peers recognise, but a
    peer keeps the certificate it was given, so callers store what they hand out."""
    public = signer.public_key(key)
    ski = key_id(public)
    name = subject_name(ski)
    start = now.replace(microsecond=0) - CLOCK_SKEW
    der = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(public)
        .serial_number(1)
        .not_valid_before(start)
        .not_valid_after(_years_later(start, IDENTITY_VALIDITY_YEARS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier(ski), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier(ski, None, None), critical=False)
        .sign(SignerKey(signer, key), hashes.SHA256())
        .public_bytes(Encoding.DER)
    )
    return load_identity(der, f"the identity certificate made for key {ski.hex()}")
