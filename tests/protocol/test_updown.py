"""RFC 6492 up-down messages: every message real parents and children exchanged reads into values, every
value writes back to XML that reads into the same value, and anything else is refused with the reason."""

from __future__ import annotations

import base64
import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from defusedxml.ElementTree import fromstring
from hypothesis import given
from hypothesis import strategies as st

from reconciler.protocol import csr, sigmsg, updown
from reconciler.protocol.errors import ProtocolError
from reconciler.protocol.updown import (
    ERRORS,
    ErrorResponse,
    IssuedCertificate,
    IssueRequest,
    IssueResponse,
    ListQuery,
    ListResponse,
    Message,
    ResourceClass,
    RevokeRequest,
    RevokeResponse,
    error_kind,
)
from reconciler.resources import Resources
from tests.hostile.fuzzing import FUZZ

PROTOCOLS = Path(__file__).parent.parent / "fixtures" / "real-world" / "protocols"
RFC6492 = PROTOCOLS / "rpki-rs" / "rfc6492"
REMOTE = PROTOCOLS / "krill" / "remote"
NS = "http://www.apnic.net/specs/rescerts/up-down/"


def xml_of(path: Path) -> bytes:
    """The XML of a message file; of a CMS-wrapped one unverified (the codec under test never sees CMS)."""
    return path.read_bytes() if path.suffix == ".xml" else sigmsg.econtent(path.read_bytes(), path.name)


def read(path: Path) -> Message:
    return updown.parse(xml_of(path), path.name)


ALL = [
    RFC6492 / "afrinic-response.der",
    RFC6492 / "apnic-response.der",
    RFC6492 / "apnic-testbed-response.der",
    RFC6492 / "issue.der",
    RFC6492 / "issue-response.der",
    RFC6492 / "list.der",
    RFC6492 / "not-performed-response.xml",
    RFC6492 / "revoke-req.xml",
    RFC6492 / "revoke-response.xml",
    REMOTE / "apnic-list-response.der",
    REMOTE / "ncc-response.ber",
    REMOTE / "rpkid-rfc6492-issue.der",
    REMOTE / "rpkid-rfc6492-issue_response.der",
    REMOTE / "rpkid-rfc6492-list.der",
    REMOTE / "rpkid-rfc6492-list_response.der",
    REMOTE / "pdu_200.der",
    REMOTE / "lacnic-valid.ber",
    REMOTE / "lacnic-invalid-response.ber",
    PROTOCOLS / "krill" / "provisioning" / "list.xml",
]


def utc(year: int, month: int, day: int, *hms: int) -> datetime:
    hour, minute, second = (*hms, 0, 0, 0)[:3]
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


def only_class(message: Message) -> ResourceClass:
    assert isinstance(message.payload, ListResponse)
    assert len(message.payload.classes) == 1
    return message.payload.classes[0]


def certificate(der: bytes) -> x509.Certificate:
    return x509.load_der_x509_certificate(der)


# --- what real parents send -------------------------------------------------------------------


def test_afrinic_list_response() -> None:
    message = read(RFC6492 / "afrinic-response.der")
    assert (message.sender, message.recipient) == ("AFRINIC", "F3615BDCAF")
    found = only_class(message)
    assert found.class_name == "IANA-2127"
    assert found.cert_url == (
        "rsync://rpki.dev.mu.afrinic.net/repository/AA13FF1E989311EC800A953B6E8ECFCA/afrinic-dev.cer"
    )
    # resource_set_ipv6="" is no IPv6 at all
    assert found.resources == Resources.parse(asn=["37610"], ipv4=["196.10.119.0/24"])
    assert not found.resources.ipv6
    assert found.not_after == utc(2023, 3, 31)
    assert found.suggested_sia_head is None
    assert len(found.certificates) == 1
    issued = found.certificates[0]
    assert issued.cert_url.endswith("/CC633690989B11EC94BD43CCB85089B2/WcvFXcVb4Avd8YjsuiyJ2uxUwtY.cer")
    assert issued.requested is None
    # the certificate is the one issued in this class: it ends when the entitlement does
    assert certificate(issued.der).not_valid_after_utc == found.not_after
    # the issuer is the parent's CA certificate: it signed the child's certificate
    certificate(issued.der).verify_directly_issued_by(certificate(found.issuer))


