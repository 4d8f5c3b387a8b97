"""Durable file-system steps shared by the publishers (rsync tree, RRDP) and the audit log."""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Iterable
from pathlib import Path


def write_public(path: Path, data: bytes | Iterable[bytes], *, sync: bool = True) -> Path:
    """Write and fsync a file readable by all whatever the umask (the rsync daemon or web server may
    serve it as an unprivileged user), creating its directories. ``data`` may come in pieces, written as
    they come. ``sync=False`` leaves the fsync to the caller, who makes thousands of files durable at
    once."""
    path.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    with os.fdopen(fd, "wb") as handle:
        os.fchmod(handle.fileno(), 0o644)
        if isinstance(data, bytes):
            handle.write(data)
        else:
            handle.writelines(data)
        if sync:
            handle.flush()
            os.fsync(handle.fileno())
    return path


def fsync_dir(path: Path) -> None:
    """Flush a directory's entries, so that a file created or renamed in it survives a power cut. (Given
    a file, it flushes the file's data the same way.)"""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def replace_public(path: Path, data: bytes | Iterable[bytes], *, sync: bool = True) -> None:
    """Replace a file in one rename, so that a reader (node_exporter's textfile collector, a web
    server) sees the old file or the new one, never half of it. ``sync=False`` for what a power cut may
    take back (a cache): the rename still keeps readers from half a file. ``data`` may come in pieces."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        write_public(temporary, data, sync=sync)
        temporary.replace(path)
    finally:
        temporary.unlink(missing_ok=True)
    if sync:
        fsync_dir(path.parent)


#: Most files read back (published objects, keys) are a few kilobytes: one read takes them whole.
_READ = 1 << 16


class ReadError(OSError):
    """A file that could not be read: missing, not permitted, or not a regular file. An ``OSError``
    (with ``errno``, ``strerror`` and ``filename``), told apart so that messages say "cannot read" and
    give a fix for reading, not for writing."""


def file_kind(mode: int) -> str:
    """What a file of this ``st_mode`` (from ``stat`` or ``lstat``) is, in words, for messages."""
    for test, name in (
        (stat.S_ISREG, "a regular file"),
        (stat.S_ISLNK, "a symbolic link"),
        (stat.S_ISDIR, "a directory"),
        (stat.S_ISFIFO, "a FIFO"),
        (stat.S_ISSOCK, "a socket"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
    ):
        if test(mode):
            return name
    return "an unknown kind of file"


def read_bytes(path: str) -> bytes:
    """A regular file's bytes through the system calls alone: for a registry's 200,000 published files
    and 20,000 keys, Python's file objects (made, queried, closed) cost as much again as the reading
    itself. Read up to the end of the file, however few bytes a read returns.

    Anything else at ``path`` is a :class:`ReadError` at once, never read: a FIFO would block for ever
    (opened without O_NONBLOCK, or read from), a device would never end, a directory has no bytes."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK)
    except OSError as exc:
        raise ReadError(exc.errno, exc.strerror, path) from exc
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise ReadError(errno.EINVAL, f"{file_kind(mode)}, not a regular file", path)
        data = os.read(fd, _READ)
        if not data:
            return data
        pieces = [data]
        while piece := os.read(fd, _READ):
            pieces.append(piece)
        return pieces[0] if len(pieces) == 1 else b"".join(pieces)
    except ReadError:
        raise
    except OSError as exc:
        raise ReadError(exc.errno, exc.strerror, path) from exc
    finally:
        os.close(fd)
