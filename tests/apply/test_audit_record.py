"""What the audit log says of a real apply: whether the commit holds what was applied, when it really
ran (apart from the time it was planned and signed for), who ran it and why -- and that logs written
before these fields existed still verify and display."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import git
import pytest

from reconciler.apply import audit
from reconciler.desired import load
from tests.helpers import Scratch, committed_copy, scratch_copy
from tests.test_cli_review import rpkictl

ISP = "cas/members/example-isp.yaml"
FAR = "2031-03-01T12:00:00Z"  # years from the system clock: only with --simulate-time
# No CI runner's or wrapper's variables: the records name the local user unless a test sets them.
LOCAL = {"GITHUB_ACTIONS": "", "GITLAB_CI": "", "CI": "", "RPKICTL_ACTOR": "", "SUDO_USER": ""}


def _checkout(tmp_path: Path) -> tuple[git.Repo, Scratch]:
    return committed_copy(tmp_path)


def _apply(scratch: Scratch, *args: str, env: dict[str, str] | None = None) -> str:
    result = rpkictl("apply", str(scratch.repo), "--yes", *args, env={**LOCAL, **(env or {})})
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def _entries(scratch: Scratch) -> list[audit.AuditEntry]:
    return audit.read(load(scratch.repo).audit_log_path)


def _log(scratch: Scratch, *args: str) -> str:
    result = rpkictl("log", str(scratch.repo), *args)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_an_apply_of_uncommitted_yaml_is_recorded_and_shown_as_dirty(tmp_path: Path) -> None:
    repo, scratch = _checkout(tmp_path)
    head = repo.head.commit.hexsha
    scratch.edit(ISP, "max_length: 48}", "max_length: 47}")
    _apply(scratch)
    records = [e.record for e in _entries(scratch)]
    assert [r["status"] for r in records] == ["started", "applied"]
    assert all(r["git_commit"] == head and r["git_dirty"] is True for r in records)
    shown = _log(scratch)
    assert f"commit {head[:12]}+dirty" in shown
    assert f"uncommitted changes on top of commit {head[:12]} were applied" in shown

    repo.git.commit("-am", "narrow a ROA")
    scratch.edit(ISP, "max_length: 47}", "max_length: 46}")
    repo.git.commit("-am", "narrower")
    _apply(scratch)
    last = _entries(scratch)[-1].record
    assert last["git_commit"] == repo.head.commit.hexsha and last["git_dirty"] is False
    assert f"commit {repo.head.commit.hexsha[:12]} " in _log(scratch)


def test_records_carry_when_the_apply_ran_apart_from_the_plan_and_signing_time(tmp_path: Path) -> None:
    scratch = scratch_copy(tmp_path)
    before = datetime.now(UTC)
    _apply(scratch, "--simulate-time", "--now", FAR)
    after = datetime.now(UTC)
    started, applied = _entries(scratch)
    assert before <= started.time <= applied.time <= after  # the system clock, not --now
    far = datetime(2031, 3, 1, 12, tzinfo=UTC)
    for entry in (started, applied):
        assert entry.record["plan_time"] == entry.record["signing_time"] == "2031-03-01T12:00:00.000000Z"
        assert abs(entry.time - far) > timedelta(days=365)
    shown = _log(scratch)
    assert "planned and signed for 2031-03-01T12:00:00Z, not when it ran" in shown
    assert f"started {started.time:%Y-%m-%d %H:%M:%S}Z" in shown


def test_an_apply_at_the_current_time_shows_no_other_time(tmp_path: Path) -> None:
    scratch = scratch_copy(tmp_path)
    _apply(scratch)
    record = _entries(scratch)[-1]
    signed = datetime.fromisoformat(str(record.record["signing_time"]).replace("Z", "+00:00"))
    assert abs(record.time - signed) < timedelta(minutes=5)
    assert "not when it ran" not in _log(scratch)


def test_the_person_behind_sudo_is_recorded(tmp_path: Path) -> None:
    scratch = scratch_copy(tmp_path)
    _apply(scratch, env={"SUDO_USER": "alice"})
    who = _entries(scratch)[-1].record["who"]
    assert isinstance(who, str) and who.startswith("alice via sudo (") and who.endswith(")")
    assert "alice via sudo (" in _log(scratch)


def test_the_ci_actor_is_recorded(tmp_path: Path) -> None:
    scratch = scratch_copy(tmp_path)
    github = {
        "GITHUB_ACTIONS": "true",
        "GITHUB_ACTOR": "octocat",
        "GITHUB_REPOSITORY": "example/rpki",
        "GITHUB_RUN_ID": "42",
    }
    _apply(scratch, env=github)
    assert _entries(scratch)[-1].record["who"] == (
        "octocat (GitHub Actions run https://github.com/example/rpki/actions/runs/42)"
    )


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        (
            {"GITLAB_CI": "true", "GITLAB_USER_LOGIN": "bob", "CI_JOB_URL": "https://gitlab.example/j/7"},
            "bob (GitLab CI job https://gitlab.example/j/7)",
        ),
        ({"CI": "true", "RPKICTL_ACTOR": "carol"}, "carol ({local})"),
        ({"SUDO_USER": "dave"}, "dave via sudo ({local})"),
        ({"CI": "true"}, "ci:{local}"),
        ({"GITHUB_ACTIONS": "true", "GITHUB_ACTOR": "evil\x1b[2J"}, "evil\\x1b[2J (GitHub Actions run"),
    ],
)
def test_who_names_the_person_from_the_environment(environ: dict[str, str], expected: str) -> None:
    local = audit.who({})
    assert audit.who(environ).startswith(expected.format(local=local))


def test_a_reason_is_recorded_and_shown(tmp_path: Path) -> None:
    scratch = scratch_copy(tmp_path)
    _apply(scratch, "--reason", "  CHG-1234: first publication  ")
    records = [e.record for e in _entries(scratch)]
    assert [r["reason"] for r in records] == ["CHG-1234: first publication"] * 2
    assert "    reason: CHG-1234: first publication" in _log(scratch)


@pytest.mark.parametrize(
    ("reason", "said"),
    [
        ("INC-1\nrm -rf", "holds the character '\\n' at position 6"),
        ("INC-1 \x1b[2J", "holds the character '\\x1b'"),
        ("INC-1 \u202egnp.exe", "holds the character '\\u202e'"),
        ("x" * 501, "501 characters long, at most 500"),
        ("   ", "--reason is empty"),
    ],
)
def test_a_reason_that_would_not_read_back_as_typed_is_refused(
    tmp_path: Path, reason: str, said: str
) -> None:
    scratch = scratch_copy(tmp_path)
    result = rpkictl("apply", str(scratch.repo), "--yes", "--reason", reason)
    assert result.returncode == 1
    assert said in result.stdout + result.stderr
    assert not scratch.rsync.exists()  # nothing was signed or published
    assert not load(scratch.repo).audit_log_path.exists()


def _old_record(status: str) -> dict[str, Any]:
    """A record as releases before the commit's cleanliness, real times and reasons wrote it."""
    return {
        "who": "ops@ca-host",
        "status": status,
        "git_commit": "0123456789abcdef0123456789abcdef01234567",
        "desired_digest": "ab" * 32,
        "plan_id": "cd" * 32,
        "approvals": [],
        "summary": "Plan: 1 to issue. VRPs: +1 -0.",
        "changes": ["issue roa example-isp/AS64496_192-0-2-0_24.roa"],
        "signatures": 0 if status == "started" else 3,
        "message": "",
    }


def test_a_log_written_before_the_new_fields_verifies_and_displays(tmp_path: Path) -> None:
    scratch = scratch_copy(tmp_path)
    log = load(scratch.repo).audit_log_path
    planned = datetime(2026, 11, 23, 12, tzinfo=UTC)
    for status in ("started", "applied"):
        audit.append(log, _old_record(status), now=planned)  # both carried the plan's time
    old_lines = log.read_bytes()
    _apply(scratch, "--reason", "CHG-7")
    assert log.read_bytes().startswith(old_lines)  # appended to, never rewritten
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    assert "git_dirty" not in lines[0] and "reason" not in lines[1]
    shown = _log(scratch, "--verify")
    assert "hash chain intact (4 records)" in shown
    first, second = (line for line in shown.splitlines() if line.startswith("#"))
    assert first.startswith("#2 ") and "commit 0123456789ab plan cdcdcdcdcdcd" in first
    assert "+dirty" not in first
    details = shown.split(first, 1)[1].split(second, 1)[0]
    assert details.strip() == ""  # no reason, no times it never recorded
    assert second.startswith("#4 ") and "reason: CHG-7" in shown.split(second, 1)[1]
