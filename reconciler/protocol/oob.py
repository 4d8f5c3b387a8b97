"""RFC 8183 out-of-band setup files: the four XML documents two operators exchange by hand before
their CAs talk RFC 6492 or RFC 8181.

A child sends its parent a ``child_request`` and gets a ``parent_response``; a CA sends a publication
server a ``publisher_request`` and gets a ``repository_response``. Each carries the sender's BPKI trust
anchor certificate (its *identity*) in Base64, and the responses say where to send messages and under
which handles.

The files come from registries' web portals and from other implementations, and real ones deviate from
the RFC text: every tolerance here is there because a named registry or implementation sends it (see each
function's docstring). Everything else is refused with a text that says which file, which attribute or
element, what value, and what to do about it. The values in these files are public (they are exchanged
in the clear), so a refusal may quote them; long ones are shortened.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TypeAlias
from urllib.parse import urlsplit
from xml.etree.ElementTree import Element

from reconciler.protocol import bpki, xmlutil
from reconciler.protocol.errors import ProtocolError, XmlError

NS = "http://www.hactrn.net/uris/rpki/rpki-setup/"

#: The namespace of rpki.net's "myrpki" files, the format used before RFC 8183 (ARIN sent its
#: ``<parent>`` files in it).
MYRPKI_NS = "http://www.hactrn.net/uris/rpki/myrpki/"

#: An RFC 8183 file is one certificate and a few attributes (a few KB); its schema allows Base64 of up to
#: 512000 characters, and referrals add some more. Anything larger is not a setup file.
MAX_FILE_BYTES = 1 << 20

#: RFC 8183 schema: ``handle = xsd:string { maxLength="255" pattern="[\\-_A-Za-z0-9/]*" }``, at least one
#: character (an empty handle names nobody).
_HANDLE = re.compile(r"[-_A-Za-z0-9/]{1,255}")
_HANDLE_RULE = "a handle is 1 to 255 of the characters A-Z a-z 0-9 - _ /"

#: RFC 8183 schema: ``uri = xsd:anyURI { maxLength="4096" }``.
_MAX_URI = 4096

#: The schema of rpki.net's left-right protocol, where ``tag`` comes from: a token of at most 1024
#: characters. rpki-rs reads it as ASCII; control characters would not survive an XML attribute.
_MAX_TAG = 1024
_TAG = re.compile(r"[\x20-\x7e]*")

_SHOWN = 100

#: What each of the four files is, for the refusal of one given where another is expected.
_ROLES = {
    "child_request": "what a child sends its parent",
    "parent_response": "what a parent sends back to its child",
    "publisher_request": "what a CA sends its publication server",
    "repository_response": "what a publication server sends back to a CA",
}


@dataclass(frozen=True)
class ChildRequest:
    """RFC 8183 §5.2.1: a CA asks to become a child; ``child_handle`` is the name it would like."""

    child_handle: str
    identity: bytes
    tag: str | None = None


@dataclass(frozen=True)
class ParentResponse:
    """RFC 8183 §5.2.2: the parent's answer. ``child_handle`` is the handle the parent chose (it need not
    be the one asked for) and, with ``parent_handle``, is what up-down messages must carry."""

    service_uri: str
    parent_handle: str
    child_handle: str
    identity: bytes
    tag: str | None = None
    offer: bool = False


@dataclass(frozen=True)
class PublisherRequest:
    """RFC 8183 §5.2.3: a CA asks a publication server for a place to publish."""

    publisher_handle: str
    identity: bytes
    tag: str | None = None


@dataclass(frozen=True)
class RepositoryResponse:
    """RFC 8183 §5.2.4: the server's answer. ``sia_base`` always ends with ``/`` (it is a directory)."""

    service_uri: str
    publisher_handle: str
    sia_base: str
    identity: bytes
    rrdp_notification_uri: str | None = None
    tag: str | None = None


Message: TypeAlias = ChildRequest | ParentResponse | PublisherRequest | RepositoryResponse


# ---------------------------------------------------------------------------------------------- parsing


