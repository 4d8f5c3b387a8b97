"""Which key each CA signs with, and where an RFC 6489 key roll stands.

A roll is declared, not commanded: raising a CA's ``key_generation`` in YAML. Its phase is derived
each time from the three sources of truth -- which generations' keys the signer holds, which of their
certificates are published, and the clock -- so an interrupted roll, or one whose publication point was
lost, simply continues from what is there:

- *staging*: the new key exists and its certificate is published with an empty manifest and CRL, while
  the old key still signs everything. Relying parties learn the new key before it is used.
- *activating*: the staging period is over. The new key re-issues every object, and the old key's
  certificate is revoked and its manifest and CRL withdrawn, in one publication.
- *cleanup*: the old key signs nothing that is published any more; it is destroyed in its signer.

Staging starts when the new key's certificate is first published, read back from its ``notBefore``
(which is backdated by the clock-skew margin), so a re-issued new certificate restarts the wait: the
roll only ever waits longer, never shorter.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from reconciler import layout
from reconciler.desired.model import CaIntent, DesiredState
from reconciler.published.reader import PublishedState
from reconciler.rpki import cert as rc

# How far apply backdates notBefore (apply.executor.CLOCK_SKEW_MARGIN); repeated here because the plan
# must not depend on the executor.
NOT_BEFORE_BACKDATE = timedelta(minutes=5)

KeyIds = dict[str, dict[int, bytes]]  # CA -> key generation -> key identifier, for keys that exist


class Phase(StrEnum):
    STAGING = "staging"
    ACTIVATING = "activating"
    CLEANUP = "cleanup"


@dataclass(frozen=True, slots=True)
class KeyPlan:
    """The keys of one CA in this plan.

    ``active`` signs the CA's objects; ``pending`` (staging only) is certified and publishes an empty
    manifest and CRL; ``retired`` are older generations whose certificate is revoked in this plan (on
    activation); ``lingering`` is a retired generation whose certificate stays published until an offline
    parent revokes it, and which keeps an empty manifest and CRL meanwhile (so that relying parties
    following the old certificate find a valid, empty publication point); ``destroy`` are keys that sign
    nothing published any more.
    """

    ca: str
    active: int
    pending: int | None = None
    retired: tuple[int, ...] = ()
    destroy: tuple[int, ...] = ()
    phase: Phase | None = None
    due: datetime | None = None  # when the next step of the roll happens
    lingering: int | None = None
    held: bool = False  # activation is due but waits for reviewed changes of the CA (routine-only runs)

    @property
    def generations(self) -> tuple[int, ...]:
        """Generations whose certificate the parent publishes after this plan."""
        return (self.active,) if self.pending is None else (self.active, self.pending)

    @property
    def side(self) -> tuple[int, ...]:
        """Generations besides the active one that publish an empty manifest and CRL."""
        return tuple(g for g in (self.pending, self.lingering) if g is not None)


def _certified(
    published: PublishedState, ca: CaIntent, generation: int, key: bytes | None, now: datetime
) -> rc.ResourceCertificate | None:
    """The published certificate of this generation's key, when it is readable, current and for that key."""
    if key is None:
        return None
    found = published.certificate(layout.certificate_path(ca, generation))
    if isinstance(found, rc.ResourceCertificate) and found.key_id == key and found.not_after > now:
        return found
    return None


def key_plan(
    ca: CaIntent,
    keys: dict[int, bytes],
    published: PublishedState,
    now: datetime,
    staging: timedelta,
    *,
    parent_offline: bool = False,
    hold: bool = False,
) -> KeyPlan:
    """Where this CA's keys stand; see the module docstring for the phases.

    The key in use is the oldest one whose certificate is published (newer published ones are being
    staged). If ``key_generation`` was raised again during a roll, the roll in progress finishes first
    (to the next generation that has a key), then the next one starts. Keys are destroyed only once the
    certificate of the key that replaces them is published."""
    wanted = ca.key_generation
    if ca.trust_anchor:
        return KeyPlan(ca.name, wanted)
    live = [g for g in sorted(keys) if g < wanted and _certified(published, ca, g, keys[g], now) is not None]
    if not live:
        older = tuple(sorted(g for g in keys if g < wanted))
        if not older:
            return KeyPlan(ca.name, wanted)
        # Relying parties do not know the old keys (never published, revoked, or the publication point
        # was lost): nothing to stage, the new key takes over at once.
        replaced = _certified(published, ca, wanted, keys.get(wanted), now) is not None
        return KeyPlan(ca.name, wanted, destroy=older if replaced else (), phase=Phase.CLEANUP)
    old = live[0]
    target = min((g for g in keys if old < g <= wanted), default=wanted)
    stale = tuple(g for g in sorted(keys) if g < old)  # left behind by an earlier, interrupted roll
    new_cert = _certified(published, ca, target, keys.get(target), now)
    if new_cert is None:
        return KeyPlan(ca.name, old, pending=target, destroy=stale, phase=Phase.STAGING, due=now + staging)
    due = new_cert.not_before + NOT_BEFORE_BACKDATE + staging
    if now < due or hold:
        return KeyPlan(ca.name, old, pending=target, destroy=stale, phase=Phase.STAGING, due=due, held=hold)
    lingering = old if parent_offline else None
    return KeyPlan(
        ca.name, target, retired=(old,), destroy=stale, phase=Phase.ACTIVATING, lingering=lingering
    )


def key_plans(
    desired: DesiredState,
    keys: KeyIds,
    published: PublishedState,
    now: datetime,
    hold: frozenset[str] = frozenset(),
) -> dict[str, KeyPlan]:
    """Each CA's keys; the CAs in ``hold`` do not activate a new key in this plan."""
    staging = desired.timing.key_roll_staging
    offline = {name for name, config in desired.signers.items() if config.type == "offline"}
    return {
        ca.name: key_plan(
            ca,
            keys.get(ca.name, {}),
            published,
            now,
            staging,
            parent_offline=ca.parent is not None and desired.ca(ca.parent).signer in offline,
            hold=ca.name in hold,
        )
        for ca in desired.cas
    }


def describe(plan: KeyPlan, now: datetime) -> str:
    """One line for the operator: the phase, and when the next step is due."""
    from reconciler.plan.diff import describe_delta  # noqa: PLC0415 - diff imports this module

    if plan.phase is Phase.STAGING:
        assert plan.due is not None  # noqa: S101 - staging always has a due time
        if plan.held:
            return (
                f"key roll generation {plan.active} -> {plan.pending}: activation was due "
                f"{plan.due:%Y-%m-%dT%H:%M:%SZ} and waits until the reviewed changes of {plan.ca} are applied"
            )
        return (
            f"key roll generation {plan.active} -> {plan.pending}: staging (the new key is published, "
            f"unused); activation due {plan.due:%Y-%m-%dT%H:%M:%SZ} (in {describe_delta(plan.due - now)})"
        )
    if plan.phase is Phase.ACTIVATING:
        old = plan.retired[0]
        return (
            f"key roll generation {old} -> {plan.active}: activating now (every object re-issued under "
            f"the new key; generation {old}'s certificate revoked); its old key is destroyed on the next run"
        )
    if not plan.destroy:
        return (
            f"key roll to generation {plan.active}: the new key takes over; the old one is destroyed once "
            "the new key's certificate is published"
        )
    gens = ", ".join(str(g) for g in plan.destroy)
    plural = "s" if len(plan.destroy) > 1 else ""
    return f"key roll to generation {plan.active}: done; destroying the retired key generation{plural} {gens}"
