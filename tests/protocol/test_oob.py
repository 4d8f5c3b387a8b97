"""RFC 8183 setup files as registries and implementations really write them: every file of the rpki-rs
and Krill test data is either read, with the values it holds, or refused with a reason that names the
attribute or element, the value and the fix; what we write reads back the same, and nothing a file can
hold makes a parser fail other than with a ProtocolError."""

from __future__ import annotations

import base64
import re
import shutil
import subprocess
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from xml.sax.saxutils import quoteattr

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID
from defusedxml.ElementTree import fromstring
from hypothesis import given
from hypothesis import strategies as st

from reconciler.protocol import bpki, oob
from reconciler.protocol.errors import ProtocolError
from reconciler.signers.files import FileSigner
from tests.hostile.fuzzing import FUZZ

PROTOCOLS = Path(__file__).resolve().parent.parent / "fixtures" / "real-world" / "protocols"
RPKI_RS = PROTOCOLS / "rpki-rs" / "rfc8183"
OOB = PROTOCOLS / "krill" / "oob"
APNIC = OOB / "apnic"
REMOTE = PROTOCOLS / "krill" / "remote"
TESTBED = PROTOCOLS / "krill" / "testbed"
ALL_FILES = sorted(path for folder in (RPKI_RS, OOB, APNIC, REMOTE, TESTBED) for path in folder.glob("*.xml"))
NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
HANDLE = re.compile(r"[-_A-Za-z0-9/]{1,255}")

Parser = Callable[[bytes, str], oob.Message]

# Values as the files hold them (read off the files, not out of the parser).
AFRINIC_UP_DOWN = "https://rpki-rir.dev.mu.afrinic.net/cgi-bin/up-down.cgi/AFRINIC/"
APNIC_UP_DOWN = "http://rpki.apnic.net/up-down/APNIC-AP/"
RPKID_REFERRAL_CHILD = "60e445f5-97d1-4fcb-bc95-b8e6ef79319e"
RPKID_REFERRAL_UP_DOWN = f"http://localhost:4404/up-down/ripe-ncc-rpkid-test/{RPKID_REFERRAL_CHILD}"

#: file -> (service_uri, parent_handle, child_handle, offer)
PARENT_RESPONSES: dict[Path, tuple[str, str, str, bool]] = {
    RPKI_RS / "afrinic-parent-response.xml": (AFRINIC_UP_DOWN, "AFRINIC", "F3615BDCAF", True),
    RPKI_RS / "apnic-parent-response.xml": (APNIC_UP_DOWN, "APNIC-AP", "A91872ED0000", False),
    APNIC / "parent.response.xml": (APNIC_UP_DOWN, "APNIC-AP", "A91872ED0000", False),
    RPKI_RS / "krill-0-9-parent-response.xml": (
        "https://rpki-ca.registro.br/rfc6492/nicbr_ca",
        "test_parent",
        "test",
        False,
    ),
    RPKI_RS / "rpkid-parent-response-offer.xml": (
        "http://localhost:4401/up-down/Alice/Bob",
        "Alice",
        "Bob",
        True,
    ),
    REMOTE / "rpkid-parent-response-offer.xml": (
        "http://localhost:4401/up-down/Alice/Bob",
        "Alice",
        "Bob",
        True,
    ),
    RPKI_RS / "rpkid-parent-response-referral.xml": (
        RPKID_REFERRAL_UP_DOWN,
        "ripe-ncc-rpkid-test",
        RPKID_REFERRAL_CHILD,
        False,
    ),
    REMOTE / "rpkid-parent-response-referral.xml": (
        RPKID_REFERRAL_UP_DOWN,
        "ripe-ncc-rpkid-test",
        RPKID_REFERRAL_CHILD,
        False,
    ),
}

