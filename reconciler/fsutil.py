"""Durable file-system steps shared by the publishers (rsync tree, RRDP) and the audit log."""

from __future__ import annotations

import os
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


def read_bytes(path: str) -> bytes:
    """A file's bytes through the system calls alone: for a registry's 200,000 published files and
    20,000 keys, Python's file objects (made, queried, closed) cost as much again as the reading itself.
    Read up to the end of the file, however few bytes a read returns."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        data = os.read(fd, _READ)
        if not data:
            return data
        pieces = [data]
        while piece := os.read(fd, _READ):
            pieces.append(piece)
        return pieces[0] if len(pieces) == 1 else b"".join(pieces)
    finally:
        os.close(fd)
