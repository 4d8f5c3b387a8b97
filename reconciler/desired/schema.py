"""The YAML format as operators write it: pydantic models for ``rpki.yaml`` and ``cas/**/*.yaml``.

These models check the *shape* of each file on its own -- which keys exist, what type each value has,
whether an AS number or a prefix can be read at all -- and carry the descriptions that end up in the JSON
Schema for editors. Rules that need more than one value (is a ROA inside its CA? does a parent exist?)
live in ``checks.py``, because only there is the whole repository in view.

Every value validator raises a ``PydanticCustomError`` whose message is already worded for an operator, and
whose context may carry a ``hint``; the loader turns those into diagnostics pointing at the YAML.

Regenerate the committed JSON Schema after changing anything here::

    python -m reconciler.desired.schema > schemas/desired-state.schema.json
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import re
from collections.abc import Set as AbstractSet
from datetime import date, timedelta
from decimal import Decimal
from ipaddress import IPv4Address, ip_address
from pathlib import Path
from typing import Annotated, Any, NoReturn

from pydantic import BaseModel, ConfigDict, Discriminator, Field, PlainValidator, Tag, WithJsonSchema
from pydantic.json_schema import models_json_schema
from pydantic_core import PydanticCustomError

from reconciler.desired.model import DesiredState, PublisherQuota, RoaGrouping, SafetyPolicy, Timing
from reconciler.diagnostics import excerpt
from reconciler.resources import (
    AS_MAX,
    IPNetwork,
    ResourceSyntaxError,
    parse_asn,
    parse_asn_range,
    parse_ip_block,
    parse_prefix,
)
from reconciler.rpki import aspa

CA_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9-]{0,63}$"
RSYNC_BASE_PATTERN = r"^rsync://[^/\s]+/[^/\s]+/(\S*/)?$"
DURATION_PATTERN = r"^\s*(\d+\s*[wdhmsWDHMS]\s*)+$"
_ASN_TEXT = r"\s*(?:[Aa][Ss])?\d+\s*"
CA_NAME_RE = re.compile(CA_NAME_PATTERN)
SIGNER_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
_RSYNC_RE = re.compile(r"rsync://(?P<host>[^/\s]+)/(?P<module>[^/\s]+)(?P<path>/\S*)?")
_DURATION_RE = re.compile(DURATION_PATTERN)
_DURATION_PART_RE = re.compile(r"(\d+)\s*([wdhms])", re.IGNORECASE)
_UNIT_SECONDS = {"w": 7 * 86400, "d": 86400, "h": 3600, "m": 60, "s": 1}
# What the JSON Schema allows for a percentage (0% to 100%); the validator reads any "<number>%" so that
# "130%" or "-5%" get a message about the range rather than about the syntax.
PERCENT_PATTERN = r"^\s*(100(\.0*)?|\d{1,2}(\.\d*)?|\.\d+)\s*%\s*$"
_PERCENT_RE = re.compile(r"\s*(?P<number>[+-]?(\d+(\.\d*)?|\.\d+))\s*%\s*")
_NUMBER_RE = re.compile(r"\s*[+-]?(\d+(\.\d*)?|\.\d+)\s*")

CA_NAME_RULE = "use 1 to 64 letters, digits and '-', starting with a letter or digit"


#: Counts and lengths from here on are refused, and not printed: ``0x`` and five thousand ``f`` is a valid
#: YAML integer that Python cannot turn into text, so every message, plan and audit record quoting it
#: would crash.
_LARGE = 10**9


def describe(value: object) -> str:
    """Name a YAML value's type the way an operator thinks of it ("a list", not "CommentedSeq")."""
    if value is None:
        text = "nothing (an empty value)"
    elif isinstance(value, bool):
        text = f"{str(value).lower()} (a yes/no value)"
    elif isinstance(value, int) and abs(value) >= _LARGE:
        text = "a very large number"  # Python refuses to print ints of thousands of digits
    elif isinstance(value, int | float):
        text = f"the number {value}"
    elif isinstance(value, str):
        text = f"the text {excerpt(value)}"
    elif type(value).__name__ == "TaggedScalar":  # ruamel keeps unknown tags such as "!foo x"
        text = f"a value with the YAML tag {getattr(value, 'tag', '?')}"
    else:
        kinds = {
            list: "a list",
            dict: "a mapping",
            bytes: "binary data",
            date: "a date",
            AbstractSet: "a set",
        }
        text = next((name for kind, name in kinds.items() if isinstance(value, kind)), None) or (
            f"a {type(value).__name__}"
        )
    return text


