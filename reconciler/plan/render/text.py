"""The plan as text: verdict first, one line per change with its reason, routine churn summarised
apart, gates with the token that approves them, the summary line, and every revocation at the end."""

from __future__ import annotations

from rich.text import Text

from reconciler.plan.document import ChangeDoc, IntentDoc, PlanDocument, VrpDoc
from reconciler.plan.render.common import (
    SYMBOLS,
    aspa_line,
    external_child_lines,
    header,
    notice_line,
    parent_lines,
    path_line,
    publisher_lines,
    refresh_line,
    repository_lines,
    revocation_line,
    roll_summary,
    route_word,
    routine_summary,
    verdict,
)

STYLES = {"+": "green", "~": "yellow", "↻": "cyan", "-": "red"}
NOTICE_STYLES = {"info": "cyan", "warning": "bold yellow", "critical": "bold red"}


def _change(change: ChangeDoc) -> Text:
    symbol = SYMBOLS[change.action]
    line = Text("  ")
    line.append(f"{symbol} {change.action:<10}", style=STYLES[symbol])
    line.append(f" {change.address}")
    line.append(f"  ({change.reason})", style="dim")
    return line


def _section(title: str, style: str = "bold") -> Text:
    return Text(title, style=style)


def _route_lines(doc: PlanDocument) -> list[Text]:
    if doc.route_impact is None or doc.announcements is None:
        return []
    source = doc.announcements
    count = len(doc.route_impact)
    lines = [
        _section(
            f"Route validity ({source.routes} announcements from {source.path}, "
            f"minimum {source.min_peers} peers): {count} change{'s' if count != 1 else ''}"
        )
    ]
    for route in doc.route_impact:
        peers = f" ({route.peers} peers)" if route.peers is not None else ""
        word = route_word(route)
        style = {"broken": "bold red", "fixed": "green"}.get(word, "yellow")
        lines.append(
            Text(
                f"  [{word}] AS{route.origin} {route.prefix}: {route.before} -> {route.after}{peers}",
                style=style,
            )
        )
    return lines


def _path_lines(doc: PlanDocument) -> list[Text]:
    if doc.path_impact is None:
        return []
    count = len(doc.path_impact)
    lines = [_section(f"ASPA path verification: {count} path{'s' if count != 1 else ''} change outcome")]
    for change in doc.path_impact:
        word, text = path_line(change)
        style = {"broken": "bold red", "fixed": "green"}.get(word, "yellow")
        lines.append(Text(f"  [{word}] {text}", style=style))
    return lines


def _vrp(vrp: VrpDoc) -> str:
    return f"AS{vrp.asn} {vrp.prefix} max {vrp.max_length}"


def _intent(entry: IntentDoc) -> Text:
    at = f" (at {entry.revision})" if entry.revision is not None else ""
    return Text(f"  {entry.where or '-'}{at}  {entry.summary}")


def _intents(doc: PlanDocument) -> list[Text]:
    if doc.intent is None:
        return []
    return [_section(f"Desired-state changes since {doc.base}: {len(doc.intent)}"), *map(_intent, doc.intent)]


def _notes(doc: PlanDocument) -> list[Text]:
    """Notices, the external children and the publishers, the external parent and the remote repository:
    shown even when there are no changes."""
    lines = []
    if doc.notices:
        lines.append(_section("Notices:"))
        lines += [Text(f"  {notice_line(n)}", style=NOTICE_STYLES[n.severity]) for n in doc.notices]
    if doc.external_children:
        lines.append(_section("External children:"))
        lines += [Text(f"  {line}") for line in external_child_lines(doc)]
    if doc.publishers:
        lines.append(_section("Publishers:"))
        lines += [Text(f"  {line}") for line in publisher_lines(doc)]
    if doc.parent is not None:
        lines.append(_section("Parent:"))
        lines += [Text(f"  {line}") for line in parent_lines(doc)]
    if doc.repository is not None:
        lines.append(_section("Repository:"))
        lines += [Text(f"  {line}") for line in repository_lines(doc)]
    return lines


def _gate_lines(doc: PlanDocument) -> list[Text]:
    """The gates with their flagged items and tokens. A plan with nothing to sign can have one too: a
    request to the external parent that waits for approval (``parent-shrink``)."""
    if not doc.gates:
        return []
    count = len(doc.gates)
    lines = [_section(f"Approval required ({count} gate{'s' if count != 1 else ''}):", "bold red")]
    for gate in doc.gates:
        lines.append(Text(f"  [{gate.id}] {gate.message}"))
        lines += [Text(f"      {item}", style="dim") for item in gate.items]
        lines.append(Text(f"    approve with: --approve {gate.approve}", style="bold"))
    return lines


def render(doc: PlanDocument) -> list[Text]:
    """The plan as lines of styled text; styles show only on a terminal."""
    refreshed = refresh_line(doc)
    lines = [Text(header(doc) + (f"; {refreshed}" if refreshed else ""), style="dim")]  # the verdict next
    gated = bool(doc.gates)
    if doc.changes:
        lines.append(Text(verdict(doc), style="bold red" if gated else "bold"))
    else:  # the summary says "No changes." itself: the verdict would say it twice
        lines.append(Text(doc.summary.text, style="green"))
    lines += _notes(doc)
    if not doc.changes:  # declaring an external child or publisher changes nothing published yet
        return lines + _intents(doc) + _gate_lines(doc)
    review = [c for c in doc.changes if not c.routine]
    if review:
        lines.append(_section("Changes:"))
        lines += [_change(c) for c in review]
    if any(c.routine and not c.roll for c in doc.changes):
        lines.append(
            Text("Routine (not for review): ", style="bold").append(routine_summary(doc.changes), style="")
        )
    if any(c.roll for c in doc.changes):
        lines.append(Text("Key roll steps: ", style="bold").append(roll_summary(doc.changes), style=""))
    if doc.vrps.added or doc.vrps.removed:
        lines.append(_section(f"Validated ROA payloads: +{len(doc.vrps.added)} -{len(doc.vrps.removed)}"))
        lines += [Text(f"  + {_vrp(v)}", style="green") for v in doc.vrps.added]
        lines += [Text(f"  - {_vrp(v)}", style="red") for v in doc.vrps.removed]
    if doc.aspas:
        lines.append(_section(f"ASPAs ({len(doc.aspas)}):"))
        for change in doc.aspas:
            symbol, words = aspa_line(change)
            lines.append(Text(f"  {symbol} {words}", style=STYLES[symbol]))
    lines += _route_lines(doc)
    lines += _path_lines(doc)
    lines += _intents(doc)
    lines += _gate_lines(doc)
    lines.append(Text(doc.summary.text, style="bold"))
    revocations = [c for c in doc.changes if c.revoke_serial is not None]
    if revocations:
        lines.append(_section(f"Revocations ({len(revocations)}):", "bold red"))
        lines += [Text(f"  - {revocation_line(c)}") for c in revocations]
    return lines


def render_plain(doc: PlanDocument) -> str:
    return "\n".join(line.plain for line in render(doc)) + "\n"
