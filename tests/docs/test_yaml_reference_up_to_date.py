"""The committed YAML reference must match what the generator renders from the JSON Schema."""

from __future__ import annotations

import json
import re
from pathlib import Path

from reconciler.desired.reference import REGENERATE, render, slug
from reconciler.desired.schema import json_schema

REFERENCE = Path(__file__).resolve().parents[2] / "docs" / "yaml-reference.md"


def test_committed_reference_is_up_to_date() -> None:
    committed = REFERENCE.read_text(encoding="utf-8") if REFERENCE.exists() else ""
    assert committed == render(), (
        f"docs/{REFERENCE.name} does not match the schema; regenerate it with:\n    {REGENERATE}"
    )


def test_every_key_of_the_schema_is_in_the_reference() -> None:
    text = render()
    for name, definition in json_schema()["$defs"].items():
        for key, prop in definition.get("properties", {}).items():
            row = next((line for line in text.splitlines() if line.startswith(f"| `{key}` |")), None)
            assert row is not None, f"{name}.{key} is missing"
            description = " ".join(prop["description"].split())
            assert description.replace("<", "&lt;").replace(">", "&gt;")[:40] in text, f"{name}.{key}"
            default = prop.get("default")
            if default is not None:
                shown = json.dumps(default) if isinstance(default, bool) else str(default)
                assert f"default `{shown}`" in row, f"{name}.{key}: default {shown} not shown"


def test_every_link_in_the_reference_has_its_heading() -> None:
    text = render()
    anchors = {slug(line.lstrip("#")) for line in text.splitlines() if line.startswith("#")}
    links = set(re.findall(r"\]\(#([^)]+)\)", text))
    assert links and links <= anchors, links - anchors
    headings = [line for line in text.splitlines() if line.startswith("#")]
    assert len(anchors) == len(headings), "two headings share an anchor"
