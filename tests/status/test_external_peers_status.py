"""``rpkictl status`` and ``check`` for the CAs others run on ours: an external child asking over real
RFC 6492 messages and publishing over real RFC 8181 messages, its certificate read back from the served
tree, when it was last heard from read from the replay-protection file and the audit log, and its
publisher's use of the quota counted from the served tree -- in the JSON, the table, the HTML page and
the Prometheus textfile, with the findings ``check`` turns into its exit code."""

from __future__ import annotations

import io
import json
import subprocess
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import jsonschema
import pytest
from rich.console import Console

from reconciler import engine
from reconciler.apply import audit
from reconciler.protocol import publication as rfc8181
from reconciler.protocol import sigmsg, updown
from reconciler.serve import parent
from reconciler.serve.publication import PublicationService
from reconciler.status import html, peers, prometheus, table
from reconciler.status.model import StatusReport
from tests.e2e.harness import find_tool
from tests.helpers import missing_tool
from tests.serve.parent_world import (
    ENTITLEMENT,
    ENTITLEMENT_YAML,
    HANDLE,
    ONLINE,
    PARENT,
    SIA,
    World,
    declare_publisher,
    make_world,
)
from tests.test_cli import rpkictl

SCHEMA = Path(__file__).resolve().parents[2] / "schemas" / "status.schema.json"
#: Three objects of these sizes: 30 % of a quota of 10 objects, 0.3 % of the default size.
OBJECTS = {"a.roa": b"\x30\x03\x02\x01\x01" * 20, "b.roa": b"\x30" * 250, "c.crl": b"\x31" * 50}
SIZE = sum(len(data) for data in OBJECTS.values())


@dataclass
class Peers:
    world: World
    issued_at: datetime  # the signing time of the issue request


def _publish(world: World, objects: dict[str, bytes]) -> None:
    """The child, as a publisher, sends ``objects`` to our publication server and gets a success reply."""
    desired = engine.load_desired(world.scratch.repo)
    service = PublicationService.open(desired, world.now)
    query = rfc8181.Query(tuple(rfc8181.Publish(SIA + name, data) for name, data in objects.items()))
    child = world.child
    body = sigmsg.sign(rfc8181.render(query), child.signer, child.key, child.identity, world.tick())
    reply = sigmsg.econtent(service.respond(HANDLE, body, world.now), "reply")
    assert isinstance(rfc8181.parse_reply(reply, "reply"), rfc8181.SuccessReply)


@pytest.fixture
def peers_world(tmp_path: Path) -> Peers:
    """The example applied, ``acme`` declared as a child of ``online`` and as a publisher (quota of 10
    objects), issued a certificate over RFC 6492, and publishing three objects over RFC 8181."""
    world = make_world(tmp_path)
    declare_publisher(world.scratch, world.child)
    world.scratch.edit(
        "rpki.yaml",
        "request: publishers/acme.xml\n",
        "request: publishers/acme.xml\n    quota: {objects: 10}\n",
    )
    assert isinstance(world.issue("k1"), updown.IssueResponse)
    issued_at = world.now
    _publish(world, OBJECTS)
    return Peers(world, issued_at)


def _status(world: World, now: datetime | None = None) -> StatusReport:
    return engine.status(engine.open_workspace(world.scratch.repo), now or world.now)


def test_status_shows_the_childs_certificate_from_the_served_tree(peers_world: Peers) -> None:
    world = peers_world.world
    report = _status(world)
    (child,) = report.external_children
    cert = world.certificate("k1")
    assert (child.handle, child.ca, child.entitlement) == (HANDLE, PARENT, str(ENTITLEMENT))
    (shown,) = child.certificates
    assert (shown.key_id, shown.serial, shown.not_after) == (
        cert.key_id.hex(),
        f"{cert.serial:x}",
        cert.not_after,
    )
    assert shown.path == world.path("k1") and shown.resources == str(ENTITLEMENT)
    assert shown.renew_at == cert.not_after - timedelta(weeks=4)
    # the issue was recorded in the audit log by the responder; it is no apply
    assert child.last_exchange is not None and child.last_exchange.status == "child-issued"
    assert child.last_exchange.certificate == world.path("k1")
    assert child.last_message == peers_world.issued_at.replace(microsecond=0)
    assert child.problems == [] and report.severity == "info"
    assert report.last_apply is None, "a record of rpkictl serve was taken for an apply"


def test_a_list_query_moves_the_last_request_without_an_audit_record(peers_world: Peers) -> None:
    """A child polls with list far more often than it is issued anything: the responder does not audit a
    list, so the replay-protection file says when the child was last heard from."""
    world = peers_world.world
    before = _status(world).external_children[0]
    assert isinstance(world.send(updown.ListQuery()), updown.ListResponse)
    after = _status(world).external_children[0]
    assert after.last_exchange == before.last_exchange  # nothing new in the audit log
    assert after.last_message == world.now.replace(microsecond=0) > peers_world.issued_at
    assert after.last_exchange is not None  # the audit log has the server's clock, the message the child's
    assert after.last_request == max(after.last_message, after.last_exchange.time)
    assert peers.REPLAY_FILE == parent.REPLAY_FILE


