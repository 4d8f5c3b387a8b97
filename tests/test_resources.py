"""Unit tests for ``reconciler.resources``: parsing, canonical sets, containment and subtraction."""

from __future__ import annotations

import ipaddress
import itertools
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reconciler.resources import (
    AS_MAX,
    AsnSet,
    IpSet,
    Resources,
    ResourceSyntaxError,
    network_range,
    parse_asn,
    parse_asn_range,
    parse_ip_block,
    parse_prefix,
    prefix_text,
)

V4_MAX = 2**32 - 1
V6_MAX = 2**128 - 1

# --- AS numbers -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("AS64496", 64496),
        ("as64496", 64496),
        ("64496", 64496),
        (" AS64496 ", 64496),
        (64496, 64496),
        ("AS0", 0),
        (0, 0),
        ("AS4294967295", AS_MAX),
        (AS_MAX, AS_MAX),
    ],
)
def test_parse_asn(text: str | int, value: int) -> None:
    assert parse_asn(text) == value


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("AS4294967296", "out of range"),
        (2**32, "out of range"),
        (-1, "out of range"),
        ("ASN64496", "not an AS number"),
        ("AS-1", "not an AS number"),
        ("AS 64496", "not an AS number"),
        ("", "not an AS number"),
        ("64496.1", "not an AS number"),
        (True, "not an AS number"),
    ],
)
def test_parse_asn_refuses(text: str | int, message: str) -> None:
    with pytest.raises(ResourceSyntaxError, match=message):
        parse_asn(text)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("64496-64511", (64496, 64511)),
        ("AS64496-AS64511", (64496, 64511)),
        ("AS64496 - AS64511", (64496, 64511)),
        ("0-4294967295", (0, AS_MAX)),
        ("AS5-AS5", (5, 5)),
        (7, (7, 7)),
        ("AS7", (7, 7)),
    ],
)
def test_parse_asn_range(text: str | int, expected: tuple[int, int]) -> None:
    assert parse_asn_range(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [("AS64511-AS64496", "runs backwards"), ("1-4294967296", "out of range"), ("1-", "not an AS number")],
)
def test_parse_asn_range_refuses(text: str, message: str) -> None:
    with pytest.raises(ResourceSyntaxError, match=message):
        parse_asn_range(text)


def test_asn_set_is_canonical() -> None:
    merged = AsnSet.parse(["AS10-AS20", 21, "AS5", "15-30", 3, "AS4"])
    assert merged.ranges == ((3, 5), (10, 30))
    assert str(merged) == "AS3-AS5, AS10-AS30"
    assert AsnSet.parse([]) == AsnSet() and not AsnSet()
    assert str(AsnSet()) == "none"


def test_asn_set_contains_and_subtract() -> None:
    held = AsnSet.parse(["AS64496-AS64511", "AS65536-AS65551"])
    assert held.contains(AsnSet.parse(["AS64496", "AS64500-AS64511", "AS65540"]))
    assert held.contains(AsnSet())
    assert not held.contains(AsnSet.parse(["AS64495-AS64496"]))
    assert not held.contains(AsnSet.parse(["AS64511-AS65536"]))  # spans the gap
    over = AsnSet.parse(["AS64490-AS64500", "AS64600", "AS65551-AS65560"]).subtract(held)
    assert str(over) == "AS64490-AS64495, AS64600, AS65552-AS65560"


def test_asn_full_range_edges() -> None:
    everything = AsnSet.parse(["0-4294967295"])
    assert everything.contains(AsnSet.parse([0, AS_MAX]))
    assert not AsnSet.parse([AS_MAX]).subtract(everything)
    assert str(everything.subtract(AsnSet.parse([0, AS_MAX]))) == "AS1-AS4294967294"
    assert str(AsnSet.parse([AS_MAX])) == "AS4294967295"


# --- prefixes and address ranges ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text", ["192.0.2.0/24", "0.0.0.0/0", "255.255.255.255/32", "::/0", "2001:db8::/32", " 10.0.0.0/8 "]
)
def test_parse_prefix(text: str) -> None:
    assert parse_prefix(text) == ipaddress.ip_network(text.strip())


