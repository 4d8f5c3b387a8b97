"""The library API behind ``rpkictl``: load, plan, document, apply, audit, TAL. The CLI only parses
options, talks to the operator and renders.

Every function takes the current time as an argument; none of them prints.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import reconciler
from reconciler import cachefile, clock, faults, layout, published, refusals
from reconciler.apply import audit, lock
from reconciler.apply.executor import ApplyResult, execute
from reconciler.desired import load, parse_cache
from reconciler.desired.model import DesiredState
from reconciler.offline import ceremony
from reconciler.offline.request import CeremonyError, SigningRequest, fingerprint, read_response
from reconciler.plan import aspas, document, publishers, route_leaks
from reconciler.plan import incremental as plan_cache
from reconciler.plan import upstream as plan_upstream
from reconciler.plan.approval import Approval, ApprovalError, stale_reasons
from reconciler.plan.diff import make_plan, repaired
from reconciler.plan.document import AnnouncementsDoc, IntentDoc, PlanDocument, PlanFormatError, SourceDoc
from reconciler.plan.gitcontext import GitContextError, git_info, intent_changes
from reconciler.plan.impact import Announcement, AnnouncementFile, AnnouncementsError, read_announcements
from reconciler.plan.incremental import Refresh
from reconciler.plan.model import Action, Change, Kind, Notice, Plan, Reason, Severity
from reconciler.plan.rollover import KeyIds, Phase, lost_keys, missing_key_error
from reconciler.publish import rrdp
from reconciler.publish.rsync_tree import (
    PublishError,
    Removals,
    ServedTree,
    TreeMovedError,
    publish,
    served_tree,
)
from reconciler.published import memo, reader
from reconciler.published.reader import PublishedState
from reconciler.published.remote_cache import RemoteError  # light: remote loads only when used
from reconciler.rpki import cert as rc
from reconciler.rpki import tal
from reconciler.signers import OfflineSigner, Signer, SignerError, open_signers
from reconciler.upstream import narrowing as upstream_narrowing
from reconciler.upstream import state as upstream_state
from reconciler.upstream.effective import effective, expiry_notices
from reconciler.upstream.errors import ParentError, RepositoryError
from reconciler.upstream.state import StateError

if TYPE_CHECKING:  # status and monitoring load only for the commands that use them: plan starts faster
    from reconciler.health import Finding
    from reconciler.status.model import StatusReport
    from reconciler.upstream.repository import Synced


class ApplyInterrupted(KeyboardInterrupt):
    """Ctrl-C (SIGINT) during an apply, after its "started" record: the "failed" record is written, and
    the message says what is published now. A KeyboardInterrupt still, so nothing mistakes it for an
    error to retry."""


class AuditedApplyError(Exception):
    """An apply that failed after its "started" record; the "failed" record is written. The message says
    what is published now and what to do."""


# Errors that are the operator's to fix: the CLI and the reconcile loop print them, never a traceback.
OPERATOR_ERRORS: tuple[type[Exception], ...] = (
    SignerError,
    PublishError,
    rrdp.RrdpError,
    clock.ClockError,
    AnnouncementsError,
    GitContextError,
    PlanFormatError,
    ApprovalError,
    lock.LockError,
    audit.AuditError,
    CeremonyError,
    AuditedApplyError,
    RemoteError,
    ParentError,
    RepositoryError,
    StateError,
    OSError,
)


def tool_version() -> str:
    return reconciler.__version__


@dataclass(frozen=True, slots=True)
class Workspace:
    """A loaded desired state with its signers and the publication point as it is now.

    ``review``: a workspace for ``plan``, ``status`` and ``check``, which know each CA's key from its
    published certificate (:func:`published_keys`), never from a signer, so that a plan is the same on a
    machine without the keys (a pull request's runner) as on the CA machine. Its ``signers`` are those
    that could be opened here (for the caches' key only; none without secrets). Apply's workspace plans
    with what its signers hold (:meth:`keys`). ``source``: what the publication was read from."""

    desired: DesiredState
    signers: dict[str, Signer]
    published: PublishedState
    served: ServedTree | None = None  # the tree ``published`` was read from; an apply links from it only
    review: bool = False
    source: SourceDoc | None = None
    #: False when the publication was read elsewhere (``--published``): then the local publication
    #: directory is neither read (RRDP state, a waiting signing request) nor written (caches).
    local: bool = True
    #: What the plan shows besides its changes about the external parent and the repository (see
    #: ``upstream.effective``); ``desired`` is then the desired state narrowed to what the parent
    #: certified.
    notices: tuple[Notice, ...] = ()

    @property
    def rsync_dir(self) -> Path:
        return self.desired.publication.directory / "rsync"

    def keys(self) -> KeyIds:
        """Per CA, the keys its signer holds, by generation (1 up to the desired one)."""
        found: KeyIds = {}
        for ca in self.desired.cas:
            signer = self.signers[ca.signer]
            found[ca.name] = {}
            for generation in range(1, ca.key_generation + 1):
                key = signer.find_key(layout.key_label(ca.name, generation))
                if key is not None:
                    found[ca.name][generation] = key
        return found

    def plan_keys(self) -> KeyIds:
        """The keys a plan of this workspace signs with: the published ones for a review, the signers'
        for an apply."""
        return published_keys(self.desired, self.published) if self.review else self.keys()


def published_keys(desired: DesiredState, found: PublishedState) -> KeyIds:
    """Per CA, the keys its published certificates certify, by generation (1 up to the desired one): what
    relying parties know of each CA's keys, and all a plan needs to know of them. A key only its signer
    holds (made by an apply interrupted before it published, or retired by a finished key roll) is for
    apply to find; see :func:`unpublished_keys`."""
    keys: KeyIds = {}
    for ca in desired.cas:
        keys[ca.name] = {}
        for generation in range(1, ca.key_generation + 1):
            cert = found.certificate(layout.certificate_path(ca, generation))
            if isinstance(cert, rc.ResourceCertificate):
                keys[ca.name][generation] = cert.key_id
    return keys


def unpublished_keys(signer_keys: KeyIds, published: KeyIds) -> list[str]:
    """The keys the signers hold that no published certificate shows, one phrase each, for a message."""
    found = []
    for ca, generations in sorted(signer_keys.items()):
        for generation, key in sorted(generations.items()):
            if published.get(ca, {}).get(generation) != key:
                found.append(f"{ca} generation {generation} (key {key.hex().upper()})")
    return found


def open_workspace(repo: Path) -> Workspace:
    """Load and check the YAML (raises DesiredStateError), open the signers, read the publication point."""
    return workspace_for(load_desired(repo))


def load_desired(repo: Path, *, caches: bool = True) -> DesiredState:
    """Load and check the YAML (raises DesiredStateError), taking the files seen before from the parse
    cache when the desired state's own key (the memo's: ``memo.secret_of``) confirms its seal. Without
    that key (a review without secrets, a signer that cannot be opened here) every file is parsed; so
    it is without ``caches`` (a plan of a publication read elsewhere writes nothing here)."""

    def cache_key(desired: DesiredState) -> bytes | None:
        signers = _signers_if_available(desired)
        return memo.secret_of(desired, signers) if signers is not None else None

    return load(repo, cache_key=cache_key if caches else None)


def _signers_if_available(desired: DesiredState) -> dict[str, Signer] | None:
    """The signers, when they open here without error (the CA machine); None otherwise (no PIN or
    passphrase in the environment, no PKCS#11 module). Opening one creates nothing: no key, no
    directory."""
    try:
        return open_signers(desired.signers, {ca.signer for ca in desired.cas})
    except (SignerError, OSError):
        return None


def signers_for(desired: DesiredState) -> dict[str, Signer]:
    """The signers of the desired state's CAs, opened (PINs and passphrases from the environment)."""
    return open_signers(desired.signers, {ca.signer for ca in desired.cas})


def workspace_for(desired: DesiredState, signers: dict[str, Signer] | None = None) -> Workspace:
    """Open the signers of a loaded desired state (unless given, opened already) and read its publication
    point (for apply)."""
    if signers is None:
        signers = open_signers(desired.signers, {ca.signer for ca in desired.cas})
    secret = memo.secret_of(desired, signers)
    served, found = _read_served(desired.publication.directory)
    found.memo = memo.load(desired.publication.directory, secret)
    _learn_offline_key(desired, signers, found)
    desired, notices = effective(desired, found)
    source = local_source(desired.publication.directory)
    return Workspace(desired, signers, found, served, source=source, notices=notices)


def contact_parent(
    desired: DesiredState,
    signers: dict[str, Signer],
    now: datetime,
    *,
    always: bool,
    approvals: Sequence[Approval] = (),
) -> list[str]:
    """Ask the external parent for our entitlements and, when needed, a new certificate, before a plan
    that signs under it (see ``upstream.parent``). ``always``: ask now (apply); otherwise only when it is
    due (the reconcile loop). ``approvals``: an approved ``parent-shrink`` gate lets the exchange ask for
    the narrower certificate (``upstream.narrowing``). Returns what the operator should know; raises
    ``ParentError`` when there is no certificate to sign under."""
    root = desired.external_root
    if root is None:
        return []
    from reconciler.upstream import parent as upstream_parent  # noqa: PLC0415 - HTTP loads only to use it

    kept = upstream_state.load(desired.publication.directory, root.name)
    if not always and upstream_parent.due(kept, now, desired.timing.certificate_renew_before) is None:
        if kept.certified is not None:
            return []
        error = kept.parent.last_error.describe() if kept.parent.last_error else "no answer yet"
        when = kept.parent.next_contact
        raise ParentError(
            f"no certificate from the parent for {root.name} yet ({error}); the next attempt is after "
            f"{when:%Y-%m-%dT%H:%M:%SZ}"
            if when
            else f"no certificate from the parent for {root.name} yet"
        )
    pending = upstream_narrowing.gate(desired, kept)
    approved = pending is not None and any(
        a.gate_id == pending.id and pending.hash.startswith(a.hash_prefix) for a in approvals
    )
    narrowing = upstream_narrowing.taken_away(kept) if approved else None
    exchange = upstream_parent.refresh(desired, root, signers[root.signer], now, narrowing=narrowing)
    notes = list(exchange.warnings)
    if exchange.requested:
        parent = root.upstream.response.parent_handle if root.upstream else "?"
        said = f"asked parent {parent} for a new certificate: {'; '.join(exchange.requested)}"
        notes.append(said)
        certified = exchange.state.certified
        _audit_exchange(
            desired,
            "parent-requested",
            said,
            ca=root.name,
            parent=parent,
            certificate=certified.uri if certified else None,
            list_sha256=hashlib.sha256(exchange.state.list_response or b"").hexdigest(),
        )
    return notes


def _audit_exchange(desired: DesiredState, status: str, summary: str, **facts: object) -> None:
    """An audit record of what we asked a parent or a repository run by someone else to do: a
    certificate request, a revocation, a publication. What they answered is in the kept state."""
    record: dict[str, Any] = {"who": audit.who(), "status": status, "summary": summary}
    record.update({key: value for key, value in facts.items() if value is not None})
    audit.append(desired.audit_log_path, record, now=clock.now())


def publish_remote(workspace: Workspace, now: datetime, result: ApplyResult | None = None) -> Synced | None:
    """Bring a remote repository up to date with the local copy (``upstream.repository``): after every
    apply, even one with nothing to sign, so that what the repository lost is sent again. ``result``:
    the apply just made, whose tree the local copy now is (else the workspace's, as read). None when
    the publication is local."""
    desired = workspace.desired
    remote = desired.publication.remote
    if remote is None:
        return None
    from reconciler.upstream import repository as upstream_repository  # noqa: PLC0415 - as above

    owner = desired.ca(remote.owner)
    files = result.files if result is not None else workspace.published.files
    try:
        synced = upstream_repository.synchronise(desired, workspace.signers[owner.signer], files, now)
    except RepositoryError as exc:
        _audit_exchange(desired, "repository-failed", str(exc), ca=owner.name)
        raise
    if synced.sent:
        _audit_exchange(
            desired,
            "repository-published",
            synced.describe(remote.response.service_uri),
            ca=owner.name,
            publish=synced.published,
            withdraw=synced.withdrawn,
            bytes=synced.size,
        )
    return synced


def finish_parent_roll(workspace: Workspace, the_plan: Plan, now: datetime) -> list[str]:
    """After a key roll's activation is published (the plan's, and :func:`publish_remote` done): ask
    the external parent to revoke the retired keys (``upstream.parent.revoke_retired``)."""
    root = workspace.desired.external_root
    if root is None:
        return []
    retired = {
        ca.name: roll.retired
        for ca in workspace.desired.cas
        if ca.external and (roll := the_plan.key_plans.get(ca.name)) is not None and roll.retired
    }
    if not retired:
        return []
    from reconciler.upstream import parent as upstream_parent  # noqa: PLC0415 - HTTP loads only to use it

    signer = workspace.signers[root.signer]
    ended = upstream_parent.revoke_retired(workspace.desired, root, signer, retired, now)
    for said in ended.requested:
        _audit_exchange(workspace.desired, "parent-revoked", said, ca=root.name)
    return [*ended.requested, *ended.warnings]


def review_workspace(
    desired: DesiredState, published_from: str | None = None, cache_dir: Path | None = None
) -> Workspace:
    """The workspace of ``plan``, ``status`` and ``check``: no private key, PIN or passphrase needed (see
    :class:`Workspace`). ``published_from``: read the publication from this directory, RRDP notification
    URL (``https://.../notification.xml``) or rsync URI instead of the local publication directory --
    then nothing is read from or written to the local publication directory. ``cache_dir``: where a
    fetched copy is kept between runs."""
    if published_from is None:
        directory = desired.publication.directory
        signers = _signers_if_available(desired) or {}
        served, found = _read_served(directory)
        found.memo = memo.load(directory, memo.secret_of(desired, signers) if signers else None)
        desired, notices = effective(desired, found)
        source = local_source(directory)
        return Workspace(desired, signers, found, served, review=True, source=source, notices=notices)
    if "://" in published_from:
        from reconciler.published import remote  # noqa: PLC0415 - only for a remote publication

        copy = remote.fetch(published_from, desired.publication.rsync_base, cache_dir)
        found = published.read(copy.rsync_dir)
        desired, notices = effective(desired, found, public=True)
        source = SourceDoc(
            kind="rrdp" if copy.source.kind == "rrdp" else "rsync",
            uri=copy.source.uri,
            session_id=copy.source.session_id,
            serial=copy.source.serial,
        )
        return Workspace(desired, {}, found, None, review=True, source=source, local=False, notices=notices)
    directory = Path(published_from).expanduser().resolve()
    if not directory.is_dir():
        raise PublishError(
            f"--published {published_from}: no such directory (fix: give a publication directory, an "
            "RRDP notification URL (https://.../notification.xml) or an rsync URI (rsync://...))"
        )
    if (directory / "rsync").exists():  # a publication directory
        served, found = _read_served(directory)
        source = local_source(directory)
    else:  # an rsync tree itself
        served, found = None, published.read(directory)
        source = SourceDoc(kind="local", uri=str(directory), session_id=None, serial=None)
    desired, notices = effective(desired, found, public=True)
    return Workspace(desired, {}, found, served, review=True, source=source, local=False, notices=notices)


def local_source(directory: Path) -> SourceDoc:
    """A local publication directory as a plan records it: with its RRDP session and serial when it
    publishes RRDP."""
    try:
        notification = rrdp.read_notification(directory / "rrdp")
    except (rrdp.RrdpError, OSError):
        notification = None
    return SourceDoc(
        kind="local",
        uri=str(directory),
        session_id=notification.session_id if notification else None,
        serial=notification.serial if notification else None,
    )


def _learn_offline_key(desired: DesiredState, signers: dict[str, Signer], found: PublishedState) -> None:
    """An offline trust anchor's key is, online, what its published certificate says."""
    offline = signers.get(desired.trust_anchor.signer)
    if isinstance(offline, OfflineSigner):
        cert = found.certificate(layout.certificate_path(desired.trust_anchor))
        if isinstance(cert, rc.ResourceCertificate) and cert.authority_key_id in (None, cert.key_id):
            offline.learn(desired.trust_anchor.name, cert.public_key)


_READ_TRIES = 5


def _read_served(directory: Path) -> tuple[ServedTree | None, PublishedState]:
    """The publication point as read, with the tree it was read from: the same tree before and after
    the reading (an apply not holding the lock may swap one in meanwhile; then it is read again)."""
    for _ in range(_READ_TRIES):
        before = served_tree(directory)
        found = published.read(directory / "rsync")
        if served_tree(directory) == before:
            return before, found
    raise PublishError(
        f"the tree served in {directory} kept changing while it was read: is an apply running without the "
        "publication lock? (run this again once it is done)"
    )


@dataclass(frozen=True, slots=True)
class Announcements:
    """Routes seen in BGP, read from a file, with what identifies that file in a saved plan."""

    routes: list[Announcement]
    meta: AnnouncementsDoc
    #: The file, when it carries AS paths: the plan reads from it the paths through the ASes whose ASPA
    #: changes (a full table's other paths need not be held in memory).
    paths: Path | None = None

    @classmethod
    def read(cls, path: Path, min_peers: int = 0) -> Announcements:
        paths = None
        if route_leaks.carries_paths(path):
            paths = path
            origins, as_sets = route_leaks.read_origins(path)
            found = AnnouncementFile(origins, "paths", as_sets=as_sets)
        else:
            found = read_announcements(path, min_peers=min_peers)
        if not found.announcements and not found.below_min_peers:
            # An empty file (a failed download, a wrong path) would silently disable the route gate.
            raise AnnouncementsError(
                path, 1, "no announcements in the file", "is it the right file, and complete?"
            )
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        meta = AnnouncementsDoc(
            path=str(path.resolve()), sha256=digest, min_peers=min_peers, routes=len(found.announcements)
        )
        return cls(found.announcements, meta, paths)


def plan(
    workspace: Workspace,
    now: datetime,
    announcements: Announcements | None = None,
    hold: frozenset[str] = frozenset(),
    keys: KeyIds | None = None,
    *,
    refresh: Refresh = Refresh.AUTO,
) -> Plan:
    """``keys``: the keys to plan with when the caller has looked them up already (each lookup may be a
    round trip to an HSM); by default :meth:`Workspace.plan_keys` -- the published ones in a review, the
    signers' in an apply, which then refuses to plan around a published key its signer lost.

    CAs whose inputs did not change since a plan found nothing to do for them are not planned again,
    but for a full plan: with ``refresh`` full, once a day, and without the plan cache (see
    ``plan.incremental``). The plan says which it was."""
    routes = announcements.routes if announcements is not None else None
    found = keys if keys is not None else workspace.plan_keys()
    if not workspace.review:
        refuse_lost_keys(workspace, found, now)
    the_plan = _planned(workspace, found, now, routes, hold=hold, refresh=refresh)
    if workspace.review:
        the_plan = _new_keys_as_reviewed(workspace, the_plan)
    notice = offline_notice(workspace, the_plan)
    if notice is not None:
        the_plan = dataclasses.replace(the_plan, notices=(*the_plan.notices, notice))
    upstream = (*workspace.notices, *expiry_notices(workspace.desired, workspace.published, now))
    if upstream:
        the_plan = dataclasses.replace(the_plan, notices=(*the_plan.notices, *upstream))
    root = workspace.desired.external_root
    if root is not None and workspace.local:
        kept = upstream_state.load(workspace.desired.publication.directory, root.name)
        narrowing = upstream_narrowing.gate(workspace.desired, kept)
        if narrowing is not None:
            the_plan = dataclasses.replace(the_plan, gates=(*the_plan.gates, narrowing))
    if announcements is not None and announcements.paths is not None:
        the_plan = _with_path_impact(workspace, the_plan, announcements.paths)
    behind = rrdp_drift(workspace) if workspace.local else None
    if behind is not None:
        the_plan = dataclasses.replace(the_plan, changes=(*the_plan.changes, behind))
    state = workspace.published
    if workspace.local:
        memo.save(workspace.desired.publication.directory, state.memo, state.digests())
    dropped = [Notice("cache", Severity.INFO, "(cache)", why) for why in cachefile.dropped()]
    if dropped:
        the_plan = dataclasses.replace(the_plan, notices=(*the_plan.notices, *dropped))
    return the_plan


def _planned(
    workspace: Workspace,
    keys: KeyIds,
    now: datetime,
    routes: Sequence[Announcement] | None,
    *,
    hold: frozenset[str],
    refresh: Refresh,
) -> Plan:
    """``make_plan`` with the plan cache of a local publication directory (see ``plan.incremental``):
    what it knows is used, what the plan learns is kept, and the plan says which CAs it planned."""
    if not workspace.local:
        return make_plan(workspace.desired, workspace.published, keys, now, routes, hold=hold)
    directory = workspace.desired.publication.directory
    secret = workspace.published.memo.secret
    cache = plan_cache.load(directory, secret, now, refresh)
    the_plan = make_plan(
        workspace.desired, workspace.published, keys, now, routes, hold=hold, incremental=cache
    )
    plan_cache.save(directory, cache, secret, now)
    notices = (*the_plan.notices, _lying_cache(cache.lied)) if cache.lied else the_plan.notices
    return dataclasses.replace(the_plan, refresh=cache.note(), notices=notices)


def _lying_cache(cas: list[str]) -> Notice:
    """The plan cache called CAs unchanged that this full plan found changes for."""
    shown = ", ".join(cas[:5]) + (f" and {len(cas) - 5} more" if len(cas) > 5 else "")
    return Notice(
        "cache",
        Severity.WARNING,
        "(plan)",
        f"the plan cache called {len(cas)} CA(s) unchanged that this full plan found changes for ({shown}): "
        "it was dropped, and the next plan plans every CA",
    )


def _with_path_impact(workspace: Workspace, the_plan: Plan, paths: Path) -> Plan:
    """The announced paths whose ASPA verification outcome the plan changes, and the gate for those it
    makes Invalid (see ``plan.aspas.path_gate``)."""
    rules = aspas.Standing(workspace.desired.publication.rsync_base, repaired(the_plan.changes), the_plan.now)
    before, after = aspas.providers(workspace.desired, workspace.published, rules)
    changed = route_leaks.changed_customers(before, after)
    routes = route_leaks.read_routes(paths, wanted=changed) if changed else route_leaks.Routes()
    changes = tuple(route_leaks.impact(routes, before, after))
    gate = aspas.path_gate(changes)
    gates = (*the_plan.gates, gate) if gate is not None else the_plan.gates
    return dataclasses.replace(the_plan, path_changes=changes, gates=gates)


def _new_keys_as_reviewed(workspace: Workspace, the_plan: Plan) -> Plan:
    """A review's keys to create, said as a review knows them: no published certificate shows the key,
    which the signer may hold all the same (a publication point rebuilt from Git and restored keys, an
    apply that stopped before it published). When the signers could be opened here (the CA machine),
    a notice says which of those keys they hold, and that apply uses them: notices are not part of the
    plan's id, so the plan stays the one a machine without the keys makes."""
    desired = workspace.desired
    held: list[str] = []
    changes = []
    for change in the_plan.changes:
        signer_name = desired.ca(change.ca).signer if change.action is Action.CREATE_KEY else None
        if signer_name is None or change.roll or desired.signers[signer_name].type == "offline":
            changes.append(change)
            continue
        label = layout.key_label(change.ca, change.generation or 1)
        reason = (
            f"no published certificate shows a key of {change.ca}: apply uses the key {label!r} of signer "
            f"{signer_name!r} if it holds one, and creates it otherwise"
        )
        changes.append(dataclasses.replace(change, reason=reason))
        signer = workspace.signers.get(signer_name)
        try:
            if signer is not None and signer.find_key(label) is not None:
                held.append(label)
        except (SignerError, OSError):
            continue
    notices = the_plan.notices
    if held:
        message = (
            f"the signers here hold the key(s) {', '.join(held)}, which no published certificate shows: "
            "apply uses them and creates none (its own plan, shown before it asks, has no create-key line "
            "for them)"
        )
        first = next(c.ca for c in changes if c.action is Action.CREATE_KEY)
        notices = (*notices, Notice("signer-keys", Severity.INFO, first, message))
    return dataclasses.replace(the_plan, changes=tuple(changes), notices=notices)


def saved_plan_problems(
    workspace: Workspace, saved: PlanDocument, current: PlanDocument, routes: Announcements | None = None
) -> list[str]:
    """Why a saved plan may not be applied as it stands (empty when it may): what moved since it was
    made. ``current``: the apply's own plan, for the saved plan's time, made with the signers' keys.

    A saved plan is made as every review is, from the keys the publication shows; apply plans with the
    keys its signers hold. The two differ only when a signer holds a key that no published certificate
    shows, and that is decided here:

    - a key a finished key roll retired, to be destroyed: housekeeping that no publication shows and no
      reviewer could have seen. It does not make the plan stale; apply destroys the key as it would
      have without a saved plan (the audit record lists it).
    - any other key (one made by an apply that stopped before publishing, or put there by hand): the
      plan is stale, and the reason names the keys, since no plan made without the keys can see them.
    """
    if saved.plan_id == current.plan_id or _id_without_destroyed_keys(saved) == _id_without_destroyed_keys(
        current
    ):
        return []
    review = dataclasses.replace(workspace, review=True)
    reviewed = plan_document(review, plan(review, saved.created_at, routes), announcements=routes)
    reasons = stale_reasons(saved, reviewed)
    if reasons:
        return reasons
    held = unpublished_keys(workspace.keys(), review.plan_keys())
    if not held:
        return ["planning the same state again with the signers' keys gives different changes"]
    return [
        f"the signers hold key(s) that no published certificate shows: {', '.join(held)} (an apply that "
        "stopped before it published?). A plan made from the publication cannot see them: plan on this "
        f"machine with 'rpkictl apply {workspace.desired.root}', which plans with the signers' keys and "
        "asks before it signs"
    ]


def _id_without_destroyed_keys(doc: PlanDocument) -> str:
    """The plan's id, leaving out the retired keys it destroys (see :func:`saved_plan_problems`)."""
    kept = [c for c in doc.changes if c.action != "destroy-key"]
    if len(kept) == len(doc.changes):
        return doc.plan_id
    return document.compute_plan_id(doc.model_copy(update={"changes": kept}))


def refuse_lost_keys(workspace: Workspace, keys: KeyIds, now: datetime) -> None:
    """Raise :class:`MissingKeyError` when a CA's published key is missing from its signer: that is for
    a person to put right (a volume to mount, a signer to correct), never a plan to create a new key."""
    desired = workspace.desired
    offline = frozenset(name for name, s in workspace.signers.items() if isinstance(s, OfflineSigner))
    lost = lost_keys(desired, workspace.published, keys, now, offline=offline)
    if lost:
        raise missing_key_error(lost, workspace.signers)


def cache_secret(workspace: Workspace) -> bytes | None:
    """The key the caches in the publication directory are authenticated with (``memo.secret_of``),
    kept with the memo; looked up again when there was none (a first apply creates the keys it comes
    from)."""
    kept = workspace.published.memo
    if kept.secret is None:
        kept.secret = memo.secret_of(workspace.desired, workspace.signers)
    return kept.secret


def remember_signed(workspace: Workspace, result: ApplyResult) -> None:
    """Keep what the next plan checks of the objects just published, so that it need not decode them or
    check their signatures again: the ROAs' summaries, the other objects as decoding them finds them, and
    which CA key signed each (this process made those signatures)."""
    found = workspace.published
    cache_secret(workspace)
    digests = set()
    for path, data in result.files.items():
        digest = found.digest_of(path, data)
        digests.add(digest)
        if path in result.roas:
            found.memo.remember(digest, result.roas[path])
        key = result.signed_with.get(path)
        if key is not None:
            published.remember_decoded(found.memo, path, data, digest)
            found.memo.remember_signed_with(digest, key)
    memo.save(workspace.desired.publication.directory, found.memo, digests)


def rrdp_drift(workspace: Workspace) -> Change | None:
    """RRDP that does not serve what the rsync tree serves (never written, lost, edited, or left behind
    by an interrupted apply) is republished, in a new session."""
    publication = workspace.desired.publication
    if publication.rrdp_base is None or not workspace.published.files:
        return None
    directory = publication.directory / "rrdp"
    damaged = reader.not_a_directory(directory)
    if damaged is not None:
        reason = f"{damaged}: republished in a new RRDP session (relying parties take the snapshot)"
        return Change(Action.RENEW, Kind.RRDP, "(rrdp)", "notification.xml", reason, cause=Reason.DAMAGE)
    planted = rrdp.planted_entry(directory)
    if planted is not None:
        reason = f"{planted}, never made by apply: removed, and RRDP republished in a new session"
        return Change(Action.RENEW, Kind.RRDP, "(rrdp)", "notification.xml", reason, cause=Reason.DAMAGE)
    current = rrdp.read_notification(directory)
    found = workspace.published
    matches, why = rrdp.state_matches(
        current,
        found.served_files(),
        publication.rsync_base,
        directory=directory,
        rrdp_base=publication.rrdp_base,
        digest_of=found.digest_of,
        tree=found.served_digest(),
        secret=found.memo.secret,
    )
    if matches:
        return None
    reason = f"{why}: republished in a new RRDP session (relying parties take the snapshot)"
    return Change(Action.RENEW, Kind.RRDP, "(rrdp)", "notification.xml", reason, cause=Reason.RRDP_BEHIND)


@dataclass
class Progress:
    """How far a publication got, so that every message about a failure says what is served now."""

    rsync: Path | None = None  # the new rsync tree, once the ``rsync`` link points to it
    rrdp: str | None = None  # what RRDP published, once its notification is out

    def state(self, rrdp_configured: bool) -> str:
        """What relying parties see now, for a message."""
        if self.rsync is None:
            return "nothing was published: the previous rsync tree and RRDP state are still served"
        if not rrdp_configured:
            return f"the rsync tree is published (trees/{self.rsync.name})"
        if self.rrdp is None:
            return (
                "the rsync tree is published, but RRDP is behind: it still serves the previous state "
                f"(rsync serves trees/{self.rsync.name}; the next apply republishes RRDP)"
            )
        return f"the rsync tree is published (trees/{self.rsync.name}), and {self.rrdp}"


def publish_all(
    workspace: Workspace,
    files: dict[str, bytes],
    now: datetime,
    removals: Removals | None = None,
    *,
    held: lock.Lock | None = None,
    progress: Progress | None = None,
    foreign: dict[str, bytes] | None = None,
    encoded: rrdp.Encoded | None = None,
) -> str | None:
    """The rsync tree (swapped atomically), then RRDP (snapshot and delta before the notification).
    Returns what RRDP did, for the operator. Old trees are removed by ``removals`` when given (see
    :class:`Removals`), before this returns otherwise.

    ``files`` is this tree's own part of the new tree; the external publishers' part is ``foreign``,
    by default what is served now (``PublishedState.foreign``): every publication carries it over.

    With ``held``, the publication lock: each irreversible step (the swap of ``rsync``, the rename of the
    notification) happens only while it is still ours, and the swap only while the tree served is still
    the one the workspace was read from. ``progress`` is kept up to date as each step is done.
    ``encoded``: the snapshot's elements kept by a process that publishes again and again (see
    ``rrdp.Encoded``)."""
    publication = workspace.desired.publication
    progress = progress if progress is not None else Progress()

    def swapped(tree: Path) -> None:
        progress.rsync = tree

    old = workspace.published
    carried = old.foreign if foreign is None else foreign
    files = {**files, **carried} if carried else files
    served = old.served_files()  # ours and the publishers': merged once, for rsync and RRDP
    publish(
        publication.directory,
        files,
        now,
        served=served,
        removals=removals,
        read_from=workspace.served,
        check_served=held is not None,
        fence=held.fence if held is not None else None,
        on_swap=swapped,
    )
    if publication.rrdp_base is None:
        return None
    written = rrdp.publish_rrdp(
        publication.directory / "rrdp",
        publication.rrdp_base,
        publication.rsync_base,
        served,
        files,
        digest_of=old.digest_of,  # unchanged files were hashed when the tree was read
        old_tree=old.served_digest(),
        fence=held.fence if held is not None else None,
        secret=cache_secret(workspace),
        encoded=encoded,
    )
    if written is None:
        progress.rrdp = "RRDP already serves it"
        return None
    state = written.notification
    if written.new_session:
        why = written.why or "first publication"
        progress.rrdp = f"RRDP: new session {state.session_id} ({why}), serial 1"
    else:
        progress.rrdp = (
            f"RRDP: serial {state.serial} (session {state.session_id}, {len(state.deltas)} deltas offered)"
        )
    return progress.rrdp


def offline_signer(workspace: Workspace) -> OfflineSigner | None:
    signer = workspace.signers.get(workspace.desired.trust_anchor.signer)
    return signer if isinstance(signer, OfflineSigner) else None


def offline_notice(workspace: Workspace, the_plan: Plan) -> Notice | None:
    """The changes only the offline trust anchor can sign, and the request waiting for it, if any (read
    from the local publication directory only: a plan of a publication read elsewhere cannot know)."""
    desired = workspace.desired
    ta = desired.trust_anchor.name
    if desired.signers[desired.trust_anchor.signer].type != "offline":  # rpki.yaml says, no signer opened
        return None
    waiting = [c for c in the_plan.changes if c.ca == ta]
    if not waiting:
        return None
    message = f"{len(waiting)} change(s) need the offline trust anchor's signature"
    pending = ceremony.read_pending(desired.publication.directory) if workspace.local else None
    due = None
    if pending is not None:
        request, raw = pending
        due = request.expires_at
        message += (
            f"; request {request.request_id[:12]} (fingerprint {fingerprint(raw)}) waits at "
            f"{ceremony.pending_path(workspace.desired.publication.directory)}, written "
            f"{request.created_at:%Y-%m-%dT%H:%M:%SZ}, expires {request.expires_at:%Y-%m-%dT%H:%M:%SZ}: "
            "sign it with 'rpkictl ta sign' offline, then 'rpkictl ta import'"
        )
    elif workspace.local:
        message += "; 'rpkictl apply' writes the signing request"
    else:
        message += "; 'rpkictl apply' on the CA machine writes the signing request, if none waits there"
    return Notice("offline-signing", Severity.WARNING, ta, message, due)


def routine_plan(workspace: Workspace, now: datetime, full: Plan | None = None) -> Plan:
    """What a scheduled job may apply: :func:`routine_only` of the plan -- but a key roll does not
    activate in a CA that has reviewed changes waiting (a ROA being changed, a certificate losing
    resources): activation re-signs everything under the new key and revokes the old one, so it must
    come with those changes, never leave them behind signed by a revoked key."""
    full = full if full is not None else plan(workspace, now)
    activating = {name for name, keys in full.key_plans.items() if keys.phase is Phase.ACTIVATING}
    waiting = {c.ca for c in full.changes if not c.routine} | {
        c.subject for c in full.changes if not c.routine and c.subject
    }
    held = frozenset(activating & waiting)
    return routine_only(plan(workspace, now, hold=held) if held else full)


def routine_only(the_plan: Plan) -> Plan:
    """Only the routine part of a plan: manifest and CRL renewals and scheduled re-issues of unchanged
    objects. They change no VRP and trip no gate, so a scheduled job can keep the tree valid while a
    gated change waits for its approval (a CA that stops renewing for a day takes its children down).

    A manifest and CRL that change only because of objects left waiting are left too: re-signing them
    over the same files on every scheduled run would only churn manifest numbers."""
    kept = [c for c in the_plan.changes if c.routine]
    moving = {c.ca for c in kept if c.kind not in (Kind.MANIFEST, Kind.CRL)}
    return dataclasses.replace(
        the_plan,
        changes=tuple(c for c in kept if not c.follows or c.ca in moving),
        vrps_added=frozenset(),
        vrps_removed=frozenset(),
        gates=(),
        route_changes=None,
    )


def plan_document(
    workspace: Workspace,
    the_plan: Plan,
    *,
    announcements: Announcements | None = None,
    base: str | None = None,
) -> PlanDocument:
    """The plan as its versioned document, with the Git commit and, given ``base``, the intent diff; under
    an external parent or at a remote repository, with what was last observed of them (kept state only:
    no peer is contacted)."""
    repo = workspace.desired.root
    info = git_info(repo)
    intent = None
    if base is not None:
        intent = [
            IntentDoc(
                kind=c.kind,
                ca=c.ca,
                summary=c.summary,
                where=str(c.where) if c.where else None,
                revision=c.revision,
            )
            for c in intent_changes(repo, base)
        ]
    return document.build(
        the_plan,
        workspace.desired,
        workspace.published,
        tool_version=tool_version(),
        git_commit=info.commit if info else None,
        git_dirty=info.dirty if info else None,
        announcements=announcements.meta if announcements else None,
        intent=intent,
        base=base,
        source=workspace.source,
        # read elsewhere (``--published``): the exchanges are kept on the CA machine, not here
        kept=plan_upstream.observe(workspace.desired) if workspace.local else plan_upstream.Observed(),
        refused=refusals.read(refusals.path(workspace.desired)) if workspace.local else None,
    )


def apply(
    workspace: Workspace,
    the_plan: Plan,
    now: datetime | None = None,
    *,
    held: lock.Lock | None = None,
    progress: Progress | None = None,
) -> ApplyResult | None:
    """Sign and publish what the plan lists; None when the plan is empty (nothing is signed or written).

    ``now`` is the signing time when it differs from the time the plan was computed for (a saved plan
    applied later): the changes are the plan's, the validity periods start now. ``held``: the
    publication lock, checked before each irreversible step (see :func:`publish_all`); ``progress``
    says how far the publication got when this raises.
    """
    if the_plan.empty:
        return None
    if now is not None:
        the_plan = dataclasses.replace(the_plan, now=now)
    result = _only_layout(execute(the_plan, workspace.desired, workspace.published, workspace.signers))
    result = _without_damage(result, workspace.published)
    foreign = publishers.carried(workspace.published, the_plan.changes)
    if len(foreign) != len(workspace.published.foreign):  # a removed publisher's objects are withdrawn
        gone = set(workspace.published.foreign) - set(foreign)
        result = dataclasses.replace(result, removed=tuple(sorted({*result.removed, *gone})))
    with Removals() as removals:  # old rsync trees go while RRDP and the memo are written
        if result.written or result.removed or any(c.kind is Kind.RRDP for c in the_plan.changes):
            rrdp_did = publish_all(
                workspace, result.files, the_plan.now, removals, held=held, progress=progress, foreign=foreign
            )
            result = dataclasses.replace(result, rrdp=rrdp_did)
        remember_signed(workspace, result)
    destroy_retired_keys(workspace, the_plan)
    directory = workspace.desired.publication.directory
    # a first apply loaded the YAML before the directory and the keys existed
    parse_cache.save_waiting(directory, cache_secret(workspace))
    if result.deferred:
        request = offline_request(workspace, the_plan, result.deferred)
        pending = ceremony.keep_or_write(directory, request, the_plan.now)
        result = dataclasses.replace(result, request=str(pending.path))
    elif ceremony.pending_path(directory).exists():
        ceremony.pending_path(directory).unlink()  # nothing waits for the trust anchor any more
    return result


def _only_layout(result: ApplyResult) -> ApplyResult:
    """The new tree without what no layout puts there: every object is ``<ta>.cer`` or
    ``<ca>/<name>``, so a file deeper down (junk in a CA's sub-directory, the inside of a directory
    named like an object) was planted, and is never carried into a new tree."""
    planted = [path for path in result.files if path.count("/") > 1]
    if not planted:
        return result
    files = {path: data for path, data in result.files.items() if path.count("/") <= 1}
    return dataclasses.replace(result, files=files, removed=tuple(sorted({*result.removed, *planted})))


def _without_damage(result: ApplyResult, published: PublishedState) -> ApplyResult:
    """The new tree leaves out every entry the publication point should not hold (a planted link, FIFO
    or directory, see ``PublishedState.damage``), so that they count as removed and the tree is
    published even when nothing else changed: damage at the top of the tree is under no CA's
    manifest, and would otherwise stay served."""
    if not published.damage:
        return result
    removed = {*result.removed, *(path.rstrip("/") for path in published.damage)}
    return dataclasses.replace(result, removed=tuple(sorted(removed)))


def apply_recorded(
    workspace: Workspace,
    the_plan: Plan,
    doc: AuditedPlan,
    approvals: list[Approval],
    *,
    now: datetime,
    signing_time: datetime | None = None,
    held: lock.Lock | None = None,
    reason: str | None = None,
) -> ApplyResult:
    """:func:`apply` between audit records: "started" before anything is signed (an apply killed
    half-way then shows as interrupted), then "applied", "failed" or "refused" with the reason. ``doc``:
    what the records say of the plan (:meth:`AuditedPlan.of` its document, which the caller can then let
    go). ``held``: the publication lock (see :func:`publish_all`); a stale lock it broke on its way in is
    named in the records and in the result's warnings. ``reason``: why the operator applies (a change or
    incident ticket), checked by :func:`audit.check_reason` and kept in every record.

    ``now`` is the time the command works at (its ``--now``), and the signing time unless
    ``signing_time`` says otherwise (a saved plan signed later). Each record's own ``time`` is the system
    clock's when it is written -- when the apply really started and ended -- and ``plan_time`` and
    ``signing_time`` beside it say which time the plan and the signatures were made for: with
    ``--simulate-time`` they are far apart, and neither passes for the other.

    Raises the signer's or publisher's error after recording it when nothing was published; ``LockLost``
    or ``TreeMovedError`` after recording the apply as refused (it lost its lock, or another apply
    published after it read the publication point); and :class:`AuditedApplyError` -- saying what is
    published -- for any failure after the rsync swap, or of the audit log itself; on Ctrl-C,
    :class:`ApplyInterrupted` saying the same."""
    log_path = workspace.desired.audit_log_path
    context = RecordContext(the_plan.now, signing_time or now, audit.check_reason(reason))
    warnings = [broken_lock_warning(b) for b in held.broken] if held is not None else []
    started = audit.append(
        log_path,
        audit_record(doc, approvals, status="started", message="; ".join(warnings), context=context),
        now=clock.now(),
    )
    warnings += started.notes
    progress = Progress()
    rrdp_configured = workspace.desired.publication.rrdp_base is not None

    def outcome(status: str, message: str) -> dict[str, Any]:
        return audit_record(doc, approvals, status=status, message=message, context=context)

    try:
        faults.point("audit.started")
        result = apply(workspace, the_plan, now=context.signing_time, held=held, progress=progress)
    except (lock.LockLost, TreeMovedError) as exc:
        if progress.rsync is not None:
            message = (
                f"the rsync tree is published (trees/{progress.rsync.name}), but then {exc}; RRDP was not "
                "written by this apply: the apply that took the lock over publishes it"
            )
            _record_failure(log_path, outcome("failed", message), message=message, cause=exc)
        message = f"refused: {exc}; nothing was published by this apply"
        _record(log_path, outcome("refused", message), message)
        raise
    except Exception as exc:
        if progress.rsync is None:
            message = f"{exc}; {progress.state(rrdp_configured)}"
            _record(log_path, outcome("failed", message), message)
            raise
        message = _after_swap(progress, rrdp_configured, exc)
        _record_failure(log_path, outcome("failed", message), message=message, cause=exc)
    except KeyboardInterrupt as exc:  # Ctrl-C: what is served now, in the log and for the operator
        message = f"interrupted: {progress.state(rrdp_configured)}"
        _record(log_path, outcome("failed", message), message)
        raise ApplyInterrupted(message) from exc
    if result is None:
        raise ValueError("apply_recorded needs a plan with changes")
    result = dataclasses.replace(result, warnings=(*result.warnings, *warnings))
    faults.point("audit.before-applied")
    record = audit_record(
        doc, approvals, status="applied", result=result, message="; ".join(warnings), context=context
    )
    try:
        audit.append(log_path, record, now=clock.now())
    except (audit.AuditError, OSError) as exc:
        raise AuditedApplyError(
            f"{progress.state(rrdp_configured)}, but the audit record could not be written to {log_path}: "
            f"{exc} (the log shows this apply as interrupted)"
        ) from exc
    return result


def broken_lock_warning(broken: lock.BrokenLock) -> str:
    """A stale lock broken on the way in, loudly: its holder may still be running."""
    return (
        f"warning: a stale lock was broken: {broken.describe()}. If that apply is still running, it finds "
        "its lock gone and publishes nothing"
    )


def _after_swap(progress: Progress, rrdp_configured: bool, exc: BaseException) -> str:
    return f"{progress.state(rrdp_configured)}; {exc} (fix it, then run apply again)"


def _record(log_path: Path, record: dict[str, Any], message: str) -> None:
    """Append an outcome record (stamped with the system clock); when even that fails, say both what
    happened and that."""
    try:
        audit.append(log_path, record, now=clock.now())
    except (audit.AuditError, OSError) as exc:
        raise AuditedApplyError(
            f"{message}; and the audit record could not be written to {log_path}: {exc} "
            "(the log shows this apply as interrupted)"
        ) from exc


def _record_failure(
    log_path: Path, record: dict[str, Any], *, message: str, cause: BaseException
) -> NoReturn:
    _record(log_path, record, message)
    raise AuditedApplyError(message) from cause


def offline_request(workspace: Workspace, the_plan: Plan, deferred: tuple[Change, ...]) -> SigningRequest:
    info = git_info(workspace.desired.root)
    return ceremony.build_request(
        the_plan,
        deferred,
        workspace.desired,
        workspace.published,
        workspace.signers,
        git_commit=info.commit if info else None,
    )


@dataclass(frozen=True, slots=True)
class Imported:
    request_id: str
    key_id: str  # the trust anchor's key, hex
    files: int  # files signed offline
    written: tuple[str, ...]
    removed: tuple[str, ...]


def import_signed(
    workspace: Workspace,
    response_path: Path,
    now: datetime,
    *,
    expect_key: str | None = None,
    held: lock.Lock | None = None,
) -> Imported:
    """Verify the offline trust anchor's response against the waiting request -- which must still be
    what the plan asks of the trust anchor -- and publish it; the request is then consumed, so the same
    response cannot be imported again."""
    response = read_response(response_path)
    directory = workspace.desired.publication.directory
    pending = ceremony.read_pending(directory)
    if pending is not None:
        ta = workspace.desired.trust_anchor.name
        current = plan(workspace, now)
        deferred = tuple(c for c in current.changes if c.ca == ta)
        if (
            not deferred
            or offline_request(workspace, current, deferred).body_digest != pending[0].body_digest
        ):
            raise CeremonyError(
                "the waiting request is no longer what the plan asks of the trust anchor (the desired state "
                "or the publication point changed since it was written): run 'rpkictl apply' for a new one"
            )
    tree = ceremony.import_response(response, pending, workspace.published, now, expect_key=expect_key)
    progress = Progress()
    try:
        publish_all(workspace, tree, now, held=held, progress=progress)
    except Exception as exc:
        if progress.rsync is None:
            raise
        rrdp_configured = workspace.desired.publication.rrdp_base is not None
        raise AuditedApplyError(_after_swap(progress, rrdp_configured, exc)) from exc
    ceremony.pending_path(directory).unlink()
    old = workspace.published.files
    written = tuple(sorted(p for p, d in tree.items() if old.get(p) != d))
    removed = tuple(sorted(set(old) - set(tree)))
    return Imported(response.request_id, response.key_id, len(response.files), written, removed)


def destroy_retired_keys(workspace: Workspace, the_plan: Plan) -> None:
    """Destroy the keys a finished key roll retired -- only after the publication that no longer uses
    them is out, so that a failed publish never leaves objects whose key is gone."""
    for change in the_plan.changes:
        if change.action is Action.DESTROY_KEY and change.generation is not None:
            ca = workspace.desired.ca(change.ca)
            signer = workspace.signers[ca.signer]
            key = signer.find_key(layout.key_label(ca.name, change.generation))
            if key is not None:
                faults.point("keys.destroy")
                signer.destroy_key(key)


@dataclass(frozen=True, slots=True)
class AuditedPlan:
    """What the audit log keeps of a plan document. The document itself need not live through the apply:
    a registry's first plan document (some 200,000 changes, each with its before and after) is a few
    hundred megabytes, held beside everything the apply signs.

    ``git_dirty``: the desired state had uncommitted changes on top of ``git_commit`` (None outside Git),
    so the commit alone does not say what was applied; the record must say so."""

    git_commit: str | None
    desired_digest: str
    plan_id: str
    summary: str
    changes: tuple[str, ...]
    git_dirty: bool | None = None

    @classmethod
    def of(cls, doc: PlanDocument) -> AuditedPlan:
        return cls(
            doc.desired.git_commit,
            doc.desired.digest,
            doc.plan_id,
            doc.summary.text,
            tuple(f"{c.action} {c.address}" for c in doc.changes),
            doc.desired.git_dirty,
        )


@dataclass(frozen=True, slots=True)
class RecordContext:
    """What the audit log keeps of an apply beyond its plan: the times the plan and the signatures were
    made for (the record's own time is the system clock's), and the operator's reason."""

    plan_time: datetime
    signing_time: datetime
    reason: str | None = None


def audit_record(
    doc: AuditedPlan,
    approvals: list[Approval],
    *,
    status: str,
    result: ApplyResult | None = None,
    message: str = "",
    context: RecordContext | None = None,
) -> dict[str, Any]:
    """What the audit log keeps of an apply: who, which commit (and whether the desired state had
    uncommitted changes on top of it), which plan, approvals, what changed, for which time, and why."""
    record: dict[str, Any] = {
        "who": audit.who(),
        "status": status,
        "git_commit": doc.git_commit,
        "git_dirty": doc.git_dirty,
        "desired_digest": doc.desired_digest,
        "plan_id": doc.plan_id,
        "approvals": [{"gate": a.gate_id, "hash": a.hash_prefix, "how": a.how} for a in approvals],
        "summary": doc.summary,
        "changes": list(doc.changes),
        "signatures": result.signed if result else 0,
        "message": message,
    }
    if context is not None:
        record["plan_time"] = audit.stamp(context.plan_time)
        record["signing_time"] = audit.stamp(context.signing_time)
        record["reason"] = context.reason
    return record


DEFAULT_WARN = timedelta(hours=4)
DEFAULT_CRITICAL = timedelta(hours=1)


def status(
    workspace: Workspace,
    now: datetime,
    *,
    warn: timedelta = DEFAULT_WARN,
    critical: timedelta = DEFAULT_CRITICAL,
) -> StatusReport:
    """Each CA's resources, key, objects' expiry and renewal, drift and problems; the last apply.

    ``check`` is this report's verdict: the same findings, so a dashboard and an alert never disagree."""
    from reconciler.status.collect import collect as collect_status  # noqa: PLC0415 - see TYPE_CHECKING

    keys = workspace.plan_keys()
    the_plan = plan(workspace, now, keys=keys)
    info = git_info(workspace.desired.root)
    pending = ceremony.pending_path(workspace.desired.publication.directory)
    waiting = workspace.local and pending.exists()
    return collect_status(
        workspace.desired,
        workspace.published,
        the_plan,
        keys,
        now=now,
        warn=warn,
        critical=critical,
        tool_version=tool_version(),
        git_commit=info.commit if info else None,
        signing_request=str(pending) if waiting else None,
    )


def findings(report: StatusReport) -> list[Finding]:
    """Every problem of a status report, as ``rpkictl check`` lists them."""
    from reconciler.health import Finding  # noqa: PLC0415 - see TYPE_CHECKING

    found = []
    for ca, problem in report.every_problem():
        # a problem of no single CA carries what it is about in its message: "(rrdp): ..."
        about, message = (ca, problem.message)
        if not ca:
            about, _, message = problem.message.partition(": ")
        found.append(Finding(Severity(problem.severity), about, message))
    return found


def check(
    workspace: Workspace,
    now: datetime,
    *,
    warn: timedelta = DEFAULT_WARN,
    critical: timedelta = DEFAULT_CRITICAL,
) -> list[Finding]:
    """Everything ``rpkictl check`` reports: expiring objects, drift, and the plan's warnings."""
    return findings(status(workspace, now, warn=warn, critical=critical))


def trust_anchor_locator(workspace: Workspace) -> str:
    """RFC 8630 TAL of the trust anchor: the key of its published, self-signed certificate (what relying
    parties will find at the TAL's URI), so no signer is needed. Before anything is published, the key
    the signer holds, when it can be opened here."""
    ta = workspace.desired.trust_anchor
    if ta.upstream is not None:
        raise SignerError(
            f"{ta.name} is certified by parent {ta.upstream.response.parent_handle}: relying parties start "
            "from that registry's trust anchor locator (TAL), which the registry publishes; there is no TAL "
            "of ours"
        )
    path = layout.certificate_path(ta)
    uri = layout.uri(workspace.desired.publication.rsync_base, path)
    if path in workspace.published.files:
        cert = workspace.published.certificate(path)
        if not (
            isinstance(cert, rc.ResourceCertificate)
            and cert.authority_key_id in (None, cert.key_id)
            and rc.verify_signed_by(cert.cert, cert.public_key)
        ):
            raise SignerError(
                f"the published {path} is not a valid self-signed certificate, so it names no trust anchor "
                "key (fix: run 'rpkictl plan' to see why, then 'rpkictl apply' on the CA machine)"
            )
        return tal.encode((uri,), cert.public_key)
    signer = workspace.signers.get(ta.signer)
    key = signer.find_key(ta.name) if signer is not None else None
    if signer is None or key is None:
        raise SignerError(f"the trust anchor {ta.name!r} has no key yet (fix: run 'rpkictl apply' first)")
    return tal.encode((uri,), signer.public_key(key))
