"""Route-validity impact: RFC 6811 answers, both announcement formats, their errors, and plan impact.

The known answers pin each RFC 6811 rule (and RFC 6483's AS0) on a case of its own, including the exact
boundary lengths where an off-by-one would hide; the property tests check the prefix index against a
scan of every VRP, so the fast path cannot drift from the definition.
"""

from __future__ import annotations

import gzip
from collections.abc import Iterator
from ipaddress import IPv4Network, IPv6Network, ip_address, ip_network
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reconciler.plan.impact import (
    Announcement,
    AnnouncementsError,
    Validity,
    ValidityChange,
    Vrp,
    VrpIndex,
    impact,
    load_announcements,
    read_announcements,
    validate,
)

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "state" / "announcements.txt"
FIXTURES = ROOT / "tests" / "fixtures" / "announcements"

# The bundled example's VRPs (state/cas/members/example-isp.yaml); test_desired_matches_bundled_example
# keeps this copy honest.
ROA_24: Vrp = (64496, "192.0.2.0/24", 24)
ROA_ANYCAST: Vrp = (64496, "198.51.100.0/25", 26)
ROA_V6: Vrp = (64497, "2001:db8:1000::/36", 48)
ROA_AS0: Vrp = (0, "192.0.2.128/25", 25)
DESIRED: frozenset[Vrp] = frozenset({ROA_24, ROA_ANYCAST, ROA_V6, ROA_AS0})


def ann(prefix: str, origin: int, peers: int | None = None) -> Announcement:
    return Announcement(ip_network(prefix), origin, peers)


def write(tmp_path: Path, text: str, name: str = "routes.txt") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


# --- RFC 6811 known answers -----------------------------------------------------------------------------

KNOWN = VrpIndex(
    [
        *DESIRED,
        (0, "203.0.113.0/24", 32),  # AS0 alone: nothing under it can be valid
        (64499, "192.0.2.128/26", 26),  # a real ROA under the AS0 one wins
        (64500, "198.51.100.128/25", 24),  # max length below the prefix length: covers, never matches
        (64501, "198.51.100.255/32", 32),  # a host route
    ]
)


@pytest.mark.parametrize(
    ("prefix", "origin", "expected"),
    [
        # valid: a covering VRP with the same ASN and a max length at least the announced length
        ("192.0.2.0/24", 64496, "valid"),
        ("198.51.100.0/25", 64496, "valid"),
        ("198.51.100.0/26", 64496, "valid"),  # exactly max length 26
        ("198.51.100.64/26", 64496, "valid"),
        ("198.51.100.255/32", 64501, "valid"),  # /32 against max length 32
        # invalid by origin: covered, but by VRPs for other ASes
        ("192.0.2.0/24", 64497, "invalid"),
        ("198.51.100.0/26", 65536, "invalid"),
        # invalid by length: right origin, more specific than max length allows
        ("192.0.2.0/25", 64496, "invalid"),  # max length 24, one bit past
        ("198.51.100.0/27", 64496, "invalid"),  # max length 26, one bit past
        ("198.51.100.128/25", 64500, "invalid"),  # max length 24 < prefix length 25: never matches
        # not-found: no VRP contains the announced prefix
        ("203.0.112.0/24", 64496, "not-found"),
        ("192.0.2.0/23", 64496, "not-found"),  # less specific than the VRP: not covered
        ("198.51.100.0/24", 64496, "not-found"),  # the /25 VRP covers half of it: still not covered
        # AS0 (RFC 6483 §4): an AS0 VRP covers but never matches; origin AS0 is never valid
        ("203.0.113.0/24", 64496, "invalid"),
        ("203.0.113.0/32", 64496, "invalid"),
        ("203.0.113.0/24", 0, "invalid"),
        ("192.0.2.0/24", 0, "invalid"),
        ("192.0.2.128/25", 64496, "invalid"),  # AS0 /25 and too specific for the /24
        ("192.0.2.128/26", 64499, "valid"),  # AS0 covers too, but any match makes it valid
        ("192.0.2.128/27", 64499, "invalid"),
        # IPv6
        ("2001:db8:1000::/36", 64497, "valid"),
        ("2001:db8:1fff:ffff::/64", 64497, "invalid"),
        ("2001:db8:1fff::/48", 64497, "valid"),  # the last /48 inside the /36, at max length
        ("2001:db8:1000::/49", 64497, "invalid"),
        ("2001:db8:1000::/36", 64496, "invalid"),
        ("2001:db8:2000::/36", 64497, "not-found"),
        ("2001:db8::/32", 64497, "not-found"),
    ],
)
def test_rfc6811_known_answers(prefix: str, origin: int, expected: Validity) -> None:
    """Each RFC 6811 §2 outcome, at the lengths where off-by-ones would show."""
    assert validate(KNOWN, ann(prefix, origin)) == expected


