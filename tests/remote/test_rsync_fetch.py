"""Reading a publication over rsync from a real rsync daemon on 127.0.0.1, as a relying party that
does not speak RRDP would: the copy is the published tree; a failed transfer is a RemoteError with
rsync's own last word, and leaves the previous copy."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from reconciler.published import read
from reconciler.published.remote import RemoteError, fetch
from tests.e2e.harness import RsyncDaemon
from tests.e2e.https import ConnectProxy
from tests.helpers import T0, Scratch, later, missing_tool, scratch_copy
from tests.remote.serving import ISP, RSYNC_BASE, tree_files


@pytest.fixture
def published(tmp_path: Path) -> Iterator[tuple[Scratch, RsyncDaemon]]:
    if shutil.which("rsync") is None:
        missing_tool("rsync is not installed (apt-get install rsync)", "the rsync fetch tests")
    scratch = scratch_copy(tmp_path)
    assert scratch.apply(T0) is not None
    with RsyncDaemon(scratch.rsync) as daemon:
        yield scratch, daemon


def test_the_copy_is_the_published_tree(published: tuple[Scratch, RsyncDaemon], tmp_path: Path) -> None:
    scratch, daemon = published
    copy = fetch(daemon.url(), daemon.url(), tmp_path / "cache")
    assert copy.source.kind == "rsync" and copy.source.uri == daemon.url()
    assert (copy.source.session_id, copy.source.serial) == (None, None)
    assert read(scratch.rsync).files and tree_files(copy.rsync_dir) == read(scratch.rsync).files
    assert not read(copy.rsync_dir).damage


def test_the_published_uri_through_a_proxy_then_a_change(
    published: tuple[Scratch, RsyncDaemon], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The URI relying parties use (``rsync://rpki.example.net/repo/``), reached through RSYNC_PROXY;
    after a change, the next fetch gives the new tree."""
    scratch, daemon = published
    with ConnectProxy(daemon.port) as proxy:
        monkeypatch.setenv("RSYNC_PROXY", proxy.url.removeprefix("http://"))
        first = fetch(RSYNC_BASE, RSYNC_BASE, tmp_path / "cache")
        assert tree_files(first.rsync_dir) == read(scratch.rsync).files
        assert proxy.tunnels == ["rpki.example.net:873"]
        before = read(scratch.rsync).files
        scratch.edit(ISP, "max_length: 26", "max_length: 25")
        assert scratch.apply(later(1)) is not None
        assert read(scratch.rsync).files != before
        second = fetch(RSYNC_BASE, RSYNC_BASE, tmp_path / "cache")
    assert tree_files(second.rsync_dir) == read(scratch.rsync).files
    assert not first.rsync_dir.exists()


def test_a_file_changed_within_the_same_second_at_the_same_size_is_fetched(
    published: tuple[Scratch, RsyncDaemon], tmp_path: Path
) -> None:
    """A manifest re-signed in the second the last copy was made has the same size and modification time:
    the copy compares content, so it never keeps the stale object."""
    scratch, daemon = published
    first = fetch(daemon.url(), daemon.url(), tmp_path / "cache")
    manifest = next(p for p in scratch.rsync.rglob("*.mft"))
    old = manifest.read_bytes()
    kept = manifest.stat()
    new = old[:-1] + bytes([old[-1] ^ 0xFF])  # the same size, other bytes
    manifest.write_bytes(new)
    os.utime(manifest, ns=(kept.st_atime_ns, kept.st_mtime_ns))
    name = manifest.relative_to(scratch.rsync).as_posix()
    assert tree_files(first.rsync_dir)[name] == old
    second = fetch(daemon.url(), daemon.url(), tmp_path / "cache")
    assert tree_files(second.rsync_dir)[name] == new


def test_a_failed_transfer_says_what_rsync_said(
    published: tuple[Scratch, RsyncDaemon], tmp_path: Path
) -> None:
    _, daemon = published
    good = fetch(daemon.url(), daemon.url(), tmp_path / "cache")
    files = tree_files(good.rsync_dir)
    wrong = good.source.uri.replace("/repo/", "/nosuchmodule/")
    with pytest.raises(RemoteError, match=r"rsync failed \(.*Unknown module 'nosuchmodule'"):
        fetch(wrong, wrong, tmp_path / "cache")
    daemon.stop()
    down = r"^cannot read rsync://127\.0\.0\.1:\d+/repo/: rsync failed \(.*Connection refused"
    with pytest.raises(RemoteError, match=down) as caught:
        fetch(good.source.uri, good.source.uri, tmp_path / "cache")
    assert "Traceback" not in str(caught.value)
    assert tree_files(good.rsync_dir) == files


def test_no_rsync_program(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(RemoteError, match="no rsync program on PATH; install rsync"):
        fetch(RSYNC_BASE, RSYNC_BASE, tmp_path / "cache")


@pytest.mark.parametrize(
    ("uri", "says"),
    [
        ("rsync://elsewhere.example/repo/", "not below the repository's rsync base"),
        (RSYNC_BASE + "members", "ending with '/'"),
        (RSYNC_BASE + "../", r"'\.\.' segment"),
    ],
)
def test_a_uri_that_is_not_the_repositorys(uri: str, says: str, tmp_path: Path) -> None:
    with pytest.raises(RemoteError, match=says):
        fetch(uri, RSYNC_BASE, tmp_path / "cache")
