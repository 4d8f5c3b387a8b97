"""Direct DER for the few fixed shapes the reconciler encodes and reads in bulk (a manifest's file list).

asn1crypto builds an object per value and costs about 45 µs per manifest entry; a manifest of a CA with
thousands of ROAs is re-encoded on every change and read on every plan, so its entries are written and read
here as bytes instead (about 1 µs each). The tests check the output byte for byte against asn1crypto's, and
the reading against asn1crypto's reading.
"""

from __future__ import annotations

from datetime import UTC, datetime


def length(size: int) -> bytes:
    """X.690 §8.1.3: the short form below 128, else the long form with the fewest octets."""
    if size < 0x80:
        return bytes((size,))
    octets = size.to_bytes((size.bit_length() + 7) // 8, "big")
    return bytes((0x80 | len(octets),)) + octets


def tlv(tag: int, content: bytes) -> bytes:
    return bytes((tag,)) + length(len(content)) + content


def sequence(*parts: bytes) -> bytes:
    return tlv(0x30, b"".join(parts))


def integer(value: int) -> bytes:
    """X.690 §8.3: two's complement in the fewest octets (a leading 0x00 keeps a positive value positive)."""
    size = (value + (value < 0)).bit_length() // 8 + 1
    return tlv(0x02, value.to_bytes(size, "big", signed=True))


def ia5_string(text: str) -> bytes:
    return tlv(0x16, text.encode("ascii"))


def bit_string(data: bytes) -> bytes:
    """A BIT STRING of whole octets (no unused bits)."""
    return tlv(0x03, b"\x00" + data)


def octet_string(data: bytes) -> bytes:
    return tlv(0x04, data)


def prefix_bit_string(value: int, nbits: int, width: int) -> bytes:
    """RFC 3779 §2.1.2: the first ``nbits`` bits of a ``width``-bit address, in the fewest octets, the
    unused bits of the last one zero."""
    nbytes = (nbits + 7) // 8
    unused = nbytes * 8 - nbits
    top = value >> (width - nbits) if nbits else 0
    return tlv(0x03, bytes((unused,)) + (top << unused).to_bytes(nbytes, "big"))


def generalized_time(moment: datetime) -> bytes:
    """RFC 5280 §4.1.2.5.2: YYYYMMDDHHMMSSZ, UTC, no fractions."""
    utc = moment.astimezone(UTC) if moment.tzinfo else moment
    return tlv(0x18, utc.strftime("%Y%m%d%H%M%SZ").encode("ascii"))


class DerShapeError(ValueError):
    """Bytes that are not the expected shape; the caller reads them with asn1crypto instead, which says
    precisely what is wrong."""


def read_tlv(data: bytes, offset: int) -> tuple[int, int, int]:
    """The tag, the content's start and the content's end of the TLV at ``offset``: one-octet tags and
    definite lengths in their shortest form only (DER), all inside ``data``."""
    if offset + 2 > len(data):
        raise DerShapeError("truncated")
    tag, first = data[offset], data[offset + 1]
    start = offset + 2
    if first < 0x80:
        size = first
    else:
        count = first & 0x7F
        if count == 0 or count > 4 or start + count > len(data):
            raise DerShapeError("unsupported length")
        size = int.from_bytes(data[start : start + count], "big")
        start += count
        if size < 0x80 or size.bit_length() <= 8 * (count - 1):
            raise DerShapeError("length not in its shortest form")
    end = start + size
    if end > len(data) or tag & 0x1F == 0x1F:
        raise DerShapeError("truncated or multi-octet tag")
    return tag, start, end
