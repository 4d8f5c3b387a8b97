"""The status report in the tools that consume it: the HTML page rendered by headless Chromium, the
Prometheus textfile and the shipped alerting rules checked and unit-tested by promtool."""

from __future__ import annotations

import struct
import subprocess
import zlib
from datetime import timedelta
from pathlib import Path

import pytest

from reconciler import engine
from reconciler.status import html, prometheus
from tests.e2e.harness import RequireTool
from tests.helpers import T0, later, scratch_copy

ROOT = Path(__file__).resolve().parents[2]
ALERTS = ROOT / "docs" / "prometheus" / "rpki-alerts.yml"
ALERT_TESTS = ROOT / "docs" / "prometheus" / "rpki-alerts.test.yml"
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--enable-logging=stderr",
    "--v=0",
)
WINDOW = (1100, 1400)


def _chromium(
    require_tool: RequireTool, page: Path, tmp_path: Path, *args: str
) -> subprocess.CompletedProcess[str]:
    binary = require_tool("chromium")
    profile = tmp_path / f"profile-{len(list(tmp_path.glob('profile-*')))}"
    return subprocess.run(
        [binary, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args, page.as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _page_errors(stderr: str) -> list[str]:
    """What the page itself logged: console messages (script errors, CSP violations, failed loads)."""
    return [line for line in stderr.splitlines() if ":CONSOLE" in line or "Failed to load" in line]


def _png(path: Path) -> tuple[int, int, bytes]:
    """(width, height, the decompressed, still filtered, image data) of a PNG file."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    width, height = struct.unpack(">II", data[16:24])
    chunks, offset = [], 8
    while offset < len(data):
        (length,) = struct.unpack(">I", data[offset : offset + 4])
        kind = data[offset + 4 : offset + 8]
        if kind == b"IDAT":
            chunks.append(data[offset + 8 : offset + 8 + length])
        offset += 12 + length
    return width, height, zlib.decompress(b"".join(chunks))


@pytest.fixture
def report_page(tmp_path: Path) -> Path:
    """The HTML report of the bundled example 23 h after apply: renewals overdue, warnings shown."""
    scratch = scratch_copy(tmp_path)
    assert scratch.apply(T0) is not None
    report = engine.status(engine.open_workspace(scratch.repo), later(23))
    assert report.severity == "warning"
    page = tmp_path / "status.html"
    page.write_text(html.render(report))
    return page


def test_html_report_renders_in_headless_chromium_without_errors(
    require_tool: RequireTool, report_page: Path, tmp_path: Path
) -> None:
    dom = _chromium(require_tool, report_page, tmp_path, "--dump-dom")
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert _page_errors(dom.stderr) == []
    for name in ("ta", "online", "example-isp"):
        assert f'id="ca-{name}"' in dom.stdout
    assert dom.stdout.count('<div class="ca"') == 3 and "<svg" in dom.stdout
    assert 'class="badge warning" id="verdict"' in dom.stdout
    shot = tmp_path / "status.png"
    taken = _chromium(
        require_tool, report_page, tmp_path, f"--window-size={WINDOW[0]},{WINDOW[1]}", f"--screenshot={shot}"
    )
    assert taken.returncode == 0, taken.stderr[-2000:]
    assert _page_errors(taken.stderr) == []
    width, height, pixels = _png(shot)
    assert (width, height) == WINDOW
    # a blank or unstyled page filters down to a handful of byte values; text, badges and the timeline
    # give many
    assert len(set(pixels)) > 200, "the screenshot looks blank"


def test_the_error_detector_sees_a_page_that_breaks_its_policy(
    require_tool: RequireTool, report_page: Path, tmp_path: Path
) -> None:
    """The check above could fail: a page that loads a remote image and runs a script is caught."""
    broken = tmp_path / "broken.html"
    text = report_page.read_text()
    broken.write_text(
        text.replace("<h1>", '<img src="http://example.invalid/x.png"><script>1</script><h1>', 1)
    )
    dom = _chromium(require_tool, broken, tmp_path, "--dump-dom")
    assert len(_page_errors(dom.stderr)) == 2


def test_promtool_accepts_the_textfile_and_the_alerting_rules(
    require_tool: RequireTool, tmp_path: Path
) -> None:
    promtool = require_tool("promtool")
    scratch = scratch_copy(tmp_path)
    assert scratch.apply(T0) is not None
    textfile = tmp_path / "rpki.prom"
    textfile.write_text(prometheus.render(engine.status(engine.open_workspace(scratch.repo), later(1))))
    with textfile.open() as handle:
        metrics = subprocess.run(
            [promtool, "check", "metrics"], stdin=handle, capture_output=True, text=True, check=False
        )
    assert metrics.returncode == 0, metrics.stdout + metrics.stderr
    rules = subprocess.run(
        [promtool, "check", "rules", str(ALERTS)], capture_output=True, text=True, check=False
    )
    assert rules.returncode == 0, rules.stdout + rules.stderr
    assert "SUCCESS" in rules.stdout


def test_alerting_rules_fire_when_they_should(require_tool: RequireTool) -> None:
    """promtool's rule unit tests (docs/prometheus/rpki-alerts.test.yml): each alert fires on a series
    shaped like our textfile, and stays quiet on a healthy one."""
    promtool = require_tool("promtool")
    result = subprocess.run(
        [promtool, "test", "rules", ALERT_TESTS.name],
        cwd=ALERT_TESTS.parent,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_alert_expressions_name_only_exported_metrics(tmp_path: Path) -> None:
    scratch = scratch_copy(tmp_path)
    assert scratch.apply(T0) is not None
    exported = {
        line.split(" ")[2]
        for line in prometheus.render(
            engine.status(engine.open_workspace(scratch.repo), T0 + timedelta(hours=1))
        ).splitlines()
        if line.startswith("# TYPE")
    }
    exported.add("rpki_last_apply_timestamp_seconds")  # present once an apply is recorded
    exported.add("rpki_last_successful_apply_timestamp_seconds")
    used = set()
    for word in ALERTS.read_text().replace("(", " ").replace(")", " ").replace("{", " ").split():
        if word.startswith("rpki_"):
            used.add(word)
    assert used and used <= exported, used - exported
