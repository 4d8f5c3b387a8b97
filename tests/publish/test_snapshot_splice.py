"""A new serial's snapshot spliced from the previous one: byte for byte the snapshot encoded afresh,
only the changed objects encoded, and encoded in full whenever the previous file is not what its tree
says. Its delta lists only what changed."""

from __future__ import annotations

import base64
import hashlib
import os
import random
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from defusedxml import ElementTree

from reconciler.publish import rrdp, snapshot_splice
from reconciler.publish.snapshot_splice import Previous, SpliceError
from reconciler.published import read
from tests.helpers import Scratch, later
from tests.publish.test_rrdp import ISP, local, notification, served, snapshot_files  # noqa: F401

BASE = "rsync://rpki.example.net/repo/"


def encoded(serial: int, files: dict[str, bytes]) -> bytes:
    return b"".join(rrdp.snapshot_pieces("s", serial, files, BASE))


def previous_of(tmp_path: Path, files: dict[str, bytes], data: bytes | None = None) -> Previous:
    path = tmp_path / "snapshot.xml"
    path.write_bytes(encoded(1, files) if data is None else data)
    fd = os.open(path, os.O_RDONLY)
    return Previous(fd, os.fstat(fd), rrdp._header("snapshot", "s", 1).encode(), files, BASE)


def spliced(previous: Previous, files: dict[str, bytes]) -> bytes:
    try:
        return b"".join(snapshot_splice.spliced(rrdp._header("snapshot", "s", 2).encode(), files, previous))
    finally:
        os.close(previous.fd)


def seeded(seed: int) -> random.Random:
    return random.Random(seed)  # noqa: S311 - test data, not secrets


def tree(rng: random.Random, count: int) -> dict[str, bytes]:
    # Sizes around every remainder of 3 (base64's padding), names that need escaping in XML among them.
    names = ["ca/a&b.roa", 'ca/q"uote.roa', "ca/l<t.roa", "ta.cer"]
    names += [f"ca{i % 7}/obj{i}.roa" for i in range(count)]
    return {name: rng.randbytes(rng.randrange(0, 3000)) for name in names}


@pytest.mark.parametrize("seed", range(8))
def test_a_spliced_snapshot_is_the_snapshot_encoded_afresh(tmp_path: Path, seed: int) -> None:
    rng = seeded(seed)
    before = tree(rng, 300)
    after = dict(before)
    for name in rng.sample(sorted(before), 40):
        del after[name]
    for name in rng.sample(sorted(after), 40):
        after[name] = rng.randbytes(rng.randrange(0, 3000))
    for index in range(40):
        after[f"ca{index % 9}/new{index}.roa"] = rng.randbytes(rng.randrange(0, 3000))
    assert spliced(previous_of(tmp_path, before), after) == encoded(2, after)


def test_only_the_changed_objects_are_encoded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    before = tree(seeded(1), 500)
    after = {**before, "ca3/obj3.roa": b"changed", "ca9/added.roa": b"added"}
    del after["ca4/obj4.roa"]
    previous, expected = previous_of(tmp_path, before), encoded(2, after)
    made: list[str] = []
    original = snapshot_splice.element

    def counting(rsync_base: str, path: str, data: bytes) -> bytes:
        made.append(path)
        return original(rsync_base, path, data)

    monkeypatch.setattr(snapshot_splice, "element", counting)
    assert spliced(previous, after) == expected
    assert sorted(made) == ["ca3/obj3.roa", "ca9/added.roa"]


def test_a_previous_file_of_another_size_is_not_spliced_from(tmp_path: Path) -> None:
    before = tree(seeded(2), 50)
    previous = previous_of(tmp_path, before, encoded(1, before) + b" ")
    with pytest.raises(SpliceError, match="bytes where the tree gives"):
        spliced(previous, before)


def test_an_element_out_of_place_is_noticed(tmp_path: Path) -> None:
    """Two objects of the same size swapped in the file: the size is right, the elements are not."""
    before = {"ca/a.roa": b"A" * 30, "ca/b.roa": b"B" * 30, "ca/c.roa": b"C" * 30}
    data = encoded(1, before).replace(b"ca/a.roa", b"ca/x.roa")
    with pytest.raises(SpliceError, match=re.escape("no element for rsync://rpki.example.net/repo/ca/a.roa")):
        spliced(previous_of(tmp_path, before, data), {**before, "ca/c.roa": b"changed"})


