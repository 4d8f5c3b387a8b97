"""Two applies on one publication point whose lock was broken under the first: a holder frozen past
its lease (a real process, stopped with SIGSTOP), and a holder whose clock runs an hour slow. Whatever
the order, every served object matches its manifest, and each change is applied or refused -- and
audited as such -- never reported applied and then lost."""

from __future__ import annotations

import fcntl
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from reconciler import engine, published
from reconciler.apply import audit, lock
from reconciler.desired import load
from tests.crash.test_kill_points import consistency_problems
from tests.e2e.harness import find_tool, install_hint
from tests.e2e.relying_parties import assert_accepts_exactly_the_yaml, validate
from tests.helpers import Scratch, scratch_copy
from tests.publish.test_rrdp import with_rrdp
from tests.test_cli_review import rpkictl

ISP = "cas/members/example-isp.yaml"
FIRST_ROA = (64497, "198.51.100.0/26", 26)  # the first apply's change, in example-isp
SECOND_ROA = (64500, "203.0.113.0/24", 24)  # the second apply's change, in online


def add_first_change(scratch: Scratch) -> None:
    text = (scratch.repo / ISP).read_text()
    scratch.write(ISP, text + "  - {asn: AS64497, prefix: 198.51.100.0/26}\n")


def add_second_change(scratch: Scratch) -> None:
    text = (scratch.repo / "cas/online.yaml").read_text()
    scratch.write("cas/online.yaml", text + "roas:\n  - {asn: AS64500, prefix: 203.0.113.0/24}\n")


def applied_copy(tmp_path: Path, *, rrdp: bool = False) -> Scratch:
    scratch = with_rrdp(scratch_copy(tmp_path)) if rrdp else scratch_copy(tmp_path)
    done = rpkictl("apply", str(scratch.repo), "--yes")
    assert done.returncode == 0, done.stderr
    return scratch


@pytest.fixture
def applied(tmp_path: Path) -> Scratch:
    return applied_copy(tmp_path)


def served_vrps(scratch: Scratch) -> frozenset[tuple[int, str, int]]:
    return frozenset((asn, str(prefix), length) for asn, prefix, length in scratch.vrps())


def wait_stopped(process: subprocess.Popen[str], timeout: float = 60) -> None:
    """Until the process has stopped itself (state T in /proc), or fail."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()
        state = Path(f"/proc/{process.pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        if state in ("T", "t"):
            return
        time.sleep(0.05)
    process.kill()
    pytest.fail("the first apply never reached its stop point")


def guard_free(scratch: Scratch) -> bool:
    """Whether the lock's guard can be taken now (a stopped process may be holding it)."""
    fd = os.open(load(scratch.repo).publication.directory / lock.GUARD_NAME, os.O_RDWR | os.O_CREAT)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    finally:
        os.close(fd)
    return True


def statuses(scratch: Scratch) -> list[tuple[str, str]]:
    return [
        (str(e.record.get("status")), str(e.record.get("message", "")))
        for e in audit.read(load(scratch.repo).audit_log_path)
    ]


