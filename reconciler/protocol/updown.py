"""RFC 6492 up-down messages: the XML a child and its parent exchange inside CMS.

Seven message types share one envelope (``<message version="1" sender recipient type>``). A child asks
for its entitlements (``list``), the parent answers with one ``<class>`` per resource class; the child
sends a PKCS#10 per class (``issue``) and may revoke a key (``revoke``); either may answer with an
``error_response``. The entitlements are observed state the reconciler acts on, so they are read into
:class:`~reconciler.resources.Resources`, never kept as text.

Real parents differ from the RFC text in ways every child must read: LACNIC's error_response carries no
sender or recipient, APNIC's testbed sends ``resource_set_as=""``, Krill 0.10.0/0.10.1 parents omit empty
resource sets altogether, LACNIC writes address ranges (``45.4.4.0-45.4.83.255``), and the revoke ``ski``
comes with or without Base64 padding. Everything else is refused with the attribute and the offending
item named, within bounds that keep a hostile peer from making the reader allocate without limit.

This module only translates bytes and values; the CMS layer (``sigmsg``) verifies who sent a message,
and callers decide what a message means for their state.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal
from xml.etree.ElementTree import Element

from reconciler.protocol import xmlutil
from reconciler.protocol.errors import ProtocolError, XmlError
from reconciler.resources import (
    AsnSet,
    IpSet,
    Resources,
    parse_asn_range,
    parse_ip_block,
)

NS = "http://www.apnic.net/specs/rescerts/up-down/"
CONTENT_TYPE = "application/rpki-updown"
VERSION = "1"

#: Resource classes in one list_response. Real parents send one or two; a bound keeps a hostile parent
#: from making the child hold (and act on) an unbounded number.
MAX_CLASSES = 64
#: Certificates of one class in a list_response: one per key of the child, two during a key roll.
MAX_CERTIFICATES = 16
#: Lengths from the RELAX NG schema of RFC 6492 (rpki.net ``up-down.rng``).
MAX_HANDLE = 1024
MAX_CLASS_NAME = 1024
MAX_URI = 4096
MAX_RESOURCE_SET = 512_000
#: One item of a resource set: the longest is an IPv6 range written in full (79 characters).
MAX_RESOURCE_ITEM = 100
MAX_DESCRIPTION = 1024

#: RFC 6492 §3.6: the error codes and their texts.
ERRORS: dict[int, str] = {
    1101: "already processing request",
    1102: "version number error",
    1103: "unrecognized request type",
    1104: "request scheduled for processing",
    1201: "request - no such resource class",
    1202: "request - no resources allocated in resource class",
    1203: "request - badly formed certificate request",
    1204: "request - already used key in request",
    1301: "revoke - no such resource class",
    1302: "revoke - no such key",
    2001: "Internal Server Error - Request not performed",
}

ErrorKind = Literal["retry", "drop-class", "done", "error"]


def error_kind(status: int) -> ErrorKind:
    """What a child does on an error_response: ask again later (the parent is busy), drop the resource
    class (the parent no longer has it, or the key was used before: start over with a new key), take a
    revocation as done (the class or key is already gone), or report an error."""
    if status in (1101, 1104):
        return "retry"
    if status in (1201, 1202, 1204):
        return "drop-class"
    if status in (1301, 1302):
        return "done"
    return "error"


@dataclass(frozen=True)
class IssuedCertificate:
    """A certificate the parent issued to the child, where it publishes it, and the limit the child asked
    for when it requested it (None when it asked for everything)."""

    cert_url: str
    der: bytes
    requested: Resources | None = None


@dataclass(frozen=True)
class ResourceClass:
    """One resource class: what the child may certify (``resources`` until ``not_after``), the parent's
    certificate (``issuer``, published at ``cert_url``), and the child's current certificates in it."""

    class_name: str
    cert_url: str
    resources: Resources
    not_after: datetime
    issuer: bytes
    certificates: tuple[IssuedCertificate, ...] = ()
    suggested_sia_head: str | None = None


@dataclass(frozen=True)
class ListQuery:
    """``list``: the child asks for its entitlements."""


@dataclass(frozen=True)
class ListResponse:
    """``list_response``: every resource class the child has (none at all is a valid answer)."""

    classes: tuple[ResourceClass, ...]


