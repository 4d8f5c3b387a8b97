"""RFC 8181 publication messages: the XML inside the CMS, as values, and the list → delta step.

A publisher asks ``<list/>``, learns the URI and SHA-256 of every object the server holds for it, and
sends every change in one query: ``<publish>`` without ``hash`` creates, ``<publish hash=OLD>`` replaces,
``<withdraw hash=CURRENT>`` deletes. The server answers ``<success/>``, the list, or one
``<report_error>`` per failed PDU. :func:`delta` is that list → diff step, the same reconcile shape as an
apply.

Input is read the way real peers write it: the namespace with or without its slash, any prefix, the
short fake hashes of RFC-style examples (``hash="421ee4ac65732d72"``), a ``report_error`` without a
``tag`` (APNIC's server), and a reply with no PDU at all, which is an empty list. Output is strict: every
hash is 64 lowercase hex digits, every URI an rsync URI, every error code one of RFC 8181's.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from xml.etree.ElementTree import Element

from reconciler.protocol import xmlutil
from reconciler.protocol.errors import XmlError

NS = "http://www.hactrn.net/uris/rpki/publication-spec/"
CONTENT_TYPE = "application/rpki-publication"
VERSION = "4"

#: RFC 8181 §2.5: the error codes and the meaning the RFC gives them (the server's default error_text).
ERROR_CODES: Mapping[str, str] = {
    "xml_error": "Encountered an XML problem.",
    "permission_failure": "Client does not have permission to update this URI.",
    "bad_cms_signature": "Bad CMS signature.",
    "object_already_present": 'An object is already present at this URI, yet a "hash" attribute was not '
    "specified.",
    "no_object_present": 'There is no object present at this URI, yet a "hash" attribute was specified.',
    "no_object_matching_hash": 'The "hash" attribute supplied does not match the "hash" attribute of the '
    "object at this URI.",
    "consistency_problem": "Server detected an update that looks like it will cause a consistency problem "
    "(e.g., an object was deleted, but the manifest was not updated).",
    "other_error": "Found some other issue.",
}

_HASH_IN = re.compile(r"[0-9a-fA-F]{1,64}")
_HASH_OUT = re.compile(r"[0-9a-f]{64}")
# XML 1.0 §2.2: the characters a document may not hold at all -- the complement of Char, written as
# what it leaves out (the same set over every code point; the class of what it allows, up to U+10FFFF,
# took 10 ms to compile at every start).
_NOT_XML_CHAR = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
_ATTRIBUTE_ESCAPES = str.maketrans(
    {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "\t": "&#9;", "\n": "&#10;", "\r": "&#13;"}
)
#: What an attribute may hold as it is: no character XML refuses (see _NOT_XML_CHAR), none escaped.
_ATTRIBUTE_PLAIN = re.compile('[^\x00-\x1f&<>"\ud800-\udfff\ufffe\uffff]*')
_TEXT_ESCAPES = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;", "\r": "&#13;"})


@dataclass(frozen=True)
class Publish:
    """Create ``uri`` (``hash`` None) or replace the object whose SHA-256 is ``hash`` with ``der``."""

    uri: str
    der: bytes
    hash: str | None = None
    tag: str | None = None


@dataclass(frozen=True)
class Withdraw:
    """Delete the object at ``uri``, whose current SHA-256 is ``hash``."""

    uri: str
    hash: str
    tag: str | None = None


@dataclass(frozen=True)
class ListQuery:
    """``<list/>``: what does the server hold for me?"""


@dataclass(frozen=True)
class Query:
    """A delta: all its PDUs succeed or fail together (RFC 8181 §2.2, §3.7.1)."""

    pdus: tuple[Publish | Withdraw, ...]


@dataclass(frozen=True)
class SuccessReply:
    """``<success/>``: the whole delta was applied."""


@dataclass(frozen=True)
class ListEntry:
    uri: str
    hash: str


@dataclass(frozen=True)
class ListReply:
    entries: tuple[ListEntry, ...]


@dataclass(frozen=True)
class ReportError:
    """One ``<report_error>``. ``failed_pdu`` is the PDU it concerns as a standalone XML element (see
    :func:`pdu_xml`), kept as XML because a server may echo a PDU that is itself malformed."""

    code: str
    tag: str | None = None
    text: str | None = None
    failed_pdu: bytes | None = None


@dataclass(frozen=True)
class ErrorReply:
    errors: tuple[ReportError, ...]


Pdu = Publish | Withdraw
QueryMessage = ListQuery | Query
ReplyMessage = SuccessReply | ListReply | ErrorReply
Message = QueryMessage | ReplyMessage


def object_hash(der: bytes) -> str:
    """The ``hash`` of an object in RFC 8181 and RRDP: lowercase hex SHA-256 of its DER."""
    return hashlib.sha256(der).hexdigest()


def delta(
    listed: Mapping[str, str], desired: Mapping[str, bytes], hashes: Mapping[str, str] | None = None
) -> tuple[Pdu, ...]:
    """The PDUs that turn what the server ``listed`` (URI → hash) into ``desired`` (URI → DER): create
    what it lacks (no hash), replace what differs (with the hash it holds), withdraw what is not desired
    (with its hash). Sorted by URI so that the same states always give the same query. Empty when the
    server already holds exactly ``desired``. ``hashes``: the :func:`object_hash` of every desired
    object, when the caller has them already (a publisher keeps them), so that megabytes of objects are
    not hashed twice."""
    pdus: list[Pdu] = []
    for uri in sorted(set(listed) | set(desired)):
        held = listed.get(uri)
        der = desired.get(uri)
        if der is None:
            pdus.append(Withdraw(uri, listed[uri].lower()))
        elif held is None:
            pdus.append(Publish(uri, der))
        elif held.lower() != (hashes[uri] if hashes is not None else object_hash(der)):
            pdus.append(Publish(uri, der, hash=held.lower()))
    return tuple(pdus)


# -- reading ------------------------------------------------------------------------------------------


def parse_query(xml: bytes, where: str) -> QueryMessage:
    """A publisher's query: a lone ``<list/>``, or any number of ``<publish>``/``<withdraw>`` (none is an
    empty delta, as rpki-rs reads it)."""
    root = _message(xml, "query", where)
    names = _names(root, where)
    if "list" in names:
        if len(names) != 1:
            raise XmlError(f"{where}: a <list/> query must hold nothing else, it holds {_listing(names)}")
        return ListQuery()
    pdus: list[Pdu] = []
    for index, (child, name) in enumerate(zip(root, names, strict=True), start=1):
        if name not in ("publish", "withdraw"):
            raise XmlError(f"{where}: a query holds <list/>, <publish> or <withdraw>, not <{name}>")
        pdus.append(_read_pdu(child, name, f"{where}: <{name}> #{index}"))
    return Query(tuple(pdus))


def parse_reply(xml: bytes, where: str) -> ReplyMessage:
    """A server's reply: ``<success/>`` alone, ``<list>`` entries (none at all is an empty list), or
    ``<report_error>`` elements only."""
    root = _message(xml, "reply", where)
    names = _names(root, where)
    if "success" in names:
        if len(names) != 1:
            raise XmlError(f"{where}: a <success/> reply must hold nothing else, it holds {_listing(names)}")
        return SuccessReply()
    if "report_error" in names:
        if any(name != "report_error" for name in names):
            raise XmlError(
                f"{where}: a reply with <report_error> must hold only error reports, it holds "
                f"{_listing(names)}"
            )
        return ErrorReply(
            tuple(_read_error(child, f"{where}: <report_error> #{i}") for i, child in enumerate(root, 1))
        )
    entries: list[ListEntry] = []
    seen: set[str] = set()
    hash_in = _HASH_IN.fullmatch
    # A list of thousands of objects: the checks of _uri and _hash inline, and the place of an entry
    # worded only for an error (the same errors, by the same functions).
    for index, (child, name) in enumerate(zip(root, names, strict=True), start=1):
        if name != "list":
            raise XmlError(f"{where}: a reply holds <success/>, <list> or <report_error>, not <{name}>")
        uri, held = child.get("uri"), child.get("hash")
        if uri is None or not uri.startswith("rsync://") or len(uri) == 8 or not (held and hash_in(held)):
            at = f"{where}: <list> #{index}"
            uri, held = _uri(child, at), _hash(xmlutil.attribute(child, "hash", at), at)
        if uri in seen:
            raise XmlError(f"{where}: <list> #{index}: lists {uri} a second time")
        seen.add(uri)
        entries.append(ListEntry(uri, held.lower()))
    return ListReply(tuple(entries))


def _message(xml: bytes, kind: str, where: str) -> Element:
    root = xmlutil.parse(xml, where)
    xmlutil.expect_root(root, NS, ("msg",), where)
    version = root.get("version")
    if version != VERSION:
        raise XmlError(f"{where}: RFC 8181 messages are version {VERSION}, this one is version {version!r}")
    found = root.get("type")
    if found != kind:
        raise XmlError(f"{where}: expected a message of type {kind!r}, found type {found!r}")
    if (root.text or "").strip():
        raise XmlError(f"{where}: <msg> holds text outside its elements")
    return root


def _names(root: Element, where: str) -> list[str]:
    """The local name of each element of ``<msg>``, checked as :func:`_pdu_name` checks them, in order; a
    tag's namespace is checked once (a list reply holds thousands of the same tag)."""
    known: dict[str, str] = {}
    names = []
    for child in root:
        tag = child.tag
        name = known.get(tag) if isinstance(tag, str) else None
        if name is None or (child.tail and child.tail.strip()):
            name = _pdu_name(child, where)
            if isinstance(tag, str):
                known[tag] = name
        names.append(name)
    return names


