"""docs/monitoring.md: status in every format, check, the alerting rules, and the reconcile loop."""

from __future__ import annotations

import json
import re
from pathlib import Path

from tests.docs.sandbox import Sandbox
from tests.docs.scenarios import scenario

DOCS = Path(__file__).resolve().parents[3] / "docs"


@scenario(
    "docs/monitoring.md",
    needs=("promtool", "git"),
    # The loop runs until stopped: the test stops it with SIGTERM after a few one-second cycles, and
    # expects the clean exit 0 the page promises.
    substitutions={
        "rpkictl reconcile state --interval 10m": "timeout --preserve-status -s TERM 5 "
        "rpkictl reconcile state --interval 1s",
    },
)
def monitoring(sandbox: Sandbox) -> None:
    sandbox.prepare("rpkictl apply state --yes")
    table = sandbox.run("rpkictl status state")
    assert "example-isp" in table.stdout and "OK: 0 problem(s)" in table.stdout
    sandbox.run("rpkictl status state --format json > status.json")
    report = json.loads((sandbox.root / "status.json").read_text())
    assert [ca["name"] for ca in report["cas"]] == ["ta", "online", "example-isp"]
    checked = sandbox.run("rpkictl check state")
    assert checked.stdout.startswith("OK:")
    # just after an apply every manifest has 24 h left: quiet with a 12 h margin too
    assert sandbox.run("rpkictl check state --warn 12h --critical 4h").stdout.startswith("OK:")

    sandbox.run("rpkictl status state --format prometheus --out rpki.prom")
    assert re.search(r'^rpki_vrps\{ca="example-isp"\} \d+$', (sandbox.root / "rpki.prom").read_text(), re.M)
    sandbox.prepare(f"mkdir -p docs && cp -r {DOCS / 'prometheus'} docs/")
    sandbox.run("cd docs/prometheus")
    assert "SUCCESS" in sandbox.run("promtool check rules rpki-alerts.yml").stdout
    assert "SUCCESS" in sandbox.run("promtool test rules rpki-alerts.test.yml").stdout
    sandbox.prepare("cd ../..")

    sandbox.run("rpkictl status state --format html --out status.html")
    assert 'id="ca-example-isp"' in (sandbox.root / "status.html").read_text()

    # the loop applies what is committed: the desired state is a Git checkout, as on a CA host
    sandbox.prepare("git init -q -b main state && git -C state add . && git -C state commit -q -m deployed")
    once = sandbox.run("rpkictl reconcile state --once")
    assert "reconcile: nothing to apply" in once.stdout, once.stdout
    next(sandbox.root.glob("published/rsync/example-isp/*.roa")).unlink()  # drift
    loop = sandbox.run("rpkictl reconcile state --interval 10m")
    assert "applied" in loop.stdout and "received SIGTERM" in loop.stdout and "stopped" in loop.stdout
    assert "0 problem(s)" in sandbox.run("rpkictl status state").stdout  # repaired
    log = sandbox.prepare("rpkictl log state").stdout
    assert log.count("applied") >= 2  # the first apply and the repair
