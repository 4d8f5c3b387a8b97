"""A real ``rpkictl serve`` on 127.0.0.1 under abuse: keys nobody declared, replays, a publisher
writing outside its directory, a bad hash half-way through a message, oversized and stalled requests,
and a hundred clients at once. Every refusal carries the right code -- an RFC 8181 ``report_error``
code, or HTTP 400 where an RFC 6492 message cannot be answered (its CMS does not verify, or it is a
replay) -- and nothing refused changes what relying parties fetch (the rsync tree, the RRDP serial).

One server and one repository serve every test here (the example with RRDP, 50 peers that are both
an external child of ``online`` and a publisher, and ``acme`` and ``bob``, whose messages the tests
sign themselves); each test compares the served state before and after what it does.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from reconciler import engine, exchange, identity
from reconciler.protocol import bpki, csr, oob, sigmsg, updown
from reconciler.protocol import publication as rfc8181
from reconciler.published import read
from reconciler.resources import Resources
from reconciler.signers import open_signers
from tests.helpers import Scratch, scratch_copy
from tests.publish.test_rrdp import notification, snapshot_files, with_rrdp
from tests.serve.remote_child import RemoteChild, ServeProcess, serve_process

BASE = "rsync://rpki.example.net/repo/"
PARENT = "online"
CROWD = 50  # peers, each with a client of each protocol: 100 clients at once
MAX_UPDOWN = 64 * 1024
MAX_PUBLICATION = 1024 * 1024
#: Seconds a connection may stay silent: the default, since a hundred client threads in this process
#: share one interpreter on a busy machine, and one of them may wait that long for its turn between
#: connecting and sending (it would be dropped as silent). Nothing here waits for this time-out: the
#: stalled-request test runs its own server with a short one.
CHANNEL_TIMEOUT = 30
STALL_TIMEOUT = 4


def now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def entitlement(index: int) -> Resources:
    return Resources.parse([], [f"203.0.113.{index * 4}/30"], [])


@dataclass
class Raw:
    """A declared peer whose messages the test signs itself (at times that only go up) and posts as
    they are, so that it can send them twice, or send what the protocol clients refuse to send."""

    handle: str
    peer: RemoteChild
    last: datetime

    def sign(self, xml: bytes, at: datetime | None = None) -> bytes:
        self.last = at or max(now(), self.last + timedelta(seconds=1))
        return sigmsg.sign(xml, self.peer.signer, self.peer.key, self.peer.identity, self.last)

    def updown(self, payload: updown.Payload) -> bytes:
        return self.sign(updown.render(updown.Message(self.handle, PARENT, payload)))

    def publication(self, *pdus: rfc8181.Pdu) -> bytes:
        return self.sign(rfc8181.render(rfc8181.Query(pdus) if pdus else rfc8181.ListQuery()))


@dataclass
class Served:
    """The world of this module: the repository, the server and its peers."""

    scratch: Scratch
    server: ServeProcess
    parent: bpki.IdentityCertificate  # online's BPKI identity, which signs RFC 6492 answers
    repository: bpki.IdentityCertificate  # the publication server's
    acme: Raw
    bob: Raw
    crowd: list[RemoteChild]

    def post(self, protocol: str, handle: str, body: bytes, *, url: str | None = None) -> httpx.Response:
        kind = updown.CONTENT_TYPE if protocol == "rfc6492" else rfc8181.CONTENT_TYPE
        return httpx.post(
            f"{url or self.server.url}/{protocol}/{handle}",
            content=body,
            headers={"Content-Type": kind},
            timeout=60,
        )

    def updown_answer(self, response: httpx.Response, recipient: str) -> updown.Payload:
        assert response.status_code == 200, response.text
        verified = sigmsg.verify(response.content, self.parent, now(), "the parent's answer")
        message = updown.parse(verified.xml, "the parent's answer")
        assert (message.sender, message.recipient) == (PARENT, recipient)
        return message.payload

    def publication_answer(self, response: httpx.Response) -> rfc8181.ReplyMessage:
        assert response.status_code == 200, response.text
        assert response.headers["content-type"] == rfc8181.CONTENT_TYPE
        verified = sigmsg.verify(response.content, self.repository, now(), "the repository's answer")
        return rfc8181.parse_reply(verified.xml, "the repository's answer")

    def refused(self, response: httpx.Response, *codes: str) -> tuple[rfc8181.ReportError, ...]:
        """The signed report_errors of a refused publication, with exactly ``codes``."""
        reply = self.publication_answer(response)
        assert isinstance(reply, rfc8181.ErrorReply), reply
        assert [error.code for error in reply.errors] == list(codes), reply
        return reply.errors

    def state(self) -> tuple[Path, dict[str, bytes], int]:
        """What relying parties fetch: the rsync tree served (its generation and files) and the RRDP
        serial."""
        published = read(self.scratch.rsync)
        served = {**published.files, **published.foreign}
        return self.scratch.rsync.resolve(), served, notification(self.scratch).serial

    def listed(self, raw: Raw) -> dict[str, str]:
        """What the repository lists for the raw peer (URI -> hash)."""
        reply = self.publication_answer(self.post("rfc8181", raw.handle, raw.publication()))
        assert isinstance(reply, rfc8181.ListReply), reply
        return {entry.uri: entry.hash for entry in reply.entries}

    def published(self, handle: str) -> dict[str, bytes]:
        """A publisher's objects in the served rsync tree (URI -> bytes)."""
        prefix = f"publishers/{handle}/"
        return {BASE + p: d for p, d in read(self.scratch.rsync).foreign.items() if p.startswith(prefix)}