def test_apnic_list_response() -> None:
    message = read(RFC6492 / "apnic-response.der")
    assert (message.sender, message.recipient) == ("APNIC-AP", "A912C8360000")
    found = only_class(message)
    assert found.class_name == "IANA"
    assert found.cert_url.endswith("/980652E0B77E11E7A96A39521A4F4FB4/DmWk9f02tb1o6zySNAiXjJB6p58.cer")
    assert found.resources == Resources.parse(
        asn=["139686", "139693", "139912", "139921", "140098"],
        ipv4=["103.144.176.0/23"],
        ipv6=["2001:df1:ee80::/48"],
    )
    assert found.not_after == utc(2023, 1, 31)
    assert len(found.certificates) == 1
    issued = certificate(found.certificates[0].der)
    assert issued.not_valid_after_utc == found.not_after
    # the issuer is the parent's CA certificate: it signed the child's certificate
    issued.verify_directly_issued_by(certificate(found.issuer))


def test_apnic_testbed_ranges_and_no_certificate_yet() -> None:
    message = read(RFC6492 / "apnic-testbed-response.der")
    assert (message.sender, message.recipient) == ("APNIC-AP", "nlnetlabs-testbed-client")
    found = only_class(message)
    assert found.class_name == "IANA_9EE7"
    assert found.resources.asn.ranges == ((64512, 65534), (4200000000, 4294967294))
    assert found.resources == Resources.parse(
        asn=["64512-65534", "4200000000-4294967294"], ipv4=["10.0.0.0/8"], ipv6=["fc00::/7"]
    )
    assert found.not_after == utc(2030, 1, 1)
    assert found.certificates == ()


def test_apnic_list_response_with_empty_sets() -> None:
    message = read(REMOTE / "apnic-list-response.der")
    assert (message.sender, message.recipient) == ("APNIC-AP", "child2")
    found = only_class(message)
    assert found.class_name == "IANA_9EE7"
    assert found.resources == Resources.parse(ipv4=["10.0.0.0/24"])
    assert not found.resources.asn and not found.resources.ipv6
    assert found.certificates == ()


def test_lacnic_list_response_with_address_ranges() -> None:
    message = read(REMOTE / "lacnic-valid.ber")
    assert (message.sender, message.recipient) == ("LACNIC", "BR-NICB-LACNIC-5a7qxQ")
    found = only_class(message)
    assert found.class_name == "lacnic-resources"
    assert found.not_after == utc(2019, 10, 4, 8, 48, 14)
    lo, hi = Resources.parse(ipv4=["45.4.4.0-45.4.83.255"]).ipv4.ranges[0]
    assert (lo, hi) in found.resources.ipv4.ranges
    assert found.resources.contains(Resources.parse(asn=["2715-2716"], ipv6=["2001:1280::/32"]))
    assert len(found.certificates) == 1
    assert len(found.certificates[0].der) == 69438
    # LACNIC's certificate ends a little before the entitlement, never after it
    ends = certificate(found.certificates[0].der).not_valid_after_utc
    assert found.not_after - timedelta(hours=1) < ends <= found.not_after


def test_lacnic_error_response_without_sender_and_recipient() -> None:
    message = read(REMOTE / "lacnic-invalid-response.ber")
    assert (message.sender, message.recipient) == ("", "")
    assert message.payload == ErrorResponse(2001, "Internal Server Error - Request not performed")
    assert error_kind(2001) == "error"
    # written back the way it came: without the two attributes
    root = fromstring(updown.render(message))
    assert root.get("sender") is None and root.get("recipient") is None


