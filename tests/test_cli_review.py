"""Reviewable, safe applies through the real rpkictl: exit codes, gates and approvals, saved plans and
staleness, the lock, concurrent applies, the audit log, and the Git context of a pull request."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import git
import pytest

from reconciler.apply import audit, lock
from tests.helpers import Scratch, run_on_terminal, scratch_copy
from tests.publish.test_rrdp import with_rrdp
from tests.test_cli import rpkictl

ISP = "cas/members/example-isp.yaml"
NOW = "2026-11-23T12:00:00Z"
LATER = "2026-11-23T12:05:00Z"


@pytest.fixture
def applied(tmp_path: Path) -> Scratch:
    scratch = scratch_copy(tmp_path)
    result = rpkictl("apply", str(scratch.repo), "--simulate-time", "--now", NOW, "--yes")
    assert result.returncode == 0, result.stderr
    return scratch


def _empty_isp(scratch: Scratch) -> None:
    """Remove every ROA of example-isp: a gated change (ca-empty) with four revocations."""
    text = (scratch.repo / ISP).read_text()
    scratch.write(ISP, text.split("roas:")[0] + "roas: []\n")


def _token(output: str) -> str:
    match = re.search(r"--approve (\S+)", output)
    assert match, output
    return match.group(1)


def test_plan_exit_codes(applied: Scratch) -> None:
    """0 no changes, 2 changes, 3 changes that need approval, 1 error."""
    assert rpkictl("plan", str(applied.repo), "--now", LATER).returncode == 0
    applied.edit(ISP, "max_length: 26", "max_length: 27")
    assert rpkictl("plan", str(applied.repo), "--now", LATER).returncode == 2
    _empty_isp(applied)
    gated = rpkictl("plan", str(applied.repo), "--now", LATER)
    assert gated.returncode == 3
    assert "APPROVAL REQUIRED" in gated.stdout.splitlines()[1]  # the verdict comes first
    assert rpkictl("plan", str(applied.repo / "nowhere")).returncode == 1


def test_gated_apply_needs_the_exact_approval(applied: Scratch) -> None:
    served = applied.rsync.resolve()
    _empty_isp(applied)
    refused = rpkictl("apply", str(applied.repo), "--simulate-time", "--now", LATER, "--yes")
    assert refused.returncode == 3, refused.stderr
    assert "--approve ca-empty@example-isp:" in refused.stderr
    assert applied.rsync.resolve() == served  # nothing published
    token = _token(refused.stderr)
    ok = rpkictl("apply", str(applied.repo), "--simulate-time", "--now", LATER, "--yes", "--approve", token)
    assert ok.returncode == 0, ok.stderr
    assert applied.rsync.resolve() != served
    (entry,) = [
        e
        for e in audit.read(applied.root / "published" / "audit.jsonl")
        if e.record["approvals"] and e.record["status"] == "applied"
    ]
    assert entry.record["approvals"] == [
        {"gate": token.split(":")[0], "hash": token.split(":")[1], "how": "--approve"}
    ]


def test_an_approval_does_not_carry_over_to_a_bigger_deletion(applied: Scratch) -> None:
    """Approve removing the CA's ROAs; then the CA itself is removed: the old token approves nothing."""
    _empty_isp(applied)
    token = _token(rpkictl("plan", str(applied.repo), "--now", LATER).stdout)
    (applied.repo / ISP).unlink()
    refused = rpkictl(
        "apply", str(applied.repo), "--simulate-time", "--now", LATER, "--yes", "--approve", token
    )
    assert refused.returncode == 3
    assert "ca-revoke@example-isp" in refused.stderr


def test_malformed_approval_is_an_error(applied: Scratch) -> None:
    result = rpkictl("apply", str(applied.repo), "--yes", "--approve", "nonsense")
    assert result.returncode == 1 and "GATE:HASH" in result.stderr


def test_on_a_terminal_the_operator_types_what_the_plan_costs(applied: Scratch) -> None:
    """Which CA loses how many VRPs (tests/test_cli_terminal.py: wrong answers, retries)."""
    _empty_isp(applied)
    args = ["apply", str(applied.repo), "--simulate-time", "--now", LATER, "--yes"]
    code, output = run_on_terminal(args, b"example-isp 4", b"how many VRPs it loses")
    assert code == 0, output
    assert output.index("Revocations (4)") < output.index("how many VRPs")  # shown before the question
    (entry,) = [
        e
        for e in audit.read(applied.root / "published" / "audit.jsonl")
        if e.record["approvals"] and e.record["status"] == "applied"
    ]
    assert entry.record["approvals"][0]["how"] == "typed on a terminal"


