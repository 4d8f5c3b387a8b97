"""A CA under an external parent: first apply, one-ROA change and no-op apply of 5,000 ROAs, with the
parent and its repository answering over loopback HTTP.

    python -m benchmarks.child_ca                      # 5,000 ROAs, five one-ROA changes
    python -m benchmarks.child_ca --roas 500 --repeat 5 --profile

The parent is the bundled example (``state/``) copied to a scratch directory, its CA ``online`` given
100.64.0.0/10 on top of its own resources, applied, and run as ``rpkictl serve`` (RFC 6492 parent and
RFC 8181 repository) in its own process. The child is a desired state of its own, set up as its operator
would (``tests/upstream/child_world.py``): its requests printed with ``rpkictl oob ... --signer``,
declared at the parent (entitled to AS64500 and 100.64.0.0/10), the parent's answers committed, and a CA
file with ``--roas`` one-prefix ROA entries (distinct /24s of 100.64.0.0/10, ten per origin AS, so
that the default ``roa_grouping`` gives every entry an object of its own). Each step runs
``rpkictl apply --yes`` in its own process, as an operator would:

1. **first apply**: asks the parent (list, issue, list), signs every ROA, the manifest and the CRL, and
   sends them to the repository (RFC 8181 messages of at most 3 MiB: five for 5,000 ROAs); its wall
   time is compared with the signing floor of ``benchmarks/scale.py``: (key generations x mean keygen
   time + signatures x median signing time) / cores + 0.3 s, counting the ROAs' and the manifest's
   one-time keys, the CA key, and the one-time key and three signatures of each of the five protocol
   messages the child sends;
2. **one-ROA change**: one entry's origin AS edited in the YAML, ``--repeat`` times (a different entry
   each time), with the RFC 6492 list and the RFC 8181 list and send; the message it sends (publish and
   withdraw PDUs, its size) shows that it is the size of the change;
3. **no-op apply**: nothing edited; it must send nothing.

Then the same one-ROA change runs in this process, step by step as ``rpkictl apply`` takes them (the
garbage collector tuned as in ``rpkictl``), each step timed (``--profile``: under cProfile, the top of
the profile printed). Peak memory is each
``rpkictl``'s ``ru_maxrss``, and the server's from ``/proc``. Each ``rpkictl`` starts two seconds after
the one before it ended (six after the first apply), untimed: a message is signed a second after the
last one sent to the same peer (the peer's replay guard refuses anything not later), so back-to-back
processes would sign ahead of the clock; the gap keeps every message at the clock's time, as in use.
"""

from __future__ import annotations

import argparse
import compileall
import cProfile
import gc
import io
import os
import platform
import pstats
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from cryptography.hazmat.backends.openssl.backend import backend

import reconciler
from benchmarks.scale import FIXED, Calibration, calibrate
from reconciler import clock, engine
from reconciler.apply import lock, onetime
from reconciler.upstream import repository as upstream_repository
from reconciler.upstream import state as upstream_state
from tests.helpers import Scratch
from tests.serve.remote_child import ServeProcess, serve_process
from tests.upstream.child_world import HANDLE, ChildCa, child_ca_file, connect, declare_child, make_child

#: What ``online`` holds in the copy on top of the example's resources, and what the child is entitled to.
SPACE = "100.64.0.0/10"
ENTITLED = f"{{asn: [AS64500], ipv4: [{SPACE}]}}"
FIRST_ORIGIN = 64512
PREFIXES_PER_ORIGIN = 10  # at most roa_grouping's aggregate_above (32): one object per entry
MESSAGES_FIRST = 5  # RFC 6492 list, issue, list; RFC 8181 list, send
SENT = re.compile(
    r"sent (\d+) publish and (\d+) withdraw in (one message|\d+ messages) \(([\d,]+) bytes of objects"
)
REPLAY_GAP_S = 2.0  # before each rpkictl (not timed): see rpkictl()
#: The collector's thresholds as ``reconciler.entry`` sets them for every rpkictl process: the in-process
#: step runs with them, so that its steps add up to what a process spends (the default thresholds
#: walked this process's objects over and over, some 0.3 s of the change).
RPKICTL_GC = (50_000, 20, 20)
APPLIED = re.compile(r"Applied: (\d+) signatures")