def declare_all(scratch: Scratch, peers: list[RemoteChild]) -> None:
    """Every peer an external child of ``online`` (entitled to its own /30) and a publisher."""
    children, publishers = ["children:\n"], ["publishers:\n"]
    for index, peer in enumerate(peers):
        for directory, data in (("children", peer.child_request()), ("publishers", peer.publisher_request())):
            (scratch.repo / directory).mkdir(exist_ok=True)
            (scratch.repo / directory / f"{peer.handle}.xml").write_bytes(data)
        children.append(
            f"  - handle: {peer.handle}\n    request: children/{peer.handle}.xml\n"
            f"    resources: {{ipv4: [203.0.113.{index * 4}/30]}}\n"
        )
        publishers.append(f"  - handle: {peer.handle}\n    request: publishers/{peer.handle}.xml\n")
    with (scratch.repo / "cas" / "online.yaml").open("a") as handle:
        handle.write("".join(children))
    with (scratch.repo / "rpki.yaml").open("a") as handle:
        handle.write("".join(publishers))


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    root = tmp_path_factory.mktemp("abuse")
    scratch = with_rrdp(scratch_copy(root))
    start = now()
    assert scratch.apply(start) is not None
    peers = [RemoteChild(f"c{index:02d}", root / "peers" / f"c{index:02d}", start) for index in range(CROWD)]
    acme = RemoteChild("acme", root / "peers" / "acme", start)
    bob = RemoteChild("bob", root / "peers" / "bob", start)
    declare_all(scratch, [*peers, acme, bob])
    desired = engine.load_desired(scratch.repo)
    store = identity.directory(desired)
    signer = open_signers(desired.signers, {"default"})["default"]
    _, parent = identity.ensure(signer, PARENT, store, start)
    args = (
        ("--channel-timeout", f"{CHANNEL_TIMEOUT}s", "--max-rfc6492-body", str(MAX_UPDOWN)),
        ("--max-rfc8181-body", str(MAX_PUBLICATION), "--stop-grace", "10s"),
    )
    with serve_process(scratch.repo, root / "serve.log", *args[0], *args[1]) as server:
        repository = identity.load(identity.REPOSITORY, store)
        assert repository is not None  # made by the server as it started
        ca = desired.ca(PARENT)
        for peer in peers:
            located = desired.external_child(peer.handle)
            publisher = desired.publisher(peer.handle)
            assert located is not None and publisher is not None
            peer.connect(
                oob.render(exchange.parent_response(ca, located[1], parent, server.url)),
                oob.render(exchange.repository_response(desired, publisher, repository, server.url)),
                timeout=60,
            )
        yield Served(
            scratch, server, parent, repository, Raw("acme", acme, start), Raw("bob", bob, start), peers
        )
        assert server.stop() == 0, server.logged()
    assert "Traceback" not in server.logged()


def uri(handle: str, name: str) -> str:
    return f"{BASE}publishers/{handle}/{name}"


# -- whose message is it ---------------------------------------------------------------------------------


