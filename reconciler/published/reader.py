"""Read an rsync publication tree into memory and decode its objects on demand."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reconciler.fsutil import read_bytes
from reconciler.published import decoded
from reconciler.published.memo import Memo, RoaSummary, texts
from reconciler.resources import Resources
from reconciler.rpki import cert, cms, crl, manifest, roa

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
    _cache: dict[str, object] = field(default_factory=dict, repr=False)
    _hashes: dict[str, bytes] = field(default_factory=dict, repr=False)
    _summaries: dict[str, RoaSummary | Unreadable] = field(default_factory=dict, repr=False)
    _listing: dict[str, list[str]] | None = field(default=None, repr=False)
    _tree: str | None = field(default=None, repr=False)

    def sha256(self, path: str) -> bytes:
        digest = self._hashes.get(path)
        if digest is None:
            digest = self._hashes[path] = hashlib.sha256(self.files[path]).digest()
        return digest

    def tree_digest(self) -> str:
        """:func:`tree_digest` of the files read back; worked out once, for the plan and the apply after it
        both compare it with what RRDP last published."""
        if self._tree is None:
            self._tree = tree_digest(self.files, self.digest_of)
        return self._tree

    def digest_of(self, path: str, data: bytes) -> bytes:
        """The SHA-256 of ``data`` to be published at ``path``: remembered when it is the file read back
        (an unchanged file of a new tree), computed otherwise. A :data:`DigestOf`."""
        return self.sha256(path) if self.files.get(path) is data else hashlib.sha256(data).digest()

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
        row = self.memo.objects.get(digest)
        if row is not None and row[:2] == [kind, digest.hex()]:  # a row moved from another key: not this
            try:
                self._cache[path] = _REBUILD[kind](row[2:], data)
                return self._cache[path]
            except (ValueError, TypeError, KeyError, IndexError, AttributeError):
                pass  # a damaged memo: decode the bytes as if it did not know them
        found = self._decode(path, _DECODE[kind])
        if not isinstance(found, Unreadable):
            _remember_row(self.memo, kind, digest, found, data)
        return found

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

    def manifest(self, path: str) -> SignedManifest | Unreadable | None:
        if path not in self.files:
            return None
        result = self._remembered(path, decoded.MANIFEST)
        assert isinstance(result, SignedManifest | Unreadable)  # noqa: S101 - narrowing
        return result

    def signed_with(self, path: str, key: bytes) -> bool:
        """Whether the memo knows the object at ``path`` to carry a valid signature of CA key ``key``."""
        return self.memo.signed_with(self.sha256(path), key)

    def remember_signed_with(self, path: str, key: bytes) -> None:
        self.memo.remember_signed_with(self.sha256(path), key)

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


_DECODE: dict[str, Callable[[bytes, str], object]] = {
    decoded.CERTIFICATE: _decode_certificate,
    decoded.CRL: _decode_crl,
    decoded.MANIFEST: _decode_manifest,
}
_ROW: dict[str, Callable[[Any, bytes], decoded.Row | None]] = {
    decoded.CERTIFICATE: lambda found, _: decoded.certificate_row(found),
    decoded.CRL: lambda found, _: decoded.crl_row(found),
    decoded.MANIFEST: _manifest_row,
}
_REBUILD: dict[str, Callable[[decoded.Row, bytes], object]] = {
    decoded.CERTIFICATE: decoded.certificate_from_row,
    decoded.CRL: decoded.crl_from_row,
    decoded.MANIFEST: _manifest_from_row,
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


def read(rsync_dir: Path) -> PublishedState:
    """Read every regular file below ``rsync_dir`` (following the top-level symlink); missing -> empty.
    Symbolic links inside the tree are not followed: nothing outside it is ever published."""
    state = PublishedState()
    if not rsync_dir.exists():
        return state
    found: list[tuple[str, str]] = []
    _walk(str(rsync_dir.resolve()), "", found)
    for relative, full in sorted(found):
        state.files[relative] = read_bytes(full)
    return state


def _walk(directory: str, prefix: str, found: list[tuple[str, str]]) -> None:
    with os.scandir(directory) as entries:
        for entry in entries:
            if entry.is_dir(follow_symlinks=False):
                _walk(entry.path, f"{prefix}{entry.name}/", found)
            elif entry.is_file(follow_symlinks=False):
                found.append((prefix + entry.name, entry.path))
