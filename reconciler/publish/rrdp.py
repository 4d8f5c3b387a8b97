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

A new serial's snapshot is spliced from the previous one once that check holds: the unchanged
elements are copied from its file, only the changed objects encoded (see ``snapshot_splice``).

Snapshot and delta files go into a fresh, unguessable directory per serial and are fsynced before the
notification file is replaced in one rename, so a relying party never reads a notification that
points at something missing. Files a notification no longer lists are removed after a grace period.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import io
import os
import re
import shutil
import stat
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any
from xml.etree.ElementTree import Element, ParseError

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import iterparse

from reconciler import cachefile, faults
from reconciler.fsutil import file_kind, fsync_dir, write_public
from reconciler.publish import snapshot_splice
from reconciler.publish.snapshot_splice import SpliceError, attribute
from reconciler.published.reader import DigestOf, hash_bytes, open_regular, tree_digest

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
    spliced: bool = False  # the snapshot was spliced from the previous one (see ``snapshot_splice``)


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


#: The SHA-256 of files hashed by this process, by what ``stat`` says of them: a plan checks the files the
#: notification lists and the apply after it checks them again, and the snapshot is the size of the whole
#: repository. A file written since has another change time, unless it was written within the same tick
#: of the clock: so only files unchanged for a while are remembered (git's "racily clean" rule).
_hashed: dict[tuple[str, int, int, int, int], str] = {}
_SETTLED_NS = 2_000_000_000
_HASHED_AT_MOST = 10_000  # a notification lists at most MAX_DELTAS + 1 files


def _file_sha256(path: Path, within: Path | None = None) -> str:
    """A file's SHA-256, read in pieces (a snapshot may be hundreds of megabytes). Only a regular file
    reached from ``within`` (default: its own directory) through no symbolic link (see
    ``open_regular``): RRDP's files are read back from the publication directory, which others can
    write, and nothing outside it is ever read."""
    fd = open_regular(path, within if within is not None else path.parent)
    try:
        return _fd_sha256(fd, path, os.fstat(fd))
    finally:
        os.close(fd)


def _fd_sha256(fd: int, path: Path, stat: os.stat_result) -> str:
    """The SHA-256 of the open file ``fd`` (at ``path``, as ``stat`` shows it): remembered in
    :data:`_hashed` when it has settled, read from its start otherwise (``fd`` is left open; reading
    moves its offset, so its users read with ``pread``)."""
    seen = (str(path), stat.st_ino, stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns)
    digest = _hashed.get(seen)
    if digest is None:
        with os.fdopen(os.dup(fd), "rb") as handle:
            handle.seek(0)
            digest = hashlib.file_digest(handle, "sha256").hexdigest()
        if time.time_ns() - max(stat.st_mtime_ns, stat.st_ctime_ns) > _SETTLED_NS:
            if len(_hashed) >= _HASHED_AT_MOST:  # the unattended loop runs for months: start afresh
                _hashed.clear()
            _hashed[seen] = digest
    return digest


def _header(tag: str, session_id: str, serial: int) -> str:
    return f'<{tag} xmlns="{NS}" version="1" session_id="{session_id}" serial="{serial}">\n'


#: The encoded ``<publish>`` element of each file of the last snapshot written, by path, with the very
#: bytes object it encodes: a process that publishes serial after serial of the same repository (the
#: publication server) encodes only what changed. Half again the snapshot's size in memory.
Encoded = dict[str, tuple[bytes, bytes]]


def snapshot_pieces(
    session_id: str, serial: int, files: dict[str, bytes], rsync_base: str
) -> Iterator[bytes]:
    """The snapshot, byte for byte the same for the same files (sorted, fixed layout), one element at a
    time: a registry's snapshot is hundreds of megabytes, and assembling it in memory took four times
    that (the pieces, their join, its encoding and the tree itself) at the peak of an apply."""
    return _snapshot_pieces(_header("snapshot", session_id, serial).encode(), files, rsync_base, None)


