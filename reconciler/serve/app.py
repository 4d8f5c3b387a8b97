"""The WSGI application of ``rpkictl serve``: HTTP in front of the RFC 6492 and RFC 8181 responders.

The protocols put their security in CMS (each message is signed with the peer's BPKI identity), so this
layer only does what HTTP must: route ``POST /rfc6492/<handle>`` and ``POST /rfc8181/<handle>`` to the
responder of that protocol, refuse what cannot be a protocol message (wrong method 405, wrong content type
415, a body over the protocol's limit 413, an empty body 400, a handle outside RFC 8183's syntax or one
the responder does not know 404), and hand back the responder's bytes with the protocol's content type.
A responder that fails answers 500 with a short text; the error and its traceback go to the log callback
only, never to the client. ``GET /healthz`` answers 200 ``ok`` while the service runs.

The body is read up to the limit plus one byte and no further, whatever Content-Length says (a declared
length over the limit is refused before anything is read), so a client cannot make a responder thread
read or hold more than the protocol allows. (The server in front, see :mod:`reconciler.serve.runner`,
stops reading a request at the largest limit of the protocols served: :attr:`ServeApp.max_body`.)
"""

from __future__ import annotations

import re
import time
import traceback
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from http import HTTPStatus
from typing import TYPE_CHECKING, Protocol

from reconciler import clock
from reconciler.protocol import publication as rfc8181
from reconciler.protocol import updown as rfc6492
from reconciler.protocol.errors import ProtocolError

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment

MIB = 1024 * 1024

#: The media types of RFC 6492 and RFC 8181, as the codecs define them.
UPDOWN_CONTENT_TYPE = rfc6492.CONTENT_TYPE
PUBLICATION_CONTENT_TYPE = rfc8181.CONTENT_TYPE

#: The path prefixes, one per protocol: ``/rfc6492/<handle>`` and ``/rfc8181/<handle>``.
UPDOWN_PREFIX = "rfc6492"
PUBLICATION_PREFIX = "rfc8181"

#: The handle syntax of RFC 8183's schema (at most 255 of these characters; here at least one). The
#: server has already percent-decoded the path once; nothing decodes it again, so ``%2F`` in a handle
#: arrives as ``/`` and ``%252F`` as ``%2F``, which this refuses.
HANDLE = re.compile(r"[-_A-Za-z0-9/]{1,255}\Z")

_READ_CHUNK = 64 * 1024
_SHOWN_PATH = 120  # characters of an unexpected path shown in the log


class UnknownPeer(ProtocolError):  # noqa: N818 - the name says the state the caller handles
    """The handle names no child (RFC 6492) or publisher (RFC 8181) declared in the desired state."""


class Responder(Protocol):
    """One protocol's server side: turns a CMS-signed request into the CMS-signed response.

    ``respond`` is called from several server threads at once, so it must be thread-safe. It raises
    :class:`UnknownPeer` for a handle it does not serve (HTTP 404), a :class:`ProtocolError` for a
    message it cannot answer even with a protocol error reply (HTTP 400; the reason goes to the log), and
    anything else is an internal error (HTTP 500)."""

    def respond(self, handle: str, body: bytes, now: datetime) -> bytes: ...


@dataclass(frozen=True)
class Limits:
    """What one client may ask of the server. The defaults suit a parent or repository for a few hundred
    peers behind a reverse proxy; ``rpkictl serve`` has an option for each."""

    #: Krill's ``post_limit_rfc6492`` (1 MB): a key roll with certificates of about 400 kB; the biggest
    #: known resource certificate is 220 kB, LACNIC's whole list_response 240 kB.
    max_updown_body: int = 1 * MIB
    #: An RFC 8181 delta carries whole objects: a CA's manifest, CRL and every ROA in one message.
    max_publication_body: int = 16 * MIB
    #: Requests answered at once; more wait in the server's queue.
    threads: int = 8
    #: Open connections; beyond it the server stops accepting until one closes.
    connection_limit: int = 100
    #: Seconds a connection may stay silent (between requests, or half-way through sending one).
    channel_timeout: int = 30
    #: Bytes of request line and headers.
    max_header_bytes: int = 64 * 1024
    #: Seconds a stop waits for requests being answered (a publication being written) to finish.
    stop_grace: int = 30

    def __post_init__(self) -> None:
        for name in (
            "max_updown_body",
            "max_publication_body",
            "threads",
            "connection_limit",
            "channel_timeout",
            "max_header_bytes",
            "stop_grace",
        ):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a whole number of at least 1, not {value!r}")


