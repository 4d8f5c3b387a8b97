"""README.md: the quick start on the bundled example."""

from __future__ import annotations

import shlex
import sys

from tests.docs.sandbox import Sandbox
from tests.docs.scenarios import scenario


@scenario("README.md", needs=("rsync", "rpki-client", "fort"))
def readme(sandbox: Sandbox) -> None:
    # The environment running the tests plays the developer's activated virtual environment, so the
    # script runs the rpkictl under test; making .venv on a fresh machine is what
    # tests/docs/test_fresh_machine.py and .ci/run's fresh clone check.
    sandbox.prepare(f"export VIRTUAL_ENV={shlex.quote(sys.prefix)}")
    result = sandbox.run("scripts/quickstart.sh")
    assert "using rpkictl of the active virtual environment" in result.stdout, result.stdout
    assert "installing" not in result.stdout  # nothing was installed
    assert result.stdout.count("matches the YAML") == 2, result.stdout  # rpki-client and FORT
    assert (sandbox.root / "published" / "ta.tal").is_file()