def reused_snapshot_pieces(
    session_id: str, serial: int, files: dict[str, bytes], rsync_base: str, encoded: Encoded
) -> Iterator[bytes]:
    """:func:`snapshot_pieces`, the elements of files encoded before taken from ``encoded``, which is
    left holding this snapshot's."""
    return _snapshot_pieces(_header("snapshot", session_id, serial).encode(), files, rsync_base, encoded)


def _snapshot_pieces(
    header: bytes, files: dict[str, bytes], rsync_base: str, encoded: Encoded | None
) -> Iterator[bytes]:
    yield header
    kept: Encoded = {}
    for path in sorted(files):
        data = files[path]
        known = encoded.get(path) if encoded is not None else None
        if known is not None and known[0] is data:
            piece = known[1]
        else:
            piece = snapshot_splice.element(rsync_base, path, data)
        if encoded is not None:
            kept[path] = (data, piece)
        yield piece
    if encoded is not None:
        encoded.clear()
        encoded.update(kept)
    yield snapshot_splice.TRAILER


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
    """Publish what is new or changed (a replacement names the hash it replaces), withdraw what is gone.
    Only those paths are sorted: a registry's tree has 210,000, its change a handful."""
    parts = [_header("delta", session_id, serial)]
    changed = {path for path, data in new.items() if (was := old.get(path)) is not data and was != data}
    for path in sorted(changed.union(old.keys() - new.keys())):
        uri = attribute(rsync_base + path)
        before, after = old.get(path), new.get(path)
        if after is None:
            parts.append(f'  <withdraw uri="{uri}" hash="{_sha256(old[path])}"/>\n')
        else:
            replaces = f' hash="{_sha256(before)}"' if before is not None else ""
            parts.append(f'  <publish uri="{uri}"{replaces}>{base64.b64encode(after).decode()}</publish>\n')
    parts.append("</delta>\n")
    return "".join(parts).encode()


def notification_xml(notification: Notification) -> bytes:
    parts = [
        _header("notification", notification.session_id, notification.serial),
        f'  <snapshot uri="{attribute(notification.snapshot_uri)}" hash="{notification.snapshot_hash}"/>\n',
    ]
    parts += [
        f'  <delta serial="{d.serial}" uri="{attribute(d.uri)}" hash="{d.hash}"/>\n'
        for d in notification.deltas
    ]
    parts.append("</notification>\n")
    return "".join(parts).encode()


#: Far more than a notification listing ``MAX_DELTAS`` deltas takes (about 25 KB): anything bigger was
#: not written here, and is not read into memory.
MAX_NOTIFICATION_BYTES = 1 << 20
_SERIAL = re.compile(r"[1-9][0-9]{0,19}")  # RFC 8182 §3.5.1.3: a positive integer, unsigned 64 bits
_HASH = re.compile(r"[0-9a-fA-F]{64}")  # §3.5.2.3: SHA-256 in hex


def read_notification(directory: Path) -> Notification | None:
    """The published notification, or None when missing or unusable (then a new session starts).

    The file is input, whoever wrote it: only a regular file of at most ``MAX_NOTIFICATION_BYTES`` is
    read (a FIFO or a device never blocks or floods the read), no DTD is accepted (no entity expansion,
    nothing external), and every attribute must have the form RFC 8182 gives it. Whatever else is
    wrong with it reads as None, never as an exception."""
    data = _read_regular(directory / NOTIFICATION, MAX_NOTIFICATION_BYTES)
    if data is None:
        return None
    try:
        root = _shallow_tree(data)
    except (ParseError, DefusedXmlException, ValueError, RecursionError):
        return None
    if root is None:
        return None
    try:
        return _parse_notification(root)
    except (KeyError, ValueError, TypeError, OverflowError):
        return None


def _shallow_tree(data: bytes) -> Element | None:
    """The document's root element, or None as soon as elements nest deeper than a notification's two
    levels (so that a deep nesting costs no more than its first few bytes)."""
    depth = 0
    root = None
    for event, element in iterparse(io.BytesIO(data), events=("start", "end"), forbid_dtd=True):
        if event == "end":
            depth -= 1
            continue
        depth += 1
        if depth > 2:
            return None
        root = element if root is None else root
    return root


