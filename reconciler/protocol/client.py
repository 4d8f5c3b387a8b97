"""The child's and the publisher's side of RFC 6492 and RFC 8181: sign a query, POST it, verify the answer.

Every exchange is the same five steps: render the XML, sign it under our BPKI identity
(:func:`sigmsg.sign`), POST it to the ``service_uri`` of the RFC 8183 response file, verify the CMS answer
against the identity certificate in that same file (:func:`sigmsg.verify`), and refuse it when it was
signed before the last answer accepted from that peer (:class:`ReplayGuard`; see
``_Exchange.round_trip`` for the same second). Only then is the XML read.
A peer that refuses the query (an up-down ``error_response``, a publication ``report_error``) raises a
precise :class:`ProtocolError` subclass, so that callers can tell "the parent said no" from "the network
failed" from "someone else answered".
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from typing import TypeVar

import httpx

import reconciler
from reconciler import clock
from reconciler.protocol import bpki, oob, publication, sigmsg, updown
from reconciler.protocol.errors import ProtocolError
from reconciler.protocol.replay import ReplayGuard
from reconciler.signers.base import Signer
from reconciler.signers.files import made_ahead

#: The largest answer read (the CMS around the XML; the XML itself is bounded by the codecs). LACNIC's
#: list_response is 240 KB; a publication list reply of a CA with ten thousand objects about 2 MB.
MAX_RESPONSE_BYTES = 16 << 20
#: Krill's ``post_protocol_msg_timeout_seconds``: a parent may sign a certificate in an HSM before answering.
DEFAULT_TIMEOUT = 240.0
#: A peer that does not accept the connection within this time is down, whatever the read timeout.
CONNECT_TIMEOUT = 30.0
_T = TypeVar("_T")
_SHOWN = 200


class TransportError(ProtocolError):
    """The query did not get a 200 answer of a sane size in time: the text names the URI and the reason."""


class UpDownRefused(ProtocolError):  # noqa: N818 - says what happened: the peer refused
    """The parent answered with an RFC 6492 ``error_response``. ``kind`` says what a child does about it
    (see :func:`updown.error_kind`): ``retry`` later, ``drop-class``, take it as ``done``, or ``error``."""

    def __init__(self, status: int, description: str | None, *, peer: str = "the parent") -> None:
        self.status = status
        self.description = description
        self.kind: updown.ErrorKind = updown.error_kind(status)
        meaning = updown.ERRORS.get(status, "an error code RFC 6492 does not define")
        said = f': "{_printable(description)}"' if description else ""
        super().__init__(f"{peer} refused the request: error {status} ({meaning}){said}")


class PublicationRefused(ProtocolError):  # noqa: N818 - says what happened: the peer refused
    """The publication server answered with ``report_error``: nothing of the query was applied."""

    def __init__(self, errors: tuple[publication.ReportError, ...], *, peer: str = "the repository") -> None:
        self.errors = errors
        shown = "; ".join(_report(error) for error in errors[:5])
        more = f"; and {len(errors) - 5} more" if len(errors) > 5 else ""
        super().__init__(f"{peer} refused the publication: {shown}{more}")


def _report(error: publication.ReportError) -> str:
    text = f"{error.code}"
    if error.tag:
        text += f" (tag {_printable(error.tag)})"
    if error.text:
        text += f": {_printable(error.text)}"
    return text


def _printable(text: str) -> str:
    """A peer's text on one line, without control characters, cut to a readable length."""
    flat = " ".join("".join(c if c.isprintable() else " " for c in text).split())
    return flat if len(flat) <= _SHOWN else flat[: _SHOWN - 1] + "…"


# -- transport ------------------------------------------------------------------------------------------


