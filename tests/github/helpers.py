"""Running the scripts under scripts/github/ as a GitHub Actions step would: bash, the real rpkictl, and
$GITHUB_OUTPUT and $GITHUB_STEP_SUMMARY in temporary files."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = ROOT / "scripts" / "github"
NOW = "2026-11-23T12:00:00Z"
LATER = "2026-11-23T12:05:00Z"
ISP = "cas/members/example-isp.yaml"


@dataclass
class Step:
    """One finished step: its exit code, what it printed, its outputs and its job summary."""

    code: int
    stdout: str
    stderr: str
    outputs: dict[str, str]
    summary: str


def run_step(script: str, *args: str, cwd: Path, env: dict[str, str] | None = None) -> Step:
    """Run ``scripts/github/SCRIPT ARGS`` in ``cwd``, like a workflow's ``run:`` step."""
    output = cwd / "github_output.txt"
    summary = cwd / "step_summary.md"
    output.write_text("")
    summary.write_text("")
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "RPKI_", "RUNNER_"))}
    result = subprocess.run(
        ["bash", str(SCRIPTS / script), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        stdin=subprocess.DEVNULL,
        check=False,
        env={
            **clean,
            # the rpkictl installed with this interpreter
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{clean.get('PATH', '')}",
            "GITHUB_OUTPUT": str(output),
            "GITHUB_STEP_SUMMARY": str(summary),
            **(env or {}),
        },
    )
    outputs: dict[str, str] = {}
    for line in output.read_text().splitlines():
        key, _, value = line.partition("=")
        outputs[key] = value  # the last value of a key wins, as in Actions
    return Step(result.returncode, result.stdout, result.stderr, outputs, summary.read_text())
