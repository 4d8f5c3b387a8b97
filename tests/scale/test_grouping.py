"""ROA entries grouped into objects: one prefix each, one object per origin and family above a threshold,
and the hysteresis that keeps a threshold crossing from re-signing anything but that origin's objects."""

from __future__ import annotations

import ipaddress

import pytest

from reconciler.desired import DesiredStateError
from reconciler.desired.model import CaIntent, RoaGrouping, RoaIntent
from reconciler.plan.grouping import aggregated, roa_objects
from reconciler.plan.model import Action, Kind
from reconciler.resources import Resources
from tests.helpers import T0, Scratch, later, scratch_copy

ISP = "cas/members/example-isp.yaml"
EXTRA = "  - {asn: AS64496, prefix: 192.0.2.0/25}\n"
SECOND = "  - {asn: AS64496, prefix: 198.51.100.0/25, max_length: 26, comment: anycast}\n"


def _ca(*entries: tuple[int, str]) -> CaIntent:
    roas = tuple(
        RoaIntent(asn, ipaddress.ip_network(p), ipaddress.ip_network(p).prefixlen) for asn, p in entries
    )
    return CaIntent("isp", "ta", False, Resources.parse(ipv4=["10.0.0.0/8"], ipv6=["2001:db8::/32"]), roas)


def test_one_object_per_prefix_below_the_threshold() -> None:
    objects = roa_objects(_ca((1, "10.0.0.0/24"), (1, "10.0.1.0/24"), (2, "10.0.0.0/24")), RoaGrouping(3, 2))
    assert sorted(objects) == ["AS1_10-0-0-0_24.roa", "AS1_10-0-1-0_24.roa", "AS2_10-0-0-0_24.roa"]
    assert all(len(content.prefixes) == 1 for content in objects.values())


def test_an_origin_above_the_threshold_gets_one_object_per_family() -> None:
    entries = [(1, f"10.0.{i}.0/24") for i in range(4)] + [(1, "2001:db8::/48"), (2, "10.9.0.0/24")]
    objects = roa_objects(_ca(*entries), RoaGrouping(3, 2))
    assert sorted(objects) == ["AS1_2001-db8--_48.roa", "AS1_ipv4.roa", "AS2_10-9-0-0_24.roa"]
    assert len(objects["AS1_ipv4.roa"].prefixes) == 4
    vrps = frozenset().union(*(c.vrps for c in objects.values()))
    assert vrps == {r.vrp for r in _ca(*entries).roas}


@pytest.mark.parametrize(
    ("count", "published", "expected"),
    [
        (4, False, True),
        (4, True, True),
        (3, False, False),
        (3, True, True),
        (2, True, True),
        (1, True, False),
    ],
)
def test_between_the_thresholds_what_is_published_stays(count: int, published: bool, expected: bool) -> None:
    assert aggregated(count, RoaGrouping(aggregate_above=3, split_below=2), published) is expected


def _grouped(scratch: Scratch, above: int, below: int) -> Scratch:
    scratch.edit(
        "rpki.yaml", "signers:", f"roa_grouping: {{aggregate_above: {above}, split_below: {below}}}\nsigners:"
    )
    return scratch


def _changes(scratch: Scratch, hours: float) -> list[tuple[Action, str]]:
    plan = scratch.plan(later(hours))
    return sorted((c.action, c.path.rsplit("/", 1)[-1]) for c in plan.changes if c.kind is Kind.ROA)


def test_crossing_a_threshold_re_signs_only_that_origins_objects(tmp_path) -> None:  # type: ignore[no-untyped-def]
    scratch = _grouped(scratch_copy(tmp_path), above=2, below=2)
    assert scratch.apply(T0) is not None
    one_each = sorted(p.name for p in (scratch.rsync / "example-isp").glob("*.roa"))
    assert "AS64496_ipv4.roa" not in one_each and len(one_each) == 4

    scratch.edit(ISP, "roas:\n", "roas:\n" + EXTRA)  # three IPv4 prefixes for AS64496: above 2
    assert _changes(scratch, 1) == [
        (Action.ISSUE, "AS64496_ipv4.roa"),
        (Action.REVOKE, "AS64496_192-0-2-0_24.roa"),
        (Action.REVOKE, "AS64496_198-51-100-0_25.roa"),
    ]  # AS64497's and AS0's objects are not touched
    assert scratch.apply(later(1)) is not None
    assert scratch.vrps() == scratch.desired_vrps()

    scratch.edit(ISP, EXTRA, "")  # back to two: between the thresholds, the aggregate stays
    assert _changes(scratch, 2) == [(Action.REISSUE, "AS64496_ipv4.roa")]
    assert scratch.apply(later(2)) is not None
    assert scratch.vrps() == scratch.desired_vrps()

    scratch.edit(ISP, SECOND, "")  # one: below 2, one object per prefix again
    assert _changes(scratch, 3) == [
        (Action.ISSUE, "AS64496_192-0-2-0_24.roa"),
        (Action.REVOKE, "AS64496_ipv4.roa"),
    ]
    assert scratch.apply(later(3)) is not None
    assert scratch.vrps() == scratch.desired_vrps()
    assert scratch.plan(later(3)).empty


def test_split_below_above_aggregate_above_is_refused(tmp_path) -> None:  # type: ignore[no-untyped-def]
    scratch = _grouped(scratch_copy(tmp_path), above=4, below=8)
    with pytest.raises(DesiredStateError) as caught:
        scratch.plan()
    message = str(caught.value)
    assert "split_below (8) is above aggregate_above (4)" in message and "rpki.yaml:" in message
