"""Certificates, CRLs and manifests remembered by the SHA-256 of their bytes (``published.decoded``): a
rebuilt object says exactly what decoding says, a no-op plan decodes and checks nothing it has seen, and
bytes the memo does not know -- or a memo that does not fit them -- are decoded and checked in full."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import pytest

from reconciler import engine
from reconciler.plan.incremental import Refresh
from reconciler.published import decoded, memo, reader
from reconciler.rpki import cert, cms, crl
from reconciler.rpki.aspa import AspaContent
from reconciler.rpki.aspa import decode as decode_aspa
from reconciler.rpki.manifest import ManifestContent
from reconciler.rpki.manifest import decode as decode_manifest
from reconciler.rpki.oids import CT_ASPA
from tests.helpers import T0, later, scratch_copy

REAL_WORLD = Path(__file__).resolve().parent.parent / "fixtures" / "real-world"
ISP = "cas/members/example-isp.yaml"
T = TypeVar("T")


def _fields(found: object) -> dict[str, object]:
    """A decoded object's fields, the ``cryptography`` objects by what they were loaded from."""
    values = {name: getattr(found, name) for name in found.__slots__}  # type: ignore[attr-defined]
    for name in ("cert", "public_key", "crl", "_parsed"):
        values.pop(name, None)
    for name, value in list(values.items()):
        if isinstance(value, cert.ResourceCertificate | cms.SignedObject):
            values[name] = _fields(value)
    return values


def _decodable(suffix: str, decode: Callable[[bytes], T]) -> list[tuple[Path, bytes, T]]:
    """The real-world objects of one kind that ``decode`` reads, with their bytes and what it read."""
    found = []
    for path in sorted(p for p in REAL_WORLD.rglob(f"*{suffix}") if p.is_file() and not _protocol(p)):
        der = path.read_bytes()
        try:
            found.append((path, der, decode(der)))
        except ValueError:
            continue
    return found


def _protocol(path: Path) -> bool:
    """The BPKI certificates of the provisioning protocols are no RPKI objects (no resources, no SIA)."""
    return "protocols" in path.relative_to(REAL_WORLD).parts


def _signed_manifest(der: bytes) -> tuple[cms.SignedObject, ManifestContent]:
    signed = cms.decode(der)
    return signed, decode_manifest(signed.econtent)


def test_real_world_certificates_rebuilt_from_their_rows_say_what_decoding_says() -> None:
    certificates = _decodable(".cer", cert.decode)
    for path, der, found in certificates:
        rebuilt = decoded.certificate_from_row(json.loads(json.dumps(decoded.certificate_row(found))), der)
        assert _fields(rebuilt) == _fields(found), path
        assert rebuilt.cert == found.cert and rebuilt.public_key == found.public_key
    assert len(certificates) >= 5


def test_real_world_crls_and_manifests_rebuilt_from_their_rows_say_what_decoding_says() -> None:
    crls = _decodable(".crl", crl.decode)
    for path, der, found_crl in crls:
        rebuilt_crl = decoded.crl_from_row(json.loads(json.dumps(decoded.crl_row(found_crl))), der)
        assert _fields(rebuilt_crl) == _fields(found_crl), path
        assert rebuilt_crl.crl == found_crl.crl
    manifests = _decodable(".mft", _signed_manifest)
    for path, der, (signed, content) in manifests:
        row = decoded.manifest_row(signed, content, der)
        assert row is not None
        rebuilt, rebuilt_content = decoded.manifest_from_row(json.loads(json.dumps(row)), der)
        assert _fields(rebuilt) == _fields(signed), path
        assert rebuilt_content == content
        assert decoded.manifest_number(json.loads(json.dumps(row))) == content.number
    assert len(crls) >= 1 and len(manifests) >= 3


def _signed_aspa(der: bytes) -> tuple[cms.SignedObject, AspaContent]:
    signed = cms.decode(der)
    if signed.content_type != CT_ASPA:
        raise ValueError("not an ASPA")
    return signed, decode_aspa(signed.econtent)


def test_real_world_aspas_rebuilt_from_their_rows_say_what_decoding_says() -> None:
    aspas = _decodable(".asa", _signed_aspa)
    for path, der, (signed, content) in aspas:
        row = decoded.aspa_row(signed, content, der)
        assert row is not None
        rebuilt, rebuilt_content = decoded.aspa_from_row(json.loads(json.dumps(row)), der)
        assert _fields(rebuilt) == _fields(signed), path
        assert rebuilt_content == content
    assert len(aspas) >= 1


