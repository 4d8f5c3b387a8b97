"""The CMS wrapper of RFC 6492 and RFC 8181 messages (RFC 6492 §3.1; delegated-ca.md §2.2).

Each message is SignedData around the XML (eContentType id-ct-xml) with exactly one EE certificate and
one CRL, both issued by the sender's identity key. Peers are verified **by key**: the EE certificate must
be signed by the key of the identity certificate exchanged out of band (and name it as its authority key
identifier, if it names one at all), whatever the names say; LACNIC's EE certificates name an issuer that
is not their identity's subject, so chain building by name, as OpenSSL does it, would refuse a genuine
parent.

Time checks are a knob (``strict_time``) because real parents let their BPKI material lapse: AFRINIC's
test system sent a CRL that had expired 18 months earlier, APNIC's testbed an EE certificate and CRL
expired for weeks. Strict is the default (what rpki-rs does); relaxing it for one peer still demands every
signature and key check, and replay protection (the signing time, see ``replay``) still applies.

What we send follows the profile Krill and rpki-rs generate: a fresh in-memory key per message for the EE
certificate (never stored: it signs one message and is gone), valid five minutes either side of the
signing time, and an empty CRL of the same validity, both signed by the identity key inside the signer.
A busy server may sign many messages with one such key and certificate within their validity
(:class:`MessageKey`).
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime

from asn1crypto import algos, cms, core
from asn1crypto import crl as asn1_crl
from asn1crypto import keys as asn1_keys
from asn1crypto import x509 as asn1_x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat, load_der_public_key

from reconciler.protocol.bpki import CLOCK_SKEW, IdentityCertificate
from reconciler.protocol.errors import CmsError, ProtocolError
from reconciler.rpki import der as strict
from reconciler.signers.base import Signer, key_id
from reconciler.signers.files import OneTimeKey

CT_XML = "1.2.840.113549.1.9.16.1.28"
_SIGNED_DATA = "1.2.840.113549.1.7.2"

#: The largest CMS message read: the publication server accepts RFC 8181 bodies up to 16 MiB (a full
#: re-publication of a large CA); an up-down message is far smaller (LACNIC's list_response: 240 KB).
MAX_CMS_BYTES = 16 << 20

# SHA-256 with parameters absent (RFC 5754 §2), and the two RSA signature algorithms peers use in a
# SignerInfo: rsaEncryption (Krill, APNIC, AFRINIC, rpkid) and sha256WithRSAEncryption (LACNIC, RIPE NCC).
_SHA256 = bytes.fromhex("300b0609608648016503040201")
_RSA_ENCRYPTION = bytes.fromhex("300d06092a864886f70d0101010500")
_SHA256_RSA = bytes.fromhex("300d06092a864886f70d01010b0500")
_SIGNER_INFO_ALGORITHMS = frozenset({"rsassa_pkcs1v15", "sha256_rsa"})


@dataclass(frozen=True)
class Verified:
    """A message whose signature checked out: its XML, when the peer signed it (for the replay guard)
    and the key identifier of its EE certificate (for logs)."""

    xml: bytes
    signing_time: datetime
    ee_ski: bytes


def _utc(moment: datetime, what: str) -> datetime:
    if moment.tzinfo is None:
        raise ValueError(f"{what} must be a timezone-aware datetime")
    return moment.astimezone(UTC)


def _when(moment: datetime) -> str:
    return f"{moment.astimezone(UTC):%Y-%m-%dT%H:%M:%SZ}"


def _time(moment: datetime) -> asn1_x509.Time:
    """RFC 5280 §4.1.2.5: UTCTime through 2049, GeneralizedTime from 2050."""
    name = "utc_time" if moment.year < 2050 else "general_time"
    return asn1_x509.Time(name=name, value=moment)


# --------------------------------------------------------------------------------------------- signing


def _signing_time(moment: datetime) -> cms.Time:
    """RFC 5652 §11.3: UTCTime for 1950 through 2049, GeneralizedTime otherwise."""
    return cms.Time(name="utc_time" if moment.year < 2050 else "generalized_time", value=moment)


def _issuer_name(identity: IdentityCertificate) -> asn1_x509.Name:
    """The identity's subject exactly as its certificate holds it: a relying party that does chain
    building by name (OpenSSL) then finds the identity as the EE's issuer."""
    return asn1_x509.Certificate.load(identity.der)["tbs_certificate"]["subject"]


