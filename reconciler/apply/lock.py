"""A lease lock on the publication point, so that two ``rpkictl apply`` runs never publish at once.

Two applies racing would each sign against the same published state and the second swap would silently
throw away the first one's objects (and reuse its manifest and CRL numbers). The lock is a JSON file,
``<directory>/.rpkictl.lock``, saying who holds it, for what, and until when::

    with lock.acquire(publication, who=audit.who(), operation="apply", plan_id=plan.id,
                      timeout=timedelta(seconds=30)) as held:
        ...                    # sign
        held.ensure_held()     # just before the irreversible step (the swap of ``rsync``)
        ...                    # publish

Why a lease in a file rather than only ``flock`` on it: the file is readable by people and other tools
(``rpkictl`` can say *who* holds it, since when, for which plan, and how to clear it), and it works the
same for a holder in another container. The price is that a crashed holder leaves the file behind, so:

* the holder's daemon heartbeat thread pushes ``expires`` forward (now + lease) every lease/4, and a
  waiter may break a lock whose ``expires`` has passed (a holder that is frozen or gone for a whole
  lease is treated as gone; hosts' clocks must agree to well within the lease, two minutes by default);
* a waiter on the same host (and the same PID namespace, so containers sharing a host name do not
  confuse each other) may break at once a lock whose process no longer exists.

Race safety:

* the file is created complete (written and fsynced under a temporary name, then hard-linked to the
  lock name, which fails if the lock exists), so nobody ever reads a half-written lock and exactly one
  creator wins;
* every other change to the lock file (heartbeat, release, breaking a stale lock, force-unlock) is
  "read it, check it is the lock we think, change it" done while holding ``flock`` on a separate,
  never-deleted ``<directory>/.rpkictl.lock.guard``. The guard is held for microseconds and the kernel
  drops it if its holder dies, so it cannot go stale itself. Without it, a waiter that judged lock A
  stale could remove lock B that another waiter created in between, and a late heartbeat could overwrite
  the lock of the process that legitimately broke ours.

Readers (``current``, waiters) need no guard: every write is an atomic link or rename.

A lock file that cannot be parsed (edited by hand, a disk error) is treated as *held by someone
unknown*: it never expires by itself, since nothing in it can be trusted. Its ``LockInfo.id`` is
``"corrupt-"`` followed by 16 hex digits of the SHA-256 of the file's bytes, so ``force_unlock`` with that
ID removes exactly that file and nothing written after it.

The lease times come from ``now``, which must be the real clock (the default): a ``--now`` override used
to replay months of renewals would make every lock look expired, or eternal, to other processes.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import os
import secrets
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from reconciler import clock

LOCK_NAME = ".rpkictl.lock"
GUARD_NAME = ".rpkictl.lock.guard"
DEFAULT_LEASE = timedelta(minutes=2)
LEASE_ENV = "RPKICTL_LOCK_LEASE"
POLL_SECONDS = 0.2
GUARD_WAIT_SECONDS = 5.0
CORRUPT_PREFIX = "corrupt-"
FORMAT_VERSION = 1
_NEVER = datetime.max.replace(tzinfo=UTC)
_SHORT_PLAN_ID = 12


class LockError(Exception):
    """The lock could not be taken, checked or removed; the message says why and what to do."""


class LockHeld(LockError):  # noqa: N818 - the name says the state the caller handles
    """Someone else holds the lock and did not let go within the timeout."""

    def __init__(self, holder: LockInfo) -> None:
        super().__init__(f"the publication point is locked: {holder.describe()}")
        self.holder = holder


class GuardBusyError(LockError):
    """The guard around the lock file is held by a process that does not let go of it (frozen)."""


class LockLost(LockError):  # noqa: N818 - like LockHeld
    """Our lock was broken by someone else (we were frozen or unreachable for a whole lease)."""


@dataclass(frozen=True, slots=True)
class LockInfo:
    """What the lock file says: enough for a person to decide whether the holder is really gone."""

    id: str  # random hex nonce; what force-unlock asks for
    who: str
    operation: str  # "apply", ...
    plan_id: str | None
    host: str
    pid: int
    created: datetime
    expires: datetime
    pid_namespace: str | None = None  # /proc/self/ns/pid, so a PID is only judged within its namespace
    problem: str | None = None  # set when the file could not be parsed; the other fields are then unknown

    @property
    def corrupt(self) -> bool:
        return self.problem is not None

    def describe(self) -> str:
        """One line for a person: who holds it, since when, for what, and how to clear it if it is stale."""
        if self.problem is not None:
            return (
                f"{self.summary()}; check that no rpkictl is running on this publication point, then run: "
                f"rpkictl force-unlock {self.id}"
            )
        return f"{self.summary()}; if that process is gone, run: rpkictl force-unlock {self.id}"

    def summary(self) -> str:
        """Who, since when, for what, and the lock ID, without the advice."""
        if self.problem is not None:
            return (
                f"the lock file {LOCK_NAME} cannot be read ({self.problem}), so its holder is unknown "
                f"(lock ID {self.id})"
            )
        holder = self.who if self.who.endswith(f"@{self.host}") else f"{self.who} on {self.host}"
        what = self.operation
        if self.plan_id:
            plan = self.plan_id
            if len(plan) > _SHORT_PLAN_ID + 4:
                plan = plan[:_SHORT_PLAN_ID] + "…"
            what = f"{what} of plan {plan}"
        return f"held by {holder} (pid {self.pid}) since {_iso(self.created)}, {what}, lock ID {self.id}"

    def to_json(self) -> bytes:
        """The lock file's content."""
        data = {
            "version": FORMAT_VERSION,
            "id": self.id,
            "who": self.who,
            "operation": self.operation,
            "plan_id": self.plan_id,
            "host": self.host,
            "pid": self.pid,
            "pid_namespace": self.pid_namespace,
            "created": _iso(self.created),
            "expires": _iso(self.expires),
        }
        return (json.dumps(data, indent=2, ensure_ascii=False) + "\n").encode()

    @classmethod
    def from_json(cls, data: bytes) -> LockInfo:
        """Parse a lock file strictly; ``ValueError`` says what is wrong with it."""
        try:
            obj = json.loads(data)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ValueError(f"not JSON: {exc}") from exc
        if not isinstance(obj, dict):
            raise ValueError("not a JSON object")
        if obj.get("version") != FORMAT_VERSION:
            raise ValueError(f"unknown format version {obj.get('version')!r}")
        plan_id = obj.get("plan_id")
        pid_namespace = obj.get("pid_namespace")
        pid = obj.get("pid")
        if not isinstance(pid, int) or isinstance(pid, bool):
            raise ValueError("pid is not an integer")
        if plan_id is not None and not isinstance(plan_id, str):
            raise ValueError("plan_id is not a string")
        if pid_namespace is not None and not isinstance(pid_namespace, str):
            raise ValueError("pid_namespace is not a string")
        lock_id = _text(obj, "id")
        if not lock_id:
            raise ValueError("id is empty")
        return cls(
            id=lock_id,
            who=_text(obj, "who"),
            operation=_text(obj, "operation"),
            plan_id=plan_id,
            host=_text(obj, "host"),
            pid=pid,
            created=_time(obj, "created"),
            expires=_time(obj, "expires"),
            pid_namespace=pid_namespace,
        )