def test_a_key_nobody_declared_is_refused_by_both_protocols(served: Served, tmp_path: Path) -> None:
    mallory = Raw("acme", RemoteChild("acme", tmp_path / "mallory", now()), now())  # acme's name, not key
    before = served.state()

    updown_refused = served.post("rfc6492", "acme", mallory.updown(updown.ListQuery()))
    listing = served.post("rfc8181", "acme", mallory.publication())
    publish = served.post("rfc8181", "acme", mallory.publication(rfc8181.Publish(uri("acme", "x.roa"), b"x")))
    stranger = served.post("rfc6492", "mallory", mallory.updown(updown.ListQuery()))
    unknown = served.post("rfc8181", "mallory", mallory.publication())

    # RFC 6492 has no error code for a message it cannot verify: HTTP 400, the reason in the log only
    assert updown_refused.status_code == 400, updown_refused.text
    assert "signature" not in updown_refused.text.lower()
    (error,) = served.refused(listing, "bad_cms_signature")
    assert error.text
    served.refused(publish, "bad_cms_signature")
    assert (stranger.status_code, unknown.status_code) == (404, 404)
    assert served.state() == before
    assert "POST /rfc6492/acme 400" in served.server.logged()


def test_a_replayed_message_is_refused_by_both_protocols(served: Served) -> None:
    acme = served.acme
    listed = acme.updown(updown.ListQuery())
    answer = served.updown_answer(served.post("rfc6492", "acme", listed), "acme")
    assert isinstance(answer, updown.ListResponse)
    again = served.post("rfc6492", "acme", listed)
    assert again.status_code == 400, again.text
    older = acme.updown(updown.ListQuery())
    newer = acme.updown(updown.ListQuery())
    assert isinstance(
        served.updown_answer(served.post("rfc6492", "acme", newer), "acme"), updown.ListResponse
    )
    late = served.post("rfc6492", "acme", older)  # signed before the last one accepted: a replay too
    assert late.status_code == 400, late.text
    logged = served.server.logged()
    assert logged.count("POST /rfc6492/acme 400") >= 2 and "not after the last one accepted" in logged

    # RFC 8181: a create accepted, then withdrawn; the create sent again must not bring it back
    target = uri("acme", "replayed.roa")
    create = acme.publication(rfc8181.Publish(target, b"a replayed object"))
    assert isinstance(served.publication_answer(served.post("rfc8181", "acme", create)), rfc8181.SuccessReply)
    withdraw = acme.publication(rfc8181.Withdraw(target, rfc8181.object_hash(b"a replayed object")))
    assert isinstance(
        served.publication_answer(served.post("rfc8181", "acme", withdraw)), rfc8181.SuccessReply
    )
    before = served.state()
    (error,) = served.refused(served.post("rfc8181", "acme", create), "permission_failure")
    assert error.text is not None and "not after the last one accepted" in error.text
    assert served.state() == before
    assert target not in served.published("acme")


# -- what may a child ask for ----------------------------------------------------------------------------


def test_a_child_gets_nothing_beyond_its_entitlement_and_nothing_of_another_child(served: Served) -> None:
    acme, bob = served.acme, served.bob
    key = acme.peer.ca_key("roll-1")
    sia = f"{BASE}publishers/acme/"
    request = csr.build_ca_request(acme.peer.signer, key, sia, f"{sia}roll-1.mft", None)
    issued = served.updown_answer(
        served.post("rfc6492", "acme", acme.updown(updown.IssueRequest(PARENT, request))), "acme"
    )
    assert isinstance(issued, updown.IssueResponse), issued
    before = served.state()

    def status(raw: Raw, payload: updown.Payload) -> int:
        answer = served.updown_answer(served.post("rfc6492", raw.handle, raw.updown(payload)), raw.handle)
        assert isinstance(answer, updown.ErrorResponse), answer
        return answer.status

    elsewhere = Resources.parse([], ["198.51.100.0/24"], [])
    # the same key asked for by another child (as if two operators shared one key pair)
    theirs = csr.build_ca_request(
        acme.peer.signer, key, f"{BASE}publishers/bob/", f"{BASE}publishers/bob/x.mft", None
    )
    assert status(acme, updown.IssueRequest("ta", request)) == 1201  # another CA's class
    assert status(acme, updown.IssueRequest(PARENT, request, elsewhere)) == 1202  # outside its entitlement
    assert status(acme, updown.IssueRequest(PARENT, b"\x30\x03\x02\x01\x00")) == 1203  # not a request
    assert status(bob, updown.IssueRequest(PARENT, theirs)) == 1204  # acme's key, certified already
    assert status(bob, updown.RevokeRequest(PARENT, acme.peer.key_id("roll-1"))) == 1302  # not bob's
    assert status(bob, updown.RevokeRequest(PARENT, bob.peer.key_id("bob-1"))) == 1302  # never certified
    assert served.state() == before


# -- what may a publisher write ------------------------------------------------------------------------