def test_families_never_cover_each_other() -> None:
    """0.0.0.0/0 covers every IPv4 route and no IPv6 one, and the other way round (§2: same family)."""
    v4_all = VrpIndex([(64496, "0.0.0.0/0", 32)])
    v6_all = VrpIndex([(64496, "::/0", 128)])
    assert validate(v4_all, ann("192.0.2.0/24", 64496)) == "valid"
    assert validate(v4_all, ann("0.0.0.0/0", 64497)) == "invalid"
    assert validate(v4_all, ann("2001:db8::/32", 64496)) == "not-found"
    assert validate(v6_all, ann("2001:db8::/128", 64496)) == "valid"
    assert validate(v6_all, ann("192.0.2.0/24", 64496)) == "not-found"
    assert validate(v6_all, ann("::ffff:192.0.2.0/120", 64497)) == "invalid"  # mapped, but IPv6


def test_duplicate_vrps_keep_the_largest_max_length() -> None:
    """Two VRPs for the same ASN and prefix: either one matching is enough (a ROA per max length)."""
    index = VrpIndex([(64496, "198.51.100.0/25", 25), (64496, "198.51.100.0/25", 26), ROA_ANYCAST])
    assert len(index) == 3
    assert validate(index, ann("198.51.100.0/26", 64496)) == "valid"
    assert validate(index, ann("198.51.100.0/27", 64496)) == "invalid"


def test_covers() -> None:
    assert KNOWN.covers(ip_network("192.0.2.0/28"))
    assert not KNOWN.covers(ip_network("192.0.2.0/23"))
    assert not VrpIndex([]).covers(ip_network("192.0.2.0/24"))
    assert validate(VrpIndex([]), ann("192.0.2.0/24", 64496)) == "not-found"


def test_vrp_prefixes_must_be_canonical() -> None:
    """VRPs come from the plan, canonical by construction: anything else is a bug, not data to mask."""
    with pytest.raises(ValueError, match="host bits set"):
        VrpIndex([(64496, "192.0.2.1/24", 24)])


# --- Announcement files ---------------------------------------------------------------------------------


def test_sample_file_is_ris_format() -> None:
    """The bundled sample: 14 routes, one AS_SET line skipped and counted."""
    found = read_announcements(SAMPLE)
    assert found.format == "ris"
    assert found.as_sets == 1
    assert found.below_min_peers == 0
    assert len(found.announcements) == 14
    assert found.announcements[0] == ann("192.0.2.0/24", 64496, 312)
    assert found.announcements[-1] == ann("2001:db8:2000::/36", 64499, 188)
    assert load_announcements(SAMPLE) == found.announcements


def test_ris_dump_fixture() -> None:
    """RIPE's own '%' comment lines are skipped; the AS_SET route is counted, not returned."""
    found = read_announcements(FIXTURES / "riswhoisdump.txt")
    assert found.format == "ris"
    assert found.as_sets == 1
    assert found.announcements == [
        ann("192.0.2.0/24", 64496, 312),
        ann("198.51.100.0/26", 64496, 2),
        ann("203.0.113.0/24", 65536, 10),
        ann("2001:db8:1000::/48", 64497, 9),
    ]


