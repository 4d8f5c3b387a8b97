"""docs/operations.md: the day-to-day commands, and the disaster recovery from Git and the keys."""

from __future__ import annotations

import shutil

from tests.docs.sandbox import Sandbox
from tests.docs.scenarios import scenario


@scenario(
    "docs/operations.md",
    needs=("git",),
    substitutions={"/srv/rpki": "{root}/srv/rpki", "<desired-state repository>": "{root}/origin.git"},
)
def operations(sandbox: Sandbox) -> None:
    sandbox.run("rpkictl validate state")
    sandbox.run("rpkictl plan state", expect=2)
    applied = sandbox.run("rpkictl apply state", answer="y", prompt="Apply these")
    assert "Published in" in applied.output, applied.output
    tal = sandbox.run("rpkictl tal state").stdout
    assert tal.startswith("rsync://rpki.example.net/repo/ta.cer")

    # Disaster recovery: a new machine with the Git repository and the restored keys, nothing else.
    sandbox.prepare(
        "git init -q -b main state && git -C state add . && git -C state commit -q -m desired "
        "&& git clone -q --bare state origin.git"
    )
    (sandbox.root / "srv" / "rpki").mkdir(parents=True)
    sandbox.run("git clone <desired-state repository> /srv/rpki/state")
    shutil.copytree(sandbox.root / "keys", sandbox.root / "srv" / "rpki" / "keys")  # restore the keys
    plan = sandbox.run("rpkictl plan /srv/rpki/state", expect=2)
    assert "not published" in plan.stdout, plan.stdout
    assert "the signers here hold the key(s) ta, online, example-isp" in plan.stdout, plan.stdout
    sandbox.run("rpkictl apply /srv/rpki/state --yes")
    rebuilt = sandbox.prepare(f"rpkictl tal {sandbox.root}/srv/rpki/state").stdout
    assert rebuilt == tal  # the same trust anchor key: relying parties keep their TAL