def test_a_publisher_cannot_write_outside_its_sia_base(served: Served) -> None:
    bob = served.bob
    mine = uri("bob", "mine.roa")
    if mine not in served.published("bob"):
        reply = served.publication_answer(
            served.post("rfc8181", "bob", bob.publication(rfc8181.Publish(mine, b"bob's")))
        )
        assert isinstance(reply, rfc8181.SuccessReply), reply
    ours = sorted(p for p in read(served.scratch.rsync).files if p.startswith("online/"))[0]
    before = served.state()
    acme = served.acme
    attempts: list[rfc8181.Pdu] = [
        rfc8181.Publish(f"{BASE}online/planted.roa", b"into our CA's directory", tag="ca"),
        rfc8181.Publish(f"{BASE}{ours}", b"over our CA's object", hash="00" * 32, tag="over"),
        rfc8181.Publish(uri("bob", "planted.roa"), b"into bob's", tag="bob"),
        rfc8181.Withdraw(mine, rfc8181.object_hash(b"bob's"), tag="bob-withdraw"),
        rfc8181.Publish(uri("acme", "../bob/dots.roa"), b"dot-dot", tag="dots"),
        rfc8181.Publish(f"{BASE}publishers/acmeX/x.roa", b"a sibling sharing the prefix", tag="prefix"),
    ]
    for pdu in attempts:
        (error,) = served.refused(served.post("rfc8181", "acme", acme.publication(pdu)), "permission_failure")
        assert error.tag == pdu.tag
    # one good PDU with a bad one: all or nothing
    good = rfc8181.Publish(uri("acme", "good.roa"), b"good", tag="good")
    errors = served.refused(
        served.post("rfc8181", "acme", acme.publication(good, attempts[2])), "permission_failure"
    )
    assert [e.tag for e in errors] == ["bob"]
    assert served.state() == before
    assert served.published("bob") == {mine: b"bob's"}
    assert uri("acme", "good.roa") not in served.published("acme")


def test_a_hash_mismatch_half_way_through_a_message_applies_nothing(served: Served) -> None:
    acme = served.acme
    first, second = uri("acme", "first.roa"), uri("acme", "second.roa")
    for target in (first, second):
        current = served.published("acme").get(target)
        if current == target.encode():
            continue
        hashed = None if current is None else rfc8181.object_hash(current)
        pdu = rfc8181.Publish(target, target.encode(), hash=hashed)
        assert isinstance(
            served.publication_answer(served.post("rfc8181", "acme", acme.publication(pdu))),
            rfc8181.SuccessReply,
        )
    before, listed = served.state(), served.listed(acme)
    message = acme.publication(
        rfc8181.Publish(uri("acme", "third.roa"), b"new", tag="create"),
        rfc8181.Publish(first, b"first, again", hash=rfc8181.object_hash(first.encode()), tag="replace"),
        rfc8181.Publish(second, b"second, again", hash=rfc8181.object_hash(b"something else"), tag="bad"),
        rfc8181.Withdraw(first, rfc8181.object_hash(b"first, again"), tag="withdraw"),
    )
    (error,) = served.refused(served.post("rfc8181", "acme", message), "no_object_matching_hash")
    assert error.tag == "bad" and error.failed_pdu is not None
    assert served.state() == before  # the same tree generation and files, the same RRDP serial
    held = served.listed(acme)
    assert held == listed
    assert held[first] == rfc8181.object_hash(first.encode())
    assert held[second] == rfc8181.object_hash(second.encode())
    assert uri("acme", "third.roa") not in held

    # the same message with the right hash is applied, as one new tree and one RRDP serial
    right = rfc8181.object_hash(second.encode())
    corrected = acme.publication(
        rfc8181.Publish(uri("acme", "third.roa"), b"new"),
        rfc8181.Publish(first, b"first, again", hash=rfc8181.object_hash(first.encode())),
        rfc8181.Publish(second, b"second, again", hash=right),
        rfc8181.Withdraw(first, rfc8181.object_hash(b"first, again")),
    )
    reply = served.publication_answer(served.post("rfc8181", "acme", corrected))
    assert isinstance(reply, rfc8181.SuccessReply), reply
    generation, files, serial = served.state()
    assert generation != before[0] and serial == before[2] + 1
    assert served.published("acme") == {uri("acme", "third.roa"): b"new", second: b"second, again"}
    assert {p: d for p, d in files.items() if not p.startswith("publishers/acme/")} == {
        p: d for p, d in before[1].items() if not p.startswith("publishers/acme/")
    }


# -- what a client may cost the server ----------------------------------------------------------------


