"""Write the rsync tree so that relying parties see the old tree or the new one, never a mix.

``<directory>/rsync`` is a symbolic link to ``<directory>/trees/<id>/``. A new tree is written and synced
beside the old one, then the link is replaced with one ``rename`` (atomic on POSIX). A few old trees are
kept for transfers still in flight.
"""

from __future__ import annotations

import os
import shutil
import time
from datetime import datetime, timedelta
from pathlib import Path

from reconciler import faults
from reconciler.fsutil import fsync_dir, write_public

KEEP_OLD_TREES = 3
IN_FLIGHT_GRACE = timedelta(minutes=10)
KEPT_ASIDE = "-replaced-directory"


class PublishError(Exception):
    """The publication directory could not be written; the old tree is still served."""


def publish(directory: Path, files: dict[str, bytes], now: datetime) -> Path:
    """Make ``files`` (path relative to the rsync base -> bytes) the served tree; return its directory."""
    trees = directory / "trees"
    link = directory / "rsync"
    stamp = now.strftime("%Y%m%dT%H%M%S")
    try:
        trees.mkdir(parents=True, exist_ok=True)
        target = trees / f"{stamp}-{os.getpid()}-{os.urandom(3).hex()}"
        for rel, data in files.items():
            write_public(target / rel, data)
            faults.point("rsync.file")
        target.mkdir(exist_ok=True)
        for sub in sorted({p.parent for p in target.rglob("*")} | {target}, reverse=True):
            sub.chmod(0o755)  # readable by the daemon whatever the umask
            fsync_dir(sub)
        if link.exists() and not link.is_symlink():
            # A plain directory (made by hand): keep it aside rather than destroying it.
            link.rename(trees / f"{stamp}-{os.getpid()}{KEPT_ASIDE}")
        faults.point("rsync.before-swap")
        tmp_link = directory / f".rsync.{os.getpid()}.tmp"
        tmp_link.unlink(missing_ok=True)
        tmp_link.symlink_to(Path("trees") / target.name)
        tmp_link.replace(link)
        fsync_dir(directory)
        faults.point("rsync.after-swap")
    except OSError as exc:
        if "target" in locals():
            shutil.rmtree(target, ignore_errors=True)  # the unfinished tree: never served, space back
        raise PublishError(
            f"cannot write the publication directory {directory}: {exc.strerror or exc}; "
            "the previous tree is still served unchanged"
        ) from exc
    _prune(trees, keep={target.name})
    return target


def _prune(trees: Path, keep: set[str]) -> None:
    """Remove old trees, but never the one being served, one of the newest few, one younger than
    ``IN_FLIGHT_GRACE`` (an rsync transfer may still be reading it), or a hand-made directory kept aside."""
    now = time.time()
    old = sorted(
        (p for p in trees.iterdir() if p.is_dir() and p.name not in keep and not p.name.endswith(KEPT_ASIDE)),
        key=lambda p: p.stat().st_mtime,
    )
    for path in old[: max(0, len(old) - (KEEP_OLD_TREES - 1))]:
        if now - path.stat().st_mtime > IN_FLIGHT_GRACE.total_seconds():
            shutil.rmtree(path, ignore_errors=True)
