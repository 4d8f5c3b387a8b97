"""The generation of relying parties that operators run today -- rpki-client 9.x and FORT 1.6.x -- accept
what apply publishes, on a first apply and through a year of a relying party's life.

Debian 12's rpki-client 8.2 and FORT 1.5.4 (``test_validators.py``) start every check from what they
fetch. rpki-client 9.x also remembers every manifest it validated and compares the next one with it: a
manifest number that does not go up by exactly one is a ``seqnum gap`` (RFC 9286 section 4.2.1), a
warning on every re-issue for a CA whose numbers jump. A fresh cache never shows that, so the year below
keeps one cache per validator from the first apply to the last, walks the renewal schedule (every
manifest the CA publishes is fetched before the next replaces it: a skipped one would be a gap of its
own), rolls a CA's key early on (so that the new key's manifests and certificate live through the rest
of the year) and renews the CA certificates before they expire.

The current generation is unpacked from bookworm-backports into ``/opt/rp-current`` (``.ci/run``);
rpki-client 9.x takes the evaluation time as ``-P`` instead of libfaketime.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from reconciler import engine
from reconciler.plan.model import Action, Kind
from reconciler.plan.rollover import Phase
from tests.e2e import harness
from tests.e2e.harness import (
    CURRENT_VALIDATORS,
    RequireTool,
    ValidatorResult,
    find_tool,
    rpki_client_summary_counts,
    rpki_client_warnings,
    tool_version,
)
from tests.e2e.relying_parties import assert_accepts_exactly_the_yaml, validate, write_tal
from tests.helpers import Scratch, scratch_copy

ISP = "cas/members/example-isp.yaml"

# A year in 46 steps of 8 days: manifests and CRLs live two weeks and are renewed in their last week, so
# every step re-issues every CA's manifest once, and a validator that fetches after each step sees all of
# them. The trust anchor keeps its own schedule (12 weeks, renewed after 4) and the CA certificates
# their 52 weeks, renewed in the last 4.
YEAR_TIMING = "timing:\n  manifest_validity: 2w\n  manifest_renew_before: 1w\n"
STEP = timedelta(days=8)
STEPS = 46
ROLL_STEP = 3  # example-isp's key_generation goes to 2 here; activation and cleanup follow


def test_both_generations_are_runnable_side_by_side(
    current_validators: tuple[str, ...], validators: tuple[str, ...], require_tool: RequireTool
) -> None:
    """``rpki-client-9`` and ``fort-1.6`` are those versions, beside (not instead of) Debian 12's."""
    assert current_validators == ("rpki-client-9", "fort-1.6")
    versions = {name: tool_version(name) for name in current_validators}
    assert (versions["rpki-client-9"] or "").split(" ")[-1].startswith("9."), versions
    assert (versions["fort-1.6"] or "").startswith("fort 1.6."), versions
    old = {
        name: _version_line([require_tool(name), flag])
        for name, flag in (("rpki-client", "-V"), ("fort", "--version"))
    }
    assert old["rpki-client"].split(" ")[-1].startswith("8."), old
    assert old["fort"].startswith("fort 1.5."), old
    assert find_tool("rpki-client-9") != require_tool("rpki-client")
    assert find_tool("fort-1.6") != require_tool("fort")


def _version_line(argv: list[str]) -> str:
    completed = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)
    return (completed.stdout + completed.stderr).strip().splitlines()[0]


def test_first_apply_of_the_bundled_example_is_accepted(
    current_validators: tuple[str, ...], tmp_path: Path
) -> None:
    scratch = scratch_copy(tmp_path)
    now = datetime.now(UTC).replace(microsecond=0)
    assert scratch.apply(now) is not None

    results = validate(scratch, current_validators)

    assert set(results) == set(current_validators)
    assert_accepts_exactly_the_yaml(scratch, results)
    rpki_client = results["rpki-client-9"]
    counts = rpki_client.counts
    assert (counts.get("roas"), counts.get("certificates"), counts.get("manifests")) == (4, 3, 3), counts
    assert counts.get("seqnum_gaps") == 0, rpki_client.summary()


@dataclass
class _Year:
    """What the year saw, for the assertions at the end and for a readable failure."""

    phases: list[Phase] = field(default_factory=list)
    certificates_renewed: set[str] = field(default_factory=set)
    steps_with_new_manifest: dict[str, int] = field(default_factory=dict)  # per CA directory
    problems: list[str] = field(default_factory=list)


