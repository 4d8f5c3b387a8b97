"""A pull request's plan of a CA under an external parent, on a runner with no key, no passphrase and no
local state: the publication is read from the repository's public side (``--published``), and our
certificate from the parent's repository, where our manifest says it is -- both over rsync from a real
rsync daemon, reached as ``rsync://rpki.example.net/repo/`` through a proxy as relying parties reach it.
The plan then shows exactly the change under review, not a CA to build from nothing."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.e2e.harness import RsyncDaemon
from tests.e2e.https import ConnectProxy
from tests.helpers import missing_tool, scratch_copy
from tests.serve.remote_child import rpkictl, serve_process
from tests.upstream.child_world import SIA, child_ca_file, connect, declare_child, make_child

CHANGED = """\
roas:
  - {asn: AS64500, prefix: 203.0.113.0/25}
  - {asn: AS64501, prefix: 203.0.113.128/25}
  - {asn: AS64500, prefix: "2001:db8:8000::/40", max_length: 48}
"""


def test_a_plan_without_secrets_reads_our_certificate_where_relying_parties_do(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if shutil.which("rsync") is None:
        missing_tool("rsync is not installed (apt-get install rsync)", "the review-without-secrets test")
    parent = scratch_copy(tmp_path / "parent")
    child = make_child(tmp_path / "child")
    declare_child(parent, child)
    assert parent.apply() is not None
    with serve_process(parent.repo, tmp_path / "serve.log") as served:
        connect(parent, child, served.url)
        child.apply()
    # the runner has the Git checkout only: no keys, no local copy, no kept exchanges
    shutil.rmtree(child.root / "keys")
    shutil.rmtree(child.root / "published")
    child.write("cas/acme.yaml", child_ca_file(CHANGED))
    with RsyncDaemon(parent.rsync) as daemon, ConnectProxy(daemon.port) as proxy:
        monkeypatch.setenv("RSYNC_PROXY", proxy.url.removeprefix("http://"))
        shown = rpkictl("plan", str(child.repo), "--published", SIA, "--cache", str(tmp_path / "cache"))
        said = shown.stdout + shown.stderr
        assert proxy.tunnels and set(proxy.tunnels) == {"rpki.example.net:873"}
    assert shown.returncode == 2, said  # changes, none needing approval
    assert "our certificate from parent online: read from the parent's repository" in said, said
    assert "rsync://rpki.example.net/repo/online/acme_" in said, said
    # the change under review, and nothing else: the new ROA, the old one withdrawn, manifest and CRL
    assert "AS64501_203-0-113-128_25.roa" in said and "AS64500_203-0-113-128_25.roa" in said, said
    assert "create key" not in said.lower() and "no key" not in said.lower(), said
    assert "no certificate for our key yet" not in said, said  # the exchanges are kept on the CA machine
    assert "AS64500_203-0-113-0_25.roa" not in said, said  # unchanged ROAs are not re-signed
    assert not (child.root / "published").exists() and not (child.root / "keys").exists()
