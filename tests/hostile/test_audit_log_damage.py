"""A damaged audit log -- a torn last line, a malformed line, odd field types, a directory in its place
-- never crashes ``rpkictl log`` (a clear error, exit 1) and never stops applies for good."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from reconciler.apply import audit
from reconciler.desired import load
from tests.helpers import Scratch, scratch_copy
from tests.test_cli_review import rpkictl

ISP = "cas/members/example-isp.yaml"


@pytest.fixture
def applied(tmp_path: Path) -> Scratch:
    scratch = scratch_copy(tmp_path)
    done = rpkictl("apply", str(scratch.repo), "--yes")
    assert done.returncode == 0, done.stderr
    return scratch


def log_path(scratch: Scratch) -> Path:
    return load(scratch.repo).audit_log_path


@pytest.mark.parametrize("verify", [False, True])
def test_a_malformed_line_is_a_clear_error(applied: Scratch, verify: bool) -> None:
    with log_path(applied).open("ab") as out:
        out.write(b'{"seq": "not a number"}\n')
    shown = rpkictl("log", str(applied.repo), *(["--verify"] if verify else []))
    assert shown.returncode == 1
    assert "Traceback" not in shown.stderr
    assert "line 3: unreadable: seq is missing or not an integer" in shown.stderr
    assert "#2 " in shown.stdout  # what can be read is still shown


def test_odd_field_types_are_shown_not_crashed_on(applied: Scratch) -> None:
    """A well-chained entry whose fields are not what rpkictl writes (edited by another tool)."""
    audit.append(
        log_path(applied),
        {"status": 7, "git_commit": 12345, "plan_id": ["x"], "approvals": [1, {"gate": None}], "who": None},
        now=audit.datetime.now(audit.UTC),
    )
    shown = rpkictl("log", str(applied.repo), "--verify")
    assert shown.returncode == 0, shown.stderr
    assert "#3 " in shown.stdout and "approved ?:" in shown.stdout


@pytest.mark.parametrize("verify", [False, True])
def test_a_directory_in_place_of_the_log_is_a_clear_error(tmp_path: Path, verify: bool) -> None:
    scratch = scratch_copy(tmp_path)
    log_path(scratch).mkdir(parents=True)
    shown = rpkictl("log", str(scratch.repo), *(["--verify"] if verify else []))
    assert shown.returncode == 1
    assert "Traceback" not in shown.stderr
    assert "is a directory: move it aside" in shown.stderr


def test_apply_with_a_directory_in_place_of_the_log_publishes_nothing(tmp_path: Path) -> None:
    scratch = scratch_copy(tmp_path)
    log_path(scratch).mkdir(parents=True)
    tried = rpkictl("apply", str(scratch.repo), "--yes")
    assert tried.returncode == 1 and "Traceback" not in tried.stderr
    assert "is a directory: move it aside" in tried.stderr
    assert not scratch.rsync.exists()


def test_a_torn_last_line_is_recorded_and_applies_go_on(applied: Scratch) -> None:
    """A crash in the middle of an audit write: the next apply records the torn line, says so, and
    continues the chain; the log verifies, and shows the repair."""
    path = log_path(applied)
    lines = path.read_bytes().splitlines(keepends=True)
    torn = lines[-1][:50]
    path.write_bytes(b"".join(lines[:-1]) + torn)
    shown = rpkictl("log", str(applied.repo))
    assert shown.returncode == 1 and "Traceback" not in shown.stderr

    applied.edit(ISP, "max_length: 26", "max_length: 25")
    again = rpkictl("apply", str(applied.repo), "--yes")
    assert again.returncode == 0, again.stderr
    assert "torn line" in again.stderr and "recorded as entry #2" in again.stderr
    verified = rpkictl("log", str(applied.repo), "--verify")
    assert verified.returncode == 0, verified.stderr
    assert audit.REPAIRED in verified.stdout
    repaired = [e for e in audit.read(path) if e.record["status"] == audit.REPAIRED]
    assert len(repaired) == 1
    assert repaired[0].record["damaged"][0]["bytes"] == len(torn)
    assert [json.loads(line)["seq"] for line in path.read_bytes().splitlines()[-3:]] == [2, 3, 4]


def test_a_torn_line_changed_afterwards_is_reported(applied: Scratch) -> None:
    path = log_path(applied)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 30])  # torn
    audit.append(path, {"status": "applied"}, now=audit.datetime.now(audit.UTC))
    assert audit.verify(path) == []
    edited = path.read_bytes().replace(data[: len(data) - 30].splitlines()[-1][:20], b"X" * 20, 1)
    path.write_bytes(edited)
    assert audit.verify(path) != []
