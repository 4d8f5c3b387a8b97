"""The external parent (RFC 6492) and the remote repository (RFC 8181) as a plan shows them.

A CA under someone else's parent signs under what that parent last said, and publishes at someone
else's repository; a reviewer approving a plan should see both as plainly as the changes: which
resource classes the parent lists and until when, the certificate it issued for our key, whether the
two differ (then apply asks for a new certificate), how the last exchanges went, what the repository
held at the last exchange and what this apply will send it.

All of it comes from the state kept in ``<publication directory>/upstream/`` (see
``reconciler.upstream.state``); planning never contacts either peer. The SHA-256 of the parent's kept
``list_response`` is part of the plan's identity: a plan is bound to the entitlements it observed, and
a saved plan is stale once the parent said something else.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

from reconciler.desired.model import DesiredState
from reconciler.plan.model import Action, Change, Kind
from reconciler.protocol import publication
from reconciler.protocol.errors import ProtocolError
from reconciler.resources import Resources
from reconciler.rpki import cert as rc
from reconciler.upstream import state as stored
from reconciler.upstream import tree as upstream_tree
from reconciler.upstream.classes import holdings, pending, signing
from reconciler.upstream.state import Certified, PeerRecord, PublishedCount, UpstreamState

#: Actions that put an object at the repository, and those that take one away.
_PUBLISH = frozenset({Action.ISSUE, Action.REISSUE, Action.RENEW})
_WITHDRAW = frozenset({Action.WITHDRAW, Action.REVOKE})


@dataclass(frozen=True)
class Observed:
    """The kept states a plan's upstream part is made from: of the CA under the external parent, and of
    the CA that publishes at the remote repository (None where the desired state has neither)."""

    parent: UpstreamState | None = None
    repository: UpstreamState | None = None


@dataclass(frozen=True)
class ClassView:
    """One resource class of the kept list_response: what we may be certified for, and until when."""

    name: str
    entitled: Resources
    not_after: datetime
    ca: str | None = None  # our CA that signs under it (None: no certificate in it yet)


@dataclass(frozen=True)
class CertifiedView:
    """The certificate the parent issued for our key, as kept."""

    class_name: str
    uri: str
    resources: Resources
    not_before: datetime
    not_after: datetime
    key_id: bytes


@dataclass(frozen=True)
class ParentView:
    """The external parent: who, what it last listed, what it certified, how the exchanges went.
    ``entitled_not_certified`` and ``certified_not_entitled`` compare the certificate with its class;
    either non-empty means apply asks the parent for a new certificate."""

    ca: str
    handle: str
    service_uri: str
    listed_at: datetime | None
    list_sha256: str | None
    classes: tuple[ClassView, ...]
    certified: CertifiedView | None
    entitled_not_certified: Resources
    certified_not_entitled: Resources
    peer: PeerRecord
    #: The certificates of the CAs of the further resource classes (``upstream.classes``).
    others: tuple[CertifiedView, ...] = ()


@dataclass(frozen=True)
class RepositoryView:
    """The remote repository: where, what it held at the last exchange, and what apply will send it.
    ``missing``, ``different`` and ``extra`` compare its last list with the local copy now (None: no
    list kept yet, the first apply sends everything)."""

    ca: str
    service_uri: str
    sia_base: str
    held: PublishedCount
    peer: PeerRecord
    publish: int
    withdraw: int
    missing: int | None
    different: int | None
    extra: int | None


def observe(desired: DesiredState) -> Observed:
    """Read the kept states (disk only) of the CA under the external parent and of the CA publishing at
    the remote repository."""
    directory = desired.publication.directory
    root = desired.external_root
    parent = stored.load(directory, root.name) if root is not None and root.upstream is not None else None
    remote = desired.publication.remote
    repository = None
    if remote is not None:
        same = root is not None and remote.owner == root.name and parent is not None
        repository = parent if same else stored.load(directory, remote.owner)
    return Observed(parent, repository)


def list_digest(kept: UpstreamState) -> str | None:
    """SHA-256 (hex) of the kept list_response; None before the parent first answered."""
    return None if kept.list_response is None else hashlib.sha256(kept.list_response).hexdigest()


def parent_view(desired: DesiredState, observed: Observed) -> ParentView | None:
    """The external parent as last observed; None when the hierarchy has its own trust anchor."""
    root = desired.external_root
    kept = observed.parent
    if root is None or root.upstream is None or kept is None:
        return None
    response = root.upstream.response
    where = stored.path(desired.publication.directory, root.name)
    try:
        listed = stored.classes(kept)
    except ProtocolError as exc:
        raise stored.StateError(
            f"{where}: the kept list_response cannot be read ({exc}); move the file away, and the next "
            "apply asks the parent again"
        ) from exc
    try:
        found = holdings(kept)
    except rc.CertificateError as exc:
        raise stored.StateError(
            f"{where}: a certificate kept cannot be read ({exc}); move the file away, and the next apply "
            "asks the parent again"
        ) from exc
    names = {c.class_name: name for name, c in signing(root.name, kept)}
    classes = tuple(
        ClassView(c.class_name, c.resources, c.not_after, names.get(c.class_name)) for c in listed
    )
    views = [_certified_view(c) for _, c in signing(root.name, kept)]
    entitled, lost = pending(found)
    return ParentView(
        ca=root.name,
        handle=response.parent_handle,
        service_uri=response.service_uri,
        listed_at=kept.listed_at,
        list_sha256=list_digest(kept),
        classes=classes,
        certified=views[0] if views else None,
        entitled_not_certified=entitled,
        certified_not_entitled=lost,
        peer=kept.parent,
        others=tuple(views[1:]),
    )


def _certified_view(certified: Certified) -> CertifiedView:
    found = rc.decode(certified.der, where=certified.uri)
    return CertifiedView(
        certified.class_name,
        certified.uri,
        found.resources.resources,
        found.not_before,
        found.not_after,
        found.key_id,
    )


def repository_view(
    desired: DesiredState, observed: Observed, files: Mapping[str, bytes], changes: Iterable[Change]
) -> RepositoryView | None:
    """The remote repository: its kept record, the plan's changes it will receive, and how its last
    list compares with the local copy ``files`` (path -> bytes, the publication point as read)."""
    remote = desired.publication.remote
    kept = observed.repository
    if remote is None or kept is None:
        return None
    sent = [c for c in changes if _at_repository(c)]
    missing = different = extra = None
    if kept.listed is not None:
        want = {
            uri: publication.object_hash(data) for uri, data in upstream_tree.wanted(desired, files).items()
        }
        listed = {uri: digest.lower() for uri, digest in kept.listed.items()}
        missing = sum(1 for uri in want if uri not in listed)
        different = sum(1 for uri, digest in want.items() if uri in listed and listed[uri] != digest)
        extra = sum(1 for uri in listed if uri not in want)
    return RepositoryView(
        ca=remote.owner,
        service_uri=remote.response.service_uri,
        sia_base=remote.response.sia_base,
        held=kept.held,
        peer=kept.repository,
        publish=sum(1 for c in sent if c.action in _PUBLISH),
        withdraw=sum(1 for c in sent if c.action in _WITHDRAW),
        missing=missing,
        different=different,
        extra=extra,
    )


def _at_repository(change: Change) -> bool:
    """A change to an object in a CA's directory: what the repository receives (the certificate at the
    top of our copy is the parent's to publish; keys and RRDP are not objects)."""
    return change.kind not in (Kind.KEY, Kind.RRDP) and "/" in change.path
