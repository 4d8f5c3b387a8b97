"""``rpkictl status``: the report as a terminal table, the CA tree down the first column."""

from __future__ import annotations

from datetime import datetime

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text
from rich.tree import Tree

from reconciler.plan.wording import describe_delta
from reconciler.status.model import CaStatus, ExchangeError, ObjectKind, StatusReport
from reconciler.status.peers import human_size

STYLE = {"info": "green", "warning": "yellow", "critical": "bold red"}


def when(moment: datetime | None, now: datetime) -> str:
    """``2026-11-24 12:00Z (in 23h)``: the time and what it means from now."""
    if moment is None:
        return "-"
    return f"{moment:%Y-%m-%d %H:%MZ} ({relative(moment, now)})"


def relative(moment: datetime, now: datetime) -> str:
    """``in 5h``, ``2d 3h ago``."""
    left = moment - now
    return f"{describe_delta(-left)} ago" if left.total_seconds() < 0 else f"in {describe_delta(left)}"


def left(moment: datetime | None, now: datetime, past: str = "EXPIRED") -> str:
    """Time left, for a table cell (``5h 10m``, ``EXPIRED 2h ago``)."""
    if moment is None:
        return "missing"
    remaining = moment - now
    if remaining.total_seconds() < 0:
        return f"{past} {describe_delta(-remaining)} ago"
    return describe_delta(remaining)


def _tree_name(ca: CaStatus, last_sibling: bool) -> Text:
    if ca.depth == 0:
        return Text(ca.name, style="bold")
    return Text("   " * (ca.depth - 1) + ("└─ " if last_sibling else "├─ ") + ca.name)


def _key(ca: CaStatus) -> str:
    key = ca.key
    ident = key.key_id[:12] if key.key_id else "no key"
    roll = f"\nroll: {key.roll_phase}" if key.roll_phase else ""
    return f"{key.signer} ({key.signer_type})\n{ident} g{key.generation}{roll}"


def _expiry(ca: CaStatus, kinds: tuple[ObjectKind, ...], now: datetime) -> str:
    found = [o for o in ca.objects if o.kind in kinds]
    return left(min(o.expires for o in found), now) if found else "missing"


def _drift(ca: CaStatus) -> Text:
    if not ca.drift:
        due = f"{ca.renewals_due} renewal(s) due" if ca.renewals_due else "none"
        return Text(due, style="green" if not ca.renewals_due else "")
    review = f", {ca.drift_review} need review" if ca.drift_review else ""
    return Text(f"{ca.drift} change(s){review}", style="yellow")


def _resources(ca: CaStatus) -> str:
    return "\n".join(value for value in ca.resources.values() if value) or "none"


WIDE = 120  # below this many columns, one block per CA reads better than a table


def render(report: StatusReport, width: int = WIDE) -> RenderableType:
    """A table with a row per CA on a wide terminal; a tree with a block per CA on a narrow one."""
    body = _table(report) if width >= WIDE else _tree(report)
    lines: list[RenderableType] = [Text(header(report), style="dim"), body]
    if report.external_children:
        lines.append(_children_table(report))
    if report.publishers:
        lines.append(_publishers_table(report))
    if report.external_parent is not None:
        lines.append(_parent_table(report))
    if report.remote_repository is not None:
        lines.append(_repository_table(report))
    problems = report.every_problem()
    notes = sum(1 for _, p in problems if p.severity == "info")
    verdict = "OK" if report.severity == "info" else report.severity.upper()
    tally = f"{verdict}: {len(problems) - notes} problem(s)" + (f", {notes} note(s)" if notes else "")
    lines.append(Text(tally, style=STYLE[report.severity]))
    for name, problem in problems:
        prefix = f"{name}: " if name else ""
        lines.append(
            Text(f"  {problem.severity.upper()}: {prefix}{problem.message}", style=STYLE[problem.severity])
        )
    return Group(*lines)


