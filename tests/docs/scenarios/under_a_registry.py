"""docs/under-a-registry.md: the bundled example plays the registry (``rpkictl serve`` on 127.0.0.1, the
parent and the repository); the page's CA is set up from the page's own YAML blocks and the registry's
RFC 8183 answers, certified, published and kept alive; then the registry narrows its entitlement, the
repository loses its objects and the local directory is lost, and each time the page's commands bring
it back."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from reconciler.protocol import bpki, oob
from reconciler.protocol import publication as rfc8181
from reconciler.protocol.client import PublicationClient
from reconciler.protocol.replay import ReplayGuard
from reconciler.signers import FileSigner
from tests.docs.doccommands import ROOT
from tests.docs.sandbox import Sandbox
from tests.docs.scenarios import scenario
from tests.helpers import Scratch
from tests.serve.remote_child import oob_files, serve_process
from tests.upstream.child_world import wait_for_the_signing_clock

PAGE = "docs/under-a-registry.md"
HANDLE = "acme"
ENTITLED = '{asn: [AS64500], ipv4: [203.0.113.0/24], ipv6: ["2001:db8:8000::/36"]}'
NARROWED = '{asn: [AS64500], ipv4: [203.0.113.0/25], ipv6: ["2001:db8:8000::/36"]}'


def page_yaml(first_line: str) -> str:
    """The page's YAML block that starts with ``first_line`` (its file name as a comment), without it."""
    text = (ROOT / PAGE).read_text(encoding="utf-8")
    found = re.search(rf"```yaml\n{re.escape(first_line)}\n(.*?)```", text, re.DOTALL)
    assert found, f"{PAGE} has no YAML block starting {first_line!r}"
    return found.group(1)


def declare(registry: Scratch, root: Path, resources: str) -> None:
    """The registry's side: the two requests committed, the child and the publisher declared."""
    requests = {"children": "acme-child-request.xml", "publishers": "acme-publisher-request.xml"}
    for directory, name in requests.items():
        (registry.repo / directory).mkdir(exist_ok=True)
        shutil.copyfile(root / name, registry.repo / directory / f"{HANDLE}.xml")
    with (registry.repo / "cas/online.yaml").open("a") as handle:
        handle.write(
            f"children:\n  - handle: {HANDLE}\n    request: children/{HANDLE}.xml\n"
            f"    resources: {resources}\n"
        )
    with (registry.repo / "rpki.yaml").open("a") as handle:
        handle.write(f"publishers:\n  - handle: {HANDLE}\n    request: publishers/{HANDLE}.xml\n")


def lose_everything_at_the_repository(root: Path) -> int:
    """A repository that lost its disk holds nothing of ours: brought about the only way a publisher
    reaches the server's store, with the CA's own identity, by withdrawing everything it lists."""
    response = oob.parse_repository_response(
        (root / "state/repositories/registry.xml").read_bytes(), "repository_response"
    )
    signer = FileSigner(root / "keys")
    key = signer.find_key(bpki.identity_label(HANDLE))
    assert key is not None
    identity = bpki.load_identity((root / "published/bpki" / f"{HANDLE}.cer").read_bytes(), "identity")
    # The CA's own replay record: the server takes only messages signed later, to the second, than the
    # last one of an identity, and this record holds when the CA's last message was signed.
    replay = ReplayGuard(root / "published/upstream/replay.json")
    client = PublicationClient(response, signer, key, identity, replay)
    held = client.list()
    client.send(rfc8181.Withdraw(uri, digest) for uri, digest in held.items())
    assert client.list() == {}
    return len(held)


