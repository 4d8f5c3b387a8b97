"""A CA's ASPAs in a plan: one object per customer AS of its ``aspas:`` entries, each checked against
what is published (``plan.signed``), and the ASPAs it no longer declares withdrawn and revoked.

An ASPA says which ASes may carry a customer's routes upward. Removing one, or a provider from one, can
turn legitimate paths invalid at every router that enforces ASPA: ``removed_authorisations`` lists those
removals for the review gate (``plan.safety``).
"""

from __future__ import annotations

from collections.abc import Set
from typing import TYPE_CHECKING

from reconciler import layout
from reconciler.desired.model import CaIntent, DesiredState
from reconciler.plan import signed
from reconciler.plan.model import Action, Gate, Kind, Reason
from reconciler.published.reader import PublishedState
from reconciler.rpki import kinds
from reconciler.rpki.aspa import AspaContent

if TYPE_CHECKING:
    from reconciler.plan.diff import _Planner


def describe(content: AspaContent) -> str:
    """``ASPA AS64500 -> AS64501, AS64502`` (``-> none`` for AS0 alone: the AS has no provider)."""
    providers = ", ".join(f"AS{p}" for p in content.providers) if content.providers != (0,) else "none"
    return f"ASPA AS{content.customer} -> {providers}"


def wanted(ca: CaIntent) -> dict[str, AspaContent]:
    """The CA's ASPA objects by file name."""
    return {layout.aspa_name(a.customer): AspaContent(a.customer, a.providers) for a in ca.aspas}


def published_aspas(
    published: PublishedState, ca: str, damaged: Set[str] = frozenset()
) -> dict[int, AspaContent]:
    """The ASPAs that read back from the CA's directory, but for those at ``damaged`` paths, by customer
    AS (the one with the larger provider set, should a directory hold two for one customer)."""
    found: dict[int, AspaContent] = {}
    repo = layout.repository(ca)
    for name in published.under(repo):
        if not name.endswith(kinds.ASPA.suffix) or repo + name in damaged:
            continue
        item = published.signed(repo + name)
        if isinstance(item, kinds.Signed) and isinstance(item.content, AspaContent):
            known = found.get(item.content.customer)
            if known is None or len(known.providers) < len(item.content.providers):
                found[item.content.customer] = item.content
    return found


def plan_aspas(planner: _Planner, ca: CaIntent) -> set[str]:
    """Add a change for every ASPA of the CA that must be issued, re-issued or renewed; return their
    file names (none of them is a stray)."""
    repo = layout.repository(ca.name)
    want = wanted(ca)
    for name, content in want.items():
        path = repo + name
        found = planner.published.signed(path)
        verdict: signed.Verdict | None
        if found is None:
            verdict = Action.ISSUE, Reason.NEW_OBJECT, f"new {describe(content)}"
        else:
            verdict = signed.unusable(planner, ca, path, found)
            if verdict is None and isinstance(found, kinds.Signed):
                was = describe(found.content) if isinstance(found.content, AspaContent) else "?"
                verdict = signed.problem(
                    planner, ca, path, want=content, found=found, describe=f"{was} -> {describe(content)}"
                )
        if verdict is not None:
            planner.add(
                signed.change(planner, ca, path, kind=Kind.ASPA, want=content, found=found, verdict=verdict)
            )
    return set(want)


def plan_stray(planner: _Planner, ca: CaIntent, path: str) -> None:
    """An ASPA in the CA's directory that the desired state does not have."""
    signed.stray(planner, ca, path, describe)


def removed_authorisations(
    before: dict[int, AspaContent], kept: Set[tuple[int, int]]
) -> list[tuple[int, int]]:
    """(customer, provider) pairs published now that are not ``kept``: a removed ASPA counts each of
    its providers. AS0 ("no provider") authorises nothing, so removing it is not counted."""
    return sorted(
        (customer, provider)
        for customer, content in before.items()
        for provider in content.providers
        if provider != 0 and (customer, provider) not in kept
    )


def gates(desired: DesiredState, published: PublishedState, damaged: Set[str]) -> list[Gate]:
    """``aspa-removal@<ca>``: the CA's published ASPAs lose more provider authorisations than its
    ``aspa_removal_threshold`` allows. An authorisation that another CA of the tree keeps (a customer AS
    moved between CAs) is not lost; an ASPA being repaired (``damaged``) was not valid to begin with."""
    kept = {(a.customer, p) for ca in desired.cas for a in ca.aspas for p in a.providers}
    found = []
    for ca in desired.cas:
        before = published_aspas(published, ca.name, damaged)
        removed = removed_authorisations(before, kept)
        if len(removed) <= ca.safety.aspa_removal_threshold:
            continue
        items = tuple(f"AS{customer} -> AS{provider}" for customer, provider in removed)
        message = (
            f"{len(removed)} provider authorisations removed from ASPAs "
            f"(more than {ca.safety.aspa_removal_threshold}): paths through them become ASPA-invalid"
        )
        found.append(Gate("aspa-removal", ca.name, message, items))
    return found