def _pdu_name(child: Element, where: str) -> str:
    namespace, name = xmlutil.split_tag(child.tag) if isinstance(child.tag, str) else ("", "?")
    if not xmlutil.same_namespace(namespace, NS):
        raise XmlError(f"{where}: <{name}> is not in the RFC 8181 namespace {NS}")
    if (child.tail or "").strip():
        raise XmlError(f"{where}: <msg> holds text outside its elements (after <{name}>)")
    return name


def _listing(names: list[str]) -> str:
    return ", ".join(f"<{name}>" for name in names)


def _read_pdu(element: Element, name: str, where: str) -> Pdu:
    uri = _uri(element, where)
    where = f"{where} ({uri})"
    tag = element.get("tag")
    if name == "withdraw":
        if (element.text or "").strip() or len(element):
            raise XmlError(f"{where}: <withdraw> must be empty")
        return Withdraw(uri, _hash(xmlutil.attribute(element, "hash", where), where), tag)
    if len(element):
        raise XmlError(f"{where}: <publish> holds only the Base64 of the object, not elements")
    held = element.get("hash")
    der = xmlutil.b64decode(element.text, where)
    return Publish(uri, der, None if held is None else _hash(held, where), tag)


def _read_error(element: Element, where: str) -> ReportError:
    code = xmlutil.attribute(element, "error_code", where)
    text: str | None = None
    failed: bytes | None = None
    for child in element:
        namespace, name = xmlutil.split_tag(child.tag) if isinstance(child.tag, str) else ("", "?")
        if not xmlutil.same_namespace(namespace, NS):
            raise XmlError(f"{where}: <{name}> is not in the RFC 8181 namespace {NS}")
        if name == "error_text" and text is None:
            text = child.text or ""
        elif name == "failed_pdu" and failed is None:
            pdus = list(child)
            if len(pdus) != 1 or (child.text or "").strip():
                raise XmlError(f"{where}: <failed_pdu> must hold exactly one PDU element")
            failed = _canonical(pdus[0], f"{where}: <failed_pdu>")
        else:
            raise XmlError(
                f"{where}: holds at most one <error_text> and one <failed_pdu>, found another <{name}>"
            )
    return ReportError(code, element.get("tag"), text, failed)


