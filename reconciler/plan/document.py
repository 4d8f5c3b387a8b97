"""The plan as a versioned JSON document: what ``plan --format json`` prints and ``plan --out`` saves.

Stability rules (Terraform's): ``format_version`` is MAJOR.MINOR; a minor bump only adds keys and
consumers ignore keys they do not know; a document with an unknown major version is refused.

``plan_id`` is the SHA-256 of the canonical JSON of what the plan *does* and what it was computed
against (desired state, observed publication point, changes, gates) — not of when it was printed or of
the wording of reasons — so that planning the same state twice gives the same id, and apply can check
that the plan it is about to execute is exactly the one that was reviewed.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from reconciler.desired.model import DesiredState, RouterIntent
from reconciler.plan import external_children, publishers, upstream
from reconciler.plan.model import Action, Change, Kind, Plan, Reason, RefreshNote
from reconciler.plan.route_leaks import Transition
from reconciler.published.reader import PublishedState, SignedManifest, SignedRoa
from reconciler.rpki import cert as rc
from reconciler.rpki import crl, kinds, router
from reconciler.rpki.aspa import AspaContent
from reconciler.rpki.roa import RoaContent
from reconciler.upstream.state import PeerRecord

if TYPE_CHECKING:
    from reconciler import refusals  # read by the caller (engine.plan_document)

FORMAT_VERSION = "2.6"
FORMAT_MAJOR = 2
PATH_EXAMPLES = 5  # prefixes shown per path whose ASPA outcome changes


class PlanFormatError(ValueError):
    """A saved plan that cannot be used: unreadable, or written in an unknown major format."""


class _Doc(BaseModel):
    # defer_build: each model's validator is built when first used, not at import: an apply uses a few
    # of the fifty, and building all of them at import cost every rpkictl start about 10 ms.
    model_config = ConfigDict(extra="ignore", frozen=True, defer_build=True)


class DesiredDoc(_Doc):
    repo: str = Field(description="Absolute path of the desired-state directory the plan was computed from.")
    digest: str = Field(description="SHA-256 over the loaded YAML files.")
    git_commit: str | None = Field(None, description="HEAD commit when the directory is in a Git work tree.")
    git_dirty: bool | None = Field(None, description="True when the work tree had uncommitted YAML changes.")


class ObservedPointDoc(_Doc):
    manifest: str = Field(description="File name of the CA's manifest.")
    number: int | None = Field(description="Its manifest number (null when unreadable).")
    sha256: str = Field(description="SHA-256 of the manifest file.")


class SourceDoc(_Doc):
    kind: Literal["local", "rrdp", "rsync"] = Field(
        description="local: a publication directory on the planning machine; rrdp or rsync: fetched "
        "from the repository as relying parties fetch it ('plan --published URI')."
    )
    uri: str = Field(description="The directory, RRDP notification URL or rsync URI that was read.")
    session_id: str | None = Field(None, description="RRDP session of the state read (when RRDP serves it).")
    serial: int | None = Field(None, description="RRDP serial of the state read (when RRDP serves it).")


class ObservedDoc(_Doc):
    tree_sha256: str = Field(description="SHA-256 over every published file (path and hash).")
    points: dict[str, ObservedPointDoc] = Field(description="Per CA directory: its manifest.")
    source: SourceDoc | None = Field(
        None,
        description="Where the publication was read from; not part of plan_id, so that a plan made "
        "from the RRDP copy and one made on the CA machine of the same state have the same id.",
    )


class GateDoc(_Doc):
    id: str = Field(description="Gate identifier: '<rule>@<ca>' (or '<rule>' for tree-wide rules).")
    rule: str = Field(
        description="roa-delete-pct, roa-narrow-pct, aspa-removal, ca-empty, ca-revoke, ca-shrink, "
        "parent-shrink, trust-anchor, route-invalid or key-missing."
    )
    ca: str = Field(description="The CA the gate is about, '*' for tree-wide rules.")
    message: str
    count: int = Field(description="Number of flagged items.")
    existing: int = Field(description="VRPs the CA publishes now (percentage rules), else 0.")
    threshold: float | None = Field(description="The threshold that was exceeded, for percentage rules.")
    hash: str = Field(description="SHA-256 binding an approval to exactly these flagged items.")
    approve: str = Field(description="The token to pass to 'rpkictl apply --approve'.")
    items: list[str] = Field(description="The flagged items, sorted.")


class ChangeDoc(_Doc):
    action: Literal["create-key", "issue", "reissue", "renew", "revoke", "withdraw", "destroy-key"]
    kind: Literal["key", "certificate", "roa", "aspa", "router", "manifest", "crl", "file", "rrdp"]
    ca: str = Field(description="The CA whose key signs the object (whose directory holds it).")
    address: str = Field(description="Stable, readable object address.")
    path: str = Field(description="Path relative to the rsync base ('' for keys).")
    subject: str | None = Field(None, description="The child CA a certificate is for.")
    reason: str = Field(description="Why, for people (its wording may change between versions).")
    cause: Reason | None = Field(
        None,
        description="Why, for machines: one of a closed set (not-published, content-changed, expiring, "
        "altered, not-desired, roll-new-key, ...); null in plans saved before format 2.4.",
    )
    routine: bool = Field(description="Manifest, CRL or scheduled renewal: not a reviewer's decision.")
    before: dict[str, Any] | None = Field(None, description="The published object, as far as it matters.")
    after: dict[str, Any] | None = Field(None, description="The object as it will be published.")
    revoke_serial: str | None = Field(None, description="Serial (hex) of the published object revoked.")
    generation: int | None = Field(
        None,
        description="Key generation: of the key (keys), of the subject's key (certificates), of the "
        "signing key when it is not the CA's active one (a key roll's staged manifest and CRL).",
    )
    roll: bool = Field(False, description="A step of a key roll declared in the desired state.")


class IssuedCertificateDoc(_Doc):
    path: str = Field(description="Path relative to the rsync base.")
    serial: str = Field(description="Serial number (hex).")
    key_id: str = Field(description="The child's key identifier (hex) the certificate is for.")
    not_after: datetime
    resources: str


class RefusedDoc(_Doc):
    """A request ``rpkictl serve`` refused, as kept in ``<publication directory>/serve/refused.json``."""

    at: datetime = Field(description="When it was refused (UTC, to the second).")
    code: str = Field(description="The code sent: an RFC 6492 status (e.g. 1202) or an RFC 8181 error code.")
    text: str = Field(description="The reason sent (at most 300 characters).")
    request: str = Field(description="What was asked: list, issue, revoke, publish, or message (unparsed).")


_REFUSED_DESCRIPTION = (
    "The requests 'rpkictl serve' refused lately (the last 5, oldest first), as kept on the CA machine; "
    "empty when the plan is made from elsewhere (--published)."
)


class ExternalChildDoc(_Doc):
    handle: str = Field(description="The handle the child is declared with (children: in its parent's file).")
    ca: str = Field(description="The parent CA that certifies it over RFC 6492.")
    entitlement: str = Field(description="What it may be certified for: its resources within the CA's.")
    certificates: list[IssuedCertificateDoc] = Field(
        description="What the CA issued to it, as published when the plan was made (one per key)."
    )
    refused: list[RefusedDoc] = Field(default_factory=list, description=_REFUSED_DESCRIPTION)


class PublisherDoc(_Doc):
    handle: str = Field(description="The handle the publisher is declared with (publishers: in rpki.yaml).")
    sia_base: str = Field(description="The rsync directory it publishes in (RFC 8181), ending with '/'.")
    objects: int = Field(description="Objects it publishes here now.")
    bytes: int = Field(description="Their total size in bytes.")
    quota_objects: int = Field(description="The most objects it may publish.")
    quota_bytes: int = Field(description="The most bytes it may publish.")
    refused: list[RefusedDoc] = Field(default_factory=list, description=_REFUSED_DESCRIPTION)


class PeerDoc(_Doc):
    """How the exchanges with an external parent or a remote repository went, as kept."""

    last_success: datetime | None = Field(description="The last exchange that succeeded.")
    last_attempt: datetime | None = Field(description="The last exchange tried.")
    failures: int = Field(description="Failed exchanges in a row since the last success.")
    last_error: str | None = Field(description="The last error since the last success, with its time.")
    last_error_code: int | None = Field(None, description="Its RFC 6492 status code, when the peer sent one.")
    next_contact: datetime | None = Field(
        None, description="When the reconcile loop asks the parent again (apply asks whenever it runs)."
    )


class ResourceClassDoc(_Doc):
    name: str = Field(description="The class name the parent gave.")
    entitled: str = Field(description="The resources the parent lists for us in it.")
    not_after: datetime = Field(description="The latest end the parent can give a certificate in it.")
    ca: str | None = Field(
        default=None,
        description="Our CA that signs under it: the CA for the first class, '<ca>_class-<class>' for "
        "each further one; null while it holds no certificate of ours.",
    )


class ParentCertificateDoc(_Doc):
    class_name: str
    uri: str = Field(description="Where the parent publishes it (the AIA of everything our key signs).")
    resources: str
    not_before: datetime
    not_after: datetime
    key_id: str = Field(description="Our key's identifier (hex) it certifies.")


class ParentDoc(_Doc):
    ca: str = Field(description="Our CA the parent certifies.")
    handle: str = Field(description="The parent's handle (from the RFC 8183 parent_response).")
    service_uri: str
    listed_at: datetime | None = Field(description="When its list_response kept was taken.")
    list_sha256: str | None = Field(
        description="SHA-256 of the list_response kept; part of plan_id, so that a saved plan is stale "
        "once the parent lists something else."
    )
    classes: list[ResourceClassDoc]
    certified: ParentCertificateDoc | None = Field(description="The certificate it issued for our key.")
    other_certificates: list[ParentCertificateDoc] = Field(
        default_factory=list,
        description="The certificates it issued for the keys of our CAs of its further resource classes.",
    )
    entitled_not_certified: str = Field(
        description="In a class but not in its certificate, over every class ('' if none)."
    )
    certified_not_entitled: str = Field(
        description="In a certificate but no longer in its class, over every class ('' if none)."
    )
    new_certificate: bool = Field(description="Apply asks the parent for a new certificate.")
    contact: PeerDoc


class RepositoryDoc(_Doc):
    ca: str = Field(description="Our CA that publishes there (RFC 8181).")
    service_uri: str
    sia_base: str
    objects: int = Field(description="Objects it held for us after the last exchange.")
    bytes: int = Field(description="Their total size.")
    publish: int = Field(description="Objects this plan issues, re-issues or renews in CA directories.")
    withdraw: int = Field(description="Objects this plan withdraws or revokes in CA directories.")
    missing: int | None = Field(
        description="Objects of the local copy the repository did not list at the last exchange "
        "(null: no list kept yet)."
    )
    different: int | None = Field(description="Objects it listed with another hash than the local copy's.")
    extra: int | None = Field(description="Objects it listed that the local copy does not have.")
    contact: PeerDoc


class NoticeDoc(_Doc):
    kind: str = Field(
        description="key-roll, offline-signing, expiry, signer-keys (the signers where the plan was made "
        "hold keys no published certificate shows: apply uses them), or serve (the record of the requests "
        "'rpkictl serve' refused cannot be read)."
    )
    severity: Literal["info", "warning", "critical"]
    ca: str
    message: str
    due: datetime | None = Field(None, description="When the next step is due, or the expiry.")


class RefreshDoc(_Doc):
    mode: Literal["full", "incremental"] = Field(
        description="full: every CA was planned; incremental: the CAs whose inputs (YAML, keys, published "
        "files, renewal times) were as when a plan last found nothing to do for them were not planned again."
    )
    planned: int = Field(description="CAs planned.")
    unchanged: int = Field(description="CAs not planned again (incremental plans).")
    full_at: datetime | None = Field(
        None, description="When the last full plan was made (incremental plans)."
    )
    why: str = Field("", description="Why the plan was full.")


class SummaryDoc(_Doc):
    create_key: int
    destroy_key: int = 0
    issue: int
    replace: int
    revoke: int
    withdraw: int
    routine: int
    vrps_added: int
    vrps_removed: int
    text: str = Field(description="The human summary line.")


class VrpDoc(_Doc):
    """One validated ROA payload, as a relying party exports it: fields, not a sentence to parse."""

    asn: int = Field(description="Origin AS number (0 for an AS0 ROA).")
    prefix: str = Field(description="The prefix, e.g. 192.0.2.0/24 or 2001:db8::/32.")
    max_length: int = Field(description="The longest prefix length the ROA authorises.")


class VrpsDoc(_Doc):
    added: list[VrpDoc] = Field(description="VRPs relying parties will see after apply and do not now.")
    removed: list[VrpDoc] = Field(description="VRPs relying parties see now and will not after apply.")


class AspaChangeDoc(_Doc):
    """An ASPA that changes, in the terms a reviewer checks: which providers the customer AS gains and
    loses. A provider lost makes paths through it ASPA-invalid at routers that enforce ASPA."""

    ca: str
    customer: int = Field(description="The customer AS.")
    action: str = Field(description="As the change's action (issue, reissue, revoke, withdraw).")
    path: str
    providers_before: list[int] | None = Field(description="Published now; null when none is.")
    providers_after: list[int] | None = Field(description="After apply; null when the ASPA goes.")
    added: list[int] = Field(description="Providers authorised after apply and not now.")
    removed: list[int] = Field(description="Providers authorised now and not after apply.")
    reason: str


class RouteChangeDoc(_Doc):
    prefix: str
    origin: int
    peers: int | None
    before: Literal["valid", "invalid", "not-found"]
    after: Literal["valid", "invalid", "not-found"]
    breaks: bool = Field(description="Valid now, invalid after the plan.")


class PathChangeDoc(_Doc):
    """An announced AS path whose ASPA verification outcome (draft-ietf-sidrops-aspa-verification)
    changes with the plan's ASPAs, by one procedure."""

    path: list[int] = Field(
        description="The ASes as the collector's peer sent them: neighbour first, origin last."
    )
    as_set: bool = Field(description="The path held an AS_SET (always Invalid).")
    procedure: Literal["upstream", "downstream"] = Field(
        description="upstream: as received from a customer or a peer; downstream: from a provider."
    )
    before: Literal["valid", "invalid", "unknown"]
    after: Literal["valid", "invalid", "unknown"]
    breaks: bool = Field(description="Valid or Unknown now, Invalid after the plan.")
    prefixes: int = Field(description="How many announced prefixes the path carries.")
    examples: list[str] = Field(description=f"The first {PATH_EXAMPLES} of them, in the file's order.")


