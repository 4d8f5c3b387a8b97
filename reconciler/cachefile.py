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

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import reconciler
from reconciler.fsutil import replace_public

T = TypeVar("T")

#: What reading a document of the wrong shape raises: the cache is then as good as missing.
DAMAGED: tuple[type[Exception], ...] = (ValueError, TypeError, KeyError, AttributeError)


def read(path: Path, version: int | None = None) -> dict[str, Any] | None:
    """The cache's document; None when it is missing, unreadable, not a JSON object, written by another
    release, or (with ``version``) in another version of its format."""
    try:
        document = json.loads(path.read_bytes())
    except (OSError, ValueError):
        return None
    if not isinstance(document, dict) or document.get("written_by") != reconciler.__version__:
        return None
    if version is not None and document.get("version") != version:
        return None
    return document


def read_as(path: Path, version: int, convert: Callable[[dict[str, Any]], T]) -> T | None:
    """The cache's document made into what its owner keeps (``convert``); None when it is missing, not
    this release's or this format's, or of a shape ``convert`` cannot read (see :data:`DAMAGED`)."""
    document = read(path, version)
    if document is None:
        return None
    try:
        return convert(document)
    except DAMAGED:
        return None


def write(path: Path, document: dict[str, Any]) -> bool:
    """Replace the cache with ``document``; False when it could not be written."""
    try:
        path.parent.mkdir(mode=0o755, exist_ok=True)
        stamped = {**document, "written_by": reconciler.__version__}
        # Not fsynced: after a power cut a cache may be the previous one, or empty. Every cache is keyed by
        # what it describes (digests of bytes, a snapshot's serial and hash), so either only costs time.
        replace_public(path, _encoded(stamped), sync=False)
    except (OSError, ValueError):
        return False
    return True


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
