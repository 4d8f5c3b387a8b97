"""RFC 8181 messages as real peers write them (rpki-rs and Krill test data, Krill's own re-encodings),
what is refused and why, and the list → delta step a publisher reconciles with."""

from __future__ import annotations

import base64
import re
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reconciler.protocol import publication as pub
from reconciler.protocol import xmlutil
from reconciler.protocol.errors import ProtocolError, XmlError
from tests.hostile.fuzzing import FUZZ

PROTOCOLS = Path(__file__).resolve().parent.parent / "fixtures" / "real-world" / "protocols"
RPKI_RS = PROTOCOLS / "rpki-rs" / "rfc8181"
KRILL = PROTOCOLS / "krill" / "publication"
GENERATED = KRILL / "generated"
ALL_FILES = sorted([*RPKI_RS.glob("*.xml"), *KRILL.glob("*.xml"), *GENERATED.glob("*.xml")])

CMS_TA_URI = "rsync://host/path/cms-ta.cer"
CMS_TA_HASH = "fae1c03bde9da15e26e90a9585d246ee4db79ee9f0b1db1a6c7deb2fc4e2d093"
PDU_200_HASH = "501655fb625a03520741801dcc71b5d3148cba2ef7106ca2762620c292c9f08d"
OTHER = "rsync://host/path/pdu.200.der"


def read(path: Path) -> pub.QueryMessage | pub.ReplyMessage:
    data = path.read_bytes()
    kind = re.search(rb'type="(\w+)"', data)
    assert kind is not None
    return pub.parse_query(data, path.name) if kind.group(1) == b"query" else pub.parse_reply(data, path.name)


def objects() -> tuple[bytes, bytes]:
    """The two real DER objects the rpki-rs files publish: a BPKI TA and a signed protocol message."""
    query = pub.parse_query((RPKI_RS / "publish-multi.xml").read_bytes(), "publish-multi.xml")
    assert isinstance(query, pub.Query)
    first, second = query.pdus[0], query.pdus[1]
    assert isinstance(first, pub.Publish) and isinstance(second, pub.Publish)
    return first.der, second.der


def msg(kind: str, body: str) -> bytes:
    return f'<msg xmlns="{pub.NS}" version="4" type="{kind}">{body}</msg>'.encode()


# -- every fixture, with its values ------------------------------------------------------------------


def test_every_fixture_is_read() -> None:
    assert len(ALL_FILES) == 23
    for path in ALL_FILES:
        read(path)


@pytest.mark.parametrize("name", ["list.xml"])
@pytest.mark.parametrize("where", [RPKI_RS, KRILL])
def test_list_query(where: Path, name: str) -> None:
    assert read(where / name) == pub.ListQuery()


def test_list_replies_rpki_rs() -> None:
    assert read(RPKI_RS / "list-reply.xml") == pub.ListReply(
        (pub.ListEntry(CMS_TA_URI, CMS_TA_HASH), pub.ListEntry(OTHER, PDU_200_HASH))
    )
    assert read(RPKI_RS / "list-reply-single.xml") == pub.ListReply((pub.ListEntry(CMS_TA_URI, CMS_TA_HASH),))


@pytest.mark.parametrize(
    "path",
    [
        RPKI_RS / "list-reply-empty.xml",
        RPKI_RS / "list-reply-empty-short.xml",
        KRILL / "list_reply_empty.xml",
    ],
)
def test_a_reply_without_pdus_is_an_empty_list(path: Path) -> None:
    assert read(path) == pub.ListReply(())


def test_short_fake_hashes_are_read() -> None:
    reply = read(KRILL / "list_reply.xml")
    assert isinstance(reply, pub.ListReply)
    assert [(e.uri.rsplit("/", 2)[1], e.hash) for e in reply.entries] == [
        ("Fee", "eb719b72f0648cf4"),
        ("Fie", "c7c50a68b7aa50bf"),
        ("Foe", "f222481ded47445d"),
        ("Fum", "15b94e08713275bc"),
    ]


