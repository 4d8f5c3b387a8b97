"""The signed-object envelope (RFC 6488, algorithms RFC 7935): CMS SignedData around an eContent.

pyca/cryptography cannot set an eContentType, so the envelope is assembled with asn1crypto. The
signature covers the signed attributes re-tagged as a universal SET OF (0x31), not the ``[0]`` field.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime

from asn1crypto import algos, cms, core
from asn1crypto import x509 as asn1_x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding

from reconciler.rpki import asn1
from reconciler.rpki import cert as rc
from reconciler.rpki import der as strict
from reconciler.signers.files import OneTimeKey

# RFC 7935 §2: SHA-256 with parameters absent (FORT flags NULL parameters).
_SHA256_ABSENT = bytes.fromhex("300b0609608648016503040201")
# sha256WithRSAEncryption with NULL parameters: identical to the EE certificate's own algorithm, which
# every validator accepts (and OctoRPKI's strict mode requires).
_SHA256_RSA = bytes.fromhex("300d06092a864886f70d01010b0500")


class CmsError(ValueError):
    """A signed object that is not a well-formed RPKI SignedData."""


def _signed_attrs(content_type: str, digest: bytes, signing_time: datetime) -> cms.CMSAttributes:
    # RFC 6488 §2.1.6.4: content-type, message-digest and signing-time (UTCTime), each with one value.
    return cms.CMSAttributes(
        [
            cms.CMSAttribute({"type": "content_type", "values": [cms.ContentType(content_type)]}),
            cms.CMSAttribute({"type": "message_digest", "values": [core.OctetString(digest)]}),
            cms.CMSAttribute(
                {"type": "signing_time", "values": [cms.Time(name="utc_time", value=signing_time)]}
            ),
        ]
    )


def build(
    *, content_type: str, econtent: bytes, ee_cert: bytes, ee_key: OneTimeKey, signing_time: datetime
) -> bytes:
    """Wrap ``econtent`` in SignedData signed by the one-time key of ``ee_cert``."""
    attrs = _signed_attrs(content_type, hashlib.sha256(econtent).digest(), signing_time)
    # Standalone, the attributes encode as a universal SET OF (DER-sorted by dump()): the signed form.
    signature = ee_key.sign(attrs.dump())
    signer_info = cms.SignerInfo(
        {
            "version": "v3",
            "sid": cms.SignerIdentifier(name="subject_key_identifier", value=ee_key.key_id),
            "digest_algorithm": algos.DigestAlgorithm.load(_SHA256_ABSENT),
            "signed_attrs": attrs,
            "signature_algorithm": algos.SignedDigestAlgorithm.load(_SHA256_RSA),
            "signature": signature,
        }
    )
    signed_data = cms.SignedData(
        {
            "version": "v3",
            "digest_algorithms": [algos.DigestAlgorithm.load(_SHA256_ABSENT)],
            "encap_content_info": {
                "content_type": content_type,
                "content": core.ParsableOctetString(econtent),
            },
            "certificates": [asn1_x509.Certificate.load(ee_cert)],
            "signer_infos": [signer_info],
        }
    )
    return bytes(cms.ContentInfo({"content_type": "signed_data", "content": signed_data}).dump())


@dataclass(frozen=True, slots=True)
class SignedObject:
    content_type: str
    econtent: bytes
    ee: rc.ResourceCertificate
    signing_time: datetime | None


def decode(der: bytes, *, where: str = "signed object") -> SignedObject:
    """Unwrap and check a signed object: exactly one value with nothing after it or inside it that its
    structure does not account for (the envelope may be BER, as real CAs publish it; the eContent and the
    certificate are DER, see their decoders), one certificate, one signer, digest and signature correct.
    Raise :class:`CmsError` (or ``CertificateError`` for the EE certificate)."""
    try:
        strict.require_one_ber(der)
        info = cms.ContentInfo.load(der, strict=True)
        asn1.require_exact(info, opaque=(asn1_x509.Certificate,))
        if info["content_type"].native != "signed_data":
            raise CmsError(f"{where}: RFC 6488 §2.1: not SignedData")
        sd = info["content"]
        encap = sd["encap_content_info"]
        content_type = encap["content_type"].dotted
        econtent = bytes(encap["content"].native or b"")
        certs = sd["certificates"]
        signers = sd["signer_infos"]
        if certs is None or len(certs) != 1 or len(signers) != 1:
            raise CmsError(f"{where}: RFC 6488 §2.1.4: exactly one certificate and one SignerInfo required")
        ee = rc.decode(certs[0].chosen.dump(), where=where)
        si = signers[0]
        attrs = si["signed_attrs"]
        values = {a["type"].native: a["values"][0] for a in attrs}
        signing_time = values["signing_time"].native if "signing_time" in values else None
        digest = values["message_digest"].native
        signed_bytes = b"\x31" + attrs.dump()[1:]
        signature = si["signature"].native
    except (CmsError, rc.CertificateError):
        raise
    except strict.NotDerError as exc:
        raise CmsError(f"{where}: RFC 6488 §3: the signed object is not one sound value: {exc}") from exc
    except strict.DECODE_ERRORS as exc:
        raise CmsError(f"{where}: not a readable RPKI signed object: {exc}") from exc
    if digest != hashlib.sha256(econtent).digest():
        raise CmsError(f"{where}: RFC 6488 §2.1.6.4.2: message digest does not match the content")
    try:
        ee.public_key.verify(signature, signed_bytes, padding.PKCS1v15(), hashes.SHA256())
    except (InvalidSignature, ValueError, TypeError) as exc:
        raise CmsError(f"{where}: RFC 6488 §3: the signature does not verify with the EE key") from exc
    return SignedObject(content_type, econtent, ee, signing_time)
