"""BGPsec router certificates (RFC 8209) through a CA's life, as four relying parties see them.

example-isp certifies two routers: one by its real PKCS#10 request (Krill's test request, see
tests/fixtures/real-world/README.md) for AS64496, one by a bare public key (PEM) for AS64497 with a BGP
Identifier. The scenario moves a router to another AS (a new certificate, the old one revoked), gives
one a second AS number (a second certificate), removes one (each certificate revoked, withdrawn), rolls
the CA's key (the router certificates re-issued under the new key, no gate) and renews manifests and
CRLs on the clock. Each validator keeps one cache from the first apply to the last, as a deployed one
does.

After every step both rpki-client generations output exactly the router keys of the YAML -- computed
here from the key files, one (AS, SKI, key) per AS number of each router -- and every validator exactly
its VRPs, with no warning. FORT 1.5 and 1.6 do not output router keys. A key listed for several AS
numbers gets a certificate per AS: rpki-client 9.x rejects one that holds several ("not supported").
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from reconciler import engine
from reconciler.plan.model import Action, Kind, Plan, Reason
from reconciler.plan.rollover import Phase
from tests.e2e.harness import ValidatorResult
from tests.e2e.relying_parties import Steps, revoked_in, validate, write_tal
from tests.helpers import Scratch, scratch_copy

ISP = "cas/members/example-isp.yaml"
KRILL_CSR = Path(__file__).resolve().parents[1] / "fixtures/real-world/protocols/krill/bgpsec/router-csr.der"
# A short staging period keeps the roll within hours (see test_aspa.py).
ROLL_TIMING = "timing:\n  key_roll_staging: 1h\n"

BgpsecKey = tuple[int, str, str]  # (AS, SKI in lower-case hex, SubjectPublicKeyInfo in Base64)


@dataclass(frozen=True)
class Router:
    """One ``routers:`` entry as the test writes it."""

    key: str  # the key file, relative to the desired-state directory
    asns: tuple[int, ...]
    router_id: str | None = None

    def yaml(self) -> str:
        asns = ", ".join(f"AS{n}" for n in self.asns)
        router_id = f", router_id: {self.router_id}" if self.router_id else ""
        return f"  - {{key: {self.key}, asns: [{asns}]{router_id}}}\n"


EDGE1 = Router("routers/edge1.der", (64496,))
EDGE2 = Router("routers/edge2.pem", (64497,), "192.0.2.2")
EDGE2_MOVED = Router("routers/edge2.pem", (64496,), "192.0.2.2")
# One key for two AS numbers: a certificate per AS (rpki-client 9.x takes none that holds several).
EDGE1_TWO = Router("routers/edge1.der", (64496, 64497))


def with_router_keys(tmp_path: Path) -> Scratch:
    """The bundled example with the two key files committed (no ``routers:`` yet)."""
    scratch = scratch_copy(tmp_path)
    (scratch.repo / "routers").mkdir()
    (scratch.repo / EDGE1.key).write_bytes(KRILL_CSR.read_bytes())
    public = ec.generate_private_key(ec.SECP256R1()).public_key()
    pem = public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    (scratch.repo / EDGE2.key).write_bytes(pem)
    return scratch


def declare(scratch: Scratch, routers: tuple[Router, ...]) -> None:
    """example-isp's ``routers:`` replaced by ``routers`` (the section is the file's last)."""
    path = scratch.repo / ISP
    head = path.read_text().split("routers:\n", 1)[0]
    section = "routers:\n" + "".join(r.yaml() for r in routers) if routers else ""
    path.write_text(head + section)


def public_key(data: bytes) -> ec.EllipticCurvePublicKey:
    """The key of a router's request (DER) or of its public key file (PEM)."""
    key = (
        serialization.load_pem_public_key(data)
        if data.lstrip().startswith(b"-----")
        else x509.load_der_x509_csr(data).public_key()
    )
    assert isinstance(key, ec.EllipticCurvePublicKey), type(key)
    return key


