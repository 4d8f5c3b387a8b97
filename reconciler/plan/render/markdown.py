"""The plan as one Markdown pull-request comment.

A reviewer decides on what a change *does*, so that is what the comment shows open, in this order: the
verdict and the summary line; the gates with their approval tokens and the items they flag; notices;
the changes to review; the validated ROA payloads added and removed; the ASPAs that change; the routes
whose validity changes (a fix marked as plainly as a breakage, in words as well as a symbol); and the
YAML entries changed since ``--base``, each at its file and line. What no one decides on is folded in
``<details>``: the serial numbers revoked on the CRLs, routine manifest and CRL renewals and re-issues,
key roll steps.

A registry's plan can list thousands of rows, so each open list shows its first :data:`OPEN_ROWS` rows
and folds the rest, and the comment stays under GitHub's 65,536-character limit: rows are cut from the
longest list first (folded rows before the open ones), each cut saying how many rows it left out and
that ``plan.json`` has them all.
"""

from __future__ import annotations

from dataclasses import dataclass

from reconciler.plan.document import (
    AspaChangeDoc,
    ChangeDoc,
    IntentDoc,
    PathChangeDoc,
    PlanDocument,
    RouteChangeDoc,
    VrpDoc,
)
from reconciler.plan.render.common import (
    SYMBOLS,
    aspa_line,
    external_child_lines,
    notice_line,
    parent_lines,
    path_line,
    publisher_lines,
    repository_lines,
    revocation_line,
    roll_summary,
    route_mark,
    route_tally,
    routine_summary,
    verdict,
)

COMMENT_LIMIT = 65_536
MARKER = "<!-- rpkictl-plan -->"
OPEN_ROWS = 20  # per reviewable list: the rest is folded under it
GATE_ITEMS_OPEN = 10  # flagged items shown open under each gate
GATE_ITEMS_SHOWN = 50  # per gate, open and folded; the plan document has them all
CHANGE_HEADER = ["| Action | Object | Reason |", "|---|---|---|"]


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _code(text: str) -> str:
    """Inline code that a backtick in ``text`` cannot end early."""
    return f"`` {text} ``" if "`" in text else f"`{text}`"


def _change_row(change: ChangeDoc) -> str:
    action = f"{SYMBOLS[change.action]} {change.action}"
    return f"| {action} | {_code(_cell(change.address))} | {_cell(change.reason)} |"


def _vrp_row(sign: str, vrp: VrpDoc) -> str:
    return f"| {sign} | AS{vrp.asn} | `{vrp.prefix}` | {vrp.max_length} |"


def _aspa_row(change: AspaChangeDoc) -> str:
    symbol, words = aspa_line(change)
    return f"| {symbol} | {_cell(words)} | {_code(_cell(change.path))} |"


def _path_row(change: PathChangeDoc) -> str:
    word, text = path_line(change)
    return f"| {word} | {_cell(text)} |"


def _route_row(route: RouteChangeDoc) -> str:
    peers = "" if route.peers is None else str(route.peers)
    return (
        f"| {route_mark(route)} | `{route.prefix}` | AS{route.origin} | {route.before} | {route.after} | "
        f"{peers} |"
    )


def _intent_row(entry: IntentDoc) -> str:
    where = _code(_cell(entry.where)) if entry.where else "-"
    if entry.revision is not None:  # a line of the base revision's file, not of the work tree's
        where += f" (at {_code(_cell(entry.revision))})"
    return f"| {where} | {_cell(entry.summary)} |"


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'s' if count != 1 else ''}"


def _cut_note(count: int) -> str:
    return f"_{count} more rows cut to fit the comment limit; `plan.json` has them all._"


