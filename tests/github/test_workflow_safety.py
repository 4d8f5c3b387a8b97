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
        if (path.name, job_id) == ("rpki-plan-comment.yml", "comment"):
            assert writes == {"pull-requests"}  # the comment and the labels
            assert granted == {"contents": "read", "actions": "read", "pull-requests": "write"}
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


def github_hosted(job: dict[str, Any]) -> bool:
    """Whether the job runs on a fresh GitHub-hosted machine (one label, not self-hosted)."""
    runs_on = job["runs-on"]
    return isinstance(runs_on, str) and runs_on.startswith(("ubuntu-", "windows-", "macos-"))


def self_hosted(job: dict[str, Any]) -> bool:
    runs_on = job["runs-on"]
    return isinstance(runs_on, list) and "self-hosted" in runs_on


# The jobs that sign: the only ones on the CA machine, and the only ones with secrets. Everything else
# (plans, the comment, the check) runs on GitHub's runners and reads the repository over RRDP.
SIGNING_JOBS = {("rpki-apply.yml", "apply"), ("rpki-check.yml", "renew")}


def test_only_the_signing_jobs_run_on_the_ca_machine_and_see_secrets() -> None:
    placed: dict[tuple[str, str], str] = {}
    secrets: set[tuple[str, str]] = set()
    for path in sorted(EXAMPLES.glob("*.yml")):
        for job_id, job in load(path)["jobs"].items():
            assert github_hosted(job) or self_hosted(job), (path.name, job_id, job["runs-on"])
            placed[(path.name, job_id)] = "ca" if self_hosted(job) else "hosted"
            if "secrets." in text(job):
                secrets.add((path.name, job_id))
    assert {where for where, machine in placed.items() if machine == "ca"} == SIGNING_JOBS
    assert secrets == SIGNING_JOBS


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.yml")), ids=lambda p: p.name)
def test_the_ca_machine_runs_only_code_from_main(path: Path) -> None:
    """A self-hosted job runs only on events whose code is main's: a push to main, the schedule, or by
    hand (workflow_dispatch, which people with write access start)."""
    workflow = load(path)
    if any(self_hosted(job) for job in workflow["jobs"].values()):
        assert set(workflow["on"]) <= {"push", "schedule", "workflow_dispatch"}, path.name
        if "push" in workflow["on"]:
            assert workflow["on"]["push"] == {"branches": ["main"]}


def test_plan_runs_on_pull_requests_on_a_hosted_runner_without_secrets() -> None:
    workflow = load(EXAMPLES / "rpki-plan.yml")
    assert set(workflow["on"]) == {"pull_request"}
    assert "secrets." not in text(workflow)
    (job,) = workflow["jobs"].values()
    assert github_hosted(job) and "environment" not in job
    assert job.get("permissions", workflow["permissions"]) == {"contents": "read"}  # not even a comment
    steps = job["steps"]
    (plan,) = [s for s in steps if "scripts/github/plan.sh" in str(s.get("run", ""))]
    command = " ".join(plan["run"].split())
    assert command.startswith("scripts/github/plan.sh state --published ")
    assert '--base "origin/${BASE_REF}"' in command
    # The public notification URL is a repository variable, not a secret.
    assert plan["env"]["RPKI_RRDP_URL"] == "${{ vars.RPKI_RRDP_URL }}"
    assert '"${RPKI_RRDP_URL:?' in command
    (install,) = [s for s in steps if "pip install" in str(s.get("run", ""))]
    assert install["env"] == {"RPKICTL_PACKAGE": "${{ vars.RPKICTL_PACKAGE }}"}
    (upload,) = [s for s in steps if str(s.get("uses", "")).startswith("actions/upload-artifact@")]
    assert upload["with"]["name"] == "rpki-plan"
    assert not any("sticky-pull-request-comment" in str(s.get("uses", "")) for s in steps)


def test_the_comment_workflow_never_runs_the_pull_requests_code() -> None:
    """workflow_run runs main's workflow with a token that can write: it checks out main (no ref), reads
    the plan run's artifact as data (pr-artifact.sh), and posts what passed the check."""
    workflow = load(EXAMPLES / "rpki-plan-comment.yml")
    assert workflow["on"] == {"workflow_run": {"workflows": ["RPKI plan"], "types": ["completed"]}}
    assert load(EXAMPLES / "rpki-plan.yml")["name"] == "RPKI plan"
    (job,) = workflow["jobs"].values()
    assert github_hosted(job) and "environment" not in job and "secrets." not in text(job)
    assert "github.event.workflow_run.event == 'pull_request'" in job["if"]
    steps = job["steps"]
    (checkout,) = [s for s in steps if str(s.get("uses", "")).startswith("actions/checkout@")]
    assert set(checkout["with"]) == {"persist-credentials"}  # main's scripts, not the pull request's
    (download,) = [s for s in steps if str(s.get("uses", "")).startswith("actions/download-artifact@")]
    assert download["with"]["run-id"] == "${{ github.event.workflow_run.id }}"
    runs = [s["run"] for s in steps if "run" in s]
    assert runs == [
        'scripts/github/pr-artifact.sh "${PLAN_DIR}"',
        'scripts/github/pr-labels.sh "${PR}" "${ADD}" "${REMOVE}"',
    ]
    check = next(s for s in steps if "pr-artifact.sh" in str(s.get("run", "")))
    assert check["env"]["HEAD_SHA"] == "${{ github.event.workflow_run.head_sha }}"
    (comment,) = [s for s in steps if "sticky-pull-request-comment" in str(s.get("uses", ""))]
    assert comment["with"]["path"] == "${{ steps.pr.outputs.plan_markdown }}"
    assert comment["with"]["number"] == "${{ steps.pr.outputs.number }}"
    # Every value a later step uses comes from the checked outputs, never from the artifact directly.
    for step in steps[steps.index(check) + 1 :]:
        assert "rpki-plan" not in text(step), step


def test_apply_is_serialised_and_never_cancelled() -> None:
    workflow = load(EXAMPLES / "rpki-apply.yml")
    assert set(workflow["on"]) == {"push", "workflow_dispatch"}
    assert workflow["on"]["push"]["branches"] == ["main"]
    assert workflow["concurrency"] == {"group": "rpki-apply", "cancel-in-progress": False}
    assert not any("concurrency" in job for job in workflow["jobs"].values())  # the whole run is one unit


def test_apply_environment_and_approvals_follow_the_plan() -> None:
    jobs = load(EXAMPLES / "rpki-apply.yml")["jobs"]
    assert "secrets." not in text(jobs["plan"])
    plan_step = next(s for s in jobs["plan"]["steps"] if "plan.sh" in str(s.get("run", "")))
    assert plan_step["run"].startswith("scripts/github/plan.sh state --published ")
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
    assert github_hosted(check)
    (step,) = [s for s in check["steps"] if "check.sh" in str(s.get("run", ""))]
    assert step["run"].startswith("scripts/github/check.sh state --published ")
    assert step["env"] == {"RPKI_RRDP_URL": "${{ vars.RPKI_RRDP_URL }}"}


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
    assert called == {
        f"scripts/github/{n}.sh" for n in ("plan", "pr-artifact", "pr-labels", "apply", "check")
    }
    for script in called:
        assert os.access(ROOT / script, os.X_OK), script
