"""A validation failure as CI reads it: ``--format json`` keeps stdout JSON, and GitHub Actions gets
``::error`` annotations on the lines at fault.

``rpkictl`` runs as a real process (stdout and stderr apart, as a CI step sees them) on a copy of the
bundled example inside a real Git repository, with one ROA broken on purpose.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import git
import pytest

from reconciler.diagnostics import Diagnostic
from reconciler.problem_report import error_document, repository_root, workflow_commands
from tests.helpers import Scratch, scratch_copy

ISP = "cas/members/example-isp.yaml"
BROKEN = "  - {asn: ASX, prefix: 10.0.0.0/8}\n"  # line 13 of the bundled example-isp.yaml
KEY_LINE = "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7VJTUt9Us8cKj"
PEM = f"-----BEGIN PRIVATE KEY-----\n{KEY_LINE}\n-----END PRIVATE KEY-----"
CI_VARIABLES = ("GITHUB_ACTIONS", "GITHUB_WORKSPACE", "GITHUB_OUTPUT", "GITHUB_STEP_SUMMARY")


def rpkictl(*args: str, cwd: Path, **extra: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in CI_VARIABLES}
    env.update(PYTHONIOENCODING="utf-8", **extra)
    return subprocess.run(
        [sys.executable, "-m", "reconciler", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        encoding="utf-8",
        stdin=subprocess.DEVNULL,
        timeout=120,
        check=False,
    )


@pytest.fixture
def broken(tmp_path: Path) -> Scratch:
    """The bundled example in a Git work tree at ``tmp_path``, one ROA with an AS that is not one."""
    scratch = scratch_copy(tmp_path)
    git.Repo.init(tmp_path).close()
    (scratch.repo / ISP).write_text((scratch.repo / ISP).read_text() + BROKEN)
    return scratch


DIAGNOSTIC = {
    "file": f"state/{ISP}",
    "line": 13,
    "column": 11,
    "message": "roas[4].asn: 'ASX' is not an AS number",
    "hint": "write AS64496 or 64496",
}
SUMMARY = "1 problem in the desired state; nothing was signed or written"


def test_plan_format_json_writes_an_error_document_and_exits_1(broken: Scratch) -> None:
    """stdout is one JSON document naming each problem's file (relative to the repository), line,
    column, message and hint; the exit code is 1; nothing but that is written to stdout."""
    result = rpkictl("plan", "state", "--format", "json", cwd=broken.root)
    assert result.returncode == 1, result.stderr
    assert json.loads(result.stdout) == {"error": SUMMARY, "diagnostics": [DIAGNOSTIC]}
    assert "Traceback" not in result.stderr and "::error" not in result.stderr


def test_plan_from_inside_the_repository_still_names_files_from_its_root(broken: Scratch) -> None:
    """Run from ``state/cas`` with ``..``: the path is still relative to the repository's root."""
    result = rpkictl("plan", "..", "--format", "json", cwd=broken.repo / "cas")
    assert result.returncode == 1, result.stderr
    assert json.loads(result.stdout)["diagnostics"] == [DIAGNOSTIC]


def test_validate_format_json_both_ways(broken: Scratch) -> None:
    """``validate --format json``: the same error document on failure, a summary once fixed."""
    failed = rpkictl("validate", "state", "--format", "json", cwd=broken.root)
    assert failed.returncode == 1
    assert json.loads(failed.stdout) == {"error": SUMMARY, "diagnostics": [DIAGNOSTIC]}
    broken.edit(ISP, BROKEN, "")
    passed = rpkictl("validate", "state", "--format", "json", cwd=broken.root)
    assert passed.returncode == 0, passed.stderr
    summary = json.loads(passed.stdout)
    assert summary["valid"] is True and summary["cas"] == 3 and summary["roa_entries"] == 4


def test_an_error_without_a_place_is_a_document_too(broken: Scratch) -> None:
    """A failure that is not in a YAML file (an unknown --base revision) is an error document with no
    diagnostics, and in Actions one annotation without a file."""
    broken.edit(ISP, BROKEN, "")
    args = ("plan", "state", "--format", "json", "--base", "no-such-branch")
    result = rpkictl(*args, cwd=broken.root, GITHUB_ACTIONS="true")
    assert result.returncode == 1
    document = json.loads(result.stdout)
    assert document["diagnostics"] == [] and "unknown revision 'no-such-branch'" in document["error"]
    assert "::error title=rpkictl::unknown revision 'no-such-branch'" in result.stderr