def test_krill_publish_create_replace_withdraw() -> None:
    query = read(KRILL / "publish.xml")
    base = "rsync://wombat.example"
    assert query == pub.Query(
        (
            pub.Publish(f"{base}/Alice/01a97a70ac477f06.cer", b"Hello, my name is Alice", None, "Alice"),
            pub.Publish(f"{base}/Carol/32e0544eeb510ec0.cer", b"Hello, my name is Carol", None, "Carol"),
            pub.Publish(
                f"{base}/Eve/9dd859b01e5c2ebd.cer", b"Hello, my name is Eve", "421ee4ac65732d72", "Eve"
            ),
            pub.Withdraw(f"{base}/Bob/f46a4198efa3070e.cer", "f46a4198efa3070e", "Bob"),
            pub.Withdraw(f"{base}/Dave/421ee4ac65732d72.cer", "421ee4ac65732d72", "Dave"),
        )
    )


def test_rpki_rs_publish_files() -> None:
    ta, message = objects()
    assert pub.object_hash(ta) == CMS_TA_HASH and pub.object_hash(message) == PDU_200_HASH
    assert ta[:4] == b"\x30\x82\x03\x24" and len(ta) == 0x328
    assert read(RPKI_RS / "publish-single.xml") == pub.Query(
        (pub.Publish(CMS_TA_URI, ta, None, CMS_TA_HASH),)
    )
    assert read(RPKI_RS / "publish-multi.xml") == pub.Query(
        (
            pub.Publish(CMS_TA_URI, ta, None, CMS_TA_HASH),
            pub.Publish(CMS_TA_URI, message, None, PDU_200_HASH),
            pub.Withdraw(CMS_TA_URI, CMS_TA_HASH, CMS_TA_HASH),
        )
    )
    assert read(RPKI_RS / "publish-empty.xml") == pub.Query(())
    assert read(RPKI_RS / "publish-empty-short.xml") == pub.Query(())


@pytest.mark.parametrize("path", [RPKI_RS / "success-reply.xml", KRILL / "success.xml"])
def test_success(path: Path) -> None:
    assert read(path) == pub.SuccessReply()


def test_rpki_rs_error_reply() -> None:
    ta, _ = objects()
    reply = read(RPKI_RS / "error-reply.xml")
    assert reply == pub.ErrorReply(
        (
            pub.ReportError(
                "object_already_present",
                CMS_TA_HASH,
                pub.ERROR_CODES["object_already_present"],
                pub.pdu_xml(pub.Publish(CMS_TA_URI, ta, None, CMS_TA_HASH)),
            ),
            pub.ReportError("other_error", "", "Found some other issue.", None),
        )
    )


def test_krill_error_reports() -> None:
    assert read(KRILL / "report_error_minimal.xml") == pub.ErrorReply(
        (pub.ReportError("object_already_present", "foo"),)
    )
    reply = read(KRILL / "report_error_complex.xml")
    assert isinstance(reply, pub.ErrorReply)
    dave, eve = reply.errors
    assert (dave.code, dave.tag, dave.text) == (
        "no_object_matching_hash",
        "Dave",
        "I can't very well delete an object I do not have, are you drunk?",
    )
    assert dave.failed_pdu is not None and b"<withdraw " in dave.failed_pdu
    assert b'hash="421ee4ac65732d72"' in dave.failed_pdu
    uri = "rsync://wombat.example/Eve/9dd859b01e5c2ebd.cer"
    assert (eve.code, eve.tag, eve.text) == ("object_already_present", "Eve", None)
    assert eve.failed_pdu == pub.pdu_xml(pub.Publish(uri, b"Hello, my name is Eve", None, "Eve"))


def test_an_error_report_without_tag_is_read() -> None:
    """APNIC's server sent report_error without a tag."""
    reply = pub.parse_reply(msg("reply", '<report_error error_code="permission_failure"/>'), "apnic")
    assert reply == pub.ErrorReply((pub.ReportError("permission_failure", None, None, None),))


def test_namespace_without_slash_and_a_prefix() -> None:
    data = (
        b'<p:msg xmlns:p="http://www.hactrn.net/uris/rpki/publication-spec" version="4" type="reply">'
        b'<p:list uri="rsync://h/a.cer" hash="ABCDEF"/></p:msg>'
    )
    assert pub.parse_reply(data, "x") == pub.ListReply((pub.ListEntry("rsync://h/a.cer", "abcdef"),))


# -- Krill's re-encodings: ours must give the same PDUs ---------------------------------------------


