"""A publication directory that cannot take the new tree -- full, or read-only -- gives a clear error,
and the publication already served stays exactly as it was.

The failures are real: each test runs apply in a private mount namespace (``unshare --mount``) where
the publication directory is a small tmpfs, or a read-only bind mount of itself.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import Scratch, scratch_copy

ISP = "cas/members/example-isp.yaml"

FULL_DISK = """
set -e
pub="$1"; shift
used=$(du -sk "$pub" | cut -f1)
cp -a "$pub" "$pub.copy"
mount -t tmpfs -o size=$((used + 24))k tmpfs "$pub"
cp -a "$pub.copy/." "$pub/"
rm -rf "$pub.copy"
# room for the lock file and little else: unchanged files are linked, not copied, so it is the new
# objects that must not fit
avail=$(df -k --output=avail "$pub" | tail -1)
dd if=/dev/zero of="$pub/filler" bs=1k count=$((avail - 8)) status=none
before=$(readlink "$pub/rsync")
set +e
"$@"
echo "exit=$?"
echo "served-before=$before"
echo "served-after=$(readlink "$pub/rsync")"
echo "trees=$(ls "$pub/trees" | wc -l)"
"""

READ_ONLY = """
set -e
pub="$1"; shift
mount --bind "$pub" "$pub"
mount -o remount,ro,bind "$pub"
set +e
"$@"
echo "exit=$?"
"""


def _unshare_or_fail() -> None:
    probe = subprocess.run(["unshare", "--mount", "true"], capture_output=True, text=True, check=False)
    if probe.returncode != 0:
        pytest.fail(f"these tests need unshare --mount (run as root): {probe.stderr.strip()}", pytrace=False)


@pytest.fixture
def applied(tmp_path: Path) -> Scratch:
    _unshare_or_fail()
    scratch = scratch_copy(tmp_path)
    scratch.edit(
        "rpki.yaml", "  directory: ../published", "  directory: ../published\naudit_log: ../audit.jsonl\n#"
    )
    assert scratch.apply() is not None
    scratch.edit(ISP, "max_length: 26", "max_length: 25")
    return scratch


def _run(script: str, scratch: Scratch) -> dict[str, str]:
    published = scratch.root / "published"
    argv = [
        sys.executable,
        "-m",
        "reconciler",
        "apply",
        str(scratch.repo),
        "--yes",
        "--simulate-time",
        "--now",
        "2026-11-23T13:00Z",
    ]
    done = subprocess.run(
        ["unshare", "--mount", "--propagation", "private", "sh", "-c", script, "sh", str(published), *argv],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    found = dict(
        line.split("=", 1)
        for line in done.stdout.splitlines()
        if line.startswith(("served-", "exit=", "trees="))
    )
    found["stderr"] = done.stderr
    return found


def test_a_full_disk_leaves_the_served_tree_as_it_was(applied: Scratch) -> None:
    result = _run(FULL_DISK, applied)
    assert result["exit"] == "1", result
    assert (
        "No space left on device" in result["stderr"] and "previous tree is still served" in result["stderr"]
    )
    assert result["served-before"] == result["served-after"]
    assert result["trees"] == "1"  # the unfinished tree was removed


def test_a_read_only_publication_directory_is_a_clear_error(applied: Scratch) -> None:
    served = applied.rsync.resolve()
    files = {p: p.read_bytes() for p in served.rglob("*") if p.is_file()}
    result = _run(READ_ONLY, applied)
    assert result["exit"] == "1", result
    assert "Read-only file system" in result["stderr"] and "remount it read-write" in result["stderr"]
    assert applied.rsync.resolve() == served
    assert {p: p.read_bytes() for p in served.rglob("*") if p.is_file()} == files
