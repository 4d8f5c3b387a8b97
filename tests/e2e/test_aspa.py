"""ASPAs (draft-ietf-sidrops-aspa-profile) through a CA's life, as four relying parties see them.

example-isp declares ASPAs for its three AS numbers; the scenario adds a provider, removes one (gated:
``aspa-removal``), removes a whole ASPA (gated, then revoked), rolls the CA's key (the ASPAs are
re-issued under the new key, no gate) and renews manifests and CRLs on the clock. Each validator keeps
one cache from the first apply to the last, as a deployed one does.

After every step rpki-client 9.x outputs exactly the ASPAs of the YAML, and every validator exactly
its VRPs. FORT 1.5 and 1.6 do not output ASPAs, and accept the tree without a warning. rpki-client 8.2
knows only an older ASPA draft: it reports every ``.asa`` as a parse failure -- one line per file, and
nothing else -- and still outputs all the VRPs. It names the file where it read it: under ``.rsync/``
when the file is new or changed since its last run, in its cache of validated files when not.
"""

from __future__ import annotations

import re
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from reconciler import engine
from reconciler.plan.model import Action, Kind, Plan
from reconciler.plan.rollover import Phase
from tests.e2e.harness import ValidatorResult, parse_rsync_base
from tests.e2e.relying_parties import Steps, revoked_in, validate, write_tal
from tests.helpers import T0, Scratch, later, scratch_copy

ISP = "cas/members/example-isp.yaml"
GATE = "aspa-removal@example-isp"

FIRST_ASPAS = (
    "aspas:\n"
    "  - {customer: AS64496, providers: [AS64511, AS64500], comment: transit}\n"
    "  - {customer: AS64497, providers: [AS0]}\n"
    "  - {customer: AS64498, providers: [AS64501, AS64500]}\n"
)
ADDED = ("providers: [AS64511, AS64500]", "providers: [AS64511, AS64500, AS64502]")
REMOVED = ("providers: [AS64511, AS64500, AS64502]", "providers: [AS64500, AS64502]")
WHOLE = ("  - {customer: AS64496, providers: [AS64500, AS64502], comment: transit}\n", "")
# A short staging period keeps the roll within hours: manifests (valid 24 h, renewed 8 h before
# expiry) are then re-issued by the roll's own steps, and the clock's renewals come at the last step.
ROLL_TIMING = "timing:\n  key_roll_staging: 1h\n"
OLD_PARSE_FAILURE = "ASPA: failed to parse ASProviderAttestation"


def with_aspas(tmp_path: Path) -> Scratch:
    """The bundled example, example-isp holding a third AS number and declaring an ASPA for each."""
    scratch = scratch_copy(tmp_path)
    scratch.edit(ISP, "asn: [AS64496, AS64497]", "asn: [AS64496, AS64497, AS64498]")
    (scratch.repo / ISP).write_text((scratch.repo / ISP).read_text() + FIRST_ASPAS)
    return scratch


def yaml_aspas(scratch: Scratch) -> dict[int, tuple[int, ...]]:
    """The ASPAs the YAML declares (customer -> sorted providers), as rpki-client outputs them."""
    desired = engine.open_workspace(scratch.repo).desired
    return {a.customer: tuple(sorted(a.providers)) for ca in desired.cas for a in ca.aspas}


def published_aspa_files(scratch: Scratch) -> list[str]:
    return sorted(p for p in engine.open_workspace(scratch.repo).published.files if p.endswith(".asa"))


def asa_bytes(scratch: Scratch) -> dict[str, bytes]:
    files = engine.open_workspace(scratch.repo).published.files
    return {path: data for path, data in files.items() if path.endswith(".asa")}


# ------------------------------------------------------------------------------ the plan's document


def test_the_plan_document_names_the_removed_provider(tmp_path: Path) -> None:
    """A provider taken out of an ASPA: the document's ``aspas`` says it is removed (and nothing added),
    and the gate lists exactly that authorisation."""
    scratch = with_aspas(tmp_path)
    scratch.edit(ISP, *ADDED)
    assert scratch.apply(T0) is not None
    scratch.edit(ISP, *REMOVED)
    workspace = engine.open_workspace(scratch.repo)
    doc = engine.plan_document(workspace, engine.plan(workspace, later(1)))

    assert [(a.customer, a.action, a.removed, a.added) for a in doc.aspas] == [
        (64496, "reissue", [64511], [])
    ], doc.aspas
    change = doc.aspas[0]
    assert (change.path, change.providers_before, change.providers_after) == (
        "example-isp/AS64496.asa",
        [64500, 64502, 64511],
        [64500, 64502],
    )
    assert [(g.id, g.items) for g in doc.gates] == [(GATE, ["AS64496 -> AS64511"])]
    as_json = engine.plan_document(workspace, engine.plan(workspace, later(1))).model_dump(mode="json")
    assert as_json["aspas"][0]["removed"] == [64511]


