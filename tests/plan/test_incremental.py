"""Incremental plans: a CA whose inputs did not change since a plan found nothing to do for it is not
planned again, and yet every kind of drift a full plan finds, the incremental plan finds too; a full
plan runs on ``--refresh=full``, once a day, and without a usable cache, and catches a cache that lies."""

from __future__ import annotations

import json
import os
import shutil
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from reconciler import cachefile, engine
from reconciler.plan import incremental
from reconciler.plan.incremental import Refresh
from reconciler.plan.model import Plan, Severity
from tests.helpers import T0, Scratch, actions, later, scratch_copy
from tests.plan.test_drift import DAMAGE, OBJECTS, Damage
from tests.test_cli import rpkictl

ISP = "cas/members/example-isp.yaml"


def plan(scratch: Scratch, now: datetime, refresh: Refresh = Refresh.AUTO) -> Plan:
    return engine.plan(engine.open_workspace(scratch.repo), now, refresh=refresh)


def assert_same(quick: Plan, full: Plan) -> None:
    """What an incremental plan and a full one of the same state must share: the changes, the VRPs
    added and removed, the gates, and what was observed (each CA's manifest, the tree's digest)."""
    assert actions(quick) == actions(full)
    assert (quick.vrps_added, quick.vrps_removed) == (full.vrps_added, full.vrps_removed)
    assert [(g.id, g.hash) for g in quick.gates] == [(g.id, g.hash) for g in full.gates]
    assert (quick.observed, quick.tree_sha256) == (full.observed, full.tree_sha256)


def cache_of(scratch: Scratch) -> Path:
    return incremental.path(scratch.root / "published")


@pytest.fixture(scope="module")
def warmed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The example applied, then planned twice: the second plan found nothing to do for any CA, so the
    cache calls every CA under the trust anchor unchanged."""
    scratch = scratch_copy(tmp_path_factory.mktemp("warmed"))
    assert scratch.apply(T0) is not None
    assert plan(scratch, later(0.5)).empty
    assert plan(scratch, later(0.5)).empty
    return scratch.root


def copy_of(warmed: Path, tmp_path: Path) -> Scratch:
    shutil.copytree(warmed, tmp_path / "copy", symlinks=True)
    return Scratch(tmp_path / "copy")


def test_an_unchanged_ca_is_not_planned_again_and_the_plan_is_the_same(warmed: Path, tmp_path: Path) -> None:
    scratch = copy_of(warmed, tmp_path)
    quick = plan(scratch, later(1))
    assert quick.refresh is not None and quick.refresh.mode == "incremental"
    assert (quick.refresh.planned, quick.refresh.unchanged) == (1, 2)  # the trust anchor is always planned
    full = plan(scratch, later(1), Refresh.FULL)
    assert full.refresh is not None and (full.refresh.mode, full.refresh.planned) == ("full", 3)
    assert full.refresh.why == "--refresh=full"
    assert quick.empty and full.empty
    quick_doc = engine.plan_document(engine.open_workspace(scratch.repo), quick)
    full_doc = engine.plan_document(engine.open_workspace(scratch.repo), full)
    assert quick_doc.plan_id == full_doc.plan_id
    assert quick_doc.refresh is not None and quick_doc.refresh.mode == "incremental"


def test_a_changed_ca_is_planned_and_the_others_are_not(warmed: Path, tmp_path: Path) -> None:
    scratch = copy_of(warmed, tmp_path)
    scratch.edit(ISP, "max_length: 26", "max_length: 27")
    quick = plan(scratch, later(1))
    assert quick.refresh is not None and (quick.refresh.planned, quick.refresh.unchanged) == (2, 1)
    assert_same(quick, plan(scratch, later(1), Refresh.FULL))
    assert any(c.path.startswith("example-isp/AS64496_198-51-100-0") for c in quick.changes)


def preserving_times(damage: Damage) -> Damage:
    """``damage`` that puts the file's access and modification times back as they were."""

    def done(path: Path) -> None:
        before = path.stat()
        damage(path)
        if path.exists():
            os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))

    return done


@pytest.mark.parametrize("damage", ["one bit flipped with its times kept", *DAMAGE])
@pytest.mark.parametrize("target", list(OBJECTS))
def test_every_drift_a_full_plan_finds_an_incremental_plan_finds(
    warmed: Path, tmp_path: Path, target: str, damage: str
) -> None:
    """The published files are read and hashed on every plan: a CA whose file changed (even with its
    size and times kept) is planned in full at once, and plans exactly what a full plan plans."""
    scratch = copy_of(warmed, tmp_path)
    tree = scratch.rsync.resolve()
    harm = preserving_times(DAMAGE["one bit flipped"]) if damage.endswith("kept") else DAMAGE[damage]
    harm(OBJECTS[target](tree))
    quick = plan(scratch, later(1))
    assert quick.refresh is not None and quick.refresh.mode == "incremental"
    assert not quick.empty, f"{target} {damage}: the incremental plan sees nothing"
    assert_same(quick, plan(scratch, later(1), Refresh.FULL))


