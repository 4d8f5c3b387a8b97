"""Route-validity impact of a plan: which routes seen in BGP change RFC 6811 origin-validation state.

A plan's VRP diff says *what* changes; reviewers need to know *whom* it hurts. Given the VRPs before and
after a plan and a list of announcements (from a RIS whois dump or a small CSV), :func:`impact` lists
exactly the announcements whose validity changes, breaking ones (valid -> invalid) first.

Everything here is pure and offline: announcements come from a file the operator downloaded, never from
the network, so a plan stays reproducible.

Semantics (RFC 6811 §2, with RFC 6483 §4 for AS0):

* a VRP *covers* an announcement when it is the same address family and its prefix contains the announced
  prefix (VRP length <= announced length);
* a covering VRP *matches* when its ASN equals the origin AS and the announced length <= its max length;
  a VRP for AS0 never matches, so an origin of AS0 can never be valid;
* any match -> ``valid``; covered but no match -> ``invalid``; not covered -> ``not-found``.

Routes whose origin is an AS_SET (``{64496,64497}`` in a RIS dump) are skipped and counted
(:attr:`AnnouncementFile.as_sets`). RFC 6811 §2 gives such a route the origin NONE, which matches no VRP:
it is never valid, so no plan can make it valid or break a valid one. A plan could only move it between
``invalid`` and ``not-found``; skipping loses those moves, which is why the count is kept, so a report can
say how many routes were left out. AS_SETs are discouraged (RFC 6472) and rare in the global table;
skipping keeps :class:`Announcement` a plain (prefix, origin AS) pair.
"""

from __future__ import annotations

import gzip
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from ipaddress import IPv4Network, IPv6Network, ip_address, ip_network
from itertools import chain
from pathlib import Path
from socket import AF_INET, AF_INET6, inet_pton
from typing import Literal

Vrp = tuple[int, str, int]
"""A validated ROA payload as the plan lists it: (ASN, prefix as ``ipaddress`` prints it, max length)."""

Validity = Literal["valid", "invalid", "not-found"]
Network = IPv4Network | IPv6Network

MAX_ASN = 2**32 - 1
_ASN = re.compile(r"(?:AS)?([0-9]+)", re.IGNORECASE)
_GZIP_MAGIC = b"\x1f\x8b"
_COMMENTS = ("#", "%")  # '#' for hand-written files; real riswhois dumps start with '%' lines
_CSV_EXAMPLE = "e.g. 192.0.2.0/24,AS64496"
_RIS_EXAMPLE = "e.g. 64496<TAB>192.0.2.0/24<TAB>250"


class AnnouncementsError(ValueError):
    """A line of an announcements file that cannot be read: ``<file>:<line>: <problem> (<hint>)``."""

    def __init__(self, path: Path, line: int, problem: str, hint: str) -> None:
        super().__init__(f"{path}:{line}: {problem} ({hint})")
        self.path = path
        self.line = line
        self.problem = problem
        self.hint = hint


@dataclass(frozen=True, slots=True)
class Announcement:
    """One route as seen in BGP: a prefix and the AS that originates it."""

    prefix: Network
    origin: int
    peers: int | None = None  # how many RIS peers saw it (RIS dump format); None for CSV


@dataclass(frozen=True, slots=True)
class AnnouncementFile:
    """What :func:`read_announcements` found, with what it left out so a report can say so."""

    announcements: list[Announcement]
    format: Literal["csv", "ris", "paths", "empty"]
    as_sets: int = 0  # routes with an AS_SET origin, skipped (see the module docstring)
    below_min_peers: int = 0  # RIS routes seen by fewer than ``min_peers`` peers, dropped as noise


def load_announcements(path: Path, *, min_peers: int = 0) -> list[Announcement]:
    """The announcements in ``path`` (CSV or RIS dump, detected per file; may be gzipped).

    ``min_peers`` drops RIS routes seen by fewer peers: a route only one or two collectors' peers see
    is usually a leak or a more-specific kept inside one network, not what the Internet routes.
    """
    return read_announcements(path, min_peers=min_peers).announcements