def parse_child_request(data: bytes, where: str) -> ChildRequest:
    """A ``child_request`` file, as a parent receives it from a would-be child."""
    root = _root(data, "child_request", where)
    here = f"{where}: <child_request>"
    _only_attributes(root, {"version", "child_handle", "tag"}, here)
    _only_elements(root, {"child_bpki_ta"}, here)
    return ChildRequest(
        child_handle=_handle(root, "child_handle", here),
        identity=_identity(root, "child_bpki_ta", where),
        tag=_tag(root, here),
    )


def parse_parent_response(data: bytes, where: str) -> ParentResponse:
    """A ``parent_response`` file, as a child downloads it from its parent's portal.

    Unknown attributes are ignored (rpki.net's rpkid adds ``valid_until``), and so are ``<referral>``
    elements (rpkid); ``<offer/>`` (AFRINIC, rpkid) is noted but nothing depends on it."""
    root = _root(data, "parent_response", where)
    here = f"{where}: <parent_response>"
    return ParentResponse(
        service_uri=_service_uri(root, here),
        parent_handle=_handle(root, "parent_handle", here),
        child_handle=_handle(root, "child_handle", here),
        identity=_identity(root, "parent_bpki_ta", where),
        tag=_tag(root, here),
        offer=any(True for _ in xmlutil.children(root, "offer")),
    )


def parse_publisher_request(data: bytes, where: str) -> PublisherRequest:
    """A ``publisher_request`` file, as a publication server receives it from a CA.

    ``<referral>`` elements (RFC 8183 §5.2.3, written by rpki.net) are allowed and not used: publishers
    are declared by the operator, not authorised by a referral."""
    root = _root(data, "publisher_request", where)
    here = f"{where}: <publisher_request>"
    _only_attributes(root, {"version", "publisher_handle", "tag"}, here)
    _only_elements(root, {"publisher_bpki_ta", "referral"}, here)
    return PublisherRequest(
        publisher_handle=_handle(root, "publisher_handle", here),
        identity=_identity(root, "publisher_bpki_ta", where),
        tag=_tag(root, here),
    )


def parse_repository_response(data: bytes, where: str) -> RepositoryResponse:
    """A ``repository_response`` file, as a CA receives it from its publication server.

    Unknown attributes and elements are ignored, as in a ``parent_response``; ``rrdp_notification_uri``
    may be missing (RFC 8183 makes it optional; Krill always writes it, other servers may not)."""
    root = _root(data, "repository_response", where)
    here = f"{where}: <repository_response>"
    notify = root.get("rrdp_notification_uri")
    return RepositoryResponse(
        service_uri=_service_uri(root, here),
        publisher_handle=_handle(root, "publisher_handle", here),
        sia_base=_sia_base(xmlutil.attribute(root, "sia_base", here), here),
        identity=_identity(root, "repository_bpki_ta", where),
        rrdp_notification_uri=None if notify is None else _rrdp_uri(notify, here),
        tag=_tag(root, here),
    )


def _root(data: bytes, name: str, where: str) -> Element:
    """The root element, which must be ``name`` in the RFC 8183 namespace, ``version="1"``.

    The namespace is accepted with or without its trailing slash (Krill 0.9, as NIC.br ran it, wrote it
    without) and under any prefix (APNIC writes ``oob:`` and ``ns0:``). A file in rpki.net's older
    "myrpki" format (ARIN's ``<parent>``) gets a refusal that says what to ask for instead."""
    root = xmlutil.parse(data, where, limit=MAX_FILE_BYTES)
    namespace, local = xmlutil.split_tag(root.tag)
    if xmlutil.same_namespace(namespace, MYRPKI_NS):
        raise XmlError(
            f"{where}: a pre-RFC 8183 'myrpki' <{_show(local, quoted=False)}> file (namespace {namespace}), "
            f"a format no current parent or server speaks: ask the registry for an RFC 8183 {name} file "
            "instead"
        )
    if xmlutil.same_namespace(namespace, NS) and local in _ROLES and local != name:
        raise XmlError(
            f"{where}: a <{local}> file ({_ROLES[local]}) where a <{name}> ({_ROLES[name]}) is expected: "
            "check which file is named here"
        )
    xmlutil.expect_root(root, NS, (name,), where)
    version = xmlutil.attribute(root, "version", f"{where}: <{name}>")
    if version != "1":
        raise ProtocolError(
            f"{where}: <{name}> has version={_show(version)}; RFC 8183 defines version 1 only: ask the "
            "sender for an RFC 8183 file"
        )
    return root