def test_ripe_ncc_revoke_response_with_unpadded_ski() -> None:
    message = read(REMOTE / "ncc-response.ber")
    assert message.sender == "2aba8612-cb18-48ce-9d2a-6ef399a655c9"
    assert message.recipient == "b238f1df-98db-4fa8-94f1-6c22e9c5c456"
    assert isinstance(message.payload, RevokeResponse)
    assert message.payload.class_name == "DEFAULT"
    assert message.payload.ski == base64.urlsafe_b64decode("u-ycaZlOw_9Xa2UmsIIi6v_oEJo=")
    assert len(message.payload.ski) == 20
    assert b'ski="u-ycaZlOw_9Xa2UmsIIi6v_oEJo"' in updown.render(message)


def test_revoke_request_with_padded_ski_is_written_without_padding() -> None:
    message = read(RFC6492 / "revoke-req.xml")
    assert (message.sender, message.recipient) == ("sender", "recipient")
    assert message.payload == RevokeRequest(
        "class_name", base64.urlsafe_b64decode("IEANpSE1IUSDJq2v6dXpRW_iphY=")
    )
    assert b'ski="IEANpSE1IUSDJq2v6dXpRW_iphY"' in updown.render(message)


def test_revoke_response_and_not_performed() -> None:
    revoked = read(RFC6492 / "revoke-response.xml")
    assert (revoked.sender, revoked.recipient) == ("child", "parent")
    assert revoked.payload == RevokeResponse("0", base64.urlsafe_b64decode("5EU4LcY-NgqftXX8EkcOZnhbsn4="))
    error = read(RFC6492 / "not-performed-response.xml")
    assert error.payload == ErrorResponse(1101, "already processing request")
    assert error_kind(1101) == "retry"


@pytest.mark.parametrize(
    ("path", "sender", "recipient"),
    [
        (RFC6492 / "list.der", "Alice", "Alice"),
        (REMOTE / "rpkid-rfc6492-list.der", "Alice", "Alice"),
        (PROTOCOLS / "krill" / "provisioning" / "list.xml", "sender name", "recipient name"),
    ],
)
def test_list_queries(path: Path, sender: str, recipient: str) -> None:
    assert read(path) == Message(sender, recipient, ListQuery())


@pytest.mark.parametrize("path", [RFC6492 / "issue.der", REMOTE / "rpkid-rfc6492-issue.der"])
def test_rpkid_issue_carries_a_ca_request(path: Path) -> None:
    message = read(path)
    assert (message.sender, message.recipient) == ("Alice", "Alice")
    assert isinstance(message.payload, IssueRequest)
    assert message.payload.class_name == "Alice"
    assert message.payload.limit is None
    request = csr.parse_ca_request(message.payload.csr, path.name)
    assert request.ca_repository == "rsync://localhost:4404/rpki/Alice/1/"


@pytest.mark.parametrize(
    "path", [RFC6492 / "issue-response.der", REMOTE / "rpkid-rfc6492-issue_response.der"]
)
def test_rpkid_issue_response_certifies_the_requested_key(path: Path) -> None:
    message = read(path)
    assert isinstance(message.payload, IssueResponse)
    found = message.payload.resource_class
    assert found.class_name == "Alice"
    assert found.cert_url == "rsync://localhost:4404/rpki/root.cer"
    assert found.resources == Resources.parse(asn=["0-4294967295"], ipv4=["0.0.0.0/0"], ipv6=["::/0"])
    assert found.not_after == utc(2011, 7, 31, 4, 7, 24)
    assert [c.cert_url for c in found.certificates] == ["rsync://localhost:4404/rpki/Alice.cer"]
    requested = read(RFC6492 / "issue.der").payload
    assert isinstance(requested, IssueRequest)
    issued_key = certificate(found.certificates[0].der).public_key()
    assert issued_key == csr.parse_ca_request(requested.csr, "issue.der").public_key


