"""Approval gates: each rule trips exactly when it should, with the items it flags, and its hash binds."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest

from reconciler import engine
from reconciler.plan.approval import Approval, ApprovalError, parse_approval, unapproved
from reconciler.plan.impact import Announcement
from reconciler.plan.model import Plan
from reconciler.signers import MissingKeyError
from tests.helpers import Scratch, later, scratch_copy

ISP = "cas/members/example-isp.yaml"
HEAD = """name: example-isp
parent: online
resources:
  asn: [AS64496, AS64497]
  ipv4: [192.0.2.0/24, 198.51.100.0/25]
  ipv6: ["2001:db8:1000::/36"]
"""


def _isp(roas: list[str], safety: str = "") -> str:
    body = "roas:\n" + "".join(f"  - {r}\n" for r in roas) if roas else "roas: []\n"
    return HEAD + safety + body


def _twelve() -> list[str]:
    """Twelve /28s of 192.0.2.0/24 for AS64496, max length 28."""
    return [f"{{asn: AS64496, prefix: 192.0.2.{16 * i}/28}}" for i in range(12)]


@pytest.fixture
def big(tmp_path: Path) -> Scratch:
    """example-isp with 12 VRPs, applied."""
    scratch = scratch_copy(tmp_path)
    scratch.write(ISP, _isp(_twelve()))
    assert scratch.apply() is not None
    return scratch


def _gates(plan: Plan) -> dict[str, tuple[str, ...]]:
    return {g.id: g.items for g in plan.gates}


def test_removing_30_percent_is_allowed_more_is_gated(big: Scratch) -> None:
    roas = _twelve()
    big.write(ISP, _isp(roas[:9]))  # 3 of 12 removed: 25%
    assert big.plan(later(1)).gates == ()
    big.write(ISP, _isp(roas[:8]))  # 4 of 12 removed: 33.3%
    plan = big.plan(later(1))
    (gate,) = plan.gates
    assert gate.id == "roa-delete-pct@example-isp"
    assert gate.items == tuple(sorted(f"AS64496 192.0.2.{16 * i}/28 max 28" for i in (8, 9, 10, 11)))
    assert (gate.existing, gate.threshold) == (12, 0.30)
    assert "4 of 12 VRPs removed (33.3% > 30.0%)" in gate.message


def test_narrowing_is_counted_apart_from_deletion(big: Scratch) -> None:
    """A lower max length or another AS narrows a VRP; a higher max length widens it and is not gated."""
    roas = _twelve()
    narrowed = [r.replace("AS64496", "AS64497") for r in roas[:4]] + roas[4:]
    big.write(ISP, _isp(narrowed))
    (gate,) = big.plan(later(1)).gates
    assert gate.id == "roa-narrow-pct@example-isp"
    assert gate.items[0] == "AS64496 192.0.2.0/28 max 28 -> AS64497"
    widened = [r.replace("/28}", "/28, max_length: 30}") for r in roas]
    big.write(ISP, _isp(widened))
    assert big.plan(later(1)).gates == ()


def test_small_cas_are_not_judged_by_percentage(tmp_path: Path) -> None:
    """Below min_existing_vrps (10) the percentage rules are off: the example's CA has 4 VRPs."""
    scratch = scratch_copy(tmp_path)
    scratch.apply()
    scratch.edit(ISP, "  - {asn: AS64496, prefix: 192.0.2.0/24}\n", "")
    scratch.edit(ISP, "  - {asn: AS0, prefix: 192.0.2.128/25}\n", "")
    assert scratch.plan(later(1)).gates == ()


def test_per_ca_thresholds_override_the_global_ones(big: Scratch) -> None:
    big.write(ISP, _isp(_twelve()[:8], "safety:\n  delete_pct_threshold: 50%\n"))
    assert big.plan(later(1)).gates == ()
    big.write("rpki.yaml", (big.repo / "rpki.yaml").read_text() + "safety:\n  delete_pct_threshold: 0.1\n")
    big.write(ISP, _isp(_twelve()[:10]))  # 2 of 12: 16.7% > 10%
    (gate,) = big.plan(later(1)).gates
    assert gate.threshold == 0.1