@pytest.mark.parametrize(
    ("text", "afi", "message"),
    [
        ("192.0.2.1/24", None, r"host bits set \(did you mean 192.0.2.0/24\?\)"),
        ("2001:db8::1/32", None, r"did you mean 2001:db8::/32\?"),
        ("0.0.0.1/0", None, r"did you mean 0.0.0.0/0\?"),
        ("192.0.2.0", None, "has no prefix length"),
        ("2001:db8::", None, "has no prefix length"),
        ("192.0.2.0/33", None, "is not an IP prefix"),
        ("banana", None, "is not an IP prefix"),
        ("", None, "is not an IP prefix"),
        ("2001:db8::/32", 4, "is not an IPv4 prefix"),
        ("192.0.2.0/24", 6, "is not an IPv6 prefix"),
    ],
)
def test_parse_prefix_refuses(text: str, afi: int | None, message: str) -> None:
    with pytest.raises(ResourceSyntaxError, match=message):
        parse_prefix(text, afi)  # type: ignore[arg-type]


def test_parse_ip_block() -> None:
    assert parse_ip_block("192.0.2.0/24", 4) == (0xC0000200, 0xC00002FF)
    assert parse_ip_block("192.0.2.0-192.0.2.9", 4) == (0xC0000200, 0xC0000209)
    assert parse_ip_block("0.0.0.0-255.255.255.255", 4) == (0, V4_MAX)
    assert parse_ip_block("::/0", 6) == (0, V6_MAX)
    assert parse_ip_block("2001:db8:: - 2001:db8::ff", 6) == (0x20010DB8 << 96, (0x20010DB8 << 96) + 0xFF)


@pytest.mark.parametrize(
    ("text", "afi", "message"),
    [
        ("192.0.2.9-192.0.2.1", 4, "runs backwards"),
        ("192.0.2.1-2001:db8::", 4, "is not an IPv4 range"),
        ("2001:db8::-2001:db8::1", 4, "is not an IPv4 range"),
        ("192.0.2.0-192.0.2.1", 6, "is not an IPv6 range"),
        ("192.0.2.0-banana", 4, "is not an address range"),
    ],
)
def test_parse_ip_block_refuses(text: str, afi: int, message: str) -> None:
    with pytest.raises(ResourceSyntaxError, match=message):
        parse_ip_block(text, afi)  # type: ignore[arg-type]


def test_ip_set_is_canonical() -> None:
    merged = IpSet.parse(4, ["192.0.2.128/25", "192.0.2.0/25", "198.51.100.0/24", "192.0.2.64/26"])
    assert merged.ranges == ((0xC0000200, 0xC00002FF), (0xC6336400, 0xC63364FF))
    assert str(merged) == "192.0.2.0/24, 198.51.100.0/24"
    assert str(IpSet(4)) == "none" and not IpSet(6)


def test_ip_set_blocks() -> None:
    ranges = IpSet.parse(4, ["10.0.0.0/8", "192.0.2.0-192.0.2.2", "192.0.2.4/30"])
    assert list(ranges.blocks()) == [
        (0x0A000000, 0x0AFFFFFF, 8),
        (0xC0000200, 0xC0000202, None),
        (0xC0000204, 0xC0000207, 30),
    ]
    # Aligned size alone is not enough: 192.0.2.2-192.0.2.5 has 4 addresses but is not a /30.
    assert list(IpSet.parse(4, ["192.0.2.2-192.0.2.5"]).blocks()) == [(0xC0000202, 0xC0000205, None)]
    assert str(ranges) == "10.0.0.0/8, 192.0.2.0-192.0.2.2, 192.0.2.4/30"