def quote_hint(value: object) -> str | None:
    """YAML reads ``1.10`` or ``123`` as numbers; quoting is the fix when text was meant."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return (
            f'put it in quotes: "{_number(value)}"' if _number(value) != "the number" else "put it in quotes"
        )
    return None


def _fail(message: str, hint: str | None = None) -> NoReturn:
    """Reject a value with an operator-facing message (pydantic keeps ``hint`` in the error context)."""
    raise PydanticCustomError("desired_state", message, {"hint": hint} if hint else None)


def _fail_syntax(exc: ResourceSyntaxError) -> NoReturn:
    """Pass on a message from ``resources.py``, which words its own problems."""
    _fail(str(exc))


def _text(value: object, what: str, example: str) -> str:
    """Require a string; ``what`` and ``example`` make the message say what *should* be there."""
    if not isinstance(value, str):
        _fail(f"expected {what}, found {describe(value)}", quote_hint(value) or f"e.g. {example}")
    if not value.strip():
        _fail(f"expected {what}, found empty text", f"e.g. {example}")
    return value


#: The longest duration read: about a century. Every duration is added to a date at some point (a
#: validity, a renewal margin), and dates end in the year 9999 -- in Python and in X.509's GeneralizedTime
#: -- so a longer one would be accepted here and crash apply; none is meant anyway.
MAX_DURATION = timedelta(weeks=5200)
_MAX_SECONDS = int(MAX_DURATION.total_seconds())
_TOO_LONG = f"write at most {5200}w, about 100 years"


def parse_duration(value: object) -> timedelta:
    """Read ``24h``, ``52w``, ``1d12h`` or a number of seconds, up to :data:`MAX_DURATION`; raise
    ``ValueError`` with a hint."""
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ValueError(f"expected a duration, found {describe(value)}")
    if isinstance(value, int):
        seconds = value
    elif len(value) <= 200 and _DURATION_RE.match(value):
        parts = _DURATION_PART_RE.findall(value)
        if any(len(n) > 20 for n, _ in parts):
            raise ValueError(f"the duration {excerpt(value)} is too long ({_TOO_LONG})")
        seconds = sum(int(n) * _UNIT_SECONDS[unit.lower()] for n, unit in parts)
    else:
        raise ValueError(f"{excerpt(value)} is not a duration (write e.g. 30m, 8h, 7d, 52w or 1d12h)")
    shown = excerpt(value) if isinstance(value, str) else _number(seconds)
    if seconds <= 0:
        raise ValueError(f"the duration {shown} must be longer than zero")
    if seconds > _MAX_SECONDS:
        raise ValueError(f"the duration {shown} is too long ({_TOO_LONG})")
    return timedelta(seconds=seconds)


def format_duration(value: timedelta) -> str:
    """Write a duration the way ``parse_duration`` reads it, largest units first (``1w2d``)."""
    seconds = int(value.total_seconds())
    parts = []
    for unit, size in _UNIT_SECONDS.items():
        count, seconds = divmod(seconds, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts) or "0s"


def _duration(value: object) -> timedelta:
    try:
        return parse_duration(value)
    except ValueError as exc:
        _fail(str(exc))


def _ca_name(value: object) -> str:
    text = _text(value, "a CA name", "example-isp")
    if not CA_NAME_RE.match(text):
        _fail(
            f"{excerpt(text)} is not a usable CA name",
            f"{CA_NAME_RULE}; it becomes a file and directory name",
        )
    return text


def _asn(value: object) -> int:
    """One AS number (a ROA names exactly one, so ranges are refused here)."""
    if isinstance(value, bool) or not isinstance(value, int | str):
        _fail(f"expected an AS number, found {describe(value)}", "write AS64496 or 64496")
    try:
        return parse_asn(value)
    except ResourceSyntaxError as exc:
        _fail_syntax(exc)
    except ValueError:  # e.g. Python's limit on converting 5000-digit numbers
        _fail("that is not an AS number", "write AS64496 or 64496")


def _asn_or_range(value: object) -> int | str:
    """An AS number or an ``A-B`` range, kept as written: ``Resources.parse`` reads it later."""
    if isinstance(value, bool) or not isinstance(value, int | str):
        _fail(
            f"expected an AS number or range, found {describe(value)}", 'write AS64496 or "AS64496-AS64511"'
        )
    try:
        found = parse_asn_range(value)
    except ResourceSyntaxError as exc:
        _fail_syntax(exc)
    except ValueError:  # e.g. Python's limit on converting 5000-digit numbers
        _fail("that is not an AS number or range", 'write AS64496 or "AS64496-AS64511"')
    if found == (0, 0):
        # RFC 7607 reserves AS0; rpki-client refuses a certificate that lists it alone ("AS identifier
        # zero is reserved"), and with it the whole tree below.
        _fail(
            "AS0 cannot be a CA's resource: relying parties reject a certificate that lists it",
            "remove it; a ROA for AS0 (never route this prefix) needs no AS resource",
        )
    return value


def _ipv4_block(value: object) -> str:
    text = _text(value, "an IPv4 prefix or range", "192.0.2.0/24")
    try:
        parse_ip_block(text, 4)
    except ResourceSyntaxError as exc:
        _fail_syntax(exc)
    return text


def _ipv6_block(value: object) -> str:
    text = _text(value, "an IPv6 prefix or range", '"2001:db8::/32"')
    try:
        parse_ip_block(text, 6)
    except ResourceSyntaxError as exc:
        _fail_syntax(exc)
    return text


def _prefix(value: object) -> IPNetwork:
    text = _text(value, "an IP prefix", "192.0.2.0/24")
    try:
        return parse_prefix(text)
    except ResourceSyntaxError as exc:
        _fail_syntax(exc)


def _max_length(value: object) -> int:
    """Only the type here: whether 33 is too long depends on the prefix's family (see ``checks.py``)."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < _LARGE:
        _fail(f"expected a prefix length, found {describe(value)}", "write a number such as 24 or 48")
    return value


#: The longest publication base URI. Every object's URI is the base, a CA's name and a file name, and
#: relying parties refuse URIs over 2048 characters (rpki-client's MAX_URI_LENGTH).
MAX_BASE_URI = 1024
_URI_CHARACTERS = re.compile(r"[!-~]*")  # printable ASCII without space: rpki-client's isalnum || ispunct


def _uri_length(text: str) -> None:
    if len(text) > MAX_BASE_URI:
        _fail(
            f"this URI is too long ({len(text)} characters)",
            f"write at most {MAX_BASE_URI} characters: object URIs add a CA's name and a file name to it",
        )


def _uri_characters(text: str) -> None:
    """What relying parties demand of every URI besides its length (rpki-client's valid_uri): printable
    ASCII only, and no path segment (nor host) starting with '.', so never ``.`` or ``..``."""
    if not _URI_CHARACTERS.fullmatch(text):
        _fail(
            f"{excerpt(text)} holds characters other than printable ASCII",
            "relying parties refuse them: write a host in its xn-- form, and no spaces",
        )
    if "/." in text:
        _fail(
            f"{excerpt(text)} has a path segment starting with '.'",
            "relying parties refuse '.', '..' and hidden names in URIs: remove them",
        )


def _rsync_base(value: object) -> str:
    text = _text(value, "an rsync URI", "rsync://rpki.example.net/repo/")
    _uri_length(text)
    if not text.startswith("rsync://"):
        _fail(
            f"{excerpt(text)} is not an rsync URI",
            "it must start with rsync://, e.g. rsync://rpki.example.net/repo/",
        )
    match = _RSYNC_RE.fullmatch(text)
    if match is None:
        _fail(f"{excerpt(text)} needs a host and an rsync module", "write rsync://host/module/")
    if not text.endswith("/"):
        _fail(f"{excerpt(text)} must end with '/'", f"add the trailing slash: {text}/")
    _uri_characters(text)
    return text


HTTPS_BASE_PATTERN = r"^https://[^/\s]+/(\S*/)?$"
_HTTPS_RE = re.compile(HTTPS_BASE_PATTERN)


def _rrdp_base(value: object) -> str:
    """Relying parties fetch RRDP over HTTPS only (RFC 8182 §3.4.1): an https base ending in '/'."""
    text = _text(value, "an https URI", "https://rpki.example.net/rrdp/")
    _uri_length(text)
    if not text.startswith("https://"):
        _fail(
            f"{excerpt(text)} is not an https URI",
            "RRDP is served over HTTPS: https://rpki.example.net/rrdp/",
        )
    if not text.endswith("/"):
        _fail(f"{excerpt(text)} must end with '/'", f"add the trailing slash: {text}/")
    if _HTTPS_RE.fullmatch(text) is None:
        _fail(f"{excerpt(text)} needs a host", "write https://host/path/")
    _uri_characters(text)
    return text


#: Linux's PATH_MAX (less its NUL) and NAME_MAX: a longer path passes validate and fails every command.
MAX_PATH_BYTES = 4095
MAX_NAME_BYTES = 255


def _path(value: object, what: str = "a directory path", example: str = "../keys") -> str:
    """A path that can be resolved later: no NUL byte, and a ``~user`` that exists."""
    text = _text(value, what, example)
    if "\0" in text:
        _fail("a path cannot contain a NUL character", "remove the \\0 escape")
    try:
        os.fsencode(text)
    except UnicodeEncodeError:
        _fail(
            "this path has characters no file name can hold (unpaired UTF-16 surrogates)",
            "write the path as plain UTF-8 text, without \\ud800-\\udfff escapes",
        )
    encoded = text.strip().encode("utf-8", "surrogatepass")
    longest = max(len(name) for name in encoded.split(b"/"))
    if len(encoded) > MAX_PATH_BYTES or longest > MAX_NAME_BYTES:
        size = f"{len(encoded)} bytes" if len(encoded) > MAX_PATH_BYTES else f"a name of {longest} bytes"
        _fail(
            f"this path is too long ({size})",
            f"a path has at most {MAX_PATH_BYTES} bytes, and each name in it at most {MAX_NAME_BYTES}",
        )
    try:
        Path(text.strip()).expanduser()
    except RuntimeError:
        _fail(f"cannot find the home directory in {excerpt(text)}", "write the full path instead of ~user")
    return text


