"""RFC 3779 resource extensions: ``ipAddrBlocks`` and ``autonomousSysIds`` to and from ``Resources``.

Encoding is canonical (RFC 3779 §2.2.3.6, §3.2.3.4): families in AFI order, blocks sorted and merged, a
block written as a prefix whenever it is one, range bounds with trailing 0s (min) / 1s (max) trimmed.
"""

from __future__ import annotations

from dataclasses import dataclass

from asn1crypto import core

from reconciler.resources import Afi, AsnSet, IpSet, Resources
from reconciler.rpki import asn1, der

AFI_BYTES: dict[Afi, bytes] = {4: b"\x00\x01", 6: b"\x00\x02"}
BYTES_AFI: dict[bytes, Afi] = {v: k for k, v in AFI_BYTES.items()}
WIDTH: dict[Afi, int] = {4: 32, 6: 128}


class ResourceEncodingError(ValueError):
    """An RFC 3779 extension that does not follow the RFC."""


def bitstring(value: int, nbits: int, width: int) -> core.BitString:
    """The first ``nbits`` bits of a ``width``-bit ``value`` as a DER BIT STRING."""
    return core.BitString.load(der.prefix_bit_string(value, nbits, width))


def bits_to_int(bits: core.BitString, width: int, *, fill: int) -> tuple[int, int]:
    """Read a BIT STRING as (address, number of significant bits); missing bits become ``fill``."""
    contents = bits.contents
    if not contents:
        raise ResourceEncodingError("X.690 §8.6.2: a BIT STRING without its initial octet")
    unused = contents[0]
    data = contents[1:]
    if unused > 7 or (unused and not data) or (data and data[-1] & ((1 << unused) - 1)):
        raise ResourceEncodingError(
            "X.690 §8.6.2.2, §11.2.1: a BIT STRING's unused bits are 0 to 7, none when it is empty, and zero"
        )
    nbits = len(data) * 8 - unused
    if nbits > width:
        raise ResourceEncodingError(f"address of {nbits} bits is longer than {width}")
    value = int.from_bytes(data, "big") >> unused if data else 0
    rest = width - nbits
    value = (value << rest) | ((1 << rest) - 1 if fill else 0)
    return value, nbits


def _trim(value: int, width: int, bit: int) -> int:
    """How many leading bits remain once trailing ``bit`` bits are dropped."""
    n = width
    while n > 0 and ((value >> (width - n)) & 1) == bit:
        n -= 1
    return n


def _encode_block(lo: int, hi: int, length: int | None, width: int) -> asn1.IPAddressOrRange:
    if length is not None:
        return asn1.IPAddressOrRange(name="addressPrefix", value=bitstring(lo, length, width))
    rng = asn1.IPAddressRange(
        {
            "min": bitstring(lo, _trim(lo, width, 0), width),
            "max": bitstring(hi, _trim(hi, width, 1), width),
        }
    )
    return asn1.IPAddressOrRange(name="addressRange", value=rng)


def encode_ip(resources: Resources | None) -> bytes | None:
    """``ipAddrBlocks`` for these resources, ``inherit`` for both families when None; None when empty."""
    families = []
    for afi in (4, 6):
        if resources is None:
            choice = asn1.IPAddressChoice(name="inherit", value=core.Null())
        else:
            ipset = resources.ip(afi)
            if not ipset:
                continue
            blocks = [_encode_block(lo, hi, ln, WIDTH[afi]) for lo, hi, ln in ipset.blocks()]
            choice = asn1.IPAddressChoice(name="addressesOrRanges", value=blocks)
        families.append(asn1.IPAddressFamily({"addressFamily": AFI_BYTES[afi], "ipAddressChoice": choice}))
    return asn1.IPAddrBlocks(families).dump() if families else None


def encode_asn(asns: AsnSet | None) -> bytes | None:
    """``autonomousSysIds`` for this set, ``inherit`` when None; None when empty."""
    if asns is None:
        choice = asn1.ASIdentifierChoice(name="inherit", value=core.Null())
    elif not asns:
        return None
    else:
        items = [
            asn1.ASIdOrRange(name="id", value=lo)
            if lo == hi
            else asn1.ASIdOrRange(name="range", value={"min": lo, "max": hi})
            for lo, hi in asns.ranges
        ]
        choice = asn1.ASIdentifierChoice(name="asIdsOrRanges", value=items)
    return bytes(asn1.ASIdentifiers({"asnum": choice}).dump())


@dataclass(frozen=True, slots=True)
class DecodedResources:
    """Resources read from a certificate; ``inherit_*`` marks families delegated to the issuer."""

    resources: Resources
    inherit_asn: bool = False
    inherit_ip: frozenset[Afi] = frozenset()


def _decode_family(family: asn1.IPAddressFamily) -> tuple[Afi, IpSet | None]:
    afi_bytes = bytes(family["addressFamily"].native)
    if afi_bytes not in BYTES_AFI:
        raise ResourceEncodingError(f"unsupported address family {afi_bytes.hex()} (RFC 3779 §2.2.3.3)")
    afi = BYTES_AFI[afi_bytes]
    choice = family["ipAddressChoice"]
    if choice.name == "inherit":
        return afi, None
    width = WIDTH[afi]
    ranges = []
    for item in choice.chosen:
        if item.name == "addressPrefix":
            lo, _ = bits_to_int(item.chosen, width, fill=0)
            hi, _ = bits_to_int(item.chosen, width, fill=1)
        else:
            lo, _ = bits_to_int(item.chosen["min"], width, fill=0)
            hi, _ = bits_to_int(item.chosen["max"], width, fill=1)
        ranges.append((lo, hi))
    return afi, IpSet.of(afi, ranges)


def decode(ip_der: bytes | None, asn_der: bytes | None) -> DecodedResources:
    """Read the two extensions' values (either may be absent); each must be exactly one DER value (the
    extnValue OCTET STRING holds nothing else). Anything else raises :class:`ResourceEncodingError`."""
    try:
        return _decode(ip_der, asn_der)
    except ResourceEncodingError:
        raise
    except der.NotDerError as exc:
        raise ResourceEncodingError(f"RFC 3779 extension value is not DER: {exc}") from exc
    except der.DECODE_ERRORS as exc:
        raise ResourceEncodingError(f"RFC 3779 extension value is not readable: {exc}") from exc


def _decode(ip_der: bytes | None, asn_der: bytes | None) -> DecodedResources:
    v4, v6 = IpSet(4), IpSet(6)
    inherit_ip: set[Afi] = set()
    if ip_der is not None:
        der.require_der(ip_der)
        blocks = asn1.IPAddrBlocks.load(ip_der, strict=True)
        asn1.require_exact(blocks)
        for family in blocks:
            afi, ipset = _decode_family(family)
            if ipset is None:
                inherit_ip.add(afi)
            elif afi == 4:
                v4 = ipset
            else:
                v6 = ipset
    asns, inherit_asn = AsnSet(), False
    if asn_der is not None:
        der.require_der(asn_der)
        ids = asn1.ASIdentifiers.load(asn_der, strict=True)
        asn1.require_exact(ids)
        choice = ids["asnum"]
        if isinstance(choice, asn1.ASIdentifierChoice):
            if choice.name == "inherit":
                inherit_asn = True
            else:
                asns = AsnSet.of(
                    (i.native, i.native)
                    if i.name == "id"
                    else (i.chosen["min"].native, i.chosen["max"].native)
                    for i in choice.chosen
                )
    return DecodedResources(Resources(asns, v4, v6), inherit_asn, frozenset(inherit_ip))
