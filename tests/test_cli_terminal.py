"""rpkictl at a terminal, as an operator woken at 3 a.m. meets it: the approval question, Ctrl-C while
signing, the wrong directory, --version and -h, help without type noise, option errors that name the
option, a closed pipe, "No changes." once, ages in words, stale plans that say what moved, and --now on
every command. Each runs the real program (on a pseudo-terminal where it asks)."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import git
import pytest

from reconciler.apply import audit
from reconciler.clock import describe_span
from reconciler.desired.discover import desired_root
from reconciler.diagnostics import DesiredStateError
from reconciler.plan.challenge import challenge
from reconciler.plan.document import GateDoc
from tests.helpers import Scratch, run_on_terminal, scratch_copy
from tests.test_cli import rpkictl

ISP = "cas/members/example-isp.yaml"
NOW = "2026-11-23T12:00:00Z"
LATER = "2026-11-23T12:05:00Z"
QUESTION = b"how many VRPs it loses"


@pytest.fixture
def applied(tmp_path: Path) -> Scratch:
    scratch = scratch_copy(tmp_path)
    result = rpkictl("apply", str(scratch.repo), "--simulate-time", "--now", NOW, "--yes")
    assert result.returncode == 0, result.stderr
    return scratch


def _empty_isp(scratch: Scratch) -> None:
    """Remove every ROA of example-isp: the ca-empty gate, 4 VRPs lost."""
    text = (scratch.repo / ISP).read_text()
    scratch.write(ISP, text.split("roas:")[0] + "roas: []\n")


def _applied_records(scratch: Scratch) -> list[audit.AuditEntry]:
    log = scratch.root / "published" / "audit.jsonl"
    return [e for e in audit.read(log) if e.record["status"] == "applied"]


# --- the approval question ------------------------------------------------------------------------------


def test_a_gated_apply_asks_what_the_plan_costs_and_gives_another_try(applied: Scratch) -> None:
    """The question names neither the CA nor the count; 'y' and a bare count are wrong, and each wrong
    answer leaves another try; the CA and its VRP count, as the plan shows them, approve."""
    _empty_isp(applied)
    served = applied.rsync.resolve()
    args = ["apply", str(applied.repo), "--simulate-time", "--now", LATER]
    code, output = run_on_terminal(args, [b"y", b"4", b"example-isp 4"], QUESTION, timeout=150)
    assert code == 0, output
    question = next(line for line in output.splitlines() if "how many VRPs it loses" in line)
    question = question.split("?")[0].split(")")[0]
    assert "example-isp" not in question and " 4" not in question  # the answer is not in the question
    assert "2 tries left" in output and "1 try left" in output
    assert output.index("CA example-isp would publish no ROAs") < output.index("how many VRPs it loses")
    assert applied.rsync.resolve() != served
    (entry,) = [e for e in _applied_records(applied) if e.record["approvals"]]
    assert entry.record["approvals"][0]["how"] == "typed on a terminal"


def test_three_wrong_answers_exit_3_with_nothing_signed(applied: Scratch) -> None:
    _empty_isp(applied)
    served = applied.rsync.resolve()
    args = ["apply", str(applied.repo), "--simulate-time", "--now", LATER]
    code, output = run_on_terminal(args, [b"y", b"example-isp 3", b"4 other-isp"], QUESTION, timeout=150)
    assert code == 3, output
    assert "not approved after 3 tries: nothing was signed or written" in output
    assert applied.rsync.resolve() == served
    assert len(_applied_records(applied)) == 1  # the first apply only


def test_the_confirmation_counts_as_the_verdict_counts(applied: Scratch) -> None:
    """'1 change to review' in the verdict, and the same in the question (not 'these 3 changes')."""
    applied.edit(ISP, "max_length: 26", "max_length: 27")
    args = ["apply", str(applied.repo), "--simulate-time", "--now", LATER]
    code, output = run_on_terminal(args, [b"y"], b"Apply these", timeout=150)
    assert code == 0, output
    verdict = re.search(r"(\d+) changes? to review", output)
    assert verdict, output
    asked = re.search(r"Apply these changes \((\d+) to review, (\d+) routine\)", output)
    assert asked, output
    assert asked.group(1) == verdict.group(1) == "1"


def test_the_question_comes_from_the_gates() -> None:
    def gate(rule: str, ca: str, items: tuple[str, ...]) -> GateDoc:
        return GateDoc(
            id=f"{rule}@{ca}",
            rule=rule,
            ca=ca,
            message="",
            count=len(items),
            existing=0,
            threshold=None,
            hash="0" * 64,
            approve=f"{rule}@{ca}:000000000000",
            items=list(items),
        )

    vrps = ("AS1 192.0.2.0/24 max 24", "AS1 198.51.100.0/24 max 24")
    asked = challenge(
        [
            gate("roa-delete-pct", "isp", vrps),
            gate("ca-empty", "isp", vrps),
            gate("route-invalid", "*", ("x",)),
        ]
    )
    assert asked.accepts("isp 2") and asked.accepts(" 2, ISP ")
    assert not asked.accepts("isp 4") and not asked.accepts("y") and not asked.accepts("2")
    assert "isp" not in asked.question and "2" not in asked.question
    removed = challenge([gate("ca-revoke", "child", ("remove CA child", "remove CA grandchild", vrps[0]))])
    assert removed.accepts("child 1")
    assert challenge([gate("route-invalid", "*", ("a", "b", "c"))]).accepts("3")


# --- Ctrl-C while signing -------------------------------------------------------------------------------


def _stopped(pid: int) -> bool:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "T"


def _interrupt_at(scratch: Scratch, point: str) -> subprocess.CompletedProcess[str]:
    """Run apply until it stops itself at fault ``point`` (SIGSTOP), then press Ctrl-C there."""
    env = {**os.environ, "RPKICTL_STOP_AT": point}
    args = ["apply", str(scratch.repo), "--simulate-time", "--now", LATER, "--yes"]
    with subprocess.Popen(
        [sys.executable, "-m", "reconciler", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
        env=env,
    ) as process:
        deadline = time.monotonic() + 150
        while not _stopped(process.pid):
            assert time.monotonic() < deadline and process.poll() is None, "apply never reached " + point
            time.sleep(0.05)
        process.send_signal(signal.SIGINT)
        process.send_signal(signal.SIGCONT)
        stdout, stderr = process.communicate(timeout=120)
    return subprocess.CompletedProcess(args, process.returncode, stdout, stderr)


@pytest.mark.parametrize("point", ["audit.started", "rsync.before-swap"])
def test_ctrl_c_while_signing_says_nothing_was_published(applied: Scratch, point: str) -> None:
    applied.edit(ISP, "max_length: 26", "max_length: 27")
    served = applied.rsync.resolve()
    result = _interrupt_at(applied, point)
    assert result.returncode == 130, result.stderr
    assert "Traceback" not in result.stderr
    assert "interrupted: nothing was published" in result.stderr
    assert "the lock on" in result.stderr and "is released" in result.stderr
    assert not (applied.root / "published" / "rpkictl.lock").exists()
    assert applied.rsync.resolve() == served
    last = audit.read(applied.root / "published" / "audit.jsonl")[-1].record
    assert last["status"] == "failed" and "interrupted" in last["message"]
    again = rpkictl("apply", str(applied.repo), "--simulate-time", "--now", LATER, "--yes")
    assert again.returncode == 0, again.stderr  # the lock is free, the change still to do


def test_ctrl_c_after_the_swap_says_what_is_served(applied: Scratch) -> None:
    applied.edit(ISP, "max_length: 26", "max_length: 27")
    result = _interrupt_at(applied, "rsync.after-swap")
    assert result.returncode == 130, result.stderr
    assert "interrupted: the rsync tree is published" in result.stderr
    assert "is released" in result.stderr


def test_exit_130_is_in_the_help_and_the_readme() -> None:
    assert "130 interrupted" in rpkictl("--help").stdout
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    assert "| 130 |" in readme


# --- the wrong directory --------------------------------------------------------------------------------


def test_any_path_in_the_desired_state_finds_it(applied: Scratch) -> None:
    """From inside cas/, or given rpki.yaml or a CA file, commands find the directory above, as git
    finds .git, and show it as an absolute path."""
    root = str(applied.repo.resolve())
    inside = rpkictl("validate", cwd=applied.repo / "cas" / "members")
    assert inside.returncode == 0, inside.stderr
    assert inside.stdout.startswith(f"{root}: valid")
    assert rpkictl("validate", str(applied.repo / "rpki.yaml")).stdout.startswith(f"{root}: valid")
    planned = rpkictl("plan", "rpki.yaml", "--now", LATER, cwd=applied.repo)
    assert planned.returncode == 0, planned.stderr
    assert f"for {root} at" in planned.stdout
    for command in (["status"], ["check"], ["tal"], ["log"]):
        result = rpkictl(*command, "--now", LATER, cwd=applied.repo / "cas")
        assert result.returncode == 0, (command, result.stdout, result.stderr)
    applied.edit(ISP, "max_length: 26", "max_length: 27")
    done = rpkictl("apply", str(applied.repo / ISP), "--simulate-time", "--now", LATER, "--yes")
    assert done.returncode == 0, done.stderr


def test_outside_any_desired_state_the_message_names_the_absolute_path(tmp_path: Path) -> None:
    (tmp_path / "elsewhere").mkdir()
    result = rpkictl("plan", cwd=tmp_path / "elsewhere")
    assert result.returncode == 1
    assert f"no rpki.yaml in {tmp_path / 'elsewhere'} nor in any directory above it" in result.stderr
    assert "create it" not in result.stderr and "cas/ directory" not in result.stderr
    missing = rpkictl("validate", "nowhere", cwd=tmp_path)
    assert f"the desired-state directory {tmp_path / 'nowhere'} does not exist" in missing.stderr


def test_discovery_rules(tmp_path: Path) -> None:
    state = scratch_copy(tmp_path).repo
    assert desired_root(state / "cas" / "members") == state.resolve()
    assert desired_root(state / "rpki.yaml") == state.resolve()
    bare = tmp_path / "bare"
    (bare / "cas").mkdir(parents=True)
    assert desired_root(bare) == bare.resolve()  # cas/ without rpki.yaml: the loader says what is missing
    with pytest.raises(DesiredStateError, match="nor in any directory above it"):
        desired_root(tmp_path)


# --- the small things -----------------------------------------------------------------------------------


def test_version_and_short_help() -> None:
    version = rpkictl("--version")
    assert version.returncode == 0
    assert re.fullmatch(r"rpkictl \d+\.\d+\.\d+\S*\n", version.stdout), version.stdout
    short = rpkictl("-h")
    assert short.returncode == 0 and "Usage: rpkictl" in short.stdout
    assert rpkictl("plan", "-h").stdout == rpkictl("plan", "--help").stdout


COMMANDS = [
    ["validate"], ["plan"], ["apply"], ["check"], ["status"], ["reconcile"], ["tal"], ["log"],
    ["force-unlock"], ["ta", "sign"], ["ta", "import"],
]  # fmt: skip


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_help_shows_no_python_types(command: list[str]) -> None:
    shown = rpkictl(*command, "--help")
    assert shown.returncode == 0, shown.stderr
    for noise in ("<bool>", "<str>", "<list[str]>", "<int>", "<int range>"):
        assert noise not in shown.stdout, (noise, shown.stdout)


def test_option_errors_name_the_option(applied: Scratch) -> None:
    repo = str(applied.repo)
    cases = [
        (["check", repo, "--warn", "4x"], "--warn"),
        (["status", repo, "--critical", "soon"], "--critical"),
        (["reconcile", repo, "--once", "--interval", "x"], "--interval"),
        (["reconcile", repo, "--once", "--max-backoff", "x"], "--max-backoff"),
        (["apply", repo, "--lock-timeout", "x"], "--lock-timeout"),
        (["plan", repo, "--now", "2026-13-01"], "--now"),
        (["log", repo, "--now", "2026-13-01"], "--now"),
        (["tal", repo, "--now", "2026-13-01"], "--now"),
    ]
    for args, option in cases:
        result = rpkictl(*args)
        assert result.returncode == 1, (args, result.stderr)
        named = [line for line in result.stderr.splitlines() if option in line]
        assert named, (args, result.stderr)
        assert "Traceback" not in result.stderr


def _to_a_closed_pipe(*args: str) -> subprocess.CompletedProcess[str]:
    """``rpkictl ARGS | head -0``, deterministically: the reader is gone before the first write."""
    read, write = os.pipe()
    os.close(read)
    try:
        return subprocess.run(
            [sys.executable, "-m", "reconciler", *args],
            stdout=write,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            text=True,
            timeout=180,
            check=False,
        )
    finally:
        os.close(write)


def test_a_closed_pipe_changes_nothing_but_the_output(applied: Scratch) -> None:
    """The reader stopping early is no error: the exit code is the command's own, and no traceback."""
    for args, expected in [
        (["plan", str(applied.repo), "--now", LATER], 0),
        (["--help"], 0),
        (["log", str(applied.repo)], 0),
        (["status", str(applied.repo), "--now", LATER, "--format", "json"], 0),
    ]:
        result = _to_a_closed_pipe(*args)
        assert result.returncode == expected, (args, result.stderr)
        assert "Traceback" not in result.stderr and "BrokenPipe" not in result.stderr
    applied.edit(ISP, "max_length: 26", "max_length: 27")
    assert _to_a_closed_pipe("plan", str(applied.repo), "--now", LATER).returncode == 2  # the verdict