def read_announcements(path: Path, *, min_peers: int = 0) -> AnnouncementFile:
    """Like :func:`load_announcements`, but also says which format it read and what it skipped.

    The format is decided by the first data line: a TAB means the RIS dump format
    (``origin<TAB>prefix<TAB>peers``), anything else CSV (``prefix,origin_asn``, optional header).
    Every later line must then be in the same format, so a stray line is reported, not guessed at.
    """
    lines = _data_lines(path)
    first = next(lines, None)
    if first is None:
        return AnnouncementFile([], "empty")
    if "\t" in first[1]:
        return _read_ris(path, chain([first], lines), min_peers)
    return AnnouncementFile(_read_csv(path, chain([first], lines)), "csv")


def _data_lines(path: Path) -> Iterator[tuple[int, str]]:
    """(line number, stripped text) of each line that is neither blank nor a comment."""
    data = path.read_bytes()
    if data.startswith(_GZIP_MAGIC):  # riswhoisdump.IPv4.gz as downloaded
        data = gzip.decompress(data)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        bad_line = data.count(b"\n", 0, e.start) + 1
        raise AnnouncementsError(
            path, bad_line, "not UTF-8 text", "expected a CSV or RIS dump text file"
        ) from e
    for number, raw in enumerate(text.split("\n"), start=1):  # not splitlines(): editors count \n only
        line = raw.strip()
        if line and not line.startswith(_COMMENTS):
            yield number, line


def _read_csv(path: Path, lines: Iterable[tuple[int, str]]) -> list[Announcement]:
    out: list[Announcement] = []
    for index, (number, line) in enumerate(lines):
        fields = [f.strip() for f in line.split(",")]
        if index == 0 and _is_header(fields):
            continue
        if len(fields) != 2:
            raise AnnouncementsError(
                path,
                number,
                f"expected 2 comma-separated columns, found {len(fields)}",
                f"CSV lines are prefix,origin_asn, {_CSV_EXAMPLE}",
            )
        out.append(Announcement(_prefix(path, number, fields[0]), _asn(path, number, fields[1])))
    return out


def _is_header(fields: list[str]) -> bool:
    """``prefix,origin_asn``, ``Prefix,ASN``, ...: a first line whose first column is a word, no digits."""
    return any(c.isalpha() for c in fields[0]) and not any(c.isdigit() for c in fields[0])


def _read_ris(path: Path, lines: Iterable[tuple[int, str]], min_peers: int) -> AnnouncementFile:
    out: list[Announcement] = []
    as_sets = below = 0
    for number, line in lines:
        fields = [f.strip() for f in line.split("\t")]
        if len(fields) != 3:
            raise AnnouncementsError(
                path,
                number,
                f"expected 3 tab-separated columns, found {len(fields)}",
                f"RIS dump lines are origin<TAB>prefix<TAB>peers, {_RIS_EXAMPLE}",
            )
        origin_text, prefix_text, peers_text = fields
        prefix = _prefix(path, number, prefix_text)
        peers = _peers(path, number, peers_text)
        if origin_text.startswith("{"):
            _as_set(path, number, origin_text)  # still checked: a malformed line is an error
            as_sets += 1
            continue
        origin = _asn(path, number, origin_text)
        if peers < min_peers:
            below += 1
            continue
        out.append(Announcement(prefix, origin, peers))
    return AnnouncementFile(out, "ris", as_sets=as_sets, below_min_peers=below)


def _prefix(path: Path, number: int, text: str) -> Network:
    """The prefix ``text`` names, exactly: no host bits, no netmask form, no missing length.

    A full RIS dump has a million lines, and ``ip_network(str)`` spends most of its time re-parsing the
    address in Python; ``inet_pton`` (a pure conversion, no lookup) does the common case strictly and
    quickly, and anything it does not take goes through ``ipaddress`` for an exact diagnosis.
    """
    address, slash, length = text.partition("/")
    if slash and length.isascii() and length.isdigit():
        family = AF_INET6 if ":" in address else AF_INET
        try:
            packed = inet_pton(family, address)
        except OSError:
            pass
        else:
            try:
                return (
                    IPv4Network((packed, int(length)))
                    if family == AF_INET
                    else IPv6Network((packed, int(length)))
                )
            except ValueError:
                pass  # host bits or length out of range: diagnosed below
    return _diagnose_prefix(path, number, text)


