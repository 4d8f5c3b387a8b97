"""A plan: the typed list of changes that would bring the publication point to the desired state.

A plan is a value. It holds no keys or file handles; ``apply`` executes exactly its changes. Reasons are
for people; apply acts on actions only.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from reconciler.rpki.roa import RoaContent


class Action(StrEnum):
    CREATE_KEY = "create-key"
    ISSUE = "issue"
    REISSUE = "reissue"
    RENEW = "renew"
    REVOKE = "revoke"
    WITHDRAW = "withdraw"


class Kind(StrEnum):
    KEY = "key"
    CERTIFICATE = "certificate"
    ROA = "roa"
    MANIFEST = "manifest"
    CRL = "crl"
    FILE = "file"


ROUTINE = frozenset({Kind.MANIFEST, Kind.CRL})


@dataclass(frozen=True, slots=True)
class Change:
    """One thing apply will do. ``ca`` is the CA whose key signs it (whose directory holds it)."""

    action: Action
    kind: Kind
    ca: str
    path: str  # relative to the rsync base ("" for keys)
    reason: str
    subject: str | None = None  # the child CA a certificate is for
    roa: RoaContent | None = None  # what a ROA will say
    revoke_serial: int | None = None  # serial of the published object this change revokes

    @property
    def address(self) -> str:
        """A stable, readable name for the object (``roa example-isp/AS64496_192-0-2-0_24.roa``)."""
        if self.kind is Kind.KEY:
            return f"key {self.ca}"
        if self.kind is Kind.CERTIFICATE and self.subject:
            return f"certificate {self.subject} ({self.path})"
        return f"{self.kind.value} {self.path}"

    @property
    def routine(self) -> bool:
        return self.kind in ROUTINE


@dataclass(frozen=True, slots=True)
class Plan:
    now: datetime
    desired_digest: str
    changes: tuple[Change, ...]
    vrps_added: frozenset[tuple[int, str, int]] = field(default_factory=frozenset)
    vrps_removed: frozenset[tuple[int, str, int]] = field(default_factory=frozenset)

    @property
    def empty(self) -> bool:
        return not self.changes

    def counts(self) -> Counter[Action]:
        return Counter(change.action for change in self.changes)

    def summary(self) -> str:
        if self.empty:
            return "No changes. The publication point matches the desired state."
        counts = self.counts()
        words = [
            f"{counts[Action.ISSUE]} to issue",
            f"{counts[Action.REISSUE]} to reissue",
            f"{counts[Action.RENEW]} to renew",
            f"{counts[Action.REVOKE]} to revoke",
            f"{counts[Action.WITHDRAW]} to withdraw",
        ]
        if counts[Action.CREATE_KEY]:
            words.insert(0, f"{counts[Action.CREATE_KEY]} keys to create")
        vrps = f"VRPs: +{len(self.vrps_added)} -{len(self.vrps_removed)}"
        return f"Plan: {', '.join(words)}. {vrps}."
