"""rpkictl as a user runs it: a real process, real exit codes, a real terminal for the prompt."""

from __future__ import annotations

import gc
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from reconciler import cli, engine
from reconciler.desired import load
from reconciler.plan.document import PlanDocument
from reconciler.rpki import cert, tal
from tests.helpers import T0, Scratch, run_on_terminal, scratch_copy

NOW = "2026-11-23T12:00:00Z"


def rpkictl(
    *args: str, cwd: Path | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """``rpkictl ARGS`` as a real process with no terminal; ``env`` adds to this process's environment."""
    return subprocess.run(
        [sys.executable, "-m", "reconciler", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=180,
        stdin=subprocess.DEVNULL,
        check=False,
        env={**os.environ, **(env or {})},
    )


@pytest.fixture
def scratch(tmp_path: Path) -> Scratch:
    return scratch_copy(tmp_path)


def test_help_lists_the_commands() -> None:
    result = rpkictl("--help")
    assert result.returncode == 0
    for command in ("validate", "plan", "apply", "tal"):
        assert command in result.stdout


def test_validate_ok(scratch: Scratch) -> None:
    result = rpkictl("validate", str(scratch.repo))
    assert result.returncode == 0, result.stderr
    assert "3 CAs, 4 ROA entries" in result.stdout


def test_validate_reports_file_line_col_without_traceback(scratch: Scratch) -> None:
    scratch.edit("cas/members/example-isp.yaml", "max_length: 26", "max_length: 33")
    result = rpkictl("validate", str(scratch.repo))
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert "example-isp.yaml:10:" in result.stderr
    assert "nothing was signed or written" in result.stderr


def test_plan_apply_plan_cycle(scratch: Scratch) -> None:
    """plan exits 2 with changes; apply --yes publishes; then plan exits 0 and apply writes nothing."""
    plan = rpkictl("plan", str(scratch.repo), "--now", NOW)
    assert plan.returncode == 2, plan.stderr
    assert (
        "Plan: 3 keys to create, 7 to issue, 0 to replace, 0 to revoke, 0 to withdraw, 6 routine."
        in plan.stdout
    )
    applied = rpkictl("apply", str(scratch.repo), "--simulate-time", "--now", NOW, "--yes")
    assert applied.returncode == 0, applied.stderr
    assert "Applied: 20 signatures, 13 files written" in applied.stdout
    served = scratch.rsync.resolve()
    again = rpkictl("plan", str(scratch.repo), "--now", NOW)
    assert again.returncode == 0
    assert "No changes" in again.stdout
    noop = rpkictl("apply", str(scratch.repo), "--simulate-time", "--now", NOW)
    assert noop.returncode == 0 and "No changes" in noop.stdout
    assert scratch.rsync.resolve() == served


def test_apply_without_terminal_or_yes_refuses(scratch: Scratch) -> None:
    result = rpkictl("apply", str(scratch.repo), "--simulate-time", "--now", NOW)
    assert result.returncode == 1
    assert "--yes" in result.stderr
    assert not scratch.rsync.exists()
    assert not (scratch.root / "keys").exists()


def _apply_on_terminal(scratch: Scratch, answer: bytes) -> tuple[int, str]:
    return run_on_terminal(
        ["apply", str(scratch.repo), "--simulate-time", "--now", NOW], answer, b"Apply these"
    )


def test_apply_asks_on_a_terminal(scratch: Scratch) -> None:
    code, output = _apply_on_terminal(scratch, b"n")
    assert code == 1 and "not applied" in output
    assert not scratch.rsync.exists()
    code, output = _apply_on_terminal(scratch, b"y")
    assert code == 0, output
    assert "Applied:" in output
    assert (scratch.rsync / "ta.cer").exists()


def test_tal(scratch: Scratch) -> None:
    before = rpkictl("tal", str(scratch.repo))
    assert before.returncode == 1 and "run 'rpkictl apply' first" in before.stderr
    assert rpkictl("apply", str(scratch.repo), "--yes").returncode == 0
    result = rpkictl("tal", str(scratch.repo))
    assert result.returncode == 0
    locator = tal.decode(result.stdout)
    assert locator.uris == ("rsync://rpki.example.net/repo/ta.cer",)
    ta = cert.decode((scratch.rsync / "ta.cer").read_bytes())
    assert locator.public_key_der == ta.public_key.public_bytes(
        Encoding.DER, PublicFormat.SubjectPublicKeyInfo
    )


def test_usage_errors_do_not_look_like_changes(scratch: Scratch) -> None:
    """Click's usage errors exit 2, which means "changes" for plan: they are remapped to 1."""
    assert rpkictl("plan", str(scratch.repo), "--no-such-option").returncode == 1
    assert rpkictl("no-such-command").returncode == 1
    bad_time = rpkictl("plan", str(scratch.repo), "--now", "yesterday")
    assert bad_time.returncode == 1 and "ISO-8601" in bad_time.stderr


def test_the_plan_document_is_not_held_while_signing(
    scratch: Scratch, monkeypatch: pytest.MonkeyPatch
) -> None:
    """apply keeps of the plan document only what the audit log records: a registry's first plan document
    is hundreds of megabytes, which the signing would otherwise hold beside everything it signs."""
    alive: list[int] = []
    sign_and_publish = engine.apply

    def counting(*args: object, **options: object) -> object:
        gc.collect()
        alive.append(sum(isinstance(o, PlanDocument) for o in gc.get_objects()))
        return sign_and_publish(*args, **options)  # type: ignore[arg-type]

    monkeypatch.setattr(engine, "apply", counting)
    cli._apply_locked(load(scratch.repo), None, T0, [], True, None)
    assert alive == [0]
    records = [
        json.loads(line) for line in (scratch.root / "published" / "audit.jsonl").read_text().splitlines()
    ]
    assert [r["status"] for r in records] == ["started", "applied"]
    assert records[1]["changes"] and records[1]["plan_id"] == records[0]["plan_id"]
