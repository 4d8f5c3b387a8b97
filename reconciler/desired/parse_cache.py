"""What YAML files parsed to, remembered by the SHA-256 of their bytes.

A registry's desired state is tens of thousands of small files, and parsing one -- libyaml's events, its
node tree, the plain values -- costs most of a millisecond however small it is: over ten seconds of
every plan. What a file parses to is a function of its bytes alone, so it is remembered under their SHA-256:
the plain values, and the positions of the keys and values that loading it asked for (every ROA entry
carries its line). A file whose bytes are remembered is not parsed at all, unless something asks for a
position that was not remembered: then it is parsed again, there and then.

Only files the libyaml path read are remembered; the content is checked by pydantic and the checks every
time, as if just parsed. The cache is only a cache (see ``cachefile``): losing it costs one slower load.
It lives beside the reconciler's other caches (``<publication directory>/cache/desired.json``) and keeps
only the files of the last load. Anyone able to write the publication directory could edit a row and
have the next plan sign what no one reviewed, so the file is sealed with a MAC keyed by the CA's own
signer (``cachefile``): rows are used only by a load that can check that seal (``load(cache_key=...)``),
and a load that used rows it then finds unsealed is done again without them. Each file's row is kept as
the JSON text it was saved as and read only
when that file's bytes come again: an edited file -- the one a change is about -- costs nothing to look
up, and the rows of files nobody edited are saved again as they were read.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reconciler import cachefile

VERSION = 3

#: A position asked for: the key path, and whether the key (rather than its value) was wanted.
Where = tuple[tuple[str | int, ...], bool]


@dataclass
class Parsed:
    """One file's plain values and the 1-based (line, column) of each position asked for so far."""

    content: Any
    positions: dict[Where, tuple[int, int]] = field(default_factory=dict)

    def to_json(self) -> list[Any]:
        return [
            self.content,
            [[list(loc), key, line, column] for (loc, key), (line, column) in self.positions.items()],
        ]

    @classmethod
    def from_json(cls, row: list[Any]) -> Parsed:
        content, positions = row
        if not isinstance(content, dict):
            raise ValueError("not a mapping")
        found: dict[Where, tuple[int, int]] = {}
        for loc, key, line, column in positions:  # loops, not generators: 170,000 of them in a registry
            for part in loc:
                if not isinstance(part, (str, int)):
                    break
            else:
                found[tuple(loc), bool(key)] = (int(line), int(column))
        return cls(content, found)


@dataclass
class ParseCache:
    """SHA-256 (hex) of a file's bytes -> the JSON text of what it parsed to (``rows``, as saved), and the
    files of this load (``used``), each with its row as read and the number of positions it held then."""

    rows: dict[str, str] = field(default_factory=dict)
    used: dict[str, tuple[Parsed, str | None, int]] = field(default_factory=dict)
    raw: bytes | None = None  # the file as read, for checking its seal once the key is known
    read_rows: bool = False  # whether this load took a file's values from a row (then the seal matters)
    sealed: bool = False  # whether the file as read carries the seal of the key it is saved with

    def get(self, digest: str) -> Parsed | None:
        """What the file with these bytes parsed to; None if unknown or if its row cannot be read."""
        if digest in self.used:
            return self.used[digest][0]
        row = self.rows.get(digest)
        if row is None:
            return None
        try:
            found = Parsed.from_json(json.loads(row))
        except cachefile.DAMAGED:  # a damaged row: parse the file
            return None
        except RecursionError:  # nested deeper than JSON can be read back: damaged too
            return None
        self.used[digest] = (found, row, len(found.positions))
        self.read_rows = True
        return found

    def put(self, digest: str, parsed: Parsed) -> None:
        """Remember a file parsed now. ``rpki.yaml`` is parsed on every load (it says where the cache is):
        when it parses to its row as saved, the cache has not changed, and a registry's plan does not
        write its tens of megabytes again."""
        row = self.rows.get(digest)
        if row is not None and row == _row(parsed):
            self.used[digest] = (parsed, row, len(parsed.positions))
        else:
            self.used[digest] = (parsed, None, -1)

    def forget(self, digest: str) -> None:
        """Leave a file of this load out of the cache (it is not desired state, or uses aliases)."""
        self.used.pop(digest, None)

    def authentic(self, secret: bytes | None) -> bool:
        """Whether the rows this load used can be believed: none was used, or the file they came from
        carries the seal of ``secret`` (remembered, so that saving knows the seal is already there)."""
        self.sealed = secret is not None and self.raw is not None and cachefile.authentic(self.raw, secret)
        return self.sealed or not self.read_rows

    @property
    def changed(self) -> bool:
        """Whether saving would change the cache: a file new, gone, or with positions asked for since,
        or a file not sealed with the key it is saved with."""
        if not self.sealed or self.used.keys() != self.rows.keys():
            return True
        return any(row is None or len(parsed.positions) != known for parsed, row, known in self.used.values())

    def document(self) -> dict[str, Any]:
        """The files of this load; a row whose positions did not grow is written back as it was read."""
        files = {
            digest: row if row is not None and len(parsed.positions) == known else _row(parsed)
            for digest, (parsed, row, known) in self.used.items()
        }
        return {"version": VERSION, "files": files}


def _row(parsed: Parsed) -> str:
    return json.dumps(parsed.to_json(), separators=(",", ":"))


def path(publication_directory: Path) -> Path:
    return publication_directory / "cache" / "desired.json"


def load(publication_directory: Path) -> ParseCache:
    """The cache as last saved, its seal not yet checked (the key is known only once the desired state
    is: see :meth:`ParseCache.authentic`); empty when missing or unreadable."""
    where = path(publication_directory)
    raw = cachefile.read_bytes(where)
    if raw is None:
        return ParseCache()
    document = cachefile.parse(where, raw, VERSION)
    found = cachefile.convert_document(where, document, _from_document) or ParseCache()
    found.raw = raw
    return found


def _from_document(document: dict[str, Any]) -> ParseCache:
    rows = document["files"]
    if not isinstance(rows, dict) or not all(isinstance(row, str) for row in rows.values()):
        raise ValueError("not a table of rows")
    return ParseCache(rows)


#: The cache of a load made before its publication directory existed (or before any key could seal it),
#: by that directory: a first apply loads the YAML before it publishes anything or creates a key, and the
#: plan after it would parse every file again.
_waiting: dict[Path, ParseCache] = {}


def save(publication_directory: Path, cache: ParseCache, secret: bytes | None) -> None:
    """Keep the files of this load, sealed with ``secret``; when the publication directory does not exist
    (yet) or there is no key to seal with, hold them until :func:`save_waiting` (a plan never creates
    the directory, and never writes a cache that the next load could not believe)."""
    if not cache.changed:
        return
    if secret is None or not publication_directory.is_dir():
        _waiting[publication_directory] = cache
        return
    _waiting.pop(publication_directory, None)
    cachefile.write(path(publication_directory), cache.document(), secret=secret)


def save_waiting(publication_directory: Path, secret: bytes | None) -> None:
    """Write what the last load for this publication directory held back because the directory or the
    key did not exist then (see :func:`save`); apply calls this once it has published."""
    cache = _waiting.pop(publication_directory, None)
    if cache is not None and secret is not None:
        save(publication_directory, cache, secret)
