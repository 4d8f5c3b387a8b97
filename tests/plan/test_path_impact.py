"""The ASPA path impact of a plan over a real published tree: announced AS paths (``bgpdump -m`` lines or
CSV ``prefix,path``) whose verification outcome an ASPA change turns, the ``aspa-invalid`` gate over
those it makes Invalid, and what the plan document, the renderings and ``rpkictl`` make of them.

The example's ISP publishes two ASPAs: AS64496 names the providers AS64500 and AS64511, AS64497 names
AS0 (no provider). Every outcome asserted here was worked out by hand from the verification rules (see
``reconciler/plan/path_verification.py``): a path is written neighbour first, origin last; numbered from
the origin, ``hop(a, b)`` is P (``b`` is among ``a``'s providers), NP (``a`` has an ASPA without ``b``)
or NA (``a`` has no ASPA). Only AS64496 and AS64497 have ASPAs here, so every other hop is NA.
"""

from __future__ import annotations

import gzip
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from reconciler import engine
from reconciler.plan import document
from reconciler.plan.document import PlanDocument
from reconciler.plan.render import markdown
from reconciler.plan.render.text import render_plain
from reconciler.rpki import kinds
from reconciler.rpki.aspa import AspaContent
from tests import test_cli as cli
from tests.helpers import T0, Scratch, later, scratch_copy
from tests.plan.test_route_leaks import route_leaks_benchmark

ISP = "cas/members/example-isp.yaml"
AS64496 = "example-isp/AS64496.asa"
ASPAS = (
    "aspas:\n"
    "  - {customer: AS64496, providers: [AS64500, AS64511]}\n"
    "  - {customer: AS64497, providers: [AS0]}\n"
    # one removed authorisation is allowed: the only gate a provider removal trips is aspa-invalid
    "safety: {aspa_removal_threshold: 1}\n"
)
REMOVE_AS64511 = ("providers: [AS64500, AS64511]", "providers: [AS64500]")
ADD_AS64502 = ("providers: [AS64500, AS64511]", "providers: [AS64500, AS64502, AS64511]")
NOW = later(1)
GATE = "aspa-invalid"
BROKEN = "AS64511 AS64496 (upstream): valid -> invalid, 2 prefixes"

#: (prefix, path as a collector's peer sent it) -- the same routes in every format below.
ROUTES = [
    # Upstream, origin first [64496, 64511]: hop(64496, 64511) is P, so the whole path is an up-ramp:
    # Valid. Without AS64511 among AS64496's providers the hop is NP, the greatest up-ramp stops at 1 of
    # 2 ASes: Invalid -- the route leak (or outage) the gate asks about. Downstream: two ASes, always Valid.
    ("192.0.2.0/24", "64511 64496"),
    # The same path prepended: prepends are collapsed, so it is the path above, carrying a second prefix.
    ("198.51.100.0/25", "64511 64511 64496 64496"),
    # Received from AS64496, origin AS64502, origin first [64502, 64511, 64496]. Upstream: hop(64502,
    # 64511) and hop(64511, 64496) are NA: Unknown before and after (AS64496's ASPA is never asked).
    # Downstream: the up-ramp from 64502 is (greatest 3, least 1); the down-ramp from 64496 asks
    # hop(64496, 64511): P before, so (3, 2) and least 1 + 2 covers 3: Valid; NP after, so (1, 1): the
    # greatest 3 + 1 still covers 3 but the least 1 + 1 does not: Unknown. Listed, but breaks nothing.
    ("198.51.100.0/26", "64496 64511 64502"),
    # Through AS64496 but not the removed provider: hop(64496, 64500) stays P, Valid both ways: unlisted.
    ("198.51.100.64/26", "64500 64496"),
    # Not through any AS whose ASPA changes: never verified, never listed.
    ("203.0.113.0/24", "64502 64501"),
    # An AS_SET makes a path Invalid whatever the ASPAs say: Invalid before and after, unlisted.
    ("2001:db8:1000::/36", "64511 {64496,64497}"),
    # AS64497 names AS0: hop(64497, 64500) is NP, upstream Invalid; its ASPA does not change: unlisted.
    ("2001:db8:1234::/48", "64500 64497"),
    # Upstream [64496, 64502]: hop(64496, 64502) is NP: Invalid; Valid once AS64502 is a provider (below).
    ("2001:db8:1234:5600::/56", "64502 64496"),
]


