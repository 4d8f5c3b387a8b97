"""A new RRDP snapshot spliced from the previous one: unchanged ``<publish>`` elements copied as bytes,
only the changed objects encoded.

A snapshot lists every object of the repository, so a registry's is hundreds of megabytes, written for
every serial (RFC 8182 §3.3.2). Encoding it afresh means base64 and XML text for every object; a one-ROA
change changes one element. The snapshot is written deterministically (sorted paths, fixed layout, see
``rrdp.snapshot_pieces``), so where each element of the previous snapshot lies follows from the tree it
was made from, which RRDP's check established before anything is published (the snapshot record or a
rebuild, and the file's hash against the notification's).

The previous file is input like everything in the publication directory: it is used only when its size
is exactly the one its tree gives, when ``stat`` says it is the very file whose hash was checked, and
each copied element must begin with its own ``<publish uri=...>`` and end where its length says; the
file's ``stat`` is checked again once everything is copied. Anything else raises :class:`SpliceError`,
and the caller encodes the snapshot in full. The new snapshot is still written, hashed and fsynced
whole.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

#: Every element ends so (``rrdp.snapshot_pieces``).
_CLOSE = b"</publish>\n"
TRAILER = b"</snapshot>\n"
#: Copied elements are read in runs of about this many bytes: few system calls, little memory.
_RUN = 1 << 20


class SpliceError(Exception):
    """The previous snapshot cannot be spliced from (its file is not what its tree says): encode anew."""


def attribute(text: str) -> str:
    """``text`` as an XML attribute value between double quotes."""
    return text.replace("&", "&amp;").replace('"', "&quot;").replace("<", "&lt;")


def element_prefix(rsync_base: str, path: str) -> bytes:
    """The start of the ``<publish>`` element of the object at ``path``, up to its base64."""
    return f'  <publish uri="{attribute(rsync_base + path)}">'.encode()


def element(rsync_base: str, path: str, data: bytes) -> bytes:
    """The whole ``<publish>`` element of the object at ``path`` holding ``data``."""
    return b"".join((element_prefix(rsync_base, path), base64.b64encode(data), _CLOSE))


def _encoded_size(size: int) -> int:
    return 4 * ((size + 2) // 3)


@dataclass(frozen=True, slots=True)
class Previous:
    """The previous snapshot, open: ``fd`` is the file (checked by the caller to be the one whose hash the
    notification lists, as ``stat`` showed it then: ``seen``), ``header`` its first line, ``files`` the
    tree it was made from."""

    fd: int
    seen: os.stat_result
    header: bytes
    files: Mapping[str, bytes]
    rsync_base: str


#: Where an element of the previous file is: its offset, its size and its prefix (``element_prefix``).
_Place = tuple[int, int, bytes]


def _layout(previous: Previous) -> dict[str, _Place]:
    """Where each element of the previous file is, worked out from its tree; raises :class:`SpliceError`
    when the file's size or header is not the one the tree gives."""
    places: dict[str, _Place] = {}
    offset = len(previous.header)
    for path in sorted(previous.files):
        prefix = element_prefix(previous.rsync_base, path)
        size = len(prefix) + _encoded_size(len(previous.files[path])) + len(_CLOSE)
        places[path] = (offset, size, prefix)
        offset += size
    if offset + len(TRAILER) != previous.seen.st_size:
        raise SpliceError(f"{previous.seen.st_size} bytes where the tree gives {offset + len(TRAILER)}")
    if _read(previous.fd, len(previous.header), 0) != previous.header:
        raise SpliceError("it does not begin with its serial's header")
    return places


def spliced(header: bytes, files: Mapping[str, bytes], previous: Previous) -> Iterator[bytes]:
    """The new snapshot (``header``, then every file of ``files`` in path order, then the trailer): the
    element of each file unchanged since ``previous`` copied from it, the others encoded. Raises
    :class:`SpliceError` (possibly after yielding) when the previous file is not what it should be."""
    places = _layout(previous)
    rsync_base = previous.rsync_base
    yield header
    run: list[_Place] = []  # consecutive elements of the previous file
    for path in sorted(files):
        data = files[path]
        before = previous.files.get(path)
        if before is None or (before is not data and before != data):
            if run:
                yield _copied(previous, run)
                run = []
            yield element(rsync_base, path, data)
            continue
        place = places[path]
        offset, size, _ = place
        if run and (offset != run[-1][0] + run[-1][1] or offset + size - run[0][0] > _RUN):
            yield _copied(previous, run)
            run = []
        run.append(place)
    if run:
        yield _copied(previous, run)
    yield TRAILER
    try:
        now = os.fstat(previous.fd)
    except OSError as exc:
        raise SpliceError(f"it cannot be read: {exc.strerror}") from exc
    if identity(now) != identity(previous.seen):
        raise SpliceError("it changed while it was copied")


def _copied(previous: Previous, run: list[_Place]) -> bytes:
    """The bytes of a run of consecutive elements, each checked to begin with its prefix and to end
    where its size says."""
    start = run[0][0]
    length = run[-1][0] + run[-1][1] - start
    chunk = _read(previous.fd, length, start)
    if len(chunk) != length:
        raise SpliceError("it ends early")
    for offset, size, prefix in run:
        at = offset - start
        if not chunk.startswith(prefix, at) or not chunk.startswith(_CLOSE, at + size - len(_CLOSE)):
            raise SpliceError(f"no element for {prefix[16:-2].decode(errors='replace')} at byte {offset}")
    return chunk


def _read(fd: int, length: int, offset: int) -> bytes:
    """``length`` bytes of the previous file from ``offset``; a read error is a reason to encode the
    snapshot anew, not to fail the publication."""
    try:
        return os.pread(fd, length, offset)
    except OSError as exc:
        raise SpliceError(f"it cannot be read: {exc.strerror}") from exc


def identity(found: os.stat_result) -> tuple[int, int, int, int, int]:
    """What ``stat`` says of a file that changes when its bytes do (git's index keeps the same)."""
    return (found.st_dev, found.st_ino, found.st_size, found.st_mtime_ns, found.st_ctime_ns)