def test_render_matches_krill_generated_files() -> None:
    ta, message = objects()
    ours: dict[str, pub.Message] = {
        "list_query_result.xml": pub.ListQuery(),
        "success_reply_result.xml": pub.SuccessReply(),
        "list_reply_result.xml": pub.ListReply(
            (pub.ListEntry(CMS_TA_URI, CMS_TA_HASH), pub.ListEntry(OTHER, PDU_200_HASH))
        ),
        "publish_query_result.xml": pub.Query(
            (
                pub.Publish(CMS_TA_URI, ta, tag=CMS_TA_HASH),
                pub.Publish(CMS_TA_URI, message, hash=CMS_TA_HASH, tag=PDU_200_HASH),
                pub.Withdraw(CMS_TA_URI, CMS_TA_HASH, tag=CMS_TA_HASH),
            )
        ),
        "error_reply_result.xml": pub.ErrorReply(
            (
                pub.ReportError(
                    "object_already_present",
                    CMS_TA_HASH,
                    pub.ERROR_CODES["object_already_present"],
                    pub.pdu_xml(pub.Publish(CMS_TA_URI, ta, tag=CMS_TA_HASH)),
                ),
                pub.ReportError("other_error", "", pub.ERROR_CODES["other_error"]),
            )
        ),
    }
    assert sorted(ours) == sorted(p.name for p in GENERATED.glob("*.xml"))
    for name, value in ours.items():
        rendered = pub.render(value)
        again = (
            pub.parse_query(rendered, name)
            if isinstance(value, (pub.ListQuery, pub.Query))
            else pub.parse_reply(rendered, name)
        )
        assert again == read(GENERATED / name) == value, name


@pytest.mark.parametrize("path", ALL_FILES, ids=lambda p: p.name)
def test_render_round_trips_what_it_can_carry(path: Path) -> None:
    value = read(path)
    if path.parent == KRILL and path.name in ("list_reply.xml", "publish.xml"):
        with pytest.raises(ValueError, match="not 64 lowercase hex digits"):
            pub.render(value)
        return
    rendered = pub.render(value)
    assert rendered.startswith(f'<msg xmlns="{pub.NS}" version="4"'.encode())
    assert read_bytes_as(value, rendered) == value


def read_bytes_as(value: pub.Message, data: bytes) -> pub.Message:
    if isinstance(value, (pub.ListQuery, pub.Query)):
        return pub.parse_query(data, "rendered")
    return pub.parse_reply(data, "rendered")


def test_render_always_emits_64_hex_digits() -> None:
    rendered = pub.render(pub.Query((pub.Withdraw("rsync://h/a.roa", "ab" * 32),))).decode()
    assert re.search(r'hash="[0-9a-f]{64}"', rendered)
    for bad in ("ab" * 8, "AB" * 32, "ab" * 33, "zz" * 32):
        with pytest.raises(ValueError, match="64 lowercase hex"):
            pub.render(pub.Query((pub.Withdraw("rsync://h/a.roa", bad),)))
        with pytest.raises(ValueError, match="64 lowercase hex"):
            pub.render(pub.ListReply((pub.ListEntry("rsync://h/a.roa", bad),)))


def test_render_refuses_what_rfc_8181_cannot_carry() -> None:
    with pytest.raises(ValueError, match="not an rsync URI"):
        pub.render(pub.Query((pub.Publish("https://h/a.roa", b"x"),)))
    with pytest.raises(ValueError, match="not an RFC 8181 error code"):
        pub.render(pub.ErrorReply((pub.ReportError("oops"),)))
    with pytest.raises(ValueError, match="U\\+0001"):
        pub.render(pub.Query((pub.Publish("rsync://h/a.roa", b"x", tag="a\x01"),)))


def test_render_escapes_and_writes_base64_in_lines() -> None:
    der = bytes(range(256)) * 2
    value = pub.Query((pub.Publish('rsync://h/a&b"<c>.roa', der, tag="t\n1"),))
    rendered = pub.render(value)
    lines = rendered.splitlines()
    assert len(lines) > 10 and all(len(line) <= 64 + len("</publish>") for line in lines[2:-1])
    assert pub.parse_query(rendered, "x") == value
    text = "a < b & c\r\nd \x00"
    reply = pub.parse_reply(pub.render(pub.ErrorReply((pub.ReportError("other_error", text=text),))), "x")
    assert reply == pub.ErrorReply((pub.ReportError("other_error", text="a < b & c\r\nd \ufffd"),))