def post(uri: str, content_type: str, body: bytes, *, timeout: float, limit: int) -> bytes:
    """POST ``body`` to ``uri`` and return the answer of a 200, at most ``limit`` bytes of it.

    Anything but 200 is a :class:`TransportError` naming the URI and the status; redirects are not
    followed (a parent's ``service_uri`` is configured, not discovered: a redirect is a fault to fix in
    the RFC 8183 file, and following it would send the signed query somewhere nobody chose). The body is
    counted while it streams, so a broken or hostile peer cannot fill memory; connecting may take
    :data:`CONNECT_TIMEOUT` (at most ``timeout``), each read ``timeout`` and the whole body ``timeout``.

    Both http:// and https:// are allowed and a server's TLS certificate is NOT verified, as Krill does:
    the security of RFC 6492 and RFC 8181 is the CMS signature, checked against the peer's BPKI identity
    exchanged out of band, not TLS; RIRs publish http service URIs (APNIC) and BPKI peers have no reason
    to hold WebPKI certificates. TLS, where used, only hides the traffic.
    """
    if not uri.startswith(("http://", "https://")):
        raise TransportError(f"{uri[:_SHOWN]!r} is not an http:// or https:// URI; check the service_uri")
    timeouts = httpx.Timeout(timeout, connect=min(timeout, CONNECT_TIMEOUT))
    headers = {
        "Content-Type": content_type,
        "User-Agent": f"rpki-reconciler/{reconciler.__version__}",
        "Accept-Encoding": "identity",  # a compressed answer could inflate far past ``limit`` in one piece
    }
    deadline = time.monotonic() + timeout
    try:
        with (
            httpx.Client(  # verify=False: see the docstring; the CMS signature is the security
                verify=False,  # noqa: S501
                trust_env=True,
                timeout=timeouts,
                follow_redirects=False,
            ) as client,
            client.stream("POST", uri, content=body, headers=headers) as response,
        ):
            if response.status_code != 200:
                raise TransportError(_status(uri, response))
            return _read(response, uri, limit, deadline, timeout)
    except httpx.TimeoutException as exc:
        raise TransportError(
            f"{uri}: no answer within {timeout:g}s ({type(exc).__name__}); the peer may be overloaded, "
            "try again later"
        ) from exc
    except (httpx.HTTPError, httpx.InvalidURL) as exc:
        raise TransportError(
            f"{uri}: {str(exc) or type(exc).__name__}; check the URI and the network"
        ) from exc


def _status(uri: str, response: httpx.Response) -> str:
    text = f"{uri}: HTTP {response.status_code} {response.reason_phrase}".rstrip()
    if response.is_redirect:
        where = response.headers.get("location", "")
        return (
            f"{text}, a redirect to {_printable(where)!r} that is not followed: the service URI in the "
            "RFC 8183 response file must be the one that answers; ask the peer for a new one"
        )
    said = b""
    for piece in response.iter_bytes():
        said += piece
        if len(said) >= 1024:
            break
    shown = _printable(said[:1024].decode("utf-8", "replace"))
    return f"{text}, expected 200" + (f"; the server said: {shown}" if shown else "")


def _read(response: httpx.Response, uri: str, limit: int, deadline: float, timeout: float) -> bytes:
    too_big = f"{uri}: the answer is larger than {limit} bytes; refused (no protocol answer is that large)"
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise TransportError(too_big)
    pieces: list[bytes] = []
    size = 0
    for piece in response.iter_bytes():
        size += len(piece)
        if size > limit:
            raise TransportError(too_big)
        if time.monotonic() > deadline:
            raise TransportError(f"{uri}: the answer did not arrive within {timeout:g}s; try again later")
        pieces.append(piece)
    return b"".join(pieces)


# -- the signed exchange -------------------------------------------------------------------------------


