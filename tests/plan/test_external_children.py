"""Plans over the certificates a CA issued to an external child: expected while the YAML's entitlement
covers them, narrowed or revoked behind a gate when it no longer does (with the VRPs the child publishes
here that die with them), withdrawn as damage when the CA never issued them; applying converges."""

from __future__ import annotations

from pathlib import Path

import pytest

from reconciler import engine, layout
from reconciler.apply import child_certificate
from reconciler.plan.model import Action, Kind, Plan
from reconciler.plan.render.text import render_plain
from reconciler.protocol import updown
from reconciler.resources import Resources
from reconciler.rpki import cert as rc
from reconciler.rpki import crl as rc_crl
from reconciler.signers import FileSigner
from reconciler.signers.adapter import SignerKey
from tests.serve.parent_world import (
    BASE,
    ENTITLEMENT,
    ENTITLEMENT_YAML,
    HANDLE,
    ONLINE,
    PARENT,
    SIA,
    World,
    declare_publisher,
    make_world,
    publish_as_child,
    roa_of,
)

NARROWER_YAML = "{asn: [AS64500], ipv4: [203.0.113.0/24]}"
NARROWER = Resources.parse(["AS64500"], ["203.0.113.0/24"], [])


@pytest.fixture
def world(tmp_path: Path) -> World:
    """The child publishing two ROAs in our repository under the certificate it was just issued."""
    world = make_world(tmp_path)
    declare_publisher(world.scratch, world.child)
    assert isinstance(world.issue("k1"), updown.IssueResponse)
    publish_as_child(world, "k1", [roa_of(64500, "203.0.113.0/24"), roa_of(64500, "2001:db8:8000::/36")])
    assert world.scratch.plan(world.tick()).changes == ()
    return world


def crl_serials(world: World) -> set[int]:
    published = world.published()
    own = published.certificate(f"ta/{PARENT}.cer")
    assert isinstance(own, rc.ResourceCertificate)
    found = published.crl(layout.repository(PARENT) + layout.crl_name(own.key_id))
    assert isinstance(found, rc_crl.Crl)
    return {r.serial for r in found.revoked}


def only_gate(the_plan: Plan, gate_id: str) -> tuple[str, ...]:
    assert [g.id for g in the_plan.gates] == [gate_id], the_plan.gates
    return the_plan.gates[0].items


def test_an_issued_certificate_shows_in_the_plan_document(world: World) -> None:
    workspace = engine.open_workspace(world.scratch.repo)
    doc = engine.plan_document(workspace, engine.plan(workspace, world.now))
    (entry,) = doc.external_children
    cert = world.certificate("k1")
    assert (entry.handle, entry.ca, entry.entitlement) == (HANDLE, PARENT, str(ENTITLEMENT))
    (issued,) = entry.certificates
    assert (issued.serial, issued.key_id) == (f"{cert.serial:x}", cert.key_id.hex())
    assert issued.not_after == cert.not_after
    text = render_plain(doc)
    assert f"{HANDLE} (child of {PARENT}): entitled to {ENTITLEMENT}" in text
    assert f"certificate for key {cert.key_id.hex()} serial {cert.serial:x}" in text


def test_a_narrower_entitlement_reissues_for_the_same_key_behind_a_gate(world: World) -> None:
    before = world.certificate("k1")
    world.scratch.edit(ONLINE, ENTITLEMENT_YAML, NARROWER_YAML)
    the_plan = world.scratch.plan(world.tick())
    (change,) = [c for c in the_plan.changes if c.kind is Kind.CERTIFICATE]
    assert (change.action, change.path, change.subject) == (Action.REISSUE, world.path("k1"), HANDLE)
    assert not change.routine and change.revoke_serial == before.serial
    items = only_gate(the_plan, f"ca-shrink@{HANDLE}")
    # The IPv6 ROA dies with the IPv6 prefix; the IPv4 one stays valid and is not flagged.
    assert items == (f"{HANDLE} loses 2001:db8:8000::/36", "AS64500 2001:db8:8000::/36 max 36")

    workspace = engine.open_workspace(world.scratch.repo)
    doc = engine.plan_document(workspace, the_plan)
    (shown,) = [c for c in doc.changes if c.kind == "certificate"]
    assert shown.before is not None and shown.after == {"resources": str(NARROWER)}

    assert world.scratch.apply(world.now) is not None
    after = world.certificate("k1")
    assert after.resources.resources == NARROWER
    assert (after.key_id, after.repository, after.manifest_uri) == (
        before.key_id,
        before.repository,
        before.manifest_uri,
    )
    assert before.serial in crl_serials(world)
    assert world.scratch.plan(world.now).changes == ()


