"""The status report as one self-contained HTML page: the CA tree, and a timeline of what expires and
what is renewed when.

No script and no external resource (a Content-Security-Policy forbids both), so the page can be
served from anywhere, mailed, or opened from disk, and shows the same thing everywhere. The timeline's
axis is logarithmic: a manifest renewed in 8 hours and a certificate expiring in a year both need to
be readable on one line.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from html import escape

from reconciler.status.model import CaStatus, ExchangeError, ObjectTimes, Problem, StatusReport
from reconciler.status.peers import human_size
from reconciler.status.table import header, when

TICKS = (
    ("1h", timedelta(hours=1)),
    ("8h", timedelta(hours=8)),
    ("1d", timedelta(days=1)),
    ("1w", timedelta(weeks=1)),
    ("4w", timedelta(weeks=4)),
    ("12w", timedelta(weeks=12)),
    ("1y", timedelta(days=365)),
    ("5y", timedelta(days=5 * 365)),
)
# Nothing loads or runs: the page is inert wherever it is opened.
POLICY = "default-src 'none'; style-src 'unsafe-inline'"
LEFT = 150  # px for the CA names
RIGHT = 150  # px for the labels of the latest events
WIDTH = 960
TIMELINE_ROWS = 40  # CAs on the timeline (those with the soonest renewals); the JSON has them all
UPCOMING = 100  # events in the "upcoming" table
ROW = 34

STYLE = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:24px;color:#1d2430;
background:#f6f7f9}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px}
.meta{color:#5a6475;margin-bottom:12px}
.badge{display:inline-block;padding:1px 8px;border-radius:10px;font-weight:600;font-size:12px}
.info{background:#dff3e4;color:#17612e}.warning{background:#fff1cc;color:#7a5200}
.critical{background:#fde0e0;color:#9b1c1c}
ul.tree,ul.tree ul{list-style:none;margin:0;padding-left:26px;border-left:2px solid #cfd5df}
ul.tree{padding-left:0;border:0}
.ca{background:#fff;border:1px solid #d8dde6;border-radius:8px;padding:10px 14px;margin:8px 0;
max-width:980px}
.ca h3{margin:0 0 4px;font-size:16px}
.ca dl{display:grid;grid-template-columns:150px 1fr;margin:0;gap:2px 12px}
.ca dt{color:#5a6475}.ca dd{margin:0}
.problems li{margin:4px 0}
table{border-collapse:collapse;background:#fff;max-width:980px}
td,th{border:1px solid #d8dde6;padding:4px 10px;text-align:left}th{background:#eef1f5}
svg text{font:12px system-ui,sans-serif;fill:#1d2430}
"""


def _x(moment: datetime, now: datetime, horizon: timedelta) -> float:
    """Logarithmic in hours from now; the past is pinned to the left edge."""
    hours = max((moment - now).total_seconds() / 3600, 0.0)
    span = math.log1p(horizon.total_seconds() / 3600)
    return LEFT + (WIDTH - LEFT - RIGHT) * min(math.log1p(hours) / span, 1.0)


