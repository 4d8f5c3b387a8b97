"""What a reviewer reads: ``rpkictl plan --format text`` and ``--format markdown``, pinned by golden files.

Each scenario runs the real CLI (a subprocess, stdin from /dev/null and stdout a pipe, so no colour) on a
scratch copy of the bundled example at a fixed ``--now`` and compares its output, normalised, with
``tests/plan/golden/<scenario>.txt`` and ``<scenario>.md``:

* ``first-plan``: the first plan of the bundled example, with ``--announcements state/announcements.txt``;
* ``change``: after applying it, one ROA removed and another's max length lowered (26 -> 25), with the
  announcements, whose two /26 routes this breaks (the ``route-invalid`` gate);
* ``ca-empty``: after applying, every ROA of ``example-isp`` removed (the ``ca-empty`` gate);
* ``ca-revoke``: after applying, the ``example-isp`` CA removed (the ``ca-revoke`` gate).

Normalised, because legitimately random: the temporary directory (``<tmp>``), 40-hex key identifiers in
manifest and CRL names (``<key-1>``...), revoked serial numbers (``<serial-1>``...) and the 12-hex plan id
prefix (``<plan-id>``). Placeholders are numbered by first appearance, so the golden files still show which
names are the same key and that each revoked serial is distinct. Gate hashes and approval tokens are kept
as they are: they hash the flagged VRP and route strings, so any change in how gates are hashed shows.

After an intended change of wording or layout, rewrite the golden files instead of comparing with::

    UPDATE_GOLDEN=1 python -m pytest tests/plan/test_render.py

and review ``git diff tests/plan/golden/`` as a reviewer of a plan would.

The other tests here hold the Markdown comment under GitHub's 65,536-character limit for a plan of
thousands of rows (cutting folded tables first, the verdict, gates and revocations never), and check
that the text output carries no ANSI escapes when it is not written to a terminal.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

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
    VrpsDoc,
)
from reconciler.plan.gitcontext import git_info
from reconciler.plan.render import markdown, text
from tests.helpers import T0, Scratch, scratch_copy

GOLDEN = Path(__file__).resolve().parent / "golden"
UPDATE = os.environ.get("UPDATE_GOLDEN") == "1"
ISP = "cas/members/example-isp.yaml"
FIRST_NOW = "2026-11-23T12:00:00Z"  # T0: the first plan, and the time of the apply the others follow
LATER_NOW = "2026-11-23T13:00:00Z"  # an hour after the apply: nothing routine is due yet

ANSI = re.compile(r"\x1b\[")
WITHDRAWAL = re.compile(r"  - withdraw   file |\| - withdraw \| `file ")  # text, Markdown
HARD_CUT = "_Comment cut to fit GitHub's limit; `plan.json` has the complete plan._"
ROWS_CUT = re.compile(r"_(\d+) more rows cut to fit the comment limit; `plan\.json` has them all\._")
# Environment variables that would make rich colour a pipe, or make rpkictl write GitHub step outputs.
COLOUR_FORCING = ("FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE", "CLICOLOR_FORCE", "NO_COLOR")


def _environment(**extra: str) -> dict[str, str]:
    """The caller's environment minus what forces colour or writes step outputs; a colour terminal type."""
    env = {k: v for k, v in os.environ.items() if k not in (*COLOUR_FORCING, "GITHUB_OUTPUT")}
    env.update(TERM="xterm-256color", PYTHONIOENCODING="utf-8", COLUMNS="80", **extra)
    return env


