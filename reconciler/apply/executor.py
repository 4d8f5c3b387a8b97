"""Execute a plan: create keys, sign the objects it lists, and hand the new tree to the publisher.

Apply does exactly what the plan says. Everything is signed in memory first; only a complete, consistent
tree is published, so a failure while signing publishes nothing.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from cryptography import x509

from reconciler import faults, layout
from reconciler.apply import child_certificate
from reconciler.apply.onetime import OneTimeKeys, workers
from reconciler.desired.model import CaIntent, DesiredState, RouterIntent
from reconciler.plan import external_children
from reconciler.plan.model import Action, Change, Kind, Plan
from reconciler.plan.rollover import KeyIds, KeyPlan, lost_keys, missing_key_error
from reconciler.published.memo import RoaSummary, texts
from reconciler.published.reader import PublishedState, SignedManifest
from reconciler.resources import Resources
from reconciler.rpki import cert as rc
from reconciler.rpki import cms, crl, kinds, manifest, rfc3779, roa, router
from reconciler.rpki.roa import RoaContent
from reconciler.signers.adapter import SignerKey
from reconciler.signers.base import Signer, SignerError
from reconciler.signers.files import OneTimeKey
from reconciler.signers.offline import is_offline

SerialSource = Callable[[], int]

# Validity starts a little in the past: a relying party whose clock lags ours must not see objects that
# are "not yet valid" (and a CRL that is not yet valid takes the whole publication point down).
CLOCK_SKEW_MARGIN = timedelta(minutes=5)


def number_floor(now: datetime) -> int:
    """The first manifest or CRL number of a point with no readable predecessor (a new key, a lost or
    damaged publication point): the time in milliseconds, so that it is still above every number this
    key published before the record of them was lost."""
    return int(now.timestamp() * 1000)


#: RFC 9286 §4.2.1 and RFC 5280 §5.2.3: manifest and CRL numbers fit in 20 octets.
MAX_NUMBER = (1 << 159) - 1


def next_number(previous: int | None, now: datetime) -> int:
    """The number after ``previous`` (RFC 9286 §4.2.1: relying parties that keep a cache expect each
    manifest to carry the previous one's number plus one, and report a gap otherwise); the time-based
    floor when there is no readable predecessor (``previous`` None)."""
    number = number_floor(now) if previous is None else previous + 1
    if number > MAX_NUMBER:
        raise SignerError(
            f"the next manifest or CRL number ({number}) does not fit in 20 octets (RFC 9286 §4.2.1): the "
            "published number was not made by rpkictl (fix: raise the CA's key_generation to start a new "
            "key, whose numbers start afresh)"
        )
    return number


@dataclass(frozen=True, slots=True)
class ApplyResult:
    files: dict[str, bytes]  # the complete new tree
    signed: int  # signatures made
    written: tuple[str, ...]  # paths whose content is new
    removed: tuple[str, ...]
    deferred: tuple[Change, ...] = ()  # what an offline key must sign (see reconciler.offline)
    roas: dict[str, RoaSummary] = field(default_factory=dict)  # the ROAs signed, for the memo
    signed_with: dict[str, bytes] = field(default_factory=dict)  # path -> the CA key that signed it
    request: str | None = None  # where the signing request for them is (set by the engine)
    rrdp: str | None = None  # what RRDP published (set by the engine)
    warnings: tuple[str, ...] = ()  # for the operator: a stale lock broken, a torn audit line recorded


def signed_object(
    *,
    issuer: rc.Issuer,
    uri: str,
    content_type: str,
    econtent: bytes,
    ee: tuple[datetime, datetime],
    resources: rc.EeResources,
    serial: int,
    signing_time: datetime,
    one_time: OneTimeKey | None = None,
) -> bytes:
    """A one-time EE certificate and the CMS envelope around ``econtent`` (two signatures, RFC 6488).
    ``resources``: the EE certificate's, as the object type wants them (``rc.EeResources``).
    ``one_time``: the EE key, when generated ahead (see ``onetime``)."""
    one_time = one_time or OneTimeKey()
    ee_cert = rc.build(
        issuer=issuer,
        subject_key=one_time.public,
        serial=serial,
        not_before=ee[0],
        not_after=ee[1],
        ip_resources=resources.ip,
        as_resources=resources.asn,
        signed_object=uri,
    )
    return cms.build(
        content_type=content_type,
        econtent=econtent,
        ee_cert=ee_cert,
        ee_key=one_time,
        signing_time=signing_time,
    )


def manifest_entries(files: dict[str, bytes], repo: str, exclude: set[str]) -> tuple[tuple[str, bytes], ...]:
    """(name, SHA-256) of the files directly in ``repo``, sorted, but for the names in ``exclude``."""
    return tuple(
        (path[len(repo) :], hashlib.sha256(data).digest())
        for path, data in sorted(files.items())
        if path.startswith(repo) and "/" not in path[len(repo) :] and path[len(repo) :] not in exclude
    )


@dataclass
class _Executor:
    plan: Plan
    desired: DesiredState
    published: PublishedState
    signers: dict[str, Signer]
    serial: SerialSource = x509.random_serial_number
    files: dict[str, bytes] = field(default_factory=dict)
    keys: dict[str, bytes] = field(default_factory=dict)  # CA -> its active key
    side: dict[str, dict[int, bytes]] = field(default_factory=dict)  # CA -> keys with empty points
    revoke: dict[str, list[int]] = field(default_factory=dict)
    signed: int = 0
    one_time: OneTimeKeys | None = None
    _listing: dict[str, set[str]] | None = None  # directory -> paths, once the points are issued
    summaries: dict[str, RoaSummary] = field(default_factory=dict)  # path -> each ROA signed
    signed_with: dict[str, bytes] = field(default_factory=dict)  # path -> the CA key that signed it

    @property
    def now(self) -> datetime:
        return self.plan.now.replace(microsecond=0)

    @property
    def valid_from(self) -> datetime:
        return self.now - CLOCK_SKEW_MARGIN

    @property
    def base(self) -> str:
        return self.desired.publication.rsync_base

    def signer(self, ca: str) -> Signer:
        return self.signers[self.desired.ca(ca).signer]

    def key_plan(self, ca: CaIntent) -> KeyPlan:
        return self.plan.key_plans.get(ca.name) or KeyPlan(ca.name, ca.key_generation)

    def self_issuer(self, ca: CaIntent) -> rc.Issuer:
        """The trust anchor signing its own certificate: no AIA, no CRLDP (RFC 6487 §4.8.6, §4.8.7)."""
        key = self.keys[ca.name]
        return rc.Issuer(SignerKey(self.signer(ca.name), key), key, None, None)

    def issuer(self, ca: CaIntent, generation: int | None = None) -> rc.Issuer:
        """The CA as the issuer of the objects in its own directory, with its active key (or a side key of
        a roll: ``generation``); the AIA points at that key's certificate."""
        plan = self.key_plan(ca)
        if generation is None or generation == plan.active:
            key, generation = self.keys[ca.name], plan.active
        else:
            key = self.side[ca.name][generation]
        certificate = ca.certificate_uri(generation) or self.base + layout.certificate_path(ca, generation)
        return rc.Issuer(
            SignerKey(self.signer(ca.name), key),
            key,
            certificate,
            self.base + layout.repository(ca.name) + layout.crl_name(key),
        )

    def own_issuer(self, ca: CaIntent) -> rc.Issuer:
        return self.issuer(ca)

    def find(self, ca: CaIntent, generation: int) -> bytes:
        key = self.signer(ca.name).find_key(layout.key_label(ca.name, generation))
        if key is None:
            raise SignerError(
                f"the key of {ca.name} (generation {generation}) is missing from signer {ca.signer!r} "
                "(fix: run plan again; a lost key is replaced by raising key_generation)"
            )
        return key

    def offline(self, ca: str) -> bool:
        """True when the CA's key is on an offline machine: what it signs goes into a signing request."""
        # a removed CA's files are only withdrawn
        return self.desired.has(ca) and is_offline(self.signer(ca))

    def create_keys(self) -> None:
        """The CA keys the plan asks for. A registry's first apply creates tens of thousands: a signer
        that can (``concurrent_keygen``, the file signer) creates them on every core at once."""
        creating = [c for c in self.plan.changes if c.action is Action.CREATE_KEY and not self.offline(c.ca)]
        self.refuse_published(creating)
        wanted = [(self.signer(c.ca), layout.key_label(c.ca, c.generation or 1)) for c in creating]
        concurrent = [(s, label) for s, label in wanted if getattr(s, "concurrent_keygen", False)]
        if len(concurrent) > 1:
            with ThreadPoolExecutor(max_workers=workers(), thread_name_prefix="ca-key") as pool:
                for _ in pool.map(lambda job: job[0].create_key(job[1]), concurrent):
                    faults.point("keys.created")
            wanted = [job for job in wanted if job not in concurrent]
        for signer, label in wanted:
            signer.create_key(label)
            faults.point("keys.created")

    def refuse_published(self, creating: list[Change]) -> None:
        """Never create a key whose certificate is published, whatever the plan says (a plan made by
        another caller, or before the key went missing): see ``rollover.lost_keys``."""
        if not creating:
            return
        have: KeyIds = {}
        for ca in self.desired.cas:
            signer = self.signer(ca.name)
            labels = {g: layout.key_label(ca.name, g) for g in range(1, ca.key_generation + 1)}
            have[ca.name] = {g: k for g, label in labels.items() if (k := signer.find_key(label)) is not None}
        offline = frozenset(c.signer for c in self.desired.cas if self.offline(c.name))
        asked = {(c.ca, c.generation or 1) for c in creating}
        lost = [
            item
            for item in lost_keys(self.desired, self.published, have, self.plan.now, offline=offline)
            if (item.ca.name, item.generation) in asked
        ]
        if lost:
            raise missing_key_error(lost, self.signers)

    def load_keys(self) -> None:
        self.create_keys()
        for ca in self.desired.cas:
            if self.offline(ca.name):
                continue
            plan = self.key_plan(ca)
            self.keys[ca.name] = self.find(ca, plan.active)
            self.side[ca.name] = {g: self.find(ca, g) for g in plan.side}

    def subject_key(self, ca: CaIntent, generation: int | None) -> bytes:
        plan = self.key_plan(ca)
        if generation is None or generation == plan.active:
            return self.keys[ca.name]
        if generation == plan.pending:
            return self.side[ca.name][generation]
        raise SignerError(f"the plan certifies generation {generation} of {ca.name}, which it does not use")

    def issue_certificate(self, change: Change) -> None:
        assert change.subject is not None  # noqa: S101 - certificate changes always name their subject
        if external_children.is_external(change):
            self.reissue_external(change)
            return
        ca = self.desired.ca(change.subject)
        key = self.subject_key(ca, change.generation)
        timing = self.desired.timing
        if ca.trust_anchor:
            issuer, validity = self.self_issuer(ca), timing.ta_certificate_validity
        else:
            parent = self.desired.ca(ca.parent or "")
            issuer, validity = self.own_issuer(parent), timing.certificate_validity
        repo = self.base + layout.repository(ca.name)
        self.files[change.path] = rc.build(
            issuer=issuer,
            subject_key=self.signer(ca.name).public_key(key),
            serial=self.serial(),
            not_before=self.valid_from,
            not_after=self.now + validity,
            ip_resources=rfc3779.encode_ip(ca.resources),
            as_resources=rfc3779.encode_asn(ca.resources.asn),
            ca=rc.CaAccess(repo, repo + layout.manifest_name(key), self.desired.publication.notify_uri),
        )
        self.signed_with[change.path] = issuer.key_id
        self.signed += 1

    def reissue_external(self, change: Change) -> None:
        """An external child's certificate again, for the key and SIA it holds (the child asked for those),
        within the child's entitlement, by the CA's active key, to the end of the CA's own certificate as
        this apply leaves it (what the child is told as ``resource_set_notafter``)."""
        ca = self.desired.ca(change.ca)
        found = self.published.certificate(change.path)
        located = self.desired.external_child(change.subject or "")
        if not isinstance(found, rc.ResourceCertificate) or located is None or located[0].name != ca.name:
            raise SignerError(f"{change.path}: no certificate of a declared external child to re-issue")
        own = self.files.get(layout.certificate_path(ca, self.key_plan(ca).active))
        own_cert = rc.decode(own) if own is not None else None
        issuer = self.own_issuer(ca)
        entitled = external_children.entitlement(*located)
        self.files[change.path] = child_certificate.reissue(
            found,
            issuer=issuer,
            resources=external_children.kept(found, entitled),
            serial=self.serial(),
            not_before=self.valid_from,
            not_after=external_children.validity_end(own_cert, self.now, self.desired.timing),
        )
        self.signed_with[change.path] = issuer.key_id
        self.signed += 1

    def signed_object(
        self,
        *,
        ca: CaIntent,
        path: str,
        content_type: str,
        econtent: bytes,
        ee: tuple[datetime, datetime],
        resources: rc.EeResources,
        issuer: rc.Issuer | None = None,
        serial: int | None = None,
    ) -> bytes:
        """A one-time EE certificate and the CMS envelope around ``econtent`` (two signatures)."""
        self.signed += 2
        return signed_object(
            issuer=issuer or self.own_issuer(ca),
            uri=self.base + path,
            content_type=content_type,
            econtent=econtent,
            ee=ee,
            resources=resources,
            serial=serial if serial is not None else self.serial(),
            signing_time=self.now,
            one_time=self.one_time.take() if self.one_time is not None else None,
        )

    def issue_roa(self, change: Change) -> None:
        content = change.content
        assert isinstance(content, RoaContent)  # noqa: S101 - ROA changes always carry their content
        ca = self.desired.ca(change.ca)
        validity = (self.valid_from, self.now + self.desired.timing.certificate_validity)
        resources = Resources.of_prefixes(p.prefix for p in content.prefixes)
        issuer, serial = self.own_issuer(ca), self.serial()
        self.files[change.path] = self.signed_object(
            ca=ca,
            path=change.path,
            content_type=roa.CONTENT_TYPE,
            econtent=roa.encode(content),
            ee=validity,
            resources=rc.EeResources.prefixes(resources),
            issuer=issuer,
            serial=serial,
        )
        # What the next plan checks of it, known without decoding it again (see ``published.memo``).
        self.summaries[change.path] = RoaSummary(
            asn=content.asn,
            prefixes=texts(content),
            authority_key_id=issuer.key_id,
            serial=serial,
            not_before=validity[0],
            not_after=validity[1],
            signed_object=self.base + change.path,
            crldp=issuer.crl_uri,
            aia=issuer.certificate_uri,
            resources_match=True,
            signed_by={issuer.key_id},
        )

    def issue_signed(self, change: Change, kind: kinds.SignedKind[Any]) -> None:
        """A signed object of a type in ``rpki.kinds`` (but ROAs, whose summary the memo keeps): its
        content encoded, in an envelope whose EE certificate holds what the type wants."""
        ca = self.desired.ca(change.ca)
        issuer = self.own_issuer(ca)
        self.files[change.path] = self.signed_object(
            ca=ca,
            path=change.path,
            content_type=kind.content_type,
            econtent=kind.encode(change.content),
            ee=(self.valid_from, self.now + self.desired.timing.certificate_validity),
            resources=kind.ee_resources(change.content),
            issuer=issuer,
        )
        self.signed_with[change.path] = issuer.key_id  # the next plan takes the signature as checked

    def issue_router(self, change: Change) -> None:
        """A BGPsec router certificate (RFC 8209): the router's key, certified by the CA's key directly."""
        want = change.content
        assert isinstance(want, RouterIntent)  # noqa: S101 - router changes always carry their entry
        issuer = self.own_issuer(self.desired.ca(change.ca))
        self.files[change.path] = router.build(
            issuer=issuer,
            key=router.RouterKey(router.load_public_key(want.key), requested=False),
            asns=want.asns,
            router_id=want.router_id,
            serial=self.serial(),
            not_before=self.valid_from,
            not_after=self.now + self.desired.timing.certificate_validity,
        )
        self.signed_with[change.path] = issuer.key_id
        self.signed += 1

    def previous_revocations(self, ca: CaIntent, key: bytes) -> list[crl.Revocation]:
        """Entries of the current CRL worth keeping: until the revoked object would have expired anyway."""
        found = self.published.crl(layout.repository(ca.name) + layout.crl_name(key))
        if not isinstance(found, crl.Crl) or found.authority_key_id != key:
            return []
        # The CRL does not say when a revoked object expires, and validity settings may have been longer
        # when it was issued: keep entries for the longest validity this CA could have used.
        timing = self.desired.timing
        keep = max(
            timing.certificate_validity,
            timing.ta_certificate_validity,
            timing.manifest_validity,
            timing.ta_manifest_validity,
        )
        return [r for r in found.revoked if r.revoked_at + keep > self.now]

    def previous_numbers(self, ca: CaIntent, key: bytes) -> tuple[int | None, int | None]:
        """The numbers of the key's manifest and CRL as published, each None when it cannot be read
        back as this key's: a file someone else signed must not choose the numbers."""
        repo = layout.repository(ca.name)
        crl_path, mft_path = repo + layout.crl_name(key), repo + layout.manifest_name(key)
        found_crl = self.published.crl(crl_path)
        found_mft = self.published.manifest(mft_path)
        crl_number = mft_number = None
        if isinstance(found_crl, crl.Crl) and found_crl.authority_key_id == key:
            signed = found_crl.crl
            if self.published.signature_holds(
                crl_path, key, lambda: signed.is_signature_valid(self.signer(ca.name).public_key(key))
            ):
                crl_number = found_crl.number
        if isinstance(found_mft, SignedManifest) and found_mft.signed.ee.authority_key_id == key:
            ee = found_mft.signed.ee.cert
            if self.published.signature_holds(
                mft_path, key, lambda: rc.verify_signed_by(ee, self.signer(ca.name).public_key(key))
            ):
                mft_number = found_mft.content.number
        return mft_number, crl_number

    def directory(self, repo: str) -> dict[str, bytes]:
        """The files of one CA's directory as they now stand (indexed once: a registry has thousands of
        directories, and a pass over every file per manifest would be quadratic)."""
        if self._listing is None:
            self._listing = {}
            for path in self.files:
                self._listing.setdefault(path.rpartition("/")[0] + "/", set()).add(path)
        return {p: self.files[p] for p in self._listing.get(repo, ()) if p in self.files}

    def add_file(self, path: str, data: bytes) -> None:
        self.files[path] = data
        if self._listing is not None:
            self._listing.setdefault(path.rpartition("/")[0] + "/", set()).add(path)

    def issue_point(self, ca: CaIntent, side: int | None = None) -> None:
        """A new CRL and a manifest listing every file of the CA's directory as it now stands; for a side
        key of a roll (``side``: its generation), a CRL and a manifest listing just that CRL (the key signs
        nothing else)."""
        pending = side is not None
        key = self.side[ca.name][side] if side is not None else self.keys[ca.name]
        issuer = self.issuer(ca, side)
        repo = layout.repository(ca.name)
        mft_number, crl_number = self.previous_numbers(ca, key)
        this_update = self.valid_from
        validity, _ = self.desired.timing.point_validity(ca.trust_anchor)
        next_update = self.now + validity
        revoked = self.previous_revocations(ca, key)
        if not pending:
            known = {r.serial for r in revoked}
            revoked += [crl.Revocation(s, self.now) for s in self.revoke.get(ca.name, []) if s not in known]
        crl_path = repo + layout.crl_name(key)
        self.add_file(
            crl_path,
            crl.build(
                issuer=issuer,
                number=next_number(crl_number, self.now),
                this_update=this_update,
                next_update=next_update,
                revoked=tuple(revoked),
            ),
        )
        self.signed_with[crl_path] = issuer.key_id
        self.signed += 1
        mft_name = layout.manifest_name(key)
        if pending:
            listed = manifest_entries({crl_path: self.files[crl_path]}, repo, set())
        else:
            others = {mft_name}
            for other in (self.keys[ca.name], *self.side.get(ca.name, {}).values()):
                if other != key:
                    others |= {layout.manifest_name(other), layout.crl_name(other)}
            listed = manifest_entries(self.directory(repo), repo, others)
        content = manifest.ManifestContent(
            next_number(mft_number, self.now), this_update, next_update, listed
        )
        self.add_file(
            repo + mft_name,
            self.signed_object(
                ca=ca,
                path=repo + mft_name,
                content_type=manifest.CONTENT_TYPE,
                econtent=manifest.encode(content),
                ee=(this_update, next_update),
                resources=rc.EeResources.inherit(),
                issuer=issuer,
            ),
        )
        self.signed_with[repo + mft_name] = issuer.key_id

    def one_time_keys_needed(self) -> int:
        """EE keys this plan uses: one per ROA, ASPA and manifest it signs online."""
        signs = (Kind.ROA, Kind.ASPA, Kind.MANIFEST)
        return sum(
            1
            for c in self.plan.changes
            if c.kind in signs and c.action not in (Action.WITHDRAW, Action.REVOKE) and not self.offline(c.ca)
        )

    def run(self) -> ApplyResult:
        with OneTimeKeys(self.one_time_keys_needed()) as self.one_time:
            return self.sign_all()

    def sign_all(self) -> ApplyResult:
        self.files = dict(self.published.files)
        self.load_keys()
        points: list[tuple[str, int | None]] = []
        deferred: list[Change] = []
        # How each kind of object is signed: a new kind is one entry here (manifests and CRLs are
        # signed per publication point, below).
        issuing: dict[Kind, Callable[[Change], None]] = {
            Kind.CERTIFICATE: self.issue_certificate,
            Kind.ROA: self.issue_roa,
            Kind.ASPA: lambda change: self.issue_signed(change, kinds.ASPA),
            Kind.ROUTER: self.issue_router,
        }
        for change in self.plan.changes:
            if self.offline(change.ca):
                deferred.append(change)
                continue
            if change.revoke_serial is not None:
                self.revoke.setdefault(change.ca, []).append(change.revoke_serial)
            if change.kind is Kind.KEY:
                continue  # created in load_keys; destroyed after publication
            if change.action in (Action.WITHDRAW, Action.REVOKE):
                self.files.pop(change.path, None)
            elif (issue := issuing.get(change.kind)) is not None:
                issue(change)
            elif change.kind is Kind.MANIFEST:
                ca = self.desired.ca(change.ca)
                side = change.generation if change.generation in self.key_plan(ca).side else None
                point = (ca.name, side)
                if point not in points:
                    points.append(point)
        for name, side in points:
            self.issue_point(self.desired.ca(name), side)
        written = tuple(sorted(p for p, d in self.files.items() if self.published.files.get(p) != d))
        removed = tuple(sorted(set(self.published.files) - set(self.files)))
        return ApplyResult(
            self.files,
            self.signed,
            written,
            removed,
            tuple(deferred),
            roas=self.summaries,
            signed_with=self.signed_with,
        )


def execute(
    plan: Plan,
    desired: DesiredState,
    published: PublishedState,
    signers: dict[str, Signer],
    serial: SerialSource = x509.random_serial_number,
) -> ApplyResult:
    """Sign everything the plan asks for and return the complete new tree (nothing is written here)."""
    return _Executor(plan, desired, published, signers, serial).run()
