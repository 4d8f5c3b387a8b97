"""Route-leak impact of an ASPA change over a generated full table: how long reading the paths and
verifying them before and after the change takes, and the memory it needs.

    python -m benchmarks.route_leaks                     # 1,000,000 paths
    python -m benchmarks.route_leaks --paths 100000 --change transit
    python -m benchmarks.route_leaks --plan              # a whole plan over 1,000,000 paths

The table is a ``bgpdump -m`` text dump (``TABLE_DUMP2`` lines, gzipped as collectors publish them) of
``--paths`` routes over a generated Internet: 15 tier-1 networks (each with an ASPA of AS0), 2,000
transit networks (each with two or three providers among the tier-1s and the larger transits) and
60,000 origins (each with one or two providers among the transits); 40 % of the origins and 70 % of the
transits have an ASPA. Each path runs from a collector peer (a tier-1 or a transit) down to an origin,
valley-free, prepends on a tenth of them. The ASPAs before and after differ by one change, chosen by
``--change``:

- ``tier1``: a tier-1 network loses its ASPA (the largest set of paths touched: about one in five);
- ``transit``: a transit network drops one of its providers (a few thousand paths).

The dump is written once into a scratch directory and read by ``route_leaks.read_routes`` with the
changed customers, then ``route_leaks.impact`` runs; each step is timed, and the process's peak RSS is
read at the end (it includes the generator's own memory, written to disk before the measurement).

``--plan`` measures what ``rpkictl plan --announcements FILE`` does with such a table instead: the
bundled example, with its ISP's two ASPAs (AS64496 -> AS64500, AS64511; AS64497 -> AS0) applied in a
scratch directory, then AS64511 removed from AS64496's providers. The table is a CSV of ``prefix,path``
lines over the same generated Internet, one path in fifty passing through AS64496 (from its providers
AS64500 or AS64511, or from AS64496 itself, received from its provider); ``engine.Announcements.read``
and ``engine.plan`` are timed in this process, the plan with both the route-origin and the path impact.
"""

from __future__ import annotations

import argparse
import gzip
import platform
import random
import resource
import sys
import tempfile
import time
from pathlib import Path

from reconciler import engine
from reconciler.plan.route_leaks import changed_customers, impact, read_routes
from tests.helpers import T0, later, scratch_copy

TIER1 = 15
TRANSITS = 2_000
ORIGINS = 60_000
FIRST_AS = 64_512