def _ee_certificate(
    identity: IdentityCertificate,
    signer: Signer,
    key: bytes,
    ee: OneTimeKey,
    *,
    start: datetime,
    end: datetime,
) -> bytes:
    tbs = asn1_x509.TbsCertificate(
        {
            "version": "v3",
            "serial_number": secrets.randbits(127) + 1,
            "signature": algos.SignedDigestAlgorithm.load(_SHA256_RSA),
            "issuer": _issuer_name(identity),
            "validity": {"not_before": _time(start), "not_after": _time(end)},
            "subject": asn1_x509.Name.build({"common_name": ee.key_id.hex().upper()}, use_printable=True),
            "subject_public_key_info": asn1_keys.PublicKeyInfo.load(
                ee.public.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
            ),
            "extensions": [
                {"extn_id": "key_identifier", "critical": False, "extn_value": ee.key_id},
                {
                    "extn_id": "authority_key_identifier",
                    "critical": False,
                    "extn_value": {"key_identifier": identity.ski},
                },
            ],
        }
    )
    signature = signer.sign(key, tbs.dump())
    return bytes(
        asn1_x509.Certificate(
            {
                "tbs_certificate": tbs,
                "signature_algorithm": algos.SignedDigestAlgorithm.load(_SHA256_RSA),
                "signature_value": signature,
            }
        ).dump()
    )


def _empty_crl(
    identity: IdentityCertificate, signer: Signer, key: bytes, start: datetime, end: datetime
) -> bytes:
    tbs = asn1_crl.TbsCertList(
        {
            "version": "v2",
            "signature": algos.SignedDigestAlgorithm.load(_SHA256_RSA),
            "issuer": _issuer_name(identity),
            "this_update": _time(start),
            "next_update": _time(end),
            "crl_extensions": [
                {
                    "extn_id": "authority_key_identifier",
                    "critical": False,
                    "extn_value": {"key_identifier": identity.ski},
                },
                # Krill's choice: the time in milliseconds always grows, with no counter to keep.
                {"extn_id": "crl_number", "critical": False, "extn_value": int(start.timestamp() * 1000)},
            ],
        }
    )
    signature = signer.sign(key, tbs.dump())
    return bytes(
        asn1_crl.CertificateList(
            {
                "tbs_cert_list": tbs,
                "signature_algorithm": algos.SignedDigestAlgorithm.load(_SHA256_RSA),
                "signature": signature,
            }
        ).dump()
    )


@dataclass(frozen=True)
class MessageKey:
    """An EE key with its certificate and empty CRL, both issued by ``identity_ski``'s key and valid from
    ``not_before`` to ``not_after``: what signs a message. :func:`sign` makes one per message by default
    (Krill's profile); RFC 6492 §3.1 only asks that the EE certificate be issued by the sender's identity,
    and rpkid and APNIC keep one EE certificate for many messages. A server answering dozens of messages
    a second keeps one for a minute (:func:`message_key`), as generating an RSA key costs some 50 ms."""

    key: OneTimeKey
    certificate: bytes
    crl: bytes
    identity_ski: bytes
    not_before: datetime
    not_after: datetime


