"""rpki-reconciler as the parent and the repository of a CA it does not run, over real HTTP.

Our repository (the bundled example) is applied; a child CA with its own identity and keys is declared
in the YAML (``children:`` and ``publishers:``) and a real ``rpkictl serve`` answers it on 127.0.0.1. The
child knows only what ``rpkictl oob`` printed for it, and talks only RFC 6492 and RFC 8181: it lists
its entitlement, asks for its certificate, signs its own manifest, CRL and ROAs and publishes them
(list -> delta -> send). Both generations of rpki-client and FORT, starting from our TAL and fetching
our rsync tree, must then output exactly our YAML's VRPs plus the child's -- through a ROA change, an
entitlement shrink approved in review, a key roll of the child and its removal.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from reconciler import engine, layout
from reconciler.plan import external_children
from reconciler.protocol import publication as rfc8181
from reconciler.protocol.client import TransportError
from reconciler.published import read
from reconciler.resources import Resources
from reconciler.rpki import cert as rc
from reconciler.rpki import crl as rc_crl
from tests.e2e.harness import HttpsAccess, RequireTool, ValidatorResult, validate_with_all
from tests.e2e.https import ConnectProxy, HttpsServer, ThrowawayCa
from tests.e2e.relying_parties import write_tal
from tests.helpers import Scratch, scratch_copy
from tests.publish.test_rrdp import RRDP_BASE, notification, snapshot_files, with_rrdp
from tests.serve.remote_child import (
    RemoteChild,
    approved_apply,
    declare,
    oob_files,
    roa_of,
    serve_process,
    vrps_of,
)

BASE = "rsync://rpki.example.net/repo/"
HANDLE = "acme"
PARENT = "online"
ONLINE = "cas/online.yaml"
ENTITLED = '{asn: [AS64500], ipv4: [203.0.113.0/24], ipv6: ["2001:db8:8000::/36"]}'
NARROWED = '{asn: [AS64500], ipv4: [203.0.113.0/25], ipv6: ["2001:db8:8000::/36"]}'


def now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


class Relying:
    """Every validator of both generations, from our TAL, at the time of each check: RRDP first (over
    HTTPS, as published), our rsync tree for what RRDP does not give them."""

    def __init__(self, scratch: Scratch, names: tuple[str, ...], https: HttpsAccess) -> None:
        self.scratch, self.names, self.https = scratch, names, https
        self.tal = write_tal(scratch)
        self.ours = scratch.desired_vrps()

    def run(self) -> dict[str, ValidatorResult]:
        results = validate_with_all(
            self.tal, self.scratch.rsync, BASE, now=now(), validators=self.names, https=self.https
        )
        assert set(results) == set(self.names)
        return results

    def see_exactly(self, child: frozenset[tuple[int, str, int]], step: str) -> None:
        want = self.ours | child
        for name, result in self.run().items():
            assert result.vrps == want, f"{step}: {name}: {result.summary()}"
            assert result.warnings == [], f"{step}: {name}: {result.summary()}"


def child_certificates(scratch: Scratch) -> dict[bytes, rc.ResourceCertificate]:
    """The child's certificates in our tree, by the key they certify."""
    found = {}
    for item in external_children.child_certificates(read(scratch.rsync), PARENT, HANDLE):
        assert isinstance(item.found, rc.ResourceCertificate), item
        found[item.key_id] = item.found
    return found


def held(certificate: rc.ResourceCertificate) -> Resources:
    return certificate.resources.resources


def revoked_serials(scratch: Scratch) -> set[int]:
    published = read(scratch.rsync)
    own = published.certificate(f"ta/{PARENT}.cer")
    assert isinstance(own, rc.ResourceCertificate)
    crl = published.crl(layout.repository(PARENT) + layout.crl_name(own.key_id))
    assert isinstance(crl, rc_crl.Crl)
    return {entry.serial for entry in crl.revoked}