def test_an_aspa_row_that_breaks_the_profile_is_refused() -> None:
    """A row is not trusted to say what decoding would: one whose providers are out of order (which no
    decoding returns) is refused, and the bytes are decoded again."""
    (_, der, (signed, content)), *_ = _decodable(".asa", _signed_aspa)
    row = decoded.aspa_row(signed, content, der)
    assert row is not None
    row[-1] = [*reversed(row[-1]), row[-1][0]]
    with pytest.raises(ValueError, match="breaks the profile"):
        decoded.aspa_from_row(row, der)


def test_a_no_op_plan_decodes_no_aspa_it_signed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A CA may hold a thousand ASPAs: each plan takes what they say from the memo, not their bytes."""
    scratch = scratch_copy(tmp_path)
    (scratch.repo / ISP).write_text(
        (scratch.repo / ISP).read_text()
        + "aspas:\n  - {customer: AS64496, providers: [AS64500]}\n  - {customer: AS64497, providers: [AS0]}\n"
    )
    assert scratch.apply(T0) is not None
    calls: list[str] = []
    original = cms.decode

    def counting(der: bytes, *, where: str = "signed object") -> cms.SignedObject:
        calls.append(where)
        return original(der, where=where)

    monkeypatch.setattr(cms, "decode", counting)
    plan = scratch.plan(later(1))
    assert plan.empty, plan.changes
    assert [w for w in calls if w.endswith(".asa")] == []


def test_a_manifest_row_without_a_number_is_refused() -> None:
    """A plan reads every manifest's number from its row (``PublishedState.manifest_number``): a row
    whose number is missing or not a number is refused, and the manifest is decoded instead."""
    (_, der, (signed, content)) = _decodable(".mft", _signed_manifest)[0]
    row = decoded.manifest_row(signed, content, der)
    assert row is not None
    for damaged in (row[:5], [*row[:5], "7", *row[6:]], [*row[:5], -1, *row[6:]], [*row[:5], True, *row[6:]]):
        with pytest.raises(decoded.RowError):
            decoded.manifest_number(damaged)


def test_a_row_that_does_not_fit_the_bytes_is_refused() -> None:
    (_, _, first), (_, other, _) = _decodable(".cer", cert.decode)[:2]
    with pytest.raises(ValueError, match="not of these bytes"):
        decoded.certificate_from_row(decoded.certificate_row(first), other)


def test_a_no_op_plan_decodes_nothing_it_signed_and_checks_only_the_trust_anchor(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    scratch = scratch_copy(tmp_path)
    assert scratch.apply(T0) is not None
    calls: list[str] = []

    def counting(name: str, function: object) -> object:
        def wrapper(*args: object, **kwargs: object) -> object:
            calls.append(name)
            return function(*args, **kwargs)  # type: ignore[operator]

        return wrapper

    for module, name in ((cert, "decode"), (crl, "decode"), (cms, "decode"), (cert, "verify_signed_by")):
        monkeypatch.setattr(module, name, counting(name, getattr(module, name)))

    assert scratch.plan(later(1)).empty
    assert calls == ["verify_signed_by"]  # the trust anchor's self-signature, checked every time


def test_a_plan_looks_each_roa_up_in_the_memo_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A plan asks for each ROA's summary three times (its check, the VRPs published, the gates): the
    memo is asked once per ROA, and so is the decoder when the memo is gone."""
    scratch = scratch_copy(tmp_path)
    changed = scratch.apply(T0)
    assert changed is not None
    roas = len(list(scratch.rsync.rglob("*.roa")))
    asked: list[bytes] = []
    get = memo.Memo.get
    monkeypatch.setattr(memo.Memo, "get", lambda self, digest: asked.append(digest) or get(self, digest))
    assert scratch.plan(later(1)).empty
    assert len(asked) == len(set(asked)) == roas
    memo.path(tmp_path / "published").unlink()
    decoded_roas: list[str] = []
    decode_roa = reader._decode_roa
    monkeypatch.setattr(
        reader, "_decode_roa", lambda der, path: decoded_roas.append(path) or decode_roa(der, path)
    )
    # a full plan: an incremental one would not look at the ROAs of the CAs it found unchanged at all
    full = engine.plan(engine.open_workspace(scratch.repo), later(1), refresh=Refresh.FULL)
    assert full.empty
    assert len(decoded_roas) == len(set(decoded_roas)) == roas


