"""The reconciler's caches on disk (``<publication directory>/cache/``, never served): JSON documents
that only ever save work -- the object memo, the YAML parse cache, the RRDP snapshot record.

Reading one that is missing, damaged, of another version of its format or written by another version of
the reconciler gives nothing, and the work is done again: what a cache remembers is what this code made of
some bytes, and another release may read them differently (a stricter decoder, say). A
cache that cannot be written (the publication directory does not exist yet, or is read-only where plans
are reviewed) is not the operator's problem: only the next run is slower. Each is replaced in one rename,
so that two runs never leave half of one.
"""

from __future__ import annotations

import errno
import hashlib
import hmac
import json
import os
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import reconciler
from reconciler import fsutil

T = TypeVar("T")

#: What reading a document of the wrong shape raises: the cache is then as good as missing. (A
#: RecursionError: JSON nested deeper than Python's stack, which no cache of ours ever is.)
DAMAGED: tuple[type[Exception], ...] = (ValueError, TypeError, KeyError, AttributeError, RecursionError)

#: An authenticated cache ends with its MAC: ``,"mac":"<64 hex digits>"}``.
_MAC_TAIL = len(',"mac":""}') + 64

_dropped: list[str] = []


def dropped() -> list[str]:
    """Why each cache found damaged, forged or unauthenticated since the last call was dropped (one line
    each, for the operator's notice); the list is emptied. A missing cache, or one of another release or
    format, is not listed: it is simply rebuilt."""
    found = list(_dropped)
    _dropped.clear()
    return found


def note_dropped(path: Path, why: str) -> None:
    """Say that the cache at ``path`` was dropped because of ``why`` (see :func:`dropped`)."""
    _dropped.append(f"{path}: {why}; dropped, and rebuilt by this run")



def read(path: Path, version: int | None = None, *, secret: bytes | None = None) -> dict[str, Any] | None:
    """The cache's document; None when it is missing, unreadable, not a JSON object, written by another
    release, or (with ``version``) in another version of its format. With ``secret``, also when it does
    not carry the MAC that :func:`write` with the same secret puts there: a cache that anyone able to
    write the publication directory could forge is never believed."""
    raw = read_bytes(path)
    if raw is None:
        return None
    if secret is not None and not authentic(raw, secret):
        note_dropped(path, "not authenticated by this CA's key (edited, forged or damaged)")
        return None
    return parse(path, raw, version)


def read_bytes(path: Path) -> bytes | None:
    """The cache file's bytes; None when it is missing or cannot be read. Only a regular file is read
    (a FIFO planted in its place would block the run, a link would read what it points to)."""
    try:
        if path.is_symlink():
            note_dropped(path, "a symbolic link, not a cache file")
            return None
        return fsutil.read_bytes(str(path))
    except OSError as exc:
        if exc.errno == errno.ENOENT:
            return None
        note_dropped(path, f"cannot be read ({exc.strerror or exc})")
        return None


def parse(path: Path, raw: bytes, version: int | None = None) -> dict[str, Any] | None:
    """The document in ``raw`` (read from ``path``), as :func:`read` gives it, its MAC not checked."""
    try:
        document = json.loads(raw)
    except (ValueError, RecursionError):
        note_dropped(path, "not a JSON document (damaged, or nested too deeply)")
        return None
    if not isinstance(document, dict) or document.get("written_by") != reconciler.__version__:
        return None
    if version is not None and document.get("version") != version:
        return None
    return document


def read_as(
    path: Path, version: int, convert: Callable[[dict[str, Any]], T], *, secret: bytes | None = None
) -> T | None:
    """The cache's document made into what its owner keeps (``convert``); None when it is missing, not
    this release's or this format's, or of a shape ``convert`` cannot read (see :data:`DAMAGED`)."""
    return convert_document(path, read(path, version, secret=secret), convert)


def convert_document(
    path: Path, document: dict[str, Any] | None, convert: Callable[[dict[str, Any]], T]
) -> T | None:
    """``convert(document)``; None when there is no document or it is of a shape ``convert`` cannot read."""
    if document is None:
        return None
    try:
        return convert(document)
    except DAMAGED:
        note_dropped(path, "not of the shape this release writes")
        return None