def test_csv_fixture() -> None:
    """Header skipped, AS prefix in any case, spaces around fields tolerated, no peer counts."""
    found = read_announcements(FIXTURES / "routes.csv")
    assert found.format == "csv"
    assert found.announcements == [
        ann("192.0.2.0/24", 64496),
        ann("198.51.100.0/26", 64496),
        ann("2001:db8:1000::/48", 64497),
        ann("203.0.113.0/24", 0),
    ]


def test_csv_without_header_and_with_crlf(tmp_path: Path) -> None:
    path = tmp_path / "routes.csv"
    path.write_bytes(b"192.0.2.0/24,64496\r\n\r\n# note\r\n2001:db8::/32,AS4294967295\r\n")
    assert load_announcements(path) == [ann("192.0.2.0/24", 64496), ann("2001:db8::/32", 4294967295)]


@pytest.mark.parametrize("header", ["prefix,origin_asn", "Prefix,ASN", "network, origin"])
def test_csv_header_variants(tmp_path: Path, header: str) -> None:
    path = write(tmp_path, f"{header}\n192.0.2.0/24,AS64496\n")
    assert load_announcements(path) == [ann("192.0.2.0/24", 64496)]


def test_min_peers_filters_ris_only(tmp_path: Path) -> None:
    """Peers below min_peers are dropped and counted (equal is kept); CSV has no peers to filter on."""
    found = read_announcements(FIXTURES / "riswhoisdump.txt", min_peers=10)
    assert [a.peers for a in found.announcements] == [312, 10]
    assert found.below_min_peers == 2
    assert found.as_sets == 1
    sample = read_announcements(SAMPLE, min_peers=10)
    assert len(sample.announcements) == 9
    assert sample.below_min_peers == 5
    assert all(a.peers is not None and a.peers >= 10 for a in sample.announcements)
    assert len(load_announcements(FIXTURES / "routes.csv", min_peers=1000)) == 4


def test_gzipped_dump(tmp_path: Path) -> None:
    """riswhoisdump.IPv4.gz can be read as downloaded."""
    path = tmp_path / "riswhoisdump.IPv4.gz"
    path.write_bytes(gzip.compress((FIXTURES / "riswhoisdump.txt").read_bytes()))
    assert load_announcements(path) == load_announcements(FIXTURES / "riswhoisdump.txt")


@pytest.mark.parametrize("text", ["", "\n\n", "# only a comment\n\n% and another\n"])
def test_empty_files(tmp_path: Path, text: str) -> None:
    path = write(tmp_path, text)
    assert read_announcements(path).format == "empty"
    assert load_announcements(path) == []


