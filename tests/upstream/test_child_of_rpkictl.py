"""rpkictl as the child of another rpkictl over real HTTP on loopback: the child's YAML names the parent's
and the repository's RFC 8183 answers; ``apply`` asks the parent for a certificate (RFC 6492), signs under
it and publishes at the parent's repository (RFC 8181); the next apply sends nothing."""

from __future__ import annotations

import json
from pathlib import Path

from reconciler import layout
from reconciler.resources import Resources
from reconciler.rpki import cert as rc
from reconciler.upstream import state as stored
from tests.helpers import scratch_copy
from tests.serve.remote_child import serve_process
from tests.upstream.child_world import (
    HANDLE,
    NARROWED,
    PARENT_BASE,
    SIA,
    child_objects,
    child_vrps,
    connect,
    declare_child,
    make_child,
)


def test_a_child_ca_is_certified_publishes_and_converges(tmp_path: Path) -> None:
    parent = scratch_copy(tmp_path / "parent")
    child = make_child(tmp_path / "child")
    declare_child(parent, child)
    assert parent.apply() is not None
    with serve_process(parent.repo, tmp_path / "serve.log") as served:
        connect(parent, child, served.url)
        said = child.apply()
        assert "asked parent online for a new certificate: no certificate for our key" in said, said
        assert "sent 5 publish and 0 withdraw in one message" in said, said

        held = stored.load(child.root / "published", HANDLE)
        assert held.certified is not None and held.parent.last_error is None
        certificate = rc.decode(held.certified.der)
        assert held.certified.uri.startswith(f"{PARENT_BASE}online/{HANDLE}_")
        assert certificate.repository == f"{SIA}{HANDLE}/"
        objects = child_objects(parent)
        assert set(objects) == {
            f"{HANDLE}/{layout.manifest_name(certificate.key_id)}",
            f"{HANDLE}/{layout.crl_name(certificate.key_id)}",
            f"{HANDLE}/AS64500_203-0-113-0_25.roa",
            f"{HANDLE}/AS64500_203-0-113-128_25.roa",
            f"{HANDLE}/AS64500_2001-db8-8000--_40.roa",
        }
        assert child_vrps(parent) == {
            (64500, "203.0.113.0/25", 25),
            (64500, "203.0.113.128/25", 25),
            (64500, "2001:db8:8000::/40", 48),
        }

        # what we asked the parent and the repository to do is in the audit log, with the applies
        log = [
            json.loads(line) for line in (child.root / "published" / "audit.jsonl").read_text().splitlines()
        ]
        statuses = [entry["status"] for entry in log]
        assert statuses == ["parent-requested", "started", "applied", "repository-published"], statuses
        assert log[0]["certificate"] == held.certified.uri and log[3]["publish"] == 5

        again = child.apply()
        assert "No changes" in again or "nothing to do" in again.lower(), again
        assert "holds all 5 objects already" in again, again
        quiet = (child.root / "published" / "audit.jsonl").read_text().splitlines()
        assert len(quiet) == len(log)  # nothing asked of anyone, nothing recorded


def test_what_the_parent_does_not_certify_is_left_out_and_said(tmp_path: Path) -> None:
    """The parent entitles less than the child's YAML expects: the ROA outside is not signed (a notice
    names it and what the parent certifies), and a local CA below is narrowed to what its parent holds."""
    parent = scratch_copy(tmp_path / "parent")
    child = make_child(tmp_path / "child")
    declare_child(parent, child, NARROWED)
    assert parent.apply() is not None
    with serve_process(parent.repo, tmp_path / "serve.log") as served:
        connect(parent, child, served.url)
        child.write(
            "cas/branch.yaml",
            "name: branch\nparent: acme\n"
            "resources: {ipv4: [203.0.113.64/26, 203.0.113.128/26]}\n"
            "roas:\n  - {asn: AS64500, prefix: 203.0.113.64/26}\n"
            "  - {asn: AS64500, prefix: 203.0.113.128/26}\n",
        )
        plan = child.rpkictl("plan")
        shown = plan.stdout + plan.stderr
        assert "no certificate from parent online yet: apply asks for one" in shown, shown
        said = child.apply()
        assert "ROA AS64500 203.0.113.128/25-25" in said and "is not signed" in said, said
        assert "ROA AS64500 203.0.113.128/26-26" in said, said
        assert "does not certify 203.0.113.128/25 to acme, which its YAML lists" in said, said
        assert child_vrps(parent) == {
            (64500, "203.0.113.0/25", 25),
            (64500, "2001:db8:8000::/40", 48),
            (64500, "203.0.113.64/26", 26),
        }
        branch = [path for path in child_objects(parent) if path.startswith("acme/branch.cer")]
        (path,) = branch
        certificate = rc.decode(child_objects(parent)[path])
        assert str(certificate.resources.resources) == str(Resources.parse([], ["203.0.113.64/26"], []))
        held = stored.load(child.root / "published", HANDLE)
        assert held.certified is not None
        # the branch's objects name acme's certificate at the parent as their issuer's
        assert certificate.aia == held.certified.uri