def authentic(raw: bytes, secret: bytes) -> bool:
    """Whether ``raw`` ends with the MAC that :func:`write` with ``secret`` puts there."""
    body, tail = raw[:-_MAC_TAIL], raw[-_MAC_TAIL:]
    if len(raw) <= _MAC_TAIL or not (tail.startswith(b',"mac":"') and tail.endswith(b'"}')):
        return False
    expected = hmac.new(secret, body, hashlib.sha256).hexdigest().encode()
    return hmac.compare_digest(tail[8:-2], expected)


def _sealed(pieces: Iterable[bytes], secret: bytes) -> Iterator[bytes]:
    """The encoded document's pieces, with its closing brace replaced by the MAC of all that precedes
    it (so that :func:`read` checks the bytes as they are, before parsing them)."""
    mac = hmac.new(secret, digestmod=hashlib.sha256)
    held = b""
    for piece in pieces:
        if held:
            mac.update(held)
            yield held
        held = piece
    body = held[:-1]  # the document's closing brace
    mac.update(body)
    yield body + f',"mac":"{mac.hexdigest()}"}}'.encode()


def write(path: Path, document: dict[str, Any], *, secret: bytes | None = None) -> bool:
    """Replace the cache with ``document``; False when it could not be written. With ``secret``, the
    file ends with a MAC that :func:`read` checks."""
    try:
        path.parent.mkdir(mode=0o700, exist_ok=True)
        stamped = {**document, "written_by": reconciler.__version__}
        # Not fsynced: after a power cut a cache may be the previous one, or empty. Every cache is keyed by
        # what it describes (digests of bytes, a snapshot's serial and hash), so either only costs time.
        pieces = _encoded(stamped)
        _replace_private(path, _sealed(pieces, secret) if secret is not None else pieces)
    except (OSError, ValueError, RecursionError):
        return False
    return True


def _replace_private(path: Path, pieces: Iterable[bytes]) -> None:
    """Replace ``path`` in one rename with a file only its owner can read (mode 0600, whatever the umask).

    A cache is never served, and what it holds (the desired state, what was published) is for the CA's
    own runs: the web server and the rsync daemon that serve the publication directory have no business
    reading it. The temporary file is created anew, never through a link planted in its place."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.unlink(missing_ok=True)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        with os.fdopen(os.open(temporary, flags, 0o600), "wb") as handle:
            os.fchmod(handle.fileno(), 0o600)
            handle.writelines(pieces)
        temporary.replace(path)
    finally:
        temporary.unlink(missing_ok=True)


#: Members of a big object or array encoded at once: the memo of a registry is over a hundred megabytes of
#: JSON, which encoded in one piece (then as bytes) was the peak of a registry's first apply.
_BATCH = 10_000


def _encoded(document: dict[str, Any]) -> Iterator[bytes]:
    """``json.dumps(document, separators=(",", ":"))`` byte for byte, in pieces of at most ``_BATCH``
    members of each top-level value."""
    yield b"{"
    for index, (key, value) in enumerate(document.items()):
        yield f"{',' if index else ''}{_dumps(key)}:".encode()
        if isinstance(value, dict) and len(value) > _BATCH:
            items = list(value.items())
            yield b"{"
            for start in range(0, len(items), _BATCH):
                batch = _dumps(dict(items[start : start + _BATCH]))[1:-1]
                yield f"{',' if start else ''}{batch}".encode()
            yield b"}"
        elif isinstance(value, list) and len(value) > _BATCH:
            yield b"["
            for start in range(0, len(value), _BATCH):
                batch = _dumps(value[start : start + _BATCH])[1:-1]
                yield f"{',' if start else ''}{batch}".encode()
            yield b"]"
        else:
            yield _dumps(value).encode()
    yield b"}"


def _dumps(value: object) -> str:
    return json.dumps(value, separators=(",", ":"))
