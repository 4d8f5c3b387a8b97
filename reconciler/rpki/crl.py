"""Certificate revocation lists (RFC 6487 §5): build and read.

Exactly two extensions, AKI and CRLNumber, both non-critical; entries carry no extensions (FORT drops the
whole publication point otherwise); an empty list omits ``revokedCertificates`` altogether.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import Encoding

from reconciler.rpki import der as strict
from reconciler.rpki.cert import X509_ERRORS, Issuer

_DECODE_ERRORS: tuple[type[Exception], ...] = (*X509_ERRORS, *strict.DECODE_ERRORS, x509.ExtensionNotFound)


class CrlError(ValueError):
    """A CRL that cannot be read."""


@dataclass(frozen=True, slots=True)
class Revocation:
    serial: int
    revoked_at: datetime


@dataclass(frozen=True, slots=True)
class Crl:
    der: bytes
    number: int
    this_update: datetime
    next_update: datetime
    authority_key_id: bytes | None
    revoked: tuple[Revocation, ...]
    crl: x509.CertificateRevocationList


def build(
    *,
    issuer: Issuer,
    number: int,
    this_update: datetime,
    next_update: datetime,
    revoked: tuple[Revocation, ...],
) -> bytes:
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(issuer.name)
        .last_update(this_update)
        .next_update(next_update)
        .add_extension(x509.AuthorityKeyIdentifier(issuer.key_id, None, None), critical=False)
        .add_extension(x509.CRLNumber(number), critical=False)
    )
    for entry in sorted(revoked, key=lambda r: r.serial):
        builder = builder.add_revoked_certificate(
            x509.RevokedCertificateBuilder()
            .serial_number(entry.serial)
            .revocation_date(entry.revoked_at)
            .build()
        )
    return builder.sign(issuer.key, hashes.SHA256()).public_bytes(Encoding.DER)


def decode(der: bytes, *, where: str = "CRL") -> Crl:
    """Read a CRL; raise CrlError naming ``where`` when it cannot be read, or when it is not exactly one
    DER value (RFC 6487 §5)."""
    try:
        strict.require_der(der)
        crl = x509.load_der_x509_crl(der)
        number = crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number
        try:
            aki: bytes | None = crl.extensions.get_extension_for_class(
                x509.AuthorityKeyIdentifier
            ).value.key_identifier
        except x509.ExtensionNotFound:
            aki = None
        next_update = crl.next_update_utc
        revoked = tuple(Revocation(r.serial_number, r.revocation_date_utc) for r in crl)
        this_update = crl.last_update_utc
    except strict.NotDerError as exc:
        raise CrlError(f"{where}: RFC 6487 §5: the CRL is not DER: {exc}") from exc
    except _DECODE_ERRORS as exc:
        raise CrlError(f"{where}: not a readable RPKI CRL: {exc}") from exc
    if next_update is None:
        raise CrlError(f"{where}: RFC 6487 §5: nextUpdate is missing")
    return Crl(der, number, this_update, next_update, aki, revoked, crl)
