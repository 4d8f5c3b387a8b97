"""Manifests (RFC 9286): the eContent, encode and decode.

File names follow RFC 9286 §4.2.2 as rpki-client enforces it: ``[A-Za-z0-9._-]`` with exactly one dot.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from reconciler.rpki import asn1, der, oids

CONTENT_TYPE = oids.CT_MANIFEST
_SHA256_OID = bytes.fromhex("0609608648016503040201")  # id-sha256, RFC 9286 §4.2.1
FILE_NAME = re.compile(r"^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$")


class ManifestError(ValueError):
    """A manifest eContent that breaks RFC 9286."""


@dataclass(frozen=True, slots=True)
class ManifestContent:
    number: int
    this_update: datetime
    next_update: datetime
    files: tuple[tuple[str, bytes], ...]  # (file name, SHA-256), sorted by name


def encode(content: ManifestContent) -> bytes:
    """The eContent in direct DER (see ``der``): thousands of entries in milliseconds."""
    entries = []
    for name, digest in sorted(content.files):
        if not FILE_NAME.match(name) or len(digest) != 32:
            raise ManifestError(f"RFC 9286 §4.2.2: bad manifest entry {name!r}")
        entries.append(der.sequence(der.ia5_string(name), der.bit_string(digest)))
    return der.sequence(
        der.integer(content.number),  # version 0 is the DEFAULT: DER omits it
        der.generalized_time(content.this_update),
        der.generalized_time(content.next_update),
        _SHA256_OID,
        der.tlv(0x30, b"".join(entries)),
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