def parse_prefix(path: Path, number: int, text: str) -> Network:
    """The prefix ``text`` at line ``number`` of ``path``, exactly (see :func:`_prefix`); an
    :class:`AnnouncementsError` names the line otherwise. For readers of the other formats."""
    return _prefix(path, number, text)


def _diagnose_prefix(path: Path, number: int, text: str) -> Network:
    """The slow, exact path of :func:`_prefix`: ``ipaddress`` parses and says what is wrong."""
    hint = "expected a prefix such as 192.0.2.0/24 or 2001:db8::/32"
    address, slash, length = text.partition("/")
    if not slash or not (length.isascii() and length.isdigit()):
        raise AnnouncementsError(path, number, f"{text!r} is not an IP prefix with a length", hint)
    try:
        if "%" in address:  # ipaddress takes IPv6 scope IDs (fe80::%eth0), which BGP has no use for
            raise ValueError(address)
        network = ip_network(text, strict=False)
    except ValueError as e:
        raise AnnouncementsError(path, number, f"{text!r} is not an IP prefix", hint) from e
    if network.network_address != ip_address(address):
        raise AnnouncementsError(
            path, number, f"{text} has host bits set", f"expected the network address, {network}"
        )
    return network


def _asn(path: Path, number: int, text: str) -> int:
    found = _ASN.fullmatch(text)
    value = int(found.group(1)) if found else -1
    if not 0 <= value <= MAX_ASN:
        raise AnnouncementsError(
            path, number, f"{text!r} is not an AS number", "expected 0-4294967295, written 64496 or AS64496"
        )
    return value


def _as_set(path: Path, number: int, text: str) -> None:
    members = [_ASN.fullmatch(m.strip()) for m in text[1:-1].split(",")] if text.endswith("}") else [None]
    if not all(m is not None and int(m.group(1)) <= MAX_ASN for m in members):
        raise AnnouncementsError(
            path, number, f"{text!r} is not an origin AS or AS_SET", "expected 64496 or {64496,64497}"
        )


def _peers(path: Path, number: int, text: str) -> int:
    if not (text.isascii() and text.isdigit()):
        raise AnnouncementsError(
            path,
            number,
            f"{text!r} is not a peer count",
            f"expected a non-negative integer in the third column, {_RIS_EXAMPLE}",
        )
    return int(text)


_Parsed = tuple[int, int, int]  # (IP version, network address as an int, prefix length)


def _parse_vrp_prefix(prefix: str) -> _Parsed:
    """(version, network, length) of a VRP prefix; fast for canonical text, ``ipaddress`` otherwise."""
    address, _, length_text = prefix.partition("/")
    version, family, bits = (6, AF_INET6, 128) if ":" in address else (4, AF_INET, 32)
    try:
        value = int.from_bytes(inet_pton(family, address))
        length = int(length_text) if length_text.isascii() and length_text.isdigit() else -1
    except OSError:
        value = length = -1
    if not 0 <= length <= bits or value & ((1 << (bits - length)) - 1):
        network = ip_network(prefix)  # strict: raises for host bits; a plan's VRPs are canonical
        return network.version, int(network.network_address), network.prefixlen
    return version, value, length


