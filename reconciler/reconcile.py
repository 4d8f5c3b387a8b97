"""``rpkictl reconcile``: plan and apply on a schedule, unattended.

What an unattended run may publish is what needs no person: the whole plan when it trips no gate
(scheduled renewals, drift repair, the merged desired state), and only the routine part -- manifest and
CRL renewals, scheduled re-issues -- when a gate waits for approval. Gated changes are reported, never
applied: a mass deletion must not go out at 3 a.m. because a timer fired, and the renewals that keep
every other CA valid must not stop because one change waits.

What it applies is what was committed: the desired state as Git's ``HEAD`` holds it (after ``--pull``,
the merged state). An edit in the checkout that nobody committed -- and so nobody reviewed -- is reported
on every cycle and left alone, while ``HEAD`` keeps being applied, renewals included: the edit is not
published, and the tree does not expire while someone finishes it. A desired state outside Git has no
committed state to tell an edit from, so the loop refuses it unless told to apply the files as they are
(``allow_uncommitted``).

Failures back off (a wrong HSM PIN retried every minute can lock the token), and SIGTERM stops the loop
between cycles: an apply that has started finishes (it is crash-safe anyway, but there is no reason to
leave a run half done on a clean shutdown).
"""

from __future__ import annotations

import dataclasses
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from types import FrameType

from reconciler import clock, engine, faults
from reconciler.apply import audit, lock
from reconciler.apply.executor import ApplyResult
from reconciler.desired import DesiredStateError
from reconciler.desired.model import DesiredState
from reconciler.plan import gitcontext
from reconciler.plan.model import Plan

_STOP_POLL = 0.1
"""Seconds between two looks at a stop request while the loop waits."""


class UncommittedError(Exception):
    """The desired state has no committed state to apply (it is not in Git, or nothing is committed), and
    the loop was not told to apply the files as they are."""


_CYCLE_ERRORS: tuple[type[Exception], ...] = (*engine.OPERATOR_ERRORS, UncommittedError)


@dataclass(frozen=True, slots=True)
class CycleResult:
    """What one cycle did, for one log line."""

    applied: int = 0  # changes published
    signed: int = 0
    waiting: tuple[str, ...] = ()  # gates (rule@CA) whose changes were left for a reviewed apply
    held: int = 0  # changes not applied because a gate waits
    request: str | None = None  # a signing request waiting for the offline trust anchor
    notes: tuple[str, ...] = ()  # warnings that did not stop the cycle (a failed git pull)

    def describe(self) -> str:
        parts = [
            f"applied {self.applied} change(s), {self.signed} signature(s)"
            if self.applied
            else "nothing to apply"
        ]
        if self.waiting:
            parts.append(
                f"{self.held} change(s) wait for approval ({', '.join(self.waiting)}): "
                "run 'rpkictl plan' and apply them with their approval tokens"
            )
        if self.request:
            parts.append(f"signing request waiting for the offline trust anchor: {self.request}")
        parts.extend(self.notes)
        return "; ".join(parts)


def unattended_plan(workspace: engine.Workspace, now: datetime, *, routine_only: bool) -> tuple[Plan, Plan]:
    """(the full plan, what an unattended run applies of it)."""
    full = engine.plan(workspace, now)
    if routine_only or full.gates:
        return full, engine.routine_plan(workspace, now, full=full)
    return full, full


def pull(repo: Path) -> str | None:
    """Fast-forward the desired-state checkout from its upstream; a warning when that fails (the cycle
    goes on with the checkout as it is: renewals matter more than being current)."""
    import git  # noqa: PLC0415 - gitpython loads only where it is used: rpkictl starts faster

    try:
        checkout = git.Repo(repo, search_parent_directories=True)
        checkout.git.pull("--ff-only", "--quiet")
    except (git.GitError, OSError) as exc:
        detail = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
        return f"warning: git pull --ff-only failed, using the checkout as it is ({detail})"
    return None


@dataclass(frozen=True, slots=True)
class Source:
    """The desired state a cycle applies, and what the audit record says of it."""

    desired: DesiredState
    commit: str | None  # None outside Git
    dirty: bool | None  # uncommitted changes are part of what is applied (only with allow_uncommitted)
    note: str | None = None  # what was left out, or that uncommitted changes are applied


