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


#: What parsing hostile bytes can raise besides the decoders' own errors (asn1crypto raises most of these
#: from deep inside a structure); each decoder turns them into its own error class.
DECODE_ERRORS: tuple[type[Exception], ...] = (
    ValueError,
    TypeError,
    KeyError,
    IndexError,
    AttributeError,
    OverflowError,
    RecursionError,
)


class NotDerError(ValueError):
    """Bytes that break a rule of DER (X.690 §10) or carry data after a structure's end; the message
    names the rule. rpki-client refuses such objects, so the reconciler must never take them as published."""


#: Deeper than any RPKI structure nests (a certificate's extensions reach about 10); a limit keeps a
#: hostile nesting from exhausting the recursion of the parsers that read the bytes afterwards.
MAX_DEPTH = 32

#: Universal types whose DER encoding is always primitive (X.690 §10.2): BIT STRING, OCTET STRING and the
#: character strings, with the constructed bit (0x20) set.
_CONSTRUCTED_STRINGS = frozenset(0x20 | tag for tag in (3, 4, 12, 18, 19, 20, 21, 22, 25, 26, 27, 28, 30))


def require_der(data: bytes, *, enter: int = MAX_DEPTH) -> None:
    """Check that ``data`` is exactly one DER value: nothing after it (X.690 §8.1.1), lengths definite and
    in their shortest form (§10.1), every value inside its parent, no end-of-contents octets, strings
    primitive (§10.2), nesting at most ``MAX_DEPTH`` deep. Raise :class:`NotDerError` naming the rule.

    The schema of the value is the caller's: a structure with an element too many still passes here, and
    the decoders check that each field list is covered exactly (see ``asn1.require_exact``). Values
    ``enter`` levels deep are checked to lie inside their parent but not entered: for a caller whose own
    reader checks them (a manifest's thousands of file entries)."""
    _require_one(data, ber=False, enter=enter)


def require_one_ber(data: bytes) -> None:
    """Like :func:`require_der`, but with the BER forms that RPKI signed objects published by real CAs
    carry in their CMS envelope and that every relying party reads (indefinite lengths, long-form
    lengths, constructed OCTET STRINGs); trailing data, values that overrun their parent and excessive
    nesting are refused all the same."""
    _require_one(data, ber=True, enter=MAX_DEPTH)


def first_value_end(data: bytes) -> int:
    """Where the first value (BER allowed) of ``data`` ends; :class:`NotDerError` when it is malformed."""
    if not data:
        raise NotDerError("X.690 §8.1.1: no value where one is required")
    return _walk(data, ber=True, enter=MAX_DEPTH)


def _require_one(data: bytes, *, ber: bool, enter: int) -> None:
    size = len(data)
    if size == 0:
        raise NotDerError("X.690 §8.1.1: empty input, not a DER value")
    end = _walk(data, ber=ber, enter=enter)
    if end != size:
        extra = size - end
        plural = "s" if extra != 1 else ""
        raise NotDerError(f"X.690 §8.1.1: {extra} byte{plural} of trailing data after the outer structure")


def _walk(data: bytes, *, ber: bool, enter: int) -> int:
    """Where the first value of ``data`` ends, every value inside it checked; iterative, so that no
    nesting exhausts the recursion."""
    ends: list[int | None] = []  # the open constructed values: their end, None while indefinite
    limits: list[int] = []  # the end of the nearest definite value that holds each of them
    offset = 0
    while True:
        while ends:
            top = ends[-1]
            if top is None and data[offset : offset + 2] == b"\0\0":
                offset += 2
            elif top is None or offset != top:
                break
            ends.pop()
            limits.pop()
        if not ends and offset:
            return offset
        limit = limits[-1] if limits else len(data)
        tag, start, end = _header(data, offset, limit, ber=ber)
        if tag & 0x20 and (end is None or len(ends) < enter):
            if tag in _CONSTRUCTED_STRINGS and not ber:
                raise NotDerError(f"X.690 §10.2: a constructed string (tag 0x{tag:02x}) at offset {offset}")
            if len(ends) >= MAX_DEPTH:
                raise NotDerError(f"values nested more than {MAX_DEPTH} deep at offset {offset}")
            ends.append(end)
            limits.append(limit if end is None else end)
            offset = start
        elif end is None:
            raise NotDerError(f"X.690 §8.1.3.2: a primitive value of indefinite length at offset {offset}")
        else:
            offset = end
        if not ends:
            return offset


def _header(data: bytes, offset: int, limit: int, *, ber: bool) -> tuple[int, int, int | None]:
    """The first tag octet, the content's start and its end (None: an indefinite length) of the value at
    ``offset``, which must end by ``limit`` (the end of its parent)."""
    if offset + 2 > limit:
        raise NotDerError(f"X.690 §8.1: a value at offset {offset} is truncated")
    tag = data[offset]
    if tag == 0:
        raise NotDerError(f"X.690 §8.1.5: end-of-contents octets at offset {offset} where no value is open")
    position = _tag_end(data, offset, limit) if tag & 0x1F == 0x1F else offset + 1
    first = data[position]
    start = position + 1
    if first == 0x80:
        if not ber:
            raise NotDerError(f"X.690 §10.1: an indefinite length at offset {offset} (DER has none)")
        return tag, start, None
    length = first
    if first > 0x80:
        count = first & 0x7F
        if count > 4 or start + count > limit:
            raise NotDerError(f"X.690 §8.1.3.5: the length at offset {offset} is truncated or too large")
        length = int.from_bytes(data[start : start + count], "big")
        start += count
        if not ber and (length < 0x80 or length.bit_length() <= 8 * (count - 1)):
            raise NotDerError(f"X.690 §10.1: the length at offset {offset} is not in its shortest form")
    end = start + length
    if end > limit:
        raise NotDerError(f"X.690 §8.1.1: the value at offset {offset} runs past the end of its parent")
    return tag, start, end


def _tag_end(data: bytes, offset: int, limit: int) -> int:
    """Where the length octets start after a tag whose number continues in base 128 (X.690 §8.1.2.4)."""
    position = offset + 1
    if data[position] == 0x80:
        raise NotDerError(f"X.690 §8.1.2.4.2: a tag number not in its shortest form at offset {offset}")
    while position < limit and data[position] & 0x80:
        position += 1
        if position - offset > 5:
            raise NotDerError(f"X.690 §8.1.2.4: a tag number too large at offset {offset}")
    position += 1
    if position >= limit:
        raise NotDerError(f"X.690 §8.1: a value at offset {offset} is truncated")
    return position
