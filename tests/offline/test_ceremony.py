"""The offline trust anchor ceremony through the library: request, sign, import -- and every way it must
refuse (tampered, expired, replayed, superseded, mismatched), each with nothing published.

The trust anchor's key sits in its own key directory, opened only by ``sign``, as on the offline
machine; the online side never has it.
"""

from __future__ import annotations

import base64
import json
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from reconciler import engine
from reconciler.desired import load
from reconciler.offline import ceremony
from reconciler.offline.request import CeremonyError, SigningResponse, read_request
from reconciler.plan.model import Severity
from reconciler.published import read
from reconciler.signers import FileSigner
from tests.helpers import T0, Scratch, later, scratch_copy

OFFLINE_SIGNERS = """  offline:
    type: offline
    key_signer: ta-keys
  ta-keys:
    type: file
    directory: ../offline-keys
"""


def make_offline(scratch: Scratch) -> None:
    rpki = scratch.repo / "rpki.yaml"
    rpki.write_text(rpki.read_text() + OFFLINE_SIGNERS)
    scratch.edit("cas/ta.yaml", "trust_anchor: true\n", "trust_anchor: true\nsigner: offline\n")


def offline_signer(scratch: Scratch) -> FileSigner:
    return FileSigner(scratch.root / "offline-keys")


def request_path(scratch: Scratch) -> Path:
    return scratch.root / "published" / "ta-request.json"


def sign_offline(scratch: Scratch, now: datetime) -> SigningResponse:
    request, raw = read_request(request_path(scratch))
    assert ceremony.check_against(request, load(scratch.repo)) == []
    return ceremony.sign(request, raw, offline_signer(scratch), now)


def import_online(
    scratch: Scratch, response: SigningResponse, now: datetime, *, confirm_key: bool = True
) -> engine.Imported:
    """Import as an operator does; ``confirm_key`` passes the key id that signing printed (needed when
    no trust anchor key is published yet)."""
    path = scratch.root / "response.json"
    path.write_text(response.model_dump_json())
    expect = response.key_id if confirm_key else None
    return engine.import_signed(engine.open_workspace(scratch.repo), path, now, expect_key=expect)


def _write(scratch: Scratch, response: SigningResponse) -> Path:
    path = scratch.root / "other-response.json"
    path.write_text(response.model_dump_json())
    return path


@pytest.fixture
def offline(tmp_path: Path) -> Scratch:
    """The bundled example with an offline trust anchor, bootstrapped: applied, signed, imported."""
    scratch = scratch_copy(tmp_path)
    make_offline(scratch)
    result = scratch.apply(T0)
    assert result is not None and result.request is not None
    import_online(scratch, sign_offline(scratch, later(1)), later(2))
    return scratch


def test_bootstrap_signs_the_trust_anchor_offline(tmp_path: Path) -> None:
    scratch = scratch_copy(tmp_path)
    make_offline(scratch)
    result = scratch.apply(T0)
    assert result is not None and result.request is not None
    assert {c.ca for c in result.deferred} == {"ta"}
    published = read(scratch.rsync)
    assert "ta.cer" not in published.files and any(p.startswith("online/") for p in published.files)
    assert not (scratch.root / "keys" / "ta.pem").exists()  # the online side never has the TA key

    request, _ = read_request(request_path(scratch))
    assert request.key_id is None and [c.path for c in request.certificates] == ["ta.cer", "ta/online.cer"]
    response = sign_offline(scratch, later(1))
    assert (scratch.root / "offline-keys" / "ta.pem").exists()
    with pytest.raises(CeremonyError, match="--expect-key"):  # a first key is never taken on trust
        import_online(scratch, response, later(2), confirm_key=False)
    stranger = FileSigner(scratch.root / "other-keys")
    request, raw = read_request(request_path(scratch))
    forged = ceremony.sign(request, raw, stranger, later(1))
    with pytest.raises(CeremonyError, match="not the trust anchor's"):
        engine.import_signed(
            engine.open_workspace(scratch.repo),
            _write(scratch, forged),
            later(2),
            expect_key=response.key_id,
        )
    imported = import_online(scratch, response, later(2))
    assert set(imported.written) == set(response.files)
    assert not request_path(scratch).exists()  # consumed
    assert scratch.plan(later(3)).empty
    assert scratch.vrps() == scratch.desired_vrps()
    tal = engine.trust_anchor_locator(engine.open_workspace(scratch.repo))
    assert "rsync://rpki.example.net/repo/ta.cer" in tal