def test_emptying_a_ca_is_gated_unless_allowed(big: Scratch) -> None:
    big.write(ISP, _isp([]))
    assert set(_gates(big.plan(later(1)))) == {"roa-delete-pct@example-isp", "ca-empty@example-isp"}
    big.write(ISP, _isp([], "safety:\n  allow_empty: true\n  delete_pct_threshold: 1.0\n"))
    assert big.plan(later(1)).gates == ()


def test_revoking_or_shrinking_a_child_ca_is_gated(tmp_path: Path) -> None:
    scratch = scratch_copy(tmp_path)
    scratch.apply()
    scratch.edit(ISP, "asn: [AS64496, AS64497]", "asn: [AS64496]")
    gates = _gates(scratch.plan(later(1)))
    assert gates == {"ca-shrink@example-isp": ("example-isp loses AS64497",)}
    scratch.edit(ISP, "asn: [AS64496]", "asn: [AS64496, AS64497, AS64498]")
    assert scratch.plan(later(1)).gates == ()  # growing is not dangerous
    (scratch.repo / ISP).unlink()
    assert _gates(scratch.plan(later(1))) == {
        "ca-revoke@example-isp": (
            "remove CA example-isp",  # and the VRPs that go with it, so the approval names them
            "AS0 192.0.2.128/25 max 25",
            "AS64496 192.0.2.0/24 max 24",
            "AS64496 198.51.100.0/25 max 26",
            "AS64497 2001:db8:1000::/36 max 48",
        )
    }


def test_changes_signed_by_an_established_trust_anchor_are_gated(tmp_path: Path) -> None:
    scratch = scratch_copy(tmp_path)
    assert scratch.plan().gates == ()  # bootstrapping the TA is not gated
    scratch.apply()
    scratch.write("cas/second.yaml", "name: second\nparent: ta\nresources:\n  asn: [AS65000]\n")
    gates = _gates(scratch.plan(later(1)))
    assert gates == {"trust-anchor@ta": ("issue certificate second (ta/second.cer) with AS65000",)}


def test_routine_renewals_by_the_trust_anchor_need_no_approval(tmp_path: Path) -> None:
    """Renewing the certificates the TA issued, when they near expiry, is routine: never gated, so a
    cron-driven apply keeps the tree alive without a human."""
    scratch = scratch_copy(tmp_path)
    scratch.apply()
    plan = scratch.plan(later(49 * 7 * 24))  # inside the 4-week renewal margin of the 52-week certificates
    assert any(c.kind.value == "certificate" and c.action.value == "renew" for c in plan.changes)
    assert plan.gates == ()


def test_removing_a_ca_binds_every_vrp_below_it(tmp_path: Path) -> None:
    """A CA below the removed one goes too: the approval names both CAs and all their VRPs."""
    scratch = scratch_copy(tmp_path)
    scratch.write(
        "cas/members/customer.yaml",
        "name: customer\nparent: example-isp\nresources:\n  ipv4: [192.0.2.0/26]\n"
        "roas:\n  - {asn: AS64511, prefix: 192.0.2.0/26}\n",
    )
    scratch.apply()
    (scratch.repo / ISP).unlink()
    (scratch.repo / "cas/members/customer.yaml").unlink()
    gates = _gates(scratch.plan(later(1)))
    assert gates["ca-revoke@example-isp"][:2] == ("remove CA customer", "remove CA example-isp")
    assert "AS64511 192.0.2.0/26 max 26" in gates["ca-revoke@example-isp"]


def test_a_ca_whose_certificate_cannot_be_revoked_is_still_gated(tmp_path: Path) -> None:
    """An unreadable child certificate is withdrawn rather than revoked: removing the CA is still gated."""
    scratch = scratch_copy(tmp_path)
    scratch.apply()
    (scratch.rsync.resolve() / "online" / "example-isp.cer").write_bytes(b"garbage")
    (scratch.repo / ISP).unlink()
    assert "ca-revoke@example-isp" in _gates(scratch.plan(later(1)))


