"""The RFC 6492 and RFC 8181 clients over real HTTP on 127.0.0.1, against a parent and a publication
server played by the product's own codecs and signed with the peer's own BPKI identity: every test runs
the whole sign → POST → verify → replay check → decode path."""

from __future__ import annotations

import http.server
import ipaddress
import re
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from reconciler.protocol import bpki, csr, oob, publication, sigmsg, updown
from reconciler.protocol.client import (
    MAX_RESPONSE_BYTES,
    PublicationClient,
    PublicationRefused,
    TransportError,
    UpDownClient,
    UpDownRefused,
    post,
)
from reconciler.protocol.errors import CmsError, ProtocolError, ReplayError
from reconciler.protocol.replay import ReplayGuard
from reconciler.signers import FileSigner

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "real-world" / "protocols" / "rpki-rs"
CHILD, PARENT, PUBLISHER = "acme", "registry", "acme-pub"
SIA_BASE = "rsync://repo.example/repo/acme/"


@dataclass(frozen=True)
class Party:
    signer: FileSigner
    key: bytes
    identity: bpki.IdentityCertificate


@pytest.fixture(scope="module")
def parties(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Party]:
    """Our identity, the peer's, and an intruder's: three BPKI keys in a file signer."""
    signer = FileSigner(tmp_path_factory.mktemp("keys"))
    found = {}
    for owner in ("acme", "registry", "intruder"):
        key = signer.create_key(bpki.identity_label(owner))
        found[owner] = Party(signer, key, bpki.create_identity(signer, key, datetime.now(UTC)))
    return found


def real_list_response() -> updown.ListResponse:
    """APNIC's list_response to a Krill child (one class, five ASNs, IPv4 and IPv6, one certificate)."""
    der = (FIXTURES / "rfc6492" / "apnic-response.der").read_bytes()
    payload = updown.parse(sigmsg.econtent(der, "apnic-response.der"), "apnic-response.der").payload
    assert isinstance(payload, updown.ListResponse) and payload.classes
    return payload


@dataclass
class Answer:
    """What the test peer sends back: a status, headers, a body, and how slowly."""

    body: bytes = b""
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    trickle: float = 0.0  # seconds between 1 KiB pieces
    declare_length: bool = True


@dataclass
class Peer:
    """A parent and a publication server: verifies each query against our identity, answers through the
    product's codecs, signs with its own identity (or whatever a test makes it do instead)."""

    us: Party
    me: Party
    signs_as: Party | None = None
    signing_time: Callable[[], datetime] = lambda: datetime.now(UTC)
    updown_answer: Callable[[updown.Message], updown.Message] | None = None
    override: Callable[[str, bytes], Answer | None] = lambda path, body: None
    objects: dict[str, bytes] = field(default_factory=dict)
    requests: list[tuple[str, str]] = field(default_factory=list)
    query_times: list[datetime] = field(default_factory=list)
    sent: list[bytes] = field(default_factory=list)

    def answer(self, path: str, content_type: str, body: bytes) -> Answer:
        self.requests.append((path, content_type))
        special = self.override(path, body)
        if special is not None:
            return special
        verified = sigmsg.verify(body, self.us.identity, datetime.now(UTC), "the query")
        self.query_times.append(verified.signing_time)
        if path.startswith("/rfc6492/"):
            assert content_type == updown.CONTENT_TYPE
            xml = updown.render(self.updown(updown.parse(verified.xml, "the query")))
        else:
            assert content_type == publication.CONTENT_TYPE
            xml = publication.render(self.publish(publication.parse_query(verified.xml, "the query")))
        return Answer(self.sign(xml))

    def sign(self, xml: bytes) -> bytes:
        party = self.signs_as or self.me
        signed = sigmsg.sign(xml, party.signer, party.key, party.identity, self.signing_time())
        self.sent.append(signed)
        return signed

    def updown(self, query: updown.Message) -> updown.Message:
        assert (query.sender, query.recipient) == (CHILD, PARENT)
        if self.updown_answer is not None:
            return self.updown_answer(query)
        payload: updown.Payload
        if isinstance(query.payload, updown.ListQuery):
            payload = real_list_response()
        elif isinstance(query.payload, updown.IssueRequest):
            issued = real_list_response().classes[0]
            payload = updown.IssueResponse(issued)
        else:
            assert isinstance(query.payload, updown.RevokeRequest)
            payload = updown.RevokeResponse(query.payload.class_name, query.payload.ski)
        return updown.Message(PARENT, CHILD, payload)

    def publish(self, query: publication.QueryMessage) -> publication.ReplyMessage:
        held = {uri: publication.object_hash(der) for uri, der in self.objects.items()}
        if isinstance(query, publication.ListQuery):
            return publication.ListReply(
                tuple(publication.ListEntry(uri, digest) for uri, digest in sorted(held.items()))
            )
        errors = []
        for pdu in query.pdus:
            if pdu.hash is None and pdu.uri in held:
                errors.append(
                    publication.ReportError("object_already_present", pdu.tag, None, publication.pdu_xml(pdu))
                )
            elif pdu.hash is not None and held.get(pdu.uri) != pdu.hash:
                errors.append(publication.ReportError("no_object_matching_hash", pdu.tag))
        if errors:
            return publication.ErrorReply(tuple(errors))
        for pdu in query.pdus:
            if isinstance(pdu, publication.Withdraw):
                del self.objects[pdu.uri]
            else:
                self.objects[pdu.uri] = pdu.der
        return publication.SuccessReply()