APNIC_REPOSITORY = (
    "http://rpki.apnic.net/publication/APNIC-AP/A91872ED0000",
    "A91872ED0000",
    "rsync://rpki.sub.apnic.net/repository/A91872ED0000/",  # the file has no trailing slash
    "https://rrdp.sub.apnic.net/notification.xml",
    None,
)
#: file -> (service_uri, publisher_handle, sia_base, rrdp_notification_uri, tag)
REPOSITORY_RESPONSES: dict[Path, tuple[str, str, str, str | None, str | None]] = {
    RPKI_RS / "apnic-repository-response.xml": APNIC_REPOSITORY,
    APNIC / "repository.response.xml": APNIC_REPOSITORY,
    RPKI_RS / "krill-0-9-repository-response.xml": (
        "https://rpki-pub.registro.br/rfc8181/test/",
        "test",
        "rsync://rpki-repo.registro.br/repo/test/",
        "https://rpki-repo.registro.br/rrdp/notification.xml",
        None,
    ),
    OOB / "repository_response.xml": (
        "https://a.example/publication/Alice/Bob-42",
        "Alice/Bob-42",
        "rsync://a.example/rpki/Alice/Bob-42/",
        "https://rpki.example/rrdp/notification.xml",
        "A0001",
    ),
}

#: file -> (child_handle, tag)
CHILD_REQUESTS: dict[Path, tuple[str, str | None]] = {
    RPKI_RS / "rpkid-child-id.xml": ("Carol", None),
    REMOTE / "rpkid-child-id.xml": ("Carol", None),
    REMOTE / "carol_child_id.xml": ("Carol", None),
    APNIC / "child_request.xml": ("rand", None),
    TESTBED / "child_request_compact.xml": ("child-request-compact", None),
    TESTBED / "child_request_with_whitespace.xml": ("child-request-with-whitespace", None),
}

#: file -> (publisher_handle, tag)
PUBLISHER_REQUESTS: dict[Path, tuple[str, str | None]] = {
    RPKI_RS / "rpkid-publisher-request.xml": ("Bob", "A0001"),
    OOB / "publisher_request.xml": ("Bob", "A0001"),
    APNIC / "publisher_request.xml": ("rand", None),
    TESTBED / "publisher_request_compact.xml": ("publisher-request-compact", None),
    TESTBED / "publisher_request_with_whitespace.xml": ("publisher-request-with-whitespace", None),
}

ZWSP = ["U+200B", "ZERO WIDTH SPACE"]
#: file -> (parser, fragments the refusal must contain)
REFUSED: dict[Path, tuple[Parser, list[str]]] = {
    REMOTE / "arin-pre-rfc8183-parent-response.xml": (
        oob.parse_parent_response,
        ["pre-RFC 8183", "'myrpki'", "<parent>", "ask the registry for an RFC 8183 parent_response"],
    ),
    TESTBED / "child_request_invalid_base64.xml": (
        oob.parse_child_request,
        ["<child_bpki_ta>", "not valid Base64", "1326 characters", "not a multiple of 4"],
    ),
    TESTBED / "publisher_request_invalid_base64.xml": (
        oob.parse_publisher_request,
        ["<publisher_bpki_ta>", "not valid Base64", "1109 characters", "not a multiple of 4"],
    ),
    TESTBED / "child_request_with_unicode_space_char.xml": (
        oob.parse_child_request,
        ["<child_bpki_ta>", "Base64", *ZWSP, "offset 1325"],
    ),
    TESTBED / "child_request_with_unicode_space_entity_reference.xml": (
        oob.parse_child_request,
        ["<child_bpki_ta>", "Base64", *ZWSP, "offset 1324"],
    ),
    TESTBED / "publisher_request_with_unicode_space_char.xml": (
        oob.parse_publisher_request,
        ["<publisher_bpki_ta>", "Base64", *ZWSP, "offset 1109"],
    ),
    TESTBED / "publisher_request_with_unicode_space_entity_reference.xml": (
        oob.parse_publisher_request,
        ["<publisher_bpki_ta>", "Base64", *ZWSP, "offset 1108"],
    ),
    TESTBED / "child_request_with_unicode_space_entity_reference_in_handle.xml": (
        oob.parse_child_request,
        ["child_handle", "'child-\\u200b-request'", *ZWSP, "offset 6", "type the value again without it"],
    ),
    TESTBED / "publisher_request_with_unicode_space_entity_reference_in_handle.xml": (
        oob.parse_publisher_request,
        ["publisher_handle", "'publisher-\\u200b-request'", *ZWSP, "offset 10", "type the value again"],
    ),
}