@dataclass(frozen=True)
class IssueRequest:
    """``issue``: a PKCS#10 request for a certificate in one class, optionally limited to fewer
    resources than the class holds."""

    class_name: str
    csr: bytes
    limit: Resources | None = None


@dataclass(frozen=True)
class IssueResponse:
    """``issue_response``: the class with exactly the one certificate just issued."""

    resource_class: ResourceClass


@dataclass(frozen=True)
class RevokeRequest:
    """``revoke``: the child asks the parent to revoke every certificate of this key in this class."""

    class_name: str
    ski: bytes


@dataclass(frozen=True)
class RevokeResponse:
    """``revoke_response``: the parent confirms the revocation."""

    class_name: str
    ski: bytes


@dataclass(frozen=True)
class ErrorResponse:
    """``error_response``: an RFC 6492 §3.6 status code and an optional human text."""

    status: int
    description: str | None = None


Payload = (
    ListQuery | ListResponse | IssueRequest | IssueResponse | RevokeRequest | RevokeResponse | ErrorResponse
)


@dataclass(frozen=True)
class Message:
    """The envelope: who sends, to whom, and what. An error_response may lack sender and recipient
    (LACNIC sends it so); both are then ``""``."""

    sender: str
    recipient: str
    payload: Payload


_TYPES: dict[type, str] = {
    ListQuery: "list",
    ListResponse: "list_response",
    IssueRequest: "issue",
    IssueResponse: "issue_response",
    RevokeRequest: "revoke",
    RevokeResponse: "revoke_response",
    ErrorResponse: "error_response",
}
_TYPE_NAMES = tuple(_TYPES.values())

# The characters each resource set may hold (the RFC 6492 schema); anything else is named in the refusal.
_RESOURCE_CHARS = {
    "as": re.compile(r"[0-9\-]+"),
    "ipv4": re.compile(r"[0-9./\-]+"),
    "ipv6": re.compile(r"[0-9a-fA-F:/\-]+"),
}
_SKI = re.compile(r"[A-Za-z0-9_\-]+={0,2}")
_STATUS = re.compile(r"[0-9]{1,4}")


# --- parsing ------------------------------------------------------------------------------------


def parse(xml: bytes, where: str) -> Message:
    """Read one up-down message; a :class:`ProtocolError` naming ``where`` and what is wrong otherwise."""
    root = xmlutil.parse(xml, where)
    xmlutil.expect_root(root, NS, ("message",), where)
    version = root.get("version")
    if version is None:
        raise XmlError(f'{where}: <message> has no version attribute (RFC 6492 messages carry version="1")')
    if version != VERSION:
        raise ProtocolError(
            f"{where}: message version {_show(version)}, but only version 1 of RFC 6492 exists "
            f"(the parent answers this with error 1102)"
        )
    kind = xmlutil.attribute(root, "type", where)
    if kind not in _TYPE_NAMES:
        raise ProtocolError(
            f"{where}: unknown message type {_show(kind)} (expected one of {', '.join(_TYPE_NAMES)}; "
            f"a parent answers this with error 1103)"
        )
    optional = kind == "error_response"
    sender = _handle(root, "sender", where, optional=optional)
    recipient = _handle(root, "recipient", where, optional=optional)
    where = f"{where} ({kind})"
    payload: Payload
    if kind == "list":
        payload = ListQuery()
    elif kind == "list_response":
        payload = ListResponse(_classes(root, where))
    elif kind == "issue":
        payload = _issue_request(root, where)
    elif kind == "issue_response":
        payload = IssueResponse(_issue_response_class(root, where))
    elif kind == "revoke":
        payload = RevokeRequest(*_key(root, where))
    elif kind == "revoke_response":
        payload = RevokeResponse(*_key(root, where))
    else:
        payload = _error_response(root, where)
    return Message(sender, recipient, payload)


def _show(text: str, limit: int = 60) -> str:
    """A value from a message, quoted and cut short for an error text."""
    return repr(text if len(text) <= limit else text[:limit] + "...")


def _bounded(value: str, name: str, element: str, where: str, *, least: int, most: int) -> str:
    if not least <= len(value) <= most:
        raise XmlError(
            f"{where}: <{element}> {name} is {len(value)} characters long; RFC 6492 allows {least} to {most}"
        )
    return value


