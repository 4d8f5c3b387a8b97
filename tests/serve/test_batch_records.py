"""What the publication server writes once per batch: the signing times of all its messages (replay
protection) and the audit records of all it published, each in one write, with the same meaning as one
write per message."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from reconciler.apply import audit
from reconciler.protocol.errors import ReplayError
from reconciler.protocol.replay import ReplayGuard
from tests.helpers import T0


def test_signing_times_of_a_batch_are_checked_in_order_and_written_once(tmp_path: Path) -> None:
    guard = ReplayGuard(tmp_path / "replay.json")
    guard.accept("publisher:a", T0)
    found = guard.accept_all(
        [
            ("publisher:a", T0),  # the message accepted before, again
            ("publisher:b", T0 + timedelta(seconds=2)),
            ("publisher:b", T0 + timedelta(seconds=1)),  # older than the one before it in the batch
            ("publisher:a", T0 + timedelta(seconds=1)),
        ]
    )
    assert [type(problem) for problem in found] == [ReplayError, type(None), ReplayError, type(None)]
    assert "not after" in str(found[0])
    fresh = ReplayGuard(tmp_path / "replay.json")  # what the next process reads
    assert fresh.last("publisher:a") == T0 + timedelta(seconds=1)
    assert fresh.last("publisher:b") == T0 + timedelta(seconds=2)


def test_a_batch_of_replays_only_writes_nothing(tmp_path: Path) -> None:
    guard = ReplayGuard(tmp_path / "replay.json")
    guard.accept("publisher:a", T0)
    before = (tmp_path / "replay.json").stat().st_mtime_ns, (tmp_path / "replay.json").read_bytes()
    assert all(guard.accept_all([("publisher:a", T0), ("publisher:a", T0 - timedelta(seconds=1))]))
    assert ((tmp_path / "replay.json").stat().st_mtime_ns, (tmp_path / "replay.json").read_bytes()) == before


def test_audit_records_of_a_batch_are_chained_in_one_write(tmp_path: Path) -> None:
    log = tmp_path / "audit.log"
    audit.append(log, {"status": "applied", "n": 0}, now=T0)
    entries = audit.append_all(log, [{"status": "published", "n": n} for n in (1, 2, 3)], now=T0)
    assert [e.seq for e in entries] == [2, 3, 4]
    assert [e.record["n"] for e in audit.read(log)] == [0, 1, 2, 3]
    assert audit.verify(log) == []
    assert audit.append_all(log, [], now=T0) == []
    assert len(log.read_bytes().splitlines()) == 4  # nothing written for no record