def message_key(
    signer: Signer, key: bytes, identity: IdentityCertificate, now: datetime, *, ee: OneTimeKey | None = None
) -> MessageKey:
    """A new in-memory EE key (never stored) with its certificate and CRL, valid ``CLOCK_SKEW`` either side
    of ``now`` (to the second), issued by ``identity``, whose key ``key`` is in ``signer``. ``ee``: a
    one-time key made ahead, used instead of making one now."""
    moment = _utc(now, "now").replace(microsecond=0)
    public = signer.public_key(key)
    if public.public_numbers() != identity.public_key.public_numbers():
        raise ProtocolError(
            f"the identity certificate {identity.ski.hex()} is not for the signer's key "
            f"{key_id(public).hex()}: a peer would refuse every message; use the identity made for this key"
        )
    ee = ee or OneTimeKey()
    start, end = moment - CLOCK_SKEW, moment + CLOCK_SKEW
    ee_der = _ee_certificate(identity, signer, key, ee, start=start, end=end)
    crl_der = _empty_crl(identity, signer, key, start, end)
    return MessageKey(ee, ee_der, crl_der, identity.ski, start, end)


def sign(
    xml: bytes,
    signer: Signer,
    key: bytes,
    identity: IdentityCertificate,
    now: datetime,
    *,
    ee: MessageKey | None = None,
) -> bytes:
    """``xml`` as a CMS message signed under ``identity``, whose key ``key`` is in ``signer``.

    The signing time is ``now`` to the second (CMS signingTime has no fractions): a receiver that
    guards against replay refuses a second message signed in the same second, so a caller sending two
    messages to one peer in quick succession must let the clock move on between them. ``ee``: the EE
    key, certificate and CRL to sign with (see :class:`MessageKey`); a new one for this message only
    by default. It must be of this identity and valid at ``now`` (ProtocolError otherwise)."""
    moment = _utc(now, "now").replace(microsecond=0)
    if ee is None:
        ee = message_key(signer, key, identity, moment)
    elif ee.identity_ski != identity.ski or not ee.not_before <= moment <= ee.not_after:
        raise ProtocolError(
            f"the EE certificate given is not of identity {identity.ski.hex()} or not valid at "
            f"{_when(moment)}: make a new one with message_key()"
        )
    ee_der, crl_der = ee.certificate, ee.crl
    attrs = cms.CMSAttributes(
        [
            cms.CMSAttribute({"type": "content_type", "values": [cms.ContentType(CT_XML)]}),
            cms.CMSAttribute({"type": "signing_time", "values": [_signing_time(moment)]}),
            cms.CMSAttribute(
                {"type": "message_digest", "values": [core.OctetString(hashlib.sha256(xml).digest())]}
            ),
        ]
    )
    # Standalone, the attributes encode as a SET OF, sorted by dump(): exactly the bytes the signature
    # covers (RFC 5652 §5.4).
    signer_info = cms.SignerInfo(
        {
            "version": "v3",
            "sid": cms.SignerIdentifier(name="subject_key_identifier", value=ee.key.key_id),
            "digest_algorithm": algos.DigestAlgorithm.load(_SHA256),
            "signed_attrs": attrs,
            "signature_algorithm": algos.SignedDigestAlgorithm.load(_RSA_ENCRYPTION),
            "signature": ee.key.sign(attrs.dump()),
        }
    )
    signed_data = cms.SignedData(
        {
            "version": "v3",
            "digest_algorithms": [algos.DigestAlgorithm.load(_SHA256)],
            "encap_content_info": {"content_type": CT_XML, "content": core.ParsableOctetString(xml)},
            "certificates": [asn1_x509.Certificate.load(ee_der)],
            "crls": [asn1_crl.CertificateList.load(crl_der)],
            "signer_infos": [signer_info],
        }
    )
    return bytes(cms.ContentInfo({"content_type": "signed_data", "content": signed_data}).dump())


# ------------------------------------------------------------------------------------------- verifying


@dataclass(frozen=True)
class _Parts:
    """The pieces of a message that verifying looks at, read once."""

    content_type: str
    econtent: bytes | None
    certificates: list[asn1_x509.Certificate | None]  # None: another kind of certificate
    crls: list[asn1_crl.CertificateList | None]
    signer_infos: list[cms.SignerInfo]