def origin(index: int, shift: int = 0) -> int:
    return FIRST_ORIGIN + (index // PREFIXES_PER_ORIGIN + shift) % 1000


def prefix(index: int) -> str:
    return f"100.{64 + index // 256}.{index % 256}.0/24"


def roas_yaml(count: int) -> str:
    lines = [f"  - {{asn: AS{origin(i)}, prefix: {prefix(i)}}}\n" for i in range(count)]
    return "roas:\n" + "".join(lines)


def change_origin(child: ChildCa, index: int, shift: int) -> str:
    """Give entry ``index`` of the CA file another origin AS; what changed."""
    path = child.repo / "cas" / f"{HANDLE}.yaml"
    text = path.read_text()
    old = f"  - {{asn: AS{origin(index)}, prefix: {prefix(index)}}}\n"
    new = f"  - {{asn: AS{origin(index, shift)}, prefix: {prefix(index)}}}\n"
    if old not in text:
        raise SystemExit(f"entry {index} is not in {path} as written")
    path.write_text(text.replace(old, new, 1))
    return f"{prefix(index)}: AS{origin(index)} -> AS{origin(index, shift)}"


@dataclass(frozen=True)
class Run:
    """One ``rpkictl`` process: its wall time, peak RSS (MB) and output."""

    wall_s: float
    rss_mb: float
    output: str
    cpu_s: float = 0.0  # user and system time of the process and its threads

    @property
    def signatures(self) -> int:
        found = APPLIED.search(self.output)
        return int(found.group(1)) if found else 0

    @property
    def sent(self) -> tuple[int, int, int, str] | None:
        """(publish, withdraw, bytes of objects, "one message" or "N messages") of what was sent to the
        repository; None when nothing was sent."""
        found = SENT.search(self.output)
        if found is None:
            return None
        return int(found.group(1)), int(found.group(2)), int(found.group(4).replace(",", "")), found.group(3)


def rpkictl(*args: str, gap: float = REPLAY_GAP_S) -> Run:
    # Each message is signed after the last one sent to the peer (kept between processes); a gap keeps
    # the signing times at the clock's, as between an operator's runs.
    time.sleep(gap)
    env = {**os.environ, "COLUMNS": "500", "TERM": "dumb", "NO_COLOR": "1"}
    start = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-m", "reconciler", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        env=env,
    )
    output = process.stdout.read() if process.stdout is not None else b""
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - start
    said = output.decode(errors="replace")
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"rpkictl {' '.join(args)} failed:\n{said[-4000:]}")
    return Run(wall, usage.ru_maxrss / 1024, said, usage.ru_utime + usage.ru_stime)


def start_only() -> float:
    """Seconds for a process that starts Python and imports what ``rpkictl apply`` imports, then exits."""
    times = []
    for _ in range(3):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", "import reconciler.cli"], check=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def setup(root: Path) -> tuple[Scratch, ChildCa]:
    """The parent (the example, ``online`` holding SPACE too, applied) and the child declared at it."""
    parent = Scratch(root / "parent")
    shutil.copytree(Path(reconciler.__file__).parent.parent / "state", parent.repo)
    online = parent.repo / "cas" / "online.yaml"
    text = online.read_text()
    if "ipv4: [192.0.2.0/24," not in text:
        raise SystemExit(f"{online} does not list its ipv4 resources as expected")
    online.write_text(text.replace("ipv4: [192.0.2.0/24,", f"ipv4: [{SPACE}, 192.0.2.0/24,", 1))
    child = make_child(root / "child")
    declare_child(parent, child, resources=ENTITLED)
    rpkictl("apply", str(parent.repo), "--yes")
    return parent, child


def rss_mb(process: subprocess.Popen[bytes], kind: str = "VmHWM") -> float:
    for line in Path(f"/proc/{process.pid}/status").read_text().splitlines():
        if line.startswith(f"{kind}:"):
            return int(line.split()[1]) / 1024
    return float("nan")


