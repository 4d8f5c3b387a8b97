"""scripts/github/pr-artifact.sh, the check the comment workflow makes before it posts a pull request's
plan with a token that can write: the artifact came from the pull request's own code (a fork's, maybe),
so its number, labels and comment are checked, and GitHub, not the artifact, says which commit was planned.

``gh`` is a stand-in on PATH that answers ``gh api repos/R/pulls/N --jq .head.sha`` from a table."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.github.helpers import Step, run_step

HEAD = "1" * 40
MARKER = "<!-- rpkictl-plan -->"
NO_LABELS = "labels_add=\nlabels_remove=\n"


def _fake_gh(bin_dir: Path, heads: dict[str, str]) -> None:
    """A ``gh`` that knows the head commit of the pull requests in ``heads`` (number -> sha)."""
    bin_dir.mkdir()
    table = bin_dir / "heads.json"
    table.write_text(json.dumps(heads))
    gh = bin_dir / "gh"
    gh.write_text(
        "#!/usr/bin/env python3\n"
        "import json, sys\n"
        f"heads = json.load(open({str(table)!r}))\n"
        "args = sys.argv[1:]\n"
        "assert args[0] == 'api' and args[2:] == ['--jq', '.head.sha'], args\n"
        "number = args[1].rsplit('/', 1)[-1]\n"
        "assert args[1] == f'repos/owner/state/pulls/{number}', args\n"
        "if number not in heads:\n"
        "    sys.exit('gh: Not Found (HTTP 404)')\n"
        "print(heads[number])\n"
    )
    gh.chmod(0o755)


def _artifact(
    root: Path, lines: str, comment: str = f"{MARKER}\n### RPKI plan\n", planned: bool = True
) -> Path:
    art = root / "artifact"
    art.mkdir(exist_ok=True)
    (art / "pull-request.txt").write_text(lines)
    (art / "plan.md").write_text(comment)
    if planned:
        (art / "plan.json").write_text("{}")
    return art


def _check(root: Path, art: Path, heads: dict[str, str] | None = None) -> Step:
    bin_dir = root / "bin"
    if not bin_dir.exists():
        _fake_gh(bin_dir, {"7": HEAD} if heads is None else heads)
    return run_step(
        "pr-artifact.sh",
        str(art),
        cwd=root,
        env={
            "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
            "HEAD_SHA": HEAD,
            "GITHUB_REPOSITORY": "owner/state",
        },
    )


def test_a_plan_of_the_pull_requests_head_may_be_posted(tmp_path: Path) -> None:
    art = _artifact(tmp_path, "number=7\nlabels_add=rpki/revocations\nlabels_remove=rpki/approval-required\n")
    step = _check(tmp_path, art)
    assert step.code == 0, step.stderr
    assert step.outputs == {
        "number": "7",
        "labels_add": "rpki/revocations",
        "labels_remove": "rpki/approval-required",
        "planned": "true",
        "plan_markdown": str(art / "plan.md"),
    }


def test_a_failed_plan_is_posted_without_labels(tmp_path: Path) -> None:
    """Invalid YAML: plan.sh leaves the errors as the comment and no plan.json."""
    art = _artifact(tmp_path, "number=7\nlabels_add=\nlabels_remove=\n", planned=False)
    step = _check(tmp_path, art)
    assert step.code == 0, step.stderr
    assert step.outputs["planned"] == "false"


@pytest.mark.parametrize(
    ("lines", "comment", "heads", "why"),
    [
        # another pull request's number: its head is not the commit this run planned
        ("number=8\n" + NO_LABELS, None, {"7": HEAD, "8": "2" * 40}, "not at the planned commit"),
        ("number=9\n" + NO_LABELS, None, None, "could not be read"),
        ("number=7;id\n" + NO_LABELS, None, None, "is not a pull-request number"),
        ("number=07\n" + NO_LABELS, None, None, "is not a pull-request number"),
        ("number=7\nlabels_add=rpki/approved\nlabels_remove=\n", None, None, "is not a label the plan sets"),
        ("number=7\nlabels_add=\nlabels_remove=good first\n", None, None, "is not a label the plan sets"),
        ("number=7\n" + NO_LABELS + "extra=1\n", None, None, "unexpected line"),
        ("number=7\n" + NO_LABELS, "LGTM, no changes\n", None, "does not start with"),
        ("number=7\n" + NO_LABELS, MARKER + "x" * 70000, None, "more than one comment holds"),
    ],
)
def test_a_doubtful_artifact_is_refused(
    tmp_path: Path, lines: str, comment: str | None, heads: dict[str, str] | None, why: str
) -> None:
    art = _artifact(tmp_path, lines, **({"comment": comment} if comment is not None else {}))
    step = _check(tmp_path, art, heads)
    assert step.code == 1
    assert why in step.stderr and "nothing was posted" in step.stderr, step.stderr
    assert step.outputs == {}


def test_a_comment_that_is_a_link_is_refused(tmp_path: Path) -> None:
    """A symbolic link in the artifact would have the action post a file of the runner instead."""
    art = _artifact(tmp_path, "number=7\nlabels_add=\nlabels_remove=\n")
    (art / "plan.md").unlink()
    (art / "plan.md").symlink_to("/etc/hostname")
    step = _check(tmp_path, art)
    assert step.code == 1 and "plan.md is missing" in step.stderr


def test_usage(tmp_path: Path) -> None:
    step = run_step("pr-artifact.sh", cwd=tmp_path)
    assert step.code == 1 and "usage:" in step.stderr