class AnnouncementsDoc(_Doc):
    path: str
    sha256: str
    min_peers: int
    routes: int = Field(description="Announcements read (after the visibility filter).")


class IntentDoc(_Doc):
    kind: str
    ca: str | None
    summary: str
    where: str | None = Field(
        description="file:line:column of the entry, relative to the Git work tree's root: in the work "
        "tree, or in the base revision when 'revision' is set."
    )
    revision: str | None = Field(
        None,
        description="The --base revision whose file 'where' points into (an entry that is gone from the "
        "work tree, such as a removed ROA); null when 'where' is in the work tree.",
    )


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'s' if count != 1 else ''}"


@dataclass(frozen=True, slots=True)
class PlanCounts:
    """How many changes a plan has, split the one way every renderer and prompt splits them.

    ``review``: the changes a reviewer decides on (issue, replace, revoke, withdraw, create a key);
    ``routine``: manifest and CRL renewals, scheduled re-issues of unchanged content, key roll steps
    and RRDP republication, which keep the tree valid and are no one's decision. The comment's header,
    the terminal's verdict and the apply prompt all take their numbers from here, so that "2 changes to
    review" is never followed by "Apply these 4 changes".
    """

    review: int
    routine: int
    revocations: int
    vrps_added: int
    vrps_removed: int

    @property
    def total(self) -> int:
        """Every change apply will make: ``review + routine``."""
        return self.review + self.routine

    def describe(self) -> str:
        """``"2 changes to review and 2 routine"`` (the routine part only when there is one)."""
        text = f"{_plural(self.review, 'change')} to review"
        return f"{text} and {self.routine} routine" if self.routine else text


