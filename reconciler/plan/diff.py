"""Compare the desired state with the published state and list the changes, each with its reason.

Two passes: first every certificate, ROA and stray file (a child's certificate lives in its parent's
directory, so a CA's directory is only known to change once all CAs were looked at); then, per CA, the
manifest and CRL, which are re-issued whenever their directory changes or their renewal margin is reached.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence, Set
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey

from reconciler import layout
from reconciler.desired.model import CaIntent, DesiredState, RoaGrouping
from reconciler.plan import aspas, routers
from reconciler.plan.external_children import plan_external_children
from reconciler.plan.grouping import roa_objects
from reconciler.plan.impact import Announcement, ValidityChange, impact
from reconciler.plan.incremental import Incremental
from reconciler.plan.model import (
    DAMAGE_REASONS,
    Action,
    Change,
    Kind,
    Notice,
    ObservedPoint,
    Plan,
    Reason,
    Severity,
)
from reconciler.plan.publishers import plan_publishers, publisher_gates
from reconciler.plan.reminders import trust_anchor_reminders
from reconciler.plan.rollover import KeyIds, KeyPlan, key_plans
from reconciler.plan.rollover import describe as describe_roll
from reconciler.plan.safety import gates_for
from reconciler.plan.signed import ALTERED, FOREIGN
from reconciler.plan.wording import FUTURE_DATED, FUTURE_TOLERANCE, expiry
from reconciler.published.memo import RoaSummary
from reconciler.published.reader import PublishedState, SignedManifest, SignedRoa, Unreadable
from reconciler.rpki import cert as rc
from reconciler.rpki import crl as rc_crl
from reconciler.rpki.roa import RoaContent


class KindPlanner(Protocol):
    """A module that plans one kind of object (``plan.aspas``, ``plan.routers``): a new kind is such a
    module and an entry in :data:`KIND_PLANNERS`."""

    def plan(self, planner: _Planner, ca: CaIntent) -> set[str]:
        """Add the changes of the CA's objects of this kind; return their file names."""
        ...

    def owns(self, name: str) -> bool:
        """Whether a file name in a CA's directory is one of this kind."""
        ...

    def plan_stray(self, planner: _Planner, ca: CaIntent, path: str) -> None:
        """Add the change for a file of this kind that nothing planned."""
        ...


#: The object kinds planned by a module of their own (ROAs, certificates, manifests and CRLs are planned
#: here, being what every other kind depends on).
KIND_PLANNERS: tuple[KindPlanner, ...] = (aspas, routers)


def damage(found: object, cause: Reason) -> bool:
    """Whether a change repairs damage (see ``Change.repair``): the object is unreadable, altered, not
    signed as it says, or not this tree's at all -- as opposed to a change of the desired state."""
    return isinstance(found, Unreadable) or cause in DAMAGE_REASONS


def desired_roas(
    ca: CaIntent, grouping: RoaGrouping, published: PublishedState | None = None
) -> dict[str, RoaContent]:
    """The ROA objects of the CA's entries (see ``grouping.roa_objects``), as published now permits."""
    names = frozenset(published.under(layout.repository(ca.name))) if published is not None else frozenset()
    return roa_objects(ca, grouping, names)


