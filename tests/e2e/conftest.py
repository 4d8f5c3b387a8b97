"""Fixtures for the end-to-end tests: tool checks, rsync daemons, the validators to run.

The one place that decides what happens when a tool is missing (:func:`require_tool`): outside CI the
test is skipped with the command that installs the tool; in CI it fails, because CI must never pass
by quietly skipping the real validators.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import in_ci, missing_tool

from .harness import (
    ALL_VALIDATORS,
    CURRENT_VALIDATORS,
    RUNNERS,
    RequireTool,
    RsyncDaemon,
    RsyncDaemonFactory,
    find_tool,
    install_hint,
)

_HERE = Path(__file__).parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test in this directory ``e2e`` (so ``-m 'not e2e'`` gives a quick unit run)."""
    for item in items:
        if item.path.is_relative_to(_HERE):
            item.add_marker(pytest.mark.e2e)


@pytest.fixture
def require_tool() -> RequireTool:
    """``require_tool(name)`` -> absolute path; fails in CI, skips elsewhere, when ``name`` is missing."""

    def require(name: str) -> str:
        path = find_tool(name)
        if path is None:
            hint = install_hint(name)
            missing_tool(f"{name} is not installed (install with: {hint})", "the end-to-end tests")
        return path

    return require


@pytest.fixture
def validators(require_tool: RequireTool) -> tuple[str, ...]:
    """The validators to run: all of them, each checked to be installed (plus rsync).

    Outside CI, ``RECONCILER_E2E_VALIDATORS=fort`` (comma-separated) narrows the set for a quick local
    loop, and ``RECONCILER_E2E_VALIDATORS=rpki-client-9,fort-1.6`` runs every end-to-end scenario against
    the current generation instead; CI ignores it and always runs every validator of Debian 12's
    generation (the current one has its own tests, see :func:`current_validators`).
    """
    names = ALL_VALIDATORS
    chosen = os.environ.get("RECONCILER_E2E_VALIDATORS", "")
    if chosen and not in_ci():
        names = tuple(name.strip() for name in chosen.split(",") if name.strip())
        unknown = set(names) - set(RUNNERS)
        if unknown:
            pytest.fail(f"RECONCILER_E2E_VALIDATORS: unknown validators {sorted(unknown)}", pytrace=False)
    require_tool("rsync")
    for name in names:
        require_tool(name)
    return names


@pytest.fixture
def current_validators(require_tool: RequireTool) -> tuple[str, ...]:
    """The current generation (rpki-client 9.x, FORT 1.6.x, unpacked under ``/opt/rp-current``), each
    checked to be there in that version (plus rsync and libfaketime, which FORT 1.6 still runs under)."""
    require_tool("rsync")
    require_tool("faketime")
    for name in CURRENT_VALIDATORS:
        require_tool(name)
    return CURRENT_VALIDATORS


@pytest.fixture
def rsync_daemon(require_tool: RequireTool) -> Iterator[RsyncDaemonFactory]:
    """Factory: ``rsync_daemon(directory, module="repo", port=None)`` -> a started :class:`RsyncDaemon`.

    Every daemon started through it is stopped (and waited for) at teardown, even if the test failed.
    """
    require_tool("rsync")
    started: list[RsyncDaemon] = []

    def start(directory: Path, module: str = "repo", *, port: int | None = None) -> RsyncDaemon:
        daemon = RsyncDaemon(directory, module, port=port)
        started.append(daemon)
        return daemon.start()

    yield start
    for daemon in reversed(started):
        daemon.stop()
