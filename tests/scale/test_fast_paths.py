"""The fast paths a large repository takes must say exactly what the slow ones said: manifests in direct
DER, the ROA memo, one-time keys made ahead, CA keys made concurrently, key files checked lazily."""

from __future__ import annotations

import hashlib
import ipaddress
import json
import shutil
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from asn1crypto import core
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from hypothesis import given, settings
from hypothesis import strategies as st

import reconciler
from reconciler import cachefile, engine, fsutil, resources
from reconciler.apply import onetime
from reconciler.apply.onetime import OneTimeKeys
from reconciler.protocol import bpki
from reconciler.protocol.client import _message_key
from reconciler.published import memo, reader
from reconciler.rpki import asn1, der, manifest, oids, rfc3779, roa
from reconciler.signers.base import SignerError
from reconciler.signers.files import MADE_AHEAD, FileSigner, OneTimeKey, made_ahead
from tests.helpers import T0, later, scratch_copy

ISP = "cas/members/example-isp.yaml"

names = st.from_regex(r"[A-Za-z0-9_-]{1,70}\.[a-z]{3}", fullmatch=True)
entries = st.lists(
    st.tuples(names, st.binary(min_size=32, max_size=32)), max_size=300, unique_by=lambda e: e[0]
)
moments = st.datetimes(min_value=datetime(1990, 1, 1), max_value=datetime(2200, 1, 1)).map(
    lambda d: d.replace(microsecond=0, tzinfo=UTC)
)


def _asn1crypto_manifest(content: manifest.ManifestContent) -> bytes:
    """The generic encoder the direct DER replaced: the reference for every byte."""
    file_list = [
        asn1.FileAndHash({"file": name, "hash": core.BitString.load(b"\x03\x21\x00" + digest)})
        for name, digest in sorted(content.files)
    ]
    return bytes(
        asn1.Manifest(
            {
                "manifestNumber": content.number,
                "thisUpdate": core.GeneralizedTime(content.this_update),
                "nextUpdate": core.GeneralizedTime(content.next_update),
                "fileHashAlg": oids.SHA256,
                "fileList": file_list,
            }
        ).dump()
    )


@settings(max_examples=200, deadline=None)
@given(number=st.integers(min_value=0, max_value=2**159), files=entries, this=moments, until=moments)
def test_direct_der_manifests_are_byte_for_byte_asn1crypto(
    number: int, files: list[tuple[str, bytes]], this: datetime, until: datetime
) -> None:
    content = manifest.ManifestContent(number, this, until, tuple(files))
    encoded = manifest.encode(content)
    assert encoded == _asn1crypto_manifest(content)
    decoded = manifest.decode(encoded)
    assert (decoded.number, decoded.files) == (number, tuple(sorted(files)))


def test_a_manifest_of_thousands_of_entries_needs_long_lengths() -> None:
    files = tuple((f"AS{i}_10-0-0-0_24.roa", hashlib.sha256(str(i).encode()).digest()) for i in range(5000))
    content = manifest.ManifestContent(2**64, T0, T0 + timedelta(days=1), files)
    assert manifest.encode(content) == _asn1crypto_manifest(content)


def _asn1crypto_roa(content: roa.RoaContent) -> bytes:
    """The generic encoder the direct DER replaced: the reference for every byte."""
    families = []
    for afi in (4, 6):
        entries = [p for p in content.prefixes if p.prefix.version == afi]
        if entries:
            addresses = []
            for entry in entries:
                net = entry.prefix
                item: dict[str, object] = {
                    "address": rfc3779.bitstring(int(net.network_address), net.prefixlen, rfc3779.WIDTH[afi])
                }
                if entry.max_length != net.prefixlen:
                    item["maxLength"] = entry.max_length
                addresses.append(asn1.ROAIPAddress(item))
            families.append(
                asn1.ROAIPAddressFamily({"addressFamily": rfc3779.AFI_BYTES[afi], "addresses": addresses})
            )
    return bytes(asn1.RouteOriginAttestation({"asID": content.asn, "ipAddrBlocks": families}).dump())


def _roa_prefix(version: int, value: int, length: int, extra: int) -> roa.RoaPrefix:
    width = 32 if version == 4 else 128
    length = length % (width + 1)
    value &= (1 << width) - 1
    network = (value >> (width - length) << (width - length)) if length else 0
    family = ipaddress.IPv4Network if version == 4 else ipaddress.IPv6Network
    return roa.RoaPrefix(family((network, length)), min(width, length + extra))


