"""``rpkictl check``: is anything in the published tree about to expire, or waiting for a person?

The monitoring-plugin convention: every finding has a severity, and the worst decides the exit code
(0 ok, 1 warning, 2 critical). Findings come from the published objects themselves -- each CA's
certificate, manifest, CRL and soonest-expiring ROA -- from drift (published differs from desired in
more than scheduled renewals), and from the plan's notices (the trust anchor's reminders, a renewal
waiting for the offline signer), so what ``check`` reports is what relying parties will see.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from reconciler.desired.model import CaIntent
from reconciler.plan.model import Notice, Severity
from reconciler.plan.wording import describe_delta
from reconciler.status.model import ObjectKind, ObjectTimes

RANK = {Severity.INFO: 0, Severity.WARNING: 1, Severity.CRITICAL: 2}


@dataclass(frozen=True, slots=True)
class Finding:
    severity: Severity
    ca: str
    message: str  # what is wrong and what to do


NO_KEY_YET = "no key yet and nothing published for it: 'rpkictl apply' creates its key and publishes it"
MISSING_POINT = (
    "manifest or CRL missing or unreadable: relying parties reject the CA's publication point; "
    "run 'rpkictl apply'"
)
RENEW_NOW = "is the scheduled 'rpkictl reconcile' (or 'apply --yes --routine-only') running? Run it now"


def object_findings(
    ca: CaIntent,
    key: bytes | None,
    objects: list[ObjectTimes],
    now: datetime,
    *,
    warn: timedelta,
    critical: timedelta,
) -> list[Finding]:
    """A CA's objects that are missing, or that expire within the margins. The trust anchor's manifest
    and CRL have their own margins, its reminders (their renewal may need the offline signer)."""
    if key is None:
        return [Finding(Severity.CRITICAL, ca.name, NO_KEY_YET)]
    kinds = {o.kind for o in objects}
    if ObjectKind.MANIFEST not in kinds or ObjectKind.CRL not in kinds:
        return [Finding(Severity.CRITICAL, ca.name, MISSING_POINT)]
    found = []
    point = [o for o in objects if o.kind in (ObjectKind.MANIFEST, ObjectKind.CRL)]
    if not ca.trust_anchor:
        found += _expiring(
            ca.name, "manifest and CRL", min(o.expires for o in point), now, warn=warn, critical=critical
        )
    for item in objects:
        if item.kind is ObjectKind.CERTIFICATE:
            what = "certificate"
            todo = (
                "its parent re-issues it: run 'rpkictl apply' (below an offline trust anchor, apply writes "
                "the signing request)"
            )
        elif item.kind in (ObjectKind.ROA, ObjectKind.ASPA, ObjectKind.ROUTER):
            label = {ObjectKind.ROA: "ROA", ObjectKind.ASPA: "ASPA", ObjectKind.ROUTER: "router certificate"}
            what, todo = f"{label[item.kind]} {item.path}", RENEW_NOW
        else:
            continue
        found += _expiring(ca.name, what, item.expires, now, warn=warn, critical=critical, todo=todo)
    return found


def _expiring(
    ca: str,
    what: str,
    ends: datetime,
    now: datetime,
    *,
    warn: timedelta,
    critical: timedelta,
    todo: str = RENEW_NOW,
) -> list[Finding]:
    left = ends - now
    if left >= warn:
        return []
    severity = Severity.CRITICAL if left < critical else Severity.WARNING
    plural = what == "manifest and CRL"
    if left < timedelta(0):
        state = f"expired {describe_delta(-left)} ago"
    else:
        state = f"expire{'' if plural else 's'} in {describe_delta(left)}"
    return [Finding(severity, ca, f"{what} {state} ({ends:%Y-%m-%dT%H:%M:%SZ}): {todo}")]


def drift_finding(ca: str, drift: int, review: int) -> Finding:
    """Published differs from desired in more than what the clock asks: an unapplied merge, a failed
    apply, or a file changed behind our back. Relying parties see the published side."""
    waiting = f" ({review} need a reviewed apply)" if review else ""
    return Finding(
        Severity.WARNING,
        ca,
        f"{drift} change{'s' if drift != 1 else ''} between the desired state and what is published"
        f"{waiting}: 'rpkictl plan' shows them, 'rpkictl apply' publishes them",
    )


def damage_finding(ca: str, repairs: list[str]) -> Finding:
    """Entries or objects in the publication point that this CA did not publish, or that were altered
    (``repairs``: their plan addresses): relying parties may be rejecting the CA's publication point."""
    shown = ", ".join(repairs[:3]) + (f" and {len(repairs) - 3} more" if len(repairs) > 3 else "")
    return Finding(
        Severity.WARNING,
        ca,
        f"the publication point is damaged ({shown}): 'rpkictl plan' says why, 'rpkictl apply' repairs it",
    )


def future_finding(ca: str, dated: list[str]) -> Finding:
    """Objects dated in the future (``dated``: their plan addresses), signed while a clock ran ahead:
    relying parties reject them until that time comes, so what they carry is missing now."""
    shown = ", ".join(dated[:3]) + (f" and {len(dated) - 3} more" if len(dated) > 3 else "")
    return Finding(
        Severity.CRITICAL,
        ca,
        f"dated in the future ({shown}), signed while a clock ran ahead: relying parties reject them "
        "until then; 'rpkictl apply' (or the reconcile loop) renews them dated now -- check the clock of "
        "the machine that signed them",
    )


def notice_findings(notices: tuple[Notice, ...]) -> list[Finding]:
    return [Finding(n.severity, n.ca, n.message) for n in notices if n.severity is not Severity.INFO]


def worst(findings: list[Finding]) -> Severity:
    return max((f.severity for f in findings), key=RANK.__getitem__, default=Severity.INFO)