def test_an_empty_reply_renders_as_an_empty_list() -> None:
    assert pub.render(pub.ListReply(())) == f'<msg xmlns="{pub.NS}" version="4" type="reply"/>\n'.encode()


def test_pdu_xml_is_the_same_however_the_peer_laid_it_out() -> None:
    laid_out = (
        '<report_error error_code="other_error"><failed_pdu>\n'
        '  <publish  uri="rsync://h/a.cer"\n tag="x">SGVs\n  bG8=</publish></failed_pdu></report_error>'
    )
    reply = pub.parse_reply(msg("reply", laid_out), "x")
    assert isinstance(reply, pub.ErrorReply)
    assert reply.errors[0].failed_pdu == pub.pdu_xml(pub.Publish("rsync://h/a.cer", b"Hello", tag="x"))


# -- refusals -----------------------------------------------------------------------------------------


REFUSED_REPLIES = [
    ("<success/><list uri='rsync://h/a' hash='ab'/>", "<success/> reply must hold nothing else"),
    ("<success/><success/>", "<success/> reply must hold nothing else"),
    ("<report_error error_code='xml_error'/><success/>", "<success/> reply must hold nothing else"),
    (
        "<report_error error_code='xml_error'/><list uri='rsync://h/a' hash='ab'/>",
        "must hold only error reports",
    ),
    ("<list uri='rsync://h/a' hash='ab'/><list uri='rsync://h/a' hash='cd'/>", "a second time"),
    ("<list uri='rsync://h/a'/>", "has no hash attribute"),
    ("<list hash='ab'/>", "has no uri attribute"),
    ("<list uri='http://h/a' hash='ab'/>", "not an rsync URI"),
    ("<list uri='rsync://h/a' hash='xyz'/>", "not hexadecimal"),
    ("<list uri='rsync://h/a' hash='" + "a" * 65 + "'/>", "not hexadecimal"),
    ("<publish uri='rsync://h/a'>AA==</publish>", "not <publish>"),
    ("<report_error/>", "no error_code attribute"),
    (
        "<report_error error_code='xml_error'><error_text/><error_text/></report_error>",
        "at most one <error_text>",
    ),
    (
        "<report_error error_code='xml_error'><failed_pdu/></report_error>",
        "exactly one PDU element",
    ),
    ("<other xmlns='urn:x'/>", "not in the RFC 8181 namespace"),
    ("stray text", "text outside its elements"),
]


@pytest.mark.parametrize(("body", "reason"), REFUSED_REPLIES)
def test_replies_refused(body: str, reason: str) -> None:
    with pytest.raises(XmlError, match=re.escape(reason)) as refused:
        pub.parse_reply(msg("reply", body), "reply.xml")
    assert str(refused.value).startswith("reply.xml: ")


REFUSED_QUERIES = [
    ("<list/><publish uri='rsync://h/a'>AA==</publish>", "<list/> query must hold nothing else"),
    ("<list/><list/>", "<list/> query must hold nothing else"),
    ("<success/>", "not <success>"),
    ("<publish uri='rsync://h/a'></publish>", "the Base64 is empty"),
    ("<publish uri='rsync://h/a'>A\u200bA==</publish>", "U+200B (ZERO WIDTH SPACE)"),
    ("<publish uri='rsync://h/a'>A!A=</publish>", "not valid Base64"),
    ("<publish uri='rsync://h/a' hash='g1'>AA==</publish>", "not hexadecimal"),
    ("<publish uri='rsync://h/a'><x/></publish>", "only the Base64"),
    ("<withdraw uri='rsync://h/a'/>", "has no hash attribute"),
    ("<withdraw uri='rsync://h/a' hash='ab'>AA==</withdraw>", "must be empty"),
    ("<publish>AA==</publish>", "has no uri attribute"),
]


@pytest.mark.parametrize(("body", "reason"), REFUSED_QUERIES)
def test_queries_refused(body: str, reason: str) -> None:
    with pytest.raises(XmlError, match=re.escape(reason)):
        pub.parse_query(msg("query", body), "query.xml")