def test_saved_plan_is_applied_exactly(applied: Scratch, tmp_path: Path) -> None:
    applied.edit(ISP, "max_length: 26", "max_length: 27")
    saved = tmp_path / "plan.json"
    assert rpkictl("plan", str(applied.repo), "--now", LATER, "--out", str(saved)).returncode == 2
    plan_id = json.loads(saved.read_text())["plan_id"]
    result = rpkictl("apply", str(saved), "--simulate-time", "--now", LATER, "--yes")
    assert result.returncode == 0, result.stderr
    (last,) = audit.read(applied.root / "published" / "audit.jsonl")[-1:]
    assert last.record["plan_id"] == plan_id
    assert rpkictl("plan", str(applied.repo), "--now", LATER).returncode == 0


def test_stale_saved_plan_is_refused_saying_what_moved(applied: Scratch, tmp_path: Path) -> None:
    """A plan is saved; another apply publishes first; the saved plan is refused with exit 4."""
    applied.edit(ISP, "max_length: 26", "max_length: 27")
    saved = tmp_path / "plan.json"
    rpkictl("plan", str(applied.repo), "--now", LATER, "--out", str(saved))
    assert (
        rpkictl("apply", str(applied.repo), "--simulate-time", "--now", LATER, "--yes").returncode == 0
    )  # the concurrent apply
    refused = rpkictl("apply", str(saved), "--simulate-time", "--now", LATER, "--yes")
    assert refused.returncode == 4
    assert re.search(r"CA example-isp: manifest #\d+ -> #\d+ since the plan was made", refused.stderr)
    applied.edit(ISP, "max_length: 27", "max_length: 28")
    rpkictl("plan", str(applied.repo), "--now", LATER, "--out", str(saved))
    applied.edit(ISP, "max_length: 28", "max_length: 29")
    refused = rpkictl("apply", str(saved), "--simulate-time", "--now", LATER, "--yes")
    assert refused.returncode == 4 and "the desired state changed" in refused.stderr


def test_old_saved_plan_is_refused(applied: Scratch, tmp_path: Path) -> None:
    applied.edit(ISP, "max_length: 26", "max_length: 27")
    saved = tmp_path / "plan.json"
    rpkictl("plan", str(applied.repo), "--now", LATER, "--out", str(saved))
    refused = rpkictl("apply", str(saved), "--simulate-time", "--now", "2026-11-23T13:06:00Z", "--yes")
    assert refused.returncode == 4 and "plan_max_age" in refused.stderr


def test_unknown_plan_format_is_an_error(applied: Scratch, tmp_path: Path) -> None:
    saved = tmp_path / "plan.json"
    saved.write_text(json.dumps({"format_version": "3.0"}))
    result = rpkictl("apply", str(saved), "--yes")
    assert result.returncode == 1 and "3.0 is not supported" in result.stderr


def _hold_lock(scratch: Scratch) -> lock.Lock:
    return lock.acquire(
        scratch.root / "published",
        who="alice@ops",
        operation="apply",
        plan_id="feedbeef" * 8,
        timeout=timedelta(0),
    )


def test_a_held_lock_exits_5_naming_the_holder(applied: Scratch) -> None:
    applied.edit(ISP, "max_length: 26", "max_length: 27")
    with _hold_lock(applied) as held:
        result = rpkictl("apply", str(applied.repo), "--simulate-time", "--now", LATER, "--yes")
        assert result.returncode == 5
        assert "alice@ops" in result.stderr and held.id in result.stderr
    assert rpkictl("apply", str(applied.repo), "--simulate-time", "--now", LATER, "--yes").returncode == 0


def test_apply_waits_for_the_lock_up_to_the_timeout(applied: Scratch) -> None:
    applied.edit(ISP, "max_length: 26", "max_length: 27")
    held = _hold_lock(applied)
    timer = threading.Timer(1.0, held.release)
    timer.start()
    try:
        result = rpkictl(
            "apply", str(applied.repo), "--simulate-time", "--now", LATER, "--yes", "--lock-timeout", "60s"
        )
    finally:
        timer.cancel()
        held.release()
    assert result.returncode == 0, result.stderr