@dataclass(frozen=True, slots=True)
class BrokenLock:
    """A stale lock that ``acquire`` removed on its way in; worth a warning from the caller."""

    info: LockInfo
    reason: str  # "its lease expired at ..." / "process 123 on host no longer exists"

    def describe(self) -> str:
        return f"removed a stale lock ({self.reason}): {self.info.summary()}"


class Lock:
    """A lock we hold. Use as a context manager; the heartbeat runs until ``release``."""

    def __init__(
        self,
        directory: Path,
        info: LockInfo,
        now: Callable[[], datetime],
        lease: timedelta,
        broken: tuple[BrokenLock, ...] = (),
    ) -> None:
        self.directory = directory
        self.path = directory / LOCK_NAME
        self.broken = broken
        self._info = info
        self._now = now
        self._lease = lease
        self._lost = False
        self._released = False
        self._stop = threading.Event()
        self.heartbeat_error: OSError | None = None  # the last failed refresh, if the disk misbehaves
        self._thread = threading.Thread(target=self._beat, name=f"rpkictl-lock-{info.id[:8]}", daemon=True)
        self._thread.start()

    @property
    def info(self) -> LockInfo:
        """The lock as last written by us (``expires`` moves on with each heartbeat)."""
        return self._info

    @property
    def id(self) -> str:
        return self._info.id

    @property
    def lost(self) -> bool:
        """True once we found the lock file no longer ours (broken as stale, or force-unlocked)."""
        return self._lost

    def refresh(self) -> None:
        """Push ``expires`` to now + lease (the heartbeat does this every lease/4); ``LockLost`` if the file
        is no longer ours, in which case it is left alone."""
        start = self._now()
        info = replace(self._info, expires=start + self._lease)
        tmp = _temp_name(self.path)
        try:
            _write_synced(tmp, info.to_json())  # outside the guard: it is held only for the swap
            with _guard(self.directory):
                self._check_ours()
                tmp.replace(self.path)
        finally:
            tmp.unlink(missing_ok=True)
        self._info = info

    def ensure_held(self) -> None:
        """Raise ``LockLost`` unless the lock file still carries our ID. Call it just before an
        irreversible step: the heartbeat keeps the lock, but a process frozen for a whole lease loses it."""
        self._check_ours()

    @contextlib.contextmanager
    def fence(self) -> Iterator[None]:
        """Hold the guard, check that the lock is still ours (``LockLost`` otherwise), and let the
        caller do its irreversible step (the swap of ``rsync``, the rename of the RRDP notification)
        inside. Nobody can break the lock while the guard is held, so a holder frozen between the check
        and the step -- or one whose clock made its lease look expired to everyone else -- can never
        publish after another apply took the lock over."""
        with _guard(self.directory):
            self._check_ours()
            yield

    def release(self) -> bool:
        """Stop the heartbeat and remove the lock file if it is still ours. Returns False when it was not
        (we had lost it; someone else's lock is left in place). Safe to call twice."""
        if self._released:
            return not self._lost
        self._released = True
        self._stop.set()
        if self._thread is not threading.current_thread():
            self._thread.join()
        with _guard(self.directory):
            current = _read(self.path)
            if current is None or current.id != self.id:
                self._lost = True
                return False
            self.path.unlink(missing_ok=True)
        return True

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release()

    def _check_ours(self) -> None:
        current = _read(self.path)
        if current is None or current.id != self.id:
            self._lost = True
            taken = "it was removed" if current is None else f"it is now {current.describe()}"
            raise LockLost(
                f"lost the publication lock on {self.directory} (ours was {self.id}; a lock is broken as "
                f"stale when its holder is frozen for a whole lease or its clock is behind): {taken}"
            )

    def _beat(self) -> None:
        interval = self._lease.total_seconds() / 4
        while not self._stop.wait(interval):
            try:
                self.refresh()
            except LockLost:
                return  # nothing left to keep alive; the owner finds out from ``lost``/``ensure_held``
            except OSError as exc:
                self.heartbeat_error = exc  # retry next beat: three more chances before the lease ends
            except GuardBusyError:
                continue  # someone frozen inside the guard: retry next beat