def rpkictl(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """rpkictl as CI runs it: a real process, stdin from /dev/null, stdout and stderr to pipes."""
    return subprocess.run(
        [sys.executable, "-m", "reconciler", *args],
        capture_output=True,
        text=True,
        encoding="utf-8",
        cwd=cwd,
        env=env if env is not None else _environment(),
        timeout=120,
        stdin=subprocess.DEVNULL,
        check=False,
    )


def _numbered(pattern: str, label: str, output: str, flags: int = 0) -> str:
    """Replace each distinct ``value`` group of ``pattern`` with ``<label-N>``, N by first appearance."""
    seen: dict[str, str] = {}

    def placeholder(match: re.Match[str]) -> str:
        name = seen.setdefault(match.group("value").lower(), f"<{label}-{len(seen) + 1}>")
        start, end = match.start("value") - match.start(), match.end("value") - match.start()
        return match.group(0)[:start] + name + match.group(0)[end:]

    return re.sub(pattern, placeholder, output, flags=flags)


def _sort_withdrawals(output: str) -> str:
    """Sort each run of withdrawal lines: they come in path order, and a CA's manifest and CRL are named
    after its random key, so they sort before or after its ROAs by chance."""
    lines: list[str] = []
    run: list[str] = []
    for line in output.split("\n"):
        if WITHDRAWAL.match(line):
            run.append(line)
            continue
        lines += [*sorted(run), line]
        run = []
    return "\n".join([*lines, *sorted(run)])


def normalise(output: str, root: Path) -> str:
    """The output with what legitimately differs between runs replaced by stable placeholders."""
    for path in sorted({str(root.resolve()), str(root)}, key=len, reverse=True):
        output = output.replace(path, "<tmp>")
    output = _numbered(r"serial (?P<value>[0-9a-f]+)\b", "serial", output)
    output = _numbered(r"\b(?P<value>[0-9a-f]{40})\b", "key", output, re.IGNORECASE)
    output = re.sub(r"(RPKI plan |plan `)[0-9a-f]{12}\b", r"\1<plan-id>", output)
    return _sort_withdrawals(output)


def _applied(scratch: Scratch) -> None:
    assert scratch.apply(T0) is not None


def _change(scratch: Scratch) -> None:
    _applied(scratch)
    scratch.edit(ISP, "  - {asn: AS0, prefix: 192.0.2.128/25}\n", "")
    scratch.edit(ISP, "max_length: 26", "max_length: 25")


def _empty(scratch: Scratch) -> None:
    _applied(scratch)
    path = scratch.repo / ISP
    content = path.read_text()
    path.write_text(content[: content.index("roas:")])


def _ca_removed(scratch: Scratch) -> None:
    _applied(scratch)
    (scratch.repo / ISP).unlink()


@dataclass(frozen=True)
class Scenario:
    name: str
    prepare: Callable[[Scratch], None]
    now: str
    announcements: bool
    exit_code: int  # 2 changes, 3 changes that need approval


SCENARIOS = [
    Scenario("first-plan", lambda scratch: None, FIRST_NOW, announcements=True, exit_code=2),
    Scenario("change", _change, LATER_NOW, announcements=True, exit_code=3),
    Scenario("ca-empty", _empty, LATER_NOW, announcements=False, exit_code=3),
    Scenario("ca-revoke", _ca_removed, LATER_NOW, announcements=False, exit_code=3),
]


@dataclass(frozen=True)
class Prepared:
    scenario: Scenario
    scratch: Scratch

    def plan(
        self, output_format: str, *args: str, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        """``rpkictl plan state [--announcements state/announcements.txt] --format F --now T ARGS``, run
        in the scratch directory as an operator would from the top of the repository."""
        routes = ["--announcements", "state/announcements.txt"] if self.scenario.announcements else []
        return rpkictl(
            "plan",
            "state",
            *routes,
            "--format",
            output_format,
            "--now",
            self.scenario.now,
            *args,
            cwd=self.scratch.root,
            env=env,
        )


@pytest.fixture(scope="module", params=SCENARIOS, ids=[s.name for s in SCENARIOS])
def prepared(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Prepared]:
    """A scratch copy of the bundled example brought into the scenario's state (shared by both formats)."""
    scenario: Scenario = request.param
    scratch = scratch_copy(tmp_path_factory.mktemp(scenario.name))
    assert git_info(scratch.repo) is None, "the temporary directory must not be inside a Git work tree"
    scenario.prepare(scratch)
    yield Prepared(scenario, scratch)


@pytest.mark.parametrize(("output_format", "suffix"), [("text", "txt"), ("markdown", "md")])
def test_golden(prepared: Prepared, output_format: str, suffix: str, tmp_path: Path) -> None:
    """The plan reads exactly as its golden file: wording, order (verdict first, revocations last),
    gate tokens and hashes; only random names, serials, the plan id and the temporary path differ. The
    plan saved with ``--out`` renders to exactly what was printed, so a PR comment or log made from
    ``plan.json`` shows the very plan that apply will check."""
    saved = tmp_path / "plan.json"
    result = prepared.plan(output_format, "--out", str(saved))
    assert result.returncode == prepared.scenario.exit_code, result.stderr
    assert result.stderr == ""
    doc = document.loads(saved.read_text(), where=str(saved))
    rendered = text.render_plain(doc) if output_format == "text" else markdown.render(doc)
    assert rendered == result.stdout
    actual = normalise(result.stdout, prepared.scratch.root)
    golden = GOLDEN / f"{prepared.scenario.name}.{suffix}"
    if UPDATE:
        GOLDEN.mkdir(exist_ok=True)
        golden.write_text(actual, encoding="utf-8")
        return
    assert golden.exists(), f"{golden} is missing; create it with UPDATE_GOLDEN=1 (see the module docstring)"
    assert actual == golden.read_text(encoding="utf-8"), (
        f"{golden.name} differs; if the change is intended, re-run with UPDATE_GOLDEN=1 and review the diff"
    )


@pytest.mark.parametrize("prepared", [SCENARIOS[1]], ids=["change"], indirect=True)
def test_text_has_no_ansi_escapes_off_a_terminal(prepared: Prepared) -> None:
    """Piped text output is plain even with a colour TERM (the 'change' plan uses every style: gates,
    breaking routes, revocations); forcing colour shows that the check would see escapes."""
    plain = prepared.plan("text")
    assert plain.stdout and not ANSI.search(plain.stdout), plain.stdout
    assert not ANSI.search(plain.stderr)
    forced = prepared.plan("text", env=_environment(FORCE_COLOR="1"))
    assert ANSI.search(forced.stdout), "FORCE_COLOR=1 should colour the output (the check would be blind)"


# --- the Markdown comment limit, on a synthetic plan far larger than GitHub accepts ---

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
        subject=None,
        before=None,
        after=None,
        revoke_serial=None,
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
        subject=None,
        before={"asn": 64496 + n, "prefixes": [{"prefix": f"192.0.2.{n}/32", "max_length": 32}]},
        after=None,
        revoke_serial=f"{0xABCDEF0123 + n:x}",
    )


def large_document() -> PlanDocument:
    """A plan of 5,000 ROAs to issue, 40 revocations, 2,000 routine renewals, 5,000 VRPs, 3,000 route
    changes, 1,000 desired-state changes and 3 gates: about a megabyte of Markdown before any cut."""
    changes = [_roa_change(n, "issue") for n in range(5000)]
    changes += [_revocation(n) for n in range(REVOCATIONS)]
    changes += [_roa_change(n, "renew", routine=True) for n in range(2000)]
    added = [f"AS{64496 + n % 16} 10.{n // 65536}.{n // 256 % 256}.{n % 256}/32 max 32" for n in range(5000)]
    routes = [
        RouteChangeDoc(
            prefix=f"10.{n // 256 % 256}.{n % 256}.0/24",
            origin=64496 + n % 16,
            peers=n % 300,
            before="valid",
            after="invalid",
            breaks=True,
        )
        for n in range(3000)
    ]
    return PlanDocument(
        format_version=document.FORMAT_VERSION,
        plan_id="f" * 64,
        created_at=datetime(2026, 11, 23, 12, 0, tzinfo=UTC),
        tool_version="0.0.0",
        desired=DesiredDoc(repo="/srv/rpki/state", digest="0" * 64, git_commit="1" * 40, git_dirty=False),
        observed=ObservedDoc(tree_sha256="2" * 64, points={}),
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
        announcements=None,
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


def _details(comment: str, summary_prefix: str) -> str:
    """The body of the ``<details>`` block whose summary starts with ``summary_prefix``."""
    start = comment.index(f"<details><summary>{summary_prefix}")
    return comment[start : comment.index("</details>", start)]


def test_large_plan_fits_the_comment_limit(large: PlanDocument) -> None:
    """Thousands of rows fit in one comment: the folded tables are cut, each cut saying how many rows it
    left out (and the numbers add up), while the verdict, summary, every gate with its approval token and
    every revocation stay visible, ahead of the folded part; no hard cut is needed."""
    assert len(markdown.render(large, limit=10**9)) > 10 * markdown.COMMENT_LIMIT  # it must be cut

    comment = markdown.render(large)

    assert len(comment) <= markdown.COMMENT_LIMIT
    assert HARD_CUT not in comment
    assert comment.startswith(f"{markdown.MARKER}\n### RPKI plan: {VERDICT}")
    folded = comment.index("<details><summary>Changes to review")
    visible = comment[:folded]
    assert f"**{large.summary.text}**" in visible
    assert "#### ⚠️ Approval required (3)" in visible
    for gate in GATES:
        assert f"| `{gate.id}` | {gate.message} | {gate.count} | `--approve {gate.approve}` |" in visible
    assert f"#### Revocations ({REVOCATIONS})" in visible
    for n in range(REVOCATIONS):
        change = _revocation(n)
        assert f"- `{change.address}, serial {change.revoke_serial}, on {change.ca}'s CRL`" in visible
    assert comment.count("<details>") == comment.count("</details>") == 5 + len(GATES)  # tables, gate items
    for gate in GATES:
        flagged = _details(comment, f"Flagged by <code>{gate.id}</code> ({gate.count})")
        assert flagged.count("\n- `") == markdown.GATE_ITEMS_SHOWN
        assert f"_{gate.count - markdown.GATE_ITEMS_SHOWN} more in `plan.json`_" in flagged

    cuts = ROWS_CUT.findall(comment)
    assert cuts, "no table says rows were cut"
    review = _details(comment, "Changes to review (5040)")
    shown = review.count("\n| + issue |") + review.count("\n| - revoke |")
    left_out = ROWS_CUT.search(review)
    assert left_out is not None and shown + int(left_out.group(1)) == 5040
    routine = _details(comment, "Routine, not for review")
    assert "\\| row" in routine  # a "|" inside a reason is escaped, not a new column
    routes = _details(comment, "Route validity changes (3000)")
    shown_routes = routes.count("\n| **breaks** |")
    left_routes = ROWS_CUT.search(routes)
    assert left_routes is not None and shown_routes + int(left_routes.group(1)) == 3000


def test_small_limit_cuts_hard_and_says_so(large: PlanDocument) -> None:
    """When even the visible part does not fit, the comment is cut at the limit and ends saying so; the
    verdict, being first, survives."""
    comment = markdown.render(large, limit=3000)
    assert len(comment) <= 3000
    assert comment.rstrip("\n").endswith(HARD_CUT)
    assert comment.startswith(f"{markdown.MARKER}\n### RPKI plan: {VERDICT}")


def test_small_plan_is_not_cut(large: PlanDocument) -> None:
    """A plan that fits is rendered whole: no row-cut note, no hard cut."""
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
    assert comment.count("\n| + issue |") == 3


@pytest.mark.parametrize("limit", [0, 1, 50, 73, 74, 75])
def test_limit_shorter_than_the_cut_note_is_still_respected(large: PlanDocument, limit: int) -> None:
    """``render`` never exceeds ``limit``, even one shorter than its own cut note (regression: the cut
    used to slice ``text[: limit - len(note)]`` with a negative bound and return ~5,000 characters)."""
    assert len(markdown.render(large, limit=limit)) <= limit


def test_normalise_hides_only_what_is_random(tmp_path: Path) -> None:
    """Two runs that differ only in the temporary path, key names, serials, plan id and so the order of
    withdrawals normalise alike; gate hashes are kept, and distinct keys and serials stay distinct."""

    def run(root: Path, key: str, other: str, serials: tuple[str, str], plan_id: str) -> str:
        withdrawals = [f"  - withdraw   file isp/{name}  (gone)" for name in (f"{key}.crl", "AS0_x.roa")]
        return "\n".join(
            [
                f"RPKI plan {plan_id} for {root}/state at 2026-11-23T13:00:00Z (desired not in Git)",
                *sorted(withdrawals),
                f"  ↻ renew      crl online/{other}.crl",
                "    approve with: --approve ca-revoke@isp:05b63adfaa0b14bf",
                f"  - roa isp/a.roa, serial {serials[0]}, on isp's CRL",
                f"  - roa isp/b.roa, serial {serials[1]}, on isp's CRL",
                "",
            ]
        )

    first = run(tmp_path / "a", "0" * 40, "F" * 40, ("3a87", "442d"), "4b8219c62944")
    second = run(tmp_path / "b", "C6" * 20, "1" * 40, ("90ad", "4c63"), "5ada81919d56")
    assert first != second
    assert normalise(first, tmp_path / "a") == normalise(second, tmp_path / "b")
    normalised = normalise(second, tmp_path / "b")
    assert normalised.startswith("RPKI plan <plan-id> for <tmp>/state at")
    assert "isp/<key-1>.crl" in normalised and "online/<key-2>.crl" in normalised
    assert "serial <serial-1>," in normalised and "serial <serial-2>," in normalised
    assert "--approve ca-revoke@isp:05b63adfaa0b14bf" in normalised