class PlanDocument(_Doc):
    """A plan, as reviewed and as applied."""

    format_version: str = Field(description="MAJOR.MINOR; unknown majors are refused.")
    plan_id: str = Field(description="SHA-256 of what the plan does and what it was computed against.")
    created_at: datetime = Field(description="The time the plan was computed for (--now, or the clock).")
    tool_version: str
    desired: DesiredDoc
    observed: ObservedDoc
    approval_required: bool
    summary: SummaryDoc
    gates: list[GateDoc]
    changes: list[ChangeDoc]
    vrps: VrpsDoc
    aspas: list[AspaChangeDoc] = Field(
        default_factory=list,
        description="ASPA changes to review (renewals of an unchanged ASPA are routine and not listed).",
    )
    announcements: AnnouncementsDoc | None = None
    route_impact: list[RouteChangeDoc] | None = None
    path_impact: list[PathChangeDoc] | None = Field(
        None,
        description="With --announcements carrying AS paths: the paths whose ASPA verification outcome "
        "changes, those made Invalid first; null when no paths were given.",
    )
    intent: list[IntentDoc] | None = Field(None, description="Desired-state entries changed since --base.")
    base: str | None = Field(None, description="The --base revision the intent list compares with.")
    external_children: list[ExternalChildDoc] = Field(
        default_factory=list,
        description="External child CAs (RFC 6492) of the CAs, with the certificates they hold now.",
    )
    publishers: list[PublisherDoc] = Field(
        default_factory=list,
        description="External publishers (RFC 8181) declared in rpki.yaml, with what they publish here now.",
    )
    parent: ParentDoc | None = Field(
        None, description="The external parent (RFC 6492) of a CA without a trust anchor of its own."
    )
    repository: RepositoryDoc | None = Field(
        None, description="The remote repository (RFC 8181) the CAs publish at, and what apply sends it."
    )
    notices: list[NoticeDoc] = Field(
        default_factory=list,
        description="What the operator must know besides the changes: key roll phases, trust anchor "
        "renewals waiting for the offline signer, expiries coming closer.",
    )
    refresh: RefreshDoc | None = Field(
        None,
        description="How the plan looked at the CAs (format 2.6); null when it was made without the plan "
        "cache (a publication read elsewhere, or an older version): every CA planned.",
    )

    def counts(self) -> PlanCounts:
        """The plan's counts (see :class:`PlanCounts`); the same numbers wherever a count is shown."""
        review = sum(1 for c in self.changes if not c.routine)
        return PlanCounts(
            review=review,
            routine=len(self.changes) - review,
            revocations=sum(1 for c in self.changes if c.revoke_serial is not None),
            vrps_added=len(self.vrps.added),
            vrps_removed=len(self.vrps.removed),
        )


