"""docs/github-actions.md: the workflow scripts on a copy of the example, outside Actions."""

from __future__ import annotations

import json

from tests.docs.sandbox import Sandbox
from tests.docs.scenarios import scenario


@scenario("docs/github-actions.md", needs=("git",))
def github_actions(sandbox: Sandbox) -> None:
    sandbox.run("scripts/github/apply.sh state")
    assert (sandbox.root / "published" / "rsync" / "ta.cer").is_file()
    planned = sandbox.run("scripts/github/plan.sh state --published published")
    assert "has_changes=false" in planned.output, planned.output  # outside Actions it prints its outputs
    source = json.loads((sandbox.root / "plan.json").read_text())["observed"]["source"]
    assert source["uri"] == str((sandbox.root / "published").resolve()), source
    checked = sandbox.run("scripts/github/check.sh state --published published")
    assert "OK" in checked.output, checked.output