class Handler(http.server.BaseHTTPRequestHandler):
    peer: Peer

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        answer = self.server.peer.answer(  # type: ignore[attr-defined]
            self.path, self.headers.get("Content-Type", ""), body
        )
        time.sleep(answer.delay)
        try:
            self.send_response(answer.status)
            for name, value in answer.headers.items():
                self.send_header(name, value)
            if answer.declare_length:
                self.send_header("Content-Length", str(len(answer.body)))
            self.end_headers()
            size = 1024 if answer.trickle else max(len(answer.body), 1)
            for start in range(0, len(answer.body), size):
                self.wfile.write(answer.body[start : start + size])
                self.wfile.flush()
                time.sleep(answer.trickle)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up, as it should

    def log_message(self, format: str, *args: object) -> None:
        pass


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, peer: Peer, tls: ssl.SSLContext | None = None) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.peer = peer
        if tls is not None:
            self.socket = tls.wrap_socket(self.socket, server_side=True)
        self.scheme = "https" if tls is not None else "http"

    @property
    def base(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.server_address[1]}"


@contextmanager
def serving(peer: Peer, tls: ssl.SSLContext | None = None) -> Iterator[Server]:
    server = Server(peer, tls)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@pytest.fixture
def peer(parties: dict[str, Party]) -> Peer:
    return Peer(us=parties["acme"], me=parties["registry"])


@pytest.fixture
def server(peer: Peer) -> Iterator[Server]:
    with serving(peer) as running:
        yield running