def _time(value: datetime) -> str:
    """ISO-8601 in UTC with a Z, as pydantic writes ``created_at``."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _vrp(vrp: tuple[int, str, int]) -> VrpDoc:
    return VrpDoc(asn=vrp[0], prefix=vrp[1], max_length=vrp[2])


def _roa(content: RoaContent) -> dict[str, Any]:
    return {
        "asn": content.asn,
        "prefixes": [{"prefix": str(p.prefix), "max_length": p.max_length} for p in content.prefixes],
    }


def _aspa(content: AspaContent) -> dict[str, Any]:
    return {"customer": content.customer, "providers": list(content.providers)}


def _router(key_id: bytes, asns: object, router_id: object) -> dict[str, Any]:
    return {
        "key_id": key_id.hex().upper(),
        "asns": str(asns),
        "router_id": None if router_id is None else str(router_id),
    }


def _content(content: object) -> dict[str, Any] | None:
    """What an object says, as the plan's ``before``/``after`` show it."""
    if isinstance(content, RoaContent):
        return _roa(content)
    if isinstance(content, AspaContent):
        return _aspa(content)
    if isinstance(content, RouterIntent):
        return _router(content.key_id, content.asns, content.router_id)
    return None


def _before(published: PublishedState, change: Change) -> dict[str, Any] | None:
    if change.kind is Kind.ROA:
        roa = published.roa(change.path)
        return _roa(roa.content) if isinstance(roa, SignedRoa) else None
    if change.kind is Kind.ASPA:
        item = published.signed(change.path)
        return _content(item.content) if isinstance(item, kinds.Signed) else None
    if change.kind is Kind.ROUTER:
        found_router = published.router(change.path)
        if isinstance(found_router, router.RouterCertificate):
            return _router(found_router.key_id, found_router.asns, found_router.router_id)
        return None
    if change.kind is Kind.CERTIFICATE:
        found = published.certificate(change.path)
        if isinstance(found, rc.ResourceCertificate):
            return {"resources": str(found.resources.resources), "not_after": _time(found.not_after)}
    if change.kind is Kind.MANIFEST:
        mft = published.manifest(change.path)
        if isinstance(mft, SignedManifest):
            return {"number": mft.content.number, "next_update": _time(mft.content.next_update)}
    if change.kind is Kind.CRL:
        found_crl = published.crl(change.path)
        if isinstance(found_crl, crl.Crl):
            return {"number": found_crl.number, "next_update": _time(found_crl.next_update)}
    return None


