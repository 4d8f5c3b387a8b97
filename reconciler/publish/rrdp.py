"""RRDP (RFC 8182): the notification file, a snapshot per serial and a delta per published change.

The state of the RRDP server -- session id, serial, the deltas on offer -- is read back from the
notification file it published, like everything else. A serial is only ever added on top of a snapshot
that matches the rsync tree it was made from, which is checked by rebuilding that snapshot from the tree
and comparing its SHA-256 with the one the notification lists (the snapshot is written deterministically
for exactly this). When they differ -- the publication point was lost and rebuilt, or an interrupted
apply left RRDP behind, or someone edited the files -- a new session starts, and relying parties take the
new snapshot.

Rebuilding a snapshot means encoding the whole repository, on every plan. So each publication also
records, in the publication directory's cache (not served), the snapshot's hash with a digest of the
tree it was made from: a tree whose digest is the recorded one rebuilds to the recorded snapshot, and the
rebuild is skipped. A missing, damaged or stale record only means the snapshot is rebuilt.

Snapshot and delta files go into a fresh, unguessable directory per serial and are fsynced before the
notification file is replaced in one rename, so a relying party never reads a notification that
points at something missing. Files a notification no longer lists are removed after a grace period.
"""

from __future__ import annotations

import base64
import hashlib
import os
import shutil
import time
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any
from xml.etree.ElementTree import Element, ParseError

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring

from reconciler import cachefile, faults
from reconciler.fsutil import fsync_dir, write_public
from reconciler.published.reader import DigestOf, hash_bytes, tree_digest

NS = "http://www.ripe.net/rpki/rrdp"
NOTIFICATION = "notification.xml"
MAX_DELTAS = 100
MAX_DELTA_AGE = timedelta(hours=48)
GRACE = timedelta(minutes=10)  # relying parties may still be fetching what the last notification listed
RECORD = "rrdp-snapshot.json"  # in the publication directory's cache, beside the RRDP directory


class RrdpError(Exception):
    """The RRDP files could not be written; the previous notification is still served."""


@dataclass(frozen=True, slots=True)
class DeltaRef:
    serial: int
    uri: str
    hash: str  # SHA-256, lowercase hex


@dataclass(frozen=True, slots=True)
class Notification:
    session_id: str
    serial: int
    snapshot_uri: str
    snapshot_hash: str
    deltas: tuple[DeltaRef, ...] = ()


@dataclass(frozen=True, slots=True)
class Written:
    """What one publication did to RRDP."""

    notification: Notification
    new_session: bool
    why: str = ""  # why a new session started
    files: list[Path] = field(default_factory=list)


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


#: The SHA-256 of files hashed by this process, by what ``stat`` says of them: a plan checks the files the
#: notification lists and the apply after it checks them again, and the snapshot is the size of the whole
#: repository. A file written since has another change time, unless it was written within the same tick
#: of the clock: so only files unchanged for a while are remembered (git's "racily clean" rule).
_hashed: dict[tuple[str, int, int, int, int], str] = {}
_SETTLED_NS = 2_000_000_000
_HASHED_AT_MOST = 10_000  # a notification lists at most MAX_DELTAS + 1 files


def _file_sha256(path: Path) -> str:
    """A file's SHA-256, read in pieces (a snapshot may be hundreds of megabytes)."""
    with path.open("rb") as handle:
        stat = os.fstat(handle.fileno())
        seen = (str(path), stat.st_ino, stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns)
        digest = _hashed.get(seen)
        if digest is None:
            digest = hashlib.file_digest(handle, "sha256").hexdigest()
            if time.time_ns() - max(stat.st_mtime_ns, stat.st_ctime_ns) > _SETTLED_NS:
                if len(_hashed) >= _HASHED_AT_MOST:  # the unattended loop runs for months: start afresh
                    _hashed.clear()
                _hashed[seen] = digest
        return digest


def _header(tag: str, session_id: str, serial: int) -> str:
    return f'<{tag} xmlns="{NS}" version="1" session_id="{session_id}" serial="{serial}">\n'


