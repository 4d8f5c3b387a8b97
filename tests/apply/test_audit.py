"""The audit log: each entry chained to the one before, and every kind of tampering named by line."""

from __future__ import annotations

import hashlib
import json
import os
import socket
import stat
import subprocess
import sys
import textwrap
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from reconciler.apply import audit
from reconciler.apply.audit import GENESIS, AuditError, AuditProblem, append, read, verify

ROOT = Path(__file__).resolve().parents[2]
T0 = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def record(n: int) -> dict[str, Any]:
    return {
        "who": "alice@laptop",
        "commit": f"{n:040x}",
        "plan_id": f"plan-{n}",
        "approvals": ["roa-delete-pct@ca1:0123456789abcdef"],
        "changes": [{"action": "create", "path": f"ca1/{n}.roa"}],
        "counts": {"create": 1},
        "status": "applied",
        "message": "Zürich → Genève",  # stays readable: ensure_ascii=False
    }


def three(path: Path) -> list[bytes]:
    for n in range(1, 4):
        append(path, record(n), now=T0 + timedelta(hours=n))
    return path.read_bytes().splitlines(keepends=True)


def test_append_chains_and_verifies(tmp_path: Path) -> None:
    log = tmp_path / "var" / "audit.jsonl"  # the directory is created
    three(log)
    entries = read(log)
    assert [e.seq for e in entries] == [1, 2, 3]
    assert entries[0].prev == GENESIS
    assert [e.prev for e in entries[1:]] == [e.hash for e in entries[:-1]]
    assert entries[1].time == T0 + timedelta(hours=2)
    assert entries[2].record == record(3)
    assert verify(log) == []


def test_the_hash_is_over_the_canonical_json_without_hash(tmp_path: Path) -> None:
    log = tmp_path / "audit.jsonl"
    entry = append(log, record(1), now=T0)
    line = json.loads(log.read_text(encoding="utf-8"))
    assert line["time"] == "2026-11-23T12:00:00.000000Z"
    assert "Zürich" in log.read_text(encoding="utf-8")
    del line["hash"]
    canonical = json.dumps(line, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert entry.hash == hashlib.sha256(canonical.encode()).hexdigest()


def test_the_log_is_created_0640_whatever_the_umask(tmp_path: Path) -> None:
    old = os.umask(0o077)
    try:
        append(tmp_path / "audit.jsonl", record(1), now=T0)
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "audit.jsonl").stat().st_mode) == 0o640


def test_missing_log_is_empty_and_intact(tmp_path: Path) -> None:
    assert read(tmp_path / "none.jsonl") == []
    assert verify(tmp_path / "none.jsonl") == []


def test_an_edited_entry_is_named(tmp_path: Path) -> None:
    log = tmp_path / "audit.jsonl"
    lines = three(log)
    lines[1] = lines[1].replace(b'"status": "applied"', b'"status": "failed"')
    log.write_bytes(b"".join(lines))
    assert verify(log) == [AuditProblem(2, "hash mismatch: the entry was changed after it was written")]
    assert str(verify(log)[0]).startswith("line 2: hash mismatch")


def test_a_deleted_entry_is_named(tmp_path: Path) -> None:
    log = tmp_path / "audit.jsonl"
    lines = three(log)
    log.write_bytes(lines[0] + lines[2])
    problems = verify(log)
    assert {p.line for p in problems} == {2}
    messages = " / ".join(p.message for p in problems)
    assert "prev does not match the hash of line 1" in messages
    assert "seq 3 leaves a gap (expected 2)" in messages


def test_deleting_the_first_entry_is_named(tmp_path: Path) -> None:
    log = tmp_path / "audit.jsonl"
    lines = three(log)
    log.write_bytes(lines[1] + lines[2])
    problems = verify(log)
    assert {p.line for p in problems} == {1}
    assert "the start of the log" in problems[0].message