def _after(desired: DesiredState, published: PublishedState, change: Change) -> dict[str, Any] | None:
    if change.content is not None:
        return _content(change.content)
    if external_children.is_external(change):
        after = external_children.certified_after(desired, published, change)
        return None if after is None else {"resources": str(after)}
    if (
        change.kind is Kind.CERTIFICATE
        and change.subject
        and change.action.value in ("issue", "reissue", "renew")
    ):
        return {"resources": str(desired.ca(change.subject).resources)}
    return None


def _change(desired: DesiredState, published: PublishedState, change: Change) -> ChangeDoc:
    return ChangeDoc(
        action=change.action.value,
        kind=change.kind.value,
        ca=change.ca,
        address=change.address,
        path=change.path,
        subject=change.subject,
        reason=change.reason,
        cause=change.cause,
        routine=change.routine,
        before=_before(published, change),
        after=_after(desired, published, change),
        revoke_serial=f"{change.revoke_serial:x}" if change.revoke_serial is not None else None,
        generation=change.generation,
        roll=change.roll,
    )


def _path_change(change: Transition) -> PathChangeDoc:
    return PathChangeDoc(
        path=list(change.path.ases),
        as_set=change.path.as_set,
        procedure=change.procedure.value,
        before=change.before.value,
        after=change.after.value,
        breaks=change.newly_invalid,
        prefixes=len(change.prefixes),
        examples=list(change.prefixes[:PATH_EXAMPLES]),
    )