def snapshot_pieces(
    session_id: str, serial: int, files: dict[str, bytes], rsync_base: str
) -> Iterator[bytes]:
    """The snapshot, byte for byte the same for the same files (sorted, fixed layout), one element at a
    time: a registry's snapshot is hundreds of megabytes, and assembling it in memory took four times
    that (the pieces, their join, its encoding and the tree itself) at the peak of an apply."""
    yield _header("snapshot", session_id, serial).encode()
    for path in sorted(files):
        content = base64.b64encode(files[path]).decode()
        yield f'  <publish uri="{_attr(rsync_base + path)}">{content}</publish>\n'.encode()
    yield b"</snapshot>\n"


@dataclass
class _Measured:
    """SHA-256 and length of the pieces that went through :meth:`pass_on`."""

    digest: Any = field(default_factory=hashlib.sha256)
    size: int = 0

    def pass_on(self, pieces: Iterable[bytes]) -> Iterator[bytes]:
        for piece in pieces:
            self.digest.update(piece)
            self.size += len(piece)
            yield piece

    @classmethod
    def of(cls, pieces: Iterable[bytes]) -> _Measured:
        """SHA-256 and length of ``pieces``, which are read and dropped one by one."""
        measured = cls()
        for _ in measured.pass_on(pieces):
            pass
        return measured

    @property
    def hexdigest(self) -> str:
        return str(self.digest.hexdigest())


def delta_xml(
    session_id: str, serial: int, old: dict[str, bytes], new: dict[str, bytes], rsync_base: str
) -> bytes:
    """Publish what is new or changed (a replacement names the hash it replaces), withdraw what is gone."""
    parts = [_header("delta", session_id, serial)]
    for path in sorted(set(old) | set(new)):
        uri = _attr(rsync_base + path)
        before, after = old.get(path), new.get(path)
        if after is None and before is not None:
            parts.append(f'  <withdraw uri="{uri}" hash="{_sha256(before)}"/>\n')
        elif after is not None and before != after:
            replaces = f' hash="{_sha256(before)}"' if before is not None else ""
            parts.append(f'  <publish uri="{uri}"{replaces}>{base64.b64encode(after).decode()}</publish>\n')
    parts.append("</delta>\n")
    return "".join(parts).encode()


def notification_xml(notification: Notification) -> bytes:
    parts = [
        _header("notification", notification.session_id, notification.serial),
        f'  <snapshot uri="{_attr(notification.snapshot_uri)}" hash="{notification.snapshot_hash}"/>\n',
    ]
    parts += [
        f'  <delta serial="{d.serial}" uri="{_attr(d.uri)}" hash="{d.hash}"/>\n' for d in notification.deltas
    ]
    parts.append("</notification>\n")
    return "".join(parts).encode()


def _attr(text: str) -> str:
    return text.replace("&", "&amp;").replace('"', "&quot;").replace("<", "&lt;")


def read_notification(directory: Path) -> Notification | None:
    """The published notification, or None when missing or unusable (then a new session starts)."""
    path = directory / NOTIFICATION
    try:
        root = fromstring(path.read_bytes(), forbid_dtd=True)
    except (OSError, ParseError, DefusedXmlException, ValueError):
        return None
    try:
        return _parse_notification(root)
    except (KeyError, ValueError):
        return None


def _parse_notification(root: Element) -> Notification | None:
    if root.tag != f"{{{NS}}}notification" or root.get("version") != "1":
        return None
    snapshot = root.find(f"{{{NS}}}snapshot")
    if snapshot is None:
        return None
    session_id = str(uuid.UUID(root.attrib["session_id"]))
    deltas = tuple(
        DeltaRef(int(d.attrib["serial"]), d.attrib["uri"], d.attrib["hash"].lower())
        for d in root.findall(f"{{{NS}}}delta")
    )
    return Notification(
        session_id,
        int(root.attrib["serial"]),
        snapshot.attrib["uri"],
        snapshot.attrib["hash"].lower(),
        deltas,
    )