def yaml_keys(scratch: Scratch, routers: tuple[Router, ...]) -> frozenset[BgpsecKey]:
    """What rpki-client should output for the declared routers, computed from the key files alone."""
    found = set()
    for router in routers:
        key = public_key((scratch.repo / router.key).read_bytes())
        ski = x509.SubjectKeyIdentifier.from_public_key(key).digest.hex()
        spki = key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        found |= {(asn, ski, base64.b64encode(spki).decode()) for asn in router.asns}
    return frozenset(found)


def router_files(scratch: Scratch) -> dict[str, bytes]:
    files = engine.open_workspace(scratch.repo).published.files
    return {p: data for p, data in files.items() if p.startswith("example-isp/router_")}


def router_actions(plan: Plan) -> list[tuple[Action, str]]:
    return sorted((c.action, c.path) for c in plan.changes if c.kind is Kind.ROUTER)


def test_router_certificates_through_changes_a_key_roll_and_renewals_with_kept_caches(
    validators: tuple[str, ...], current_validators: tuple[str, ...], tmp_path: Path
) -> None:
    """One cache per validator from the first apply to the last; after every apply the plan at the same
    time is empty, and every validator outputs exactly what the YAML says (see the module docstring)."""
    names = (*current_validators, *validators)
    scratch = with_router_keys(tmp_path)
    rpki = scratch.repo / "rpki.yaml"
    rpki.write_text(rpki.read_text() + ROLL_TIMING)
    start = datetime.now(UTC).replace(microsecond=0)
    caches = {name: tmp_path / f"cache-{name}" for name in names}
    steps = Steps()
    tal: Path | None = None
    routers: tuple[Router, ...] = ()

    def check(label: str, at: datetime, *, left: tuple[Action, ...] = ()) -> None:
        nonlocal tal
        remaining = tuple(c.action for c in scratch.plan(at).changes)
        if remaining != left:
            steps.problems.append(f"{label}: not converged, the next plan still has {remaining}")
        tal = tal or write_tal(scratch)
        results = validate(scratch, names, now=at, caches=caches, tal=tal)
        _check_step(scratch, results, label, at, want_keys=yaml_keys(scratch, routers), steps=steps)

    def name(router: Router, asn: int | None = None) -> str:
        key = public_key((scratch.repo / router.key).read_bytes())
        key_id = x509.SubjectKeyIdentifier.from_public_key(key).digest.hex().upper()
        return f"example-isp/router_AS{asn or router.asns[0]}_{key_id}.cer"

    # 1. first apply: the real request and the bare public key
    routers = (EDGE1, EDGE2)
    declare(scratch, routers)
    plan = scratch.plan(start)
    assert router_actions(plan) == sorted((Action.ISSUE, name(r)) for r in routers)
    assert scratch.apply(start) is not None
    assert sorted(router_files(scratch)) == sorted(name(r) for r in routers)
    check("1 first apply", start)

    # 2. a router moved to another AS: a new name, so the new certificate issued and the old revoked
    at = start + timedelta(minutes=10)
    routers = (EDGE1, EDGE2_MOVED)
    declare(scratch, routers)
    plan = scratch.plan(at)
    assert plan.gates == (), plan.gates
    assert router_actions(plan) == [(Action.ISSUE, name(EDGE2_MOVED)), (Action.REVOKE, name(EDGE2))]
    (serial,) = [c.revoke_serial for c in plan.changes if c.action is Action.REVOKE]
    assert scratch.apply(at) is not None
    assert serial is not None and serial in revoked_in(scratch, "example-isp/"), serial
    assert sorted(router_files(scratch)) == sorted(name(r) for r in routers)
    check("2 AS changed", at)

    # 2b. a router for a second AS number: a certificate of its own for it
    at = start + timedelta(minutes=15)
    routers = (EDGE1_TWO, EDGE2_MOVED)
    declare(scratch, routers)
    plan = scratch.plan(at)
    assert plan.gates == (), plan.gates
    assert router_actions(plan) == [(Action.ISSUE, name(EDGE1_TWO, 64497))]
    assert scratch.apply(at) is not None
    check("2b second AS", at)

    # 3. a router removed: each of its certificates revoked, their files withdrawn
    at = start + timedelta(minutes=20)
    routers = (EDGE2_MOVED,)
    declare(scratch, routers)
    plan = scratch.plan(at)
    assert plan.gates == (), plan.gates
    assert router_actions(plan) == sorted((Action.REVOKE, name(EDGE1_TWO, asn)) for asn in (64496, 64497))
    serials = [c.revoke_serial for c in plan.changes if c.kind is Kind.ROUTER]
    assert scratch.apply(at) is not None
    assert all(s is not None and s in revoked_in(scratch, "example-isp/") for s in serials), serials
    assert sorted(router_files(scratch)) == [name(EDGE2_MOVED)]
    check("3 router removed", at)

    # 4. a key roll: staging, activation (the router certificate re-issued under the new key), cleanup
    scratch.edit(ISP, "parent: online\n", "parent: online\nkey_generation: 2\n")
    phases = []
    for label, at, left in (
        ("4a key roll", start + timedelta(hours=1), ()),
        ("4b key roll", start + timedelta(hours=2, minutes=10), (Action.DESTROY_KEY,)),
        ("4c key roll", start + timedelta(hours=2, minutes=20), ()),
    ):
        plan = scratch.plan(at)
        roll = plan.key_plans["example-isp"]
        phases.append(roll.phase)
        assert plan.gates == () and not plan.vrps_added and not plan.vrps_removed, label
        changes = [c for c in plan.changes if c.kind is Kind.ROUTER]
        if roll.phase is Phase.ACTIVATING:
            assert [(c.action, c.path, c.cause, c.roll) for c in changes] == [
                (Action.REISSUE, name(EDGE2_MOVED), Reason.NEW_KEY, True)
            ], changes
        else:
            assert changes == [], f"{label}: {changes}"
        assert scratch.apply(at) is not None, label
        check(f"{label} ({roll.phase})", at, left=left)
    assert phases == [Phase.STAGING, Phase.ACTIVATING, Phase.CLEANUP]

    # 5. renewals on the clock, 17 hours on: manifests and CRLs, the router certificate untouched
    at += timedelta(hours=17)
    before = router_files(scratch)
    plan = scratch.plan(at)
    renewed = {(c.kind, c.action) for c in plan.changes}
    assert renewed == {(Kind.MANIFEST, Action.RENEW), (Kind.CRL, Action.RENEW)}, plan.changes
    assert scratch.apply(at) is not None
    assert router_files(scratch) == before
    check("5 renewals", at)

    print("\n".join(steps.seen))  # what each step saw, shown by pytest -rP
    assert steps.problems == [], "\n".join(steps.problems)