def timeline(report: StatusReport) -> str:
    now = report.generated_at
    rows = sorted(
        report.cas, key=lambda ca: min((o.renew_at for o in ca.objects), default=now + timedelta(days=9999))
    )[:TIMELINE_ROWS]
    shown = {ca.name for ca in rows}
    rows = [ca for ca in report.cas if ca.name in shown]  # back in tree order
    events = [(o.renew_at, o.expires) for ca in rows for o in ca.objects]
    latest = max((e for pair in events for e in pair), default=now + timedelta(days=1))
    horizon = max(latest - now, timedelta(days=1))
    height = 40 + ROW * len(rows)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" role="img" '
        f'aria-label="Timeline of expiries and renewals">'
    ]
    for label, offset in TICKS:
        if offset > horizon * 1.5:
            break
        x = _x(now + offset, now, horizon)
        parts.append(f'<line x1="{x:.1f}" y1="20" x2="{x:.1f}" y2="{height - 4}" stroke="#e1e5ec"/>')
        parts.append(f'<text x="{x:.1f}" y="14" text-anchor="middle">{label}</text>')
    parts.append(f'<text x="{LEFT}" y="14" text-anchor="middle">now</text>')
    for row, ca in enumerate(rows):
        y = 40 + ROW * row
        parts.append(f'<text x="{8 + 10 * min(ca.depth, 4)}" y="{y + 4}">{escape(ca.name[:18])}</text>')
        parts.append(f'<line x1="{LEFT}" y1="{y}" x2="{WIDTH - RIGHT}" y2="{y}" stroke="#aab3c2"/>')
        together: dict[tuple[datetime, datetime], list[ObjectTimes]] = {}
        for item in ca.objects:  # a manifest and its CRL share their times: one marker, one label
            together.setdefault((item.renew_at, item.expires), []).append(item)
        parts.extend(_marker(items, now, horizon, y) for items in together.values())
    parts.append("</svg>")
    if len(report.cas) > len(rows):
        parts.append(
            f'<p class="meta">{len(rows)} of {len(report.cas)} CAs shown: those renewed soonest '
            "('rpkictl status --format json' lists every CA).</p>"
        )
    return "".join(parts)


def _marker(items: list[ObjectTimes], now: datetime, horizon: timedelta, y: int) -> str:
    item = items[0]
    renew = _x(item.renew_at, now, horizon)
    expire = _x(item.expires, now, horizon)
    kinds = " + ".join(i.kind.value for i in items)
    title = (
        f"{kinds} ({', '.join(i.path for i in items)}): renewed {when(item.renew_at, now)}, "
        f"expires {when(item.expires, now)}"
    )
    overdue = item.renew_at <= now
    colour = "#c0392b" if overdue else "#2e6fd8"
    return (
        f"<g><title>{escape(title)}</title>"
        f'<line x1="{renew:.1f}" y1="{y}" x2="{expire:.1f}" y2="{y}" stroke="{colour}" stroke-width="4"/>'
        f'<circle cx="{renew:.1f}" cy="{y}" r="5" fill="{colour}"/>'
        f'<rect x="{expire - 4:.1f}" y="{y - 4}" width="8" height="8" fill="#c0392b"/>'
        f'<text x="{expire + 6:.1f}" y="{y - 7}">{escape(kinds)}</text></g>'
    )


def _ca_card(ca: CaStatus, now: datetime) -> str:
    rows = [
        ("resources", "; ".join(v for v in ca.resources.values() if v) or "none"),
        ("ROAs", f"{ca.roa_objects} objects published, {ca.roas_desired} entries in the YAML"),
        ("VRPs", f"{ca.vrps} published, {ca.vrps_desired} desired"),
        (
            "key",
            f"{ca.key.signer} ({ca.key.signer_type}), {ca.key.key_id or 'no key yet'}, "
            f"generation {ca.key.generation}"
            + (
                f", roll {ca.key.roll_phase} (next step {when(ca.key.roll_due, now)})"
                if ca.key.roll_phase
                else ""
            ),
        ),
    ]
    rows += [
        (o.kind.value, f"expires {when(o.expires, now)}; renewed {when(o.renew_at, now)}") for o in ca.objects
    ]
    drift = f"{ca.drift} change(s), {ca.drift_review} need review" if ca.drift else "none"
    rows.append(("drift", drift + (f"; {ca.renewals_due} renewal(s) due" if ca.renewals_due else "")))
    worst = max((p.severity for p in ca.problems), key=["info", "warning", "critical"].index, default="info")
    label = {"info": "ok"}.get(worst, worst)
    body = "".join(f"<dt>{escape(k)}</dt><dd>{escape(v)}</dd>" for k, v in rows)
    problems = "".join(
        f'<li><span class="badge {p.severity}">{p.severity}</span> {escape(p.message)}</li>'
        for p in ca.problems
    )
    return (
        f'<div class="ca" id="ca-{escape(ca.name)}"><h3>{escape(ca.name)} '
        f'<span class="badge {worst}">{label}</span></h3><dl>{body}</dl>'
        + (f'<ul class="problems">{problems}</ul>' if problems else "")
        + "</div>"
    )


