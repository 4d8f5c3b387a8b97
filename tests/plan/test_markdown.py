"""The pull-request comment (``plan --format markdown``): what a reviewer sees without a click.

Open, in this order: the verdict, the gates, the changes to review, the VRPs added and removed, the route
validity changes (fixed routes marked as plainly as broken ones, in words) and the YAML changed since
``--base`` with its file and line. Folded: revoked serial numbers and routine renewals. A registry-sized
plan stays under GitHub's 65,536-character limit, the first rows of every reviewable list still open.
The golden files of ``test_render.py`` pin the exact wording of real plans; these tests pin the layout.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest

from reconciler.plan import document
from reconciler.plan.document import (
    ChangeDoc,
    DesiredDoc,
    GateDoc,
    IntentDoc,
    ObservedDoc,
    PlanDocument,
    RouteChangeDoc,
    SummaryDoc,
    VrpDoc,
    VrpsDoc,
)
from reconciler.plan.render import markdown, text

HARD_CUT = "_Comment cut to fit GitHub's limit; `plan.json` has the complete plan._"
ROWS_CUT = re.compile(r"_(\d+) more rows cut to fit the comment limit; `plan\.json` has them all\._")
DETAILS = re.compile(r"<details>.*?</details>", re.DOTALL)
SERIAL = "abcdef0123456789abcdef0123456789abcdef01"


def visible(comment: str) -> str:
    """What a reviewer sees without opening anything: the comment less its ``<details>`` blocks."""
    return DETAILS.sub("", comment)


def _doc(**fields: object) -> PlanDocument:
    base: dict[str, object] = {
        "format_version": document.FORMAT_VERSION,
        "plan_id": "f" * 64,
        "created_at": datetime(2026, 11, 23, 12, 0, tzinfo=UTC),
        "tool_version": "0.0.0",
        "desired": DesiredDoc(repo="/srv/rpki/state", digest="0" * 64, git_commit="1" * 40, git_dirty=False),
        "observed": ObservedDoc(tree_sha256="2" * 64, points={}),
        "approval_required": False,
        "summary": SummaryDoc(
            create_key=0,
            issue=0,
            replace=0,
            revoke=0,
            withdraw=0,
            routine=0,
            vrps_added=0,
            vrps_removed=0,
            text="Plan: (summary line).",
        ),
        "gates": [],
        "changes": [],
        "vrps": VrpsDoc(added=[], removed=[]),
    }
    base.update(fields)
    return PlanDocument.model_validate(base)


def _change(
    action: str, address: str, reason: str, *, routine: bool = False, serial: str | None = None
) -> ChangeDoc:
    kind, _, path = address.partition(" ")
    return ChangeDoc(
        action=action,  # type: ignore[arg-type]
        kind=kind,  # type: ignore[arg-type]
        ca="example-isp",
        address=address,
        path=path,
        reason=reason,
        routine=routine,
        revoke_serial=serial,
    )


def _route(prefix: str, before: str, after: str) -> RouteChangeDoc:
    return RouteChangeDoc(
        prefix=prefix,
        origin=64496,
        peers=100,
        before=before,  # type: ignore[arg-type]
        after=after,  # type: ignore[arg-type]
        breaks=before == "valid" and after == "invalid",
    )


def reviewed_document() -> PlanDocument:
    """A small plan with every part: a gate, a ROA replaced and one revoked, a new one, routine manifest
    and CRL renewals, VRPs both ways, a broken, a fixed and a newly invalid route, and YAML changes
    since origin/main (an entry removed from the base revision's file included)."""
    changes = [
        _change("issue", "roa example-isp/AS64497_203-0-113-0_24.roa", "new ROA AS64497 203.0.113.0/24"),
        _change("reissue", "roa example-isp/AS64496_198-51-100-0_25.roa", "content changed", serial="1a2b"),
        _change("revoke", "roa example-isp/AS0_192-0-2-128_25.roa", "no longer desired", serial=SERIAL),
        _change("renew", "crl example-isp/K.crl", "3 objects changed", routine=True),
        _change("renew", "manifest example-isp/K.mft", "3 objects changed", routine=True),
    ]
    gate = GateDoc(
        id="route-invalid",
        rule="route-invalid",
        ca="*",
        message="1 announcement now valid would become invalid",
        count=1,
        existing=0,
        threshold=None,
        hash="a" * 64,
        approve="route-invalid:" + "a" * 16,
        items=["AS64496 198.51.100.64/26: valid -> invalid"],
    )
    return _doc(
        approval_required=True,
        gates=[gate],
        changes=changes,
        vrps=VrpsDoc(
            added=[VrpDoc(asn=64497, prefix="203.0.113.0/24", max_length=24)],
            removed=[VrpDoc(asn=0, prefix="192.0.2.128/25", max_length=25)],
        ),
        route_impact=[
            _route("198.51.100.64/26", "valid", "invalid"),
            _route("203.0.113.0/24", "invalid", "valid"),
            _route("192.0.2.0/25", "not-found", "invalid"),
        ],
        intent=[
            IntentDoc(
                kind="roa-added",
                ca="example-isp",
                summary="added ROA AS64497 203.0.113.0/24 max 24",
                where="state/cas/members/example-isp.yaml:12:5",
            ),
            IntentDoc(
                kind="roa-removed",
                ca="example-isp",
                summary="removed ROA AS0 192.0.2.128/25 max 25",
                where="state/cas/members/example-isp.yaml:12:5",
                revision="origin/main",
            ),
        ],
        base="origin/main",
    )


def test_reviewable_parts_are_open_and_mechanical_ones_folded() -> None:
    """Without opening anything a reviewer sees the changes, the VRPs, the routes and the YAML changes;
    the revoked serials and the routine renewals are folded, under summaries that say what they hold."""
    comment = markdown.render(reviewed_document())
    shown = visible(comment)
    for heading in (
        "#### ⚠️ Approval required (1)",
        "#### Changes to review (3)",
        "#### Validated ROA payloads (+1 -1)",
        "#### Route validity changes (3): 1 broken, 1 fixed, 1 now invalid",
        "#### Desired-state changes since `origin/main` (2)",
    ):
        assert heading in shown, heading
    issue = "| + issue | `roa example-isp/AS64497_203-0-113-0_24.roa` | new ROA AS64497 203.0.113.0/24 |"
    assert issue in shown
    assert "| + added | AS64497 | `203.0.113.0/24` | 24 |" in shown
    assert "| - removed | AS0 | `192.0.2.128/25` | 25 |" in shown
    assert "removed ROA AS0 192.0.2.128/25 max 25" in shown
    assert SERIAL not in shown and SERIAL in comment
    assert "<details><summary>Revocations (2): serial numbers put on the CRLs</summary>" in comment
    assert "manifest example-isp/K.mft" not in shown
    routine = "<details><summary>Routine, not for review: 1 manifest, 1 CRL (in example-isp)</summary>"
    assert routine in comment


def test_verdict_and_gates_come_first() -> None:
    """The verdict heads the comment and the gates, with the items they flag and their approval token,
    come before any list of changes."""
    comment = markdown.render(reviewed_document())
    verdict = "3 changes to review; APPROVAL REQUIRED (1 gate)."
    assert comment.startswith(f"{markdown.MARKER}\n### RPKI plan: {verdict}")
    gates = comment.index("#### ⚠️ Approval required (1)")
    assert gates < comment.index("#### Changes to review")
    flagged = comment.index("- `AS64496 198.51.100.64/26: valid -> invalid`")
    assert gates < flagged < comment.index("#### Changes to review")
    assert "`--approve route-invalid:aaaaaaaaaaaaaaaa`" in visible(comment)


def test_fixed_routes_are_marked_as_plainly_as_broken_ones() -> None:
    """Each route row says in words what happens to the route, with a symbol beside the word (no
    colour in a comment): broken, fixed, or now invalid; the text plan says the same words."""
    doc = reviewed_document()
    comment = markdown.render(doc)
    assert "| ❌ broken | `198.51.100.64/26` | AS64496 | valid | invalid | 100 |" in comment
    assert "| ✅ fixed | `203.0.113.0/24` | AS64496 | invalid | valid | 100 |" in comment
    assert "| ⚠️ now invalid | `192.0.2.0/25` | AS64496 | not-found | invalid | 100 |" in comment
    source = document.AnnouncementsDoc(path="bgp.txt", sha256="3" * 64, min_peers=0, routes=3)
    doc = doc.model_copy(update={"announcements": source})
    plain = text.render_plain(doc)
    assert "  [broken] AS64496 198.51.100.64/26: valid -> invalid (100 peers)" in plain
    assert "  [fixed] AS64496 203.0.113.0/24: invalid -> valid (100 peers)" in plain
    assert "  [now invalid] AS64496 192.0.2.0/25: not-found -> invalid (100 peers)" in plain


def test_a_removed_entry_names_the_base_revision_it_was_read_from() -> None:
    """An added ROA and a removed one may share a line number, one in the work tree and one in the base
    revision: the removed one says which revision its line is in, in the comment and the text plan."""
    doc = reviewed_document()
    comment = markdown.render(doc)
    assert (
        "| `state/cas/members/example-isp.yaml:12:5` | added ROA AS64497 203.0.113.0/24 max 24 |" in comment
    )
    removed = "| `state/cas/members/example-isp.yaml:12:5` (at `origin/main`) | removed ROA AS0"
    assert f"{removed} 192.0.2.128/25 max 25 |" in comment
    plain = text.render_plain(doc)
    assert "  state/cas/members/example-isp.yaml:12:5 (at origin/main)  removed ROA AS0" in plain
    assert "  state/cas/members/example-isp.yaml:12:5  added ROA AS64497" in plain


def test_the_header_count_is_the_count_everywhere() -> None:
    """The verdict's "N changes to review", the changes list's heading and the counts helper agree."""
    doc = reviewed_document()
    counts = doc.counts()
    assert (counts.review, counts.routine, counts.revocations) == (3, 2, 2)
    comment = markdown.render(doc)
    assert f"### RPKI plan: {counts.review} changes to review;" in comment
    assert f"#### Changes to review ({counts.review})" in comment
    assert f"Revocations ({counts.revocations})" in comment
    assert text.render_plain(doc).splitlines()[1].startswith(f"{counts.review} changes to review;")


# --- the comment limit, on a synthetic plan far larger than GitHub accepts ---

REVOCATIONS = 40
VERDICT = "5040 changes to review; APPROVAL REQUIRED (3 gates)."
GATES = [
    GateDoc(
        id=f"roa-delete-pct@member-{i}",
        rule="roa-delete-pct",
        ca=f"member-{i}",
        message=f"{400 + i} of 1000 VRPs removed (40.0% > 30.0%)",
        count=400 + i,
        existing=1000,
        threshold=0.3,
        hash=f"{i:x}" * 64,
        approve=f"roa-delete-pct@member-{i}:{f'{i:x}' * 16}",
        items=[f"AS{64496 + i} 10.{i}.{n // 256}.{n % 256}/32 max 32" for n in range(400 + i)],
    )
    for i in range(1, 4)
]


def _roa_change(n: int, action: str, routine: bool = False) -> ChangeDoc:
    path = f"member-{n % 7}/AS{64496 + n % 16}_10-{n // 65536}-{n // 256 % 256}-{n % 256}_32.roa"
    return ChangeDoc(
        action=action,  # type: ignore[arg-type]
        kind="roa",
        ca=f"member-{n % 7}",
        address=f"roa {path}",
        path=path,
        reason=f"new ROA AS{64496 + n % 16} 10.{n // 65536}.{n // 256 % 256}.{n % 256}/32"
        if action == "issue"
        else f"EE certificate expires in 3d (renewal margin 4w) | row {n}",
        routine=routine,
    )


def _revocation(n: int) -> ChangeDoc:
    path = f"member-{n}/AS{64496 + n}_192-0-2-{n}_32.roa"
    return ChangeDoc(
        action="revoke",
        kind="roa",
        ca=f"member-{n}",
        address=f"roa {path}",
        path=path,
        reason="no longer in the desired state",
        routine=False,
        before={"asn": 64496 + n, "prefixes": [{"prefix": f"192.0.2.{n}/32", "max_length": 32}]},
        revoke_serial=f"{0xABCDEF0123 + n:x}",
    )


def large_document() -> PlanDocument:
    """A plan of 5,000 ROAs to issue, 40 revocations, 2,000 routine renewals, 5,000 VRPs, 3,000 route
    changes, 1,000 desired-state changes and 3 gates: about a megabyte of Markdown before any cut."""
    changes = [_roa_change(n, "issue") for n in range(5000)]
    changes += [_revocation(n) for n in range(REVOCATIONS)]
    changes += [_roa_change(n, "renew", routine=True) for n in range(2000)]
    added = [
        VrpDoc(asn=64496 + n % 16, prefix=f"10.{n // 65536}.{n // 256 % 256}.{n % 256}/32", max_length=32)
        for n in range(5000)
    ]
    routes = [
        _route(f"10.{n // 256 % 256}.{n % 256}.0/24", "valid", "invalid")
        if n % 3
        else _route(f"10.{n // 256 % 256}.{n % 256}.0/24", "invalid", "valid")
        for n in range(3000)
    ]
    return _doc(
        approval_required=True,
        summary=SummaryDoc(
            create_key=0,
            issue=5000,
            replace=0,
            revoke=REVOCATIONS,
            withdraw=0,
            routine=2000,
            vrps_added=len(added),
            vrps_removed=0,
            text=f"Plan: 5000 to issue, 0 to replace, {REVOCATIONS} to revoke, 0 to withdraw, 2000 routine.",
        ),
        gates=GATES,
        changes=changes,
        vrps=VrpsDoc(added=added, removed=[]),
        route_impact=routes,
        intent=[
            IntentDoc(
                kind="roa-added",
                ca=f"member-{n % 7}",
                summary=f"ROA AS{64496 + n % 16} 10.0.{n // 256}.{n % 256}/32 added",
                where=f"state/cas/members/member-{n % 7}.yaml:{10 + n}",
            )
            for n in range(1000)
        ],
        base="origin/main",
    )


@pytest.fixture(scope="module")
def large() -> PlanDocument:
    return large_document()


def _section(comment: str, heading: str) -> str:
    """From ``heading`` to the next ``####`` heading or folded section (whichever comes first)."""
    start = comment.index(heading)
    marks = ("\n#### ", "\n<details><summary>Revocations")
    ends = [comment.find(mark, start + len(heading)) for mark in marks]
    return comment[start : min(e for e in ends if e >= 0)]


def test_large_plan_fits_with_the_first_rows_of_every_list_open(large: PlanDocument) -> None:
    """Thousands of rows fit in one comment with no hard cut: the verdict, summary, every gate with its
    token and first flagged items come first, every reviewable list shows its first rows open, and each
    list that lost rows says how many (shown, folded and cut add up to the list's length)."""
    assert len(markdown.render(large, limit=10**9)) > 10 * markdown.COMMENT_LIMIT  # it must be cut

    comment = markdown.render(large)

    assert len(comment) <= markdown.COMMENT_LIMIT
    assert HARD_CUT not in comment
    assert comment.startswith(f"{markdown.MARKER}\n### RPKI plan: {VERDICT}")
    shown = visible(comment)
    assert f"**{large.summary.text}**" in shown
    for gate in GATES:
        assert f"| `{gate.id}` | {gate.message} | {gate.count} | `--approve {gate.approve}` |" in shown
        for item in gate.items[: markdown.GATE_ITEMS_OPEN]:
            assert f"- `{item}`" in shown
        assert f"_{gate.count - markdown.GATE_ITEMS_SHOWN} more in `plan.json`_" in shown
    assert shown.index("Approval required") < shown.index("#### Changes to review")

    lists = {  # heading: (its length, what starts each of its rows)
        "#### Changes to review (5040)": (5040, ("\n| + issue |", "\n| - revoke |")),
        "#### Validated ROA payloads (+5000 -0)": (5000, ("\n| + added |",)),
        "#### Route validity changes (3000): 2000 broken, 1000 fixed": (
            3000,
            ("\n| ❌ broken |", "\n| ✅ fixed |"),
        ),
        "#### Desired-state changes since `origin/main` (1000)": (1000, ("\n| `state/",)),
    }
    for heading, (total, starts) in lists.items():
        section = _section(comment, heading)
        assert sum(visible(section).count(row) for row in starts) >= markdown.OPEN_ROWS, heading
        rows = sum(section.count(row) for row in starts)
        cut = ROWS_CUT.search(section)
        assert cut is not None and rows + int(cut.group(1)) == total, heading
    assert "| ✅ fixed |" in visible(_section(comment, "#### Route validity changes"))
    assert "\\| row" in comment  # a "|" inside a routine reason is escaped, not a new column


def test_small_limit_cuts_hard_and_says_so(large: PlanDocument) -> None:
    """When even the head does not fit, the comment is cut at the limit and ends saying so; the verdict,
    being first, survives."""
    comment = markdown.render(large, limit=3000)
    assert len(comment) <= 3000
    assert comment.rstrip("\n").endswith(HARD_CUT)
    assert comment.startswith(f"{markdown.MARKER}\n### RPKI plan: {VERDICT}")


def test_small_plan_is_not_cut(large: PlanDocument) -> None:
    """A plan that fits is rendered whole, its short lists entirely open: no fold, no cut note."""
    small = large.model_copy(
        update={
            "changes": large.changes[:3],
            "route_impact": [],
            "vrps": VrpsDoc(added=[], removed=[]),
            "intent": None,
        }
    )
    comment = markdown.render(small)
    assert not ROWS_CUT.search(comment)
    assert HARD_CUT not in comment
    assert visible(comment).count("\n| + issue |") == 3


@pytest.mark.parametrize("limit", [0, 1, 50, 73, 74, 75])
def test_limit_shorter_than_the_cut_note_is_still_respected(large: PlanDocument, limit: int) -> None:
    """``render`` never exceeds ``limit``, even one shorter than its own cut note."""
    assert len(markdown.render(large, limit=limit)) <= limit
