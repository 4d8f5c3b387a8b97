"""The exchange with an external parent when it does not go well: a parent that answers RFC 6492 error
codes (signed, over real HTTP on loopback), one that does not answer at all, the schedule and back-off
between attempts, and the kept state that records them."""

from __future__ import annotations

import dataclasses
import http.server
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from reconciler import engine
from reconciler.protocol import bpki, oob, sigmsg, updown
from reconciler.signers import FileSigner
from reconciler.upstream import parent as upstream
from reconciler.upstream import state as stored
from reconciler.upstream.errors import ParentError
from reconciler.upstream.state import Certified, LastError, PeerRecord, UpstreamState
from tests.upstream.child_world import CHILD_SETTINGS, ROAS, ChildCa

NOW = datetime.now(UTC).replace(microsecond=0)


class _ErrorParent(http.server.BaseHTTPRequestHandler):
    """Answers every up-down query with a signed error_response of ``status``."""

    status = 1101
    signer: FileSigner
    key: bytes
    identity: bpki.IdentityCertificate
    asked = 0

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        type(self).asked += 1
        xml = updown.render(updown.Message("registry", "acme", updown.ErrorResponse(self.status, "busy now")))
        body = sigmsg.sign(xml, self.signer, self.key, self.identity, datetime.now(UTC))
        self.send_response(200)
        self.send_header("Content-Type", updown.CONTENT_TYPE)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        return


@pytest.fixture
def error_parent(tmp_path: Path) -> Iterator[tuple[str, type[_ErrorParent]]]:
    signer = FileSigner(tmp_path / "parent-keys")
    key = signer.create_key(bpki.identity_label("registry"))
    handler = type("Handler", (_ErrorParent,), {})
    handler.signer, handler.key = signer, key
    handler.identity = bpki.create_identity(signer, key, NOW)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/up-down/acme", handler
    finally:
        server.shutdown()
        server.server_close()


def child_of(tmp_path: Path, service_uri: str, identity: bytes) -> ChildCa:
    """A child desired state whose parent_response names ``service_uri`` and the parent ``identity``."""
    child = ChildCa(tmp_path / "child")
    child.write("rpki.yaml", CHILD_SETTINGS)
    response = oob.ParentResponse(service_uri, "registry", "acme", identity)
    child.write("parents/online.xml", oob.render(response))
    repository = oob.RepositoryResponse(
        "http://127.0.0.1:9/rfc8181/acme", "acme", "rsync://rpki.example.net/repo/acme/", identity
    )
    child.write("repositories/online.xml", oob.render(repository))
    child.write(
        "cas/acme.yaml",
        "name: acme\nparent: {response: parents/online.xml}\n"
        "repository: {response: repositories/online.xml}\n"
        'resources: {asn: [AS64500], ipv4: [203.0.113.0/24], ipv6: ["2001:db8:8000::/36"]}\n' + ROAS,
    )
    return child


def refresh(child: ChildCa, now: datetime = NOW) -> upstream.Exchange:
    desired = engine.load_desired(child.repo)
    root = desired.external_root
    assert root is not None
    return upstream.refresh(desired, root, FileSigner(child.root / "keys"), now, timeout=10)


def test_try_again_later_is_recorded_and_put_off_not_taken_as_lost_resources(
    tmp_path: Path, error_parent: tuple[str, type[_ErrorParent]]
) -> None:
    url, handler = error_parent
    child = child_of(tmp_path, url, handler.identity.der)
    with pytest.raises(ParentError, match="error 1101") as raised:
        refresh(child)
    assert raised.value.code == 1101
    assert "asked again later" in str(raised.value)
    kept = stored.load(child.root / "published", "acme")
    assert kept.parent.failures == 1 and kept.parent.last_error is not None
    assert kept.parent.last_error.code == 1101 and "busy now" in kept.parent.last_error.text
    assert kept.parent.next_contact == NOW + upstream.RETRY_FIRST
    assert kept.certified is None and kept.list_response is None  # nothing inferred from a failure

    # a second failure in a row doubles the wait
    with pytest.raises(ParentError):
        refresh(child, NOW + timedelta(minutes=6))
    kept = stored.load(child.root / "published", "acme")
    assert kept.parent.failures == 2
    assert kept.parent.next_contact == NOW + timedelta(minutes=6) + 2 * upstream.RETRY_FIRST