def csv(header: bool) -> str:
    return ("prefix,path\n" if header else "") + "".join(f"{p},{path}\n" for p, path in ROUTES)


def bgpdump(kind: str) -> str:
    flag = "B" if kind == "TABLE_DUMP2" else "A"
    lines = [
        f"{kind}|1733500000|{flag}|192.0.2.254|{path.split()[0]}|{prefix}|{path}|IGP|192.0.2.254|0|0||NAG||"
        for prefix, path in ROUTES
    ]
    return "\n".join(lines) + "\n"


def with_aspas(scratch: Scratch) -> Scratch:
    (scratch.repo / ISP).write_text((scratch.repo / ISP).read_text() + ASPAS)
    return scratch


@pytest.fixture(scope="module")
def applied(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The example with its two ASPAs, applied once for every test to copy."""
    scratch = with_aspas(scratch_copy(tmp_path_factory.mktemp("tree")))
    assert scratch.apply(T0) is not None
    return scratch.root


@pytest.fixture
def scratch(applied: Path, tmp_path: Path) -> Scratch:
    shutil.copytree(applied, tmp_path / "copy", symlinks=True)
    return Scratch(tmp_path / "copy")


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def plan_doc(scratch: Scratch, announcements: Path) -> PlanDocument:
    workspace = engine.open_workspace(scratch.repo)
    routes = engine.Announcements.read(announcements)
    the_plan = engine.plan(workspace, NOW, routes)
    return engine.plan_document(workspace, the_plan, announcements=routes)


def gates(doc: PlanDocument) -> dict[str, list[str]]:
    return {g.id: list(g.items) for g in doc.gates}


def impact(doc: PlanDocument) -> list[tuple[list[int], str, str, str, bool, int]]:
    assert doc.path_impact is not None
    return [(c.path, c.procedure, c.before, c.after, c.breaks, c.prefixes) for c in doc.path_impact]


def rpkictl(*args: str) -> subprocess.CompletedProcess[str]:
    """``rpkictl`` with lines wide enough that no plan line wraps."""
    return cli.rpkictl(*args, env={"COLUMNS": "300"})


def asa(scratch: Scratch) -> AspaContent:
    found = engine.open_workspace(scratch.repo).published.signed(AS64496)
    assert isinstance(found, kinds.Signed) and isinstance(found.content, AspaContent)
    return found.content


# ------------------------------------------------------------------------------------------- outcomes


def test_a_removed_provider_breaks_the_path_through_it_and_gates_only_that(
    scratch: Scratch, tmp_path: Path
) -> None:
    scratch.edit(ISP, *REMOVE_AS64511)
    doc = plan_doc(scratch, write(tmp_path, "paths.csv", csv(header=False)))
    assert impact(doc) == [
        ([64511, 64496], "upstream", "valid", "invalid", True, 2),
        ([64496, 64511, 64502], "downstream", "valid", "unknown", False, 1),
    ]
    assert gates(doc) == {GATE: [BROKEN]}
    assert doc.approval_required


def test_a_provider_added_fixes_the_path_through_it_without_a_gate(scratch: Scratch, tmp_path: Path) -> None:
    scratch.edit(ISP, *ADD_AS64502)
    doc = plan_doc(scratch, write(tmp_path, "paths.csv", csv(header=True)))
    assert impact(doc) == [([64502, 64496], "upstream", "invalid", "valid", False, 1)]
    assert doc.path_impact is not None and doc.path_impact[0].examples == ["2001:db8:1234:5600::/56"]
    assert gates(doc) == {}
    lines = render_plain(doc)
    assert (
        "  [fixed] AS64502 AS64496 (upstream): invalid -> valid; 1 prefix: 2001:db8:1234:5600::/56" in lines
    )


def test_no_aspa_change_lists_no_path(scratch: Scratch, tmp_path: Path) -> None:
    """The same paths with the ASPAs as published: an empty list, not null (paths were given)."""
    doc = plan_doc(scratch, write(tmp_path, "paths.csv", csv(header=False)))
    assert doc.path_impact == []
    assert GATE not in gates(doc)


def test_prepends_are_one_path_and_an_as_set_stays_invalid(scratch: Scratch, tmp_path: Path) -> None:
    """Each path alone: the prepended one is the broken path; the AS_SET one is Invalid both times."""
    scratch.edit(ISP, *REMOVE_AS64511)
    prepended = plan_doc(
        scratch, write(tmp_path, "prepended.csv", "198.51.100.0/25,64511 64511 64496 64496\n")
    )
    assert impact(prepended) == [([64511, 64496], "upstream", "valid", "invalid", True, 1)]
    assert gates(prepended) == {GATE: ["AS64511 AS64496 (upstream): valid -> invalid, 1 prefix"]}
    with_set = "2001:db8:1000::/36,64511 {64496,64497}\n203.0.113.0/24,64502 64501\n"
    as_set = plan_doc(scratch, write(tmp_path, "as-set.csv", with_set))
    assert as_set.path_impact == []
    assert GATE not in gates(as_set)


@pytest.mark.parametrize("kind", ["TABLE_DUMP2", "BGP4MP"])
def test_every_format_gives_the_same_impact(scratch: Scratch, tmp_path: Path, kind: str) -> None:
    scratch.edit(ISP, *REMOVE_AS64511)
    reference = plan_doc(scratch, write(tmp_path, "plain.csv", csv(header=False)))
    assert reference.path_impact
    expected = [c.model_dump() for c in reference.path_impact]
    dump = tmp_path / "updates.gz"
    dump.write_bytes(gzip.compress(bgpdump(kind).encode()))
    for found in (
        plan_doc(scratch, write(tmp_path, "header.csv", csv(header=True))),
        plan_doc(scratch, write(tmp_path, "dump.txt", bgpdump(kind))),
        plan_doc(scratch, dump),
    ):
        assert found.path_impact is not None
        assert [c.model_dump() for c in found.path_impact] == expected
        assert gates(found) == {GATE: [BROKEN]}


def test_the_paths_origins_feed_route_origin_validation(scratch: Scratch, tmp_path: Path) -> None:
    """Without its ROA, 192.0.2.0/24 from AS64496 (the origin of the path ``64511 64496``) loses its VRP."""
    scratch.edit(ISP, "  - {asn: AS64496, prefix: 192.0.2.0/24}\n", "")
    doc = plan_doc(scratch, write(tmp_path, "paths.csv", csv(header=False)))
    assert doc.route_impact is not None
    changed = {(r.prefix, r.origin): (r.before, r.after) for r in doc.route_impact}
    assert changed[("192.0.2.0/24", 64496)][0] == "valid"
    assert changed[("192.0.2.0/24", 64496)][1] != "valid"
    assert doc.path_impact == []


@pytest.mark.parametrize(
    "text",
    [
        "192.0.2.0/24,64496\n198.51.100.0/25,64496\n",
        "64496\t192.0.2.0/24\t312\n64496\t198.51.100.0/25\t298\n",
    ],
    ids=["csv-origin", "ris-dump"],
)
def test_origin_only_formats_give_route_impact_and_no_path_impact(
    scratch: Scratch, tmp_path: Path, text: str
) -> None:
    scratch.edit(ISP, *REMOVE_AS64511)
    scratch.edit(ISP, "  - {asn: AS64496, prefix: 192.0.2.0/24}\n", "")
    doc = plan_doc(scratch, write(tmp_path, "routes.txt", text))
    assert doc.path_impact is None
    assert doc.route_impact is not None
    assert [(r.prefix, r.origin, r.before) for r in doc.route_impact] == [("192.0.2.0/24", 64496, "valid")]
    assert GATE not in gates(doc)
    assert json.loads(document.dumps(doc))["path_impact"] is None


# ------------------------------------------------------------------------------------------ rpkictl


def test_plan_json_text_and_markdown(scratch: Scratch, tmp_path: Path) -> None:
    scratch.edit(ISP, *REMOVE_AS64511)
    paths = write(tmp_path, "paths.csv", csv(header=False))
    saved = tmp_path / "plan.json"
    when = NOW.isoformat()
    done = rpkictl(
        "plan", str(scratch.repo), "--now", when, "--announcements", str(paths), "--out", str(saved)
    )
    assert done.returncode == 3, done.stderr  # a gate
    assert "ASPA path verification: 2 paths change outcome" in done.stdout
    assert (
        "[broken] AS64511 AS64496 (upstream): valid -> invalid; 2 prefixes: 192.0.2.0/24, 198.51.100.0/25"
        in done.stdout
    )
    assert "[changed] AS64496 AS64511 AS64502 (downstream): valid -> unknown; 1 prefix: 198.51.100.0/26" in (
        done.stdout
    )
    found: dict[str, Any] = json.loads(saved.read_text())
    assert found["path_impact"][0] == {
        "path": [64511, 64496],
        "as_set": False,
        "procedure": "upstream",
        "before": "valid",
        "after": "invalid",
        "breaks": True,
        "prefixes": 2,
        "examples": ["192.0.2.0/24", "198.51.100.0/25"],
    }
    assert [e["procedure"] for e in found["path_impact"]] == ["upstream", "downstream"]
    assert {g["id"]: g["items"] for g in found["gates"]} == {GATE: [BROKEN]}
    as_json = rpkictl(
        "plan", str(scratch.repo), "--now", when, "--announcements", str(paths), "--format", "json"
    )
    assert json.loads(as_json.stdout)["path_impact"] == found["path_impact"]
    text = markdown.render(PlanDocument.model_validate(found))
    assert "ASPA path verification (2 paths change outcome)" in text
    assert (
        "| broken | AS64511 AS64496 (upstream): valid -> invalid; 2 prefixes: 192.0.2.0/24, 198.51.100.0/25 |"
        in text
    )
    rendered = rpkictl(
        "plan", str(scratch.repo), "--now", when, "--announcements", str(paths), "--format", "markdown"
    )
    assert rendered.stdout == text


def test_a_malformed_path_fails_the_plan_naming_file_and_line(scratch: Scratch, tmp_path: Path) -> None:
    paths = write(
        tmp_path, "paths.csv", "prefix,path\n192.0.2.0/24,64511 64496\n198.51.100.0/25,64511 AS6449x\n"
    )
    done = rpkictl("plan", str(scratch.repo), "--now", NOW.isoformat(), "--announcements", str(paths))
    assert done.returncode == 1
    assert "paths.csv:3" in done.stderr and "'AS6449x' is not an AS number" in done.stderr
    assert "ASPA path verification" not in done.stdout


def test_apply_needs_the_gate_approved_to_publish(scratch: Scratch, tmp_path: Path) -> None:
    scratch.edit(ISP, *REMOVE_AS64511)
    paths = write(tmp_path, "paths.csv", csv(header=False))
    when = NOW.isoformat()
    token = next(g.approve for g in plan_doc(scratch, paths).gates if g.id == GATE)
    tree = scratch.rsync.resolve()
    args = (
        "apply",
        str(scratch.repo),
        "--simulate-time",
        "--now",
        when,
        "--announcements",
        str(paths),
        "--yes",
    )
    refused = rpkictl(*args)
    assert refused.returncode == 3, refused.stderr
    assert f"--approve {token}" in refused.stderr
    assert scratch.rsync.resolve() == tree  # no new tree published
    assert asa(scratch) == AspaContent(64496, (64500, 64511))
    approved = rpkictl(*args, "--approve", token)
    assert approved.returncode == 0, approved.stderr
    assert scratch.rsync.resolve() != tree
    assert asa(scratch) == AspaContent(64496, (64500,))


def test_the_plan_benchmark_runs_on_a_small_table() -> None:
    """``benchmarks.route_leaks --plan`` on a few thousand paths: it reports the steps, and the example's
    provider removal makes paths through AS64496 Invalid, each in the gate."""
    done = route_leaks_benchmark("--plan", "--paths", "3000")
    assert done.returncode == 0, done.stderr
    assert "read " in done.stdout and "plan " in done.stdout and "peak RSS" in done.stdout
    figures = next(line for line in done.stdout.splitlines() if line.startswith("paths "))
    newly = int(figures.split(", ")[1].split()[0].replace(",", ""))
    gated = int(figures.split(", ")[2].split()[0].replace(",", ""))
    assert newly > 0 and gated == newly, done.stdout
