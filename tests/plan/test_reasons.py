"""Each planned change carries its cause, one of a closed set (``Reason``), beside its text: what a
pipeline, the damage classification and the monitoring decide on, whatever the wording says."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from reconciler import engine
from reconciler.plan import diff
from reconciler.plan.model import Action, Kind, Reason
from tests.helpers import T0, Scratch, later, scratch_copy

ISP = "cas/members/example-isp.yaml"
ROA = "example-isp/AS64496_192-0-2-0_24.roa"


@pytest.fixture
def applied(tmp_path: Path) -> Scratch:
    scratch = scratch_copy(tmp_path)
    first = scratch.plan(T0)
    causes = Counter(c.cause for c in first.changes)
    assert set(causes) <= {Reason.KEY_MISSING, Reason.NOT_PUBLISHED, Reason.NEW_OBJECT, Reason.NEW_KEY}, (
        causes
    )
    assert causes[Reason.KEY_MISSING] and causes[Reason.NEW_OBJECT] and causes[Reason.NOT_PUBLISHED]
    assert scratch.apply(T0) is not None
    return scratch


def test_a_content_change_and_the_points_that_follow(applied: Scratch) -> None:
    applied.edit(ISP, "max_length: 26", "max_length: 25")
    plan = applied.plan(later(1))
    by_kind = {(c.kind, c.cause) for c in plan.changes}
    assert (Kind.ROA, Reason.CONTENT_CHANGED) in by_kind
    assert {c.cause for c in plan.changes if c.kind in (Kind.MANIFEST, Kind.CRL)} == {
        Reason.DIRECTORY_CHANGED
    }
    assert all(c.follows for c in plan.changes if c.cause is Reason.DIRECTORY_CHANGED)


def test_only_the_clock(applied: Scratch) -> None:
    plan = applied.plan(later(20))  # manifests and CRLs inside their 8 h margin
    assert plan.changes
    assert {c.cause for c in plan.changes} == {Reason.EXPIRING}
    assert all(c.scheduled for c in plan.changes)


def test_damage_is_classified_by_cause_not_wording(applied: Scratch, monkeypatch: pytest.MonkeyPatch) -> None:
    """An altered ROA and a planted file repair damage; reworded texts change nothing of that."""
    (applied.rsync / ROA).write_bytes((applied.rsync / ROA).read_bytes()[:-1] + b"\x00")
    (applied.rsync / "example-isp" / "planted.txt").write_text("x")
    monkeypatch.setattr(diff, "ALTERED", "a reworded text")
    monkeypatch.setattr(diff, "FOREIGN", "another reworded text")
    plan = applied.plan(later(1))
    causes = {c.path: c.cause for c in plan.changes}
    assert causes[ROA] in (Reason.ALTERED, Reason.UNREADABLE)
    assert causes["example-isp/planted.txt"] is Reason.DAMAGE
    repaired = {c.path for c in plan.changes if c.repair}
    assert {ROA, "example-isp/planted.txt"} <= repaired
    assert diff.damage(None, Reason.FOREIGN) and not diff.damage(None, Reason.CONTENT_CHANGED)


def test_a_key_roll_and_a_removed_roa(applied: Scratch) -> None:
    applied.edit(ISP, "name: example-isp\n", "name: example-isp\nkey_generation: 2\n")
    plan = applied.plan(later(1))
    rolled = {
        (c.action, c.cause) for c in plan.changes if c.ca == "example-isp" or c.subject == "example-isp"
    }
    assert (Action.CREATE_KEY, Reason.ROLL_NEW_KEY) in rolled
    assert all(c.roll for c in plan.changes if c.cause is Reason.ROLL_NEW_KEY)
    applied.edit(ISP, "name: example-isp\nkey_generation: 2\n", "name: example-isp\n")
    applied.edit(ISP, "  - {asn: AS64496, prefix: 198.51.100.0/25, max_length: 26, comment: anycast}\n", "")
    removed = [c for c in applied.plan(later(1)).changes if c.kind is Kind.ROA]
    assert removed and {c.cause for c in removed} == {Reason.NOT_DESIRED}


def test_the_plan_document_carries_the_cause(applied: Scratch) -> None:
    applied.edit(ISP, "max_length: 26", "max_length: 25")
    workspace = engine.open_workspace(applied.repo)
    doc = engine.plan_document(workspace, engine.plan(workspace, later(1)))
    raw = json.loads(doc.model_dump_json())
    assert raw["format_version"] == "2.6"
    causes = {c["path"]: c["cause"] for c in raw["changes"]}
    assert "content-changed" in causes.values() and "directory-changed" in causes.values()
    assert set(causes.values()) <= {r.value for r in Reason}
