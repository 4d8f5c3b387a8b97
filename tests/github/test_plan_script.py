"""scripts/github/plan.sh, the pull-request (and pre-apply) plan step: validate, plan, one comment, the
job summary, the step outputs and the label decision."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import jsonschema

from tests.github.helpers import ISP, LATER, NOW, ROOT, SCRIPTS, run_step
from tests.helpers import Scratch

MARKER = "<!-- rpkictl-plan -->"
APPROVAL = "rpki/approval-required"
REVOCATIONS = "rpki/revocations"


def _empty_isp(scratch: Scratch) -> None:
    """Remove every ROA of example-isp: a gated change (ca-empty) that revokes its four ROAs."""
    text = (scratch.repo / ISP).read_text()
    scratch.write(ISP, text.split("roas:")[0] + "roas: []\n")


def test_first_plan_has_changes_and_no_labels(scratch: Scratch) -> None:
    step = run_step("plan.sh", "state", "--now", NOW, cwd=scratch.root)
    assert step.code == 0, step.stderr
    assert step.outputs["planned"] == "true"
    assert step.outputs["plan_exit"] == "2"
    assert step.outputs["has_changes"] == "true"
    assert step.outputs["approval_required"] == "false"
    assert step.outputs["revocations"] == "0"
    assert step.outputs["labels_add"] == ""
    assert step.outputs["labels_remove"] == f"{APPROVAL},{REVOCATIONS}"
    comment = (scratch.root / step.outputs["plan_markdown"]).read_text()
    assert comment.startswith(MARKER + "\n")
    assert "no approval needed" in comment.splitlines()[1]
    assert comment in step.summary  # the job summary shows the same plan
    plan = json.loads((scratch.root / step.outputs["plan_json"]).read_text())
    jsonschema.validate(plan, json.loads((ROOT / "schemas" / "plan.schema.json").read_text()))
    assert plan["plan_id"] == step.outputs["plan_id"]
    assert plan["gates"] == []
    assert "state: valid" in step.stdout  # validate ran first


def test_no_changes_after_apply(applied: Scratch) -> None:
    step = run_step("plan.sh", "state", "--now", LATER, cwd=applied.root)
    assert step.code == 0, step.stderr
    assert step.outputs["plan_exit"] == "0"
    assert step.outputs["has_changes"] == "false"
    assert step.outputs["labels_add"] == ""


def test_a_gated_plan_with_revocations_gets_both_labels(applied: Scratch) -> None:
    _empty_isp(applied)
    step = run_step("plan.sh", "state", "--now", LATER, cwd=applied.root, env={"RPKI_PLAN_DIR": "out"})
    assert step.code == 0, step.stderr  # a plan with gates is a successful plan: the labels tell
    assert step.outputs["plan_exit"] == "3"
    assert step.outputs["approval_required"] == "true"
    assert step.outputs["revocations"] == "4"
    assert step.outputs["labels_add"] == f"{APPROVAL},{REVOCATIONS}"
    assert step.outputs["labels_remove"] == ""
    assert step.outputs["plan_markdown"] == "out/plan.md"
    plan = json.loads((applied.root / "out" / "plan.json").read_text())
    (gate,) = plan["gates"]
    assert gate["id"] == "ca-empty@example-isp"
    comment = (applied.root / "out" / "plan.md").read_text()
    assert comment.startswith(MARKER)
    assert "APPROVAL REQUIRED" in comment.splitlines()[1]
    assert f"--approve {gate['approve']}" in comment
    assert f"--approve {gate['approve']}" in step.summary


def test_a_reissued_roa_gets_the_revocations_label_only(applied: Scratch) -> None:
    """Widening one ROA's max length re-issues it and revokes the old one; no gate trips."""
    applied.edit(ISP, "max_length: 26", "max_length: 27")
    step = run_step("plan.sh", "state", "--now", LATER, cwd=applied.root)
    assert step.code == 0, step.stderr
    assert step.outputs["plan_exit"] == "2"
    assert step.outputs["approval_required"] == "false"
    assert step.outputs["revocations"] == "1"
    assert step.outputs["labels_add"] == REVOCATIONS
    assert step.outputs["labels_remove"] == APPROVAL