def committed_state(repo: Path, *, allow_uncommitted: bool = False) -> Source:
    """The desired state as committed in ``HEAD``; uncommitted changes to its files are named in the
    note and left out. With ``allow_uncommitted``, the files as they are (a desired state outside Git
    needs it). Raises :class:`UncommittedError` when there is nothing committed to apply, and the loader's
    or :class:`gitcontext.GitContextError` when HEAD's desired state does not load."""
    files = gitcontext.uncommitted_files(repo)
    info = gitcontext.git_info(repo) if files is not None else None
    if files is None or info is None:
        if allow_uncommitted:
            return Source(engine.load_desired(repo), None, None)
        where = Path(repo).resolve()
        if files is None:
            raise UncommittedError(
                f"{where} is not in a Git checkout, so the reconcile loop cannot tell a reviewed desired "
                "state from an edit in progress (fix: keep it in Git, where the loop applies the committed "
                "HEAD; or pass --allow-uncommitted to apply the files as they are)"
            )
        raise UncommittedError(
            f"nothing is committed yet in the Git checkout of {where} (fix: commit the desired state; or "
            "pass --allow-uncommitted to apply the files as they are)"
        )
    if not files:
        desired = engine.load_desired(repo)  # the checkout is HEAD: the parse cache serves it
        if gitcontext.git_info(repo) == info:  # same commit, still clean: nothing moved while it loaded
            return Source(desired, info.commit, False)
        files = gitcontext.uncommitted_files(repo) or ()  # an edit or a commit meanwhile: look again
    listed = ", ".join(files[:5]) + (f" and {len(files) - 5} more" if len(files) > 5 else "")
    if allow_uncommitted:
        info = gitcontext.git_info(repo) or info
        note = None
        if files:
            note = (
                f"warning: applying uncommitted changes in {listed} on top of {info.commit[:12]} "
                "(--allow-uncommitted)"
            )
        return Source(engine.load_desired(repo), info.commit, bool(files), note)
    committed = gitcontext.load_committed(repo)
    note = None
    if files:
        note = (
            f"uncommitted changes in {listed}: not applied (commit them, or revert them); applying the "
            f"committed HEAD {committed.commit[:12]}"
        )
    return Source(committed.desired, committed.commit, False, note)


def cycle(
    repo: Path,
    now: datetime,
    *,
    routine_only: bool = False,
    git_pull: bool = False,
    lock_timeout: timedelta = timedelta(minutes=1),
    allow_uncommitted: bool = False,
) -> CycleResult:
    """One plan-and-apply of the committed desired state (:func:`committed_state`) under the
    publication lock. Raises the operator errors ``apply`` raises, and :class:`UncommittedError`."""
    notes = []
    if git_pull and (problem := pull(repo)) is not None:
        notes.append(problem)
    source = committed_state(repo, allow_uncommitted=allow_uncommitted)
    if source.note is not None:
        notes.append(source.note)
    desired = source.desired
    with lock.acquire(
        desired.publication.directory,
        who=audit.who(),
        operation="reconcile",
        plan_id=None,
        timeout=lock_timeout,
    ) as publication_lock:
        faults.point("lock.acquired")
        notes += [engine.broken_lock_warning(broken) for broken in publication_lock.broken]
        signers = engine.signers_for(desired)
        notes += engine.contact_parent(desired, signers, now, always=False)
        workspace = engine.workspace_for(desired, signers)
        full, chosen = unattended_plan(workspace, now, routine_only=routine_only)
        held = len(full.changes) - len(chosen.changes)
        waiting = tuple(gate.id for gate in full.gates)
        if routine_only and held and not waiting:
            waiting = ("--routine-only",)
        if chosen.empty:
            notes += _published_remotely(workspace, now, quiet=True)
            notes += engine.finish_parent_roll(workspace, full, now)
            return CycleResult(waiting=waiting, held=held, notes=tuple(notes))
        doc = dataclasses.replace(
            engine.AuditedPlan.of(engine.plan_document(workspace, chosen)),
            git_commit=source.commit,
            git_dirty=source.dirty,
        )
        result = engine.apply_recorded(workspace, chosen, doc, [], now=now, held=publication_lock)
        notes += [w for w in result.warnings if w not in notes]
        notes += _published_remotely(workspace, now, quiet=False, result=result)
        notes += engine.finish_parent_roll(workspace, chosen, now)
        return CycleResult(
            applied=len(chosen.changes),
            signed=result.signed,
            waiting=waiting,
            held=held,
            request=result.request,
            notes=tuple(notes),
        )


