"""Route-leak impact of an ASPA change: which announced AS paths change their ASPA verification outcome.

The announcements come with their AS paths: a ``bgpdump -m`` text dump of a route collector's table or
updates (``TABLE_DUMP2|...`` / ``BGP4MP|...`` lines: the prefix in field 6, the path in field 7), or a
CSV of ``prefix,path`` with the path's ASes separated by spaces. A path is read as the collector's peer
sent it: the peer first, the origin last. Each path is verified (``path_verification``) with the ASPAs
before and after the change, by both procedures -- a route received from a customer or a peer
(upstream) and one received from a provider (downstream) -- and the paths whose outcome changes are
listed. One going from Valid or Unknown to Invalid is one routers that enforce ASPA would drop: a leak
caught, or an outage made; a reviewer decides which, and a gate asks them to.

A full table holds about a million paths, most of them not touching the ASes whose ASPA changes: only
paths with such an AS are verified, each distinct path once, however many prefixes it carries.
"""

from __future__ import annotations

import gzip
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from reconciler.plan.impact import Announcement, AnnouncementsError, parse_prefix
from reconciler.plan.path_verification import Outcome, Procedure, Providers, collapse, verify

#: Lines of a dump read at most (a full table of every collector is under 20 million).
MAX_LINES = 50_000_000
#: Lines of a CSV without a header read to tell paths from origins (routes from a peer that originates
#: them have a path of one AS, which reads like an origin).
SNIFF_LINES = 10_000
_BGPDUMP = ("TABLE_DUMP2", "TABLE_DUMP", "BGP4MP")
_HINT = "expected bgpdump -m lines (TABLE_DUMP2|time|B|peer|peer AS|prefix|AS path|...) or CSV prefix,path"


@dataclass(frozen=True, slots=True)
class PathKey:
    """A distinct AS path: the ASes (peer first, prepends collapsed) and whether it held an AS_SET."""

    ases: tuple[int, ...]
    as_set: bool = False


@dataclass
class Routes:
    """The distinct paths of a file with the prefixes announced along each, in file order."""

    paths: dict[PathKey, list[str]] = field(default_factory=dict)
    lines: int = 0

    def add(self, prefix: str, key: PathKey) -> None:
        self.paths.setdefault(key, []).append(prefix)


@dataclass(frozen=True, slots=True)
class Transition:
    """A path whose outcome changes with the ASPA change, by one procedure, and the prefixes it carries."""

    path: PathKey
    procedure: Procedure
    before: Outcome
    after: Outcome
    prefixes: tuple[str, ...]

    @property
    def newly_invalid(self) -> bool:
        """Routers that enforce ASPA would now drop it."""
        return self.after is Outcome.INVALID and self.before is not Outcome.INVALID


def read_routes(path: Path, *, wanted: frozenset[int] | None = None) -> Routes:
    """The paths of ``path`` (gzipped or not). ``wanted``: keep only the paths holding one of these ASes
    (the customers whose ASPA changes), the others cannot change outcome; a line without one of them is
    told apart by its text, before anything of it is parsed."""
    found = Routes()
    tokens = None if wanted is None else {str(asn) for asn in wanted}
    for number, line in _data(path):
        found.lines = number
        prefix, text = _fields(path, number, line)
        if tokens is not None and tokens.isdisjoint(
            text.replace("{", " ").replace("}", " ").replace(",", " ").split()
        ):
            continue
        key = _path(path, number, text)
        if wanted is None or not wanted.isdisjoint(key.ases):
            found.add(str(parse_prefix(path, number, prefix)), key)
    return found


def read_origins(path: Path) -> tuple[list[Announcement], int]:
    """The (prefix, origin) announcements of the paths in ``path``, for route-origin validation, and how
    many were left out because the path ends in an AS_SET (an origin RFC 6811 calls NONE: never valid,
    so no plan can break one). Each line is parsed as far as that needs: its prefix and last AS."""
    found: list[Announcement] = []
    as_sets = 0
    for number, line in _data(path):
        prefix, text = _fields(path, number, line)
        last = text.rsplit(None, 1)[-1] if text.strip() else ""
        if last.endswith("}"):
            as_sets += 1
            continue
        if not last:
            raise AnnouncementsError(path, number, "an empty AS path", _HINT)
        found.append(Announcement(parse_prefix(path, number, prefix), _asn(path, number, last)))
    return found, as_sets


def _data(path: Path) -> Iterator[tuple[int, str]]:
    """The data lines of a path file: a CSV header line (``prefix,path``) left out."""
    first = True
    for number, line in _lines(path):
        if first and _is_header(line):
            first = False
            continue
        first = False
        yield number, line