def acquire(
    directory: Path,
    *,
    who: str,
    operation: str,
    plan_id: str | None,
    timeout: timedelta,
    now: Callable[[], datetime] = clock.now,
    lease: timedelta | None = None,
) -> Lock:
    """Take the lock on ``directory`` (created if missing), waiting up to ``timeout`` (0: one try),
    looking again every 0.2 s.

    Stale locks (lease expired, or holder process gone on this host) are broken on the way; they are
    listed in ``Lock.broken`` so the caller can say so. Raises ``LockHeld`` naming the holder.
    ``now`` must be the real, timezone-aware clock (see the module docstring); tests inject their own.
    Call ``Lock.ensure_held()`` just before an irreversible step.
    """
    lease = configured_lease() if lease is None else lease
    if lease <= timedelta(0):
        raise ValueError(f"the lease must be positive, not {lease}")
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / LOCK_NAME
    lock_id = secrets.token_hex(16)
    deadline = time.monotonic() + max(timeout.total_seconds(), 0.0)
    broken: list[BrokenLock] = []
    while True:
        start = now()
        mine = LockInfo(
            id=lock_id,
            who=who,
            operation=operation,
            plan_id=plan_id,
            host=socket.gethostname(),
            pid=os.getpid(),
            created=start,
            expires=start + lease,
            pid_namespace=_pid_namespace(),
        )
        if _create_exclusive(path, mine):
            holder = _read(path)
            if holder is not None and holder.id == lock_id:  # ours, unless broken already (absurd clocks)
                return Lock(directory, mine, now, lease, tuple(broken))
            continue
        holder = _read(path)
        if holder is None:
            continue  # released between our try and our look: try again at once
        reason = _stale_reason(holder, now())
        if reason is not None and _break(directory, holder, now):
            broken.append(BrokenLock(holder, reason))
            continue
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise LockHeld(holder)
        time.sleep(min(POLL_SECONDS, remaining))


