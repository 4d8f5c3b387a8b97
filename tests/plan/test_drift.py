"""Every kind of damage to every kind of published object: plan names it, apply repairs it, and the
tree then agrees with the desired state again (a second plan is empty)."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from reconciler.plan.diff import published_vrps
from reconciler.published import read
from tests.helpers import T0, Scratch, later, scratch_copy

Damage = Callable[[Path], None]


def delete(path: Path) -> None:
    path.unlink()


def truncate_to_nothing(path: Path) -> None:
    path.write_bytes(b"")


def truncate_to_half(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 2])


def flip_a_bit(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x10
    path.write_bytes(bytes(data))


DAMAGE: dict[str, Damage] = {
    "deleted": delete,
    "truncated to nothing": truncate_to_nothing,
    "truncated to half": truncate_to_half,
    "one bit flipped": flip_a_bit,
}

OBJECTS: dict[str, Callable[[Path], Path]] = {
    "a ROA": lambda tree: tree / "example-isp" / "AS64496_192-0-2-0_24.roa",
    "a manifest": lambda tree: next((tree / "example-isp").glob("*.mft")),
    "a CRL": lambda tree: next((tree / "online").glob("*.crl")),
    "a child CA certificate": lambda tree: tree / "online" / "example-isp.cer",
    "the trust anchor certificate": lambda tree: tree / "ta.cer",
}


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Path:
    scratch = scratch_copy(tmp_path_factory.mktemp("pristine"))
    assert scratch.apply(T0) is not None
    return scratch.root


def copy_of(pristine: Path, tmp_path: Path) -> Scratch:
    shutil.copytree(pristine, tmp_path / "copy", symlinks=True)
    return Scratch(tmp_path / "copy")


@pytest.mark.parametrize("damage", list(DAMAGE))
@pytest.mark.parametrize("target", list(OBJECTS))
def test_damage_is_named_and_repaired(pristine: Path, tmp_path: Path, target: str, damage: str) -> None:
    scratch = copy_of(pristine, tmp_path)
    want = published_vrps(read(scratch.rsync))
    tree = scratch.rsync.resolve()
    path = OBJECTS[target](tree)
    relative = path.relative_to(tree).as_posix()
    DAMAGE[damage](path)
    plan = scratch.plan(later(1))
    assert not plan.empty, f"{target} {damage}: the plan sees nothing"
    named = [c for c in plan.changes if c.path == relative or relative.rsplit("/", 1)[0] + "/" in c.path]
    assert named, f"{target} {damage}: no change names {relative}: {[c.address for c in plan.changes]}"
    scratch.apply(later(1))
    assert scratch.plan(later(1)).empty, f"{target} {damage}: not repaired"
    assert published_vrps(read(scratch.rsync)) == want


ROA = "example-isp/AS64496_192-0-2-0_24.roa"
CERT = "online/example-isp.cer"


@pytest.mark.parametrize(
    ("added", "copied", "reason"),
    [
        ("online/junk.txt", ROA, "not part of the desired state"),
        ("example-isp/AS64511_10-0-0-0_8.roa", ROA, f"a copy of rsync://rpki.example.net/repo/{ROA}"),
        ("gone-ca/AS64496_192-0-2-0_24.roa", ROA, "CA gone-ca is no longer in the desired state"),
        ("stray.cer", ROA, "not part of the desired state"),
        ("online/other-isp.cer", CERT, "CA other-isp is no longer a child of online"),
    ],
)
def test_added_files_are_named_and_withdrawn(
    pristine: Path, tmp_path: Path, added: str, copied: str, reason: str
) -> None:
    """Copies of published objects are withdrawn, never revoked: their serial is the original's."""
    scratch = copy_of(pristine, tmp_path)
    want = published_vrps(read(scratch.rsync))
    tree = scratch.rsync.resolve()
    (tree / added).parent.mkdir(exist_ok=True)
    (tree / added).write_bytes((tree / copied).read_bytes())
    plan = scratch.plan(later(1))
    (change,) = [c for c in plan.changes if c.path == added]
    assert reason in change.reason and change.action.value == "withdraw" and change.revoke_serial is None
    assert plan.revocations == ()
    scratch.apply(later(1))
    assert added not in read(scratch.rsync).files and scratch.plan(later(1)).empty
    assert published_vrps(read(scratch.rsync)) == want


def test_a_copy_over_a_wanted_name_is_replaced_without_revoking_the_original(
    pristine: Path, tmp_path: Path
) -> None:
    """A ROA copied over another ROA's file: the damaged name is re-issued, and the original's serial --
    which the copy carries -- stays off the CRL (else relying parties would drop the original's VRP)."""
    scratch = copy_of(pristine, tmp_path)
    want = published_vrps(read(scratch.rsync))
    tree = scratch.rsync.resolve()
    (tree / "example-isp" / "AS0_192-0-2-128_25.roa").write_bytes((tree / ROA).read_bytes())
    plan = scratch.plan(later(1))
    (change,) = [c for c in plan.changes if c.path == "example-isp/AS0_192-0-2-128_25.roa"]
    assert change.revoke_serial is None and plan.revocations == ()
    scratch.apply(later(1))
    assert scratch.plan(later(1)).empty and published_vrps(read(scratch.rsync)) == want
