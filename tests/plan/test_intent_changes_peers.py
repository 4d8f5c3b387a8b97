"""``rpkictl plan --base REV`` for external children and publishers: declaring, removing and changing
them shows up as intent entries in the reviewer's words, at their YAML lines, in the markdown comment
too -- with the real Krill child_request and publisher_request committed in a real Git repository."""

from __future__ import annotations

import shutil
from pathlib import Path

import git
import pytest

from reconciler import engine
from reconciler.desired.model import SourceLocation
from reconciler.plan.gitcontext import IntentChange, intent_changes, load_committed
from reconciler.plan.render import markdown
from tests.helpers import T0, Scratch, committed_copy
from tests.test_cli import rpkictl

KRILL = Path(__file__).resolve().parents[1] / "fixtures" / "real-world" / "protocols" / "krill" / "oob"
CHILD_REQUEST = KRILL / "apnic" / "child_request.xml"  # child_handle="rand"
PUBLISHER_REQUEST = KRILL / "publisher_request.xml"  # publisher_handle="Bob"
ONLINE = Path("state/cas/online.yaml")
SETTINGS = Path("state/rpki.yaml")
CHILD = """\
children:
  - handle: rand
    request: children/rand.xml
    resources: {asn: [AS64500], ipv4: [203.0.113.0/24]}
"""
PUBLISHER = """\
publishers:
  - handle: bob
    request: publishers/bob.xml
    quota: {objects: 500}
"""


def _copy_requests(scratch: Scratch) -> None:
    (scratch.repo / "children").mkdir(exist_ok=True)
    (scratch.repo / "publishers").mkdir(exist_ok=True)
    shutil.copyfile(CHILD_REQUEST, scratch.repo / "children" / "rand.xml")
    shutil.copyfile(PUBLISHER_REQUEST, scratch.repo / "publishers" / "bob.xml")


def _declare(scratch: Scratch) -> None:
    _copy_requests(scratch)
    online = scratch.repo / "cas" / "online.yaml"
    online.write_text(online.read_text() + CHILD)
    settings = scratch.repo / "rpki.yaml"
    settings.write_text(settings.read_text() + PUBLISHER)


def _commit(repo: git.Repo, message: str) -> None:
    repo.git.add("-A", ".")
    repo.index.commit(message)


@pytest.fixture
def bare(tmp_path: Path) -> Scratch:
    """The example committed, nothing declared yet."""
    _, scratch = committed_copy(tmp_path)
    return scratch


@pytest.fixture
def declared(tmp_path: Path) -> Scratch:
    """The example with child ``rand`` of ``online`` and publisher ``bob`` committed."""
    repo, scratch = committed_copy(tmp_path)
    _declare(scratch)
    _commit(repo, "child and publisher")
    return scratch


def _line_of(scratch: Scratch, rel: str, text: str) -> int:
    lines = (scratch.repo / rel).read_text().splitlines()
    return next(i for i, line in enumerate(lines, 1) if text in line)


def test_declaring_a_child_and_a_publisher(bare: Scratch) -> None:
    _declare(bare)
    changes = intent_changes(bare.repo, "HEAD")
    assert changes == [
        IntentChange(
            "publisher-added",
            None,
            "added publisher bob (quota 500 objects, 100MiB; request publishers/bob.xml)",
            SourceLocation(SETTINGS, _line_of(bare, "rpki.yaml", "- handle: bob"), 5),
        ),
        IntentChange(
            "external-child-added",
            "online",
            "added external child rand of online, entitled to AS64500, 203.0.113.0/24 "
            "(request children/rand.xml)",
            SourceLocation(ONLINE, _line_of(bare, "cas/online.yaml", "- handle: rand"), 5),
        ),
    ]


@pytest.mark.parametrize(
    ("resources", "summary"),
    [
        (
            "{asn: [AS64500], ipv4: [203.0.113.0/24, 198.51.100.0/24]}",
            "external child rand entitlement grown: added 198.51.100.0/24",
        ),
        (
            "{asn: [AS64500], ipv4: [203.0.113.0/25]}",
            "external child rand entitlement shrunk: removed 203.0.113.128/25: apply re-issues a "
            "certificate holding any of it without it (gate ca-shrink@rand), or revokes one left with "
            "nothing (gate ca-revoke@rand), with approval",
        ),
        (
            '{asn: [AS64501], ipv4: [203.0.113.0/24], ipv6: ["2001:db8:8000::/36"]}',
            "external child rand entitlement changed: added AS64501, 2001:db8:8000::/36; removed "
            "AS64500: apply re-issues a certificate holding any of it without it (gate ca-shrink@rand), "
            "or revokes one left with nothing (gate ca-revoke@rand), with approval",
        ),
    ],
    ids=["grown", "shrunk", "changed"],
)
def test_entitlement_changes_name_what_is_gained_and_lost(
    declared: Scratch, resources: str, summary: str
) -> None:
    declared.edit("cas/online.yaml", "{asn: [AS64500], ipv4: [203.0.113.0/24]}", resources)
    (change,) = intent_changes(declared.repo, "HEAD")
    assert (change.kind, change.ca, change.summary, change.revision) == (
        "entitlement-changed",
        "online",
        summary,
        None,
    )
    assert change.where == SourceLocation(ONLINE, _line_of(declared, "cas/online.yaml", "- handle: rand"), 5)


