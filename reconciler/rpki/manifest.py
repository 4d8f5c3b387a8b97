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
        der.require_der(econtent, enter=2)  # the entries are checked by ``_file_list``
        mft = asn1.Manifest.load(econtent, strict=True)
        asn1.require_exact(mft, opaque=(asn1.FileList,))
        if mft["version"].native != 0:
            raise ManifestError(f"{where}: RFC 9286 §4.2.1: version must be 0")
        if mft["fileHashAlg"].dotted != oids.SHA256:
            raise ManifestError(f"{where}: RFC 9286 §4.2.1: file hash algorithm is not SHA-256")
        try:
            files = _file_list(mft["fileList"].contents)
        except der.DerShapeError:
            files = _file_list_asn1(mft["fileList"], where)
        return ManifestContent(
            mft["manifestNumber"].native, mft["thisUpdate"].native, mft["nextUpdate"].native, files
        )
    except ManifestError:
        raise
    except der.NotDerError as exc:
        raise ManifestError(f"{where}: RFC 6488 §3: the manifest eContent is not DER: {exc}") from exc
    except der.DECODE_ERRORS as exc:
        raise ManifestError(f"{where}: not a readable manifest: {exc}") from exc


def _file_list(contents: bytes) -> tuple[tuple[str, bytes], ...]:
    """The fileList read directly (see ``der``): each entry a SEQUENCE of an IA5String name and a BIT
    STRING of 256 bits with no unused bits. Anything else raises ``DerShapeError``, and asn1crypto reads
    the list and words the problem."""
    files = []
    offset = 0
    read = der.read_tlv
    while offset < len(contents):
        tag, start, end = read(contents, offset)
        if tag != 0x30:
            raise der.DerShapeError("not a FileAndHash")
        name_tag, name_start, name_end = read(contents, start)
        hash_tag, hash_start, hash_end = read(contents, name_end)
        if (
            name_tag != 0x16
            or hash_tag != 0x03
            or hash_end != end
            or hash_end - hash_start != 33
            or contents[hash_start] != 0
        ):
            raise der.DerShapeError("not a FileAndHash of a name and a SHA-256")
        name = contents[name_start:name_end]
        if not name.isascii():
            raise der.DerShapeError("not IA5")
        files.append((name.decode("ascii"), contents[hash_start + 1 : hash_end]))
        offset = end
    return tuple(files)


def _file_list_asn1(file_list: asn1.FileList, where: str) -> tuple[tuple[str, bytes], ...]:
    der.require_der(file_list.dump())
    asn1.require_exact(file_list)
    files = []
    for entry in file_list:
        contents = entry["hash"].contents
        if contents[0] != 0 or len(contents) != 33:
            raise ManifestError(f"{where}: RFC 9286 §4.2.1: a file hash is not 256 bits")
        files.append((entry["file"].native, contents[1:]))
    return tuple(files)
