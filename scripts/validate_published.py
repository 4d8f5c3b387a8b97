"""Serve a desired state's publication tree with a local rsync daemon and run the installed validators.

Usage: python3 scripts/validate_published.py REPO TAL

Prints the VRPs each validator derived and compares them with the ROA entries of the YAML. Exit 0 when
every installed validator agrees with no warnings, 1 otherwise; validators that are not installed are
named and left out (apt-get install rpki-client fort-validator rsync).
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from reconciler import engine
from tests.e2e.harness import ALL_VALIDATORS, find_tool, validate_with_all


def main(repo: Path, tal: Path) -> int:
    workspace = engine.open_workspace(repo)
    want = frozenset(r.vrp for ca in workspace.desired.cas for r in ca.roas)
    installed = tuple(name for name in ALL_VALIDATORS if find_tool(name))
    for name in sorted(set(ALL_VALIDATORS) - set(installed)):
        print(f"{name}: not installed, skipped (apt-get install {name.replace('fort', 'fort-validator')})")
    if not installed or not find_tool("rsync"):
        print("no validator (or no rsync) installed: nothing validated")
        return 0
    results = validate_with_all(
        tal, workspace.rsync_dir, workspace.desired.publication.rsync_base, validators=installed
    )
    ok = True
    for name, result in results.items():
        agrees = result.vrps == want and not result.warnings
        ok &= agrees
        print(
            f"{name}: {len(result.vrps)} VRPs, {len(result.warnings)} warnings -> "
            f"{'matches the YAML' if agrees else 'DOES NOT match the YAML'}"
        )
        for asn, prefix, max_length in sorted(result.vrps):
            print(f"  AS{asn} {prefix} max {max_length}")
        for line in result.warnings:
            print(f"  warning: {line}")
    return 0 if ok else 1


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    sys.exit(main(Path(sys.argv[1]), Path(sys.argv[2])))
