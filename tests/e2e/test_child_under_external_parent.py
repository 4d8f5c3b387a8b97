"""rpkictl as a CA under an external parent, end to end: one rpkictl (the bundled example) is the parent
and the repository (``rpkictl serve`` on 127.0.0.1), another runs a CA declared in its own desired state
with ``parent: {response: ...}`` and ``repository: {response: ...}``. Both generations of rpki-client and
FORT, starting from the *parent's* TAL and fetching the parent's rsync tree, must output exactly the
parent's VRPs and the child's YAML VRPs, with no warning, after: the first certification, a ROA change,
the repository losing every object of the child, an entitlement shrink by the parent, the child's whole
local state lost, and the parent down for two days while the child's reconcile loop retries.
"""

from __future__ import annotations

import shutil
import socket
from datetime import UTC, datetime, timedelta
from ipaddress import ip_network
from pathlib import Path

from reconciler import layout
from reconciler.protocol import bpki, oob
from reconciler.protocol import publication as rfc8181
from reconciler.protocol.client import PublicationClient
from reconciler.protocol.replay import ReplayGuard
from reconciler.rpki import cert as rc
from reconciler.signers import FileSigner
from reconciler.upstream import state as stored
from tests.e2e.harness import validate_with_all
from tests.e2e.relying_parties import write_tal
from tests.helpers import Scratch, scratch_copy
from tests.serve.remote_child import approved_apply, rpkictl, serve_process
from tests.upstream.child_world import (
    ENTITLED,
    HANDLE,
    NARROWED,
    PARENT_BASE,
    ChildCa,
    child_ca_file,
    child_objects,
    connect,
    declare_child,
    make_child,
    wait_for_the_signing_clock,
)

FIRST = frozenset(
    {(64500, "203.0.113.0/25", 25), (64500, "203.0.113.128/25", 25), (64500, "2001:db8:8000::/40", 48)}
)
CHANGED_ROAS = """\
roas:
  - {asn: AS64500, prefix: 203.0.113.0/25}
  - {asn: AS64501, prefix: 203.0.113.128/25}
  - {asn: AS64500, prefix: "2001:db8:8000::/40", max_length: 48}
"""
CHANGED = frozenset(
    {(64500, "203.0.113.0/25", 25), (64501, "203.0.113.128/25", 25), (64500, "2001:db8:8000::/40", 48)}
)
WITHIN = CHANGED - {(64501, "203.0.113.128/25", 25)}


def now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def stamp(moment: datetime) -> str:
    return f"{moment:%Y-%m-%dT%H:%M:%SZ}"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Relying:
    """Every validator of both generations, from the parent's TAL, over the parent's rsync tree."""

    def __init__(self, parent: Scratch, names: tuple[str, ...]) -> None:
        self.parent, self.names = parent, names
        self.tal = write_tal(parent)
        self.ours = parent.desired_vrps()

    def see_exactly(
        self, child: frozenset[tuple[int, str, int]], step: str, at: datetime | None = None
    ) -> None:
        results = validate_with_all(
            self.tal, self.parent.rsync, PARENT_BASE, now=at or now(), validators=self.names
        )
        assert set(results) == set(self.names)
        for name, result in results.items():
            assert result.vrps == self.ours | child, f"{step}: {name}: {result.summary()}"
            assert result.warnings == [], f"{step}: {name}: {result.summary()}"


def lose_every_object(child: ChildCa) -> int:
    """What a repository that lost its disk holds for the child: nothing. Done the only way a publisher
    can reach the server's store, with the child's own identity: withdraw everything it lists."""
    response = oob.parse_repository_response(
        (child.repo / "repositories/online.xml").read_bytes(), "response"
    )
    signer = FileSigner(child.root / "keys")
    key = signer.find_key(bpki.identity_label(HANDLE))
    assert key is not None
    identity = bpki.load_identity((child.root / "published/bpki" / f"{HANDLE}.cer").read_bytes(), "identity")
    # the child's own replay record: the server takes only messages signed after the identity's last one
    replay = ReplayGuard(child.root / "published" / "upstream" / "replay.json")
    client = PublicationClient(response, signer, key, identity, replay)
    held = client.list()
    client.send(rfc8181.Withdraw(uri, digest) for uri, digest in held.items())
    assert client.list() == {}
    return len(held)


