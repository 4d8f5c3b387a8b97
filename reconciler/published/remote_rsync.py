"""Read a repository over rsync as a relying party does, into the local cache.

The system's ``rsync`` copies the publication point into a new tree (unchanged files are hard links to
the cached tree, so only what changed travels), taking regular files only -- no link, device or special
file -- of at most the size of the largest RPKI object, with time limits on connecting and on silence.
rsync has no hashes to check against: what the copy is worth is checked by the plan, which verifies the
manifests and signatures of what it reads, as relying parties do.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
import subprocess
from pathlib import Path

from reconciler.published.reader import LARGEST_OBJECT
from reconciler.published.remote_cache import Entry, RemoteError, discard, relative_path

#: A whole transfer must end within this many times ``timeout``.
WHOLE_TRANSFER = 30
MAX_OBJECTS = 2_000_000


def fetch(uri: str, rsync_base: str, entry: Entry, timeout: float) -> Path:
    """Bring the cache of ``uri`` (the rsync base or a directory below it) up to date; return its tree."""
    if not uri.endswith("/") or any(ord(c) <= 0x20 for c in uri):
        raise RemoteError(f"{uri!r}: give the rsync URI of a directory, ending with '/' (the rsync base)")
    if not uri.startswith(rsync_base):
        raise RemoteError(f"{uri}: not below the repository's rsync base {rsync_base}; give {rsync_base}")
    below = uri[len(rsync_base) :]
    if below:
        relative_path(uri.rstrip("/"), rsync_base)  # a safe directory, or a RemoteError
    program = shutil.which("rsync")
    if program is None:
        raise RemoteError(
            f"cannot read {uri}: no rsync program on PATH; install rsync (apt-get install rsync), or "
            "give the repository's https:// RRDP notification URL instead"
        )
    cached = entry.load()
    if cached is not None and cached.rsync_base != rsync_base:
        cached = None
    entry.sweep(keep=cached.tree if cached is not None else None)
    tree = entry.new_tree()
    try:
        target = tree.joinpath(*below.rstrip("/").split("/")) if below else tree
        target.mkdir(mode=0o700, parents=True, exist_ok=True)
        seconds = max(1, round(timeout))
        command = [
            program,
            "-rt",
            # by content, not size and time: a manifest re-signed in the same second as the copy kept
            # here has the same size and mtime, and would otherwise be linked from that stale copy
            "--checksum",
            "--delete",
            *_guarded(seconds),
            "--chmod=Du=rwx,go=,Fu=rw,go=",
        ]
        if cached is not None:
            source = cached.tree.joinpath(*below.rstrip("/").split("/")) if below else cached.tree
            command.append(f"--link-dest={source}")
        _run([*command, uri, f"{target}/"], uri, timeout * WHOLE_TRANSFER)
        files = _files(tree, uri)
    except BaseException:
        discard(tree)
        raise
    entry.commit(tree, rsync_base, None, None, files)
    return tree


def fetch_object(uri: str, destination: Path, timeout: float) -> bytes:
    """One object, as a relying party fetches an issuer's certificate: a regular file of at most the
    size of the largest RPKI object, copied to ``destination`` (a new file name in a private directory)
    and returned."""
    if uri.endswith("/") or any(ord(c) <= 0x20 for c in uri) or not uri.startswith("rsync://"):
        raise RemoteError(f"{uri!r}: not the rsync URI of one object")
    program = shutil.which("rsync")
    if program is None:
        raise RemoteError(
            f"cannot read {uri}: no rsync program on PATH; install rsync (apt-get install rsync)"
        )
    seconds = max(1, round(timeout))
    command = [
        program,
        "-t",
        *_guarded(seconds),
        "--chmod=Fu=rw,go=",
    ]
    _run([*command, uri, str(destination)], uri, timeout * WHOLE_TRANSFER)
    found = destination.lstat() if destination.exists() else None
    if found is None or not stat.S_ISREG(found.st_mode):
        raise RemoteError(f"cannot read {uri}: the repository has no such object")
    return destination.read_bytes()


def _guarded(seconds: int) -> list[str]:
    """What every fetch takes of a repository run by someone else: regular files of at most the largest
    RPKI object's size -- no link, device or special file -- with time limits on connecting and on
    silence."""
    return [
        "--no-motd",
        f"--timeout={seconds}",
        f"--contimeout={seconds}",
        "--no-links",
        "--no-specials",
        "--no-devices",
        f"--max-size={LARGEST_OBJECT}",
    ]


def _run(command: list[str], uri: str, limit: float) -> None:
    try:
        done = subprocess.run(
            command, capture_output=True, text=True, errors="replace", timeout=limit, check=False
        )
    except subprocess.TimeoutExpired as exc:
        raise RemoteError(
            f"cannot read {uri}: rsync did not finish within {limit:.0f}s; try again later, or give a "
            "larger timeout"
        ) from exc
    except OSError as exc:
        raise RemoteError(f"cannot read {uri}: rsync cannot be run ({exc.strerror or exc})") from exc
    if done.returncode != 0:
        raise RemoteError(
            f"cannot read {uri}: rsync failed ({_said(done)}); check the URI, the network and that the "
            "repository's rsync server is up"
        )


def _said(done: subprocess.CompletedProcess[str]) -> str:
    """rsync's last line, after its first complaint when that is another line (the last line alone is
    often only "error starting client-server protocol")."""
    lines = [line.strip() for line in (done.stderr + "\n" + done.stdout).splitlines() if line.strip()]
    if not lines:
        return f"exit status {done.returncode}"
    first = next((line for line in lines if line.startswith(("@ERROR", "rsync:"))), lines[-1])
    return lines[-1] if first == lines[-1] else f"{first} / {lines[-1]}"


def _files(tree: Path, uri: str) -> dict[str, str]:
    """The SHA-256 of every file of the new tree; anything but directories and regular files is
    removed (rsync was told not to make them)."""
    files: dict[str, str] = {}
    for base, directories, names in os.walk(tree, followlinks=False):
        for name in [*directories, *names]:
            path = Path(base, name)
            mode = path.lstat().st_mode
            if stat.S_ISDIR(mode):
                continue
            if not stat.S_ISREG(mode):
                path.unlink()
                continue
            if len(files) >= MAX_OBJECTS:
                raise RemoteError(f"{uri}: more than {MAX_OBJECTS} files; not a repository this copy keeps")
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
            with os.fdopen(fd, "rb") as handle:
                files[path.relative_to(tree).as_posix()] = hashlib.file_digest(handle, "sha256").hexdigest()
    return files
