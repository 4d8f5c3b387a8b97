"""The route-leak impact of an ASPA change over announced AS paths: only paths through a changed
customer are verified, each distinct path once, and the paths that turn Invalid are listed first with
the prefixes they carry."""

from __future__ import annotations

import gzip
import subprocess
import sys
from pathlib import Path

import pytest

from reconciler.plan.impact import AnnouncementsError
from reconciler.plan.path_verification import Outcome, Procedure
from reconciler.plan.route_leaks import PathKey, changed_customers, impact, providers_of, read_routes
from tests.plan.test_path_verification import ASPAS

DUMP = """\
TABLE_DUMP2|1733500000|B|192.0.2.254|64521|203.0.113.0/24|64521 64540 64520 64510 64500|IGP|192.0.2.254
TABLE_DUMP2|1733500000|B|192.0.2.254|64521|203.0.113.0/25|64521 64540 64540 64520 64510 64500|IGP
TABLE_DUMP2|1733500000|B|192.0.2.253|64531|198.51.100.0/24|64531 64530 64520 64510 64500|IGP|192.0.2.253
TABLE_DUMP2|1733500000|B|192.0.2.253|64531|192.0.2.0/24|64531 {64600,64601}|IGP|192.0.2.253|0|0||NAG||
"""


def test_a_new_aspa_that_catches_a_leak(tmp_path: Path) -> None:
    dump = tmp_path / "rib.txt.gz"
    dump.write_bytes(gzip.compress(DUMP.encode()))
    after = {**ASPAS, 64521: frozenset({0})}
    wanted = changed_customers(ASPAS, after)
    assert wanted == {64521}
    routes = read_routes(dump, wanted=wanted)
    # the second line's prepend changes nothing: one path through 64521, verified once for both
    assert routes.lines == 4 and list(routes.paths) == [PathKey((64521, 64540, 64520, 64510, 64500))]
    found = impact(routes, ASPAS, after)
    assert [(t.procedure, t.before, t.after, t.prefixes) for t in found] == [
        (Procedure.DOWNSTREAM, Outcome.UNKNOWN, Outcome.INVALID, ("203.0.113.0/24", "203.0.113.0/25")),
    ]
    assert all(t.newly_invalid for t in found)


def test_an_aspa_removed_loses_the_protection(tmp_path: Path) -> None:
    """64531's ASPA removed: the first hop of the down-ramp from 64531 is no longer attested, so the
    downstream outcome of the valley-free path through it drops from Valid to Unknown (not Invalid)."""
    csv = tmp_path / "paths.csv"
    csv.write_text("# prefix,path\n198.51.100.0/24,64531 64530 64520 64510 64500\n")
    after = {c: p for c, p in ASPAS.items() if c != 64531}
    found = impact(read_routes(csv), ASPAS, after)
    assert [(t.procedure, t.before, t.after) for t in found] == [
        (Procedure.DOWNSTREAM, Outcome.VALID, Outcome.UNKNOWN)
    ]
    assert not found[0].newly_invalid


def test_an_as_set_and_the_providers_of_several_aspas(tmp_path: Path) -> None:
    dump = tmp_path / "rib.txt"
    dump.write_text(DUMP)
    routes = read_routes(dump)
    assert PathKey((64531, 64600, 64601), True) in routes.paths
    assert providers_of([(64496, [64497]), (64496, [64498, 64497])]) == {64496: frozenset({64497, 64498})}


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ("TABLE_DUMP2|1|B|192.0.2.1|64496|203.0.113.0/24", "6 fields"),
        ("BGP4MP|1|W|192.0.2.1|64496|203.0.113.0/24|", "a withdrawal carries no path"),
        ("203.0.113.0/24,64496 AS6x", "'AS6x' is not an AS number"),
        ("203.0.113.0/24,", "an empty AS path"),
        ("just words", "neither a dump line nor prefix,path"),
    ],
)
def test_a_bad_line_names_the_file_and_line(tmp_path: Path, line: str, problem: str) -> None:
    bad = tmp_path / "paths.txt"
    bad.write_text(f"203.0.113.0/24,64496 64497\n{line}\n")
    with pytest.raises(AnnouncementsError, match=f"paths.txt:2: .*{problem}"):
        read_routes(bad)


def route_leaks_benchmark(*args: str) -> subprocess.CompletedProcess[str]:
    """``python -m benchmarks.route_leaks ARGS`` from the project's root."""
    return subprocess.run(
        [sys.executable, "-m", "benchmarks.route_leaks", *args],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        cwd=Path(__file__).resolve().parents[2],
    )


def test_the_benchmark_runs_on_a_small_table() -> None:
    """``benchmarks.route_leaks`` on a few thousand paths: it reports the steps, and a transit that drops
    a provider makes paths Invalid."""
    done = route_leaks_benchmark("--paths", "3000", "--change", "transit")
    assert done.returncode == 0, done.stderr
    assert "read " in done.stdout and "verify " in done.stdout and "peak RSS" in done.stdout
    newly = next(line for line in done.stdout.splitlines() if line.startswith("transitions"))
    assert not newly.endswith(" 0 newly Invalid"), done.stdout