@pytest.fixture
def every_validator(validators: tuple[str, ...], current_validators: tuple[str, ...]) -> tuple[str, ...]:
    return (*validators, *current_validators)


@pytest.fixture
def https(tmp_path: Path, require_tool: RequireTool) -> Iterator[tuple[HttpsServer, HttpsAccess]]:
    """Our RRDP files served as https://rpki.example.net/rrdp/ to the validators (tests/e2e/https.py)."""
    require_tool("unshare")
    require_tool("openssl")
    probe = subprocess.run(["unshare", "--mount", "true"], capture_output=True, text=True, check=False)
    if probe.returncode != 0:  # rpki-client trusts the test CA only inside its own mount namespace
        pytest.fail(f"unshare --mount is not permitted here ({probe.stderr.strip()}); run as root")
    ca = ThrowawayCa.create(tmp_path / "tls", "rpki.example.net")
    (tmp_path / "published").mkdir()
    with HttpsServer(tmp_path / "published", ca) as server, ConnectProxy(server.port) as proxy:
        yield server, HttpsAccess(proxy.url, ca.bundle, ca.ca_dir)


def test_an_external_ca_is_certified_and_published_over_http_through_its_whole_life(
    every_validator: tuple[str, ...], https: tuple[HttpsServer, HttpsAccess], tmp_path: Path
) -> None:
    rrdp_server, access = https
    scratch = with_rrdp(scratch_copy(tmp_path))
    assert scratch.apply(now()) is not None
    child = RemoteChild(HANDLE, tmp_path / "child", now())
    declare(scratch.repo, child, ENTITLED)
    assert scratch.plan(now()).empty  # declaring a child issues nothing: it has to ask
    relying = Relying(scratch, every_validator, access)
    entitled = Resources.parse(["AS64500"], ["203.0.113.0/24"], ["2001:db8:8000::/36"])
    narrowed = Resources.parse(["AS64500"], ["203.0.113.0/25"], ["2001:db8:8000::/36"])

    with serve_process(scratch.repo, tmp_path / "serve.log", "--channel-timeout", "10s") as served:
        child.connect(*oob_files(scratch.repo, PARENT, HANDLE, served.url))
        assert (
            child.parent is not None and child.parent.parent.service_uri == f"{served.url}/rfc6492/{HANDLE}"
        )
        assert child.sia_base == f"{engine.load_desired(scratch.repo).publication.rsync_base}publishers/acme/"

        # -- first contact: the entitlement as declared, a certificate, ROAs published ------------------
        (offered,) = child.list().classes
        assert (offered.class_name, offered.resources, offered.certificates) == (PARENT, entitled, ())
        issued = child.request("k1", PARENT)
        certificate = rc.decode(issued.resource_class.certificates[0].der)
        assert held(certificate) == entitled
        assert certificate.notify == f"{RRDP_BASE}notification.xml"
        child.roas = [
            roa_of(64500, "203.0.113.0/25"),
            roa_of(64500, "203.0.113.128/25"),
            roa_of(64500, "2001:db8:8000::/40", max_length=48),
        ]
        sent = child.publish(now())
        assert len(sent) == 5 and all(pdu.hash is None for pdu in sent)  # CRL, 3 ROAs, manifest: created
        assert set(child.listed()) == {pdu.uri for pdu in sent}
        assert not relying.ours & vrps_of(child.roas)
        relying.see_exactly(vrps_of(child.roas), "first publication")
        # each validator took our RRDP snapshot, which carries the child's objects (its certificate
        # names our notification file): RRDP, not rsync, gave them the child's point
        fetched = [path.rsplit("/", 1)[-1] for path in rrdp_server.requests]
        assert fetched.count("snapshot.xml") == len(every_validator), fetched
        snapshot = snapshot_files(scratch, notification(scratch))
        assert {BASE + path for path in snapshot if path.startswith("publishers/")} == {p.uri for p in sent}

        # -- the child changes a ROA: the VRPs follow ----------------------------------------------------
        child.roas[1] = roa_of(64501, "203.0.113.128/25")
        sent = child.publish(now())
        # the changed ROA has a new name (origin in it): one created, one withdrawn; CRL, manifest and
        # the other ROAs (re-signed) replaced
        assert [isinstance(p, rfc8181.Withdraw) for p in sent].count(True) == 1
        relying.see_exactly(vrps_of(child.roas), "ROA change")

        # -- the entitlement shrinks in review ----------------------------------------------------------
        scratch.edit(ONLINE, f"resources: {ENTITLED}", f"resources: {NARROWED}")
        said, _ = approved_apply(scratch.repo, f"ca-shrink@{HANDLE}")
        assert "AS64501 203.0.113.128/25 max 25" in said  # the gate names the VRP that dies
        assert "AS64500 203.0.113.0/25 max 25" not in said
        (certificate,) = child_certificates(scratch).values()
        assert held(certificate) == narrowed
        outside = vrps_of([child.roas[1]])
        within = vrps_of(child.roas) - outside
        invalid = layout.roa_name(64501, child.roas[1].prefixes[0].prefix)
        for name, result in relying.run().items():  # the ROA outside the narrowed certificate is invalid
            assert result.vrps == relying.ours | within, f"{name}: {result.summary()}"
            assert result.warnings, f"{name} says nothing of the invalid ROA: {result.summary()}"
            assert all(invalid in line for line in result.warnings), f"{name}: {result.summary()}"
        (offered,) = child.list().classes
        assert offered.resources == narrowed
        assert [held(rc.decode(c.der)) for c in offered.certificates] == [narrowed]
        child.request("k1", PARENT)
        sent = child.publish(now())
        assert [p.uri for p in sent if isinstance(p, rfc8181.Withdraw)] == [
            f"{child.repository_of('k1')}{invalid}"
        ]
        relying.see_exactly(within, "after the shrink, re-signed")

        # -- the child rolls its key -------------------------------------------------------------------
        child.request("k2", PARENT)
        assert set(child_certificates(scratch)) == {child.key_id("k1"), child.key_id("k2")}
        child.publish(now())
        relying.see_exactly(within, "both keys published")
        old = child_certificates(scratch)[child.key_id("k1")]
        before = child.listed()
        child.revoke("k1", PARENT)
        sent = child.publish(now())
        withdrawn = {p.uri for p in sent if isinstance(p, rfc8181.Withdraw)}
        assert withdrawn == {uri for uri in before if uri.startswith(child.repository_of("k1"))}
        assert len(withdrawn) == 4  # the old key's CRL, manifest and two ROAs
        assert all(uri.startswith(child.repository_of("k2")) for uri in child.listed())
        assert set(child_certificates(scratch)) == {child.key_id("k2")}
        assert old.serial in revoked_serials(scratch)
        (offered,) = child.list().classes
        assert [rc.decode(c.der).key_id for c in offered.certificates] == [child.key_id("k2")]
        relying.see_exactly(within, "after the key roll")

        # -- the child is removed in review ------------------------------------------------------------
        last = child_certificates(scratch)[child.key_id("k2")]
        text = (scratch.repo / ONLINE).read_text()
        start = text.index("children:\n")
        (scratch.repo / ONLINE).write_text(text[:start])
        said, _ = approved_apply(scratch.repo, f"ca-revoke@{HANDLE}")
        assert all(f"AS{asn} {prefix} max {length}" in said for asn, prefix, length in within)
        assert child_certificates(scratch) == {}
        assert last.serial in revoked_serials(scratch)
        with pytest.raises(TransportError, match="HTTP 404"):
            child.list()  # no longer a child of ours
        relying.see_exactly(frozenset(), "after the removal")

        assert served.stop() == 0, served.logged()
    log = served.logged()
    assert f"POST /rfc6492/{HANDLE} 200" in log and f"POST /rfc8181/{HANDLE} 200" in log
    assert f"POST /rfc6492/{HANDLE} 404" in log  # after the removal
    assert "Traceback" not in log
