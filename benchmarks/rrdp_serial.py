"""What one RRDP serial costs apply for a one-object change: the snapshot spliced from the previous one
(``reconciler/publish/snapshot_splice.py``) against the snapshot encoded afresh, both through
``rrdp.publish_rrdp`` as apply calls it (the check of the current serial, the snapshot and delta written,
hashed and fsynced, the notification renamed):

    python -m benchmarks.rrdp_serial                      # the full registry: 210,006 objects, 474 MB
    python -m benchmarks.rrdp_serial --objects 6000 --snapshot-mb 8     # a large operator

Each repetition changes one object and publishes a serial twice over, once spliced and once encoded,
alternating which goes first; the medians are printed with their fastest and slowest. The objects are
random bytes of the registry's mean size, held in memory as apply holds the tree it read back, with
their hashes (the plan's read-back hashed them).
"""

from __future__ import annotations

import os
import statistics
import time
from dataclasses import dataclass
from pathlib import Path

from benchmarks.publication_floor import scratch_directory, shaped_like_a_registry
from reconciler.publish import rrdp
from reconciler.published.reader import PublishedState

RSYNC_BASE = "rsync://rpki.example.net/repo/"
RRDP_BASE = "https://rpki.example.net/rrdp/"
_SETTLE_S = 2.1


@dataclass(frozen=True)
class Serials:
    """Seconds of each serial published, by how its snapshot was made."""

    objects: int
    snapshot_bytes: int
    spliced_s: list[float]
    encoded_s: list[float]


def make_files(objects: int, directories: int, snapshot_bytes: int) -> dict[str, bytes]:
    """``objects`` random objects spread over ``directories`` directories, whose base64 adds up to about
    ``snapshot_bytes``."""
    size = max(1, snapshot_bytes * 3 // 4 // max(1, objects))
    return {f"ca{i % directories}/object{i}.roa": os.urandom(size) for i in range(objects)}


def publish(directory: Path, old: dict[str, bytes], new: dict[str, bytes], *, splice: bool) -> float:
    """One serial from ``old`` to ``new``, as apply publishes it (``engine.publish_all``): the tree read
    back knows its files' hashes. ``splice=False`` encodes the snapshot afresh (an empty
    :data:`rrdp.Encoded` is the encoder's own path). The previous serial is left to settle first, as
    it has between two applies: files younger than two seconds are hashed again (see ``rrdp._hashed``),
    and apply's plan has checked the snapshot served before it publishes."""
    time.sleep(max(0.0, _SETTLE_S - (time.time() - (directory / rrdp.NOTIFICATION).stat().st_mtime)))
    found = PublishedState(files=old)
    found.tree_digest()
    start = time.perf_counter()
    written = rrdp.publish_rrdp(
        directory,
        RRDP_BASE,
        RSYNC_BASE,
        old,
        new,
        digest_of=found.digest_of,
        old_tree=found.served_digest(),
        encoded=None if splice else {},
    )
    seconds = time.perf_counter() - start
    if written is None or written.new_session or written.spliced != splice:
        raise RuntimeError(f"the serial was not published as asked (splice={splice}): {written}")
    return seconds


def measure(scratch: Path, objects: int, directories: int, snapshot_bytes: int, repeat: int) -> Serials:
    files = make_files(objects, directories, snapshot_bytes)
    directory = scratch / "rrdp"
    rrdp.publish_rrdp(directory, RRDP_BASE, RSYNC_BASE, {}, files)
    names = sorted(files)
    spliced: list[float] = []
    encoded: list[float] = []
    for index in range(repeat):
        for splice in (index % 2 == 0, index % 2 != 0):
            changed = {**files, names[(index * 7919 + splice) % len(names)]: os.urandom(1800)}
            (spliced if splice else encoded).append(publish(directory, files, changed, splice=splice))
            files = changed
    return Serials(objects, snapshot_bytes, spliced, encoded)


def _figure(seconds: list[float]) -> str:
    return f"{statistics.median(seconds):6.2f} s ({min(seconds):.2f}-{max(seconds):.2f})"


def main(argv: list[str] | None = None) -> Serials:
    parser = shaped_like_a_registry(__doc__, "--objects", "objects in the repository")
    parser.add_argument("--repeat", type=int, default=5, help="serials of each kind")
    args = parser.parse_args(argv)
    if min(args.objects, args.directories, args.repeat) < 1 or args.snapshot_mb <= 0:
        parser.error("--objects, --directories, --repeat and --snapshot-mb must be positive")
    with scratch_directory("rrdp-serial-", args.scratch) as scratch:
        found = measure(scratch, args.objects, args.directories, int(args.snapshot_mb * 1e6), args.repeat)
    print(f"objects {found.objects:,}, snapshot {found.snapshot_bytes / 1e6:,.0f} MB, on {scratch.parent}")
    print(f"  one serial, snapshot spliced     {_figure(found.spliced_s)}")
    print(f"  one serial, snapshot encoded     {_figure(found.encoded_s)}")
    return found


if __name__ == "__main__":
    main()
