"""Every workflow, this repository's and the operator examples: valid against GitHub's workflow schema,
and its shell (the scripts and each run: block) clean under shellcheck. A finding fails the test."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from ruamel.yaml import YAML

from tests.github.helpers import ROOT, SCRIPTS
from tests.helpers import missing_tool

WORKFLOWS = sorted([*ROOT.glob(".github/workflows/*.yml"), *ROOT.glob("examples/github/workflows/*.yml")])
CHECK_JSONSCHEMA = [sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.github-workflows"]


def _shellcheck() -> str:
    found = shutil.which("shellcheck")
    if found is None:
        missing_tool("shellcheck is not installed (apt-get install shellcheck)", "the workflow lint")
    return found


def test_the_workflows_are_there() -> None:
    names = {path.relative_to(ROOT).as_posix() for path in WORKFLOWS}
    assert names == {
        ".github/workflows/ci.yml",
        "examples/github/workflows/rpki-plan.yml",
        "examples/github/workflows/rpki-plan-comment.yml",
        "examples/github/workflows/rpki-apply.yml",
        "examples/github/workflows/rpki-check.yml",
    }


def test_workflows_match_githubs_schema() -> None:
    result = subprocess.run(
        [*CHECK_JSONSCHEMA, *map(str, WORKFLOWS)], capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_schema_check_catches_a_broken_workflow(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yml"
    broken.write_text("on: push\njobs:\n  x:\n    steps:\n      - run: true\n")  # no runs-on
    result = subprocess.run(
        [*CHECK_JSONSCHEMA, str(broken)], capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 1, result.stdout + result.stderr


def test_scripts_pass_shellcheck() -> None:
    scripts = [*sorted(SCRIPTS.glob("*.sh")), ROOT / ".ci" / "run"]
    result = subprocess.run(
        [_shellcheck(), *map(str, scripts)], capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def _run_blocks() -> list[tuple[str, str]]:
    blocks = []
    for path in WORKFLOWS:
        workflow = YAML(typ="safe").load(path.read_text())
        for job_id, job in workflow["jobs"].items():
            for number, step in enumerate(job.get("steps", [])):
                if "run" in step:
                    blocks.append((f"{path.name}:{job_id}:{number}", step["run"]))
    return blocks


def _as_script(block: str) -> str:
    # What the runner substitutes before bash sees it; a word stands in for each expression.
    return "#!/usr/bin/env bash\nset -e\n" + re.sub(r"\$\{\{.*?\}\}", "expression", block) + "\n"


@pytest.mark.parametrize(("where", "block"), _run_blocks(), ids=[w for w, _ in _run_blocks()])
def test_run_blocks_pass_shellcheck(tmp_path: Path, where: str, block: str) -> None:
    script = tmp_path / "step.sh"
    script.write_text(_as_script(block))
    result = subprocess.run(
        [_shellcheck(), str(script)], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, f"{where}\n{result.stdout}"


def test_shellcheck_catches_an_unquoted_variable(tmp_path: Path) -> None:
    script = tmp_path / "step.sh"
    script.write_text(_as_script('rm -rf $DIR/"${{ runner.temp }}"'))
    result = subprocess.run([_shellcheck(), str(script)], capture_output=True, text=True, check=False)
    assert result.returncode != 0 and "SC2086" in result.stdout