@dataclass(frozen=True)
class _Route:
    name: str  # for the log: "RFC 6492"
    content_type: str
    responder: Responder
    limit: int


@dataclass(frozen=True)
class _Reply:
    status: HTTPStatus
    body: bytes
    content_type: str = "text/plain; charset=utf-8"
    allow: str | None = None
    note: str | None = None  # why, for the log only


def _text(
    status: HTTPStatus, detail: str = "", *, allow: str | None = None, note: str | None = None
) -> _Reply:
    line = f"{status.value} {status.phrase}" + (f": {detail}" if detail else "")
    return _Reply(status, (line + "\n").encode(), allow=allow, note=note)


class _TooLargeError(Exception):
    def __init__(self, read: int) -> None:
        super().__init__(read)
        self.read = read


class _BadLengthError(Exception):
    pass


def make_app(
    updown: Responder | None,
    publication: Responder | None,
    limits: Limits,
    log: Callable[[str], None],
    *,
    now: Callable[[], datetime] = clock.now,
) -> ServeApp:
    """The WSGI application serving the given responders (a protocol whose responder is None is not
    served: its paths answer 404). ``log`` receives one line per protocol request (client, method, path,
    status, sizes, time) and each internal error with its traceback; it is called from server threads.
    ``now`` is the time handed to the responders."""
    routes: dict[str, _Route] = {}
    if updown is not None:
        routes[UPDOWN_PREFIX] = _Route("RFC 6492", UPDOWN_CONTENT_TYPE, updown, limits.max_updown_body)
    if publication is not None:
        routes[PUBLICATION_PREFIX] = _Route(
            "RFC 8181", PUBLICATION_CONTENT_TYPE, publication, limits.max_publication_body
        )
    return ServeApp(routes, log, now)


class ServeApp:
    """The WSGI application :func:`make_app` builds. ``max_body`` is the largest body any of its routes
    accepts, the bound the server itself puts on a request before the application sees it."""

    def __init__(
        self, routes: dict[str, _Route], log: Callable[[str], None], now: Callable[[], datetime]
    ) -> None:
        self._routes = dict(routes)
        self._log = log
        self._now = now
        self.max_body = max((route.limit for route in routes.values()), default=0)

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        started = time.monotonic()
        path = str(environ.get("PATH_INFO") or "")
        method = str(environ.get("REQUEST_METHOD") or "")
        if path == "/healthz":
            reply = _health(method)
        else:
            reply, received = _protocol(environ, method, path, self._routes, log=self._log, now=self._now)
            elapsed = (time.monotonic() - started) * 1000
            client = environ.get("REMOTE_ADDR") or "-"
            line = (
                f"{client} {_shown(method)} {_shown(path)} {reply.status.value} "
                f"in={received} out={len(reply.body)} {elapsed:.0f}ms"
            )
            self._log(line + (f": {reply.note}" if reply.note else ""))
        headers = [("Content-Type", reply.content_type), ("Content-Length", str(len(reply.body)))]
        if reply.allow is not None:
            headers.append(("Allow", reply.allow))
        start_response(f"{reply.status.value} {reply.status.phrase}", headers)
        return [reply.body]


def _health(method: str) -> _Reply:
    if method not in ("GET", "HEAD"):
        return _text(HTTPStatus.METHOD_NOT_ALLOWED, "use GET", allow="GET, HEAD")
    return _Reply(HTTPStatus.OK, b"ok\n")