def _file_path(value: object) -> str:
    """A file's path; whether it names a directory is checked in ``checks.py``, once it is resolved."""
    return _path(value, "a file path", "../audit.jsonl")


def _request_path(value: object) -> str:
    """An RFC 8183 file committed in the repository, written relative to the desired-state directory
    (so that every clone finds it); whether it exists and stays inside the repository is checked when it
    is read."""
    text = _path(value, "the path of an RFC 8183 XML file", "children/acme.xml").strip()
    _committed(text, "children/acme.xml")
    return text


def _key_path(value: object) -> str:
    """A router's PKCS#10 request or public key, committed like an RFC 8183 file (``_request_path``)."""
    text = _path(value, "the path of a router's request or public key file", "routers/edge1.csr").strip()
    _committed(text, "routers/edge1.csr")
    return text


def _committed(text: str, example: str) -> None:
    """A file of the repository is named relative to the desired-state directory, so every clone finds it."""
    if text.startswith(("/", "~")):
        _fail(
            f"{excerpt(text)} is not relative to the desired-state directory",
            "commit the file in the repository and write its path from the directory holding rpki.yaml, "
            f"e.g. {example}",
        )


def _router_id(value: object) -> IPv4Address:
    """A BGP Identifier (RFC 6286 §2.1): a non-zero 32-bit number, written as an IPv4 address."""
    hint = "write the router's BGP Identifier as an IPv4 address, e.g. 192.0.2.1"
    text = _text(value, "a BGP Identifier (an IPv4 address)", "192.0.2.1").strip()
    try:
        address = ip_address(text)
    except ValueError:
        _fail(f"{excerpt(text)} is not an IPv4 address", hint)
    if not isinstance(address, IPv4Address):
        _fail(f"{excerpt(text)} is an IPv6 address; a BGP Identifier is 32 bits", hint)
    if not int(address):
        _fail("0.0.0.0 is not a BGP Identifier: RFC 6286 wants a non-zero one", hint)
    return address


#: External children's and publishers' handles follow the CA-name rule: a handle becomes a URL path
#: segment (/rfc6492/<handle>) and a directory name (publishers/<handle>/), and a child's certificate is
#: named after it beside those of local child CAs.
HANDLE_RULE = "use 1 to 64 letters, digits and '-', starting with a letter or digit"


def _handle(value: object) -> str:
    text = _text(value, "a handle", "acme")
    if not CA_NAME_RE.match(text):
        _fail(
            f"{excerpt(text)} is not a usable handle",
            f"{HANDLE_RULE}; it becomes part of a URL and of file names (RFC 8183 lets us choose it)",
        )
    return text


SERVICE_BASE_PATTERN = r"^https?://[^/\s?#]+(/[^\s?#]*)?$"
_SERVICE_BASE_RE = re.compile(SERVICE_BASE_PATTERN)


def _service_base(value: object) -> str:
    """Where children and publishers reach the responder. Plain http is allowed, as real parents use it:
    RFC 6492 and RFC 8181 messages are signed, so their security does not rest on TLS."""
    text = _text(value, "an http(s) URI", "https://ca.example.net/rpki")
    _uri_length(text)
    if not text.startswith(("https://", "http://")):
        _fail(f"{excerpt(text)} is not an http(s) URI", "write e.g. https://ca.example.net/rpki")
    if _SERVICE_BASE_RE.fullmatch(text) is None:
        _fail(
            f"{excerpt(text)} must be scheme, host and an optional path, without '?', '#' or spaces",
            "write e.g. https://ca.example.net/rpki; the service URIs add /rfc6492/<handle>",
        )
    _uri_characters(text)
    return text.rstrip("/")


_UNIT_BYTES = {
    "b": 1,
    "kb": 1000,
    "mb": 1000**2,
    "gb": 1000**3,
    "tb": 1000**4,
    "kib": 1024,
    "mib": 1024**2,
    "gib": 1024**3,
    "tib": 1024**4,
}
SIZE_PATTERN = r"^\s*\d+\s*(([KkMmGgTt][Ii]?)?[Bb])?\s*$"
_SIZE_RE = re.compile(r"\s*(?P<number>\d{1,16})\s*(?P<unit>[kmgt]i?b|b)?\s*", re.IGNORECASE)
MAX_SIZE = 1024**4
_SIZE_HINT = 'write a size such as "100 MiB", "2 GiB" or a number of bytes'


def format_size(value: int) -> str:
    """A byte count the way ``_size`` reads it, in the largest binary unit that divides it."""
    for unit in ("TiB", "GiB", "MiB", "KiB"):
        size = _UNIT_BYTES[unit.lower()]
        if value % size == 0:
            return f"{value // size}{unit}"
    return f"{value}B"


def _size(value: object) -> int:
    """A storage size: bytes as a number, or text with a unit (decimal kB/MB/GB/TB, binary KiB/MiB...)."""
    if isinstance(value, bool) or not isinstance(value, int | str):
        _fail(f"expected a size, found {describe(value)}", _SIZE_HINT)
    if isinstance(value, int):
        size = value
    else:
        match = _SIZE_RE.fullmatch(value)
        if match is None:
            _fail(f"{excerpt(value)} is not a size", _SIZE_HINT)
        size = int(match["number"]) * _UNIT_BYTES[(match["unit"] or "b").lower()]
    if not 1 <= size <= MAX_SIZE:
        shown = excerpt(value) if isinstance(value, str) else _number(value)
        _fail(f"the size {shown} is out of range", "write from 1 byte to 1 TiB")
    return size


def _object_count(value: object) -> int:
    """A number of objects: a whole number, 1 or more."""
    value = _whole(value, "a whole number of objects", 10000)
    if not 1 <= value < _LARGE:
        _fail(f"{_number(value)} is out of range", f"write from 1 to {_LARGE - 1:,}")
    return value


def _number(value: int | float) -> str:
    """A number for a message; Python refuses to print ints of thousands of digits, and nobody reads them."""
    return str(value) if isinstance(value, float) or abs(value) < _LARGE else "the number"


_SHARE_HINT = 'write a share from 0 to 1 such as 0.3, or a percentage such as "30%"'


def parse_share(value: object) -> float:
    """Read a threshold: a number from 0 to 1 (``0.3``) or a percentage text (``"30%"``, up to 100%).

    Raises ``PydanticCustomError`` with an operator-facing message and hint.
    """
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        _fail(f"expected a share from 0 to 1 or a percentage, found {describe(value)}", _SHARE_HINT)
    if isinstance(value, str):
        match = _PERCENT_RE.fullmatch(value)
        if match is None:
            if _NUMBER_RE.fullmatch(value):
                _fail(
                    f"{excerpt(value)} is text, not a number",
                    f'write {value.strip()} without quotes, or a percentage such as "30%"',
                )
            _fail(f"{excerpt(value)} is neither a share from 0 to 1 nor a percentage", _SHARE_HINT)
        percent = Decimal(match["number"])
        if not 0 <= percent <= 100:
            _fail(
                f"{value.strip()} is not between 0% and 100%",
                'write a percentage from "0%" to "100%", e.g. "30%"; "100%" turns the check off',
            )
        return float(percent / 100)
    if (isinstance(value, float) and not math.isfinite(value)) or not 0 <= value <= 1:
        # Above 1 and up to 100, the operator most likely wrote a percentage without its % sign.
        maybe = f'did you mean "{value}%"? ' if 1 < value <= 100 else ""
        _fail(f"{_number(value)} is not between 0 and 1", f"{maybe}{_SHARE_HINT}")
    return float(value)