def _uri(element: Element, where: str) -> str:
    uri = xmlutil.attribute(element, "uri", where)
    if not uri.startswith("rsync://") or len(uri) == len("rsync://"):
        raise XmlError(f"{where}: uri {uri!r} is not an rsync URI")
    return uri


def _hash(value: str, where: str) -> str:
    if not _HASH_IN.fullmatch(value):
        raise XmlError(f"{where}: hash {value!r} is not hexadecimal SHA-256 (at most 64 hex digits)")
    return value.lower()


def _canonical(element: Element, where: str) -> bytes:
    """One PDU element as standalone XML in one form (local name in our namespace, attributes sorted,
    Base64 without line breaks), so that the same PDU compares equal however a peer laid it out."""
    if not isinstance(element.tag, str):
        raise XmlError(f"{where}: must hold a PDU element")
    name = xmlutil.split_tag(element.tag)[1]
    if len(element):
        raise XmlError(f"{where}: <{name}> must not hold elements")
    attributes = "".join(
        f' {key}="{_attribute(value)}"' for key, value in sorted(element.attrib.items()) if key[:1] != "{"
    )
    text = element.text or ""
    text = "".join(text.split()) if name == "publish" else text.strip()
    return f'<{name} xmlns="{NS}"{attributes}>{_text(text)}</{name}>'.encode()


