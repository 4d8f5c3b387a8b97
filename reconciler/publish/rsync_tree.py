"""Write the rsync tree so that relying parties see the old tree or the new one, never a mix.

``<directory>/rsync`` is a symbolic link to ``<directory>/trees/<id>/``. A new tree is written and synced
beside the old one, then the link is replaced with one ``rename`` (atomic on POSIX). A few old trees are
kept for transfers still in flight; older ones are removed, by a child process while the apply goes on
when the caller gives :class:`Removals`.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterable
from datetime import datetime, timedelta
from pathlib import Path

from reconciler import faults
from reconciler.fsutil import fsync_dir, write_public

KEEP_OLD_TREES = 3
SYNC_EACH_UP_TO = 64  # files and directories made: fsynced one by one up to this many, beyond it one sync
IN_FLIGHT_GRACE = timedelta(minutes=10)
KEPT_ASIDE = "-replaced-directory"
REMOVING = ".removing-"  # an old tree renamed for removal: never served, removed by the next prune if left


class PublishError(Exception):
    """The publication directory could not be written; the old tree is still served."""


class Removals:
    """Old trees being removed by a child process (``rm -rf``) while the caller goes on; :meth:`wait`, or
    leaving the ``with`` block, waits for it. Unlinking the 210,000 files of a registry's tree takes the
    kernel 4 to 7 seconds, which the other core spends while this one writes RRDP and the memo. Each
    tree is first renamed out of the way (``.removing-<id>``), so that nothing links from it or serves it;
    one left behind by an interrupted run is removed by the next prune."""

    def __init__(self) -> None:
        self._processes: list[subprocess.Popen[bytes]] = []

    def start(self, paths: list[Path]) -> None:
        try:
            process = subprocess.Popen(
                ["rm", "-rf", "--", *map(str, paths)],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        except OSError:  # no rm: remove them here and now
            for path in paths:
                shutil.rmtree(path, ignore_errors=True)
            return
        self._processes.append(process)

    def wait(self) -> None:
        """Wait for the removals started; one that failed is left for the next prune (see ``REMOVING``)."""
        while self._processes:
            self._processes.pop().wait()

    def __enter__(self) -> Removals:
        return self

    def __exit__(self, *_: object) -> None:
        self.wait()


def publish(
    directory: Path,
    files: dict[str, bytes],
    now: datetime,
    served: dict[str, bytes] | None = None,
    *,
    removals: Removals | None = None,
) -> Path:
    """Make ``files`` (path relative to the rsync base -> bytes) the served tree; return its directory.

    ``served``: the files of the tree served now, as read back. A file that has not changed is linked
    from that tree rather than written again, so a change to one ROA of a large repository writes one
    ROA, a manifest and a CRL, and the new tree is durable before the link is swapped (see
    ``_make_durable``). Old trees are removed before this returns, or by ``removals`` while the caller
    goes on."""
    trees = directory / "trees"
    link = directory / "rsync"
    stamp = now.strftime("%Y%m%dT%H%M%S")
    current = link.resolve() if link.is_symlink() else None
    unchanged = served if current is not None and served is not None else {}
    try:
        trees.mkdir(parents=True, exist_ok=True)
        target = trees / f"{stamp}-{os.getpid()}-{os.urandom(3).hex()}"
        target.mkdir(mode=0o755)
        made = {"": target}
        written = []
        for rel, data in files.items():  # paths as text: thousands of pathlib joins cost more than the links
            parent = rel.rpartition("/")[0]
            if parent not in made:
                made[parent] = target / parent
                made[parent].mkdir(mode=0o755, parents=True, exist_ok=True)
            path = f"{target}/{rel}"
            if unchanged.get(rel) != data or not _link(f"{current}/{rel}", path):
                written.append(write_public(Path(path), data, sync=False))
                faults.point("rsync.file")
        for sub in sorted(made.values(), reverse=True):
            sub.chmod(0o755)  # readable by the daemon whatever the umask
        _make_durable(written, [*made.values(), trees])
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
    if removals is None:
        with Removals() as here:
            _prune(trees, {target.name}, here)
    else:
        _prune(trees, {target.name}, removals)
    return target


def _make_durable(written: list[Path], directories: Iterable[Path]) -> None:
    """Sync the new tree before it is served. Linked files are durable already; the few files a change
    writes are synced one by one with the new directories. A tree mostly written anew (a first
    publication), or one of thousands of directories (a registry has one per CA, and every tree makes them
    all anew), is synced with one ``sync``: 20,000 directory fsyncs took three seconds."""
    made = [*written, *directories]
    if len(made) > SYNC_EACH_UP_TO:
        os.sync()
        return
    for path in made:
        fsync_dir(path)  # one fsync per file written and per new directory


def _link(source: str, path: str) -> bool:
    """Hard-link an unchanged file from the tree served now; False when that cannot be done."""
    try:
        os.link(source, path)
    except OSError:
        return False
    return True


def _prune(trees: Path, keep: set[str], removals: Removals) -> None:
    """Remove old trees, but never the one being served, one of the newest few, one younger than
    ``IN_FLIGHT_GRACE`` (an rsync transfer may still be reading it), or a hand-made directory kept aside."""
    now = time.time()
    entries = [p for p in trees.iterdir() if p.is_dir() and p.name not in keep]
    doomed = [p for p in entries if p.name.startswith(REMOVING)]  # left by an interrupted run
    old = sorted(
        (p for p in entries if not p.name.startswith(REMOVING) and not p.name.endswith(KEPT_ASIDE)),
        key=lambda p: p.stat().st_mtime,
    )
    for path in old[: max(0, len(old) - (KEEP_OLD_TREES - 1))]:
        if now - path.stat().st_mtime > IN_FLIGHT_GRACE.total_seconds():
            aside = trees / f"{REMOVING}{path.name}"
            try:
                path.rename(aside)
            except OSError:
                aside = path
            doomed.append(aside)
    if doomed:
        removals.start(doomed)
