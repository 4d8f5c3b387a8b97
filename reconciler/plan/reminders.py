"""Reminders that cannot be ignored quietly: the trust anchor's manifest and CRL coming close to expiry.

A trust anchor whose key is offline is renewed by a person, monthly; one registry's expired on a
Saturday because the reminder was ignored. ``plan`` warns from ``ta_reminder_before`` (15 days by
default) and turns critical from ``ta_critical_before`` (7 days), which ``rpkictl check`` reports with
exit 2 so that a scheduled CI job turns red long before anything expires.
"""

from __future__ import annotations

from datetime import datetime

from reconciler import layout
from reconciler.desired.model import DesiredState
from reconciler.plan.model import Notice, Severity
from reconciler.plan.wording import describe_delta
from reconciler.published.reader import PublishedState, SignedManifest
from reconciler.rpki import cert as rc
from reconciler.rpki import crl


def trust_anchor_expiry(desired: DesiredState, published: PublishedState) -> datetime | None:
    """When the trust anchor's published manifest or CRL (the sooner) expires; None if not published."""
    ta = desired.trust_anchor
    cert = published.certificate(layout.certificate_path(ta))
    if not isinstance(cert, rc.ResourceCertificate):
        return None
    directory = layout.repository(ta.name)
    mft = published.manifest(directory + layout.manifest_name(cert.key_id))
    found_crl = published.crl(directory + layout.crl_name(cert.key_id))
    ends = []
    if isinstance(mft, SignedManifest):
        ends.append(mft.content.next_update)
    if isinstance(found_crl, crl.Crl):
        ends.append(found_crl.next_update)
    return min(ends) if ends else None


def trust_anchor_reminders(
    desired: DesiredState, published: PublishedState, now: datetime, *, offline: bool
) -> list[Notice]:

    if not desired.trust_anchor.trust_anchor:
        return []  # a CA under an external parent: its daily manifests are any CA's (``health``)
    ends = trust_anchor_expiry(desired, published)
    timing = desired.timing
    if ends is None or ends - now >= timing.ta_reminder_before:
        return []
    left = ends - now
    severity = Severity.CRITICAL if left < timing.ta_critical_before else Severity.WARNING
    when = f"{ends:%Y-%m-%dT%H:%M:%SZ}"
    state = (
        f"expired {describe_delta(-left)} ago"
        if left.total_seconds() < 0
        else f"expire in {describe_delta(left)}"
    )
    if offline:
        todo = (
            "hold the offline signing ceremony now: 'rpkictl apply' writes the request, "
            "'rpkictl ta sign' on the offline machine, then 'rpkictl ta import'"
        )
    else:
        todo = "run 'rpkictl apply' now: the renewal is due and has not happened"
    message = (
        f"the trust anchor's manifest and CRL {state} ({when}); every CA below it "
        f"falls out of validation then: {todo}"
    )
    return [Notice("expiry", severity, desired.trust_anchor.name, message, ends)]
