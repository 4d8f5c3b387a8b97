"""Write the rsync tree so that relying parties see the old tree or the new one, never a mix.

``<directory>/rsync`` is a symbolic link to ``<directory>/trees/<id>/``. A new tree is written and synced
beside the old one, then the link is replaced with one ``rename`` (atomic on POSIX). A few old trees are
kept for transfers still in flight; older ones are removed, by a child process while the apply goes on
when the caller gives :class:`Removals`.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
import subprocess
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from reconciler import faults
from reconciler.fsutil import fsync_dir, write_public

KEEP_OLD_TREES = 3
LINK_THREADS = 4  # threads making a new tree's directories and links (see ``_build``)
PARALLEL_FROM = 64  # directories in a tree from which they are made by several threads
SYNC_EACH_UP_TO = 64  # files and directories made: fsynced one by one up to this many, beyond it one sync
IN_FLIGHT_GRACE = timedelta(minutes=10)
KEPT_ASIDE = "-replaced-directory"
REMOVING = ".removing-"  # an old tree renamed for removal: never served, removed by the next prune if left

#: Entered around the swap: raises when the caller no longer holds the publication lock, and keeps it
#: from being broken until the swap is done (see ``reconciler.apply.lock.Lock.fence``).
Fence = Callable[[], AbstractContextManager[None]]


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


@dataclass(frozen=True, slots=True)
class ServedTree:
    """Which tree ``rsync`` served when the publication point was read: its name under ``trees/`` and
    the identity of that directory, so that an apply links "unchanged" files from the very tree it
    planned against, and swaps only if that tree is still the one served."""

    name: str
    device: int
    inode: int


class TreeMovedError(PublishError):
    """Another apply swapped in a tree after this one read the publication point: publishing now would
    throw its change away."""


def served_tree(directory: Path) -> ServedTree | None:
    """The tree ``<directory>/rsync`` serves, when it is what :func:`publish` makes of it: a symbolic
    link ``trees/<name>`` to a real directory (not a link) of ``<directory>/trees``. None for anything
    else (nothing published yet, a hand-made directory, a link elsewhere or to itself): nothing is
    linked from such a tree, and nothing outside the publication directory is followed."""
    try:
        target = str((directory / "rsync").readlink())
    except OSError:
        return None
    parts = target.split("/")
    if len(parts) != 2 or parts[0] != "trees" or parts[1] in ("", ".", "..") or parts[1].startswith("."):
        return None
    try:
        trees = os.lstat(directory / "trees")
        found = os.lstat(directory / target)
    except OSError:
        return None
    if not (stat.S_ISDIR(trees.st_mode) and stat.S_ISDIR(found.st_mode)):
        return None
    return ServedTree(parts[1], found.st_dev, found.st_ino)


def publish(
    directory: Path,
    files: dict[str, bytes],
    now: datetime,
    served: dict[str, bytes] | None = None,
    *,
    removals: Removals | None = None,
    read_from: ServedTree | None = None,
    check_served: bool = False,
    fence: Fence | None = None,
    on_swap: Callable[[Path], None] | None = None,
) -> Path:
    """Make ``files`` (path relative to the rsync base -> bytes) the served tree; return its directory.

    ``served``: the files of the tree ``read_from``, as read back (``read_from`` defaults to the tree
    served when this starts). A file that has not changed is hard-linked from that tree rather than
    written again, so a change to one ROA of a large repository writes one ROA, a manifest and a CRL,
    and the new tree is durable before the link is swapped (see ``_make_durable``). Only regular files
    are linked, never through a symbolic link, and only from ``read_from`` itself: linking by name from
    whatever is served now would mix another apply's files into this tree.

    The swap happens inside ``fence`` (the publication lock's: it raises ``LockLost`` when the lock is no
    longer ours, and keeps anyone from breaking it until the swap is done) and, with ``check_served``,
    only while ``read_from`` is still the tree served (else :class:`TreeMovedError`). ``on_swap`` is told the
    new tree as soon as it is served: an error after that point leaves the new tree published. Old trees
    are removed before this returns, or by ``removals`` while the caller goes on."""
    trees = directory / "trees"
    stamp = now.strftime("%Y%m%dT%H%M%S")
    if read_from is None and not check_served:
        read_from = served_tree(directory)
    source = _source(directory, read_from) if served is not None else None
    unchanged = served if source is not None and served is not None else {}
    swapped = False
    target: Path | None = None
    try:
        _real_directory(trees)
        target = trees / f"{stamp}-{os.getpid()}-{os.urandom(3).hex()}"
        target.mkdir(mode=0o755)
        _build(target, files, source, unchanged)
        faults.point("rsync.before-swap")
        swapped = _swap(directory, target, stamp, read_from, check_served=check_served, fence=fence)
        if on_swap is not None:
            on_swap(target)
        fsync_dir(directory)
        faults.point("rsync.after-swap")
    except OSError as exc:
        if swapped:
            raise PublishError(
                f"the new tree {target} is served, but {directory} could not be synced: "
                f"{exc.strerror or exc}; a power cut may bring the previous tree back (run apply again)"
            ) from exc
        raise PublishError(
            f"cannot write the publication directory {directory}: {exc.strerror or exc}; "
            "the previous tree is still served unchanged"
        ) from exc
    finally:
        if not swapped and target is not None:
            shutil.rmtree(target, ignore_errors=True)  # the unfinished tree: never served, space back
    served_now = trees / Path(str(target)).name  # swapped: the new tree
    if removals is None:
        with Removals() as here:
            _prune(trees, {served_now.name}, here)
    else:
        _prune(trees, {served_now.name}, removals)
    return served_now


def _build(target: Path, files: dict[str, bytes], source: str | None, unchanged: dict[str, bytes]) -> None:
    """Write the new tree, linking the files that did not change from ``source``, and make it durable.

    Directories are made and unchanged files linked by ``LINK_THREADS`` threads when the tree has many
    directories (a repository of a thousand publishers makes a thousand directories and links ten
    thousand files for every publication: the system calls of one thread overlap the others' Python);
    the files written anew are written by this thread, in order."""
    groups: dict[str, list[str]] = {}
    for rel in files:  # paths as text: thousands of pathlib joins cost more than the links
        groups.setdefault(rel.rpartition("/")[0], []).append(rel)
    made = {"": target}
    for parent in groups:
        above = parent
        while above not in made:
            made[above] = target / above
            above = above.rpartition("/")[0]

    def fill(parents: list[str]) -> list[str]:
        """Make these directories and link their unchanged files; the files left to write."""
        left = []
        for parent in parents:
            if parent:
                made[parent].mkdir(mode=0o755, parents=True, exist_ok=True)
            for rel in groups[parent]:
                data = files[rel]
                if unchanged.get(rel) != data or not _link(f"{source}/{rel}", f"{target}/{rel}", len(data)):
                    left.append(rel)
        return left

    parents = sorted(groups)  # a directory before those below it
    if len(parents) >= PARALLEL_FROM:
        shares = [parents[index::LINK_THREADS] for index in range(LINK_THREADS)]
        with ThreadPoolExecutor(LINK_THREADS, thread_name_prefix="rsync-tree") as pool:
            left = [rel for share in pool.map(fill, shares) for rel in share]
    else:
        left = fill(parents)
    written = []
    for rel in left:
        written.append(write_public(Path(f"{target}/{rel}"), files[rel], sync=False))
        faults.point("rsync.file")
    for sub in sorted(made.values(), reverse=True):
        sub.chmod(0o755)  # readable by the daemon whatever the umask
    _make_durable(written, [*made.values(), target.parent])


def _swap(
    directory: Path,
    target: Path,
    stamp: str,
    read_from: ServedTree | None,
    *,
    check_served: bool,
    fence: Fence | None,
) -> bool:
    """Point ``rsync`` at ``target`` in one rename, inside ``fence`` (see :func:`publish`)."""
    link = directory / "rsync"
    tmp_link = directory / f".rsync.{os.getpid()}.tmp"
    tmp_link.unlink(missing_ok=True)
    tmp_link.symlink_to(Path("trees") / target.name)
    with fence() if fence is not None else contextlib.nullcontext():
        if check_served and served_tree(directory) != read_from:
            tmp_link.unlink(missing_ok=True)
            raise TreeMovedError(
                f"another apply published a new tree in {directory} after this one read the "
                "publication point: nothing was published by this apply (plan again)"
            )
        if stat.S_ISDIR(_lstat_mode(link)):
            # A plain directory (made by hand): keep it aside rather than destroying it.
            link.rename(target.parent / f"{stamp}-{os.getpid()}{KEPT_ASIDE}")
        tmp_link.replace(link)  # replaces a link, file or FIFO there itself, never what it points to
    return True


def _source(directory: Path, tree: ServedTree | None) -> str | None:
    """The directory to link unchanged files from: ``tree``, if it is still that very directory."""
    if tree is None:
        return None
    path = directory / "trees" / tree.name
    try:
        found = os.lstat(path)
    except OSError:
        return None
    if not stat.S_ISDIR(found.st_mode) or (found.st_dev, found.st_ino) != (tree.device, tree.inode):
        return None
    return str(path)


def _lstat_mode(path: Path) -> int:
    try:
        return os.lstat(path).st_mode
    except FileNotFoundError:
        return 0


def _real_directory(path: Path) -> None:
    """Make ``path`` a directory of its own: anything else in its place (a symbolic link, which would
    take every write elsewhere, a file) is removed -- the entry itself, never what it points to."""
    mode = _lstat_mode(path)
    if mode and not stat.S_ISDIR(mode):
        path.unlink()
    path.mkdir(mode=0o755, parents=True, exist_ok=True)


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


def _link(source: str, path: str, size: int) -> bool:
    """Hard-link an unchanged file from the tree that was read; False when that cannot be done, or when
    what is there now is not a regular file of the size read (it was replaced since): then the file is
    written from the bytes that were read."""
    try:
        os.link(source, path, follow_symlinks=False)
    except OSError:
        return False
    try:
        found = os.lstat(path)
    except OSError:
        return False
    if stat.S_ISREG(found.st_mode) and found.st_size == size:
        return True
    Path(path).unlink()
    return False


def _prune(trees: Path, keep: set[str], removals: Removals) -> None:
    """Remove old trees, but never the one being served, one of the newest few, one younger than
    ``IN_FLIGHT_GRACE`` (an rsync transfer may still be reading it), or a hand-made directory kept aside.
    Anything in ``trees`` that is not a directory (a link, a FIFO, a file: none is ever made there) is
    removed itself; nothing is followed. Cleanup only: what cannot be removed now waits for the next."""
    now = time.time()
    entries: list[tuple[Path, float]] = []
    try:
        with os.scandir(trees) as found:
            for entry in found:
                if entry.name in keep:
                    continue
                try:
                    if not entry.is_dir(follow_symlinks=False):
                        Path(entry.path).unlink()
                        continue
                    entries.append((Path(entry.path), entry.stat(follow_symlinks=False).st_mtime))
                except OSError:
                    continue
    except OSError:
        return
    doomed = [p for p, _ in entries if p.name.startswith(REMOVING)]  # left by an interrupted run
    old = sorted(
        (
            (p, mtime)
            for p, mtime in entries
            if not p.name.startswith(REMOVING) and not p.name.endswith(KEPT_ASIDE)
        ),
        key=lambda item: item[1],
    )
    for path, mtime in old[: max(0, len(old) - (KEEP_OLD_TREES - 1))]:
        if now - mtime > IN_FLIGHT_GRACE.total_seconds():
            aside = trees / f"{REMOVING}{path.name}"
            try:
                path.rename(aside)
            except OSError:
                aside = path
            doomed.append(aside)
    if doomed:
        removals.start(doomed)
