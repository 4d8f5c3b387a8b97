"""Manifests (RFC 9286): the eContent, encode and decode.

File names follow RFC 9286 §4.2.2 as rpki-client enforces it: ``[A-Za-z0-9._-]`` with exactly one dot.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from asn1crypto import core

from reconciler.rpki import asn1, oids

CONTENT_TYPE = oids.CT_MANIFEST
FILE_NAME = re.compile(r"^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$")


class ManifestError(ValueError):
    """A manifest eContent that breaks RFC 9286."""


@dataclass(frozen=True, slots=True)
class ManifestContent:
    number: int
    this_update: datetime
    next_update: datetime
    files: tuple[tuple[str, bytes], ...]  # (file name, SHA-256), sorted by name


def _hash_bits(digest: bytes) -> core.BitString:
    return core.BitString.load(b"\x03" + bytes([len(digest) + 1, 0]) + digest)


def encode(content: ManifestContent) -> bytes:
    for name, digest in content.files:
        if not FILE_NAME.match(name) or len(digest) != 32:
            raise ManifestError(f"RFC 9286 §4.2.2: bad manifest entry {name!r}")
    file_list = [
        asn1.FileAndHash({"file": name, "hash": _hash_bits(digest)}) for name, digest in sorted(content.files)
    ]
    return bytes(
        asn1.Manifest(
            {
                "manifestNumber": content.number,
                "thisUpdate": core.GeneralizedTime(content.this_update),
                "nextUpdate": core.GeneralizedTime(content.next_update),
                "fileHashAlg": oids.SHA256,
                "fileList": file_list,
            }
        ).dump()
    )


def decode(econtent: bytes, *, where: str = "manifest") -> ManifestContent:
    try:
        mft = asn1.Manifest.load(econtent)
        if mft["version"].native != 0:
            raise ManifestError(f"{where}: RFC 9286 §4.2.1: version must be 0")
        if mft["fileHashAlg"].dotted != oids.SHA256:
            raise ManifestError(f"{where}: RFC 9286 §4.2.1: file hash algorithm is not SHA-256")
        files = []
        for entry in mft["fileList"]:
            contents = entry["hash"].contents
            if contents[0] != 0 or len(contents) != 33:
                raise ManifestError(f"{where}: RFC 9286 §4.2.1: a file hash is not 256 bits")
            files.append((entry["file"].native, contents[1:]))
        return ManifestContent(
            mft["manifestNumber"].native, mft["thisUpdate"].native, mft["nextUpdate"].native, tuple(files)
        )
    except (ValueError, KeyError, TypeError) as exc:
        if isinstance(exc, ManifestError):
            raise
        raise ManifestError(f"{where}: not a readable manifest: {exc}") from exc