def test_the_publishers_use_of_its_quota_and_last_publication(peers_world: Peers) -> None:
    world = peers_world.world
    report = _status(world)
    (publisher,) = report.publishers
    assert (publisher.handle, publisher.objects, publisher.bytes) == (HANDLE, 3, SIZE)
    assert (publisher.quota_objects, publisher.quota_bytes) == (10, 100 * 1024 * 1024)
    assert publisher.quota_used_pct == 30.0 and publisher.problems == []
    published = [
        e for e in audit.read(world.scratch.root / "published" / "audit.jsonl") if e.record.get("publisher")
    ]
    assert publisher.last_publication == published[-1].time
    assert publisher.last_summary == "publisher acme: 3 created, 0 replaced, 0 withdrawn"


def test_a_publisher_near_or_over_its_quota_is_a_warning(peers_world: Peers) -> None:
    world = peers_world.world
    world.scratch.edit("rpki.yaml", "quota: {objects: 10}", "quota: {objects: 3}")
    (full,) = _status(world).publishers
    assert full.quota_used_pct == 100.0
    (problem,) = full.problems
    assert problem.severity == "warning" and "uses 100% of its quota: 3 of 3 objects" in problem.message
    world.scratch.edit("rpki.yaml", "quota: {objects: 3}", "quota: {objects: 2}")
    report = _status(world)
    assert "is over its quota" in report.publishers[0].problems[0].message
    assert report.severity == "warning"
    result = rpkictl("check", str(world.scratch.repo), "--now", f"{world.now:%Y-%m-%dT%H:%M:%SZ}")
    assert result.returncode == 1, result.stdout
    assert "WARNING: publisher acme: is over its quota: 3 of 2 objects" in result.stdout
    world.scratch.edit("rpki.yaml", "quota: {objects: 2}", "quota: {objects: 4}")  # 75 %: no finding
    assert _status(world).publishers[0].problems == []


def test_a_certificate_inside_its_renewal_window_is_a_finding_until_apply_renews_it(
    peers_world: Peers,
) -> None:
    world = peers_world.world
    cert = world.certificate("k1")
    late = cert.not_after - timedelta(weeks=2)
    (child,) = _status(world, late).external_children
    (problem,) = child.problems
    assert problem.severity == "warning"
    assert (
        f"certificate for key {cert.key_id.hex()} (serial {cert.serial:x}) expires in 14d" in problem.message
    )
    assert (
        "not renewed yet: 'rpkictl apply' (or the scheduled 'rpkictl reconcile') renews it" in problem.message
    )
    near = cert.not_after - timedelta(minutes=30)
    assert _status(world, near).external_children[0].problems[0].severity == "critical"
    assert world.scratch.apply(late) is not None
    (renewed,) = _status(world, late + timedelta(minutes=1)).external_children
    assert renewed.problems == [] and renewed.certificates[0].not_after > cert.not_after


def test_an_entitlement_shrunk_in_the_yaml_says_apply_reissues_it_after_approval(peers_world: Peers) -> None:
    world = peers_world.world
    world.scratch.edit(ONLINE, ENTITLEMENT_YAML, "{asn: [AS64500], ipv4: [203.0.113.0/24]}")
    (child,) = _status(world).external_children
    (problem,) = child.problems
    assert problem.severity == "warning"
    assert (
        "holds 2001:db8:8000::/36, beyond its entitlement in the YAML (AS64500; 203.0.113.0/24)"
        in problem.message
    )
    assert (
        "the next apply re-issues it with AS64500; 203.0.113.0/24, once approved (ca-shrink@acme)"
        in problem.message
    )
    result = rpkictl("check", str(world.scratch.repo), "--now", f"{world.now:%Y-%m-%dT%H:%M:%SZ}")
    assert result.returncode == 1
    assert "WARNING: child acme: its certificate for key" in result.stdout


def test_an_entitlement_grown_in_the_yaml_is_a_note_not_a_warning(peers_world: Peers) -> None:
    world = peers_world.world
    world.scratch.edit(ONLINE, "ipv4: [203.0.113.0/24]", "ipv4: [198.51.100.0/24, 203.0.113.0/24]")
    report = _status(world)
    (problem,) = report.external_children[0].problems
    assert (
        problem.severity == "info" and "entitled to 198.51.100.0/24 that its certificate" in problem.message
    )
    assert "apply does not re-issue to add resources" in problem.message
    assert report.severity == "info"
    result = rpkictl("check", str(world.scratch.repo), "--now", f"{world.now:%Y-%m-%dT%H:%M:%SZ}")
    assert result.returncode == 0, result.stdout