PARSERS: dict[str, Parser] = {
    "child_request": oob.parse_child_request,
    "parent_response": oob.parse_parent_response,
    "publisher_request": oob.parse_publisher_request,
    "repository_response": oob.parse_repository_response,
}
READABLE = sorted([*PARENT_RESPONSES, *REPOSITORY_RESPONSES, *CHILD_REQUESTS, *PUBLISHER_REQUESTS])


def name(path: Path) -> str:
    return str(path.relative_to(PROTOCOLS))


def parser_for(path: Path) -> Parser:
    """The parser for a readable file, by the root element's name as the file spells it."""
    found = re.search(
        rb"<(?:\w+:)?(child_request|parent_response|publisher_request|repository_response)\b",
        path.read_bytes(),
    )
    assert found is not None, path
    return PARSERS[found.group(1).decode()]


def certificate_in(path: Path, element: str) -> bytes:
    """The DER in ``element`` of the file, decoded here without the module under test."""
    found = re.search(rb"<(?:\w+:)?%s>(.*?)</" % element.encode(), path.read_bytes(), re.DOTALL)
    assert found is not None, (path, element)
    return base64.b64decode(re.sub(rb"\s+", b"", found.group(1)), validate=True)


def refusal(call: Callable[[], object]) -> str:
    with pytest.raises(ProtocolError) as caught:
        call()
    return str(caught.value)


def make_identity() -> bytes:
    """A self-signed BPKI trust anchor in the RFC 8183 profile, made with pyca/cryptography."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, ski.digest.hex().upper())])
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(NOW - timedelta(minutes=5))
        .not_valid_after(NOW + timedelta(days=365 * 15))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(ski, critical=False)
        .add_extension(x509.AuthorityKeyIdentifier(ski.digest, None, None), critical=False)
        .sign(key, hashes.SHA256())
        .public_bytes(Encoding.DER)
    )


@pytest.fixture(scope="module")
def identity() -> bytes:
    return make_identity()


# ------------------------------------------------------------------------------- every fixture file


def test_every_setup_file_of_the_fixtures_is_covered() -> None:
    """A file added to the fixtures gets an expectation here, read or refused."""
    covered = set(READABLE) | set(REFUSED)
    assert [name(p) for p in ALL_FILES if p not in covered] == []
    assert len(ALL_FILES) == len(covered) == 32


@pytest.mark.parametrize("path", sorted(PARENT_RESPONSES), ids=name)
def test_parent_responses_are_read(path: Path) -> None:
    service_uri, parent_handle, child_handle, offer = PARENT_RESPONSES[path]
    assert oob.parse_parent_response(path.read_bytes(), name(path)) == oob.ParentResponse(
        service_uri=service_uri,
        parent_handle=parent_handle,
        child_handle=child_handle,
        identity=certificate_in(path, "parent_bpki_ta"),
        tag=None,
        offer=offer,
    )


@pytest.mark.parametrize("path", sorted(REPOSITORY_RESPONSES), ids=name)
def test_repository_responses_are_read(path: Path) -> None:
    service_uri, publisher_handle, sia_base, notify, tag = REPOSITORY_RESPONSES[path]
    assert oob.parse_repository_response(path.read_bytes(), name(path)) == oob.RepositoryResponse(
        service_uri=service_uri,
        publisher_handle=publisher_handle,
        sia_base=sia_base,
        identity=certificate_in(path, "repository_bpki_ta"),
        rrdp_notification_uri=notify,
        tag=tag,
    )


@pytest.mark.parametrize("path", sorted(CHILD_REQUESTS), ids=name)
def test_child_requests_are_read(path: Path) -> None:
    handle, tag = CHILD_REQUESTS[path]
    assert oob.parse_child_request(path.read_bytes(), name(path)) == oob.ChildRequest(
        child_handle=handle, identity=certificate_in(path, "child_bpki_ta"), tag=tag
    )


@pytest.mark.parametrize("path", sorted(PUBLISHER_REQUESTS), ids=name)
def test_publisher_requests_are_read(path: Path) -> None:
    handle, tag = PUBLISHER_REQUESTS[path]
    assert oob.parse_publisher_request(path.read_bytes(), name(path)) == oob.PublisherRequest(
        publisher_handle=handle, identity=certificate_in(path, "publisher_bpki_ta"), tag=tag
    )


def test_identities_are_the_certificates_the_registries_published_separately() -> None:
    """AFRINIC's parent_response carries the AFRINIC identity rpki-rs keeps as a DER file, and rpkid's
    publisher_request the TA Krill keeps as one: the Base64 is decoded to exactly those bytes."""
    afrinic = oob.parse_parent_response((RPKI_RS / "afrinic-parent-response.xml").read_bytes(), "afrinic")
    bob = oob.parse_publisher_request((OOB / "publisher_request.xml").read_bytes(), "bob")
    assert afrinic.identity == (PROTOCOLS.parent / "rpki-rs-test-data" / "ca" / "id_afrinic.cer").read_bytes()
    assert bob.identity == (OOB / "id_publisher_ta.cer").read_bytes()


def test_whitespace_in_base64_is_dropped_not_refused() -> None:
    """Krill's testbed: the same certificate compact and broken over lines gives the same identity."""
    for role in ("child", "publisher"):
        parse = PARSERS[f"{role}_request"]
        compact = parse((TESTBED / f"{role}_request_compact.xml").read_bytes(), "compact")
        spaced = parse((TESTBED / f"{role}_request_with_whitespace.xml").read_bytes(), "spaced")
        assert compact.identity == spaced.identity
        assert bpki.load_identity(spaced.identity, "spaced").der == spaced.identity