def _parse(der: bytes, where: str, limit: int) -> _Parts:
    if len(der) > limit:
        raise CmsError(f"{where}: {len(der)} bytes, more than the {limit} a protocol message may have")
    try:
        strict.require_one_ber(der)
        info = cms.ContentInfo.load(der, strict=True)
        if info["content_type"].dotted != _SIGNED_DATA:
            raise CmsError(
                f"{where}: not CMS SignedData (the content type is {info['content_type'].dotted}): "
                "RFC 6492 and RFC 8181 messages are signed"
            )
        sd = info["content"]
        encap = sd["encap_content_info"]
        content = encap["content"]
        econtent = None if isinstance(content, core.Void) else bytes(content.native or b"")
        certificates = [c.chosen if c.name == "certificate" else None for c in (sd["certificates"] or [])]
        crls = [c.chosen if c.name == "crl" else None for c in (sd["crls"] or [])]
        signer_infos = list(sd["signer_infos"])
        return _Parts(encap["content_type"].dotted, econtent, certificates, crls, signer_infos)
    except CmsError:
        raise
    except strict.NotDerError as exc:
        raise CmsError(f"{where}: not a CMS message: {exc}") from exc
    except strict.DECODE_ERRORS as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise CmsError(f"{where}: not a readable CMS message: {reason}") from exc


def econtent(der: bytes, where: str) -> bytes:
    """The message's content (the XML) without verifying anything: for diagnostics and tests only."""
    parts = _parse(der, where, MAX_CMS_BYTES)
    if parts.econtent is None:
        raise CmsError(f"{where}: the message carries no content")
    return parts.econtent


def _rsa_key(spki: asn1_keys.PublicKeyInfo, where: str) -> rsa.RSAPublicKey:
    try:
        public = load_der_public_key(spki.dump())
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise CmsError(f"{where}: the EE certificate's key cannot be read: {exc}") from exc
    if not isinstance(public, rsa.RSAPublicKey):
        raise CmsError(f"{where}: the EE certificate's key is not RSA")
    return public


def _verify_rsa(key: rsa.RSAPublicKey, signature: bytes, data: bytes) -> bool:
    try:
        key.verify(signature, data, padding.PKCS1v15(), hashes.SHA256())
    except (InvalidSignature, ValueError):
        return False
    return True


def _signed_attributes(si: cms.SignerInfo, where: str) -> tuple[dict[str, object], bytes]:
    """The signed attributes by type, each required to appear once with one value (RFC 5652 §11), and
    the bytes their signature covers: the original encoding re-tagged as SET OF (RFC 5652 §5.4)."""
    attrs = si["signed_attrs"]
    if isinstance(attrs, core.Void) or len(attrs) == 0:
        raise CmsError(f"{where}: the SignerInfo has no signed attributes (RFC 6492 §3.1 requires them)")
    values: dict[str, object] = {}
    for attribute in attrs:
        name = attribute["type"].native
        if name in values or len(attribute["values"]) != 1:
            raise CmsError(f"{where}: the signed attribute {name} must appear once with one value")
        values[name] = attribute["values"][0].native
    return values, b"\x31" + attrs.dump()[1:]


def _ee_ski(ee: asn1_x509.Certificate) -> bytes:
    ski = ee.key_identifier
    if ski:
        return bytes(ski)
    return hashlib.sha1(ee.public_key["public_key"].contents[1:]).digest()  # noqa: S324 - RFC 6487 §4.8.2


def _check_signer_id(si: cms.SignerInfo, ee: asn1_x509.Certificate, ski: bytes, where: str) -> None:
    sid = si["sid"]
    if sid.name == "subject_key_identifier":
        if bytes(sid.native) != ski:
            raise CmsError(
                f"{where}: the SignerInfo names key {bytes(sid.native).hex()}, but the EE certificate's "
                f"key is {ski.hex()}"
            )
        return
    chosen = sid.chosen
    if chosen["issuer"].dump() != ee.issuer.dump() or chosen["serial_number"].native != ee.serial_number:
        raise CmsError(f"{where}: the SignerInfo names another certificate than the one in the message")


