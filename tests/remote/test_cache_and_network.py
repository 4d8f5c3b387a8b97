"""The cache survives what happens to it (a full disk mid-update, a crash's leftovers, links planted in
it), and the network's failures (redirects, silence) end in a RemoteError, never a hang."""

from __future__ import annotations

import dataclasses
import errno
import fcntl
import http.server
import socket
import ssl
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from reconciler.published import read, remote_cache, remote_rrdp
from reconciler.published.remote import RemoteError, fetch
from reconciler.published.remote_cache import write_object as real
from tests.e2e.https import ConnectProxy, ThrowawayCa
from tests.helpers import later
from tests.remote.serving import ISP, NOTIFICATION, RSYNC_BASE, Served, https_env, quiet_resets, tree_files


def test_a_full_disk_mid_delta_leaves_the_cache_as_it_was(
    served: Served, monkeypatch: pytest.MonkeyPatch
) -> None:
    good = fetch(NOTIFICATION, RSYNC_BASE, served.cache)
    files = tree_files(good.rsync_dir)
    (entry,) = served.cache.iterdir()
    state = (entry / "state.json").read_bytes()
    served.scratch.edit(ISP, "max_length: 26", "max_length: 25")
    assert served.scratch.apply(later(1)) is not None
    calls = []

    def full(tree: Path, path: str, data: bytes) -> None:
        calls.append(path)
        if len(calls) > 1:
            raise OSError(errno.ENOSPC, "No space left on device")
        real(tree, path, data)

    monkeypatch.setattr(remote_rrdp, "write_object", full)
    with pytest.raises(RemoteError, match="No space left on device"):
        fetch(NOTIFICATION, RSYNC_BASE, served.cache)
    assert len(calls) == 2, "the delta was not half applied: the test proves nothing"
    assert (entry / "state.json").read_bytes() == state and tree_files(good.rsync_dir) == files
    assert sorted(p.name for p in entry.iterdir()) == sorted(["lock", "state.json", good.rsync_dir.name])
    monkeypatch.setattr(remote_rrdp, "write_object", real)
    before = len(served.server.requests)
    again = fetch(NOTIFICATION, RSYNC_BASE, served.cache)
    assert served.requested(before) == ["notification.xml", "delta.xml"]  # the old serial still believed
    assert tree_files(again.rsync_dir) == read(served.scratch.rsync).files


def test_a_crashs_leftovers_are_removed_and_the_cache_kept(served: Served) -> None:
    good = fetch(NOTIFICATION, RSYNC_BASE, served.cache)
    (entry,) = served.cache.iterdir()
    (entry / "tree-0123456789abcdef").mkdir()
    (entry / "tree-0123456789abcdef" / "half.roa").write_bytes(b"half")
    (entry / ".download-0123456789abcdef").write_bytes(b"<snapshot")
    (entry / ".state.json.1234.tmp").write_bytes(b"{")
    before = len(served.server.requests)
    again = fetch(NOTIFICATION, RSYNC_BASE, served.cache)
    assert served.requested(before) == ["notification.xml"]
    assert again.rsync_dir == good.rsync_dir
    assert sorted(p.name for p in entry.iterdir()) == sorted(["lock", "state.json", good.rsync_dir.name])


def test_a_link_planted_in_the_cache_is_never_followed(served: Served, tmp_path: Path) -> None:
    good = fetch(NOTIFICATION, RSYNC_BASE, served.cache)
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "precious").write_bytes(b"keep me")
    victim = next(good.rsync_dir.rglob("*.roa"))
    victim.unlink()
    victim.symlink_to(outside / "precious")
    before = len(served.server.requests)
    again = fetch(NOTIFICATION, RSYNC_BASE, served.cache)
    assert served.requested(before) == ["notification.xml", "snapshot.xml"]  # the tree was not believed
    assert tree_files(again.rsync_dir) == read(served.scratch.rsync).files
    (entry,) = served.cache.iterdir()
    entry.rename(tmp_path / "moved")
    entry.symlink_to(outside)
    third = fetch(NOTIFICATION, RSYNC_BASE, served.cache)
    assert not entry.is_symlink() and third.rsync_dir.parent == entry
    assert sorted(p.name for p in outside.iterdir()) == ["precious"]
    assert (outside / "precious").read_bytes() == b"keep me"


class _Redirect(http.server.BaseHTTPRequestHandler):
    location = ""
    seen: list[str]

    def do_GET(self) -> None:
        self.seen.append(self.path)
        self.send_response(302)
        self.send_header("Location", self.location)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@contextmanager
def redirecting(ca: ThrowawayCa, location: str, seen: list[str]) -> Iterator[int]:
    """A TLS server on 127.0.0.1 that answers every request with a redirect to ``location``."""
    handler = type("Handler", (_Redirect,), {"location": location, "seen": seen})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(ca.server_cert, ca.server_key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield int(server.server_address[1])
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize(
    ("location", "says", "requests"),
    [
        ("http://rpki.example.net/rrdp/notification.xml", "which is not https", 1),
        ("/rrdp/elsewhere.xml", "more than 3 redirects", 4),
    ],
)
def test_redirects_are_followed_only_over_https_and_only_a_few(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, location: str, says: str, requests: int
) -> None:
    ca = ThrowawayCa.create(tmp_path / "tls", "rpki.example.net")
    seen: list[str] = []
    with redirecting(ca, location, seen) as port, ConnectProxy(port) as proxy:
        quiet_resets(proxy)
        https_env(monkeypatch, proxy.url, ca.ca_pem)
        with pytest.raises(RemoteError, match=says) as caught:
            fetch(NOTIFICATION, RSYNC_BASE, tmp_path / "cache")
    assert len(seen) == requests
    assert "https://rpki.example.net/rrdp/" in str(caught.value)


def test_a_silent_server_times_out(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ca = ThrowawayCa.create(tmp_path / "tls", "rpki.example.net")
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)  # connections are accepted by the kernel, and never answered
        with ConnectProxy(silent.getsockname()[1]) as proxy:
            https_env(monkeypatch, proxy.url, ca.ca_pem)
            with pytest.raises(RemoteError, match=r"timed out .*give a larger timeout"):
                fetch(NOTIFICATION, RSYNC_BASE, tmp_path / "cache", timeout=1)


def test_one_fetch_at_a_time_per_repository(served: Served, monkeypatch: pytest.MonkeyPatch) -> None:
    fetch(NOTIFICATION, RSYNC_BASE, served.cache)
    (entry,) = served.cache.iterdir()
    monkeypatch.setattr(remote_cache, "_LOCK_WAIT", 0.3)
    with (entry / "lock").open("rb") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        with pytest.raises(RemoteError, match="in use by another process"):
            fetch(NOTIFICATION, RSYNC_BASE, served.cache)
    assert fetch(NOTIFICATION, RSYNC_BASE, served.cache).source.serial == served.notification().serial


def test_an_object_too_long_is_refused_while_it_downloads(
    served: Served, monkeypatch: pytest.MonkeyPatch
) -> None:
    fetch(NOTIFICATION, RSYNC_BASE, served.cache)
    current = served.notification()
    served.serve_notification(dataclasses.replace(current, session_id=str(uuid.uuid4()), deltas=()))
    monkeypatch.setattr(remote_rrdp, "MAX_TEXT", 1000)  # the example's manifests take more in base64
    with pytest.raises(RemoteError, match="more than 1000 bytes without markup"):
        fetch(NOTIFICATION, RSYNC_BASE, served.cache)
