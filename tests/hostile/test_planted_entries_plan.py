"""Entries planted in the served tree (by a compromised web server, or a careless hand): plan names each
one as damage to repair, check reports it, and nothing outside the publication directory is ever read or
followed while the tree is read back."""

from __future__ import annotations

import os
import shutil
import signal
import socket
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from reconciler import engine
from reconciler.plan.model import Plan
from reconciler.published import read, reader
from tests.helpers import T0, Scratch, later, scratch_copy

Plant = Callable[[Path, Path], str]  # (served tree, a directory outside the publication) -> planted path


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Path:
    scratch = scratch_copy(tmp_path_factory.mktemp("pristine"))
    assert scratch.apply(T0) is not None
    return scratch.root


@pytest.fixture
def scratch(pristine: Path, tmp_path: Path) -> Scratch:
    shutil.copytree(pristine, tmp_path / "copy", symlinks=True)
    return Scratch(tmp_path / "copy")


class HungError(Exception):
    """Not an OSError (as TimeoutError is): the code under test must not be able to swallow it."""


@contextmanager
def deadline(seconds: int) -> Iterator[None]:
    """Fail instead of hanging (a FIFO opened for reading blocks until a writer comes)."""

    def expired(*_: object) -> None:
        raise HungError(f"still reading after {seconds} s: something blocked")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def object_named_directory(tree: Path, _outside: Path) -> str:
    (tree / "example-isp" / "x.roa").mkdir()
    return "example-isp/x.roa/"


def junk_in_sub_directory(tree: Path, _outside: Path) -> str:
    (tree / "example-isp" / "sub").mkdir()
    (tree / "example-isp" / "sub" / "junk.roa").write_bytes(b"junk")
    return "example-isp/sub/"


def link_to_etc(tree: Path, _outside: Path) -> str:
    (tree / "example-isp" / "etc").symlink_to("/etc")
    return "example-isp/etc"


def link_to_passwd(tree: Path, _outside: Path) -> str:
    (tree / "online" / "passwd.roa").symlink_to("/etc/passwd")
    return "online/passwd.roa"


def link_to_root_at_top(tree: Path, _outside: Path) -> str:
    (tree / "root").symlink_to("/root")
    return "root"


def link_to_outside_fifo(tree: Path, outside: Path) -> str:
    os.mkfifo(outside / "fifo")  # reading it would block: following the link hangs the test
    (tree / "example-isp" / "AS64496_198-51-100-0_24.roa").symlink_to(outside / "fifo")
    return "example-isp/AS64496_198-51-100-0_24.roa"


def fifo(tree: Path, _outside: Path) -> str:
    os.mkfifo(tree / "online" / "fifo.roa")
    return "online/fifo.roa"


def unix_socket(tree: Path, _outside: Path) -> str:
    here = Path.cwd()
    os.chdir(tree / "example-isp")  # a socket's path is limited to about a hundred bytes
    try:
        with socket.socket(socket.AF_UNIX) as server:
            server.bind("sock.cer")
    finally:
        os.chdir(here)
    return "example-isp/sock.cer"


def link_loop(tree: Path, _outside: Path) -> str:
    (tree / "example-isp" / "a.roa").symlink_to("b.roa")
    (tree / "example-isp" / "b.roa").symlink_to("a.roa")
    return "example-isp/a.roa"


def empty_directory_at_top(tree: Path, _outside: Path) -> str:
    (tree / "x.roa").mkdir()
    return "x.roa/"


PLANTS: dict[str, Plant] = {
    "a directory named like an object": object_named_directory,
    "junk in a sub-directory of a CA directory": junk_in_sub_directory,
    "a symbolic link to /etc": link_to_etc,
    "a symbolic link to /etc/passwd": link_to_passwd,
    "a symbolic link to /root at the top": link_to_root_at_top,
    "a symbolic link to a FIFO outside": link_to_outside_fifo,
    "a FIFO": fifo,
    "a socket": unix_socket,
    "a symbolic link loop": link_loop,
    "an empty directory at the top": empty_directory_at_top,
}


def named(plan: Plan, path: str) -> list[str]:
    return [c.reason for c in plan.changes if c.path == path and c.repair]


@pytest.mark.parametrize("what", list(PLANTS))
def test_plan_and_check_report_each_planted_entry(scratch: Scratch, tmp_path: Path, what: str) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    planted = PLANTS[what](scratch.rsync.resolve(), outside)
    with deadline(30):
        plan = scratch.plan(later(1))
        findings = engine.check(engine.open_workspace(scratch.repo), later(1))
    assert named(plan, planted), f"{what}: no repair names {planted}: {[c.address for c in plan.changes]}"
    assert not plan.gates, f"{what}: damage tripped {[g.id for g in plan.gates]}"
    assert any(planted in f.message and "damaged" in f.message for f in findings), findings