def test_oversized_and_stalled_requests_are_dropped_while_a_good_client_is_served(
    served: Served, tmp_path: Path
) -> None:
    too_big = served.post("rfc6492", "acme", b"\x30" * (MAX_UPDOWN + 1))
    assert too_big.status_code == 413, too_big.text
    declared = served.post("rfc8181", "acme", b"\x30" * (MAX_PUBLICATION + 1))
    assert declared.status_code == 413, declared.text

    # a second server on the same repository, with a shorter time-out for silent connections
    args = ("--channel-timeout", f"{STALL_TIMEOUT}s", "--threads", "2")
    with serve_process(served.scratch.repo, tmp_path / "serve.log", *args) as quick:
        port = int(quick.url.rsplit(":", 1)[1])
        stalled = []
        for _ in range(6):  # more than the server's threads: a stalled upload holds none of them
            conn = socket.create_connection(("127.0.0.1", port), timeout=30)
            conn.sendall(
                b"POST /rfc8181/acme HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                b"Content-Type: application/rpki-publication\r\nContent-Length: 5000\r\n\r\n0123456789"
            )
            stalled.append(conn)
        opened = time.monotonic()
        acme = served.acme  # served while the others stall
        listed = served.updown_answer(
            served.post("rfc6492", "acme", acme.updown(updown.ListQuery()), url=quick.url), "acme"
        )
        assert isinstance(listed, updown.ListResponse) and listed.classes[0].resources == entitlement(CROWD)
        reply = served.publication_answer(served.post("rfc8181", "acme", acme.publication(), url=quick.url))
        assert isinstance(reply, rfc8181.ListReply)
        assert {e.uri for e in reply.entries} == set(served.published("acme"))
        for conn in stalled:  # the good client was answered while every stalled upload was still open
            conn.settimeout(0)
            with pytest.raises(BlockingIOError):
                conn.recv(1, socket.MSG_PEEK)
        for conn in stalled:
            conn.settimeout(30)
            with conn:
                try:
                    dropped = conn.recv(65536)
                except ConnectionResetError:
                    dropped = b""
                assert dropped == b"", dropped  # closed without an answer
        waited = time.monotonic() - opened
        assert quick.stop() == 0, quick.logged()
    assert STALL_TIMEOUT / 2 <= waited <= STALL_TIMEOUT + 10, waited
    # only the good client's requests reached the application; the stalled ones were never answered
    assert quick.logged().count("POST /rfc8181/acme") == 1


def test_a_hundred_clients_at_once_are_each_answered_correctly(served: Served) -> None:
    """Each of the 50 peers runs two clients at once, one per protocol (a peer's messages of one
    protocol must stay in order; the protocols are independent): RFC 6492 lists, and RFC 8181 lists
    and, for every other peer, a publication of two objects. Every answer is verified (signature,
    sender, content); none fails; the tree then holds exactly what was published."""
    crowd = served.crowd
    barrier = threading.Barrier(2 * len(crowd), timeout=120)
    failures: list[str] = []
    published: dict[str, dict[str, bytes]] = {}

    def updown_client(index: int) -> None:
        peer = crowd[index]
        barrier.wait()
        for _ in range(2):
            (offered,) = peer.list().classes
            assert offered.class_name == PARENT and offered.resources == entitlement(index), offered
            assert offered.certificates == ()

    def publication_client(index: int) -> None:
        peer = crowd[index]
        barrier.wait()
        assert peer.listed() == {}
        if index % 2:
            assert peer.listed() == {}
            return
        objects = {f"{peer.sia_base}{name}": os.urandom(300) for name in ("a.roa", "b.crl")}
        assert peer.repository is not None
        peer.repository.send(rfc8181.delta({}, objects))
        published[peer.handle] = objects
        assert peer.listed() == {u: rfc8181.object_hash(d) for u, d in objects.items()}

    def run(client: Callable[[int], None], index: int) -> None:
        try:
            client(index)
        except BaseException as exc:
            failures.append(f"{getattr(client, '__name__', client)} {index}: {type(exc).__name__}: {exc}")

    threads = [
        threading.Thread(target=run, args=(client, index))
        for index in range(len(crowd))
        for client in (updown_client, publication_client)
    ]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert not any(thread.is_alive() for thread in threads)
    assert failures == [], "\n".join(failures)
    assert sorted(published) == [peer.handle for peer in crowd[::2]]
    for peer in crowd:
        assert served.published(peer.handle) == published.get(peer.handle, {}), peer.handle
    snapshot = snapshot_files(served.scratch, notification(served.scratch))
    crowd_prefixes = tuple(f"publishers/{peer.handle}/" for peer in crowd)
    assert {BASE + p: d for p, d in snapshot.items() if p.startswith(crowd_prefixes)} == {
        u: d for objects in published.values() for u, d in objects.items()
    }
    assert time.monotonic() - started < 240