def _check_step(
    scratch: Scratch,
    results: dict[str, ValidatorResult],
    label: str,
    at: datetime,
    *,
    want_keys: frozenset[BgpsecKey],
    steps: Steps,
) -> None:
    """Record each validator's verdict of one step against the YAML."""
    want_vrps = scratch.desired_vrps()
    assert want_keys, "the scenario declares a router at every step"
    for name, result in results.items():
        where = f"{label} ({at:%Y-%m-%d %H:%M}) {name}"
        steps.seen.append(
            f"{where}: {len(result.vrps)} VRPs, {len(result.warnings)} warnings"
            + (
                f", {len(result.bgpsec_keys)} router keys (bgpsec_pubkeys "
                f"{result.counts.get('bgpsec_pubkeys')})"
                if result.bgpsec_keys is not None
                else ""
            )
        )
        if result.vrps != want_vrps:
            steps.problems.append(
                f"{where}: {len(result.vrps)} VRPs, want {len(want_vrps)}\n{result.summary()}"
            )
        if result.clock is None or abs(result.clock - at) > timedelta(minutes=5):
            steps.problems.append(f"{where}: the validator ran at {result.clock}, not at {at}")
        steps.problems += [f"{where}: {line}" for line in result.warnings]
        if name.startswith("rpki-client"):
            if result.bgpsec_keys != want_keys:
                steps.problems.append(f"{where}: router keys {result.bgpsec_keys}, want {want_keys}")
            if result.counts.get("bgpsec_pubkeys") != len(want_keys):
                steps.problems.append(
                    f"{where}: bgpsec_pubkeys {result.counts.get('bgpsec_pubkeys')}, want {len(want_keys)}"
                )