def state_matches(
    notification: Notification | None,
    files: dict[str, bytes],
    rsync_base: str,
    *,
    directory: Path | None = None,
    rrdp_base: str | None = None,
    digest_of: DigestOf = hash_bytes,
    tree: str | None = None,
) -> tuple[bool, str]:
    """Whether the notification's current snapshot is exactly ``files`` -- the tree relying parties
    fetching by rsync see -- and, if not, why. Given ``directory`` and ``rrdp_base``, the snapshot and
    delta files it lists must also be there, with the hashes it names. ``tree``: the files'
    ``tree_digest``, when the caller knows it."""
    if notification is None:
        return False, "no RRDP notification is published"
    recorded = _recorded(directory, notification, rsync_base) if directory is not None else None
    if recorded is None or recorded != (tree or tree_digest(files, digest_of)):
        rebuilt = _Measured.of(
            snapshot_pieces(notification.session_id, notification.serial, files, rsync_base)
        )
        if rebuilt.hexdigest != notification.snapshot_hash:
            return False, "the RRDP snapshot does not match the rsync tree"
    if directory is not None and rrdp_base is not None:
        for uri, digest in (
            (notification.snapshot_uri, notification.snapshot_hash),
            *((d.uri, d.hash) for d in notification.deltas),
        ):
            path = _local(directory, rrdp_base, uri)
            try:
                intact = path is not None and _file_sha256(path) == digest
            except OSError:
                intact = False
            if not intact:
                return False, f"{uri}, listed by the RRDP notification, is missing or altered"
    return True, ""


def publish_rrdp(
    directory: Path,
    rrdp_base: str,
    rsync_base: str,
    old: dict[str, bytes],
    new: dict[str, bytes],
    *,
    digest_of: DigestOf = hash_bytes,
    old_tree: str | None = None,
) -> Written | None:
    """Publish the change from ``old`` (the tree as published before, whose ``tree_digest`` is
    ``old_tree`` when known) to ``new`` through RRDP; None when RRDP already serves ``new``."""
    current = read_notification(directory)
    matches_old, why = state_matches(
        current, old, rsync_base, directory=directory, rrdp_base=rrdp_base, digest_of=digest_of, tree=old_tree
    )
    if matches_old and old == new:
        return None
    try:
        directory.mkdir(parents=True, exist_ok=True)
        if current is None or not matches_old:
            session, serial, new_session = str(uuid.uuid4()), 1, True
            deltas: tuple[DeltaRef, ...] = ()
        else:
            session, serial, new_session = current.session_id, current.serial + 1, False
            deltas = current.deltas
        place = directory / session / str(serial) / uuid.uuid4().hex
        place.mkdir(parents=True)
        snapshot = _Measured()
        written = [
            write_public(
                place / "snapshot.xml", snapshot.pass_on(snapshot_pieces(session, serial, new, rsync_base))
            )
        ]
        faults.point("rrdp.snapshot")
        if not new_session:
            delta = delta_xml(session, serial, old, new, rsync_base)
            written.append(write_public(place / "delta.xml", delta))
            faults.point("rrdp.delta")
            uri = rrdp_base + (place / "delta.xml").relative_to(directory).as_posix()
            deltas = _keep(
                directory, rrdp_base, (DeltaRef(serial, uri, _sha256(delta)), *deltas), snapshot.size
            )
        for sub in (place, place.parent, place.parent.parent, directory):
            sub.chmod(0o755)
            fsync_dir(sub)
        notification = Notification(
            session,
            serial,
            rrdp_base + (place / "snapshot.xml").relative_to(directory).as_posix(),
            snapshot.hexdigest,
            deltas,
        )
        tmp = directory / f".{NOTIFICATION}.{os.getpid()}.tmp"
        write_public(tmp, notification_xml(notification))
        _retire(directory, rrdp_base, current, notification)
        faults.point("rrdp.before-notification")
        tmp.replace(directory / NOTIFICATION)
        fsync_dir(directory)
        faults.point("rrdp.after-notification")
        _record(directory, notification, rsync_base, tree_digest(new, digest_of))
    except OSError as exc:
        raise RrdpError(
            f"cannot write RRDP files in {directory}: {exc.strerror or exc}; "
            "the previous notification is still served"
        ) from exc
    _prune(directory, rrdp_base, notification)
    return Written(notification, new_session, why if new_session else "", written)


def _record_path(directory: Path) -> Path:
    return directory.parent / "cache" / RECORD