def _providers(content: dict[str, Any] | None) -> list[int] | None:
    return None if content is None else list(content["providers"])


def _aspa_change(change: ChangeDoc) -> AspaChangeDoc:
    before, after = _providers(change.before), _providers(change.after)
    if change.action in ("revoke", "withdraw"):
        after = None
    customer = (change.after or change.before or {}).get("customer")
    if customer is None:  # an unreadable ASPA withdrawn: its name says whose it was (0: a name like junk.asa)
        number = change.path.rsplit("/", 1)[-1].removeprefix("AS").split(".", 1)[0]
        customer = int(number) if number.isascii() and number.isdigit() else 0
    return AspaChangeDoc(
        ca=change.ca,
        customer=customer,
        action=change.action,
        path=change.path,
        providers_before=before,
        providers_after=after,
        added=sorted(set(after or ()) - set(before or ())),
        removed=sorted(set(before or ()) - set(after or ())),
        reason=change.reason,
    )


def _refused(found: tuple[refusals.Refusal, ...]) -> list[RefusedDoc]:
    return [RefusedDoc(at=r.at, code=str(r.code), text=r.text, request=r.request) for r in found]


def _record_notices(refused: refusals.Kept | None) -> list[NoticeDoc]:
    """A record of refused requests that cannot be read is shown, not fatal: the plan says so."""
    if refused is None or refused.problem is None:
        return []
    return [NoticeDoc(kind="serve", severity="warning", ca="(serve)", message=refused.problem, due=None)]


def _publishers(
    desired: DesiredState, published: PublishedState, refused: refusals.Kept | None = None
) -> list[PublisherDoc]:
    """Each declared publisher with what it publishes here now, in rpki.yaml's order: the reviewer sees
    whose objects every apply carries over, how close each is to its quota, and what it was refused."""
    held = publishers.by_publisher(published.foreign)
    found = []
    for publisher in desired.publishers:
        paths = held.get(publisher.handle, [])
        found.append(
            PublisherDoc(
                handle=publisher.handle,
                sia_base=publisher.sia_base,
                objects=len(paths),
                bytes=sum(len(published.foreign[path]) for path in paths),
                quota_objects=publisher.quota.objects,
                quota_bytes=publisher.quota.size,
                refused=[] if refused is None else _refused(refused.of_publisher(publisher.handle)),
            )
        )
    return found


def _peer(record: PeerRecord) -> PeerDoc:
    error = record.last_error
    return PeerDoc(
        last_success=record.last_success,
        last_attempt=record.last_attempt,
        failures=record.failures,
        last_error=None if error is None else error.describe(),
        last_error_code=None if error is None else error.code,
        next_contact=record.next_contact,
    )


def _parent(view: upstream.ParentView | None) -> ParentDoc | None:
    if view is None:
        return None
    mine = view.certified
    return ParentDoc(
        ca=view.ca,
        handle=view.handle,
        service_uri=view.service_uri,
        listed_at=view.listed_at,
        list_sha256=view.list_sha256,
        classes=[
            ResourceClassDoc(name=c.name, entitled=str(c.entitled), not_after=c.not_after, ca=c.ca)
            for c in view.classes
        ],
        certified=None if mine is None else _certificate(mine),
        other_certificates=[_certificate(c) for c in view.others],
        entitled_not_certified=str(view.entitled_not_certified) if view.entitled_not_certified else "",
        certified_not_entitled=str(view.certified_not_entitled) if view.certified_not_entitled else "",
        new_certificate=mine is None or bool(view.entitled_not_certified or view.certified_not_entitled),
        contact=_peer(view.peer),
    )


