"""A plan: the typed list of changes that would bring the publication point to the desired state.

A plan is a value. It holds no keys or file handles; ``apply`` executes exactly its changes. Reasons are
for people; apply acts on actions only.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING

from reconciler.desired.model import RouterIntent
from reconciler.rpki.aspa import AspaContent
from reconciler.rpki.roa import RoaContent

if TYPE_CHECKING:
    from reconciler.plan.impact import ValidityChange
    from reconciler.plan.rollover import KeyPlan
    from reconciler.plan.route_leaks import Transition


class Action(StrEnum):
    CREATE_KEY = "create-key"
    ISSUE = "issue"
    REISSUE = "reissue"
    RENEW = "renew"
    REVOKE = "revoke"
    WITHDRAW = "withdraw"
    DESTROY_KEY = "destroy-key"


class Kind(StrEnum):
    KEY = "key"
    CERTIFICATE = "certificate"
    ROA = "roa"
    ASPA = "aspa"
    ROUTER = "router"  # a BGPsec router certificate (RFC 8209)
    MANIFEST = "manifest"
    CRL = "crl"
    FILE = "file"
    RRDP = "rrdp"  # the RRDP files as a whole (republished in a new session)


ROUTINE_KINDS = frozenset({Kind.MANIFEST, Kind.CRL, Kind.RRDP})


class Reason(StrEnum):
    """Why a change is planned, as a closed set: what decisions read (which changes repair damage, which
    are steps of a key roll, what monitoring counts), while the change's text says it for people and
    may be reworded freely."""

    NOT_PUBLISHED = "not-published"  # the object (or a CA's key) is not there yet
    NEW_OBJECT = "new-object"  # an object the desired state adds
    CONTENT_CHANGED = "content-changed"  # what a ROA says changed
    RESOURCES_CHANGED = "resources-changed"
    URIS_CHANGED = "uris-changed"  # where the object or its issuer is published changed
    NEW_KEY = "new-key"  # the signing CA has a new key
    ISSUER_NEW_KEY = "issuer-new-key"
    EXPIRING = "expiring"  # inside its renewal margin: only the clock asked
    FUTURE_DATED = "future-dated"  # signed by a clock that ran ahead
    UNREADABLE = "unreadable"
    ALTERED = "altered"  # not the bytes the CA signed and listed
    BAD_SIGNATURE = "bad-signature"  # a signature that does not verify
    FOREIGN = "foreign"  # not issued by this tree
    COPY = "copy"  # a copy of another object under this name
    REVOKED = "revoked"  # on the CA's own CRL
    EE_MISMATCH = "ee-mismatch"  # the EE certificate does not match the object
    DRIFT = "drift"  # the manifest does not list exactly what is published
    DAMAGE = "damage"  # not an object at all, or a tree that cannot be used
    NOT_DESIRED = "not-desired"  # no longer in the desired state
    ENTITLEMENT_CHANGED = "entitlement-changed"  # an external child's entitlement
    DIRECTORY_CHANGED = "directory-changed"  # a manifest and CRL re-signed for other changes
    ROLL_NEW_KEY = "roll-new-key"  # a key roll's new key, its certificate, manifest and CRL
    ROLL_RETIRED = "roll-retired"  # what a retired key signed, or the key itself
    KEY_MISSING = "key-missing"  # a CA's key its signer does not hold yet
    RRDP_BEHIND = "rrdp-behind"  # RRDP does not serve what rsync serves


#: Reasons that say the published object is damaged rather than the desired state changed.
DAMAGE_REASONS = frozenset(
    {Reason.UNREADABLE, Reason.ALTERED, Reason.BAD_SIGNATURE, Reason.FOREIGN, Reason.DAMAGE}
)


@dataclass(frozen=True, slots=True)
class Change:
    """One thing apply will do. ``ca`` is the CA whose key signs it (whose directory holds it)."""

    action: Action
    kind: Kind
    ca: str
    path: str  # relative to the rsync base ("" for keys)
    reason: str  # for people: what ``cause`` says, with the particulars
    subject: str | None = None  # the child CA a certificate is for
    # What a ROA, an ASPA or a router certificate will say.
    content: RoaContent | AspaContent | RouterIntent | None = None
    revoke_serial: int | None = None  # serial of the published object this change revokes
    # The key generation concerned: of the key (keys), of the subject's key (certificates), of the
    # signing key (a manifest or CRL of a key being staged). None: the CA's active key.
    generation: int | None = None
    roll: bool = False  # a step of a key roll declared in the desired state (no VRP changes)
    # A renewal that only the clock asked for: nothing drifted from the desired state. Monitoring tells
    # these (expected on every schedule) from drift (someone or something changed what is published).
    scheduled: bool = field(default=False, compare=False)
    # A manifest or CRL re-signed only because other objects in its directory change: without those
    # changes (a routine-only run that leaves them waiting) it has nothing to do.
    follows: bool = field(default=False, compare=False)
    # Repairs damage to the publication point (an entry or object this CA did not publish, or one it
    # published and something altered): restores what relying parties should see, so no approval gate
    # concerns it -- damage must never stop the unattended renewal loop.
    repair: bool = field(default=False, compare=False)
    cause: Reason = field(kw_only=True, compare=False)  # what decisions read; see Reason

    @property
    def address(self) -> str:
        """A stable, readable name for the object (``roa example-isp/AS64496_192-0-2-0_24.roa``)."""
        if self.kind is Kind.KEY:
            if self.generation is not None and self.generation != 1:
                return f"key {self.ca} (generation {self.generation})"
            return f"key {self.ca}"
        if self.kind is Kind.CERTIFICATE and self.subject:
            return f"certificate {self.subject} ({self.path})"
        return f"{self.kind.value} {self.path}"

    @property
    def routine(self) -> bool:
        """Manifests, CRLs and scheduled renewals: needed to stay valid, not a reviewer's decision."""
        return self.kind in ROUTINE_KINDS or self.action is Action.RENEW or self.roll