def _protocol(
    environ: WSGIEnvironment,
    method: str,
    path: str,
    routes: dict[str, _Route],
    *,
    log: Callable[[str], None],
    now: Callable[[], datetime],
) -> tuple[_Reply, int]:
    """The reply to a request for a protocol path, and how many body bytes were read."""
    prefix, slash, handle = path.removeprefix("/").partition("/")
    route = routes.get(prefix) if slash else None
    if route is None:
        return _text(HTTPStatus.NOT_FOUND), 0
    if not HANDLE.match(handle):
        return _text(HTTPStatus.NOT_FOUND, "not a handle (RFC 8183: 1-255 of A-Z a-z 0-9 - _ /)"), 0
    if method != "POST":
        return _text(HTTPStatus.METHOD_NOT_ALLOWED, "use POST", allow="POST"), 0
    given = str(environ.get("CONTENT_TYPE") or "")
    if given.partition(";")[0].strip().lower() != route.content_type:
        return _text(
            HTTPStatus.UNSUPPORTED_MEDIA_TYPE,
            f"send Content-Type: {route.content_type}",
            note=f"Content-Type {_shown(given) if given else 'missing'}",
        ), 0
    try:
        body = _read_body(environ, route.limit)
    except _TooLargeError as exc:
        return _text(
            HTTPStatus.REQUEST_ENTITY_TOO_LARGE, f"{route.name} messages are limited to {route.limit} bytes"
        ), exc.read
    except _BadLengthError:
        return _text(HTTPStatus.BAD_REQUEST, "invalid Content-Length"), 0
    if not body:
        return _text(HTTPStatus.BAD_REQUEST, "empty body: send the CMS-signed message"), 0
    try:
        answer: object = route.responder.respond(handle, body, now())
    except UnknownPeer as exc:
        return _text(HTTPStatus.NOT_FOUND, "unknown handle", note=str(exc)), len(body)
    except ProtocolError as exc:
        return _text(
            HTTPStatus.BAD_REQUEST, "the message was refused; the server's log says why", note=str(exc)
        ), len(body)
    except Exception as exc:  # any failure of a responder is answered, and logged here
        log(f"{route.name} {handle}: internal error: {type(exc).__name__}: {exc}\n{traceback.format_exc()}")
        return _text(HTTPStatus.INTERNAL_SERVER_ERROR, "the server's log says why"), len(body)
    if not isinstance(answer, bytes):
        log(f"{route.name} {handle}: internal error: the responder returned {type(answer).__name__}")
        return _text(HTTPStatus.INTERNAL_SERVER_ERROR, "the server's log says why"), len(body)
    return _Reply(HTTPStatus.OK, answer, content_type=route.content_type), len(body)


def _read_body(environ: WSGIEnvironment, limit: int) -> bytes:
    """The request body, read to at most ``limit + 1`` bytes: :class:`_TooLargeError` beyond ``limit``."""
    declared = str(environ.get("CONTENT_LENGTH") or "").strip()
    if declared:
        if not (declared.isascii() and declared.isdigit()):
            raise _BadLengthError
        length = int(declared)
        if length > limit:
            raise _TooLargeError(0)
        wanted = length
    else:
        wanted = limit + 1  # no length (a server that passes a chunked body through): read to the bound
    stream = environ["wsgi.input"]
    chunks: list[bytes] = []
    got = 0
    while got < wanted:
        chunk = stream.read(min(_READ_CHUNK, wanted - got))
        if not chunk:
            break
        chunks.append(chunk)
        got += len(chunk)
    if got > limit:
        raise _TooLargeError(got)
    return b"".join(chunks)


def _shown(text: str) -> str:
    """``text`` for a log line: as it is when plain, else quoted and cut (no control characters)."""
    if text.isascii() and text.isprintable() and " " not in text and len(text) <= _SHOWN_PATH:
        return text
    return repr(text[:_SHOWN_PATH]) + ("..." if len(text) > _SHOWN_PATH else "")
