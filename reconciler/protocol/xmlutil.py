"""Reading the three protocols' XML the way real peers write it.

Real files use the namespace with or without its trailing slash, any prefix (``oob:``, ``ns0:``) or
none, attributes in any order, and Base64 wrapped in lines, indented, or pasted from a web page with a
zero-width space in it. Elements are matched on their local name once the namespace is known to be the
expected one; Base64 loses its ASCII whitespace and refuses anything else with the character's position.
No DTD, no entity, nothing external is ever read (defusedxml).
"""

from __future__ import annotations

import base64
import binascii
import re
import unicodedata
from collections.abc import Iterator
from xml.etree.ElementTree import Element, ParseError

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring

from reconciler.protocol.errors import XmlError

#: The largest protocol message read: LACNIC's list_response is 240 KB; a key roll of a big CA with
#: several 220 KB certificates stays well below.
MAX_MESSAGE_BYTES = 4 << 20
_ASCII_SPACE = re.compile(rb"[ \t\r\n]+")


def parse(data: bytes, where: str, *, limit: int = MAX_MESSAGE_BYTES) -> Element:
    """The root element of ``data``; an :class:`XmlError` naming ``where`` for anything else."""
    if len(data) > limit:
        raise XmlError(f"{where}: {len(data)} bytes, more than the {limit} a protocol message may have")
    try:
        return fromstring(data, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except DefusedXmlException as exc:
        raise XmlError(f"{where}: forbidden XML construct ({type(exc).__name__})") from exc
    except ParseError as exc:
        raise XmlError(f"{where}: not well-formed XML: {exc}") from exc
    except LookupError as exc:  # expat: an XML declaration naming an encoding Python does not know
        raise XmlError(f"{where}: not well-formed XML: {exc}") from exc
    except ValueError as exc:  # a declared encoding expat cannot use: utf-7 (multi-byte), idna
        raise XmlError(f"{where}: not readable XML ({exc}): write it in UTF-8") from exc


def split_tag(tag: str) -> tuple[str, str]:
    """``{namespace}local`` as (namespace, local); no namespace gives ``""``."""
    if tag.startswith("{"):
        namespace, _, local = tag[1:].partition("}")
        return namespace, local
    return "", tag


def same_namespace(found: str, expected: str) -> bool:
    """True when ``found`` is ``expected`` with or without its trailing slash (Krill 0.9 wrote it
    without)."""
    return found.rstrip("/") == expected.rstrip("/")


def expect_root(root: Element, namespace: str, names: tuple[str, ...], where: str) -> str:
    """The root's local name when it is one of ``names`` in ``namespace``; else an :class:`XmlError`
    saying what was found instead."""
    found_ns, local = split_tag(root.tag)
    if not same_namespace(found_ns, namespace) or local not in names:
        wanted = " or ".join(f"<{n}>" for n in names)
        found = found_ns or "no namespace"
        raise XmlError(f"{where}: expected {wanted} in namespace {namespace}, found <{local}> in {found}")
    return local


def children(element: Element, name: str) -> Iterator[Element]:
    """The direct children of ``element`` with this local name, in any namespace prefix."""
    for child in element:
        if isinstance(child.tag, str) and split_tag(child.tag)[1] == name:
            yield child


def attribute(element: Element, name: str, where: str) -> str:
    """A required attribute, or an :class:`XmlError` naming it."""
    value = element.get(name)
    if value is None:
        raise XmlError(f"{where}: <{split_tag(element.tag)[1]}> has no {name} attribute")
    return value


def b64decode(text: str | None, where: str) -> bytes:
    """Base64 as real peers paste it: ASCII whitespace anywhere is dropped; any other character outside
    the Base64 alphabet (a zero-width space copied from a portal) is refused with its name and place."""
    text = text or ""
    raw = text.encode("utf-8")
    # One C pass for the usual case; the character loop only to name what is wrong (a message of
    # thousands of objects holds megabytes of Base64).
    for index, char in enumerate("" if text.isascii() else text):
        if ord(char) > 127:
            name = unicodedata.name(char, f"U+{ord(char):04X}")
            raise XmlError(
                f"{where}: the Base64 holds the non-ASCII character U+{ord(char):04X} ({name}) at offset "
                f"{index}: copy it again without it (it often comes from a web page)"
            )
    compact = _ASCII_SPACE.sub(b"", raw)
    if not compact:
        raise XmlError(f"{where}: the Base64 is empty")
    if len(compact) % 4:
        # Python decodes such text anyway when '=' falls on a quantum boundary, silently dropping
        # characters (Krill's testbed file with one inserted character decodes to a broken certificate).
        raise XmlError(
            f"{where}: not valid Base64: {len(compact)} characters without white space, not a multiple "
            "of 4 (a character is missing or one too many): copy the whole value again"
        )
    try:
        return binascii.a2b_base64(compact, strict_mode=True)
    except binascii.Error as exc:
        raise XmlError(f"{where}: not valid Base64 ({exc})") from exc


def b64encode(data: bytes) -> str:
    """Base64 in 64-column lines, as RFC 8183's examples and most peers write it."""
    text = base64.b64encode(data).decode("ascii")
    return "\n".join(text[i : i + 64] for i in range(0, len(text), 64))
