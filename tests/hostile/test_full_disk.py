"""An apply on a publication directory with only a little space left, at many fill levels: a tmpfs
mounted by the test (as root, in CI too). Whatever step runs out of space, the message tells the truth
about what is served (never "nothing was published" once the rsync tree was swapped), RRDP is reported
as it is, the audit chain stays intact, and once space is freed the next apply converges."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from reconciler import engine, published
from reconciler.apply import audit
from reconciler.desired import load
from reconciler.publish import rrdp
from tests.crash.test_kill_points import consistency_problems
from tests.helpers import Scratch, scratch_copy
from tests.publish.test_rrdp import with_rrdp
from tests.test_cli_review import rpkictl

ISP = "cas/members/example-isp.yaml"
SIZE = 1024 * 1024
FREE_KB = [0, 4, 16, 24, 32, 44, 60]  # left free before the apply


@pytest.fixture
def mounted(tmp_path: Path) -> Iterator[Path]:
    """``tmp_path/published``: a 1 MB tmpfs, unmounted afterwards whatever happens."""
    if os.geteuid() != 0:
        pytest.fail("mounting a tmpfs needs root (CI runs these tests as root)")
    where = tmp_path / "published"
    where.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={SIZE}", "tmpfs", str(where)], check=True)
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


def fill(directory: Path, leave: int) -> Path:
    """Leave about ``leave`` bytes free in the file system of ``directory``."""
    filler = directory / "filler"
    found = os.statvfs(directory)
    free = found.f_bavail * found.f_frsize
    with filler.open("wb") as out:
        remaining = max(0, free - leave)
        while remaining:
            try:
                written = out.write(b"\0" * min(remaining, 1 << 16))
                out.flush()
            except OSError:
                break
            remaining -= written
    return filler


def served_name(scratch: Scratch) -> str | None:
    link = scratch.rsync
    return str(link.readlink()) if link.is_symlink() else None


def notification(scratch: Scratch) -> bytes | None:
    path = scratch.root / "published" / "rrdp" / rrdp.NOTIFICATION
    return path.read_bytes() if path.is_file() else None


@pytest.mark.parametrize("free_kb", FREE_KB)
def test_an_apply_on_a_nearly_full_disk_tells_the_truth_and_then_converges(
    tmp_path: Path, mounted: Path, free_kb: int
) -> None:
    scratch = with_rrdp(scratch_copy(tmp_path))
    first = rpkictl("apply", str(scratch.repo), "--yes")
    assert first.returncode == 0, first.stderr
    scratch.edit(ISP, "max_length: 26", "max_length: 25")
    before_tree, before_rrdp = served_name(scratch), notification(scratch)
    filler = fill(mounted, free_kb * 1024)

    tried = rpkictl("apply", str(scratch.repo), "--yes")
    said = tried.stdout + tried.stderr
    after_tree, after_rrdp = served_name(scratch), notification(scratch)
    assert "Traceback" not in said
    if tried.returncode == 0:
        assert "Applied:" in tried.stdout and after_tree != before_tree and after_rrdp != before_rrdp
    elif after_tree == before_tree:
        assert "nothing was published" in said or "previous tree is still served" in said, said
        assert after_rrdp == before_rrdp
    else:  # the rsync tree went out: the message must say so, and say where RRDP stands
        assert "nothing was published" not in said and "still served unchanged" not in said, said
        assert "the rsync tree is published" in said, said
        if after_rrdp == before_rrdp:
            assert "RRDP is behind" in said, said
    verified = rpkictl("log", str(scratch.repo), "--verify")
    assert verified.returncode == 0, verified.stdout + verified.stderr
    log = audit.read(load(scratch.repo).audit_log_path)
    assert log[-1].record["status"] in ("applied", "failed", "started"), log[-1]
    if log[-1].record["status"] == "failed":
        assert log[-1].record["message"] in said or log[-1].record["message"].split(";")[0] in said

    filler.unlink()
    again = rpkictl("apply", str(scratch.repo), "--yes")
    assert again.returncode == 0, again.stdout + again.stderr
    settled = rpkictl("plan", str(scratch.repo))
    assert settled.returncode == 0, settled.stdout  # no changes left
    files = published.read(scratch.rsync).files
    assert consistency_problems(files) == []
    assert engine.rrdp_drift(engine.open_workspace(scratch.repo)) is None
    assert rpkictl("log", str(scratch.repo), "--verify").returncode == 0
    assert audit.read(load(scratch.repo).audit_log_path)[-1].record["status"] == "applied"


def test_a_write_cut_short_leaves_no_torn_audit_line(mounted: Path) -> None:
    """An audit append that does not fit is truncated away: the log stays whole, the chain goes on."""
    log = mounted / "audit.jsonl"
    audit.append(log, {"status": "applied", "n": 1}, now=engine.clock.now())
    filler = fill(mounted, 0)
    with pytest.raises(OSError, match="No space left"):
        audit.append(log, {"status": "applied", "message": "x" * 20000}, now=engine.clock.now())
    assert log.read_bytes().endswith(b"\n") and audit.verify(log) == []
    filler.unlink()
    assert audit.append(log, {"status": "applied", "n": 2}, now=engine.clock.now()).seq == 2
    assert audit.verify(log) == []
