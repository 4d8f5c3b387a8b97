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
from reconciler.plan.wording import describe_delta
from reconciler.published.reader import PublishedState
from reconciler.rpki import cert as rc
from reconciler.signers.base import MissingKeyError, Signer

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


@dataclass(frozen=True, slots=True)
class LostKey:
    """A key generation a plan would sign with, missing from its signer although its certificate is
    published: relying parties know the key, so a new one must not take its place unasked."""

    ca: CaIntent
    generation: int
    certificate: str  # the published certificate that names the key
    key_id: bytes | None  # the key it certifies, when the certificate is readable


def _issued_by_parent(
    desired: DesiredState, published: PublishedState, keys: KeyIds, ca: CaIntent, path: str
) -> rc.ResourceCertificate | None:
    """The certificate at ``path`` when the CA's parent made it: a certificate someone else planted there
    proves nothing about the CA's key."""
    assert ca.parent is not None  # noqa: S101 - only asked for CAs below the trust anchor
    found = published.certificate(path)
    if not isinstance(found, rc.ResourceCertificate):
        return None
    parent = desired.ca(ca.parent)
    parent_keys = set(keys.get(parent.name, {}).values())
    if found.authority_key_id not in parent_keys:
        return None
    for generation in sorted(keys.get(parent.name, {})):
        certified = published.certificate(layout.certificate_path(parent, generation))
        if isinstance(certified, rc.ResourceCertificate) and certified.key_id == found.authority_key_id:
            return found if rc.verify_signed_by(found.cert, certified.public_key) else None
    return found  # the parent's own certificate is unreadable: its key identifier is all there is


def lost_keys(
    desired: DesiredState,
    published: PublishedState,
    keys: KeyIds,
    now: datetime,
    *,
    offline: frozenset[str] = frozenset(),
) -> list[LostKey]:
    """Keys this plan would have to create although their certificate is published, trust anchor first.

    The trust anchor counts as published as soon as anything is at its certificate's path (even a damaged
    file: its key must never change through apply); any other CA when its parent's signature is on the
    certificate of that generation. A CA whose generations 1 to ``key_generation`` all have keys is not
    looked at any further (the common case costs nothing). CAs of ``offline`` signers are left alone:
    their keys are known only from what is published."""
    staging = desired.timing.key_roll_staging
    found: list[LostKey] = []
    for ca in desired.cas:
        have = keys.get(ca.name, {})
        if ca.signer in offline or all(have.get(g) is not None for g in range(1, ca.key_generation + 1)):
            continue
        plan = key_plan(ca, have, published, now, staging)
        for generation in plan.generations:
            if have.get(generation) is not None:
                continue
            path = layout.certificate_path(ca, generation)
            if ca.parent is None:
                if path not in published.files:
                    continue
                cert = published.certificate(path)
                kid = cert.key_id if isinstance(cert, rc.ResourceCertificate) else None
            else:
                issued = _issued_by_parent(desired, published, keys, ca, path)
                if issued is None:
                    continue
                kid = issued.key_id
            found.append(LostKey(ca, generation, path, kid))
    return found


def missing_key_error(lost: list[LostKey], signers: dict[str, Signer]) -> MissingKeyError:
    """One error for every lost key: where each signer looked, what is published, and what to do."""
    first = lost[0]
    ca, signer_name = first.ca, first.ca.signer
    signer = signers.get(signer_name)
    label = layout.key_label(ca.name, first.generation)
    describe = getattr(signer, "key_location", None)
    where = describe(label) if callable(describe) else f"label {label!r}"
    kid = f" (key {first.key_id.hex().upper()})" if first.key_id is not None else ""
    if ca.trust_anchor:
        known = "relying parties hold that key in their TAL"
        replace = (
            "the trust anchor's key never changes through apply: if it is truly lost, restore it from a "
            "backup (docs/runbook.md)"
        )
    else:
        known = "relying parties know that key"
        replace = (
            f"if the key is truly lost, raise key_generation of {ca.name} in its YAML: a new key then "
            "replaces it in a reviewed change"
        )
    message = (
        f"signer {signer_name!r} cannot find the key of {ca.name} (generation {first.generation}: "
        f"{where}), yet its certificate {first.certificate}{kid} is published and {known}. Keys are never "
        f"re-created silently: nothing was signed (fix: mount or restore the keys of signer "
        f"{signer_name!r}, or correct it in rpki.yaml, then run the command again; {replace})"
    )
    others = sorted({item.ca.name for item in lost[1:]} - {ca.name})
    if others:
        message += f"; the keys of {len(others)} more CA(s) are missing too: {', '.join(others)}"
    return MissingKeyError(message)
