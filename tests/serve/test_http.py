"""The ``rpkictl serve`` HTTP layer over real HTTP on 127.0.0.1: routes, statuses, limits, concurrency and
slow clients, with waitress running in a thread."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import httpx
import pytest

from reconciler.serve import PUBLICATION_CONTENT_TYPE, UPDOWN_CONTENT_TYPE, Limits
from tests.serve.harness import EchoResponder, expected, raw_request, serving, status_of

UPDOWN = {"Content-Type": UPDOWN_CONTENT_TYPE}
PUBLICATION = {"Content-Type": PUBLICATION_CONTENT_TYPE}
CMS = b"0\x82\x01\x00" + bytes(range(256))  # stands for a CMS message: the echo responder hashes it


def test_each_protocol_answers_the_responders_bytes_with_its_content_type() -> None:
    with serving() as running:
        updown = httpx.post(f"{running.url}/rfc6492/alice", content=CMS, headers=UPDOWN)
        publication = httpx.post(f"{running.url}/rfc8181/alice", content=CMS, headers=PUBLICATION)
    assert updown.status_code == 200
    assert updown.content == expected("updown", "alice", CMS)
    assert updown.headers["content-type"] == UPDOWN_CONTENT_TYPE
    assert publication.status_code == 200
    assert publication.content == expected("publication", "alice", CMS)
    assert publication.headers["content-type"] == PUBLICATION_CONTENT_TYPE
    assert running.logged("POST /rfc6492/alice 200 in=260 out=")


def test_content_type_parameters_and_case_are_accepted() -> None:
    with serving() as running:
        answer = httpx.post(
            f"{running.url}/rfc6492/alice",
            content=CMS,
            headers={"Content-Type": "Application/RPKI-UpDown; charset=binary"},
        )
    assert answer.status_code == 200 and answer.content == expected("updown", "alice", CMS)


def test_healthz() -> None:
    with serving(both=False) as running:  # no protocol served at all: still healthy
        answer = httpx.get(f"{running.url}/healthz")
        head = httpx.head(f"{running.url}/healthz")
        post = httpx.post(f"{running.url}/healthz", content=b"x")
    assert (answer.status_code, answer.text) == (200, "ok\n")
    assert head.status_code == 200 and head.content == b""
    assert post.status_code == 405 and post.headers["allow"] == "GET, HEAD"
    assert not running.logged("healthz")  # not logged: a probe every few seconds would drown the log


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE", "HEAD"])
def test_wrong_method_is_405_with_allow(method: str) -> None:
    with serving() as running:
        answer = httpx.request(method, f"{running.url}/rfc6492/alice", headers=UPDOWN)
    assert answer.status_code == 405
    assert answer.headers["allow"] == "POST"


@pytest.mark.parametrize(
    ("path", "headers"),
    [
        ("/rfc6492/alice", {}),
        ("/rfc6492/alice", {"Content-Type": "application/xml"}),
        ("/rfc6492/alice", PUBLICATION),  # the other protocol's type
        ("/rfc8181/alice", UPDOWN),
        ("/rfc8181/alice", {"Content-Type": "application/rpki-publication-x"}),
    ],
)
def test_wrong_or_missing_content_type_is_415(path: str, headers: dict[str, str]) -> None:
    responder = EchoResponder("updown", frozenset({"alice"}))
    with serving(updown=responder, publication=responder) as running:
        answer = httpx.post(f"{running.url}{path}", content=CMS, headers=headers)
    assert answer.status_code == 415
    wanted = UPDOWN_CONTENT_TYPE if path.startswith("/rfc6492") else PUBLICATION_CONTENT_TYPE
    assert wanted in answer.text
    assert responder.calls == 0


def test_unknown_handle_is_404_with_a_short_text() -> None:
    with serving() as running:
        answer = httpx.post(f"{running.url}/rfc6492/mallory", content=CMS, headers=UPDOWN)
    assert answer.status_code == 404
    assert answer.text == "404 Not Found: unknown handle\n"
    assert running.logged("POST /rfc6492/mallory 404") and running.logged("no peer 'mallory' declared")


@pytest.mark.parametrize(
    "path",
    [
        "/rfc6492/",  # empty handle
        "/rfc6492/a.b",
        "/rfc6492/..%2Fetc",  # decoded once: ../etc, the dots are refused
        "/rfc6492/org%252Fbob",  # decoded once: org%2Fbob, never decoded again
        "/rfc6492/%C3%A9",  # non-ASCII
        "/rfc6492/a%00b",
        "/rfc6492/" + "a" * 256,
        "/rfc6492",
        "/rfc6493/alice",
        "/",
    ],
)
def test_paths_outside_the_handle_syntax_are_404_and_never_reach_the_responder(path: str) -> None:
    responder = EchoResponder("updown", frozenset({"alice", "org/bob", "org%2Fbob", "../etc", "a" * 256}))
    with serving(updown=responder) as running:
        answer = raw_request(
            running.port,
            f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: {UPDOWN_CONTENT_TYPE}\r\n"
            f"Content-Length: 3\r\nConnection: close\r\n\r\nabc".encode(),
        )
    assert status_of(answer) == 404
    assert responder.calls == 0


def test_a_percent_encoded_slash_is_part_of_the_handle() -> None:
    with serving() as running:
        encoded = httpx.post(f"{running.url}/rfc6492/org%2Fbob", content=CMS, headers=UPDOWN)
        plain = httpx.post(f"{running.url}/rfc6492/org/bob", content=CMS, headers=UPDOWN)
        longest = httpx.post(f"{running.url}/rfc6492/{'a' * 255}", content=CMS, headers=UPDOWN)
    assert encoded.content == plain.content == expected("updown", "org/bob", CMS)
    assert longest.status_code == 404 and longest.text.endswith("unknown handle\n")  # valid, not declared


def test_a_protocol_without_a_responder_is_not_served() -> None:
    with serving(updown=EchoResponder("updown", frozenset({"alice"})), both=False) as running:
        served = httpx.post(f"{running.url}/rfc6492/alice", content=CMS, headers=UPDOWN)
        unserved = httpx.post(f"{running.url}/rfc8181/alice", content=CMS, headers=PUBLICATION)
    assert served.status_code == 200
    assert unserved.status_code == 404


def test_a_responder_error_is_500_logged_with_its_traceback_and_never_shown() -> None:
    with serving() as running:
        answer = httpx.post(f"{running.url}/rfc8181/boom", content=CMS, headers=PUBLICATION)
        after = httpx.post(f"{running.url}/rfc8181/alice", content=CMS, headers=PUBLICATION)
    assert answer.status_code == 500
    assert answer.text == "500 Internal Server Error: the server's log says why\n"
    assert "exploded" not in answer.text and "Traceback" not in answer.text
    assert running.logged("RFC 8181 boom: internal error: RuntimeError: the signer exploded")
    assert running.logged("Traceback (most recent call last)")
    assert after.status_code == 200  # the server lives on


def test_a_protocol_error_from_the_responder_is_400_with_the_reason_only_in_the_log() -> None:
    with serving() as running:
        answer = httpx.post(f"{running.url}/rfc6492/refuse", content=CMS, headers=UPDOWN)
    assert answer.status_code == 400
    assert "verify" not in answer.text
    assert running.logged("POST /rfc6492/refuse 400 in=260 out=")
    assert running.logged("CMS signature does not verify with the declared identity")


def test_an_empty_body_is_400_without_calling_the_responder() -> None:
    responder = EchoResponder("updown", frozenset({"alice"}))
    with serving(updown=responder, both=False) as running:
        answer = httpx.post(f"{running.url}/rfc6492/alice", content=b"", headers=UPDOWN)
        # no Content-Length and no chunked encoding: HTTP/1.1 says there is no body
        raw = raw_request(
            running.port,
            f"POST /rfc6492/alice HTTP/1.1\r\nHost: x\r\nContent-Type: {UPDOWN_CONTENT_TYPE}\r\n"
            "Connection: close\r\n\r\n".encode(),
        )
    assert answer.status_code == 400 and "empty body" in answer.text
    assert status_of(raw) == 400
    assert responder.calls == 0


SMALL = Limits(max_updown_body=1000, max_publication_body=5000)


@pytest.mark.parametrize(
    ("path", "headers", "limit"),
    [("/rfc6492/alice", UPDOWN, 1000), ("/rfc8181/alice", PUBLICATION, 5000)],
)
def test_each_protocol_has_its_own_body_limit(path: str, headers: dict[str, str], limit: int) -> None:
    with serving(SMALL) as running:
        at_limit = httpx.post(f"{running.url}{path}", content=b"x" * limit, headers=headers)
        over = httpx.post(f"{running.url}{path}", content=b"x" * (limit + 1), headers=headers)
    assert at_limit.status_code == 200
    assert over.status_code == 413
    assert f"limited to {limit} bytes" in over.text


def _chunks(total: int, size: int = 700) -> Iterator[bytes]:
    sent = 0
    while sent < total:
        piece = min(size, total - sent)
        sent += piece
        yield b"y" * piece


def test_an_oversized_chunked_body_is_413() -> None:
    responder = EchoResponder("updown", frozenset({"alice"}))
    with serving(SMALL, updown=responder, publication=EchoResponder("p", frozenset({"alice"}))) as running:
        # over the RFC 6492 limit, under the server's bound (the RFC 8181 limit): refused by the route
        route = httpx.post(f"{running.url}/rfc6492/alice", content=_chunks(1001), headers=UPDOWN)
        # far over every limit: refused by the server before the body ends
        server = httpx.post(f"{running.url}/rfc6492/alice", content=_chunks(10_000_000), headers=UPDOWN)
        fits = httpx.post(f"{running.url}/rfc6492/alice", content=_chunks(1000), headers=UPDOWN)
    assert route.request.headers["transfer-encoding"] == "chunked"
    assert route.status_code == 413
    assert server.status_code == 413
    assert fits.status_code == 200 and fits.content == expected("updown", "alice", b"y" * 1000)
    assert responder.calls == 1


def test_a_declared_length_over_the_limit_is_refused_before_the_body_is_sent() -> None:
    """Only RFC 6492 served: the server's bound is its limit, so a lying Content-Length is answered 413
    at once, though the client sent only the headers and five bytes."""
    with serving(SMALL, updown=EchoResponder("updown", frozenset({"alice"})), both=False) as running:
        started = time.monotonic()
        answer = raw_request(
            running.port,
            f"POST /rfc6492/alice HTTP/1.1\r\nHost: x\r\nContent-Type: {UPDOWN_CONTENT_TYPE}\r\n"
            "Content-Length: 2000000\r\nConnection: close\r\n\r\nhello".encode(),
        )
    assert status_of(answer) == 413
    assert time.monotonic() - started < 5  # not after a channel time-out: refused at the headers


def test_a_length_shorter_than_the_body_reads_only_the_declared_bytes() -> None:
    """What follows the declared length is the next request to the server, not more body."""
    with serving(SMALL) as running:
        answer = raw_request(
            running.port,
            f"POST /rfc6492/alice HTTP/1.1\r\nHost: x\r\nContent-Type: {UPDOWN_CONTENT_TYPE}\r\n"
            f"Content-Length: 3\r\nConnection: close\r\n\r\nabc{'z' * 5000}".encode(),
        )
    assert status_of(answer) == 200
    assert answer.endswith(expected("updown", "alice", b"abc"))


def test_a_hundred_concurrent_clients_are_all_answered_correctly() -> None:
    updown = EchoResponder("updown", frozenset({"slow"}), delay=0.02)  # every request holds a thread
    publication = EchoResponder("publication", frozenset({"slow"}), delay=0.02)
    results: dict[int, tuple[int, bytes, bytes]] = {}
    errors: list[BaseException] = []
    start = threading.Barrier(100)

    def client(number: int, url: str) -> None:
        body = f"message {number} ".encode() * (number + 1)
        protocol, headers = ("rfc6492", UPDOWN) if number % 2 else ("rfc8181", PUBLICATION)
        try:
            start.wait(timeout=30)
            with httpx.Client(timeout=60) as http:
                answer = http.post(f"{url}/{protocol}/slow", content=body, headers=headers)
            name = "updown" if number % 2 else "publication"
            results[number] = (answer.status_code, answer.content, expected(name, "slow", body))
        except BaseException as exc:  # reported below with the others
            errors.append(exc)

    with serving(Limits(threads=8, connection_limit=150), updown=updown, publication=publication) as running:
        threads = [threading.Thread(target=client, args=(n, running.url)) for n in range(100)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
    assert errors == []
    assert len(results) == 100
    wrong = [n for n, (status, got, wanted) in results.items() if status != 200 or got != wanted]
    assert wrong == []
    assert updown.calls + publication.calls == 100


def test_a_client_that_stalls_half_way_through_its_body_is_dropped_while_others_are_served() -> None:
    limits = Limits(channel_timeout=2, threads=2)
    with serving(limits) as running:
        stalled = socket.create_connection(("127.0.0.1", running.port), timeout=15)
        try:
            stalled.sendall(
                f"POST /rfc6492/alice HTTP/1.1\r\nHost: x\r\nContent-Type: {UPDOWN_CONTENT_TYPE}\r\n"
                f"Content-Length: 200\r\n\r\n{'h' * 100}".encode()
            )
            began = time.monotonic()
            served = []
            while time.monotonic() - began < 1.5:  # while it stalls, others are answered at once
                answer = httpx.post(f"{running.url}/rfc6492/alice", content=CMS, headers=UPDOWN, timeout=5)
                served.append(answer.status_code)
            closed = stalled.recv(65536)  # blocks until the server drops the connection
            waited = time.monotonic() - began
        finally:
            stalled.close()
    assert served and set(served) == {200}
    assert closed == b""  # dropped without an answer: the request never completed
    assert 1.9 <= waited < 10  # after the time-out (2 s, looked for every second), not before


def test_the_connection_limit_holds_back_extra_connections_without_refusing_them() -> None:
    limits = Limits(connection_limit=3, channel_timeout=30)
    with serving(limits) as running:
        idle = [socket.create_connection(("127.0.0.1", running.port), timeout=5) for _ in range(3)]
        try:
            time.sleep(0.5)  # the server has accepted the three
            with pytest.raises(httpx.ReadTimeout):
                httpx.get(f"{running.url}/healthz", timeout=1.5)
            assert running.logged("server: total open connections reached the connection limit")
        finally:
            for conn in idle:
                conn.close()
        answer = httpx.get(f"{running.url}/healthz", timeout=10)  # room again: served
    assert answer.status_code == 200
