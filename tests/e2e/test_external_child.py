"""An external child certified over RFC 6492, as relying parties see it: the certificate the parent
issued on request validates up to our trust anchor, and the ROA the child signs under it (published in
our repository, as an RFC 8181 publisher does) yields its VRP; once the child revokes the key, the VRP
is gone and nothing else changes."""

from __future__ import annotations

from pathlib import Path

from reconciler.protocol import updown
from tests.e2e.relying_parties import validate, write_tal
from tests.serve.parent_world import PARENT, declare_publisher, make_world, publish_as_child, roa_of

CHILD_VRP = (64500, "203.0.113.0/24", 24)


def test_a_certificate_issued_on_request_validates_with_the_childs_roa(
    validators: tuple[str, ...], tmp_path: Path
) -> None:
    world = make_world(tmp_path)
    declare_publisher(world.scratch, world.child)
    assert isinstance(world.issue("k1"), updown.IssueResponse)
    publish_as_child(world, "k1", [roa_of(64500, "203.0.113.0/24")])
    tal = write_tal(world.scratch)
    ours = world.scratch.desired_vrps()
    assert CHILD_VRP not in ours

    for name, result in validate(world.scratch, validators, now=world.now, tal=tal).items():
        assert result.vrps == ours | {CHILD_VRP}, f"{name}: {result.summary()}"
        assert result.warnings == [], result.summary()

    revoked = world.send(updown.RevokeRequest(PARENT, world.child.key_id("k1")))
    assert isinstance(revoked, updown.RevokeResponse)
    for name, result in validate(world.scratch, validators, now=world.now, tal=tal).items():
        assert result.vrps == ours, f"{name}: {result.summary()}"
        assert result.warnings == [], result.summary()
