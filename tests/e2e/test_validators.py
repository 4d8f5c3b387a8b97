"""rpki-client and FORT, fetching over a real rsync daemon, accept what apply publishes — and only then.

Each test applies the desired state with the library, writes the TAL, serves the tree and asks both
validators. The verdict is the set of VRPs they output, compared with the ROA entries in the YAML, and
their warning lines about our objects, which must be empty.
"""

from __future__ import annotations

import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.e2e.relying_parties import assert_accepts_exactly_the_yaml, validate
from tests.helpers import Scratch, scratch_copy

ISP = "cas/members/example-isp.yaml"


_validate = validate
_assert_accepts_exactly_the_yaml = assert_accepts_exactly_the_yaml


@pytest.fixture
def applied(tmp_path: Path) -> tuple[Scratch, datetime]:
    now = datetime.now(UTC).replace(microsecond=0)
    scratch = scratch_copy(tmp_path)
    assert scratch.apply(now) is not None
    return scratch, now


def test_bundled_example_is_accepted_by_both(
    applied: tuple[Scratch, datetime], validators: tuple[str, ...]
) -> None:
    scratch, _ = applied
    results = _validate(scratch, validators)
    assert set(results) == set(validators)
    _assert_accepts_exactly_the_yaml(scratch, results)
    counts = results.get("rpki-client")
    if counts is not None:
        assert counts.counts.get("roas") == 4, counts.summary()
        assert counts.counts.get("certificates") == 3, counts.summary()


def test_changes_converge_for_a_relying_party_that_keeps_its_cache(
    applied: tuple[Scratch, datetime], validators: tuple[str, ...], tmp_path: Path
) -> None:
    """ROA removed, max length and ASN changed, a prefix moved to a new CA, resources grown: after each
    apply both validators, keeping their caches as deployed ones do, agree with the YAML again."""
    scratch, now = applied
    caches = {name: tmp_path / f"cache-{name}" for name in validators}
    _assert_accepts_exactly_the_yaml(scratch, _validate(scratch, validators, caches=caches))

    steps = [
        lambda: scratch.edit(ISP, "  - {asn: AS0, prefix: 192.0.2.128/25}\n", ""),
        lambda: scratch.edit(ISP, "max_length: 26", "max_length: 25"),
        lambda: scratch.edit(
            ISP, '{asn: AS64497, prefix: "2001:db8:1000::/36"', '{asn: AS64496, prefix: "2001:db8:1000::/36"'
        ),
        _move_prefix(scratch),
        lambda: scratch.edit(ISP, "asn: [AS64496, AS64497]", "asn: [AS64496, AS64497, AS64499]"),
    ]
    for minute, step in enumerate(steps, start=1):
        step()
        at = now + timedelta(minutes=minute)
        assert scratch.apply(at) is not None
        assert scratch.plan(at).empty
        _assert_accepts_exactly_the_yaml(scratch, _validate(scratch, validators, now=at, caches=caches))


def _move_prefix(scratch: Scratch):  # type: ignore[no-untyped-def]
    def move() -> None:
        scratch.edit(ISP, "ipv4: [192.0.2.0/24, 198.51.100.0/25]", "ipv4: [192.0.2.0/24]")
        scratch.edit(
            ISP, "  - {asn: AS64496, prefix: 198.51.100.0/25, max_length: 25, comment: anycast}\n", ""
        )
        scratch.write(
            "cas/members/other-isp.yaml",
            "name: other-isp\nparent: online\nresources:\n  asn: [AS64498]\n  ipv4: [198.51.100.0/25]\n"
            "roas:\n  - {asn: AS64498, prefix: 198.51.100.0/25, max_length: 25}\n",
        )

    return move


def test_manifests_expire_without_renewal_and_live_on_after_it(
    applied: tuple[Scratch, datetime], validators: tuple[str, ...]
) -> None:
    """At +25 h without renewal the validators reject the publication point; an apply at +17 h renews
    the manifests and CRLs, and at +30 h they accept it again."""
    scratch, now = applied
    expired = _validate(scratch, validators, now=now + timedelta(hours=25))
    for result in expired.values():
        assert result.vrps == frozenset(), result.summary()
        assert result.warnings, result.summary()
    renewal = scratch.plan(now + timedelta(hours=17))
    assert renewal.changes and all(c.routine for c in renewal.changes)
    scratch.apply(now + timedelta(hours=17))
    _assert_accepts_exactly_the_yaml(scratch, _validate(scratch, validators, now=now + timedelta(hours=30)))


def test_disaster_recovery_is_accepted_by_relying_parties_with_a_cache(
    applied: tuple[Scratch, datetime], validators: tuple[str, ...], tmp_path: Path
) -> None:
    """The publication directory is deleted; apply rebuilds it from YAML and keys, and validators that
    remember the old manifests accept the new ones (numbers and thisUpdate moved forward)."""
    scratch, now = applied
    caches = {name: tmp_path / f"cache-{name}" for name in validators}
    _assert_accepts_exactly_the_yaml(scratch, _validate(scratch, validators, caches=caches))
    shutil.rmtree(scratch.root / "published")
    later = now + timedelta(hours=1)
    assert scratch.apply(later) is not None
    _assert_accepts_exactly_the_yaml(scratch, _validate(scratch, validators, now=later, caches=caches))


def test_a_corrupted_object_is_rejected_then_repaired(
    applied: tuple[Scratch, datetime], validators: tuple[str, ...]
) -> None:
    """Drift that validators punish (a ROA altered after publication drops the CA's whole publication
    point) is named by plan and repaired by apply."""
    scratch, now = applied
    roa = scratch.rsync.resolve() / "example-isp" / "AS64496_192-0-2-0_24.roa"
    data = bytearray(roa.read_bytes())
    data[-1] ^= 0x01
    roa.write_bytes(bytes(data))
    broken = _validate(scratch, validators)
    for result in broken.values():
        assert not any(vrp[1] == "192.0.2.0/24" for vrp in result.vrps), result.summary()
    (change,) = [c for c in scratch.plan(now).changes if c.path.endswith("AS64496_192-0-2-0_24.roa")]
    assert change.reason.startswith("unreadable: ") and "signature" in change.reason
    scratch.apply(now)
    _assert_accepts_exactly_the_yaml(scratch, _validate(scratch, validators))
