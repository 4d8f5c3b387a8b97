"""Internet number resources as values: AS numbers and IP address blocks (RFC 3779 semantics, no DER).

Everything that compares resources -- "is this ROA inside its CA?", "did this CA's resources change?" --
goes through these types, so the rules live in one place. Sets are kept canonical (sorted, merged,
non-overlapping), which is also the order RFC 3779 §2.2.3.6 demands on the wire.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Literal

from reconciler.diagnostics import excerpt

AS_MAX = 2**32 - 1

Afi = Literal[4, 6]
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

_ASN_RE = re.compile(r"^\s*(?:AS)?(\d+)\s*$", re.IGNORECASE)


#: ``prefix_text``'s record, by the identity of the prefix object (kept alive here, so the identity is
#: not reused while it is recorded).
_TEXTS: dict[int, tuple[IPNetwork, str]] = {}
_TEXTS_AT_MOST = 1 << 18


def _remember_text(net: IPNetwork, low: int, bits: int) -> None:
    """Record ``str(net)`` for :func:`prefix_text` as the C library writes the address (RFC 5952 for
    IPv6, as ``ipaddress`` does): a registry's plan writes each of 150,000 prefixes once, and ``ipaddress``
    formats one at several microseconds. An IPv6 address the C library writes with an IPv4 tail
    (``::ffff:192.0.2.1``), which ``ipaddress`` writes in hexadecimal, is left to ``ipaddress``."""
    if net.version == 4:
        address = socket.inet_ntop(socket.AF_INET, low.to_bytes(4, "big"))
    else:
        address = socket.inet_ntop(socket.AF_INET6, low.to_bytes(16, "big"))
        if "." in address:
            return
    _record_text(net, f"{address}/{bits}")


def _record_text(prefix: IPNetwork, text: str) -> None:
    """Remember ``text`` as ``prefix``'s, in a record of bounded size."""
    if len(_TEXTS) >= _TEXTS_AT_MOST:
        _TEXTS.clear()
    _TEXTS[id(prefix)] = (prefix, text)


def prefix_text(prefix: IPNetwork) -> str:
    """``str(prefix)``, remembered: a plan writes each of thousands of prefixes several times (VRPs,
    file names), and ``ipaddress`` formats an IPv6 prefix slowly. Remembered by the object's identity
    (the same entry's prefix is asked for each time), not by its hash: ``ipaddress`` hashes in Python, at
    twice the cost of looking up an identity."""
    found = _TEXTS.get(id(prefix))
    if found is not None and found[0] is prefix:
        return found[1]
    text = str(prefix)
    _record_text(prefix, text)
    return text


class ResourceSyntaxError(ValueError):
    """A resource string that cannot be read; the message says what was expected."""


def _merge(ranges: Iterable[tuple[int, int]]) -> tuple[tuple[int, int], ...]:
    """Sort and merge overlapping or adjacent closed ranges."""
    merged: list[tuple[int, int]] = []
    for lo, hi in sorted(ranges):
        if merged and lo <= merged[-1][1] + 1:
            if hi > merged[-1][1]:
                merged[-1] = (merged[-1][0], hi)
        else:
            merged.append((lo, hi))
    return tuple(merged)


def _covers(outer: tuple[tuple[int, int], ...], inner: tuple[tuple[int, int], ...]) -> bool:
    """True when every range of ``inner`` lies inside one range of ``outer`` (both canonical)."""
    i = 0
    for lo, hi in inner:
        while i < len(outer) and outer[i][1] < lo:
            i += 1
        if i == len(outer) or outer[i][0] > lo or outer[i][1] < hi:
            return False
    return True


def _subtract(
    left: tuple[tuple[int, int], ...], right: tuple[tuple[int, int], ...]
) -> tuple[tuple[int, int], ...]:
    out: list[tuple[int, int]] = []
    for lo, hi in left:
        cur = lo
        for rlo, rhi in right:
            if rhi < cur or rlo > hi:
                continue
            if rlo > cur:
                out.append((cur, rlo - 1))
            cur = max(cur, rhi + 1)
            if cur > hi:
                break
        if cur <= hi:
            out.append((cur, hi))
    return tuple(out)


