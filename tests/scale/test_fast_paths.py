"""The fast paths a large repository takes must say exactly what the slow ones said: manifests in direct
DER, the ROA memo, one-time keys made ahead, CA keys made concurrently, key files checked lazily."""

from __future__ import annotations

import hashlib
import json
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from asn1crypto import core
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from hypothesis import given, settings
from hypothesis import strategies as st

from reconciler import engine
from reconciler.apply.onetime import OneTimeKeys
from reconciler.published import memo, reader
from reconciler.rpki import asn1, manifest, oids
from reconciler.signers.base import SignerError
from reconciler.signers.files import FileSigner
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
    roas[2].write_bytes(roas[2].read_bytes()[:-1] + b"\x00")  # damaged: never seen before
    reasons = {c.path.rsplit("/", 1)[-1]: c.reason for c in scratch.plan(later(1)).changes}
    assert roas[2].name in reasons


def test_a_lost_or_damaged_memo_only_costs_time(tmp_path: Path) -> None:
    scratch = scratch_copy(tmp_path)
    assert scratch.apply(T0) is not None
    scratch.edit(ISP, "max_length: 26", "max_length: 25")
    with_memo = scratch.plan(later(1))
    memo.path(tmp_path / "published").write_text('{"version": 1, "roas": {"zz": [1]}}')
    damaged = scratch.plan(later(1))
    memo.path(tmp_path / "published").unlink()
    lost = scratch.plan(later(1))
    assert with_memo.changes == damaged.changes == lost.changes
    assert [c.path for c in lost.changes if c.path.endswith(".roa")] == [
        "example-isp/AS64496_198-51-100-0_25.roa"
    ]


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
    with pytest.raises(SignerError, match="not a readable private key"):
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
