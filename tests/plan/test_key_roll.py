"""An RFC 6489 key roll, declared by raising ``key_generation``, walked phase by phase with ``now``.

Each phase is checked for exactly what the plan says (phase, due time, changes, no gate), what apply
publishes, and that the VRPs never change. The same walk is validated by rpki-client and FORT in
``tests/e2e/test_key_roll.py``.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from reconciler import engine, layout
from reconciler.desired import DesiredStateError, load
from reconciler.plan.model import Action, Kind, Plan
from reconciler.plan.rollover import Phase
from reconciler.published import read
from reconciler.published.reader import SignedManifest, SignedRoa
from reconciler.rpki import cert as rc
from reconciler.rpki import crl as crl_mod
from tests.helpers import T0, Scratch, later, scratch_copy

ISP = "cas/members/example-isp.yaml"


@pytest.fixture
def applied(tmp_path: Path) -> Scratch:
    scratch = scratch_copy(tmp_path)
    assert scratch.apply(T0) is not None
    return scratch


def _roll_to_2(scratch: Scratch) -> None:
    scratch.edit(ISP, "parent: online\n", "parent: online\nkey_generation: 2\n")


def _phase(plan: Plan) -> Phase | None:
    return plan.key_plans["example-isp"].phase


def _keys(scratch: Scratch) -> set[str]:
    return {p.name for p in (scratch.root / "keys").glob("*.pem")}


def _isp_files(scratch: Scratch) -> set[str]:
    return set(read(scratch.rsync).under("example-isp/"))


def test_a_roll_walks_through_staging_activation_and_cleanup(applied: Scratch) -> None:
    vrps = applied.vrps()
    old_key = engine.open_workspace(applied.repo).keys()["example-isp"][1]
    _roll_to_2(applied)

    # Staging starts: a new key, its certificate, an empty manifest and CRL; the old key signs on.
    start = applied.plan(later(1))
    assert _phase(start) is Phase.STAGING and start.key_plans["example-isp"].due == later(25)
    assert start.gates == () and all(c.routine for c in start.changes)
    assert start.vrps_added == start.vrps_removed == frozenset()
    created = [c for c in start.changes if c.action is Action.CREATE_KEY]
    assert [(c.ca, c.generation, c.roll) for c in created] == [("example-isp", 2, True)]
    assert any(c.path == "online/example-isp_g2.cer" and c.action is Action.ISSUE for c in start.changes)
    assert not [c for c in start.changes if c.kind is Kind.ROA]
    notice = next(n for n in start.notices if n.kind == "key-roll")
    assert "staging" in notice.message and "2026-11-24T13:00:00Z" in notice.message
    applied.apply(later(1))
    assert _keys(applied) == {"example-isp.pem", "example-isp_g2.pem", "online.pem", "ta.pem"}
    new_key = engine.open_workspace(applied.repo).keys()["example-isp"][2]

    published = read(applied.rsync)
    new_cert = published.certificate("online/example-isp_g2.cer")
    assert isinstance(new_cert, rc.ResourceCertificate) and new_cert.key_id == new_key
    assert new_cert.manifest_uri.endswith(f"example-isp/{layout.manifest_name(new_key)}")
    new_mft = published.manifest("example-isp/" + layout.manifest_name(new_key))
    assert isinstance(new_mft, SignedManifest)
    assert [name for name, _ in new_mft.content.files] == [layout.crl_name(new_key)]
    old_mft = published.manifest("example-isp/" + layout.manifest_name(old_key))
    assert isinstance(old_mft, SignedManifest)
    assert layout.crl_name(new_key) not in dict(old_mft.content.files)  # each key lists its own files
    roa = published.roa(next(p for p in published.files if p.endswith(".roa")))
    assert isinstance(roa, SignedRoa) and roa.signed.ee.authority_key_id == old_key
    assert applied.vrps() == vrps

    # During staging nothing is due but routine renewals of both keys' manifests and CRLs.
    waiting = applied.plan(later(2))
    assert waiting.empty and _phase(waiting) is Phase.STAGING
    assert "activation due 2026-11-24T13:00:00Z (in 23h)" in waiting.notices[0].message
    renewals = applied.plan(later(18))
    assert _phase(renewals) is Phase.STAGING
    renewed = {c.path for c in renewals.changes if c.ca == "example-isp"}
    assert renewed == {"example-isp/" + layout.manifest_name(k) for k in (old_key, new_key)} | {
        "example-isp/" + layout.crl_name(k) for k in (old_key, new_key)
    }
    applied.apply(later(18))
    assert applied.plan(later(24.9)).empty

    # Activation: every object re-issued under the new key, the old certificate revoked, no gate.
    activation = applied.plan(later(25))
    assert _phase(activation) is Phase.ACTIVATING
    assert activation.gates == () and all(c.routine for c in activation.changes)
    assert activation.vrps_added == activation.vrps_removed == frozenset()
    revoked = [c for c in activation.changes if c.action is Action.REVOKE]
    assert [(c.path, c.subject, c.generation) for c in revoked] == [
        ("online/example-isp.cer", "example-isp", 1)
    ]
    old_serial = revoked[0].revoke_serial
    assert old_serial is not None
    roas = [c for c in activation.changes if c.kind is Kind.ROA]
    assert len(roas) == 4 and all(c.action is Action.REISSUE and c.roll for c in roas)
    withdrawn = {c.path for c in activation.changes if c.action is Action.WITHDRAW}
    assert withdrawn == {
        "example-isp/" + layout.manifest_name(old_key),
        "example-isp/" + layout.crl_name(old_key),
    }
    applied.apply(later(25))
    assert applied.vrps() == vrps
    published = read(applied.rsync)
    for path in published.files:
        if path.startswith("example-isp/") and path.endswith(".roa"):
            found = published.roa(path)
            assert isinstance(found, SignedRoa) and found.signed.ee.authority_key_id == new_key
    online_crl = next(
        published.crl(p) for p in published.files if p.startswith("online/") and p.endswith(".crl")
    )
    assert isinstance(online_crl, crl_mod.Crl) and old_serial in {r.serial for r in online_crl.revoked}
    assert "online/example-isp.cer" not in published.files
    assert _isp_files(applied) == {layout.manifest_name(new_key), layout.crl_name(new_key)} | {
        p.split("/")[1] for p in published.files if p.startswith("example-isp/") and p.endswith(".roa")
    }

    # Cleanup: the old key signs nothing any more and is destroyed; then the plan is empty.
    cleanup = applied.plan(later(26))
    assert _phase(cleanup) is Phase.CLEANUP
    assert [(c.action, c.generation) for c in cleanup.changes] == [(Action.DESTROY_KEY, 1)]
    tree = applied.rsync.resolve()
    applied.apply(later(26))
    assert applied.rsync.resolve() == tree  # nothing to publish: the tree is untouched
    assert _keys(applied) == {"example-isp_g2.pem", "online.pem", "ta.pem"}
    final = applied.plan(later(27))
    assert final.empty and final.notices == () and _phase(final) is None
    assert applied.vrps() == vrps


def test_a_roll_waits_while_the_new_certificate_is_young(applied: Scratch) -> None:
    """The staging period counts from the new certificate's publication, read back from the tree."""
    _roll_to_2(applied)
    applied.apply(later(1))
    applied.edit("rpki.yaml", "signers:", "timing:\n  key_roll_staging: 2h\nsigners:")
    assert _phase(applied.plan(later(2.9))) is Phase.STAGING
    assert _phase(applied.plan(later(3))) is Phase.ACTIVATING