def _certificate(view: upstream.CertifiedView) -> ParentCertificateDoc:
    return ParentCertificateDoc(
        class_name=view.class_name,
        uri=view.uri,
        resources=str(view.resources),
        not_before=view.not_before,
        not_after=view.not_after,
        key_id=view.key_id.hex(),
    )


def _repository(view: upstream.RepositoryView | None) -> RepositoryDoc | None:
    if view is None:
        return None
    return RepositoryDoc(
        ca=view.ca,
        service_uri=view.service_uri,
        sia_base=view.sia_base,
        objects=view.held.objects,
        bytes=view.held.size,
        publish=view.publish,
        withdraw=view.withdraw,
        missing=view.missing,
        different=view.different,
        extra=view.extra,
        contact=_peer(view.peer),
    )


def canonical_json(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def compute_plan_id(doc: PlanDocument) -> str:
    """What the plan does and what it was computed against; not when, nor the wording of reasons.

    The SHA-256 of the canonical JSON of :func:`_identity`, whose changes are encoded and hashed one at a
    time: a registry's first plan lists some 200,000 changes, and encoding them all at once took 400 MB
    for a moment (the document as plain values, then its text)."""
    # The changes go where an empty list stands: keys are sorted, and only "announcements" (a hex digest
    # or null) comes before "changes", so the first occurrence is the one.
    around = canonical_json({**_identity(doc), "changes": []}).split(b'"changes":[]', 1)
    digest = hashlib.sha256(around[0] + b'"changes":[')
    first = True
    for change in doc.changes:
        if change.kind == "rrdp":
            # An RRDP republication is not a reviewed change: apply does it whenever RRDP is behind, so a
            # reviewed plan does not go stale when RRDP falls behind or is repaired meanwhile.
            continue
        digest.update(b"" if first else b",")
        digest.update(canonical_json(change.model_dump(mode="json", exclude={"reason"})))
        first = False
    digest.update(b"]" + around[1])
    return digest.hexdigest()


def _identity(doc: PlanDocument) -> dict[str, Any]:
    """All that identifies a plan but its changes. Under an external parent, also the list_response the
    plan was made from (only then, so that every other plan keeps the id it had)."""
    identity = {
        "format_major": FORMAT_MAJOR,
        "desired": {"digest": doc.desired.digest, "git_commit": doc.desired.git_commit},
        "observed": doc.observed.model_dump(mode="json", exclude={"source"}),
        "gates": [{"id": g.id, "hash": g.hash} for g in doc.gates],
        "announcements": doc.announcements and doc.announcements.sha256,
    }
    if doc.parent is not None:
        identity["parent_list"] = doc.parent.list_sha256
    return identity


def build(
    plan: Plan,
    desired: DesiredState,
    published: PublishedState,
    *,
    tool_version: str,
    git_commit: str | None = None,
    git_dirty: bool | None = None,
    announcements: AnnouncementsDoc | None = None,
    intent: list[IntentDoc] | None = None,
    base: str | None = None,
    source: SourceDoc | None = None,
    kept: upstream.Observed | None = None,
    refused: refusals.Kept | None = None,
) -> PlanDocument:
    """The plan's document. ``kept``: the states kept of the external parent and the remote repository
    (``upstream.observe``), for their sections; None leaves them out. ``refused``: the record of the
    requests ``rpkictl serve`` refused, for the external children and publishers (None: none shown)."""
    counts = plan.counts()
    changes = [_change(desired, published, c) for c in plan.changes]
    route_impact = None
    if plan.route_changes is not None:
        route_impact = [
            RouteChangeDoc(
                prefix=str(c.announcement.prefix),
                origin=c.announcement.origin,
                peers=c.announcement.peers,
                before=c.before,
                after=c.after,
                breaks=c.breaks,
            )
            for c in plan.route_changes
        ]
    doc = PlanDocument(
        format_version=FORMAT_VERSION,
        plan_id="",
        created_at=plan.now,
        tool_version=tool_version,
        desired=DesiredDoc(
            repo=str(desired.root), digest=desired.digest, git_commit=git_commit, git_dirty=git_dirty
        ),
        observed=ObservedDoc(
            tree_sha256=plan.tree_sha256,
            points={
                k: ObservedPointDoc(manifest=v.manifest, number=v.number, sha256=v.sha256)
                for k, v in sorted(plan.observed.items())
            },
            source=source,
        ),
        approval_required=plan.approval_required,
        summary=SummaryDoc(
            create_key=counts[Action.CREATE_KEY],
            destroy_key=counts[Action.DESTROY_KEY],
            issue=counts[Action.ISSUE],
            replace=counts[Action.REISSUE],
            revoke=counts[Action.REVOKE],
            withdraw=counts[Action.WITHDRAW],
            routine=plan.routine_count,
            vrps_added=len(plan.vrps_added),
            vrps_removed=len(plan.vrps_removed),
            text=plan.summary(),
        ),
        gates=[
            GateDoc(
                id=g.id,
                rule=g.rule,
                ca=g.ca,
                message=g.message,
                count=g.count,
                existing=g.existing,
                threshold=g.threshold,
                hash=g.hash,
                approve=g.token,
                items=list(g.items),
            )
            for g in plan.gates
        ],
        changes=changes,
        aspas=[_aspa_change(c) for c in changes if c.kind == Kind.ASPA.value and not c.routine],
        vrps=VrpsDoc(
            added=[_vrp(v) for v in sorted(plan.vrps_added)],
            removed=[_vrp(v) for v in sorted(plan.vrps_removed)],
        ),
        announcements=announcements,
        route_impact=route_impact,
        path_impact=None if plan.path_changes is None else [_path_change(c) for c in plan.path_changes],
        intent=intent,
        base=base,
        external_children=[
            ExternalChildDoc(
                handle=e.handle,
                ca=e.ca,
                entitlement=str(e.entitlement),
                certificates=[
                    IssuedCertificateDoc(
                        path=c.path,
                        serial=f"{c.serial:x}",
                        key_id=c.key_id.hex(),
                        not_after=c.not_after,
                        resources=str(c.resources),
                    )
                    for c in e.certificates
                ],
                refused=[] if refused is None else _refused(refused.of_child(e.handle)),
            )
            for e in external_children.entries(desired, published)
        ],
        publishers=_publishers(desired, published, refused),
        parent=None if kept is None else _parent(upstream.parent_view(desired, kept)),
        repository=None
        if kept is None
        else _repository(upstream.repository_view(desired, kept, published.files, plan.changes)),
        notices=[
            *(
                NoticeDoc(kind=n.kind, severity=n.severity.value, ca=n.ca, message=n.message, due=n.due)
                for n in plan.notices
            ),
            *_record_notices(refused),
        ],
        refresh=None if plan.refresh is None else _refresh(plan.refresh),
    )
    return doc.model_copy(update={"plan_id": compute_plan_id(doc)})


def _refresh(note: RefreshNote) -> RefreshDoc:
    mode: Literal["full", "incremental"] = "incremental" if note.mode == "incremental" else "full"
    return RefreshDoc(
        mode=mode, planned=note.planned, unchanged=note.unchanged, full_at=note.full_at, why=note.why
    )


def dumps(doc: PlanDocument) -> str:
    return doc.model_dump_json(indent=2) + "\n"


def loads(text: str, *, where: str = "plan") -> PlanDocument:
    """Read a saved plan, refusing unknown major versions and documents that are not plans."""
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        raise PlanFormatError(f"{where}: not a JSON plan: {exc}") from exc
    version = str(raw.get("format_version", "")) if isinstance(raw, dict) else ""
    if version.split(".")[0] != str(FORMAT_MAJOR):
        raise PlanFormatError(
            f"{where}: plan format {version or '(none)'} is not supported "
            f"(this rpkictl reads {FORMAT_MAJOR}.x); "
            "re-run 'rpkictl plan --out' with this version"
        )
    try:
        return PlanDocument.model_validate(raw)
    except ValueError as exc:
        raise PlanFormatError(f"{where}: not a valid plan document: {exc}") from exc


def json_schema() -> dict[str, Any]:
    schema = PlanDocument.model_json_schema()
    schema["$id"] = "https://rpki-reconciler.invalid/schemas/plan.schema.json"
    schema["title"] = "rpki-reconciler plan"
    return schema


if __name__ == "__main__":
    print(json.dumps(json_schema(), indent=2, sort_keys=True))