def configured_lease() -> timedelta:
    """The lease: ``RPKICTL_LOCK_LEASE`` seconds when set (a host whose applies may freeze for longer
    than two minutes wants a longer one; a test a shorter one), else ``DEFAULT_LEASE``."""
    value = os.environ.get(LEASE_ENV, "").strip()
    if not value:
        return DEFAULT_LEASE
    try:
        seconds = float(value)
    except ValueError:
        raise LockError(f"{LEASE_ENV}={value!r} is not a number of seconds (unset it: 120)") from None
    if not 0 < seconds < 86400:
        raise LockError(f"{LEASE_ENV}={value!r} must be more than 0 and less than a day of seconds")
    return timedelta(seconds=seconds)


def current(directory: Path) -> LockInfo | None:
    """The lock on ``directory`` now, or None. A corrupt file is returned with ``problem`` set."""
    return _read(directory / LOCK_NAME)


def force_unlock(directory: Path, lock_id: str) -> LockInfo:
    """Remove the lock if (and only if) its ID is ``lock_id``; return what it said.

    Asking for the ID makes the operator look at the lock first, and guarantees that a lock taken by a
    new run after they looked is not the one removed.
    """
    lock_id = lock_id.strip()
    path = directory / LOCK_NAME
    if _read(path) is None:
        raise LockError(f"there is no lock on {directory}: nothing to unlock")
    with _guard(directory):
        held = _read(path)
        if held is None:
            raise LockError(f"there is no lock on {directory} any more: nothing to unlock")
        if held.id != lock_id:
            raise LockError(
                f"not unlocking {directory}: the lock there has ID {held.id}, not {lock_id}. "
                f"It is {held.describe()}"
            )
        path.unlink()
        return held


def _stale_reason(info: LockInfo, now: datetime) -> str | None:
    """Why ``info`` may be broken, or None if it must be respected."""
    if info.corrupt:
        return None
    if info.expires <= now:
        return f"its lease expired at {_iso(info.expires)}"
    same_host = info.host == socket.gethostname() and info.pid_namespace == _pid_namespace()
    if same_host and not _process_exists(info.pid):
        return f"process {info.pid} on {info.host} no longer exists"
    return None


def _break(directory: Path, stale: LockInfo, now: Callable[[], datetime]) -> bool:
    """Remove ``stale`` if the file still is that lock and still stale. True if the lock name is free."""
    path = directory / LOCK_NAME
    try:
        with _guard(directory):
            held = _read(path)
            if held is None:
                return True
            if held.id != stale.id or _stale_reason(held, now()) is None:
                return False  # someone broke it and took the lock, or its holder came back to life
            path.unlink()
            return True
    except GuardBusyError:
        return False  # its holder froze inside the guard: not broken now, perhaps on a later look


