"""Reading a publication through its public RRDP notification URL, over real HTTPS, as a relying party
does: the copy is the published tree, byte for byte; the next read takes only the deltas; a cache that
is not what its state says is never used."""

from __future__ import annotations

import json
import shutil
import stat
from pathlib import Path

import pytest

from reconciler.published import read
from reconciler.published.remote import RemoteError, default_cache_dir, fetch
from reconciler.published.remote_cache import STATE
from tests.helpers import later
from tests.remote.serving import ISP, NOTIFICATION, RSYNC_BASE, Served, tree_files


def test_the_copy_is_the_published_tree_with_its_session_and_serial(served: Served) -> None:
    copy = fetch(NOTIFICATION, RSYNC_BASE, served.cache)
    published = read(served.scratch.rsync)
    assert published.files and tree_files(copy.rsync_dir) == published.files
    assert read(copy.rsync_dir).files == published.files
    assert not read(copy.rsync_dir).damage
    notification = served.notification()
    assert copy.source.uri == NOTIFICATION and copy.source.kind == "rrdp"
    assert (copy.source.session_id, copy.source.serial) == (notification.session_id, notification.serial)
    assert served.requested() == ["notification.xml", "snapshot.xml"]
    assert served.proxy.tunnels and all(t == "rpki.example.net:443" for t in served.proxy.tunnels)


def test_the_next_read_takes_only_the_deltas(served: Served) -> None:
    first = fetch(NOTIFICATION, RSYNC_BASE, served.cache)
    toggles = [("max_length: 26", "max_length: 25"), ("max_length: 25", "max_length: 26")]
    for hour, (old, new) in enumerate(toggles):
        served.scratch.edit(ISP, old, new)
        assert served.scratch.apply(later(hour + 1)) is not None
    before = len(served.server.requests)
    second = fetch(NOTIFICATION, RSYNC_BASE, served.cache)
    assert served.requested(before) == ["notification.xml", "delta.xml", "delta.xml"]
    assert second.source.session_id == first.source.session_id
    assert second.source.serial == (first.source.serial or 0) + 2 == served.notification().serial
    assert tree_files(second.rsync_dir) == read(served.scratch.rsync).files
    assert not first.rsync_dir.exists()  # the tree it replaced is gone


def test_an_unchanged_repository_costs_one_request(served: Served) -> None:
    first = fetch(NOTIFICATION, RSYNC_BASE, served.cache)
    before = len(served.server.requests)
    again = fetch(NOTIFICATION, RSYNC_BASE, served.cache)
    assert served.requested(before) == ["notification.xml"]
    assert again == first
    assert tree_files(again.rsync_dir) == read(served.scratch.rsync).files


def test_a_new_session_is_read_from_its_snapshot(served: Served) -> None:
    first = fetch(NOTIFICATION, RSYNC_BASE, served.cache)
    shutil.rmtree(served.scratch.root / "published" / "rrdp")
    served.scratch.edit(ISP, "max_length: 26", "max_length: 25")
    assert served.scratch.apply(later(1)) is not None
    before = len(served.server.requests)
    second = fetch(NOTIFICATION, RSYNC_BASE, served.cache)
    assert served.requested(before) == ["notification.xml", "snapshot.xml"]
    assert second.source.session_id != first.source.session_id
    assert tree_files(second.rsync_dir) == read(served.scratch.rsync).files


def test_a_damaged_cache_is_dropped_and_read_again(served: Served) -> None:
    first = fetch(NOTIFICATION, RSYNC_BASE, served.cache)
    victim = next(p for p in first.rsync_dir.rglob("*.roa"))
    victim.write_bytes(b"not what was published")
    served.scratch.edit(ISP, "max_length: 26", "max_length: 25")
    assert served.scratch.apply(later(1)) is not None
    before = len(served.server.requests)
    second = fetch(NOTIFICATION, RSYNC_BASE, served.cache)
    assert served.requested(before) == ["notification.xml", "snapshot.xml"]
    assert tree_files(second.rsync_dir) == read(served.scratch.rsync).files
    assert not first.rsync_dir.exists()  # the damaged tree is gone


def test_an_unreadable_state_is_dropped_and_read_again(served: Served) -> None:
    first = fetch(NOTIFICATION, RSYNC_BASE, served.cache)
    (state,) = served.cache.glob(f"*/{STATE}")
    state.write_text("{not json")
    before = len(served.server.requests)
    second = fetch(NOTIFICATION, RSYNC_BASE, served.cache)
    assert served.requested(before) == ["notification.xml", "snapshot.xml"]
    assert second.rsync_dir != first.rsync_dir
    assert tree_files(second.rsync_dir) == read(served.scratch.rsync).files


def test_the_cache_is_private_and_records_what_it_holds(served: Served) -> None:
    copy = fetch(NOTIFICATION, RSYNC_BASE, served.cache)
    (entry,) = served.cache.iterdir()
    for directory in (served.cache, entry, copy.rsync_dir):
        assert stat.S_IMODE(directory.stat().st_mode) == 0o700, directory
    state = json.loads((entry / STATE).read_text())
    assert state["uri"] == NOTIFICATION and state["serial"] == copy.source.serial
    assert state["session_id"] == copy.source.session_id
    assert set(state["files"]) == set(read(served.scratch.rsync).files)


def test_objects_outside_the_rsync_base_are_left_out(served: Served) -> None:
    """A shared repository serves other publishers' objects too: they are not this CA's."""
    published = read(served.scratch.rsync).files
    first = fetch(NOTIFICATION, RSYNC_BASE, served.cache)
    assert tree_files(first.rsync_dir) == published
    copy = fetch(NOTIFICATION, RSYNC_BASE + "members/", served.cache / "narrow")
    assert tree_files(copy.rsync_dir) == {
        path[len("members/") :]: data for path, data in published.items() if path.startswith("members/")
    }


def test_default_cache_dir_follows_xdg(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_cache_dir() == tmp_path / "xdg" / "rpki-reconciler" / "remote"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_cache_dir() == tmp_path / "home" / ".cache" / "rpki-reconciler" / "remote"


@pytest.mark.parametrize(
    ("uri", "base", "says"),
    [
        ("http://rpki.example.net/rrdp/notification.xml", RSYNC_BASE, "plain http is refused"),
        ("ftp://rpki.example.net/x", RSYNC_BASE, "https:// RRDP notification URL or its rsync://"),
        (NOTIFICATION, "https://rpki.example.net/repo/", "is not an rsync base"),
        (NOTIFICATION, "rsync://rpki.example.net/repo", "is not an rsync base"),
    ],
)
def test_what_is_not_a_repository_uri_is_refused(uri: str, base: str, says: str, tmp_path: Path) -> None:
    with pytest.raises(RemoteError, match=says):
        fetch(uri, base, tmp_path / "cache")
    assert not (tmp_path / "cache").exists()
