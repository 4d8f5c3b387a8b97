"""A real ``rpkictl serve`` server on 127.0.0.1 in a thread, with a responder whose answers a test can
predict."""

from __future__ import annotations

import hashlib
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime

from reconciler.protocol.errors import ProtocolError
from reconciler.serve import Limits, Server, StopRequest, UnknownPeer, make_app

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


class EchoResponder:
    """Answers ``<name> <handle> <sha256 of the body> <time>`` for the handles it knows; ``boom`` fails
    with an internal error, ``refuse`` with a protocol error, ``slow`` takes ``delay`` seconds."""

    def __init__(self, name: str, handles: frozenset[str], *, delay: float = 0.0) -> None:
        self.name = name
        self.handles = handles | {"boom", "refuse", "slow"}
        self.delay = delay
        self.calls = 0
        self._lock = threading.Lock()

    def respond(self, handle: str, body: bytes, now: datetime) -> bytes:
        with self._lock:
            self.calls += 1
        if handle not in self.handles:
            raise UnknownPeer(f"no peer {handle!r} declared")
        if handle == "boom":
            raise RuntimeError("the signer exploded at /srv/rpki/keys/secret-path")
        if handle == "refuse":
            raise ProtocolError("CMS signature does not verify with the declared identity")
        if handle == "slow":
            time.sleep(self.delay)
        return expected(self.name, handle, body, now)


def expected(name: str, handle: str, body: bytes, now: datetime = NOW) -> bytes:
    return f"{name} {handle} {hashlib.sha256(body).hexdigest()} {now.isoformat()}".encode()


@dataclass
class Running:
    server: Server
    url: str
    port: int
    lines: list[str] = field(default_factory=list)

    def log(self, line: str) -> None:
        self.lines.append(line)

    def logged(self, text: str) -> bool:
        return any(text in line for line in list(self.lines))


@contextmanager
def serving(
    limits: Limits | None = None,
    *,
    updown: EchoResponder | None = None,
    publication: EchoResponder | None = None,
    both: bool = True,
) -> Iterator[Running]:
    """Serve until the block ends; by default both protocols with echo responders."""
    limits = limits or Limits()
    if both:
        updown = updown or EchoResponder("updown", frozenset({"alice", "org/bob"}))
        publication = publication or EchoResponder("publication", frozenset({"alice"}))
    lines: list[str] = []  # list.append is atomic: server threads may log at once
    app = make_app(updown, publication, limits, lines.append, now=lambda: NOW)
    server = Server(app, "127.0.0.1", 0, limits)
    (host, port), *_ = server.addresses
    running = Running(server, f"http://{host}:{port}", port, lines)
    stop = StopRequest()
    thread = threading.Thread(target=server.serve, args=(stop, running.log), daemon=True)
    thread.start()
    try:
        yield running
    finally:
        stop()
        thread.join(timeout=limits.stop_grace + 10)
        assert not thread.is_alive(), "the server did not stop"


def raw_request(port: int, data: bytes, *, timeout: float = 10.0) -> bytes:
    """Send ``data`` as it is (with ``Connection: close`` among its headers) and read the whole answer,
    until the server closes the connection."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as conn:
        conn.sendall(data)
        answer = b""
        while chunk := conn.recv(65536):
            answer += chunk
    return answer


def status_of(answer: bytes) -> int:
    return int(answer.split(b" ", 2)[1])