def parse_asn(text: str | int) -> int:
    """Read ``AS64496`` or ``64496`` (or an int) and check it is a 32-bit AS number."""
    if isinstance(text, bool):
        raise ResourceSyntaxError(f"{text!r} is not an AS number")
    if isinstance(text, int):
        value = text
    else:
        match = _ASN_RE.match(text)
        if not match:
            raise ResourceSyntaxError(f"{excerpt(text)} is not an AS number (write AS64496 or 64496)")
        value = int(match.group(1))
    if not 0 <= value <= AS_MAX:
        raise ResourceSyntaxError(f"AS number {value} is out of range (0 to {AS_MAX})")
    return value


@dataclass(frozen=True, slots=True)
class AsnSet:
    """A canonical set of AS numbers as closed ranges."""

    ranges: tuple[tuple[int, int], ...] = ()

    @classmethod
    def of(cls, ranges: Iterable[tuple[int, int]]) -> AsnSet:
        return cls(_merge(ranges))

    @classmethod
    def parse(cls, items: Iterable[str | int]) -> AsnSet:
        """Read ``AS64496``, ``64496``, ``"64496-64511"`` or ``"AS64496-AS64511"`` items."""
        return cls.of(parse_asn_range(item) for item in items)

    def __bool__(self) -> bool:
        return bool(self.ranges)

    def contains(self, other: AsnSet) -> bool:
        return _covers(self.ranges, other.ranges)

    def subtract(self, other: AsnSet) -> AsnSet:
        return AsnSet(_subtract(self.ranges, other.ranges))

    def __str__(self) -> str:
        return ", ".join(f"AS{lo}" if lo == hi else f"AS{lo}-AS{hi}" for lo, hi in self.ranges) or "none"


def parse_asn_range(item: str | int) -> tuple[int, int]:
    """Read one AS number or an ``A-B`` range of them."""
    if isinstance(item, str) and "-" in item:
        lo_text, _, hi_text = item.partition("-")
        lo, hi = parse_asn(lo_text), parse_asn(hi_text)
        if lo > hi:
            raise ResourceSyntaxError(
                f"AS range {excerpt(item)} runs backwards (write the lower number first)"
            )
        return lo, hi
    value = parse_asn(item)
    return value, value


def _afi_bits(afi: Afi) -> int:
    return 32 if afi == 4 else 128


def network_range(net: IPNetwork) -> tuple[int, int]:
    low = int(net.network_address)
    return low, low | ((1 << (net.max_prefixlen - net.prefixlen)) - 1)  # broadcast_address, without objects


def parse_prefix(text: str, afi: Afi | None = None) -> IPNetwork:
    """Read a prefix, refusing host bits (``192.0.2.1/24``) instead of silently masking them."""
    family: Afi = 6 if ":" in text else 4
    if afi is None or afi == family:
        # A plain prefix, read by the C library (see _prefix_range): a large operator's file holds
        # thousands, and ``ipaddress`` parses text at several microseconds each.
        found = _prefix_range(text, family)
        if found is not None:
            low, high = found
            if family == 6:
                _refuse_mapped(low, high, text)
            bits = _afi_bits(family) - (high - low).bit_length()
            net = ipaddress.IPv4Network((low, bits)) if family == 4 else ipaddress.IPv6Network((low, bits))
            _remember_text(net, low, bits)
            return net
    net = _parse_prefix_text(text, afi)
    if net.version == 6:
        _refuse_mapped(*network_range(net), text)
    return net


#: IPv4-mapped IPv6 addresses (RFC 4291 §2.5.5.2), ``::ffff:0:0/96``: IPv4 space written as IPv6, which
#: relying parties drop or read as IPv4 (OctoRPKI). IPv4 resources are written as IPv4.
_MAPPED = (0xFFFF << 32, (0xFFFF << 32) | 0xFFFF_FFFF)


def _refuse_mapped(low: int, high: int, text: str) -> None:
    """Refuse an IPv6 block that lies wholly in the IPv4-mapped space (one that merely contains it, such
    as ``::/0``, is ordinary IPv6 space)."""
    if _MAPPED[0] <= low and high <= _MAPPED[1]:
        raise ResourceSyntaxError(
            f"{excerpt(text)} is an IPv4-mapped IPv6 address block (::ffff:0:0/96), which relying parties "
            "drop (write the IPv4 prefix under ipv4 instead)"
        )