def _handle(root: Element, name: str, where: str, *, optional: bool) -> str:
    value = root.get(name)
    if value is None:
        if optional:
            return ""
        raise XmlError(f"{where}: <message> has no {name} attribute")
    if optional and value == "":
        return ""
    return _bounded(value, name, "message", where, least=1, most=MAX_HANDLE)


def _one(parent: Element, name: str, where: str) -> Element:
    found = list(xmlutil.children(parent, name))
    if len(found) != 1:
        local = xmlutil.split_tag(parent.tag)[1]
        raise XmlError(f"{where}: <{local}> must hold exactly one <{name}>, it holds {len(found)}")
    return found[0]


def _at_most(elements: Iterator[Element], most: int, what: str, where: str) -> list[Element]:
    found: list[Element] = []
    for element in elements:
        found.append(element)
        if len(found) > most:
            raise ProtocolError(f"{where}: more than {most} {what}, more than any parent sends")
    return found


def _class_name(element: Element, where: str) -> str:
    local = xmlutil.split_tag(element.tag)[1]
    value = element.get("class_name")
    if value is None:
        raise XmlError(f"{where}: <{local}> has no class_name attribute")
    return _bounded(value, "class_name", local, where, least=1, most=MAX_CLASS_NAME)


def _uri(element: Element, name: str, where: str) -> str:
    local = xmlutil.split_tag(element.tag)[1]
    value = xmlutil.attribute(element, name, where)
    return _bounded(value, name, local, where, least=1, most=MAX_URI)


def _resource_set(element: Element, prefix: str, where: str) -> tuple[Resources, bool]:
    """The three ``<prefix>as``, ``<prefix>ipv4``, ``<prefix>ipv6`` attributes as Resources (missing or
    empty = none), and whether any of them was present at all."""
    present = False
    sets: dict[str, list[tuple[int, int]]] = {"as": [], "ipv4": [], "ipv6": []}
    for family, ranges in sets.items():
        name = f"{prefix}{family}"
        text = element.get(name)
        if text is None:
            continue
        present = True
        if len(text) > MAX_RESOURCE_SET:
            raise ProtocolError(
                f"{where}: {name} is {len(text)} characters long; RFC 6492 allows {MAX_RESOURCE_SET}"
            )
        text = text.strip()
        if not text:
            continue
        for item in text.split(","):
            ranges.append(_resource_item(item.strip(), family, name, where))
    resources = Resources(AsnSet.of(sets["as"]), IpSet.of(4, sets["ipv4"]), IpSet.of(6, sets["ipv6"]))
    return resources, present


def _resource_item(item: str, family: str, name: str, where: str) -> tuple[int, int]:
    if not item:
        raise ProtocolError(f"{where}: {name} has an empty item (two commas in a row, or one at an end)")
    if len(item) > MAX_RESOURCE_ITEM:
        raise ProtocolError(
            f"{where}: {name} item {_show(item)} is too long to be an AS number or address block"
        )
    if not _RESOURCE_CHARS[family].fullmatch(item):
        raise ProtocolError(
            f"{where}: {name} item {_show(item)} holds a character an RFC 6492 resource set does not allow"
        )
    try:
        if family == "as":
            return parse_asn_range(item)
        return parse_ip_block(item, 4 if family == "ipv4" else 6)
    except ValueError as exc:  # ResourceSyntaxError, with the reason
        raise ProtocolError(f"{where}: {name} item {_show(item)}: {exc}") from exc


def _not_after(element: Element, where: str) -> datetime:
    text = xmlutil.attribute(element, "resource_set_notafter", where).strip()
    try:
        moment = datetime.fromisoformat(text)
    except ValueError as exc:
        raise ProtocolError(
            f"{where}: resource_set_notafter {_show(text)} is not a time (write e.g. 2027-03-31T00:00:00Z)"
        ) from exc
    if moment.tzinfo is None:
        raise ProtocolError(
            f"{where}: resource_set_notafter {_show(text)} has no time zone (RFC 6492 times end in Z)"
        )
    try:
        return moment.astimezone(UTC)
    except OverflowError as exc:
        raise ProtocolError(f"{where}: resource_set_notafter {_show(text)} is out of range") from exc


def _base64(element: Element, where: str) -> bytes:
    local = xmlutil.split_tag(element.tag)[1]
    return xmlutil.b64decode(element.text, f"{where}: <{local}>")