def _read_regular(path: Path, limit: int) -> bytes | None:
    """The bytes of ``path`` when it is a regular file (not followed through a symbolic link) of at most
    ``limit`` bytes; None otherwise or when it cannot be read."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        found = os.fstat(fd)
        if not stat.S_ISREG(found.st_mode) or found.st_size > limit:
            return None
        data = os.read(fd, limit + 1)
        return data if len(data) <= limit else None
    except OSError:
        return None
    finally:
        os.close(fd)


def _parse_notification(root: Element) -> Notification | None:
    if root.tag != f"{{{NS}}}notification" or root.get("version") != "1":
        return None
    snapshot = root.find(f"{{{NS}}}snapshot")
    if snapshot is None:
        return None
    text = root.attrib["session_id"]
    session_id = str(uuid.UUID(text))
    if session_id != text.lower():  # §3.5.1.3: the UUID in its usual form, nothing around it
        return None
    deltas = tuple(
        DeltaRef(_serial(d.attrib["serial"]), d.attrib["uri"], _hash(d.attrib["hash"]))
        for d in root.findall(f"{{{NS}}}delta")
    )
    serial = _serial(root.attrib["serial"])
    if len({d.serial for d in deltas}) != len(deltas) or any(d.serial > serial for d in deltas):
        return None  # §3.5.1.3: one delta per serial, none beyond the current one
    return Notification(session_id, serial, snapshot.attrib["uri"], _hash(snapshot.attrib["hash"]), deltas)


def _serial(text: str) -> int:
    if not _SERIAL.fullmatch(text) or int(text) >= 1 << 64:
        raise ValueError(f"not an RRDP serial: {text[:32]!r}")
    return int(text)


def _hash(text: str) -> str:
    if not _HASH.fullmatch(text):
        raise ValueError(f"not a SHA-256 in hex: {text[:32]!r}")
    return text.lower()


def planted_entry(directory: Path) -> str | None:
    """The first entry below ``directory`` that publishing RRDP never makes (a symbolic link, a FIFO,
    anything but files and directories), described; None when there is none. Nothing is followed: a
    link to a directory is reported, not entered."""
    for base, directories, names in os.walk(directory, followlinks=False):
        for name in (*directories, *names):
            path = Path(base, name)
            try:
                mode = path.lstat().st_mode
            except OSError:
                continue  # gone meanwhile (an old serial pruned)
            if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
                return f"{path.relative_to(directory)} in {directory} is {file_kind(mode)}"
    return None


def state_matches(
    notification: Notification | None,
    files: dict[str, bytes],
    rsync_base: str,
    *,
    directory: Path | None = None,
    rrdp_base: str | None = None,
    digest_of: DigestOf = hash_bytes,
    tree: str | None = None,
    secret: bytes | None = None,
) -> tuple[bool, str]:
    """Whether the notification's current snapshot is exactly ``files`` -- the tree relying parties
    fetching by rsync see -- and, if not, why. Given ``directory`` and ``rrdp_base``, the snapshot and
    delta files it lists must also be there, with the hashes it names. ``tree``: the files'
    ``tree_digest``, when the caller knows it. ``secret``: the key the snapshot record is authenticated
    with (see ``cachefile``), so that a forged record cannot vouch for a forged snapshot."""
    if notification is None:
        return False, "no RRDP notification is published"
    recorded = _recorded(directory, notification, rsync_base, secret) if directory is not None else None
    tree = tree or tree_digest(files, digest_of)
    if recorded is None or recorded != tree:
        rebuilt = _Measured.of(
            snapshot_pieces(notification.session_id, notification.serial, files, rsync_base)
        )
        if rebuilt.hexdigest != notification.snapshot_hash:
            return False, "the RRDP snapshot does not match the rsync tree"
        if directory is not None and secret is not None:  # found true the slow way: spare the next run
            _record(directory, notification, rsync_base, tree, secret)
    if directory is not None and rrdp_base is not None:
        for uri, digest in (
            (notification.snapshot_uri, notification.snapshot_hash),
            *((d.uri, d.hash) for d in notification.deltas),
        ):
            path = _local(directory, rrdp_base, uri)
            try:
                intact = path is not None and _file_sha256(path, directory) == digest
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
    fence: Callable[[], AbstractContextManager[None]] | None = None,
    secret: bytes | None = None,
    encoded: Encoded | None = None,
) -> Written | None:
    """Publish the change from ``old`` (the tree as published before, whose ``tree_digest`` is
    ``old_tree`` when known) to ``new`` through RRDP; None when RRDP already serves ``new``.
    ``encoded``: see :data:`Encoded` (``reused_snapshot_pieces``).

    ``fence``: entered around the rename of the notification (the publication lock's, see
    ``reconciler.publish.rsync_tree.publish``). What is not a directory of its own where the RRDP
    directory, a session or a serial directory must be (a symbolic link, a file) is removed -- the entry
    itself, never what it points to -- so nothing is ever written, stamped or pruned outside
    ``directory``."""
    _make_directory(directory)
    current = read_notification(directory)
    matches_old, why = state_matches(
        current,
        old,
        rsync_base,
        directory=directory,
        rrdp_base=rrdp_base,
        digest_of=digest_of,
        tree=old_tree,
        secret=secret,
    )
    if matches_old and old == new:
        _clean(directory, rrdp_base, current)
        return None
    place: Path | None = None
    tmp = directory / f".{NOTIFICATION}.{os.getpid()}.tmp"
    served = False
    try:
        if current is None or not matches_old:
            session, serial, new_session = str(uuid.uuid4()), 1, True
            deltas: tuple[DeltaRef, ...] = ()
        else:
            session, serial, new_session = current.session_id, current.serial + 1, False
            deltas = current.deltas
        place = directory / session / str(serial) / uuid.uuid4().hex
        _real_directory(place.parent.parent)
        _real_directory(place.parent)
        place.mkdir()
        snapshot, spliced = _write_snapshot(
            place / "snapshot.xml",
            _header("snapshot", session, serial).encode(),
            new,
            rsync_base,
            encoded=encoded,
            previous=None
            if new_session or encoded is not None or current is None
            else _previous(directory, rrdp_base, current, old, rsync_base),
        )
        written = [place / "snapshot.xml"]
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
        write_public(tmp, notification_xml(notification))
        _retire(directory, rrdp_base, current, notification)
        faults.point("rrdp.before-notification")
        with fence() if fence is not None else contextlib.nullcontext():
            tmp.replace(directory / NOTIFICATION)
            served = True
    except OSError as exc:
        raise RrdpError(
            f"cannot write RRDP files in {directory}: {exc.strerror or exc}; "
            "the previous notification is still served"
        ) from exc
    finally:
        if not served:  # never listed: its space back
            with contextlib.suppress(OSError):
                tmp.unlink(missing_ok=True)
            if place is not None:
                shutil.rmtree(place, ignore_errors=True)
    _served(directory, rrdp_base, rsync_base, notification, tree_digest(new, digest_of), secret=secret)
    return Written(notification, new_session, why if new_session else "", written, spliced)


def _previous(
    directory: Path, rrdp_base: str, current: Notification, files: dict[str, bytes], rsync_base: str
) -> snapshot_splice.Previous | None:
    """The snapshot ``current`` lists, open for the next one to be spliced from it, when it is the file
    whose hash the notification names (remembered by ``stat`` when RRDP was checked, hashed now
    otherwise); ``files``: the tree it was made from. None when it cannot be used."""
    path = _local(directory, rrdp_base, current.snapshot_uri)
    if path is None:
        return None
    try:
        fd = open_regular(path, directory)
    except OSError:
        return None
    try:
        seen = os.fstat(fd)
        digest: str | None = _fd_sha256(fd, path, seen)  # written meanwhile: ``spliced`` finds out
    except OSError:
        digest = None
    if digest != current.snapshot_hash:
        os.close(fd)
        return None
    header = _header("snapshot", current.session_id, current.serial).encode()
    return snapshot_splice.Previous(fd, seen, header, files, rsync_base)


def _write_snapshot(
    path: Path,
    header: bytes,
    files: dict[str, bytes],
    rsync_base: str,
    *,
    encoded: Encoded | None,
    previous: snapshot_splice.Previous | None,
) -> tuple[_Measured, bool]:
    """Write, hash and fsync the snapshot that begins with ``header``: spliced from ``previous`` when
    given and it can be, encoded in full otherwise (with ``encoded``, see :data:`Encoded`). Returns its
    measure, and whether it was spliced."""
    if previous is not None:
        try:
            snapshot = _Measured()
            write_public(path, snapshot.pass_on(snapshot_splice.spliced(header, files, previous)))
            return snapshot, True
        except SpliceError:
            pass  # the previous file is not what its tree says: encode every object, as for a new session
        finally:
            os.close(previous.fd)
    snapshot = _Measured()
    write_public(path, snapshot.pass_on(_snapshot_pieces(header, files, rsync_base, encoded)))
    return snapshot, False


def _make_directory(directory: Path) -> None:
    """Make ``directory`` a directory of its own (see :func:`_real_directory`), or say why not."""
    try:
        _real_directory(directory)
    except OSError as exc:
        raise RrdpError(
            f"cannot make {directory} a directory: {exc.strerror or exc}; the previous notification is "
            "still served"
        ) from exc


def _clean(directory: Path, rrdp_base: str, current: Notification | None) -> None:
    """RRDP already serves the tree: only remove what was planted beside it, if anything."""
    if current is not None and planted_entry(directory) is not None:
        _prune(directory, rrdp_base, current)


def _served(
    directory: Path,
    rrdp_base: str,
    rsync_base: str,
    notification: Notification,
    tree: str,
    *,
    secret: bytes | None = None,
) -> None:
    """After the notification is out: make it durable, record its tree, prune what it no longer lists."""
    try:
        fsync_dir(directory)
    except OSError as exc:
        raise RrdpError(
            f"the new notification (serial {notification.serial}) is served, but {directory} could not be "
            f"synced: {exc.strerror or exc}; a power cut may bring the previous one back (run apply again)"
        ) from exc
    faults.point("rrdp.after-notification")
    _record(directory, notification, rsync_base, tree, secret)
    _prune(directory, rrdp_base, notification)


def _record_path(directory: Path) -> Path:
    return directory.parent / "cache" / RECORD


def _recorded(
    directory: Path, notification: Notification, rsync_base: str, secret: bytes | None = None
) -> str | None:
    """The digest of the tree the notification's snapshot was made from, as recorded when it was
    published (see the module's docstring); None when there is no record for exactly this snapshot, or
    (with ``secret``) none authenticated by it."""
    record = cachefile.read(_record_path(directory), secret=secret)
    if record is None:
        return None
    made_for = tuple(record.get(key) for key in ("session_id", "serial", "rsync_base", "snapshot_hash"))
    tree = record.get("tree")
    this = (notification.session_id, notification.serial, rsync_base, notification.snapshot_hash)
    return tree if made_for == this and isinstance(tree, str) and tree else None


def _record(
    directory: Path, notification: Notification, rsync_base: str, tree: str, secret: bytes | None = None
) -> None:
    """Keep which tree the snapshot was made from. Only a cache: a record that cannot be written means
    a slower next plan, never a wrong one."""
    record = {
        "session_id": notification.session_id,
        "serial": notification.serial,
        "rsync_base": rsync_base,
        "snapshot_hash": notification.snapshot_hash,
        "tree": tree,
    }
    cachefile.write(_record_path(directory), record, secret=secret)


def _local(directory: Path, rrdp_base: str, uri: str) -> Path | None:
    """Where a URI under ``rrdp_base`` is in ``directory``; None for any other URI, or one whose path
    would leave ``directory`` (``..``, empty or absolute parts)."""
    if not uri.startswith(rrdp_base):
        return None
    parts = uri[len(rrdp_base) :].split("/")
    if any(part in ("", ".", "..") or "\\" in part or "\0" in part for part in parts):
        return None
    return directory.joinpath(*parts)


def _real_directory(path: Path) -> None:
    """Make ``path`` a directory of its own: a symbolic link, file or FIFO in its place is removed (the
    entry, never what it points to)."""
    try:
        mode = path.lstat().st_mode
    except FileNotFoundError:
        mode = 0
    if mode and not stat.S_ISDIR(mode):
        path.unlink()
    path.mkdir(mode=0o755, parents=True, exist_ok=True)


def _regular(path: Path) -> os.stat_result | None:
    """``lstat`` of a regular file, never followed through a symbolic link; None for anything else."""
    try:
        found = path.lstat()
    except OSError:
        return None
    return found if stat.S_ISREG(found.st_mode) else None


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
        found = _regular(path) if path is not None and _inside(directory, path) else None
        if found is None or len(kept) >= MAX_DELTAS:
            break
        if kept and delta.serial != kept[-1].serial - 1:
            break
        total += found.st_size
        if total > snapshot_size or now - found.st_mtime > MAX_DELTA_AGE.total_seconds():
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
        if _inside(directory, place) and (place not in still or place not in current):
            os.utime(place, follow_symlinks=False)


def _inside(directory: Path, path: Path) -> bool:
    """Whether ``path`` and each directory between it and ``directory`` are real directories (not
    symbolic links), so that touching it touches nothing outside ``directory``."""
    parts = path.relative_to(directory).parts
    here = directory
    for part in parts:
        here = here / part
        try:
            if not stat.S_ISDIR(here.lstat().st_mode) and here != path:
                return False
        except OSError:
            return False
    try:
        return not stat.S_ISLNK(path.lstat().st_mode)
    except OSError:
        return False


def _prune(directory: Path, rrdp_base: str, notification: Notification) -> None:
    """Past the grace period (counted from when they stopped being listed, see ``_retire``), remove the
    serial directories the notification no longer lists, and the snapshots of those it lists only for
    their delta (a snapshot is as big as the whole repository).

    Nothing is followed: an entry that is not a directory where sessions, serials and their directories
    are (a symbolic link, dangling or not, a FIFO, a file) was never made here and is removed itself,
    and so is a non-regular file other than the notification at the top. Cleanup only: what cannot be
    removed now is left for the next publication, never an error after the notification is out."""
    listed = _places(directory, rrdp_base, [notification.snapshot_uri, *(d.uri for d in notification.deltas)])
    current = _places(directory, rrdp_base, [notification.snapshot_uri])
    now = time.time()
    for session, session_mode in _entries(directory):
        if not stat.S_ISDIR(session_mode):
            if not stat.S_ISREG(session_mode):
                _remove(session)
            continue
        for serial, serial_mode in _entries(session):
            if not stat.S_ISDIR(serial_mode):
                _remove(serial)
                continue
            for place, place_mode in _entries(serial):
                _prune_place(place, place_mode, place in listed, place in current, now)
            _remove_if_empty(serial)
        _remove_if_empty(session)


def _prune_place(place: Path, mode: int, listed: bool, current: bool, now: float) -> None:
    """One place of a serial directory (see :func:`_prune`): anything but a directory is removed, and
    so is anything in it but files; past the grace period, a place no longer ``listed`` goes whole,
    and one listed but not ``current`` loses its snapshot."""
    if not stat.S_ISDIR(mode):
        _remove(place)
        return
    for inside, inside_mode in _entries(place):
        if not stat.S_ISREG(inside_mode):
            _remove(inside)
    try:
        age = now - place.lstat().st_mtime
    except OSError:
        return
    if age <= GRACE.total_seconds():
        return
    if not listed:
        shutil.rmtree(place, ignore_errors=True)  # does not follow links inside
    elif not current:
        with contextlib.suppress(OSError):
            (place / "snapshot.xml").unlink(missing_ok=True)


def _entries(directory: Path) -> list[tuple[Path, int]]:
    """The entries of a directory with their ``lstat`` modes; [] when it cannot be listed."""
    found = []
    try:
        with os.scandir(directory) as listing:
            for entry in listing:
                with contextlib.suppress(OSError):
                    found.append((Path(entry.path), entry.stat(follow_symlinks=False).st_mode))
    except OSError:
        return []
    return found


def _remove(path: Path) -> None:
    with contextlib.suppress(OSError):
        path.unlink()


def _remove_if_empty(path: Path) -> None:
    with contextlib.suppress(OSError):
        if not any(path.iterdir()):
            path.rmdir()
