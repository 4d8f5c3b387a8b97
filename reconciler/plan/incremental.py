"""Incremental plans: a CA whose inputs are what they were when a plan last found nothing to do in its
directory is not planned again, until a full plan on a schedule checks every CA once more.

Planning a CA's directory -- each ROA, ASPA and router certificate against the YAML, the manifest against
the files, every signature, every expiry -- is a pure function of its inputs: the CA's intent, the
settings every CA shares, the CA's keys and key roll, its children and their key generations, the
published files of its directory (their names and SHA-256) and its own certificate, and the plan's time.
Time only matters through thresholds: the instant an object enters its renewal margin. So when a plan
finds nothing to do in a CA's directory, it remembers a fingerprint of those inputs and the earliest such
threshold; a later plan that finds the same fingerprint before that instant knows the answer without
looking again. For a registry's 20,000 member CAs, of which a change touches one, that is most of a plan.

What is published is still read and hashed whole on every plan, so an edited, removed or planted file
changes its CA's fingerprint and that CA is planned in full at once. What a fingerprint cannot see is a
mistake in what it covers. So a full plan, which plans every CA, runs on a schedule (when the last one is
more than :data:`FULL_EVERY` old), on ``--refresh=full``, and whenever the cache is missing, damaged or not
authentic; and it checks the cache: a CA the cache called unchanged for which the full plan finds
changes means the cache lied, and it is dropped whole, with a warning in the plan.

The cache is ``cache/plans.json`` in the publication directory, authenticated like the object memo
(``published.memo``): a cache that anyone able to write the publication directory could forge would let
them hide drift. Without the memo's key (a review without secrets) every plan is full.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any

from reconciler import cachefile, layout
from reconciler.desired.model import CaIntent
from reconciler.plan.model import RefreshNote

if TYPE_CHECKING:
    from reconciler.plan.diff import _Planner

VERSION = 1

#: The longest an incremental plan may go on trusting a CA's last full check: a full plan runs when the
#: last one is older than this (the reconcile loop plans every few minutes, so about once a day).
FULL_EVERY = timedelta(hours=24)


class Refresh(StrEnum):
    """How a plan looks at the CAs: ``auto`` plans in full only those whose inputs changed (and all of
    them when a full plan is due); ``full`` plans every CA."""

    AUTO = "auto"
    FULL = "full"


def path(publication_directory: Path) -> Path:
    return publication_directory / "cache" / "plans.json"


@dataclass
class Incremental:
    """What a plan knows of its CAs from earlier plans, and what it learns for the next.

    ``quiet``: CA -> (fingerprint, since, until): a plan with that fingerprint from ``since`` (when it
    was found) to ``until`` has nothing to do in the CA's directory. Not before ``since``: an object not
    future-dated then may be at an earlier time (a plan made ``--now`` ahead saw it so). ``full``: this
    plan plans every CA (and checks ``quiet``). ``full_at``: when the last full plan was made."""

    quiet: dict[str, tuple[str, datetime, datetime]] = field(default_factory=dict)
    full: bool = True
    full_at: datetime | None = None
    why_full: str = ""
    #: Filled by the plan: the CAs it skipped, those the cache called unchanged that a full plan found
    #: changes for (the cache lied), and how many CAs were planned.
    skipped: set[str] = field(default_factory=set)
    lied: list[str] = field(default_factory=list)
    planned: int = 0
    _claimed: set[str] = field(default_factory=set, repr=False)
    _fingerprints: dict[str, str] = field(default_factory=dict, repr=False)
    _common: Common | None = field(default=None, repr=False)

    def fingerprint(self, planner: _Planner, ca: CaIntent) -> str:
        found = self._fingerprints.get(ca.name)
        if found is None:
            if self._common is None:
                self._common = Common.of(planner)
            found = self._fingerprints[ca.name] = fingerprint(planner, ca, self._common)
        return found

    def skips(self, planner: _Planner, ca: CaIntent, touched: set[str]) -> bool:
        """Whether the CA's directory goes unplanned: nothing planned so far touches the CA
        (``touched``), its inputs are what they were when a plan found nothing to do there, and none of
        the thresholds seen then has come. Never in a full plan, which notes the CA to check the cache
        against what it finds."""
        if ca.name in touched or not eligible(ca):
            return False
        known = self.quiet.get(ca.name)
        if known is None or not known[1] <= planner.now < known[2]:
            return False
        if known[0] != self.fingerprint(planner, ca):
            return False
        if self.full:
            self._claimed.add(ca.name)
            return False
        self.skipped.add(ca.name)
        return True

    def learn(self, planner: _Planner, busy: set[str]) -> None:
        """Remember the CAs planned in full that had nothing to do (``busy``: those with a change), and,
        in a full plan, which of those the cache called unchanged were not: then the cache lied, and
        none of it is kept."""
        self.lied = sorted(self._claimed & busy)
        still = self.skipped - busy
        kept = {name: known for name, known in self.quiet.items() if name in still}
        if not self.lied:
            for ca in planner.desired.cas:
                until = planner.horizon.get(ca.name)
                if ca.name in self.skipped or ca.name in busy or not eligible(ca) or until is None:
                    continue
                if planner.now < until:
                    kept[ca.name] = (self.fingerprint(planner, ca), planner.now, until)
        self.quiet = kept
        self.planned = len(planner.desired.cas) - len(self.skipped)

    def note(self) -> RefreshNote:
        """What the plan says of how it looked at the CAs."""
        if self.full:
            return RefreshNote("full", self.planned, 0, None, self.why_full)
        return RefreshNote("incremental", self.planned, len(self.skipped), self.full_at)


def eligible(ca: CaIntent) -> bool:
    """Whether a CA may be left unplanned when unchanged: a CA under a parent of this tree, without
    external children (whose requests and state live outside its inputs). The trust anchor, a CA under
    an external parent and a parent of external children are always planned: there are few of them."""
    return ca.parent is not None and ca.upstream is None and not ca.children and not ca.trust_anchor


def fingerprint(planner: _Planner, ca: CaIntent, common: Common) -> str:
    """The SHA-256 of everything planning the CA's directory reads but the time: see the module
    docstring. A part added here must also be what the planner reads; a part missing makes the cache
    lie, which the full plans catch."""
    desired, published = planner.desired, planner.published
    parts: list[str] = [
        common.settings,
        desired.signers[ca.signer].type,
        ca.name,
        str(ca.parent),
        # canonical ranges (as numbers: their text costs 50 us a CA)
        repr((ca.resources.asn.ranges, ca.resources.ipv4.ranges, ca.resources.ipv6.ranges)),
        ca.signer,
        str(ca.key_generation),
        repr(ca.certificate_uris),
        repr(planner.rolls[ca.name]),
        repr(sorted((g, k.hex() if k else "") for g, k in planner.all_keys.get(ca.name, {}).items())),
        str(ca.name in planner.hold),
    ]
    for roa in ca.roas:  # the prefix as numbers: writing 150,000 of them out as text costs a plan 0.3 s
        prefix = roa.prefix
        address = int(prefix.network_address)
        parts.append(f"roa {roa.asn} {prefix.version} {address} {prefix.prefixlen} {roa.max_length}")
    for aspa in ca.aspas:
        parts.append(f"aspa {aspa.customer} {aspa.providers}")
    for router in ca.routers:
        parts.append(f"router {router.key.hex()} {router.asns} {router.router_id}")
    for child in desired.children(ca.name):
        parts.append(f"child {child.name} {planner.rolls[child.name].generations}")
    for generation in range(1, ca.key_generation + 1):
        certificate = layout.certificate_path(ca, generation)
        if certificate in published.files:
            parts.append(f"certificate {generation} {published.sha256(certificate).hex()}")
    repo = layout.repository(ca.name)
    for name in published.under(repo):
        parts.append(f"file {name} {published.sha256(repo + name).hex()}")
    parts += common.damage.get(repo, ())
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class Common:
    """What fingerprints share, worked out once per plan: the settings of every CA, and the damage
    found in the tree (entries that are not objects, see ``published.read``) by CA directory."""

    settings: str
    damage: dict[str, list[str]]

    @classmethod
    def of(cls, planner: _Planner) -> Common:
        desired = planner.desired
        settings = (
            f"v{VERSION}\n{desired.timing!r}\n{desired.roa_grouping!r}\n{desired.publication.rsync_base}\n"
            f"{desired.publication.notify_uri}"
        )
        damage: dict[str, list[str]] = {}
        for path, why in sorted(planner.published.damage.items()):
            damage.setdefault(path.split("/", 1)[0] + "/", []).append(f"damage {path} {why}")
        return cls(settings, damage)


def load(publication_directory: Path, secret: bytes | None, now: datetime, refresh: Refresh) -> Incremental:
    """What the plan at ``now`` knows from earlier plans, and whether it must be full: with
    ``--refresh=full``, without the caches' key, when the cache is missing or not authentic, and when the
    last full plan is older than :data:`FULL_EVERY` (or in the future: the clock jumped)."""
    if secret is None:
        return Incremental(why_full="no key to authenticate the plan cache with here")
    found = cachefile.read_as(path(publication_directory), VERSION, _from_document, secret=secret)
    if refresh is Refresh.FULL:
        kept = found.quiet if found is not None else {}
        return Incremental(quiet=kept, why_full="--refresh=full")
    if found is None or found.full_at is None:
        return Incremental(why_full="no plan cache yet")
    if not found.full_at <= now < found.full_at + FULL_EVERY:
        last = f"the last full plan was at {found.full_at:%Y-%m-%dT%H:%M:%SZ}"
        return Incremental(quiet=found.quiet, why_full=last)
    found.full = False
    return found


def _from_document(document: dict[str, Any]) -> Incremental:
    quiet = {
        str(ca): (str(fp), _instant(since), _instant(until))
        for ca, (fp, since, until) in document["quiet"].items()
    }
    return Incremental(quiet=quiet, full=False, full_at=_instant(document["full_at"]))


def _instant(value: object) -> datetime:
    if not isinstance(value, int):
        raise TypeError("not a time")
    return datetime.fromtimestamp(value, UTC)


def save(publication_directory: Path, incremental: Incremental, secret: bytes | None, now: datetime) -> None:
    """Keep what this plan learnt. A full plan restarts the schedule; an incremental one keeps the time
    of the last full one."""
    if secret is None:
        return
    full_at = now if incremental.full else incremental.full_at
    if full_at is None:
        return
    document = {
        "version": VERSION,
        "full_at": int(full_at.timestamp()),
        "quiet": {
            ca: [fp, math.ceil(since.timestamp()), int(until.timestamp())]
            for ca, (fp, since, until) in sorted(incremental.quiet.items())
        },
    }
    cachefile.write(path(publication_directory), document, secret=secret)
