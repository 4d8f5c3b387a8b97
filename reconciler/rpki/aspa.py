"""Autonomous System Provider Authorisations (draft-ietf-sidrops-aspa-profile, version 1): the eContent,
encode and decode.

One ASPA per customer AS: the customer and the set of its upstream providers. The current profile
encodes ``version`` 1 explicitly (the DEFAULT is 0, so DER keeps it), and lists providers as bare AS
numbers: at least one, strictly ascending (hence unique), never the customer itself, AS0 only alone. The
validators hold an object to every one of those rules (rpki-client 9.x, FORT 1.7, rpki-rs): so does
:func:`problems`, which the YAML checks and the decoder share, and :func:`decode` refuses the earlier
drafts -- providers with an address-family limit and version 0, withdrawn in profile-15 -- with a reason
that says so, where a generic parser would only say the bytes do not fit.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from reconciler.rpki import asn1, der, oids

CONTENT_TYPE = oids.CT_ASPA
VERSION = 1
#: The most providers an ASPA may list for every validator to take it: FORT's default limit (rpki-client
#: takes up to 10,000, rpki-rs 16,380).
MAX_PROVIDERS = 4000
MAX_ASN = 2**32 - 1


class AspaError(ValueError):
    """An ASPA eContent that breaks the profile."""


@dataclass(frozen=True, slots=True)
class AspaContent:
    """The customer AS and its providers, ascending."""

    customer: int
    providers: tuple[int, ...]

    @classmethod
    def of(cls, customer: int, providers: Iterable[int]) -> AspaContent:
        """The content with the providers in the order the profile requires (ascending, once each)."""
        return cls(customer, tuple(sorted(set(providers))))


def problems(customer: int, providers: tuple[int, ...]) -> list[str]:
    """What breaks the profile in a customer and its providers as given (order included), each said with
    its rule: the YAML checks word their fixes around these."""
    found = []
    if not 0 < customer <= MAX_ASN:
        found.append(f"the customer AS must be 1 to {MAX_ASN} (AS0 cannot be a customer)")
    if not providers:
        found.append("at least one provider is needed (AS0 alone says the AS has none)")
    if len(providers) > MAX_PROVIDERS:
        found.append(f"{len(providers)} providers: at most {MAX_PROVIDERS}, the limit every validator takes")
    if any(not 0 <= p <= MAX_ASN for p in providers):
        found.append(f"a provider AS must be 0 to {MAX_ASN}")
    if customer in providers:
        found.append(f"the customer AS{customer} cannot be its own provider")
    if 0 in providers and len(providers) > 1:
        found.append("AS0 may only be listed alone (it says the AS has no provider)")
    repeated = sorted({p for i, p in enumerate(providers) if p in providers[:i]})
    if repeated:
        found.append("providers listed more than once: " + ", ".join(f"AS{p}" for p in repeated))
    elif list(providers) != sorted(providers):
        found.append("providers must be in ascending order")
    return found


def encode(content: AspaContent) -> bytes:
    """The eContent in DER: ``version`` [0] 1, the customer, the providers."""
    wrong = problems(content.customer, content.providers)
    if wrong:
        raise AspaError(f"ASPA of AS{content.customer}: " + "; ".join(wrong))
    version = der.tlv(0xA0, der.integer(VERSION))
    return der.sequence(
        version, der.integer(content.customer), der.sequence(*map(der.integer, content.providers))
    )


def decode(econtent: bytes, *, where: str = "ASPA") -> AspaContent:
    """The content of an ASPA eContent in the current profile; :class:`AspaError` says why not."""
    try:
        der.require_der(econtent)
        _refuse_old_drafts(econtent, where)
        value = asn1.ASProviderAttestation.load(econtent, strict=True)
        asn1.require_exact(value)
        version = value["version"].native
        if version != VERSION:
            raise AspaError(f"{where}: version {version}: the current ASPA profile is version {VERSION}")
        customer = value["customerASID"].native
        providers = tuple(p.native for p in value["providers"])
    except AspaError:
        raise
    except der.NotDerError as exc:
        raise AspaError(f"{where}: RFC 6488 §3: the ASPA eContent is not DER: {exc}") from exc
    except der.DECODE_ERRORS as exc:
        raise AspaError(f"{where}: not a readable ASPA: {exc}") from exc
    wrong = problems(customer, providers)
    if wrong:
        raise AspaError(f"{where}: ASPA of AS{customer}: " + "; ".join(wrong))
    return AspaContent(customer, providers)


def _refuse_old_drafts(econtent: bytes, where: str) -> None:
    """The drafts before profile-15 left the version out (0) and gave each provider as a SEQUENCE with
    an optional address-family limit: name that, rather than the first byte that does not fit."""
    try:
        _, start, end = der.read_tlv(econtent, 0)
        tag, _, after = der.read_tlv(econtent, start)
        if tag != 0x02:  # [0] version first: the current layout
            return
        tag, inner, _ = der.read_tlv(econtent, after)
        first = der.read_tlv(econtent, inner)[0] if tag == 0x30 and inner < end else None
    except der.DerShapeError:
        return
    if first == 0x30:
        raise AspaError(
            f"{where}: an ASPA of an earlier draft (version 0, providers with an address-family limit), "
            "withdrawn in draft-ietf-sidrops-aspa-profile-15: current validators reject it; issue it again "
            "in the current profile (version 1)"
        )
