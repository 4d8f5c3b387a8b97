"""The caches' documents: read back as written, and nothing at all when they are not this release's."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

import pytest

import reconciler
from reconciler import cachefile


def test_a_cache_reads_back_what_was_written(tmp_path: Path) -> None:
    path = tmp_path / "cache" / "x.json"
    assert cachefile.write(path, {"version": 3, "entries": [1, "a", None]})
    assert cachefile.read(path, 3) == {
        "version": 3,
        "entries": [1, "a", None],
        "written_by": reconciler.__version__,
    }
    assert cachefile.read(path, 4) is None  # another version of the format


def test_a_cache_written_by_another_release_is_not_read(tmp_path: Path) -> None:
    """What a cache remembers is what this code made of some bytes: another release may decode them
    more strictly, and must decode them itself."""
    path = tmp_path / "cache" / "x.json"
    assert cachefile.write(path, {"version": 1})
    document = json.loads(path.read_text())
    path.write_text(json.dumps({**document, "written_by": "0.0.1"}))
    assert cachefile.read(path, 1) is None
    path.write_text(json.dumps({"version": 1}))  # no release named at all
    assert cachefile.read(path) is None


def test_unreadable_and_unwritable_caches_are_nothing_but_slower(tmp_path: Path) -> None:
    path = tmp_path / "cache" / "x.json"
    assert cachefile.read(path) is None  # missing
    path.parent.mkdir()
    for damage in ("{not json", "[1, 2]", "\xff"):
        path.write_text(damage)
        assert cachefile.read(path) is None
    assert not cachefile.write(tmp_path / "missing" / "cache" / "x.json", {"version": 1})


@pytest.mark.parametrize("size", [0, 1, cachefile._BATCH, cachefile._BATCH + 1, 3 * cachefile._BATCH + 7])
def test_a_big_cache_is_written_in_pieces_as_one_json_document(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, size: int
) -> None:
    """A registry's memo is written a batch of members at a time, never encoded whole; the file is still
    byte for byte what encoding it whole gives, whatever the size against the batch."""
    pieces: list[int] = []
    written = cachefile._replace_private

    def measured(path: Path, data: Iterable[bytes]) -> None:
        assert not isinstance(data, bytes)
        chunks = list(data)
        pieces.extend(len(chunk) for chunk in chunks)
        written(path, chunks)

    monkeypatch.setattr(cachefile, "_replace_private", measured)
    document = {
        "version": 2,
        "rows": {f"{i:064x}": ["roa", i, [["10.0.0.0/24", 24]], None, "é"] for i in range(size)},
        "list": [[i, f'{i}"'] for i in range(size)],
        "empty": {},
    }
    path = tmp_path / "cache" / "big.json"
    assert cachefile.write(path, document)
    stamped = {**document, "written_by": reconciler.__version__}
    assert path.read_bytes() == json.dumps(stamped, separators=(",", ":")).encode()
    assert cachefile.read(path, 2) == stamped
    last_batch = dict(list(document["rows"].items())[-cachefile._BATCH :])  # the longest numbers
    assert max(pieces) <= max(len(json.dumps(last_batch, separators=(",", ":"))), 100)