def test_the_failing_pdu_is_named() -> None:
    body = "<publish uri='rsync://h/a'>AA==</publish><withdraw uri='rsync://h/b' hash='zz'/>"
    with pytest.raises(XmlError, match=re.escape("q.xml: <withdraw> #2 (rsync://h/b): hash 'zz'")):
        pub.parse_query(msg("query", body), "q.xml")


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (msg("reply", "<success/>"), "expected a message of type 'query', found type 'reply'"),
        (msg("query", "<list/>").replace(b'version="4"', b'version="3"'), "this one is version '3'"),
        (b'<msg xmlns="urn:other" version="4" type="query"/>', "expected <msg> in namespace"),
        (b"<msg", "not well-formed XML"),
        (b'<?xml version="1.0" encoding="no-such"?><msg/>', "not well-formed XML"),
        (b'<!DOCTYPE m [<!ENTITY e "x">]><msg/>', "forbidden XML construct"),
    ],
)
def test_messages_refused(data: bytes, reason: str) -> None:
    with pytest.raises(XmlError, match=re.escape(reason)):
        pub.parse_query(data, "m.xml")


H64 = "0123456789abcdef" * 4


@pytest.mark.parametrize(
    "data",
    [
        b'<!DOCTYPE m [<!ENTITY e "x">]><msg/>',
        b'<!DOCTYPE m SYSTEM "file:///etc/passwd"><msg/>',
        b'<?xml version="1.0"?><!DOCTYPE m [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;">]><msg>&b;</msg>',
    ],
)
def test_a_dtd_is_refused_however_plain_the_rest(data: bytes) -> None:
    with pytest.raises(XmlError, match="forbidden XML construct"):
        xmlutil.parse(data, "m.xml")


def test_a_query_is_not_a_reply() -> None:
    with pytest.raises(XmlError, match="expected a message of type 'reply', found type 'query'"):
        pub.parse_reply((RPKI_RS / "list.xml").read_bytes(), "list.xml")


# -- delta ----------------------------------------------------------------------------------------------


A, B, C, D = (f"rsync://h/m/{name}" for name in ("a.roa", "b.roa", "c.mft", "d.crl"))


def test_delta_creates_replaces_withdraws_and_keeps() -> None:
    old, new, same = b"old object", b"new object", b"same object"
    listed = {A: pub.object_hash(old), B: pub.object_hash(same), D: pub.object_hash(old)}
    desired = {C: new, A: new, B: same}
    assert pub.delta(listed, desired) == (
        pub.Publish(A, new, hash=pub.object_hash(old)),
        pub.Publish(C, new),
        pub.Withdraw(D, pub.object_hash(old)),
    )


def test_delta_takes_the_hashes_the_caller_has() -> None:
    """Given, the desired objects' hashes are what the listed ones are compared with (not hashed again)."""
    old, new = b"old object", b"new object"
    listed = {A: pub.object_hash(old), B: pub.object_hash(new)}
    desired = {A: new, B: new}
    hashes = {uri: pub.object_hash(der) for uri, der in desired.items()}
    replaced = (pub.Publish(A, new, hash=pub.object_hash(old)),)
    assert pub.delta(listed, desired, hashes) == pub.delta(listed, desired) == replaced
    assert pub.delta(listed, desired, {A: pub.object_hash(old), B: "0" * 64}) == (
        pub.Publish(B, new, hash=pub.object_hash(new)),
    )


def test_delta_of_equal_states_is_empty() -> None:
    desired = {A: b"1", B: b"2"}
    assert pub.delta({uri: pub.object_hash(der) for uri, der in desired.items()}, desired) == ()
    assert pub.delta({}, {}) == ()


def test_delta_reads_an_uppercase_listed_hash_as_the_same() -> None:
    assert pub.delta({A: pub.object_hash(b"x").upper()}, {A: b"x"}) == ()
    assert pub.delta({A: "ABCD"}, {}) == (pub.Withdraw(A, "abcd"),)


def test_delta_order_does_not_depend_on_the_mappings_order() -> None:
    desired = {D: b"4", A: b"1", C: b"3", B: b"2"}
    listed = {C: "00", A: "11"}
    first = pub.delta(listed, desired)
    assert [pdu.uri for pdu in first] == [A, B, C, D]
    assert pub.delta(dict(reversed(listed.items())), dict(sorted(desired.items()))) == first


