"""The committed JSON Schema must match the pydantic models it is generated from."""

from __future__ import annotations

import json
from pathlib import Path

from reconciler.desired.schema import json_schema, json_schema_text

SCHEMA = Path(__file__).resolve().parents[1] / "schemas" / "desired-state.schema.json"
REGENERATE = "python -m reconciler.desired.schema > schemas/desired-state.schema.json"


def test_committed_schema_is_up_to_date() -> None:
    committed = SCHEMA.read_text(encoding="utf-8") if SCHEMA.exists() else ""
    assert committed == json_schema_text(), (
        f"{SCHEMA.name} does not match reconciler/desired/schema.py; regenerate it with:\n    {REGENERATE}"
    )


def test_schema_describes_both_file_kinds() -> None:
    schema = json_schema()
    assert json.loads(json_schema_text()) == schema
    defs = schema["$defs"]
    assert set(defs["RpkiFile"]["required"]) == {"publication", "signers"}
    assert set(defs["CaFile"]["required"]) == {"name", "resources"}
    assert defs["CaFile"]["additionalProperties"] is False
    assert "rpki.yaml" in schema["description"] and "cas/" in schema["description"]
    for name, definition in defs.items():
        for key, prop in definition.get("properties", {}).items():
            assert prop.get("description"), f"{name}.{key} has no description"