class VrpIndex:
    """VRPs indexed for RFC 6811 lookups; build once, then validate many announcements.

    A prefix of length L is covered only by prefixes of length 0..L that contain it, and there is exactly
    one such prefix per length: so instead of scanning every VRP, a lookup probes at most 33 (IPv4) or
    129 (IPv6) dict keys -- and only for the lengths some VRP actually has, usually a dozen or two.
    The key is (version, network, length), stored as one dict per (version, length) keyed by the
    network's top ``length`` bits: an int key hashes faster than a tuple, which matters for a full table.
    Each entry holds ``{ASN: largest max length}``, all a match needs. AS0 VRPs are stored as an entry
    with no ASN, so they cover but never match (RFC 6483 §4).
    """

    __slots__ = ("_probes", "_size")

    def __init__(self, vrps: Iterable[Vrp]) -> None:
        self._build(vrps, {})

    @classmethod
    def _sharing(cls, vrps: Iterable[Vrp], parsed: dict[str, _Parsed]) -> VrpIndex:
        """An index whose prefix strings are parsed through ``parsed``, a cache shared between indexes."""
        index = cls.__new__(cls)
        index._build(vrps, parsed)
        return index

    def _build(self, vrps: Iterable[Vrp], parsed: dict[str, _Parsed]) -> None:
        tables: dict[tuple[int, int], dict[int, dict[int, int]]] = {}
        size = 0
        for asn, prefix, max_length in vrps:
            found = parsed.get(prefix)
            if found is None:
                found = parsed[prefix] = _parse_vrp_prefix(prefix)
            version, network, length = found
            bits = 32 if version == 4 else 128
            matches = tables.setdefault((version, length), {}).setdefault(network >> (bits - length), {})
            if asn != 0:
                matches[asn] = max(max_length, matches.get(asn, -1))
            size += 1
        self._size = size
        # Per version, (length, shift, table) in ascending length: a lookup stops at the announced length.
        self._probes: dict[int, list[tuple[int, int, dict[int, dict[int, int]]]]] = {
            version: [
                (length, bits - length, tables[version, length])
                for length in range(bits + 1)
                if (version, length) in tables
            ]
            for version, bits in ((4, 32), (6, 128))
        }

    def __len__(self) -> int:
        """How many VRPs went in (duplicates included)."""
        return self._size

    def covers(self, prefix: Network) -> bool:
        """Whether any VRP covers ``prefix`` (so its validity is not ``not-found``)."""
        address = int(prefix.network_address)
        limit = prefix.prefixlen
        for length, shift, table in self._probes[prefix.version]:
            if length > limit:
                break
            if address >> shift in table:
                return True
        return False

    def validate(self, prefix: Network, origin: int) -> Validity:
        """RFC 6811 §2 validity of ``prefix`` originated by ``origin``."""
        address = int(prefix.network_address)
        limit = prefix.prefixlen
        covered = False
        for length, shift, table in self._probes[prefix.version]:
            if length > limit:
                break
            matches = table.get(address >> shift)
            if matches is None:
                continue
            covered = True
            max_length = matches.get(origin)
            if max_length is not None and limit <= max_length:
                return "valid"
        return "invalid" if covered else "not-found"


def validate(vrps: VrpIndex, ann: Announcement) -> Validity:
    """RFC 6811 §2 validity of one announcement against the indexed VRPs."""
    return vrps.validate(ann.prefix, ann.origin)


@dataclass(frozen=True, slots=True)
class ValidityChange:
    """An announcement whose validity a plan changes."""

    announcement: Announcement
    before: Validity
    after: Validity

    @property
    def breaks(self) -> bool:
        """valid -> invalid: routers doing origin validation start dropping this route."""
        return self.before == "valid" and self.after == "invalid"

    def __str__(self) -> str:
        ann = self.announcement
        seen = f" (seen by {ann.peers} peers)" if ann.peers is not None else ""
        return f"{ann.prefix} AS{ann.origin}: {self.before} -> {self.after}{seen}"


def _order(change: ValidityChange) -> tuple[bool, int, int, int, int]:
    prefix = change.announcement.prefix
    return (
        not change.breaks,
        prefix.version,
        int(prefix.network_address),
        prefix.prefixlen,
        change.announcement.origin,
    )


def impact(
    before: Iterable[Vrp], after: Iterable[Vrp], announcements: Iterable[Announcement]
) -> list[ValidityChange]:
    """The announcements whose validity differs between the ``before`` and ``after`` VRP sets.

    Sorted breaking changes first, then by prefix (IPv4 before IPv6, by address, then length) and origin.
    Only announcements covered by a VRP that was added or removed can change, so the rest are skipped
    after one lookup: a small plan against a full table stays cheap. Duplicate announcements are reported
    as often as they are given.
    """
    old = frozenset(before)
    new = frozenset(after)
    if old == new:
        return []
    parsed: dict[str, _Parsed] = {}  # each prefix string is parsed once for all three indexes
    changed = VrpIndex._sharing(old ^ new, parsed)
    old_index = VrpIndex._sharing(old, parsed)
    new_index = VrpIndex._sharing(new, parsed)
    out: list[ValidityChange] = []
    for ann in announcements:
        if not changed.covers(ann.prefix):
            continue
        was = validate(old_index, ann)
        now = validate(new_index, ann)
        if was != now:
            out.append(ValidityChange(ann, was, now))
    out.sort(key=_order)
    return out
