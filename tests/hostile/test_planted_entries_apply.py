"""Entries planted in the publication directory (by a compromised web server, a careless operator):
apply never carries one into a new tree, never follows one, never deletes anything outside the
publication directory, and leaves served only what its plan put there."""

from __future__ import annotations

import os
import stat
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from reconciler import engine
from reconciler.publish import rrdp
from tests.helpers import Scratch, later, scratch_copy
from tests.publish.test_rrdp import with_rrdp

ISP = "cas/members/example-isp.yaml"
DAY = 86400


@pytest.fixture
def served(tmp_path: Path) -> Scratch:
    scratch = with_rrdp(scratch_copy(tmp_path))
    assert scratch.apply() is not None
    return scratch


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A directory outside the publication directory, with a file in it, and old (past every grace)."""
    where = tmp_path / "outside"
    (where / "1" / "old").mkdir(parents=True)
    (where / "1" / "old" / "snapshot.xml").write_text("not yours")
    (where / "secret").write_text("not yours either")
    for path in (where / "1" / "old", where / "1", where):
        os.utime(path, (time.time() - DAY, time.time() - DAY))
    return where


def tree(scratch: Scratch) -> Path:
    return scratch.rsync.resolve()


def rrdp_dir(scratch: Scratch) -> Path:
    return scratch.root / "published" / "rrdp"


def plant_symlink_to_a_file(scratch: Scratch, outside: Path) -> None:
    (tree(scratch) / "online" / "evil.roa").symlink_to(outside / "secret")


def plant_symlink_to_a_directory(scratch: Scratch, outside: Path) -> None:
    (tree(scratch) / "online" / "etc").symlink_to(outside)


def plant_fifo(scratch: Scratch, outside: Path) -> None:
    os.mkfifo(tree(scratch) / "online" / "pipe.roa")


def plant_directory_named_like_an_object(scratch: Scratch, outside: Path) -> None:
    (tree(scratch) / "online" / "x.roa").mkdir()
    (tree(scratch) / "online" / "x.roa" / "inner.roa").write_bytes(b"junk")


def plant_junk_in_a_sub_directory(scratch: Scratch, outside: Path) -> None:
    (tree(scratch) / "online" / "sub").mkdir()
    (tree(scratch) / "online" / "sub" / "junk.cer").write_bytes(b"junk")


def plant_rsync_loop(scratch: Scratch, outside: Path) -> None:
    scratch.rsync.unlink()
    scratch.rsync.symlink_to("rsync")


def plant_rsync_pointing_outside(scratch: Scratch, outside: Path) -> None:
    scratch.rsync.unlink()
    scratch.rsync.symlink_to(outside)


def plant_rrdp_as_a_file(scratch: Scratch, outside: Path) -> None:
    directory = rrdp_dir(scratch)
    for path in sorted(directory.rglob("*"), reverse=True):
        path.rmdir() if path.is_dir() else path.unlink()
    directory.rmdir()
    directory.write_text("in the way")


def plant_rrdp_as_a_symlink_outside(scratch: Scratch, outside: Path) -> None:
    directory = rrdp_dir(scratch)
    directory.rename(outside / "rrdp-moved")
    directory.symlink_to(outside)


def plant_session_symlink_outside(scratch: Scratch, outside: Path) -> None:
    (rrdp_dir(scratch) / str(uuid.uuid4())).symlink_to(outside)


def plant_dangling_symlink_in_a_serial_directory(scratch: Scratch, outside: Path) -> None:
    notification = rrdp.read_notification(rrdp_dir(scratch))
    assert notification is not None
    serial = rrdp_dir(scratch) / notification.session_id / str(notification.serial)
    (serial / "dangling").symlink_to(outside / "nowhere")


def plant_place_symlink_outside(scratch: Scratch, outside: Path) -> None:
    notification = rrdp.read_notification(rrdp_dir(scratch))
    assert notification is not None
    serial = rrdp_dir(scratch) / notification.session_id / str(notification.serial)
    place = serial / ("0" * 32)
    place.symlink_to(outside / "1")
    os.utime(place, (time.time() - DAY, time.time() - DAY), follow_symlinks=False)


def plant_symlink_at_the_top(scratch: Scratch, outside: Path) -> None:
    """Under no CA's manifest: only a new tree removes it."""
    (tree(scratch) / "passwd.roa").symlink_to(outside / "secret")


def plant_fifo_at_the_top(scratch: Scratch, outside: Path) -> None:
    os.mkfifo(tree(scratch) / "pipe.cer")


