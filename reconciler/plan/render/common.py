"""Wording shared by the renderers, so that text and Markdown say the same thing."""

from __future__ import annotations

from collections import Counter

from reconciler.desired.schema import format_size
from reconciler.plan.document import ChangeDoc, NoticeDoc, PlanDocument, RouteChangeDoc

SYMBOLS = {
    "create-key": "+",
    "issue": "+",
    "reissue": "~",
    "renew": "↻",
    "revoke": "-",
    "withdraw": "-",
    "destroy-key": "-",
}


def verdict(doc: PlanDocument) -> str:
    """The first thing anyone reads: is there anything to do, and does it need a human?"""
    counts = doc.counts()
    if not counts.total:
        return "No changes."
    if not counts.review and any(c.roll for c in doc.changes):
        return "Only routine renewals and key roll steps; no approval needed."
    if not counts.review:
        return f"Only routine renewals ({counts.routine}); no approval needed."
    gates = len(doc.gates)
    approval = (
        f"APPROVAL REQUIRED ({gates} gate{'s' if gates != 1 else ''})" if gates else "no approval needed"
    )
    return f"{counts.review} change{'s' if counts.review != 1 else ''} to review; {approval}."


def route_word(route: RouteChangeDoc) -> str:
    """What a validity change means for the route, in words: a route that stops being valid is
    ``broken`` (dropped when invalid, unprotected when not found), one that becomes valid is ``fixed``;
    between not-found and invalid it is ``now invalid`` (dropped: a hijack stopped, or a route the ROAs
    forgot) or ``no longer invalid``."""
    if route.before == "valid" and route.after != "valid":
        return "broken"
    if route.after == "valid":
        return "fixed"
    return "now invalid" if route.after == "invalid" else "no longer invalid"


ROUTE_SYMBOLS = {"broken": "❌", "fixed": "✅", "now invalid": "⚠️", "no longer invalid": "🔄"}


def route_mark(route: RouteChangeDoc) -> str:
    """The word with a symbol before it, for the comment's route table (never colour alone)."""
    word = route_word(route)
    return f"{ROUTE_SYMBOLS[word]} {word}"


def route_tally(routes: list[RouteChangeDoc]) -> str:
    """``"2 broken, 1 fixed"``: the route table's marks, counted."""
    marks = Counter(route_word(r) for r in routes)
    return ", ".join(f"{marks[word]} {word}" for word in ROUTE_SYMBOLS if marks[word])


def routine_summary(changes: list[ChangeDoc]) -> str:
    """Routine churn in one line: how many of each kind, in which CA directories (key roll steps are
    counted by ``roll_summary``)."""
    routine = [c for c in changes if c.routine and not c.roll]
    kinds = Counter(c.kind for c in routine)
    names = {
        "manifest": "manifest",
        "crl": "CRL",
        "roa": "ROA renewal",
        "certificate": "certificate renewal",
        "rrdp": "RRDP republication",
    }
    parts = [
        f"{kinds[k]} {names[k]}{'s' if kinds[k] != 1 else ''}"
        for k in ("manifest", "crl", "roa", "certificate", "rrdp")
        if kinds[k]
    ]
    cas = sorted({c.ca for c in routine})
    return f"{', '.join(parts)} (in {', '.join(cas)})"


def roll_summary(changes: list[ChangeDoc]) -> str:
    """A key roll's steps in one line: keys created or destroyed, objects re-issued, retired files."""
    roll = [c for c in changes if c.roll]
    if not roll:
        return ""
    words = Counter(f"{c.action} {c.kind}" for c in roll)
    parts = [f"{count} {what}" for what, count in sorted(words.items())]
    return f"{', '.join(parts)} (in {', '.join(sorted({c.ca for c in roll}))}); no VRP changes"


def notice_line(notice: NoticeDoc) -> str:
    mark = {"info": "", "warning": "WARNING: ", "critical": "CRITICAL: "}[notice.severity]
    return f"{mark}{notice.ca}: {notice.message}"


def header(doc: PlanDocument) -> str:
    commit = doc.desired.git_commit[:12] if doc.desired.git_commit else "not in Git"
    dirty = " + uncommitted changes" if doc.desired.git_dirty else ""
    return (
        f"RPKI plan {doc.plan_id[:12]} for {doc.desired.repo} at {doc.created_at:%Y-%m-%dT%H:%M:%SZ} "
        f"(desired {commit}{dirty})"
    )


def revocation_line(change: ChangeDoc) -> str:
    """One revoked object; a replaced one says so, so the count of revocations adds up."""
    why = " (replaced)" if change.action in ("reissue", "renew") else ""
    return f"{change.address}{why}, serial {change.revoke_serial}, on {change.ca}'s CRL"


def external_child_lines(doc: PlanDocument) -> list[str]:
    """Each external child (RFC 6492): its parent and entitlement, then one line per certificate it holds."""
    lines = []
    for child in doc.external_children:
        lines.append(f"{child.handle} (child of {child.ca}): entitled to {child.entitlement}")
        if not child.certificates:
            lines.append("  no certificate issued yet")
        for cert in child.certificates:
            lines.append(
                f"  certificate for key {cert.key_id} serial {cert.serial}, not after "
                f"{cert.not_after:%Y-%m-%dT%H:%M:%SZ}: {cert.resources}"
            )
    return lines


def publisher_lines(doc: PlanDocument) -> list[str]:
    """Each external publisher (RFC 8181): what it publishes here now, of its quota, and where."""
    return [
        f"{p.handle}: {p.objects} object{'s' if p.objects != 1 else ''}, {p.bytes} bytes "
        f"(quota {p.quota_objects} objects, {format_size(p.quota_bytes)}) in {p.sia_base}"
        for p in doc.publishers
    ]