def test_force_unlock_needs_the_exact_id(applied: Scratch) -> None:
    held = _hold_lock(applied)
    try:
        assert rpkictl("force-unlock", "0123456789abcdef", str(applied.repo)).returncode == 1
        result = rpkictl("force-unlock", held.id, str(applied.repo))
        assert result.returncode == 0, result.stderr
        assert lock.current(applied.root / "published") is None
    finally:
        held.release()


def test_two_concurrent_applies_one_waits_nothing_is_lost(applied: Scratch) -> None:
    """Both succeed: one publishes, the other waits for the lock, re-plans and finds nothing to do."""
    applied.edit(ISP, "max_length: 26", "max_length: 27")
    args = [
        sys.executable,
        "-m",
        "reconciler",
        "apply",
        str(applied.repo),
        "--simulate-time",
        "--now",
        LATER,
        "--yes",
        "--lock-timeout",
        "120s",
    ]
    procs = [
        subprocess.Popen(
            args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True
        )
        for _ in range(2)
    ]
    outputs = [p.communicate(timeout=240) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    stdout = [o[0] for o in outputs]
    assert sum("Applied:" in s for s in stdout) == 1
    assert sum("No changes" in s for s in stdout) == 1
    log = applied.root / "published" / "audit.jsonl"
    assert [e.record["status"] for e in audit.read(log)] == ["started", "applied", "started", "applied"]
    assert audit.verify(log) == []
    assert rpkictl("plan", str(applied.repo), "--now", LATER).returncode == 0


def test_audit_log_shows_and_detects_tampering(applied: Scratch) -> None:
    applied.edit(ISP, "max_length: 26", "max_length: 27")
    assert rpkictl("apply", str(applied.repo), "--simulate-time", "--now", LATER, "--yes").returncode == 0
    shown = rpkictl("log", str(applied.repo), "--verify")
    assert shown.returncode == 0, shown.stderr
    assert "#2 " in shown.stdout and "#4 " in shown.stdout and "hash chain intact (4 records)" in shown.stdout
    assert "#1 " not in shown.stdout  # a "started" record is shown with its outcome
    log = applied.root / "published" / "audit.jsonl"
    lines = log.read_text().splitlines()
    edited = json.loads(lines[0])
    edited["status"] = "failed"  # someone rewrites history, keeping the stored hash
    lines[0] = json.dumps(edited)
    log.write_text("\n".join(lines) + "\n")
    tampered = rpkictl("log", str(applied.repo), "--verify")
    assert tampered.returncode == 1 and "line 1" in tampered.stderr
    log.write_text(lines[1] + "\n")  # the first record deleted
    assert rpkictl("log", str(applied.repo), "--verify").returncode == 1


def test_github_outputs(applied: Scratch, tmp_path: Path) -> None:
    _empty_isp(applied)
    outputs = tmp_path / "github_output"
    rpkictl("plan", str(applied.repo), "--now", LATER, env={"GITHUB_OUTPUT": str(outputs)})
    values = dict(line.split("=", 1) for line in outputs.read_text().splitlines())
    assert values["has_changes"] == "true" and values["approval_required"] == "true"
    assert values["revocations"] == "4" and len(values["plan_id"]) == 64


def test_plan_base_lists_the_yaml_entries_changed(tmp_path: Path) -> None:
    """In a Git work tree, --base shows intent (file:line) next to effect, and the commit is recorded."""
    scratch = scratch_copy(tmp_path)
    with git.Repo.init(tmp_path) as repo:  # closed: gitpython keeps git helper processes otherwise
        with repo.config_writer() as config:
            config.set_value("user", "name", "Test").set_value("user", "email", "test@example.invalid")
        repo.index.add(["state"])
        head = repo.index.commit("desired state").hexsha
    scratch.edit(ISP, "max_length: 26", "max_length: 27")
    result = rpkictl("plan", str(scratch.repo), "--now", NOW, "--base", "HEAD", "--format", "json")
    doc = json.loads(result.stdout)
    assert doc["desired"]["git_commit"] == head and doc["desired"]["git_dirty"] is True
    (intent,) = doc["intent"]
    assert intent["kind"] == "roa-changed" and intent["where"].startswith(
        "state/cas/members/example-isp.yaml:10:"
    )
    text = rpkictl("plan", str(scratch.repo), "--now", NOW, "--base", "HEAD")
    assert "Desired-state changes since HEAD: 1" in text.stdout
    bad = rpkictl("plan", str(scratch.repo), "--base", "no-such-rev")
    assert bad.returncode == 1 and "unknown revision" in bad.stderr


def test_markdown_and_json_formats(applied: Scratch) -> None:
    _empty_isp(applied)
    md = rpkictl("plan", str(applied.repo), "--now", LATER, "--format", "markdown")
    assert md.returncode == 3 and md.stdout.startswith("<!-- rpkictl-plan -->")
    assert "Approval required" in md.stdout and "Revocations (4)" in md.stdout
    doc = json.loads(rpkictl("plan", str(applied.repo), "--now", LATER, "--format", "json").stdout)
    assert doc["format_version"] == "2.6" and doc["approval_required"] is True
    assert doc["gates"][0]["rule"] == "ca-empty" and doc["gates"][0]["count"] == 4


def test_plan_time_is_respected_by_saved_plans(applied: Scratch, tmp_path: Path) -> None:
    """A saved plan made for a time is re-planned for that time, not for when it is applied."""
    saved = tmp_path / "plan.json"
    at = datetime(2026, 11, 24, 5, 0, tzinfo=UTC)  # 17 h after the apply: manifests due for renewal
    assert rpkictl("plan", str(applied.repo), "--now", at.isoformat(), "--out", str(saved)).returncode == 2
    result = rpkictl(
        "apply", str(saved), "--simulate-time", "--now", (at + timedelta(minutes=10)).isoformat(), "--yes"
    )
    assert result.returncode == 0, result.stderr


def test_routine_only_keeps_the_tree_alive_while_a_gated_change_waits(applied: Scratch) -> None:
    """A gated change is pending; at +17 h the scheduled job renews manifests and CRLs anyway."""
    _empty_isp(applied)
    due = "2026-11-24T05:00:00Z"
    assert (
        rpkictl("apply", str(applied.repo), "--simulate-time", "--now", due, "--yes").returncode == 3
    )  # the whole plan: gated
    renewed = rpkictl("apply", str(applied.repo), "--simulate-time", "--now", due, "--yes", "--routine-only")
    assert renewed.returncode == 0, renewed.stderr
    assert "Applied: 6 signatures" in renewed.stdout  # 2 CAs x (CRL, manifest EE, manifest); TA: 12 weeks
    still = rpkictl("plan", str(applied.repo), "--now", due)
    assert still.returncode == 3 and "ca-empty@example-isp" in still.stdout  # the gated change waits
    pending = json.loads(rpkictl("plan", str(applied.repo), "--now", due, "--format", "json").stdout)
    assert not [c for c in pending["changes"] if "expire" in c["reason"]]  # nothing is due any more
    saved_plan = applied.root / "plan.json"
    rpkictl("plan", str(applied.repo), "--now", due, "--out", str(saved_plan))
    refused = rpkictl("apply", str(saved_plan), "--routine-only", "--yes")
    assert refused.returncode == 1 and "not to a saved plan" in refused.stderr


def test_an_empty_announcements_file_is_an_error(applied: Scratch, tmp_path: Path) -> None:
    """A truncated download must not silently turn the route-invalid gate off."""
    empty = tmp_path / "routes.txt"
    empty.write_text("# header only\n")
    result = rpkictl("plan", str(applied.repo), "--announcements", str(empty))
    assert result.returncode == 1 and "no announcements in the file" in result.stderr


def test_a_file_in_place_of_the_rrdp_directory_is_repaired(tmp_path: Path) -> None:
    """A file planted where the RRDP directory is goes, and RRDP is published after the rsync swap.
    (An RRDP failure after the swap is recorded as such: tests/hostile/test_full_disk.py.)"""
    scratch = with_rrdp(scratch_copy(tmp_path))
    assert scratch.apply() is not None
    shutil.rmtree(scratch.root / "published" / "rrdp")
    (scratch.root / "published" / "rrdp").write_text("in the way")
    scratch.edit(ISP, "max_length: 26", "max_length: 25")
    result = rpkictl("apply", str(scratch.repo), "--simulate-time", "--now", LATER, "--yes")
    assert result.returncode == 0 and "RRDP: new session" in result.stdout, result.stderr
    assert (scratch.root / "published" / "rrdp" / "notification.xml").is_file()
    last = audit.read(scratch.root / "published" / "audit.jsonl")[-1]
    assert last.record["status"] == "applied"
