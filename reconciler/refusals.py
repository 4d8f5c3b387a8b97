"""The requests ``rpkictl serve`` refused lately, per declared peer, for the plan to show.

A child or a publisher whose request is refused learns why from the signed answer, but the operator
of this CA and the reviewer of its plans would only see it in the server's log. So each refusal of a
verified message from a declared external child (RFC 6492 ``error_response``) or a declared publisher
(RFC 8181 ``report_error``) is also kept in ``<publication directory>/serve/refused.json``: per peer
(``child:<handle>``, ``publisher:<handle>``) the last :data:`KEPT`, each with its time, its code, the
reason sent (at most :data:`TEXT_LIMIT` characters, control characters replaced) and what was asked.

The record is CA machine state, not a secret, and only ever shown: it is replaced atomically under an
``fcntl`` lock on a sibling file (as the replay record, ``protocol.replay``), so the server's threads
and its two services never lose each other's refusals; a damaged file is read as empty, with a
problem the plan shows, and written afresh by the next refusal. It stays small: a write keeps only
the declared peers' entries, at most :data:`KEPT` each.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import threading
from collections.abc import Collection, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from reconciler.desired.model import DesiredState
from reconciler.fsutil import ReadError, read_bytes, replace_public

#: Where the record is kept, below the publication directory (never served: only ``rsync/``,
#: ``trees/`` and ``rrdp/`` are).
RECORD_FILE = "serve/refused.json"
#: Refusals kept per peer: the latest.
KEPT = 5
#: The longest reason kept, in characters.
TEXT_LIMIT = 300

_FORMAT = 1
#: One lock for every record of this process: threads of both services (each flock below is on its
#: own open file description, so it excludes other processes and the other threads alike).
_THREADS = threading.Lock()


@dataclass(frozen=True, slots=True)
class Refusal:
    """One refused request: when (UTC, to the second), the code sent (an RFC 6492 status, or an RFC
    8181 error code), the reason sent, and what was asked (``issue``, ``list``, ``publish``...)."""

    at: datetime
    code: int | str
    text: str
    request: str


@dataclass(frozen=True, slots=True)
class Kept:
    """The record as read: each peer's refusals, oldest first; ``problem`` when it could not be read."""

    peers: Mapping[str, tuple[Refusal, ...]] = field(default_factory=dict)
    problem: str | None = None

    def of_child(self, handle: str) -> tuple[Refusal, ...]:
        return self.peers.get(child(handle), ())

    def of_publisher(self, handle: str) -> tuple[Refusal, ...]:
        return self.peers.get(publisher(handle), ())


def child(handle: str) -> str:
    """The record's key of an external child."""
    return f"child:{handle}"


def publisher(handle: str) -> str:
    """The record's key of a publisher."""
    return f"publisher:{handle}"


def path(desired: DesiredState) -> Path:
    return desired.publication.directory / RECORD_FILE


def declared_children(desired: DesiredState) -> frozenset[str]:
    return frozenset(child(c.handle) for ca in desired.cas for c in ca.children)


def declared_publishers(desired: DesiredState) -> frozenset[str]:
    return frozenset(publisher(p.handle) for p in desired.publishers)


def clean(text: str, limit: int = TEXT_LIMIT) -> str:
    """``text`` on one line (control characters, newlines among them, become spaces), at most ``limit``
    characters: a reason may quote what the peer sent."""
    flat = "".join(" " if ord(c) < 32 or 127 <= ord(c) < 160 else c for c in text)
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def _when(moment: datetime) -> str:
    return f"{moment.astimezone(UTC):%Y-%m-%dT%H:%M:%SZ}"


class _DamagedError(ValueError):
    """The record is not what this module writes."""


def _refusal(peer: str, item: object) -> Refusal:
    if not isinstance(item, dict):
        raise _DamagedError(f"an entry of {peer!r} is not an object")
    at, code, text, request = (item.get(k) for k in ("at", "code", "text", "request"))
    try:
        moment = datetime.fromisoformat(at) if isinstance(at, str) else None
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        raise _DamagedError(f"an entry of {peer!r} has no UTC time: {at!r}")
    if isinstance(code, bool) or not isinstance(code, int | str):
        raise _DamagedError(f"an entry of {peer!r} has a code that is neither a number nor a text: {code!r}")
    if not isinstance(text, str) or not isinstance(request, str):
        raise _DamagedError(f"an entry of {peer!r} lacks its text or request")
    return Refusal(moment.astimezone(UTC), code, clean(text), clean(request, 40))


def _parse(data: bytes) -> dict[str, tuple[Refusal, ...]]:
    try:
        document = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise _DamagedError(f"not JSON: {exc}") from exc
    if not isinstance(document, dict) or document.get("format") != _FORMAT:
        raise _DamagedError(f"not a format {_FORMAT} object")
    peers = document.get("refused")
    if not isinstance(peers, dict):
        raise _DamagedError("no 'refused' object")
    found = {}
    for peer, items in peers.items():
        if not isinstance(items, list):
            raise _DamagedError(f"the entries of {peer!r} are not a list")
        found[peer] = tuple(_refusal(peer, item) for item in items[-KEPT:])
    return found


def read(where: Path) -> Kept:
    """The record at ``where``: empty when there is none; empty with a ``problem`` when it cannot be
    read or is damaged (it is only ever shown: nothing waits for it)."""
    try:
        data = read_bytes(str(where))
    except ReadError as exc:
        if exc.errno == errno.ENOENT:
            return Kept()
        return Kept(problem=f"the record of refused requests in {where} cannot be read: {exc.strerror}")
    try:
        return Kept(_parse(data))
    except _DamagedError as exc:
        return Kept(problem=f"the record of refused requests in {where} cannot be read: {exc}")


@contextmanager
def _locked(where: Path) -> Iterator[None]:
    """Exclusive across this process's threads and across processes (``flock`` on a sibling file: the
    record itself is replaced, so a lock on it would guard a file nobody reads any more)."""
    with _THREADS:
        where.parent.mkdir(parents=True, exist_ok=True)
        # O_NOFOLLOW: a link planted beside the record must not make us create or lock a file elsewhere.
        flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW | os.O_CLOEXEC
        fd = os.open(where.with_name(where.name + ".lock"), flags, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing the descriptor releases the lock


def add(where: Path, peer: str, refusal: Refusal, declared: Collection[str]) -> None:
    """Keep ``refusal`` of ``peer`` in the record at ``where`` (its latest :data:`KEPT`). ``declared``:
    the peers of ``peer``'s kind (``child:`` or ``publisher:``) declared now; entries of that kind for
    any other are dropped, the other kind's are left to its own service (an undeclared ``peer`` is not
    kept at all). A damaged record is replaced.
    Raises OSError when the record cannot be written; durable on return."""
    if peer not in declared:
        return
    kind = peer.partition(":")[0] + ":"
    at = refusal.at.astimezone(UTC).replace(microsecond=0)
    entry = Refusal(at, refusal.code, clean(refusal.text), clean(refusal.request, 40))
    with _locked(where):
        kept = read(where)
        peers = {
            name: list(items)
            for name, items in kept.peers.items()
            if name.startswith(("child:", "publisher:")) and (not name.startswith(kind) or name in declared)
        }
        peers[peer] = [*peers.get(peer, []), entry][-KEPT:]
        document = {
            "format": _FORMAT,
            "refused": {
                name: [
                    {"at": _when(r.at), "code": r.code, "text": r.text, "request": r.request} for r in items
                ]
                for name, items in sorted(peers.items())
            },
        }
        replace_public(where, (json.dumps(document, indent=2, ensure_ascii=False) + "\n").encode("utf-8"))
