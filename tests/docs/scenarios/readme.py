"""README.md: the quick start on the bundled example."""

from __future__ import annotations

from tests.docs.sandbox import Sandbox
from tests.docs.scenarios import scenario


@scenario("README.md", needs=("rsync", "rpki-client", "fort"))
def readme(sandbox: Sandbox) -> None:
    result = sandbox.run("scripts/quickstart.sh")
    assert "installing" not in result.stdout  # rpkictl was found, nothing was installed
    assert result.stdout.count("matches the YAML") == 2, result.stdout  # rpki-client and FORT
    assert (sandbox.root / "published" / "ta.tal").is_file()