CSV_HINT = "CSV lines are prefix,origin_asn, e.g. 192.0.2.0/24,AS64496"
RIS_HINT = "RIS dump lines are origin<TAB>prefix<TAB>peers, e.g. 64496<TAB>192.0.2.0/24<TAB>250"
PREFIX_HINT = "expected a prefix such as 192.0.2.0/24 or 2001:db8::/32"
ASN_HINT = "expected 0-4294967295, written 64496 or AS64496"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        # CSV
        (
            "prefix,origin_asn\n192.0.2.0/33,AS64496\n",
            f"2: '192.0.2.0/33' is not an IP prefix ({PREFIX_HINT})",
        ),
        ("192.0.2.0,AS64496\n", f"1: '192.0.2.0' is not an IP prefix with a length ({PREFIX_HINT})"),
        (
            "192.0.2.0/255.255.255.0,AS64496\n",
            f"1: '192.0.2.0/255.255.255.0' is not an IP prefix with a length ({PREFIX_HINT})",
        ),
        ("192.0.2.256/24,AS64496\n", f"1: '192.0.2.256/24' is not an IP prefix ({PREFIX_HINT})"),
        (
            "# routes\n\n192.0.2.1/24,AS64496\n",
            "3: 192.0.2.1/24 has host bits set (expected the network address, 192.0.2.0/24)",
        ),
        (
            "2001:db8::1/32,AS64496\n",
            "1: 2001:db8::1/32 has host bits set (expected the network address, 2001:db8::/32)",
        ),
        ("192.0.2.0/24,ASX\n", f"1: 'ASX' is not an AS number ({ASN_HINT})"),
        ("192.0.2.0/24,4294967296\n", f"1: '4294967296' is not an AS number ({ASN_HINT})"),
        ("192.0.2.0/24,-1\n", f"1: '-1' is not an AS number ({ASN_HINT})"),
        ("192.0.2.0/24,AS 64496\n", f"1: 'AS 64496' is not an AS number ({ASN_HINT})"),
        ("192.0.2.0/24,\n", f"1: '' is not an AS number ({ASN_HINT})"),
        (
            "192.0.2.0/24,AS64496\n198.51.100.0/24,AS64496,extra\n",
            f"2: expected 2 comma-separated columns, found 3 ({CSV_HINT})",
        ),
        (
            "192.0.2.0/24,AS64496\n198.51.100.0/24\n",
            f"2: expected 2 comma-separated columns, found 1 ({CSV_HINT})",
        ),
        (
            "192.0.2.0/24,AS64496\nprefix,origin_asn\n",  # a header is only a header on the first line
            f"2: 'prefix' is not an IP prefix with a length ({PREFIX_HINT})",
        ),
        # RIS dump
        ("64496\t192.0.2.0/24\n", f"1: expected 3 tab-separated columns, found 2 ({RIS_HINT})"),
        (
            "64496\t192.0.2.0/24\t250\n192.0.2.0/24,AS64496\n",  # formats cannot be mixed
            f"2: expected 3 tab-separated columns, found 1 ({RIS_HINT})",
        ),
        (
            "% dump\n64496\t192.0.2.0/24\t250\t1\n",
            f"2: expected 3 tab-separated columns, found 4 ({RIS_HINT})",
        ),
        (
            "64496\t192.0.2.1/24\t250\n",
            "1: 192.0.2.1/24 has host bits set (expected the network address, 192.0.2.0/24)",
        ),
        ("64496\tbogus\t250\n", f"1: 'bogus' is not an IP prefix with a length ({PREFIX_HINT})"),
        ("AS-X\t192.0.2.0/24\t250\n", f"1: 'AS-X' is not an AS number ({ASN_HINT})"),
        (
            "64496\t192.0.2.0/24\tmany\n",
            "1: 'many' is not a peer count (expected a non-negative integer in the third column, "
            "e.g. 64496<TAB>192.0.2.0/24<TAB>250)",
        ),
        (
            "64496\t192.0.2.0/24\t-3\n",
            "1: '-3' is not a peer count (expected a non-negative integer in the third column, "
            "e.g. 64496<TAB>192.0.2.0/24<TAB>250)",
        ),
        (
            "{64496,x}\t192.0.2.0/24\t250\n",
            "1: '{64496,x}' is not an origin AS or AS_SET (expected 64496 or {64496,64497})",
        ),
        (
            "{}\t192.0.2.0/24\t250\n",
            "1: '{}' is not an origin AS or AS_SET (expected 64496 or {64496,64497})",
        ),
    ],
)
def test_errors_name_file_and_line(tmp_path: Path, text: str, message: str) -> None:
    """Each problem says where it is and what was expected instead."""
    path = write(tmp_path, text)
    with pytest.raises(AnnouncementsError) as raised:
        load_announcements(path)
    assert str(raised.value) == f"{path}:{message}"
    assert raised.value.path == path
    assert raised.value.line == int(message.split(":", 1)[0])


def test_error_is_a_value_error_even_when_filtered(tmp_path: Path) -> None:
    """A malformed line is reported even if min_peers would have dropped it: bad data is never hidden."""
    path = write(tmp_path, "64496\t192.0.2.0/24\t250\n64496\t192.0.2.1/24\t1\n")
    with pytest.raises(ValueError, match=r":2: 192\.0\.2\.1/24 has host bits set"):
        load_announcements(path, min_peers=100)