# ------------------------------------------------------------------------- through the validators


def test_aspas_through_changes_a_key_roll_and_renewals_with_kept_caches(
    validators: tuple[str, ...], current_validators: tuple[str, ...], tmp_path: Path
) -> None:
    """One cache per validator from the first apply to the last; after every apply the plan at the same
    time is empty, and every validator outputs exactly what the YAML says (see the module docstring)."""
    names = (*current_validators, *validators)
    scratch = with_aspas(tmp_path)
    rpki = scratch.repo / "rpki.yaml"
    rpki.write_text(rpki.read_text() + ROLL_TIMING)
    start = datetime.now(UTC).replace(microsecond=0)
    caches = {name: tmp_path / f"cache-{name}" for name in names}
    steps = Steps()
    tal: Path | None = None
    validated: dict[str, bytes] = {}  # the .asa files as the validators last fetched them

    def check(label: str, at: datetime, *, left: tuple[Action, ...] = ()) -> None:
        nonlocal tal, validated
        remaining = tuple(c.action for c in scratch.plan(at).changes)
        if remaining != left:
            steps.problems.append(f"{label}: not converged, the next plan still has {remaining}")
        tal = tal or write_tal(scratch)
        results = validate(scratch, names, now=at, caches=caches, tal=tal)
        _check_step(scratch, results, label, at, steps=steps, validated=validated)
        validated = asa_bytes(scratch)

    # 1. first apply
    assert scratch.apply(start) is not None
    check("1 first apply", start)
    assert published_aspa_files(scratch) == [f"example-isp/AS{n}.asa" for n in (64496, 64497, 64498)]

    # 2. a provider added: no approval needed
    at = start + timedelta(minutes=10)
    scratch.edit(ISP, *ADDED)
    plan = scratch.plan(at)
    assert plan.gates == (), plan.gates
    assert _aspa_actions(plan) == [(Action.REISSUE, "example-isp/AS64496.asa")]
    assert scratch.apply(at) is not None
    check("2 provider added", at)

    # 3. a provider removed: gated, refused without the approval, applied with it
    at = start + timedelta(minutes=20)
    scratch.edit(ISP, *REMOVED)
    plan = _gated_apply(scratch, at, ["AS64496 -> AS64511"])
    assert _aspa_actions(plan) == [(Action.REISSUE, "example-isp/AS64496.asa")]
    check("3 provider removed", at)

    # 4. an ASPA removed: gated with all its providers, then revoked
    at = start + timedelta(minutes=30)
    scratch.edit(ISP, *WHOLE)
    plan = _gated_apply(scratch, at, ["AS64496 -> AS64500", "AS64496 -> AS64502"])
    assert _aspa_actions(plan) == [(Action.REVOKE, "example-isp/AS64496.asa")]
    assert published_aspa_files(scratch) == ["example-isp/AS64497.asa", "example-isp/AS64498.asa"]
    (serial,) = [c.revoke_serial for c in plan.changes if c.kind is Kind.ASPA]
    assert serial is not None and serial in revoked_in(scratch, "example-isp/"), serial
    check("4 ASPA removed", at)

    # 5. a key roll: staging, activation (the ASPAs re-issued under the new key, no gate), cleanup
    scratch.edit(ISP, "parent: online\n", "parent: online\nkey_generation: 2\n")
    phases = []
    for label, at, left in (
        ("5a key roll", start + timedelta(hours=1), ()),
        ("5b key roll", start + timedelta(hours=2, minutes=10), (Action.DESTROY_KEY,)),
        ("5c key roll", start + timedelta(hours=2, minutes=20), ()),
    ):
        plan = scratch.plan(at)
        roll = plan.key_plans["example-isp"]
        phases.append(roll.phase)
        assert plan.gates == () and not plan.vrps_added and not plan.vrps_removed, label
        aspas = [c for c in plan.changes if c.kind is Kind.ASPA]
        if roll.phase is Phase.ACTIVATING:
            assert [(c.action, c.path, c.roll) for c in aspas] == [
                (Action.REISSUE, "example-isp/AS64497.asa", True),
                (Action.REISSUE, "example-isp/AS64498.asa", True),
            ], aspas
        else:
            assert aspas == [], f"{label}: {aspas}"
        assert scratch.apply(at) is not None, label
        check(f"{label} ({roll.phase})", at, left=left)
    assert phases == [Phase.STAGING, Phase.ACTIVATING, Phase.CLEANUP]

    # 6. renewals on the clock, 17 hours on: manifests and CRLs, the ASPA untouched
    at += timedelta(hours=17)
    before = asa_bytes(scratch)
    plan = scratch.plan(at)
    renewed = {(c.kind, c.action) for c in plan.changes}
    assert renewed == {(Kind.MANIFEST, Action.RENEW), (Kind.CRL, Action.RENEW)}, plan.changes
    assert scratch.apply(at) is not None
    assert asa_bytes(scratch) == before
    check("6 renewals", at)

    print("\n".join(steps.seen))  # what each step saw, shown by pytest -rP
    assert steps.problems == [], "\n".join(steps.problems)