def _tree(report: StatusReport, parent: str | None) -> str:
    children = [ca for ca in report.cas if ca.parent == parent]
    if not children:
        return ""
    now = report.generated_at
    items = "".join(f"<li>{_ca_card(ca, now)}{_tree(report, ca.name)}</li>" for ca in children)
    return f'<ul class="tree">{items}</ul>' if parent is None else f"<ul>{items}</ul>"


def _upcoming(report: StatusReport) -> str:
    now = report.generated_at
    events = sorted(
        [(o.renew_at, "renewed", ca.name, o) for ca in report.cas for o in ca.objects]
        + [(o.expires, "expires", ca.name, o) for ca in report.cas for o in ca.objects],
        key=lambda e: e[0],
    )[:UPCOMING]
    rows = "".join(
        f"<tr><td>{escape(when(moment, now))}</td><td>{escape(name)}</td><td>{escape(item.kind.value)}</td>"
        f"<td>{what}</td><td>{escape(item.path)}</td></tr>"
        for moment, what, name, item in events
    )
    return f"<table><tr><th>when</th><th>CA</th><th>object</th><th>event</th><th>path</th></tr>{rows}</table>"


def _children(report: StatusReport) -> str:
    """External children: parent, entitlement, certificates, last request, problems."""
    if not report.external_children:
        return ""
    now = report.generated_at
    rows = []
    for child in report.external_children:
        certificates = "<br>".join(
            escape(f"key {c.key_id}, serial {c.serial}, not after {when(c.not_after, now)}; {c.resources}")
            for c in child.certificates
        )
        problems = "".join(
            f'<li><span class="badge {p.severity}">{p.severity}</span> {escape(p.message)}</li>'
            for p in child.problems
        )
        rows.append(
            f'<tr id="child-{escape(child.handle)}"><td>{escape(child.handle)}</td>'
            f"<td>{escape(child.ca)}</td>"
            f"<td>{escape(child.entitlement or 'nothing')}</td><td>{certificates or 'none issued'}</td>"
            f"<td>{escape(when(child.last_request, now) if child.last_request else 'never')}</td>"
            f'<td><ul class="problems">{problems}</ul></td></tr>'
        )
    return (
        "<h2>External children (RFC 6492)</h2><table><tr><th>child</th><th>parent CA</th>"
        "<th>entitlement</th><th>certificates</th><th>last request</th><th>problems</th></tr>"
        + "".join(rows)
        + "</table>"
    )


def _publishers(report: StatusReport) -> str:
    """External publishers: their use of the quota and their last publication."""
    if not report.publishers:
        return ""
    now = report.generated_at
    rows = []
    for p in report.publishers:
        badge = "warning" if p.problems else "info"
        rows.append(
            f'<tr id="publisher-{escape(p.handle)}"><td>{escape(p.handle)}</td>'
            f"<td>{p.objects} of {p.quota_objects}</td>"
            f"<td>{escape(human_size(p.bytes))} of {escape(human_size(p.quota_bytes))}</td>"
            f'<td><span class="badge {badge}">{p.quota_used_pct:.1f}%</span></td>'
            f"<td>{escape(when(p.last_publication, now) if p.last_publication else 'never')}</td>"
            f"<td>{escape(p.last_summary or '')}</td></tr>"
        )
    return (
        "<h2>Publishers (RFC 8181)</h2><table><tr><th>publisher</th><th>objects</th><th>size</th>"
        "<th>quota used</th><th>last publication</th><th>what it did</th></tr>" + "".join(rows) + "</table>"
    )


def _problem_list(problems: list[Problem]) -> str:
    return "".join(
        f'<li><span class="badge {p.severity}">{p.severity}</span> {escape(p.message)}</li>' for p in problems
    )


def _exchanges(failures: int, error: ExchangeError | None) -> str:
    if error is None:
        return '<span class="badge info">ok</span>'
    return f'<span class="badge warning">{failures} failed</span> {escape(error.description)}'


def _dl(rows: list[tuple[str, str]]) -> str:
    """Escaped terms and values."""
    return "".join(f"<dt>{escape(k)}</dt><dd>{escape(v)}</dd>" for k, v in rows)