def test_a_ca_under_an_external_parent_through_its_life(
    validators: tuple[str, ...], current_validators: tuple[str, ...], tmp_path: Path
) -> None:
    every = (*validators, *current_validators)
    parent = scratch_copy(tmp_path / "parent")
    child = make_child(tmp_path / "child")
    declare_child(parent, child)
    assert parent.apply(now()) is not None
    relying = Relying(parent, every)
    port = free_port()

    with serve_process(parent.repo, tmp_path / "serve.log", "--port", str(port)) as served:
        connect(parent, child, served.url)
        # -- first certification ------------------------------------------------------------------------
        said = child.apply()
        assert "no certificate for our key in class online yet" in said, said
        assert "sent 5 publish and 0 withdraw in one message" in said, said
        relying.see_exactly(FIRST, "first certification")

        # -- a ROA change: O(changed) at the repository -------------------------------------------------
        child.write(f"cas/{HANDLE}.yaml", child_ca_file(CHANGED_ROAS))
        said = child.apply()
        assert "asked parent" not in said, said  # the certificate still matches: no new request
        assert "sent 3 publish and 1 withdraw in one message" in said, said  # ROA, manifest, CRL; old ROA
        relying.see_exactly(CHANGED, "ROA change")

        # -- the repository loses every object: the next apply sends them all again -------------------
        assert lose_every_object(child) == 5
        said = child.apply()
        assert "sent 5 publish and 0 withdraw in one message" in said, said
        relying.see_exactly(CHANGED, "after the repository lost everything")

        # -- the parent shrinks the entitlement (reviewed and approved at the parent) -----------------
        parent.edit("cas/online.yaml", f"resources: {ENTITLED}", f"resources: {NARROWED}")
        approved_apply(parent.repo, f"ca-shrink@{HANDLE}")
        said = child.apply()
        assert "ROA AS64501 203.0.113.128/25-25" in said and "is not signed" in said, said
        assert "1 withdraw" in said, said
        relying.see_exactly(WITHIN, "after the shrink")

        # -- the child's whole local state is lost: rebuilt from Git, the keys, the parent, the repository
        wait_for_the_signing_clock(child.root / "published")
        shutil.rmtree(child.root / "published")
        said = child.apply()
        assert "asked parent" not in said, said  # the parent lists the certificate of our key: taken up
        relying.see_exactly(WITHIN, "after the local state was lost")
        objects = child_objects(parent)
        assert sorted(objects) == sorted(
            f"{HANDLE}/{name}"
            for name in (
                layout.roa_name(64500, ip_network("203.0.113.0/25")),
                layout.roa_name(64500, ip_network("2001:db8:8000::/40")),
                *_point_names(child),
            )
        )
        assert served.stop() == 0, served.logged()

    # -- the parent (and the repository) down for two days: the loop retries, then catches up ---------
    later = now() + timedelta(days=2)
    down = rpkictl(
        "reconcile",
        str(child.repo),
        "--once",
        "--allow-uncommitted",
        "--now",
        stamp(later),
        "--simulate-time",
    )
    assert down.returncode != 0, down.stdout + down.stderr
    log = down.stdout + down.stderr
    assert "could not publish at the repository" in log, log
    kept = stored.load(child.root / "published", HANDLE)
    assert kept.parent.failures == 1 and kept.parent.last_error is not None
    assert kept.repository.failures == 1
    assert parent.apply(later) is not None  # the parent renews its own manifests at that time
    with serve_process(parent.repo, tmp_path / "serve2.log", "--port", str(port)):
        back = rpkictl(
            "reconcile",
            str(child.repo),
            "--once",
            "--allow-uncommitted",
            "--now",
            stamp(later),
            "--simulate-time",
        )
        assert back.returncode == 0, back.stdout + back.stderr
        kept = stored.load(child.root / "published", HANDLE)
        assert kept.repository.failures == 0 and kept.repository.last_error is None
        relying.see_exactly(WITHIN, "two days later", at=later + timedelta(minutes=5))


def _point_names(child: ChildCa) -> tuple[str, str]:
    held = stored.load(child.root / "published", HANDLE)
    assert held.certified is not None
    key = rc.decode(held.certified.der).key_id
    return layout.manifest_name(key), layout.crl_name(key)