def parent_client(
    server: Server,
    us: Party,
    tmp_path: Path,
    *,
    timeout: float = 240.0,
    limit: int = MAX_RESPONSE_BYTES,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> UpDownClient:
    parent = oob.ParentResponse(
        service_uri=f"{server.base}/rfc6492/{CHILD}",
        parent_handle=PARENT,
        child_handle=CHILD,
        identity=server.peer.me.identity.der,
    )
    return UpDownClient(
        parent,
        us.signer,
        us.key,
        us.identity,
        ReplayGuard(tmp_path / "replay.json"),
        timeout=timeout,
        limit=limit,
    )


def repository_client(server: Server, us: Party, tmp_path: Path) -> PublicationClient:
    repository = oob.RepositoryResponse(
        service_uri=f"{server.base}/rfc8181/{PUBLISHER}",
        publisher_handle=PUBLISHER,
        sia_base=SIA_BASE,
        identity=server.peer.me.identity.der,
    )
    return PublicationClient(
        repository, us.signer, us.key, us.identity, ReplayGuard(tmp_path / "replay.json")
    )


# -- RFC 6492 ---------------------------------------------------------------------------------------


def test_list_issue_and_revoke(server: Server, parties: dict[str, Party], tmp_path: Path) -> None:
    moment = datetime.now(UTC).replace(microsecond=0)
    client = parent_client(server, parties["acme"], tmp_path, now=lambda: moment)
    assert client.list() == real_list_response()
    request = updown.IssueRequest(
        "IANA",
        csr.build_ca_request(
            parties["acme"].signer,
            parties["acme"].key,
            "rsync://repo.example/repo/acme/",
            "rsync://repo.example/repo/acme/acme.mft",
            None,
        ),
    )
    issued = client.issue(request)
    assert issued.resource_class.class_name == "IANA"
    ski = bytes(range(20))
    assert client.revoke("IANA", ski) == updown.RevokeResponse("IANA", ski)
    assert server.peer.requests == [(f"/rfc6492/{CHILD}", updown.CONTENT_TYPE)] * 3
    # three queries in the same second are signed a second apart, so that a parent guarding against
    # replay takes them all
    assert server.peer.query_times == [moment + timedelta(seconds=n) for n in range(3)]


def test_an_issue_response_in_another_class_is_refused(
    server: Server, parties: dict[str, Party], tmp_path: Path
) -> None:
    client = parent_client(server, parties["acme"], tmp_path)
    with pytest.raises(ProtocolError, match="for class 'OTHER' with a certificate in class 'IANA'"):
        client.issue(updown.IssueRequest("OTHER", (FIXTURES / "drl-csr.der").read_bytes()))


def test_the_parent_signing_with_another_key_is_refused(
    server: Server, parties: dict[str, Party], tmp_path: Path
) -> None:
    server.peer.signs_as = parties["intruder"]
    with pytest.raises(CmsError, match=f"the answer of parent {PARENT}"):
        parent_client(server, parties["acme"], tmp_path).list()
    assert len(server.peer.sent) == 1  # it did answer: the answer is what was refused


def test_a_replayed_answer_is_refused(server: Server, parties: dict[str, Party], tmp_path: Path) -> None:
    start = datetime.now(UTC).replace(microsecond=0)
    times = iter([start - timedelta(seconds=60), start])
    server.peer.signing_time = lambda: next(times)
    client = parent_client(server, parties["acme"], tmp_path)
    client.list()
    client.list()
    old = server.peer.sent[0]
    server.peer.override = lambda path, body: Answer(old)
    with pytest.raises(ReplayError, match="not after the last one accepted from parent:registry@http"):
        client.list()
    # a new client with the same replay record refuses it too: the record is on disk
    with pytest.raises(ReplayError):
        parent_client(server, parties["acme"], tmp_path).list()


def test_answers_signed_in_the_same_second_are_both_taken(
    server: Server, parties: dict[str, Party], tmp_path: Path
) -> None:
    moment = datetime.now(UTC).replace(microsecond=0)
    server.peer.signing_time = lambda: moment
    client = parent_client(server, parties["acme"], tmp_path)
    assert client.list() == client.list()
    assert (
        ReplayGuard(tmp_path / "replay.json").last(f"parent:{PARENT}@{server.base}/rfc6492/{CHILD}") == moment
    )


ERROR_CASES = [
    (1101, "try later", "retry", 'already processing request): "try later"'),
    (1202, None, "drop-class", "no resources allocated in resource class)"),
    (1302, None, "done", "revoke - no such key"),
    (2001, None, "error", "Internal Server Error"),
]


@pytest.mark.parametrize("case", ERROR_CASES, ids=[str(case[0]) for case in ERROR_CASES])
def test_an_error_response_is_refused_with_its_kind(
    server: Server, parties: dict[str, Party], tmp_path: Path, case: tuple[int, str | None, str, str]
) -> None:
    status, description, kind, said = case
    server.peer.updown_answer = lambda query: updown.Message(
        PARENT, CHILD, updown.ErrorResponse(status, description)
    )
    with pytest.raises(UpDownRefused) as refused:
        parent_client(server, parties["acme"], tmp_path).list()
    assert (refused.value.status, refused.value.kind, refused.value.description) == (
        status,
        kind,
        description,
    )
    assert f"parent {PARENT} refused the request: error {status} (" in str(refused.value)
    assert said in str(refused.value)


def test_an_error_response_without_sender_and_recipient_is_read(
    server: Server, parties: dict[str, Party], tmp_path: Path
) -> None:
    """LACNIC sends error_response without sender and recipient."""
    server.peer.updown_answer = lambda query: updown.Message("", "", updown.ErrorResponse(2001))
    with pytest.raises(UpDownRefused) as refused:
        parent_client(server, parties["acme"], tmp_path).list()
    assert refused.value.kind == "error"


@pytest.mark.parametrize(("sender", "recipient"), [(PARENT, "someone-else"), ("other-parent", CHILD)])
def test_an_answer_between_other_handles_is_refused(
    server: Server, parties: dict[str, Party], tmp_path: Path, sender: str, recipient: str
) -> None:
    server.peer.updown_answer = lambda query: updown.Message(sender, recipient, real_list_response())
    with pytest.raises(ProtocolError, match=f"not from '{PARENT}' to '{CHILD}'"):
        parent_client(server, parties["acme"], tmp_path).list()


def test_an_answer_of_the_wrong_type_is_refused(
    server: Server, parties: dict[str, Party], tmp_path: Path
) -> None:
    server.peer.updown_answer = lambda query: updown.Message(
        PARENT, CHILD, updown.RevokeResponse("IANA", bytes(20))
    )
    with pytest.raises(ProtocolError, match="answered a ListQuery with a RevokeResponse"):
        parent_client(server, parties["acme"], tmp_path).list()


def test_a_revocation_of_another_key_is_refused(
    server: Server, parties: dict[str, Party], tmp_path: Path
) -> None:
    server.peer.updown_answer = lambda query: updown.Message(
        PARENT, CHILD, updown.RevokeResponse("IANA", bytes(20))
    )
    with pytest.raises(ProtocolError, match="with one of key 0000"):
        parent_client(server, parties["acme"], tmp_path).revoke("IANA", bytes(range(20)))


# -- RFC 8181 ---------------------------------------------------------------------------------------


def test_list_delta_send_reconciles_the_repository(
    server: Server, parties: dict[str, Party], tmp_path: Path
) -> None:
    client = repository_client(server, parties["acme"], tmp_path)
    assert client.list() == {}
    desired = {
        SIA_BASE + "a.roa": b"first",
        SIA_BASE + "acme.mft": b"manifest",
        SIA_BASE + "acme.crl": b"crl",
    }
    client.send(publication.delta(client.list(), desired))
    assert server.peer.objects == desired
    desired = {SIA_BASE + "a.roa": b"first, again", SIA_BASE + "acme.mft": b"manifest"}
    client.send(publication.delta(client.list(), desired))
    assert server.peer.objects == desired
    assert client.list() == {uri: publication.object_hash(der) for uri, der in desired.items()}
    assert {content_type for _, content_type in server.peer.requests} == {publication.CONTENT_TYPE}


def test_nothing_to_send_sends_nothing(server: Server, parties: dict[str, Party], tmp_path: Path) -> None:
    client = repository_client(server, parties["acme"], tmp_path)
    client.send(())
    assert server.peer.requests == []


def test_an_object_outside_the_sia_base_is_not_sent(
    server: Server, parties: dict[str, Party], tmp_path: Path
) -> None:
    client = repository_client(server, parties["acme"], tmp_path)
    with pytest.raises(ValueError, match=re.escape("rsync://repo.example/repo/other/x.roa is outside")):
        client.send([publication.Publish("rsync://repo.example/repo/other/x.roa", b"x")])
    assert server.peer.requests == []


def test_an_error_reply_is_refused_with_its_reports(
    server: Server, parties: dict[str, Party], tmp_path: Path
) -> None:
    uri = SIA_BASE + "a.roa"
    server.peer.objects[uri] = b"there already"
    client = repository_client(server, parties["acme"], tmp_path)
    pdu = publication.Publish(uri, b"new", tag="t1")
    with pytest.raises(PublicationRefused) as refused:
        client.send([pdu])
    assert refused.value.errors == (
        publication.ReportError("object_already_present", "t1", None, publication.pdu_xml(pdu)),
    )
    assert f"the repository of {PUBLISHER} refused the publication: object_already_present (tag t1)" in str(
        refused.value
    )
    assert server.peer.objects == {uri: b"there already"}


def test_the_repository_signing_with_another_key_is_refused(
    server: Server, parties: dict[str, Party], tmp_path: Path
) -> None:
    server.peer.signs_as = parties["intruder"]
    with pytest.raises(CmsError, match=f"the answer of the repository of {PUBLISHER}"):
        repository_client(server, parties["acme"], tmp_path).list()


# -- HTTP ---------------------------------------------------------------------------------------------


def test_http_500_is_a_transport_error(server: Server, parties: dict[str, Party], tmp_path: Path) -> None:
    server.peer.override = lambda path, body: Answer(b"database is down", status=500)
    with pytest.raises(TransportError) as failed:
        parent_client(server, parties["acme"], tmp_path).list()
    text = str(failed.value)
    assert text.startswith(f"{server.base}/rfc6492/{CHILD}: HTTP 500")
    assert "the server said: database is down" in text


def test_a_redirect_is_not_followed(server: Server, parties: dict[str, Party], tmp_path: Path) -> None:
    elsewhere = f"{server.base}/elsewhere"
    server.peer.override = lambda path, body: (
        None if path == "/elsewhere" else Answer(status=302, headers={"Location": elsewhere})
    )
    with pytest.raises(
        TransportError, match=f"HTTP 302 Found, a redirect to '{elsewhere}' that is not followed"
    ):
        repository_client(server, parties["acme"], tmp_path).list()
    assert [path for path, _ in server.peer.requests] == [f"/rfc8181/{PUBLISHER}"]


@pytest.mark.parametrize("declare_length", [True, False])
def test_an_oversized_answer_is_refused_while_it_streams(
    server: Server, parties: dict[str, Party], tmp_path: Path, declare_length: bool
) -> None:
    server.peer.override = lambda path, body: Answer(b"x" * (4 << 20), declare_length=declare_length)
    client = parent_client(server, parties["acme"], tmp_path, limit=1 << 20)
    with pytest.raises(TransportError, match="the answer is larger than 1048576 bytes"):
        client.list()


def test_a_server_that_does_not_answer_times_out(
    server: Server, parties: dict[str, Party], tmp_path: Path
) -> None:
    server.peer.override = lambda path, body: Answer(b"late", delay=3.0)
    started = time.monotonic()
    with pytest.raises(TransportError, match=r"no answer within 0.5s \(ReadTimeout\)"):
        parent_client(server, parties["acme"], tmp_path, timeout=0.5).list()
    assert time.monotonic() - started < 2.5


def test_a_server_that_trickles_times_out(server: Server, parties: dict[str, Party], tmp_path: Path) -> None:
    """Each piece comes within the read timeout, the whole answer does not come within the timeout."""
    server.peer.override = lambda path, body: Answer(b"x" * 20 * 1024, trickle=0.1, declare_length=False)
    started = time.monotonic()
    with pytest.raises(TransportError, match=re.escape("did not arrive within 0.5s")):
        parent_client(server, parties["acme"], tmp_path, timeout=0.5).list()
    assert time.monotonic() - started < 1.8


def test_https_without_a_trusted_certificate(parties: dict[str, Party], tmp_path: Path) -> None:
    """A self-signed TLS certificate is no obstacle: the CMS signature is what is checked."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "not trusted by anyone")])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now - timedelta(hours=1))
        .not_valid_after(now + timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False
        )
        .sign(key, hashes.SHA256())
    )
    (tmp_path / "tls.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        + certificate.public_bytes(serialization.Encoding.PEM)
    )
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(tmp_path / "tls.pem")
    with serving(Peer(us=parties["acme"], me=parties["registry"]), tls) as server:
        assert server.base.startswith("https://")
        assert parent_client(server, parties["acme"], tmp_path).list() == real_list_response()


def test_post_refuses_other_schemes_and_names_the_uri() -> None:
    with pytest.raises(TransportError, match="'rsync://h/x' is not an http:// or https:// URI"):
        post("rsync://h/x", updown.CONTENT_TYPE, b"", timeout=1, limit=10)


def test_post_to_a_closed_port_is_a_transport_error() -> None:
    with serving(Peer.__new__(Peer)) as server:  # bound, then closed: nothing listens on its port
        uri = f"{server.base}/rfc6492/{CHILD}"
    with pytest.raises(TransportError, match=f"^{uri}: "):
        post(uri, updown.CONTENT_TYPE, b"x", timeout=2, limit=10)


def test_post_sends_the_content_type_and_the_body(server: Server) -> None:
    seen: list[bytes] = []
    server.peer.override = lambda path, body: seen.append(body) or Answer(b"fine")  # type: ignore[func-returns-value]
    answer = post(f"{server.base}/x", publication.CONTENT_TYPE, b"signed", timeout=5, limit=4)
    assert answer == b"fine" and seen == [b"signed"]
    assert server.peer.requests == [("/x", publication.CONTENT_TYPE)]
