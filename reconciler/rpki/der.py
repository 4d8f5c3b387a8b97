"""Direct DER for the few fixed shapes the reconciler encodes in bulk (a manifest's file list).

asn1crypto builds an object per value and costs about 45 µs per manifest entry; a manifest of a CA with
thousands of ROAs is re-encoded on every change, so its entries are written here as bytes instead (about
1 µs each). The output is checked byte for byte against asn1crypto's in the tests.
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


def generalized_time(moment: datetime) -> bytes:
    """RFC 5280 §4.1.2.5.2: YYYYMMDDHHMMSSZ, UTC, no fractions."""
    utc = moment.astimezone(UTC) if moment.tzinfo else moment
    return tlv(0x18, utc.strftime("%Y%m%d%H%M%SZ").encode("ascii"))