def test_removals_point_into_the_base_revision(declared: Scratch) -> None:
    child_line = _line_of(declared, "cas/online.yaml", "- handle: rand")
    publisher_line = _line_of(declared, "rpki.yaml", "- handle: bob")
    declared.edit("cas/online.yaml", CHILD, "")
    declared.edit("rpki.yaml", PUBLISHER, "")
    changes = intent_changes(declared.repo, "HEAD")
    assert [(c.kind, c.ca, c.where, c.revision) for c in changes] == [
        ("publisher-removed", None, SourceLocation(SETTINGS, publisher_line, 5), "HEAD"),
        ("external-child-removed", "online", SourceLocation(ONLINE, child_line, 5), "HEAD"),
    ]
    assert changes[0].summary == (
        "removed publisher bob (quota 500 objects, 100MiB): apply withdraws the objects it published here, "
        "with approval (gate publisher-remove@bob)"
    )
    assert changes[1].summary == (
        "removed external child rand of online, which was entitled to AS64500, 203.0.113.0/24: apply "
        "revokes its certificates, with approval (gate ca-revoke@rand)"
    )


def test_quota_identity_and_parent_changes(declared: Scratch) -> None:
    declared.edit("rpki.yaml", "quota: {objects: 500}", 'quota: {objects: 800, size: "2 GiB"}')
    # another operator's request: a new identity for the same child
    shutil.copyfile(KRILL / "apnic" / "publisher_request.xml", declared.repo / "publishers" / "bob.xml")
    # the child moves below example-isp, with resources that CA holds
    declared.edit("cas/online.yaml", CHILD, "")
    isp = declared.repo / "cas" / "members" / "example-isp.yaml"
    isp.write_text(
        isp.read_text()
        + CHILD.replace("[AS64500], ipv4: [203.0.113.0/24]", "[AS64496], ipv4: [192.0.2.0/26]")
    )
    changes = intent_changes(declared.repo, "HEAD")
    assert [(c.kind, c.ca) for c in changes] == [
        ("publisher-changed", None),
        ("entitlement-changed", "example-isp"),
        ("external-child-changed", "example-isp"),
    ]
    quota = changes[0].summary
    assert quota.startswith(
        "publisher bob: quota objects 500 -> 800, size 100MiB -> 2GiB; new identity certificate"
    )
    assert changes[2].summary.startswith("external child rand: parent online -> example-isp")
    assert changes[2].where is not None and changes[2].where.file == Path(
        "state/cas/members/example-isp.yaml"
    )


def test_the_markdown_comment_lists_them(declared: Scratch) -> None:
    declared.edit("cas/online.yaml", "ipv4: [203.0.113.0/24]", "ipv4: [203.0.113.0/25]")
    declared.edit("rpki.yaml", PUBLISHER, "")
    workspace = engine.open_workspace(declared.repo)
    doc = engine.plan_document(workspace, engine.plan(workspace, T0), base="HEAD")
    assert doc.intent is not None
    assert [i.kind for i in doc.intent] == ["publisher-removed", "entitlement-changed"]
    comment = markdown.render(doc)
    assert "Desired-state changes since `HEAD` (2)" in comment
    line = _line_of(declared, "cas/online.yaml", "- handle: rand")
    assert (
        f"| `state/cas/online.yaml:{line}:5` | external child rand entitlement shrunk: removed "
        "203.0.113.128/25" in comment
    )
    assert "| `state/rpki.yaml:" in comment and "(at `HEAD`) | removed publisher bob" in comment


def test_plan_base_on_the_command_line(declared: Scratch) -> None:
    declared.edit("cas/online.yaml", "ipv4: [203.0.113.0/24]", "ipv4: [203.0.113.0/24, 198.51.100.0/24]")
    result = rpkictl("plan", str(declared.repo), "--base", "HEAD", "--format", "markdown")
    assert result.returncode in (0, 2, 3), result.stderr
    assert "external child rand entitlement grown: added 198.51.100.0/24" in result.stdout
    # nothing is published for a grown entitlement: the text plan has no change, and lists the entry
    assert declared.apply(T0) is not None
    text = rpkictl("plan", str(declared.repo), "--base", "HEAD", "--now", "2026-11-23T13:00:00Z")
    assert text.returncode == 0, text.stderr
    assert "No changes." in text.stdout and "Desired-state changes since HEAD: 1" in text.stdout
    assert "entitlement grown: added 198.51.100.0/24" in text.stdout


def test_the_committed_state_names_the_real_request_files(declared: Scratch) -> None:
    """HEAD is loaded from a temporary copy; the children's and publishers' files and lines it reports
    are the checkout's, not the copy's (which is gone once it is loaded)."""
    committed = load_committed(declared.repo)
    ((_, child),) = [(ca, c) for ca in committed.desired.cas for c in ca.children]
    (publisher,) = committed.desired.publishers
    real = declared.repo.resolve()
    assert child.request_file == real / "children" / "rand.xml"
    assert publisher.request_file == real / "publishers" / "bob.xml"
    assert child.where is not None and child.where.file == real / "cas" / "online.yaml"
    assert publisher.where is not None and publisher.where.file == real / "rpki.yaml"
    assert child.request_file.is_file() and publisher.request_file.is_file()