def test_no_changes_is_said_once(applied: Scratch) -> None:
    planned = rpkictl("plan", str(applied.repo), "--now", LATER)
    assert planned.returncode == 0
    assert planned.stdout.count("No changes") == 1, planned.stdout
    noop = rpkictl("apply", str(applied.repo), "--simulate-time", "--now", LATER)
    assert noop.returncode == 0
    assert noop.stdout.count("No changes") == 1, noop.stdout


def test_durations_read_as_words() -> None:
    assert describe_span(timedelta(days=3, hours=4)) == "3 days 4 hours"
    assert describe_span(timedelta(hours=1, minutes=1)) == "1 hour 1 minute"
    assert describe_span(timedelta(seconds=40)) == "40 seconds"
    assert describe_span(timedelta(days=1)) == "1 day"


def test_a_saved_plan_too_old_says_its_age_in_words(applied: Scratch, tmp_path: Path) -> None:
    applied.edit(ISP, "max_length: 26", "max_length: 27")
    saved = tmp_path / "plan.json"
    assert rpkictl("plan", str(applied.repo), "--now", LATER, "--out", str(saved)).returncode == 2
    refused = rpkictl("apply", str(saved), "--simulate-time", "--now", "2026-11-26T16:05:00Z", "--yes")
    assert refused.returncode == 4
    assert "made 3 days 4 hours ago" in refused.stderr and "more than the 1 hour allowed" in refused.stderr
    assert ":00:00" not in refused.stderr.split("ago")[0]


