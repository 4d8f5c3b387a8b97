"""docs/pr-workflow.md: a pull request that empties a CA is planned against its base, refused
without approval after merge, and applied with the token the plan printed."""

from __future__ import annotations

import json
import re
import shutil

import git

from tests.docs.sandbox import Sandbox
from tests.docs.scenarios import scenario

ISP = "state/cas/members/example-isp.yaml"
RRDP_URL = "https://rpki.example.net/rrdp/notification.xml"


@scenario("docs/pr-workflow.md", needs=("git",))
def pr_workflow(sandbox: Sandbox) -> None:
    origin = git.Repo.init(sandbox.root / "origin.git", bare=True, initial_branch="main")
    repo = git.Repo.init(sandbox.root, initial_branch="main")
    (sandbox.root / ".gitignore").write_text("/keys/\n/published/\n/.session/\n/scripts/\n")
    repo.index.add([".gitignore", "state"])
    repo.index.commit("desired state")
    repo.create_remote("origin", str(origin.git_dir)).push("main")
    sandbox.prepare("rpkictl apply state --yes")  # main is published
    bgp = sandbox.root / "bgp"
    bgp.mkdir()
    shutil.copy(sandbox.repo / "announcements.txt", bgp / "riswhois.txt")

    # The pull request: example-isp loses all its ROAs.
    repo.git.checkout("-b", "empty-isp")
    isp = sandbox.root / ISP
    isp.write_text(isp.read_text().split("roas:")[0] + "roas: []\n")
    repo.index.add([ISP])
    repo.index.commit("example-isp: no ROAs")

    sandbox.run("rpkictl validate state")
    # The page's public RRDP URL stands for the publication; here the sandbox's own publication directory
    # (tests/e2e/test_pr_job_without_secrets.py reads it over HTTPS).
    sandbox.run(
        f"rpkictl plan state --published {RRDP_URL} --base origin/main "
        "--announcements bgp/riswhois.txt --min-peers 5 --format markdown --out plan.json > plan.md",
        expect=3,
        subst={RRDP_URL: "published"},
    )
    comment = (sandbox.root / "plan.md").read_text()
    assert comment.startswith("<!-- rpkictl-plan -->") and "ca-empty@example-isp" in comment
    assert ISP.removeprefix("state/") in comment  # the entries changed since --base
    saved = json.loads((sandbox.root / "plan.json").read_text())
    (gate,) = [g for g in saved["gates"] if g["rule"].startswith("ca-empty")]

    # After merge: refused without the approval, applied with it.
    refused = sandbox.run("rpkictl apply state --yes --lock-timeout 10m", expect=3)
    token = re.search(r"--approve (ca-empty@example-isp:\S+)", refused.output)
    assert token, refused.output
    assert gate["approve"] == token.group(1), gate  # the token in plan.json is the one apply printed
    sandbox.run(
        "rpkictl apply state --yes --lock-timeout 10m --approve GATE:HASH",
        subst={"GATE:HASH": token.group(1)},
    )
    sandbox.prepare("rpkictl plan state", expect=0)
