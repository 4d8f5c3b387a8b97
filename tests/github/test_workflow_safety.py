"""Safety properties of the workflows, read from their YAML: which events run them, which jobs see
secrets, what the token may do, and that applies are serialised and never cancelled."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from tests.github.helpers import ROOT

EXAMPLES = ROOT / "examples" / "github" / "workflows"
SIGNING = {"rpki-signing", "rpki-signing-approval"}
ALL = sorted([*ROOT.glob(".github/workflows/*.yml"), *EXAMPLES.glob("*.yml")])


def load(path: Path) -> dict[str, Any]:
    workflow: dict[str, Any] = YAML(typ="safe").load(path.read_text())
    # YAML 1.1 readers turn the key "on" into True; GitHub reads it as "on".
    if True in workflow:
        workflow["on"] = workflow.pop(True)
    return workflow


def text(node: Any) -> str:
    return repr(node)


def environments(job: dict[str, Any]) -> set[str]:
    """The environment names a job can run in (a literal, or the literals of an expression)."""
    env = job.get("environment")
    if env is None:
        return set()
    name = env["name"] if isinstance(env, dict) else env
    # In "cond && 'a' || 'b'" the results are the literals after && and ||.
    return set(re.findall(r"(?:&&|\|\|)\s*'([^']+)'", name)) if "${{" in name else {name}


@pytest.mark.parametrize("path", ALL, ids=lambda p: p.name)
def test_secrets_only_in_jobs_bound_to_a_signing_environment(path: Path) -> None:
    workflow = load(path)
    assert "secrets." not in text({k: v for k, v in workflow.items() if k != "jobs"})
    for job_id, job in workflow["jobs"].items():
        if "secrets." in text(job):
            assert environments(job) and environments(job) <= SIGNING, job_id
            assert "secrets." not in text(job.get("env", {})), f"{job_id}: secrets belong on the step"


@pytest.mark.parametrize("path", ALL, ids=lambda p: p.name)
def test_the_token_can_only_read_unless_a_job_says_more(path: Path) -> None:
    workflow = load(path)
    assert workflow["permissions"] == {"contents": "read"}
    for job_id, job in workflow["jobs"].items():
        granted = job.get("permissions", {})
        assert isinstance(granted, dict), job_id  # never read-all / write-all
        writes = {scope for scope, level in granted.items() if level != "read"}
        if (path.name, job_id) == ("rpki-plan.yml", "plan"):
            assert writes == {"pull-requests"}  # the comment and the labels
        else:
            assert writes == set(), job_id


@pytest.mark.parametrize("path", ALL, ids=lambda p: p.name)
def test_checkouts_keep_no_credentials_and_no_pull_request_target(path: Path) -> None:
    workflow = load(path)
    assert "pull_request_target" not in workflow["on"]
    for job in workflow["jobs"].values():
        for step in job["steps"]:
            if str(step.get("uses", "")).startswith("actions/checkout@"):
                assert step["with"]["persist-credentials"] is False


def test_plan_runs_on_pull_requests_without_secrets() -> None:
    workflow = load(EXAMPLES / "rpki-plan.yml")
    assert set(workflow["on"]) == {"pull_request"}
    assert "secrets." not in text(workflow)
    assert not any(environments(job) for job in workflow["jobs"].values())
    steps = workflow["jobs"]["plan"]["steps"]
    assert "scripts/github/plan.sh state" in text(steps)
    (comment,) = [s for s in steps if "sticky-pull-request-comment" in str(s.get("uses", ""))]
    assert comment["with"]["path"] == "${{ steps.plan.outputs.plan_markdown }}"
    assert "scripts/github/pr-labels.sh" in text(steps)


def test_apply_is_serialised_and_never_cancelled() -> None:
    workflow = load(EXAMPLES / "rpki-apply.yml")
    assert set(workflow["on"]) == {"push", "workflow_dispatch"}
    assert workflow["on"]["push"]["branches"] == ["main"]
    assert workflow["concurrency"] == {"group": "rpki-apply", "cancel-in-progress": False}
    assert not any("concurrency" in job for job in workflow["jobs"].values())  # the whole run is one unit


def test_apply_environment_and_approvals_follow_the_plan() -> None:
    jobs = load(EXAMPLES / "rpki-apply.yml")["jobs"]
    assert "secrets." not in text(jobs["plan"])
    apply = jobs["apply"]
    assert apply["needs"] == "plan"
    gated = "needs.plan.outputs.approval_required == 'true'"
    assert apply["environment"] == f"${{{{ {gated} && 'rpki-signing-approval' || 'rpki-signing' }}}}"
    (step,) = [s for s in apply["steps"] if "run" in s]
    assert step["run"].strip() == "scripts/github/apply.sh state"
    # Approvals come only from the reviewed plan, and only when the job is in the approval environment.
    assert step["env"]["RPKI_APPROVE_FROM"].startswith(f"${{{{ {gated} && ")
    assert step["env"]["RPKI_LOCK_TIMEOUT"] == "10m"
    assert {k for k, v in step["env"].items() if "secrets." in v} == {"RPKI_HSM_PIN", "RPKI_KEY_PASSPHRASE"}


def test_the_scheduled_jobs() -> None:
    workflow = load(EXAMPLES / "rpki-check.yml")
    assert set(workflow["on"]) == {"schedule", "workflow_dispatch"}
    (cron,) = workflow["on"]["schedule"]
    assert cron["cron"].split()[1:] == ["*", "*", "*", "*"]  # every hour
    renew, check = workflow["jobs"]["renew"], workflow["jobs"]["check"]
    assert renew["environment"] == "rpki-signing"
    # Its own group: in rpki-apply, a queued renewal would replace a queued apply of a merge.
    assert renew["concurrency"] == {"group": "rpki-renew", "cancel-in-progress": False}
    assert "scripts/github/apply.sh state --routine-only" in text(renew["steps"])
    assert "secrets." not in text(check) and "environment" not in check
    assert "scripts/github/check.sh state" in text(check["steps"])


def test_the_projects_ci_runs_ci_run_and_lints_the_workflows() -> None:
    jobs = load(ROOT / ".github" / "workflows" / "ci.yml")["jobs"]
    assert jobs["test"]["container"]["image"] == "debian:bookworm"
    assert "bash .ci/run" in text(jobs["test"]["steps"])
    lint = text(jobs["workflows"]["steps"])
    assert "vendor.github-workflows" in lint
    assert ".github/workflows/*.yml examples/github/workflows/*.yml" in lint
    assert "shellcheck .ci/run scripts/github/*.sh" in lint


def test_every_script_a_workflow_runs_exists_and_is_executable() -> None:
    called = {m for path in ALL for m in re.findall(r"scripts/github/[\w.-]+\.sh", path.read_text())}
    assert called == {f"scripts/github/{n}.sh" for n in ("plan", "pr-labels", "apply", "check")}
    for script in called:
        assert os.access(ROOT / script, os.X_OK), script