def _refuse_zone(text: str) -> None:
    """``fe80::1%eth0`` names an address on one host's interface; an RPKI prefix has no zone index."""
    if "%" in text:
        raise ResourceSyntaxError(
            f"{excerpt(text)} has a zone index ('%...'), which only makes sense on one host "
            "(remove the '%' and what follows it)"
        )


def _parse_prefix_text(text: str, afi: Afi | None = None) -> IPNetwork:
    """:func:`parse_prefix` by ``ipaddress`` alone: what the C library's reading is held to, and the
    road every odd case takes to its exact result or message."""
    _refuse_zone(text)
    if "/" in text:
        try:  # the common case in one step; anything odd takes the slow road to its exact message
            # the family from the text: ip_network would try IPv4 first, and fail slowly, on every IPv6 prefix
            net = ipaddress.IPv6Network(text) if ":" in text else ipaddress.IPv4Network(text)
        except ValueError:
            pass
        else:
            if afi is None or net.version == afi:
                return net
    try:
        net = ipaddress.ip_network(text.strip(), strict=False)
    except ValueError as exc:
        raise ResourceSyntaxError(f"{excerpt(text)} is not an IP prefix (write e.g. 192.0.2.0/24)") from exc
    if "/" not in text:
        raise ResourceSyntaxError(
            f"{excerpt(text)} has no prefix length (write e.g. {net.network_address}/24)"
        )
    if afi is not None and net.version != afi:
        raise ResourceSyntaxError(f"{excerpt(text)} is not an IPv{afi} prefix")
    if int(ipaddress.ip_interface(text.strip()).ip) != int(net.network_address):
        raise ResourceSyntaxError(
            f"{excerpt(text)} has host bits set (did you mean {net.network_address}/{net.prefixlen}?)"
        )
    return net


def _prefix_range(text: str, afi: Afi) -> tuple[int, int] | None:
    """The common case of :func:`parse_ip_block` without ``ipaddress`` objects (a registry reads tens of
    thousands of prefixes): a plain ``address/length`` without host bits, read by the C library. None for
    anything else, which then takes the slow road to its exact result or message."""
    address, slash, length = text.partition("/")
    if not slash or not (length.isascii() and length.isdigit()):
        return None
    try:
        packed = socket.inet_pton(socket.AF_INET if afi == 4 else socket.AF_INET6, address)
    except (OSError, ValueError):
        return None
    width = 32 if afi == 4 else 128
    bits = int(length)
    value = int.from_bytes(packed, "big")
    host = (1 << (width - bits)) - 1 if bits <= width else -1
    if host < 0 or value & host:
        return None
    return value, value | host


def parse_ip_block(text: str, afi: Afi) -> tuple[int, int]:
    """Read a prefix or an ``A-B`` address range of one family as a closed integer range."""
    found = _prefix_range(text, afi)
    if found is not None:
        if afi == 6:
            _refuse_mapped(*found, text)
        return found
    if "-" in text and "/" not in text:
        _refuse_zone(text)
        lo_text, _, hi_text = text.partition("-")
        try:
            lo = ipaddress.ip_address(lo_text.strip())
            hi = ipaddress.ip_address(hi_text.strip())
        except ValueError as exc:
            raise ResourceSyntaxError(f"{excerpt(text)} is not an address range") from exc
        if lo.version != afi or hi.version != afi:
            raise ResourceSyntaxError(f"{excerpt(text)} is not an IPv{afi} range")
        if int(lo) > int(hi):
            raise ResourceSyntaxError(f"address range {excerpt(text)} runs backwards")
        if afi == 6:
            _refuse_mapped(int(lo), int(hi), text)
        return int(lo), int(hi)
    return network_range(parse_prefix(text, afi))


