"""The ceremony commands as an operator types them: ``ta sign`` shows the request and asks, ``check``
turns the reminders into monitoring exit codes."""

from __future__ import annotations

import json
import subprocess
from datetime import timedelta
from pathlib import Path

import pytest

from tests.helpers import T0, Scratch, later, run_on_terminal, scratch_copy
from tests.offline.test_ceremony import make_offline
from tests.test_cli_review import rpkictl


def _at(hours: float) -> str:
    return later(hours).strftime("%Y-%m-%dT%H:%M:%SZ")


@pytest.fixture
def waiting(tmp_path: Path) -> Scratch:
    """An offline trust anchor whose first signing request waits."""
    scratch = scratch_copy(tmp_path)
    make_offline(scratch)
    applied = rpkictl("apply", str(scratch.repo), "--yes", "--simulate-time", "--now", _at(0))
    assert applied.returncode == 0, applied.stderr
    return scratch


def _request(scratch: Scratch) -> Path:
    return scratch.root / "published" / "ta-request.json"


def _sign(scratch: Scratch, response: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    """``rpkictl ta sign`` of the waiting request with this scratch's YAML, as on the offline machine."""
    return rpkictl(
        "ta", "sign", str(_request(scratch)), "--out", str(response), "--repo", str(scratch.repo), *extra
    )


def test_sign_shows_the_request_and_asks(waiting: Scratch) -> None:
    response = waiting.root / "response.json"
    args = ["ta", "sign", str(_request(waiting)), "--out", str(response), "--repo", str(waiting.repo)]
    code, output = run_on_terminal([*args, "--now", _at(1)], b"n", b"Sign these objects")
    assert code == 1 and "not signed" in output and not response.exists()
    assert "a NEW key will be created" in output and "certificate for online (ta/online.cer)" in output
    assert "fingerprint" in output
    code, output = run_on_terminal([*args, "--now", _at(1)], b"y", b"Sign these objects")
    assert code == 0 and response.exists(), output
    assert json.loads(response.read_text())["format"] == "rpkictl-ta-response/1"


def test_sign_needs_a_terminal_or_yes(waiting: Scratch) -> None:
    response = waiting.root / "response.json"
    result = _sign(waiting, response, "--now", _at(1))
    assert result.returncode == 1 and "--yes" in result.stderr and not response.exists()


def test_sign_refuses_a_request_its_yaml_does_not_match(waiting: Scratch) -> None:
    waiting.edit("cas/online.yaml", "203.0.113.0/24", "203.0.113.0/25")  # the offline copy differs
    response = waiting.root / "response.json"
    result = _sign(waiting, response, "--yes")
    assert result.returncode == 1 and "does not match the desired state" in result.stderr
    assert "resources differ" in result.stderr and not response.exists()


def test_sign_refuses_an_online_trust_anchor(tmp_path: Path) -> None:
    scratch = scratch_copy(tmp_path)
    request = tmp_path / "r.json"
    request.write_text("{}")
    result = rpkictl(
        "ta", "sign", str(request), "--out", str(tmp_path / "o.json"), "--repo", str(scratch.repo)
    )
    assert result.returncode == 1 and "not an rpkictl signing request" in result.stderr


def test_check_exit_codes_follow_the_reminders(waiting: Scratch) -> None:
    response = waiting.root / "response.json"
    signed = _sign(waiting, response, "--yes", "--now", _at(1))
    assert signed.returncode == 0, signed.stderr
    key = json.loads(response.read_text())["key_id"]
    imported = rpkictl("ta", "import", str(response), str(waiting.repo), "--now", _at(1), "--expect-key", key)
    assert imported.returncode == 0, imported.stderr
    assert rpkictl("check", str(waiting.repo), "--now", _at(2)).returncode == 0
    ends = T0 + timedelta(hours=1, weeks=12)

    def check(at: timedelta) -> tuple[int, str]:
        moment = (ends - at).strftime("%Y-%m-%dT%H:%M:%SZ")
        # the online CAs are renewed by the daily job meanwhile
        rpkictl("apply", str(waiting.repo), "--yes", "--routine-only", "--simulate-time", "--now", moment)
        result = rpkictl("check", str(waiting.repo), "--now", moment)
        return result.returncode, result.stdout

    code, output = check(timedelta(days=14))
    assert code == 1 and "WARNING: ta:" in output and "expire in 14d" in output
    code, output = check(timedelta(days=6))
    assert code == 2 and "CRITICAL: ta:" in output and "rpkictl ta sign" in output
    plan = json.loads(
        rpkictl(
            "plan",
            str(waiting.repo),
            "--format",
            "json",
            "--now",
            (ends - timedelta(days=6)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        ).stdout
    )
    assert {n["kind"] for n in plan["notices"]} == {"expiry", "offline-signing"}


def test_check_reports_an_expired_manifest_below_the_trust_anchor(tmp_path: Path) -> None:
    scratch = scratch_copy(tmp_path)
    assert rpkictl("apply", str(scratch.repo), "--yes", "--simulate-time", "--now", _at(0)).returncode == 0
    assert rpkictl("check", str(scratch.repo), "--now", _at(1)).returncode == 0
    warned = rpkictl("check", str(scratch.repo), "--now", _at(21))
    assert warned.returncode == 1 and "WARNING: online: manifest and CRL expire in 3h" in warned.stdout
    expired = rpkictl("check", str(scratch.repo), "--now", _at(25))
    assert expired.returncode == 2 and "expired 1h ago" in expired.stdout
    custom = rpkictl("check", str(scratch.repo), "--now", _at(1), "--warn", "2d", "--critical", "1d")
    assert custom.returncode == 2


def test_check_is_critical_when_the_trust_anchor_point_is_gone_or_the_yaml_broken(tmp_path: Path) -> None:
    scratch = scratch_copy(tmp_path)
    assert rpkictl("apply", str(scratch.repo), "--yes", "--simulate-time", "--now", _at(0)).returncode == 0
    for path in (scratch.rsync.resolve() / "ta").glob("*.mft"):
        path.unlink()
    gone = rpkictl("check", str(scratch.repo), "--now", _at(1))
    assert gone.returncode == 2 and "CRITICAL: ta: manifest or CRL missing" in gone.stdout
    (scratch.repo / "rpki.yaml").write_text("publication: [\n")
    broken = rpkictl("check", str(scratch.repo), "--now", _at(1))
    assert broken.returncode == 2 and broken.stdout.startswith("CRITICAL: ")
