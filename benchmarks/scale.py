"""Scale benchmark: first apply, one-ROA change (and one-ASPA change, where the scenario has ASPAs),
no-op plan (incremental, as on a CA machine) and full plan (``--refresh=full``: every CA planned, as once a
day) of a generated desired state, each run as ``rpkictl`` in its own process (interpreter start,
YAML load and reading the publication point back included), with its wall time, peak RSS and signatures,
against the cost floor measured in the same run.

    python -m benchmarks.scale small large             # the figures of docs/performance.md
    python -m benchmarks.scale large-aspa              # the large operator with 1,000 ASPAs as well
    python -m benchmarks.scale registry --scale 0.05   # the registry at a twentieth of its size
    python -m benchmarks.scale registry --key-pool keys.bin --repeat 3   # full size, keys made beforehand

The floor: every signed object (ROA, ASPA, manifest) costs one RSA-2048 key generation and two signatures,
every CA key one key generation, every certificate and CRL one signature. Key generation and signing are
measured here first, and the floor is (keygens x K + signatures x S) / cores + 0.3 s.
"""

from __future__ import annotations

import argparse
import compileall
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

from cryptography.hazmat.backends.openssl.backend import backend
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

import reconciler
from benchmarks import keypool
from benchmarks.scenarios import SCENARIOS, change_one_aspa, change_one_roa, scaled, write

FIXED = 0.3  # seconds: interpreter start and loading, allowed on top of the floor
APPLIED = re.compile(r"Applied: (\d+) signatures")


@dataclass(frozen=True, slots=True)
class Calibration:
    keygen_mean_s: float  # one RSA-2048 key generation, one core
    sign_median_s: float  # one RSA-2048 PKCS#1 v1.5 SHA-256 signature, one core
    keygen_rate_all_cores: float  # keys/s with one thread per core
    cores: int


def calibrate(keys: int = 300, signatures: int = 1000) -> Calibration:
    times = []
    for _ in range(keys):
        start = time.perf_counter()
        rsa.generate_private_key(65537, 2048)
        times.append(time.perf_counter() - start)
    key = rsa.generate_private_key(65537, 2048)
    signs = []
    for index in range(signatures):
        start = time.perf_counter()
        key.sign(index.to_bytes(4, "big") * 16, padding.PKCS1v15(), hashes.SHA256())
        signs.append(time.perf_counter() - start)
    cores = os.cpu_count() or 1
    start = time.perf_counter()
    with ThreadPoolExecutor(cores) as pool:
        list(pool.map(lambda _: rsa.generate_private_key(65537, 2048), range(keys)))
    rate = keys / (time.perf_counter() - start)
    return Calibration(statistics.mean(times), statistics.median(signs), rate, cores)


@dataclass(frozen=True, slots=True)
class Run:
    phase: str
    wall_s: float
    peak_rss_mb: float
    exit_code: int
    signatures: int
    keygens: int = 0
    floor_s: float | None = None
    runs: int = 1  # wall_s is the median of this many runs (the slowest and fastest in spread_s)
    spread_s: tuple[float, float] | None = None

    @property
    def ratio(self) -> float | None:
        return None if self.floor_s is None else self.wall_s / self.floor_s


def rpkictl(*args: str, env: dict[str, str], key_pool: Path | None = None) -> tuple[float, float, int, str]:
    """Run rpkictl (with its keys drawn from ``key_pool``, see ``keypool``); its wall time, peak RSS (MB),
    exit code and output."""
    command = ["reconciler"] if key_pool is None else ["benchmarks.keypool", str(key_pool)]
    start = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-m", *command, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=env,
    )
    output = process.stdout.read() if process.stdout is not None else b""
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - start
    process.returncode = os.waitstatus_to_exitcode(status)
    return wall, usage.ru_maxrss / 1024, process.returncode, output.decode(errors="replace")


def signatures_of(output: str) -> int:
    found = APPLIED.search(output)
    return int(found.group(1)) if found else 0


def count_keygens(root: Path) -> int:
    """Key generations of a first apply: one per signed object published, one per CA key."""
    tree = root / "published" / "rsync"
    objects = sum(1 for p in tree.rglob("*") if p.suffix in (".roa", ".mft", ".asa"))
    keys = sum(1 for p in (root / "keys").iterdir() if p.is_file())
    return objects + keys


def _median(phase: str, results: list[tuple[float, float, int, str]], signatures: list[int]) -> Run:
    """Repeated runs as one: the median wall time (a virtual machine's neighbours move single runs by
    10 % or more), the worst exit code, peak RSS and signature count, so that no bad run hides."""
    walls = [wall for wall, _, _, _ in results]
    return Run(
        phase,
        statistics.median(walls),
        max(rss for _, rss, _, _ in results),
        max((code for _, _, code, _ in results), key=abs),
        max(signatures),
        runs=len(results),
        spread_s=(min(walls), max(walls)) if len(results) > 1 else None,
    )


def _changes(
    phase: str, change: Callable[[Path], str], repo: Path, env: dict[str, str], repeat: int
) -> tuple[Run, list[tuple[float, float, int, str]], str]:
    """``repeat`` applies, each after ``change`` edits a different entry (an apply of an edit already made
    would be a no-op): their median, the runs themselves and the first edit's description."""
    results, edits = [], []
    for _ in range(repeat):
        edits.append(change(repo))
        results.append(rpkictl("apply", str(repo), "--yes", env=env))
    return _median(phase, results, signatures=[signatures_of(r[3]) for r in results]), results, edits[0]