roa_prefixes = st.builds(
    _roa_prefix,
    st.sampled_from([4, 6]),
    st.integers(0, 2**128 - 1),
    st.integers(0, 128),
    st.integers(0, 8),
)


@settings(max_examples=300, deadline=None)
@given(asn=st.integers(0, 2**32 - 1), prefixes=st.lists(roa_prefixes, min_size=1, max_size=40))
def test_direct_der_roas_are_byte_for_byte_asn1crypto(asn: int, prefixes: list[roa.RoaPrefix]) -> None:
    content = roa.RoaContent.of(asn, prefixes)
    encoded = roa.encode(content)
    assert encoded == _asn1crypto_roa(content)
    assert roa.decode(encoded) == content


def test_an_origin_with_hundreds_of_prefixes_in_one_roa() -> None:
    """Long-form lengths at every level, as in the aggregated ROA of a busy origin."""
    prefixes = [roa.RoaPrefix(ipaddress.ip_network(f"10.{i // 256}.{i % 256}.0/24"), 24) for i in range(700)]
    prefixes += [roa.RoaPrefix(ipaddress.ip_network(f"2001:db8:{i:x}::/48"), 64) for i in range(300)]
    content = roa.RoaContent.of(4200000000, prefixes)
    assert roa.encode(content) == _asn1crypto_roa(content)


def _file_list_contents(files: list[tuple[str, bytes]]) -> bytes:
    encoded = manifest.encode(manifest.ManifestContent(1, T0, T0, tuple(files)))
    return bytes(asn1.Manifest.load(encoded)["fileList"].contents)


def _read_by_asn1crypto(contents: bytes) -> object:
    """What asn1crypto reads of a fileList: the entries, or the kind of error."""
    try:
        return manifest._file_list_asn1(asn1.FileList.load(der.tlv(0x30, contents)), "test")
    except (ValueError, KeyError, TypeError) as exc:
        return type(exc)


def _framing_offsets(contents: bytes) -> list[int]:
    """Where a valid fileList's tags, lengths and unused-bits octets are: what damage is likeliest to
    confuse a reader."""
    offsets = []
    offset = 0
    while offset < len(contents):
        _, start, end = der.read_tlv(contents, offset)
        _, name_start, name_end = der.read_tlv(contents, start)
        _, hash_start, _ = der.read_tlv(contents, name_end)
        offsets += [*range(offset, start), *range(start, name_start), *range(name_end, hash_start + 1)]
        offset = end
    return offsets


@settings(max_examples=400, deadline=None)
@given(files=entries, data=st.data())
def test_the_direct_file_list_reader_reads_what_asn1crypto_reads(
    files: list[tuple[str, bytes]], data: st.DataObject
) -> None:
    """Valid lists, and the same bytes damaged: the direct reader either gives asn1crypto's entries or
    hands the bytes back to asn1crypto (DerShapeError); it never reads something asn1crypto would not."""
    contents = bytearray(_file_list_contents(files))
    framing = _framing_offsets(bytes(contents))
    for _ in range(data.draw(st.integers(0, 3))):
        if not contents:
            break
        anywhere = st.integers(0, len(contents) - 1)
        framing_byte = st.sampled_from([i for i in framing if i < len(contents)] or [0])
        at = data.draw(st.one_of(framing_byte, anywhere))
        how = data.draw(st.sampled_from(["flip", "cut", "insert"]))
        if how == "flip":
            contents[at] = data.draw(st.integers(0, 255))
        elif how == "cut":
            del contents[at:]
        else:
            contents[at:at] = data.draw(st.binary(min_size=1, max_size=3))
    try:
        direct = manifest._file_list(bytes(contents))
    except der.DerShapeError:
        return
    assert direct == _read_by_asn1crypto(bytes(contents))