class _Exchange:
    """What both clients share: our identity, the peer's, the replay record, and the signed round trip."""

    def __init__(
        self,
        *,
        service_uri: str,
        peer_identity: bytes,
        peer_name: str,
        signer: Signer,
        key: bytes,
        identity: bpki.IdentityCertificate,
        replay: ReplayGuard,
        timeout: float,
        strict_time: bool,
        limit: int,
        now: Callable[[], datetime],
        replay_id: str,
    ) -> None:
        self.service_uri = service_uri
        self.peer_name = peer_name
        self.peer = bpki.load_identity(peer_identity, f"the identity certificate of {peer_name}")
        self.signer, self.key, self.identity = signer, key, identity
        self.replay = replay
        self.timeout, self.strict_time, self.limit, self.now = timeout, strict_time, limit, now
        self.replay_id = replay_id
        self._last_signed: datetime | None = None

    def round_trip(self, xml: bytes, content_type: str) -> bytes:
        """Sign, POST, verify, refuse a replay and record the answer's signing time; the verified XML
        of the answer."""
        moment = self._signing_time()
        ee = _message_key(self.signer, self.key, self.identity, moment)
        body = sigmsg.sign(xml, self.signer, self.key, self.identity, moment, ee=ee)
        answer = post(self.service_uri, content_type, body, timeout=self.timeout, limit=self.limit)
        where = f"the answer of {self.peer_name} ({self.service_uri})"
        verified = sigmsg.verify(answer, self.peer, self.now(), where, strict_time=self.strict_time)
        signed = verified.signing_time.replace(microsecond=0)
        # CMS signing times have one-second resolution and a publisher's list and delta follow each
        # other within a second: an answer signed in the same second as the last one accepted is taken
        # (replaying that very answer gains nothing: it says what the peer just said). Anything older
        # is a replay or a reordering and is refused.
        if signed != self.replay.last(self.replay_id):
            self.replay.check(self.replay_id, signed)
            self.replay.accept(self.replay_id, signed)
        return verified.xml

    def _signing_time(self) -> datetime:
        """Now, but always a second after the last query signed to this peer -- by this client, or by
        another process under the same identity (an apply right after the reconcile loop's cycle): a
        peer that guards against replay refuses a query signed in the same second as the previous one,
        and a list followed by a delta is sent within a second. The last time is kept in the replay
        record, beside the peer's answers. (Only bursts of more than one query a second move the time
        ahead of the clock, by as many seconds; these clients never send such bursts.)"""
        moment = self.now().replace(microsecond=0)
        sent = f"sent:{self.replay_id}"
        last = max((t for t in (self._last_signed, self.replay.last(sent)) if t is not None), default=None)
        if last is not None and moment <= last:
            moment = last + timedelta(seconds=1)
        self.replay.accept(sent, moment)
        self._last_signed = moment
        return moment


#: One EE key signs this process's messages under one identity for this long: making an RSA key costs
#: some 50-100 ms, three times per apply of a CA under an external parent (RFC 6492 list, RFC 8181 list
#: and send) otherwise. RFC 6492 §3.1 asks only that the EE certificate be issued by the identity.
EE_REUSE = timedelta(minutes=1)
_MESSAGE_KEYS: dict[bytes, sigmsg.MessageKey] = {}
_MESSAGE_KEYS_LOCK = threading.Lock()


def _message_key(
    signer: Signer, key: bytes, identity: bpki.IdentityCertificate, moment: datetime
) -> sigmsg.MessageKey:
    """The EE key for a message signed at ``moment``: the one made for this identity in the last
    minute, or a new one (valid ``CLOCK_SKEW`` either side of when it was made)."""
    with _MESSAGE_KEYS_LOCK:
        known = _MESSAGE_KEYS.get(identity.ski)
        made = known.not_before + bpki.CLOCK_SKEW if known is not None else None
        if known is None or made is None or not made <= moment <= made + EE_REUSE:
            # a key made ahead while the YAML loaded, when one is ready (``apply.onetime.make_ahead``)
            ahead = made_ahead()
            known = _MESSAGE_KEYS[identity.ski] = sigmsg.message_key(signer, key, identity, moment, ee=ahead)
        return known