@pytest.mark.parametrize(
    ("afi", "text", "low", "high", "length"),
    [
        (4, "0.0.0.0/0", 0, V4_MAX, 0),
        (6, "::/0", 0, V6_MAX, 0),
        (4, "255.255.255.255/32", V4_MAX, V4_MAX, 32),
        (6, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/128", V6_MAX, V6_MAX, 128),
        (4, "0.0.0.0/32", 0, 0, 32),
    ],
)
def test_edges_of_the_address_space(afi: int, text: str, low: int, high: int, length: int) -> None:
    block = IpSet.parse(afi, [text])  # type: ignore[arg-type]
    assert list(block.blocks()) == [(low, high, length)]
    assert str(block) == str(ipaddress.ip_network(text))


def test_all_ones_range_str() -> None:
    assert str(IpSet.parse(4, ["255.255.255.254-255.255.255.255"])) == "255.255.255.254/31"
    assert str(IpSet.parse(4, ["255.255.255.253-255.255.255.255"])) == "255.255.255.253-255.255.255.255"
    assert str(IpSet.parse(6, ["::/0"]).subtract(IpSet.parse(6, ["::/1"]))) == "8000::/1"


def test_ip_set_contains_and_subtract() -> None:
    held = IpSet.parse(4, ["192.0.2.0/24", "198.51.100.0/24"])
    assert held.contains(IpSet.parse(4, ["192.0.2.128/25", "198.51.100.7-198.51.100.9"]))
    assert not held.contains(IpSet.parse(4, ["192.0.2.0/23"]))
    assert str(IpSet.parse(4, ["192.0.2.0/23"]).subtract(held)) == "192.0.3.0/24"
    assert str(IpSet.parse(4, ["0.0.0.0/0"]).subtract(IpSet.parse(4, ["128.0.0.0/1"]))) == "0.0.0.0/1"
    hole = IpSet.parse(4, ["10.0.0.0/8"]).subtract(IpSet.parse(4, ["10.0.0.1/32"]))
    assert str(hole) == "10.0.0.0/32, 10.0.0.2-10.255.255.255"
    assert not IpSet.parse(6, ["2001:db8::/48"]).subtract(IpSet.parse(6, ["::/0"]))


def test_network_range() -> None:
    assert network_range(ipaddress.ip_network("192.0.2.0/24")) == (0xC0000200, 0xC00002FF)
    assert network_range(ipaddress.ip_network("::/0")) == (0, V6_MAX)


# --- Resources ------------------------------------------------------------------------------------------


def test_resources_parse_contains_subtract() -> None:
    parent = Resources.parse(["AS64496-AS64511"], ["192.0.2.0/24"], ["2001:db8::/32"])
    child = Resources.parse([64496], ["192.0.2.0/25"], ["2001:db8:1000::/36"])
    assert parent.contains(child) and not child.contains(parent)
    assert not child.subtract(parent)
    over = Resources.parse(["AS64496", "AS1"], ["192.0.2.0/23"], []).subtract(parent)
    assert str(over) == "AS1; 192.0.3.0/24"
    assert parent.ip(4) is parent.ipv4 and parent.ip(6) is parent.ipv6


def test_resources_empty_and_everything() -> None:
    assert not Resources() and str(Resources()) == "none"
    everything = Resources.parse(["0-4294967295"], ["0.0.0.0/0"], ["::/0"])
    assert str(everything) == "AS0-AS4294967295; 0.0.0.0/0; ::/0"
    assert everything.contains(Resources.parse([AS_MAX], ["255.255.255.255/32"], ["::/128"]))
    assert everything.contains(Resources())
    assert not everything.subtract(everything)


def test_resources_of_prefixes() -> None:
    nets = [ipaddress.ip_network(n) for n in ("192.0.2.0/25", "2001:db8::/32", "192.0.2.128/25")]
    resources = Resources.of_prefixes(nets)
    assert str(resources) == "192.0.2.0/24; 2001:db8::/32"
    assert not resources.asn
    assert Resources.of_prefixes(iter(nets)) == resources  # any iterable, read once


def test_families_are_kept_apart() -> None:
    v4 = Resources.parse(ipv4=["0.0.0.0/0"])
    v6 = Resources.parse(ipv6=["::/96"])  # numerically the same range as 0.0.0.0/0
    assert not v4.contains(v6) and not v6.contains(v4)


# --- properties -----------------------------------------------------------------------------------------

_ranges = st.lists(
    st.tuples(st.integers(0, 200), st.integers(0, 20)).map(lambda t: (t[0], t[0] + t[1])), max_size=6
)


def _members(ranges: tuple[tuple[int, int], ...]) -> set[int]:
    return {n for lo, hi in ranges for n in range(lo, hi + 1)}


@given(_ranges, _ranges)
def test_subtract_and_contains_agree_with_plain_sets(
    left: list[tuple[int, int]], right: list[tuple[int, int]]
) -> None:
    a, b = AsnSet.of(left), AsnSet.of(right)
    assert _members(a.ranges) == _members(tuple(left))
    assert _members(a.subtract(b).ranges) == _members(a.ranges) - _members(b.ranges)
    assert a.contains(b) == (_members(b.ranges) <= _members(a.ranges))
    assert a.contains(b) == (not b.subtract(a))


@given(_ranges)
def test_sets_are_canonical(ranges: list[tuple[int, int]]) -> None:
    canonical = IpSet.of(4, ranges).ranges
    assert all(lo <= hi for lo, hi in canonical)
    assert all(prev[1] + 1 < nxt[0] for prev, nxt in itertools.pairwise(canonical))
    assert IpSet.of(4, canonical).ranges == canonical


@given(st.integers(0, 32), st.integers(0, V4_MAX))
def test_prefixes_round_trip_through_str(length: int, address: int) -> None:
    net = ipaddress.ip_network((address, length), strict=False)
    block = IpSet.from_networks(4, [net])
    assert str(block) == str(net)
    assert parse_prefix(str(net)) == net


@pytest.mark.parametrize(
    "text",
    [
        "0.0.0.0/0",
        "192.0.2.0/24",
        "10.0.0.0/8",
        "::/0",
        "2001:db8::/32",
        "2001:db8:0:1::/64",  # a single zero group is written out, not compressed
        "2001:0:0:1::/64",  # two runs of zeros of the same length: the first is compressed
        "2001:db8:1:0:0:1::/96",
        "1::/16",
        "fe80::/10",
        "ff00::/8",
        "::2:0:0/96",  # no IPv4 tail in either writer
        "2001:db8:abcd:12:ffff:ffff:ffff:fff0/124",
    ],
)
def test_a_parsed_prefix_is_written_as_ipaddress_writes_it(text: str) -> None:
    """``prefix_text`` of a parsed prefix is recorded as the C library writes the address: it must be
    what ``ipaddress`` writes, or a VRP would not match the one read back from a ROA."""
    assert prefix_text(parse_prefix(text)) == str(ipaddress.ip_network(text))


def test_random_parsed_prefixes_are_written_as_ipaddress_writes_them() -> None:
    generator = random.Random(7)  # noqa: S311 - a fixed sequence of test prefixes, not a secret
    for _ in range(20_000):
        family = generator.choice([4, 6])
        width = 32 if family == 4 else 128
        bits = generator.randint(0, width)
        if family == 6 and generator.random() < 0.5:  # runs of zero groups, where the writers could differ
            groups = [generator.choice([0, 0, 0, generator.randint(0, 0xFFFF)]) for _ in range(8)]
            value = int.from_bytes(b"".join(g.to_bytes(2, "big") for g in groups), "big")
        else:
            value = generator.getrandbits(width)
        value &= ((1 << width) - 1) ^ ((1 << (width - bits)) - 1)
        made = ipaddress.IPv4Network if family == 4 else ipaddress.IPv6Network
        network = made((value, bits))
        if family == 6 and 0xFFFF << 32 <= value <= (0xFFFF << 32) | 0xFFFFFFFF:
            continue  # IPv4-mapped space is refused
        assert prefix_text(parse_prefix(str(network))) == str(network)