def _commit(tmp_path: Path) -> str:
    with git.Repo.init(tmp_path) as repo:  # closed: gitpython keeps git helper processes otherwise
        with repo.config_writer() as config:
            config.set_value("user", "name", "Test").set_value("user", "email", "test@example.invalid")
        repo.index.add(["state"])
        return repo.index.commit("desired state").hexsha


def test_a_stale_plan_names_the_uncommitted_edits_not_the_same_commit_twice(applied: Scratch) -> None:
    head = _commit(applied.root)[:12]
    applied.edit(ISP, "max_length: 26", "max_length: 27")
    saved = applied.root / "plan.json"
    assert rpkictl("plan", str(applied.repo), "--now", LATER, "--out", str(saved)).returncode == 2
    applied.edit(ISP, "max_length: 27", "max_length: 28")
    refused = rpkictl("apply", str(saved), "--simulate-time", "--now", LATER, "--yes")
    assert refused.returncode == 4, refused.stderr
    assert f"{head} -> {head}" not in refused.stderr
    digests = json.loads(saved.read_text())["desired"]["digest"][:12]
    assert f"uncommitted edits on commit {head} (YAML digest {digests} -> " in refused.stderr


# --- --now everywhere -----------------------------------------------------------------------------------


def test_reconcile_tal_and_log_take_now(applied: Scratch) -> None:
    applied.edit(ISP, "max_length: 26", "max_length: 27")
    cycle = rpkictl(
        "reconcile", str(applied.repo), "--once", "--allow-uncommitted", "--simulate-time", "--now", LATER
    )
    assert cycle.returncode == 0, cycle.stderr
    assert re.match(r"2026-11-23T12:0[5-9]:\d\dZ reconcile: ", cycle.stdout), cycle.stdout  # from --now
    assert rpkictl("tal", str(applied.repo), "--now", LATER).returncode == 0
    shown = rpkictl("log", str(applied.repo), "--now", "2099-01-01T00:00:00Z")
    assert shown.returncode == 0, shown.stderr
    assert re.search(r"#\d+ \S+ \(\d+ weeks? .*ago\) applied by", shown.stdout), shown.stdout
