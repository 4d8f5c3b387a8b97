"""The offline trust anchor, end to end through ``rpkictl``: the online CAs' keys in SoftHSM2, the trust
anchor's key in a directory only ``rpkictl ta sign`` opens. Bootstrap and a monthly renewal each go
through request, sign and import, and both validators accept the result; a wrong PIN, a missing token
and a tampered response each fail with a clear message and nothing published.
"""

from __future__ import annotations

import base64
import json
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.e2e.relying_parties import assert_accepts_exactly_the_yaml, validate
from tests.helpers import Scratch, scratch_copy
from tests.offline.test_ceremony import import_online, make_offline, sign_offline
from tests.signers.test_pkcs11 import (  # noqa: F401  # fixtures, used by name
    HsmToken,
    hsm_token_fixture,
    softhsm_fixture,
)
from tests.test_cli_review import rpkictl


def _at(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


@pytest.fixture
def hierarchy(hsm_token: HsmToken, tmp_path: Path) -> Scratch:
    scratch = scratch_copy(tmp_path)
    make_offline(scratch)
    rpki = scratch.repo / "rpki.yaml"
    rpki.write_text(rpki.read_text() + hsm_token.yaml_entry())
    scratch.edit("cas/online.yaml", "parent: ta\n", "parent: ta\nsigner: hsm\n")
    scratch.edit("cas/members/example-isp.yaml", "parent: online\n", "parent: online\nsigner: hsm\n")
    return scratch


def _ceremony(scratch: Scratch, at: datetime) -> None:
    request = scratch.root / "published" / "ta-request.json"
    response = scratch.root / "ta-response.json"
    signed = rpkictl(
        "ta",
        "sign",
        str(request),
        "--out",
        str(response),
        "--repo",
        str(scratch.repo),
        "--yes",
        "--now",
        _at(at),
    )
    assert signed.returncode == 0, signed.stderr
    assert "Signing request" in signed.stdout and "Signed" in signed.stdout
    key = json.loads(response.read_text())["key_id"]
    assert f"with key {key}" in signed.stdout  # what the operator confirms the first import with
    imported = rpkictl(
        "ta", "import", str(response), str(scratch.repo), "--now", _at(at), "--expect-key", key
    )
    assert imported.returncode == 0, imported.stderr
    assert "Imported" in imported.stdout


def test_offline_trust_anchor_over_hsm_cas_is_accepted_by_both(
    hierarchy: Scratch, validators: tuple[str, ...], tmp_path: Path
) -> None:
    scratch = hierarchy
    start = datetime.now(UTC).replace(microsecond=0)
    applied = rpkictl("apply", str(scratch.repo), "--yes", "--simulate-time", "--now", _at(start))
    assert applied.returncode == 0, applied.stderr
    assert "wait for the offline trust anchor" in applied.stdout and "rpkictl ta sign" in applied.stdout
    _ceremony(scratch, start + timedelta(minutes=1))
    after = rpkictl("plan", str(scratch.repo), "--now", _at(start + timedelta(minutes=2)))
    assert after.returncode == 0, after.stdout
    caches = {name: tmp_path / f"cache-{name}" for name in validators}
    assert_accepts_exactly_the_yaml(scratch, validate(scratch, validators, caches=caches))
    assert not (scratch.root / "keys").exists()  # online: no key file at all
    assert [p.name for p in (scratch.root / "offline-keys").glob("*.pem")] == ["ta.pem"]

    # A month on: the daily job keeps the online CAs fresh and writes the TA's renewal request.
    month = start + timedelta(weeks=4, hours=2)
    routine = rpkictl(
        "apply", str(scratch.repo), "--yes", "--routine-only", "--simulate-time", "--now", _at(month)
    )
    assert routine.returncode == 0, routine.stderr
    assert "wait for the offline trust anchor" in routine.stdout
    _ceremony(scratch, month + timedelta(hours=1))
    results = validate(scratch, validators, now=month + timedelta(hours=2), caches=caches)
    assert_accepts_exactly_the_yaml(scratch, results)
    check = rpkictl("check", str(scratch.repo), "--now", _at(month + timedelta(hours=2)))
    assert check.returncode == 0, check.stdout


def test_signer_failures_publish_nothing(hierarchy: Scratch, hsm_token: HsmToken) -> None:
    scratch = hierarchy
    start = datetime.now(UTC).replace(microsecond=0)
    assert (
        rpkictl("apply", str(scratch.repo), "--yes", "--simulate-time", "--now", _at(start)).returncode == 0
    )
    _ceremony(scratch, start + timedelta(minutes=1))
    tree = (scratch.root / "published" / "rsync").resolve()
    scratch.edit("cas/members/example-isp.yaml", "  - {asn: AS0, prefix: 192.0.2.128/25}\n", "")
    later = _at(start + timedelta(minutes=5))

    wrong = rpkictl(
        "apply",
        str(scratch.repo),
        "--yes",
        "--simulate-time",
        "--now",
        later,
        env={hsm_token.pin_env: "0000"},
    )
    assert wrong.returncode == 1
    assert hsm_token.pin_env in wrong.stderr and "0000" not in wrong.stderr + wrong.stdout
    unset = rpkictl(
        "apply", str(scratch.repo), "--yes", "--simulate-time", "--now", later, env={hsm_token.pin_env: ""}
    )
    assert unset.returncode == 1 and f"export {hsm_token.pin_env}=" in unset.stderr

    rpki = scratch.repo / "rpki.yaml"
    rpki.write_text(rpki.read_text().replace(f"token: {hsm_token.label}", "token: missing"))
    missing = rpkictl("apply", str(scratch.repo), "--yes", "--simulate-time", "--now", later)
    assert missing.returncode == 1 and "'missing'" in missing.stderr and "test" in missing.stderr
    assert (scratch.root / "published" / "rsync").resolve() == tree


def test_a_tampered_response_is_refused(hierarchy: Scratch) -> None:
    scratch = hierarchy
    start = datetime.now(UTC).replace(microsecond=0)
    assert (
        rpkictl("apply", str(scratch.repo), "--yes", "--simulate-time", "--now", _at(start)).returncode == 0
    )
    request = scratch.root / "published" / "ta-request.json"
    response = scratch.root / "ta-response.json"
    sign = ["ta", "sign", str(request), "--out", str(response), "--repo", str(scratch.repo), "--yes"]
    signed = rpkictl(*sign, "--now", _at(start))
    assert signed.returncode == 0, signed.stderr
    tree = (scratch.root / "published" / "rsync").resolve()
    doc = json.loads(response.read_text())
    key = doc["key_id"]

    def import_(path: Path, at: datetime, *extra: str) -> subprocess.CompletedProcess[str]:
        return rpkictl("ta", "import", str(path), str(scratch.repo), "--now", _at(at), *extra)

    der = bytearray(base64.b64decode(doc["files"]["ta/online.cer"]))
    der[200] ^= 0x01
    doc["files"]["ta/online.cer"] = base64.b64encode(bytes(der)).decode()
    tampered = scratch.root / "tampered.json"
    tampered.write_text(json.dumps(doc))
    refused = import_(tampered, start, "--expect-key", key)
    assert refused.returncode == 1 and "nothing was published" in refused.stderr
    assert "ta/online.cer" in refused.stderr
    assert (scratch.root / "published" / "rsync").resolve() == tree
    expired = import_(response, start + timedelta(days=15), "--expect-key", key)
    assert expired.returncode == 1 and "expired" in expired.stderr
    unconfirmed = import_(response, start)
    assert unconfirmed.returncode == 1 and "--expect-key" in unconfirmed.stderr and key in unconfirmed.stderr
    good = import_(response, start, "--expect-key", key)
    assert good.returncode == 0, good.stderr
    assert f"trust anchor key {key}" in good.stdout
    replay = import_(response, start, "--expect-key", key)
    assert replay.returncode == 1 and "imported once" in replay.stderr


def test_a_key_roll_below_the_offline_trust_anchor_is_accepted_at_every_step(
    validators: tuple[str, ...], tmp_path: Path
) -> None:
    """The online CA rolls its key while its parent is offline: the certificate for the new key and the
    revocation of the old one each wait for a ceremony. Between activation and the ceremony that revokes
    the old certificate, the old key keeps an empty manifest and CRL, so relying parties following either
    certificate find a valid publication point."""
    scratch = scratch_copy(tmp_path)
    make_offline(scratch)
    start = datetime.now(UTC).replace(microsecond=0)
    scratch.apply(start)
    import_online(scratch, sign_offline(scratch, start), start)
    caches = {name: tmp_path / f"cache-{name}" for name in validators}
    scratch.edit("cas/online.yaml", "parent: ta\n", "parent: ta\nkey_generation: 2\n")
    phases = []
    for hours in (1, 26, 27):
        at = start + timedelta(hours=hours)
        phases.append(scratch.plan(at).key_plans["online"].phase)
        result = scratch.apply(at)
        assert result is not None
        assert_accepts_exactly_the_yaml(scratch, validate(scratch, validators, now=at, caches=caches))
        if result.request is not None:  # the ceremony, an hour later
            import_online(scratch, sign_offline(scratch, at), at + timedelta(minutes=30))
            assert_accepts_exactly_the_yaml(
                scratch, validate(scratch, validators, now=at + timedelta(hours=1), caches=caches)
            )
    assert [p.value if p else None for p in phases] == ["staging", "activating", "cleanup"]
    assert scratch.plan(start + timedelta(hours=28)).empty