def _whole(value: object, expected: str, example: int) -> int:
    """``value`` if it is a whole number (``10.0`` and ``"10"`` are refused, as everywhere), else the
    error "expected <expected>", with the hint to drop the quotes from a quoted number."""
    if isinstance(value, bool) or not isinstance(value, int):
        hint = f"write a whole number such as {example}"
        if isinstance(value, str) and _NUMBER_RE.fullmatch(value):
            hint = f"write {value.strip()} without quotes"
        _fail(f"expected {expected}, found {describe(value)}", hint)
    return value


def _count(value: object, of: str, zero: str) -> int:
    """A count of ``of``: a whole number, 0 or more and below :data:`_LARGE`; ``zero`` says what 0 does."""
    value = _whole(value, f"a whole number of {of}", 10)
    if value < 0:
        _fail(f"{_number(value)} is negative", f"write 0 or more; 0 {zero}")
    if value >= _LARGE:
        _fail(f"{_number(value)} is too large", f"write less than {_LARGE:,}")
    return value


def _vrp_count(value: object) -> int:
    """A number of VRPs."""
    return _count(value, "VRPs", "applies the percentage checks to every CA")


def _pair_count(value: object) -> int:
    """A number of ASPA provider authorisations (customer-provider pairs)."""
    return _count(value, "provider authorisations", "makes every removal need approval")


MAX_KEY_GENERATION = 1_000_000


def _key_generation(value: object) -> int:
    """A key generation: a whole number from 1, raised by one to roll the CA's key."""
    value = _whole(value, "a key generation", 2)
    if not 1 <= value <= MAX_KEY_GENERATION:
        _fail(
            f"key generation {_number(value)} is out of range",
            "the first key is generation 1; raise it by one to roll the key",
        )
    return value


SIGNER_TYPES = ("file", "pkcs11", "offline")
TOKEN_LABEL_BYTES = 32  # the size of CK_TOKEN_INFO.label
ENV_NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*$"
_ENV_NAME_RE = re.compile(ENV_NAME_PATTERN)


def _signer_type(value: object) -> str:
    text = _text(value, "a signer type", "file")
    if text not in SIGNER_TYPES:
        _fail(f"signer type {excerpt(text)} is not supported", "write 'file', 'pkcs11' or 'offline'")
    return text


def _module_path(value: object) -> str:
    return _path(value, "the path of a PKCS#11 library", "/usr/lib/softhsm/libsofthsm2.so")


def _token_label(value: object) -> str:
    """PKCS#11 token labels are at most 32 bytes (CK_TOKEN_INFO.label); a longer one can never match."""
    text = _text(value, "a token label", "rpki")
    if len(text.encode()) > TOKEN_LABEL_BYTES:
        _fail(
            f"the token label {excerpt(text)} is longer than 32 bytes",
            "PKCS#11 token labels have at most 32 bytes",
        )
    return text


def _env_name(value: object) -> str:
    """The *name* of the variable holding a PIN or passphrase: the secret must never be written in Git."""
    text = _text(value, "the name of an environment variable", "RPKI_HSM_PIN")
    if not _ENV_NAME_RE.match(text):
        _fail(
            f"{excerpt(text)} is not an environment variable name",
            "write the variable's name (letters, digits and '_'), e.g. RPKI_HSM_PIN; "
            "never the PIN or passphrase itself",
        )
    return text


def _string(value: object) -> str:
    if not isinstance(value, str):
        _fail(f"expected text, found {describe(value)}", quote_hint(value))
    return value


def _flag(value: object) -> bool:
    if not isinstance(value, bool):
        _fail(f"expected true or false, found {describe(value)}", "write true or false")
    return value


_ASN_INT_SCHEMA = {"type": "integer", "minimum": 0, "maximum": AS_MAX}
_PATH_SCHEMA = {"type": "string", "minLength": 1, "maxLength": MAX_PATH_BYTES}

CaName = Annotated[
    str, PlainValidator(_ca_name), WithJsonSchema({"type": "string", "pattern": CA_NAME_PATTERN})
]
Asn = Annotated[
    int,
    PlainValidator(_asn),
    WithJsonSchema({"anyOf": [_ASN_INT_SCHEMA, {"type": "string", "pattern": f"^{_ASN_TEXT}$"}]}),
]
AsnOrRange = Annotated[
    int | str,
    PlainValidator(_asn_or_range),
    WithJsonSchema(
        {"anyOf": [_ASN_INT_SCHEMA, {"type": "string", "pattern": f"^{_ASN_TEXT}(-{_ASN_TEXT})?$"}]}
    ),
]
Ipv4Block = Annotated[str, PlainValidator(_ipv4_block), WithJsonSchema({"type": "string"})]
Ipv6Block = Annotated[str, PlainValidator(_ipv6_block), WithJsonSchema({"type": "string"})]
Prefix = Annotated[IPNetwork, PlainValidator(_prefix), WithJsonSchema({"type": "string"})]
MaxLength = Annotated[
    int, PlainValidator(_max_length), WithJsonSchema({"type": "integer", "minimum": 0, "maximum": 128})
]
RsyncBase = Annotated[
    str,
    PlainValidator(_rsync_base),
    WithJsonSchema({"type": "string", "pattern": RSYNC_BASE_PATTERN, "maxLength": MAX_BASE_URI}),
]
RsyncBaseOrUnset = Annotated[
    str | None,
    PlainValidator(_rsync_base),
    WithJsonSchema({"type": "string", "pattern": RSYNC_BASE_PATTERN, "maxLength": MAX_BASE_URI}),
]
DirectoryPath = Annotated[str, PlainValidator(_path), WithJsonSchema(_PATH_SCHEMA)]
RrdpBase = Annotated[
    str | None,
    PlainValidator(_rrdp_base),
    WithJsonSchema({"type": "string", "pattern": HTTPS_BASE_PATTERN, "maxLength": MAX_BASE_URI}),
]
SignerType = Annotated[
    str, PlainValidator(_signer_type), WithJsonSchema({"type": "string", "enum": list(SIGNER_TYPES)})
]
DirectoryOrUnset = Annotated[str | None, PlainValidator(_path), WithJsonSchema(_PATH_SCHEMA)]
ModulePathOrUnset = Annotated[str | None, PlainValidator(_module_path), WithJsonSchema(_PATH_SCHEMA)]
TokenLabelOrUnset = Annotated[
    str | None, PlainValidator(_token_label), WithJsonSchema({"type": "string", "minLength": 1})
]
EnvNameOrUnset = Annotated[
    str | None, PlainValidator(_env_name), WithJsonSchema({"type": "string", "pattern": ENV_NAME_PATTERN})
]
Text = Annotated[str, PlainValidator(_string), WithJsonSchema({"type": "string"})]
Flag = Annotated[bool, PlainValidator(_flag), WithJsonSchema({"type": "boolean"})]
_SHARE_SCHEMA = {
    "anyOf": [
        {"type": "number", "minimum": 0, "maximum": 1},
        {"type": "string", "pattern": PERCENT_PATTERN},
    ]
}
_COUNT_SCHEMA = {"type": "integer", "minimum": 0, "maximum": _LARGE - 1}
Share = Annotated[float, PlainValidator(parse_share), WithJsonSchema(_SHARE_SCHEMA)]
VrpCount = Annotated[int, PlainValidator(_vrp_count), WithJsonSchema(_COUNT_SCHEMA)]
KeyGeneration = Annotated[
    int,
    PlainValidator(_key_generation),
    WithJsonSchema({"type": "integer", "minimum": 1, "maximum": MAX_KEY_GENERATION}),
]
# Per-CA overrides: None means "not written, inherit rpki.yaml's value". An explicit empty value (``~``)
# still goes through the validator and is refused, like anywhere else.
ShareOverride = Annotated[float | None, PlainValidator(parse_share), WithJsonSchema(_SHARE_SCHEMA)]
VrpCountOverride = Annotated[int | None, PlainValidator(_vrp_count), WithJsonSchema(_COUNT_SCHEMA)]
PairCount = Annotated[int, PlainValidator(_pair_count), WithJsonSchema(_COUNT_SCHEMA)]
FlagOverride = Annotated[bool | None, PlainValidator(_flag), WithJsonSchema({"type": "boolean"})]
PairCountOverride = Annotated[int | None, PlainValidator(_pair_count), WithJsonSchema(_COUNT_SCHEMA)]
FilePathOrUnset = Annotated[str | None, PlainValidator(_file_path), WithJsonSchema(_PATH_SCHEMA)]
RequestPath = Annotated[
    str,
    PlainValidator(_request_path),
    WithJsonSchema({**_PATH_SCHEMA, "pattern": "^[^/~]"}),
]
KeyPath = Annotated[
    str,
    PlainValidator(_key_path),
    WithJsonSchema({**_PATH_SCHEMA, "pattern": "^[^/~]"}),
]
RouterId = Annotated[
    IPv4Address, PlainValidator(_router_id), WithJsonSchema({"type": "string", "format": "ipv4"})
]
Handle = Annotated[
    str, PlainValidator(_handle), WithJsonSchema({"type": "string", "pattern": CA_NAME_PATTERN})
]
ServiceBase = Annotated[
    str | None,
    PlainValidator(_service_base),
    WithJsonSchema({"type": "string", "pattern": SERVICE_BASE_PATTERN, "maxLength": MAX_BASE_URI}),
]
Size = Annotated[
    int,
    PlainValidator(_size),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "integer", "minimum": 1, "maximum": MAX_SIZE},
                {"type": "string", "pattern": SIZE_PATTERN},
            ]
        }
    ),
]
ObjectCount = Annotated[
    int,
    PlainValidator(_object_count),
    WithJsonSchema({"type": "integer", "minimum": 1, "maximum": _LARGE - 1}),
]
Duration = Annotated[
    timedelta,
    PlainValidator(_duration),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "string", "pattern": DURATION_PATTERN},
                {"type": "integer", "minimum": 1, "maximum": _MAX_SECONDS},
            ]
        }
    ),
]


