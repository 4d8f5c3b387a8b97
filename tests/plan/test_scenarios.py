"""Plans for the changes operators make: each gives exactly those changes, with a reason, and converges."""

from __future__ import annotations

import shutil
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from reconciler.plan.model import Action, Kind
from reconciler.published import read
from reconciler.published.reader import SignedManifest, SignedRoa
from reconciler.rpki import crl as crl_mod
from tests.helpers import T0, Scratch, actions, later, scratch_copy

ISP = "cas/members/example-isp.yaml"


@pytest.fixture
def applied(tmp_path: Path) -> Scratch:
    """The bundled example, applied once at T0."""
    scratch = scratch_copy(tmp_path)
    result = scratch.apply()
    assert result is not None
    return scratch


def converged(scratch: Scratch, now: datetime = T0) -> None:
    """After apply, the plan is empty and the published VRPs are exactly the YAML's."""
    assert scratch.plan(now).empty, [c.address for c in scratch.plan(now).changes]
    assert scratch.vrps() == scratch.desired_vrps()


def renewals(plan_changes: list[tuple[Action, Kind, str]], ca: str) -> list[tuple[Action, Kind, str]]:
    return [c for c in plan_changes if c[1] in (Kind.MANIFEST, Kind.CRL) and c[2].startswith(f"{ca}/")]


def test_first_apply_then_nothing(applied: Scratch) -> None:
    """The first apply publishes everything; the next plan says no changes and apply writes nothing."""
    converged(applied)
    served = applied.rsync.resolve()
    assert applied.apply() is None
    assert applied.rsync.resolve() == served
    files = read(applied.rsync).files
    assert sorted(p for p in files if p.endswith(".roa")) == [
        "example-isp/AS0_192-0-2-128_25.roa",
        "example-isp/AS64496_192-0-2-0_24.roa",
        "example-isp/AS64496_198-51-100-0_25.roa",
        "example-isp/AS64497_2001-db8-1000--_36.roa",
    ]


def test_first_plan_lists_keys_certificates_roas_and_points(tmp_path: Path) -> None:
    plan = scratch_copy(tmp_path).plan()
    counts = plan.counts()
    assert counts[Action.CREATE_KEY] == 3
    assert counts[Action.ISSUE] == 3 + 4  # certificates and ROAs; manifests and CRLs are routine
    assert plan.routine_count == 6
    assert len(plan.vrps_added) == 4 and not plan.vrps_removed
    assert all(c.reason for c in plan.changes)


def test_add_roa(applied: Scratch) -> None:
    applied.edit(
        ISP,
        "  - {asn: AS0, prefix: 192.0.2.128/25}",
        "  - {asn: AS0, prefix: 192.0.2.128/25}\n  - {asn: AS64497, prefix: 198.51.100.0/25}",
    )
    plan = applied.plan()
    got = actions(plan)
    assert [c for c in got if c[1] is Kind.ROA] == [
        (Action.ISSUE, Kind.ROA, "example-isp/AS64497_198-51-100-0_25.roa")
    ]
    assert len(renewals(got, "example-isp")) == 2 and len(got) == 3
    assert plan.vrps_added == {(64497, "198.51.100.0/25", 25)} and not plan.vrps_removed
    applied.apply()
    converged(applied)


def test_remove_roa_revokes_it(applied: Scratch) -> None:
    path = "example-isp/AS0_192-0-2-128_25.roa"
    applied.edit(ISP, "  - {asn: AS0, prefix: 192.0.2.128/25}\n", "")
    plan = applied.plan()
    (change,) = [c for c in plan.changes if c.kind is Kind.ROA]
    assert (change.action, change.path) == (Action.REVOKE, path)
    assert "no longer in the desired state" in change.reason
    assert change.revoke_serial is not None
    assert len(plan.changes) == 3
    applied.apply()
    converged(applied)
    published = read(applied.rsync)
    assert path not in published.files
    crl_path = next(p for p in published.files if p.startswith("example-isp/") and p.endswith(".crl"))
    found = published.crl(crl_path)
    assert isinstance(found, crl_mod.Crl)
    assert change.revoke_serial in {r.serial for r in found.revoked}


def test_change_max_length_reissues(applied: Scratch) -> None:
    applied.edit(ISP, "max_length: 26", "max_length: 25")
    plan = applied.plan()
    (change,) = [c for c in plan.changes if c.kind is Kind.ROA]
    assert change.action is Action.REISSUE and "content changed" in change.reason
    assert change.revoke_serial is not None
    assert plan.vrps_added == {(64496, "198.51.100.0/25", 25)}
    assert plan.vrps_removed == {(64496, "198.51.100.0/25", 26)}
    applied.apply()
    converged(applied)


def test_change_asn(applied: Scratch) -> None:
    applied.edit(ISP, "{asn: AS64496, prefix: 192.0.2.0/24}", "{asn: AS64497, prefix: 192.0.2.0/24}")
    got = [c for c in actions(applied.plan()) if c[1] is Kind.ROA]
    assert got == [
        (Action.ISSUE, Kind.ROA, "example-isp/AS64497_192-0-2-0_24.roa"),
        (Action.REVOKE, Kind.ROA, "example-isp/AS64496_192-0-2-0_24.roa"),
    ]
    applied.apply()
    converged(applied)


