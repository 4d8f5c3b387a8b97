"""Manifest and CRL numbers go up by one from the previous one read back (RFC 9286 §4.2.1): relying
parties that keep a cache report a gap otherwise. The time-based floor is only for a point with no
readable predecessor (a new key, a lost publication point)."""

from __future__ import annotations

import shutil
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from reconciler import engine
from reconciler.apply.executor import number_floor
from reconciler.published.reader import SignedManifest
from reconciler.rpki import crl
from tests.helpers import Scratch, later, scratch_copy

ISP = "cas/members/example-isp.yaml"


def numbers(scratch: Scratch) -> dict[str, tuple[int, int]]:
    """Per CA directory: (manifest number, CRL number) of each key's point, keyed by the file stem."""
    published = engine.open_workspace(scratch.repo).published
    found: dict[str, tuple[int, int]] = {}
    for path in sorted(published.files):
        if not path.endswith(".mft"):
            continue
        stem = path.removesuffix(".mft")
        mft, revocations = published.manifest(path), published.crl(stem + ".crl")
        assert isinstance(mft, SignedManifest) and isinstance(revocations, crl.Crl), path
        found[stem] = (mft.content.number, revocations.number)
    return found


def renew_all(scratch: Scratch, at: datetime) -> None:
    """Re-sign every manifest and CRL (their validity is nearly over at ``at``)."""
    before = numbers(scratch)
    scratch.apply(at)
    assert numbers(scratch).keys() == before.keys()


@pytest.fixture
def applied(tmp_path: Path) -> Scratch:
    scratch = scratch_copy(tmp_path)
    scratch.apply()
    return scratch


def test_each_renewal_adds_one(applied: Scratch) -> None:
    first = numbers(applied)
    renew_all(applied, later(20))  # every non-TA point is due after 16 h
    second = numbers(applied)
    for stem in ("online/", "example-isp/"):
        (old,) = [v for k, v in first.items() if k.startswith(stem)]
        (new,) = [v for k, v in second.items() if k.startswith(stem)]
        assert new == (old[0] + 1, old[1] + 1), stem
    renew_all(applied, later(40))
    third = numbers(applied)
    for stem, value in second.items():
        if not stem.startswith("ta/"):
            assert third[stem] == (value[0] + 1, value[1] + 1), stem


def test_a_change_adds_one(applied: Scratch) -> None:
    first = numbers(applied)
    applied.edit(ISP, "max_length: 48", "max_length: 40")
    applied.apply(later(1))
    second = numbers(applied)
    (stem,) = [k for k in first if k.startswith("example-isp/")]
    assert second[stem] == (first[stem][0] + 1, first[stem][1] + 1)


def test_a_lost_publication_point_starts_at_the_time_floor(applied: Scratch) -> None:
    before = numbers(applied)
    shutil.rmtree(applied.root / "published")
    applied.apply(later(2))
    after = numbers(applied)
    floor = number_floor(later(2).replace(microsecond=0))
    assert after.keys() == before.keys()
    for stem, (mft_number, crl_number) in after.items():
        assert mft_number >= floor and crl_number >= floor, stem
        assert mft_number > before[stem][0] and crl_number > before[stem][1], stem


def test_an_unreadable_manifest_starts_at_the_time_floor(applied: Scratch) -> None:
    before = numbers(applied)
    (stem,) = [k for k in before if k.startswith("example-isp/")]
    (applied.rsync.resolve() / f"{stem}.mft").write_bytes(b"\x30\x03\x02\x01\x00")
    applied.apply(later(1))
    mft_number, crl_number = numbers(applied)[stem]
    assert mft_number >= number_floor(later(1).replace(microsecond=0))
    assert crl_number == before[stem][1] + 1  # the CRL was read back: one more


def test_a_key_roll_numbers_the_new_key_from_the_floor_then_by_one(applied: Scratch) -> None:
    applied.edit(ISP, "parent: online\n", "parent: online\nkey_generation: 2\n")
    applied.apply(later(1))  # staging: the new key publishes its own empty point
    staged = numbers(applied)
    new = [k for k in staged if k.startswith("example-isp/") and k not in numbers_before_roll(applied)]
    assert len(new) == 1
    assert staged[new[0]][0] >= number_floor(later(1).replace(microsecond=0))
    renew_all(applied, later(21))
    assert numbers(applied)[new[0]] == (staged[new[0]][0] + 1, staged[new[0]][1] + 1)


def numbers_before_roll(scratch: Scratch) -> set[str]:
    """The stem of the generation-1 key's point, named after that key."""
    workspace = engine.open_workspace(scratch.repo)
    key = workspace.keys()["example-isp"][1]
    return {f"example-isp/{key.hex().upper()}"}


def test_the_offline_trust_anchor_adds_one_too(tmp_path: Path) -> None:
    """The ceremony numbers the trust anchor's manifest and CRL from the previous ones in the request."""
    from tests.offline.test_ceremony import import_online, make_offline, sign_offline  # noqa: PLC0415

    scratch = scratch_copy(tmp_path)
    make_offline(scratch)
    scratch.apply(later(0))
    import_online(scratch, sign_offline(scratch, later(1)), later(2))
    first = numbers(scratch)
    (stem,) = [k for k in first if k.startswith("ta/")]
    due = later(24 * 7 * 4 + 3)  # the monthly renewal
    scratch.apply(due)
    import_online(scratch, sign_offline(scratch, due + timedelta(hours=1)), due + timedelta(hours=2))
    assert numbers(scratch)[stem] == (first[stem][0] + 1, first[stem][1] + 1)
