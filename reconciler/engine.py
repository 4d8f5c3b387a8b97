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
from typing import TYPE_CHECKING, Any

import reconciler
from reconciler import clock, faults, layout, published
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
from reconciler.plan.rollover import KeyIds, Phase
from reconciler.publish import rrdp
from reconciler.publish.rsync_tree import PublishError, Removals, publish
from reconciler.published import memo
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
    return workspace_for(load(repo))


def workspace_for(desired: DesiredState) -> Workspace:
    """Open the signers of a loaded desired state and read its publication point."""
    signers = open_signers(desired.signers, {ca.signer for ca in desired.cas})
    found = published.read(desired.publication.directory / "rsync")
    found.memo = memo.load(desired.publication.directory)
    ta = desired.trust_anchor
    offline = signers[ta.signer]
    if isinstance(offline, OfflineSigner):
        # The trust anchor's key is offline: what it is, online, is what its published certificate says.
        cert = found.certificate(layout.certificate_path(ta))
        if isinstance(cert, rc.ResourceCertificate) and cert.authority_key_id in (None, cert.key_id):
            offline.learn(ta.name, cert.public_key)
    return Workspace(desired, signers, found)


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
    the_plan = make_plan(workspace.desired, workspace.published, found, now, routes, hold=hold)
    notice = offline_notice(workspace, the_plan)
    if notice is not None:
        the_plan = dataclasses.replace(the_plan, notices=(*the_plan.notices, notice))
    behind = rrdp_drift(workspace)
    if behind is not None:
        the_plan = dataclasses.replace(the_plan, changes=(*the_plan.changes, behind))
    state = workspace.published
    memo.save(workspace.desired.publication.directory, state.memo, state.digests())
    return the_plan


def remember_signed(workspace: Workspace, result: ApplyResult) -> None:
    """Keep what the next plan checks of the objects just published, so that it need not decode them or
    check their signatures again: the ROAs' summaries, the other objects as decoding them finds them, and
    which CA key signed each (this process made those signatures)."""
    found = workspace.published
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
    )
    if matches:
        return None
    reason = f"{why}: republished in a new RRDP session (relying parties take the snapshot)"
    return Change(Action.RENEW, Kind.RRDP, "(rrdp)", "notification.xml", reason)


def publish_all(
    workspace: Workspace, files: dict[str, bytes], now: datetime, removals: Removals | None = None
) -> str | None:
    """The rsync tree (swapped atomically), then RRDP (snapshot and delta before the notification).
    Returns what RRDP did, for the operator. Old trees are removed by ``removals`` when given (see
    :class:`Removals`), before this returns otherwise."""
    publication = workspace.desired.publication
    publish(publication.directory, files, now, served=workspace.published.files, removals=removals)
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
    )
    if written is None:
        return None
    state = written.notification
    if written.new_session:
        return f"RRDP: new session {state.session_id} ({written.why or 'first publication'}), serial 1"
    return f"RRDP: serial {state.serial} (session {state.session_id}, {len(state.deltas)} deltas offered)"


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


def apply(workspace: Workspace, the_plan: Plan, now: datetime | None = None) -> ApplyResult | None:
    """Sign and publish what the plan lists; None when the plan is empty (nothing is signed or written).

    ``now`` is the signing time when it differs from the time the plan was computed for (a saved plan
    applied later): the changes are the plan's, the validity periods start now.
    """
    if the_plan.empty:
        return None
    if now is not None:
        the_plan = dataclasses.replace(the_plan, now=now)
    result = execute(the_plan, workspace.desired, workspace.published, workspace.signers)
    with Removals() as removals:  # old rsync trees go while RRDP and the memo are written
        if result.written or result.removed or any(c.kind is Kind.RRDP for c in the_plan.changes):
            rrdp_did = publish_all(workspace, result.files, the_plan.now, removals)
            result = dataclasses.replace(result, rrdp=rrdp_did)
        remember_signed(workspace, result)
    destroy_retired_keys(workspace, the_plan)
    directory = workspace.desired.publication.directory
    parse_cache.save_waiting(directory)  # a first apply loaded the YAML before the directory existed
    if result.deferred:
        request = offline_request(workspace, the_plan, result.deferred)
        pending = ceremony.keep_or_write(directory, request, the_plan.now)
        result = dataclasses.replace(result, request=str(pending.path))
    elif ceremony.pending_path(directory).exists():
        ceremony.pending_path(directory).unlink()  # nothing waits for the trust anchor any more
    return result


def apply_recorded(
    workspace: Workspace,
    the_plan: Plan,
    doc: AuditedPlan,
    approvals: list[Approval],
    *,
    now: datetime,
    signing_time: datetime | None = None,
) -> ApplyResult:
    """:func:`apply` between audit records: "started" before anything is signed (an apply killed
    half-way then shows as interrupted), then "applied" or "failed" with the reason. ``doc``: what the
    records say of the plan (:meth:`AuditedPlan.of` its document, which the caller can then let go).

    Raises the signer's or publisher's error after recording it; an RRDP failure after the rsync swap
    becomes :class:`AuditedApplyError` saying the rsync tree is out."""
    log_path = workspace.desired.audit_log_path
    audit.append(log_path, audit_record(doc, approvals, status="started"), now=now)
    faults.point("audit.started")
    try:
        result = apply(workspace, the_plan, now=signing_time)
    except (SignerError, PublishError) as exc:
        audit.append(log_path, audit_record(doc, approvals, status="failed", message=str(exc)), now=now)
        raise
    except rrdp.RrdpError as exc:
        message = f"the rsync tree is published, but RRDP is behind: {exc} (fix it, then run apply again)"
        audit.append(log_path, audit_record(doc, approvals, status="failed", message=message), now=now)
        raise AuditedApplyError(message) from exc
    if result is None:
        raise ValueError("apply_recorded needs a plan with changes")
    faults.point("audit.before-applied")
    try:
        audit.append(log_path, audit_record(doc, approvals, status="applied", result=result), now=now)
    except (audit.AuditError, OSError) as exc:
        raise AuditedApplyError(
            f"published, but the audit record could not be written to {log_path}: {exc}"
        ) from exc
    return result


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
    workspace: Workspace, response_path: Path, now: datetime, *, expect_key: str | None = None
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
    publish_all(workspace, tree, now)
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
        raise SignerError(f"the trust anchor {ta.name!r} has no key yet (fix: run 'rpkictl apply' first)")
    uri = layout.uri(workspace.desired.publication.rsync_base, layout.certificate_path(ta))
    return tal.encode((uri,), signer.public_key(key))