def test_rpkid_list_response() -> None:
    found = only_class(read(REMOTE / "rpkid-rfc6492-list_response.der"))
    assert found.class_name == "Alice"
    assert found.certificates == ()
    assert found.resources == Resources.parse(asn=["0-4294967295"], ipv4=["0.0.0.0/0"], ipv6=["::/0"])


def test_pdu_200_issue_from_carol_to_bob() -> None:
    message = read(REMOTE / "pdu_200.der")
    assert (message.sender, message.recipient) == ("Carol", "Bob")
    assert isinstance(message.payload, IssueRequest)
    assert message.payload.class_name == "2"
    assert message.payload.csr == (PROTOCOLS / "rpki-rs" / "drl-csr.der").read_bytes()
    assert read(PROTOCOLS / "rpki-rs" / "sigmsg" / "pdu_200.der") == message


# --- writing ----------------------------------------------------------------------------------

ISSUER = (RFC6492 / "list.der").read_bytes()  # any bytes: the codec does not read certificates
SKI = bytes(range(20))
CLASS = ResourceClass(
    class_name="DEFAULT",
    cert_url="rsync://parent.example/repo/parent.cer",
    resources=Resources.parse(
        asn=["64496", "64500-64511"], ipv4=["192.0.2.0/24", "198.51.100.0-198.51.100.99"]
    ),
    not_after=utc(2027, 3, 31),
    issuer=ISSUER,
    certificates=(
        IssuedCertificate("rsync://parent.example/repo/a.cer", b"first"),
        IssuedCertificate(
            "rsync://parent.example/repo/b.cer", b"second", Resources.parse(ipv6=["2001:db8::/32"])
        ),
    ),
    suggested_sia_head="rsync://publisher.example/child/",
)
CONSTRUCTED = [
    Message("child", "parent", ListQuery()),
    Message("parent", "child", ListResponse(())),
    Message(
        "parent",
        "child",
        ListResponse((CLASS, ResourceClass("empty", "rsync://p/x.cer", Resources(), utc(2030, 1, 1), b"i"))),
    ),
    Message("child", "parent", IssueRequest("DEFAULT", b"csr")),
    Message("child", "parent", IssueRequest("DEFAULT", b"csr", Resources.parse(ipv4=["192.0.2.0/25"]))),
    Message("child", "parent", IssueRequest("DEFAULT", b"csr", Resources())),
    Message("parent", "child", IssueResponse(replace(CLASS, certificates=CLASS.certificates[:1]))),
    Message("child", "parent", RevokeRequest("DEFAULT", SKI)),
    Message("parent", "child", RevokeResponse("DEFAULT", SKI)),
    Message("parent", "child", ErrorResponse(1201, "request - no such resource class")),
    Message("parent", "child", ErrorResponse(2001)),
    Message("", "", ErrorResponse(1102, 'a "quoted" <text> & more')),
]


TYPE_NAMES = {
    ListQuery: "list",
    ListResponse: "list_response",
    IssueRequest: "issue",
    IssueResponse: "issue_response",
    RevokeRequest: "revoke",
    RevokeResponse: "revoke_response",
    ErrorResponse: "error_response",
}


@pytest.mark.parametrize("message", CONSTRUCTED, ids=lambda m: type(m.payload).__name__)
def test_every_message_type_round_trips(message: Message) -> None:
    written = updown.render(message)
    assert updown.parse(written, "rendered") == message
    assert updown.render(message) == written  # deterministic
    root = fromstring(written)
    assert root.tag == f"{{{NS}}}message"
    assert root.get("version") == "1"
    assert root.get("type") == TYPE_NAMES[type(message.payload)]


@pytest.mark.parametrize("path", ALL, ids=lambda p: p.name)
def test_real_messages_round_trip(path: Path) -> None:
    message = read(path)
    assert updown.parse(updown.render(message), "rendered") == message


