"""``rpkictl reconcile``: what an unattended run applies and what it leaves for a person, the loop's
backoff and clean stop, and following the desired-state repository with --pull."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import git
import pytest

from reconciler import engine, reconcile
from reconciler.apply import audit, lock
from reconciler.desired import load
from reconciler.plan.gitcontext import GitContextError
from tests.helpers import T0, Scratch, committed_copy, later, scratch_copy
from tests.test_cli_review import rpkictl

EMPTY_ISP = "roas: []\n"


def _empty_isp_roas(scratch: Scratch) -> None:
    path = scratch.repo / "cas" / "members" / "example-isp.yaml"
    text = path.read_text()
    path.write_text(text[: text.index("roas:")] + EMPTY_ISP)


def _manifest_numbers(scratch: Scratch) -> dict[str, int | None]:
    workspace = engine.open_workspace(scratch.repo)
    return {ca.name: ca.manifest_number for ca in engine.status(workspace, T0).cas}


def test_a_first_cycle_publishes_the_desired_state_and_records_it(tmp_path: Path) -> None:
    scratch = scratch_copy(tmp_path)
    result = reconcile.cycle(scratch.repo, T0, allow_uncommitted=True)
    assert result.applied > 0 and result.signed > 0 and not result.waiting
    assert scratch.vrps() == scratch.desired_vrps()
    records = [e.record for e in audit.read(load(scratch.repo).audit_log_path)]
    assert [r["status"] for r in records] == ["started", "applied"]
    assert reconcile.cycle(scratch.repo, later(1), allow_uncommitted=True).applied == 0  # converged


def test_a_gated_change_waits_while_renewals_go_out(tmp_path: Path) -> None:
    scratch = scratch_copy(tmp_path)
    reconcile.cycle(scratch.repo, T0, allow_uncommitted=True)
    before_vrps = scratch.vrps()
    before = _manifest_numbers(scratch)
    _empty_isp_roas(scratch)
    result = reconcile.cycle(scratch.repo, later(17), allow_uncommitted=True)  # manifests and CRLs are due
    assert "ca-empty@example-isp" in result.waiting and result.held > 0
    assert result.applied > 0  # the renewals
    assert scratch.vrps() == before_vrps  # the deletion was not applied
    after = _manifest_numbers(scratch)
    assert all(after[ca] > before[ca] for ca in ("online", "example-isp"))  # type: ignore[operator]
    described = result.describe()
    assert "wait for approval (" in described and "ca-empty@example-isp" in described


def test_drift_is_repaired_without_a_person(tmp_path: Path) -> None:
    scratch = scratch_copy(tmp_path)
    reconcile.cycle(scratch.repo, T0, allow_uncommitted=True)
    wanted = scratch.vrps()
    next(scratch.rsync.resolve().glob("example-isp/*.roa")).unlink()
    assert scratch.vrps() != wanted
    result = reconcile.cycle(scratch.repo, later(1), allow_uncommitted=True)
    assert result.applied > 0 and not result.waiting
    assert scratch.vrps() == wanted


def test_routine_only_leaves_even_ungated_changes(tmp_path: Path) -> None:
    scratch = scratch_copy(tmp_path)
    reconcile.cycle(scratch.repo, T0, allow_uncommitted=True)
    scratch.edit("cas/members/example-isp.yaml", "max_length: 48}", "max_length: 47}")
    assert not engine.plan(engine.open_workspace(scratch.repo), later(1)).gates
    result = reconcile.cycle(scratch.repo, later(1), routine_only=True, allow_uncommitted=True)
    assert result.applied == 0 and result.waiting == ("--routine-only",) and result.held > 0
    # without --routine-only it goes out
    assert reconcile.cycle(scratch.repo, later(1), allow_uncommitted=True).applied > 0


def test_backoff_doubles_up_to_the_maximum() -> None:
    loop = reconcile.Loop(Path(), timedelta(minutes=10), timedelta(hours=1), log=lambda _: None)
    waits = []
    for failures in range(6):
        loop.failures = failures
        waits.append(loop.delay())
    assert waits == [timedelta(minutes=m) for m in (10, 10, 20, 40, 60, 60)]


def test_a_stop_signal_in_the_middle_of_a_log_line_is_noted_not_written_into_it(tmp_path: Path) -> None:
    """A signal handler runs between any two bytecodes: one that logged itself would write into a line
    being written (or wait on a lock its own thread holds). The stop is noted, then said in order."""
    scratch = scratch_copy(tmp_path)
    written: list[str] = []
    writing = False

    def log(message: str) -> None:
        nonlocal writing
        assert not writing, f"{message!r} written in the middle of {written[-1]!r}"
        writing = True
        try:
            written.append(message)
            if len(written) == 2:  # the first cycle's line: the signal comes while it is written
                os.kill(os.getpid(), signal.SIGTERM)
        finally:
            writing = False

    loop = reconcile.Loop(scratch.repo, timedelta(hours=1), timedelta(hours=1), log, allow_uncommitted=True)
    previous = signal.getsignal(signal.SIGTERM)
    reconcile.install_signal_handlers(loop)
    started = time.monotonic()
    try:
        loop.run()  # an hour's wait, ended by the signal
    finally:
        signal.signal(signal.SIGTERM, previous)
        signal.signal(signal.SIGINT, signal.default_int_handler)
    assert time.monotonic() - started < 60
    assert written[-2:] == ["received SIGTERM: stopped after the current cycle", "stopped"]
    assert len(written) == 4


def _start(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "reconciler", "reconcile", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        stdin=subprocess.DEVNULL,
    )


def _wait_for(process: subprocess.Popen[str], text: str, lines: list[str], timeout: float = 60) -> None:
    assert process.stdout is not None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        lines.append(line)
        if text in line:
            return
    raise AssertionError(f"{text!r} not seen in:\n{''.join(lines)}")


def test_the_loop_backs_off_on_failure_recovers_and_stops_on_sigterm(tmp_path: Path) -> None:
    scratch = scratch_copy(tmp_path)
    good = (scratch.repo / "rpki.yaml").read_text()
    (scratch.repo / "rpki.yaml").write_text("publication: [\n")
    process = _start(str(scratch.repo), "--allow-uncommitted", "--interval", "1s", "--max-backoff", "4s")
    lines: list[str] = []
    try:
        _wait_for(process, "retrying in 1s (failure 1)", lines)
        _wait_for(process, "retrying in 2s (failure 2)", lines)
        _wait_for(process, "retrying in 4s (failure 3)", lines)
        _wait_for(process, "retrying in 4s (failure 4)", lines)  # capped
        assert "rpki.yaml" in "".join(lines) and "nothing was signed" in "".join(lines)
        (scratch.repo / "rpki.yaml").write_text(good)
        _wait_for(process, "recovered after 4 failure(s)", lines)
        _wait_for(process, "signature(s)", lines)
        _wait_for(process, "nothing to apply", lines)
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
        _wait_for(process, "stopped", lines)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        assert process.stdout is not None
        process.stdout.close()
    assert scratch.vrps() == scratch.desired_vrps()
    assert any("received SIGTERM" in line for line in lines)


def test_once_exits_by_the_cycle_and_skips_a_held_lock(tmp_path: Path) -> None:
    scratch = scratch_copy(tmp_path)
    (scratch.repo / "rpki.yaml").write_text((scratch.repo / "rpki.yaml").read_text() + "bogus: 1\n")
    failed = rpkictl("reconcile", str(scratch.repo), "--once", "--allow-uncommitted")
    assert failed.returncode == 1 and "error:" in failed.stdout and "bogus" in failed.stdout
    rpki_yaml = scratch.repo / "rpki.yaml"
    rpki_yaml.write_text(rpki_yaml.read_text().replace("bogus: 1\n", ""))
    desired = load(scratch.repo)
    with lock.acquire(
        desired.publication.directory, who="test", operation="apply", plan_id=None, timeout=timedelta(0)
    ):
        held = rpkictl("reconcile", str(scratch.repo), "--once", "--allow-uncommitted", "--interval", "1s")
    assert held.returncode == 0 and "skipped: the publication point is locked" in held.stdout
    assert not (desired.publication.directory / "rsync").exists()
    done = rpkictl("reconcile", str(scratch.repo), "--once", "--allow-uncommitted")
    assert done.returncode == 0 and "applied" in done.stdout
    assert scratch.vrps() == scratch.desired_vrps()


@pytest.fixture
def remote_and_checkout(tmp_path: Path) -> tuple[git.Repo, Scratch]:
    """A desired-state repository pushed to a bare remote, and the checkout the CA host reconciles."""
    author = tmp_path / "author"
    origin = git.Repo.init(tmp_path / "origin.git", bare=True, initial_branch="main")
    scratch = scratch_copy(author)
    work = git.Repo.init(scratch.repo, initial_branch="main")
    with work.config_writer() as config:
        config.set_value("user", "name", "Author").set_value("user", "email", "author@example.net")
    work.git.add(".")
    work.index.commit("desired state")
    work.create_remote("origin", origin.git_dir).push("main:main")
    work.git.branch("--set-upstream-to=origin/main", "main")
    host = tmp_path / "host"
    host.mkdir()
    git.Repo.clone_from(origin.git_dir, host / "state")
    for sibling in ("keys", "published"):
        (host / sibling).mkdir(exist_ok=True)
    return work, Scratch(host)


def test_pull_follows_the_merged_desired_state(remote_and_checkout: tuple[git.Repo, Scratch]) -> None:
    work, host = remote_and_checkout
    assert rpkictl("reconcile", str(host.repo), "--once", "--pull").returncode == 0
    published = host.vrps()
    path = Path(work.working_dir) / "cas" / "members" / "example-isp.yaml"
    path.write_text(path.read_text().replace("max_length: 48}", "max_length: 47}", 1))
    work.git.commit("-am", "widen a ROA")
    work.remote("origin").push("main:main")
    result = rpkictl("reconcile", str(host.repo), "--once", "--pull")
    assert result.returncode == 0, result.stdout
    assert host.vrps() != published and host.vrps() == host.desired_vrps()
    assert git.Repo(host.repo).head.commit.hexsha == work.head.commit.hexsha


def test_a_failed_pull_still_renews(remote_and_checkout: tuple[git.Repo, Scratch], tmp_path: Path) -> None:
    _, host = remote_and_checkout
    assert reconcile.cycle(host.repo, T0).applied > 0
    git.Repo(host.repo).remote("origin").set_url(str(tmp_path / "gone.git"))
    result = reconcile.cycle(host.repo, later(17), git_pull=True)
    assert result.applied > 0
    assert any("git pull --ff-only failed" in note for note in result.notes)
    assert os.environ.get("GIT_DIR") is None  # the test did not leak into the project's repository


# --- only what was committed -----------------------------------------------------------------------------

ISP = "cas/members/example-isp.yaml"
WIDER = ("max_length: 48}", "max_length: 47}")  # one VRP replaced by a narrower one: no gate trips


@pytest.fixture
def checkout(tmp_path: Path) -> tuple[git.Repo, Scratch]:
    return committed_copy(tmp_path)


def _records(scratch: Scratch) -> list[dict[str, object]]:
    return [e.record for e in audit.read(load(scratch.repo).audit_log_path)]


def test_once_leaves_an_uncommitted_roa_edit_alone_until_it_is_committed(
    checkout: tuple[git.Repo, Scratch],
) -> None:
    repo, scratch = checkout
    first = rpkictl("reconcile", str(scratch.repo), "--once")
    assert first.returncode == 0, first.stdout + first.stderr
    published = scratch.vrps()
    assert published == scratch.desired_vrps()

    scratch.edit(ISP, *WIDER)
    assert scratch.desired_vrps() != published  # what the work tree now asks for
    edited = rpkictl("reconcile", str(scratch.repo), "--once")
    assert edited.returncode == 0, edited.stdout + edited.stderr
    head = repo.head.commit.hexsha
    assert (
        f"uncommitted changes in state/{ISP}: not applied (commit them, or revert them); applying the "
        f"committed HEAD {head[:12]}"
    ) in edited.stdout
    assert scratch.vrps() == published  # nothing of the edit went out

    repo.git.commit("-am", "narrow a ROA")
    committed = rpkictl("reconcile", str(scratch.repo), "--once")
    assert committed.returncode == 0, committed.stdout + committed.stderr
    assert "uncommitted" not in committed.stdout
    assert scratch.vrps() == scratch.desired_vrps() != published
    last = _records(scratch)[-1]
    assert last["git_commit"] == repo.head.commit.hexsha and last["git_dirty"] is False


def test_renewals_go_on_from_head_while_an_edit_waits_uncommitted(
    checkout: tuple[git.Repo, Scratch],
) -> None:
    repo, scratch = checkout
    reconcile.cycle(scratch.repo, T0)
    published = scratch.vrps()
    before = _manifest_numbers(scratch)
    scratch.edit(ISP, *WIDER)
    (scratch.repo / "cas" / "members" / "draft.yaml").write_text("name: draft\n")  # untracked, half done
    result = reconcile.cycle(scratch.repo, later(17))  # manifests and CRLs are due
    assert result.applied > 0  # the renewals, though the work tree does not even load
    note = next(n for n in result.notes if "uncommitted changes" in n)
    assert f"state/{ISP}" in note and "state/cas/members/draft.yaml" in note
    (scratch.repo / "cas" / "members" / "draft.yaml").unlink()
    assert scratch.vrps() == published
    after = _manifest_numbers(scratch)
    assert all(after[ca] > before[ca] for ca in ("online", "example-isp"))  # type: ignore[operator]
    assert f"applying the committed HEAD {repo.head.commit.hexsha[:12]}" in note
    record = _records(scratch)[-1]
    assert record["status"] == "applied"
    assert record["git_commit"] == repo.head.commit.hexsha and record["git_dirty"] is False


def test_a_desired_state_outside_git_is_refused_unless_allowed(tmp_path: Path) -> None:
    scratch = scratch_copy(tmp_path)
    refused = rpkictl("reconcile", str(scratch.repo), "--once")
    assert refused.returncode == 1
    assert "is not in a Git checkout" in refused.stdout and "--allow-uncommitted" in refused.stdout
    assert not scratch.rsync.exists()
    allowed = rpkictl("reconcile", str(scratch.repo), "--once", "--allow-uncommitted")
    assert allowed.returncode == 0, allowed.stdout + allowed.stderr
    assert scratch.vrps() == scratch.desired_vrps()
    assert _records(scratch)[-1]["git_commit"] is None


def test_allow_uncommitted_applies_the_edit_and_records_it_dirty(checkout: tuple[git.Repo, Scratch]) -> None:
    repo, scratch = checkout
    scratch.edit(ISP, *WIDER)
    result = reconcile.cycle(scratch.repo, T0, allow_uncommitted=True)
    assert result.applied > 0
    assert any("warning: applying uncommitted changes" in note for note in result.notes)
    assert scratch.vrps() == scratch.desired_vrps()
    record = _records(scratch)[-1]
    assert record["git_commit"] == repo.head.commit.hexsha and record["git_dirty"] is True


def test_a_committed_desired_state_that_does_not_load_is_an_error_naming_the_commit(
    checkout: tuple[git.Repo, Scratch],
) -> None:
    repo, scratch = checkout
    scratch.edit(ISP, *WIDER)
    (scratch.repo / "rpki.yaml").write_text((scratch.repo / "rpki.yaml").read_text() + "bogus: 1\n")
    repo.git.commit("-am", "a broken commit")
    scratch.edit(ISP, "max_length: 47}", "max_length: 48}")  # the work tree differs from the broken HEAD
    with pytest.raises(GitContextError, match=r"committed desired state \(HEAD [0-9a-f]{12}\)"):
        reconcile.cycle(scratch.repo, T0)
    assert not scratch.rsync.exists()