def test_deleting_the_last_entry_is_not_detectable(tmp_path: Path) -> None:
    """Documented limitation: the chain inside the file is still whole."""
    log = tmp_path / "audit.jsonl"
    lines = three(log)
    log.write_bytes(lines[0] + lines[1])
    assert verify(log) == []


def test_reordered_entries_are_named(tmp_path: Path) -> None:
    log = tmp_path / "audit.jsonl"
    lines = three(log)
    log.write_bytes(lines[0] + lines[2] + lines[1])
    problems = verify(log)
    assert {p.line for p in problems} == {2, 3}
    assert any(p.line == 3 and "seq 2 does not increase (previous is 3)" in p.message for p in problems)
    assert all("hash mismatch" not in p.message for p in problems)


def test_an_inserted_entry_is_named(tmp_path: Path) -> None:
    log = tmp_path / "audit.jsonl"
    lines = three(log)
    forged = json.loads(lines[1])
    forged["status"] = "forged"
    del forged["hash"]
    forged["hash"] = audit._hash(forged)  # a consistent hash, but the chain after it breaks
    log.write_bytes(lines[0] + lines[1] + json.dumps(forged).encode() + b"\n" + lines[2])
    problems = verify(log)
    assert {p.line for p in problems} == {3, 4}


def test_inserted_garbage_is_named_alone(tmp_path: Path) -> None:
    log = tmp_path / "audit.jsonl"
    lines = three(log)
    log.write_bytes(lines[0] + b"not json at all\n" + lines[1] + lines[2])
    problems = verify(log)
    assert [p.line for p in problems] == [2]  # the entries around it still chain
    assert problems[0].message.startswith("unreadable: not JSON")
    with pytest.raises(AuditError, match="line 2: not JSON"):
        read(log)


def test_an_entry_overwritten_with_garbage_also_breaks_the_chain(tmp_path: Path) -> None:
    log = tmp_path / "audit.jsonl"
    lines = three(log)
    log.write_bytes(lines[0] + b"{oops\n" + lines[2])
    problems = verify(log)
    assert [p.line for p in problems] == [2, 3, 3]
    assert "prev does not match the hash of line 1" in problems[1].message
    assert "seq 3 leaves a gap (expected 2)" in problems[2].message


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (b"\n", "empty line"),
        (b"[1]\n", "not a JSON object"),
        (b'{"seq": "1"}\n', "seq is missing"),
        (b'{"seq": 1, "seq": 1}\n', "duplicate key 'seq'"),
        (b'{"seq": 1, "prev": "x", "hash": "y"}\n', "prev is missing or not a SHA-256"),
        (b"\xff\xfe\n", "not UTF-8"),
        (b'{"seq": NaN}\n', "NaN is not JSON"),
    ],
)
def test_malformed_lines(tmp_path: Path, line: bytes, message: str) -> None:
    log = tmp_path / "audit.jsonl"
    log.write_bytes(line)
    [problem] = verify(log)
    assert problem.line == 1 and message in problem.message


def test_a_torn_last_line_is_reported_then_recorded_and_the_chain_goes_on(tmp_path: Path) -> None:
    log = tmp_path / "audit.jsonl"
    lines = three(log)
    log.write_bytes(lines[0] + lines[1] + lines[2][:20])
    problems = verify(log)
    assert [p.line for p in problems] == [3, 3]
    assert "incomplete" in problems[0].message
    entry = append(log, record(4), now=T0)
    assert entry.seq == 4 and "torn line" in entry.notes[0]
    assert verify(log) == []  # the torn line is named, bytes and all, by the entry after it
    repaired = read(log)[-2]
    assert repaired.record["status"] == audit.REPAIRED and repaired.record["torn"] is True
    assert repaired.prev == read(log)[1].hash  # chained onto the last readable entry


