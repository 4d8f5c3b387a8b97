"""Objects this CA did not sign, planted in its publication point (valid objects of another tree signed
by other keys, a truncated trust anchor certificate): damage to repair, never intent to protect. They
trip no approval gate -- the unattended renewal loop must keep going -- and publish no VRP."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from reconciler import engine
from reconciler.plan.diff import published_vrps, repaired
from reconciler.plan.model import Plan
from tests.helpers import T0, Scratch, later, scratch_copy

ISP = "cas/members/example-isp.yaml"
#: Twelve more ROAs in the other tree: planted here they would be three quarters of example-isp's VRPs,
#: far beyond the 30 % whose deletion needs approval.
EXTRA = "".join(f"  - {{asn: AS64496, prefix: 192.0.2.{16 * i}/28}}\n" for i in range(12))


@pytest.fixture(scope="module")
def trees(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    ours = scratch_copy(tmp_path_factory.mktemp("ours"))
    assert ours.apply(T0) is not None
    other = scratch_copy(tmp_path_factory.mktemp("other"))  # the same YAML, other keys
    other.edit(ISP, "roas:\n", "roas:\n" + EXTRA)
    assert other.apply(T0) is not None
    return ours.root, other.rsync.resolve()


@pytest.fixture
def scratch(trees: tuple[Path, Path], tmp_path: Path) -> Scratch:
    shutil.copytree(trees[0], tmp_path / "copy", symlinks=True)
    return Scratch(tmp_path / "copy")


@pytest.fixture
def other(trees: tuple[Path, Path]) -> Path:
    return trees[1]


def unattended(plan: Plan) -> None:
    """What the reconcile loop needs to apply a plan by itself: no gate."""
    assert not plan.approval_required, [f"{g.id}: {g.message}" for g in plan.gates]


def test_planted_foreign_roas_publish_no_vrp_and_trip_no_gate(scratch: Scratch, other: Path) -> None:
    before = scratch.vrps()
    planted = sorted((other / "example-isp").glob("AS64496_192-0-2-*_28.roa"))
    assert len(planted) == 12
    for roa in planted:
        shutil.copy(roa, scratch.rsync.resolve() / "example-isp" / roa.name)
    plan = scratch.plan(later(1))
    unattended(plan)
    assert not plan.vrps_removed and not plan.vrps_added
    assert {f"example-isp/{r.name}" for r in planted} <= repaired(plan.changes)
    workspace = engine.open_workspace(scratch.repo)
    assert published_vrps(workspace.published, repaired(plan.changes)) == before
    scratch.apply(later(1))
    assert scratch.plan(later(1)).empty
    assert scratch.vrps() == before


def test_a_planted_valid_certificate_trips_no_gate(scratch: Scratch, other: Path) -> None:
    tree = scratch.rsync.resolve()
    shutil.copy(
        other / "online" / "example-isp.cer", tree / "online" / "evil.cer"
    )  # signed by the other online
    shutil.copy(other / "ta" / "online.cer", tree / "ta" / "intruder.cer")  # signed by the other trust anchor
    plan = scratch.plan(later(1))
    unattended(plan)
    assert {"online/evil.cer", "ta/intruder.cer"} <= repaired(plan.changes)
    scratch.apply(later(1))
    assert scratch.plan(later(1)).empty


def test_a_truncated_trust_anchor_certificate_trips_no_gate(scratch: Scratch) -> None:
    ta = scratch.rsync.resolve() / "ta.cer"
    ta.write_bytes(ta.read_bytes()[:100])
    plan = scratch.plan(later(1))
    unattended(plan)
    assert "ta.cer" in repaired(plan.changes)
    scratch.apply(later(1))
    assert scratch.plan(later(1)).empty


def test_a_foreign_trust_anchor_certificate_trips_no_gate(scratch: Scratch, other: Path) -> None:
    shutil.copy(other / "ta.cer", scratch.rsync.resolve() / "ta.cer")
    plan = scratch.plan(later(1))
    unattended(plan)
    assert "ta.cer" in repaired(plan.changes)


def test_a_foreign_roa_under_a_desired_name_is_no_published_vrp(scratch: Scratch, other: Path) -> None:
    """The other tree's ROA for the same prefix, under the same name: relying parties reject it here, so
    the VRP is not published now, and re-issuing it adds it."""
    name = "AS64496_192-0-2-0_24.roa"
    shutil.copy(other / "example-isp" / name, scratch.rsync.resolve() / "example-isp" / name)
    plan = scratch.plan(later(1))
    unattended(plan)
    assert f"example-isp/{name}" in repaired(plan.changes)
    assert plan.vrps_added == {(64496, "192.0.2.0/24", 24)}


def test_a_roa_planted_at_the_top_is_no_published_vrp(scratch: Scratch, other: Path) -> None:
    name = "AS64496_192-0-2-16_28.roa"
    shutil.copy(other / "example-isp" / name, scratch.rsync.resolve() / name)
    plan = scratch.plan(later(1))
    unattended(plan)
    assert name in repaired(plan.changes)
    assert not plan.vrps_removed
