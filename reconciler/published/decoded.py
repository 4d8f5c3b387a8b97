"""Certificates, CRLs, manifests and ASPAs as the memo keeps them: what their decoding found, in JSON rows.

Decoding a manifest costs half a millisecond (asn1crypto reads the CMS envelope and its EE certificate,
and the envelope's signature is checked), a CA certificate a fifth of one: for a registry's tens of
thousands of CAs, most of a plan. What a decoder returns depends on the bytes alone, so it is remembered
under their SHA-256 (see ``published.memo``). Rebuilding the object from its row takes microseconds: the
``cryptography`` objects are loaded again from the very bytes (the EE certificate of a manifest from where
it sits inside them), and everything else is the row.

A row is only ever the result of a successful decoding of the same bytes (the memo keeps it with their
SHA-256, see ``PublishedState``); a row that does not fit them (a damaged memo: values of the wrong type,
numbers out of range, times without a zone) raises :class:`RowError`, a ``ValueError``, and never
anything else, and the bytes are decoded again.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from functools import wraps
from typing import Any, ParamSpec, TypeVar

from cryptography import x509

from reconciler.resources import AsnSet, IpSet, Resources
from reconciler.rpki import aspa, cms, crl, manifest, rfc3779
from reconciler.rpki import cert as rc
from reconciler.rpki.der import integer as der_integer

CERTIFICATE = "cer"
CRL = "crl"
MANIFEST = "mft"
ASPA = "asa"

Row = list[Any]

_P = ParamSpec("_P")
_T = TypeVar("_T")


#: What rebuilding from a row of the wrong shape or values can raise.
_ROW_ERRORS = (ValueError, TypeError, KeyError, IndexError, AttributeError, OverflowError, RecursionError)


class RowError(ValueError):
    """A memo row that does not describe the bytes it is kept with; they are decoded again."""


def _checked_row(rebuild: Callable[_P, _T]) -> Callable[_P, _T]:
    """Rows come from a file anyone with write access to the cache can edit: whatever rebuilding from a
    damaged one raises is a :class:`RowError`."""

    @wraps(rebuild)
    def rebuilt(*args: _P.args, **kwargs: _P.kwargs) -> _T:
        try:
            return rebuild(*args, **kwargs)
        except _ROW_ERRORS as exc:
            raise RowError(f"a memo row that does not fit its object: {exc}") from exc

    return rebuilt


def _moment(text: str) -> datetime:
    """A time of a row: ISO 8601 with its zone, as rows are written."""
    found = datetime.fromisoformat(text)
    if found.tzinfo is None:
        raise RowError(f"a time without a zone: {text!r}")
    return found


def _time(value: datetime) -> str:
    return value.isoformat()


def _ranges(ranges: tuple[tuple[int, int], ...]) -> list[list[int]]:
    return [[low, high] for low, high in ranges]


def _range_tuple(rows: list[list[int]]) -> tuple[tuple[int, int], ...]:
    return tuple((int(low), int(high)) for low, high in rows)


def certificate_row(found: rc.ResourceCertificate) -> Row:
    held = found.resources
    return [
        found.serial,
        found.key_id.hex(),
        found.authority_key_id.hex() if found.authority_key_id is not None else None,
        _time(found.not_before),
        _time(found.not_after),
        found.is_ca,
        [
            _ranges(held.resources.asn.ranges),
            _ranges(held.resources.ipv4.ranges),
            _ranges(held.resources.ipv6.ranges),
        ],
        held.inherit_asn,
        sorted(held.inherit_ip),
        found.sia,
        found.aia,
        found.crldp,
    ]


#: The serial number's place: after the certificate's and the TBSCertificate's headers and the version.
_SERIAL_WITHIN = 40


@_checked_row
def certificate_from_row(row: Row, der: bytes) -> rc.ResourceCertificate:
    """The certificate a row describes. The row must name the serial number these bytes carry (a row of
    another certificate is refused); ``cryptography`` parses the bytes only when asked (see
    ``rc.ResourceCertificate``)."""
    serial, key_id, aki, not_before, not_after, is_ca, held, inherit_asn, inherit_ip, sia, aia, crldp = row
    if der.find(der_integer(int(serial)), 0, _SERIAL_WITHIN) < 0:
        raise RowError("the row is not of these bytes")
    asn, ipv4, ipv6 = held
    return rc.ResourceCertificate(
        der=der,
        serial=int(serial),
        key_id=bytes.fromhex(key_id),
        authority_key_id=bytes.fromhex(aki) if aki is not None else None,
        not_before=_moment(not_before),
        not_after=_moment(not_after),
        is_ca=bool(is_ca),
        resources=rfc3779.DecodedResources(
            Resources(AsnSet(_range_tuple(asn)), IpSet(4, _range_tuple(ipv4)), IpSet(6, _range_tuple(ipv6))),
            inherit_asn=bool(inherit_asn),
            inherit_ip=frozenset(inherit_ip),
        ),
        sia={str(k): str(v) for k, v in sia.items()},
        aia=aia,
        crldp=crldp,
    )


def crl_row(found: crl.Crl) -> Row:
    return [
        found.number,
        _time(found.this_update),
        _time(found.next_update),
        found.authority_key_id.hex() if found.authority_key_id is not None else None,
        [[r.serial, _time(r.revoked_at)] for r in found.revoked],
    ]


@_checked_row
def crl_from_row(row: Row, der: bytes) -> crl.Crl:
    number, this_update, next_update, aki, revoked = row
    return crl.Crl(
        der=der,
        number=int(number),
        this_update=_moment(this_update),
        next_update=_moment(next_update),
        authority_key_id=bytes.fromhex(aki) if aki is not None else None,
        revoked=tuple(crl.Revocation(int(s), _moment(t)) for s, t in revoked),
        crl=x509.load_der_x509_crl(der),
    )


def _envelope_row(signed: cms.SignedObject, der: bytes) -> Row | None:
    """The signed-object envelope as the first five values of its row; None when the eContent or the
    EE certificate is not a plain slice of the bytes (a BER-style constructed string, say): such an
    object is decoded every time."""
    econtent_at = der.find(signed.econtent)
    ee_at = der.find(signed.ee.der)
    if econtent_at < 0 or ee_at < 0:
        return None
    return [
        signed.content_type,
        [econtent_at, len(signed.econtent)],
        [ee_at, len(signed.ee.der)],
        certificate_row(signed.ee),
        _time(signed.signing_time) if signed.signing_time is not None else None,
    ]


def _envelope_from_row(envelope: Row, der: bytes) -> cms.SignedObject:
    content_type, (econtent_at, econtent_length), (ee_at, ee_length), ee, signing_time = envelope
    return cms.SignedObject(
        content_type=str(content_type),
        econtent=der[econtent_at : econtent_at + econtent_length],
        ee=certificate_from_row(ee, der[ee_at : ee_at + ee_length]),
        signing_time=_moment(signing_time) if signing_time is not None else None,
    )


def manifest_row(signed: cms.SignedObject, content: manifest.ManifestContent, der: bytes) -> Row | None:
    """None when the envelope cannot be kept as a row (see :func:`_envelope_row`)."""
    envelope = _envelope_row(signed, der)
    if envelope is None:
        return None
    return [
        *envelope,
        content.number,
        _time(content.this_update),
        _time(content.next_update),
        [[name, digest.hex()] for name, digest in content.files],
    ]


def manifest_number(row: Row) -> int:
    """The number in a manifest's row, without rebuilding the manifest (raises :class:`RowError` when the
    row has no such field)."""
    try:
        number = row[5]
    except IndexError as exc:
        raise RowError("a manifest row without a number") from exc
    if not isinstance(number, int) or isinstance(number, bool) or number < 0:
        raise RowError("a manifest row whose number is not one")
    return number


@_checked_row
def manifest_from_row(row: Row, der: bytes) -> tuple[cms.SignedObject, manifest.ManifestContent]:
    number, this_update, next_update, files = row[5:]
    signed = _envelope_from_row(row[:5], der)
    content = manifest.ManifestContent(
        number=int(number),
        this_update=_moment(this_update),
        next_update=_moment(next_update),
        files=tuple((str(name), bytes.fromhex(digest)) for name, digest in files),
    )
    return signed, content


def aspa_row(signed: cms.SignedObject, content: aspa.AspaContent, der: bytes) -> Row | None:
    """None when the envelope cannot be kept as a row (see :func:`_envelope_row`)."""
    envelope = _envelope_row(signed, der)
    return None if envelope is None else [*envelope, content.customer, list(content.providers)]


@_checked_row
def aspa_from_row(row: Row, der: bytes) -> tuple[cms.SignedObject, aspa.AspaContent]:
    """The ASPA a row describes; its content is held to the profile again (a row is not trusted to)."""
    customer, providers = row[5:]
    content = aspa.AspaContent(int(customer), tuple(int(p) for p in providers))
    if aspa.problems(content.customer, content.providers):
        raise RowError("the row's ASPA breaks the profile")
    return _envelope_from_row(row[:5], der), content