def test_resource_sets_are_written_in_the_rfc_6492_form() -> None:
    written = updown.render(Message("p", "c", ListResponse((CLASS,)))).decode()
    assert 'resource_set_as="64496,64500-64511"' in written
    assert 'resource_set_ipv4="192.0.2.0/24,198.51.100.0-198.51.100.99"' in written
    assert 'resource_set_ipv6=""' in written
    assert 'resource_set_notafter="2027-03-31T00:00:00Z"' in written
    assert 'req_resource_set_ipv6="2001:db8::/32"' in written
    # a certificate without a requested limit carries no req_ attributes
    assert re.search(r'<certificate cert_url="rsync://parent.example/repo/a.cer">', written)


# --- refusals ---------------------------------------------------------------------------------


def message(
    kind: str, body: str = "", attributes: str = 'sender="c" recipient="p"', version: str = 'version="1"'
) -> bytes:
    return f'<message xmlns="{NS}" {version} {attributes} type="{kind}">{body}</message>'.encode()


CERT_B64 = base64.b64encode(b"certificate").decode()
ISSUER_XML = f"<issuer>{CERT_B64}</issuer>"
#: A class's required attributes other than its name.
URL_AND_END = "cert_url='rsync://p/a.cer' resource_set_notafter='2030-01-01T00:00:00Z'"


def list_response(class_attributes: str, inner: str = f"<issuer>{CERT_B64}</issuer>") -> bytes:
    defaults = {
        "class_name": "A",
        "cert_url": "rsync://p/a.cer",
        "resource_set_notafter": "2030-01-01T00:00:00Z",
    }
    given_names = set(re.findall(r"(\w+)=", class_attributes))
    rest = " ".join(f'{k}="{v}"' for k, v in defaults.items() if k not in given_names)
    return message("list_response", f"<class {rest} {class_attributes}>{inner}</class>")