def test_a_failure_with_a_good_certificate_kept_is_a_warning(
    tmp_path: Path, error_parent: tuple[str, type[_ErrorParent]]
) -> None:
    url, handler = error_parent
    child = child_of(tmp_path, url, handler.identity.der)
    # any currently valid certificate will do as "the one the parent issued before": the parent's own
    certified = Certified("DEFAULT", "rsync://registry.example.net/repo/acme.cer", _a_certificate(tmp_path))
    stored.save(child.root / "published", "acme", UpstreamState(certified=certified))
    handler.status = 2001
    exchange = refresh(child)
    (warning,) = exchange.warnings
    assert "could not reach parent registry" in warning and "error 2001" in warning
    assert "signing under the certificate it issued before" in warning
    assert exchange.state.certified == certified  # kept as it was


def test_a_dropped_class_says_what_to_do(
    tmp_path: Path, error_parent: tuple[str, type[_ErrorParent]]
) -> None:
    url, handler = error_parent
    handler.status = 1201
    child = child_of(tmp_path, url, handler.identity.der)
    with pytest.raises(ParentError, match="check the resources of your account"):
        refresh(child)


def test_an_unreachable_parent_is_recorded_without_a_code(tmp_path: Path) -> None:
    signer = FileSigner(tmp_path / "parent-keys")
    key = signer.create_key(bpki.identity_label("registry"))
    identity = bpki.create_identity(signer, key, NOW)
    child = child_of(tmp_path, "http://127.0.0.1:9/up-down/acme", identity.der)  # port 9: nobody listens
    with pytest.raises(ParentError, match="no certificate from parent registry"):
        refresh(child)
    kept = stored.load(child.root / "published", "acme")
    assert kept.parent.last_error is not None and kept.parent.last_error.code is None


def test_the_schedule_jitter_and_back_off() -> None:
    assert upstream.next_contact(NOW, lambda: 0.0) == NOW + upstream.REFRESH
    assert upstream.next_contact(NOW, lambda: 1.0) == NOW + upstream.REFRESH * 1.25
    assert [upstream.retry_after(n) for n in (1, 2, 3)] == [timedelta(minutes=m) for m in (5, 10, 20)]
    assert upstream.retry_after(30) == upstream.RETRY_MAX == timedelta(hours=6)


def test_when_the_loop_asks_the_parent(tmp_path: Path) -> None:
    der = _a_certificate(tmp_path)
    certified = Certified("DEFAULT", "rsync://registry.example.net/repo/acme.cer", der)
    fine = UpstreamState(parent=PeerRecord(NOW, NOW, None, 0, NOW + timedelta(hours=1)), certified=certified)
    renew = timedelta(weeks=4)
    assert upstream.due(fine, NOW + timedelta(minutes=30), renew) is None
    assert upstream.due(fine, NOW + timedelta(hours=2), renew) is not None
    # a certificate that ends within the renewal margin is asked about before the hour is up
    assert upstream.due(fine, NOW + timedelta(minutes=30), timedelta(weeks=52 * 10)) is not None
    failing = dataclasses.replace(
        fine,
        parent=fine.parent.failed(NOW, LastError("down", NOW), NOW + timedelta(minutes=5)),
        certified=None,
    )
    assert upstream.due(failing, NOW + timedelta(minutes=1), renew) is None
    assert upstream.due(failing, NOW + timedelta(minutes=6), renew) is not None


def test_the_kept_state_round_trips_and_a_damaged_file_is_named(tmp_path: Path) -> None:
    certified = Certified("DEFAULT", "rsync://registry.example.net/repo/acme.cer", b"\x30\x03\x02\x01\x01")
    state = UpstreamState(
        parent=PeerRecord(NOW, NOW, LastError("busy", NOW, 1101), 2, NOW + timedelta(minutes=10)),
        list_response=b"<message/>",
        listed_at=NOW,
        certified=certified,
    )
    stored.save(tmp_path, "acme", state)
    assert stored.load(tmp_path, "acme") == state
    stored.path(tmp_path, "acme").write_text("{not json")
    with pytest.raises(stored.StateError, match=r"upstream/acme\.json is damaged"):
        stored.load(tmp_path, "acme")


def _a_certificate(tmp_path: Path) -> bytes:
    """A resource certificate that is valid now: the bundled example's trust anchor, applied here."""
    from tests.helpers import scratch_copy  # noqa: PLC0415 - only these tests need an applied example

    scratch = scratch_copy(tmp_path / "example")
    scratch.apply(NOW)
    return (scratch.rsync / "ta.cer").read_bytes()
