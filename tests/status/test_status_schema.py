"""The committed status JSON Schema (``schemas/status.schema.json``) matches the model, and real
``rpkictl status --format json`` output validates against it."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema

from reconciler import engine
from reconciler.status import model
from tests.helpers import T0, later, scratch_copy

SCHEMA = Path(__file__).resolve().parents[2] / "schemas" / "status.schema.json"


def test_committed_schema_is_current() -> None:
    assert json.loads(SCHEMA.read_text()) == json.loads(json.dumps(model.json_schema())), (
        "regenerate with: python -m reconciler.status.model > schemas/status.schema.json"
    )


def test_real_reports_validate(tmp_path: Path) -> None:
    scratch = scratch_copy(tmp_path)
    schema = json.loads(SCHEMA.read_text())
    before = engine.status(engine.open_workspace(scratch.repo), T0)  # nothing published: problems
    assert before.severity == "critical"
    jsonschema.validate(json.loads(before.model_dump_json()), schema)
    assert scratch.apply(T0) is not None
    after = engine.status(engine.open_workspace(scratch.repo), later(1))
    document = json.loads(after.model_dump_json())
    jsonschema.validate(document, schema)
    document["cas"][0]["vrps"] = "many"
    try:
        jsonschema.validate(document, schema)
    except jsonschema.ValidationError:
        return
    raise AssertionError("a wrong type validated")