@pytest.mark.parametrize("path", sorted(REFUSED), ids=name)
def test_broken_files_are_refused_with_the_reason(path: Path) -> None:
    parse, fragments = REFUSED[path]
    message = refusal(lambda: parse(path.read_bytes(), name(path)))
    assert message.startswith(name(path) + ":")
    for fragment in fragments:
        assert fragment in message


# ----------------------------------------------------------------------------- values: handles and URIs


def _with_attribute(path: Path, attribute: str, value: str | None) -> bytes:
    """The file with ``attribute`` set to ``value`` (escaped as XML), or removed for None."""
    data = path.read_bytes()
    pattern = re.compile(rb'\s%s="[^"]*"' % attribute.encode())
    assert pattern.search(data), (path, attribute)
    replacement = b"" if value is None else b" %s=%s" % (attribute.encode(), quoteattr(value).encode())
    return pattern.sub(lambda _: replacement, data, count=1)


CHILD = TESTBED / "child_request_compact.xml"
REPOSITORY = OOB / "repository_response.xml"


@pytest.mark.parametrize(
    ("handle", "fragments"),
    [
        ("", ["child_handle is empty", "1 to 255 of the characters A-Z a-z 0-9 - _ /"]),
        ("a" * 256, ["child_handle", "'" + "a" * 100 + "...'", "256 characters"]),
        ("acme corp", ["child_handle 'acme corp'", "U+0020 (SPACE)", "offset 4", "ask the sender"]),
        ("acme.net", ["child_handle 'acme.net'", "the character '.'", "offset 4"]),
        ("ca\\fe", ["child_handle 'ca\\fe'", "the character '\\\\'", "offset 2"]),
        ("caf\u00e9", ["'caf\\xe9'", "U+00E9 (LATIN SMALL LETTER E WITH ACUTE)", "type the value again"]),
        ("tab\there", ["'tab here'", "U+0020 (SPACE)"]),  # XML turns a literal tab into a space
    ],
)
def test_a_handle_outside_the_rfc_pattern_is_refused(handle: str, fragments: list[str]) -> None:
    data = _with_attribute(CHILD, "child_handle", handle).replace(b"&#9;", b"\t")
    message = refusal(lambda: oob.parse_child_request(data, "acme.xml"))
    assert message.startswith("acme.xml: <child_request>: ")
    for fragment in fragments:
        assert fragment in message
    assert len(message) < 400


@pytest.mark.parametrize("handle", ["a" * 255, "Alice/Bob-42", "A_b-0", "7"])
def test_handles_of_the_rfc_pattern_are_read(handle: str) -> None:
    data = _with_attribute(CHILD, "child_handle", handle)
    assert oob.parse_child_request(data, "acme.xml").child_handle == handle


