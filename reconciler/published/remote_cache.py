"""The local cache of repositories read as a relying party reads them (see ``remote``).

One directory per notification URL or rsync URI, named by a hash of it, holds the tree last read
(laid out like a publication's ``rsync/`` directory) and ``state.json``: what the tree is (URI, RRDP
session and serial, the SHA-256 of every file). The cache only ever saves transfers: before it is used,
its tree is hashed again and compared with the state, and one that does not match, or cannot be read,
is dropped and the repository read afresh. An update builds a new tree beside the old one and then
replaces the state in one rename, so a crash leaves the old tree and its state, never half a delta
believed. Nothing outside the cache directory is written, and no symbolic link in it is followed.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import os
import secrets
import shutil
import stat
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reconciler.published.reader import LARGEST_OBJECT


class RemoteError(Exception):
    """The repository could not be read as a relying party would; the message names the URI, what was
    wrong and the fix."""


#: Bounds on a path below the rsync base (a published object is at most two levels deep; anything far
#: beyond that is not a repository but an attempt on the file system).
MAX_PATH_LENGTH = 1024
MAX_DEPTH = 8
MAX_NAME = 255

STATE = "state.json"
_TREE = "tree-"
_FORMAT = 1
_DIRECTORY = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_LOCK_WAIT = 30.0  # seconds another fetch of the same URI may hold its cache


def relative_path(uri: str, rsync_base: str) -> str | None:
    """``uri``'s path below ``rsync_base``; None when it is not below it (a shared repository holds
    others' objects too). Raises :class:`RemoteError` for a path that could leave the tree or that no
    file system takes: ``..``, empty or ``.`` segments, a backslash, NUL or control character, too
    deep or too long."""
    if not uri.startswith(rsync_base):
        return None
    path = uri[len(rsync_base) :]
    parts = path.split("/")
    why = None
    if not path or len(path) > MAX_PATH_LENGTH or len(parts) > MAX_DEPTH:
        why = "is empty, too long or too deep"
    elif any(part in ("", ".", "..") for part in parts):
        why = "has an empty, '.' or '..' segment"
    elif any(ord(c) < 0x20 or c in "\\\x7f" for c in path):
        why = "holds a backslash or a control character"
    elif any(len(part.encode()) > MAX_NAME for part in parts):
        why = f"has a name longer than {MAX_NAME} bytes"
    if why is not None:
        raise RemoteError(
            f"{uri[:200]!r}: the path of this object below {rsync_base} {why}; a relying party refuses "
            "it, and so does this copy: the repository must be repaired by whoever publishes it"
        )
    return path


def sha256_file(fd: int) -> str:
    digest = hashlib.sha256()
    while piece := os.read(fd, 1 << 20):
        digest.update(piece)
    return digest.hexdigest()


@dataclass(frozen=True, slots=True)
class Cached:
    """A tree in the cache that was found to be what its state says."""

    tree: Path
    rsync_base: str
    session_id: str | None
    serial: int | None
    files: dict[str, str]  # path below the rsync base -> SHA-256, lowercase hex


@dataclass(frozen=True, slots=True)
class Entry:
    """The cache directory of one URI, locked by this process while it is in use."""

    directory: Path
    uri: str
    kind: str

    def load(self) -> Cached | None:
        """The cached tree, when its state is readable, is of this URI and kind, and every file of the
        tree is there with the hash the state gives it (and nothing else is); None otherwise."""
        try:
            state = json.loads((self.directory / STATE).read_bytes())
            found = _cached(self.directory, state, self.uri, self.kind)
        except (OSError, ValueError, TypeError, KeyError):
            return None
        if found is None or not _intact(found):
            return None
        return found

    def new_tree(self) -> Path:
        """A fresh, empty directory for the tree being built (mode 0700)."""
        tree = self.directory / f"{_TREE}{secrets.token_hex(8)}"
        tree.mkdir(mode=0o700)
        return tree

    def commit(
        self, tree: Path, rsync_base: str, session_id: str | None, serial: int | None, files: dict[str, str]
    ) -> None:
        """Make ``tree`` the cached tree: the state naming it replaces the old one in one rename (the
        moment the new tree is believed), then the trees it no longer names are removed. The tree's
        files are not synced one by one: after a power cut, a file that lost its bytes fails the
        hashing of :meth:`load`, and the repository is read afresh."""
        state = {
            "format": _FORMAT,
            "uri": self.uri,
            "kind": self.kind,
            "rsync_base": rsync_base,
            "session_id": session_id,
            "serial": serial,
            "tree": tree.name,
            "files": files,
        }
        temporary = self.directory / f".{STATE}.{os.getpid()}.tmp"
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(json.dumps(state, sort_keys=True).encode())
            handle.flush()
            os.fsync(handle.fileno())
        temporary.replace(self.directory / STATE)
        _sync(self.directory)
        self.sweep(keep=tree)

    def sweep(self, keep: Path | None = None) -> None:
        """Remove every tree but ``keep``, and leftovers of an interrupted update. Never follows a
        link: ``rmtree`` removes a link itself, not what it points to."""
        for entry in _entries(self.directory):
            if entry.name in (STATE, "lock") or (keep is not None and entry.name == keep.name):
                continue
            discard(entry)


def discard(path: Path) -> None:
    """Remove ``path`` (a tree being built, a temporary file), whatever it is; a link itself only."""
    with contextlib.suppress(OSError):
        if stat.S_ISDIR(path.lstat().st_mode):
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink()


def _entries(directory: Path) -> list[Path]:
    try:
        return [Path(entry.path) for entry in os.scandir(directory)]
    except OSError:
        return []


def _cached(directory: Path, state: Any, uri: str, kind: str) -> Cached | None:
    if not isinstance(state, dict) or state.get("format") != _FORMAT:
        return None
    if state.get("uri") != uri or state.get("kind") != kind:
        return None
    tree, base, files = state["tree"], state["rsync_base"], state["files"]
    session, serial = state.get("session_id"), state.get("serial")
    if not (isinstance(tree, str) and tree.startswith(_TREE) and "/" not in tree and isinstance(base, str)):
        return None
    if not isinstance(files, dict) or not all(
        isinstance(p, str) and isinstance(h, str) and len(h) == 64 for p, h in files.items()
    ):
        return None
    if not (session is None or isinstance(session, str)) or not (serial is None or type(serial) is int):
        return None
    return Cached(directory / tree, base, session, serial, files)


def _intact(cached: Cached) -> bool:
    """Whether the tree holds exactly the files of the state, each with its hash, and nothing else (no
    link, no other kind of file), read without following any link."""
    try:
        if not stat.S_ISDIR(cached.tree.lstat().st_mode):
            return False
        found = 0
        for base, directories, names in os.walk(cached.tree, followlinks=False):
            for name in directories:
                if not stat.S_ISDIR(Path(base, name).lstat().st_mode):
                    return False
            for name in names:
                path = Path(base, name)
                relative = path.relative_to(cached.tree).as_posix()
                expected = cached.files.get(relative)
                if expected is None:
                    return False
                fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
                try:
                    if not stat.S_ISREG(os.fstat(fd).st_mode) or sha256_file(fd) != expected:
                        return False
                finally:
                    os.close(fd)
                found += 1
        return found == len(cached.files)
    except OSError:
        return False


def write_object(tree: Path, path: str, data: bytes) -> None:
    """Write a new file at ``path`` (already checked by :func:`relative_path`) below ``tree``, which
    this process made: its directories are made too, and nothing there is followed or overwritten.
    Raises OSError when ``path`` cannot be made (a file where a directory is needed, or the reverse)."""
    if len(data) > LARGEST_OBJECT:
        raise OSError(errno.EFBIG, f"{len(data)} bytes, larger than any RPKI object")
    *parents, name = path.split("/")
    directory = os.open(tree, _DIRECTORY)
    try:
        for part in parents:
            with contextlib.suppress(FileExistsError):
                os.mkdir(part, 0o700, dir_fd=directory)
            below = os.open(part, _DIRECTORY, dir_fd=directory)
            os.close(directory)
            directory = below
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
        fd = os.open(name, flags, 0o600, dir_fd=directory)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
    finally:
        os.close(directory)


def remove_object(tree: Path, path: str) -> None:
    """Remove the file at ``path`` below ``tree``, and the directories that leaves empty (the reader
    reports an empty directory as damage)."""
    target = tree.joinpath(*path.split("/"))
    target.unlink()
    parent = target.parent
    while parent != tree:
        try:
            parent.rmdir()
        except OSError:
            break
        parent = parent.parent


def copy_tree(cached: Cached, tree: Path) -> None:
    """Make ``tree`` (new, empty) hold the files of ``cached``: hard links, for an object is never
    changed in place (a replacement is a new file), with a copy where a link cannot be made."""
    for path in cached.files:
        source = cached.tree.joinpath(*path.split("/"))
        target = tree.joinpath(*path.split("/"))
        target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        try:
            os.link(source, target, follow_symlinks=False)
        except OSError:
            shutil.copyfile(source, target, follow_symlinks=False)


def _sync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def entry(cache_dir: Path, uri: str, kind: str) -> Iterator[Entry]:
    """The cache directory of ``uri`` (made, mode 0700), locked for this process while in use: two
    plans reading the same repository take turns, never build the same tree at once."""
    name = hashlib.sha256(uri.encode()).hexdigest()[:32]
    try:
        cache_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        directory = cache_dir / name
        _real_directory(directory)
        lock = os.open(directory / "lock", os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    except OSError as exc:
        raise RemoteError(
            f"cannot use the cache {cache_dir} for {uri}: {exc.strerror or exc}; make it a writable "
            "directory, or give another one"
        ) from exc
    try:
        _wait_for(lock, cache_dir, uri)
        yield Entry(directory, uri, kind)
    finally:
        os.close(lock)


def _real_directory(path: Path) -> None:
    """Make ``path`` a directory of this user's, mode 0700: anything else there (a link, a file) is
    removed itself, never followed."""
    try:
        found = path.lstat()
    except FileNotFoundError:
        path.mkdir(mode=0o700)
        return
    if not stat.S_ISDIR(found.st_mode):
        path.unlink()
        path.mkdir(mode=0o700)
        return
    if found.st_uid != os.getuid():
        raise OSError(errno.EPERM, f"{path} belongs to another user", str(path))
    if stat.S_IMODE(found.st_mode) != 0o700:
        path.chmod(0o700)


def _wait_for(lock: int, cache_dir: Path, uri: str) -> None:
    deadline = time.monotonic() + _LOCK_WAIT
    while True:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if time.monotonic() > deadline:
                raise RemoteError(
                    f"the cache of {uri} in {cache_dir} is in use by another process for more than "
                    f"{_LOCK_WAIT:.0f}s; wait for it to finish, or give another cache directory"
                ) from None
            time.sleep(0.1)
