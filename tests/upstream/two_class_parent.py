"""A parent with two resource classes, made of two CAs of one rpkictl parent.

A registry that holds a member's resources in two classes answers the member as one parent, under one
identity, and certifies each class with a key of its own. Here the registry's front end is a small RFC
6492 server on 127.0.0.1 with an identity of its own: it verifies the child's messages against the
child's identity, and asks ``rpkictl serve`` -- where the child is declared once under each of two CAs,
one handle each -- as the child, one class per CA (``class_name`` = the CA's name, as serve names it).
The two list_responses become one, and an ``issue`` or ``revoke`` goes to the CA of its class. What
comes back is signed by the real CAs and published in the parent's real tree, so the validators see
the child's certificates exactly as they would under a registry.
"""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from reconciler.protocol import bpki, oob, sigmsg, updown
from reconciler.protocol.client import UpDownClient, UpDownRefused
from reconciler.protocol.errors import ProtocolError
from reconciler.protocol.replay import ReplayGuard
from reconciler.signers import FileSigner
from tests.serve.remote_child import rpkictl
from tests.upstream.child_world import HANDLE, ChildCa

REGISTRY = "registry"


@dataclass
class _Front:
    """The front end's identity and its clients of the two CAs, by class name."""

    signer: FileSigner
    key: bytes
    identity: bpki.IdentityCertificate
    child: bpki.IdentityCertificate
    classes: dict[str, UpDownClient]
    asked: list[str]

    def answer(self, payload: updown.Payload) -> updown.Payload:
        try:
            if isinstance(payload, updown.ListQuery):
                self.asked.append("list")
                return updown.ListResponse(
                    tuple(c for client in self.classes.values() for c in _listed(client))
                )
            if isinstance(payload, updown.IssueRequest):
                self.asked.append(f"issue {payload.class_name}")
                return self._client(payload.class_name).issue(payload)
            if isinstance(payload, updown.RevokeRequest):
                self.asked.append(f"revoke {payload.class_name}")
                return self._client(payload.class_name).revoke(payload.class_name, payload.ski)
        except UpDownRefused as refused:
            return updown.ErrorResponse(refused.status, (refused.description or "")[:500] or None)
        return updown.ErrorResponse(1001, "not a child's query")

    def _client(self, class_name: str) -> UpDownClient:
        client = self.classes.get(class_name)
        if client is None:
            raise UpDownRefused(1201, f"no resource class {class_name!r}")
        return client


def _listed(client: UpDownClient) -> tuple[updown.ResourceClass, ...]:
    """The classes one CA lists; none once the child is no longer declared under it (serve answers 404
    then): the registry has no such class for the child any more."""
    try:
        return client.list().classes
    except UpDownRefused:
        raise
    except ProtocolError as exc:
        if "404" not in str(exc):
            raise
        return ()


def _handler(front: _Front) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            now = datetime.now(UTC)
            verified = sigmsg.verify(body, front.child, now, "the child's message", strict_time=False)
            message = updown.parse(verified.xml, "the child's message")
            payload = front.answer(message.payload)
            xml = updown.render(updown.Message(REGISTRY, HANDLE, payload))
            answer = sigmsg.sign(xml, front.signer, front.key, front.identity, now)
            self.send_response(200)
            self.send_header("Content-Type", updown.CONTENT_TYPE)
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, format: str, *args: object) -> None:
            return

    return Handler


@dataclass
class TwoClassParent:
    """The front end while it runs: the parent_response the child commits, and what it was asked."""

    response: bytes
    asked: list[str]


@contextmanager
def two_class_parent(
    parent_repo: Path, child: ChildCa, serve_url: str, cas: dict[str, str], scratch: Path
) -> Iterator[TwoClassParent]:
    """The front end of the parent CAs ``cas`` (CA name -> the child's handle under it) served by
    ``rpkictl serve`` at ``serve_url``, until the block ends."""
    now = datetime.now(UTC)
    signer = FileSigner(scratch / "registry-keys")
    key = signer.create_key(bpki.identity_label(REGISTRY))
    identity = bpki.create_identity(signer, key, now)
    child_signer = FileSigner(child.root / "keys")
    child_key = child_signer.find_key(bpki.identity_label(HANDLE))
    assert child_key is not None
    child_identity = bpki.load_identity(
        (child.root / "published" / "bpki" / f"{HANDLE}.cer").read_bytes(), "the child's identity"
    )
    replay = ReplayGuard(scratch / "registry-replay.json")
    clients = {}
    for ca, handle in cas.items():
        shown = rpkictl("oob", "parent-response", ca, handle, str(parent_repo), "--service-uri", serve_url)
        assert shown.returncode == 0, shown.stderr
        response = oob.parse_parent_response(shown.stdout.encode(), ca)
        clients[ca] = UpDownClient(
            response, child_signer, child_key, child_identity, replay, strict_time=False
        )
    front = _Front(signer, key, identity, child_identity, clients, [])
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _handler(front))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_address[1]}/up-down/{HANDLE}"
    response = oob.render(oob.ParentResponse(url, REGISTRY, HANDLE, identity.der))
    try:
        yield TwoClassParent(response, front.asked)
    finally:
        server.shutdown()
        server.server_close()