def test_a_parent_roll_re_issues_child_certificates(applied: Scratch) -> None:
    """When the online CA rolls, the certificate of example-isp is re-issued by the new key; the child's
    own objects stay as they are."""
    before = read(applied.rsync)
    isp_roas = {p: before.files[p] for p in before.files if p.startswith("example-isp/")}
    applied.edit("cas/online.yaml", "parent: ta\n", "parent: ta\nkey_generation: 2\n")
    applied.apply(later(1))
    activation = applied.plan(later(26))
    child = [c for c in activation.changes if c.subject == "example-isp"]
    assert [(c.action, c.roll) for c in child] == [(Action.REISSUE, True)]
    assert activation.gates == ()
    applied.apply(later(26))
    after = read(applied.rsync)
    assert "ta/online_g2.cer" in after.files and "ta/online.cer" not in after.files
    kept = {p for p in isp_roas if p.endswith(".roa") and after.files.get(p) == isp_roas[p]}
    assert len(kept) == 4  # the child's ROAs are not re-signed


def test_a_lost_publication_point_mid_roll_goes_straight_to_the_new_key(applied: Scratch) -> None:
    """With nothing published, no relying party knows the old key: the new one is used at once."""
    _roll_to_2(applied)
    applied.apply(later(1))
    vrps = applied.vrps()
    for tree in (applied.root / "published").iterdir():
        if tree.is_symlink() or tree.is_file():
            tree.unlink()
        else:
            shutil.rmtree(tree)
    plan = applied.plan(later(2))
    assert _phase(plan) is Phase.CLEANUP
    assert Action.DESTROY_KEY not in [c.action for c in plan.changes]  # not before the new key is certified
    applied.apply(later(2))
    assert applied.vrps() == vrps
    assert "online/example-isp_g2.cer" in read(applied.rsync).files
    assert "online/example-isp.cer" not in read(applied.rsync).files
    assert [(c.action, c.generation) for c in applied.plan(later(3)).changes] == [(Action.DESTROY_KEY, 1)]
    applied.apply(later(3))
    assert applied.plan(later(4)).empty