@pytest.mark.parametrize(
    ("xml", "reason"),
    [
        (message("rekey"), "unknown message type 'rekey'"),
        (message("list", version='version="2"'), "message version '2', but only version 1"),
        (message("list", version=""), "no version attribute"),
        (message("list", attributes='recipient="p"'), "no sender attribute"),
        (message("list", attributes='sender="c"'), "no recipient attribute"),
        (message("list", attributes='sender="" recipient="p"'), "sender is 0 characters long"),
        (b"<message/>", "expected <message> in namespace"),
        (b"not xml", "not well-formed XML"),
        (list_response('class_name=""'), "class_name is 0 characters long"),
        (
            message(
                "list_response",
                f"<class {URL_AND_END}>{ISSUER_XML}</class>",
            ),
            "<class> has no class_name attribute",
        ),
        (message("issue", f"<request>{CERT_B64}</request>"), "<request> has no class_name attribute"),
        (message("revoke", '<key ski="5EU4LcY-NgqftXX8EkcOZnhbsn4"/>'), "<key> has no class_name attribute"),
        (list_response('resource_set_ipv4="10.0.0.0/8,10.0.0.1/33"'), "resource_set_ipv4 item '10.0.0.1/33'"),
        (
            list_response('resource_set_ipv4="10.0.0.1/8"'),
            "resource_set_ipv4 item '10.0.0.1/8': '10.0.0.1/8' has host bits set",
        ),
        (list_response('resource_set_as="AS65000"'), "resource_set_as item 'AS65000' holds a character"),
        (list_response('resource_set_as="65001-65000"'), "resource_set_as item '65001-65000': AS range"),
        (
            list_response('resource_set_as="4294967296"'),
            "resource_set_as item '4294967296': AS number 4294967296 is out of range",
        ),
        (list_response('resource_set_as="1,,2"'), "resource_set_as has an empty item"),
        (list_response('resource_set_ipv6="2001:db8::/32,"'), "resource_set_ipv6 has an empty item"),
        (
            list_response('resource_set_ipv6="10.0.0.0/8"'),
            "resource_set_ipv6 item '10.0.0.0/8' holds a character",
        ),
        (
            list_response('resource_set_ipv4="2001:db8::/32"'),
            "resource_set_ipv4 item '2001:db8::/32' holds a character",
        ),
        (list_response('resource_set_as="' + "9" * 200 + '"'), "is too long to be an AS number"),
        (
            list_response(
                'resource_set_as="1"',
                "<certificate cert_url='rsync://p/c.cer' req_resource_set_ipv4='1.2.3'>"
                + f"{CERT_B64}</certificate>{ISSUER_XML}",
            ),
            "req_resource_set_ipv4 item '1.2.3'",
        ),
        (
            message(
                "list_response",
                f"<class class_name='A' cert_url='rsync://p/a.cer'><issuer>{CERT_B64}</issuer></class>",
            ),
            "no resource_set_notafter attribute",
        ),
        (
            list_response('resource_set_notafter="next year"'),
            "resource_set_notafter 'next year' is not a time",
        ),
        (list_response('resource_set_notafter="2030-01-01T00:00:00"'), "has no time zone"),
        (list_response("", ""), "<class> must hold exactly one <issuer>, it holds 0"),
        (list_response("", "<issuer>!!!!</issuer>"), "<issuer>: not valid Base64"),
        (list_response("", "<issuer>AAAA\u200bAAAA</issuer>"), "U+200B (ZERO WIDTH SPACE)"),
        (
            list_response(
                "", f"<certificate cert_url='rsync://p/c.cer'>@@</certificate><issuer>{CERT_B64}</issuer>"
            ),
            "<certificate>: not valid Base64",
        ),
        (
            message(
                "list_response",
                "".join(f"<class class_name='c{i}' {URL_AND_END}>{ISSUER_XML}</class>" for i in range(65)),
            ),
            "more than 64 resource classes",
        ),
        (
            list_response(
                "",
                "".join(
                    f"<certificate cert_url='rsync://p/{i}.cer'>{CERT_B64}</certificate>" for i in range(17)
                )
                + f"<issuer>{CERT_B64}</issuer>",
            ),
            "more than 16 certificates",
        ),
        (
            message(
                "issue_response",
                f"<class class_name='A' {URL_AND_END}>{ISSUER_XML}</class>",
            ),
            "exactly one <certificate>, it holds 0",
        ),
        (message("issue"), "<message> must hold exactly one <request>, it holds 0"),
        (
            message("revoke", '<key class_name="A" ski="5EU4LcY+NgqftXX8EkcOZnhbsn4"/>'),
            "is not URL-safe Base64",
        ),
        (
            message("revoke", '<key class_name="A" ski="5EU4LcY-NgqftXX8EkcOZnhb"/>'),
            "holds 18 bytes; a key identifier is the 20-byte",
        ),
        (message("revoke", '<key class_name="A" ski="5EU4LcY-NgqftXX8EkcOZnhbsn4QQ"/>'), "not valid Base64"),
        (message("revoke_response", '<key class_name="A"/>'), "<key> has no ski attribute"),
        (
            message("error_response", "<status>busy</status>"),
            "<status> 'busy' is not an RFC 6492 status code",
        ),
        (
            message("error_response", "<description>no status</description>"),
            "exactly one <status>, it holds 0",
        ),
        (
            message("error_response", "<status>1101</status><description>" + "x" * 1025 + "</description>"),
            "<description> is 1025 characters long",
        ),
    ],
)
def test_refusals_say_what_is_wrong(xml: bytes, reason: str) -> None:
    with pytest.raises(ProtocolError) as caught:
        updown.parse(xml, "up-down from parent")
    assert str(caught.value).startswith("up-down from parent")
    assert reason in str(caught.value)


def test_missing_resource_attributes_mean_none() -> None:
    """Krill 0.10.0 and 0.10.1 parents leave out empty resource sets."""
    found = only_class(updown.parse(list_response('resource_set_ipv4="192.0.2.0/24"'), "list_response"))
    assert found.resources == Resources.parse(ipv4=["192.0.2.0/24"])