def race_with_a_stopped_holder(applied: Scratch, stop_at: str) -> None:
    """The first apply freezes at ``stop_at``; its one-second lease runs out, the second breaks the
    lock, says so, and publishes; the first, woken, must publish nothing and say so."""
    add_first_change(applied)
    for _ in range(3):
        first = subprocess.Popen(
            [sys.executable, "-m", "reconciler", "apply", str(applied.repo), "--yes"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            text=True,
            env={**os.environ, "RPKICTL_STOP_AT": stop_at, lock.LEASE_ENV: "1"},
        )
        wait_stopped(first)
        if guard_free(applied):
            break
        # Its heartbeat froze inside the lock's microsecond guard: nobody may break that lock (the
        # second apply would be refused, not hang); start the scenario again.
        first.kill()
        first.communicate()
    try:
        add_second_change(applied)
        time.sleep(1.2)  # the first's lease is over; its heartbeat is frozen with it
        second = rpkictl("apply", str(applied.repo), "--yes")
        assert second.returncode == 0, second.stderr
        assert "a stale lock was broken" in second.stderr
    finally:
        first.send_signal(signal.SIGCONT)
    out, errors = first.communicate(timeout=120)
    assert "lost the publication lock" in errors
    if stop_at.startswith("rrdp"):  # its tree was out, under the lock, before it froze
        assert first.returncode == 1, out + errors
        assert "the rsync tree is published" in errors and "RRDP was not written by this apply" in errors
    else:
        assert first.returncode == 5, out + errors  # refused: the lock is someone else's
        assert "nothing was published" in errors


def assert_both_changes_served_and_audited(applied: Scratch, *, refused: bool = True) -> None:
    files = published.read(applied.rsync).files
    assert consistency_problems(files) == []
    assert {FIRST_ROA, SECOND_ROA} <= served_vrps(applied)  # the second apply planned with both
    workspace = engine.open_workspace(applied.repo)
    assert engine.rrdp_drift(workspace) is None  # RRDP (when served) serves the rsync tree
    records = statuses(applied)
    assert [s for s, _ in records].count("applied") == 2  # the baseline and the second apply
    outcome = [m for s, m in records if s == ("refused" if refused else "failed")]
    assert len(outcome) == 1 and "lost the publication lock" in outcome[0]
    assert len([m for s, m in records if s == "applied" and "stale lock" in m]) == 1
    assert audit.verify(load(applied.repo).audit_log_path) == []


@pytest.mark.parametrize("stop_at", ["audit.started", "rsync.before-swap", "rrdp.before-notification"])
def test_a_holder_stopped_past_its_lease_is_refused(tmp_path: Path, stop_at: str) -> None:
    """Frozen before signing, with its new tree built, or (with RRDP) before its notification."""
    applied = applied_copy(tmp_path, rrdp=stop_at.startswith("rrdp"))
    race_with_a_stopped_holder(applied, stop_at)
    assert_both_changes_served_and_audited(applied, refused=not stop_at.startswith("rrdp"))


@pytest.mark.e2e
def test_after_the_race_rpki_client_sees_both_changes(applied: Scratch) -> None:
    """What rpki-client (Debian's) derives from the tree the race left: exactly the YAML's VRPs."""
    if find_tool("rpki-client") is None:
        pytest.fail(f"rpki-client is not installed (install with: {install_hint('rpki-client')})")
    race_with_a_stopped_holder(applied, "audit.started")
    assert_both_changes_served_and_audited(applied)
    assert_accepts_exactly_the_yaml(applied, validate(applied, ("rpki-client",)))


class SlowClock:
    """A clock an hour behind the real one."""

    def __call__(self) -> datetime:
        return datetime.now(UTC) - timedelta(hours=1)


def test_a_holder_whose_clock_runs_an_hour_slow_is_refused(applied: Scratch) -> None:
    """The first apply's lease is an hour in the past to everyone else as soon as it is written: the
    second apply (a real process) breaks it and publishes, and the first finds out before its swap."""
    add_first_change(applied)
    desired = load(applied.repo)
    held = lock.acquire(
        desired.publication.directory,
        who="slow@clock",
        operation="apply",
        plan_id=None,
        timeout=timedelta(0),
        now=SlowClock(),
    )
    try:
        workspace = engine.workspace_for(desired)
        first_at = datetime.now(UTC)
        the_plan = engine.plan(workspace, first_at)
        doc = engine.AuditedPlan.of(engine.plan_document(workspace, the_plan))

        add_second_change(applied)
        second = rpkictl("apply", str(applied.repo), "--yes")
        assert second.returncode == 0, second.stderr
        assert "stale lock" in second.stdout + second.stderr

        with pytest.raises(lock.LockLost, match="lost the publication lock"):
            engine.apply_recorded(workspace, the_plan, doc, [], now=first_at, held=held)
    finally:
        held.release()
    files = published.read(applied.rsync).files
    assert consistency_problems(files) == []
    assert {FIRST_ROA, SECOND_ROA} <= served_vrps(applied)
    records = [s for s, _ in statuses(applied)]
    assert records.count("applied") == 2
    assert records[-1] == "refused"
    assert audit.verify(load(applied.repo).audit_log_path) == []