def _plans(
    repo: Path, env: dict[str, str], repeat: int
) -> tuple[list[tuple[float, float, int, str]], list[tuple[float, float, int, str]]]:
    """Alternately a full plan (every CA planned: ``--refresh=full``, as once a day and without a cache)
    and a no-op one, incremental, which the full plan before it let skip every CA it found nothing to
    do for: the full plans, then the no-op ones."""
    full, incremental = [], []
    for _ in range(repeat):
        full.append(rpkictl("plan", str(repo), "--refresh=full", env=env))
        incremental.append(rpkictl("plan", str(repo), env=env))
    return full, incremental


def run_scenario(
    name: str,
    factor: float,
    calibration: Calibration,
    keep: Path | None,
    repeat: int = 1,
    *,
    key_pool: Path | None = None,
) -> list[Run]:
    scenario = scaled(SCENARIOS[name], factor)
    if keep is not None:
        keep.mkdir(parents=True, exist_ok=True)
    root = Path(tempfile.mkdtemp(prefix=f"bench-{name}-", dir=keep))
    env = {**os.environ, "COLUMNS": "200", "TERM": "dumb", "NO_COLOR": "1"}
    try:
        repo = write(scenario, root)
        print(f"\n## {scenario.name}: {scenario.description}  ({root})", flush=True)
        if key_pool is not None:
            start = time.perf_counter()
            made = keypool.ensure(key_pool, sum(1 for _ in (repo / "cas").rglob("*.yaml")))
            print(f"   key pool {key_pool}: {made:,} keys generated ({time.perf_counter() - start:.0f} s)")
        runs = []
        wall, rss, code, output = rpkictl("apply", str(repo), "--yes", env=env, key_pool=key_pool)
        if code != 0:
            raise SystemExit(f"first apply failed ({code}):\n{output[-3000:]}")
        signs, keygens = signatures_of(output), count_keygens(root)
        floor = (keygens * calibration.keygen_mean_s + signs * calibration.sign_median_s) / calibration.cores
        if key_pool is None:
            runs.append(Run("first apply", wall, rss, code, signs, keygens, floor + FIXED))
        else:  # its keys were not generated: no key generations to count, no floor to compare with
            runs.append(Run("first apply, keys from the pool (no floor)", wall, rss, code, signs))
        plans = _plans(repo, env, repeat)
        runs += [_median("no-op plan", plans[1], [0] * repeat), _median("full plan", plans[0], [0] * repeat)]
        phases: list[tuple[str, Callable[[Path], str], str]] = [("one-ROA change", change_one_roa, "entries")]
        if scenario.aspas:  # after the ROAs' changes, so that those run as they do without ASPAs
            phases.append(("one-ASPA change", change_one_aspa, "ASPAs"))
        changes, described = [], []
        for phase, change, what in phases:
            run, results, first = _changes(phase, change, repo, env, repeat)
            runs.append(run)
            changes += results
            more = f" (and {repeat - 1} more {what})" if repeat > 1 else ""
            described.append(f"   changed: {first}{more}")
        for _, _, code, output in (*plans[0], *plans[1], *changes):
            if code != 0:
                print(output[-3000:])
        print("\n".join(described))
        for run in runs:
            ratio = f"  floor {run.floor_s:.2f} s, ratio {run.ratio:.2f}" if run.floor_s else ""
            keygens = f", {run.keygens:,} keygens" if run.keygens else ""
            spread = (
                f" (median of {run.runs}: {run.spread_s[0]:.2f}-{run.spread_s[1]:.2f} s)"
                if run.spread_s
                else ""
            )
            print(
                f"   {run.phase:<15} {run.wall_s:8.2f} s{spread}  exit {run.exit_code}  "
                f"{run.signatures:,} signatures{keygens}  peak RSS {run.peak_rss_mb:,.0f} MB{ratio}",
                flush=True,
            )
        return runs
    finally:
        if keep is None:
            shutil.rmtree(root, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("scenarios", nargs="*", default=["small", "large"], choices=sorted(SCENARIOS))
    parser.add_argument("--scale", type=float, default=1.0, help="fraction of the scenario's size")
    parser.add_argument("--keep", type=Path, help="keep the generated trees under this directory")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument(
        "--repeat",
        type=int,
        default=5,
        help="no-op plans and one-ROA (and one-ASPA) changes to run, the median reported",
    )
    parser.add_argument(
        "--key-pool",
        type=Path,
        help="draw the first apply's keys from this file of keys generated beforehand (made or topped up "
        "as needed): its memory and the runs after it without the hours of key generation; its wall "
        "time is then not compared with the floor (see benchmarks/keypool.py)",
    )
    args = parser.parse_args()
    print(f"machine: {platform.node()}, {platform.machine()}, {os.cpu_count()} cores, ", end="")
    print(f"Python {platform.python_version()}, {platform.platform()}")
    print(f"cryptography's OpenSSL: {backend.openssl_version_text()}")
    # As an installed package has it (pip compiles on install): without it, an environment that sets
    # PYTHONDONTWRITEBYTECODE would compile every module on every rpkictl start and time that instead.
    compileall.compile_dir(Path(reconciler.__file__).parent, quiet=1)
    calibration = calibrate()
    print(
        f"calibration: keygen {calibration.keygen_mean_s * 1000:.1f} ms mean, sign "
        f"{calibration.sign_median_s * 1000:.3f} ms median, {calibration.keygen_rate_all_cores:.1f} keys/s "
        f"on {calibration.cores} threads",
        flush=True,
    )
    results = {}
    for name in args.scenarios:
        runs = run_scenario(
            name, args.scale, calibration, args.keep, max(1, args.repeat), key_pool=args.key_pool
        )
        results[name] = [asdict(r) | {"ratio": r.ratio} for r in runs]
    if args.json:
        args.json.write_text(json.dumps({"calibration": asdict(calibration), "results": results}, indent=2))


if __name__ == "__main__":
    main()
