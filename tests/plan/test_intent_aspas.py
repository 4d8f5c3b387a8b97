"""``rpkictl plan --base REV`` for ASPAs: declaring, removing and changing them shows up as intent entries
in the reviewer's words (the providers gained and lost), at their YAML lines, in a real Git repository."""

from __future__ import annotations

from pathlib import Path

import pytest

from reconciler.desired.model import SourceLocation
from reconciler.plan.gitcontext import IntentChange, intent_changes, load_committed
from tests.helpers import Scratch, committed_copy
from tests.test_cli import rpkictl

ISP = "cas/members/example-isp.yaml"
ONLINE = "cas/online.yaml"
ISP_PATH = Path("state") / ISP
ONLINE_PATH = Path("state") / ONLINE
ISP_ASPAS = """\
aspas:
  - {customer: AS64497, providers: [AS0]}
  - {customer: AS64496, providers: [AS64511, AS64500], comment: transit}
"""
ONLINE_ASPAS = """\
aspas:
  - {customer: AS64505, providers: [AS64510]}
"""


def _append(scratch: Scratch, rel: str, text: str) -> None:
    path = scratch.repo / rel
    path.write_text(path.read_text() + text)


@pytest.fixture
def declared(tmp_path: Path) -> Scratch:
    """The example with ASPAs in ``example-isp`` and ``online``, committed."""
    repo, scratch = committed_copy(tmp_path)
    _append(scratch, ISP, ISP_ASPAS)
    _append(scratch, ONLINE, ONLINE_ASPAS)
    repo.git.add("-A", ".")
    repo.index.commit("ASPAs")
    return scratch


def _line_of(scratch: Scratch, rel: str, text: str) -> int:
    lines = (scratch.repo / rel).read_text().splitlines()
    return next(i for i, line in enumerate(lines, 1) if text in line)


def test_no_edit_no_change(declared: Scratch) -> None:
    assert intent_changes(declared.repo, "HEAD") == []


def test_reordering_entries_and_providers_is_no_change(declared: Scratch) -> None:
    declared.edit(ISP, ISP_ASPAS, "aspas:\n  - customer: 64496\n    providers: [AS64500, AS64511]\n")
    _append(declared, ISP, "    comment: transit\n  - {customer: AS64497, providers: [AS0]}\n")
    assert intent_changes(declared.repo, "HEAD") == []


def test_added_removed_and_changed(declared: Scratch) -> None:
    removed_line = _line_of(declared, ISP, "customer: AS64497")
    declared.edit(ISP, "  - {customer: AS64497, providers: [AS0]}\n", "")
    declared.edit(ISP, "providers: [AS64511, AS64500]", "providers: [AS64502, AS64500]")
    declared.edit(ONLINE, "providers: [AS64510]}", "providers: [AS64510], comment: backup}")
    _append(declared, ONLINE, "  - {customer: AS64506, providers: [AS64511, AS64500]}\n")
    changes = intent_changes(declared.repo, "HEAD")
    assert changes == [
        IntentChange(
            "aspa-added",
            "online",
            "added ASPA AS64506 -> AS64500, AS64511",
            SourceLocation(ONLINE_PATH, _line_of(declared, ONLINE, "customer: AS64506"), 5),
        ),
        IntentChange(
            "aspa-changed",
            "online",
            "ASPA AS64505 -> AS64510, comment: (none) -> backup",
            SourceLocation(ONLINE_PATH, _line_of(declared, ONLINE, "customer: AS64505"), 5),
        ),
        IntentChange(
            "aspa-removed",
            "example-isp",
            "removed ASPA AS64497 -> none (AS0)",
            SourceLocation(ISP_PATH, removed_line, 5),
            "HEAD",
        ),
        IntentChange(
            "aspa-changed",
            "example-isp",
            "ASPA AS64496: +AS64502 -AS64511 (comment: transit)",
            SourceLocation(ISP_PATH, _line_of(declared, ISP, "customer: AS64496"), 5),
        ),
    ]
    # the removed entry's line is the base revision's: the work tree holds another entry there now
    assert _line_of(declared, ISP, "customer: AS64496") == removed_line