def test_a_previous_file_written_while_it_is_copied_is_noticed(tmp_path: Path) -> None:
    before = tree(seeded(3), 50)
    previous = previous_of(tmp_path, before)
    pieces = snapshot_splice.spliced(b"header\n", before, previous)
    next(pieces)
    os.utime(tmp_path / "snapshot.xml", ns=(1, 1))
    with pytest.raises(SpliceError, match="changed while it was copied"):
        list(pieces)
    os.close(previous.fd)


def test_apply_splices_and_relying_parties_see_the_tree(
    served: Scratch,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[int] = []
    original = snapshot_splice.spliced

    def counted(header: bytes, files: dict[str, bytes], previous: Previous) -> Iterator[bytes]:
        calls.append(len(files))
        return original(header, files, previous)

    monkeypatch.setattr(snapshot_splice, "spliced", counted)
    served.edit(ISP, "max_length: 26", "max_length: 25")
    served.apply(later(1))
    state = notification(served)
    assert state.serial == 2 and len(calls) == 1
    files = read(served.rsync).served_files()
    snapshot = local(served, state.snapshot_uri).read_bytes()
    assert snapshot == b"".join(rrdp.snapshot_pieces(state.session_id, 2, files, BASE))
    assert snapshot_files(served, state) == files


def test_a_failed_splice_is_encoded_in_full(served: Scratch, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    """Halfway through the snapshot, the previous file turns out not to be what it should: the
    snapshot is written again, encoded from the objects, and RRDP serves the tree all the same."""
    original = snapshot_splice.spliced

    calls: list[int] = []

    def failing(header: bytes, files: dict[str, bytes], previous: Previous) -> Iterator[bytes]:
        calls.append(len(files))
        pieces = original(header, files, previous)
        yield next(pieces)
        yield next(pieces)
        raise SpliceError("altered")

    monkeypatch.setattr(snapshot_splice, "spliced", failing)
    served.edit(ISP, "max_length: 26", "max_length: 25")
    served.apply(later(1))
    state = notification(served)
    files = read(served.rsync).served_files()
    assert state.serial == 2 and len(calls) == 1 and snapshot_files(served, state) == files
    data = local(served, state.snapshot_uri).read_bytes()
    assert hashlib.sha256(data).hexdigest() == state.snapshot_hash


@pytest.mark.parametrize("seed", range(4))
def test_a_delta_turns_the_previous_tree_into_the_next(seed: int) -> None:
    """The delta lists only what changed, in path order, and a relying party applying it gets the new
    tree (checked as RFC 8182 §3.5.3 says: every replaced or withdrawn object by its hash)."""
    rng = seeded(seed)
    before = tree(rng, 200)
    after = {name: data for name, data in before.items() if rng.random() > 0.1}
    for name in rng.sample(sorted(after), 20):
        after[name] = rng.randbytes(rng.randrange(0, 300))
    after["ca/new.roa"] = b"new"
    after[next(iter(after))] = bytes(after[next(iter(after))])  # equal bytes, another object: unchanged
    root = ElementTree.fromstring(rrdp.delta_xml("s", 2, before, after, BASE))
    touched = [element.attrib["uri"][len(BASE) :] for element in root]
    assert touched == sorted(p for p in set(before) | set(after) if before.get(p) != after.get(p))
    result = dict(before)
    for element in root:
        path = element.attrib["uri"][len(BASE) :]
        if path in before:
            assert element.attrib["hash"] == hashlib.sha256(before[path]).hexdigest()
        if element.tag == f"{{{rrdp.NS}}}withdraw":
            del result[path]
        else:
            result[path] = base64.b64decode(element.text or "")
    assert result == after


def test_a_previous_file_that_cannot_be_read_is_not_spliced_from(tmp_path: Path) -> None:
    """A read error of the previous file (here: its descriptor gone) means encoding anew, not a failed
    publication."""
    before = tree(seeded(4), 20)
    previous = previous_of(tmp_path, before)
    os.close(previous.fd)
    with pytest.raises(SpliceError, match="cannot be read"):
        list(snapshot_splice.spliced(b"header\n", before, previous))
