"""docs/github-actions.md: the workflow scripts on a copy of the example, outside Actions."""

from __future__ import annotations

from tests.docs.sandbox import Sandbox
from tests.docs.scenarios import scenario


@scenario("docs/github-actions.md", needs=("git",))
def github_actions(sandbox: Sandbox) -> None:
    planned = sandbox.run("scripts/github/plan.sh state")
    assert "has_changes" in planned.output, planned.output  # outside Actions it prints its outputs
    sandbox.run("scripts/github/apply.sh state")
    assert (sandbox.root / "published" / "rsync" / "ta.cer").is_file()
    checked = sandbox.run("scripts/github/check.sh state")
    assert "OK" in checked.output, checked.output