def _classes(root: Element, where: str) -> tuple[ResourceClass, ...]:
    elements = _at_most(xmlutil.children(root, "class"), MAX_CLASSES, "resource classes", where)
    return tuple(_resource_class(element, where) for element in elements)


def _resource_class(element: Element, where: str) -> ResourceClass:
    name = _class_name(element, where)
    where = f"{where} class {_show(name)}"
    cert_url = _uri(element, "cert_url", where)
    resources, _ = _resource_set(element, "resource_set_", where)
    not_after = _not_after(element, where)
    suggested = element.get("suggested_sia_head")
    if suggested is not None:
        suggested = _bounded(suggested, "suggested_sia_head", "class", where, least=1, most=MAX_URI)
    found = _at_most(xmlutil.children(element, "certificate"), MAX_CERTIFICATES, "certificates", where)
    certificates = tuple(_certificate(cert, where) for cert in found)
    issuer = _base64(_one(element, "issuer", where), where)
    return ResourceClass(name, cert_url, resources, not_after, issuer, certificates, suggested)


def _certificate(element: Element, where: str) -> IssuedCertificate:
    cert_url = _uri(element, "cert_url", where)
    requested, present = _resource_set(element, "req_resource_set_", f"{where} certificate {_show(cert_url)}")
    der = _base64(element, f"{where} certificate {_show(cert_url)}")
    return IssuedCertificate(cert_url, der, requested if present else None)


def _issue_response_class(root: Element, where: str) -> ResourceClass:
    found = _resource_class(_one(root, "class", where), where)
    if len(found.certificates) != 1:
        raise XmlError(
            f"{where}: the <class> of an issue_response must hold exactly one <certificate>, "
            f"it holds {len(found.certificates)}"
        )
    return found


def _issue_request(root: Element, where: str) -> IssueRequest:
    request = _one(root, "request", where)
    name = _class_name(request, where)
    where = f"{where} class {_show(name)}"
    limit, present = _resource_set(request, "req_resource_set_", where)
    return IssueRequest(name, _base64(request, where), limit if present else None)


def _key(root: Element, where: str) -> tuple[str, bytes]:
    key = _one(root, "key", where)
    name = _class_name(key, where)
    return name, decode_ski(xmlutil.attribute(key, "ski", where), f"{where} class {_show(name)}")


def decode_ski(text: str, where: str) -> bytes:
    """The 20-byte key identifier from the URL-safe Base64 of RFC 6492 §3.5.1, with or without padding
    (rpki-rs pads, RIPE NCC does not)."""
    if not _SKI.fullmatch(text):
        raise ProtocolError(
            f"{where}: ski {_show(text)} is not URL-safe Base64 (letters, digits, '-' and '_' only)"
        )
    bare = text.rstrip("=")
    standard = bare.translate(str.maketrans("-_", "+/")) + "=" * (-len(bare) % 4)
    try:
        value = base64.b64decode(standard, validate=True)
    except binascii.Error as exc:
        raise ProtocolError(f"{where}: ski {_show(text)} is not valid Base64 ({exc})") from exc
    if len(value) != 20:
        raise ProtocolError(
            f"{where}: ski {_show(text)} holds {len(value)} bytes; a key identifier is the 20-byte SHA-1 "
            "of the key"
        )
    return value


def encode_ski(ski: bytes) -> str:
    """URL-safe Base64 without padding, the form every implementation reads."""
    return base64.urlsafe_b64encode(ski).decode("ascii").rstrip("=")


def _error_response(root: Element, where: str) -> ErrorResponse:
    text = (_one(root, "status", where).text or "").strip()
    if not _STATUS.fullmatch(text):
        raise ProtocolError(f"{where}: <status> {_show(text)} is not an RFC 6492 status code (a number)")
    description: str | None = None
    found = list(xmlutil.children(root, "description"))
    if len(found) > 1:
        raise XmlError(
            f"{where}: <message> holds {len(found)} <description> elements, at most one is allowed"
        )
    if found:
        description = (found[0].text or "").strip() or None
        if description is not None and len(description) > MAX_DESCRIPTION:
            raise ProtocolError(
                f"{where}: <description> is {len(description)} characters long; RFC 6492 allows "
                f"{MAX_DESCRIPTION}"
            )
    return ErrorResponse(int(text), description)


