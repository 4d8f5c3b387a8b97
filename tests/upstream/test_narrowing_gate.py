"""The parent lists a smaller entitlement while the certificate it issued still holds the rest: the VRPs
are still valid, and asking for the narrower certificate is what would take them away. That request is
gated like a deletion (``parent-shrink@<ca>``, with the VRPs it takes away) and made only once approved;
until then apply keeps signing under the certificate it holds."""

from __future__ import annotations

from pathlib import Path

from reconciler.rpki import cert as rc
from reconciler.upstream import state as stored
from tests.helpers import scratch_copy
from tests.serve.remote_child import approved_apply, serve_process
from tests.upstream.child_world import (
    ENTITLED,
    HANDLE,
    NARROWED,
    child_vrps,
    connect,
    declare_child,
    make_child,
)

ALL = {(64500, "203.0.113.0/25", 25), (64500, "203.0.113.128/25", 25), (64500, "2001:db8:8000::/40", 48)}


def test_asking_for_a_narrower_certificate_waits_for_approval(tmp_path: Path) -> None:
    parent = scratch_copy(tmp_path / "parent")
    child = make_child(tmp_path / "child")
    declare_child(parent, child)
    assert parent.apply() is not None
    with serve_process(parent.repo, tmp_path / "serve.log") as served:
        connect(parent, child, served.url)
        child.apply()
        assert child_vrps(parent) == ALL
        # the parent narrows the entitlement in its YAML; its certificate of the child is not re-issued
        parent.edit("cas/online.yaml", f"resources: {ENTITLED}", f"resources: {NARROWED}")

        said, token = approved_apply(child.repo, f"parent-shrink@{HANDLE}")
        assert "AS64500 203.0.113.128/25 max 25" in said, said  # the VRP the narrower one takes away
        assert "AS64500 203.0.113.0/25 max 25" not in said, said
        assert token.startswith(f"parent-shrink@{HANDLE}:")
        # refused, the certificate was kept and the VRPs with it; approved, the narrower one was asked for
        kept = stored.load(child.root / "published", HANDLE)
        assert kept.certified is not None
        held = rc.decode(kept.certified.der).resources.resources
        assert "203.0.113.0/25" in str(held) and "203.0.113.0/24" not in str(held), held
        assert child_vrps(parent) == ALL - {(64500, "203.0.113.128/25", 25)}