@dataclass
class Steps:
    """Seconds of each step of an apply run in this process, in order."""

    seconds: dict[str, float] = field(default_factory=dict)
    sent: upstream_repository.Synced | None = None

    @contextmanager
    def timed(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - start


def in_process(repo: Path) -> Steps:
    """``rpkictl apply --yes`` as ``cli._apply_locked`` runs it, each step timed; the Synced of the RFC
    8181 exchange kept."""
    steps = Steps()
    synchronise = upstream_repository.synchronise

    def recorded(*args: Any, **kwargs: Any) -> upstream_repository.Synced:
        steps.sent = synchronise(*args, **kwargs)
        return steps.sent

    upstream_repository.synchronise = recorded
    try:
        onetime.make_ahead(2)
        now = clock.now()
        with steps.timed("load the desired state"):
            desired = engine.load_desired(repo)
        with lock.acquire(
            desired.publication.directory,
            who="benchmark",
            operation="apply",
            plan_id=None,
            timeout=timedelta(0),
        ) as held:
            with steps.timed("open the signers"):
                signers = engine.signers_for(desired)
            with steps.timed("RFC 6492 exchange (list)"):
                engine.contact_parent(desired, signers, now, always=True)
            with steps.timed("read the publication point"):
                workspace = engine.workspace_for(desired, signers)
            with steps.timed("plan"):
                the_plan = engine.plan(workspace, now)
                doc = engine.plan_document(workspace, the_plan)
            result = None
            if not the_plan.empty:
                with steps.timed("sign and publish locally"):
                    result = engine.apply_recorded(
                        workspace, the_plan, engine.AuditedPlan.of(doc), [], now=now, held=held
                    )
            with steps.timed("RFC 8181 exchange (list, send)"):
                engine.publish_remote(workspace, now, result)
    finally:
        upstream_repository.synchronise = synchronise
    return steps


def profiled(call: Callable[[], Steps], top: int) -> Steps:
    profile = cProfile.Profile()
    steps = profile.runcall(call)
    for order in ("cumulative", "tottime"):
        text = io.StringIO()
        pstats.Stats(profile, stream=text).sort_stats(order).print_stats(top)
        lines = text.getvalue().splitlines()
        start = next((i for i, line in enumerate(lines) if "ncalls" in line), 0)
        print(f"   profile by {order}:")
        for line in lines[start : start + top + 1]:
            print(f"     {line[:150]}")
    return steps


def floor_s(calibration: Calibration, keygens: int, signatures: int) -> float:
    work = keygens * calibration.keygen_mean_s + signatures * calibration.sign_median_s
    return work / calibration.cores + FIXED


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--roas", type=int, default=5000, help="one-prefix ROA entries of the child")
    parser.add_argument("--repeat", type=int, default=5, help="one-ROA changes run, the median reported")
    parser.add_argument("--profile", action="store_true", help="profile the in-process one-ROA change")
    parser.add_argument("--scratch", type=Path, default=None, help="kept, not removed, when given")
    args = parser.parse_args(argv)
    if not 1 <= args.roas <= 16384 or args.repeat < 1:
        parser.error(f"--roas must be 1 to 16,384 (the /24s of {SPACE}) and --repeat at least 1")
    print(f"machine: {platform.node()}, {platform.machine()}, {os.cpu_count()} cores, ", end="")
    print(f"Python {platform.python_version()}, {platform.platform()}")
    print(f"cryptography's OpenSSL: {backend.openssl_version_text()}")
    compileall.compile_dir(Path(reconciler.__file__).parent, quiet=1)  # as benchmarks/scale.py does
    calibration = calibrate()  # as benchmarks/scale.py: 300 keys, 1,000 signatures
    print(
        f"calibration: keygen {calibration.keygen_mean_s * 1000:.1f} ms mean, sign "
        f"{calibration.sign_median_s * 1000:.3f} ms median, {calibration.cores} cores",
        flush=True,
    )
    root = args.scratch or Path(tempfile.mkdtemp(prefix="child-ca-"))
    root.mkdir(parents=True, exist_ok=True)
    for stale in ("parent", "child"):
        shutil.rmtree(root / stale, ignore_errors=True)
    try:
        parent, child = setup(root)
        with serve_process(parent.repo, root / "serve.log") as served:
            connect(parent, child, served.url)
            child.write(f"cas/{HANDLE}.yaml", child_ca_file(roas_yaml(args.roas), ENTITLED))
            measure(args, calibration, child, served)
    finally:
        if args.scratch is None:
            shutil.rmtree(root, ignore_errors=True)


def measure(args: argparse.Namespace, calibration: Calibration, child: ChildCa, served: ServeProcess) -> None:
    repo = str(child.repo)
    print(f"child: {args.roas:,} ROAs under parent online at {served.url}; {child.root}", flush=True)

    load = os.getloadavg()[0]
    first = rpkictl("apply", repo, "--yes")
    keygens = args.roas + 1 + 1 + MESSAGES_FIRST  # ROAs, manifest, CA key, protocol messages
    signatures = first.signatures + 3 * MESSAGES_FIRST
    floor = floor_s(calibration, keygens, signatures)
    sent = first.sent
    print(
        f"first apply        {first.wall_s:8.2f} s  {first.signatures:,} signatures, {keygens:,} keygens, "
        f"floor {floor:.2f} s, ratio {first.wall_s / floor:.2f}; sent {sent[0] if sent else 0:,} publish "
        f"in {sent[3] if sent else 'no message'} ({sent[2] if sent else 0:,} bytes of objects); "
        f"peak RSS {first.rss_mb:.0f} MB",
        flush=True,
    )
    print(
        f"  CPU {first.cpu_s:.1f} s ({first.cpu_s / first.wall_s:.2f} of the {calibration.cores} cores; the "
        f"floor's work on one core {(floor - FIXED) * calibration.cores:.1f} s); "
        f"load average {load:.2f} before, {os.getloadavg()[0]:.2f} after (other processes count too)"
    )

    changes = []
    for turn in range(args.repeat):
        what = change_origin(child, (7 + turn * 101) % args.roas, shift=1 + turn)
        run = rpkictl("apply", repo, "--yes", gap=REPLAY_GAP_S * (3 if turn == 0 else 1))
        changes.append(run)
        publish, withdraw, size, queries = run.sent or (0, 0, 0, "no message")
        print(
            f"one-ROA change     {run.wall_s:8.2f} s  {run.signatures} signatures; sent {publish} publish "
            f"and {withdraw} withdraw in {queries} ({size:,} bytes of objects); peak RSS {run.rss_mb:.0f} MB"
            f"  [{what}]",
            flush=True,
        )
    walls = [run.wall_s for run in changes]
    print(
        f"one-ROA change     {statistics.median(walls):8.2f} s  median of {len(walls)} "
        f"({min(walls):.2f}-{max(walls):.2f} s)"
    )

    noop = rpkictl("apply", repo, "--yes")
    quiet = noop.sent is None and "holds all" in noop.output
    print(
        f"no-op apply        {noop.wall_s:8.2f} s  {noop.signatures} signatures; "
        f"{'sent nothing' if quiet else 'SENT SOMETHING'}; peak RSS {noop.rss_mb:.0f} MB",
        flush=True,
    )
    kept = upstream_state.load(child.root / "published", HANDLE).held
    print(
        f"  the repository holds {kept.objects:,} objects ({kept.size:,} bytes); the last message "
        f"sent: {kept.sent_publish} publish, {kept.sent_withdraw} withdraw, {kept.sent_bytes:,} bytes"
    )

    what = change_origin(child, (7 + args.repeat * 101) % args.roas, shift=1 + args.repeat)
    started = start_only()
    time.sleep(REPLAY_GAP_S)

    def call() -> Steps:
        return in_process(child.repo)

    gc.collect()
    gc.set_threshold(*RPKICTL_GC)
    wall = time.perf_counter()
    steps = profiled(call, 30) if args.profile else call()
    wall = time.perf_counter() - wall
    print(f"one-ROA change in this process ({what}){' under cProfile' if args.profile else ''}:")
    print(f"  {'start Python, import (a process of its own)':<46} {started:6.3f} s")
    for name, seconds in steps.seconds.items():
        print(f"  {name:<46} {seconds:6.3f} s")
    print(f"  {'total in the process':<46} {wall:6.3f} s")
    if steps.sent is not None:
        print(
            f"  RFC 8181 message: {steps.sent.published} publish, {steps.sent.withdrawn} withdraw, "
            f"{steps.sent.message:,} bytes before signing ({steps.sent.size:,} bytes of objects); the "
            f"repository listed {steps.sent.held:,} objects"
        )
    peak = max(run.rss_mb for run in (first, *changes, noop))
    print(
        f"peak RSS: rpkictl {peak:.0f} MB (first apply {first.rss_mb:.0f} MB), rpkictl serve "
        f"{rss_mb(served.process):.0f} MB"
    )


if __name__ == "__main__":
    main()
