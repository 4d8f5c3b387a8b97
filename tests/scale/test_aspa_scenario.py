"""The large operator with ASPAs of the scale benchmark: a desired state the loader accepts, with the
large operator's ROAs unchanged, and one-ASPA changes that each add a provider to a different ASPA."""

from __future__ import annotations

import re
from pathlib import Path

from benchmarks.scenarios import ADDED_PROVIDER, CUSTOMERS, SCENARIOS, change_one_aspa, scaled, write
from reconciler.desired import load
from reconciler.desired.model import CaIntent


def _operator(repo: Path) -> CaIntent:
    return next(ca for ca in load(repo).cas if ca.name == "operator")


def test_the_large_operator_with_1000_aspas_loads_with_the_same_roas(tmp_path: Path) -> None:
    with_aspas = _operator(write(SCENARIOS["large-aspa"], tmp_path / "aspa"))
    without = _operator(write(SCENARIOS["large"], tmp_path / "plain"))
    assert with_aspas.roas == without.roas and len(with_aspas.roas) == 5_000
    assert without.aspas == ()
    assert [a.customer for a in with_aspas.aspas] == list(range(CUSTOMERS, CUSTOMERS + 1_000))
    assert {len(a.providers) for a in with_aspas.aspas} == {1, 2, 3, 4}
    assert all(a.customer not in a.providers for a in with_aspas.aspas)
    text = (tmp_path / "aspa" / "state" / "cas" / "operator.yaml").read_text()
    written = [
        re.findall(r"AS(\d+)", line.split("providers:")[1])
        for line in text.splitlines()
        if "providers:" in line
    ]
    assert any([int(p) for p in providers] != sorted(int(p) for p in providers) for providers in written)


def test_each_one_aspa_change_adds_the_provider_to_a_different_aspa(tmp_path: Path) -> None:
    scenario = scaled(SCENARIOS["large-aspa"], 0.05)
    assert scenario.aspas == 50 and scaled(SCENARIOS["large"], 0.05).aspas == 0
    repo = write(scenario, tmp_path)
    before = {a.customer: a.providers for a in _operator(repo).aspas}
    changed = []
    for _ in range(3):
        change_one_aspa(repo)
        after = {a.customer: a.providers for a in _operator(repo).aspas}
        differ = [customer for customer in after if after[customer] != before[customer]]
        assert len(differ) == 1
        assert set(after[differ[0]]) == {*before[differ[0]], ADDED_PROVIDER}
        changed += differ
        before = after
    assert len(set(changed)) == 3
