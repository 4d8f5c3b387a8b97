"""scripts/github/apply.sh, the apply step of the signing environments: --yes with a lock timeout, gates
approved only from the reviewed plan (RPKI_APPROVE_FROM), and only for the commit it was planned from."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from reconciler.apply import audit
from tests.github.helpers import ISP, LATER, run_step
from tests.github.test_plan_script import _empty_isp
from tests.helpers import Scratch


def _git(root: Path, *args: str) -> str:
    base = ["git", "-C", str(root), "-c", "user.name=t", "-c", "user.email=t@example.net"]
    return subprocess.run([*base, *args], check=True, capture_output=True, text=True).stdout.strip()


def _commit(scratch: Scratch, message: str) -> str:
    """Commit the desired state (keys and publication stay outside Git, beside it)."""
    if not (scratch.root / ".git").exists():
        _git(scratch.root, "init", "-q", "-b", "main")
    _git(scratch.root, "add", "-A", "state")
    _git(scratch.root, "commit", "-q", "-m", message)
    return _git(scratch.root, "rev-parse", "HEAD")


def _approved(scratch: Scratch) -> list[dict[str, str]]:
    entries = audit.read(scratch.root / "published" / "audit.jsonl")
    return [a for e in entries if e.record["status"] == "applied" for a in e.record["approvals"]]


def test_without_approvals_a_gated_plan_is_refused(applied: Scratch) -> None:
    served = applied.rsync.resolve()
    _empty_isp(applied)
    step = run_step("apply.sh", "state", "--simulate-time", "--now", LATER, cwd=applied.root)
    assert step.code == 3, step.stdout
    assert step.outputs == {"applied": "false", "exit_code": "3"}
    assert "RPKI apply: refused: gates not approved, nothing signed (exit 3)" in step.summary
    assert "--approve ca-empty@example-isp:" in step.summary  # rpkictl's own message, for the reviewer
    assert applied.rsync.resolve() == served


def test_the_reviewed_plan_approves_its_gates(applied: Scratch) -> None:
    """The plan job's plan.json, computed from the merged commit, carries the tokens the reviewer saw."""
    _empty_isp(applied)
    commit = _commit(applied, "remove example-isp's ROAs")
    planned = run_step("plan.sh", "state", "--now", LATER, cwd=applied.root, env={"RPKI_PLAN_DIR": "plan"})
    assert planned.outputs["approval_required"] == "true"
    plan = json.loads((applied.root / "plan" / "plan.json").read_text())
    assert plan["desired"]["git_commit"] == commit
    (token,) = [g["approve"] for g in plan["gates"]]

    step = run_step(
        "apply.sh",
        "state",
        "--simulate-time",
        "--now",
        LATER,
        cwd=applied.root,
        env={"RPKI_APPROVE_FROM": "plan/plan.json"},
    )
    assert step.code == 0, step.stdout + step.stderr
    assert step.outputs == {"applied": "true", "exit_code": "0"}
    assert f"approving 1 gate(s) from plan/plan.json: {token}" in step.stdout
    assert "RPKI apply: applied (or nothing to do) (exit 0)" in step.summary
    gate, digest = token.split(":")
    assert _approved(applied) == [{"gate": gate, "hash": digest, "how": "--approve"}]
    assert not any(path.suffix == ".roa" for path in (applied.rsync / "example-isp").iterdir())


def test_a_plan_of_another_commit_approves_nothing(applied: Scratch) -> None:
    served = applied.rsync.resolve()
    _empty_isp(applied)
    _commit(applied, "remove example-isp's ROAs")
    run_step("plan.sh", "state", "--now", LATER, cwd=applied.root, env={"RPKI_PLAN_DIR": "plan"})
    (applied.repo / ISP).unlink()  # a later merge removes the CA itself
    _commit(applied, "remove example-isp")
    step = run_step(
        "apply.sh",
        "state",
        "--simulate-time",
        "--now",
        LATER,
        cwd=applied.root,
        env={"RPKI_APPROVE_FROM": "plan/plan.json"},
    )
    assert step.code == 1
    assert "its approvals do not apply here" in step.stderr
    assert applied.rsync.resolve() == served
    assert _approved(applied) == []


def test_the_tokens_approve_only_the_items_the_plan_flagged(applied: Scratch) -> None:
    """Outside Git: the reviewed plan emptied the CA; the state now removes the CA, a new gate."""
    _empty_isp(applied)
    run_step("plan.sh", "state", "--now", LATER, cwd=applied.root, env={"RPKI_PLAN_DIR": "plan"})
    (applied.repo / ISP).unlink()
    step = run_step(
        "apply.sh",
        "state",
        "--simulate-time",
        "--now",
        LATER,
        cwd=applied.root,
        env={"RPKI_APPROVE_FROM": "plan/plan.json"},
    )
    assert step.code == 3
    assert "ca-revoke@example-isp" in step.stdout
    assert _approved(applied) == []


def test_routine_only_keeps_gated_changes_waiting(applied: Scratch) -> None:
    """The scheduled renewal job: apply.sh STATE --routine-only renews, and never applies a gated change."""
    _empty_isp(applied)
    step = run_step(
        "apply.sh",
        "state",
        "--routine-only",
        "--simulate-time",
        "--now",
        "2026-11-24T06:00:00Z",
        cwd=applied.root,
    )
    assert step.code == 0, step.stdout + step.stderr
    assert any(path.suffix == ".roa" for path in (applied.rsync / "example-isp").iterdir())
    check = run_step("check.sh", "state", "--now", "2026-11-24T11:30:00Z", "--warn", "4h", cwd=applied.root)
    assert "manifest and CRL expire" not in check.stdout  # renewed: valid beyond the margins


def test_nothing_to_do(applied: Scratch) -> None:
    step = run_step("apply.sh", "state", "--simulate-time", "--now", LATER, cwd=applied.root)
    assert step.code == 0, step.stdout
    assert step.outputs["applied"] == "true"