def test_a_scheduled_apply_keeps_the_waiting_request(tmp_path: Path) -> None:
    """The request an operator carries to the offline machine is not voided by the next cron run; a
    changed plan replaces it, and a response to the old one is then refused."""
    scratch = scratch_copy(tmp_path)
    make_offline(scratch)
    scratch.apply(T0)
    first = request_path(scratch).read_bytes()
    old = sign_offline(scratch, later(0.5))
    scratch.apply(later(1))
    assert request_path(scratch).read_bytes() == first
    scratch.edit("cas/online.yaml", "203.0.113.0/24", "203.0.113.0/25")  # the TA must certify other resources
    scratch.apply(later(1.5))
    assert request_path(scratch).read_bytes() != first
    with pytest.raises(CeremonyError, match="waiting request is"):
        import_online(scratch, old, later(2))
    import_online(scratch, sign_offline(scratch, later(2)), later(2.5))
    assert scratch.plan(later(3)).empty


def test_the_trust_anchor_renews_monthly_through_the_ceremony(offline: Scratch) -> None:
    """At four weeks the plan renews the TA's manifest and CRL: apply writes a request for just those,
    the ceremony signs them, the numbers go up, and every other object stays as it is."""
    assert offline.plan(later(24 * 7 * 4 - 2)).notices == ()
    due = later(24 * 7 * 4 + 3)
    plan = offline.plan(due)
    assert {c.ca for c in plan.changes if c.routine} >= {"ta"}
    before = read(offline.rsync)
    offline.apply(due)
    request, _ = read_request(request_path(offline))
    assert request.certificates == [] and set(request.point.keep) == {"online.cer"}
    response = sign_offline(offline, due + timedelta(hours=3))
    assert set(response.files) == {p for p in before.files if p.startswith("ta/") and p != "ta/online.cer"}
    import_online(offline, response, due + timedelta(hours=4))
    after = read(offline.rsync)
    for path in before.files:
        if path.startswith("ta/") and path.endswith(".mft"):
            old_mft, new_mft = before.manifest(path), after.manifest(path)
            assert new_mft.content.number > old_mft.content.number  # type: ignore[union-attr]
            assert new_mft.content.next_update - due > timedelta(weeks=11)  # type: ignore[union-attr]
    assert after.files["ta/online.cer"] == before.files["ta/online.cer"]
    assert offline.plan(due + timedelta(hours=5)).notices == ()


def test_reminders_warn_then_turn_critical(offline: Scratch) -> None:
    """Without the ceremony, plan warns from 15 days before the TA's manifest expires and is critical
    from 7 days; check reports it with the monitoring exit codes."""
    workspace = engine.open_workspace(offline.repo)
    ends = T0 + timedelta(hours=1) + timedelta(weeks=12)  # signed at later(1)

    def expiry_notice(at: datetime) -> Severity | None:
        found = [n for n in offline.plan(at).notices if n.kind == "expiry"]
        return found[0].severity if found else None

    assert expiry_notice(ends - timedelta(days=15, hours=1)) is None
    assert expiry_notice(ends - timedelta(days=14)) is Severity.WARNING
    assert expiry_notice(ends - timedelta(days=6)) is Severity.CRITICAL
    message = next(n for n in offline.plan(ends - timedelta(days=6)).notices if n.kind == "expiry").message
    assert "expire in 6d" in message and "rpkictl ta sign" in message
    findings = engine.check(
        workspace, ends - timedelta(days=6), warn=timedelta(hours=4), critical=timedelta(hours=1)
    )
    ta = [f for f in findings if f.ca == "ta"]
    assert {f.severity for f in ta} == {Severity.CRITICAL, Severity.WARNING}  # expiry, and a renewal waiting


def test_a_tampered_response_is_refused_and_nothing_is_published(offline: Scratch) -> None:
    due = later(24 * 7 * 4 + 3)
    offline.apply(due)
    response = sign_offline(offline, due)
    tree = offline.rsync.resolve()
    mft = next(p for p in response.files if p.endswith(".mft"))
    data = bytearray(base64.b64decode(response.files[mft]))
    data[-10] ^= 0x01  # one bit of the manifest's signature
    tampered = response.model_copy(
        update={"files": {**response.files, mft: base64.b64encode(bytes(data)).decode()}}
    )
    with pytest.raises(CeremonyError, match=r"signature|tampered|not signed"):
        import_online(offline, tampered, due)
    crl = next(p for p in response.files if p.endswith(".crl"))
    swapped = response.model_copy(update={"files": {**response.files, crl: response.files[mft]}})
    with pytest.raises(CeremonyError):
        import_online(offline, swapped, due)
    assert offline.rsync.resolve() == tree and request_path(offline).exists()
    import_online(offline, response, due)  # the genuine one still goes through


def test_an_expired_request_cannot_be_signed_or_imported(offline: Scratch) -> None:
    due = later(24 * 7 * 4 + 3)
    offline.apply(due)
    request, raw = read_request(request_path(offline))
    with pytest.raises(CeremonyError, match="expired"):
        ceremony.sign(request, raw, offline_signer(offline), due + timedelta(days=15))
    response = sign_offline(offline, due + timedelta(days=1))
    with pytest.raises(CeremonyError, match="expired"):
        import_online(offline, response, due + timedelta(days=14, minutes=1))
    offline.apply(due + timedelta(days=14, minutes=2))  # a new request replaces the expired one
    assert read_request(request_path(offline))[0].request_id != request.request_id