def carries_paths(path: Path) -> bool:
    """Whether the announcements in ``path`` come with their AS paths: a ``bgpdump -m`` dump, or a CSV
    whose second column is a path (ASes separated by spaces, or a header naming it ``path``). The other
    formats (``impact.read_announcements``) give only the origin. A CSV without a header counts as one
    with paths when any of its first :data:`SNIFF_LINES` lines has a path of several ASes."""
    for index, (_, line) in enumerate(_lines(path)):
        if line.startswith(_BGPDUMP):
            return True
        _, comma, second = line.partition(",")
        if not comma or "\t" in line:
            return False
        if index == 0 and _is_header(line):
            return "path" in second.lower()
        if " " in second.strip():
            return True
        if index >= SNIFF_LINES:
            break
    return False


def changed_customers(before: Providers, after: Providers) -> frozenset[int]:
    """The customer ASes whose providers differ (an ASPA added, removed or changed)."""
    return frozenset(c for c in before.keys() | after.keys() if before.get(c) != after.get(c))


def impact(routes: Routes, before: Providers, after: Providers) -> list[Transition]:
    """Every path whose outcome changes, by each procedure; the newly Invalid first."""
    changed = changed_customers(before, after)
    found = []
    for key, prefixes in routes.paths.items():
        if changed.isdisjoint(key.ases):
            continue
        for procedure in Procedure:
            was = verify(before, key.ases, procedure, as_set=key.as_set)
            now = verify(after, key.ases, procedure, as_set=key.as_set)
            if was is not now:
                found.append(Transition(key, procedure, was, now, tuple(prefixes)))
    found.sort(key=lambda t: (not t.newly_invalid, t.procedure, t.path.ases))
    return found


def providers_of(aspas: Iterable[tuple[int, Iterable[int]]]) -> Mapping[int, frozenset[int]]:
    """Customer -> providers, the union of a customer's ASPAs (as validators take several of them)."""
    found: dict[int, set[int]] = {}
    for customer, providers in aspas:
        found.setdefault(customer, set()).update(providers)
    return {customer: frozenset(providers) for customer, providers in found.items()}


def _is_header(line: str) -> bool:
    """``prefix,path``, ``Prefix,AS path``, ...: a CSV line whose first column is a word, no digits."""
    first = line.partition(",")[0]
    return (
        not line.startswith(_BGPDUMP)
        and any(c.isalpha() for c in first)
        and not any(c.isdigit() for c in first)
    )


def _lines(path: Path) -> Iterator[tuple[int, str]]:
    try:
        with path.open("rb") as raw:
            compressed = raw.read(2) == b"\x1f\x8b"
        with gzip.open(path, "rt", encoding="utf-8") if compressed else path.open(encoding="utf-8") as handle:
            for number, line in enumerate(handle, 1):
                if number > MAX_LINES:
                    raise AnnouncementsError(path, number, f"more than {MAX_LINES:,} lines", "split the file")
                text = line.strip()
                if text and not text.startswith("#"):
                    yield number, text
    except UnicodeDecodeError as exc:
        raise AnnouncementsError(path, 0, "not UTF-8 text", _HINT) from exc
    except (OSError, EOFError) as exc:
        raise AnnouncementsError(path, 0, f"cannot be read: {exc}", "check the file") from exc


def _fields(path: Path, number: int, line: str) -> tuple[str, str]:
    """The prefix and the path text of a dump line or a CSV line."""
    if line.startswith(_BGPDUMP):
        fields = line.split("|")
        if len(fields) < 7:
            raise AnnouncementsError(path, number, f"{len(fields)} fields, a dump line has at least 7", _HINT)
        if fields[2] == "W":
            raise AnnouncementsError(path, number, "a withdrawal carries no path", "leave withdrawals out")
        return fields[5], fields[6]
    prefix, comma, text = line.partition(",")
    if not comma:
        raise AnnouncementsError(path, number, f"{line[:60]!r} is neither a dump line nor prefix,path", _HINT)
    return prefix.strip(), text


def _path(path: Path, number: int, text: str) -> PathKey:
    """An AS path as bgpdump writes it: ASes separated by spaces, an AS_SET as ``{64496,64497}``."""
    ases: list[int] = []
    as_set = False
    for token in text.split():
        if token.startswith("{"):
            as_set = True
            members = token.strip("{}").split(",")
            ases += (_asn(path, number, member) for member in members if member)
            continue
        ases.append(_asn(path, number, token))
    if not ases:
        raise AnnouncementsError(path, number, "an empty AS path", _HINT)
    return PathKey(tuple(collapse(ases)), as_set)  # prepends change no outcome: one path, verified once


def _asn(path: Path, number: int, text: str) -> int:
    value = text.upper().removeprefix("AS")
    if not value.isdigit() or int(value) > 0xFFFFFFFF:
        raise AnnouncementsError(path, number, f"{text!r} is not an AS number", "expected 0-4294967295")
    return int(value)