class _Section(BaseModel):
    """Common settings: unknown keys are errors (a typo must never be silently ignored)."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


def _no_default(schema: dict[str, Any]) -> None:
    """Keep ``"default": null`` out of the JSON Schema: a key left out is inherited or unused, not null."""
    schema.pop("default", None)


class PublicationSection(_Section):
    """Where the signed objects go and under which URI relying parties fetch them."""

    rsync_base: RsyncBaseOrUnset = Field(
        default=None,
        json_schema_extra=_no_default,
        description="The rsync URI that `directory` is served as, e.g. rsync://rpki.example.net/repo/. "
        "Must be rsync://host/module/... and end with '/'. Left out when the CAs publish at a repository "
        "run by someone else (a CA file's `repository:`): that repository's sia_base is the base then.",
    )
    directory: DirectoryPath = Field(
        description="Local directory that apply writes to: the rsync tree goes to <directory>/rsync/ "
        "(served as rsync_base) and RRDP to <directory>/rrdp/ (served as rrdp_base). Relative to rpki.yaml. "
        "With a remote repository it holds the local copy of what is published there, and the state of "
        "the exchanges with the parent and the repository."
    )
    rrdp_base: RrdpBase = Field(
        default=None,
        json_schema_extra=_no_default,
        description="Optional: the https URI that <directory>/rrdp/ is served as, e.g. "
        "https://rpki.example.net/rrdp/ (ending in '/'). With it, apply writes RRDP (RFC 8182) and CA "
        "certificates point relying parties at <rrdp_base>notification.xml.",
    )


@dataclasses.dataclass(frozen=True)
class SignerKeys:
    """The keys of one signer type besides ``type``: those it needs and those it may have."""

    required: tuple[str, ...]
    optional: tuple[str, ...] = ()

    @property
    def allowed(self) -> tuple[str, ...]:
        return (*self.required, *self.optional)


# Which keys each signer type needs and allows. Both types share one model (pydantic's tagged unions would
# put the tag into error locations); ``checks.py`` enforces this table, the JSON Schema states it.
SIGNER_KEYS: dict[str, SignerKeys] = {
    "file": SignerKeys(required=("directory",), optional=("passphrase_env",)),
    "pkcs11": SignerKeys(required=("module", "token", "pin_env")),
    "offline": SignerKeys(required=("key_signer",)),
}


def _signer_schema(schema: dict[str, Any]) -> None:
    """Per type: the keys it needs are required, keys only other types take are refused."""
    schema["allOf"] = [
        {
            "if": {"properties": {"type": {"const": kind}}, "required": ["type"]},
            "then": {
                "required": list(keys.required),
                "not": {
                    "anyOf": [
                        {"required": [key]}
                        for key in dict.fromkeys(
                            key for other in SIGNER_KEYS.values() for key in other.allowed
                        )
                        if key not in keys.allowed
                    ]
                },
            },
        }
        for kind, keys in SIGNER_KEYS.items()
    ]


class SignerSection(_Section):
    """A place where CA private keys live; CAs pick one with their `signer` key."""

    model_config = ConfigDict(json_schema_extra=_signer_schema)

    type: SignerType = Field(
        description="Kind of key store: 'file' (PEM files in `directory`, optionally encrypted with the "
        "passphrase from `passphrase_env`), 'pkcs11' (an HSM, with `module`, `token` and `pin_env`) or "
        "'offline' (the trust anchor's key on a machine that is never online, reached through signing "
        "requests; `key_signer` names the signer that holds it there)."
    )
    directory: DirectoryOrUnset = Field(
        default=None,
        json_schema_extra=_no_default,
        description="For type 'file' (required there): directory holding the private keys (mode 0600), "
        "encrypted when `passphrase_env` is set. Keep it outside the Git repository. Relative to rpki.yaml.",
    )
    module: ModulePathOrUnset = Field(
        default=None,
        json_schema_extra=_no_default,
        description="For type 'pkcs11' (required there): path of the HSM's PKCS#11 library (such as "
        "/usr/lib/softhsm/libsofthsm2.so). Relative to rpki.yaml or absolute.",
    )
    token: TokenLabelOrUnset = Field(
        default=None,
        json_schema_extra=_no_default,
        description="For type 'pkcs11' (required there): the label of the token holding the CA keys.",
    )
    pin_env: EnvNameOrUnset = Field(
        default=None,
        json_schema_extra=_no_default,
        description="For type 'pkcs11' (required there): the name of the environment variable that holds "
        "the token's user PIN at plan and apply time. Never write the PIN itself here.",
    )
    passphrase_env: EnvNameOrUnset = Field(
        default=None,
        json_schema_extra=_no_default,
        description="For type 'file' (optional there): the name of the environment variable that holds "
        "the passphrase encrypting the key files at plan and apply time; left out, key files are not "
        "encrypted. Never write the passphrase itself here.",
    )
    key_signer: Text | None = Field(
        default=None,
        json_schema_extra=_no_default,
        description="For type 'offline' (required there): the signer (another entry of `signers`) that "
        "holds the trust anchor's key on the offline machine, where 'rpkictl ta sign' uses it. It is "
        "never opened online.",
    )


def _timing_default(name: str) -> str:
    """Defaults come from ``model.Timing`` so that the schema and the code cannot disagree."""
    value: timedelta = getattr(Timing(), name)
    return format_duration(value)


_DURATION_HELP = (
    "A duration such as 30m, 8h, 7d, 52w or 1d12h, or a whole number of seconds; at most 5200w "
    "(about 100 years)."
)


class TimingSection(_Section):
    """Validity periods and how long before expiry objects are re-issued; each renew_before must be
    shorter than its validity."""

    manifest_validity: Duration = Field(
        default=_timing_default("manifest_validity"),
        validate_default=True,
        description=f"How long each manifest and CRL is valid. {_DURATION_HELP}",
    )
    manifest_renew_before: Duration = Field(
        default=_timing_default("manifest_renew_before"),
        validate_default=True,
        description=f"Re-issue manifests and CRLs this long before they expire. {_DURATION_HELP}",
    )
    certificate_validity: Duration = Field(
        default=_timing_default("certificate_validity"),
        validate_default=True,
        description=f"How long CA certificates (and ROAs) issued below the trust anchor are valid. "
        f"{_DURATION_HELP}",
    )
    certificate_renew_before: Duration = Field(
        default=_timing_default("certificate_renew_before"),
        validate_default=True,
        description=f"Re-issue certificates and ROAs this long before they expire. {_DURATION_HELP}",
    )
    ta_certificate_validity: Duration = Field(
        default=_timing_default("ta_certificate_validity"),
        validate_default=True,
        description=f"How long the self-signed trust anchor certificate is valid. {_DURATION_HELP}",
    )
    ta_certificate_renew_before: Duration = Field(
        default=_timing_default("ta_certificate_renew_before"),
        validate_default=True,
        description=f"Re-issue the trust anchor certificate this long before it expires. {_DURATION_HELP}",
    )
    ta_manifest_validity: Duration = Field(
        default=_timing_default("ta_manifest_validity"),
        validate_default=True,
        description=f"How long the trust anchor's manifest and CRL are valid (longer than other CAs': an "
        f"offline trust anchor is renewed by hand). {_DURATION_HELP}",
    )
    ta_manifest_renew_before: Duration = Field(
        default=_timing_default("ta_manifest_renew_before"),
        validate_default=True,
        description=f"Re-issue the trust anchor's manifest and CRL this long before they expire (the "
        f"defaults renew them monthly). {_DURATION_HELP}",
    )
    ta_reminder_before: Duration = Field(
        default=_timing_default("ta_reminder_before"),
        validate_default=True,
        description=f"plan warns when the trust anchor's manifest or CRL expires within this time. "
        f"{_DURATION_HELP}",
    )
    ta_critical_before: Duration = Field(
        default=_timing_default("ta_critical_before"),
        validate_default=True,
        description=f"Within this time of the trust anchor's manifest or CRL expiring, plan's warning is "
        f"critical and 'rpkictl check' fails (exit 2). {_DURATION_HELP}",
    )
    key_roll_staging: Duration = Field(
        default=_timing_default("key_roll_staging"),
        validate_default=True,
        description=f"How long a CA's new key is published, unused, before a key roll activates it "
        f"(RFC 6489 staging period). {_DURATION_HELP}",
    )


_SAFETY_HELP = {
    "delete_pct_threshold": "A plan that deletes more than this share of a CA's VRPs (no ROA names the "
    'prefix any more) needs approval. A number from 0 to 1 such as 0.3, or a percentage such as "30%".',
    "narrow_pct_threshold": "A plan that narrows more than this share of a CA's VRPs (the prefix stays "
    "authorised, but for another AS or a shorter max_length) needs approval. A number from 0 to 1 such as "
    '0.3, or a percentage such as "30%".',
    "min_existing_vrps": "The two percentage checks apply only to a CA that publishes at least this many "
    "VRPs now; for smaller CAs every share would be large. A whole number, 0 or more.",
    "allow_empty": "true lets a plan leave a CA with no ROAs at all without approval.",
    "aspa_removal_threshold": "A plan that removes more than this many provider authorisations from a "
    "CA's ASPAs (a customer-provider pair; a removed ASPA counts each of its providers) needs approval "
    "(gate aspa-removal). A whole number, 0 or more; 0 makes every removal need approval.",
}


def _safety_default(name: str) -> Any:
    """Defaults come from ``model.SafetyPolicy`` so that the schema and the code cannot disagree."""
    return getattr(SafetyPolicy(), name)


class SafetySection(_Section):
    """When a plan needs a human's approval before apply may publish it. Shares are measured in VRPs per
    CA, against what the CA publishes now; a share strictly above the threshold needs approval."""

    delete_pct_threshold: Share = Field(
        default=_safety_default("delete_pct_threshold"), description=_SAFETY_HELP["delete_pct_threshold"]
    )
    narrow_pct_threshold: Share = Field(
        default=_safety_default("narrow_pct_threshold"), description=_SAFETY_HELP["narrow_pct_threshold"]
    )
    min_existing_vrps: VrpCount = Field(
        default=_safety_default("min_existing_vrps"), description=_SAFETY_HELP["min_existing_vrps"]
    )
    allow_empty: Flag = Field(default=_safety_default("allow_empty"), description=_SAFETY_HELP["allow_empty"])
    aspa_removal_threshold: PairCount = Field(
        default=_safety_default("aspa_removal_threshold"), description=_SAFETY_HELP["aspa_removal_threshold"]
    )


_INHERITED = " Left out, this CA uses the value from rpki.yaml."


class CaSafetySection(_Section):
    """This CA's own approval thresholds; each key overrides the same key of rpki.yaml's safety section,
    and keys left out keep rpki.yaml's values."""

    delete_pct_threshold: ShareOverride = Field(
        default=None,
        json_schema_extra=_no_default,
        description=_SAFETY_HELP["delete_pct_threshold"] + _INHERITED,
    )
    narrow_pct_threshold: ShareOverride = Field(
        default=None,
        json_schema_extra=_no_default,
        description=_SAFETY_HELP["narrow_pct_threshold"] + _INHERITED,
    )
    min_existing_vrps: VrpCountOverride = Field(
        default=None,
        json_schema_extra=_no_default,
        description=_SAFETY_HELP["min_existing_vrps"] + _INHERITED,
    )
    allow_empty: FlagOverride = Field(
        default=None, json_schema_extra=_no_default, description=_SAFETY_HELP["allow_empty"] + _INHERITED
    )
    aspa_removal_threshold: PairCountOverride = Field(
        default=None,
        json_schema_extra=_no_default,
        description=_SAFETY_HELP["aspa_removal_threshold"] + _INHERITED,
    )


