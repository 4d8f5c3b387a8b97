"""RRDP as apply publishes it: one session kept across runs, one serial per published change and only
then, deltas that turn the previous snapshot into the next, pruning, and a new session whenever RRDP
no longer matches the rsync tree (loss, drift, an interrupted apply)."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from defusedxml import ElementTree

from reconciler import engine
from reconciler.plan.model import Kind
from reconciler.publish import rrdp
from reconciler.publish.rsync_tree import publish
from reconciler.published import read
from reconciler.rpki import cert as rc
from tests.helpers import T0, Scratch, later, scratch_copy

RRDP_BASE = "https://rpki.example.net/rrdp/"
FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "real-world" / "rpki-client-regress" / "rrdp"
NS = {"r": rrdp.NS}
ISP = "cas/members/example-isp.yaml"


def with_rrdp(scratch: Scratch) -> Scratch:
    scratch.edit(
        "rpki.yaml", "  directory: ../published", f"  rrdp_base: {RRDP_BASE}\n  directory: ../published"
    )
    return scratch


@pytest.fixture
def served(tmp_path: Path) -> Scratch:
    scratch = with_rrdp(scratch_copy(tmp_path))
    assert scratch.apply(T0) is not None
    return scratch


def rrdp_dir(scratch: Scratch) -> Path:
    return scratch.root / "published" / "rrdp"


def notification(scratch: Scratch) -> rrdp.Notification:
    found = rrdp.read_notification(rrdp_dir(scratch))
    assert found is not None
    return found


def local(scratch: Scratch, uri: str) -> Path:
    assert uri.startswith(RRDP_BASE)
    return rrdp_dir(scratch) / uri[len(RRDP_BASE) :]


def snapshot_files(scratch: Scratch, state: rrdp.Notification) -> dict[str, bytes]:
    data = local(scratch, state.snapshot_uri).read_bytes()
    assert hashlib.sha256(data).hexdigest() == state.snapshot_hash
    root = ElementTree.fromstring(data)
    assert root.tag == f"{{{rrdp.NS}}}snapshot" and root.get("version") == "1"
    assert root.get("session_id") == state.session_id and root.get("serial") == str(state.serial)
    base = "rsync://rpki.example.net/repo/"
    return {
        p.attrib["uri"][len(base) :]: base64.b64decode(p.text or "") for p in root.findall("r:publish", NS)
    }


def apply_delta(
    scratch: Scratch, files: dict[str, bytes], delta: rrdp.DeltaRef, session: str
) -> dict[str, bytes]:
    """What a relying party does with a delta, checking every hash it names (RFC 8182 §3.5.3)."""
    data = local(scratch, delta.uri).read_bytes()
    assert hashlib.sha256(data).hexdigest() == delta.hash
    root = ElementTree.fromstring(data)
    assert root.get("session_id") == session and root.get("serial") == str(delta.serial)
    base = "rsync://rpki.example.net/repo/"
    result = dict(files)
    for element in root:
        path = element.attrib["uri"][len(base) :]
        replaced = element.get("hash")
        if replaced is not None:
            assert hashlib.sha256(result[path]).hexdigest() == replaced
        else:
            assert path not in result
        if element.tag == f"{{{rrdp.NS}}}withdraw":
            del result[path]
        else:
            result[path] = base64.b64decode(element.text or "")
    return result


def toggle_max_length(scratch: Scratch, hours: range) -> int:
    """One published change per hour (a max_length flipped between 26 and 25); returns the last value."""
    current = 26
    for hour in hours:
        new = 25 if current == 26 else 26
        scratch.edit(ISP, f"max_length: {current}", f"max_length: {new}")
        scratch.apply(later(hour))
        current = new
    return current


def test_first_publication_starts_a_session(served: Scratch) -> None:
    state = notification(served)
    assert state.serial == 1 and state.deltas == ()
    assert snapshot_files(served, state) == read(served.rsync).files
    raw = (rrdp_dir(served) / "notification.xml").read_bytes()
    root = ElementTree.fromstring(raw)
    assert root.tag == f"{{{rrdp.NS}}}notification" and root.get("version") == "1"
    ta = read(served.rsync).certificate("ta.cer")
    assert isinstance(ta, rc.ResourceCertificate) and ta.notify == RRDP_BASE + "notification.xml"


def test_each_published_change_is_one_serial_with_a_delta(served: Scratch) -> None:
    first = notification(served)
    before = read(served.rsync).files
    assert served.plan(later(1)).empty and served.apply(later(1)) is None
    assert notification(served) == first  # nothing published, no serial
    served.edit(ISP, "  - {asn: AS0, prefix: 192.0.2.128/25}\n", "")
    served.apply(later(2))
    second = notification(served)
    assert (second.session_id, second.serial) == (first.session_id, 2)
    assert [d.serial for d in second.deltas] == [2]
    after = read(served.rsync).files
    assert apply_delta(served, before, second.deltas[0], second.session_id) == after
    assert snapshot_files(served, second) == after
    served.apply(later(18))  # the routine renewals are a published change too
    third = notification(served)
    assert third.serial == 3 and [d.serial for d in third.deltas] == [3, 2]
    caught_up = before
    for delta in reversed(third.deltas):
        caught_up = apply_delta(served, caught_up, delta, third.session_id)
    assert caught_up == read(served.rsync).files


def test_deltas_never_outweigh_the_snapshot(served: Scratch) -> None:
    toggle_max_length(served, range(1, 12))
    state = notification(served)
    sizes = sum(local(served, d.uri).stat().st_size for d in state.deltas)
    assert sizes <= local(served, state.snapshot_uri).stat().st_size
    assert [d.serial for d in state.deltas] == list(range(state.serial, state.serial - len(state.deltas), -1))
    assert len(state.deltas) < state.serial - 1  # some were pruned


def test_a_lost_publication_point_starts_a_new_session(served: Scratch) -> None:
    old = notification(served)
    shutil.rmtree(served.root / "published")
    served.apply(later(1))
    new = notification(served)
    assert new.session_id != old.session_id and new.serial == 1
    assert snapshot_files(served, new) == read(served.rsync).files


def test_rrdp_left_behind_is_republished_in_a_new_session(served: Scratch) -> None:
    """An apply killed between the rsync swap and the notification: the next plan says so, and apply
    brings RRDP level with the tree."""
    old = notification(served)
    workspace = engine.open_workspace(served.repo)
    files = dict(workspace.published.files)
    files.pop(next(p for p in files if p.endswith(".roa")))
    publish(served.root / "published", files, later(1))  # the rsync half of an interrupted apply
    plan = served.plan(later(1))
    behind = [c for c in plan.changes if c.kind is Kind.RRDP]
    assert len(behind) == 1 and "does not match the rsync tree" in behind[0].reason and behind[0].routine
    served.apply(later(1))
    new = notification(served)
    assert new.session_id != old.session_id
    assert snapshot_files(served, new) == read(served.rsync).files
    assert not [c for c in served.plan(later(1)).changes if c.kind is Kind.RRDP]


def test_old_serials_are_removed_after_the_grace_period(
    served: Scratch, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(rrdp, "GRACE", rrdp.GRACE * 0)
    first = local(served, notification(served).snapshot_uri).parent
    served.edit(ISP, "max_length: 26", "max_length: 25")
    served.apply(later(1))
    assert not first.exists()
    state = notification(served)
    assert local(served, state.snapshot_uri).exists()


@pytest.mark.parametrize("name", ["billion_lol.xml", "xxe.xml", "snapshot.xml", "delta.xml"])
def test_hostile_or_foreign_files_are_not_a_notification(tmp_path: Path, name: str) -> None:
    shutil.copy(FIXTURES / name, tmp_path / "notification.xml")
    assert rrdp.read_notification(tmp_path) is None


def test_a_real_notification_is_read(tmp_path: Path) -> None:
    shutil.copy(FIXTURES / "notification.xml", tmp_path / "notification.xml")
    found = rrdp.read_notification(tmp_path)
    assert found is not None
    assert (found.session_id, found.serial) == ("8fe05c2e-047d-49e7-8398-cd4250a572b1", 50550)
    assert found.deltas[0].serial == 50550 and found.deltas[1].serial == 50549


def test_deltas_are_pruned_by_count_and_by_age(served: Scratch, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(rrdp, "MAX_DELTAS", 2)
    current = toggle_max_length(served, range(1, 5))
    state = notification(served)
    assert state.serial == 5 and [d.serial for d in state.deltas] == [5, 4]
    monkeypatch.setattr(rrdp, "MAX_DELTA_AGE", rrdp.MAX_DELTA_AGE * 0)
    served.edit(ISP, f"max_length: {current}", "max_length: 27")
    served.apply(later(6))
    state = notification(served)
    assert state.serial == 6 and state.deltas == ()  # too old to offer: relying parties take the snapshot


def test_missing_rrdp_files_are_noticed_and_republished(served: Scratch) -> None:
    state = notification(served)
    shutil.rmtree(local(served, state.snapshot_uri).parent.parent.parent)  # the whole session directory
    plan = served.plan(later(1))
    (change,) = [c for c in plan.changes if c.kind is Kind.RRDP]
    assert "missing or altered" in change.reason
    served.apply(later(1))
    new = notification(served)
    assert new.session_id != state.session_id and local(served, new.snapshot_uri).is_file()


def test_what_was_listed_stays_for_the_grace_period(served: Scratch) -> None:
    """A directory created long ago but listed until now is kept: relying parties that read the
    previous notification may still be fetching it."""
    first = local(served, notification(served).snapshot_uri).parent
    os.utime(first, (0, 0))  # written long ago
    served.edit(ISP, "max_length: 26", "max_length: 25")
    served.apply(later(1))
    assert (first / "snapshot.xml").exists()


def test_old_snapshots_go_once_their_grace_is_over(served: Scratch, monkeypatch: pytest.MonkeyPatch) -> None:
    """Deltas stay on offer, but the snapshots beside them (as big as the repository) do not."""
    monkeypatch.setattr(rrdp, "GRACE", rrdp.GRACE * 0)
    served.edit(ISP, "max_length: 26", "max_length: 25")
    served.apply(later(1))
    served.edit(ISP, "max_length: 25", "max_length: 26")
    served.apply(later(2))
    state = notification(served)
    snapshots = sorted(rrdp_dir(served).rglob("snapshot.xml"))
    assert snapshots == [local(served, state.snapshot_uri)]
    assert all(local(served, d.uri).is_file() for d in state.deltas)


def _count_snapshots(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    built: list[int] = []
    original = rrdp.snapshot_pieces

    def counting(session_id: str, serial: int, files: dict[str, bytes], rsync_base: str) -> Iterator[bytes]:
        built.append(serial)
        return original(session_id, serial, files, rsync_base)

    monkeypatch.setattr(rrdp, "snapshot_pieces", counting)
    return built


def test_a_recorded_snapshot_is_not_rebuilt_to_be_checked(
    served: Scratch, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The snapshot's tree is recorded when it is published: a plan checks RRDP without encoding the
    whole repository again, and an apply encodes only the new snapshot."""
    built = _count_snapshots(monkeypatch)
    assert served.plan(later(1)).empty
    assert built == []
    served.edit(ISP, "max_length: 26", "max_length: 25")
    served.apply(later(1))
    assert built == []  # the new serial's snapshot is spliced from the previous one, not rebuilt
    assert served.plan(later(1)).empty and built == []