@dataclass
class _Planner:
    desired: DesiredState
    published: PublishedState
    all_keys: KeyIds
    now: datetime
    changes: list[Change] = field(default_factory=list)
    dirty: dict[str, list[str]] = field(default_factory=dict)  # CA -> why its directory changes
    drifted_cas: set[str] = field(default_factory=set)  # CAs with a change that is not a scheduled renewal
    expiring: set[str] = field(default_factory=set)  # CAs whose manifest and CRL are due for renewal
    rolls: dict[str, KeyPlan] = field(default_factory=dict)
    keys: dict[str, bytes | None] = field(default_factory=dict)  # CA -> its active key
    hold: frozenset[str] = frozenset()  # CAs whose key roll must not activate in this plan
    incremental: Incremental | None = None  # what earlier plans found (None: plan every CA, learn nothing)
    #: CA -> the first instant at which an object of its directory enters its renewal margin: until
    #: then, a CA with nothing to do has nothing to do (see ``plan.incremental``).
    horizon: dict[str, datetime] = field(default_factory=dict)
    _public_keys: dict[str, RSAPublicKey | None] = field(default_factory=dict)
    _revoked: dict[str, frozenset[int]] = field(default_factory=dict)
    _listed: dict[str, dict[str, bytes]] = field(default_factory=dict)  # CA -> what its manifest lists

    def __post_init__(self) -> None:
        self.rolls = key_plans(self.desired, self.all_keys, self.published, self.now, self.hold)
        self.keys = {
            ca.name: self.all_keys.get(ca.name, {}).get(self.rolls[ca.name].active) for ca in self.desired.cas
        }

    @property
    def base(self) -> str:
        return self.desired.publication.rsync_base

    def cert_uri(self, ca: CaIntent) -> str:
        """Where the certificate of the CA's active key is: the AIA of everything that key signs (in the
        external parent's repository for a CA it certifies)."""
        active = self.rolls[ca.name].active
        return ca.certificate_uri(active) or self.base + layout.certificate_path(ca, active)

    def public_key(self, ca: CaIntent) -> RSAPublicKey | None:
        """The public key in the CA's published certificate for its active key (None when that
        certificate is not published, or is for another key)."""
        if ca.name not in self._public_keys:
            found = self.published.certificate(layout.certificate_path(ca, self.rolls[ca.name].active))
            usable = isinstance(found, rc.ResourceCertificate) and found.key_id == self.keys[ca.name]
            self._public_keys[ca.name] = found.public_key if usable else None  # type: ignore[union-attr]
        return self._public_keys[ca.name]

    def signed_by(self, ca: CaIntent, cert: x509.Certificate, path: str | None = None) -> bool:
        """Whether the CA's active key signed ``cert``, as relying parties check it: against the public
        key in the CA's published certificate (unknown, and not held against the object, when that
        certificate is not published for the active key). With ``path``, the file the certificate is
        (or is in): a signature checked there before, on the same bytes, is not checked again (see
        ``published.memo``)."""
        return self.verifies(ca, path, lambda: cert)

    def verifies(self, ca: CaIntent, path: str | None, cert: Callable[[], x509.Certificate]) -> bool:
        """:meth:`signed_by` with the certificate parsed (``cert()``) only when its signature on these
        bytes was not checked before."""
        public = self.public_key(ca)
        if public is None:
            return True
        return self.checked(ca, path, lambda: rc.verify_signed_by(cert(), public))

    def checked(self, ca: CaIntent, path: str | None, check: Callable[[], bool]) -> bool:
        """``check()`` of a signature of the CA's active key on the object at ``path``, remembered when it
        holds. Only called with the CA's published public key at hand: what is remembered was checked."""
        key = self.keys[ca.name]
        if key is None or path is None:
            return check()
        return self.published.signature_holds(path, key, check)

    def side_keys(self, ca: str) -> list[tuple[int, bytes | None]]:
        """The staged new key and the lingering old one, each publishing an empty manifest and CRL."""
        return [(g, self.all_keys.get(ca, {}).get(g)) for g in self.rolls[ca].side]

    def rolled(self, ca: str) -> bool:
        """True while the CA's key roll re-issues what its old key signed (no VRP changes)."""
        return self.rolls[ca].phase is not None

    def other_key_files(self, ca: str) -> set[str]:
        """Manifest and CRL names of the CA's keys other than the active one: never on its manifest."""
        active = self.keys.get(ca)
        return {
            name
            for key in self.all_keys.get(ca, {}).values()
            if key != active
            for name in (layout.manifest_name(key), layout.crl_name(key))
        }

    def until(self, ca: str, when: datetime) -> None:
        """Note that something of the CA's directory is due for renewal at ``when``."""
        known = self.horizon.get(ca)
        if known is None or when < known:
            self.horizon[ca] = when

    def add(self, change: Change) -> None:
        self.changes.append(change)
        in_directory = change.path.startswith(layout.repository(change.ca))
        if change.kind not in (Kind.KEY, Kind.MANIFEST, Kind.CRL) and in_directory and change.ca in self.keys:
            self.dirty.setdefault(change.ca, []).append(change.address)
            if not (change.scheduled or change.roll):
                self.drifted_cas.add(change.ca)

    def manifest(self, ca: str) -> SignedManifest | None:
        """The CA's current manifest when it is readable and signed by the CA's current key."""
        key = self.keys.get(ca)
        if key is None:
            return None
        found = self.published.manifest(layout.repository(ca) + layout.manifest_name(key))
        if isinstance(found, SignedManifest) and found.signed.ee.authority_key_id == key:
            return found
        return None

    def drifted(self, ca: str, path: str) -> bool:
        """True when the CA's manifest lists this file with another hash: someone altered it."""
        if ca not in self._listed:
            mft = self.manifest(ca)
            self._listed[ca] = dict(mft.content.files) if mft is not None else {}
        listed = self._listed[ca].get(path.rsplit("/", 1)[-1])
        return listed is not None and listed != self.published.sha256(path)

    # -- certificates -------------------------------------------------------------------------------

    def cert_problem(
        self, ca: CaIntent, path: str, found: rc.ResourceCertificate, key: bytes | None
    ) -> tuple[Action, Reason, str] | None:
        issuer = ca.parent or ca.name
        issuer_key = self.keys[issuer]
        timing = self.desired.timing
        renew = timing.ta_certificate_renew_before if ca.trust_anchor else timing.certificate_renew_before
        repo = self.base + layout.repository(ca.name)
        if key is None or found.key_id != key:
            return Action.REISSUE, Reason.NEW_KEY, "the CA has a new key"
        if issuer_key is None or (ca.parent and found.authority_key_id != issuer_key):
            return Action.REISSUE, Reason.ISSUER_NEW_KEY, f"issuer {issuer} has a new key"
        if ca.parent is not None and not self.signed_by(self.desired.ca(ca.parent), found.cert, path):
            why = "not validly signed by its issuer (altered after publication?)"
            return Action.REISSUE, Reason.BAD_SIGNATURE, why
        if ca.parent is None and not rc.verify_signed_by(found.cert, found.public_key):
            why = "its self-signature does not verify (altered after publication?)"
            return Action.REISSUE, Reason.BAD_SIGNATURE, why
        if found.not_before > self.now + FUTURE_TOLERANCE:
            why = f"{FUTURE_DATED} (valid from {found.not_before:%Y-%m-%dT%H:%M:%SZ})"
            return Action.RENEW, Reason.FUTURE_DATED, why
        if (
            found.resources.resources != ca.resources
            or found.resources.inherit_ip
            or found.resources.inherit_asn
        ):
            added = ca.resources.subtract(found.resources.resources)
            removed = found.resources.resources.subtract(ca.resources)
            why = f"resources changed (added: {added}; removed: {removed})"
            return Action.REISSUE, Reason.RESOURCES_CHANGED, why
        if found.repository != repo or found.manifest_uri != repo + layout.manifest_name(key):
            return Action.REISSUE, Reason.URIS_CHANGED, "publication URIs changed"
        if found.notify != self.desired.publication.notify_uri:
            return Action.REISSUE, Reason.URIS_CHANGED, "RRDP notification URI changed"
        if ca.parent is not None:
            parent = self.desired.ca(ca.parent)
            aia = self.cert_uri(parent)
            crldp = self.base + layout.repository(ca.parent) + layout.crl_name(issuer_key)
            if found.aia != aia or found.crldp != crldp:
                return Action.REISSUE, Reason.URIS_CHANGED, "issuer URIs changed"
        left = found.not_after - self.now
        if left < renew:
            return Action.RENEW, Reason.EXPIRING, expiry("certificate", left, renew)
        return None

    def held(self, ca: str) -> set[bytes]:
        """The identifiers of every key the CA's signer holds (all generations)."""
        return set(self.all_keys.get(ca, {}).values())

    def foreign_certificate(
        self, ca: CaIntent, found: rc.ResourceCertificate, key: bytes | None
    ) -> str | None:
        """Why the certificate at the CA's path is not one this tree issued (None when it may be): it
        certifies a key the CA's signer does not hold, or its issuer's signer holds no key it names."""
        if key is not None and found.key_id not in self.held(ca.name):
            return f"{FOREIGN}: it certifies key {found.key_id.hex()}, which {ca.name}'s signer does not hold"
        issuer = ca.parent or ca.name
        issuers = self.held(issuer)
        if ca.parent is not None and issuers and found.authority_key_id not in issuers:
            aki = found.authority_key_id.hex() if found.authority_key_id else "none"
            return f"{FOREIGN}: issued by key {aki}, which {issuer}'s signer does not hold"
        return None

    def plan_certificates(self, ca: CaIntent) -> None:
        """The certificate of the CA's active key and, during a key roll's staging, of its new key. An
        external parent issues its CA's certificate itself (``upstream.parent``): nothing to plan here."""
        if ca.external:
            return
        roll = self.rolls[ca.name]
        for generation in roll.generations:
            self.plan_certificate(ca, generation, pending=generation == roll.pending)

    def plan_certificate(self, ca: CaIntent, generation: int, *, pending: bool) -> None:
        path = layout.certificate_path(ca, generation)
        key = self.all_keys.get(ca.name, {}).get(generation)
        issuer = ca.parent or ca.name
        found = self.published.certificate(path)
        serial = None
        if found is None:
            action = Action.ISSUE
            cause, reason = (
                (Reason.ROLL_NEW_KEY, f"key roll: certificate for the new key (generation {generation})")
                if pending
                else (Reason.NOT_PUBLISHED, "not published")
            )
        elif isinstance(found, Unreadable):
            action, cause, reason = Action.REISSUE, Reason.UNREADABLE, f"unreadable: {found.reason}"
        elif self.drifted(issuer, path):
            action, cause, reason = Action.REISSUE, Reason.ALTERED, ALTERED
        elif (foreign := self.foreign_certificate(ca, found, key)) is not None:
            action, cause, reason = Action.REISSUE, Reason.FOREIGN, foreign
        else:
            problem = self.cert_problem(ca, path, found, key)
            if problem is None:
                return
            action, cause, reason = problem
        # A roll step only when the certificate says what it said before but for the key: anything else
        # (resources above all) is a change a reviewer must see, gated as any other.
        certified = self.published.certificate(layout.certificate_path(ca, self.rolls[ca.name].active))
        unchanged = (
            isinstance(certified, rc.ResourceCertificate)
            and certified.resources.resources == ca.resources
            and not certified.resources.inherit_ip
            and not certified.resources.inherit_asn
        )
        roll = unchanged and (
            pending
            or (
                cause in (Reason.NEW_KEY, Reason.ISSUER_NEW_KEY)
                and (self.rolled(ca.name) or self.rolled(issuer))
            )
        )
        if (
            isinstance(found, rc.ResourceCertificate)
            and found.authority_key_id == self.keys[issuer]
            and ca.parent
            and found.repository == self.base + layout.repository(ca.name)  # not a copy of a sibling's
        ):
            serial = found.serial
        self.add(
            Change(
                action,
                Kind.CERTIFICATE,
                issuer,
                path,
                reason,
                subject=ca.name,
                revoke_serial=serial,
                generation=generation,
                roll=roll,
                scheduled=action is Action.RENEW,
                repair=damage(found, cause),
                cause=cause,
            )
        )

    # -- ROAs ---------------------------------------------------------------------------------------

    def roa_problem(
        self, ca: CaIntent, path: str, want: RoaContent, found: RoaSummary
    ) -> tuple[Action, Reason, str] | None:
        key = self.keys[ca.name]
        if not found.holds(want):
            why = f"content changed ({_describe_roa(found.content)} -> {_describe_roa(want)})"
            return Action.REISSUE, Reason.CONTENT_CHANGED, why
        if key is None or found.authority_key_id != key:
            return Action.REISSUE, Reason.NEW_KEY, "the CA has a new key"
        if not self.roa_signed_by(ca, path, found):
            why = "EE certificate not validly signed by the CA (altered after publication?)"
            return Action.REISSUE, Reason.BAD_SIGNATURE, why
        if found.signed_object != self.base + path:
            return (
                Action.REISSUE,
                Reason.COPY,
                f"a copy of {found.signed_object}, not the object of this name",
            )
        if found.serial in self.revoked(ca):
            return Action.REISSUE, Reason.REVOKED, "revoked on the CA's CRL"
        if not found.resources_match:
            return Action.REISSUE, Reason.EE_MISMATCH, "EE certificate resources do not match the ROA"
        crl_uri = self.base + layout.repository(ca.name) + layout.crl_name(key)
        if found.crldp != crl_uri:
            return Action.REISSUE, Reason.URIS_CHANGED, "publication URIs changed"
        if found.aia != self.cert_uri(ca):
            return Action.REISSUE, Reason.URIS_CHANGED, "the CA's certificate moved (new parent)"
        if found.not_before > self.now + FUTURE_TOLERANCE:
            why = f"{FUTURE_DATED} (valid from {found.not_before:%Y-%m-%dT%H:%M:%SZ})"
            return Action.RENEW, Reason.FUTURE_DATED, why
        left = found.not_after - self.now
        renew = self.desired.timing.certificate_renew_before
        self.until(ca.name, found.not_after - renew)
        if left < renew:
            return Action.RENEW, Reason.EXPIRING, expiry("EE certificate", left, renew)
        return None

    def roa_signed_by(self, ca: CaIntent, path: str, found: RoaSummary) -> bool:
        """``signed_by`` for a ROA's EE certificate, remembered per CA key (see ``published.memo``)."""
        key = self.keys[ca.name]
        if key is not None and key in found.signed_by:
            return True
        full = self.published.roa(path)
        if not isinstance(full, SignedRoa) or not self.signed_by(ca, full.signed.ee.cert):
            return False
        if key is not None and self._public_keys.get(ca.name) is not None:
            self.published.memo.signed(self.published.sha256(path), found, key)  # checked, not assumed
        return True

    def plan_roas(self, ca: CaIntent) -> set[str]:
        repo = layout.repository(ca.name)
        wanted = desired_roas(ca, self.desired.roa_grouping, self.published)
        for name, want in wanted.items():
            path = repo + name
            found = self.published.roa_summary(path)
            if found is None:
                action, cause, reason = Action.ISSUE, Reason.NEW_OBJECT, f"new ROA {_describe_roa(want)}"
            elif isinstance(found, Unreadable):
                action, cause, reason = Action.REISSUE, Reason.UNREADABLE, f"unreadable: {found.reason}"
            elif self.drifted(ca.name, path):
                action, cause, reason = Action.REISSUE, Reason.ALTERED, ALTERED
            elif (foreign := self.foreign_roa(ca, path, found)) is not None:
                action, cause, reason = Action.REISSUE, Reason.FOREIGN, foreign
            else:
                problem = self.roa_problem(ca, path, want, found)
                if problem is None:
                    continue
                action, cause, reason = problem
            roll = cause is Reason.NEW_KEY and self.rolled(ca.name)
            self.add(
                Change(
                    action,
                    Kind.ROA,
                    ca.name,
                    path,
                    reason,
                    content=want,
                    revoke_serial=self._serial(ca, found, path),
                    roll=roll,
                    scheduled=action is Action.RENEW,
                    repair=damage(found, cause),
                    cause=cause,
                )
            )
        return set(wanted)

    def foreign_roa(self, ca: CaIntent, path: str, found: RoaSummary) -> str | None:
        """Why a ROA in the CA's directory is not the CA's (None when it is, or the CA holds no key yet):
        its EE certificate names a key the CA's signer does not hold, or names the CA's key but that key's
        signature on it does not verify."""
        held = self.held(ca.name)
        if not held:
            return None
        if found.authority_key_id not in held:
            aki = found.authority_key_id.hex() if found.authority_key_id else "none"
            return f"{FOREIGN}: its EE certificate is by key {aki}, which {ca.name}'s signer does not hold"
        if found.authority_key_id == self.keys[ca.name] and not self.roa_signed_by(ca, path, found):
            return f"{FOREIGN}: its EE certificate does not verify with {ca.name}'s key"
        return None

    def _serial(self, ca: CaIntent, found: RoaSummary | Unreadable | None, path: str) -> int | None:
        """The EE serial to revoke when replacing or withdrawing a ROA that our current key signed -- and
        that is the object of this very path: a copy of another ROA carries the original's serial, and
        revoking it would take the original down."""
        if not isinstance(found, RoaSummary):
            return None
        if found.signed_object != self.base + path:
            return None
        return (
            found.serial
            if found.authority_key_id == self.keys[ca.name] and found.not_after > self.now
            else None
        )

    def revoked(self, ca: CaIntent) -> frozenset[int]:
        """Serials on the CA's current CRL: an object we keep must not be one of them."""
        if ca.name not in self._revoked:
            key = self.keys[ca.name]
            found = self.published.crl(layout.repository(ca.name) + layout.crl_name(key)) if key else None
            serials = {r.serial for r in found.revoked} if isinstance(found, rc_crl.Crl) else set()
            self._revoked[ca.name] = frozenset(serials)
        return self._revoked[ca.name]

    # -- stray files ----------------------------------------------------------------------------------

    def plan_strays(self, ca: CaIntent, expected: set[str]) -> None:
        repo = layout.repository(ca.name)
        for name in self.published.under(repo):
            if name not in expected:
                self.plan_stray(ca, repo + name, name)

    def plan_stray(self, ca: CaIntent, path: str, name: str) -> None:
        """A file of the CA's directory that nothing planned expects, by what its name says it is."""
        if name.endswith(".roa"):
            self.plan_stray_roa(ca, path)
        elif (kind := next((k for k in KIND_PLANNERS if k.owns(name)), None)) is not None:
            kind.plan_stray(self, ca, path)
        elif name.endswith(".cer"):
            self.plan_stray_cert(ca, path, name)
        elif name in self.other_key_files(ca.name):
            reason = f"key roll: {name} belongs to a retired key of {ca.name}"
            change = Change(
                Action.WITHDRAW, Kind.FILE, ca.name, path, reason, roll=True, cause=Reason.ROLL_RETIRED
            )
            self.add(change)
        else:
            reason = "not part of the desired state"
            change = Change(
                Action.WITHDRAW, Kind.FILE, ca.name, path, reason, repair=True, cause=Reason.DAMAGE
            )
            self.add(change)

    def plan_stray_roa(self, ca: CaIntent, path: str) -> None:
        """A ROA the desired state does not have: withdrawn as damage when it is not the CA's, else
        withdrawn (and revoked when ours and still valid)."""
        found = self.published.roa_summary(path)
        foreign: tuple[Reason, str] | None = None
        if isinstance(found, Unreadable):
            foreign = Reason.UNREADABLE, f"unreadable: {found.reason}"
        elif isinstance(found, RoaSummary) and (why := self.foreign_roa(ca, path, found)) is not None:
            foreign = Reason.FOREIGN, why
        if foreign is not None:
            cause, reason = foreign
            self.add(Change(Action.WITHDRAW, Kind.ROA, ca.name, path, reason, repair=True, cause=cause))
            return
        cause, reason = Reason.NOT_DESIRED, "no longer in the desired state"
        serial = self._serial(ca, found, path)
        if isinstance(found, RoaSummary):
            reason = f"ROA {_describe_roa(found.content)} is no longer in the desired state"
            if found.signed_object != self.base + path:  # never revoked (see _serial)
                cause, reason = (
                    Reason.COPY,
                    f"a copy of {found.signed_object}, not an object of its own",
                )
        # Ours and still valid: revoke it too, so a copy kept elsewhere cannot be replayed.
        action = Action.REVOKE if serial is not None else Action.WITHDRAW
        self.add(Change(action, Kind.ROA, ca.name, path, reason, revoke_serial=serial, cause=cause))

    def plan_stray_cert(self, ca: CaIntent, path: str, name: str) -> None:
        found = self.published.certificate(path)
        foreign = self.foreign_stray_cert(ca, path, found)
        # Unless a CA of that name publishes below it: then withdrawing it removes that CA (and its
        # VRPs), a decision for a reviewer however damaged the certificate is.
        if foreign is not None and not self.published.under(
            layout.repository(layout.certificate_subject(name)[0])
        ):
            cause, reason = foreign
            self.add(
                Change(Action.WITHDRAW, Kind.CERTIFICATE, ca.name, path, reason, repair=True, cause=cause)
            )
            return
        serial = None
        if isinstance(found, rc.ResourceCertificate) and found.authority_key_id == self.keys[ca.name]:
            serial = found.serial if found.not_after > self.now else None
        child, generation = layout.certificate_subject(name)
        if isinstance(found, rc.ResourceCertificate) and found.repository != self.base + layout.repository(
            child
        ):
            serial = None  # a copy of another CA's certificate under this name: its serial is the original's
        cause, reason = Reason.NOT_DESIRED, f"CA {child} is no longer a child of {ca.name}"
        action = Action.REVOKE if serial is not None else Action.WITHDRAW
        roll = self.desired.has(child) and self.desired.ca(child).parent == ca.name
        if roll:
            cause, reason = Reason.ROLL_RETIRED, f"key roll: generation {generation} of {child} is retired"
        self.add(
            Change(
                action,
                Kind.CERTIFICATE,
                ca.name,
                path,
                reason,
                subject=child,
                revoke_serial=serial,
                generation=generation,
                roll=roll,
                cause=cause,
            )
        )

    def foreign_stray_cert(
        self, ca: CaIntent, path: str, found: rc.ResourceCertificate | Unreadable | None
    ) -> tuple[Reason, str] | None:
        """Why a certificate in the CA's directory that no child needs now is not one the CA issued (None
        when it is): unreadable, or not signed by any key of the CA's signer."""
        if isinstance(found, Unreadable):
            return Reason.UNREADABLE, f"unreadable: {found.reason}"
        if not isinstance(found, rc.ResourceCertificate):
            return None
        why = self.not_issued(ca, path, found.authority_key_id, lambda: found.cert)
        return (Reason.FOREIGN, why) if why is not None else None

    def not_issued(
        self,
        ca: CaIntent,
        path: str,
        authority_key_id: bytes | None,
        cert: Callable[[], x509.Certificate],
        *,
        subject: str = "",
    ) -> str | None:
        """Why a certificate in the CA's directory (``subject``: which one, as "its EE certificate ";
        the file's own by default) is not one the CA issued -- None when it is, or when the CA holds no
        key yet: it names a key the CA's signer does not hold, or names the CA's active key but that
        key's signature on it does not verify."""
        held = self.held(ca.name)
        if not held:
            return None
        if authority_key_id not in held:
            aki = authority_key_id.hex() if authority_key_id else "none"
            issued = f"{subject}is by key" if subject else "issued by key"
            return f"{FOREIGN}: {issued} {aki}, which {ca.name}'s signer does not hold"
        if authority_key_id == self.keys[ca.name] and not self.verifies(ca, path, cert):
            return f"{FOREIGN}: {subject or 'its signature '}does not verify with {ca.name}'s key"
        return None

    def plan_damage(self) -> None:
        """Entries of the tree that are not objects (see ``published.read``), and a served tree that could
        not be read at all: withdrawn, which apply does by leaving them out of the new tree."""
        if self.published.unusable is not None:
            reason = f"{self.published.unusable}: apply publishes a new tree in its place"
            change = Change(
                Action.REISSUE, Kind.FILE, "(publication)", "rsync", reason, repair=True, cause=Reason.DAMAGE
            )
            self.add(change)
        names = {ca.name for ca in self.desired.cas}
        for path, why in sorted(self.published.damage.items()):
            top = path.split("/", 1)[0]
            owner = top if "/" in path.rstrip("/") or (top in names and path.endswith("/")) else "(top)"
            reason = f"{why}; not something this CA publishes"
            self.add(
                Change(Action.WITHDRAW, Kind.FILE, owner, path, reason, repair=True, cause=Reason.DAMAGE)
            )

    def plan_orphans(self) -> None:
        """Files outside every desired CA's directory: a removed CA's repository, or junk at the top."""
        names = {ca.name for ca in self.desired.cas}
        # the trust anchor's certificate; or those of the keys of the CAs under an external parent (one
        # per resource class), which it publishes itself and the read publication holds for the planner
        # (``upstream.effective``)
        certificates = {
            layout.certificate_path(root, g)
            for root in self.desired.cas
            if root.parent is None
            for g in range(1, root.key_generation + 1)
        }
        for path in sorted(self.published.files):
            top = path.split("/", 1)[0]
            if "/" in path and top in names:
                continue
            if path in certificates:
                continue
            owner = top if "/" in path else "(top)"
            reason = (
                f"CA {owner} is no longer in the desired state"
                if "/" in path
                else "not part of the desired state"
            )
            # Only the trust anchor's certificate is published at the top: anything else there is damage.
            cause = Reason.NOT_DESIRED if "/" in path else Reason.DAMAGE
            self.add(
                Change(Action.WITHDRAW, Kind.FILE, owner, path, reason, repair="/" not in path, cause=cause)
            )

    # -- manifests and CRLs ---------------------------------------------------------------------------

    def point_problems(self, ca: CaIntent) -> list[tuple[Reason, str]]:
        """Why the CA's manifest and CRL must be re-issued, apart from its directory changing."""
        key = self.keys[ca.name]
        if key is None:
            return [(Reason.NEW_KEY, "the CA has a new key")]
        repo = layout.repository(ca.name)
        mft = self.published.manifest(repo + layout.manifest_name(key))
        crl = self.published.crl(repo + layout.crl_name(key))
        if mft is None:
            return [(Reason.NOT_PUBLISHED, "manifest not published")]
        if isinstance(mft, Unreadable):
            return [(Reason.UNREADABLE, f"manifest unreadable: {mft.reason}")]
        if crl is None:
            return [(Reason.NOT_PUBLISHED, "CRL not published")]
        if isinstance(crl, Unreadable):
            return [(Reason.UNREADABLE, f"CRL unreadable: {crl.reason}")]
        if mft.signed.ee.authority_key_id != key or crl.authority_key_id != key:
            return [(Reason.NEW_KEY, "signed by another key")]
        forged = self.unsigned_point(ca, key, mft, crl)
        if forged:
            return [(Reason.BAD_SIGNATURE, forged)]
        listed = dict(mft.content.files)
        present = {name: self.published.sha256(repo + name) for name in self.published.under(repo)}
        present.pop(layout.manifest_name(key), None)
        for name in self.other_key_files(ca.name):
            present.pop(name, None)
        if listed != present:
            return [(Reason.DRIFT, "manifest does not list exactly the files published (drift)")]
        return self.point_timing(ca, mft, crl)

    def point_timing(self, ca: CaIntent, mft: SignedManifest, crl: rc_crl.Crl) -> list[tuple[Reason, str]]:
        """Where the manifest points its AIA, and whether it and the CRL are current and not due."""
        _, renew = self.desired.timing.point_validity(ca.trust_anchor)
        if mft.signed.ee.aia != self.cert_uri(ca):
            return [(Reason.URIS_CHANGED, "the CA's certificate moved (new parent)")]
        if max(mft.content.this_update, crl.this_update) > self.now + FUTURE_TOLERANCE:
            return [(Reason.FUTURE_DATED, f"manifest or CRL {FUTURE_DATED}")]
        left = min(mft.content.next_update, crl.next_update) - self.now
        self.until(ca.name, min(mft.content.next_update, crl.next_update) - renew)
        if left < renew:
            self.expiring.add(ca.name)
            return [(Reason.EXPIRING, expiry("manifest and CRL", left, renew, plural=True))]
        return []

    def unsigned_point(self, ca: CaIntent, key: bytes, mft: SignedManifest, crl: rc_crl.Crl) -> str:
        """What relying parties would reject in the CA's signatures on its manifest and CRL ("" if none)."""
        repo = layout.repository(ca.name)
        if not self.signed_by(ca, mft.signed.ee.cert, repo + layout.manifest_name(key)):
            return "manifest EE certificate not validly signed by the CA (altered after publication?)"
        public = self.public_key(ca)
        if public is not None and not self.checked(
            ca, repo + layout.crl_name(key), lambda: crl.crl.is_signature_valid(public)
        ):
            return "CRL not validly signed by the CA (altered after publication?)"
        return ""

    def plan_point(self, ca: CaIntent) -> None:
        problems = self.point_problems(ca)
        if ca.name in self.dirty:
            count = len(self.dirty[ca.name])
            changed = f"{count} object{'s' if count != 1 else ''} in {layout.repository(ca.name)} changed"
            problems.append((Reason.DIRECTORY_CHANGED, changed))
        if not problems:
            return
        cause = problems[0][0]
        reasons = [text for _, text in problems]
        key = self.keys[ca.name]
        repo = layout.repository(ca.name)
        missing = key is None or layout.manifest_name(key) not in self.published.under(repo)
        action = Action.ISSUE if missing else Action.RENEW
        mft_path = repo + (layout.manifest_name(key) if key else "<new key>.mft")
        crl_path = repo + (layout.crl_name(key) if key else "<new key>.crl")
        reason = "; ".join(reasons)
        own = len(reasons) - (ca.name in self.dirty)
        scheduled = (not own or ca.name in self.expiring) and ca.name not in self.drifted_cas
        for kind, path in ((Kind.CRL, crl_path), (Kind.MANIFEST, mft_path)):
            self.changes.append(
                Change(action, kind, ca.name, path, reason, scheduled=scheduled, follows=not own, cause=cause)
            )

    def side_point_problems(self, ca: CaIntent, generation: int, key: bytes) -> list[tuple[Reason, str]]:
        """A side key publishes a manifest listing only its CRL (empty of new revocations), kept fresh
        like any other."""
        repo = layout.repository(ca.name)
        mft = self.published.manifest(repo + layout.manifest_name(key))
        crl = self.published.crl(repo + layout.crl_name(key))
        if not isinstance(mft, SignedManifest) or not isinstance(crl, rc_crl.Crl):
            return [(Reason.ROLL_NEW_KEY, f"key roll: manifest and CRL of key generation {generation}")]
        crl_name = layout.crl_name(key)
        if dict(mft.content.files) != {crl_name: self.published.sha256(repo + crl_name)}:
            why = f"key roll: the manifest of key generation {generation} lists just its CRL"
            return [(Reason.ROLL_NEW_KEY, why)]
        if mft.signed.ee.authority_key_id != key or crl.authority_key_id != key:
            return [(Reason.NEW_KEY, "signed by another key")]
        certificate = ca.certificate_uri(generation) or self.base + layout.certificate_path(ca, generation)
        if mft.signed.ee.aia != certificate:
            return [(Reason.URIS_CHANGED, f"the certificate of key generation {generation} moved")]
        if max(mft.content.this_update, crl.this_update) > self.now + FUTURE_TOLERANCE:
            return [(Reason.FUTURE_DATED, f"manifest or CRL {FUTURE_DATED}")]
        _, renew = self.desired.timing.point_validity(ca.trust_anchor)
        left = min(mft.content.next_update, crl.next_update) - self.now
        self.until(ca.name, min(mft.content.next_update, crl.next_update) - renew)
        if left < renew:
            return [(Reason.EXPIRING, expiry("manifest and CRL", left, renew, plural=True))]
        return []

    def plan_side_points(self, ca: CaIntent) -> None:
        for generation, key in self.side_keys(ca.name):
            self.plan_side_point(ca, generation, key)

    def plan_side_point(self, ca: CaIntent, generation: int, key: bytes | None) -> None:
        repo = layout.repository(ca.name)
        if key is None:
            problems = [
                (Reason.ROLL_NEW_KEY, f"key roll: manifest and CRL of the new key (generation {generation})")
            ]
            mft_path, crl_path = repo + "<new key>.mft", repo + "<new key>.crl"
        else:
            problems = self.side_point_problems(ca, generation, key)
            mft_path, crl_path = repo + layout.manifest_name(key), repo + layout.crl_name(key)
        if not problems:
            return
        missing = key is None or layout.manifest_name(key) not in self.published.under(repo)
        action = Action.ISSUE if missing else Action.RENEW
        reason = "; ".join(text for _, text in problems)
        for kind, path in ((Kind.CRL, crl_path), (Kind.MANIFEST, mft_path)):
            change = Change(
                action, kind, ca.name, path, reason, generation=generation, roll=True, cause=problems[0][0]
            )
            self.changes.append(change)

    def plan_keys(self) -> None:
        """Keys to create (a new CA, or the new key of a roll) and retired keys to destroy."""
        for ca in self.desired.cas:
            roll = self.rolls[ca.name]
            have = self.all_keys.get(ca.name, {})
            for generation in roll.generations:
                if have.get(generation) is not None:
                    continue
                pending = generation == roll.pending
                reason = (
                    f"key roll: new key (generation {generation}) for {ca.name} in signer {ca.signer!r}"
                    if pending
                    else f"no key for {ca.name} in signer {ca.signer!r}"
                )
                if self.desired.signers[ca.signer].type == "offline":
                    reason = "no key published yet: the offline signer creates it when it signs the request"
                cause = Reason.ROLL_NEW_KEY if pending else Reason.KEY_MISSING
                self.changes.append(
                    Change(
                        Action.CREATE_KEY,
                        Kind.KEY,
                        ca.name,
                        "",
                        reason,
                        generation=generation,
                        roll=pending,
                        cause=cause,
                    )
                )
            for generation in roll.destroy:
                reason = f"key roll: generation {generation} signs nothing published any more"
                self.changes.append(
                    Change(
                        Action.DESTROY_KEY,
                        Kind.KEY,
                        ca.name,
                        "",
                        reason,
                        generation=generation,
                        roll=True,
                        cause=Reason.ROLL_RETIRED,
                    )
                )

    def expected_files(self, ca: CaIntent) -> set[str]:
        """What the CA's directory holds besides its ROAs: child certificates, manifests and CRLs."""
        expected = {
            layout.certificate_path(child, generation).rsplit("/", 1)[-1]
            for child in self.desired.children(ca.name)
            for generation in self.rolls[child.name].generations
        }
        for key in (self.keys[ca.name], *(k for _, k in self.side_keys(ca.name))):
            if key is not None:
                expected |= {layout.manifest_name(key), layout.crl_name(key)}
        return expected

    def run(self) -> None:
        self.plan_keys()
        for ca in self.desired.cas:
            self.plan_certificates(ca)
        touched = {change.ca for change in self.changes} | set(self.dirty)
        for ca in self.desired.cas:
            if self.incremental is not None and self.incremental.skips(self, ca, touched):
                continue
            expected = (
                self.plan_roas(ca)
                | set().union(*(kind.plan(self, ca) for kind in KIND_PLANNERS))
                | self.expected_files(ca)
                | plan_external_children(self, ca)
            )
            self.plan_strays(ca, expected)
        self.plan_orphans()
        self.plan_damage()
        skipped = self.incremental.skipped if self.incremental is not None else set()
        for ca in self.desired.cas:
            if ca.name in skipped and ca.name not in self.dirty:
                continue
            self.plan_point(ca)
            self.plan_side_points(ca)
        if self.incremental is not None:
            busy = {change.ca for change in self.changes} | set(self.dirty) | self.expiring
            self.incremental.learn(self, busy)

    def notices(self) -> list[Notice]:
        found = []
        for ca in self.desired.cas:
            roll = self.rolls[ca.name]
            if roll.phase is not None:
                message = describe_roll(roll, self.now)
                found.append(Notice("key-roll", Severity.INFO, ca.name, message, roll.due))
        return found