def test_a_response_cannot_be_replayed(offline: Scratch) -> None:
    due = later(24 * 7 * 4 + 3)
    offline.apply(due)
    response = sign_offline(offline, due)
    import_online(offline, response, due)
    with pytest.raises(CeremonyError, match="no signing request is waiting"):
        import_online(offline, response, due)
    # Even with a new request waiting, the old response answers another one.
    offline.apply(due + timedelta(weeks=4, hours=1))
    with pytest.raises(CeremonyError, match="waiting request is"):
        import_online(offline, response, due + timedelta(weeks=4, hours=1))


def test_the_offline_side_refuses_a_request_that_does_not_match_its_yaml(offline: Scratch) -> None:
    offline.edit("cas/online.yaml", "203.0.113.0/24", "203.0.113.0/25")
    offline.apply(later(3))  # a request for the online CA's grown resources
    request, _ = read_request(request_path(offline))
    desired = load(offline.repo)
    assert ceremony.check_against(request, desired) == []
    raw = json.loads(request_path(offline).read_text())
    raw["certificates"][0]["ip_resources"] = raw["certificates"][0]["ip_resources"][:-4] + "AAA="
    forged = request.model_validate(raw)
    problems = ceremony.check_against(forged, desired)
    assert problems and "resources differ" in problems[0]
    raw = json.loads(request_path(offline).read_text())
    raw["certificates"][0]["path"] = "ta/other.cer"
    raw["certificates"][0]["validity_seconds"] = 10 * 365 * 86400
    raw["point"]["validity_seconds"] = 365 * 86400
    problems = ceremony.check_against(request.model_validate(raw), desired)
    assert any("not where the certificate" in p for p in problems)
    assert any("validity differs" in p for p in problems)
    assert any("ta_manifest_validity" in p for p in problems)


def test_the_offline_side_refuses_the_wrong_key(offline: Scratch) -> None:
    due = later(24 * 7 * 4 + 3)
    offline.apply(due)
    request, raw = read_request(request_path(offline))
    (offline.root / "offline-keys" / "ta.pem").rename(offline.root / "offline-keys" / "moved.pem")
    with pytest.raises(CeremonyError, match="right token or key directory"):
        ceremony.sign(request, raw, offline_signer(offline), due)
    stranger = FileSigner(offline.root / "other-keys")
    stranger.create_key("ta")
    with pytest.raises(CeremonyError, match="right token or key directory"):
        ceremony.sign(request, raw, stranger, due)


def test_a_request_the_plan_no_longer_asks_for_is_not_imported(tmp_path: Path) -> None:
    """The request was written for a change that was then reverted: its response must not publish it."""
    scratch = scratch_copy(tmp_path)
    make_offline(scratch)
    scratch.apply(T0)
    import_online(scratch, sign_offline(scratch, later(0.5)), later(0.5))
    scratch.edit("cas/online.yaml", "203.0.113.0/24", "203.0.113.0/25")
    scratch.apply(later(1))
    response = sign_offline(scratch, later(1.5))
    scratch.edit("cas/online.yaml", "203.0.113.0/25", "203.0.113.0/24")  # reverted before the import
    with pytest.raises(CeremonyError, match="no longer what the plan asks"):
        import_online(scratch, response, later(2))
    assert scratch.apply(later(2)) is None  # nothing to do, and the stale request...
    assert request_path(scratch).exists()
    scratch.edit("cas/members/example-isp.yaml", "max_length: 26", "max_length: 25")
    scratch.apply(later(3))  # ...is removed by the next apply that needs no trust anchor signature
    assert not request_path(scratch).exists()


def test_a_response_dated_by_a_wrong_clock_is_refused(offline: Scratch) -> None:
    due = later(24 * 7 * 4 + 3)
    offline.apply(due)
    request, raw = read_request(request_path(offline))
    with pytest.raises(CeremonyError, match="clock"):
        ceremony.sign(request, raw, offline_signer(offline), due - timedelta(days=1))
    ahead = ceremony.sign(request, raw, offline_signer(offline), due + timedelta(days=2))
    with pytest.raises(CeremonyError, match="offline clock ahead"):
        import_online(offline, ahead, due)


def test_a_damaged_request_is_refused_before_any_key_is_made(tmp_path: Path) -> None:
    scratch = scratch_copy(tmp_path)
    make_offline(scratch)
    scratch.apply(T0)
    raw = json.loads(request_path(scratch).read_text())
    raw["certificates"][1]["subject_key"] = "bm90IGEga2V5"  # base64 of "not a key"
    request_path(scratch).write_text(json.dumps(raw))
    request, data = read_request(request_path(scratch))
    with pytest.raises(CeremonyError, match="damaged"):
        ceremony.sign(request, data, offline_signer(scratch), later(1))
    assert not (scratch.root / "offline-keys").exists()
