"""Approvals and staleness: may this plan be applied, now, as it stands?

An approval names a gate and the hash of exactly the items it flags (``roa-delete-pct@acme:9b1e0c…``),
so it approves *those* deletions and no others. A saved plan is stale when the desired state, the
publication point or the announcements moved since it was made, or when it is older than allowed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from reconciler.clock import describe_span
from reconciler.plan.document import GateDoc, ParentDoc, PlanDocument

_TOKEN = re.compile(r"^(?P<id>[a-z-]+(?:@[A-Za-z0-9-]+)?):(?P<hash>[0-9a-f]{12,64})$")
MIN_HASH_CHARS = 12


class ApprovalError(ValueError):
    """An ``--approve`` value that is not ``GATE:HASH``."""


@dataclass(frozen=True, slots=True)
class Approval:
    gate_id: str
    hash_prefix: str
    how: str = "--approve"

    def matches(self, gate: GateDoc) -> bool:
        return gate.id == self.gate_id and gate.hash.startswith(self.hash_prefix)


def parse_approval(token: str) -> Approval:
    match = _TOKEN.match(token.strip())
    if not match:
        raise ApprovalError(
            f"--approve {token!r} is not GATE:HASH (copy the token the plan prints, "
            f"e.g. roa-delete-pct@example-isp:9b1e0c4d2a7f11e3; at least {MIN_HASH_CHARS} hex digits)"
        )
    return Approval(match["id"], match["hash"])


def unapproved(doc: PlanDocument, approvals: list[Approval]) -> list[GateDoc]:
    """The gates no approval covers. An approval for other items (the plan changed) covers nothing."""
    return [gate for gate in doc.gates if not any(a.matches(gate) for a in approvals)]


def stale_reasons(saved: PlanDocument, current: PlanDocument) -> list[str]:
    """What moved between the saved plan and a fresh plan of the same state: empty when none did."""
    if saved.plan_id == current.plan_id:
        return []
    reasons = []
    if saved.desired.digest != current.desired.digest:
        reasons.append(_desired_moved(saved, current))
    moved = rrdp_moved(saved, current)
    if moved is not None:
        reasons.append(moved)
    points = sorted(set(saved.observed.points) | set(current.observed.points))
    for ca in points:
        old, new = saved.observed.points.get(ca), current.observed.points.get(ca)
        if old is None or new is None or old.sha256 != new.sha256:
            was = f"manifest #{old.number}" if old else "no manifest"
            now = (f"#{new.number}" if old else f"manifest #{new.number}") if new else "no manifest"
            reasons.append(f"CA {ca}: {was} -> {now} since the plan was made")
    if not reasons and saved.observed.tree_sha256 != current.observed.tree_sha256:
        reasons.append("files in the publication point changed since the plan was made")
    if (saved.announcements and saved.announcements.sha256) != (
        current.announcements and current.announcements.sha256
    ):
        reasons.append("the announcements file changed since the plan was made")
    relisted = parent_moved(saved, current)
    if relisted is not None:
        reasons.append(relisted)
    if not reasons:
        reasons.append("planning the same state again gives different changes")
    return reasons


def parent_moved(saved: PlanDocument, current: PlanDocument) -> str | None:
    """How the external parent's kept list moved since the saved plan was made; None when it did not."""
    was, now = saved.parent, current.parent
    if (was and was.list_sha256) == (now and now.list_sha256):
        return None
    handle = now.handle if now is not None else was.handle if was is not None else "?"
    return (
        f"parent {handle} listed other entitlements or certificates since the plan was made "
        f"(list of {_listed(was)} -> {_listed(now)})"
    )


def _listed(parent: ParentDoc | None) -> str:
    """When the parent's list a plan was made from was taken, for a stale plan's reason."""
    if parent is None or parent.listed_at is None:
        return "none"
    return f"{parent.listed_at:%Y-%m-%dT%H:%M:%SZ} ({(parent.list_sha256 or '')[:12]})"


def rrdp_moved(saved: PlanDocument, current: PlanDocument) -> str | None:
    """How RRDP moved between the state the saved plan read (fetched over RRDP, or a local publication
    directory's notification) and the state read now; None when it did not, or either is unknown."""
    was, now = saved.observed.source, current.observed.source
    if was is None or now is None or was.session_id is None or now.session_id is None:
        return None
    if was.serial is None or now.serial is None:
        return None
    if now.session_id != was.session_id:
        return (
            f"RRDP moved from session {was.session_id} serial {was.serial} to session {now.session_id} "
            f"serial {now.serial} since the plan was made"
        )
    if now.serial > was.serial:
        return (
            f"RRDP moved from session {was.session_id} serial {was.serial} to serial {now.serial} since "
            "the plan was made"
        )
    return None


def _desired_moved(saved: PlanDocument, current: PlanDocument) -> str:
    """How the desired state moved: to another commit, or by edits not committed (then the commit is the
    same, and only the digest over the YAML files tells the two apart)."""
    was, now = saved.desired, current.desired
    what = "the desired state changed since the plan was made"
    digests = f"YAML digest {was.digest[:12]} -> {now.digest[:12]}"
    if was.git_commit and now.git_commit and was.git_commit != now.git_commit:
        edits = ", with uncommitted edits" if now.git_dirty else ""
        return f"{what}: commit {was.git_commit[:12]} -> {now.git_commit[:12]}{edits}"
    if now.git_commit and now.git_dirty:
        return f"{what}: uncommitted edits on commit {now.git_commit[:12]} ({digests})"
    if now.git_commit and was.git_dirty:
        return f"{what}: the uncommitted edits it was made from are gone ({digests})"
    return f"{what} ({digests})"


def too_old(saved: PlanDocument, now: datetime, max_age: timedelta) -> str | None:
    age = now - saved.created_at
    if age > max_age:
        return (
            f"the plan was made {describe_span(age)} ago ({saved.created_at:%Y-%m-%dT%H:%M:%SZ}), more "
            f"than the {describe_span(max_age)} allowed (plan_max_age in rpki.yaml); make a new plan"
        )
    return None
