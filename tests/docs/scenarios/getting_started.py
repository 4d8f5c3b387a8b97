"""docs/getting-started.md: the bundled example from the first plan to a changed ROA, validated by
rpki-client and FORT."""

from __future__ import annotations

from tests.docs.sandbox import Sandbox
from tests.docs.scenarios import scenario

ISP = "cas/members/example-isp.yaml"
NEW_ROA = "  - {asn: AS64497, prefix: 198.51.100.0/25, comment: second origin}\n"


@scenario("docs/getting-started.md", needs=("rsync", "rpki-client", "fort"))
def getting_started(sandbox: Sandbox) -> None:
    assert "validate" in sandbox.run("rpkictl --help").stdout
    sandbox.run("rpkictl validate state")
    first = sandbox.run("rpkictl plan state", expect=2)
    assert "create-key" in first.stdout
    sandbox.run("rpkictl apply state --yes")
    sandbox.run("rpkictl plan state", expect=0)

    sandbox.run("rpkictl tal state --out published/ta.tal")
    assert (sandbox.root / "published" / "ta.tal").read_text().startswith("rsync://rpki.example.net/repo/")
    validated = sandbox.run("python3 scripts/validate_published.py state published/ta.tal")
    assert validated.stdout.count("matches the YAML") == 2, validated.stdout  # rpki-client and FORT
    sandbox.run("rpkictl check state")

    isp = sandbox.repo / ISP
    isp.write_text(isp.read_text() + NEW_ROA)  # the edit the page shows
    sandbox.run("rpkictl validate state")
    plan = sandbox.run("rpkictl plan state --announcements state/announcements.txt", expect=2)
    assert "VRPs: +1 -0" in plan.stdout, plan.stdout
    sandbox.run("rpkictl apply state --yes")
    log = sandbox.run("rpkictl log state")
    assert log.stdout.count("applied") >= 2, log.stdout
    assert (
        "AS64497 198.51.100.0/25"
        in sandbox.run("python3 scripts/validate_published.py state published/ta.tal").stdout
    )

    listing = sandbox.run("ls keys published")
    assert "example-isp.pem" in listing.stdout and "audit.jsonl" in listing.stdout
