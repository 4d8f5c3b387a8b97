"""The plan as one Markdown pull-request comment.

Visible: the verdict, the summary line, the gates with their approval tokens, and every revocation.
Folded in ``<details>``: the change table, route-validity changes, desired-state changes and routine
churn. The comment stays under GitHub's 65,536-character limit: the longest folded tables are cut first,
each cut saying how many rows were left out and that ``plan.json`` has them all.
"""

from __future__ import annotations

from reconciler.plan.document import ChangeDoc, PlanDocument
from reconciler.plan.render.common import (
    SYMBOLS,
    notice_line,
    revocation_line,
    roll_summary,
    routine_summary,
    verdict,
)

COMMENT_LIMIT = 65_536
MARKER = "<!-- rpkictl-plan -->"
GATE_ITEMS_SHOWN = 50  # per gate; the plan document has them all


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _change_row(change: ChangeDoc) -> str:
    return (
        f"| {SYMBOLS[change.action]} {change.action} | `{_cell(change.address)}` | {_cell(change.reason)} |"
    )


def _details(summary: str, header: list[str], rows: list[str], keep: int | None) -> str:
    shown = rows if keep is None else rows[:keep]
    body = [*header, *shown]
    if keep is not None and keep < len(rows):
        body.append("")
        body.append(f"_{len(rows) - keep} more rows cut to fit the comment limit; `plan.json` has them all._")
    return "\n".join([f"<details><summary>{summary}</summary>", "", *body, "", "</details>", ""])


class _Sections:
    """The folded tables, each with its rows, so that the longest can be cut until the comment fits."""

    def __init__(self, doc: PlanDocument) -> None:
        review = [c for c in doc.changes if not c.routine]
        routine = [c for c in doc.changes if c.routine and not c.roll]
        roll = [c for c in doc.changes if c.roll]
        self.tables: list[tuple[str, list[str], list[str]]] = []
        if review:
            self.tables.append(
                (
                    f"Changes to review ({len(review)})",
                    ["| Action | Object | Reason |", "|---|---|---|"],
                    [_change_row(c) for c in review],
                )
            )
        vrp_rows = [f"| + | `{v}` |" for v in doc.vrps.added] + [f"| - | `{v}` |" for v in doc.vrps.removed]
        if vrp_rows:
            self.tables.append(
                (
                    f"Validated ROA payloads (+{len(doc.vrps.added)} -{len(doc.vrps.removed)})",
                    ["| | VRP |", "|---|---|"],
                    vrp_rows,
                )
            )
        if doc.route_impact:
            rows = [
                f"| {'**breaks**' if r.breaks else ''} | `{r.prefix}` | AS{r.origin} | "
                f"{r.before} | {r.after} | "
                f"{'' if r.peers is None else r.peers} |"
                for r in doc.route_impact
            ]
            self.tables.append(
                (
                    f"Route validity changes ({len(rows)})",
                    ["| | Prefix | Origin | Before | After | Peers |", "|---|---|---|---|---|---|"],
                    rows,
                )
            )
        if doc.intent:
            rows = [f"| `{_cell(i.where or '-')}` | {_cell(i.summary)} |" for i in doc.intent]
            self.tables.append(
                (
                    f"Desired-state changes since `{doc.base}` ({len(rows)})",
                    ["| Where | Change |", "|---|---|"],
                    rows,
                )
            )
        if routine:
            self.tables.append(
                (
                    f"Routine, not for review: {routine_summary(doc.changes)}",
                    ["| Action | Object | Reason |", "|---|---|---|"],
                    [_change_row(c) for c in routine],
                )
            )
        if roll:
            self.tables.append(
                (
                    f"Key roll steps: {roll_summary(doc.changes)}",
                    ["| Action | Object | Reason |", "|---|---|---|"],
                    [_change_row(c) for c in roll],
                )
            )
        self.keep: list[int | None] = [None] * len(self.tables)

    def render(self) -> list[str]:
        return [_details(s, h, rows, k) for (s, h, rows), k in zip(self.tables, self.keep, strict=True)]

    def cut_longest(self) -> bool:
        """Halve the longest table still shown; False when nothing is left to cut."""
        sizes = [
            len(rows) if k is None else k for (_, _, rows), k in zip(self.tables, self.keep, strict=True)
        ]
        if not sizes or max(sizes) == 0:
            return False
        index = sizes.index(max(sizes))
        self.keep[index] = sizes[index] // 2
        return True


def _visible(doc: PlanDocument) -> list[str]:
    commit = f"`{doc.desired.git_commit[:12]}`" if doc.desired.git_commit else "not in Git"
    parts = [
        MARKER,
        f"### RPKI plan: {verdict(doc)}",
        "",
        f"**{doc.summary.text}**",
        "",
        f"plan `{doc.plan_id[:12]}` · desired {commit} · computed for {doc.created_at:%Y-%m-%dT%H:%M:%SZ}",
    ]
    if doc.notices:
        parts += ["", "#### Notices", ""]
        parts += [f"- {_cell(notice_line(n))}" for n in doc.notices]
    if doc.gates:
        parts += [
            "",
            f"#### ⚠️ Approval required ({len(doc.gates)})",
            "",
            "| Gate | Why | Flagged | Approve with |",
            "|---|---|---|---|",
        ]
        parts += [
            f"| `{g.id}` | {_cell(g.message)} | {g.count} | `--approve {g.approve}` |" for g in doc.gates
        ]
        for gate in doc.gates:
            shown = gate.items[:GATE_ITEMS_SHOWN]
            more = len(gate.items) - len(shown)
            parts += ["", f"<details><summary>Flagged by <code>{gate.id}</code> ({gate.count})</summary>", ""]
            parts += [f"- `{_cell(item)}`" for item in shown]
            if more:
                parts.append(f"- _{more} more in `plan.json`_")
            parts += ["", "</details>"]
    revocations = [c for c in doc.changes if c.revoke_serial is not None]
    if revocations:
        parts += ["", f"#### Revocations ({len(revocations)})", ""]
        parts += [f"- `{_cell(revocation_line(c))}`" for c in revocations]
    return parts


def render(doc: PlanDocument, limit: int = COMMENT_LIMIT) -> str:
    """The comment; never longer than ``limit`` characters."""
    visible = _visible(doc)
    sections = _Sections(doc)
    while True:
        text = "\n".join([*visible, "", *sections.render(), ""])
        if len(text) <= limit or not sections.cut_longest():
            break
    if len(text) > limit:  # the visible part alone is too long: cut it, and say so
        note = "\n\n_Comment cut to fit GitHub's limit; `plan.json` has the complete plan._\n"
        text = (text[: max(0, limit - len(note))] + note)[:limit]
    return text