def test_without_the_memo_the_same_plan_decodes_and_checks_everything(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The reverse of the test above: the counting sees the work when there is any."""
    scratch = scratch_copy(tmp_path)
    assert scratch.apply(T0) is not None
    memo.path(tmp_path / "published").unlink()
    verified: list[bool] = []
    original = cert.verify_signed_by
    monkeypatch.setattr(cert, "verify_signed_by", lambda *a: verified.append(original(*a)) or verified[-1])
    assert scratch.plan(later(1)).empty
    cas = len(list(scratch.rsync.rglob("*.mft")))
    assert len(verified) >= 2 * cas - 1 and all(verified)
    verified.clear()
    assert scratch.plan(later(1)).empty  # the first plan remembered what it checked
    assert len(verified) == 1


def test_a_manifest_or_crl_replaced_by_another_known_one_is_still_caught(tmp_path: Path) -> None:
    scratch = scratch_copy(tmp_path)
    assert scratch.apply(T0) is not None
    assert scratch.plan(later(1)).empty  # every object remembered, signatures included
    isp = scratch.rsync / "example-isp"
    other = next(d for d in scratch.rsync.iterdir() if d.is_dir() and d.name != "example-isp")
    (crl_file,) = isp.glob("*.crl")
    (other_crl,) = other.glob("*.crl")
    old_crl = crl_file.read_bytes()
    crl_file.write_bytes(other_crl.read_bytes())  # bytes the memo knows, signed by another CA
    changes = scratch.plan(later(1)).changes
    assert any(c.ca == "example-isp" and c.path.endswith(".crl") for c in changes)

    crl_file.write_bytes(old_crl)
    scratch.edit(ISP, "max_length: 26", "max_length: 25")
    assert scratch.apply(later(2)) is not None
    assert scratch.plan(later(3)).empty
    crl_file.write_bytes(old_crl)  # a CRL this CA did sign, and the memo checked: but not the current one
    changes = scratch.plan(later(3)).changes
    assert any(c.ca == "example-isp" and c.path.endswith(".crl") for c in changes)


def test_a_damaged_memo_only_costs_time(tmp_path: Path) -> None:
    scratch = scratch_copy(tmp_path)
    assert scratch.apply(T0) is not None
    scratch.edit(ISP, "max_length: 26", "max_length: 25")
    with_memo = scratch.plan(later(1))
    saved = json.loads(memo.path(tmp_path / "published").read_text())
    assert {row[0] for row in saved["objects"].values()} == {"cer", "crl", "mft"}
    rows = dict(saved["objects"])
    for index, digest in enumerate(sorted(rows)):
        kind = rows[digest][0]
        # a row of another object, a wrong kind, a truncated row, garbage
        saved["objects"][digest] = [
            next(r for r in rows.values() if r[0] == kind and r != rows[digest]),
            ["mft" if kind != "mft" else "cer", *rows[digest][1:]],
            rows[digest][:3],
            [kind, {"x": 1}],
        ][index % 4]
    memo.path(tmp_path / "published").write_text(json.dumps(saved))
    damaged = scratch.plan(later(1))
    memo.path(tmp_path / "published").unlink()
    lost = scratch.plan(later(1))
    assert with_memo.changes == damaged.changes == lost.changes
    assert with_memo.observed == damaged.observed == lost.observed


def test_the_memo_keeps_only_what_is_published(tmp_path: Path) -> None:
    scratch = scratch_copy(tmp_path)
    assert scratch.apply(T0) is not None
    scratch.edit(ISP, "  - {asn: AS0, prefix: 192.0.2.128/25}\n", "")
    assert scratch.apply(later(1)) is not None
    published = {hashlib.sha256(p.read_bytes()).hexdigest() for p in scratch.rsync.rglob("*") if p.is_file()}
    saved = json.loads(memo.path(tmp_path / "published").read_text())
    signed = {
        hashlib.sha256(p.read_bytes()).hexdigest()
        for p in scratch.rsync.rglob("*")
        if p.suffix in (".cer", ".crl", ".mft")
    }
    assert set(saved["objects"]) == signed  # each remembered as it was published, none left over
    assert set(saved["verified"]) <= published