@dataclass(frozen=True, slots=True)
class IpSet:
    """A canonical set of addresses of one family, as closed integer ranges."""

    afi: Afi
    ranges: tuple[tuple[int, int], ...] = ()

    @classmethod
    def of(cls, afi: Afi, ranges: Iterable[tuple[int, int]]) -> IpSet:
        return cls(afi, _merge(ranges))

    @classmethod
    def parse(cls, afi: Afi, items: Iterable[str]) -> IpSet:
        return cls.of(afi, (parse_ip_block(item, afi) for item in items))

    @classmethod
    def from_networks(cls, afi: Afi, nets: Iterable[IPNetwork]) -> IpSet:
        return cls.of(afi, (network_range(n) for n in nets))

    def __bool__(self) -> bool:
        return bool(self.ranges)

    def contains(self, other: IpSet) -> bool:
        return _covers(self.ranges, other.ranges)

    def subtract(self, other: IpSet) -> IpSet:
        return IpSet(self.afi, _subtract(self.ranges, other.ranges))

    def blocks(self) -> Iterator[tuple[int, int, int | None]]:
        """Yield ``(low, high, prefix_length)``; the length is None when the range is not one prefix."""
        bits = _afi_bits(self.afi)
        for lo, hi in self.ranges:
            size = hi - lo + 1
            if size & (size - 1) == 0 and lo % size == 0:
                yield lo, hi, bits - (size.bit_length() - 1)
            else:
                yield lo, hi, None

    def __str__(self) -> str:
        parts = []
        for lo, hi, length in self.blocks():
            low = ipaddress.ip_address(lo) if self.afi == 4 else ipaddress.IPv6Address(lo)
            if length is not None:
                parts.append(f"{low}/{length}")
            else:
                high = ipaddress.ip_address(hi) if self.afi == 4 else ipaddress.IPv6Address(hi)
                parts.append(f"{low}-{high}")
        return ", ".join(parts) or "none"


@dataclass(frozen=True, slots=True)
class Resources:
    """The AS numbers and IPv4/IPv6 blocks that a CA holds or an object claims."""

    asn: AsnSet = field(default_factory=AsnSet)
    ipv4: IpSet = field(default_factory=lambda: IpSet(4))
    ipv6: IpSet = field(default_factory=lambda: IpSet(6))

    @classmethod
    def parse(
        cls, asn: Iterable[str | int] = (), ipv4: Iterable[str] = (), ipv6: Iterable[str] = ()
    ) -> Resources:
        return cls(AsnSet.parse(asn), IpSet.parse(4, ipv4), IpSet.parse(6, ipv6))

    @classmethod
    def of_prefixes(cls, nets: Iterable[IPNetwork]) -> Resources:
        nets = list(nets)
        return cls(
            AsnSet(),
            IpSet.from_networks(4, (n for n in nets if n.version == 4)),
            IpSet.from_networks(6, (n for n in nets if n.version == 6)),
        )

    def __bool__(self) -> bool:
        return bool(self.asn or self.ipv4 or self.ipv6)

    def contains(self, other: Resources) -> bool:
        return (
            self.asn.contains(other.asn) and self.ipv4.contains(other.ipv4) and self.ipv6.contains(other.ipv6)
        )

    def holds_prefix(self, prefix: IPNetwork) -> bool:
        """``contains`` for one prefix, without building a set for it (asked once per ROA entry)."""
        return _covers(self.ip(prefix.version).ranges, (network_range(prefix),))

    def subtract(self, other: Resources) -> Resources:
        """What ``self`` holds that ``other`` does not (used to say *which* resources overclaim)."""
        return Resources(
            self.asn.subtract(other.asn), self.ipv4.subtract(other.ipv4), self.ipv6.subtract(other.ipv6)
        )

    def union(self, other: Resources) -> Resources:
        """What either holds (the resources of several resource classes together)."""
        return Resources(
            AsnSet.of((*self.asn.ranges, *other.asn.ranges)),
            IpSet.of(4, (*self.ipv4.ranges, *other.ipv4.ranges)),
            IpSet.of(6, (*self.ipv6.ranges, *other.ipv6.ranges)),
        )

    def ip(self, afi: Afi) -> IpSet:
        return self.ipv4 if afi == 4 else self.ipv6

    def __str__(self) -> str:
        parts = [str(s) for s in (self.asn, self.ipv4, self.ipv6) if s]
        return "; ".join(parts) or "none"