def _published_remotely(
    workspace: engine.Workspace, now: datetime, *, quiet: bool, result: ApplyResult | None = None
) -> list[str]:
    """What a cycle says of the remote repository (nothing when local): ``quiet``, only when it had to
    be sent something although nothing was signed -- it had lost objects."""
    synced = engine.publish_remote(workspace, now, result)
    remote = workspace.desired.publication.remote
    if synced is None or remote is None or (quiet and not synced.sent):
        return []
    return [synced.describe(remote.response.service_uri)]


@dataclass
class Loop:
    """Cycles every ``interval``; after ``n`` failures in a row waits ``interval * 2**(n-1)``, at most
    ``max_backoff``. ``stop()`` (SIGTERM, SIGINT) ends the wait at once and the loop after the cycle."""

    repo: Path
    interval: timedelta
    max_backoff: timedelta
    log: Callable[[str], None]
    routine_only: bool = False
    git_pull: bool = False
    allow_uncommitted: bool = False
    now: Callable[[], datetime] = clock.now
    failures: int = 0
    _stop_signal: int | None = field(default=None, repr=False)

    def stop(self, signum: int | None = None, _frame: FrameType | None = None) -> None:
        """Ask the loop to stop once the current cycle or wait is over.

        As a signal handler it runs between any two bytecodes of the main thread -- half-way through
        writing a log line, or holding a lock it is about to release -- so it only records the request:
        it neither writes nor takes a lock. The loop says it received the signal when it sees it."""
        self._stop_signal = signum if signum is not None else 0

    @property
    def stopping(self) -> bool:
        return self._stop_signal is not None

    def _wait(self, delay: timedelta) -> None:
        """Sleep ``delay``, waking within a tenth of a second of :meth:`stop`."""
        deadline = time.monotonic() + delay.total_seconds()
        while not self.stopping:
            left = deadline - time.monotonic()
            if left <= 0:
                return
            time.sleep(min(left, _STOP_POLL))

    def delay(self) -> timedelta:
        if not self.failures:
            return self.interval
        return min(self.max_backoff, self.interval * (1 << min(self.failures - 1, 30)))

    def once(self) -> bool:
        """One cycle, logged; True when it succeeded."""
        try:
            result = cycle(
                self.repo,
                self.now(),
                routine_only=self.routine_only,
                git_pull=self.git_pull,
                lock_timeout=min(self.interval, timedelta(minutes=1)),
                allow_uncommitted=self.allow_uncommitted,
            )
        except lock.LockHeld as exc:
            self.log(f"skipped: {exc} (the next cycle tries again)")
            return True
        except DesiredStateError as exc:
            first = exc.diagnostics[0] if exc.diagnostics else exc
            self.failures += 1
            self.log(
                f"error: {len(exc.diagnostics)} problem(s) in the desired state, first: {first}; "
                f"nothing was signed; retrying in {_human(self.delay())} (failure {self.failures})"
            )
            return False
        except _CYCLE_ERRORS as exc:
            self.failures += 1
            self.log(f"error: {exc}; retrying in {_human(self.delay())} (failure {self.failures})")
            return False
        if self.failures:
            self.log(f"recovered after {self.failures} failure(s)")
        self.failures = 0
        self.log(result.describe())
        return True

    def run(self) -> None:
        self.log(
            f"reconciling {self.repo} every {_human(self.interval)} "
            f"({'routine renewals only' if self.routine_only else 'changes that need no approval'}, "
            f"{'the files as they are' if self.allow_uncommitted else 'as committed in Git'})"
        )
        while not self.stopping:
            self.once()
            self._wait(self.delay())
        if self._stop_signal:
            self.log(f"received {signal.Signals(self._stop_signal).name}: stopped after the current cycle")
        self.log("stopped")


def install_signal_handlers(loop: Loop) -> None:
    signal.signal(signal.SIGTERM, loop.stop)
    signal.signal(signal.SIGINT, loop.stop)


def _human(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    for unit, size in (("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"
