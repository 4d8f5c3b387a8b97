"""The publication lock: one holder at a time, stale locks broken safely, a clear message otherwise."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from reconciler import clock
from reconciler.apply import lock
from reconciler.apply.lock import LockError, LockHeld, LockInfo, LockLost, acquire, current, force_unlock

ROOT = Path(__file__).resolve().parents[2]
T0 = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
NO_WAIT = timedelta(0)


class Clock:
    """A settable clock, to make a lease pass without waiting for it."""

    def __init__(self, start: datetime = T0) -> None:
        self.value = start

    def __call__(self) -> datetime:
        return self.value


def take(
    directory: Path,
    who: str = "alice@laptop",
    *,
    timeout: timedelta = NO_WAIT,
    now: Callable[[], datetime] = clock.now,
    lease: timedelta = lock.DEFAULT_LEASE,
) -> lock.Lock:
    plan_id = "3f2c" + "0" * 60
    return acquire(
        directory, who=who, operation="apply", plan_id=plan_id, timeout=timeout, now=now, lease=lease
    )


def run_python(script: str, *args: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-c", textwrap.dedent(script), *args], env=env)


def test_acquire_writes_the_lock_and_release_removes_it(tmp_path: Path) -> None:
    directory = tmp_path / "pub" / "new"  # does not exist yet
    with take(directory) as held:
        info = current(directory)
        assert info is not None and info.id == held.id
        assert info.who == "alice@laptop" and info.pid == os.getpid() and info.host == socket.gethostname()
        assert info.expires - info.created == lock.DEFAULT_LEASE
        assert len(held.id) == 32 and int(held.id, 16) >= 0
    assert current(directory) is None
    assert not (directory / lock.LOCK_NAME).exists()
    assert [p.name for p in directory.iterdir() if p.name.endswith(".tmp")] == []


def test_second_acquire_without_waiting_names_the_holder(tmp_path: Path) -> None:
    with take(tmp_path) as held:
        with pytest.raises(LockHeld) as caught:
            take(tmp_path, who="bob@desk")
        holder = caught.value.holder
        assert holder.id == held.id
        message = str(caught.value)
        assert "held by alice@laptop on " + socket.gethostname() in message
        assert f"(pid {os.getpid()})" in message
        assert "apply of plan 3f2c00000000…" in message
        assert f"lock ID {held.id}" in message
        assert f"run: rpkictl force-unlock {held.id}" in message
    take(tmp_path).release()  # free again


def test_describe_does_not_repeat_the_host(tmp_path: Path) -> None:
    host = socket.gethostname()
    with take(tmp_path, who=f"alice@{host}") as held:
        assert held.info.describe().startswith(f"held by alice@{host} (pid {os.getpid()}) since ")


def test_a_waiter_gets_the_lock_when_the_holder_releases(tmp_path: Path) -> None:
    first = take(tmp_path)
    releaser = threading.Timer(0.5, first.release)
    releaser.start()
    started = time.monotonic()
    try:
        with take(tmp_path, who="bob@desk", timeout=timedelta(seconds=10)) as second:
            waited = time.monotonic() - started
            assert 0.4 < waited < 3
            info = current(tmp_path)
            assert info is not None and info.id == second.id and info.who == "bob@desk"
    finally:
        releaser.join()


def test_a_waiter_gives_up_after_its_timeout(tmp_path: Path) -> None:
    with take(tmp_path):
        started = time.monotonic()
        with pytest.raises(LockHeld):
            take(tmp_path, timeout=timedelta(seconds=0.5))
        assert 0.45 < time.monotonic() - started < 2


def test_an_expired_lease_is_broken_and_the_old_holder_notices(tmp_path: Path) -> None:
    clock = Clock()
    stuck = take(tmp_path, now=clock)  # its heartbeat would only beat in 30 s: as good as frozen
    clock.value = T0 + timedelta(minutes=1)
    with pytest.raises(LockHeld):
        take(tmp_path, who="bob@desk", now=clock)  # within the lease: respected
    clock.value = T0 + lock.DEFAULT_LEASE + timedelta(seconds=1)
    with take(tmp_path, who="bob@desk", now=clock) as bob:
        [broken] = bob.broken
        assert broken.info.id == stuck.id
        assert "lease expired at 2026-11-23T12:02:00Z" in broken.describe()
        with pytest.raises(LockLost, match="held by bob@desk"):
            stuck.ensure_held()
        assert stuck.release() is False  # does not remove bob's lock
        assert stuck.lost
        info = current(tmp_path)
        assert info is not None and info.id == bob.id
    assert current(tmp_path) is None


def test_the_heartbeat_keeps_a_short_lease_alive(tmp_path: Path) -> None:
    lease = timedelta(seconds=0.4)
    with take(tmp_path, lease=lease) as held:
        first_expiry = held.info.expires
        # A waiter that would break an expired lease keeps finding it renewed (beats every 0.1 s).
        with pytest.raises(LockHeld):
            take(tmp_path, who="bob@desk", timeout=timedelta(seconds=1), lease=lease)
        info = current(tmp_path)
        assert info is not None and info.id == held.id and info.expires > first_expiry
        assert held.heartbeat_error is None
    assert current(tmp_path) is None


def test_the_heartbeat_stops_on_release(tmp_path: Path) -> None:
    held = take(tmp_path, lease=timedelta(seconds=0.2))
    held.release()
    time.sleep(0.2)
    assert current(tmp_path) is None  # no late heartbeat recreated it
    assert held.release() is True  # idempotent


def test_a_lock_left_by_a_crashed_process_is_broken_at_once(tmp_path: Path) -> None:
    crashed = run_python(
        """
        import os, sys
        from datetime import timedelta
        from pathlib import Path
        from reconciler.apply.lock import acquire
        acquire(Path(sys.argv[1]), who="cron", operation="apply", plan_id=None, timeout=timedelta(0))
        os._exit(0)  # dies holding the lock: no release
        """,
        str(tmp_path),
    )
    assert crashed.wait(timeout=30) == 0
    left = current(tmp_path)
    assert left is not None and left.pid == crashed.pid and left.expires > datetime.now(UTC)
    with take(tmp_path) as held:  # no waiting: the lease has not expired, the process is gone
        [broken] = held.broken
        assert broken.info.id == left.id
        assert f"process {crashed.pid} on {socket.gethostname()} no longer exists" in broken.reason


def dead_pid() -> int:
    """The PID of a process that has exited and been reaped (so ``kill(pid, 0)`` finds nothing)."""
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    assert process.wait(timeout=30) == 0
    return process.pid


def write_lock(directory: Path, info: LockInfo) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / lock.LOCK_NAME).write_bytes(info.to_json())


def template(directory: Path) -> LockInfo:
    """A real lock's info (this host, this PID namespace), to edit into a hand-made lock file."""
    with take(directory, who="carol@box") as held:
        return held.info


