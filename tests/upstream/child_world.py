"""Two rpkictl installations on one machine: the bundled example as the parent and the repository
(``rpkictl serve``), and a CA under it declared in a desired state of its own, that knows its parent and
its repository only through the RFC 8183 files exchanged the way operators exchange them:

1. the child's operator prints its child_request and publisher_request (``rpkictl oob ... --signer``);
2. the parent's operator commits them and declares the child (``children:``, ``publishers:``), and prints
   the parent_response and repository_response (``rpkictl oob parent-response``, ``repository-response``);
3. the child's operator commits those and writes the CA file naming them.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from reconciler.published import PublishedState, read
from reconciler.published.reader import Unreadable
from tests.helpers import Scratch
from tests.serve.remote_child import oob_files, rpkictl

HANDLE = "acme"
PARENT = "online"
PARENT_BASE = "rsync://rpki.example.net/repo/"
#: What the parent entitles the child to (YAML flow text, for the parent's CA file).
ENTITLED = '{asn: [AS64500], ipv4: [203.0.113.0/24], ipv6: ["2001:db8:8000::/36"]}'
NARROWED = '{asn: [AS64500], ipv4: [203.0.113.0/25], ipv6: ["2001:db8:8000::/36"]}'
SIA = f"{PARENT_BASE}publishers/{HANDLE}/"

CHILD_SETTINGS = """\
signers:
  default: {type: file, directory: ../keys}
publication:
  directory: ../published
"""

ROAS = """\
roas:
  - {asn: AS64500, prefix: 203.0.113.0/25}
  - {asn: AS64500, prefix: 203.0.113.128/25}
  - {asn: AS64500, prefix: "2001:db8:8000::/40", max_length: 48}
"""


def child_ca_file(roas: str = ROAS, resources: str = ENTITLED) -> str:
    return (
        f"name: {HANDLE}\n"
        "parent:\n  response: parents/online.xml\n"
        "repository:\n  response: repositories/online.xml\n"
        f"resources: {resources}\n{roas}"
    )


@dataclass
class ChildCa:
    """The child's desired state, keys and local copy, below ``root``."""

    root: Path

    @property
    def repo(self) -> Path:
        return self.root / "state"

    @property
    def mirror(self) -> Path:
        return self.root / "published" / "rsync"

    def write(self, rel: str, text: str | bytes) -> None:
        path = self.repo / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(text, bytes):
            path.write_bytes(text)
        else:
            path.write_text(text)

    def rpkictl(self, *args: str, now: str | None = None) -> subprocess.CompletedProcess[str]:
        moment = ("--now", now) if now else ()
        return rpkictl(*args[:1], str(self.repo), *args[1:], *moment)

    def apply(self, *args: str, now: str | None = None) -> str:
        done = self.rpkictl("apply", "--yes", *args, now=now)
        said = done.stdout + done.stderr
        assert done.returncode == 0, said
        return said


def request(kind: str, repo: Path) -> bytes:
    shown = subprocess.run(
        [sys.executable, "-m", "reconciler", "oob", kind, HANDLE, str(repo), "--signer", "default"],
        capture_output=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    assert shown.returncode == 0, shown.stderr.decode()
    return shown.stdout


def make_child(root: Path) -> ChildCa:
    """The child's rpki.yaml, and its two requests printed from it alone."""
    child = ChildCa(root)
    child.write("rpki.yaml", CHILD_SETTINGS)
    (child.repo / "cas").mkdir()
    return child


def declare_child(parent: Scratch, child: ChildCa, resources: str = ENTITLED) -> None:
    """The child's requests committed in the parent's repository, as an external child of ``online``
    and a publisher."""
    for directory, kind in (("children", "child-request"), ("publishers", "publisher-request")):
        (parent.repo / directory).mkdir(exist_ok=True)
        (parent.repo / directory / f"{HANDLE}.xml").write_bytes(request(kind, child.repo))
    with (parent.repo / "cas/online.yaml").open("a") as handle:
        entry = f"  - handle: {HANDLE}\n    request: children/{HANDLE}.xml\n    resources: {resources}\n"
        handle.write(f"children:\n{entry}")
    with (parent.repo / "rpki.yaml").open("a") as handle:
        handle.write(f"publishers:\n  - handle: {HANDLE}\n    request: publishers/{HANDLE}.xml\n")


def connect(parent: Scratch, child: ChildCa, url: str, roas: str = ROAS) -> None:
    """The parent's answers committed in the child's repository, and the child's CA file naming them."""
    parent_response, repository_response = oob_files(parent.repo, PARENT, HANDLE, url)
    child.write("parents/online.xml", parent_response)
    child.write("repositories/online.xml", repository_response)
    child.write(f"cas/{HANDLE}.yaml", child_ca_file(roas))


def at_parent(parent: Scratch) -> PublishedState:
    """The parent's publication point as relying parties get it."""
    return read(parent.rsync)


def child_objects(parent: Scratch) -> dict[str, bytes]:
    """What the parent's repository serves below the child's sia_base (path relative to it)."""
    prefix = f"publishers/{HANDLE}/"
    tree = at_parent(parent)
    return {
        path[len(prefix) :]: data for path, data in tree.served_files().items() if path.startswith(prefix)
    }


def child_vrps(parent: Scratch) -> frozenset[tuple[int, str, int]]:
    """The VRPs of the child's ROAs as published at the parent (decoded, not validated)."""
    prefix = f"publishers/{HANDLE}/"
    tree = at_parent(parent)
    found = set()
    for path in tree.foreign:
        if path.startswith(prefix) and path.endswith(".roa"):
            summary = PublishedState(files={path: tree.foreign[path]}).roa_summary(path)
            assert summary is not None and not isinstance(summary, Unreadable), path
            found |= {(summary.asn, prefix, length) for prefix, length in summary.prefixes}
    return frozenset(found)


def wait_for_the_signing_clock(published: Path) -> None:
    """Sleep until the clock has passed the last signing time of every message the CA sent. Messages to
    one peer are signed a second apart, so a burst of runs signs ahead of the clock; the record of how
    far is in the directory a test is about to lose, and a rebuilt CA signing at the clock's time would
    be refused as a replay until the clock catches up (a real rebuild takes longer than that)."""
    record = published / "upstream" / "replay.json"
    times = json.loads(record.read_text())["last_signing_time"]
    sent = [
        datetime.fromisoformat(t.replace("Z", "+00:00")) for p, t in times.items() if p.startswith("sent:")
    ]
    if sent:
        left = (max(sent) - datetime.now(UTC)).total_seconds() + 1.1
        if left > 0:
            time.sleep(left)
