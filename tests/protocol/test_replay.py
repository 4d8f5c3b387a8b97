"""The replay guard: a message is accepted only when signed after the last one accepted from the same
peer, the record survives restarts, damage is reported and never reset, and concurrent writers (threads
and processes) never lose each other's updates."""

from __future__ import annotations

import contextlib
import json
import multiprocessing
import threading
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from reconciler.protocol.errors import CmsError, ProtocolError, ReplayError
from reconciler.protocol.replay import ReplayGuard

T0 = datetime(2026, 12, 7, 12, 0, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def test_equal_or_older_is_refused_newer_accepted(tmp_path: Path) -> None:
    guard = ReplayGuard(tmp_path / "replay.json")
    guard.check("child:acme", at(0))  # nothing accepted yet
    guard.accept("child:acme", at(0))
    for stale in (at(0), at(-1), at(0.9)):  # signing times have whole seconds: 12:00:00.9 is 12:00:00
        with pytest.raises(ReplayError) as refused:
            guard.check("child:acme", stale)
        assert str(refused.value).startswith(
            "message signed at 2026-12-07T1"
        ) and "not after the last one accepted from child:acme at 2026-12-07T12:00:00Z" in str(refused.value)
        with pytest.raises(ReplayError):
            guard.accept("child:acme", stale)
    guard.check("child:acme", at(1))
    guard.accept("child:acme", at(1))
    assert guard.last("child:acme") == at(1)
    assert isinstance(ReplayError("x"), CmsError)  # callers that handle CMS refusals handle this one


def test_peers_are_independent(tmp_path: Path) -> None:
    guard = ReplayGuard(tmp_path / "replay.json")
    guard.accept("child:acme", at(10))
    guard.check("child:other", at(0))
    guard.accept("publisher:acme", at(5))
    assert guard.last("child:acme") == at(10) and guard.last("publisher:acme") == at(5)
    assert guard.last("child:other") is None


def test_survives_a_new_instance(tmp_path: Path) -> None:
    path = tmp_path / "state" / "replay.json"  # the directory is made when first needed
    ReplayGuard(path).accept("parent:rir", at(100))
    again = ReplayGuard(path)
    with pytest.raises(ReplayError, match="2026-12-07T12:01:40Z"):
        again.check("parent:rir", at(100))
    document = json.loads(path.read_text())
    assert document == {"format": 1, "last_signing_time": {"parent:rir": "2026-12-07T12:01:40Z"}}
    assert sorted(p.name for p in path.parent.iterdir()) == ["replay.json", "replay.json.lock"]  # no temp


def test_offset_times_are_compared_in_utc(tmp_path: Path) -> None:
    guard = ReplayGuard(tmp_path / "replay.json")
    guard.accept("p", at(0))
    plus_two = timezone(timedelta(hours=2))
    with pytest.raises(ReplayError, match="signed at 2026-12-07T12:00:00Z"):
        guard.check("p", datetime(2026, 12, 7, 14, 0, 0, tzinfo=plus_two))
    guard.check("p", datetime(2026, 12, 7, 14, 0, 1, tzinfo=plus_two))
    with pytest.raises(ValueError, match="timezone-aware"):
        guard.check("p", datetime(2026, 12, 7, 13))  # naive: refused


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        ("", "not JSON"),
        ("{not json", "not JSON"),
        ("[]", "not a format 1 object"),
        ('{"format": 2, "last_signing_time": {}}', "not a format 1 object"),
        ('{"format": 1}', "no 'last_signing_time' object"),
        ('{"format": 1, "last_signing_time": {"p": "yesterday"}}', "the time of peer 'p' is not a UTC time"),
        ('{"format": 1, "last_signing_time": {"p": "2026-12-07T12:00:00"}}', "not a UTC time"),
        ('{"format": 1, "last_signing_time": {"p": 5}}', "not a UTC time"),
    ],
)
def test_a_damaged_file_is_an_error_naming_it_not_a_reset(tmp_path: Path, content: str, reason: str) -> None:
    path = tmp_path / "replay.json"
    path.write_text(content)
    guard = ReplayGuard(path)
    for attempt in (guard.check, guard.accept):
        with pytest.raises(ProtocolError) as refused:
            attempt("p", at(0))
        assert not isinstance(refused.value, ReplayError)
        assert str(refused.value).startswith(f"{path}: the replay-protection file is damaged (")
        assert reason in str(refused.value) and "restore it from a backup" in str(refused.value)
    assert path.read_text() == content  # left as found, for the operator to look at


def test_an_unreadable_file_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "replay.json").mkdir()
    with pytest.raises(ProtocolError, match=r"cannot read the replay-protection file .*replay\.json"):
        ReplayGuard(tmp_path / "replay.json").check("p", at(0))


def test_threads_do_not_lose_updates(tmp_path: Path) -> None:
    guard = ReplayGuard(tmp_path / "replay.json")
    errors: list[BaseException] = []

    def work(thread: int) -> None:
        try:
            for n in range(10):
                guard.accept(f"peer-{thread}-{n}", at(n))
        except BaseException as exc:  # reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(json.loads((tmp_path / "replay.json").read_text())["last_signing_time"]) == 60


def _process(path: str, worker: int, rounds: int) -> None:
    """One process: its own peers, and a peer shared with every other process."""
    guard = ReplayGuard(Path(path))
    for n in range(rounds):
        guard.accept(f"own-{worker}-{n}", at(n))
        # Refused when another process accepted a later time first: never written over.
        with contextlib.suppress(ReplayError):
            guard.accept("shared", at(worker * 1000 + n))


def test_processes_do_not_lose_updates(tmp_path: Path) -> None:
    path = tmp_path / "replay.json"
    context = multiprocessing.get_context("spawn")
    workers, rounds = 4, 15
    processes = [context.Process(target=_process, args=(str(path), w, rounds)) for w in range(workers)]
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=120)
    assert [p.exitcode for p in processes] == [0] * workers
    times = json.loads(path.read_text())["last_signing_time"]
    assert {f"own-{w}-{n}" for w in range(workers) for n in range(rounds)} <= set(times)
    assert len(times) == workers * rounds + 1
    # The shared peer holds the latest time any process accepted, never an earlier one written later.
    assert times["shared"] == f"{at((workers - 1) * 1000 + rounds - 1):%Y-%m-%dT%H:%M:%SZ}"


def test_a_link_planted_as_the_lock_file_is_not_followed(tmp_path: Path) -> None:
    """The lock beside the record is never a way to create or lock a file elsewhere."""
    elsewhere = tmp_path / "elsewhere"
    guard = ReplayGuard(tmp_path / "state" / "replay.json")
    (tmp_path / "state").mkdir()
    (tmp_path / "state" / "replay.json.lock").symlink_to(elsewhere)
    with pytest.raises(OSError):
        guard.accept("parent:x", datetime(2026, 1, 1, tzinfo=UTC))
    assert not elsewhere.exists()
