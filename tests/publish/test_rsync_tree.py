"""The rsync tree is switched as a whole, readable by the daemon, and old trees are pruned."""

from __future__ import annotations

import os
import stat
import time
from pathlib import Path

import pytest

from reconciler.publish import rsync_tree
from reconciler.publish.rsync_tree import (
    IN_FLIGHT_GRACE,
    KEEP_OLD_TREES,
    KEPT_ASIDE,
    SYNC_EACH_UP_TO,
    PublishError,
    publish,
)
from tests.helpers import T0, later


def test_swap_is_a_symlink_to_a_complete_tree(tmp_path: Path) -> None:
    first = publish(tmp_path, {"ta.cer": b"1", "ta/x.mft": b"2"}, T0)
    link = tmp_path / "rsync"
    assert link.is_symlink() and link.resolve() == first
    second = publish(tmp_path, {"ta.cer": b"3"}, later(1))
    assert link.resolve() == second
    assert (link / "ta.cer").read_bytes() == b"3"
    assert not (link / "ta").exists()
    assert (first / "ta" / "x.mft").read_bytes() == b"2"  # kept for transfers in flight


def test_files_are_world_readable_whatever_the_umask(tmp_path: Path) -> None:
    old = os.umask(0o077)
    try:
        tree = publish(tmp_path, {"ca/x.roa": b"x"}, T0)
    finally:
        os.umask(old)
    assert stat.S_IMODE((tree / "ca" / "x.roa").stat().st_mode) == 0o644
    assert stat.S_IMODE((tree / "ca").stat().st_mode) == 0o755


def _age(directory: Path, seconds: float) -> None:
    for tree in directory.iterdir():
        os.utime(tree, (time.time() - seconds, time.time() - seconds))


def test_old_trees_are_pruned_young_ones_kept(tmp_path: Path) -> None:
    """Beyond the newest few, trees are removed once no transfer can still be reading them."""
    for hour in range(KEEP_OLD_TREES + 3):
        publish(tmp_path, {"f.cer": bytes([hour])}, later(hour))
    assert len(list((tmp_path / "trees").iterdir())) == KEEP_OLD_TREES + 3  # all young: all kept
    _age(tmp_path / "trees", IN_FLIGHT_GRACE.total_seconds() + 60)
    publish(tmp_path, {"f.cer": b"last"}, later(10))
    assert len(list((tmp_path / "trees").iterdir())) == KEEP_OLD_TREES


def test_a_directory_kept_aside_is_never_pruned(tmp_path: Path) -> None:
    (tmp_path / "rsync").mkdir()
    publish(tmp_path, {"ta.cer": b"1"}, T0)
    for hour in range(KEEP_OLD_TREES + 2):
        _age(tmp_path / "trees", IN_FLIGHT_GRACE.total_seconds() + 60)
        publish(tmp_path, {"ta.cer": bytes([hour])}, later(hour + 1))
    assert [p for p in (tmp_path / "trees").iterdir() if p.name.endswith(KEPT_ASIDE)]


def test_a_plain_directory_is_kept_aside(tmp_path: Path) -> None:
    (tmp_path / "rsync").mkdir()
    (tmp_path / "rsync" / "hand-made.cer").write_bytes(b"h")
    publish(tmp_path, {"ta.cer": b"1"}, T0)
    assert (tmp_path / "rsync").is_symlink()
    kept = [p for p in (tmp_path / "trees").iterdir() if p.name.endswith("replaced-directory")]
    assert len(kept) == 1 and (kept[0] / "hand-made.cer").read_bytes() == b"h"


def test_unwritable_directory_is_a_clear_error_and_keeps_the_old_tree(tmp_path: Path) -> None:
    """A publication directory that cannot be written (here: its trees/ is a plain file) fails cleanly."""
    served = publish(tmp_path, {"ta.cer": b"1"}, T0)
    blocker = tmp_path / "trees-blocked"
    blocker.write_bytes(b"")
    with pytest.raises(PublishError, match="previous tree is still served"):
        publish(blocker, {"ta.cer": b"2"}, later(1))
    assert (tmp_path / "rsync").resolve() == served
    assert (tmp_path / "rsync" / "ta.cer").read_bytes() == b"1"


@pytest.mark.parametrize(("directories", "synced_whole"), [(3, False), (SYNC_EACH_UP_TO, True), (500, True)])
def test_a_change_is_made_durable_file_by_file_unless_it_makes_many_directories(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, directories: int, synced_whole: bool
) -> None:
    """A change to one CA writes a few files, but every new tree makes each CA's directory anew: beyond
    SYNC_EACH_UP_TO files and directories, one ``sync`` makes it durable instead of an fsync each (a
    registry's 20,000 directories took three seconds). Either way, everything is durable before the swap."""
    files = {f"ca{i}/x.roa": b"x" for i in range(directories - 1)}
    publish(tmp_path, files, T0)
    calls: list[str] = []
    monkeypatch.setattr(rsync_tree, "fsync_dir", lambda path: calls.append(f"fsync {path}"))
    monkeypatch.setattr(os, "sync", lambda: calls.append("sync"))
    real_symlink = Path.symlink_to
    monkeypatch.setattr(Path, "symlink_to", lambda self, *a: calls.append("swap") or real_symlink(self, *a))
    tree = publish(tmp_path, {**files, "ca0/x.roa": b"changed"}, later(1), served=files)  # others linked
    swap = calls.index("swap")
    assert (tree / "ca0" / "x.roa").read_bytes() == b"changed"
    if synced_whole:
        assert calls[:swap] == ["sync"]
    else:
        durable = {c.removeprefix("fsync ") for c in calls[:swap]}
        assert str(tree / "ca0" / "x.roa") in durable and {str(tree / f"ca{i}") for i in range(2)} <= durable
        assert "sync" not in calls
