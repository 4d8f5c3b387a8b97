"""asn1crypto specifications for the RPKI structures that asn1crypto does not know.

The RPKI ASN.1 modules use EXPLICIT tags, so ``version [0]`` fields are explicit with a DEFAULT that DER
omits (rpki-client rejects an encoded ``version 0``).
"""

from asn1crypto import core

from reconciler.rpki.der import NotDerError, first_value_end


class IPAddressRange(core.Sequence):  # RFC 3779 §2.2.3.9
    _fields = [("min", core.BitString), ("max", core.BitString)]


class IPAddressOrRange(core.Choice):  # RFC 3779 §2.2.3.7
    _alternatives = [("addressPrefix", core.BitString), ("addressRange", IPAddressRange)]


class IPAddressOrRanges(core.SequenceOf):
    _child_spec = IPAddressOrRange


class IPAddressChoice(core.Choice):  # RFC 3779 §2.2.3.4
    _alternatives = [("inherit", core.Null), ("addressesOrRanges", IPAddressOrRanges)]


class IPAddressFamily(core.Sequence):  # RFC 3779 §2.2.3.2
    _fields = [("addressFamily", core.OctetString), ("ipAddressChoice", IPAddressChoice)]


class IPAddrBlocks(core.SequenceOf):  # RFC 3779 §2.2.3.1
    _child_spec = IPAddressFamily


class ASRange(core.Sequence):  # RFC 3779 §3.2.3.8
    _fields = [("min", core.Integer), ("max", core.Integer)]


class ASIdOrRange(core.Choice):  # RFC 3779 §3.2.3.5
    _alternatives = [("id", core.Integer), ("range", ASRange)]


class ASIdOrRanges(core.SequenceOf):
    _child_spec = ASIdOrRange


class ASIdentifierChoice(core.Choice):  # RFC 3779 §3.2.3.2
    _alternatives = [("inherit", core.Null), ("asIdsOrRanges", ASIdOrRanges)]


class ASIdentifiers(core.Sequence):  # RFC 3779 §3.2.3.1
    _fields = [
        ("asnum", ASIdentifierChoice, {"explicit": 0, "optional": True}),
        ("rdi", ASIdentifierChoice, {"explicit": 1, "optional": True}),
    ]


class ROAIPAddress(core.Sequence):  # RFC 9582 §4
    _fields = [("address", core.BitString), ("maxLength", core.Integer, {"optional": True})]


class ROAIPAddresses(core.SequenceOf):
    _child_spec = ROAIPAddress


class ROAIPAddressFamily(core.Sequence):
    _fields = [("addressFamily", core.OctetString), ("addresses", ROAIPAddresses)]


class ROAIPAddressFamilies(core.SequenceOf):
    _child_spec = ROAIPAddressFamily


class RouteOriginAttestation(core.Sequence):  # RFC 9582 §4
    _fields = [
        ("version", core.Integer, {"explicit": 0, "default": 0}),
        ("asID", core.Integer),
        ("ipAddrBlocks", ROAIPAddressFamilies),
    ]


class ASProviders(core.SequenceOf):
    _child_spec = core.Integer


class ASProviderAttestation(core.Sequence):  # draft-ietf-sidrops-aspa-profile §3 (version 1)
    _fields = [
        ("version", core.Integer, {"explicit": 0, "default": 0}),
        ("customerASID", core.Integer),
        ("providers", ASProviders),
    ]


class FileAndHash(core.Sequence):  # RFC 9286 §4.2
    _fields = [("file", core.IA5String), ("hash", core.BitString)]


class FileList(core.SequenceOf):
    _child_spec = FileAndHash


class Manifest(core.Sequence):  # RFC 9286 §4.2
    _fields = [
        ("version", core.Integer, {"explicit": 0, "default": 0}),
        ("manifestNumber", core.Integer),
        ("thisUpdate", core.GeneralizedTime),
        ("nextUpdate", core.GeneralizedTime),
        ("fileHashAlg", core.ObjectIdentifier),
        ("fileList", FileList),
    ]


def require_exact(value: core.Asn1Value, *, opaque: tuple[type, ...] = ()) -> None:
    """Check that every SEQUENCE and SEQUENCE OF inside ``value`` is covered exactly by its elements:
    asn1crypto ignores an element after the last field and bytes after the value inside an EXPLICIT tag,
    where rpki-client refuses both. Raise :class:`NotDerError` naming the structure.

    Values of the ``opaque`` types are not entered: another reader checks them (a certificate inside a
    signed object is read again by ``cryptography``; a manifest's file list by ``manifest``). The depth
    is bounded, for ``der.require_der`` has checked the nesting of the bytes first."""
    pending: list[core.Asn1Value] = [value]
    while pending:
        current = pending.pop()
        if isinstance(current, core.Choice):
            current = current.chosen
        if isinstance(current, opaque) or not isinstance(current, core.Sequence | core.SequenceOf):
            continue
        if current.children is None:
            current._parse_children()  # the elements as parsed, before they are built
        children = current.children
        if isinstance(current, core.Sequence) and len(children) > len(current._fields):
            raise NotDerError(f"trailing data: {type(current).__name__} has an element after its last field")
        for index, child in enumerate(children):
            if not isinstance(child, tuple):
                continue  # an absent OPTIONAL or DEFAULT field, or an element built already
            built = current._lazy_child(index)
            contents = child[4]  # the tuple is (class, method, tag, header, contents, trailer, ...)
            if built.explicit and first_value_end(contents) != len(contents):
                raise NotDerError(
                    f"X.690 §8.1.1: trailing data inside the EXPLICIT tag of an element of "
                    f"{type(current).__name__}"
                )
            pending.append(built)
