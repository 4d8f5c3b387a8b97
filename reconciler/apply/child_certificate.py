"""Certificates for external child CAs: one builder for a first issue (from the child's PKCS#10) and for
every re-issue apply makes later (renewal, narrowing, a parent key roll).

What the child asked for lives in the certificate itself -- its key and its SIA (where it publishes) --
so a re-issue takes both from the certificate it replaces, and only the resources, the issuer and the
validity change. The issuer side (AIA, CRLDP, AKI) is exactly that of the CA's own children.
"""

from __future__ import annotations

from datetime import datetime

from cryptography.hazmat.primitives.asymmetric import rsa

from reconciler.resources import Resources
from reconciler.rpki import cert as rc
from reconciler.rpki import rfc3779


def build(
    *,
    issuer: rc.Issuer,
    subject_key: rsa.RSAPublicKey,
    access: rc.CaAccess,
    resources: Resources,
    serial: int,
    not_before: datetime,
    not_after: datetime,
) -> bytes:
    """A CA certificate for the child's key, with exactly ``resources`` (never inherit)."""
    return rc.build(
        issuer=issuer,
        subject_key=subject_key,
        serial=serial,
        not_before=not_before,
        not_after=not_after,
        ip_resources=rfc3779.encode_ip(resources),
        as_resources=rfc3779.encode_asn(resources.asn),
        ca=access,
    )


def access_of(found: rc.ResourceCertificate) -> rc.CaAccess:
    """The SIA of a certificate issued before, for its re-issue."""
    if found.repository is None or found.manifest_uri is None:
        raise rc.CertificateError("the certificate has no caRepository or rpkiManifest to keep")
    return rc.CaAccess(found.repository, found.manifest_uri, found.notify)


def reissue(
    found: rc.ResourceCertificate,
    *,
    issuer: rc.Issuer,
    resources: Resources,
    serial: int,
    not_before: datetime,
    not_after: datetime,
) -> bytes:
    """``found`` again, for the same key and SIA, with ``resources``, by ``issuer``, for a new validity."""
    return build(
        issuer=issuer,
        subject_key=found.public_key,
        access=access_of(found),
        resources=resources,
        serial=serial,
        not_before=not_before,
        not_after=not_after,
    )