def test_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "routes.csv"
    path.write_bytes(b"192.0.2.0/24,AS64496\n# caf\xe9\n")
    with pytest.raises(AnnouncementsError) as raised:
        load_announcements(path)
    assert str(raised.value) == f"{path}:2: not UTF-8 text (expected a CSV or RIS dump text file)"


# --- Plan impact on the bundled sample ------------------------------------------------------------------


def test_desired_matches_bundled_example(tmp_path: Path) -> None:
    """The VRPs these tests call DESIRED are the bundled example's, which the sample file is written for."""
    from tests.helpers import scratch_copy  # noqa: PLC0415 - only this test needs the engine

    assert scratch_copy(tmp_path).desired_vrps() == DESIRED


def test_sample_validity_under_desired_state() -> None:
    """Every sample route's validity today, one by one: the baseline for the plans below."""
    index = VrpIndex(DESIRED)
    got = [(str(a.prefix), a.origin, validate(index, a)) for a in load_announcements(SAMPLE)]
    assert got == [
        ("192.0.2.0/24", 64496, "valid"),
        ("192.0.2.0/24", 64497, "invalid"),  # wrong origin
        ("192.0.2.128/25", 64496, "invalid"),  # too specific for the /24, and under AS0
        ("198.51.100.0/25", 64496, "valid"),
        ("198.51.100.0/26", 64496, "valid"),  # max length 26
        ("198.51.100.64/26", 64496, "valid"),
        ("198.51.100.0/27", 64496, "invalid"),  # too specific
        ("198.51.100.128/25", 64511, "not-found"),  # outside the /25
        ("203.0.113.0/24", 65536, "not-found"),
        ("2001:db8:1000::/36", 64497, "valid"),
        ("2001:db8:1234::/48", 64497, "valid"),  # max length 48
        ("2001:db8:1234:5600::/56", 64497, "invalid"),  # too specific
        ("2001:db8:1000::/36", 65551, "invalid"),  # wrong origin
        ("2001:db8:2000::/36", 64499, "not-found"),
    ]


def changes(result: list[ValidityChange]) -> list[tuple[str, int, Validity, Validity, bool]]:
    return [(str(c.announcement.prefix), c.announcement.origin, c.before, c.after, c.breaks) for c in result]


def test_removing_the_24_roa() -> None:
    """The valid /24 becomes not-found (unprotected, not dropped); the /25 under AS0 stays invalid."""
    result = impact(DESIRED, DESIRED - {ROA_24}, load_announcements(SAMPLE))
    assert changes(result) == [
        ("192.0.2.0/24", 64496, "valid", "not-found", False),
        ("192.0.2.0/24", 64497, "invalid", "not-found", False),
    ]


def test_narrowing_max_length_breaks_the_26s() -> None:
    """Max length 26 -> 25 on the anycast ROA: both /26 announcements become invalid."""
    after = (DESIRED - {ROA_ANYCAST}) | {(64496, "198.51.100.0/25", 25)}
    result = impact(DESIRED, after, load_announcements(SAMPLE))
    assert changes(result) == [
        ("198.51.100.0/26", 64496, "valid", "invalid", True),
        ("198.51.100.64/26", 64496, "valid", "invalid", True),
    ]
    assert all(c.breaks for c in result)


def test_a_new_roa_makes_a_route_valid_and_as0_makes_one_invalid() -> None:
    sample = load_announcements(SAMPLE)
    added = impact(DESIRED, DESIRED | {(65536, "203.0.113.0/24", 24)}, sample)
    assert changes(added) == [("203.0.113.0/24", 65536, "not-found", "valid", False)]
    as0 = impact(DESIRED, DESIRED | {(0, "203.0.113.0/24", 24)}, sample)
    assert changes(as0) == [("203.0.113.0/24", 65536, "not-found", "invalid", False)]


def test_removing_the_as0_roa_changes_nothing_here() -> None:
    """192.0.2.128/25 from AS64496 is also too specific for the /24 ROA: still invalid without AS0."""
    assert impact(DESIRED, DESIRED - {ROA_AS0}, load_announcements(SAMPLE)) == []