def test_a_dead_pid_on_this_host_is_broken(tmp_path: Path) -> None:
    stale = replace(
        template(tmp_path), id="ab" * 16, pid=dead_pid(), expires=datetime.now(UTC) + timedelta(hours=1)
    )
    write_lock(tmp_path, stale)
    with take(tmp_path) as held:
        assert [b.info.id for b in held.broken] == [stale.id]


def test_a_dead_pid_on_another_host_waits_for_the_lease(tmp_path: Path) -> None:
    far = replace(
        template(tmp_path),
        id="cd" * 16,
        host="elsewhere.example",
        pid=dead_pid(),
        expires=datetime.now(UTC) + timedelta(hours=1),
    )
    write_lock(tmp_path, far)
    with pytest.raises(LockHeld) as caught:
        take(tmp_path)
    assert caught.value.holder.id == far.id
    assert "on elsewhere.example" in str(caught.value)


def test_a_live_pid_is_respected(tmp_path: Path) -> None:
    parent = replace(template(tmp_path), id="ef" * 16, pid=os.getppid())
    write_lock(tmp_path, replace(parent, expires=datetime.now(UTC) + timedelta(hours=1)))
    with pytest.raises(LockHeld):
        take(tmp_path)


def test_force_unlock_needs_the_right_id(tmp_path: Path) -> None:
    with pytest.raises(LockError, match="there is no lock"):
        force_unlock(tmp_path, "0" * 32)
    held = take(tmp_path)
    with pytest.raises(LockError, match=f"the lock there has ID {held.id}, not {'0' * 32}"):
        force_unlock(tmp_path, "0" * 32)
    assert current(tmp_path) is not None
    removed = force_unlock(tmp_path, f" {held.id}\n")
    assert removed.id == held.id and removed.who == "alice@laptop"
    assert current(tmp_path) is None
    with pytest.raises(LockLost, match="it was removed"):
        held.ensure_held()
    assert held.release() is False


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (b"{garbage", "not JSON"),
        (b"", "the file is empty"),
        (b'{"version": 1, "id": "x"}', "pid is not an integer"),
        (b"[1, 2]", "not a JSON object"),
    ],
)
def test_a_corrupt_lock_is_held_by_someone_unknown(tmp_path: Path, content: bytes, problem: str) -> None:
    (tmp_path / lock.LOCK_NAME).write_bytes(content)
    with pytest.raises(LockHeld) as caught:
        take(tmp_path, timeout=timedelta(seconds=0.3), now=Clock(T0 + timedelta(days=3650)))
    holder = caught.value.holder
    assert holder.corrupt and holder.id.startswith(lock.CORRUPT_PREFIX) and len(holder.id) == 24
    message = str(caught.value)
    assert problem in message and "holder is unknown" in message
    advice = "check that no rpkictl is running on this publication point, then run: rpkictl force-unlock"
    assert f"{advice} {holder.id}" in message
    assert current(tmp_path) == holder
    force_unlock(tmp_path, holder.id)
    take(tmp_path).release()


