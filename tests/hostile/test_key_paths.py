"""Key files (and every file read back) are read only when they are regular files: a FIFO or a
directory at a key path is a clear error at once, never a hang while the lock's heartbeat renews; a key
that cannot be read is reported as a read error, with a fix for reading."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from reconciler.fsutil import ReadError, read_bytes
from tests.helpers import Scratch, scratch_copy

#: Far longer than any of these commands takes; a read that blocks is caught by this, not by CI.
HANG = 60


def rpkictl(*args: str, prefix: tuple[str, ...] = ()) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(
            [*prefix, sys.executable, "-m", "reconciler", *args],
            capture_output=True,
            text=True,
            timeout=HANG,
            check=False,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"rpkictl {' '.join(args)} still running after {HANG} s: it blocked on a read")


@pytest.fixture
def applied(tmp_path: Path) -> Scratch:
    scratch = scratch_copy(tmp_path)
    scratch.apply()
    return scratch


def test_read_bytes_reads_regular_files_only(tmp_path: Path) -> None:
    regular = tmp_path / "file"
    regular.write_bytes(b"x" * 200_000)
    assert read_bytes(str(regular)) == b"x" * 200_000
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    for path, kind in (
        (fifo, "a FIFO"),
        (tmp_path, "a directory"),
        (Path("/dev/zero"), "a character device"),
    ):
        with pytest.raises(ReadError, match=kind):
            read_bytes(str(path))
    with pytest.raises(ReadError) as missing:
        read_bytes(str(tmp_path / "absent"))
    assert isinstance(missing.value, OSError) and missing.value.filename == str(tmp_path / "absent")


def test_a_fifo_at_a_key_path_is_an_error_not_a_hang(applied: Scratch) -> None:
    key = applied.root / "keys" / "example-isp.pem"
    key.unlink()
    os.mkfifo(key, 0o600)
    assert rpkictl("plan", str(applied.repo)).returncode == 2  # a plan needs no key: it does not wait
    result = rpkictl("apply", str(applied.repo), "--yes")
    assert result.returncode == 1, result.stdout + result.stderr
    assert f"cannot read the key file {key}: a FIFO, not a regular file" in result.stderr


def test_a_directory_at_a_key_path_is_an_error_that_says_so(applied: Scratch) -> None:
    key = applied.root / "keys" / "online.pem"
    key.unlink()
    key.mkdir()
    result = rpkictl("apply", str(applied.repo), "--yes")
    assert result.returncode == 1
    assert f"cannot read the key file {key}: a directory, not a regular file" in result.stderr
    assert "readable by other users" not in result.stderr


def test_a_fifo_beside_the_keys_does_not_hang_signing(applied: Scratch) -> None:
    """The record of checked key files is read and appended to while signing: a FIFO there is ignored."""
    checked = applied.root / "keys" / ".checked-keys"
    checked.unlink(missing_ok=True)
    os.mkfifo(checked, 0o600)
    result = rpkictl("apply", str(applied.repo), "--yes")  # at the real time: everything is renewed
    assert result.returncode == 0, result.stderr


def test_an_unreadable_key_is_a_read_error(applied: Scratch) -> None:
    """chmod 000, run without the capability that lets root read anyway."""
    setpriv = shutil.which("setpriv")
    assert setpriv is not None, "setpriv (util-linux) is needed to drop root's file-reading capability"
    key = applied.root / "keys" / "ta.pem"
    key.chmod(0)
    drop = "-dac_override,-dac_read_search"
    without = (setpriv, f"--bounding-set={drop}", f"--inh-caps={drop}")
    for command in (("apply", str(applied.repo)), ("apply", str(applied.repo), "--yes")):
        result = rpkictl(*command, prefix=without)
        assert result.returncode == 1, result.stdout
        assert f"cannot read the key file {key}: Permission denied" in result.stderr, command
        assert "cannot write" not in result.stderr and "write access" not in result.stderr, command
