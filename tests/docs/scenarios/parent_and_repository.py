"""docs/parent-and-repository.md: a real Krill child_request and publisher_request declared, the
responses written, the plan reviewed against Git, a publisher removed with approval, status and check."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from tests.docs.sandbox import Sandbox
from tests.docs.scenarios import scenario

KRILL = Path(__file__).resolve().parents[2] / "fixtures" / "real-world" / "protocols" / "krill" / "oob"
CHILD = """children:
  - handle: rand
    request: children/rand.xml
    resources: {asn: [AS64500], ipv4: [203.0.113.0/24]}
    comment: Rand Networks, ticket 4711
"""
SERVE = """serve:
  base_uri: https://ca.example.net/rpki
"""
PUBLISHERS = """publishers:
  - handle: bob
    request: publishers/bob.xml
    quota: {objects: 1000, size: 50 MiB}
"""


def _append(path: Path, text: str) -> None:
    path.write_text(path.read_text() + text)


@scenario("docs/parent-and-repository.md", needs=("git",), substitutions={"/srv/rpki": "{root}"})
def parent_and_repository(sandbox: Sandbox) -> None:
    sandbox.prepare("rpkictl apply state --yes")
    sandbox.prepare("git init -q -b main state && git -C state add . && git -C state commit -q -m deployed")
    sandbox.prepare("git -C state switch -q -c peers")
    shutil.copyfile(KRILL / "apnic" / "child_request.xml", sandbox.root / "rand-child-request.xml")
    shutil.copyfile(KRILL / "publisher_request.xml", sandbox.root / "bob-publisher-request.xml")
    sandbox.run("cd /srv/rpki")

    # 1. the child, declared under online
    sandbox.run("mkdir -p state/children")
    sandbox.run("cp rand-child-request.xml state/children/rand.xml")
    _append(sandbox.repo / "cas" / "online.yaml", CHILD)
    assert "valid" in sandbox.run("rpkictl validate state").stdout

    # 2. its parent_response
    _append(sandbox.repo / "rpki.yaml", SERVE)
    sandbox.run("rpkictl oob parent-response online rand state -o parent-response-rand.xml")
    response = (sandbox.root / "parent-response-rand.xml").read_text()
    assert 'service_uri="https://ca.example.net/rpki/rfc6492/rand"' in response, response
    assert (sandbox.root / "published" / "bpki" / "online.cer").is_file()

    # 3. the publisher and its repository_response
    sandbox.run("mkdir -p state/publishers")
    sandbox.run("cp bob-publisher-request.xml state/publishers/bob.xml")
    _append(sandbox.repo / "rpki.yaml", PUBLISHERS)
    sandbox.run("rpkictl validate state")
    sandbox.run("rpkictl oob repository-response bob state -o repository-response-bob.xml")
    response = (sandbox.root / "repository-response-bob.xml").read_text()
    assert 'sia_base="rsync://rpki.example.net/repo/publishers/bob/"' in response, response
    assert (sandbox.root / "published" / "bpki" / "repository.cer").is_file()

    # 5. the review: what the branch declares, and the external children of every plan
    review = sandbox.run("rpkictl plan state --base main").stdout
    assert "added external child rand of online, entitled to AS64500, 203.0.113.0/24" in review, review
    assert "added publisher bob (quota 1000 objects, 50MiB; request publishers/bob.xml)" in review, review
    assert "rand (child of online): entitled to AS64500; 203.0.113.0/24" in review, review
    assert "no certificate issued yet" in review, review
    sandbox.prepare("git -C state add . && git -C state commit -q -m 'rand and bob'")

    # bob published (as rpkictl serve writes it: below its sia_base in the served tree), then is removed
    directory = (sandbox.root / "published" / "rsync").resolve() / "publishers" / "bob"
    directory.mkdir(parents=True)
    (directory / "bob.crl").write_bytes(b"\x30\x03\x02\x01\x00")
    rpki = sandbox.repo / "rpki.yaml"
    rpki.write_text(rpki.read_text().replace(PUBLISHERS, ""))
    gated = sandbox.run("rpkictl plan state", expect=3).output
    match = re.search(r"--approve (publisher-remove@bob:[0-9a-f]+)", gated)
    assert match, gated
    sandbox.run("rpkictl apply state --yes --approve GATE:HASH", subst={"GATE:HASH": match.group(1)})
    assert not (sandbox.root / "published" / "rsync").resolve().joinpath("publishers", "bob").exists()

    # 7. watching them
    status = sandbox.run("rpkictl status state").stdout
    assert "External children (RFC 6492)" in status and "none issued" in status, status
    checked = sandbox.run("rpkictl check state", expect=0).output
    assert checked.startswith("OK"), checked
