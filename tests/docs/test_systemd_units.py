"""The systemd units in docs/systemd/ are valid for systemd and start the commands the docs describe."""

from __future__ import annotations

import configparser
import shutil
import subprocess
import sys
from pathlib import Path

from tests.helpers import missing_tool

UNITS = Path(__file__).resolve().parents[2] / "docs" / "systemd"
RPKICTL = "/opt/rpki-reconciler/bin/rpkictl"


def _units() -> list[Path]:
    return sorted(p for p in UNITS.iterdir() if p.suffix in (".service", ".timer"))


def _parse(path: Path) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string(path.read_text())
    return parser


def _analyze() -> str:
    found = shutil.which("systemd-analyze")
    if found is None:
        missing_tool("systemd-analyze is not installed (apt-get install systemd)", "the unit checks")
    return found


def test_systemd_analyze_verify_accepts_every_unit(tmp_path: Path) -> None:
    analyze = _analyze()
    # verify checks that ExecStart's program exists: point the units at this rpkictl
    rpkictl = Path(sys.executable).parent / "rpkictl"
    assert rpkictl.exists(), "rpkictl is not installed beside this interpreter"
    for unit in _units():
        (tmp_path / unit.name).write_text(unit.read_text().replace(RPKICTL, str(rpkictl)))
    result = subprocess.run(
        [analyze, "verify", *(str(tmp_path / u.name) for u in _units())],
        capture_output=True,
        text=True,
        check=False,
    )
    problems = [
        line
        for line in (result.stdout + result.stderr).splitlines()
        if line.strip() and "Special user" not in line
    ]
    assert result.returncode == 0 and problems == [], "\n".join(problems)


def test_verify_would_catch_a_broken_unit(tmp_path: Path) -> None:
    analyze = _analyze()
    broken = tmp_path / "broken.service"
    broken.write_text("[Service]\nType=simpel\nExecStart=/bin/true\n")
    result = subprocess.run([analyze, "verify", str(broken)], capture_output=True, text=True, check=False)
    assert "simpel" in result.stderr


def test_each_service_runs_the_documented_command_and_each_timer_a_service() -> None:
    starts = {}
    for unit in _units():
        parsed = _parse(unit)
        if unit.suffix == ".timer":
            assert (UNITS / unit.name.replace(".timer", ".service")).exists()
            assert parsed["Install"]["WantedBy"] == "timers.target"
            continue
        starts[unit.stem] = parsed["Service"]["ExecStart"]
        assert parsed["Service"]["EnvironmentFile"].startswith("-/etc/rpki-reconciler/")
        assert parsed["Service"]["ProtectSystem"] == "strict"
    assert (
        starts["rpki-reconcile"].startswith(f"{RPKICTL} reconcile ")
        and "--interval 10m" in starts["rpki-reconcile"]
    )
    assert "--once" in starts["rpki-reconcile-once"]
    assert _parse(UNITS / "rpki-reconcile.service")["Service"]["KillSignal"] == "SIGTERM"
    assert starts["rpki-serve"].startswith(f"{RPKICTL} serve ") and "--host 127.0.0.1" in starts["rpki-serve"]
    assert _parse(UNITS / "rpki-serve.service")["Service"]["KillSignal"] == "SIGTERM"
    status = (UNITS / "rpki-status.service").read_text()  # two ExecStart= lines: configparser keeps one
    assert "--format html --out" in status and "--format prometheus --out" in status
