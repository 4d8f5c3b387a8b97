"""docs/yaml-reference.md: regenerating the schema and the reference gives the committed files."""

from __future__ import annotations

from tests.docs.doccommands import ROOT
from tests.docs.sandbox import Sandbox
from tests.docs.scenarios import scenario

SCHEMA = "schemas/desired-state.schema.json"
REFERENCE = "docs/yaml-reference.md"


@scenario("docs/yaml-reference.md")
def yaml_reference(sandbox: Sandbox) -> None:
    (sandbox.root / "schemas").mkdir()
    (sandbox.root / "docs").mkdir()
    sandbox.run(f"python -m reconciler.desired.schema > {SCHEMA}")
    sandbox.run(f"python -m reconciler.desired.reference > {REFERENCE}")
    for path in (SCHEMA, REFERENCE):
        assert (sandbox.root / path).read_text() == (ROOT / path).read_text(), f"{path} is not up to date"