def _aspa_actions(plan: Plan) -> list[tuple[Action, str]]:
    return sorted((c.action, c.path) for c in plan.changes if c.kind is Kind.ASPA)


def _rpkictl(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "reconciler", *args],
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
        check=False,
    )


def _gated_apply(scratch: Scratch, at: datetime, items: list[str]) -> Plan:
    """The plan at ``at`` has exactly the gate ``aspa-removal@example-isp`` over ``items``; ``rpkictl
    apply --yes`` refuses it (exit 3, the publication point untouched), and applies it with the token."""
    workspace = engine.open_workspace(scratch.repo)
    plan = engine.plan(workspace, at)
    doc = engine.plan_document(workspace, plan)
    assert [(g.id, g.items) for g in doc.gates] == [(GATE, items)], doc.gates
    when = ("--now", f"{at:%Y-%m-%dT%H:%M:%SZ}", "--simulate-time")
    before = engine.open_workspace(scratch.repo).published.files
    refused = _rpkictl("apply", str(scratch.repo), "--yes", *when)
    said = refused.stdout + refused.stderr
    assert refused.returncode == 3, said
    token = re.search(rf"--approve ({re.escape(GATE)}:[0-9a-f]+)", said)
    assert token is not None and token.group(1) == doc.gates[0].approve, said
    assert engine.open_workspace(scratch.repo).published.files == before, "a refused apply published"
    done = _rpkictl("apply", str(scratch.repo), "--yes", *when, "--approve", token.group(1))
    assert done.returncode == 0, done.stdout + done.stderr
    return plan


def _check_step(
    scratch: Scratch,
    results: dict[str, ValidatorResult],
    label: str,
    at: datetime,
    *,
    steps: Steps,
    validated: dict[str, bytes],
) -> None:
    """Record each validator's verdict of one step against the YAML. ``validated``: the ``.asa`` files
    of the previous step (rpki-client 8.2 reads the unchanged ones from its cache of validated files)."""
    want_vrps = scratch.desired_vrps()
    want_aspas = yaml_aspas(scratch)
    host, module = parse_rsync_base(engine.open_workspace(scratch.repo).desired.publication.rsync_base)
    old_parse_failures = sorted(
        f"rpki-client: {'' if validated.get(path) == data else '.rsync/'}{host}/{module}/{path}: "
        + OLD_PARSE_FAILURE
        for path, data in asa_bytes(scratch).items()
    )
    for name, result in results.items():
        where = f"{label} ({at:%Y-%m-%d %H:%M}) {name}"
        aspa_counts = {
            k: v for k, v in result.counts.items() if k in {"aspas", "invalidaspas", "failedaspas"}
        }
        steps.seen.append(
            f"{where}: {len(result.vrps)} VRPs, {len(result.warnings)} warnings"
            + (f", ASPAs {result.aspas} {aspa_counts}" if result.aspas is not None else "")
        )
        if result.vrps != want_vrps:
            steps.problems.append(
                f"{where}: {len(result.vrps)} VRPs, want {len(want_vrps)}\n{result.summary()}"
            )
        if result.clock is None or abs(result.clock - at) > timedelta(minutes=5):
            steps.problems.append(f"{where}: the validator ran at {result.clock}, not at {at}")
        warnings = sorted(result.warnings)
        if name == "rpki-client":
            if warnings != old_parse_failures:
                steps.problems.append(f"{where}: warnings {warnings}, want {old_parse_failures}")
            failed = (result.aspas, result.counts.get("failedaspas"))
            if failed != ({}, len(old_parse_failures)):
                steps.problems.append(f"{where}: ASPAs output and failed: {failed}")
            continue
        steps.problems += [f"{where}: {line}" for line in warnings]
        if name == "rpki-client-9":
            counts = result.counts
            if result.aspas != want_aspas:
                steps.problems.append(f"{where}: ASPAs {result.aspas}, want {want_aspas}")
            seen = tuple(counts.get(key) for key in ("aspas", "invalidaspas", "failedaspas"))
            if seen != (len(want_aspas), 0, 0):
                steps.problems.append(f"{where}: aspas, invalidaspas, failedaspas = {seen}")
