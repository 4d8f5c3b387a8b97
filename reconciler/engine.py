"""The library API behind ``rpkictl``: load, plan, document, apply, audit, TAL. The CLI only parses
options, talks to the operator and renders.

Every function takes the current time as an argument; none of them prints.
"""

from __future__ import annotations

import dataclasses
import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import reconciler
from reconciler import cachefile, clock, faults, layout, published
from reconciler.apply import audit, lock
from reconciler.apply.executor import ApplyResult, execute
from reconciler.desired import load, parse_cache
from reconciler.desired.model import DesiredState
from reconciler.offline import ceremony
from reconciler.offline.request import CeremonyError, SigningRequest, fingerprint, read_response
from reconciler.plan import document
from reconciler.plan.approval import Approval, ApprovalError
from reconciler.plan.diff import make_plan
from reconciler.plan.document import AnnouncementsDoc, IntentDoc, PlanDocument, PlanFormatError
from reconciler.plan.gitcontext import GitContextError, git_info, intent_changes
from reconciler.plan.impact import Announcement, AnnouncementsError, read_announcements
from reconciler.plan.model import Action, Change, Kind, Notice, Plan, Severity
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
from reconciler.rpki import cert as rc
from reconciler.rpki import tal
from reconciler.signers import OfflineSigner, Signer, SignerError, open_signers

if TYPE_CHECKING:  # status and monitoring load only for the commands that use them: plan starts faster
    from reconciler.health import Finding
    from reconciler.status.model import StatusReport


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
    OSError,
)


def tool_version() -> str:
    return reconciler.__version__


@dataclass(frozen=True, slots=True)
class Workspace:
    """A loaded desired state with its signers and the publication point as it is now."""

    desired: DesiredState
    signers: dict[str, Signer]
    published: PublishedState
    served: ServedTree | None = None  # the tree ``published`` was read from; an apply links from it only

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


def open_workspace(repo: Path) -> Workspace:
    """Load and check the YAML (raises DesiredStateError), open the signers, read the publication point."""
    return workspace_for(load_desired(repo))


def load_desired(repo: Path) -> DesiredState:
    """Load and check the YAML (raises DesiredStateError), taking the files seen before from the parse
    cache when the desired state's own key (the memo's: ``memo.secret_of``) confirms its seal. Without
    that key (a review without secrets, a signer that cannot be opened here) every file is parsed."""

    def cache_key(desired: DesiredState) -> bytes | None:
        try:
            return memo.secret_of(desired, open_signers(desired.signers, {ca.signer for ca in desired.cas}))
        except (SignerError, OSError):
            return None

    return load(repo, cache_key=cache_key)


def workspace_for(desired: DesiredState) -> Workspace:
    """Open the signers of a loaded desired state and read its publication point."""
    signers = open_signers(desired.signers, {ca.signer for ca in desired.cas})
    secret = memo.secret_of(desired, signers)
    served, found = _read_served(desired.publication.directory)
    found.memo = memo.load(desired.publication.directory, secret)
    ta = desired.trust_anchor
    offline = signers[ta.signer]
    if isinstance(offline, OfflineSigner):
        # The trust anchor's key is offline: what it is, online, is what its published certificate says.
        cert = found.certificate(layout.certificate_path(ta))
        if isinstance(cert, rc.ResourceCertificate) and cert.authority_key_id in (None, cert.key_id):
            offline.learn(ta.name, cert.public_key)
    return Workspace(desired, signers, found, served)


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

    @classmethod
    def read(cls, path: Path, min_peers: int = 0) -> Announcements:
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
        return cls(found.announcements, meta)