def test_replacing_a_lost_key_on_purpose_is_a_gate(tmp_path: Path) -> None:
    """A certified key gone from its signer stops the plan (tests/hostile/test_missing_keys.py); raising
    key_generation replaces it on purpose, and that is still gated: the signer may only be pointing at
    the wrong directory or token. A key roll (the old key still there) is not."""
    scratch = scratch_copy(tmp_path)
    scratch.apply()
    (scratch.root / "keys" / "example-isp.pem").unlink()
    with pytest.raises(MissingKeyError):
        scratch.plan(later(1))
    scratch.edit(ISP, "parent: online\n", "parent: online\nkey_generation: 2\n")
    gates = _gates(scratch.plan(later(1)))
    assert list(gates) == ["key-missing@example-isp"]
    assert gates["key-missing@example-isp"][0].startswith("replace key ")


def test_a_key_roll_is_not_a_lost_key(tmp_path: Path) -> None:
    scratch = scratch_copy(tmp_path)
    scratch.apply()
    scratch.edit(ISP, "parent: online\n", "parent: online\nkey_generation: 2\n")
    assert _gates(scratch.plan(later(1))) == {}


def test_routes_turning_invalid_are_a_gate(tmp_path: Path) -> None:
    scratch = scratch_copy(tmp_path)
    scratch.apply()
    routes = engine.Announcements.read(scratch.repo / "announcements.txt")
    scratch.edit(ISP, "max_length: 26", "max_length: 25")  # 198.51.100.0/26 and .64/26 become invalid
    workspace = engine.open_workspace(scratch.repo)
    plan = engine.plan(workspace, later(1), routes)
    gates = _gates(plan)
    assert gates["route-invalid"] == (
        "AS64496 198.51.100.0/26: valid -> invalid",
        "AS64496 198.51.100.64/26: valid -> invalid",
    )
    assert plan.route_changes is not None and all(c.breaks for c in plan.route_changes)


def test_a_route_already_invalid_or_becoming_valid_is_not_a_gate(tmp_path: Path) -> None:
    scratch = scratch_copy(tmp_path)
    scratch.apply()
    routes = engine.Announcements(
        [Announcement(ipaddress.ip_network("198.51.100.0/27"), 64496, 10)],  # invalid now (too specific)
        engine.Announcements.read(scratch.repo / "announcements.txt").meta,
    )
    scratch.edit(ISP, "max_length: 26", "max_length: 27")  # ... and valid after
    plan = engine.plan(engine.open_workspace(scratch.repo), later(1), routes)
    assert plan.gates == ()
    assert plan.route_changes is not None and [(c.before, c.after) for c in plan.route_changes] == [
        ("invalid", "valid")
    ]


def test_an_approval_binds_to_exactly_the_flagged_items(big: Scratch) -> None:
    """Approve the removal of four VRPs; a plan that removes a fifth needs a new approval."""
    roas = _twelve()
    big.write(ISP, _isp(roas[:8]))
    workspace = engine.open_workspace(big.repo)
    doc = engine.plan_document(workspace, engine.plan(workspace, later(1)))
    (gate,) = doc.gates
    approval = parse_approval(gate.approve)
    assert unapproved(doc, [approval]) == []
    big.write(ISP, _isp(roas[:7]))
    workspace = engine.open_workspace(big.repo)
    grown = engine.plan_document(workspace, engine.plan(workspace, later(1)))
    assert [g.id for g in unapproved(grown, [approval])] == ["roa-delete-pct@example-isp"]
    assert unapproved(grown, [Approval("roa-delete-pct@other", gate.hash)]) != []


@pytest.mark.parametrize("token", ["roa-delete-pct@x", "roa-delete-pct@x:abc", "x:" + "g" * 16, ""])
def test_malformed_approvals_are_refused(token: str) -> None:
    with pytest.raises(ApprovalError, match="GATE:HASH"):
        parse_approval(token)
