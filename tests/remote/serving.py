"""A publication made by apply, its RRDP served over real HTTPS on 127.0.0.1 (see ``tests.e2e.https``):
what ``remote.fetch`` reads in the tests, as a relying party on another machine would.

The environment the fetch runs in is the one a CI runner gets: ``https_proxy`` names the CONNECT proxy
that takes ``rpki.example.net`` to the local server, and ``SSL_CERT_FILE`` the throw-away CA's
certificate (httpx reads both, ``trust_env``); ``no_proxy``, ``SSL_CERT_DIR`` and the other proxy
variables are removed so that nothing of the machine's own setup takes part.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from reconciler.publish import rrdp
from tests.e2e.https import ConnectProxy, HttpsServer, ThrowawayCa
from tests.helpers import T0, Scratch, scratch_copy
from tests.publish.test_rrdp import RRDP_BASE, with_rrdp

NOTIFICATION = RRDP_BASE + "notification.xml"
RSYNC_BASE = "rsync://rpki.example.net/repo/"
ISP = "cas/members/example-isp.yaml"

#: What the tests unset: the machine's proxies and CA directory must not take part.
UNSET = (
    "HTTPS_PROXY",
    "HTTP_PROXY",
    "ALL_PROXY",
    "all_proxy",
    "http_proxy",
    "NO_PROXY",
    "no_proxy",
    "SSL_CERT_DIR",
)


@dataclass
class Served:
    scratch: Scratch
    server: HttpsServer
    proxy: ConnectProxy
    ca: ThrowawayCa
    cache: Path

    @property
    def rrdp_dir(self) -> Path:
        return self.scratch.root / "published" / "rrdp"

    def requested(self, since: int = 0) -> list[str]:
        """The file names requested since request number ``since``."""
        return [path.rsplit("/", 1)[-1] for path in self.server.requests[since:]]

    def notification(self) -> rrdp.Notification:
        found = rrdp.read_notification(self.rrdp_dir)
        assert found is not None
        return found

    def local(self, uri: str) -> Path:
        assert uri.startswith(RRDP_BASE)
        return self.rrdp_dir / uri[len(RRDP_BASE) :]

    def serve_notification(self, notification: rrdp.Notification) -> None:
        (self.rrdp_dir / "notification.xml").write_bytes(rrdp.notification_xml(notification))

    def serve_snapshot(self, data: bytes, session_id: str | None = None, serial: int | None = None) -> str:
        """Serve ``data`` as the snapshot of a notification that lists it with its true hash; returns
        its URI."""
        current = self.notification()
        path = self.rrdp_dir / "crafted" / "snapshot.xml"
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(data)
        uri = RRDP_BASE + "crafted/snapshot.xml"
        self.serve_notification(
            rrdp.Notification(
                session_id or current.session_id,
                serial or current.serial,
                uri,
                hashlib.sha256(data).hexdigest(),
            )
        )
        return uri


def quiet_resets(proxy: ConnectProxy) -> ConnectProxy:
    """Keep ``proxy`` from printing a traceback when a client closes its tunnel abruptly: an HTTP/1.0
    client closes as soon as it has the body, before the server's TLS close_notify is read, and the
    kernel answers that with a reset. Anything else is still printed."""
    server = proxy._server  # only this test's instance is changed
    assert server is not None
    report = server.handle_error

    def handle_error(request: object, client_address: object) -> None:
        if not isinstance(sys.exc_info()[1], ConnectionError):
            report(request, client_address)  # type: ignore[arg-type]

    server.handle_error = handle_error  # type: ignore[method-assign]
    return proxy


def https_env(monkeypatch: pytest.MonkeyPatch, proxy_url: str, ca_pem: Path) -> None:
    for name in UNSET:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("https_proxy", proxy_url)
    monkeypatch.setenv("SSL_CERT_FILE", str(ca_pem))


@pytest.fixture(scope="session")
def _published_once(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, ThrowawayCa]:
    """The bundled example applied with RRDP, and a throw-away CA: made once, copied for each test (an
    apply and a CA take seconds, a copy a few milliseconds)."""
    root = tmp_path_factory.mktemp("published-once")
    assert with_rrdp(scratch_copy(root)).apply(T0) is not None
    return root, ThrowawayCa.create(tmp_path_factory.mktemp("tls"), "rpki.example.net")


@pytest.fixture
def served(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, _published_once: tuple[Path, ThrowawayCa]
) -> Iterator[Served]:
    template, ca = _published_once
    for part in template.iterdir():
        shutil.copytree(part, tmp_path / part.name, symlinks=True)
    scratch = Scratch(tmp_path)
    with HttpsServer(tmp_path / "published", ca) as server, ConnectProxy(server.port) as proxy:
        quiet_resets(proxy)
        https_env(monkeypatch, proxy.url, ca.ca_pem)
        yield Served(scratch, server, proxy, ca, tmp_path / "cache")


def tree_files(directory: Path) -> dict[str, bytes]:
    """Every regular file below ``directory`` (relative path -> bytes), read without following links."""
    found: dict[str, bytes] = {}
    for base, _, names in os.walk(directory, followlinks=False):
        for name in names:
            path = Path(base, name)
            assert path.is_file() and not path.is_symlink(), path
            found[path.relative_to(directory).as_posix()] = path.read_bytes()
    return found