def test_a_kept_cache_sees_a_year_of_renewals_and_a_key_roll_without_a_gap(
    current_validators: tuple[str, ...], tmp_path: Path
) -> None:
    """One cache per validator, kept from the first apply to the last: after every apply, 0 ``seqnum gap``
    lines, 0 warnings and exactly the VRPs of the YAML, at every step of a year."""
    scratch = scratch_copy(tmp_path)
    rpki = scratch.repo / "rpki.yaml"
    rpki.write_text(rpki.read_text() + YEAR_TIMING)
    start = datetime.now(UTC).replace(microsecond=0)
    assert scratch.apply(start) is not None
    tal = write_tal(scratch)
    caches = {name: tmp_path / f"cache-{name}" for name in current_validators}
    year = _Year()
    _check_step(
        scratch, validate(scratch, current_validators, now=start, caches=caches, tal=tal), start, year
    )

    for step in range(1, STEPS + 1):
        at = start + step * STEP
        if step == ROLL_STEP:
            scratch.edit(ISP, "parent: online\n", "parent: online\nkey_generation: 2\n")
        plan = scratch.plan(at)
        assert plan.gates == () and not plan.vrps_added and not plan.vrps_removed, f"step {step}"
        if (roll := plan.key_plans.get("example-isp")) is not None and roll.phase is not None:
            year.phases.append(roll.phase)
        for change in plan.changes:
            if change.kind is Kind.CERTIFICATE and change.action is Action.RENEW:
                year.certificates_renewed.add(change.path)
        for directory in {c.path.split("/")[0] for c in plan.changes if c.kind is Kind.MANIFEST}:
            year.steps_with_new_manifest[directory] = year.steps_with_new_manifest.get(directory, 0) + 1
        assert scratch.apply(at) is not None, f"step {step}: the schedule should re-issue every manifest"
        left = [c.action for c in scratch.plan(at).changes]
        assert left in ([], [Action.DESTROY_KEY]), f"step {step}: not converged: {left}"
        results = validate(scratch, current_validators, now=at, caches=caches, tal=tal)
        _check_step(scratch, results, at, year, step)

    assert year.problems == [], "\n".join(year.problems)
    assert year.phases == [Phase.STAGING, Phase.ACTIVATING, Phase.CLEANUP], year.phases
    assert year.certificates_renewed == {"ta/online.cer", "online/example-isp_g2.cer"}, year
    # The schedule did what the year is about: both CAs published a new manifest at every step, the
    # trust anchor about monthly (12 weeks' validity, renewed 8 weeks before the end).
    new_manifests = year.steps_with_new_manifest
    assert (new_manifests.get("online"), new_manifests.get("example-isp")) == (STEPS, STEPS), year
    assert new_manifests.get("ta", 0) >= 11, year


def _check_step(
    scratch: Scratch, results: dict[str, ValidatorResult], at: datetime, year: _Year, step: int = 0
) -> None:
    """Record (rather than stop at) each validator's verdict of one step, so that a failure shows every
    step and every warning of the year, not just the first."""
    want = scratch.desired_vrps()
    published_manifests = sum(
        1 for path in engine.open_workspace(scratch.repo).published.files if path.endswith(".mft")
    )
    for name, result in results.items():
        where = f"step {step} ({at:%Y-%m-%d}) {name}"
        if result.vrps != want:
            year.problems.append(f"{where}: {len(result.vrps)} VRPs, want {len(want)}\n{result.summary()}")
        year.problems += [f"{where}: {line}" for line in result.warnings]
        gaps = [line for line in result.log.splitlines() if "seqnum gap detected" in line]
        year.problems += [f"{where}: {line}" for line in gaps if line not in result.warnings]
        if result.clock is None or abs(result.clock - at) > timedelta(minutes=5):
            year.problems.append(f"{where}: the validator ran at {result.clock}, not at {at}")
        if name == "rpki-client-9":
            counts = result.counts
            if counts.get("seqnum_gaps") != 0 or counts.get("manifests") != published_manifests:
                year.problems.append(
                    f"{where}: {counts.get('seqnum_gaps')} seqnum gaps, {counts.get('manifests')} of "
                    f"{published_manifests} manifests validated"
                )


# ---------------------------------------------------------------------- the harness's reading of 9.x


def test_rpki_client_9_output_is_read_for_gaps_and_cleanup() -> None:
    """9.x's own words: its summary's gap count is read, its cache clean-up is not a warning, a gap is."""
    summary = (
        "Route Origin Authorizations: 4 (0 failed parse, 0 invalid)\n"
        "Manifests: 3 (0 failed parse, 2 seqnum gaps)\n"
    )
    assert rpki_client_summary_counts(summary) == {"seqnum_gaps": 2}
    assert rpki_client_summary_counts("Manifests: 3 (0 failed parse, 0 seqnum gaps)") == {"seqnum_gaps": 0}
    assert rpki_client_summary_counts("Manifests: 3 (0 failed parse, 0 stale)") == {}  # 8.2 does not count
    gap = (
        "rpki-client: .rsync/rpki.example.net/repo/online/90B8D8E7815F99BA41FCE6029D6D0749AAE78CCF.mft: "
        "seqnum gap detected #01A24E235888 -> #01A277563888"
    )
    stderr = "\n".join(
        [
            "rpki-client: ta/ta: pulling from rsync://rpki.example.net/repo/ta.cer",
            gap,
            "rpki-client: deleted superfluous .rsync/rpki.example.net/repo/ta.cer",
            "rpki-client: deleted superfluous .ta/ta/ta.cer",
        ]
    )
    assert rpki_client_warnings(stderr) == [gap]


@pytest.mark.parametrize("name", CURRENT_VALIDATORS)
def test_a_missing_current_generation_is_reported_with_the_install_steps(
    name: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Pointed at an empty directory, the current generation is missing (never Debian 12's in its place),
    and the message says how to unpack it."""
    monkeypatch.setattr(harness, "RP_CURRENT", tmp_path)
    assert harness.find_tool(name) is None
    with pytest.raises(harness.ToolMissingError, match="bookworm-backports"):
        harness.RUNNERS[name](tmp_path / "ta.tal", {"rpki.example.net": 873})