# --- rendering ----------------------------------------------------------------------------------


def render(message: Message) -> bytes:
    """The message as UTF-8 XML, byte for byte the same for the same value. Times are written in whole
    seconds (``2027-03-31T00:00:00Z``); an error_response without sender and recipient (both ``""``)
    is written without the attributes."""
    kind = _TYPES[type(message.payload)]
    attributes = [("version", VERSION)]
    if not (kind == "error_response" and not message.sender and not message.recipient):
        attributes += [("sender", message.sender), ("recipient", message.recipient)]
    attributes.append(("type", kind))
    body = list(_render_payload(message.payload))
    head = f"<message xmlns={_quoteattr(NS)}{_attributes(attributes)}"
    lines = ['<?xml version="1.0" encoding="UTF-8"?>']
    if body:
        lines += [head + ">", *("  " + line for line in body), "</message>"]
    else:
        lines.append(head + "/>")
    return ("\n".join(lines) + "\n").encode("utf-8")


def _quoteattr(value: str) -> str:
    # saxutils imports urllib.request, http.client and ssl: every rpkictl start paid for them, only the
    # messages written need them.
    from xml.sax.saxutils import quoteattr  # noqa: PLC0415

    return quoteattr(value)


def _escape(text: str) -> str:
    from xml.sax.saxutils import escape  # noqa: PLC0415 - see _quoteattr

    return escape(text)


def _attributes(pairs: list[tuple[str, str]]) -> str:
    return "".join(f" {name}={_quoteattr(value)}" for name, value in pairs)


def _render_payload(payload: Payload) -> Iterator[str]:
    if isinstance(payload, ListResponse):
        for resource_class in payload.classes:
            yield from _render_class(resource_class)
    elif isinstance(payload, IssueResponse):
        yield from _render_class(payload.resource_class)
    elif isinstance(payload, IssueRequest):
        pairs = [("class_name", payload.class_name), *_render_resources(payload.limit, "req_resource_set_")]
        yield f"<request{_attributes(pairs)}>{_render_base64(payload.csr)}</request>"
    elif isinstance(payload, RevokeRequest | RevokeResponse):
        pairs = [("class_name", payload.class_name), ("ski", encode_ski(payload.ski))]
        yield f"<key{_attributes(pairs)}/>"
    elif isinstance(payload, ErrorResponse):
        yield f"<status>{payload.status}</status>"
        if payload.description is not None:
            yield f'<description xml:lang="en-US">{_escape(payload.description)}</description>'


def _render_class(resource_class: ResourceClass) -> Iterator[str]:
    pairs = [
        ("class_name", resource_class.class_name),
        ("cert_url", resource_class.cert_url),
        *_render_resources(resource_class.resources, "resource_set_"),
        ("resource_set_notafter", render_time(resource_class.not_after)),
    ]
    if resource_class.suggested_sia_head is not None:
        pairs.append(("suggested_sia_head", resource_class.suggested_sia_head))
    yield f"<class{_attributes(pairs)}>"
    for cert in resource_class.certificates:
        cert_pairs = [("cert_url", cert.cert_url), *_render_resources(cert.requested, "req_resource_set_")]
        yield f"  <certificate{_attributes(cert_pairs)}>{_render_base64(cert.der)}</certificate>"
    yield f"  <issuer>{_render_base64(resource_class.issuer)}</issuer>"
    yield "</class>"


def _render_resources(resources: Resources | None, prefix: str) -> list[tuple[str, str]]:
    if resources is None:
        return []
    return [
        (f"{prefix}as", render_asns(resources.asn)),
        (f"{prefix}ipv4", render_ips(resources.ipv4)),
        (f"{prefix}ipv6", render_ips(resources.ipv6)),
    ]


def render_asns(asns: AsnSet) -> str:
    """``64496,64500-64511``: the RFC 6492 form (no ``AS`` prefix)."""
    return ",".join(str(lo) if lo == hi else f"{lo}-{hi}" for lo, hi in asns.ranges)


def render_ips(ips: IpSet) -> str:
    """Prefixes where a range is one, ``a-b`` address ranges elsewhere, comma-separated."""
    return str(ips).replace(", ", ",") if ips else ""


def render_time(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _render_base64(data: bytes) -> str:
    return "\n" + xmlutil.b64encode(data) + "\n"