PLANTS: list[Callable[[Scratch, Path], None]] = [
    plant_symlink_at_the_top,
    plant_fifo_at_the_top,
    plant_symlink_to_a_file,
    plant_symlink_to_a_directory,
    plant_fifo,
    plant_directory_named_like_an_object,
    plant_junk_in_a_sub_directory,
    plant_rsync_loop,
    plant_rsync_pointing_outside,
    plant_rrdp_as_a_file,
    plant_rrdp_as_a_symlink_outside,
    plant_session_symlink_outside,
    plant_dangling_symlink_in_a_serial_directory,
    plant_place_symlink_outside,
]


def outside_listing(outside: Path) -> dict[str, bytes]:
    return {
        str(path.relative_to(outside)): path.read_bytes() if path.is_file() else b"<dir>"
        for path in sorted(outside.rglob("*"))
        if not path.is_symlink()
    }


def served_entries(directory: Path) -> tuple[dict[str, int], list[str]]:
    """Every entry below ``directory`` by lstat: regular files (path -> size), and anything else."""
    files: dict[str, int] = {}
    other: list[str] = []
    for base, dirs, names in os.walk(directory, followlinks=False):
        for name in [*names, *dirs]:
            path = Path(base) / name
            mode = path.lstat().st_mode
            rel = str(path.relative_to(directory))
            if stat.S_ISREG(mode):
                files[rel] = path.lstat().st_size
            elif not stat.S_ISDIR(mode):
                other.append(rel)
    return files, other


@pytest.mark.parametrize("plant", PLANTS, ids=[p.__name__ for p in PLANTS])
def test_apply_repairs_what_was_planted_and_touches_nothing_outside(
    served: Scratch, outside: Path, plant: Callable[[Scratch, Path], None]
) -> None:
    plant(served, outside)
    before = outside_listing(outside)
    served.edit(ISP, "max_length: 26", "max_length: 25")  # a change, so that apply publishes
    workspace = engine.open_workspace(served.repo)
    result = engine.apply(workspace, engine.plan(workspace, engine.clock.now()))
    assert result is not None

    assert outside_listing(outside) == before  # nothing outside was deleted or changed
    link = served.rsync
    assert link.is_symlink() and str(link.readlink()).startswith("trees/")
    files, other = served_entries(link.resolve())
    assert other == []  # no link, FIFO or anything else carried into the new tree
    assert set(files) == set(result.files)  # only what the plan put there
    assert all(path.count("/") <= 1 for path in files)

    rrdp_files, rrdp_other = served_entries(rrdp_dir(served))
    assert rrdp_dir(served).is_dir() and not rrdp_dir(served).is_symlink()
    assert rrdp_other == []
    assert rrdp.NOTIFICATION in rrdp_files
    assert engine.rrdp_drift(engine.open_workspace(served.repo)) is None  # RRDP serves the new tree


def test_an_unchanged_file_replaced_by_a_link_is_written_not_linked(tmp_path: Path, outside: Path) -> None:
    """Between the read and the new tree, an object becomes a link to a file outside with the very same
    bytes: the new tree gets a file of its own, never a hard link to the outside one."""
    from reconciler.publish.rsync_tree import publish  # noqa: PLC0415 - the unit under test

    directory = tmp_path / "pub"
    data = b"an object" * 100
    first = publish(directory, {"ca/a.roa": data}, engine.clock.now())
    (outside / "same").write_bytes(data)
    (first / "ca" / "a.roa").unlink()
    (first / "ca" / "a.roa").symlink_to(outside / "same")
    second = publish(
        directory, {"ca/a.roa": data, "ca/b.roa": b"new"}, engine.clock.now(), served={"ca/a.roa": data}
    )
    found = (second / "ca" / "a.roa").lstat()
    assert stat.S_ISREG(found.st_mode) and found.st_ino != (outside / "same").stat().st_ino


@pytest.mark.parametrize("plant", PLANTS, ids=[p.__name__ for p in PLANTS])
def test_apply_alone_repairs_what_was_planted(
    served: Scratch, outside: Path, plant: Callable[[Scratch, Path], None]
) -> None:
    """With nothing in the YAML changed, the plan's repairs are enough for apply to publish a clean
    tree, and the next plan has nothing left to do."""
    plant(served, outside)
    now = later(1)  # no renewal due: the repairs alone
    workspace = engine.open_workspace(served.repo)
    first = engine.plan(workspace, now)
    assert not first.empty, "the planted entry is not reported"
    assert engine.apply(workspace, first) is not None
    files, other = served_entries(served.rsync.resolve())
    assert other == [] and all(path.count("/") <= 1 for path in files)
    assert engine.plan(engine.open_workspace(served.repo), now).empty
