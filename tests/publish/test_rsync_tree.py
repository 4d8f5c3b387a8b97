"""The rsync tree is switched as a whole, readable by the daemon, and old trees are pruned."""

from __future__ import annotations

import os
import stat
import subprocess
import time
from pathlib import Path

import pytest

from reconciler.publish import rsync_tree
from reconciler.publish.rsync_tree import (
    IN_FLIGHT_GRACE,
    KEEP_OLD_TREES,
    KEPT_ASIDE,
    REMOVING,
    SYNC_EACH_UP_TO,
    PublishError,
    Removals,
    publish,
)
from tests.helpers import T0, later, scratch_copy


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


def _old_trees(directory: Path) -> list[Path]:
    """Trees published an hour apart and all past the grace period; the newest is served."""
    for hour in range(KEEP_OLD_TREES + 2):
        publish(directory, {"ca/x.roa": bytes([hour]), f"ca/{hour}.roa": b"y"}, later(hour))
    trees = sorted((directory / "trees").iterdir())  # by name: by the time they were published
    for age, tree in enumerate(reversed(trees)):
        then = time.time() - IN_FLIGHT_GRACE.total_seconds() - 60 - age * 3600
        os.utime(tree, (then, then))
    return trees


def test_old_trees_are_removed_by_a_child_process_while_the_caller_goes_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = _old_trees(tmp_path)
    started: list[list[str]] = []
    real_popen = subprocess.Popen

    def popen(args: list[str], **options: object) -> subprocess.Popen[bytes]:
        started.append(args)
        return real_popen(args, **options)  # type: ignore[call-overload, no-any-return]

    monkeypatch.setattr(subprocess, "Popen", popen)
    with Removals() as removals:
        served = publish(tmp_path, {"ca/x.roa": b"last"}, later(10), removals=removals)
        # Renamed out of the way at once: nothing links from them or serves them any more.
        names = sorted(p.name for p in (tmp_path / "trees").iterdir())
        assert [n for n in names if not n.startswith(REMOVING)] == sorted(
            [served.name, *(p.name for p in before[-(KEEP_OLD_TREES - 1) :])]
        )
        assert started and started[0][:3] == ["rm", "-rf", "--"]
        assert sorted(Path(a).name for a in started[0][3:]) == sorted(
            REMOVING + p.name for p in before[: -(KEEP_OLD_TREES - 1)]
        )
    assert sorted((tmp_path / "trees").iterdir()) == sorted([served, *before[-(KEEP_OLD_TREES - 1) :]])
    assert (tmp_path / "rsync" / "ca" / "x.roa").read_bytes() == b"last"


def test_a_tree_left_half_removed_goes_with_the_next_prune(tmp_path: Path) -> None:
    """An apply killed while ``rm`` ran leaves a ``.removing-`` tree: never served, removed next time."""
    publish(tmp_path, {"ta.cer": b"1"}, T0)
    left = tmp_path / "trees" / f"{REMOVING}20261123T110000-1-abcdef"
    (left / "ca").mkdir(parents=True)
    (left / "ca" / "x.roa").write_bytes(b"x")
    publish(tmp_path, {"ta.cer": b"2"}, later(1))
    assert not left.exists()


def test_old_trees_are_removed_in_process_without_rm(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    before = _old_trees(tmp_path)

    def no_rm(*_: object, **__: object) -> None:
        raise FileNotFoundError("rm")

    monkeypatch.setattr(subprocess, "Popen", no_rm)
    with Removals() as removals:
        served = publish(tmp_path, {"ca/x.roa": b"last"}, later(10), removals=removals)
    assert sorted((tmp_path / "trees").iterdir()) == sorted([served, *before[-(KEEP_OLD_TREES - 1) :]])


def test_a_failed_removal_is_retried_by_the_next_prune(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = _old_trees(tmp_path)
    real_popen = subprocess.Popen
    monkeypatch.setattr(subprocess, "Popen", lambda _, **options: real_popen(["false"], **options))
    publish(tmp_path, {"ca/x.roa": b"last"}, later(10))
    left = [p for p in (tmp_path / "trees").iterdir() if p.name.startswith(REMOVING)]
    assert len(left) == len(before) - (KEEP_OLD_TREES - 1)
    monkeypatch.undo()
    publish(tmp_path, {"ca/x.roa": b"again"}, later(11))
    assert not [p for p in (tmp_path / "trees").iterdir() if p.name.startswith(REMOVING)]


def test_an_apply_has_removed_the_old_trees_when_it_returns(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Through the engine: the removal runs beside RRDP and the memo, and is over when apply returns,
    however long it takes (here ``rm`` starts half a second late)."""
    real_popen = subprocess.Popen
    slow = ["sh", "-c", 'sleep 0.5; exec "$@"', "sh"]
    monkeypatch.setattr(subprocess, "Popen", lambda args, **options: real_popen([*slow, *args], **options))
    scratch = scratch_copy(tmp_path)
    for day in range(KEEP_OLD_TREES + 2):
        assert scratch.apply(later(24 * day)) is not None  # a day on: manifests and CRLs are renewed
    trees = tmp_path / "published" / "trees"
    assert len(list(trees.iterdir())) == KEEP_OLD_TREES + 2  # all young: all kept
    _age(trees, IN_FLIGHT_GRACE.total_seconds() + 60)
    assert scratch.apply(later(24 * (KEEP_OLD_TREES + 2))) is not None
    assert len(list(trees.iterdir())) == KEEP_OLD_TREES
    assert not [p for p in trees.iterdir() if p.name.startswith(REMOVING)]


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