def test_a_record_that_does_not_fit_the_tree_costs_a_rebuild_never_a_wrong_answer(
    served: Scratch, monkeypatch: pytest.MonkeyPatch
) -> None:
    record = served.root / "published" / "cache" / rrdp.RECORD
    saved = record.read_text()
    built = _count_snapshots(monkeypatch)
    stale = json.dumps({**json.loads(saved), "tree": "0" + json.loads(saved)["tree"]})
    for damage in ("not json", '{"tree": 1}', stale):
        record.write_text(damage)
        assert served.plan(later(1)).empty  # the snapshot is rebuilt, and matches
    assert len(built) == 3
    record.unlink()
    assert served.plan(later(1)).empty and len(built) == 4
    # The record names the snapshot it describes: with another snapshot listed, it says nothing.
    record.write_text(saved)
    roa = next(served.rsync.rglob("*.roa"))
    roa.write_bytes(roa.read_bytes() + b"\0")  # drift: the tree is no longer the recorded one
    (change,) = [c for c in served.plan(later(1)).changes if c.kind is Kind.RRDP]
    assert "does not match the rsync tree" in change.reason


def test_a_record_of_another_snapshot_is_not_taken_for_the_one_listed(served: Scratch) -> None:
    """RRDP restored from a backup taken one serial ago lists the previous tree's snapshot; the record of
    the current tree describes another serial and must not vouch for it."""
    backup = served.root / "rrdp-backup"
    shutil.copytree(rrdp_dir(served), backup)
    served.edit(ISP, "max_length: 26", "max_length: 25")
    served.apply(later(1))
    shutil.rmtree(rrdp_dir(served))
    shutil.copytree(backup, rrdp_dir(served))
    (change,) = [c for c in served.plan(later(1)).changes if c.kind is Kind.RRDP]
    assert "does not match the rsync tree" in change.reason


