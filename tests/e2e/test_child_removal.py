"""An external child that is another rpkictl, removed by its parent in review: the parent's gate names the
VRPs that go, the child's certificate is revoked, and both generations of rpki-client and FORT, from the
parent's TAL, output exactly the parent's own VRPs with no warning. The child's next apply finds its
parent gone (HTTP 404), says so, and changes nothing it could not sign."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from reconciler.upstream import state as stored
from tests.e2e.test_child_under_external_parent import Relying
from tests.helpers import scratch_copy
from tests.serve.remote_child import approved_apply, serve_process
from tests.upstream.child_world import HANDLE, child_vrps, connect, declare_child, make_child


def test_a_child_rpkictl_is_removed_by_its_parent(
    validators: tuple[str, ...], current_validators: tuple[str, ...], tmp_path: Path
) -> None:
    every = (*validators, *current_validators)
    parent = scratch_copy(tmp_path / "parent")
    child = make_child(tmp_path / "child")
    declare_child(parent, child)
    assert parent.apply(datetime.now(UTC)) is not None
    relying = Relying(parent, every)

    with serve_process(parent.repo, tmp_path / "serve.log") as served:
        connect(parent, child, served.url)
        child.apply()
        published = child_vrps(parent)
        assert len(published) == 3
        relying.see_exactly(published, "certified")

        # the parent removes the child in review: the gate names every VRP that goes
        text = (parent.repo / "cas/online.yaml").read_text()
        (parent.repo / "cas/online.yaml").write_text(text[: text.index("children:\n")])
        said, _ = approved_apply(parent.repo, f"ca-revoke@{HANDLE}")
        assert all(f"AS{asn} {prefix} max {length}" in said for asn, prefix, length in published), said
        relying.see_exactly(frozenset(), "removed")

        # the child learns it from its parent's answer: it signs under nothing new, and says why
        done = child.rpkictl("apply", "--yes")
        told = done.stdout + done.stderr
        assert "could not reach parent online" in told and "404" in told, told
        kept = stored.load(child.root / "published", HANDLE)
        assert kept.parent.failures == 1 and kept.parent.last_error is not None
        relying.see_exactly(frozenset(), "after the child's next apply")