@dataclass
class _List:
    """One list of rows: reviewable ones open under a heading with the first rows showing, mechanical
    ones folded whole. ``keep`` is how many rows are left after cutting to fit (None: all)."""

    title: str
    header: list[str]
    rows: list[str]
    reviewable: bool
    keep: int | None = None

    @property
    def kept(self) -> int:
        return len(self.rows) if self.keep is None else self.keep

    @property
    def floor(self) -> int:
        """Rows that are cut only once nothing else is left to cut: the open ones."""
        return min(OPEN_ROWS, len(self.rows)) if self.reviewable else 0

    def render(self) -> list[str]:
        rows = self.rows[: self.kept]
        cut = len(self.rows) - len(rows)
        note = ["", _cut_note(cut)] if cut else []
        if not self.reviewable:
            body = [*self.header, *rows, *note]
            return [f"<details><summary>{self.title}</summary>", "", *body, "", "</details>", ""]
        shown, folded = rows[:OPEN_ROWS], rows[OPEN_ROWS:]
        parts = [f"#### {self.title}", "", *self.header, *shown, ""]
        if folded:
            more = _plural(len(folded), "more row")
            parts += [f"<details><summary>{more}</summary>", "", *self.header, *folded, "", "</details>", ""]
        if note:
            parts += [*note[1:], ""]
        return parts


def _lists(doc: PlanDocument) -> list[_List]:
    """The lists in the order a reviewer reads them: reviewable (open) first, then the folded ones."""
    counts = doc.counts()
    review = [c for c in doc.changes if not c.routine]
    lists: list[_List] = []
    if review:
        rows = [_change_row(c) for c in review]
        lists.append(_List(f"Changes to review ({counts.review})", CHANGE_HEADER, rows, reviewable=True))
    if doc.vrps.added or doc.vrps.removed:
        rows = [_vrp_row("+ added", v) for v in doc.vrps.added]
        rows += [_vrp_row("- removed", v) for v in doc.vrps.removed]
        lists.append(
            _List(
                f"Validated ROA payloads (+{counts.vrps_added} -{counts.vrps_removed})",
                ["| | Origin | Prefix | Max length |", "|---|---|---|---|"],
                rows,
                reviewable=True,
            )
        )
    if doc.aspas:
        lists.append(
            _List(
                f"ASPAs ({len(doc.aspas)})",
                ["| | Customer and providers | Object |", "|---|---|---|"],
                [_aspa_row(c) for c in doc.aspas],
                reviewable=True,
            )
        )
    if doc.route_impact:
        lists.append(
            _List(
                f"Route validity changes ({len(doc.route_impact)}): {route_tally(doc.route_impact)}",
                ["| | Prefix | Origin | Before | After | Peers |", "|---|---|---|---|---|---|"],
                [_route_row(r) for r in doc.route_impact],
                reviewable=True,
            )
        )
    if doc.path_impact:
        lists.append(
            _List(
                f"ASPA path verification ({_plural(len(doc.path_impact), 'path')} change outcome)",
                ["| | Path (neighbour first) and prefixes |", "|---|---|"],
                [_path_row(c) for c in doc.path_impact],
                reviewable=True,
            )
        )
    if doc.intent:
        lists.append(
            _List(
                f"Desired-state changes since {_code(_cell(doc.base or '?'))} ({len(doc.intent)})",
                ["| Where | Change |", "|---|---|"],
                [_intent_row(i) for i in doc.intent],
                reviewable=True,
            )
        )
    revocations = [c for c in doc.changes if c.revoke_serial is not None]
    if revocations:
        lists.append(
            _List(
                f"Revocations ({len(revocations)}): serial numbers put on the CRLs",
                [],
                [f"- {_code(_cell(revocation_line(c)))}" for c in revocations],
                reviewable=False,
            )
        )
    routine = [c for c in doc.changes if c.routine and not c.roll]
    if routine:
        lists.append(
            _List(
                f"Routine, not for review: {routine_summary(doc.changes)}",
                CHANGE_HEADER,
                [_change_row(c) for c in routine],
                reviewable=False,
            )
        )
    roll = [c for c in doc.changes if c.roll]
    if roll:
        lists.append(
            _List(
                f"Key roll steps: {roll_summary(doc.changes)}",
                CHANGE_HEADER,
                [_change_row(c) for c in roll],
                reviewable=False,
            )
        )
    return lists


