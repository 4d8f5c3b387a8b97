"""What the loader refuses before it parses a file: anything that is not a file of the repository itself,
files too large to be desired state, and YAML nested deeper or whose aliases expand further than any real
need.

A pull request can add any file to the desired-state repository, including a symbolic link to the CA's own
private key or to ``/etc/shadow``. Such a file is never read: reading it would put its text into error
messages (which the pull-request workflow posts as comments) and into the parse cache. A link to another
file of the repository is fine. A "billion laughs" -- a few hundred bytes of aliases of aliases that
expand to a billion values -- is refused from the parser's events alone, before anything is built from it.
"""

from __future__ import annotations

import stat
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.events import (
    AliasEvent,
    MappingEndEvent,
    MappingStartEvent,
    ScalarEvent,
    SequenceEndEvent,
    SequenceStartEvent,
)

from reconciler.diagnostics import Diagnostic

try:
    from _ruamel_yaml import CParser  # libyaml, from ruamel.yaml.clib
except ImportError:  # pragma: no cover - a pure-Python install
    CParser = None

#: The largest file read. A CA file with half a million ROA entries is about 30 MB; anything larger is
#: not desired state, and parsing it would only take time and memory.
MAX_FILE_BYTES = 32 << 20

#: The deepest nesting of lists and mappings read. The desired state needs five levels; the round-trip
#: loader builds values recursively, and both parsers slow down with the square of the depth (ten
#: thousand levels of ``[`` took minutes).
MAX_DEPTH = 100

#: The most values that aliases may add to a file. A CA that reuses a resource list or a ROA entry adds a
#: handful; aliases of aliases multiply, and every value they add is built, checked and remembered.
MAX_ALIAS_VALUES = 100_000

_OUTSIDE_HINT = "replace the link with the file itself: only files inside the repository are read"


def readable(root: Path, path: Path) -> Path | Diagnostic:
    """The real path of ``path`` when it is a regular file inside ``root`` (resolved) and not too large;
    otherwise the diagnostic that says why it is not read. Reading the real path, not the link, keeps a
    link swapped after this check from sending the read elsewhere.

    Only a link is resolved: the loader finds files by walking directories without following links
    (and refuses a ``cas/`` that is one), so a file that is not a link lies where it was found. A
    registry's tens of thousands of files then cost one ``lstat`` each."""
    try:
        found = path.lstat()
    except OSError as exc:
        return Diagnostic(path, 1, 1, f"cannot read this file: {exc.strerror}")
    real = path
    if stat.S_ISLNK(found.st_mode):
        try:
            real = path.resolve(strict=True)
            found = real.stat()
        except (OSError, RuntimeError):
            return Diagnostic(
                path,
                1,
                1,
                "cannot read this file: it is a broken or looping symbolic link",
                "fix or remove it",
            )
        if root not in real.parents:
            return Diagnostic(
                path,
                1,
                1,
                "this file is a symbolic link that points outside the desired-state repository; it was not "
                "read",
                _OUTSIDE_HINT,
            )
    if not stat.S_ISREG(found.st_mode):
        return Diagnostic(path, 1, 1, "this is not a regular file", "desired state is plain YAML files")
    if found.st_size > MAX_FILE_BYTES:
        return Diagnostic(
            path,
            1,
            1,
            f"this file is too large to read ({found.st_size} bytes)",
            f"a file holds at most {MAX_FILE_BYTES >> 20} MB; split a CA's ROAs across child CAs",
        )
    return real


def directory_outside(root: Path, directory: Path) -> Diagnostic | None:
    """A directory of the repository (``cas/``) that is a link to one outside it: nothing under it is
    looked at, let alone read."""
    try:
        real = directory.resolve(strict=True)
    except (OSError, RuntimeError):
        return None  # a missing directory is reported by whoever needs it
    if real != root and root not in real.parents:
        return Diagnostic(
            directory,
            1,
            1,
            "this directory is a symbolic link that points outside the desired-state repository; "
            "nothing in it was read",
            _OUTSIDE_HINT,
        )
    return None