def _check_ee(ee: asn1_x509.Certificate, peer: IdentityCertificate, where: str) -> None:
    """The EE certificate was issued by the peer's identity key: by signature, and by authority key
    identifier when the certificate has one; never by name."""
    aki = ee.authority_key_identifier
    if aki is not None and bytes(aki) != peer.ski:
        raise CmsError(
            f"{where}: the EE certificate was issued by key {bytes(aki).hex()}, not by this peer's identity "
            f"key {peer.ski.hex()}: the message was not signed under the identity configured for this peer"
        )
    if (
        ee["signature_algorithm"].signature_algo != "rsassa_pkcs1v15"
        or ee["signature_algorithm"].hash_algo != "sha256"
    ):
        found = ee["signature_algorithm"]["algorithm"].native
        raise CmsError(
            f"{where}: the EE certificate's signature algorithm is {found}, not sha256WithRSAEncryption"
        )
    if not _verify_rsa(peer.public_key, ee["signature_value"].native, ee["tbs_certificate"].dump()):
        raise CmsError(
            f"{where}: the EE certificate is not signed by this peer's identity key {peer.ski.hex()}: the "
            "message was not signed under the identity configured for this peer"
        )
    constraints = ee.basic_constraints_value
    if constraints is not None and constraints["ca"].native:
        raise CmsError(
            f"{where}: the certificate that signed the message is a CA certificate, not an EE certificate"
        )


def _check_crl(
    crl: asn1_crl.CertificateList, ee: asn1_x509.Certificate, peer: IdentityCertificate, where: str
) -> None:
    tbs = crl["tbs_cert_list"]
    aki = crl.authority_key_identifier
    if aki is not None and bytes(aki) != peer.ski:
        raise CmsError(
            f"{where}: the CRL was issued by key {bytes(aki).hex()}, not by this peer's identity key "
            f"{peer.ski.hex()}"
        )
    algorithm = crl["signature_algorithm"]
    if algorithm.signature_algo != "rsassa_pkcs1v15" or algorithm.hash_algo != "sha256":
        raise CmsError(
            f"{where}: the CRL's signature algorithm is {algorithm['algorithm'].native}, not "
            "sha256WithRSAEncryption"
        )
    if not _verify_rsa(peer.public_key, crl["signature"].native, tbs.dump()):
        raise CmsError(f"{where}: the CRL is not signed by this peer's identity key {peer.ski.hex()}")
    serial = ee.serial_number
    for entry in tbs["revoked_certificates"] or []:
        if entry["user_certificate"].native == serial:
            raise CmsError(f"{where}: the EE certificate (serial {serial}) is revoked by the peer's own CRL")


def _check_times(ee: asn1_x509.Certificate, crl: asn1_crl.CertificateList, now: datetime, where: str) -> None:
    relax = " (a peer known to let its BPKI material lapse can be accepted with the time check relaxed)"
    validity = ee["tbs_certificate"]["validity"]
    not_before, not_after = validity["not_before"].native, validity["not_after"].native
    if now < not_before:
        raise CmsError(
            f"{where}: the EE certificate is not valid before {_when(not_before)}, and now is {_when(now)}"
        )
    if now > not_after:
        raise CmsError(
            f"{where}: the EE certificate expired at {_when(not_after)}, and now is {_when(now)}{relax}"
        )
    tbs = crl["tbs_cert_list"]
    this_update, next_update = tbs["this_update"].native, tbs["next_update"].native
    if now < this_update:
        raise CmsError(f"{where}: the CRL's thisUpdate {_when(this_update)} is after now ({_when(now)})")
    if next_update is None:
        raise CmsError(f"{where}: the CRL has no nextUpdate, so its freshness cannot be judged{relax}")
    if now > next_update:
        raise CmsError(
            f"{where}: the CRL's nextUpdate {_when(next_update)} is before now ({_when(now)}): the peer's "
            f"CRL has expired{relax}"
        )