@pytest.mark.parametrize(
    ("attribute", "value", "fragments"),
    [
        ("service_uri", "ftp://a.example/x", ["service_uri 'ftp://a.example/x'", "http:// or https://"]),
        ("service_uri", "https:///no-host", ["service_uri 'https:///no-host'", "http:// or https://"]),
        ("service_uri", "a.example/rfc8181", ["service_uri", "http:// or https://"]),
        ("service_uri", "https://a.example/a b", ["U+0020 (SPACE)", "offset 19", "a URI cannot have"]),
        ("service_uri", "https://a.example:99999/", ["service_uri", "is not a URI", "out of range"]),
        ("service_uri", "https://a.example/" + "x" * 5000, ["more than 4096 characters", "xxx...'"]),
        ("sia_base", "https://a.example/rpki/", ["sia_base 'https://a.example/rpki/'", "rsync:// URI"]),
        ("sia_base", "rsync://a.example/", ["sia_base 'rsync://a.example/'", "not a directory below"]),
        ("sia_base", "rsync://a.example/rpki/../etc/", ["'..' segments"]),
        ("sia_base", "rsync://a.example/rpki//x/", ["no empty"]),
        ("sia_base", "rsync://a.example/rpki/x?y=1", ["sia_base", "query or fragment"]),
        (
            "rrdp_notification_uri",
            "http://rpki.example/rrdp/notification.xml",
            ["rrdp_notification_uri 'http://rpki.example/rrdp/notification.xml'", "https:// only"],
        ),
    ],
)
def test_a_uri_of_the_wrong_form_is_refused(attribute: str, value: str, fragments: list[str]) -> None:
    data = _with_attribute(REPOSITORY, attribute, value)
    message = refusal(lambda: oob.parse_repository_response(data, "repo.xml"))
    assert message.startswith("repo.xml: <repository_response>: ")
    for fragment in fragments:
        assert fragment in message
    assert len(message) < 500  # a long value is shortened


def test_a_parent_response_with_a_non_http_service_uri_is_refused() -> None:
    path = RPKI_RS / "rpkid-parent-response-offer.xml"
    data = _with_attribute(path, "service_uri", "rsync://localhost/up-down/")
    message = refusal(lambda: oob.parse_parent_response(data, "parent.xml"))
    assert "service_uri 'rsync://localhost/up-down/'" in message
    assert "http:// or https://" in message


def test_sia_base_without_its_slash_is_a_directory_and_rrdp_is_optional() -> None:
    data = _with_attribute(REPOSITORY, "sia_base", "rsync://a.example/rpki/Alice/Bob-42")
    data = _with_attribute_removed(data, "rrdp_notification_uri")
    found = oob.parse_repository_response(data, "repo.xml")
    assert found.sia_base == "rsync://a.example/rpki/Alice/Bob-42/"
    assert found.rrdp_notification_uri is None


def _with_attribute_removed(data: bytes, attribute: str) -> bytes:
    changed = re.sub(rb'\s%s="[^"]*"' % attribute.encode(), b"", data, count=1)
    assert changed != data
    return changed


# ----------------------------------------------------------------------------------- document structure


def test_the_version_must_be_1() -> None:
    message = refusal(lambda: oob.parse_child_request(_with_attribute(CHILD, "version", "2"), "c.xml"))
    assert "version='2'" in message
    assert "version 1 only" in message
    missing = refusal(lambda: oob.parse_child_request(_with_attribute(CHILD, "version", None), "c.xml"))
    assert "no version attribute" in missing


def test_a_file_of_another_kind_is_refused_saying_what_it_is() -> None:
    data = (RPKI_RS / "apnic-parent-response.xml").read_bytes()
    message = refusal(lambda: oob.parse_child_request(data, "apnic.xml"))
    assert "a <parent_response> file (what a parent sends back to its child)" in message
    assert "where a <child_request> (what a child sends its parent) is expected" in message


def test_a_foreign_namespace_is_refused_and_the_slashless_one_read() -> None:
    data = CHILD.read_bytes()
    foreign = data.replace(b"http://www.hactrn.net/uris/rpki/rpki-setup/", b"http://example.com/rpki-setup/")
    assert "found <child_request> in http://example.com/rpki-setup/" in refusal(
        lambda: oob.parse_child_request(foreign, "c.xml")
    )
    slashless = data.replace(b"rpki/rpki-setup/", b"rpki/rpki-setup")
    assert oob.parse_child_request(slashless, "c.xml").child_handle == "child-request-compact"