def _prefix_count(value: object) -> int:
    """A number of prefixes: a whole number, 1 or more."""
    value = _whole(value, "a whole number of prefixes", 32)
    if value < 1:
        _fail(f"{_number(value)} is less than 1", "write 1 or more")
    if value >= _LARGE:
        _fail(f"{_number(value)} is too large", f"write less than {_LARGE:,}")
    return value


PrefixCount = Annotated[
    int,
    PlainValidator(_prefix_count),
    WithJsonSchema({"type": "integer", "minimum": 1, "maximum": _LARGE - 1}),
]


class RoaGroupingSection(_Section):
    """How ROA entries become ROA objects: one object per prefix, except for an origin AS with many
    prefixes of one address family, whose entries of that family share one object."""

    aggregate_above: PrefixCount = Field(
        default=RoaGrouping().aggregate_above,
        description="An origin AS with more than this many prefixes of one address family in a CA gets "
        "one ROA object for them all.",
    )
    split_below: PrefixCount = Field(
        default=RoaGrouping().split_below,
        description="An aggregated origin AS goes back to one ROA object per prefix only when it has "
        "fewer than this many prefixes of that family; in between, what is published stays as it is, so "
        "crossing a threshold back and forth does not re-sign the objects each time. At most "
        "aggregate_above.",
    )