def test_invalid_yaml_fails_the_step_and_still_leaves_a_comment(scratch: Scratch) -> None:
    scratch.edit(ISP, "max_length: 26", "max_length: 99")
    step = run_step("plan.sh", "state", "--now", NOW, cwd=scratch.root)
    assert step.code == 1
    assert step.outputs["planned"] == "false"
    assert step.outputs["plan_exit"] == "1"
    assert step.outputs["plan_json"] == ""
    assert "has_changes" not in step.outputs  # nothing was planned
    comment = (scratch.root / "plan.md").read_text()
    assert comment.startswith(MARKER + "\n### RPKI plan: the desired state is invalid")
    assert "example-isp.yaml:" in comment  # file:line:col of the problem
    assert comment in step.summary
    assert not (scratch.root / "plan.json").exists()


def test_in_actions_the_errors_annotate_the_files_and_the_comment_keeps_the_words(scratch: Scratch) -> None:
    """Under GitHub Actions rpkictl also writes ``::error file=...`` workflow commands: they reach the
    log (where the runner turns them into annotations on the pull request's files), never the comment."""
    scratch.edit(ISP, "max_length: 26", "max_length: 99")
    step = run_step(
        "plan.sh",
        "state",
        "--now",
        NOW,
        cwd=scratch.root,
        env={"GITHUB_ACTIONS": "true", "GITHUB_WORKSPACE": str(scratch.root)},
    )
    assert step.code == 1
    assert any(line.startswith("::error file=state/cas/") for line in step.stderr.splitlines())
    comment = (scratch.root / "plan.md").read_text()
    assert "example-isp.yaml:" in comment
    assert "::error" not in comment


def test_a_planning_error_fails_the_step(scratch: Scratch) -> None:
    step = run_step("plan.sh", "state", "--now", "not-a-time", cwd=scratch.root)
    assert step.code == 1
    assert step.outputs["planned"] == "false"
    assert "planning failed (exit 1)" in (scratch.root / "plan.md").read_text()


def test_plan_base_lists_the_changed_entries(applied: Scratch) -> None:
    """Extra arguments go to rpkictl plan: --base on a real Git history."""
    subprocess.run(["git", "init", "-q", "-b", "main", str(applied.root)], check=True)
    git = ["git", "-C", str(applied.root), "-c", "user.name=t", "-c", "user.email=t@example.net"]
    subprocess.run([*git, "add", "state"], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "base"], check=True)
    applied.edit(ISP, "max_length: 26", "max_length: 27")
    step = run_step("plan.sh", "state", "--now", LATER, "--base", "main", cwd=applied.root)
    assert step.code == 0, step.stderr
    assert "example-isp.yaml" in (applied.root / "plan.md").read_text()


def test_a_runner_without_keys_plans_from_the_published_copy_it_is_given(applied: Scratch) -> None:
    """The pull-request job's form: --published passes through to rpkictl plan; no key directory, and the
    planning machine's own publication directory is neither read nor made."""
    mirror = applied.root / "mirror"
    shutil.copytree(applied.root / "published", mirror, symlinks=True)
    shutil.rmtree(applied.root / "keys")
    shutil.rmtree(applied.root / "published")
    applied.edit(ISP, "max_length: 26", "max_length: 27")
    step = run_step("plan.sh", "state", "--published", "mirror", "--now", LATER, cwd=applied.root)
    assert step.code == 0, step.stderr
    assert step.outputs["plan_exit"] == "2" and step.outputs["revocations"] == "1"
    plan = json.loads((applied.root / "plan.json").read_text())
    assert plan["observed"]["source"]["uri"] == str(mirror.resolve())
    assert not (applied.root / "keys").exists() and not (applied.root / "published").exists()


def test_outside_actions_the_outputs_are_printed(scratch: Scratch) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GITHUB_")}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    result = subprocess.run(
        ["bash", str(SCRIPTS / "plan.sh"), "state", "--now", NOW],
        cwd=scratch.root,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env=env,
    )
    assert result.returncode == 0, result.stderr
    assert "approval_required=false\n" in result.stdout
    assert "labels_remove=rpki/approval-required,rpki/revocations\n" in result.stdout


def test_usage(scratch: Scratch) -> None:
    step = run_step("plan.sh", cwd=scratch.root)
    assert step.code == 1 and "usage:" in step.stderr