def _only_attributes(root: Element, allowed: set[str], where: str) -> None:
    """Requests carry only the attributes RFC 8183 defines, as rpki-rs (and so Krill) demands: an extra
    one is most likely a misspelt required one, and a parent or server should not guess."""
    unknown = sorted(name for name in root.attrib if name not in allowed)
    if unknown:
        raise ProtocolError(
            f"{where} has the unknown attribute(s) {', '.join(_show(n) for n in unknown)}; RFC 8183 gives it "
            f"only {', '.join(sorted(allowed))}: ask the sender for a file without them"
        )


def _only_elements(root: Element, allowed: set[str], where: str) -> None:
    """Requests hold only the elements RFC 8183 defines (rpki-rs refuses anything else too)."""
    for child in root:
        local = xmlutil.split_tag(child.tag)[1] if isinstance(child.tag, str) else ""
        if local and local not in allowed:
            raise ProtocolError(
                f"{where} holds an unexpected <{_show(local, quoted=False)}> element; RFC 8183 gives it only "
                f"{', '.join(f'<{n}>' for n in sorted(allowed))}: ask the sender for a corrected file"
            )


def _identity(root: Element, name: str, where: str) -> bytes:
    """The DER of the one ``<name>`` element's certificate, which must load as a BPKI identity.

    The Base64 may be on one line (AFRINIC), in 64-column lines with a trailing blank line (APNIC),
    indented (rpki.net) or broken at odd places (files pasted through web forms): ASCII whitespace is
    dropped. A non-ASCII character (a zero-width space copied from a portal) is refused with its name
    and offset (see :func:`xmlutil.b64decode`)."""
    found = list(xmlutil.children(root, name))
    here = f"{where}: <{name}>"
    if not found:
        raise XmlError(f"{where}: no <{name}> element, which holds the sender's identity certificate")
    if len(found) > 1:
        raise XmlError(f"{where}: {len(found)} <{name}> elements; a file carries exactly one identity")
    der = xmlutil.b64decode(found[0].text, here)
    bpki.load_identity(der, here)
    return der


def _handle(root: Element, name: str, where: str) -> str:
    """A handle attribute, checked against RFC 8183's pattern."""
    value = xmlutil.attribute(root, name, where)
    _check_handle(name, value, where)
    return value


def _check_handle(name: str, value: str, where: str) -> None:
    """Refuses a handle outside RFC 8183's pattern, naming the first character that is not allowed:
    Krill's testbed saw zero-width spaces pasted into handles as well as into Base64."""
    if _HANDLE.fullmatch(value):
        return
    if not value:
        raise ProtocolError(f"{where}: {name} is empty; {_HANDLE_RULE}")
    if len(value) > 255:
        raise ProtocolError(f"{where}: {name} {_show(value)} has {len(value)} characters; {_HANDLE_RULE}")
    index, char = next((i, c) for i, c in enumerate(value) if not _HANDLE.fullmatch(c))
    raise ProtocolError(
        f"{where}: {name} {_show(value)} holds {_describe(char)} at offset {index}; {_HANDLE_RULE}: "
        f"{_fix_for(char)}"
    )


def _tag(root: Element, where: str) -> str | None:
    """The optional ``tag``, a session identifier echoed back to the sender (rpkid writes ``A0001``)."""
    value = root.get("tag")
    if value is not None:
        _check_tag(value, where)
    return value


def _check_tag(value: str, where: str) -> None:
    if len(value) > _MAX_TAG:
        raise ProtocolError(f"{where}: tag {_show(value)} is longer than {_MAX_TAG} characters")
    if not _TAG.fullmatch(value):
        index, char = next((i, c) for i, c in enumerate(value) if not _TAG.fullmatch(c))
        raise ProtocolError(
            f"{where}: tag {_show(value)} holds {_describe(char)} at offset {index}; a tag is printable "
            f"ASCII: {_fix_for(char)}"
        )


