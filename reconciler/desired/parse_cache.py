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
only the files of the last load.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reconciler import cachefile

VERSION = 1

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
        return cls(
            content,
            {
                (tuple(loc), bool(key)): (int(line), int(column))
                for loc, key, line, column in positions
                if all(isinstance(part, str | int) for part in loc)
            },
        )


@dataclass
class ParseCache:
    """SHA-256 (hex) of a file's bytes -> what it parsed to; ``used``: the files of this load."""

    entries: dict[str, Parsed] = field(default_factory=dict)
    used: dict[str, Parsed] = field(default_factory=dict)
    changed: bool = False

    def get(self, digest: str) -> Parsed | None:
        found = self.entries.get(digest)
        if found is not None:
            self.used[digest] = found
        return found

    def put(self, digest: str, parsed: Parsed) -> None:
        self.entries[digest] = self.used[digest] = parsed
        self.changed = True


def path(publication_directory: Path) -> Path:
    return publication_directory / "cache" / "desired.json"


def load(publication_directory: Path) -> ParseCache:
    """The cache as last saved; empty when missing or unreadable."""
    return cachefile.read_as(path(publication_directory), VERSION, _from_document) or ParseCache()


def _from_document(document: dict[str, Any]) -> ParseCache:
    return ParseCache({str(digest): Parsed.from_json(row) for digest, row in document["files"].items()})


def save(publication_directory: Path, cache: ParseCache) -> None:
    """Keep the files of this load."""
    if not cache.changed and cache.used.keys() == cache.entries.keys():
        return
    document = {"version": VERSION, "files": {d: p.to_json() for d, p in cache.used.items()}}
    if cachefile.write(path(publication_directory), document):
        cache.changed = False
