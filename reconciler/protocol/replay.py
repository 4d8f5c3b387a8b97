"""Replay protection for signed protocol messages: the last signing time accepted from each peer.

A CMS message stays valid for as long as its EE certificate (APNIC's for three years), so a message
captured on the wire could be sent again: an old ``list_response`` would make a child believe it lost
resources, an old publication query would re-publish withdrawn objects. As rpki.net and RIPE NCC do, a
message is accepted only when it was signed *after* the last one accepted from the same peer; an equal
time is refused too, since CMS signing times have whole seconds and two messages in one second cannot be
told apart from a replay.

The times are kept in one small JSON file so that they survive a restart (a restart must not reopen the
window), replaced atomically (a crash leaves the old file or the new one) and updated under an ``fcntl``
lock on a sibling file, so that the server's threads and a concurrent ``rpkictl`` run never lose each
other's updates. A damaged file is an error naming it, never silently reset: resetting would re-accept
every message ever captured.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from reconciler.fsutil import ReadError, read_bytes, replace_public
from reconciler.protocol.errors import ProtocolError, ReplayError

_FORMAT = 1


def _when(moment: datetime) -> str:
    return f"{moment.astimezone(UTC):%Y-%m-%dT%H:%M:%SZ}"


def _aware(moment: datetime) -> datetime:
    """In UTC to the second, the precision of a CMS signing time and of the file."""
    if moment.tzinfo is None:
        raise ValueError("a signing time must be a timezone-aware datetime")
    return moment.astimezone(UTC).replace(microsecond=0)


class ReplayGuard:
    """The last accepted signing time per peer, in the JSON file ``path`` (created when first needed).

    ``peer`` is any stable text naming the peer and the direction, e.g. ``"child:acme"`` or
    ``"publisher:acme"``; the same text must be used for ``check`` and ``accept``."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock_path = path.with_name(path.name + ".lock")
        self._thread_lock = threading.Lock()

    def __repr__(self) -> str:
        return f"ReplayGuard({str(self.path)!r})"

    def _damaged(self, what: str) -> ProtocolError:
        return ProtocolError(
            f"{self.path}: the replay-protection file is damaged ({what}); restore it from a backup. "
            "Removing it makes every peer's next message acceptable whatever its age, which lets a "
            "captured old message through once: do that only if no old message can be replayed"
        )

    def _read(self) -> dict[str, datetime]:
        try:
            data = read_bytes(str(self.path))
        except ReadError as exc:
            if exc.errno == errno.ENOENT:
                return {}
            raise ProtocolError(
                f"cannot read the replay-protection file {self.path}: {exc.strerror}"
            ) from exc
        try:
            document = json.loads(data)
        except (ValueError, UnicodeDecodeError) as exc:
            raise self._damaged(f"not JSON: {exc}") from exc
        if not isinstance(document, dict) or document.get("format") != _FORMAT:
            raise self._damaged(f"not a format {_FORMAT} object")
        peers = document.get("last_signing_time")
        if not isinstance(peers, dict):
            raise self._damaged("no 'last_signing_time' object")
        times: dict[str, datetime] = {}
        for peer, text in peers.items():
            try:
                moment = datetime.fromisoformat(text) if isinstance(text, str) else None
            except ValueError:
                moment = None
            if moment is None or moment.tzinfo is None:
                raise self._damaged(f"the time of peer {peer!r} is not a UTC time: {text!r}")
            times[peer] = moment.astimezone(UTC)
        return times

    def _write(self, times: dict[str, datetime]) -> None:
        document = {
            "format": _FORMAT,
            "last_signing_time": {peer: _when(moment) for peer, moment in sorted(times.items())},
        }
        replace_public(self.path, (json.dumps(document, indent=2) + "\n").encode("utf-8"))

    @contextmanager
    def _locked(self) -> Iterator[None]:
        """Exclusive across this process's threads and across processes (``flock`` on a sibling file:
        the data file itself is replaced, so a lock on it would guard a file nobody reads any more)."""
        with self._thread_lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # O_NOFOLLOW: a link planted beside the record must not make us create or lock a file
            # elsewhere.
            flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW | os.O_CLOEXEC
            fd = os.open(self._lock_path, flags, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                yield
            finally:
                os.close(fd)  # closing the descriptor releases the lock

    def last(self, peer: str) -> datetime | None:
        """The signing time of the last message accepted from ``peer``, or None."""
        return self._read().get(peer)

    def check(self, peer: str, signing_time: datetime) -> None:
        """Raise :class:`ReplayError` when ``signing_time`` is not after the last time accepted from
        ``peer``. Only reads; ``accept`` checks again under the lock, so a message checked here and
        then accepted by another process first is still refused once."""
        self._refuse_if_stale(self._read(), peer, _aware(signing_time))

    @staticmethod
    def _refuse_if_stale(times: dict[str, datetime], peer: str, signing_time: datetime) -> None:
        last = times.get(peer)
        if last is not None and signing_time <= last:
            raise ReplayError(
                f"message signed at {_when(signing_time)}, not after the last one accepted from {peer} at "
                f"{_when(last)}: a replayed or reordered message (or a peer whose clock went back)"
            )

    def accept_all(self, messages: list[tuple[str, datetime]]) -> list[ReplayError | None]:
        """:meth:`accept` each (peer, signing time) in this order, with one write: for each, None when
        accepted, or why not (a message signed no later than one accepted before it, in this list too).
        Durable on return."""
        found: list[ReplayError | None] = []
        with self._locked():
            times = self._read()
            for peer, signing_time in messages:
                moment = _aware(signing_time)
                try:
                    self._refuse_if_stale(times, peer, moment)
                except ReplayError as exc:
                    found.append(exc)
                    continue
                times[peer] = moment
                found.append(None)
            if any(problem is None for problem in found):
                self._write(times)
        return found

    def accept(self, peer: str, signing_time: datetime) -> None:
        """Record ``signing_time`` as the last accepted from ``peer``; refuse it (:class:`ReplayError`)
        if a message signed at the same time or later was accepted meanwhile. Durable on return."""
        moment = _aware(signing_time)
        with self._locked():
            times = self._read()
            self._refuse_if_stale(times, peer, moment)
            times[peer] = moment
            self._write(times)