def _tree(report: StatusReport) -> Tree:
    now = report.generated_at
    nodes: dict[str, Tree] = {}
    root = Tree("CAs (times are time left)", guide_style="dim")
    for ca in report.cas:
        renewal = min((o.renew_at for o in ca.objects), default=None)
        block = Text.assemble(
            (ca.name, "bold"),
            f"  {ca.vrps}/{ca.vrps_desired} VRPs in {ca.roa_objects} ROAs  drift: ",
            _drift(ca),
            f"\nresources: {'; '.join(v for v in ca.resources.values() if v) or 'none'}",
            f"\nkey: {_key(ca).replace(chr(10), ' ')}",
            f"\ncert {_expiry(ca, (ObjectKind.CERTIFICATE,), now)} · mft/CRL "
            f"{_expiry(ca, (ObjectKind.MANIFEST, ObjectKind.CRL), now)} · renewal "
            + (left(renewal, now, past="overdue since") if renewal is not None else "-"),
        )
        block.overflow = "fold"
        parent = nodes.get(ca.parent or "", root)
        nodes[ca.name] = parent.add(block)
    return root


def _table(report: StatusReport) -> Table:
    now = report.generated_at
    table = Table(
        title="CAs (times are time left)", title_justify="left", show_lines=True, header_style="bold"
    )
    table.add_column("CA", no_wrap=True)
    table.add_column("resources", overflow="fold", min_width=20)
    table.add_column("ROAs", no_wrap=True)
    table.add_column("VRPs", no_wrap=True)
    table.add_column("key", no_wrap=True)
    for column in ("cert", "mft/CRL", "renewal"):
        table.add_column(column, no_wrap=True)
    table.add_column("drift")
    for index, ca in enumerate(report.cas):
        later = report.cas[index + 1 :]
        last_sibling = not any(o.parent == ca.parent for o in later)
        renewal = min((o.renew_at for o in ca.objects), default=None)
        table.add_row(
            _tree_name(ca, last_sibling),
            _resources(ca),
            f"{ca.roa_objects}\n({ca.roas_desired} in YAML)",
            f"{ca.vrps}/{ca.vrps_desired}",
            _key(ca),
            _expiry(ca, (ObjectKind.CERTIFICATE,), now),
            _expiry(ca, (ObjectKind.MANIFEST, ObjectKind.CRL), now),
            left(renewal, now, past="overdue since") if renewal is not None else "-",
            _drift(ca),
        )
    return table


def _children_table(report: StatusReport) -> Table:
    """One row per external child: its parent, entitlement, certificates and when it last asked."""
    now = report.generated_at
    table = Table(
        title="External children (RFC 6492)", title_justify="left", show_lines=True, header_style="bold"
    )
    table.add_column("child", no_wrap=True)
    table.add_column("parent", no_wrap=True)
    table.add_column("entitlement", overflow="fold", min_width=20)
    table.add_column("certificates (key, serial, time left)", overflow="fold")
    table.add_column("last request", no_wrap=True)
    for child in report.external_children:
        certificates = "\n".join(
            f"{c.key_id[:12]} #{c.serial[:12]} {left(c.not_after, now)}" for c in child.certificates
        )
        last = relative(child.last_request, now) if child.last_request else "never"
        table.add_row(
            child.handle,
            child.ca,
            child.entitlement.replace("; ", "\n") or "nothing",
            certificates or Text("none issued", style="dim"),
            last,
        )
    return table


def _publishers_table(report: StatusReport) -> Table:
    now = report.generated_at
    table = Table(title="Publishers (RFC 8181)", title_justify="left", show_lines=False, header_style="bold")
    for column in ("publisher", "objects", "size", "quota used", "last publication"):
        table.add_column(column, no_wrap=True)
    for publisher in report.publishers:
        used = Text(f"{publisher.quota_used_pct:.1f}%")
        if publisher.problems:
            used.stylize(STYLE["warning"])
        table.add_row(
            publisher.handle,
            f"{publisher.objects} of {publisher.quota_objects}",
            f"{human_size(publisher.bytes)} of {human_size(publisher.quota_bytes)}",
            used,
            when(publisher.last_publication, now) if publisher.last_publication else "never",
        )
    return table