def test_the_direct_file_list_reader_declines_what_it_does_not_expect() -> None:
    valid = _file_list_contents([("a.roa", bytes(32))])
    assert manifest._file_list(valid) == (("a.roa", bytes(32)),)
    unused_bits = valid.replace(b"\x03\x21\x00", b"\x03\x21\x01")
    long_length = b"\x30\x81" + valid[1:]  # 0x81 0x28: a length that fits the short form
    for bad in (unused_bits, long_length, valid[:-1], valid + b"\x05\x00"):
        with pytest.raises(der.DerShapeError):
            manifest._file_list(bad)
    with pytest.raises(manifest.ManifestError, match="not 256 bits"):
        manifest.decode(
            manifest.encode(manifest.ManifestContent(1, T0, T0, (("a.roa", bytes(32)),))).replace(
                b"\x03\x21\x00", b"\x03\x21\x01"
            )
        )


def test_a_no_op_plan_decodes_no_roa_it_signed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    scratch = scratch_copy(tmp_path)
    assert scratch.apply(T0) is not None
    saved = json.loads(memo.path(tmp_path / "published").read_text())
    assert len(saved["roas"]) == len(list(scratch.rsync.rglob("*.roa")))
    decoded: list[str] = []
    original = reader._decode_roa
    monkeypatch.setattr(
        reader, "_decode_roa", lambda der, where: decoded.append(where) or original(der, where)
    )
    assert scratch.plan(later(1)).empty
    assert decoded == []


def test_altered_bytes_miss_the_memo_and_are_caught(tmp_path: Path) -> None:
    scratch = scratch_copy(tmp_path)
    assert scratch.apply(T0) is not None
    roas = sorted((scratch.rsync / "example-isp").glob("*.roa"))
    shutil.copyfile(roas[0], roas[1])  # a valid ROA, the memo knows its bytes -- under another name
    plan = scratch.plan(later(1))
    reasons = {c.path.rsplit("/", 1)[-1]: c.reason for c in plan.changes}
    assert "altered after publication" in reasons[roas[1].name] or "a copy of" in reasons[roas[1].name]
    data = roas[2].read_bytes()
    roas[2].write_bytes(data[:-1] + bytes([data[-1] ^ 0xFF]))  # damaged: never seen before
    reasons = {c.path.rsplit("/", 1)[-1]: c.reason for c in scratch.plan(later(1)).changes}
    assert roas[2].name in reasons


def test_a_lost_or_damaged_memo_only_costs_time(tmp_path: Path) -> None:
    scratch = scratch_copy(tmp_path)
    assert scratch.apply(T0) is not None
    scratch.edit(ISP, "max_length: 26", "max_length: 25")
    with_memo = scratch.plan(later(1))
    memo.path(tmp_path / "published").write_text(
        json.dumps(
            {
                "version": 2,
                "written_by": reconciler.__version__,
                "roas": {"zz": [1]},
                "objects": {},
                "verified": {},
            }
        )
    )
    damaged = scratch.plan(later(1))
    memo.path(tmp_path / "published").unlink()
    lost = scratch.plan(later(1))
    assert with_memo.changes == damaged.changes == lost.changes
    assert [c.path for c in lost.changes if c.path.endswith(".roa")] == [
        "example-isp/AS64496_198-51-100-0_25.roa"
    ]


