"""What publishing costs whatever changed: the floor that the whole-tree design puts under every apply.

Every apply makes a new rsync tree and swaps one link to it (``reconciler/publish/rsync_tree.py``), so that
an rsync session sees the old repository or the new one, never a mix: each published file is linked into
the new tree, changed or not. Every RRDP serial needs a snapshot of the whole repository (RFC 8182 §3.3),
written and hashed in full. Both grow with the repository, not with the change. This script measures that
work alone, with bare system calls and no reconciler code, on files shaped like a registry's:

    python -m benchmarks.publication_floor                         # the full registry: 210,006 files
    python -m benchmarks.publication_floor --files 6000 --directories 1 --snapshot-mb 8   # a large operator

It prints the seconds to link every file into a new tree (and sync), to write, hash and fsync a snapshot
of that size, and to base64-encode the objects into it, and their sum: no implementation of this design
can make a one-ROA change cheaper than the first two.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from reconciler.fsutil import read_bytes

#: The full registry of ``benchmarks/scale.py``: its tree's files and directories, its snapshot's size.
REGISTRY_FILES = 210_006
REGISTRY_DIRECTORIES = 20_003
REGISTRY_SNAPSHOT_MB = 474
_WRITE_CHUNK = 1 << 20


@dataclass(frozen=True)
class Floor:
    """Seconds of each part of the work every apply repeats, whatever changed."""

    files: int
    snapshot_bytes: int
    link_s: float
    snapshot_s: float
    encode_s: float

    @property
    def total_s(self) -> float:
        return self.link_s + self.snapshot_s + self.encode_s


def _paths(files: int, directories: int) -> Iterator[str]:
    """Relative paths of ``files`` files spread evenly over ``directories`` directories."""
    for index in range(files):
        yield f"ca{index % directories}/object{index}.roa"


def make_tree(root: Path, files: int, directories: int, snapshot_bytes: int) -> list[str]:
    """A tree of ``files`` random files whose base64 adds up to about ``snapshot_bytes``."""
    size = max(1, snapshot_bytes * 3 // 4 // max(1, files))
    made: list[str] = []
    for rel in _paths(files, directories):
        path = root / rel
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(os.urandom(size))
        made.append(rel)
    os.sync()
    return made


def measure_links(source: Path, target: Path, files: list[str]) -> float:
    """Link every file of ``source`` into a new tree ``target``, then one sync: what a swap costs."""
    start = time.perf_counter()
    for rel in files:
        path = f"{target}/{rel}"
        try:
            os.link(f"{source}/{rel}", path)
        except FileNotFoundError:
            Path(path).parent.mkdir()
            os.link(f"{source}/{rel}", path)
    os.sync()
    return time.perf_counter() - start


def measure_snapshot(path: Path, size: int) -> float:
    """Write ``size`` bytes, hashing them as they go, and fsync: a snapshot spliced from the last one
    costs at least this (its hash is of the whole file)."""
    chunk = os.urandom(_WRITE_CHUNK)
    digest = hashlib.sha256()
    start = time.perf_counter()
    with path.open("wb") as handle:
        left = size
        while left > 0:
            piece = chunk[: min(left, _WRITE_CHUNK)]
            handle.write(piece)
            digest.update(piece)
            left -= len(piece)
        handle.flush()
        os.fsync(handle.fileno())
    digest.hexdigest()
    return time.perf_counter() - start


def measure_encoding(source: Path, files: list[str]) -> float:
    """Read and base64-encode every object: what a snapshot written anew adds to the writing."""
    start = time.perf_counter()
    for rel in files:
        base64.b64encode(read_bytes(f"{source}/{rel}"))
    return time.perf_counter() - start


def measure(scratch: Path, files: int, directories: int, snapshot_bytes: int) -> Floor:
    source, target = scratch / "tree", scratch / "next"
    source.mkdir()
    target.mkdir()
    made = make_tree(source, files, directories, snapshot_bytes)
    link_s = measure_links(source, target, made)
    snapshot_s = measure_snapshot(scratch / "snapshot.xml", snapshot_bytes)
    encode_s = measure_encoding(source, made)
    return Floor(files, snapshot_bytes, link_s, snapshot_s, encode_s)


def shaped_like_a_registry(doc: str | None, files: str, help_files: str) -> argparse.ArgumentParser:
    """The arguments of a benchmark of a repository's shape, the full registry's by default: ``files``
    (its objects), ``--directories``, ``--snapshot-mb`` and ``--scratch``."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(files, type=int, default=REGISTRY_FILES, help=help_files)
    parser.add_argument("--directories", type=int, default=REGISTRY_DIRECTORIES, help="directories (CAs)")
    parser.add_argument("--snapshot-mb", type=float, default=REGISTRY_SNAPSHOT_MB, help="RRDP snapshot (MB)")
    parser.add_argument("--scratch", type=Path, default=None, help="where to write (removed after)")
    return parser


@contextmanager
def scratch_directory(prefix: str, parent: Path | None) -> Iterator[Path]:
    """A new directory below ``parent`` (the system's temporary directory by default), removed after."""
    scratch = Path(tempfile.mkdtemp(prefix=prefix, dir=parent))
    try:
        yield scratch
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def main(argv: list[str] | None = None) -> Floor:
    parser = shaped_like_a_registry(__doc__, "--files", "files in the rsync tree")
    args = parser.parse_args(argv)
    if args.files < 1 or args.directories < 1 or args.snapshot_mb <= 0:
        parser.error("--files, --directories and --snapshot-mb must be positive")
    with scratch_directory("publication-floor-", args.scratch) as scratch:
        floor = measure(scratch, args.files, args.directories, int(args.snapshot_mb * 1e6))
    print(f"files {floor.files:,}, snapshot {floor.snapshot_bytes / 1e6:,.0f} MB, on {scratch.parent}")
    print(f"  link every file into a new tree, then sync   {floor.link_s:7.2f} s")
    print(f"  write, hash and fsync the snapshot           {floor.snapshot_s:7.2f} s")
    print(f"  read and base64-encode every object          {floor.encode_s:7.2f} s")
    print(f"  every apply, whatever changed                {floor.total_s:7.2f} s")
    return floor


if __name__ == "__main__":
    main()