def _cut_longest(lists: list[_List]) -> bool:
    """Halve the longest list's rows above its floor; once every list is at its floor, cut below it.
    False when nothing is left to cut."""
    for use_floor in (True, False):
        excess = [lst.kept - (lst.floor if use_floor else 0) for lst in lists]
        if excess and max(excess) > 0:
            index = excess.index(max(excess))
            chosen = lists[index]
            chosen.keep = chosen.kept - (excess[index] + 1) // 2
            return True
    return False


def _gates(doc: PlanDocument) -> list[str]:
    if not doc.gates:
        return []
    parts = [
        "",
        f"#### ⚠️ Approval required ({len(doc.gates)})",
        "",
        "| Gate | Why | Flagged | Approve with |",
        "|---|---|---|---|",
    ]
    parts += [f"| `{g.id}` | {_cell(g.message)} | {g.count} | `--approve {g.approve}` |" for g in doc.gates]
    for gate in doc.gates:
        shown = gate.items[:GATE_ITEMS_OPEN]
        folded = gate.items[GATE_ITEMS_OPEN:GATE_ITEMS_SHOWN]
        more = len(gate.items) - len(shown) - len(folded)
        parts += ["", f"Flagged by `{gate.id}` ({gate.count}):", ""]
        parts += [f"- {_code(_cell(item))}" for item in shown]
        if folded:
            parts += ["", f"<details><summary>{_plural(len(folded), 'more item')}</summary>", ""]
            parts += [f"- {_code(_cell(item))}" for item in folded]
            parts += ["", "</details>"]
        if more:
            parts += ["", f"_{more} more in `plan.json`_"]
    return parts


def _head(doc: PlanDocument) -> list[str]:
    """What is never folded nor cut by rows: verdict, summary, provenance, gates, notices."""
    commit = f"`{doc.desired.git_commit[:12]}`" if doc.desired.git_commit else "not in Git"
    dirty = " + uncommitted changes" if doc.desired.git_dirty else ""
    parts = [
        MARKER,
        f"### RPKI plan: {verdict(doc)}",
        "",
        f"**{doc.summary.text}**",
        "",
        f"plan `{doc.plan_id[:12]}` · desired {commit}{dirty} · "
        f"computed for {doc.created_at:%Y-%m-%dT%H:%M:%SZ}",
    ]
    parts += _gates(doc)
    if doc.notices:
        parts += ["", "#### Notices", ""]
        parts += [f"- {_cell(notice_line(n))}" for n in doc.notices]
    if doc.external_children:
        parts += ["", "#### External children", ""]
        parts += [
            f"  - {_cell(line.strip())}" if line.startswith(" ") else f"- {_cell(line)}"
            for line in external_child_lines(doc)
        ]
    if doc.publishers:
        parts += ["", "#### Publishers", ""]
        parts += [
            f"  - {_cell(line.strip())}" if line.startswith(" ") else f"- {_cell(line)}"
            for line in publisher_lines(doc)
        ]
    for title, lines in (("Parent", parent_lines(doc)), ("Repository", repository_lines(doc))):
        if lines:
            parts += ["", f"#### {title}", ""]
            parts += [
                f"  - {_cell(line.strip())}" if line.startswith(" ") else f"- {_cell(line)}" for line in lines
            ]
    return parts


def render(doc: PlanDocument, limit: int = COMMENT_LIMIT) -> str:
    """The comment; never longer than ``limit`` characters."""
    head = _head(doc)
    lists = _lists(doc)
    while True:
        body = [line for lst in lists for line in lst.render()]
        text = "\n".join([*head, "", *body])
        text = text if text.endswith("\n") else text + "\n"
        if len(text) <= limit or not _cut_longest(lists):
            break
    if len(text) > limit:  # the head alone is too long: cut it, and say so
        note = "\n\n_Comment cut to fit GitHub's limit; `plan.json` has the complete plan._\n"
        text = (text[: max(0, limit - len(note))] + note)[:limit]
    return text