def _one_each(
    parts: _Parts, where: str
) -> tuple[asn1_x509.Certificate, asn1_crl.CertificateList, cms.SignerInfo, bytes]:
    """The one EE certificate, CRL, SignerInfo and content of an id-ct-xml message (RFC 6492 §3.1:
    "in practice no one" sends chains, and rpki-rs insists on one of each as well)."""
    if parts.content_type != CT_XML:
        raise CmsError(
            f"{where}: the content type is {parts.content_type}, not id-ct-xml ({CT_XML}): not an "
            "RFC 6492 or RFC 8181 message"
        )
    if parts.econtent is None:
        raise CmsError(f"{where}: the message carries no content")
    ee = parts.certificates[0] if len(parts.certificates) == 1 else None
    if ee is None:
        raise CmsError(
            f"{where}: {len(parts.certificates)} certificates; exactly one EE certificate is required"
        )
    crl = parts.crls[0] if len(parts.crls) == 1 else None
    if crl is None:
        raise CmsError(f"{where}: {len(parts.crls)} CRLs; exactly one CRL of the peer's identity is required")
    if len(parts.signer_infos) != 1:
        raise CmsError(f"{where}: {len(parts.signer_infos)} SignerInfos; exactly one is required")
    return ee, crl, parts.signer_infos[0], parts.econtent


def _check_signer_info(si: cms.SignerInfo, content: bytes, ee_key: rsa.RSAPublicKey, where: str) -> datetime:
    """Digest algorithm, signed attributes and signature; the signing time when all are right."""
    digest_algorithm = si["digest_algorithm"]["algorithm"].native
    if digest_algorithm != "sha256":
        raise CmsError(f"{where}: the digest algorithm is {digest_algorithm}, not SHA-256")
    values, signed_bytes = _signed_attributes(si, where)
    if values.get("content_type") != CT_XML:
        raise CmsError(
            f"{where}: the signed content-type attribute is {values.get('content_type')}, not id-ct-xml"
        )
    if values.get("message_digest") != hashlib.sha256(content).digest():
        raise CmsError(f"{where}: the message digest does not match the content: the content was altered")
    signing_time = values.get("signing_time")
    if not isinstance(signing_time, datetime):
        raise CmsError(f"{where}: the message has no signing-time attribute (needed against replay)")
    algorithm = si["signature_algorithm"]["algorithm"].native
    if algorithm not in _SIGNER_INFO_ALGORITHMS:
        raise CmsError(
            f"{where}: the signature algorithm {algorithm} is neither rsaEncryption nor "
            "sha256WithRSAEncryption"
        )
    if not _verify_rsa(ee_key, si["signature"].native, signed_bytes):
        raise CmsError(f"{where}: the signature does not verify with the EE certificate's key")
    return signing_time.astimezone(UTC)


def verify(
    der: bytes,
    peer: IdentityCertificate,
    now: datetime,
    where: str,
    *,
    strict_time: bool = True,
    limit: int = MAX_CMS_BYTES,
) -> Verified:
    """Verify a message from ``peer`` and return its XML; a :class:`CmsError` says precisely why not.

    Checks: one SignedData with id-ct-xml content, one EE certificate, one CRL, one SignerInfo whose
    identifier matches the EE; the EE issued by the peer's key (signature, and AKI if present) and not
    a CA; the CRL signed by the peer's key and not revoking the EE; SHA-256 digest and the signed
    attributes (content type, message digest, signing time); the signature by the EE key with
    rsaEncryption or sha256WithRSAEncryption. With ``strict_time`` the EE certificate and the CRL must
    also be current at ``now`` (see the module's docstring for why this is a knob). Input is BER as real
    peers send it, bounded by ``limit`` bytes."""
    now = _utc(now, "now")
    parts = _parse(der, where, limit)
    ee, crl, si, content = _one_each(parts, where)
    try:
        ee_key = _rsa_key(ee.public_key, where)
        ski = _ee_ski(ee)
        _check_signer_id(si, ee, ski, where)
        _check_ee(ee, peer, where)
        _check_crl(crl, ee, peer, where)
        signing_time = _check_signer_info(si, content, ee_key, where)
        if strict_time:
            _check_times(ee, crl, now, where)
    except CmsError:
        raise
    except strict.DECODE_ERRORS as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise CmsError(f"{where}: a part of the CMS message cannot be read: {reason}") from exc
    return Verified(content, signing_time, ski)