# -- writing ------------------------------------------------------------------------------------------


def render(value: Message) -> bytes:
    """The XML of a query or reply, in UTF-8 with no declaration. A value that RFC 8181 cannot carry (a
    hash that is not 64 hex digits, a URI that is not rsync, an unknown error code, a character XML
    cannot hold) is a ValueError: it is a fault of the caller, never of a peer."""
    if isinstance(value, (ListQuery, Query)):
        kind, body = "query", _query_body(value)
    else:
        kind, body = "reply", _reply_body(value)
    opening = f'<msg xmlns="{NS}" version="{VERSION}" type="{kind}"'
    if not body:
        return f"{opening}/>\n".encode()
    return (opening + ">\n" + "".join(f"  {line}\n" for line in body) + "</msg>\n").encode()


def pdu_xml(pdu: Pdu) -> bytes:
    """A PDU as a standalone element, in the form :class:`ReportError` keeps ``failed_pdu`` in (a server
    building an error report for a PDU it refuses uses this)."""
    element = xmlutil.parse(_render_pdu(pdu, f' xmlns="{NS}"').encode(), "failed_pdu")
    return _canonical(element, "failed_pdu")


def _query_body(value: QueryMessage) -> list[str]:
    if isinstance(value, ListQuery):
        return ["<list/>"]
    return [_render_pdu(pdu) for pdu in value.pdus]


def _reply_body(value: ReplyMessage) -> list[str]:
    if isinstance(value, SuccessReply):
        return ["<success/>"]
    if isinstance(value, ListReply):
        return [
            f'<list uri="{_attribute(_out_uri(entry.uri))}" hash="{_out_hash(entry.hash)}"/>'
            for entry in value.entries
        ]
    return [_render_error(error) for error in value.errors]


def _render_pdu(pdu: Pdu, extra: str = "") -> str:
    attributes = extra
    if pdu.tag is not None:
        attributes += f' tag="{_attribute(pdu.tag)}"'
    attributes += f' uri="{_attribute(_out_uri(pdu.uri))}"'
    if pdu.hash is not None:
        attributes += f' hash="{_out_hash(pdu.hash)}"'
    if isinstance(pdu, Withdraw):
        return f"<withdraw{attributes}/>"
    return f"<publish{attributes}>{xmlutil.b64encode(pdu.der)}</publish>"


def _render_error(error: ReportError) -> str:
    if error.code not in ERROR_CODES:
        raise ValueError(f"{error.code!r} is not an RFC 8181 error code ({', '.join(ERROR_CODES)})")
    attributes = f' error_code="{error.code}"'
    if error.tag is not None:
        attributes += f' tag="{_attribute(error.tag)}"'
    inner = ""
    if error.text is not None:
        readable = _NOT_XML_CHAR.sub("\N{REPLACEMENT CHARACTER}", error.text)
        inner += f"<error_text>{_text(readable)}</error_text>"
    if error.failed_pdu is not None:
        element = xmlutil.parse(error.failed_pdu, "failed_pdu")
        pdu = _canonical(element, "failed_pdu").decode().replace(f' xmlns="{NS}"', "", 1)
        inner += f"<failed_pdu>{pdu}</failed_pdu>"
    if not inner:
        return f"<report_error{attributes}/>"
    return f"<report_error{attributes}>{inner}</report_error>"


def _out_uri(uri: str) -> str:
    if not uri.startswith("rsync://") or len(uri) == len("rsync://"):
        raise ValueError(f"{uri!r} is not an rsync URI")
    return uri


def _out_hash(value: str) -> str:
    if not _HASH_OUT.fullmatch(value):
        raise ValueError(f"hash {value!r} is not 64 lowercase hex digits (SHA-256)")
    return value


def _attribute(value: str) -> str:
    if _ATTRIBUTE_PLAIN.fullmatch(value):  # nothing to check or escape: every URI of a list reply
        return value
    _check_chars(value)
    return value.translate(_ATTRIBUTE_ESCAPES)


def _text(value: str) -> str:
    _check_chars(value)
    return value.translate(_TEXT_ESCAPES)


def _check_chars(value: str) -> None:
    bad = _NOT_XML_CHAR.search(value)
    if bad:
        raise ValueError(f"U+{ord(bad.group()):04X} at offset {bad.start()} cannot be written in XML")