def _service_uri(root: Element, where: str) -> str:
    """``service_uri``: where RFC 6492 or RFC 8181 messages go.

    Plain ``http://`` is accepted: APNIC's production parent and publication server give one, and the
    messages are CMS-signed, so the transport adds no security that is relied on (Krill accepts it too)."""
    value = xmlutil.attribute(root, "service_uri", where)
    return _check_uri("service_uri", value, ("http", "https"), where, "it must be an http:// or https:// URL")


def _sia_base(value: str, where: str) -> str:
    """``sia_base``: the rsync directory the publisher may write under, always returned with a trailing
    slash: APNIC's repository_response omits it, and the value names a directory either way (rpki-rs
    inserts the slash when joining; relative resolution would drop the last segment)."""
    checked = _check_uri("sia_base", value, ("rsync",), where, "it must be an rsync:// URI of a directory")
    path = urlsplit(checked).path
    segments = path.strip("/").split("/")
    if not path.strip("/") or any(s in {"", ".", ".."} for s in segments):
        raise ProtocolError(
            f"{where}: sia_base {_show(value)} is not a directory below an rsync module (rsync://host/"
            f"module/...; no empty, '.' or '..' segments): ask the publication server for a corrected file"
        )
    return checked if checked.endswith("/") else checked + "/"


def _rrdp_uri(value: str, where: str) -> str:
    """``rrdp_notification_uri``: RFC 8182 notification files are fetched over HTTPS only."""
    return _check_uri(
        "rrdp_notification_uri", value, ("https",), where, "RFC 8182 notification files are https:// only"
    )


def _check_uri(name: str, value: str, schemes: tuple[str, ...], where: str, rule: str) -> str:
    """``value`` when it is an absolute URI with one of ``schemes``, a host, ASCII without spaces, and
    at most 4096 characters (the RFC 8183 schema's bound); otherwise a refusal naming the attribute."""
    fix = "ask the sender for a corrected file"
    if len(value) > _MAX_URI:
        raise ProtocolError(f"{where}: {name} {_show(value)} has more than {_MAX_URI} characters; {fix}")
    bad = next(((i, c) for i, c in enumerate(value) if not "\x21" <= c <= "\x7e"), None)
    if bad is not None:
        raise ProtocolError(
            f"{where}: {name} {_show(value)} holds {_describe(bad[1])} at offset {bad[0]}, which a URI "
            f"cannot have: {_fix_for(bad[1])}"
        )
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises ValueError on a port that is not a number in range
    except ValueError as exc:
        raise ProtocolError(f"{where}: {name} {_show(value)} is not a URI ({exc}); {fix}") from exc
    if parts.scheme.lower() not in schemes or not parts.hostname:
        raise ProtocolError(f"{where}: {name} {_show(value)}: {rule}; {fix}")
    if parts.scheme == "rsync" and (parts.query or parts.fragment):
        raise ProtocolError(f"{where}: {name} {_show(value)} has a query or fragment: {rule}; {fix}")
    return value


def _describe(char: str) -> str:
    """A character as an error message names it: ``U+200B (ZERO WIDTH SPACE)``, or ``' '``."""
    if " " < char <= "~":
        return f"the character {char!r}"
    name = unicodedata.name(char, "a control character")
    return f"the character U+{ord(char):04X} ({name})"


def _fix_for(char: str) -> str:
    """What to do about an unwanted character: invisible ones come from copying out of a web page."""
    if ord(char) > 127 or not char.isprintable():
        return "type the value again without it (invisible characters often come from copying a web page)"
    return "ask the sender for a corrected file"