def test_requests_refuse_unknown_attributes_and_elements_responses_ignore_them() -> None:
    data = CHILD.read_bytes()
    attribute = data.replace(b' version="1"', b' version="1" colour="blue"')
    assert "unknown attribute(s) 'colour'" in refusal(lambda: oob.parse_child_request(attribute, "c.xml"))
    element = data.replace(b"</child_request>", b"<colour>blue</colour></child_request>")
    assert "unexpected <colour> element" in refusal(lambda: oob.parse_child_request(element, "c.xml"))

    response = REPOSITORY.read_bytes().replace(b' version="1"', b' version="1" colour="blue"')
    response = response.replace(b"</repository_response>", b"<colour/></repository_response>")
    assert oob.parse_repository_response(response, "r.xml").publisher_handle == "Alice/Bob-42"


def test_the_identity_element_must_be_there_once() -> None:
    data = CHILD.read_bytes()
    element = re.search(rb"<child_bpki_ta>.*?</child_bpki_ta>", data, re.DOTALL)
    assert element is not None
    twice = data.replace(element.group(0), element.group(0) * 2)
    assert "2 <child_bpki_ta> elements" in refusal(lambda: oob.parse_child_request(twice, "c.xml"))
    none = data.replace(element.group(0), b"")
    assert "no <child_bpki_ta> element" in refusal(lambda: oob.parse_child_request(none, "c.xml"))


def test_an_identity_that_is_not_a_certificate_is_refused_naming_file_and_element() -> None:
    data = re.sub(
        rb"<child_bpki_ta>.*?</child_bpki_ta>",
        b"<child_bpki_ta>" + base64.b64encode(b"not a certificate") + b"</child_bpki_ta>",
        CHILD.read_bytes(),
        flags=re.DOTALL,
    )
    assert refusal(lambda: oob.parse_child_request(data, "c.xml")).startswith("c.xml: <child_bpki_ta>: ")


def test_entities_and_oversized_files_are_refused() -> None:
    laughs = b'<!DOCTYPE a [<!ENTITY x "xxxxxxxx">]><child_request>&x;</child_request>'
    assert "forbidden XML construct" in refusal(lambda: oob.parse_child_request(laughs, "c.xml"))
    huge = CHILD.read_bytes().replace(b"</child_request>", b" " * oob.MAX_FILE_BYTES + b"</child_request>")
    assert f"more than the {oob.MAX_FILE_BYTES}" in refusal(lambda: oob.parse_child_request(huge, "c.xml"))


# ------------------------------------------------------------------------------------------ rendering


@pytest.mark.parametrize("path", READABLE, ids=name)
def test_render_reads_back_the_same(path: Path) -> None:
    parse = parser_for(path)
    message = parse(path.read_bytes(), name(path))
    assert parse(oob.render(message), "rendered") == message


