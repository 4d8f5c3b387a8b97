"""The publication floor benchmark (``benchmarks/publication_floor.py``): it does the work it times, and
leaves nothing behind."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from benchmarks import publication_floor


def test_every_file_is_linked_into_the_new_tree(tmp_path: Path) -> None:
    source, target = tmp_path / "tree", tmp_path / "next"
    source.mkdir()
    target.mkdir()
    made = publication_floor.make_tree(source, files=25, directories=4, snapshot_bytes=25 * 400)
    assert len(made) == 25 and len({Path(rel).parent for rel in made}) == 4
    publication_floor.measure_links(source, target, made)
    for rel in made:
        assert (target / rel).stat().st_ino == (source / rel).stat().st_ino
    assert sum((source / rel).stat().st_size for rel in made) == 25 * 300  # base64 of it: the snapshot


def test_the_snapshot_is_written_in_full(tmp_path: Path) -> None:
    path = tmp_path / "snapshot.xml"
    publication_floor.measure_snapshot(path, 3 * (1 << 20) + 5)
    assert path.stat().st_size == 3 * (1 << 20) + 5
    assert hashlib.sha256(path.read_bytes()).hexdigest()  # readable back, whole


def test_it_prints_each_part_and_removes_its_trees(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    floor = publication_floor.main(
        ["--files", "40", "--directories", "3", "--snapshot-mb", "0.1", "--scratch", str(tmp_path)]
    )
    out = capsys.readouterr().out
    assert "files 40, snapshot 0 MB" in out
    for part in ("link every file", "write, hash and fsync", "base64-encode", "every apply"):
        assert part in out
    assert floor.total_s == pytest.approx(floor.link_s + floor.snapshot_s + floor.encode_s)
    assert min(floor.link_s, floor.snapshot_s, floor.encode_s) > 0
    assert list(tmp_path.iterdir()) == []


def test_sizes_must_be_positive(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        publication_floor.main(["--files", "0"])
    assert "must be positive" in capsys.readouterr().err
