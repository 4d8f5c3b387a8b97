"""A CA's ASPAs in a plan: one object per customer AS of its ``aspas:`` entries, each checked against
what is published (``plan.signed``), and the ASPAs it no longer declares withdrawn and revoked.

An ASPA says which ASes may carry a customer's routes upward. Removing one, or a provider from one, can
turn legitimate paths invalid at every router that enforces ASPA: ``removed_authorisations`` lists those
removals for the review gate (``plan.safety``).
"""

from __future__ import annotations

from collections.abc import Iterable, Set
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from reconciler import layout
from reconciler.desired.model import CaIntent, DesiredState
from reconciler.plan import signed
from reconciler.plan.model import Action, Gate, Kind, Reason
from reconciler.plan.path_verification import Providers
from reconciler.plan.route_leaks import Transition, providers_of
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


@dataclass(frozen=True, slots=True)
class Standing:
    """What makes a published ASPA count as what the tree says now (see :func:`standing`)."""

    base: str  # the rsync base
    damaged: Set[str]  # the paths the plan repairs
    now: datetime


def standing(published: PublishedState, path: str, rules: Standing) -> AspaContent | None:
    """What the ASPA at ``path`` says, if relying parties may take it: it reads back, is not being
    repaired, has not expired, and is the object of its own name -- a copy of another (an old one
    replayed under a new name, which no manifest lists) is not, and must not count as what the tree
    says."""
    if path in rules.damaged:
        return None
    item = published.signed(path)
    if not isinstance(item, kinds.Signed) or not isinstance(item.content, AspaContent):
        return None
    ee = item.signed.ee
    return item.content if ee.signed_object == rules.base + path and ee.not_after > rules.now else None


def published_aspas(published: PublishedState, ca: str, rules: Standing) -> dict[int, AspaContent]:
    """The ASPAs of the CA's directory that stand (see :func:`standing`), by customer AS."""
    found: dict[int, AspaContent] = {}
    repo = layout.repository(ca)
    for name in published.under(repo):
        if name.endswith(kinds.ASPA.suffix):
            content = standing(published, repo + name, rules)
            if content is not None:
                found[content.customer] = content
    return found


def owns(name: str) -> bool:
    """Whether a file name is an ASPA's."""
    return kinds.of(name) is kinds.ASPA


def plan(planner: _Planner, ca: CaIntent) -> set[str]:
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
            revoke = signed.serial(planner, ca, path, found)
            made = signed.change(
                planner, ca, path, kind=Kind.ASPA, want=content, found=found, verdict=verdict, revoke=revoke
            )
            planner.add(made)
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


def gates(desired: DesiredState, published: PublishedState, rules: Standing) -> list[Gate]:
    """``aspa-removal@<ca>``: the CA's published ASPAs lose more provider authorisations than its
    ``aspa_removal_threshold`` allows. An authorisation that another CA of the tree keeps (a customer AS
    moved between CAs) is not lost; an ASPA being repaired, or expired, was not valid to begin with."""
    kept = {(a.customer, p) for ca in desired.cas for a in ca.aspas for p in a.providers}
    found = []
    for ca in desired.cas:
        before = published_aspas(published, ca.name, rules)
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


def providers(
    desired: DesiredState, published: PublishedState, rules: Standing
) -> tuple[Providers, Providers]:
    """What the tree's ASPAs say (customer -> providers) before the plan -- the published ASPAs that
    stand (see :func:`standing`) -- and after it: the desired ones."""
    before: list[tuple[int, tuple[int, ...]]] = []
    for path in published.files:
        if path.endswith(kinds.ASPA.suffix):
            content = standing(published, path, rules)
            if content is not None:
                before.append((content.customer, content.providers))
    after = ((a.customer, a.providers) for ca in desired.cas for a in ca.aspas)
    return providers_of(before), providers_of(after)


def describe_path(change: Transition) -> str:
    """``AS64500 AS64496 (upstream): unknown -> invalid, 2 prefixes``: a path as the collector's peer
    sent it (neighbour first, origin last)."""
    ases = " ".join(f"AS{a}" for a in change.path.ases) + (" (with an AS_SET)" if change.path.as_set else "")
    count = len(change.prefixes)
    carried = f"{count} prefix{'es' if count != 1 else ''}"
    return f"{ases} ({change.procedure}): {change.before} -> {change.after}, {carried}"


def path_gate(changes: Iterable[Transition]) -> Gate | None:
    """``aspa-invalid``: announced paths, Valid or Unknown now, that the plan's ASPAs make Invalid --
    routes that routers enforcing ASPA would drop: a leak caught, or an outage; a reviewer says which."""
    items = tuple(sorted(describe_path(c) for c in changes if c.newly_invalid))
    if not items:
        return None
    message = f"{len(items)} announced paths would become ASPA-invalid"
    return Gate("aspa-invalid", "*", message, items)