def topology(rng: random.Random) -> tuple[list[int], dict[int, list[int]], dict[int, frozenset[int]]]:
    """The tier-1s, each AS's providers, and the ASPAs published (customer -> providers)."""
    tier1 = list(range(FIRST_AS, FIRST_AS + TIER1))
    transits = list(range(FIRST_AS + TIER1, FIRST_AS + TIER1 + TRANSITS))
    origins = list(range(200_000, 200_000 + ORIGINS))
    providers: dict[int, list[int]] = {}
    for index, asn in enumerate(transits):
        larger = tier1 + transits[: max(1, index // 4)]
        providers[asn] = rng.sample(larger, k=rng.choice((2, 3)) if len(larger) > 3 else 1)
    for asn in origins:
        providers[asn] = rng.sample(transits, k=rng.choice((1, 2)))
    aspas: dict[int, frozenset[int]] = {asn: frozenset({0}) for asn in tier1}
    aspas |= {asn: frozenset(providers[asn]) for asn in transits if rng.random() < 0.7}
    aspas |= {asn: frozenset(providers[asn]) for asn in origins if rng.random() < 0.4}
    return tier1, providers, aspas


def write_dump(
    path: Path, count: int, rng: random.Random, tier1: list[int], providers: dict[int, list[int]]
) -> None:
    origins = [asn for asn in providers if asn >= 200_000]
    with gzip.open(path, "wt", encoding="ascii", compresslevel=1) as out:
        for number in range(count):
            asn = rng.choice(origins)
            path_up = [asn]
            while path_up[-1] not in tier1 and path_up[-1] in providers:
                path_up.append(rng.choice(providers[path_up[-1]]))
            peer = path_up[-1] if rng.random() < 0.5 else rng.choice(tier1)
            if peer != path_up[-1]:
                path_up.append(peer)  # across the top to another tier-1
            if rng.random() < 0.1:
                path_up.insert(0, asn)  # a prepend
            ases = " ".join(map(str, reversed(path_up)))
            prefix = f"{10 + (number >> 16) % 200}.{(number >> 8) & 255}.{number & 255}.0/24"
            out.write(f"TABLE_DUMP2|1733500000|B|192.0.2.1|{path_up[-1]}|{prefix}|{ases}|IGP\n")


def changed(
    kind: str, rng: random.Random, tier1: list[int], aspas: dict[int, frozenset[int]]
) -> dict[int, frozenset[int]]:
    after = dict(aspas)
    if kind == "tier1":
        del after[tier1[0]]
    else:
        transit = next(
            asn for asn in sorted(aspas) if asn not in tier1 and asn < 200_000 and len(aspas[asn]) > 1
        )
        after[transit] = frozenset(sorted(aspas[transit])[1:])
    return after


#: The bundled example's ISP: its ASPAs as applied, and the change the plan is made for.
ISP = "cas/members/example-isp.yaml"
EXAMPLE_ASPAS = (
    "aspas:\n"
    "  - {customer: AS64496, providers: [AS64500, AS64511]}\n"
    "  - {customer: AS64497, providers: [AS0]}\n"
)
REMOVED = ("providers: [AS64500, AS64511]", "providers: [AS64500]")
#: One path in this many passes through AS64496, whose ASPA the plan changes.
THROUGH_EXAMPLE = 50


def write_paths(
    path: Path, count: int, rng: random.Random, tier1: list[int], providers: dict[int, list[int]]
) -> None:
    """CSV ``prefix,path`` (neighbour first): valley-free paths up from an origin, and one in
    :data:`THROUGH_EXAMPLE` with AS64496 in it -- as the origin below AS64500 or AS64511, or as the
    peer that got the route from AS64511 -- so that the plan's ASPA change touches them."""
    origins = [asn for asn in providers if asn >= 200_000]
    transits = [asn for asn in providers if asn < 200_000]
    with path.open("w", encoding="ascii") as out:
        out.write("prefix,path\n")
        for number in range(count):
            asn = rng.choice(origins)
            path_up = [asn]
            while path_up[-1] not in tier1 and path_up[-1] in providers:
                path_up.append(rng.choice(providers[path_up[-1]]))
            if number % THROUGH_EXAMPLE == 0:
                if rng.random() < 0.5:
                    path_up = [64496, rng.choice((64500, 64511)), rng.choice(transits), rng.choice(tier1)]
                else:
                    path_up = [*path_up[:2], 64511, 64496]  # AS64496 received it from its provider
            if rng.random() < 0.1:
                path_up.insert(0, path_up[0])  # a prepend
            ases = " ".join(map(str, reversed(path_up)))
            prefix = f"{10 + (number >> 16) % 200}.{(number >> 8) & 255}.{number & 255}.0/24"
            out.write(f"{prefix},{ases}\n")


def plan_figures(count: int, rng: random.Random) -> None:
    """The plan of the example's ASPA change over ``count`` paths, timed in this process."""
    tier1, providers, _ = topology(rng)
    with tempfile.TemporaryDirectory(prefix="route-leaks-plan-") as scratch_dir:
        scratch = scratch_copy(Path(scratch_dir))
        (scratch.repo / ISP).write_text((scratch.repo / ISP).read_text() + EXAMPLE_ASPAS)
        if scratch.apply(T0) is None:
            raise SystemExit("the example's ASPAs were not applied")
        scratch.edit(ISP, *REMOVED)
        table = Path(scratch_dir) / "paths.csv"
        started = time.perf_counter()
        write_paths(table, count, rng, tier1, providers)
        print(
            f"generated {count:,} paths in {time.perf_counter() - started:.1f} s "
            f"({table.stat().st_size / 1e6:.1f} MB); change: AS64496 drops its provider AS64511"
        )
        workspace = engine.open_workspace(scratch.repo)
        started, cpu = time.perf_counter(), time.process_time()
        routes = engine.Announcements.read(table)
        read, read_cpu = time.perf_counter() - started, time.process_time() - cpu
        started, cpu = time.perf_counter(), time.process_time()
        the_plan = engine.plan(workspace, later(1), routes)
        planned, plan_cpu = time.perf_counter() - started, time.process_time() - cpu
    changes = the_plan.path_changes or ()
    newly = sum(1 for t in changes if t.newly_invalid)
    prefixes = sum(len(t.prefixes) for t in changes)
    gated = [len(g.items) for g in the_plan.gates if g.rule == "aspa-invalid"]
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"read         {read:6.1f} s  (CPU {read_cpu:.1f} s)  {routes.meta.routes:,} routes, their origins")
    print(
        f"plan         {planned:6.1f} s  (CPU {plan_cpu:.1f} s)  route-origin impact, and the paths through "
        f"the changed ASes read again and verified; {len(the_plan.changes)} changes"
    )
    print(f"total        {read + planned:6.1f} s  (CPU {read_cpu + plan_cpu:.1f} s; target: under 30 s)")
    print(
        f"paths        {len(changes):,} change outcome (carrying {prefixes:,} prefixes), {newly:,} newly "
        f"Invalid, {gated[0] if gated else 0:,} in the aspa-invalid gate"
    )
    print(f"peak RSS     {peak:,.0f} MB  (target: under 1 GB)")
    sys.stdout.flush()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--paths", type=int, default=1_000_000)
    parser.add_argument("--change", choices=("tier1", "transit"), default="tier1")
    parser.add_argument(
        "--plan", action="store_true", help="time a whole plan of the bundled example's ASPA change"
    )
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    rng = random.Random(args.seed)  # noqa: S311 - a generated table, not a secret
    print(f"machine: {platform.machine()}, Python {platform.python_version()}, {platform.platform()}")
    if args.plan:
        plan_figures(args.paths, rng)
        return
    tier1, providers, aspas = topology(rng)
    after = changed(args.change, rng, tier1, aspas)
    with tempfile.TemporaryDirectory(prefix="route-leaks-") as scratch:
        dump = Path(scratch) / "rib.txt.gz"
        started = time.perf_counter()
        write_dump(dump, args.paths, rng, tier1, providers)
        print(
            f"generated {args.paths:,} paths, {len(aspas):,} ASPAs, in {time.perf_counter() - started:.1f} s "
            f"({dump.stat().st_size / 1e6:.1f} MB gzipped); change: {args.change}"
        )
        started = time.perf_counter()
        routes = read_routes(dump, wanted=changed_customers(aspas, after))
        read = time.perf_counter() - started
        started = time.perf_counter()
        found = impact(routes, aspas, after)
        verified = time.perf_counter() - started
    newly = sum(1 for t in found if t.newly_invalid)
    prefixes = sum(len(t.prefixes) for t in found)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"read         {read:6.1f} s  {routes.lines:,} lines, {len(routes.paths):,} distinct paths "
        "through a changed AS"
    )
    print(f"verify       {verified:6.1f} s  both procedures, before and after")
    print(f"total        {read + verified:6.1f} s  (target: under 30 s)")
    print(f"transitions  {len(found):,} (carrying {prefixes:,} prefixes), {newly:,} newly Invalid")
    print(f"peak RSS     {peak:,.0f} MB  (target: under 1 GB)")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