def _process_exists(pid: int) -> bool:
    if pid <= 0:
        return True  # not a real process ID: cannot tell, so respect the lock
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by another user
    return True


def _pid_namespace() -> str | None:
    try:
        return str(Path("/proc/self/ns/pid").readlink())
    except OSError:
        return None


def _read(path: Path) -> LockInfo | None:
    """The lock at ``path``; None if there is none. Never raises for bad content: see ``LockInfo.problem``."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)  # never read a file elsewhere
    except FileNotFoundError:
        return None
    except OSError as exc:
        if exc.errno != errno.ELOOP:
            raise
        raise LockError(
            f"{path} is a symbolic link: a lock is a plain file of this directory; remove the link (and "
            "find out who put it there)"
        ) from None
    with os.fdopen(fd, "rb") as handle:
        data = handle.read()
        mtime = os.fstat(handle.fileno()).st_mtime
    try:
        return LockInfo.from_json(data)
    except ValueError as exc:
        return LockInfo(
            id=CORRUPT_PREFIX + hashlib.sha256(data).hexdigest()[:16],
            who="unknown",
            operation="unknown",
            plan_id=None,
            host="unknown",
            pid=0,
            created=datetime.fromtimestamp(mtime, UTC),
            expires=_NEVER,
            problem=str(exc) if data else "the file is empty",
        )


def _create_exclusive(path: Path, info: LockInfo) -> bool:
    """Create the lock file complete, or return False if a lock exists."""
    tmp = _temp_name(path)
    try:
        _write_synced(tmp, info.to_json())
        os.link(tmp, path)
    except FileExistsError:
        return False
    finally:
        tmp.unlink(missing_ok=True)
    return True


def _temp_name(path: Path) -> Path:
    return path.with_name(f"{path.name}.{os.getpid()}.{secrets.token_hex(6)}.tmp")


def _write_synced(path: Path, data: bytes) -> None:
    """Write a new file and fsync it: after a power cut the lock is whole or absent, never empty."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def _guard(directory: Path, wait: float = GUARD_WAIT_SECONDS) -> Iterator[None]:
    """Serialise check-then-change on the lock file (see the module docstring). The guard is held for
    microseconds, but a process can be frozen (SIGSTOP, a suspended VM) while it holds it; so it is
    waited for at most ``wait`` seconds, then ``GuardBusyError``: nobody ever hangs behind a frozen one."""
    path = directory / GUARD_NAME
    nofollow = os.O_NOFOLLOW | os.O_CLOEXEC  # a planted link must not make us create or lock a file elsewhere
    try:
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | nofollow, 0o664)
        except PermissionError:
            fd = os.open(path, os.O_RDONLY | nofollow)  # another user's: enough for flock on a local disk
    except OSError as exc:
        if exc.errno != errno.ELOOP:
            raise
        raise LockError(
            f"{path} is a symbolic link: the lock's guard must be a plain file of this directory; remove "
            "the link (and find out who put it there)"
        ) from None
    try:
        deadline = time.monotonic() + wait
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # the kernel drops it if we die
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise GuardBusyError(
                        f"{path} is held by a process that does not let go (frozen?): the lock cannot be "
                        "checked or changed now; try again, and look for a stopped rpkictl"
                    ) from None
                time.sleep(0.005)
        yield
    finally:
        os.close(fd)  # releases the flock


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _text(obj: dict[str, Any], key: str) -> str:
    value = obj.get(key)
    if not isinstance(value, str):
        raise ValueError(f"{key} is missing or not a string")
    return value


def _time(obj: dict[str, Any], key: str) -> datetime:
    value = _text(obj, key)
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise ValueError(f"{key} {value!r} is not an ISO-8601 time") from exc
    if parsed.tzinfo is None:
        raise ValueError(f"{key} {value!r} has no time zone")
    return parsed.astimezone(UTC)