def test_force_unlock_of_a_corrupt_lock_refuses_if_the_file_changed(tmp_path: Path) -> None:
    (tmp_path / lock.LOCK_NAME).write_bytes(b"{garbage")
    seen = current(tmp_path)
    assert seen is not None
    (tmp_path / lock.LOCK_NAME).write_bytes(b"{other garbage")
    with pytest.raises(LockError, match="not unlocking"):
        force_unlock(tmp_path, seen.id)


RACER = """
    import random, sys, time
    from datetime import timedelta
    from pathlib import Path
    from reconciler.apply.lock import acquire

    directory, name = Path(sys.argv[1]), sys.argv[2]
    shared = directory / "shared.txt"
    for i in range(50):
        with acquire(directory, who=name, operation="test", plan_id=None, timeout=timedelta(seconds=60)):
            with shared.open("a") as out:
                out.write(f"start {name} {i}\\n")
            time.sleep(0.001)
            with shared.open("a") as out:
                out.write(f"end {name} {i}\\n")
        time.sleep(random.uniform(0, 0.004))
"""


def test_two_processes_never_hold_it_together(tmp_path: Path) -> None:
    started = time.monotonic()
    racers = [run_python(RACER, str(tmp_path), name) for name in ("a", "b")]
    assert [racer.wait(timeout=60) for racer in racers] == [0, 0]
    lines = (tmp_path / "shared.txt").read_text().splitlines()
    assert len(lines) == 200
    for start, end in zip(lines[::2], lines[1::2], strict=True):
        assert start.startswith("start ") and end == "end " + start.removeprefix("start ")
    assert current(tmp_path) is None
    assert time.monotonic() - started < 30


@pytest.mark.parametrize("name", [lock.GUARD_NAME, lock.LOCK_NAME])
def test_a_planted_link_is_refused_and_its_target_untouched(tmp_path: Path, name: str) -> None:
    """A link put where the guard or the lock belongs (a publication directory others can write to)
    must not make us create, lock or read a file elsewhere: the error names the link."""
    directory = tmp_path / "published"
    directory.mkdir()
    target = tmp_path / "elsewhere"
    (directory / name).symlink_to(target)

    def use() -> None:
        if name == lock.GUARD_NAME:  # taken to check and change a lock that is there
            with lock._guard(directory):
                pass
        else:
            acquire(directory, who="alice", operation="apply", plan_id=None, timeout=timedelta(0))

    with pytest.raises(LockError, match="is a symbolic link"):
        use()
    assert not target.exists()
    target.write_text('{"id": "secret"}')
    with pytest.raises(LockError, match="is a symbolic link"):
        use()
    assert target.read_text() == '{"id": "secret"}'