def _describe_roa(content: RoaContent) -> str:
    prefixes = ", ".join(
        f"{p.prefix}" + (f"-{p.max_length}" if p.max_length != p.prefix.prefixlen else "")
        for p in content.prefixes
    )
    return f"AS{content.asn} {prefixes}"


def published_vrps(
    published: PublishedState,
    damaged: Set[str] = frozenset(),
    settled: Mapping[str, Set[tuple[int, str, int]]] | None = None,
) -> frozenset[tuple[int, str, int]]:
    """The VRPs of the ROAs that read back, but for those at ``damaged`` paths (the paths of a plan's
    repairs, see :func:`repaired`): relying parties reject those, so they publish no VRP. ``settled``:
    the VRPs of the CAs an incremental plan found unchanged, which publish exactly their desired ROAs
    (see ``plan.incremental``): their ROAs are not looked at."""
    settled = settled or {}
    vrps: set[tuple[int, str, int]] = set().union(*settled.values())
    for path in published.files:
        if path.endswith(".roa") and path not in damaged:
            if settled and path.split("/", 1)[0] in settled:
                continue
            found = published.roa_summary(path)
            if isinstance(found, RoaSummary):
                vrps |= found.vrps
    return frozenset(vrps)


def repaired(changes: Iterable[Change]) -> frozenset[str]:
    """The paths of the changes that repair damage: objects relying parties do not accept as they are."""
    return frozenset(c.path for c in changes if c.repair)


