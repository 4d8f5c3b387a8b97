"""A publication point read from where relying parties read it: the public RRDP notification URL or the
rsync URI of the repository, never the CA machine's disk.

So a plan can be made on a machine with no access to the CA machine and no secret (a hosted CI runner
reviewing a pull request): :func:`fetch` brings a local copy up to date, verified the way a relying
party verifies it (see ``remote_rrdp`` and ``remote_rsync``), and returns a directory laid out like a
publication's ``rsync/`` directory, for ``reader.read``, with what was read (RRDP session and serial),
for the plan to record. The copy is kept in a cache (see ``remote_cache``), so the next plan takes only
the deltas.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from reconciler.published import remote_cache, remote_rrdp, remote_rsync
from reconciler.published.remote_cache import RemoteError

__all__ = ["RemoteCopy", "RemoteError", "RemoteSource", "default_cache_dir", "fetch"]


@dataclass(frozen=True, slots=True)
class RemoteSource:
    """What was read: the notification URL or rsync URI, and for RRDP the session and serial."""

    uri: str
    kind: str  # "rrdp" or "rsync"
    session_id: str | None
    serial: int | None


@dataclass(frozen=True, slots=True)
class RemoteCopy:
    """A local directory laid out like ``<publication.directory>/rsync/`` (paths relative to the rsync
    base), for ``reader.read``. It is the cache's: good until the next :func:`fetch` of the same URI."""

    rsync_dir: Path
    source: RemoteSource


def default_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/rpki-reconciler/remote``, or ``~/.cache/rpki-reconciler/remote``."""
    base = os.environ.get("XDG_CACHE_HOME", "")
    root = Path(base) if base and Path(base).is_absolute() else Path.home() / ".cache"
    return root / "rpki-reconciler" / "remote"


def fetch(uri: str, rsync_base: str, cache_dir: Path | None = None, *, timeout: float = 60.0) -> RemoteCopy:
    """Read the repository at ``uri`` -- an ``https://`` RRDP notification URL, or an ``rsync://`` URI
    (the rsync base or a directory below it) -- into the cache, keeping the objects below
    ``rsync_base`` (the ``rsync_base`` of ``rpki.yaml``; a shared repository's other objects are left
    out). ``timeout``: seconds any one network step may take. Raises :class:`RemoteError`, whose
    message names the URI, what was wrong and what to do; the previous copy is then left as it was."""
    if not rsync_base.startswith("rsync://") or not rsync_base.endswith("/"):
        raise RemoteError(f"{rsync_base!r} is not an rsync base: it starts with rsync:// and ends with '/'")
    if uri.startswith("https://"):
        kind = "rrdp"
    elif uri.startswith("rsync://"):
        kind = "rsync"
    elif uri.startswith("http://"):
        raise RemoteError(
            f"{uri}: plain http is refused, relying parties read RRDP over https only; give the https:// "
            "notification URL (the rpkiNotify of the CA certificate)"
        )
    else:
        raise RemoteError(
            f"{uri[:200]!r}: give the repository's https:// RRDP notification URL or its rsync:// URI"
        )
    cache = cache_dir if cache_dir is not None else default_cache_dir()
    try:
        with remote_cache.entry(cache, uri, kind) as entry:
            if kind == "rrdp":
                tree, session_id, serial = remote_rrdp.fetch(uri, rsync_base, entry, timeout)
                return RemoteCopy(tree, RemoteSource(uri, kind, session_id, serial))
            tree = remote_rsync.fetch(uri, rsync_base, entry, timeout)
            return RemoteCopy(tree, RemoteSource(uri, kind, None, None))
    except OSError as exc:
        raise RemoteError(
            f"cannot keep the copy of {uri} in {cache}: {exc.strerror or exc}; check that the disk is "
            "not full and the cache directory is writable (or give another one)"
        ) from exc
