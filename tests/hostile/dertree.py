"""A small DER editor for the hostile-input tests: parse a value into a tree of TLVs, change it, and encode
it again with every enclosing length fixed, so that a test can plant an element or trailing bytes deep
inside an otherwise well-formed object."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field

from reconciler.rpki import der


@dataclass
class Tlv:
    """One value: its tag octet and either its children (constructed) or its contents (primitive)."""

    tag: int
    contents: bytes = b""
    children: list[Tlv] = field(default_factory=list)

    @property
    def constructed(self) -> bool:
        return bool(self.tag & 0x20)

    def encode(self) -> bytes:
        body = b"".join(child.encode() for child in self.children) if self.constructed else self.contents
        return der.tlv(self.tag, body)

    def at(self, *path: int) -> Tlv:
        """The value reached by taking child ``path[0]``, then its child ``path[1]``, ..."""
        node = self
        for index in path:
            node = node.children[index]
        return node


def parse(data: bytes) -> Tlv:
    """The tree of a DER value (one-octet tags, definite lengths); the bytes must be exactly one value."""
    node, end = _parse(data, 0)
    if end != len(data):
        raise ValueError("trailing data")
    return node


def _parse(data: bytes, offset: int) -> tuple[Tlv, int]:
    tag, start, end = der.read_tlv(data, offset)
    if not tag & 0x20:
        return Tlv(tag, data[start:end]), end
    node = Tlv(tag)
    position = start
    while position < end:
        child, position = _parse(data, position)
        node.children.append(child)
    return node, end


def length_fields(data: bytes) -> list[tuple[int, int]]:
    """Where each length field of a value is: (offset of its first octet, its size in octets). BER's
    indefinite lengths (``0x80``, the contents ended by two zero octets) are followed too; anything
    malformed ends the list early."""
    found: list[tuple[int, int]] = []
    with contextlib.suppress(IndexError, ValueError):
        _lengths(data, 0, len(data), found, until_end_of_contents=False)
    return found


def _lengths(
    data: bytes, offset: int, limit: int, found: list[tuple[int, int]], *, until_end_of_contents: bool
) -> int:
    while offset < limit:
        if until_end_of_contents and data[offset : offset + 2] == b"\0\0":
            return offset + 2
        tag, first = data[offset], data[offset + 1]
        size = 1 if first <= 0x80 else 1 + (first & 0x7F)
        found.append((offset + 1, size))
        start = offset + 1 + size
        if first == 0x80:
            offset = _lengths(data, start, limit, found, until_end_of_contents=True)
            continue
        length = first if first < 0x80 else int.from_bytes(data[offset + 2 : start], "big")
        if tag & 0x20:
            _lengths(data, start, start + length, found, until_end_of_contents=False)
        offset = start + length
    if until_end_of_contents:
        raise ValueError("no end-of-contents octets")
    return offset
