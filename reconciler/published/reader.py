"""Read an rsync publication tree into memory and decode its objects on demand."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

from reconciler.rpki import cert, cms, crl, manifest, roa


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
    _cache: dict[str, object] = field(default_factory=dict, repr=False)

    def sha256(self, path: str) -> bytes:
        return hashlib.sha256(self.files[path]).digest()

    def _decode(self, path: str, decoder: object) -> object:
        if path not in self._cache:
            try:
                self._cache[path] = decoder(self.files[path], path)  # type: ignore[operator]
            except ValueError as exc:
                self._cache[path] = Unreadable(str(exc))
        return self._cache[path]

    def certificate(self, path: str) -> cert.ResourceCertificate | Unreadable | None:
        if path not in self.files:
            return None
        result = self._decode(path, lambda der, where: cert.decode(der, where=where))
        assert isinstance(result, cert.ResourceCertificate | Unreadable)  # noqa: S101 - narrowing
        return result

    def crl(self, path: str) -> crl.Crl | Unreadable | None:
        if path not in self.files:
            return None
        result = self._decode(path, lambda der, where: crl.decode(der, where=where))
        assert isinstance(result, crl.Crl | Unreadable)  # noqa: S101 - narrowing
        return result

    def roa(self, path: str) -> SignedRoa | Unreadable | None:
        if path not in self.files:
            return None
        result = self._decode(path, _decode_roa)
        assert isinstance(result, SignedRoa | Unreadable)  # noqa: S101 - narrowing
        return result

    def manifest(self, path: str) -> SignedManifest | Unreadable | None:
        if path not in self.files:
            return None
        result = self._decode(path, _decode_manifest)
        assert isinstance(result, SignedManifest | Unreadable)  # noqa: S101 - narrowing
        return result

    def under(self, directory: str) -> list[str]:
        """File names directly inside ``directory`` (relative, ending with '/')."""
        return sorted(
            path[len(directory) :]
            for path in self.files
            if path.startswith(directory) and "/" not in path[len(directory) :]
        )

    def directories(self) -> set[str]:
        return {path.split("/", 1)[0] + "/" for path in self.files if "/" in path}


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


def read(rsync_dir: Path) -> PublishedState:
    """Read every regular file below ``rsync_dir`` (following the top-level symlink); missing -> empty."""
    state = PublishedState()
    if not rsync_dir.exists():
        return state
    root = rsync_dir.resolve()
    for path in sorted(root.rglob("*")):
        if path.is_file() and not path.is_symlink():
            state.files[path.relative_to(root).as_posix()] = path.read_bytes()
    return state
