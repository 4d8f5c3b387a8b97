"""RFC 3779 extensions: canonical DER, exact round trips, and the all-zeros / all-ones edges."""

from __future__ import annotations

import ipaddress

from hypothesis import given
from hypothesis import strategies as st

from reconciler.resources import AsnSet, IpSet, Resources
from reconciler.rpki import asn1, rfc3779


def test_everything_encodes_as_empty_prefixes() -> None:
    """0.0.0.0/0 and ::/0 are zero-bit prefixes; AS0-AS4294967295 is one range."""
    everything = Resources.parse(["0-4294967295"], ["0.0.0.0/0"], ["::/0"])
    assert rfc3779.encode_ip(everything) == bytes.fromhex("301630090402000130030301003009040200023003030100")
    assert rfc3779.encode_asn(everything.asn) == bytes.fromhex("3010a00e300c300a020100020500ffffffff")


def test_range_bounds_are_trimmed() -> None:
    """RFC 3779 §2.1.2: trailing zeros of min and trailing ones of max are dropped."""
    der = rfc3779.encode_ip(Resources.parse(ipv4=["10.0.0.0-10.0.2.255"]))
    assert der is not None
    (family,) = asn1.IPAddrBlocks.load(der)
    (block,) = family["ipAddressChoice"].chosen
    assert block.name == "addressRange"
    assert block.chosen["min"].contents == bytes([1, 0x0A])  # 00001010 then zeros trimmed: 7 bits
    assert block.chosen["max"].contents == bytes([0, 0x0A, 0x00, 0x02])  # 10.0.2, the 255 ones trimmed


def test_inherit_and_empty() -> None:
    assert rfc3779.encode_ip(Resources()) is None
    assert rfc3779.encode_asn(AsnSet()) is None
    decoded = rfc3779.decode(rfc3779.encode_ip(None), rfc3779.encode_asn(None))
    assert decoded.inherit_asn and decoded.inherit_ip == {4, 6}
    assert not decoded.resources


v4_ranges = st.lists(
    st.tuples(st.integers(0, 2**32 - 1), st.integers(0, 2**16)).map(
        lambda t: (t[0], min(2**32 - 1, t[0] + t[1]))
    ),
    max_size=6,
)
v6_prefixes = st.lists(
    st.tuples(st.integers(0, 2**128 - 1), st.integers(0, 128)).map(
        lambda t: ipaddress.IPv6Network((t[0] >> (128 - t[1]) << (128 - t[1]) if t[1] else 0, t[1]))
    ),
    max_size=6,
)
asn_ranges = st.lists(
    st.tuples(st.integers(0, 2**32 - 1), st.integers(0, 1000)).map(
        lambda t: (t[0], min(2**32 - 1, t[0] + t[1]))
    ),
    max_size=6,
)


@given(v4_ranges, v6_prefixes, asn_ranges)
def test_round_trip(
    v4: list[tuple[int, int]], v6: list[ipaddress.IPv6Network], asns: list[tuple[int, int]]
) -> None:
    """Any set of resources decodes to exactly itself, and re-encodes to the same bytes."""
    resources = Resources(AsnSet.of(asns), IpSet.of(4, v4), IpSet.from_networks(6, v6))
    ip_der, as_der = rfc3779.encode_ip(resources), rfc3779.encode_asn(resources.asn)
    decoded = rfc3779.decode(ip_der, as_der).resources
    assert decoded == resources
    assert rfc3779.encode_ip(decoded) == ip_der
    assert rfc3779.encode_asn(decoded.asn) == as_der
