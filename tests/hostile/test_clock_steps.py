"""Clock steps: objects signed while a clock ran ahead are damage that plan repairs and check reports;
apply signs at a --now far from the system clock only when asked to simulate; times outside the years
RPKI objects can carry are clear errors."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from reconciler import clock, engine
from reconciler.plan.diff import FUTURE_DATED
from reconciler.plan.model import Kind, Severity
from reconciler.published.reader import read
from reconciler.rpki import cert as rc
from tests.helpers import T0, Scratch, scratch_copy
from tests.test_cli import rpkictl

AHEAD = T0 + timedelta(weeks=60)


@pytest.fixture
def ahead(tmp_path: Path) -> Scratch:
    """The example applied by a clock 60 weeks ahead."""
    scratch = scratch_copy(tmp_path)
    scratch.apply(AHEAD)
    return scratch


def certificates(scratch: Scratch) -> dict[str, rc.ResourceCertificate]:
    published = read(scratch.rsync)
    found = {p: published.certificate(p) for p in published.files if p.endswith(".cer")}
    return {p: c for p, c in found.items() if isinstance(c, rc.ResourceCertificate)}


def test_certificates_dated_in_the_future_are_renewed(ahead: Scratch) -> None:
    plan = ahead.plan(T0)
    dated = {c.path for c in plan.changes if c.kind is Kind.CERTIFICATE and FUTURE_DATED in c.reason}
    assert dated == set(certificates(ahead))
    assert all(c.routine for c in plan.changes if FUTURE_DATED in c.reason)  # the unattended loop repairs
    ahead.apply(T0)
    assert all(c.not_before <= T0 for c in certificates(ahead).values())
    assert ahead.plan(T0 + timedelta(minutes=1)).empty


def test_check_reports_objects_dated_in_the_future(ahead: Scratch) -> None:
    findings = engine.check(engine.open_workspace(ahead.repo), T0)
    critical = [f.message for f in findings if f.severity is Severity.CRITICAL]
    assert any("dated in the future" in message for message in critical), findings


def test_a_small_lag_is_not_damage(tmp_path: Path) -> None:
    """A plan on a machine whose clock lags the signer's by a minute re-issues nothing."""
    scratch = scratch_copy(tmp_path)
    scratch.apply(T0)
    assert scratch.plan(T0 - timedelta(minutes=1)).empty


def test_apply_at_a_time_far_from_the_clock_needs_simulate_time(tmp_path: Path) -> None:
    scratch = scratch_copy(tmp_path)
    future = (datetime.now(UTC) + timedelta(days=2)).isoformat()
    refused = rpkictl("apply", str(scratch.repo), "--yes", "--now", future)
    assert refused.returncode == 1
    assert "--simulate-time" in refused.stderr and "ahead of this machine's clock" in refused.stderr
    assert not (scratch.root / "published" / "rsync").exists()
    past = (datetime.now(UTC) - timedelta(days=400)).isoformat()
    assert "behind this machine's clock" in rpkictl("apply", str(scratch.repo), "--yes", "--now", past).stderr
    assert not (scratch.root / "published" / "rsync").exists()
    near = (datetime.now(UTC) + timedelta(minutes=1)).isoformat()
    assert rpkictl("apply", str(scratch.repo), "--yes", "--now", near).returncode == 0
    simulated = rpkictl("apply", str(scratch.repo), "--yes", "--simulate-time", "--now", future)
    assert simulated.returncode == 0, simulated.stderr


YEARS = ["0001", "1949", "2200", "9999"]


@pytest.mark.parametrize("year", YEARS)
def test_years_outside_what_rpki_objects_carry_are_refused(year: str) -> None:
    with pytest.raises(clock.ClockError, match="outside the years"):
        clock.now(f"{year}-06-01T00:00:00Z")


def test_every_command_says_so_without_a_traceback(tmp_path: Path) -> None:
    scratch = scratch_copy(tmp_path)
    runs = [("plan", year) for year in YEARS] + [("check", "9999"), ("status", "0001")]
    for command, year in runs:
        result = rpkictl(command, str(scratch.repo), "--now", f"{year}-06-01T00:00:00Z")
        assert result.returncode in (1, 2), (command, year, result.stderr)
        assert "Traceback" not in result.stderr + result.stdout, (command, year)
        assert "outside the years" in result.stderr + result.stdout, (command, year)
    applied = rpkictl("apply", str(scratch.repo), "--yes", "--simulate-time", "--now", "2200-01-01T00:00Z")
    assert applied.returncode == 1 and "outside the years" in applied.stderr
    assert "Traceback" not in applied.stderr


def test_a_time_zone_that_overflows_is_a_clear_error() -> None:
    with pytest.raises(clock.ClockError):
        clock.now("0001-01-01T00:00:00+05:00")