def _parent(report: StatusReport) -> str:
    """The external parent: the certificate it issued, the entitlements, the exchanges."""
    parent = report.external_parent
    if parent is None:
        return ""
    now = report.generated_at
    cert = parent.certificate
    if cert is None:
        certified = '<span class="badge critical">none</span>'
    else:
        certified = "<br>".join(
            escape(
                f"class {c.class_name}, not after {when(c.not_after, now) if c.not_after else 'unreadable'}; "
                f"{c.resources}; {c.uri}"
            )
            for c in (cert, *parent.other_certificates)
        )
    entitled = "<br>".join(
        escape(f"class {e.class_name}: {e.resources or 'nothing'}, until {when(e.not_after, now)}")
        for e in parent.entitlements
    )
    rows = [
        ("parent", f"{parent.handle} ({parent.service_uri}), our handle {parent.child_handle}"),
        ("last success", when(parent.last_success, now) if parent.last_success else "never"),
        ("last attempt", when(parent.last_attempt, now)),
        ("next contact", when(parent.next_contact, now)),
        ("entitled, not certified", parent.entitled_not_certified or "nothing"),
        ("certified, not entitled", parent.certified_not_entitled or "nothing"),
    ]
    return (
        f'<h2>Parent (RFC 6492) of {escape(parent.ca)}</h2><div class="ca" id="parent"><dl>{_dl(rows)}'
        f"<dt>certificate</dt><dd>{certified}</dd>"
        f"<dt>entitlements</dt><dd>{entitled or 'not listed yet'}</dd>"
        f"<dt>exchanges</dt><dd>{_exchanges(parent.failures, parent.last_error)}</dd></dl>"
        f'<ul class="problems">{_problem_list(parent.problems)}</ul></div>'
    )


def _repository(report: StatusReport) -> str:
    """The remote repository: what it holds for us, the last message sent, the exchanges."""
    repository = report.remote_repository
    if repository is None:
        return ""
    now = report.generated_at
    sent = repository.last_sent
    last_sent = (
        f"{sent.publish} publish, {sent.withdraw} withdraw, {human_size(sent.bytes)}, {when(sent.at, now)}"
        if sent is not None
        else "nothing yet"
    )
    rows = [
        ("repository", f"{repository.service_uri}, our handle {repository.publisher_handle}"),
        ("sia_base", repository.sia_base),
        ("holds", f"{repository.objects} objects, {human_size(repository.bytes)}"),
        ("last sent", last_sent),
        ("last success", when(repository.last_success, now) if repository.last_success else "never"),
    ]
    return (
        f'<h2>Repository (RFC 8181)</h2><div class="ca" id="repository"><dl>{_dl(rows)}'
        f"<dt>exchanges</dt><dd>{_exchanges(repository.failures, repository.last_error)}</dd></dl>"
        f'<ul class="problems">{_problem_list(repository.problems)}</ul></div>'
    )


def render(report: StatusReport) -> str:
    problems = report.every_problem()
    listed = "".join(
        f'<li><span class="badge {p.severity}">{p.severity}</span> '
        f"{escape(name + ': ' if name else '')}{escape(p.message)}</li>"
        for name, p in problems
    )
    verdict = report.severity if problems else "info"
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{POLICY}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>RPKI status: {escape(report.repo)}</title><style>{STYLE}</style></head><body>"
        f'<h1>RPKI CA status <span class="badge {verdict}" id="verdict">'
        f"{'ok' if verdict == 'info' else verdict}</span></h1>"
        f'<div class="meta">{escape(header(report))}</div>'
        + (f'<h2>Problems</h2><ul class="problems">{listed}</ul>' if listed else "")
        + '<h2>Timeline</h2><p class="meta">Circles: scheduled renewal; squares: expiry '
        "(what relying parties see if nothing renews it). Red: renewal overdue.</p>"
        + timeline(report)
        + "<h2>CA tree</h2>"
        + _tree(report, None)
        + _children(report)
        + _publishers(report)
        + _parent(report)
        + _repository(report)
        + "<h2>Upcoming</h2>"
        + _upcoming(report)
        + "</body></html>\n"
    )