def test_providers_and_comment_changed_together(declared: Scratch) -> None:
    declared.edit(
        ISP,
        "{customer: AS64497, providers: [AS0]}",
        "{customer: AS64497, providers: [AS64500], comment: new}",
    )
    declared.edit(ISP, "comment: transit", "comment: transit via two")
    changes = intent_changes(declared.repo, "HEAD")
    assert [(c.kind, c.summary, c.revision) for c in changes] == [
        ("aspa-changed", "ASPA AS64496 -> AS64500, AS64511, comment: transit -> transit via two", None),
        ("aspa-changed", "ASPA AS64497: +AS64500 -AS0, comment: (none) -> new", None),
    ]


def test_an_aspa_moved_to_another_ca_is_removed_and_added(declared: Scratch) -> None:
    declared.edit(ISP, "  - {customer: AS64497, providers: [AS0]}\n", "")
    _append(declared, ONLINE, "  - {customer: AS64497, providers: [AS0], comment: moved}\n")
    changes = intent_changes(declared.repo, "HEAD")
    assert [(c.kind, c.ca, c.summary, c.revision) for c in changes] == [
        ("aspa-added", "online", "added ASPA AS64497 -> none (AS0) (comment: moved)", None),
        ("aspa-removed", "example-isp", "removed ASPA AS64497 -> none (AS0)", "HEAD"),
    ]


def test_a_removed_ca_lists_its_aspas_from_the_base(declared: Scratch) -> None:
    lines = [_line_of(declared, ISP, f"customer: {asn}") for asn in ("AS64496", "AS64497")]
    (declared.repo / ISP).unlink()
    changes = intent_changes(declared.repo, "HEAD")
    assert [(c.kind, c.ca, c.summary, c.where, c.revision) for c in changes if c.kind.startswith("aspa")] == [
        (
            "aspa-removed",
            "example-isp",
            "removed ASPA AS64496 -> AS64500, AS64511 (comment: transit)",
            SourceLocation(ISP_PATH, lines[0], 5),
            "HEAD",
        ),
        (
            "aspa-removed",
            "example-isp",
            "removed ASPA AS64497 -> none (AS0)",
            SourceLocation(ISP_PATH, lines[1], 5),
            "HEAD",
        ),
    ]


def test_the_committed_state_names_the_real_files(declared: Scratch) -> None:
    """HEAD is loaded from a temporary copy that is gone once loaded; an ASPA's location is the checkout's."""
    committed = load_committed(declared.repo)
    (isp,) = [ca for ca in committed.desired.cas if ca.name == "example-isp"]
    assert [a.customer for a in isp.aspas] == [64496, 64497]
    assert all(a.where is not None and a.where.file == declared.repo.resolve() / ISP for a in isp.aspas)


def test_plan_base_on_the_command_line(declared: Scratch) -> None:
    declared.edit(ISP, "providers: [AS64511, AS64500]", "providers: [AS64500, AS64502]")
    declared.edit(ISP, "  - {customer: AS64497, providers: [AS0]}\n", "")
    result = rpkictl("plan", str(declared.repo), "--base", "HEAD", "--format", "markdown")
    assert result.returncode in (0, 2, 3), result.stderr
    assert "Desired-state changes since `HEAD` (2)" in result.stdout
    changed = _line_of(declared, ISP, "customer: AS64496")
    assert (
        f"| `{ISP_PATH.as_posix()}:{changed}:5` | ASPA AS64496: +AS64502 -AS64511 (comment: transit) |"
        in result.stdout
    )
    assert (
        f"| `{ISP_PATH.as_posix()}:{changed}:5` (at `HEAD`) | removed ASPA AS64497 -> none (AS0) |"
        in result.stdout
    )
