"""``rpkictl check``: is anything in the published tree about to expire, or waiting for a person?

The monitoring-plugin convention: every finding has a severity, and the worst decides the exit code
(0 ok, 1 warning, 2 critical). Findings come from the published objects themselves -- each CA's
manifest and CRL -- and from the plan's notices (the trust anchor's reminders, a renewal waiting for
the offline signer), so what ``check`` reports is what relying parties will see.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from reconciler import layout
from reconciler.desired.model import DesiredState
from reconciler.plan.diff import describe_delta
from reconciler.plan.model import Notice, Severity
from reconciler.published.reader import PublishedState, SignedManifest
from reconciler.rpki import crl

RANK = {Severity.INFO: 0, Severity.WARNING: 1, Severity.CRITICAL: 2}


@dataclass(frozen=True, slots=True)
class Finding:
    severity: Severity
    ca: str
    message: str  # what is wrong and what to do


def point_findings(
    desired: DesiredState,
    published: PublishedState,
    keys: dict[str, bytes | None],
    now: datetime,
    *,
    warn: timedelta,
    critical: timedelta,
) -> list[Finding]:
    """Each CA's manifest and CRL: missing, unreadable, or expiring within the margins. The trust
    anchor's expiry margins come from its reminders instead (its renewal may need the offline signer)."""
    found = []
    for ca in desired.cas:
        key = keys.get(ca.name)
        repo = layout.repository(ca.name)
        if key is None:
            found.append(Finding(Severity.CRITICAL, ca.name, "no key: run 'rpkictl apply'"))
            continue
        mft = published.manifest(repo + layout.manifest_name(key))
        found_crl = published.crl(repo + layout.crl_name(key))
        if not isinstance(mft, SignedManifest) or not isinstance(found_crl, crl.Crl):
            found.append(
                Finding(
                    Severity.CRITICAL,
                    ca.name,
                    "manifest or CRL missing or unreadable: relying parties reject the CA's "
                    "publication point; run 'rpkictl apply'",
                )
            )
            continue
        ends = min(mft.content.next_update, found_crl.next_update)
        left = ends - now
        if left >= warn or ca.trust_anchor:  # the trust anchor's margins are its reminders
            continue
        severity = Severity.CRITICAL if left < critical else Severity.WARNING
        state = (
            f"expired {describe_delta(-left)} ago"
            if left < timedelta(0)
            else f"expire in {describe_delta(left)}"
        )
        found.append(
            Finding(
                severity,
                ca.name,
                f"manifest and CRL {state} ({ends:%Y-%m-%dT%H:%M:%SZ}): is the scheduled "
                "'rpkictl apply --yes --routine-only' running? Run it now",
            )
        )
    return found


def notice_findings(notices: tuple[Notice, ...]) -> list[Finding]:
    return [Finding(n.severity, n.ca, n.message) for n in notices if n.severity is not Severity.INFO]


def worst(findings: list[Finding]) -> Severity:
    return max((f.severity for f in findings), key=RANK.__getitem__, default=Severity.INFO)