@pytest.mark.parametrize("output_format", ["json", "text"])
def test_github_actions_annotates_each_problem_on_its_line(broken: Scratch, output_format: str) -> None:
    """With GITHUB_ACTIONS=true each diagnostic is also a workflow command on stderr (stdout stays the
    JSON document), its path relative to GITHUB_WORKSPACE."""
    result = rpkictl(
        "plan",
        "state",
        "--format",
        output_format,
        cwd=broken.root,
        GITHUB_ACTIONS="true",
        GITHUB_WORKSPACE=str(broken.root),
    )
    assert result.returncode == 1
    annotation = (
        f"::error file=state/{ISP},line=13,col=11,title=rpkictl::"
        "roas[4].asn: 'ASX' is not an AS number (write AS64496 or 64496)"
    )
    assert annotation in result.stderr.splitlines()
    if output_format == "json":
        assert json.loads(result.stdout)["diagnostics"] == [DIAGNOSTIC]
    else:
        assert result.stdout == ""
        assert f"state/{ISP}:13:11: roas[4].asn" in result.stderr


def test_no_annotations_outside_github_actions(broken: Scratch) -> None:
    result = rpkictl("plan", "state", cwd=broken.root)
    assert result.returncode == 1 and "::error" not in result.stderr


def test_key_material_in_the_yaml_is_never_echoed(broken: Scratch) -> None:
    """A private key pasted where an AS number belongs: neither the JSON document nor the annotation
    repeats it."""
    broken.edit(ISP, BROKEN, f"  - {{asn: {json.dumps(PEM)}, prefix: 10.0.0.0/8}}\n")
    result = rpkictl("plan", "state", "--format", "json", cwd=broken.root, GITHUB_ACTIONS="true")
    assert result.returncode == 1
    json.loads(result.stdout)
    for stream in (result.stdout, result.stderr):
        assert "BEGIN PRIVATE KEY" not in stream and KEY_LINE[:40] not in stream
    assert "::error file=state/" in result.stderr


# --- the workflow command format ---


def test_workflow_commands_escape_data_and_properties(tmp_path: Path) -> None:
    """GitHub's escaping: ``%``, CR and LF in the message; those and ``:`` and ``,`` in properties."""
    odd = tmp_path / "a:b,c%d.yaml"
    diagnostic = Diagnostic(odd, 3, 7, "100% wrong", "one, two: three")
    (command,) = workflow_commands("ignored", [diagnostic], tmp_path)
    expected = "::error file=a%3Ab%2Cc%25d.yaml,line=3,col=7,title=rpkictl::100%25 wrong (one, two: three)"
    assert command == expected
    (plain,) = workflow_commands("first line\r\nsecond: 50%", [], tmp_path)
    assert plain == "::error title=rpkictl::first line%0Asecond: 50%25"


def test_paths_outside_the_root_stay_absolute_and_relative_ones_stay_as_they_are(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    outside = Diagnostic(tmp_path / "elsewhere.yaml", 1, 1, "m")
    in_git = Diagnostic(Path("state/cas/ta.yaml"), 2, 3, "m")  # a base revision's file: repo-relative
    files = [d["file"] for d in error_document("e", [outside, in_git], root)["diagnostics"]]
    assert files == [(tmp_path / "elsewhere.yaml").as_posix(), "state/cas/ta.yaml"]


def test_repository_root_is_github_workspace_then_the_git_work_tree(tmp_path: Path) -> None:
    (tmp_path / ".git").mkdir()
    (tmp_path / "state" / "cas").mkdir(parents=True)
    assert repository_root(tmp_path / "state" / "cas", {}) == tmp_path.resolve()
    assert (
        repository_root(tmp_path / "state", {"GITHUB_WORKSPACE": str(tmp_path / "state")})
        == (tmp_path / "state").resolve()
    )
