"""Approval gates: the changes a human must approve before apply may publish them.

Deleting many ROAs at once (an address transfer gone wrong), narrowing them, emptying a CA, revoking a
child CA or shrinking its resources, touching an established trust anchor, and making routes that are
valid today invalid. A tripped gate is data in the plan, never an error: the plan always completes so
that a reviewer can see why approval is needed.

Removed and narrowed VRPs are counted per CA, against the VRPs the CA publishes now; a VRP that only
moves to another CA, or whose max length grows, is neither.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Set
from datetime import datetime

from reconciler import layout
from reconciler.desired.model import CaIntent, DesiredState
from reconciler.plan import aspas, external_children
from reconciler.plan.model import Action, Change, Gate, Kind, Vrp
from reconciler.published.memo import RoaSummary
from reconciler.published.reader import PublishedState
from reconciler.rpki import cert as rc


def _vrp(vrp: Vrp) -> str:
    return f"AS{vrp[0]} {vrp[1]} max {vrp[2]}"


def published_vrps_by_ca(
    published: PublishedState, damaged: Set[str] = frozenset(), settled: Mapping[str, Set[Vrp]] | None = None
) -> dict[str, set[Vrp]]:
    """The VRPs each CA directory publishes now (from the ROAs that read back), but for ROAs at
    ``damaged`` paths: relying parties reject those, so their removal is a repair, never a deletion.
    ``settled``: the VRPs of the CAs an incremental plan found unchanged (see ``plan.incremental``),
    which publish exactly their desired ROAs: their ROAs are not looked at."""
    settled = settled or {}
    by_ca: dict[str, set[Vrp]] = {ca: set(vrps) for ca, vrps in settled.items() if vrps}
    for path in published.files:
        if path.endswith(".roa") and "/" in path and path not in damaged:
            ca = path.split("/", 1)[0]
            if ca in settled:
                continue
            found = published.roa_summary(path)
            if isinstance(found, RoaSummary):
                by_ca.setdefault(ca, set()).update(found.vrps)
    return by_ca


def _split_removed(removed: Iterable[Vrp], wanted: Set[Vrp]) -> tuple[list[Vrp], list[tuple[Vrp, Vrp]]]:
    """Removed VRPs are either deleted (the prefix is no longer authorised at all) or narrowed (still
    authorised, but for another AS or a shorter max length); a wider max length is neither."""
    by_prefix: dict[str, list[Vrp]] = {}
    for vrp in wanted:
        by_prefix.setdefault(vrp[1], []).append(vrp)
    deleted: list[Vrp] = []
    narrowed: list[tuple[Vrp, Vrp]] = []
    for old in sorted(removed):
        successors = by_prefix.get(old[1], [])
        if not successors:
            deleted.append(old)
        elif not any(new[0] == old[0] and new[2] >= old[2] for new in successors):
            narrowed.append((old, min(successors)))
    return deleted, narrowed


def _describe_narrowing(old: Vrp, new: Vrp) -> str:
    if new[0] != old[0]:
        return f"{_vrp(old)} -> AS{new[0]}"
    return f"{_vrp(old)} -> max {new[2]}"


def _percentage_gates(ca: CaIntent, have: set[Vrp], wanted: Set[Vrp]) -> list[Gate]:
    policy = ca.safety
    existing = len(have)
    if existing < policy.min_existing_vrps or existing == 0:
        return []
    deleted, narrowed = _split_removed(have - wanted, wanted)
    gates = []
    if len(deleted) / existing > policy.delete_pct_threshold:
        share = len(deleted) / existing
        gates.append(
            Gate(
                "roa-delete-pct",
                ca.name,
                f"{len(deleted)} of {existing} VRPs removed "
                f"({share:.1%} > {policy.delete_pct_threshold:.1%})",
                tuple(sorted(_vrp(v) for v in deleted)),
                existing,
                policy.delete_pct_threshold,
            )
        )
    if len(narrowed) / existing > policy.narrow_pct_threshold:
        share = len(narrowed) / existing
        gates.append(
            Gate(
                "roa-narrow-pct",
                ca.name,
                f"{len(narrowed)} of {existing} VRPs narrowed "
                f"({share:.1%} > {policy.narrow_pct_threshold:.1%})",
                tuple(sorted(_describe_narrowing(old, new) for old, new in narrowed)),
                existing,
                policy.narrow_pct_threshold,
            )
        )
    return gates


def _published_children(published: PublishedState, damaged: Set[str]) -> dict[str, list[str]]:
    """Each CA's children, as the published certificates say (``<parent>/<child>.cer``), but for
    certificates at ``damaged`` paths (not this tree's)."""
    children: dict[str, list[str]] = {}
    for path in published.files:
        if path.endswith(".cer") and path.count("/") == 1 and path not in damaged:
            parent, name = path.split("/")
            if layout.is_router_name(name):
                continue
            children.setdefault(parent, []).append(layout.certificate_subject(name)[0])
    return children


def _descendants(children: dict[str, list[str]], ca: str) -> list[str]:
    """The CA and every CA below it (``children``: see :func:`_published_children`)."""
    found, todo = [], [ca]
    while todo:
        current = todo.pop()
        if current not in found:
            found.append(current)
            todo += children.get(current, [])
    return found


def _ca_gates(
    desired: DesiredState,
    published: PublishedState,
    changes: tuple[Change, ...],
    have_by_ca: dict[str, set[Vrp]],
    damaged: Set[str],
) -> list[Gate]:
    """Removing a child CA takes every ROA below it down: the approval names the CAs and those VRPs."""
    gates = []
    children: dict[str, list[str]] | None = None  # listed once, and only if a CA is removed
    for change in changes:
        if change.kind is not Kind.CERTIFICATE or change.subject is None or change.repair:
            continue
        if external_children.is_external(change):
            continue  # gated by external_children.gates, with what the child publishes here
        if change.action in (Action.REVOKE, Action.WITHDRAW):
            if change.roll:
                continue  # a key roll retires one of the CA's certificates; the CA and its VRPs stay
            if children is None:
                children = _published_children(published, damaged)
            below = _descendants(children, change.subject)
            vrps = sorted({_vrp(v) for ca in below for v in have_by_ca.get(ca, ())})
            gates.append(
                Gate(
                    "ca-revoke",
                    change.subject,
                    f"CA {change.subject} is removed ({len(below)} CA(s) in all), with the {len(vrps)} VRPs "
                    "published below it",
                    (*(f"remove CA {name}" for name in sorted(below)), *vrps),
                )
            )
        elif desired.has(change.subject):
            before = _certified_before(desired, published, change)
            if isinstance(before, rc.ResourceCertificate):
                lost = before.resources.resources.subtract(desired.ca(change.subject).resources)
                if lost:
                    gates.append(
                        Gate(
                            "ca-shrink",
                            change.subject,
                            f"CA {change.subject} loses resources: {lost}",
                            (f"{change.subject} loses {lost}",),
                        )
                    )
    return gates


def _certified_before(
    desired: DesiredState, published: PublishedState, change: Change
) -> rc.ResourceCertificate | None:
    """What the subject of a certificate change holds now: the certificate replaced, or (for the new
    key of a roll) the one published for the CA's other key."""
    found = published.certificate(change.path)
    if isinstance(found, rc.ResourceCertificate):
        return found
    subject = desired.ca(change.subject or "")
    for generation in range(1, subject.key_generation + 1):
        other = published.certificate(layout.certificate_path(subject, generation))
        if isinstance(other, rc.ResourceCertificate):
            return other
    return None


def _trust_anchor_gate(
    desired: DesiredState, published: PublishedState, changes: tuple[Change, ...]
) -> list[Gate]:
    """Changes signed by an established trust anchor (not its first issuance): rare and far-reaching."""
    ta = desired.trust_anchor
    if not ta.trust_anchor or layout.certificate_path(ta) not in published.files:
        return []  # a CA under an external parent signs like any CA
    touching = sorted(
        _ta_item(desired, c) for c in changes if c.ca == ta.name and not (c.routine or c.repair)
    )
    if not touching:
        return []
    return [
        Gate("trust-anchor", ta.name, f"{len(touching)} changes signed by the trust anchor", tuple(touching))
    ]


def _ta_item(desired: DesiredState, change: Change) -> str:
    """What the trust anchor would sign, precisely enough that an approval cannot cover another plan."""
    item = f"{change.action.value} {change.address}"
    certifies = change.kind is Kind.CERTIFICATE and change.action is not Action.REVOKE
    if certifies and change.subject and desired.has(change.subject):
        item += f" with {desired.ca(change.subject).resources}"
    return item


def _lost_key_gates(
    desired: DesiredState, published: PublishedState, changes: tuple[Change, ...]
) -> list[Gate]:
    """A key to create for a CA whose certificate is published: the key it certifies is gone from the
    signer -- or the signer points at the wrong token or directory. Replacing every key of a tree by
    mistake must not happen without a person saying so (for the trust anchor it breaks every TAL)."""
    gates = []
    for change in changes:
        if change.action is not Action.CREATE_KEY or change.roll:
            continue
        ca = desired.ca(change.ca)
        found = _published_certificate_of(published, ca)
        if found is not None:
            gates.append(
                Gate(
                    "key-missing",
                    ca.name,
                    f"the key {found.key_id.hex()} certified for {ca.name} is not in signer "
                    f"{ca.signer!r}: a new key would replace it (is the signer's directory or token right?)",
                    (f"replace key {found.key_id.hex()} of {ca.name}",),
                )
            )
    return gates


def _published_certificate_of(published: PublishedState, ca: CaIntent) -> rc.ResourceCertificate | None:
    """A published certificate for any of the CA's keys (any generation, e.g. after key_generation was
    lowered), where its parent publishes it."""
    if ca.parent is None:
        found = published.certificate(layout.certificate_path(ca))
        return found if isinstance(found, rc.ResourceCertificate) else None
    directory = layout.repository(ca.parent)
    for name in published.under(directory):
        if name.endswith(".cer") and layout.certificate_subject(name)[0] == ca.name:
            found = published.certificate(directory + name)
            if isinstance(found, rc.ResourceCertificate):
                return found
    return None


def _empty_gates(desired: DesiredState, have_by_ca: dict[str, set[Vrp]]) -> list[Gate]:
    gates = []
    for ca in desired.cas:
        have = have_by_ca.get(ca.name, set())
        if have and not ca.roas and not ca.safety.allow_empty:
            gates.append(
                Gate(
                    "ca-empty",
                    ca.name,
                    f"CA {ca.name} would publish no ROAs (it has {len(have)} VRPs now)",
                    tuple(sorted(_vrp(v) for v in have)),
                    len(have),
                )
            )
    return gates


def gates_for(
    desired: DesiredState,
    published: PublishedState,
    changes: tuple[Change, ...],
    broken_routes: Iterable[str] = (),
    wanted: Set[Vrp] | None = None,
    *,
    now: datetime,
    damaged: Set[str] | None = None,
    settled: Mapping[str, Set[Vrp]] | None = None,
) -> tuple[Gate, ...]:
    """Every gate the plan trips, in a stable order. ``broken_routes`` are announcements that are valid
    now and would be invalid after the plan (from a route-impact analysis); ``wanted``, the desired VRPs
    when the caller has them already; ``damaged``, the paths the changes repair (by default, taken from
    them): damage is repaired, never a reviewer's decision. ``settled``: see :func:`published_vrps_by_ca`."""
    if damaged is None:
        damaged = frozenset(c.path for c in changes if c.repair)
    have_by_ca = published_vrps_by_ca(published, damaged, settled)
    if wanted is None:
        wanted = {r.vrp for ca in desired.cas for r in ca.roas}
    gates: list[Gate] = []
    for ca in desired.cas:
        gates += _percentage_gates(ca, have_by_ca.get(ca.name, set()), wanted)
    gates += _empty_gates(desired, have_by_ca)
    gates += _ca_gates(desired, published, changes, have_by_ca, damaged)
    gates += _trust_anchor_gate(desired, published, changes)
    gates += _lost_key_gates(desired, published, changes)
    gates += external_children.gates(desired, published, changes)
    # ASPAs that expired before the plan's time (``now``) were gone already: removing them loses nothing.
    gates += aspas.gates(desired, published, aspas.Standing(desired.publication.rsync_base, damaged, now))
    broken = tuple(sorted(broken_routes))
    if broken:
        gates.append(
            Gate("route-invalid", "*", f"{len(broken)} announcements now valid would become invalid", broken)
        )
    return tuple(gates)
