"""Kill ``rpkictl apply`` (SIGKILL) at every step it reaches and check what relying parties can see.

A first, traced run lists the fault points an apply goes through (``reconciler/faults.py``): key
creation, each file of the new rsync tree, the symlink swap, the RRDP snapshot, delta and
notification, the audit records. Then, for each point, a fresh copy of the same starting state is
applied with ``RPKICTL_CRASH_AT`` set, the process dies there, and:

- the rsync tree served is complete and consistent -- every manifest lists exactly the files of its
  directory with their hashes -- and is either the old tree or the new one;
- the RRDP notification points at a snapshot and deltas that exist, with the hashes it names;
- the next apply (the lock of the dead process is no obstacle) converges, and a plan then has nothing
  to do; no manifest or CRL number is reused or goes backwards;
- the audit log's hash chain is intact, and an apply killed after it started shows as interrupted.

The test prints how many kill points it exercised and how many inconsistent states it saw (0).
"""

from __future__ import annotations

import hashlib
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from reconciler.publish import rrdp
from reconciler.published import read
from reconciler.published.reader import PublishedState, SignedManifest
from reconciler.rpki import crl as crl_mod
from tests.helpers import Scratch, scratch_copy
from tests.publish.test_rrdp import with_rrdp
from tests.test_cli_review import rpkictl

NOW = "2026-11-23T12:00:00Z"
CHANGE_AT = "2026-11-23T13:00:00Z"
RECOVER_AT = "2026-11-23T13:10:00Z"
ISP = "cas/members/example-isp.yaml"
NEW_CA = """name: new-isp
parent: online
resources:
  asn: [AS64500]
  ipv4: [203.0.113.0/25]
roas:
  - {asn: AS64500, prefix: 203.0.113.0/25}
"""


def consistency_problems(files: dict[str, bytes]) -> list[str]:
    """What a relying party would reject: a manifest listing a file that is missing or different, or a
    file in a CA directory that no manifest lists."""
    state = PublishedState(files=dict(files))
    problems = []
    listed: set[str] = set()
    for path in sorted(files):
        if not path.endswith(".mft"):
            continue
        directory = path.rsplit("/", 1)[0] + "/"
        found = state.manifest(path)
        if not isinstance(found, SignedManifest):
            problems.append(f"{path}: unreadable manifest")
            continue
        for name, digest in found.content.files:
            listed.add(directory + name)
            if directory + name not in files:
                problems.append(f"{path} lists {name}, which is missing")
            elif hashlib.sha256(files[directory + name]).digest() != digest:
                problems.append(f"{path} lists {name} with another hash")
    for path in files:
        if "/" in path and not path.endswith(".mft") and path not in listed:
            problems.append(f"{path} is on no manifest")
    return problems


def rrdp_problems(directory: Path, base: str) -> tuple[list[str], dict[str, bytes] | None]:
    notification = rrdp.read_notification(directory)
    if notification is None:
        return (["no readable notification"] if (directory / "notification.xml").exists() else []), None
    problems = []
    snapshot = directory / notification.snapshot_uri[len(base) :]
    if (
        not snapshot.is_file()
        or hashlib.sha256(snapshot.read_bytes()).hexdigest() != notification.snapshot_hash
    ):
        problems.append("the notification's snapshot is missing or differs")
    for delta in notification.deltas:
        path = directory / delta.uri[len(base) :]
        if not path.is_file() or hashlib.sha256(path.read_bytes()).hexdigest() != delta.hash:
            problems.append(f"delta {delta.serial} is missing or differs")
    return problems, None


def numbers(files: dict[str, bytes]) -> dict[str, tuple[int, bytes]]:
    """Manifest and CRL numbers by path, with the object's bytes."""
    state = PublishedState(files=dict(files))
    found = {}
    for path, data in files.items():
        if path.endswith(".mft") and isinstance(mft := state.manifest(path), SignedManifest):
            found[path] = (mft.content.number, data)
        elif path.endswith(".crl") and isinstance(crl := state.crl(path), crl_mod.Crl):
            found[path] = (crl.number, data)
    return found


SUMMARY: list[str] = []  # printed at the end of the run by conftest.py


@dataclass
class Tally:
    exercised: list[str] = field(default_factory=list)
    inconsistent: list[str] = field(default_factory=list)


@pytest.fixture(scope="module")
def baseline(tmp_path_factory: pytest.TempPathFactory) -> Scratch:
    """The bundled example with RRDP, applied once, and a change waiting that creates a key."""
    scratch = with_rrdp(scratch_copy(tmp_path_factory.mktemp("baseline")))
    assert rpkictl("apply", str(scratch.repo), "--yes", "--simulate-time", "--now", NOW).returncode == 0
    scratch.edit(ISP, "  - {asn: AS0, prefix: 192.0.2.128/25}\n", "")
    scratch.edit(
        "cas/online.yaml",
        "ipv4: [192.0.2.0/24, 198.51.100.0/24, 203.0.113.0/24]",
        "ipv4: [192.0.2.0/24, 198.51.100.0/24, 203.0.113.0/24]",
    )
    scratch.write("cas/members/new-isp.yaml", NEW_CA)
    return scratch