def may_alias(text: str) -> bool:
    """Whether ``text`` can hold an alias at all (one needs an anchor, ``&``, and a reference, ``*``)."""
    return "*" in text and "&" in text


def scan(path: Path, text: str, *, pure: bool) -> tuple[bool, Diagnostic | None]:
    """Whether ``text`` uses aliases, and the diagnostic that refuses it: at the alias that takes it past
    :data:`MAX_ALIAS_VALUES` values added, or at the collection nested deeper than :data:`MAX_DEPTH`.

    Counted on the parser's events, and stopped at either limit: every anchored collection's size is
    known when it closes, so an alias adds that size without anything being expanded, and nothing deeper
    than the limit is ever parsed (both parsers take time that grows with the square of the nesting).
    libyaml's parser is used unless ``pure`` (the text is read differently by the two parsers, or libyaml
    is missing) or unless it fails; then ruamel's, which reads the file in the end. Text that neither can
    parse up to a limit is left to the loader, which reports its syntax error.
    """
    readers = [_libyaml_events, _ruamel_events] if not pure and CParser is not None else [_ruamel_events]
    for events in readers:
        found = _try_count(path, events, text)
        if found is not None:
            return found
    return False, None


def _try_count(
    path: Path, events: Callable[[str], Iterator[Any]], text: str
) -> tuple[bool, Diagnostic | None] | None:
    """:func:`_count` over one parser's events; None when that parser cannot read the text."""
    try:
        return _count(path, events(text))
    except Exception:  # a syntax error: the next parser's turn, or the loader's to word it
        return None


def _ruamel_events(text: str) -> Iterator[Any]:
    return iter(YAML(typ="rt").parse(text))


def _libyaml_events(text: str) -> Iterator[Any]:
    parser = CParser(text)
    try:
        while True:
            event = parser.get_event()
            yield event
            if event is None or type(event).__name__ == "StreamEndEvent":
                return
    finally:
        parser.dispose()


def _count(path: Path, events: Iterator[Any]) -> tuple[bool, Diagnostic | None]:
    """Whether the events hold an alias, and the diagnostic at the first event past a limit."""
    counter = _Counter()
    for event in events:
        kind = type(event)
        if kind is ScalarEvent:
            counter.add(1, event.anchor)
        elif kind is MappingStartEvent or kind is SequenceStartEvent:
            counter.open.append([event.anchor, 1])
            if len(counter.open) > MAX_DEPTH:
                return counter.aliased, _at(
                    path,
                    event,
                    f"this YAML is nested too deeply to read (more than {MAX_DEPTH} levels)",
                    "the desired state needs a handful of levels; check the brackets and the indentation",
                )
        elif kind is MappingEndEvent or kind is SequenceEndEvent:
            anchor, size = counter.open.pop()
            counter.add(size, anchor)
        elif kind is AliasEvent and counter.alias(event.anchor) > MAX_ALIAS_VALUES:
            return True, _at(
                path,
                event,
                f"YAML aliases in this file expand to more than {MAX_ALIAS_VALUES:,} values",
                "write the values out or use fewer aliases: an alias of an alias multiplies",
            )
    return counter.aliased, None


class _Counter:
    """The values of each open collection and anchored node so far, and what aliases added."""

    def __init__(self) -> None:
        self.sizes: dict[str, int] = {}  # anchor -> the values its node holds, itself included
        self.open: list[list[Any]] = []  # each open collection: [anchor, values so far]
        self.added = 0
        self.aliased = False

    def add(self, size: int, anchor: str | None) -> None:
        """A finished node of ``size`` values: count it in its collection, and under its anchor."""
        if self.open:
            self.open[-1][1] += size
        if anchor is not None:
            self.sizes[anchor] = size

    def alias(self, anchor: str) -> int:
        """An alias adds its anchor's values (an alias into its own open anchor loops: refused later);
        the values all aliases added so far."""
        self.aliased = True
        size = self.sizes.get(anchor, 1)
        self.added += size
        self.add(size, None)
        return self.added


def _at(path: Path, event: Any, message: str, hint: str) -> Diagnostic:
    mark = event.start_mark
    return Diagnostic(path, mark.line + 1, mark.column + 1, message, hint)
