"""Read an rsync publication tree into memory and decode its objects on demand."""

from __future__ import annotations

import errno
import hashlib
import os
import stat
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from reconciler.fsutil import file_kind
from reconciler.layout import PUBLISHERS
from reconciler.published import decoded
from reconciler.published.memo import Memo, RoaSummary, texts
from reconciler.resources import Resources
from reconciler.rpki import aspa, cert, cms, crl, kinds, manifest, roa, router

#: The SHA-256 of a file of a tree, from its path and bytes (a caller may know it, and save the hashing).
DigestOf = Callable[[str, bytes], bytes]


def hash_bytes(_path: str, data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def tree_digest(files: Mapping[str, bytes], digest_of: DigestOf = hash_bytes) -> str:
    """One digest of a whole tree: its paths and their files' SHA-256, in path order."""
    tree = hashlib.sha256()
    for path in sorted(files):
        tree.update(f"{path}\0{digest_of(path, files[path]).hex()}\n".encode())
    return tree.hexdigest()


@dataclass(frozen=True, slots=True)
class Unreadable:
    """A published file that exists but cannot be decoded; ``reason`` says why."""

    reason: str


@dataclass(frozen=True, slots=True)
class SignedRoa:
    signed: cms.SignedObject
    content: roa.RoaContent


@dataclass(frozen=True, slots=True)
class SignedManifest:
    signed: cms.SignedObject
    content: manifest.ManifestContent


@dataclass
class PublishedState:
    """The files of the rsync tree (path relative to the rsync base -> bytes), decoded lazily."""

    files: dict[str, bytes] = field(default_factory=dict)
    memo: Memo = field(default_factory=Memo, repr=False)
    #: The external publishers' objects (``publishers/<handle>/...`` -> bytes): served with ours, but
    #: never this tree's objects -- nothing plans, decodes or counts them; apply carries them over.
    foreign: dict[str, bytes] = field(default_factory=dict)
    #: Entries of the tree that are not published objects and were not read (a symbolic link, a FIFO,
    #: a directory inside a CA's directory...): relative path (a directory's ending with '/') -> why.
    damage: dict[str, str] = field(default_factory=dict)
    #: Why the served tree itself could not be read (the ``rsync`` link loops, or leads outside the
    #: publication directory); None when it was read, or when nothing is published yet.
    unusable: str | None = None
    _cache: dict[str, object] = field(default_factory=dict, repr=False)
    _hashes: dict[str, bytes] = field(default_factory=dict, repr=False)
    _summaries: dict[str, RoaSummary | Unreadable] = field(default_factory=dict, repr=False)
    _listing: dict[str, list[str]] | None = field(default=None, repr=False)
    _tree: str | None = field(default=None, repr=False)
    _served: str | None = field(default=None, repr=False)
    #: The SHA-256 of foreign objects, by path, with the very bytes object it is of.
    _foreign_hashes: dict[str, tuple[bytes, bytes]] = field(default_factory=dict, repr=False)

    def sha256(self, path: str) -> bytes:
        digest = self._hashes.get(path)
        if digest is None:
            digest = self._hashes[path] = hashlib.sha256(self.files[path]).digest()
        return digest

    def tree_digest(self) -> str:
        """:func:`tree_digest` of this tree's own files read back (what a plan observes); worked out once."""
        if self._tree is None:
            self._tree = tree_digest(self.files, self.digest_of)
        return self._tree

    def served_files(self) -> dict[str, bytes]:
        """Every file the tree serves: this tree's and the external publishers' (what RRDP publishes)."""
        return {**self.files, **self.foreign} if self.foreign else self.files

    def served_digest(self) -> str:
        """:func:`tree_digest` of :meth:`served_files`: what RRDP's snapshot is compared with."""
        if not self.foreign:
            return self.tree_digest()
        if self._served is None:
            self._served = tree_digest(self.served_files(), self.digest_of)
        return self._served

    def digest_of(self, path: str, data: bytes) -> bytes:
        """The SHA-256 of ``data`` to be published at ``path``: remembered when it is the file read back
        (an unchanged file of a new tree) or a foreign object hashed before, computed otherwise. A
        :data:`DigestOf`."""
        if self.files.get(path) is data:
            return self.sha256(path)
        known = self._foreign_hashes.get(path)
        if known is not None and known[0] is data:
            return known[1]
        digest = hashlib.sha256(data).digest()
        if self.foreign.get(path) is data:
            self._foreign_hashes[path] = (data, digest)
        return digest

    def drop(self, path: str) -> None:
        """Forget the file at ``path``, as if it had not been read (see :meth:`put`)."""
        if self.files.pop(path, None) is None:
            return
        for known in (self._cache, self._hashes, self._summaries):
            known.pop(path, None)
        self._listing = self._tree = self._served = None

    def put(self, path: str, data: bytes) -> None:
        """Hold ``data`` at ``path`` as if it had been read there, forgetting what was worked out of the
        file it replaces: the certificate an external parent issued us, which it publishes in its own
        repository, stands where the trust anchor's would (see ``upstream.effective``)."""
        if self.files.get(path) == data:
            return
        self.files[path] = data
        for known in (self._cache, self._hashes, self._summaries):
            known.pop(path, None)
        self._listing = self._tree = self._served = None

    def with_foreign(self, foreign: dict[str, bytes], served_digest: str | None = None) -> PublishedState:
        """This tree with ``foreign`` as its external publishers' part: the state a publication server
        has just published, kept for its next publication so that the tree need not be read back. What
        was worked out of our own files (hashes, decoded objects, the tree's digest) and the hashes of
        the foreign objects still there are kept (not :attr:`damage`: a tree written anew has none);
        ``served_digest``, when known, is the new :meth:`served_digest`."""
        hashes = {
            path: known for path, known in self._foreign_hashes.items() if foreign.get(path) is known[0]
        }
        return PublishedState(  # a tree written anew: no damage in it
            files=self.files,
            memo=self.memo,
            foreign=foreign,
            _cache=self._cache,
            _hashes=self._hashes,
            _summaries=self._summaries,
            _listing=self._listing,
            _tree=self._tree,
            _served=served_digest,
            _foreign_hashes=hashes,
        )

    def _decode(self, path: str, decoder: object) -> object:
        if path not in self._cache:
            try:
                self._cache[path] = decoder(self.files[path], path)  # type: ignore[operator]
            except ValueError as exc:
                self._cache[path] = Unreadable(str(exc))
        return self._cache[path]

    def _remembered(self, path: str, kind: str) -> object:
        """The decoded object of ``path`` (a certificate, CRL or manifest), rebuilt from the memo when these
        very bytes were decoded before (see ``published.decoded``), decoded and remembered otherwise."""
        if path in self._cache:
            return self._cache[path]
        data, digest = self.files[path], self.sha256(path)
        row = self._memo_row(path, kind)
        if row is not None:
            try:
                self._cache[path] = _REBUILD[kind](row, data)
                return self._cache[path]
            except (ValueError, TypeError, KeyError, IndexError, AttributeError):
                pass  # a damaged memo: decode the bytes as if it did not know them
        found = self._decode(path, _DECODE[kind])
        if not isinstance(found, Unreadable):
            _remember_row(self.memo, kind, digest, found, data)
        return found

    def _memo_row(self, path: str, kind: str) -> decoded.Row | None:
        """What the memo says decoding the file at ``path`` found (a row of ``published.decoded``); None
        when it does not know these bytes as an object of ``kind`` (a row moved from another key is not
        this file's)."""
        digest = self.sha256(path)
        row = self.memo.objects.get(digest)
        return row[2:] if row is not None and row[:2] == [kind, digest.hex()] else None

    def certificate(self, path: str) -> cert.ResourceCertificate | Unreadable | None:
        if path not in self.files:
            return None
        result = self._remembered(path, decoded.CERTIFICATE)
        assert isinstance(result, cert.ResourceCertificate | Unreadable)  # noqa: S101 - narrowing
        return result

    def crl(self, path: str) -> crl.Crl | Unreadable | None:
        if path not in self.files:
            return None
        result = self._remembered(path, decoded.CRL)
        assert isinstance(result, crl.Crl | Unreadable)  # noqa: S101 - narrowing
        return result

    def roa(self, path: str) -> SignedRoa | Unreadable | None:
        if path not in self.files:
            return None
        result = self._decode(path, _decode_roa)
        assert isinstance(result, SignedRoa | Unreadable)  # noqa: S101 - narrowing
        return result

    def roa_summary(self, path: str) -> RoaSummary | Unreadable | None:
        """What a plan checks of a ROA, from the memo when these very bytes were read before; kept by path
        too, for a plan asks for each ROA three times (its check, the VRPs before, the gates)."""
        known = self._summaries.get(path)
        if known is not None or path not in self.files:
            return known
        digest = self.sha256(path)
        known = self.memo.get(digest)
        if known is None:
            found = self.roa(path)
            if isinstance(found, Unreadable):
                self._summaries[path] = found
            if not isinstance(found, SignedRoa):
                return found
            known = summarize(found)
            self.memo.remember(digest, known)
        self._summaries[path] = known
        return known

    def signed(self, path: str) -> kinds.Signed[object] | Unreadable | None:
        """The signed object at ``path``, of the type its name says (see ``rpki.kinds``); None when there
        is no such file or its name is not that of a signed object."""
        kind = kinds.of(path)
        if kind is None or path not in self.files:
            return None
        if kind is kinds.ASPA:  # remembered by digest: a CA may hold a thousand, each read every plan
            result = self._remembered(path, decoded.ASPA)
        else:
            result = self._decode(path, partial(kinds.decode, kind))
        assert isinstance(result, kinds.Signed | Unreadable)  # noqa: S101 - narrowing
        return result

    def router(self, path: str) -> router.RouterCertificate | Unreadable | None:
        """The BGPsec router certificate at ``path`` (RFC 8209)."""
        if path not in self.files:
            return None
        result = self._decode(path, _decode_router)
        assert isinstance(result, router.RouterCertificate | Unreadable)  # noqa: S101 - narrowing
        return result

    def manifest(self, path: str) -> SignedManifest | Unreadable | None:
        if path not in self.files:
            return None
        result = self._remembered(path, decoded.MANIFEST)
        assert isinstance(result, SignedManifest | Unreadable)  # noqa: S101 - narrowing
        return result

    def manifest_number(self, path: str) -> int | None:
        """The number of the manifest at ``path`` (None when it is missing or unreadable): read from its
        memo row when these very bytes were decoded before, as :meth:`manifest` would rebuild it. A plan
        records every CA's manifest number (``plan.diff.observe``), and rebuilding each manifest in full
        for it was a good part of a registry's plan."""
        known = path in self.files and path not in self._cache
        row = self._memo_row(path, decoded.MANIFEST) if known else None
        if row is not None:
            try:
                return decoded.manifest_number(row)
            except decoded.RowError:
                pass  # a damaged row: decode the bytes as if it did not know them
        found = self.manifest(path)
        return found.content.number if isinstance(found, SignedManifest) else None

    def signed_with(self, path: str, key: bytes) -> bool:
        """Whether the memo knows the object at ``path`` to carry a valid signature of CA key ``key``."""
        return self.memo.signed_with(self.sha256(path), key)

    def remember_signed_with(self, path: str, key: bytes) -> None:
        self.memo.remember_signed_with(self.sha256(path), key)

    def signature_holds(self, path: str, key: bytes, check: Callable[[], bool]) -> bool:
        """``check()`` of CA key ``key``'s signature on the object at ``path``, remembered when it holds:
        the same bytes with the same key are not checked again, in this run or the next (the memo).
        ``check`` must verify against ``key``'s public key: what is remembered is taken as checked."""
        if self.signed_with(path, key):
            return True
        if not check():
            return False
        self.remember_signed_with(path, key)
        return True

    def digests(self) -> set[bytes]:
        """The SHA-256 of every file: what the memo keeps when it is saved."""
        return {self.sha256(path) for path in self.files}

    def under(self, directory: str) -> list[str]:
        """File names directly inside ``directory`` (relative, ending with '/'), sorted. Listed once for
        the whole tree: asking per CA must not cost a pass over every file of every CA."""
        if self._listing is None:
            listing: dict[str, list[str]] = {}
            for path in sorted(self.files):
                parent, _, name = path.rpartition("/")
                listing.setdefault(parent + "/" if parent else "", []).append(name)
            self._listing = listing
        return list(self._listing.get(directory, ()))

    def directories(self) -> set[str]:
        return {path.split("/", 1)[0] + "/" for path in self.files if "/" in path}


def summarize(found: SignedRoa) -> RoaSummary:
    ee = found.signed.ee
    return RoaSummary(
        asn=found.content.asn,
        prefixes=texts(found.content),
        authority_key_id=ee.authority_key_id,
        serial=ee.serial,
        not_before=ee.not_before,
        not_after=ee.not_after,
        signed_object=ee.signed_object,
        crldp=ee.crldp,
        aia=ee.aia,
        resources_match=ee.resources.resources
        == Resources.of_prefixes(p.prefix for p in found.content.prefixes),
    )


def _decode_roa(der: bytes, where: str) -> SignedRoa:
    signed = cms.decode(der, where=where)
    if signed.content_type != roa.CONTENT_TYPE:
        raise roa.RoaError(f"{where}: eContentType is not a ROA")
    return SignedRoa(signed, roa.decode(signed.econtent, where=where))


def _decode_router(der: bytes, where: str) -> router.RouterCertificate:
    return router.decode(der, where=where)


def _decode_manifest(der: bytes, where: str) -> SignedManifest:
    signed = cms.decode(der, where=where)
    if signed.content_type != manifest.CONTENT_TYPE:
        raise manifest.ManifestError(f"{where}: eContentType is not a manifest")
    return SignedManifest(signed, manifest.decode(signed.econtent, where=where))


def _decode_certificate(der: bytes, where: str) -> cert.ResourceCertificate:
    return cert.decode(der, where=where)


def _decode_crl(der: bytes, where: str) -> crl.Crl:
    return crl.decode(der, where=where)


def _manifest_row(found: object, der: bytes) -> decoded.Row | None:
    assert isinstance(found, SignedManifest)  # noqa: S101 - narrowing
    return decoded.manifest_row(found.signed, found.content, der)


def _manifest_from_row(row: decoded.Row, der: bytes) -> SignedManifest:
    return SignedManifest(*decoded.manifest_from_row(row, der))


def _decode_aspa(der: bytes, where: str) -> kinds.Signed[aspa.AspaContent]:
    return kinds.decode(kinds.ASPA, der, where)


def _aspa_row(found: object, der: bytes) -> decoded.Row | None:
    assert isinstance(found, kinds.Signed) and isinstance(found.content, aspa.AspaContent)  # noqa: S101
    return decoded.aspa_row(found.signed, found.content, der)


def _aspa_from_row(row: decoded.Row, der: bytes) -> kinds.Signed[aspa.AspaContent]:
    return kinds.Signed(kinds.ASPA, *decoded.aspa_from_row(row, der))


_DECODE: dict[str, Callable[[bytes, str], object]] = {
    decoded.CERTIFICATE: _decode_certificate,
    decoded.CRL: _decode_crl,
    decoded.MANIFEST: _decode_manifest,
    decoded.ASPA: _decode_aspa,
}
_ROW: dict[str, Callable[[Any, bytes], decoded.Row | None]] = {
    decoded.CERTIFICATE: lambda found, _: decoded.certificate_row(found),
    decoded.CRL: lambda found, _: decoded.crl_row(found),
    decoded.MANIFEST: _manifest_row,
    decoded.ASPA: _aspa_row,
}
_REBUILD: dict[str, Callable[[decoded.Row, bytes], object]] = {
    decoded.CERTIFICATE: decoded.certificate_from_row,
    decoded.CRL: decoded.crl_from_row,
    decoded.MANIFEST: _manifest_from_row,
    decoded.ASPA: _aspa_from_row,
}


def remember_decoded(memo: Memo, path: str, data: bytes, digest: bytes) -> None:
    """Decode a certificate, CRL or manifest about to be published, and remember what it says, so that
    the next plan need not decode it. Anything else, or anything that does not decode, is left alone."""
    kind = path.rsplit(".", 1)[-1]
    if kind not in _DECODE or digest in memo.objects:
        return
    try:
        found = _DECODE[kind](data, path)
    except ValueError:
        return
    _remember_row(memo, kind, digest, found, data)


def _remember_row(memo: Memo, kind: str, digest: bytes, found: object, data: bytes) -> None:
    """Remember what decoding ``data`` found, with its kind and digest (the row is checked against both
    when it is used)."""
    described = _ROW[kind](found, data)
    if described is not None:
        memo.remember_object(digest, [kind, digest.hex(), *described])


def read(rsync_dir: Path, *, foreign: bool = True) -> PublishedState:
    """Read the published objects below ``rsync_dir``; missing -> empty. ``foreign=False`` leaves the
    external publishers' tree (``publishers/``) unread and :attr:`PublishedState.foreign` empty: for a
    reader of our own objects only (the RFC 6492 parent), to whom thousands of a publisher's files are
    only time.

    The publication directory is written by the reconciler but served by others, so what is found there
    is input, not memory: only regular files are read, and nothing is ever followed out of the tree.
    ``rsync_dir`` itself may be the link apply maintains (``rsync -> trees/<id>``), but only to a
    directory inside the publication directory (else :attr:`PublishedState.unusable` says why, and the
    tree reads as empty). Below it no symbolic link is followed and no FIFO, socket or device is opened
    (a FIFO would block the read for ever); such entries, directories where only objects belong, and
    empty directories are recorded in :attr:`PublishedState.damage` for the plan to repair."""
    state = PublishedState()
    try:
        root = served_tree(rsync_dir)
    except UnusableTreeError as problem:
        state.unusable = str(problem)
        return state
    if root is None:
        return state
    try:
        fd = os.open(root, _DIRECTORY)
    except OSError as exc:
        state.unusable = f"{rsync_dir} cannot be read: {exc.strerror}"
        return state
    try:
        _walk(fd, "", state, foreign=foreign)
    finally:
        os.close(fd)
    state.files = dict(sorted(state.files.items()))
    state.foreign = dict(sorted(state.foreign.items()))
    return state


def read_foreign(rsync_dir: Path, directory: str) -> dict[str, bytes]:
    """The files of the served tree below ``directory`` (a publisher's, ``publishers/<handle>/``), read
    as :func:`read` reads ``publishers/`` but without reading the rest of the tree: what an RFC 8181
    list reply shows. Empty when nothing is published there; raises :class:`UnusableTreeError` or
    OSError when the served tree cannot be read."""
    root = served_tree(rsync_dir)
    if root is None:
        return {}
    parts = directory.strip("/").split("/")
    state = PublishedState()
    try:
        fd = _descend(os.open(root, _DIRECTORY), parts[:-1])
    except FileNotFoundError:
        return {}
    try:
        _foreign(fd, parts[-1], "/".join(parts), state, len(parts) - 1)
    except FileNotFoundError:
        return {}
    finally:
        os.close(fd)
    return dict(sorted(state.foreign.items()))


def _descend(directory: int, parts: Sequence[str]) -> int:
    """The directory ``parts`` below the open ``directory``, opened one level at a time without following
    a symbolic link; ``directory`` is closed (on error too) and the returned descriptor is the caller's."""
    try:
        for part in parts:
            below = os.open(part, _DIRECTORY, dir_fd=directory)
            os.close(directory)
            directory = below
    except BaseException:
        os.close(directory)
        raise
    return directory


class UnusableTreeError(Exception):
    """The publication directory's ``rsync`` entry does not lead to a tree that may be read."""


#: Opening an entry of the tree: never through a symbolic link, never waiting on a FIFO.
_FILE = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
_DIRECTORY = os.O_RDONLY | os.O_NOFOLLOW | os.O_DIRECTORY | os.O_CLOEXEC
#: Objects are in the tree's top level (the trust anchor's certificate) or in a CA's directory.
_DEEPEST = 1
#: Below ``publishers/``: the handle's directory, then as deep as a publisher's own layout goes (Krill
#: publishes in ``<sia_base>0/``; a publisher with child CAs of its own nests further).
FOREIGN_DEEPEST = 8
#: Most published files are a few kilobytes: one read takes them whole.
_READ = 1 << 16
#: No RPKI object comes near this (a manifest of 100,000 entries is 7 MB); a larger file is not read,
#: so a planted one cannot take the plan's memory.
LARGEST_OBJECT = 64 << 20


def served_tree(rsync_dir: Path) -> str | None:
    """The real directory ``rsync_dir`` is (or links to); None when there is none (nothing published
    yet, or a link to a tree that is gone: a lost publication point, rebuilt by the next apply). Raises
    :class:`UnusableTreeError` when it loops, is not a directory, or leads outside its parent (the
    publication directory)."""
    try:
        found = os.lstat(rsync_dir)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise UnusableTreeError(f"{rsync_dir} cannot be read: {exc.strerror}") from exc
    if stat.S_ISDIR(found.st_mode):
        return str(rsync_dir)
    if not stat.S_ISLNK(found.st_mode):
        raise UnusableTreeError(f"{rsync_dir} is {file_kind(found.st_mode)}, not the served tree")
    target = str(rsync_dir.readlink())
    try:
        real = os.path.realpath(rsync_dir, strict=True)
    except FileNotFoundError:
        return None  # a dangling link: the tree it named is gone, as if nothing were published
    except OSError as exc:
        raise UnusableTreeError(f"{rsync_dir} -> {target} cannot be followed: {exc.strerror}") from exc
    publication = os.path.realpath(rsync_dir.parent)
    if not real.startswith(publication.rstrip(os.sep) + os.sep):
        raise UnusableTreeError(f"{rsync_dir} -> {target} leads outside {publication}: not read")
    if not stat.S_ISDIR(os.lstat(real).st_mode):
        raise UnusableTreeError(f"{rsync_dir} -> {target} is not a directory")
    return real


def open_regular(path: Path, within: Path) -> int:
    """A descriptor of the regular file ``path``, reached from the directory ``within`` without following
    any symbolic link on the way (``within`` included) and without waiting on a FIFO: for files of the
    publication directory read back (RRDP's snapshot and deltas), which must never lead elsewhere.
    Raises OSError when it cannot be reached so."""
    parts = path.relative_to(within).parts
    if not parts:
        raise IsADirectoryError(errno.EISDIR, "not a file", str(path))
    directory = _descend(os.open(within, _DIRECTORY), parts[:-1])
    try:
        fd = os.open(parts[-1], _FILE, dir_fd=directory)
    finally:
        os.close(directory)
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        raise OSError(errno.EINVAL, f"{file_kind(mode)}, not a regular file", str(path))
    return fd


def not_a_directory(path: Path) -> str | None:
    """Why ``path`` cannot be used as a directory of the publication (it is a symbolic link, a file, a
    FIFO...); None when it is a directory or missing. For the directories apply writes and plan reads
    (``rrdp/``): what is there must be theirs, never followed elsewhere."""
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return None
    except OSError as exc:
        return f"{path} cannot be read: {exc.strerror}"
    return None if stat.S_ISDIR(mode) else f"{path} is {file_kind(mode)}, not a directory"


def _walk(
    directory: int, prefix: str, state: PublishedState, depth: int = 0, *, foreign: bool = True
) -> None:
    """Read the regular files of the open ``directory``, and, at the top, of its sub-directories (the
    publishers' only with ``foreign``)."""
    with os.scandir(directory) as entries:
        listed = list(entries)
    for entry in listed:
        relative = prefix + entry.name
        try:
            if depth == 0 and entry.name == PUBLISHERS and entry.is_dir(follow_symlinks=False):
                if foreign:
                    _foreign(directory, entry.name, relative, state)
            elif entry.is_dir(follow_symlinks=False):
                _subdirectory(directory, entry.name, relative, state, depth)
            elif entry.is_file(follow_symlinks=False):
                _read_file(directory, entry.name, relative, state)
            else:
                mode = entry.stat(follow_symlinks=False).st_mode
                state.damage[relative] = _describe(directory, entry.name, mode)
        except OSError as exc:
            state.damage[relative] = f"cannot be read: {exc.strerror}"


def _subdirectory(parent: int, name: str, relative: str, state: PublishedState, depth: int) -> None:
    if depth >= _DEEPEST:
        state.damage[relative + "/"] = "a directory where only published objects belong: not read"
        return
    fd = os.open(name, _DIRECTORY, dir_fd=parent)
    try:
        before = len(state.files) + len(state.damage)
        _walk(fd, relative + "/", state, depth + 1)
        if len(state.files) + len(state.damage) == before:
            state.damage[relative + "/"] = "an empty directory"
    finally:
        os.close(fd)


def _foreign(parent: int, name: str, relative: str, state: PublishedState, depth: int = 0) -> None:
    """Read the external publishers' tree (``publishers/``) into :attr:`PublishedState.foreign`, to any
    depth up to :data:`FOREIGN_DEEPEST` (a publisher lays out its repository as it likes), with the same
    care as the rest: no link followed, no FIFO opened."""
    fd = os.open(name, _DIRECTORY, dir_fd=parent)
    try:
        with os.scandir(fd) as entries:
            listed = list(entries)
        for entry in listed:
            below = f"{relative}/{entry.name}"
            try:
                if entry.is_dir(follow_symlinks=False):
                    if depth >= FOREIGN_DEEPEST:
                        state.damage[below + "/"] = "a directory deeper than any publisher's: not read"
                    else:
                        _foreign(fd, entry.name, below, state, depth + 1)
                elif entry.is_file(follow_symlinks=False):
                    _read_file(fd, entry.name, below, state, state.foreign)
                else:
                    state.damage[below] = _describe(fd, entry.name, entry.stat(follow_symlinks=False).st_mode)
            except OSError as exc:
                state.damage[below] = f"cannot be read: {exc.strerror}"
        if not listed:
            state.damage[relative + "/"] = "an empty directory"
    finally:
        os.close(fd)


def _read_file(
    directory: int, name: str, relative: str, state: PublishedState, into: dict[str, bytes] | None = None
) -> None:
    """Read a regular file through its directory (into ``state.files`` unless ``into`` says otherwise);
    an entry replaced since it was listed (by a link or a FIFO) is damage, never followed or waited on."""
    try:
        fd = os.open(name, _FILE, dir_fd=directory)
    except OSError:
        mode = os.stat(name, dir_fd=directory, follow_symlinks=False).st_mode
        if stat.S_ISREG(mode):
            raise
        state.damage[relative] = _describe(directory, name, mode)
        return
    try:
        found = os.fstat(fd)
        if not stat.S_ISREG(found.st_mode):
            state.damage[relative] = _describe(directory, name, found.st_mode)
            return
        if found.st_size > LARGEST_OBJECT:
            state.damage[relative] = f"{found.st_size} bytes, larger than any RPKI object: not read"
            return
        data = os.read(fd, _READ)
        if data:
            pieces = [data]
            while piece := os.read(fd, _READ):
                pieces.append(piece)
            data = pieces[0] if len(pieces) == 1 else b"".join(pieces)
        (state.files if into is None else into)[relative] = data
    finally:
        os.close(fd)


def _describe(directory: int, name: str, mode: int) -> str:
    kind = file_kind(mode)
    if stat.S_ISLNK(mode):
        target = os.readlink(name, dir_fd=directory)
        shown = target if len(target) <= 80 else target[:77] + "..."
        return f"{kind} (to {shown!r}): never followed"
    return f"{kind}: never read"