def test_a_garbage_last_line_is_recorded_and_still_reported(tmp_path: Path) -> None:
    log = tmp_path / "audit.jsonl"
    three(log)
    with log.open("ab") as out:
        out.write(b"garbage\n")
    entry = append(log, record(4), now=T0)  # the log never stops an apply
    assert "unreadable lines" in entry.notes[0]
    assert [p.line for p in verify(log)] == [4]  # a complete line changed: damage, reported for ever


def test_appending_reads_the_last_line_across_chunks(tmp_path: Path) -> None:
    log = tmp_path / "audit.jsonl"
    big = {"message": "x" * (3 * audit._TAIL_CHUNK)}
    append(log, big, now=T0)
    append(log, big, now=T0)
    entry = append(log, {"message": "small"}, now=T0)
    assert entry.seq == 3
    assert verify(log) == []


@pytest.mark.parametrize("key", sorted(audit.RESERVED))
def test_reserved_keys_are_refused(tmp_path: Path, key: str) -> None:
    with pytest.raises(AuditError, match=f"reserved keys {key}"):
        append(tmp_path / "audit.jsonl", {**record(1), key: 1}, now=T0)
    assert not (tmp_path / "audit.jsonl").exists()


@pytest.mark.parametrize(
    "bad",
    [
        {"when": datetime(2026, 1, 1, tzinfo=UTC)},
        {"ratio": float("nan")},
        {1: "int key"},
        ["not", "a", "dict"],
    ],
)
def test_records_must_be_plain_json(tmp_path: Path, bad: Any) -> None:
    with pytest.raises(AuditError):
        append(tmp_path / "audit.jsonl", bad, now=T0)


def test_tuples_are_logged_as_lists(tmp_path: Path) -> None:
    log = tmp_path / "audit.jsonl"
    entry = append(log, {"changes": ("a", "b")}, now=T0)
    assert entry.record == {"changes": ["a", "b"]}
    assert verify(log) == []


WRITER = """
    import sys
    from datetime import UTC, datetime
    from pathlib import Path
    from reconciler.apply.audit import append

    log, name = Path(sys.argv[1]), sys.argv[2]
    for i in range(50):
        append(log, {"who": name, "n": i}, now=datetime.now(UTC))
"""


def test_concurrent_appends_keep_one_chain(tmp_path: Path) -> None:
    log = tmp_path / "audit.jsonl"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    writers = [
        subprocess.Popen([sys.executable, "-c", textwrap.dedent(WRITER), str(log), name], env=env)
        for name in ("a", "b")
    ]
    assert [w.wait(timeout=60) for w in writers] == [0, 0]
    assert verify(log) == []
    entries = read(log)
    assert [e.seq for e in entries] == list(range(1, 101))
    for name in ("a", "b"):
        assert [e.record["n"] for e in entries if e.record["who"] == name] == list(range(50))


def test_who_in_github_actions(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    monkeypatch.setenv("CI", "true")
    monkeypatch.setenv("GITHUB_ACTOR", "octocat")
    monkeypatch.setenv("GITHUB_SERVER_URL", "https://github.com")
    monkeypatch.setenv("GITHUB_REPOSITORY", "example/rpki-state")
    monkeypatch.setenv("GITHUB_RUN_ID", "4242")
    assert (
        audit.who() == "octocat (GitHub Actions run https://github.com/example/rpki-state/actions/runs/4242)"
    )


def test_who_in_other_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GITHUB_ACTIONS", raising=False)
    monkeypatch.setenv("CI", "true")
    monkeypatch.setenv("USER", "runner")
    monkeypatch.setenv("LOGNAME", "runner")
    assert audit.who() == f"ci:runner@{socket.gethostname()}"


def test_who_on_a_workstation(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GITHUB_ACTIONS", raising=False)
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.setenv("LOGNAME", "alice")
    assert audit.who() == f"alice@{socket.gethostname()}"
    assert audit.who({"CI": "false", "LOGNAME": "x"}) == audit.who()  # CI=false is not CI