def kill_points(baseline: Scratch, tmp_path: Path) -> list[str]:
    copy = Scratch(tmp_path / "trace")
    shutil.copytree(baseline.root, copy.root, symlinks=True)
    trace = tmp_path / "trace.txt"
    traced = rpkictl(
        "apply",
        str(copy.repo),
        "--yes",
        "--simulate-time",
        "--now",
        CHANGE_AT,
        env={"RPKICTL_CRASH_TRACE": str(trace)},
    )
    assert traced.returncode == 0, traced.stderr
    reached = trace.read_text().split()
    files = [p for p in reached if p.startswith("rsync.file:")]
    chosen = [p for p in reached if not p.startswith("rsync.file:")]
    chosen += sorted({files[0], files[len(files) // 2], files[-1]}, key=files.index)
    return chosen


def test_no_kill_point_leaves_relying_parties_a_broken_state(baseline: Scratch, tmp_path: Path) -> None:
    points = kill_points(baseline, tmp_path)
    assert {
        "keys.created:1",
        "rsync.before-swap:1",
        "rsync.after-swap:1",
        "rrdp.snapshot:1",
        "rrdp.delta:1",
        "rrdp.before-notification:1",
        "audit.started:1",
    } <= set(points)
    old = read(baseline.rsync).files
    tally = Tally()
    base = "https://rpki.example.net/rrdp/"
    for point in points:
        copy = Scratch(tmp_path / point.replace(":", "-"))
        shutil.copytree(baseline.root, copy.root, symlinks=True)
        killed = rpkictl(
            "apply",
            str(copy.repo),
            "--yes",
            "--simulate-time",
            "--now",
            CHANGE_AT,
            env={"RPKICTL_CRASH_AT": point},
        )
        assert killed.returncode == -9, (point, killed.returncode, killed.stderr)
        tally.exercised.append(point)
        served = read(copy.rsync).files
        problems = consistency_problems(served)
        rrdp_found, _ = rrdp_problems(copy.root / "published" / "rrdp", base)
        problems += rrdp_found
        if served != old and not problems:
            assert any(p.startswith("new-isp/") for p in served), point  # the new tree, whole
        seen = numbers(served)

        recovered = rpkictl("apply", str(copy.repo), "--yes", "--simulate-time", "--now", RECOVER_AT)
        if recovered.returncode != 0:
            problems.append(f"recovery apply failed: {recovered.stderr}")
        plan = rpkictl("plan", str(copy.repo), "--now", RECOVER_AT)
        if plan.returncode != 0:
            problems.append(f"not converged after recovery: {plan.stdout}")
        final = read(copy.rsync).files
        problems += consistency_problems(final)
        for path, (number, data) in numbers(final).items():
            before = seen.get(path) or numbers(old).get(path)
            if before is not None and (number < before[0] or (number == before[0] and data != before[1])):
                problems.append(f"{path}: number {number} reused or lower than {before[0]}")
        log = rpkictl("log", str(copy.repo), "--verify")
        if log.returncode != 0:
            problems.append(f"audit log broken: {log.stderr}")
        elif point not in ("lock.acquired:1",) and "interrupted" not in log.stdout:
            problems.append("the killed apply does not show as interrupted in the audit log")
        if problems:
            tally.inconsistent.append(f"{point}: {problems}")
        shutil.rmtree(copy.root)
    SUMMARY.append(
        f"kill points exercised: {len(tally.exercised)}; inconsistent states: {len(tally.inconsistent)}"
    )
    assert tally.inconsistent == [], tally.inconsistent
    assert len(tally.exercised) >= 12


def test_the_check_sees_a_mix_of_old_and_new(baseline: Scratch, tmp_path: Path) -> None:
    """The consistency check itself: half of a new tree over the old one is caught."""
    copy = Scratch(tmp_path / "mix")
    shutil.copytree(baseline.root, copy.root, symlinks=True)
    old = read(copy.rsync).files
    assert consistency_problems(old) == []
    assert rpkictl("apply", str(copy.repo), "--yes", "--simulate-time", "--now", CHANGE_AT).returncode == 0
    new = read(copy.rsync).files
    mixed = {**old, **{p: d for p, d in new.items() if p.endswith(".roa")}}
    assert any("another hash" in p or "on no manifest" in p for p in consistency_problems(mixed))