def test_no_vrp_change_no_impact() -> None:
    assert impact(DESIRED, sorted(DESIRED), load_announcements(SAMPLE)) == []


def test_ordering_breaking_first_then_prefix_then_origin() -> None:
    """Remove the /24 and the IPv6 ROA and narrow the anycast one: breaks first, IPv4 before IPv6."""
    after = {(64496, "198.51.100.0/25", 25), ROA_AS0}
    result = impact(DESIRED, after, load_announcements(SAMPLE))
    assert changes(result) == [
        ("198.51.100.0/26", 64496, "valid", "invalid", True),
        ("198.51.100.64/26", 64496, "valid", "invalid", True),
        ("192.0.2.0/24", 64496, "valid", "not-found", False),
        ("192.0.2.0/24", 64497, "invalid", "not-found", False),
        ("2001:db8:1000::/36", 64497, "valid", "not-found", False),
        ("2001:db8:1000::/36", 65551, "invalid", "not-found", False),
        ("2001:db8:1234::/48", 64497, "valid", "not-found", False),
        ("2001:db8:1234:5600::/56", 64497, "invalid", "not-found", False),
    ]


def test_min_peers_hides_noise_from_impact() -> None:
    """With min_peers=10 the low-visibility routes drop out of the same plan's impact."""
    after = {(64496, "198.51.100.0/25", 25), ROA_AS0}
    result = impact(DESIRED, after, load_announcements(SAMPLE, min_peers=10))
    assert [(str(c.announcement.prefix), c.announcement.origin) for c in result] == [
        ("198.51.100.0/26", 64496),
        ("198.51.100.64/26", 64496),
        ("192.0.2.0/24", 64496),
        ("2001:db8:1000::/36", 64497),
        ("2001:db8:1234::/48", 64497),
    ]


def test_impact_takes_one_pass_iterables() -> None:
    """VRPs and announcements may be generators (a large dump is streamed, not copied)."""

    def routes() -> Iterator[Announcement]:
        yield ann("192.0.2.0/24", 64496, 312)

    result = impact(iter(DESIRED), (v for v in DESIRED if v != ROA_24), routes())
    assert changes(result) == [("192.0.2.0/24", 64496, "valid", "not-found", False)]


@pytest.mark.parametrize(
    ("before", "after", "breaks"),
    [
        ("valid", "invalid", True),
        ("valid", "not-found", False),
        ("not-found", "invalid", False),
        ("invalid", "valid", False),
    ],
)
def test_breaks(before: Validity, after: Validity, breaks: bool) -> None:
    assert ValidityChange(ann("192.0.2.0/24", 64496), before, after).breaks is breaks


def test_str() -> None:
    assert str(ValidityChange(ann("192.0.2.0/24", 64496, 312), "valid", "invalid")) == (
        "192.0.2.0/24 AS64496: valid -> invalid (seen by 312 peers)"
    )
    assert str(ValidityChange(ann("2001:db8::/32", 0), "not-found", "invalid")) == (
        "2001:db8::/32 AS0: not-found -> invalid"
    )


# --- The index against the definition -------------------------------------------------------------------

ASNS = st.sampled_from([0, 64496, 64497, 65536])


@st.composite
def networks(draw: st.DrawFn) -> IPv4Network | IPv6Network:
    """Prefixes crowded into 192.0.2.0/24 and 2001:db8::/120 so that VRPs and routes overlap often."""
    if draw(st.booleans()):
        length = draw(st.integers(20, 32))
        address = 0xC0000200 + draw(st.integers(0, 255))
        return IPv4Network((address >> (32 - length) << (32 - length), length))
    length = draw(st.integers(116, 128))
    address = 0x20010DB8 << 96 | draw(st.integers(0, 255))
    return IPv6Network((address >> (128 - length) << (128 - length), length))


@st.composite
def vrps(draw: st.DrawFn) -> Vrp:
    network = draw(networks())
    max_length = draw(st.integers(network.prefixlen - 1, network.max_prefixlen))  # -1: a malformed ROA
    return (draw(ASNS), str(network), max_length)