def _show(value: str, *, quoted: bool = True) -> str:
    """A value as an error message quotes it: non-ASCII and control characters escaped (so that an
    invisible character shows), and shortened when long."""
    text = value if len(value) <= _SHOWN else value[:_SHOWN] + "..."
    escaped = text.encode("ascii", "backslashreplace").decode("ascii")
    escaped = "".join(c if c.isprintable() else f"\\x{ord(c):02x}" for c in escaped)
    return f"'{escaped}'" if quoted else escaped


# -------------------------------------------------------------------------------------------- rendering


def render(message: Message) -> bytes:
    """The file for ``message``, as RFC 8183 writes it: the namespace with its slash, ``version="1"``,
    the identity in 64-column Base64 lines. Only what the parsers read is written: a handle, URI or tag
    they would refuse, or an identity that does not load, raises :class:`ProtocolError` instead."""
    if isinstance(message, ChildRequest):
        return _render_request("child", message.child_handle, message.identity, message.tag)
    if isinstance(message, PublisherRequest):
        return _render_request("publisher", message.publisher_handle, message.identity, message.tag)
    if isinstance(message, ParentResponse):
        return _render_parent_response(message)
    return _render_repository_response(message)


def _render_request(role: str, handle: str, identity: bytes, tag: str | None) -> bytes:
    name = f"{role}_request"
    where = f"<{name}> to write"
    _check_handle(f"{role}_handle", handle, where)
    return _document(
        name,
        [(f"{role}_handle", handle), ("tag", _written_tag(tag, where))],
        [_ta_element(f"{role}_bpki_ta", identity, where)],
    )


def _render_parent_response(message: ParentResponse) -> bytes:
    where = "<parent_response> to write"
    _check_uri("service_uri", message.service_uri, ("http", "https"), where, "it must be http(s)://")
    _check_handle("parent_handle", message.parent_handle, where)
    _check_handle("child_handle", message.child_handle, where)
    attributes = [
        ("service_uri", message.service_uri),
        ("parent_handle", message.parent_handle),
        ("child_handle", message.child_handle),
        ("tag", _written_tag(message.tag, where)),
    ]
    body = [_ta_element("parent_bpki_ta", message.identity, where)]
    if message.offer:
        body.append("  <offer/>")
    return _document("parent_response", attributes, body)


def _render_repository_response(message: RepositoryResponse) -> bytes:
    where = "<repository_response> to write"
    _check_uri("service_uri", message.service_uri, ("http", "https"), where, "it must be http(s)://")
    _check_handle("publisher_handle", message.publisher_handle, where)
    notify = message.rrdp_notification_uri
    attributes = [
        ("service_uri", message.service_uri),
        ("publisher_handle", message.publisher_handle),
        ("sia_base", _sia_base(message.sia_base, where)),
        ("rrdp_notification_uri", None if notify is None else _rrdp_uri(notify, where)),
        ("tag", _written_tag(message.tag, where)),
    ]
    return _document(
        "repository_response", attributes, [_ta_element("repository_bpki_ta", message.identity, where)]
    )


def _written_tag(tag: str | None, where: str) -> str | None:
    if tag is not None:
        _check_tag(tag, where)
    return tag


def _ta_element(name: str, identity: bytes, where: str) -> str:
    bpki.load_identity(identity, f"{where}: <{name}>")
    return f"  <{name}>\n{xmlutil.b64encode(identity)}\n  </{name}>"


def _document(name: str, attributes: Iterable[tuple[str, str | None]], body: list[str]) -> bytes:
    written = "".join(f" {key}={_quote(value)}" for key, value in attributes if value is not None)
    lines = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        f'<{name} xmlns="{NS}" version="1"{written}>',
        *body,
        f"</{name}>",
        "",
    ]
    return "\n".join(lines).encode("utf-8")


def _quote(value: str) -> str:
    """An attribute value in double quotes, with the characters XML would change or choke on escaped
    (tabs and line ends as character references: a parser would turn them into spaces otherwise)."""
    escaped = (
        value.replace("&", "&amp;")
        .replace("<", "&lt;")
        .replace(">", "&gt;")
        .replace('"', "&quot;")
        .replace("\t", "&#9;")
        .replace("\n", "&#10;")
        .replace("\r", "&#13;")
    )
    return f'"{escaped}"'
