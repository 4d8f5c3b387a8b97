"""The committed plan JSON Schema (``schemas/plan.schema.json``) must match the pydantic models that
``reconciler/plan/document.py`` writes plans with, and real plans must fit it.

``jsonschema`` is not a dependency: when it is importable a real plan is validated against the schema;
either way every key the schema requires (at the top and in each change and gate) is checked to be
present in real plans.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
from pathlib import Path
from typing import Any

import pytest

from reconciler import engine
from reconciler.plan import document
from tests.helpers import T0, later, scratch_copy

SCHEMA = Path(__file__).resolve().parents[1] / "schemas" / "plan.schema.json"
REGENERATE = "python -m reconciler.plan.document > schemas/plan.schema.json"


def committed() -> dict[str, Any]:
    assert SCHEMA.exists(), f"{SCHEMA.name} is missing; generate it with:\n    {REGENERATE}"
    schema: dict[str, Any] = json.loads(SCHEMA.read_text(encoding="utf-8"))
    return schema


@pytest.fixture(scope="module")
def real_plans(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    """Two real plans as saved JSON: the bundled example's first plan with route impact, and, after
    applying it, a gated plan that removes every ROA of example-isp (gates, revocations, observed)."""
    scratch = scratch_copy(tmp_path_factory.mktemp("plan-schema"))
    routes = engine.Announcements.read(scratch.repo / "announcements.txt")
    workspace = engine.open_workspace(scratch.repo)
    first = engine.plan_document(workspace, engine.plan(workspace, T0, routes), announcements=routes)
    assert scratch.apply(T0) is not None
    isp = scratch.repo / "cas" / "members" / "example-isp.yaml"
    isp.write_text(isp.read_text().split("roas:")[0])
    workspace = engine.open_workspace(scratch.repo)
    gated = engine.plan_document(workspace, engine.plan(workspace, later(1)))
    assert first.route_impact and gated.gates and gated.observed.points
    return [json.loads(document.dumps(doc)) for doc in (first, gated)]


def test_committed_schema_is_up_to_date() -> None:
    """The committed schema is exactly what ``json_schema()`` generates (compared as parsed JSON)."""
    assert committed() == document.json_schema(), (
        f"{SCHEMA.name} does not match reconciler/plan/document.py; regenerate it with:\n    {REGENERATE}"
    )


def test_schema_names_itself_and_requires_the_core_keys() -> None:
    """The schema has its id and title, and requires the keys every consumer relies on."""
    schema = committed()
    assert schema["$id"].endswith("/schemas/plan.schema.json")
    assert schema["title"] == "rpki-reconciler plan"
    assert {"plan_id", "created_at", "summary", "gates", "changes", "vrps"} <= set(schema["required"])
    assert {"format_version", "announcements", "route_impact", "intent"} <= set(schema["properties"])


def test_real_plans_have_every_required_key(real_plans: list[dict[str, Any]]) -> None:
    """Every key the schema requires is in real plans: at the top, in each change, gate and route."""
    schema = committed()
    defs = schema["$defs"]
    for plan in real_plans:
        assert set(schema["required"]) <= set(plan)
        for name, items in (("ChangeDoc", plan["changes"]), ("GateDoc", plan["gates"])):
            for item in items:
                assert set(defs[name]["required"]) <= set(item), f"{name} {item}"
        for route in plan["route_impact"] or []:
            assert set(defs["RouteChangeDoc"]["required"]) <= set(route)
        assert set(defs["SummaryDoc"]["required"]) <= set(plan["summary"])
        assert set(defs["DesiredDoc"]["required"]) <= set(plan["desired"])
        assert set(defs["ObservedDoc"]["required"]) <= set(plan["observed"])


def test_real_plans_validate_against_the_schema(real_plans: list[dict[str, Any]]) -> None:
    """Real plans are valid instances of the committed schema (checked with jsonschema)."""
    jsonschema = importlib.import_module("jsonschema")  # a test dependency without type information

    schema = committed()
    validator = jsonschema.Draft202012Validator(schema)
    validator.check_schema(schema)
    for plan in real_plans:
        errors = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(plan)]
        assert not errors, errors