def test_removing_the_child_revokes_its_certificate_behind_a_gate(world: World) -> None:
    serial = world.certificate("k1").serial
    world.scratch.edit(ONLINE, f"  - handle: {HANDLE}\n", "  - handle: gone\n")  # another child now
    (world.scratch.repo / "children" / "gone.xml").write_bytes(
        (world.scratch.repo / "children" / f"{HANDLE}.xml").read_bytes()
    )
    the_plan = world.scratch.plan(world.tick())
    (change,) = [c for c in the_plan.changes if c.kind is Kind.CERTIFICATE]
    assert (change.action, change.revoke_serial) == (Action.REVOKE, serial)
    assert "no longer declared" in change.reason
    items = only_gate(the_plan, f"ca-revoke@{HANDLE}")
    assert set(items) == {
        f"remove CA {HANDLE}",
        "AS64500 203.0.113.0/24 max 24",
        "AS64500 2001:db8:8000::/36 max 36",
    }
    assert world.scratch.apply(world.now) is not None
    assert world.path("k1") not in world.published().files
    assert serial in crl_serials(world)
    assert world.scratch.plan(world.now).changes == ()


def test_an_entitlement_that_covers_nothing_it_holds_revokes(world: World) -> None:
    world.scratch.edit(ONLINE, ENTITLEMENT_YAML, "{ipv4: [198.51.100.0/24]}")
    the_plan = world.scratch.plan(world.tick())
    (change,) = [c for c in the_plan.changes if c.kind is Kind.CERTIFICATE]
    assert change.action is Action.REVOKE and "no longer covers" in change.reason
    assert f"remove CA {HANDLE}" in only_gate(the_plan, f"ca-revoke@{HANDLE}")


def _plant(world: World, name: str, signer: FileSigner, key: bytes) -> str:
    """A certificate for the child's key ``k1`` at ``online/<name>``, signed with ``key``."""
    found = world.certificate("k1")
    issuer = rc.Issuer(
        SignerKey(signer, key),
        key,
        f"{BASE}ta/{PARENT}.cer",
        f"{BASE}{PARENT}/{layout.crl_name(key)}",
    )
    der = child_certificate.reissue(
        found,
        issuer=issuer,
        resources=ENTITLEMENT,
        serial=1234567,
        not_before=found.not_before,
        not_after=found.not_after,
    )
    path = layout.repository(PARENT) + name
    (world.scratch.rsync / path).write_bytes(der)
    return path


def test_a_certificate_of_an_undeclared_handle_is_revoked_behind_a_gate(world: World) -> None:
    ours = FileSigner(world.scratch.root / "keys")
    key = ours.find_key(PARENT)
    assert key is not None
    name = layout.external_certificate_name("ghost", world.child.key_id("k1"))
    path = _plant(world, name, ours, key)
    the_plan = world.scratch.plan(world.tick())
    (change,) = [c for c in the_plan.changes if c.path == path]
    assert (change.action, change.subject, change.revoke_serial) == (Action.REVOKE, "ghost", 1234567)
    assert "remove CA ghost" in only_gate(the_plan, "ca-revoke@ghost")


def test_a_certificate_the_ca_did_not_issue_is_withdrawn_as_damage(world: World, tmp_path: Path) -> None:
    stranger = FileSigner(tmp_path / "stranger")
    key = stranger.create_key("stranger")
    name = layout.external_certificate_name(HANDLE, world.child.key_id("k2"))
    path = _plant(world, name, stranger, key)
    the_plan = world.scratch.plan(world.tick())
    (change,) = [c for c in the_plan.changes if c.path == path]
    assert change.action is Action.WITHDRAW and change.repair
    assert the_plan.gates == ()
    assert world.scratch.apply(world.now) is not None
    assert path not in world.published().files and world.path("k1") in world.published().files
    assert world.scratch.plan(world.now).changes == ()


def test_a_parent_key_roll_reissues_the_certificate_under_the_new_key(world: World) -> None:
    before = world.certificate("k1")
    world.scratch.edit(ONLINE, "name: online\n", "name: online\nkey_generation: 2\n")
    assert world.scratch.apply(world.tick()) is not None  # staging: the new key is published, unused
    assert world.certificate("k1").serial == before.serial
    activation = world.scratch.plan(world.now).key_plans[PARENT].due
    assert activation is not None
    the_plan = world.scratch.plan(activation)
    (change,) = [c for c in the_plan.changes if c.path == world.path("k1")]
    assert change.action is Action.REISSUE and change.roll and the_plan.gates == ()
    assert world.scratch.apply(activation) is not None
    after = world.certificate("k1")
    own = world.published().certificate(f"ta/{PARENT}_g2.cer")
    assert isinstance(own, rc.ResourceCertificate)
    assert after.authority_key_id == own.key_id != before.authority_key_id
    assert after.aia == f"{BASE}ta/{PARENT}_g2.cer" and after.key_id == before.key_id
    assert after.repository == SIA


def test_external_certificate_names_never_read_as_a_local_childs() -> None:
    key = bytes(range(20))
    name = layout.external_certificate_name(HANDLE, key)
    assert name == f"{HANDLE}_000102030405060708090A0B0C0D0E0F10111213.cer"
    assert layout.external_certificate_subject(name) == (HANDLE, key)
    for local in ("example-isp.cer", "example-isp_g2.cer", "A0B1.mft", f"{HANDLE}_{key.hex()}.cer"):
        assert layout.external_certificate_subject(local) is None, local