def test_grow_and_shrink_resources(applied: Scratch) -> None:
    applied.edit(ISP, "asn: [AS64496, AS64497]", "asn: [AS64496, AS64497, AS64498]")
    plan = applied.plan()
    got = actions(plan)
    assert (Action.REISSUE, Kind.CERTIFICATE, "online/example-isp.cer") in got
    assert len(got) == 3  # the certificate, and online's manifest and CRL
    (cert,) = [c for c in plan.changes if c.kind is Kind.CERTIFICATE]
    assert "AS64498" in cert.reason and cert.revoke_serial is not None
    applied.apply()
    converged(applied)
    applied.edit(ISP, "asn: [AS64496, AS64497, AS64498]", "asn: [AS64496, AS64497]")
    assert (Action.REISSUE, Kind.CERTIFICATE, "online/example-isp.cer") in actions(applied.plan())
    applied.apply()
    converged(applied)


def test_move_prefix_between_cas(applied: Scratch) -> None:
    """198.51.100.0/25 and its ROA move from example-isp to a new CA."""
    applied.edit(ISP, "ipv4: [192.0.2.0/24, 198.51.100.0/25]", "ipv4: [192.0.2.0/24]")
    applied.edit(ISP, "  - {asn: AS64496, prefix: 198.51.100.0/25, max_length: 26, comment: anycast}\n", "")
    applied.write(
        "cas/members/other-isp.yaml",
        "name: other-isp\nparent: online\nresources:\n  asn: [AS64498]\n  ipv4: [198.51.100.0/25]\n"
        "roas:\n  - {asn: AS64496, prefix: 198.51.100.0/25, max_length: 26}\n",
    )
    plan = applied.plan()
    got = [(a, k, p) for a, k, p in actions(plan) if k not in (Kind.MANIFEST, Kind.CRL)]
    assert got == [
        (Action.CREATE_KEY, Kind.KEY, ""),
        (Action.ISSUE, Kind.CERTIFICATE, "online/other-isp.cer"),
        (Action.ISSUE, Kind.ROA, "other-isp/AS64496_198-51-100-0_25.roa"),
        (Action.REISSUE, Kind.CERTIFICATE, "online/example-isp.cer"),
        (Action.REVOKE, Kind.ROA, "example-isp/AS64496_198-51-100-0_25.roa"),
    ]
    assert not plan.vrps_added and not plan.vrps_removed  # the same VRP, now from another CA
    applied.apply()
    converged(applied)


def test_remove_ca(applied: Scratch) -> None:
    """Removing a CA revokes its certificate on the parent's CRL and withdraws its whole directory."""
    (applied.repo / ISP).unlink()
    plan = applied.plan()
    got = actions(plan)
    assert (Action.REVOKE, Kind.CERTIFICATE, "online/example-isp.cer") in got
    withdrawn = sorted(p for a, k, p in got if a is Action.WITHDRAW)
    assert withdrawn and all(p.startswith("example-isp/") for p in withdrawn)
    assert len(withdrawn) == 6  # 4 ROAs, a manifest and a CRL
    assert len(plan.vrps_removed) == 4
    (revoked,) = [c for c in plan.changes if c.action is Action.REVOKE]
    assert revoked.revoke_serial is not None
    applied.apply()
    converged(applied)
    published = read(applied.rsync)
    assert not any(p.startswith("example-isp/") for p in published.files)
    crl_path = next(p for p in published.files if p.startswith("online/") and p.endswith(".crl"))
    found = published.crl(crl_path)
    assert isinstance(found, crl_mod.Crl)
    assert revoked.revoke_serial in {r.serial for r in found.revoked}


def test_renewal_at_17_hours_touches_only_manifests_and_crls(applied: Scratch) -> None:
    """Below the trust anchor, manifests and CRLs live 24 h and are renewed 8 h before expiry; the
    trust anchor's live 12 weeks and are not touched."""
    assert applied.plan(later(15)).empty
    plan = applied.plan(later(17))
    assert len(plan.changes) == 4
    assert all(c.action is Action.RENEW and c.kind in (Kind.MANIFEST, Kind.CRL) for c in plan.changes)
    assert all("expire in 7h" in c.reason for c in plan.changes)
    assert {c.ca for c in plan.changes} == {"online", "example-isp"}
    before = _manifest_numbers(applied)
    result = applied.apply(later(17))
    assert result is not None and result.signed == 2 * 3  # per CA: CRL, manifest EE, manifest CMS
    after = _manifest_numbers(applied)
    assert all(after[ca] > before[ca] for ca in before if ca != "ta")
    assert after["ta"] == before["ta"]
    converged(applied, later(17))