def test_nothing_in_sub_directories_is_read(scratch: Scratch) -> None:
    tree = scratch.rsync.resolve()
    (tree / "example-isp" / "sub").mkdir()
    shutil.copy(tree / "example-isp" / "AS64496_192-0-2-0_24.roa", tree / "example-isp" / "sub" / "x.roa")
    found = read(scratch.rsync)
    assert not [p for p in found.files if p.count("/") > 1]
    assert found.damage == {"example-isp/sub/": found.damage["example-isp/sub/"]}


def test_rsync_link_loop_is_a_clear_report(scratch: Scratch) -> None:
    link = scratch.rsync
    link.unlink()
    link.symlink_to("rsync")
    with deadline(30):
        plan = scratch.plan(later(1))
        findings = engine.check(engine.open_workspace(scratch.repo), later(1))
    reasons = named(plan, "rsync")
    assert reasons and "Too many levels of symbolic links" in reasons[0], reasons
    assert any(f.ca == "(publication)" and "damaged" in f.message for f in findings), findings


def test_rsync_link_leading_outside_is_not_read(scratch: Scratch, tmp_path: Path) -> None:
    """A tree outside the publication directory is not read, even when it holds the very objects."""
    elsewhere = tmp_path / "elsewhere"
    shutil.copytree(scratch.rsync.resolve(), elsewhere)
    scratch.rsync.unlink()
    scratch.rsync.symlink_to(elsewhere)
    found = read(scratch.rsync)
    assert not found.files
    assert found.unusable is not None and "leads outside" in found.unusable
    assert named(scratch.plan(later(1)), "rsync")


def test_rsync_replaced_by_a_fifo_is_a_clear_report(scratch: Scratch) -> None:
    scratch.rsync.unlink()
    os.mkfifo(scratch.rsync)
    with deadline(30):
        reasons = named(scratch.plan(later(1)), "rsync")
    assert reasons and "a FIFO" in reasons[0], reasons


def test_the_projects_own_rsync_link_still_reads(scratch: Scratch) -> None:
    found = read(scratch.rsync)
    assert found.unusable is None and not found.damage
    assert "ta.cer" in found.files
    assert scratch.plan(later(1)).empty


def test_rrdp_replaced_by_a_file_is_a_clear_report(scratch: Scratch) -> None:
    scratch.edit("rpki.yaml", "publication:\n", "publication:\n  rrdp_base: https://rpki.example.net/rrdp/\n")
    rrdp = scratch.root / "published" / "rrdp"
    rrdp.write_bytes(b"not a directory")
    with deadline(30):
        plan = scratch.plan(later(1))
        findings = engine.check(engine.open_workspace(scratch.repo), later(1))
    reasons = [c.reason for c in plan.changes if c.ca == "(rrdp)"]
    assert reasons and "rrdp is a regular file, not a directory" in reasons[0], reasons
    assert any("not a directory" in f.message for f in findings), findings


@pytest.fixture
def with_rrdp(scratch: Scratch) -> Path:
    """The scratch publishing RRDP too; returns its snapshot file."""
    scratch.edit("rpki.yaml", "publication:\n", "publication:\n  rrdp_base: https://rpki.example.net/rrdp/\n")
    assert scratch.apply(later(1)) is not None
    assert scratch.plan(later(1)).empty
    return next((scratch.root / "published" / "rrdp").rglob("snapshot.xml"))


def rrdp_reasons(plan: Plan) -> list[str]:
    return [c.reason for c in plan.changes if c.ca == "(rrdp)"]


def test_an_rrdp_directory_leading_outside_is_not_read(
    scratch: Scratch, with_rrdp: Path, tmp_path: Path
) -> None:
    """The snapshot's serial directory moved outside and linked back: its intact bytes are not read."""
    outside = tmp_path / "outside"
    shutil.move(with_rrdp.parent, outside)
    with_rrdp.parent.symlink_to(outside)
    reasons = rrdp_reasons(scratch.plan(later(1)))
    assert reasons and "is a symbolic link, never made by apply" in reasons[0], reasons


def test_an_rrdp_snapshot_replaced_by_a_fifo_is_reported(scratch: Scratch, with_rrdp: Path) -> None:
    with_rrdp.unlink()
    os.mkfifo(with_rrdp)
    with deadline(30):
        reasons = rrdp_reasons(scratch.plan(later(1)))
    assert reasons and "snapshot.xml" in reasons[0] and "is a FIFO" in reasons[0], reasons


def test_a_file_too_large_to_be_an_object_is_not_read(scratch: Scratch) -> None:
    big = scratch.rsync.resolve() / "example-isp" / "big.roa"
    with big.open("wb") as handle:
        handle.truncate(reader.LARGEST_OBJECT + 1)  # sparse: no disk space taken
    found = read(scratch.rsync)
    assert "example-isp/big.roa" not in found.files
    assert "larger than" in found.damage["example-isp/big.roa"]
    assert named(scratch.plan(later(1)), "example-isp/big.roa")