def test_the_trust_anchor_cannot_roll(applied: Scratch) -> None:
    applied.edit("cas/ta.yaml", "trust_anchor: true\n", "trust_anchor: true\nkey_generation: 2\n")
    with pytest.raises(DesiredStateError) as caught:
        load(applied.repo)
    assert "cas/ta.yaml:" in str(caught.value) and "cannot be rolled" in str(caught.value)


def test_lowering_the_generation_never_destroys_the_current_key(applied: Scratch) -> None:
    _roll_to_2(applied)
    for hours in (1, 25, 26):
        applied.apply(later(hours))
    applied.edit(ISP, "key_generation: 2\n", "")
    plan = applied.plan(later(27))
    assert not [c for c in plan.changes if c.action is Action.DESTROY_KEY]
    assert "example-isp_g2.pem" in _keys(applied)


def test_raising_the_generation_again_mid_roll_finishes_the_roll_first(applied: Scratch) -> None:
    _roll_to_2(applied)
    applied.apply(later(1))
    applied.edit(ISP, "key_generation: 2\n", "key_generation: 3\n")
    plan = applied.plan(later(2))
    keys = plan.key_plans["example-isp"]
    assert (keys.phase, keys.active, keys.pending, keys.destroy) == (Phase.STAGING, 1, 2, ())
    assert plan.empty
    applied.apply(later(25))  # activation of generation 2, after its own full staging
    assert applied.plan(later(25.5)).key_plans["example-isp"].active == 2
    applied.apply(later(26))  # generation 1 destroyed; generation 3 starts staging
    third = applied.plan(later(27)).key_plans["example-isp"]
    assert (third.phase, third.active, third.pending) == (Phase.STAGING, 2, 3)
    assert _keys(applied) >= {"example-isp_g2.pem", "example-isp_g3.pem"}
    assert "example-isp.pem" not in _keys(applied)


def test_a_scheduled_run_never_activates_a_roll_past_a_reviewed_change(applied: Scratch) -> None:
    """A ROA edit waits for review; the routine job must not re-sign the CA under the new key and
    revoke the old one while that ROA would stay behind, signed by the revoked key."""
    vrps = applied.vrps()
    _roll_to_2(applied)
    applied.apply(later(1))
    applied.edit(ISP, "max_length: 26", "max_length: 25")
    workspace = engine.open_workspace(applied.repo)
    routine = engine.routine_plan(workspace, later(26))
    keys = routine.key_plans["example-isp"]
    assert keys.phase is Phase.STAGING and keys.held
    assert "waits until the reviewed changes of example-isp" in routine.notices[0].message
    assert not [c for c in routine.changes if c.kind is Kind.ROA or c.action is Action.REVOKE]
    engine.apply(workspace, routine)
    assert applied.vrps() == vrps
    full = applied.plan(later(26.5))
    assert full.key_plans["example-isp"].phase is Phase.ACTIVATING  # with the edit, once it is applied
    applied.apply(later(26.5))
    assert (64496, "198.51.100.0/25", 25) in applied.vrps()


def test_a_roll_that_also_shrinks_resources_is_gated(applied: Scratch) -> None:
    _roll_to_2(applied)
    applied.edit(ISP, '  ipv6: ["2001:db8:1000::/36"]\n', "")
    applied.edit(ISP, '  - {asn: AS64497, prefix: "2001:db8:1000::/36", max_length: 48}\n', "")
    plan = applied.plan(later(1))
    new_cert = next(c for c in plan.changes if c.path == "online/example-isp_g2.cer")
    assert not new_cert.roll and not new_cert.routine
    assert "ca-shrink@example-isp" in {g.id for g in plan.gates}


def test_lowering_the_generation_is_gated(applied: Scratch) -> None:
    _roll_to_2(applied)
    for hours in (1, 25, 26):
        applied.apply(later(hours))
    applied.edit(ISP, "key_generation: 2\n", "")
    assert "key-missing@example-isp" in {g.id for g in applied.plan(later(27)).gates}