def test_a_planted_file_and_a_removed_ca_are_seen(warmed: Path, tmp_path: Path) -> None:
    scratch = copy_of(warmed, tmp_path)
    tree = scratch.rsync.resolve()
    (tree / "online" / "planted.roa").write_bytes(b"\x30\x03\x02\x01\x00")
    quick = plan(scratch, later(1))
    assert "online/planted.roa" in {c.path for c in quick.changes}
    assert_same(quick, plan(scratch, later(1), Refresh.FULL))
    (tree / "online" / "planted.roa").unlink()
    (scratch.repo / ISP).unlink()
    quick = plan(scratch, later(1))
    assert {c.ca for c in quick.changes} >= {"example-isp", "online"}
    assert_same(quick, plan(scratch, later(1), Refresh.FULL))


def test_renewals_come_when_they_are_due(warmed: Path, tmp_path: Path) -> None:
    """Time changes no fingerprint: a CA is planned again once one of its objects enters its renewal
    margin (manifests and CRLs: 24 hours, renewed 8 hours before)."""
    scratch = copy_of(warmed, tmp_path)
    assert plan(scratch, later(15.5)).empty
    quick = plan(scratch, later(16.5))
    assert {c.ca for c in quick.changes} == {"online", "example-isp"}
    assert quick.refresh is not None and quick.refresh.unchanged == 0
    assert_same(quick, plan(scratch, later(16.5), Refresh.FULL))


def test_a_plan_for_an_earlier_time_plans_in_full(warmed: Path, tmp_path: Path) -> None:
    """What a plan found at one time says nothing of an earlier one (an object may be future-dated
    then): a plan before the last full plan (``--now`` in the past, a clock set back) is full."""
    scratch = copy_of(warmed, tmp_path)
    earlier = plan(scratch, later(0.25))
    assert earlier.refresh is not None and earlier.refresh.mode == "full"
    assert earlier.refresh.why.startswith("the last full plan was at ")


def test_a_full_plan_runs_once_a_day(warmed: Path, tmp_path: Path) -> None:
    scratch = copy_of(warmed, tmp_path)
    due = T0 + timedelta(minutes=30) + incremental.FULL_EVERY + timedelta(minutes=1)
    daily = plan(scratch, due)
    assert daily.refresh is not None and daily.refresh.mode == "full"
    assert "the last full plan was at 2026-11-23T12:30:00Z" in daily.refresh.why
    after = plan(scratch, due + timedelta(minutes=5))
    assert after.refresh is not None and after.refresh.mode == "incremental"


def test_a_cache_that_is_not_authentic_is_not_used(warmed: Path, tmp_path: Path) -> None:
    scratch = copy_of(warmed, tmp_path)
    cache = cache_of(scratch)
    cache.write_bytes(cache.read_bytes().replace(b'"quiet":{"', b'"quiet":{"x', 1))
    found = plan(scratch, later(1))
    assert found.refresh is not None and found.refresh.mode == "full"
    assert any(n.kind == "cache" and str(cache) in n.message for n in found.notices)