def apply(state: dict[str, str], pdus: tuple[pub.Pdu, ...]) -> dict[str, str]:
    """What an RFC 8181 server does with a delta, with its checks (create must not exist, replace and
    withdraw must name the current hash)."""
    result = dict(state)
    assert len({pdu.uri for pdu in pdus}) == len(pdus), "one PDU per URI"
    for pdu in pdus:
        if isinstance(pdu, pub.Withdraw):
            assert result.pop(pdu.uri) == pdu.hash
        elif pdu.hash is None:
            assert pdu.uri not in result
            result[pdu.uri] = pub.object_hash(pdu.der)
        else:
            assert result[pdu.uri] == pdu.hash
            result[pdu.uri] = pub.object_hash(pdu.der)
    return result


URIS = st.sampled_from([f"rsync://h/m/{n}.roa" for n in range(12)])
DERS = st.binary(min_size=1, max_size=6)


@FUZZ
@given(
    listed=st.dictionaries(URIS, DERS.map(pub.object_hash)),
    desired=st.dictionaries(URIS, DERS),
)
def test_applying_the_delta_gives_the_desired_hashes(
    listed: dict[str, str], desired: dict[str, bytes]
) -> None:
    pdus = pub.delta(listed, desired)
    assert apply(listed, pdus) == {uri: pub.object_hash(der) for uri, der in desired.items()}
    assert [pdu.uri for pdu in pdus] == sorted(pdu.uri for pdu in pdus)
    # and it goes through the wire unchanged
    if pdus:
        assert pub.parse_query(pub.render(pub.Query(pdus)), "delta") == pub.Query(pdus)


# -- nothing but ProtocolError ---------------------------------------------------------------------------

VALID = [path.read_bytes() for path in ALL_FILES] + [
    msg(
        "query",
        "<publish uri='rsync://h/a' hash='ab'>SGVsbG8=</publish><withdraw uri='rsync://h/b' hash='cd'/>",
    ),
    msg(
        "reply",
        "<report_error error_code='xml_error' tag='t'><failed_pdu><list/></failed_pdu></report_error>",
    ),
]


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    """A valid message with bytes flipped, cut, inserted, deleted or duplicated, or an XML token
    swapped in."""
    data = bytearray(draw(st.sampled_from(VALID)))
    for _ in range(draw(st.integers(1, 4))):
        where = draw(st.integers(0, len(data)))
        operation = draw(st.sampled_from(["flip", "cut", "insert", "delete", "token"]))
        if operation == "flip" and where < len(data):
            data[where] ^= 1 << draw(st.integers(0, 7))
        elif operation == "cut":
            del data[where:]
        elif operation == "insert":
            data[where:where] = draw(st.binary(min_size=1, max_size=8))
        elif operation == "delete":
            del data[where : where + draw(st.integers(1, 16))]
        else:
            token = draw(
                st.sampled_from(
                    [
                        b"<list/>",
                        b"<success/>",
                        b"</msg>",
                        b'hash="',
                        b"&#0;",
                        b"&#x200b;",
                        b"<![CDATA[",
                        b"<!--",
                    ]
                )
            )
            data[where:where] = token
    return bytes(data)


def only_protocol_errors(data: bytes) -> None:
    for parse in (pub.parse_query, pub.parse_reply):
        try:
            parse(data, "fuzz")
        except ProtocolError as exc:
            assert str(exc).startswith("fuzz")


@FUZZ
@given(st.binary(max_size=400))
def test_arbitrary_bytes_raise_only_protocol_errors(data: bytes) -> None:
    only_protocol_errors(data)


@FUZZ
@given(mutated())
def test_mutated_messages_raise_only_protocol_errors(data: bytes) -> None:
    only_protocol_errors(data)


@FUZZ
@given(st.sampled_from(VALID), st.text(max_size=20))
def test_text_pasted_into_a_message_raises_only_protocol_errors(data: bytes, text: str) -> None:
    where = len(data) // 2
    only_protocol_errors(data[:where] + text.encode("utf-8", "surrogatepass") + data[where:])


def test_base64_of_the_fixture_objects_is_what_the_file_holds() -> None:
    """The DER read equals the file's Base64, decoded independently of the codec."""
    text = (RPKI_RS / "publish-single.xml").read_text()
    found = re.search(r">([A-Za-z0-9+/=\s]{100,})<", text)
    assert found is not None
    assert objects()[0] == base64.b64decode(found.group(1))
