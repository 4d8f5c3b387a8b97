"""Wording shared by the renderers, so that text and Markdown say the same thing."""

from __future__ import annotations

from collections import Counter
from datetime import datetime

from reconciler.desired.schema import format_size
from reconciler.plan.document import (
    AspaChangeDoc,
    ChangeDoc,
    NoticeDoc,
    PathChangeDoc,
    PeerDoc,
    PlanDocument,
    RefusedDoc,
    RouteChangeDoc,
)
from reconciler.protocol.updown import ERRORS

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
        "aspa": "ASPA renewal",
        "certificate": "certificate renewal",
        "rrdp": "RRDP republication",
    }
    parts = [
        f"{kinds[k]} {names[k]}{'s' if kinds[k] != 1 else ''}"
        for k in ("manifest", "crl", "roa", "aspa", "certificate", "rrdp")
        if kinds[k]
    ]
    cas = sorted({c.ca for c in routine})
    return f"{', '.join(parts)} (in {', '.join(cas)})"


def _ases(numbers: list[int]) -> str:
    return ", ".join(f"AS{n}" for n in numbers) if numbers != [0] else "none (AS0)"


def aspa_line(change: AspaChangeDoc) -> tuple[str, str]:
    """(symbol, words) of an ASPA change: what the customer AS's provider set becomes."""
    who = f"{change.ca} AS{change.customer}"
    if change.providers_after is None:
        was = f" (providers were {_ases(change.providers_before)})" if change.providers_before else ""
        return "-", f"{who}: ASPA removed{was}"
    if change.providers_before is None:
        return "+", f"{who}: providers {_ases(change.providers_after)}"
    delta = [f"+AS{n}" for n in change.added] + [f"-AS{n}" for n in change.removed]
    if not delta:
        return "~", f"{who}: providers {_ases(change.providers_after)} (unchanged; {change.reason})"
    return ("-" if change.removed else "+"), f"{who}: {' '.join(delta)} -> {_ases(change.providers_after)}"


def path_line(change: PathChangeDoc) -> tuple[str, str]:
    """(word, text) of an announced path whose ASPA outcome changes: ``broken`` when routers enforcing
    ASPA would now drop it, ``fixed`` when they would now take it, ``changed`` otherwise."""
    word = "broken" if change.breaks else "fixed" if change.before == "invalid" else "changed"
    ases = " ".join(f"AS{a}" for a in change.path) + (" {AS_SET}" if change.as_set else "")
    shown = ", ".join(change.examples) + (", ..." if change.prefixes > len(change.examples) else "")
    carried = f"{change.prefixes} prefix{'es' if change.prefixes != 1 else ''}: {shown}"
    return word, f"{ases} ({change.procedure}): {change.before} -> {change.after}; {carried}"


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