def _recorded(directory: Path, notification: Notification, rsync_base: str) -> str | None:
    """The digest of the tree the notification's snapshot was made from, as recorded when it was
    published (see the module's docstring); None when there is no record for exactly this snapshot."""
    record = cachefile.read(_record_path(directory))
    if record is None:
        return None
    made_for = tuple(record.get(key) for key in ("session_id", "serial", "rsync_base", "snapshot_hash"))
    tree = record.get("tree")
    this = (notification.session_id, notification.serial, rsync_base, notification.snapshot_hash)
    return tree if made_for == this and isinstance(tree, str) and tree else None


def _record(directory: Path, notification: Notification, rsync_base: str, tree: str) -> None:
    """Keep which tree the snapshot was made from. Only a cache: a record that cannot be written means
    a slower next plan, never a wrong one."""
    record = {
        "session_id": notification.session_id,
        "serial": notification.serial,
        "rsync_base": rsync_base,
        "snapshot_hash": notification.snapshot_hash,
        "tree": tree,
    }
    cachefile.write(_record_path(directory), record)


def _local(directory: Path, rrdp_base: str, uri: str) -> Path | None:
    if not uri.startswith(rrdp_base):
        return None
    return directory / uri[len(rrdp_base) :]


def _keep(
    directory: Path, rrdp_base: str, deltas: tuple[DeltaRef, ...], snapshot_size: int
) -> tuple[DeltaRef, ...]:
    """The newest deltas, contiguous, while there are at most MAX_DELTAS of them, none older than
    MAX_DELTA_AGE, and together no bigger than the snapshot (a relying party that far behind is better
    served by the snapshot)."""
    kept: list[DeltaRef] = []
    total = 0
    now = time.time()
    for delta in deltas:
        path = _local(directory, rrdp_base, delta.uri)
        if path is None or not path.is_file() or len(kept) >= MAX_DELTAS:
            break
        if kept and delta.serial != kept[-1].serial - 1:
            break
        stat = path.stat()
        total += stat.st_size
        if total > snapshot_size or now - stat.st_mtime > MAX_DELTA_AGE.total_seconds():
            break
        kept.append(delta)
    return tuple(kept)


def _places(directory: Path, rrdp_base: str, uris: list[str]) -> set[Path]:
    return {path.parent for uri in uris if (path := _local(directory, rrdp_base, uri)) is not None}


def _retire(directory: Path, rrdp_base: str, old: Notification | None, new: Notification) -> None:
    """Stamp the directories the old notification listed and the new one will not (or no longer for
    their snapshot): the grace period before their removal counts from now, when relying parties that
    read the old notification may still be fetching them."""
    if old is None:
        return
    still = _places(directory, rrdp_base, [new.snapshot_uri, *(d.uri for d in new.deltas)])
    current = _places(directory, rrdp_base, [new.snapshot_uri])
    for place in _places(directory, rrdp_base, [old.snapshot_uri, *(d.uri for d in old.deltas)]):
        if place.is_dir() and (place not in still or place not in current):
            os.utime(place)


def _prune(directory: Path, rrdp_base: str, notification: Notification) -> None:
    """Past the grace period (counted from when they stopped being listed, see ``_retire``), remove the
    serial directories the notification no longer lists, and the snapshots of those it lists only for
    their delta (a snapshot is as big as the whole repository)."""
    listed = _places(directory, rrdp_base, [notification.snapshot_uri, *(d.uri for d in notification.deltas)])
    current = _places(directory, rrdp_base, [notification.snapshot_uri])
    now = time.time()
    for session in directory.iterdir():
        if not session.is_dir():
            continue
        for serial in session.iterdir():
            for place in serial.iterdir() if serial.is_dir() else ():
                if now - place.stat().st_mtime <= GRACE.total_seconds():
                    continue
                if place not in listed:
                    shutil.rmtree(place, ignore_errors=True)
                elif place not in current:
                    (place / "snapshot.xml").unlink(missing_ok=True)
            if serial.is_dir() and not any(serial.iterdir()):
                serial.rmdir()
        if not any(session.iterdir()):
            session.rmdir()
