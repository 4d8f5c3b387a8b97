"""The caches' documents: read back as written, and nothing at all when they are not this release's."""

from __future__ import annotations

import json
from pathlib import Path

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