@pytest.mark.parametrize(
    ("path", "root", "element"),
    [
        (CHILD, "child_request", "child_bpki_ta"),
        (RPKI_RS / "afrinic-parent-response.xml", "parent_response", "parent_bpki_ta"),
        (OOB / "publisher_request.xml", "publisher_request", "publisher_bpki_ta"),
        (RPKI_RS / "apnic-repository-response.xml", "repository_response", "repository_bpki_ta"),
    ],
)
def test_render_writes_the_rfc_form(path: Path, root: str, element: str) -> None:
    """Read with plain defusedxml: the namespace with its slash, version 1, Base64 in 64-column lines."""
    message = parser_for(path)(path.read_bytes(), name(path))
    written = oob.render(message)
    tree = fromstring(written, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    assert tree.tag == "{http://www.hactrn.net/uris/rpki/rpki-setup/}" + root
    assert tree.get("version") == "1"
    ta = tree.find("{http://www.hactrn.net/uris/rpki/rpki-setup/}" + element)
    assert ta is not None
    assert ta.text is not None
    lines = ta.text.split()
    assert len(lines) > 10
    assert all(len(line) == 64 for line in lines[:-1])
    assert 0 < len(lines[-1]) <= 64
    assert base64.b64decode("".join(lines), validate=True) == message.identity


def test_render_of_a_repository_response_writes_sia_base_with_its_slash() -> None:
    path = RPKI_RS / "apnic-repository-response.xml"
    written = oob.render(oob.parse_repository_response(path.read_bytes(), name(path)))
    assert b'sia_base="rsync://rpki.sub.apnic.net/repository/A91872ED0000/"' in written
    offer = oob.render(oob.parse_parent_response((RPKI_RS / "afrinic-parent-response.xml").read_bytes(), "a"))
    assert b"<offer/>" in offer


def test_render_escapes_attribute_values(identity: bytes) -> None:
    tag = "a&b<c>\"d'e"
    request = oob.ChildRequest("acme", identity, tag=tag)
    written = oob.render(request)
    assert b'tag="a&amp;b&lt;c&gt;&quot;d\'e"' in written
    assert oob.parse_child_request(written, "w") == request
    parent = oob.ParentResponse("https://p.example/up-down?a=1&b=2", "p", "c", identity)
    written = oob.render(parent)
    assert b'service_uri="https://p.example/up-down?a=1&amp;b=2"' in written
    assert oob.parse_parent_response(written, "w") == parent


def test_xmllint_accepts_what_render_writes(tmp_path: Path, identity: bytes) -> None:
    """``xmllint --noout`` when it is installed; otherwise the same well-formedness check with
    defusedxml (the assertion that cannot run is replaced, not skipped)."""
    messages: list[oob.Message] = [
        oob.ChildRequest("acme", identity, tag="t&1"),
        oob.ParentResponse("http://p.example/up-down/acme", "P", "acme", identity, offer=True),
        oob.PublisherRequest("acme", identity),
        oob.RepositoryResponse(
            "https://r.example/rfc8181/acme",
            "acme",
            "rsync://r.example/repo/acme/",
            identity,
            "https://r.example/notification.xml",
            "t",
        ),
    ]
    xmllint = shutil.which("xmllint")
    for index, message in enumerate(messages):
        path = tmp_path / f"{index}.xml"
        path.write_bytes(oob.render(message))
        if xmllint is not None:
            done = subprocess.run([xmllint, "--noout", str(path)], capture_output=True, check=False)
            assert (done.returncode, done.stderr) == (0, b"")
        else:
            fromstring(path.read_bytes(), forbid_dtd=True, forbid_entities=True, forbid_external=True)


def test_a_child_request_with_a_new_identity_reads_back_identical(identity: bytes) -> None:
    request = oob.ChildRequest("acme", identity, tag="session-1")
    assert oob.parse_child_request(oob.render(request), "acme.xml") == request
    assert bpki.load_identity(identity, "acme").self_signed


def test_a_publisher_request_with_an_identity_from_a_signer_reads_back_identical(tmp_path: Path) -> None:
    signer = FileSigner(tmp_path)
    made = bpki.create_identity(signer, signer.create_key(bpki.identity_label("acme")), NOW)
    request = oob.PublisherRequest("acme", made.der)
    assert oob.parse_publisher_request(oob.render(request), "acme.xml") == request


@pytest.mark.parametrize(
    ("message", "fragment"),
    [
        (oob.ChildRequest("acme corp", b""), "child_handle 'acme corp'"),
        (oob.PublisherRequest("acme", b"", tag="zero\u200bwidth"), "tag 'zero\\u200bwidth' holds"),
        (oob.ParentResponse("ftp://p.example/", "p", "c", b""), "service_uri 'ftp://p.example/'"),
        (oob.RepositoryResponse("https://r.example/", "a", "https://r.example/a/", b""), "sia_base"),
        (
            oob.RepositoryResponse("https://r.example/", "a", "rsync://r.example/a/", b"", "http://x/n.xml"),
            "rrdp_notification_uri",
        ),
        (oob.ChildRequest("acme", b"not a certificate"), "<child_request> to write: <child_bpki_ta>: "),
    ],
)
def test_render_refuses_what_parse_would_refuse(message: oob.Message, fragment: str) -> None:
    assert fragment in refusal(lambda: oob.render(message))


# --------------------------------------------------------------------------------------------- fuzzing


def _check(message: oob.Message, parse: Parser) -> None:
    """What a message read from any input is: values of the RFC forms, and rendering it reads back."""
    for field in ("child_handle", "parent_handle", "publisher_handle"):
        value = getattr(message, field, None)
        assert value is None or HANDLE.fullmatch(value)
    service_uri = getattr(message, "service_uri", None)
    assert service_uri is None or service_uri.lower().startswith(("http://", "https://"))
    if isinstance(message, oob.RepositoryResponse):
        assert message.sia_base.lower().startswith("rsync://")
        assert message.sia_base.endswith("/")
        assert message.rrdp_notification_uri is None or message.rrdp_notification_uri.startswith("https://")
    assert message.identity
    assert parse(oob.render(message), "rendered") == message


def _read_anything(data: bytes, parsers: Any) -> None:
    for parse in parsers:
        try:
            message = parse(data, "fuzzed.xml")
        except ProtocolError:
            continue
        _check(message, parse)


@FUZZ
@given(st.binary(max_size=4096))
def test_arbitrary_bytes_are_read_or_refused(data: bytes) -> None:
    _read_anything(data, PARSERS.values())


#: Byte edits: random bytes, and the pieces that change an XML file's meaning or a Base64 text's.
EDITS = st.lists(
    st.tuples(
        st.sampled_from(["replace", "insert", "delete"]),
        st.integers(0, 1 << 20),
        st.one_of(
            st.binary(min_size=1, max_size=8),
            st.sampled_from(
                [
                    b"<",
                    b">",
                    b"&",
                    b'"',
                    b"=",
                    b"/",
                    b" ",
                    b"\n",
                    b"A",
                    b"+",
                    b"\xe2\x80\x8b",
                    b"&#x200B;",
                    b"<!DOCTYPE a>",
                    b' xmlns:x="y"',
                    b"<x/>",
                    b"\x00",
                    b"\x30\x80",
                    b"\xff\xff\xff\xff",
                ]
            ),
        ),
    ),
    min_size=1,
    max_size=6,
)


def _edit(data: bytes, edits: list[tuple[str, int, bytes]]) -> bytes:
    changed = bytearray(data)
    for kind, where, chunk in edits:
        at = where % (len(changed) + 1)
        if kind == "replace":
            changed[at : at + len(chunk)] = chunk
        elif kind == "insert":
            changed[at:at] = chunk
        else:
            del changed[at : at + len(chunk)]
    return bytes(changed)


@FUZZ
@given(st.sampled_from(READABLE), EDITS)
def test_mutations_of_real_files_are_read_or_refused(path: Path, edits: list[tuple[str, int, bytes]]) -> None:
    _read_anything(_edit(path.read_bytes(), edits), PARSERS.values())


@FUZZ
@given(st.sampled_from(READABLE), EDITS)
def test_mutations_of_the_identity_inside_real_files_are_read_or_refused(
    path: Path, edits: list[tuple[str, int, bytes]]
) -> None:
    """The certificate's DER edited and encoded again, so that the edits reach the certificate reader
    rather than stopping at the XML or Base64 layer."""
    data = path.read_bytes()
    found = re.search(rb"(<(?:\w+:)?\w+_bpki_ta>)(.*?)(</)", data, re.DOTALL)
    assert found is not None
    der = _edit(base64.b64decode(re.sub(rb"\s+", b"", found.group(2))), edits)
    _read_anything(data[: found.start(2)] + base64.b64encode(der) + data[found.end(2) :], [parser_for(path)])


@FUZZ
@given(
    st.sampled_from(
        [
            (REPOSITORY, "service_uri"),
            (REPOSITORY, "publisher_handle"),
            (REPOSITORY, "sia_base"),
            (REPOSITORY, "rrdp_notification_uri"),
            (REPOSITORY, "tag"),
            (CHILD, "child_handle"),
            (RPKI_RS / "afrinic-parent-response.xml", "parent_handle"),
            (RPKI_RS / "afrinic-parent-response.xml", "service_uri"),
        ]
    ),
    st.text(st.characters(codec="utf-8"), max_size=300),
)
def test_any_attribute_value_is_read_as_valid_or_refused(where: tuple[Path, str], value: str) -> None:
    path, attribute = where
    _read_anything(_with_attribute(path, attribute, value), [parser_for(path)])