def test_the_trust_anchor_point_is_renewed_monthly(applied: Scratch) -> None:
    """12 weeks of validity, renewed 8 weeks before expiry: after 4 weeks, not before."""
    ta_changes = [c for c in applied.plan(later(4 * 7 * 24 - 1)).changes if c.ca == "ta"]
    assert ta_changes == []
    plan = applied.plan(later(4 * 7 * 24 + 1))
    ta_changes = [c for c in plan.changes if c.ca == "ta"]
    assert {c.kind for c in ta_changes} == {Kind.MANIFEST, Kind.CRL}
    assert all("renewal margin 8w" in c.reason or "renewal margin 56d" in c.reason for c in ta_changes)
    applied.apply(later(4 * 7 * 24 + 1))
    published = read(applied.rsync)
    mft = next(published.manifest(p) for p in published.files if p.startswith("ta/") and p.endswith(".mft"))
    assert isinstance(mft, SignedManifest)
    assert mft.content.next_update - mft.content.this_update == timedelta(weeks=12, minutes=5)


def _manifest_numbers(scratch: Scratch) -> dict[str, int]:
    published = read(scratch.rsync)
    numbers = {}
    for path in published.files:
        if path.endswith(".mft"):
            found = published.manifest(path)
            assert isinstance(found, SignedManifest)
            numbers[path.split("/")[0]] = found.content.number
    return numbers


def test_disaster_recovery_rebuilds_with_higher_numbers(applied: Scratch) -> None:
    """The whole publication directory is lost: apply rebuilds it from the YAML and the keys alone."""
    applied.apply(later(17))
    before = _manifest_numbers(applied)
    shutil.rmtree(applied.root / "published")
    plan = applied.plan(later(18))
    assert plan.counts()[Action.CREATE_KEY] == 0
    applied.apply(later(18))
    converged(applied, later(18))
    after = _manifest_numbers(applied)
    assert all(after[ca] > before[ca] for ca in before)


def test_drift_is_named_and_repaired(applied: Scratch) -> None:
    tree = applied.rsync.resolve()
    (tree / "example-isp" / "AS0_192-0-2-128_25.roa").unlink()
    roa = tree / "example-isp" / "AS64496_192-0-2-0_24.roa"
    data = bytearray(roa.read_bytes())
    data[-1] ^= 0xFF
    roa.write_bytes(bytes(data))
    (tree / "online" / "junk.txt").write_text("junk")
    plan = applied.plan()
    reasons = {c.path: (c.action, c.reason) for c in plan.changes}
    assert reasons["example-isp/AS0_192-0-2-128_25.roa"] == (Action.ISSUE, "new ROA AS0 192.0.2.128/25")
    assert reasons["example-isp/AS64496_192-0-2-0_24.roa"][0] is Action.REISSUE
    assert reasons["online/junk.txt"] == (Action.WITHDRAW, "not part of the desired state")
    applied.apply()
    converged(applied)


def test_moving_a_ca_to_another_parent_reissues_what_it_signed(applied: Scratch) -> None:
    """The CA's certificate moves to its new parent's directory; its ROAs and manifest must point there."""
    applied.edit(ISP, "parent: online", "parent: ta")
    plan = applied.plan(later(1))
    moved = [c for c in plan.changes if c.kind is Kind.ROA]
    assert len(moved) == 4 and all(c.reason == "the CA's certificate moved (new parent)" for c in moved)
    applied.apply(later(1))
    converged(applied, later(1))
    published = read(applied.rsync)
    for path in published.files:
        if path.startswith("example-isp/") and path.endswith(".roa"):
            found = published.roa(path)
            assert isinstance(found, SignedRoa)
            assert found.signed.ee.aia == "rsync://rpki.example.net/repo/ta/example-isp.cer"


def test_objects_dated_in_the_future_are_reissued(tmp_path: Path) -> None:
    """An apply made while the clock ran a day ahead is repaired once the clock is right."""
    scratch = scratch_copy(tmp_path)
    scratch.apply(later(24))
    plan = scratch.plan(T0)
    assert any("dated in the future" in c.reason for c in plan.changes)
    scratch.apply(T0)
    converged(scratch, T0)


def test_revocations_outlive_a_shorter_validity_setting(applied: Scratch) -> None:
    """A revoked ROA stays on the CRL even if certificate_validity is shortened afterwards."""
    applied.edit(ISP, "  - {asn: AS0, prefix: 192.0.2.128/25}\n", "")
    (change,) = [c for c in applied.plan().changes if c.kind is Kind.ROA]
    applied.apply()
    applied.write(
        "rpki.yaml",
        (applied.repo / "rpki.yaml").read_text() + "timing:\n  certificate_validity: 2w\n"
        "  certificate_renew_before: 1w\n",
    )
    applied.apply(later(18 * 24))
    published = read(applied.rsync)
    crl_path = next(p for p in published.files if p.startswith("example-isp/") and p.endswith(".crl"))
    found = published.crl(crl_path)
    assert isinstance(found, crl_mod.Crl)
    assert change.revoke_serial in {r.serial for r in found.revoked}