def refresh_line(doc: PlanDocument) -> str | None:
    """What an incremental plan left out (None for a full plan: every CA planned, as ever)."""
    refresh = doc.refresh
    if refresh is None or refresh.mode != "incremental":
        return None
    since = f" since the full plan at {refresh.full_at:%Y-%m-%dT%H:%M:%SZ}" if refresh.full_at else ""
    return (
        f"incremental plan: {refresh.planned:,} CA(s) planned, {refresh.unchanged:,} unchanged{since} not "
        "planned again ('--refresh=full' plans them all)"
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
        lines += [refused_line(r) for r in child.refused]
    return lines


def refused_line(refused: RefusedDoc) -> str:
    """A request ``rpkictl serve`` refused: when, what was asked, the code (with its RFC 6492 meaning)
    and the reason sent; indented under its child or publisher."""
    meaning = ERRORS.get(int(refused.code)) if refused.code.isdigit() else None
    code = f"{refused.code} ({meaning})" if meaning else refused.code
    return f"  refused {_at(refused.at)}: {refused.request} -> {code}: {refused.text}"


def publisher_lines(doc: PlanDocument) -> list[str]:
    """Each external publisher (RFC 8181): what it publishes here now, of its quota, and where; then the
    requests it was refused lately, indented."""
    lines = []
    for p in doc.publishers:
        lines.append(
            f"{p.handle}: {p.objects} object{'s' if p.objects != 1 else ''}, {p.bytes} bytes "
            f"(quota {p.quota_objects} objects, {format_size(p.quota_bytes)}) in {p.sia_base}"
        )
        lines += [refused_line(r) for r in p.refused]
    return lines


def _at(moment: datetime | None) -> str:
    return "never" if moment is None else f"{moment:%Y-%m-%dT%H:%M:%SZ}"


def _contact(contact: PeerDoc) -> str:
    """How the exchanges with a peer went: the last success, failures in a row and the last error."""
    text = f"last success {_at(contact.last_success)}"
    if contact.failures:
        text += f", {contact.failures} failure{'s' if contact.failures != 1 else ''} in a row"
    if contact.last_error is not None:
        text += f"; last error: {contact.last_error}"
    if contact.next_contact is not None:
        text += f"; next contact after {_at(contact.next_contact)}"
    return text


def parent_lines(doc: PlanDocument) -> list[str]:
    """The external parent (RFC 6492): what it listed and certified, whether they differ, the exchanges.
    Lines after the first are indented by two spaces (sub-items in Markdown)."""
    parent = doc.parent
    if parent is None:
        return []
    digest = f" (sha256 {parent.list_sha256[:12]})" if parent.list_sha256 else ""
    lines = [
        f"{parent.handle} at {parent.service_uri}, parent of {parent.ca}: list taken "
        f"{_at(parent.listed_at)}{digest}"
    ]
    if parent.listed_at is None:
        lines.append("  not asked yet: apply asks the parent")
    several = len(parent.classes) > 1
    for found in parent.classes:
        signer = f" (our CA {found.ca})" if several and found.ca else ""
        lines.append(
            f"  class {found.name}: entitled to {found.entitled or 'nothing'} until {_at(found.not_after)}"
            f"{signer}"
        )
    mine = parent.certified
    if mine is None:
        lines.append("  no certificate for our key yet: apply asks the parent for one")
    else:
        lines += (
            f"  certified in class {c.class_name}: {c.resources or 'nothing'}, from "
            f"{_at(c.not_before)} to {_at(c.not_after)}, key {c.key_id} ({c.uri})"
            for c in (mine, *parent.other_certificates)
        )
        if parent.entitled_not_certified:
            lines.append(f"  entitled but not certified: {parent.entitled_not_certified}")
        if parent.certified_not_entitled:
            lines.append(f"  certified but not entitled: {parent.certified_not_entitled}")
        if parent.certified_not_entitled:
            lines.append(
                "  asking for a certificate without them takes VRPs away: apply asks the parent once the "
                f"gate parent-shrink@{parent.ca} is approved"
            )
        elif parent.new_certificate:
            lines.append("  the entitlement changed: apply asks the parent for a new certificate")
    lines.append(f"  {_contact(parent.contact)}")
    return lines


def repository_lines(doc: PlanDocument) -> list[str]:
    """The remote repository (RFC 8181): what it held, what this plan sends, what it lacks or has in
    excess of the local copy as of the last exchange. Lines after the first are indented."""
    repo = doc.repository
    if repo is None:
        return []
    lines = [
        f"{repo.service_uri} for {repo.ca}, sia_base {repo.sia_base}",
        f"  held {repo.objects} object{'s' if repo.objects != 1 else ''}, {repo.bytes:,} bytes at the last "
        "exchange",
        f"  this plan sends {repo.publish} publish and {repo.withdraw} withdraw (its changes in CA "
        "directories)",
    ]
    if repo.missing is None or repo.different is None or repo.extra is None:
        lines.append("  no list of the repository kept yet: apply sends every object of the local copy")
    elif repo.missing or repo.different or repo.extra:
        lines.append(
            f"  {repo.missing} object{'s' if repo.missing != 1 else ''} missing at the repository, "
            f"{repo.different} differ, {repo.extra} extra: apply sends them"
        )
    else:
        lines.append("  it held the local copy exactly at the last exchange")
    lines.append(f"  {_contact(repo.contact)}")
    return lines
