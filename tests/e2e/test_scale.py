"""The large operator of the scale benchmark (one CA, 5,000 ROA entries over 300 origin ASes, IPv4 and
IPv6) as relying parties see it: rpki-client and FORT output exactly the YAML's VRPs, before and after a
one-entry change, and the change re-signs one ROA, one manifest and one CRL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from benchmarks.scenarios import SCENARIOS, change_one_roa, write
from reconciler.plan.model import Kind
from tests.e2e.relying_parties import assert_accepts_exactly_the_yaml, validate
from tests.helpers import Scratch


def test_validators_accept_the_large_operator_and_a_one_roa_change(
    tmp_path: Path, validators: tuple[str, ...]
) -> None:
    scenario = SCENARIOS["large"]
    write(scenario, tmp_path)
    scratch = Scratch(tmp_path)
    now = datetime.now(UTC).replace(microsecond=0)
    first = scratch.apply(now)
    assert first is not None
    objects = list(scratch.rsync.rglob("*.roa"))
    assert len(scratch.desired_vrps()) == scenario.roas
    assert 300 < len(objects) < scenario.roas  # busy origins share objects, the rest one per prefix
    results = validate(scratch, validators, timeout=900)
    assert_accepts_exactly_the_yaml(scratch, results)
    if "rpki-client" in results:
        assert results["rpki-client"].counts.get("roas") == len(objects), results["rpki-client"].summary()

    change_one_roa(scratch.repo)
    at = now + timedelta(minutes=1)
    plan = scratch.plan(at)
    assert sorted(c.kind for c in plan.changes) == sorted([Kind.ROA, Kind.MANIFEST, Kind.CRL])
    result = scratch.apply(at)
    assert result is not None and result.signed == 2 + 2 + 1  # ROA and manifest: 2 each; CRL: 1
    assert scratch.plan(at).empty
    assert_accepts_exactly_the_yaml(scratch, validate(scratch, validators, now=at, timeout=900))