@dataclass(frozen=True, slots=True)
class Gate:
    """A reason the plan needs a human's approval, bound to the exact items it flags.

    The approval token is ``<id>:<hash>``; the hash covers the rule, the CA and every flagged item, so a
    re-plan that flags anything more (or else) needs a new approval.
    """

    # roa-delete-pct, roa-narrow-pct, aspa-removal, ca-empty, ca-revoke, ca-shrink, trust-anchor,
    # route-invalid, key-missing
    rule: str
    ca: str  # "*" for rules over the whole tree
    message: str
    items: tuple[str, ...]  # sorted
    existing: int = 0  # VRPs the CA held, for the percentage rules
    threshold: float | None = None

    @property
    def id(self) -> str:
        return self.rule if self.ca == "*" else f"{self.rule}@{self.ca}"

    @property
    def hash(self) -> str:
        text = "\n".join((self.rule, self.ca, *self.items))
        return hashlib.sha256(text.encode()).hexdigest()

    @property
    def token(self) -> str:
        """What an operator passes to ``--approve``."""
        return f"{self.id}:{self.hash[:APPROVAL_HASH_CHARS]}"

    @property
    def count(self) -> int:
        return len(self.items)


APPROVAL_HASH_CHARS = 16


@dataclass(frozen=True, slots=True)
class ObservedPoint:
    """What a CA's manifest looked like when the plan was made (to refuse applying a stale plan)."""

    manifest: str
    number: int | None  # None when unreadable
    sha256: str


Vrp = tuple[int, str, int]


class Severity(StrEnum):
    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"


@dataclass(frozen=True, slots=True)
class Notice:
    """Something the operator must know that is not a change: a key roll's phase, a trust anchor
    renewal that waits for the offline signer, an expiry coming closer. Shown even when there are no
    changes; a critical notice fails ``rpkictl check``."""

    kind: str  # key-roll, offline-signing, expiry
    severity: Severity
    ca: str
    message: str
    due: datetime | None = None


@dataclass(frozen=True, slots=True)
class RefreshNote:
    """How the plan looked at the CAs (see ``plan.incremental``): ``full``, every CA planned, or
    ``incremental``, the ``unchanged`` ones (inputs as they were when a plan found nothing to do for them)
    not planned again since the full plan at ``full_at``."""

    mode: str  # full, incremental
    planned: int
    unchanged: int
    full_at: datetime | None = None
    why: str = ""


@dataclass(frozen=True, slots=True)
class Plan:
    now: datetime
    desired_digest: str
    changes: tuple[Change, ...]
    vrps_added: frozenset[Vrp] = field(default_factory=frozenset)
    vrps_removed: frozenset[Vrp] = field(default_factory=frozenset)
    observed: dict[str, ObservedPoint] = field(default_factory=dict)  # CA directory -> its manifest
    tree_sha256: str = ""  # over every published file: drift anywhere makes a saved plan stale
    gates: tuple[Gate, ...] = ()
    route_changes: tuple[ValidityChange, ...] | None = None  # None: no announcements were given
    # Announced AS paths whose ASPA verification outcome changes; None: no paths were given.
    path_changes: tuple[Transition, ...] | None = None
    notices: tuple[Notice, ...] = ()
    key_plans: dict[str, KeyPlan] = field(default_factory=dict)  # which key signs for each CA
    refresh: RefreshNote | None = None  # None: planned without the plan cache (every CA)

    @property
    def empty(self) -> bool:
        return not self.changes

    @property
    def approval_required(self) -> bool:
        return bool(self.gates)

    def counts(self) -> Counter[Action]:
        """Counts of the changes a reviewer reads; routine ones are counted by ``routine_count``."""
        return Counter(change.action for change in self.changes if not change.routine)

    @property
    def routine_count(self) -> int:
        return sum(1 for change in self.changes if change.routine)

    @property
    def revocations(self) -> tuple[Change, ...]:
        return tuple(c for c in self.changes if c.revoke_serial is not None)

    def summary(self) -> str:
        """The one line a reviewer and a log reader look for (stable wording)."""
        if self.empty:
            return "No changes. The publication point matches the desired state."
        counts = self.counts()
        words = [
            f"{counts[Action.ISSUE]} to issue",
            f"{counts[Action.REISSUE]} to replace",
            f"{counts[Action.REVOKE]} to revoke",
            f"{counts[Action.WITHDRAW]} to withdraw",
        ]
        if counts[Action.CREATE_KEY]:
            words.insert(0, f"{counts[Action.CREATE_KEY]} keys to create")
        words.append(f"{self.routine_count} routine")
        vrps = f"VRPs: +{len(self.vrps_added)} -{len(self.vrps_removed)}"
        return f"Plan: {', '.join(words)}. {vrps}."