def _state_default(name: str) -> Any:
    """A default of ``model.DesiredState``, which has no instance to read it from."""
    return next(f.default for f in dataclasses.fields(DesiredState) if f.name == name)


_REQUEST_HELP = (
    "Path of the RFC 8183 {what} XML file its operator sent, committed in this repository; relative to "
    "the desired-state directory (the one holding rpki.yaml)."
)


class QuotaSection(_Section):
    """How much one publisher may keep in the repository."""

    objects: ObjectCount = Field(
        default=PublisherQuota().objects, description="The most objects (files) the publisher may publish."
    )
    size: Size = Field(
        default=format_size(PublisherQuota().size),
        validate_default=True,
        description="The most bytes its objects may take together: a number of bytes, or text such as "
        '"100 MiB" or "2 GB".',
    )


class PublisherEntry(_Section):
    """An external CA that publishes in this repository over RFC 8181; its objects go below
    <rsync_base>publishers/<handle>/, the sia_base of its repository_response."""

    handle: Handle = Field(
        description="The publisher_handle we assign (RFC 8183 lets the server choose): 1-64 letters, "
        "digits and '-'. It names the publisher's directory and service URI; changing it moves the "
        "publisher's repository."
    )
    request: RequestPath = Field(description=_REQUEST_HELP.format(what="publisher_request"))
    quota: QuotaSection = Field(
        default_factory=QuotaSection,
        description="Optional limits of the publisher's objects; omitted keys keep their defaults.",
    )
    comment: Text | None = Field(default=None, description="Free text for humans; not published.")


class ServeSection(_Section):
    """How external children and publishers reach this CA (rpkictl serve)."""

    base_uri: ServiceBase = Field(
        default=None,
        json_schema_extra=_no_default,
        description="The http(s) URI the responder is reached at, e.g. https://ca.example.net/rpki: a "
        "child's service URI is <base_uri>/rfc6492/<handle>, a publisher's <base_uri>/rfc8181/<handle>. "
        "Left out, 'rpkictl oob' needs --service-uri.",
    )
    signer: Text = Field(
        default="default",
        description="Which signer from rpki.yaml holds the publication server's BPKI identity key "
        "(used when publishers are declared).",
    )


class RpkiFile(_Section):
    """rpki.yaml: repository-wide settings. Relative paths are relative to this file."""

    publication: PublicationSection = Field(description="Where and as what the repository is published.")
    signers: dict[str, SignerSection] = Field(
        description="Named key stores; a CA uses 'default' unless it sets `signer`."
    )
    timing: TimingSection = Field(
        default_factory=TimingSection,
        description="Optional validity periods and renewal margins; omitted keys keep their defaults.",
    )
    safety: SafetySection = Field(
        default_factory=SafetySection,
        description="Optional: when a plan needs a human's approval. Omitted keys keep their defaults; "
        "a CA file can override each key for that CA.",
    )
    plan_max_age: Duration = Field(
        default=format_duration(_state_default("plan_max_age")),
        validate_default=True,
        description=f"Apply refuses a saved plan older than this; plan again. {_DURATION_HELP}",
    )
    audit_log: FilePathOrUnset = Field(
        default=None,
        json_schema_extra=_no_default,
        description="Path of the audit log, a JSON Lines file. Relative to rpki.yaml or absolute; it "
        "must not be a directory. Left out: audit.jsonl in the publication directory.",
    )
    roa_grouping: RoaGroupingSection = Field(
        default_factory=RoaGroupingSection,
        description="Optional: when an origin AS's ROA entries share one ROA object.",
    )
    publishers: list[PublisherEntry] = Field(
        default_factory=list,
        description="External CAs that publish in this repository over RFC 8181, each from its "
        "publisher_request. Handles are unique.",
    )
    serve: ServeSection = Field(
        default_factory=ServeSection,
        description="Optional: where external children and publishers reach this CA, and the signer of "
        "the publication server's identity.",
    )


class ResourcesSection(_Section):
    """Internet number resources a CA holds; a child's must lie inside its parent's."""

    asn: list[AsnOrRange] = Field(
        default_factory=list,
        description='AS numbers and ranges: AS64496, 64496, "64496-64511" or "AS64496-AS64511".',
    )
    ipv4: list[Ipv4Block] = Field(
        default_factory=list,
        description="IPv4 prefixes (192.0.2.0/24, no host bits) or address ranges (192.0.2.0-192.0.2.99).",
    )
    ipv6: list[Ipv6Block] = Field(
        default_factory=list,
        description='IPv6 prefixes or address ranges; quote them in YAML: "2001:db8::/32".',
    )


class RoaEntry(_Section):
    """One ROA: the AS may originate the prefix and its more-specifics up to max_length."""

    asn: Asn = Field(
        description="The origin AS, written AS64496 or 64496. AS0 means 'never route this'. "
        "The CA does not need to hold this AS. rpki-client 9 drops every VRP of a trust anchor whose VRPs "
        "are all AS0 (it logs 'Detected AS0 TAL') unless run with `-0`."
    )
    prefix: Prefix = Field(description="The prefix, inside the CA's resources, with no host bits set.")
    max_length: MaxLength | None = Field(
        default=None,
        description="The longest more-specific the AS may announce; defaults to the prefix length. "
        "At most 32 for IPv4 and 128 for IPv6.",
    )
    comment: Text | None = Field(default=None, description="Free text for humans; not published.")


class AspaEntry(_Section):
    """One ASPA (draft-ietf-sidrops-aspa-profile): the customer AS may send its routes up to these
    providers, and to no other AS. The CA signs one ASPA object per customer AS. For example
    `{customer: AS64500, providers: [AS65002, AS65001]}` for an AS with two transit providers, and
    `{customer: AS64501, providers: [AS0]}` for an AS that sends its routes up to no one."""

    customer: Asn = Field(
        description="The customer AS, written AS64496 or 64496; the CA must hold it. One entry per "
        "customer AS in a CA."
    )
    providers: list[Asn] = Field(
        description="Every AS the customer sends its routes up to (its transit providers, and route "
        "servers that pass routes on), each once and never the customer itself, in any order. AS0 alone "
        f"says the customer has no provider. At most {aspa.MAX_PROVIDERS:,}."
    )
    comment: Text | None = Field(default=None, description="Free text for humans; not published.")