def observe(published: PublishedState) -> tuple[dict[str, ObservedPoint], str]:
    """Each CA directory's manifest (name, number, hash) and a hash over the whole tree, recorded in a
    plan so that applying it after the publication point moved is refused."""
    points: dict[str, ObservedPoint] = {}
    for path in sorted(published.files):
        if path.endswith(".mft") and "/" in path:
            directory, name = path.split("/", 1)
            number = published.manifest_number(path)
            points[directory] = ObservedPoint(name, number, published.sha256(path).hex())
    return points, published.tree_digest()


def make_plan(
    desired: DesiredState,
    published: PublishedState,
    keys: KeyIds,
    now: datetime,
    announcements: Sequence[Announcement] | None = None,
    *,
    hold: frozenset[str] = frozenset(),
    incremental: Incremental | None = None,
) -> Plan:
    """Compute what apply must do. ``keys`` maps each CA to the identifiers of the keys its signer holds,
    by key generation. CAs in ``hold`` do not activate a key roll (see ``engine.routine_plan``).
    With ``announcements`` (routes seen in BGP), the plan also says which routes change validity. With
    ``incremental``, CAs whose inputs did not change since a plan found nothing to do for them are not
    planned again (see ``plan.incremental``), and what this plan finds is added to it."""
    planner = _Planner(desired, published, keys, now, hold=hold, incremental=incremental)
    planner.run()
    changes = (*planner.changes, *plan_publishers(desired, published))
    by_ca = {ca.name: frozenset([r.vrp for r in ca.roas]) for ca in desired.cas}
    want = frozenset().union(*by_ca.values())
    # A CA the incremental plan found unchanged publishes exactly its desired ROAs.
    settled = {name: by_ca[name] for name in incremental.skipped} if incremental is not None else None
    damaged = repaired(changes)
    have = published_vrps(published, damaged, settled)
    route_changes = None
    broken: list[str] = []
    if announcements is not None:
        route_changes = tuple(impact(have, want, announcements))
        broken = [describe_route_change(c) for c in route_changes if c.breaks]
    observed, tree = observe(published)
    return Plan(
        now=now,
        desired_digest=desired.digest,
        changes=changes,
        vrps_added=want - have,
        vrps_removed=have - want,
        observed=observed,
        tree_sha256=tree,
        gates=(
            *gates_for(desired, published, changes, broken, want, damaged=damaged, now=now, settled=settled),
            *publisher_gates(published, changes),
        ),
        route_changes=route_changes,
        notices=(
            *planner.notices(),
            *trust_anchor_reminders(
                desired,
                published,
                now,
                offline=desired.signers[desired.trust_anchor.signer].type == "offline",
            ),
        ),
        key_plans=planner.rolls,
    )


def describe_route_change(change: ValidityChange) -> str:
    ann = change.announcement
    return f"AS{ann.origin} {ann.prefix}: {change.before} -> {change.after}"
