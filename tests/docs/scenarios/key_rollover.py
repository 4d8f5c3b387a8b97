"""docs/key-rollover.md: a key roll walked with --now, phase by phase."""

from __future__ import annotations

from tests.docs.sandbox import Sandbox
from tests.docs.scenarios import scenario

ISP = "cas/members/example-isp.yaml"


@scenario("docs/key-rollover.md")
def key_rollover(sandbox: Sandbox) -> None:
    sandbox.prepare(
        "rpkictl apply state --yes --simulate-time --now 2026-11-23T12:00Z"
    )  # generation 1, published
    isp = sandbox.repo / ISP
    isp.write_text(isp.read_text().replace("parent: online\n", "parent: online\nkey_generation: 2\n"))
    keys = sandbox.root / "keys"

    sandbox.run("rpkictl apply state --yes --simulate-time --now 2026-11-23T13:00Z")
    assert len(list(keys.glob("example-isp*"))) == 2  # staging: the new key exists beside the old
    published = sandbox.root / "published" / "rsync" / "online"
    assert (published / "example-isp_g2.cer").is_file(), sorted(p.name for p in published.iterdir())

    due = sandbox.run("rpkictl plan  state --now 2026-11-24T13:00Z", expect=2)
    assert "activating now" in due.stdout, due.stdout
    sandbox.run("rpkictl apply state --yes --simulate-time --now 2026-11-24T13:00Z")
    assert not (published / "example-isp.cer").exists()  # the old key's certificate is withdrawn
    sandbox.run("rpkictl apply state --yes --simulate-time --now 2026-11-24T14:00Z")
    assert len(list(keys.glob("example-isp*"))) == 1  # cleanup: the old key is destroyed
    sandbox.prepare("rpkictl plan state --now 2026-11-24T15:00Z", expect=0)