def test_a_child_that_never_asked_is_noted(tmp_path: Path) -> None:
    world = make_world(tmp_path)
    (child,) = _status(world).external_children
    assert child.certificates == [] and child.last_request is None and child.last_exchange is None
    (problem,) = child.problems
    assert problem.severity == "info" and "rpkictl oob parent-response online acme" in problem.message


def test_json_table_and_html_render_the_peers(peers_world: Peers) -> None:
    world = peers_world.world
    result = rpkictl(
        "status", str(world.scratch.repo), "--format", "json", "--now", f"{world.now:%Y-%m-%dT%H:%M:%SZ}"
    )
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert (
        document["external_children"][0]["certificates"][0]["key_id"] == world.certificate("k1").key_id.hex()
    )
    assert document["publishers"][0]["objects"] == 3
    jsonschema.validate(document, json.loads(SCHEMA.read_text()))
    report = StatusReport.model_validate(document)
    page = html.render(report)
    assert f'id="child-{HANDLE}"' in page and f'id="publisher-{HANDLE}"' in page and "30.0%" in page
    console = Console(record=True, width=160, file=io.StringIO())
    console.print(table.render(report, console.width))
    text = console.export_text()
    assert "External children (RFC 6492)" in text and "Publishers (RFC 8181)" in text
    assert "3 of 10" in text and "30.0%" in text and world.certificate("k1").key_id.hex()[:12] in text


def _samples(exposition: str) -> dict[str, float]:
    return {
        line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1])
        for line in exposition.splitlines()
        if line and not line.startswith("#")
    }


def test_prometheus_exposition_of_the_peers(peers_world: Peers, tmp_path: Path) -> None:
    world = peers_world.world
    report = _status(world)
    exposition = prometheus.render(report)
    samples = _samples(exposition)
    cert = world.certificate("k1")
    child = f'ca="{PARENT}",child="{HANDLE}"'
    assert samples[f"rpki_external_child_certificates{{{child}}}"] == 1
    key = f'{child},key_id="{cert.key_id.hex()}"'
    assert (
        samples[f"rpki_external_child_certificate_expiry_timestamp_seconds{{{key}}}"]
        == cert.not_after.timestamp()
    )
    heard = report.external_children[0].last_request
    assert heard is not None
    assert samples[f"rpki_external_child_last_request_timestamp_seconds{{{child}}}"] == heard.timestamp()
    publisher = f'publisher="{HANDLE}"'
    assert samples[f"rpki_publisher_objects{{{publisher}}}"] == 3
    assert samples[f"rpki_publisher_bytes{{{publisher}}}"] == SIZE
    assert samples[f"rpki_publisher_quota_objects{{{publisher}}}"] == 10
    assert samples[f"rpki_publisher_quota_bytes{{{publisher}}}"] == 100 * 1024 * 1024
    assert samples[f"rpki_publisher_quota_used_ratio{{{publisher}}}"] == pytest.approx(0.3)
    last = report.publishers[0].last_publication
    assert last is not None
    assert samples[f"rpki_publisher_last_publication_timestamp_seconds{{{publisher}}}"] == last.timestamp()
    promtool = find_tool("promtool")
    if promtool is None:
        missing_tool("promtool is not installed", "the Prometheus exposition checks")
    textfile = tmp_path / "rpki.prom"
    textfile.write_text(exposition)
    with textfile.open() as handle:
        checked = subprocess.run(
            [promtool, "check", "metrics"], stdin=handle, capture_output=True, text=True, check=False
        )
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_no_peer_metrics_without_peers(tmp_path: Path) -> None:
    world = make_world(tmp_path)
    world.scratch.edit(ONLINE, f"  - handle: {HANDLE}\n", "  - handle: removed\n")
    (world.scratch.repo / "cas" / "online.yaml").write_text(
        (world.scratch.repo / "cas" / "online.yaml").read_text().split("children:\n")[0]
    )
    exposition = prometheus.render(_status(world))
    assert "rpki_external_child" not in exposition and "rpki_publisher" not in exposition
    assert "rpki_ca_info" in exposition


def test_a_removed_publishers_objects_wait_for_a_reviewed_apply(peers_world: Peers) -> None:
    world = peers_world.world
    world.scratch.edit(
        "rpki.yaml",
        "publishers:\n  - handle: acme\n    request: publishers/acme.xml\n    quota: {objects: 10}\n",
        "",
    )
    report = _status(world)
    assert report.publishers == []
    (problem,) = [p for p in report.problems if p.message.startswith("publishers:")]
    assert (
        "1 change between the desired state and what is published (1 need a reviewed apply)"
        in problem.message
    )
    assert report.gates == ["publisher-remove@acme"]