def test_a_cache_that_lies_is_caught_by_the_full_plan_and_dropped(
    warmed: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A fingerprint that missed an input would call a drifted CA unchanged. Made so here (every CA's
    fingerprint the same), the incremental plan misses the drift; the full plan finds it, names the CA,
    drops the cache, and the next plan plans every CA."""
    scratch = copy_of(warmed, tmp_path)
    monkeypatch.setattr(incremental, "fingerprint", lambda planner, ca, common: "blind")
    assert plan(scratch, later(1)).empty  # every CA planned once more, under the blind fingerprint
    DAMAGE["one bit flipped"](OBJECTS["a ROA"](scratch.rsync.resolve()))
    blind = plan(scratch, later(1))
    assert blind.empty, "the lying cache hides the drift from an incremental plan"
    full = plan(scratch, later(1), Refresh.FULL)
    assert not full.empty
    warnings = [n for n in full.notices if n.kind == "cache" and n.severity is Severity.WARNING]
    assert len(warnings) == 1 and "example-isp" in warnings[0].message
    document = json.loads(cache_of(scratch).read_bytes()[: -len(',"mac":""}') - 64] + b"}")
    assert document["quiet"] == {}
    after = plan(scratch, later(1))
    assert after.refresh is not None and after.refresh.unchanged == 0
    assert_same(after, full)


def test_the_command_line_says_which_it_did(warmed: Path, tmp_path: Path) -> None:
    scratch = copy_of(warmed, tmp_path)
    when = later(1).strftime("%Y-%m-%dT%H:%M:%SZ")
    text = rpkictl("plan", str(scratch.repo), "--now", when)
    assert text.returncode == 0, text.stderr
    first = text.stdout.splitlines()[0]
    assert (
        "incremental plan: 1 CA(s) planned, 2 unchanged since the full plan at 2026-11-23T12:30:00Z" in first
    )
    full = rpkictl("plan", str(scratch.repo), "--now", when, "--refresh", "full", "--format", "json")
    assert json.loads(full.stdout)["refresh"] == {
        "mode": "full",
        "planned": 3,
        "unchanged": 0,
        "full_at": None,
        "why": "--refresh=full",
    }
    assert (
        "incremental plan" not in rpkictl("plan", str(scratch.repo), "--now", when, "--refresh=full").stdout
    )


def test_the_vrps_and_gates_of_an_unchanged_ca_count_as_before(tmp_path: Path) -> None:
    """The VRPs an unchanged CA publishes are its desired ones, not read again: a plan that removes
    another CA's ROAs shows the same VRPs removed and trips the same gates as a full plan."""
    scratch = scratch_copy(tmp_path)
    scratch.write(
        "cas/members/other-isp.yaml",
        "name: other-isp\nparent: online\nresources:\n  asn: [AS64500]\n  ipv4: [203.0.113.0/24]\n"
        "roas:\n  - {asn: AS64500, prefix: 203.0.113.0/24, max_length: 25}\n",
    )
    assert scratch.apply(T0) is not None
    assert plan(scratch, later(0.5)).empty
    text = (scratch.repo / ISP).read_text()
    (scratch.repo / ISP).write_text(text.split("roas:")[0] + "roas: []\n")
    quick = plan(scratch, later(1))
    assert quick.refresh is not None and quick.refresh.unchanged == 2  # online and other-isp
    full = plan(scratch, later(1), Refresh.FULL)
    assert_same(quick, full)
    assert (64500, "203.0.113.0/24", 25) not in quick.vrps_removed and len(quick.vrps_removed) == 4
    assert any(g.ca == "example-isp" for g in quick.gates)


def test_apply_plans_incrementally_or_in_full(warmed: Path, tmp_path: Path) -> None:
    scratch = copy_of(warmed, tmp_path)
    when = later(1).strftime("%Y-%m-%dT%H:%M:%SZ")
    quick = rpkictl("apply", str(scratch.repo), "--simulate-time", "--now", when, "--yes")
    assert quick.returncode == 0, quick.stderr
    assert "incremental plan: 1 CA(s) planned, 2 unchanged" in quick.stdout.splitlines()[0]
    full = rpkictl("apply", str(scratch.repo), "--simulate-time", "--now", when, "--yes", "--refresh=full")
    assert full.returncode == 0, full.stderr
    assert "incremental plan" not in full.stdout
    sealed = cache_of(scratch).read_bytes()
    assert json.loads(sealed[: -len(',"mac":""}') - 64] + b"}")["full_at"] == int(later(1).timestamp())


@pytest.mark.parametrize(
    "document",
    [
        {"full_at": "yesterday", "quiet": {}},
        {"full_at": 1_795_000_000, "quiet": {"online": ["fingerprint", 1_795_000_000]}},
        {"full_at": 1_795_000_000, "quiet": ["online"]},
    ],
)
def test_an_authentic_cache_of_the_wrong_shape_is_not_used(
    warmed: Path, tmp_path: Path, document: dict[str, object]
) -> None:
    """Sealed with the CA's key but not of the shape this release writes (a bug, another build): the
    plan is full and says the cache was dropped."""
    scratch = copy_of(warmed, tmp_path)
    secret = engine.open_workspace(scratch.repo).published.memo.secret
    assert cachefile.write(cache_of(scratch), {"version": incremental.VERSION, **document}, secret=secret)
    found = plan(scratch, later(1))
    assert found.refresh is not None and found.refresh.mode == "full"
    assert any(n.kind == "cache" and "not of the shape" in n.message for n in found.notices)
    assert_same(found, plan(scratch, later(1), Refresh.FULL))