class UpDownClient:
    """A child talking RFC 6492 to one parent, as configured by the parent's RFC 8183 ``parent_response``:
    ``child_handle`` is who we are in every message, ``parent_handle`` who we talk to."""

    def __init__(
        self,
        parent: oob.ParentResponse,
        signer: Signer,
        key: bytes,
        identity: bpki.IdentityCertificate,
        replay: ReplayGuard,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        strict_time: bool = True,
        limit: int = MAX_RESPONSE_BYTES,
        now: Callable[[], datetime] = clock.now,
    ) -> None:
        self.parent = parent
        self._exchange = _Exchange(
            service_uri=parent.service_uri,
            peer_identity=parent.identity,
            peer_name=f"parent {parent.parent_handle}",
            replay_id=f"parent:{parent.parent_handle}@{parent.service_uri}",
            signer=signer,
            key=key,
            identity=identity,
            replay=replay,
            timeout=timeout,
            strict_time=strict_time,
            limit=limit,
            now=now,
        )

    def list(self) -> updown.ListResponse:
        """The resource classes the parent says we are entitled to."""
        return self._ask(updown.ListQuery(), updown.ListResponse)

    def issue(self, request: updown.IssueRequest) -> updown.IssueResponse:
        """A certificate for the key in ``request.csr``, in one resource class."""
        response = self._ask(request, updown.IssueResponse)
        if response.resource_class.class_name != request.class_name:
            raise ProtocolError(
                f"{self._exchange.peer_name} answered an issue request for class {request.class_name!r} "
                f"with a certificate in class {response.resource_class.class_name!r}"
            )
        return response

    def revoke(self, class_name: str, ski: bytes) -> updown.RevokeResponse:
        """Ask the parent to revoke every certificate of the key ``ski`` in ``class_name``."""
        response = self._ask(updown.RevokeRequest(class_name, ski), updown.RevokeResponse)
        if (response.class_name, response.ski) != (class_name, ski):
            raise ProtocolError(
                f"{self._exchange.peer_name} answered a revocation of key {ski.hex()} in class "
                f"{class_name!r} with one of key {response.ski.hex()} in class {response.class_name!r}"
            )
        return response

    def _ask(self, payload: updown.Payload, expected: type[_T]) -> _T:
        sender, recipient = self.parent.child_handle, self.parent.parent_handle
        xml = updown.render(updown.Message(sender, recipient, payload))
        answer = self._exchange.round_trip(xml, updown.CONTENT_TYPE)
        peer = self._exchange.peer_name
        message = updown.parse(answer, f"the answer of {peer} ({self.parent.service_uri})")
        lacnic = (
            isinstance(message.payload, updown.ErrorResponse) and message.sender == message.recipient == ""
        )
        if not lacnic and (message.sender, message.recipient) != (recipient, sender):
            raise ProtocolError(
                f"the answer of {peer} is from {message.sender!r} to {message.recipient!r}, not from "
                f"{recipient!r} to {sender!r} as the parent_response says; check that the RFC 8183 files "
                "of this parent are the current ones"
            )
        if isinstance(message.payload, updown.ErrorResponse):
            raise UpDownRefused(message.payload.status, message.payload.description, peer=peer)
        if not isinstance(message.payload, expected):
            raise ProtocolError(
                f"{peer} answered a {type(payload).__name__} with a {type(message.payload).__name__}"
            )
        return message.payload


class PublicationClient:
    """A publisher talking RFC 8181 to one publication server, as configured by the server's RFC 8183
    ``repository_response``. Use :func:`publication.delta` between :meth:`list` and :meth:`send`."""

    def __init__(
        self,
        repository: oob.RepositoryResponse,
        signer: Signer,
        key: bytes,
        identity: bpki.IdentityCertificate,
        replay: ReplayGuard,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        strict_time: bool = True,
        limit: int = MAX_RESPONSE_BYTES,
        now: Callable[[], datetime] = clock.now,
    ) -> None:
        self.repository = repository
        self._exchange = _Exchange(
            service_uri=repository.service_uri,
            peer_identity=repository.identity,
            peer_name=f"the repository of {repository.publisher_handle}",
            replay_id=f"repository:{repository.publisher_handle}@{repository.service_uri}",
            signer=signer,
            key=key,
            identity=identity,
            replay=replay,
            timeout=timeout,
            strict_time=strict_time,
            limit=limit,
            now=now,
        )

    def list(self) -> dict[str, str]:
        """URI → hash of every object the server holds for us."""
        reply = self._ask(publication.ListQuery())
        if not isinstance(reply, publication.ListReply):
            raise ProtocolError(f"{self._exchange.peer_name} answered a list query with <success/>")
        return {entry.uri: entry.hash for entry in reply.entries}

    def send(self, pdus: Iterable[publication.Pdu]) -> None:
        """All of ``pdus`` in one query, applied by the server all or nothing; nothing is sent when there
        are none. URIs outside our ``sia_base`` are refused here (the server would refuse them too)."""
        query = publication.Query(tuple(pdus))
        if not query.pdus:
            return
        base = self.repository.sia_base
        outside = [pdu.uri for pdu in query.pdus if not pdu.uri.startswith(base)]
        if outside:
            raise ValueError(f"{outside[0]} is outside {base}, where the repository lets us publish")
        reply = self._ask(query)
        if not isinstance(reply, publication.SuccessReply):
            raise ProtocolError(
                f"{self._exchange.peer_name} answered a publication query with a list, not <success/>"
            )

    def _ask(self, query: publication.QueryMessage) -> publication.SuccessReply | publication.ListReply:
        answer = self._exchange.round_trip(publication.render(query), publication.CONTENT_TYPE)
        where = f"the answer of {self._exchange.peer_name} ({self.repository.service_uri})"
        reply = publication.parse_reply(answer, where)
        if isinstance(reply, publication.ErrorReply):
            raise PublicationRefused(reply.errors, peer=self._exchange.peer_name)
        return reply
