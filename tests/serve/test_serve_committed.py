"""``rpkictl serve`` answers from the desired state as committed, as the reconcile loop applies it: an
entitlement is what a child is certified for on request, unattended, so an edit nobody reviewed must not
reach a child."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from reconciler.resources import Resources
from tests.helpers import committed_copy, scratch_copy
from tests.serve.remote_child import RemoteChild, declare, oob_files, rpkictl, serve_process

COMMITTED = "{asn: [AS64500], ipv4: [203.0.113.0/25]}"
EDITED = "{asn: [AS64500], ipv4: [203.0.113.0/24]}"


def test_an_uncommitted_entitlement_is_not_served(tmp_path: Path) -> None:
    git, scratch = committed_copy(tmp_path)
    child = RemoteChild("acme", tmp_path / "child", datetime.now(UTC))
    declare(scratch.repo, child, COMMITTED)
    git.git.add("-A", ".")
    git.index.commit("external child acme")
    applied = rpkictl("apply", str(scratch.repo), "--yes")
    assert applied.returncode == 0, applied.stdout + applied.stderr
    online = scratch.repo / "cas" / "online.yaml"
    online.write_text(online.read_text().replace(COMMITTED, EDITED))  # grown, not committed

    with serve_process(scratch.repo, tmp_path / "serve.log", allow_uncommitted=False) as served:
        child.connect(*oob_files(scratch.repo, "online", "acme", served.url))
        (entitled,) = child.list().classes
        assert served.stop() == 0
    assert entitled.resources == Resources.parse(["AS64500"], ["203.0.113.0/25"], [])
    assert "external child acme: list answered" in served.logged()

    with serve_process(scratch.repo, tmp_path / "serve-files.log") as served:  # --allow-uncommitted
        child.connect(*oob_files(scratch.repo, "online", "acme", served.url))
        (grown,) = child.list().classes
        assert served.stop() == 0
    assert grown.resources == Resources.parse(["AS64500"], ["203.0.113.0/24"], [])


def test_outside_git_serve_needs_to_be_told_to_serve_the_files(tmp_path: Path) -> None:
    scratch = scratch_copy(tmp_path)
    refused = rpkictl("serve", str(scratch.repo), "--port", "0")
    assert refused.returncode == 1
    assert "not in a Git checkout" in refused.stderr and "--allow-uncommitted" in refused.stderr
    assert "Traceback" not in refused.stderr
