"""``rpkictl reconcile``: plan and apply on a schedule, unattended.

What an unattended run may publish is what needs no person: the whole plan when it trips no gate
(scheduled renewals, drift repair, the merged desired state), and only the routine part -- manifest and
CRL renewals, scheduled re-issues -- when a gate waits for approval. Gated changes are reported, never
applied: a mass deletion must not go out at 3 a.m. because a timer fired, and the renewals that keep
every other CA valid must not stop because one change waits.

Failures back off (a wrong HSM PIN retried every minute can lock the token), and SIGTERM stops the loop
between cycles: an apply that has started finishes (it is crash-safe anyway, but there is no reason to
leave a run half done on a clean shutdown).
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from types import FrameType

from reconciler import clock, engine, faults
from reconciler.apply import audit, lock
from reconciler.desired import DesiredStateError
from reconciler.plan.model import Plan


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


def cycle(
    repo: Path,
    now: datetime,
    *,
    routine_only: bool = False,
    git_pull: bool = False,
    lock_timeout: timedelta = timedelta(minutes=1),
) -> CycleResult:
    """One plan-and-apply under the publication lock. Raises the operator errors ``apply`` raises."""
    notes = []
    if git_pull and (problem := pull(repo)) is not None:
        notes.append(problem)
    desired = engine.load_desired(repo)
    with lock.acquire(
        desired.publication.directory,
        who=audit.who(),
        operation="reconcile",
        plan_id=None,
        timeout=lock_timeout,
    ) as publication_lock:
        faults.point("lock.acquired")
        notes += [engine.broken_lock_warning(broken) for broken in publication_lock.broken]
        workspace = engine.workspace_for(desired)
        full, chosen = unattended_plan(workspace, now, routine_only=routine_only)
        held = len(full.changes) - len(chosen.changes)
        waiting = tuple(gate.id for gate in full.gates)
        if routine_only and held and not waiting:
            waiting = ("--routine-only",)
        if chosen.empty:
            return CycleResult(waiting=waiting, held=held, notes=tuple(notes))
        doc = engine.AuditedPlan.of(engine.plan_document(workspace, chosen))
        result = engine.apply_recorded(workspace, chosen, doc, [], now=now, held=publication_lock)
        notes += [w for w in result.warnings if w not in notes]
        return CycleResult(
            applied=len(chosen.changes),
            signed=result.signed,
            waiting=waiting,
            held=held,
            request=result.request,
            notes=tuple(notes),
        )


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
    now: Callable[[], datetime] = clock.now
    failures: int = 0
    _stopping: threading.Event = field(default_factory=threading.Event)

    def stop(self, signum: int | None = None, _frame: FrameType | None = None) -> None:
        if signum is not None:
            self.log(f"received {signal.Signals(signum).name}: stopping after the current cycle")
        self._stopping.set()

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
        except engine.OPERATOR_ERRORS as exc:
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
            f"({'routine renewals only' if self.routine_only else 'changes that need no approval'})"
        )
        while not self._stopping.is_set():
            self.once()
            if self._stopping.wait(self.delay().total_seconds()):
                break
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
