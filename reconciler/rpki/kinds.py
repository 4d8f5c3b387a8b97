"""The signed-object types a CA publishes, one table entry each: what file name suffix the type has,
its eContent type, how its content is decoded and encoded, and what resources its EE certificate holds.

Code that handles "any signed object" (reading the publication point back, withdrawing a stray, signing
a change, showing a plan) asks this table instead of testing suffixes one by one, so that a new type is
its own module plus one entry here. Manifests are listed for the reader only: their signing is part of
a publication point's re-issue, not an object of their own.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from reconciler.resources import AsnSet, Resources
from reconciler.rpki import aspa, cms, manifest, roa
from reconciler.rpki.cert import EeResources

C = TypeVar("C")


@dataclass(frozen=True, slots=True)
class SignedKind(Generic[C]):
    """One signed-object type (RFC 6488 envelope around a typed eContent)."""

    name: str  # as plans and messages say it: "roa", "aspa", "manifest"
    suffix: str  # the file name's
    content_type: str  # eContentType (dotted)
    decode: Callable[[bytes, str], C]  # eContent -> content, strict DER; ValueError says why not
    encode: Callable[[C], bytes]
    ee_resources: Callable[[C], EeResources]  # what the EE certificate must hold for this content
    #: The EE certificate's resources as a relying party checks them against the content (None when a
    #: type inherits them): a mismatch is an object to re-issue.
    ee_holds: Callable[[C], Resources | None]


@dataclass(frozen=True, slots=True)
class Signed(Generic[C]):
    """A decoded signed object: the envelope (with its EE certificate) and the content."""

    kind: SignedKind[C]
    signed: cms.SignedObject
    content: C


def _roa_resources(content: roa.RoaContent) -> Resources:
    return Resources.of_prefixes(p.prefix for p in content.prefixes)


def _aspa_resources(content: aspa.AspaContent) -> Resources:
    return Resources(asn=AsnSet.of([(content.customer, content.customer)]))


ROA: SignedKind[roa.RoaContent] = SignedKind(
    name="roa",
    suffix=".roa",
    content_type=roa.CONTENT_TYPE,
    decode=lambda econtent, where: roa.decode(econtent, where=where),
    encode=roa.encode,
    ee_resources=lambda content: EeResources.prefixes(_roa_resources(content)),
    ee_holds=_roa_resources,
)

ASPA: SignedKind[aspa.AspaContent] = SignedKind(
    name="aspa",
    suffix=".asa",
    content_type=aspa.CONTENT_TYPE,
    decode=lambda econtent, where: aspa.decode(econtent, where=where),
    encode=aspa.encode,
    ee_resources=lambda content: EeResources.asns(_aspa_resources(content).asn),
    ee_holds=_aspa_resources,
)

MANIFEST: SignedKind[manifest.ManifestContent] = SignedKind(
    name="manifest",
    suffix=".mft",
    content_type=manifest.CONTENT_TYPE,
    decode=lambda econtent, where: manifest.decode(econtent, where=where),
    encode=manifest.encode,
    ee_resources=lambda _content: EeResources.inherit(),
    ee_holds=lambda _content: None,
)

#: Every signed-object type by file name suffix.
SIGNED: dict[str, SignedKind[object]] = {
    kind.suffix: kind  # type: ignore[misc]
    for kind in (ROA, ASPA, MANIFEST)
}


def of(name: str) -> SignedKind[object] | None:
    """The signed-object type a file name says it is (None: not a signed object)."""
    dot = name.rfind(".")
    return SIGNED.get(name[dot:]) if dot >= 0 else None


def decode(kind: SignedKind[C], der: bytes, where: str) -> Signed[C]:
    """Unwrap the envelope and decode its content as ``kind``: the eContentType must be that kind's
    (an ASPA's bytes under a ``.roa`` name are not a ROA)."""
    signed = cms.decode(der, where=where)
    if signed.content_type != kind.content_type:
        raise cms.CmsError(f"{where}: eContentType {signed.content_type} is not that of a {kind.name}")
    return Signed(kind, signed, kind.decode(signed.econtent, where))