def _exchanges(failures: int, error: ExchangeError | None) -> Text:
    if error is None:
        return Text("ok", style=STYLE["info"])
    return Text(f"{failures} failed: {error.description}", style=STYLE["warning"])


def _parent_table(report: StatusReport) -> Table:
    """The external parent: the certificate it issued, what it entitles us to, and the exchanges."""
    now = report.generated_at
    parent = report.external_parent
    assert parent is not None  # noqa: S101 - render checked it
    table = Table(
        title=f"Parent (RFC 6492) of {parent.ca}", title_justify="left", show_lines=True, header_style="bold"
    )
    for column in ("parent", "certificate", "entitled", "last success", "exchanges", "next contact"):
        table.add_column(column, overflow="fold")
    cert = parent.certificate
    if cert is None:
        certified = Text("none", style=STYLE["critical"])
    else:
        ends = left(cert.not_after, now) if cert.not_after else "unreadable"
        certified = Text(f"class {cert.class_name}, {ends}\n{cert.resources or 'no resources'}")
        for other in parent.other_certificates:
            ends = left(other.not_after, now) if other.not_after else "unreadable"
            certified.append(f"\nclass {other.class_name}, {ends}\n{other.resources or 'no resources'}")
    classes = [f"class {e.class_name}: {e.resources or 'nothing'}" for e in parent.entitlements]
    entitled = Text("\n".join(classes)) if classes else Text("not listed yet", style="dim")
    if parent.entitlement_pending:
        pending = [
            f"not certified: {parent.entitled_not_certified}" if parent.entitled_not_certified else "",
            f"no longer entitled: {parent.certified_not_entitled}" if parent.certified_not_entitled else "",
        ]
        entitled.append("\n" + "\n".join(p for p in pending if p), style=STYLE["warning"])
    table.add_row(
        f"{parent.handle}\n{parent.service_uri}",
        certified,
        entitled,
        when(parent.last_success, now) if parent.last_success else "never",
        _exchanges(parent.failures, parent.last_error),
        when(parent.next_contact, now),
    )
    return table


def _repository_table(report: StatusReport) -> Table:
    """The remote repository: what it holds for us, the last message sent, and the exchanges."""
    now = report.generated_at
    repository = report.remote_repository
    assert repository is not None  # noqa: S101 - render checked it
    table = Table(title="Repository (RFC 8181)", title_justify="left", show_lines=True, header_style="bold")
    for column in ("repository", "holds", "last sent", "last success", "exchanges"):
        table.add_column(column, overflow="fold")
    sent = repository.last_sent
    table.add_row(
        f"{repository.service_uri}\n{repository.sia_base}",
        f"{repository.objects} objects, {human_size(repository.bytes)}",
        f"{sent.publish} publish, {sent.withdraw} withdraw, {human_size(sent.bytes)}\n{when(sent.at, now)}"
        if sent is not None
        else "nothing yet",
        when(repository.last_success, now) if repository.last_success else "never",
        _exchanges(repository.failures, repository.last_error),
    )
    return table


def header(report: StatusReport) -> str:
    commit = report.git_commit[:12] if report.git_commit else "not in Git"
    last = report.last_apply
    applied = (
        f"last apply {relative(last.time, report.generated_at)}: {last.status} by {last.who}"
        if last is not None
        else "no apply recorded"
    )
    gates = f"; {len(report.gates)} gate(s) waiting for approval" if report.gates else ""
    request = f"; signing request waiting: {report.signing_request}" if report.signing_request else ""
    return (
        f"Status of {report.repo} at {report.generated_at:%Y-%m-%dT%H:%M:%SZ} (commit {commit}), "
        f"published as {report.rsync_base}; {applied}{gates}{request}"
    )