def test_requested_limit_absent_versus_empty() -> None:
    absent = updown.parse(message("issue", f"<request class_name='A'>{CERT_B64}</request>"), "issue")
    empty = updown.parse(
        message("issue", f"<request class_name='A' req_resource_set_as=''>{CERT_B64}</request>"), "issue"
    )
    assert isinstance(absent.payload, IssueRequest) and isinstance(empty.payload, IssueRequest)
    assert absent.payload.limit is None
    assert empty.payload.limit == Resources()


def test_namespace_prefix_and_missing_trailing_slash_are_read() -> None:
    xml = (
        b'<u:message xmlns:u="http://www.apnic.net/specs/rescerts/up-down" version="1" sender="a" '
        b'recipient="b" type="list"/>'
    )
    assert updown.parse(xml, "list") == Message("a", "b", ListQuery())


# --- error codes --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "text", "kind"),
    [
        (1101, "already processing request", "retry"),
        (1102, "version number error", "error"),
        (1103, "unrecognized request type", "error"),
        (1104, "request scheduled for processing", "retry"),
        (1201, "request - no such resource class", "drop-class"),
        (1202, "request - no resources allocated in resource class", "drop-class"),
        (1203, "request - badly formed certificate request", "error"),
        (1204, "request - already used key in request", "drop-class"),
        (1301, "revoke - no such resource class", "done"),
        (1302, "revoke - no such key", "done"),
        (2001, "Internal Server Error - Request not performed", "error"),
    ],
)
def test_error_codes(status: int, text: str, kind: str) -> None:
    assert ERRORS[status] == text
    assert error_kind(status) == kind
    written = updown.render(Message("p", "c", ErrorResponse(status, ERRORS[status])))
    assert updown.parse(written, "error").payload == ErrorResponse(status, text)


def test_error_codes_are_exactly_those_of_rfc_6492() -> None:
    assert sorted(ERRORS) == [1101, 1102, 1103, 1104, 1201, 1202, 1203, 1204, 1301, 1302, 2001]
    assert error_kind(9999) == "error"


# --- hostile input ------------------------------------------------------------------------------

SEEDS = [xml_of(path) for path in ALL if path.stat().st_size < 20_000]


def _parse_or_refuse(data: bytes) -> None:
    """Whatever the bytes, parse returns a message that writes back to itself, or raises ProtocolError."""
    try:
        found = updown.parse(data, "fuzz")
    except ProtocolError:
        return
    assert updown.parse(updown.render(found), "again") == found


@FUZZ
@given(st.binary(max_size=2048))
def test_arbitrary_bytes_are_refused_or_read(data: bytes) -> None:
    _parse_or_refuse(data)


@FUZZ
@given(
    st.sampled_from(SEEDS),
    st.lists(st.tuples(st.integers(min_value=0), st.binary(max_size=4), st.integers(0, 4)), max_size=6),
)
def test_mutated_messages_are_refused_or_read(seed: bytes, edits: list[tuple[int, bytes, int]]) -> None:
    data = bytearray(seed)
    for position, insert, delete in edits:
        at = position % (len(data) + 1)
        data[at : at + delete] = insert
    _parse_or_refuse(bytes(data))


ATTRIBUTE = re.compile(rb'(\w+)="[^"]*"')


@FUZZ
@given(st.sampled_from(SEEDS), st.integers(min_value=0), st.text(max_size=40))
def test_any_attribute_value_is_refused_or_read(seed: bytes, which: int, value: str) -> None:
    spans = [m.span() for m in ATTRIBUTE.finditer(seed)]
    start, end = spans[which % len(spans)]
    name = ATTRIBUTE.match(seed, start).group(1)  # type: ignore[union-attr]
    escaped = (
        value.replace("&", "&amp;")
        .replace('"', "&quot;")
        .replace("<", "&lt;")
        .encode("utf-8", "surrogatepass")
    )
    _parse_or_refuse(seed[:start] + name + b'="' + escaped + b'"' + seed[end:])