class RouterEntry(_Section):
    """One BGPsec router key (RFC 8209) the CA certifies for the AS numbers it holds: the router made the
    key pair, and only its public key -- in a PKCS#10 request or bare -- is committed here. For example
    `{key: routers/edge1.csr, asns: [AS64500], router_id: 192.0.2.1}`."""

    key: KeyPath = Field(
        description="Path of the router's PKCS#10 request (router-driven keying, RFC 8635 §4) or of its "
        "public key (SubjectPublicKeyInfo), in DER or PEM, committed in this repository; relative to the "
        "desired-state directory (the one holding rpki.yaml). The key is ECDSA on P-256 (RFC 8608), and a "
        "request's signature must verify. One entry per key in a CA."
    )
    asns: list[Asn] = Field(
        json_schema_extra={"minItems": 1},
        description="The AS numbers the router signs BGPsec updates for, written AS64496 or 64496; at "
        "least one, each held by the CA and listed once.",
    )
    router_id: RouterId | None = Field(
        default=None,
        description="Optional: the router's BGP Identifier, written as an IPv4 address (192.0.2.1); it "
        "goes into the certificate's subject (RFC 8209 §3.1.1).",
    )
    comment: Text | None = Field(default=None, description="Free text for humans; not published.")


class ExternalChildEntry(_Section):
    """A child CA run by someone else (Krill, rpkid, another rpkictl) that this CA certifies over RFC
    6492, from the child_request its operator sent."""

    handle: Handle = Field(
        description="The child_handle we assign (RFC 8183 lets the parent choose): 1-64 letters, digits "
        "and '-', unique across all CA files and different from every CA name."
    )
    request: RequestPath = Field(description=_REQUEST_HELP.format(what="child_request"))
    resources: ResourcesSection = Field(
        description="The resources the child is entitled to; they must lie inside this CA's."
    )
    comment: Text | None = Field(default=None, description="Free text for humans; not published.")


class UpstreamParentEntry(_Section):
    """A parent run by someone else -- a registry (RIPE NCC, ARIN, APNIC, AFRINIC, LACNIC, an NIR) or
    another CA's Krill -- that certifies this CA over RFC 6492."""

    response: RequestPath = Field(
        description="Path of the RFC 8183 parent_response XML the parent sent (after you uploaded the "
        "child_request that `rpkictl oob child-request` prints), committed in this repository; relative "
        "to the desired-state directory."
    )


class RepositoryEntry(_Section):
    """A publication server run by someone else (the registry's, NLnet Labs', another Krill's) where this
    CA publishes over RFC 8181."""

    response: RequestPath = Field(
        description="Path of the RFC 8183 repository_response XML the repository's operator sent (after "
        "you sent the publisher_request that `rpkictl oob publisher-request` prints), committed in this "
        "repository; relative to the desired-state directory."
    )


#: The tags of the two kinds of ``parent``; pydantic puts them into error locations, which the loader
#: leaves out (no key of the schema is spelled so).
UNION_TAGS = ("<local parent>", "<external parent>")


def _parent_kind(value: object) -> str:
    """A mapping is an external parent, anything else a CA name (whose checks say what is wrong)."""
    return UNION_TAGS[1] if isinstance(value, dict | UpstreamParentEntry) else UNION_TAGS[0]


ParentRef = Annotated[
    Annotated[CaName, Tag(UNION_TAGS[0])] | Annotated[UpstreamParentEntry, Tag(UNION_TAGS[1])],
    Discriminator(_parent_kind),
]


class CaFile(_Section):
    """cas/**/*.yaml: one certificate authority per file."""

    name: CaName = Field(
        description="Unique CA name; 1-64 letters, digits and '-', starting with a letter or digit. "
        "It becomes a file and directory name in the publication point."
    )
    trust_anchor: Flag = Field(
        default=False,
        description="true for the single self-signed trust anchor, which has no parent.",
    )
    parent: ParentRef | None = Field(
        default=None,
        description="Name of the CA that certifies this one; required unless trust_anchor. For a CA "
        "certified by a registry or another operator's CA over RFC 6492: `response:` and the path of "
        "the parent_response they sent.",
    )
    repository: RepositoryEntry | None = Field(
        default=None,
        description="Optional, for a CA with an external parent: publish at a repository run by someone "
        "else over RFC 8181 (`response:` and the path of its repository_response), instead of "
        "rpki.yaml's publication directory served by you.",
    )
    signer: Text = Field(default="default", description="Which signer from rpki.yaml holds this CA's key.")
    key_generation: KeyGeneration = Field(
        default=1,
        description="The generation of this CA's key, 1 for its first. Raising it by one starts an RFC "
        "6489 key roll: a new key is created and certified, staged for timing.key_roll_staging, then "
        "activated; the old key is then revoked and destroyed. Not for the trust anchor.",
    )
    resources: ResourcesSection = Field(description="The resources this CA holds.")
    roas: list[RoaEntry] = Field(default_factory=list, description="ROAs this CA issues.")
    aspas: list[AspaEntry] = Field(
        default_factory=list,
        description="ASPAs this CA issues, one per customer AS it holds: which ASes each may send its "
        "routes up to.",
    )
    routers: list[RouterEntry] = Field(
        default_factory=list,
        description="BGPsec router keys this CA certifies (RFC 8209), one entry per key: the file the "
        "router's operator sent and the AS numbers it signs for (one certificate per AS number: "
        "rpki-client takes no router certificate that holds several).",
    )
    children: list[ExternalChildEntry] = Field(
        default_factory=list,
        description="External child CAs that this CA certifies over RFC 6492 (local child CAs name this "
        "CA as their `parent` instead).",
    )
    safety: CaSafetySection = Field(
        default_factory=CaSafetySection,
        description="Optional: approval thresholds for this CA only; each key overrides rpki.yaml's "
        "safety section, keys left out keep rpki.yaml's values.",
    )

    @property
    def local_parent(self) -> str | None:
        """The parent when it is a CA of this repository."""
        return self.parent if isinstance(self.parent, str) else None

    @property
    def upstream(self) -> UpstreamParentEntry | None:
        """The parent when it is run by someone else (RFC 6492)."""
        return self.parent if isinstance(self.parent, UpstreamParentEntry) else None


def json_schema() -> dict[str, Any]:
    """The JSON Schema of both file kinds, for editors (e.g. yaml-language-server) and review."""
    _, top = models_json_schema([(RpkiFile, "validation"), (CaFile, "validation")])
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "rpki-reconciler desired state",
        "description": "Two file kinds in one schema: rpki.yaml is #/$defs/RpkiFile and every "
        "cas/**/*.yaml is #/$defs/CaFile; the top level accepts either. Generated from "
        "reconciler/desired/schema.py by: python -m reconciler.desired.schema > "
        "schemas/desired-state.schema.json",
        "anyOf": [{"$ref": "#/$defs/RpkiFile"}, {"$ref": "#/$defs/CaFile"}],
        "$defs": top["$defs"],
    }


def json_schema_text() -> str:
    """The exact text of ``schemas/desired-state.schema.json``."""
    return json.dumps(json_schema(), indent=2, ensure_ascii=False) + "\n"


if __name__ == "__main__":
    print(json_schema_text(), end="")
