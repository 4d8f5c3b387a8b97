"""scripts/github/check.sh, the scheduled check: rpkictl check's verdict as the job's status."""

from __future__ import annotations

import pytest

from tests.github.helpers import LATER, run_step
from tests.helpers import Scratch


@pytest.mark.parametrize(
    ("now", "code", "status"),
    [
        (LATER, 0, "ok"),  # the manifests are valid for 24 hours
        ("2026-11-24T09:00:00Z", 1, "warning"),  # 3 hours left: within --warn 4h
        ("2026-11-24T11:30:00Z", 2, "critical"),  # 30 minutes left: within --critical 1h
    ],
)
def test_the_job_fails_on_warning_and_critical(applied: Scratch, now: str, code: int, status: str) -> None:
    step = run_step("check.sh", "state", "--now", now, cwd=applied.root)
    assert step.code == code, step.stdout
    assert step.outputs == {"status": status, "check_exit": str(code)}
    assert step.summary.startswith(f"### RPKI check: {status}\n")
    assert step.stdout.strip() in step.summary


def test_options_go_to_rpkictl_check(applied: Scratch) -> None:
    step = run_step("check.sh", "state", "--now", "2026-11-24T09:00:00Z", "--warn", "2h", cwd=applied.root)
    assert step.code == 0, step.stdout


def test_an_unreadable_state_is_critical(scratch: Scratch) -> None:
    (scratch.repo / "rpki.yaml").write_text("publication: [\n")
    step = run_step("check.sh", "state", cwd=scratch.root)
    assert step.code == 2
    assert step.outputs["status"] == "critical"