def plan(
    workspace: Workspace,
    now: datetime,
    announcements: Announcements | None = None,
    hold: frozenset[str] = frozenset(),
    keys: KeyIds | None = None,
) -> Plan:
    """``keys``: the signers' keys when the caller has looked them up already (each lookup may be a
    round trip to an HSM)."""
    routes = announcements.routes if announcements is not None else None
    found = keys if keys is not None else workspace.keys()
    refuse_lost_keys(workspace, found, now)
    the_plan = make_plan(workspace.desired, workspace.published, found, now, routes, hold=hold)
    notice = offline_notice(workspace, the_plan)
    if notice is not None:
        the_plan = dataclasses.replace(the_plan, notices=(*the_plan.notices, notice))
    behind = rrdp_drift(workspace)
    if behind is not None:
        the_plan = dataclasses.replace(the_plan, changes=(*the_plan.changes, behind))
    state = workspace.published
    memo.save(workspace.desired.publication.directory, state.memo, state.digests())
    dropped = [Notice("cache", Severity.INFO, "(cache)", why) for why in cachefile.dropped()]
    if dropped:
        the_plan = dataclasses.replace(the_plan, notices=(*the_plan.notices, *dropped))
    return the_plan


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
        return Change(Action.RENEW, Kind.RRDP, "(rrdp)", "notification.xml", reason)
    planted = rrdp.planted_entry(directory)
    if planted is not None:
        reason = f"{planted}, never made by apply: removed, and RRDP republished in a new session"
        return Change(Action.RENEW, Kind.RRDP, "(rrdp)", "notification.xml", reason)
    current = rrdp.read_notification(directory)
    found = workspace.published
    matches, why = rrdp.state_matches(
        current,
        found.files,
        publication.rsync_base,
        directory=directory,
        rrdp_base=publication.rrdp_base,
        digest_of=found.digest_of,
        tree=found.tree_digest(),
        secret=found.memo.secret,
    )
    if matches:
        return None
    reason = f"{why}: republished in a new RRDP session (relying parties take the snapshot)"
    return Change(Action.RENEW, Kind.RRDP, "(rrdp)", "notification.xml", reason)


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
) -> str | None:
    """The rsync tree (swapped atomically), then RRDP (snapshot and delta before the notification).
    Returns what RRDP did, for the operator. Old trees are removed by ``removals`` when given (see
    :class:`Removals`), before this returns otherwise.

    With ``held``, the publication lock: each irreversible step (the swap of ``rsync``, the rename of the
    notification) happens only while it is still ours, and the swap only while the tree served is still
    the one the workspace was read from. ``progress`` is kept up to date as each step is done."""
    publication = workspace.desired.publication
    progress = progress if progress is not None else Progress()

    def swapped(tree: Path) -> None:
        progress.rsync = tree

    publish(
        publication.directory,
        files,
        now,
        served=workspace.published.files,
        removals=removals,
        read_from=workspace.served,
        check_served=held is not None,
        fence=held.fence if held is not None else None,
        on_swap=swapped,
    )
    if publication.rrdp_base is None:
        return None
    old = workspace.published
    written = rrdp.publish_rrdp(
        publication.directory / "rrdp",
        publication.rrdp_base,
        publication.rsync_base,
        old.files,
        files,
        digest_of=old.digest_of,  # unchanged files were hashed when the tree was read
        old_tree=old.tree_digest(),
        fence=held.fence if held is not None else None,
        secret=cache_secret(workspace),
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
    signer = workspace.signers[workspace.desired.trust_anchor.signer]
    return signer if isinstance(signer, OfflineSigner) else None


def offline_notice(workspace: Workspace, the_plan: Plan) -> Notice | None:
    """The changes only the offline trust anchor can sign, and the request waiting for it, if any."""
    ta = workspace.desired.trust_anchor.name
    if offline_signer(workspace) is None:
        return None
    waiting = [c for c in the_plan.changes if c.ca == ta]
    if not waiting:
        return None
    message = f"{len(waiting)} change(s) need the offline trust anchor's signature"
    pending = ceremony.read_pending(workspace.desired.publication.directory)
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
    else:
        message += "; 'rpkictl apply' writes the signing request"
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
    """The plan as its versioned document, with the Git commit and, given ``base``, the intent diff."""
    repo = workspace.desired.root
    info = git_info(repo)
    intent = None
    if base is not None:
        intent = [
            IntentDoc(kind=c.kind, ca=c.ca, summary=c.summary, where=str(c.where) if c.where else None)
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
    with Removals() as removals:  # old rsync trees go while RRDP and the memo are written
        if result.written or result.removed or any(c.kind is Kind.RRDP for c in the_plan.changes):
            rrdp_did = publish_all(
                workspace, result.files, the_plan.now, removals, held=held, progress=progress
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
) -> ApplyResult:
    """:func:`apply` between audit records: "started" before anything is signed (an apply killed
    half-way then shows as interrupted), then "applied", "failed" or "refused" with the reason. ``doc``:
    what the records say of the plan (:meth:`AuditedPlan.of` its document, which the caller can then let
    go). ``held``: the publication lock (see :func:`publish_all`); a stale lock it broke on its way in is
    named in the records and in the result's warnings.

    Raises the signer's or publisher's error after recording it when nothing was published; ``LockLost``
    or ``TreeMovedError`` after recording the apply as refused (it lost its lock, or another apply
    published after it read the publication point); and :class:`AuditedApplyError` -- saying what is
    published -- for any failure after the rsync swap, or of the audit log itself."""
    log_path = workspace.desired.audit_log_path
    warnings = [broken_lock_warning(b) for b in held.broken] if held is not None else []
    started = audit.append(
        log_path, audit_record(doc, approvals, status="started", message="; ".join(warnings)), now=now
    )
    warnings += started.notes
    faults.point("audit.started")
    progress = Progress()
    rrdp_configured = workspace.desired.publication.rrdp_base is not None
    try:
        result = apply(workspace, the_plan, now=signing_time, held=held, progress=progress)
    except (lock.LockLost, TreeMovedError) as exc:
        if progress.rsync is not None:
            message = (
                f"the rsync tree is published (trees/{progress.rsync.name}), but then {exc}; RRDP was not "
                "written by this apply: the apply that took the lock over publishes it"
            )
            _record_failure(log_path, doc, approvals=approvals, now=now, message=message, cause=exc)
        message = f"refused: {exc}; nothing was published by this apply"
        _record(log_path, audit_record(doc, approvals, status="refused", message=message), now, message)
        raise
    except Exception as exc:
        if progress.rsync is None:
            message = f"{exc}; {progress.state(rrdp_configured)}"
            _record(log_path, audit_record(doc, approvals, status="failed", message=message), now, message)
            raise
        _record_failure(
            log_path,
            doc,
            approvals=approvals,
            now=now,
            message=_after_swap(progress, rrdp_configured, exc),
            cause=exc,
        )
    if result is None:
        raise ValueError("apply_recorded needs a plan with changes")
    result = dataclasses.replace(result, warnings=(*result.warnings, *warnings))
    faults.point("audit.before-applied")
    record = audit_record(doc, approvals, status="applied", result=result, message="; ".join(warnings))
    try:
        audit.append(log_path, record, now=now)
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


def _record(log_path: Path, record: dict[str, Any], now: datetime, message: str) -> None:
    """Append an outcome record; when even that fails, say both what happened and that."""
    try:
        audit.append(log_path, record, now=now)
    except (audit.AuditError, OSError) as exc:
        raise AuditedApplyError(
            f"{message}; and the audit record could not be written to {log_path}: {exc} "
            "(the log shows this apply as interrupted)"
        ) from exc


def _record_failure(
    log_path: Path,
    doc: AuditedPlan,
    *,
    approvals: list[Approval],
    now: datetime,
    message: str,
    cause: BaseException,
) -> NoReturn:
    _record(log_path, audit_record(doc, approvals, status="failed", message=message), now, message)
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
    hundred megabytes, held beside everything the apply signs."""

    git_commit: str | None
    desired_digest: str
    plan_id: str
    summary: str
    changes: tuple[str, ...]

    @classmethod
    def of(cls, doc: PlanDocument) -> AuditedPlan:
        return cls(
            doc.desired.git_commit,
            doc.desired.digest,
            doc.plan_id,
            doc.summary.text,
            tuple(f"{c.action} {c.address}" for c in doc.changes),
        )


def audit_record(
    doc: AuditedPlan,
    approvals: list[Approval],
    *,
    status: str,
    result: ApplyResult | None = None,
    message: str = "",
) -> dict[str, Any]:
    """What the audit log keeps of an apply: who, which commit, which plan, approvals, what changed."""
    return {
        "who": audit.who(),
        "status": status,
        "git_commit": doc.git_commit,
        "desired_digest": doc.desired_digest,
        "plan_id": doc.plan_id,
        "approvals": [{"gate": a.gate_id, "hash": a.hash_prefix, "how": a.how} for a in approvals],
        "summary": doc.summary,
        "changes": list(doc.changes),
        "signatures": result.signed if result else 0,
        "message": message,
    }


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

    keys = workspace.keys()
    the_plan = plan(workspace, now, keys=keys)
    info = git_info(workspace.desired.root)
    pending = ceremony.pending_path(workspace.desired.publication.directory)
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
        signing_request=str(pending) if pending.exists() else None,
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
    """RFC 8630 TAL of the trust anchor; its key must exist (created by the first apply)."""
    ta = workspace.desired.trust_anchor
    signer = workspace.signers[ta.signer]
    key = signer.find_key(ta.name)
    if key is None:
        lost = lost_keys(workspace.desired, workspace.published, {}, clock.now())
        if lost and lost[0].ca.name == ta.name:
            raise missing_key_error(lost[:1], workspace.signers)
        raise SignerError(f"the trust anchor {ta.name!r} has no key yet (fix: run 'rpkictl apply' first)")
    uri = layout.uri(workspace.desired.publication.rsync_base, layout.certificate_path(ta))
    return tal.encode((uri,), signer.public_key(key))
