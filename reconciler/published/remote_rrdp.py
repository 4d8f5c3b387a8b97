"""Read a repository through RRDP (RFC 8182) as a relying party does, into the local cache.

The notification names the session, the serial, the snapshot and the deltas on offer, each with its
SHA-256. A cache of the same session at an older serial catches up through the deltas when every one
from there is offered; otherwise the snapshot is read. Every file is checked against the hash the
notification gives it before a byte of it is believed, and every object a delta replaces or withdraws
must be the one the cache holds (else the snapshot is read instead, once, as relying parties do).

The server is not trusted: only https is spoken (on the notification's own host for the snapshot and
deltas), the XML may carry no DTD (no entity expansion, nothing external), nesting, sizes and the number
of objects are bounded, the snapshot is streamed to disk and parsed one object at a time, and an
object's path must stay below the rsync base (see ``remote_cache.relative_path``).
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import os
import re
import secrets
import ssl
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO
from xml.etree.ElementTree import Element, ParseError

import httpx
from defusedxml import DefusedXmlException
from defusedxml.ElementTree import iterparse

import reconciler
from reconciler.published.remote_cache import (
    Cached,
    Entry,
    RemoteError,
    copy_tree,
    discard,
    relative_path,
    remove_object,
    write_object,
)

NS = "http://www.ripe.net/rpki/rrdp"
#: A notification lists one snapshot and at most a few hundred deltas: a few hundred kilobytes.
MAX_NOTIFICATION_BYTES = 8 << 20
#: A registry's whole repository is a few hundred megabytes of snapshot.
MAX_SNAPSHOT_BYTES = 2 << 30
MAX_DELTA_BYTES = 512 << 20
MAX_OBJECTS = 2_000_000
MAX_REDIRECTS = 3
#: The longest stretch of a file without a '<': bounds the text of one element (one object, base64),
#: which the parser holds whole, well below the file's own bound.
MAX_TEXT = 128 << 20
#: A whole file must arrive within this many times ``timeout``: a server sending a byte now and then
#: cannot hold a plan for ever.
WHOLE_FILE = 10

_SERIAL = re.compile(r"[1-9][0-9]{0,19}")  # RFC 8182 §3.5.1.3: a positive integer, unsigned 64 bits
_HASH = re.compile(r"[0-9a-fA-F]{64}")
_CHUNK = 1 << 16
_FIX_SERVER = "the repository's RRDP server must be repaired (or the URL is not an RRDP notification)"


@dataclass(frozen=True, slots=True)
class Ref:
    """A file the notification lists: its URI and SHA-256 (lowercase hex)."""

    uri: str
    hash: str


@dataclass(frozen=True, slots=True)
class Listing:
    """What a notification says."""

    session_id: str
    serial: int
    snapshot: Ref
    deltas: dict[int, Ref]


class _StaleError(Exception):
    """A delta replaces or withdraws an object that is not the one the cache holds."""


def fetch(uri: str, rsync_base: str, entry: Entry, timeout: float) -> tuple[Path, str, int]:
    """Bring the cache of notification ``uri`` up to date; return its tree, session and serial."""
    origin = _https(uri, uri, "notification URL")
    try:
        client = _client(timeout)
    except (OSError, ssl.SSLError) as exc:
        raise RemoteError(
            f"cannot set up HTTPS to read {uri}: {exc}; check SSL_CERT_FILE and SSL_CERT_DIR"
        ) from exc
    with client:
        data = b"".join(_chunks(client, uri, MAX_NOTIFICATION_BYTES, timeout))
        listing = parse_notification(uri, data, origin)
        cached = entry.load()
        if cached is not None and cached.rsync_base != rsync_base:
            cached = None
        entry.sweep(keep=cached.tree if cached is not None else None)
        if cached is not None and (cached.session_id, cached.serial) == (listing.session_id, listing.serial):
            return cached.tree, listing.session_id, listing.serial
        if cached is not None and _deltas_reach(cached, listing):
            with contextlib.suppress(_StaleError):
                tree, files = _catch_up(
                    client, listing, cached, rsync_base=rsync_base, entry=entry, timeout=timeout
                )
                entry.commit(tree, rsync_base, listing.session_id, listing.serial, files)
                return tree, listing.session_id, listing.serial
        tree, files = _snapshot(client, listing, rsync_base, entry, timeout)
        entry.commit(tree, rsync_base, listing.session_id, listing.serial, files)
        return tree, listing.session_id, listing.serial


def _client(timeout: float) -> httpx.Client:
    """An HTTPS client that takes the usual environment (``https_proxy``, ``no_proxy``,
    ``SSL_CERT_FILE``, ``SSL_CERT_DIR``) and follows no redirect by itself (see :func:`_chunks`)."""
    return httpx.Client(
        trust_env=True,
        timeout=httpx.Timeout(timeout),
        follow_redirects=False,
        headers={"User-Agent": f"rpki-reconciler/{reconciler.__version__}"},
    )


def _https(
    uri: str, where: str, what: str, origin: tuple[str, int | None] | None = None
) -> tuple[str, int | None]:
    """The host and port of an https ``uri``; a RemoteError unless it is https (on ``origin``, when
    given: the snapshot and deltas are on the notification's host, as relying parties require)."""
    try:
        url = httpx.URL(uri)
    except (httpx.InvalidURL, TypeError, ValueError) as exc:
        raise RemoteError(f"{where}: the {what} {uri[:200]!r} is not a URL ({exc}); {_FIX_SERVER}") from exc
    if url.scheme != "https" or not url.host:
        if origin is None and url.scheme == "http":
            raise RemoteError(
                f"{uri}: plain http is refused, relying parties read RRDP over https only; give the "
                "https:// notification URL (the rpkiNotify of the CA certificate)"
            )
        raise RemoteError(f"{where}: the {what} {uri[:200]!r} is not an https URL; {_FIX_SERVER}")
    found = (url.host.lower(), url.port)
    if origin is not None and found != origin:
        raise RemoteError(
            f"{where}: the {what} {uri[:200]!r} is not on the notification's host; relying parties "
            f"refuse it: {_FIX_SERVER}"
        )
    return found


def _chunks(client: httpx.Client, uri: str, limit: int, timeout: float) -> Iterator[bytes]:
    """The body of ``uri`` in pieces, at most ``limit`` bytes of it within ``timeout * WHOLE_FILE``
    seconds, through at most ``MAX_REDIRECTS`` redirects, each to https."""
    deadline = time.monotonic() + timeout * WHOLE_FILE
    current = uri
    try:
        for _ in range(MAX_REDIRECTS + 1):
            with client.stream("GET", current) as response:
                if response.is_redirect:
                    target = str(response.url.join(response.headers.get("location", "")))
                    if not target.startswith("https://"):
                        raise RemoteError(
                            f"{current} redirects to {target[:200]!r}, which is not https; relying "
                            f"parties do not follow it: {_FIX_SERVER}"
                        )
                    current = target
                    continue
                if response.status_code != 200:
                    raise RemoteError(
                        f"{current}: the server answered HTTP {response.status_code} "
                        f"{response.reason_phrase}; check the URL (the rpkiNotify of the CA certificate) "
                        "and that the repository is served"
                    )
                yield from _body(response, current, limit, deadline)
                return
    except (httpx.HTTPError, httpx.InvalidURL) as exc:
        raise RemoteError(f"cannot read {current}: {_why(exc)}") from exc
    raise RemoteError(f"{uri}: more than {MAX_REDIRECTS} redirects; {_FIX_SERVER}")


def _body(response: httpx.Response, uri: str, limit: int, deadline: float) -> Iterator[bytes]:
    declared = response.headers.get("content-length", "")
    too_big = (
        f"{uri}: the file is larger than {limit} bytes, more than any repository needs; refused so that "
        f"a broken or hostile server cannot fill memory or disk: {_FIX_SERVER}"
    )
    if declared.isdigit() and int(declared) > limit:
        raise RemoteError(too_big)
    size = 0
    for piece in response.iter_bytes(_CHUNK):
        size += len(piece)
        if size > limit:
            raise RemoteError(too_big)
        if time.monotonic() > deadline:
            raise RemoteError(
                f"{uri}: the server is too slow (the file did not arrive within {deadline:.0f}s); try "
                "again later, or give a larger timeout"
            )
        yield piece


def _why(exc: httpx.HTTPError | httpx.InvalidURL) -> str:
    """What went wrong, in words, with what to do."""
    text = str(exc) or type(exc).__name__
    if isinstance(exc, httpx.TimeoutException):
        return f"timed out ({text}); check the network and the server, or give a larger timeout"
    if isinstance(exc, httpx.ProxyError):
        return f"the proxy failed ({text}); check https_proxy"
    if "CERTIFICATE" in text.upper() or "SSL" in text.upper():
        return (
            f"TLS failed ({text}); the server's certificate must be valid for its name and trusted (for "
            "a private CA, set SSL_CERT_FILE to its bundle)"
        )
    if isinstance(exc, httpx.ConnectError):
        return f"cannot connect ({text}); check the host name, the network and https_proxy"
    return f"{text}; check the URL and the network"


def parse_notification(uri: str, data: bytes, origin: tuple[str, int | None]) -> Listing:
    """The notification's session, serial, snapshot and deltas, every field in the form RFC 8182
    gives it; RemoteError otherwise."""
    elements = _parse(_Bytes(data), uri, "notification")
    root = next(elements)
    session_id, serial = _session(root, uri), _serial(root.get("serial"), uri, "serial")
    snapshot: Ref | None = None
    deltas: dict[int, Ref] = {}
    for element in elements:
        name = _local(element)
        if name == "snapshot" and snapshot is None:
            snapshot = _ref(element, uri, origin, "snapshot")
        elif name == "delta":
            number = _serial(element.get("serial"), uri, "delta serial")
            if number in deltas or number > serial:
                raise RemoteError(
                    f"{uri}: delta serial {number} is listed twice or beyond {serial}; {_FIX_SERVER}"
                )
            deltas[number] = _ref(element, uri, origin, f"delta {number}")
        else:
            raise RemoteError(f"{uri}: unexpected <{name}> in the notification; {_FIX_SERVER}")
    if snapshot is None:
        raise RemoteError(f"{uri}: the notification lists no snapshot; {_FIX_SERVER}")
    return Listing(session_id, serial, snapshot, deltas)


class _Bytes:
    """A readable view of bytes for ``iterparse`` (which takes a file)."""

    def __init__(self, data: bytes) -> None:
        self._data, self._at = memoryview(data), 0

    def read(self, size: int = -1) -> bytes:
        end = len(self._data) if size < 0 else self._at + size
        piece = bytes(self._data[self._at : end])
        self._at += len(piece)
        return piece


def _parse(source: IO[bytes] | _Bytes, uri: str, tag: str) -> Iterator[Element]:
    """The root element ``tag`` of version 1 (as soon as it starts: attributes only), then each of its
    children, complete, as read; a child is dropped once the caller has it. No DTD, no nesting below
    the children, nothing but RRDP's namespace."""
    depth = 0
    root: Element | None = None
    try:
        for event, element in iterparse(source, events=("start", "end"), forbid_dtd=True):
            if event == "start":
                depth += 1
                if depth == 1:
                    if element.tag != f"{{{NS}}}{tag}" or element.get("version") != "1":
                        raise RemoteError(
                            f"{uri}: not an RRDP {tag} (version 1, namespace {NS}): found "
                            f"{element.tag[:120]!r}; {_FIX_SERVER}"
                        )
                    root = element
                    yield element
                elif depth > 2 or not element.tag.startswith(f"{{{NS}}}"):
                    raise RemoteError(f"{uri}: unexpected element {element.tag[:120]!r}; {_FIX_SERVER}")
                continue
            depth -= 1
            if depth == 1 and root is not None:
                yield element
                root.clear()  # its attributes were read when it started
    except (ParseError, DefusedXmlException, ValueError) as exc:
        raise RemoteError(
            f"{uri}: not well-formed RRDP XML ({type(exc).__name__}: {str(exc)[:200]}); DTDs and entities "
            f"are refused as relying parties refuse them: {_FIX_SERVER}"
        ) from exc
    if root is None:
        raise RemoteError(f"{uri}: empty document; {_FIX_SERVER}")


def _local(element: Element) -> str:
    return element.tag.rpartition("}")[2]


def _session(root: Element, uri: str) -> str:
    text = root.get("session_id") or ""
    try:
        session = str(uuid.UUID(text))
    except ValueError:
        session = ""
    if not session or session != text.lower():
        raise RemoteError(f"{uri}: session_id {text[:64]!r} is not a UUID; {_FIX_SERVER}")
    return session


def _serial(text: str | None, uri: str, what: str) -> int:
    if text is None or not _SERIAL.fullmatch(text) or int(text) >= 1 << 64:
        raise RemoteError(f"{uri}: {what} {(text or '')[:32]!r} is not a positive integer; {_FIX_SERVER}")
    return int(text)


def _hash(text: str | None, uri: str, what: str) -> str:
    if text is None or not _HASH.fullmatch(text):
        raise RemoteError(f"{uri}: the hash of {what} is not a SHA-256 in hex; {_FIX_SERVER}")
    return text.lower()


def _ref(element: Element, uri: str, origin: tuple[str, int | None], what: str) -> Ref:
    target = element.get("uri") or ""
    _https(target, uri, f"{what} URI", origin)
    return Ref(target, _hash(element.get("hash"), uri, what))


def _deltas_reach(cached: Cached, listing: Listing) -> bool:
    """Whether the notification offers every delta from the cached serial of the same session to its own."""
    if cached.session_id != listing.session_id or cached.serial is None or cached.serial >= listing.serial:
        return False
    return all(serial in listing.deltas for serial in range(cached.serial + 1, listing.serial + 1))


@contextlib.contextmanager
def _downloaded(
    client: httpx.Client, ref: Ref, limit: int, entry: Entry, timeout: float
) -> Iterator[IO[bytes]]:
    """``ref`` read into a file of the cache and found to have the hash the notification gives it; the
    file is removed afterwards."""
    path = entry.directory / f".download-{secrets.token_hex(8)}"
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    try:
        with os.fdopen(fd, "w+b") as handle:
            digest = hashlib.sha256()
            text = 0
            for piece in _chunks(client, ref.uri, limit, timeout):
                digest.update(piece)
                handle.write(piece)
                text = _longest_text(text, piece)
                if text > MAX_TEXT:
                    raise RemoteError(
                        f"{ref.uri}: more than {MAX_TEXT} bytes without markup, more than any object "
                        f"takes; {_FIX_SERVER}"
                    )
            if digest.hexdigest() != ref.hash:
                raise RemoteError(
                    f"{ref.uri}: its SHA-256 is {digest.hexdigest()}, not {ref.hash} as the notification "
                    "says; the file was altered or replaced (or the server is mid-update: try again in a "
                    "minute). Nothing of it was used"
                )
            handle.seek(0)
            yield handle
    finally:
        discard(path)


def _longest_text(before: int, piece: bytes) -> int:
    """The length of the stretch without '<' that ends ``piece``, given the one that ended the pieces
    before it; or, when longer, of any stretch within it (which then ends the download)."""
    stretches = piece.split(b"<")
    if len(stretches) == 1:
        return before + len(piece)
    longest = max(before + len(stretches[0]), *(len(stretch) for stretch in stretches[1:-1]), 0)
    return longest if longest > MAX_TEXT else len(stretches[-1])


def _snapshot(
    client: httpx.Client, listing: Listing, rsync_base: str, entry: Entry, timeout: float
) -> tuple[Path, dict[str, str]]:
    """A new tree with the snapshot's objects below ``rsync_base``, and their hashes."""
    ref = listing.snapshot
    with _downloaded(client, ref, MAX_SNAPSHOT_BYTES, entry, timeout) as handle:
        tree = entry.new_tree()
        try:
            files: dict[str, str] = {}
            elements = _parse(handle, ref.uri, "snapshot")
            _same(next(elements), listing.session_id, listing.serial, ref.uri)
            for count, element in enumerate(elements, start=1):
                if count > MAX_OBJECTS or _local(element) != "publish":
                    raise RemoteError(
                        f"{ref.uri}: more than {MAX_OBJECTS} objects, or an element other than <publish>; "
                        f"{_FIX_SERVER}"
                    )
                object_uri = element.get("uri") or ""
                path = relative_path(object_uri, rsync_base)
                if path is None:
                    continue
                if path in files:
                    raise RemoteError(f"{ref.uri}: {object_uri} is published twice; {_FIX_SERVER}")
                files[path] = _write(tree, path, _content(element, object_uri, ref.uri), object_uri, ref.uri)
        except BaseException:
            discard(tree)
            raise
    return tree, files


def _same(root: Element, session_id: str, serial: int, uri: str) -> None:
    if _session(root, uri) != session_id or _serial(root.get("serial"), uri, "serial") != serial:
        raise RemoteError(
            f"{uri}: session {root.get('session_id', '')[:64]} serial {root.get('serial', '')[:32]} is not "
            f"the notification's (session {session_id} serial {serial}); {_FIX_SERVER}"
        )


def _content(element: Element, object_uri: str, uri: str) -> bytes:
    text = "".join((element.text or "").split())
    try:
        data = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise RemoteError(f"{uri}: the content of {object_uri[:200]} is not base64; {_FIX_SERVER}") from exc
    if not data:
        raise RemoteError(f"{uri}: {object_uri[:200]} is published empty; {_FIX_SERVER}")
    return data


def _write(tree: Path, path: str, data: bytes, object_uri: str, uri: str) -> str:
    try:
        write_object(tree, path, data)
    except OSError as exc:
        raise RemoteError(
            f"{uri}: {object_uri[:200]} cannot be kept ({exc.strerror or exc}: another object's path is a "
            f"directory of it, or it is too big); {_FIX_SERVER}"
        ) from exc
    return hashlib.sha256(data).hexdigest()


def _catch_up(
    client: httpx.Client, listing: Listing, cached: Cached, *, rsync_base: str, entry: Entry, timeout: float
) -> tuple[Path, dict[str, str]]:
    """A new tree: the cached one with the deltas from its serial to the notification's applied in turn."""
    assert cached.serial is not None  # noqa: S101 - checked by _deltas_reach
    tree = entry.new_tree()
    try:
        copy_tree(cached, tree)
        files = dict(cached.files)
        for serial in range(cached.serial + 1, listing.serial + 1):
            ref = listing.deltas[serial]
            with _downloaded(client, ref, MAX_DELTA_BYTES, entry, timeout) as handle:
                _apply(
                    handle,
                    ref.uri,
                    session_id=listing.session_id,
                    serial=serial,
                    rsync_base=rsync_base,
                    tree=tree,
                    files=files,
                )
    except BaseException:
        discard(tree)
        raise
    return tree, files


def _apply(
    handle: IO[bytes],
    uri: str,
    *,
    session_id: str,
    serial: int,
    rsync_base: str,
    tree: Path,
    files: dict[str, str],
) -> None:
    """Apply one delta to ``tree`` and ``files``; :class:`_StaleError` when an object it replaces or
    withdraws is not the cached one (or one it adds is already there)."""
    elements = _parse(handle, uri, "delta")
    _same(next(elements), session_id, serial, uri)
    for count, element in enumerate(elements, start=1):
        name = _local(element)
        if count > MAX_OBJECTS or name not in ("publish", "withdraw"):
            raise RemoteError(
                f"{uri}: more than {MAX_OBJECTS} objects, or an element other than <publish> and "
                f"<withdraw>; {_FIX_SERVER}"
            )
        object_uri = element.get("uri") or ""
        path = relative_path(object_uri, rsync_base)
        if path is None:
            continue
        replaces = element.get("hash")
        if name == "withdraw" and replaces is None:
            raise RemoteError(f"{uri}: the withdrawal of {object_uri[:200]} names no hash; {_FIX_SERVER}")
        expected = None if replaces is None else _hash(replaces, uri, object_uri[:200])
        if files.get(path) != expected:
            raise _StaleError(object_uri)
        if expected is not None:
            remove_object(tree, path)
            del files[path]
        if name == "publish":
            if len(files) >= MAX_OBJECTS:
                raise RemoteError(f"{uri}: more than {MAX_OBJECTS} objects; {_FIX_SERVER}")
            files[path] = _write(tree, path, _content(element, object_uri, uri), object_uri, uri)
