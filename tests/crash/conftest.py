"""Print the crash harness's figures in pytest's summary, so that CI logs show them."""

from __future__ import annotations

import pytest

from tests.crash import test_kill_points


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    for line in test_kill_points.SUMMARY:
        terminalreporter.write_line(f"crash harness: {line}")