announcements = st.builds(Announcement, networks(), ASNS)


def naive(vrp_list: list[Vrp], announcement: Announcement) -> Validity:
    """RFC 6811 §2 word for word: scan every VRP."""
    covered = False
    for asn, prefix, max_length in vrp_list:
        vrp = ip_network(prefix)
        if vrp.version != announcement.prefix.version:
            continue
        if not announcement.prefix.subnet_of(vrp):  # type: ignore[arg-type]  # same family, checked above
            continue
        covered = True
        if asn != 0 and asn == announcement.origin and announcement.prefix.prefixlen <= max_length:
            return "valid"
    return "invalid" if covered else "not-found"


def strict_prefix(text: str) -> IPv4Network | IPv6Network | None:
    """What a prefix column may hold: exactly what ``ip_network`` takes strictly, minus its extras."""
    address, slash, length = text.partition("/")
    if not slash or not (length.isascii() and length.isdigit()) or "%" in address:
        return None  # no length, netmask or hostmask form, IPv6 scope ID
    try:
        return ip_network(text)
    except ValueError:
        return None


@st.composite
def prefix_texts(draw: st.DrawFn) -> str:
    """Prefixes with and without host bits, odd lengths, and near-miss junk."""
    version = draw(st.sampled_from([4, 6]))
    bits = 32 if version == 4 else 128
    address = draw(st.integers(0, 2**bits - 1) | st.just(0))
    text = str(ip_address(address) if version == 6 else IPv4Network(address).network_address)
    length = draw(st.integers(0, bits + 2).map(str) | st.sampled_from(["", "024", "255.255.255.0", "x"]))
    return f"{text}/{length}"


PREFIX_JUNK = st.text(alphabet="0123456789abcdef:./% ", max_size=24)


@settings(max_examples=500)
@given(prefix_texts() | PREFIX_JUNK)
def test_fast_prefix_parser_agrees_with_ipaddress(
    tmp_path_factory: pytest.TempPathFactory, text: str
) -> None:
    """The inet_pton fast path takes exactly what strict ip_network takes, and gives the same network."""
    path = tmp_path_factory.mktemp("prefix") / "routes.csv"
    path.write_text(f"prefix,origin_asn\n{text},AS64496\n")  # after a header: never taken for one
    expected = strict_prefix(text.strip())
    if text.lstrip().startswith(("#", "%")):
        assert load_announcements(path) == []  # a comment line
    elif expected is None:
        with pytest.raises(AnnouncementsError):
            load_announcements(path)
    else:
        assert load_announcements(path) == [Announcement(expected, 64496)]


@settings(max_examples=300)
@given(st.lists(vrps(), max_size=30), st.lists(announcements, min_size=1, max_size=30))
def test_index_agrees_with_a_full_scan(vrp_list: list[Vrp], routes: list[Announcement]) -> None:
    index = VrpIndex(vrp_list)
    for route in routes:
        assert validate(index, route) == naive(vrp_list, route)


@settings(max_examples=200)
@given(
    st.lists(vrps(), max_size=20),
    st.lists(vrps(), max_size=20),
    st.lists(announcements, max_size=30),
)
def test_impact_agrees_with_a_full_scan(old: list[Vrp], new: list[Vrp], routes: list[Announcement]) -> None:
    """Every route whose naive validity differs is reported, and nothing else, in the promised order."""
    result = impact(old, new, routes)
    expected = sorted(
        (
            (before != "valid" or after != "invalid", r.prefix.version, r.prefix, r.origin, before, after)
            for r in routes
            if (before := naive(old, r)) != (after := naive(new, r))
        ),
        key=lambda t: (t[0], t[1], int(t[2].network_address), t[2].prefixlen, t[3]),
    )
    assert [(c.announcement.prefix, c.announcement.origin, c.before, c.after) for c in result] == [
        (prefix, origin, before, after) for _, _, prefix, origin, before, after in expected
    ]
