#!/usr/bin/env python3
"""Disaster-recovery drill: publish a desired state, lose the whole publication directory, rebuild it
from Git and the keys alone, and print how long the rebuild took.

    python3 scripts/disaster_recovery_drill.py                 # the bundled example
    python3 scripts/disaster_recovery_drill.py --roas 2000     # example-isp with 2000 ROA entries

Runs in a temporary directory with a copy of ``state/`` (and throw-away keys); nothing else is touched.
"""

from __future__ import annotations

import argparse
import ipaddress
import shutil
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from reconciler import engine

STATE = Path(__file__).resolve().parent.parent / "state"
ISP = "cas/members/example-isp.yaml"


def grow(repo: Path, roas: int) -> None:
    """Give example-isp ``roas`` more ROA entries: /48s of its 2001:db8:1000::/36."""
    network = ipaddress.IPv6Network("2001:db8:1000::/36")
    entries = [
        f'  - {{asn: AS64497, prefix: "{prefix}"}}\n'
        for prefix, _ in zip(network.subnets(new_prefix=48), range(roas), strict=False)
    ]
    path = repo / ISP
    text = path.read_text().replace('  - {asn: AS64497, prefix: "2001:db8:1000::/36", max_length: 48}\n', "")
    path.write_text(text + "".join(entries))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--roas", type=int, default=0, help="ROA entries to add to example-isp (at most 4096)"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="rpkictl-drill-") as tmp:
        root = Path(tmp)
        repo = root / "state"
        shutil.copytree(STATE, repo)
        if args.roas:
            grow(repo, min(args.roas, 4096))
        now = datetime.now(UTC).replace(microsecond=0)
        engine.apply(engine.open_workspace(repo), engine.plan(engine.open_workspace(repo), now))
        shutil.rmtree(root / "published")  # the disaster
        start = time.perf_counter()
        workspace = engine.open_workspace(repo)
        plan = engine.plan(workspace, now + timedelta(minutes=1))
        rebuilt = engine.apply(workspace, plan)
        elapsed = time.perf_counter() - start
        if rebuilt is None or not engine.plan(engine.open_workspace(repo), now + timedelta(minutes=1)).empty:
            raise SystemExit("the rebuild did not converge")
        desired = workspace.desired
        entries = sum(len(ca.roas) for ca in desired.cas)
        print(f"CAs: {len(desired.cas)}; ROA entries: {entries}; files published: {len(rebuilt.files)}")
        print(f"rebuild after total loss: {elapsed:.2f} s ({rebuilt.signed} signatures); keys created: 0")


if __name__ == "__main__":
    main()