@scenario(PAGE, needs=("git",), substitutions={"/srv/rpki": "{root}", "~/Downloads": "{root}/downloads"})
def under_a_registry(sandbox: Sandbox) -> None:
    root = sandbox.root
    sandbox.prepare("mkdir registry && mv state registry/state")
    registry = Scratch(root / "registry")

    # 1. a desired state of our own: rpki.yaml as the page shows it
    sandbox.run("cd /srv/rpki")
    sandbox.run("mkdir -p state/cas state/parents state/repositories")
    sandbox.run("git init -q state")
    (sandbox.repo / "rpki.yaml").write_text(page_yaml("# state/rpki.yaml"))

    # 2. the two requests, from rpki.yaml alone, with one identity
    child = sandbox.run("rpkictl oob child-request acme state --signer default --out acme-child-request.xml")
    publisher = sandbox.run(
        "rpkictl oob publisher-request acme state --signer default --out acme-publisher-request.xml"
    )
    fingerprints = re.findall(r"identity SHA-256 fingerprint ([0-9a-f]{64})", child.stdout + publisher.stdout)
    assert len(fingerprints) == 2 and fingerprints[0] == fingerprints[1], child.stdout + publisher.stdout
    assert (root / "published" / "bpki" / "acme.cer").is_file()

    # 3. the registry declares us and answers; its answers land in ~/Downloads
    declare(registry, root, ENTITLED)
    sandbox.prepare("rpkictl apply registry/state --yes")
    with serve_process(registry.repo, root / "serve.log") as served:
        parent_response, repository_response = oob_files(registry.repo, "online", HANDLE, served.url)
        (root / "downloads").mkdir()
        (root / "downloads" / "parent-response.xml").write_bytes(parent_response)
        (root / "downloads" / "repository-response.xml").write_bytes(repository_response)
        sandbox.run("cp ~/Downloads/parent-response.xml state/parents/registry.xml")
        sandbox.run("cp ~/Downloads/repository-response.xml state/repositories/registry.xml")

        # 4. the CA file as the page shows it, committed
        (sandbox.repo / "cas" / "acme.yaml").write_text(page_yaml("# state/cas/acme.yaml"))
        sandbox.run("git -C state add .")
        sandbox.run('git -C state commit -q -m "acme: our CA under the registry"')

        # 5. validate, plan, apply
        assert "valid (1 CAs, 3 ROA entries)" in sandbox.run("rpkictl validate state").stdout
        first = sandbox.run("rpkictl plan state", expect=2).stdout
        assert "no certificate from parent online yet: apply asks for one" in first, first
        applied = sandbox.run("rpkictl apply state --yes").output
        assert "asked parent online for a new certificate: no certificate for our key in class" in applied
        assert "sent 5 publish and 0 withdraw in one message" in applied, applied
        assert "No changes." in sandbox.run("rpkictl plan state", expect=0).stdout
        again = sandbox.run("rpkictl apply state --yes").output
        assert "holds all 5 objects already" in again and "asked parent" not in again, again

        # 7. one reconcile cycle: the parent is not due yet, the repository is compared
        assert "nothing to apply" in sandbox.run("rpkictl reconcile state --once").output

        # 8. the registry lists a narrower entitlement: asking for the narrower certificate waits for an
        # approval (apply refuses, exit 3); approved, the ROAs it no longer covers are left out
        registry.edit("cas/online.yaml", ENTITLED, NARROWED)
        refused = sandbox.run("rpkictl apply state --yes", expect=3).output
        assert "--approve parent-shrink@acme:" in refused, refused
        gated = sandbox.run("rpkictl plan state", expect=3).output
        assert "[parent-shrink@acme] parent online no longer entitles acme to 203.0.113.128/25" in gated, (
            gated
        )
        token = re.search(r"--approve (parent-shrink@acme:[0-9a-f]+)", gated)
        assert token, gated
        approve = {"GATE:HASH": token.group(1)}
        narrowed = sandbox.run("rpkictl apply state --yes --approve GATE:HASH", subst=approve).output
        assert "the entitlement changed (added: nothing; removed: 203.0.113.128/25)" in narrowed, narrowed
        assert (
            "ROA AS64500 203.0.113.128/25-25 (" in narrowed
            and "is not signed: parent online does not certify 203.0.113.128/25 to acme" in narrowed
            and "the entry stays in the YAML" in narrowed
        ), narrowed
        assert "parent online does not certify 203.0.113.128/25 to acme, which its YAML lists" in narrowed
        assert "sent 2 publish and 2 withdraw" in narrowed, narrowed  # manifest, CRL; the two /24 and /25
        assert "is not signed" in sandbox.run("rpkictl plan state", expect=0).stdout

        # 8. the repository loses every object: the next apply sends them all again
        assert lose_everything_at_the_repository(root) == 3
        resent = sandbox.run("rpkictl apply state --yes").output
        assert "sent 3 publish and 0 withdraw in one message" in resent, resent
        assert "it held 0 objects" in resent, resent

        # 8. the local directory is lost: plan shows the CA as new, apply rebuilds it
        wait_for_the_signing_clock(root / "published")
        sandbox.prepare("rm -rf published")
        lost = sandbox.run("rpkictl plan state", expect=2).stdout
        assert "no certificate from parent online yet" in lost, lost
        rebuilt = sandbox.run("rpkictl apply state --yes").output
        assert "asked parent" not in rebuilt, rebuilt  # the parent lists the certificate of our key
        assert "Repository http://127.0.0.1:" in rebuilt and "it held 3 objects" in rebuilt, rebuilt
        assert "No changes." in sandbox.run("rpkictl plan state", expect=0).stdout