def _count_hashing(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    hashed: list[str] = []
    file_digest = hashlib.file_digest

    def counting(handle: object, digest: str) -> object:
        hashed.append(getattr(handle, "name", "?"))
        return file_digest(handle, digest)  # type: ignore[arg-type]

    monkeypatch.setattr(hashlib, "file_digest", counting)
    return hashed


def test_a_settled_file_is_hashed_once_and_a_rewritten_one_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The plan and the apply after it both check the snapshot the notification lists: a file unchanged
    for a while is hashed once per process; a file written since, by anyone, is hashed again."""
    monkeypatch.setattr(rrdp, "_SETTLED_NS", -1)  # every file counts as settled
    monkeypatch.setattr(rrdp, "_hashed", {})
    hashed = _count_hashing(monkeypatch)
    snapshot = tmp_path / "snapshot.xml"
    snapshot.write_bytes(b"<snapshot/>")
    first = rrdp._file_sha256(snapshot)
    assert rrdp._file_sha256(snapshot) == first and len(hashed) == 1
    snapshot.write_bytes(b"<snapshot>altered</snapshot>")
    assert rrdp._file_sha256(snapshot) == hashlib.sha256(b"<snapshot>altered</snapshot>").hexdigest()
    assert len(hashed) == 2


def test_a_file_written_just_now_is_hashed_every_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rewritten within the same tick of the clock, with the same size, a file may keep every time
    ``stat`` shows: one changed that recently is never remembered."""
    monkeypatch.setattr(rrdp, "_hashed", {})
    snapshot = tmp_path / "snapshot.xml"
    snapshot.write_bytes(b"<snapshot>aaaa</snapshot>")
    assert rrdp._file_sha256(snapshot) == hashlib.sha256(b"<snapshot>aaaa</snapshot>").hexdigest()
    assert rrdp._hashed == {}  # not remembered: it changed less than two seconds ago
    stat = snapshot.stat()
    snapshot.write_bytes(b"<snapshot>bbbb</snapshot>")
    os.utime(snapshot, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # as if written in the same tick
    assert rrdp._file_sha256(snapshot) == hashlib.sha256(b"<snapshot>bbbb</snapshot>").hexdigest()