def test_a_damaged_roa_row_costs_only_that_roa(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    scratch = scratch_copy(tmp_path)
    assert scratch.apply(T0) is not None
    saved = json.loads(memo.path(tmp_path / "published").read_text())
    damaged = sorted(saved["roas"])[0]
    saved["roas"][damaged] = ["not", "a", "summary"]
    del saved["mac"]  # sealed again with the memo's own key: an authentic memo with one bad row
    secret = engine.open_workspace(scratch.repo).published.memo.secret
    assert cachefile.write(memo.path(tmp_path / "published"), saved, secret=secret)
    decoded: list[str] = []
    original = reader._decode_roa
    monkeypatch.setattr(
        reader, "_decode_roa", lambda der, where: decoded.append(where) or original(der, where)
    )
    assert scratch.plan(later(1)).empty
    assert len(decoded) == 1
    repaired = json.loads(memo.path(tmp_path / "published").read_text())["roas"]
    assert repaired[damaged] != ["not", "a", "summary"]
    assert {d: r for d, r in repaired.items() if d != damaged} == {
        d: r for d, r in saved["roas"].items() if d != damaged
    }  # the others saved as they were read


def test_the_memo_keeps_only_what_is_published(tmp_path: Path) -> None:
    scratch = scratch_copy(tmp_path)
    assert scratch.apply(T0) is not None
    scratch.edit(ISP, "  - {asn: AS0, prefix: 192.0.2.128/25}\n", "")
    assert scratch.apply(later(1)) is not None
    published = {hashlib.sha256(p.read_bytes()).hexdigest() for p in scratch.rsync.rglob("*.roa")}
    assert set(json.loads(memo.path(tmp_path / "published").read_text())["roas"]) == published


def test_one_time_keys_are_fresh_and_as_many_as_taken() -> None:
    with OneTimeKeys(5, threads=2) as keys:
        taken = [keys.take() for _ in range(7)]  # two more than announced: made on demand
    assert len({k.key_id for k in taken}) == 7


def test_keys_made_ahead_are_taken_first_and_only_once() -> None:
    onetime.make_ahead(2)
    deadline = time.monotonic() + 30
    while MADE_AHEAD.qsize() < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert MADE_AHEAD.qsize() == 2
    with OneTimeKeys(3, threads=1) as keys:
        assert MADE_AHEAD.qsize() == 0  # both taken by the apply that came first
        taken = [keys.take() for _ in range(3)]
    assert len({k.key_id for k in taken}) == 3
    with OneTimeKeys(2, threads=1) as keys:  # none left ahead: all made now, none reused
        again = [keys.take() for _ in range(2)]
    assert not {k.key_id for k in again} & {k.key_id for k in taken}


def test_a_key_file_that_fails_its_consistency_check_never_signs(tmp_path: Path) -> None:
    good = rsa.generate_private_key(65537, 2048)
    numbers = good.private_numbers()
    broken = rsa.RSAPrivateNumbers(
        numbers.p, numbers.q, numbers.d, numbers.dmp1, numbers.dmq1, numbers.iqmp ^ 1, numbers.public_numbers
    ).private_key(unsafe_skip_rsa_key_validation=True)
    directory = tmp_path / "keys"
    directory.mkdir(mode=0o700)
    pem = broken.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    (directory / "isp.pem").write_bytes(pem)
    (directory / "isp.pem").chmod(0o600)
    signer = FileSigner(directory)
    key = signer.find_key("isp")  # its identifier is all a plan needs
    assert key is not None and signer.public_key(key).public_numbers() == good.public_key().public_numbers()
    with pytest.raises(SignerError, match="the key file is damaged"):
        signer.sign(key, b"tbs")


def test_a_first_apply_creates_every_ca_key_at_once_and_each_signs(tmp_path: Path) -> None:
    scratch = scratch_copy(tmp_path)
    assert scratch.apply(T0) is not None
    workspace = engine.open_workspace(scratch.repo)
    keys = workspace.keys()
    assert {ca.name for ca in workspace.desired.cas} == {name for name, found in keys.items() if found}
    signer = workspace.signers["default"]
    for found in keys.values():
        key = found[1]
        signature = signer.sign(key, b"data")
        signer.public_key(key).verify(signature, b"data", padding.PKCS1v15(), hashes.SHA256())


def _slow_ip_block(text: str, afi: resources.Afi) -> object:
    try:
        if "-" in text and "/" not in text:
            return resources.parse_ip_block(text, afi)
        return resources.network_range(resources._parse_prefix_text(text, afi))
    except resources.ResourceSyntaxError:
        return resources.ResourceSyntaxError


ip_texts = st.one_of(
    st.builds(lambda a, n: f"{ipaddress.IPv4Address(a)}/{n}", st.integers(0, 2**32 - 1), st.integers(0, 40)),
    st.builds(
        lambda a, n: f"{ipaddress.IPv6Address(a)}/{n}", st.integers(0, 2**128 - 1), st.integers(0, 140)
    ),
    st.builds(
        lambda a, n: f"{ipaddress.IPv6Address(a).exploded}/{n}",
        st.integers(0, 2**128 - 1),
        st.integers(0, 130),
    ),
    st.from_regex(r"[0-9a-fA-F:.]{0,20}/[0-9]{1,4}", fullmatch=True),
    st.from_regex(r"[ 0-9:./%a-z٣]{0,24}", fullmatch=True),
)


@settings(max_examples=2000, deadline=None)
@given(text=ip_texts, afi=st.sampled_from([4, 6]))
def test_the_fast_prefix_reader_agrees_with_ipaddress(text: str, afi: resources.Afi) -> None:
    """Wherever the C library's reading of a prefix is taken, it is exactly ``ipaddress``'s."""
    fast = resources._prefix_range(text, afi)
    if fast is not None:
        assert fast == _slow_ip_block(text, afi)


@settings(max_examples=2000, deadline=None)
@given(text=ip_texts, afi=st.sampled_from([4, 6, None]))
def test_a_prefix_is_read_as_ipaddress_reads_it(text: str, afi: resources.Afi | None) -> None:
    """``parse_prefix`` (the C library for plain prefixes) gives ``ipaddress``'s network, of the same
    type, or the same message."""

    def read(reader: Callable[[str, resources.Afi | None], object]) -> object:
        try:
            found = reader(text, afi)
        except resources.ResourceSyntaxError as exc:
            return str(exc)
        return type(found), found, str(found)

    assert read(resources.parse_prefix) == read(resources._parse_prefix_text)


def test_the_fast_prefix_reader_leaves_the_odd_cases_to_ipaddress() -> None:
    for text, afi in [
        ("10.0.0.1/24", 4),
        ("10.0.0.0/33", 4),
        ("010.0.0.0/8", 4),
        (" 10.0.0.0/8", 4),
        ("10.0.0.0/8", 6),
        ("2001:db8::/32", 4),
        ("fe80::%eth0/64", 6),
        ("10.0.0.0/٣", 4),
    ]:
        assert resources._prefix_range(text, afi) is None
    assert resources._prefix_range("10.0.0.0/8", 4) == (10 << 24, (11 << 24) - 1)
    assert resources._prefix_range("2001:DB8::/32", 6) == resources.network_range(
        ipaddress.ip_network("2001:db8::/32")
    )


@pytest.mark.parametrize("size", [0, 1, 1_500, fsutil._READ - 1, fsutil._READ, fsutil._READ + 1, 300_001])
def test_the_tree_is_read_whole_by_system_calls(tmp_path: Path, size: int) -> None:
    """Published files are read with ``os.read`` until the end of the file, whatever their size against
    one read's; every file of the tree, nothing else (a symbolic link inside it is not followed)."""
    data = hashlib.shake_256(str(size).encode()).digest(size)
    (tmp_path / "ca").mkdir()
    (tmp_path / "ca" / "x.roa").write_bytes(data)
    (tmp_path / "ca" / "small.crl").write_bytes(b"crl")
    (tmp_path / "ca" / "link.mft").symlink_to(tmp_path / "ca" / "small.crl")
    state = reader.read(tmp_path)
    assert state.files == {"ca/small.crl": b"crl", "ca/x.roa": data}


def test_prefix_text_is_the_prefix_as_text_whatever_the_object() -> None:
    """Remembered by the prefix object's identity: equal prefixes of other objects, and a prefix whose
    object was dropped and whose identity was reused, still read as themselves."""
    first = ipaddress.ip_network("2001:db8::/32")
    assert resources.prefix_text(first) == "2001:db8::/32"
    assert resources.prefix_text(ipaddress.ip_network("2001:0db8:0::/32")) == "2001:db8::/32"
    for index in range(2_000):  # objects made and dropped, their identities reused
        network = ipaddress.IPv4Network((0x0A000000 + (index << 8), 24))
        assert resources.prefix_text(network) == str(network)
    assert resources.prefix_text(first) == "2001:db8::/32"


def test_a_protocol_message_takes_a_key_made_ahead(tmp_path: Path) -> None:
    """The EE certificate of the first message an apply under a parent sends uses a key made while the
    YAML loaded, when one is ready; without one, a key is made there and then."""
    while made_ahead() is not None:  # what earlier tests left
        pass
    ahead = OneTimeKey()
    MADE_AHEAD.put(ahead)
    signer = FileSigner(tmp_path)
    key = signer.create_key(bpki.identity_label("acme"))
    now = datetime.now(UTC).replace(microsecond=0)
    made = _message_key(signer, key, bpki.create_identity(signer, key, now), now)
    assert made.key is ahead and MADE_AHEAD.qsize() == 0
    other = signer.create_key(bpki.identity_label("other"))
    fresh = _message_key(signer, other, bpki.create_identity(signer, other, now), now)
    assert fresh.key is not ahead and fresh.key.key_id != ahead.key_id
