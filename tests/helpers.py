"""Helpers shared by the planning, CLI and end-to-end tests: a scratch copy of the bundled example."""

from __future__ import annotations

import os
import pty
import select
import shutil
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import NoReturn

import git
import pytest

from reconciler import engine
from reconciler.apply.executor import ApplyResult
from reconciler.plan.diff import published_vrps
from reconciler.plan.model import Action, Change, Kind, Plan

STATE = Path(__file__).resolve().parent.parent / "state"
T0 = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


@dataclass
class Scratch:
    """A desired-state repository in a temporary directory, with its keys and publication beside it."""

    root: Path

    @property
    def repo(self) -> Path:
        return self.root / "state"

    @property
    def rsync(self) -> Path:
        return self.root / "published" / "rsync"

    def write(self, rel: str, text: str) -> None:
        path = self.repo / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)

    def edit(self, rel: str, old: str, new: str) -> None:
        path = self.repo / rel
        text = path.read_text()
        assert old in text, f"{old!r} not in {rel}"
        path.write_text(text.replace(old, new, 1))

    def plan(self, now: datetime = T0) -> Plan:
        return engine.plan(engine.open_workspace(self.repo), now)

    def apply(self, now: datetime = T0) -> ApplyResult | None:
        workspace = engine.open_workspace(self.repo)
        return engine.apply(workspace, engine.plan(workspace, now))

    def vrps(self) -> frozenset[tuple[int, str, int]]:
        return published_vrps(engine.open_workspace(self.repo).published)

    def desired_vrps(self) -> frozenset[tuple[int, str, int]]:
        desired = engine.open_workspace(self.repo).desired
        return frozenset(r.vrp for ca in desired.cas for r in ca.roas)


def scratch_copy(tmp_path: Path) -> Scratch:
    shutil.copytree(STATE, tmp_path / "state")
    return Scratch(tmp_path)


def committed_copy(tmp_path: Path) -> tuple[git.Repo, Scratch]:
    """The example in a Git repository one level above the desired state (``state/``), committed, so
    that rpki.yaml's ``../published`` and ``../keys`` point inside the work tree (ignored), as on many CA
    hosts."""
    scratch = scratch_copy(tmp_path)
    (scratch.root / ".gitignore").write_text("/keys/\n/published/\n")
    repo = git.Repo.init(scratch.root, initial_branch="main")
    with repo.config_writer() as config:
        config.set_value("user", "name", "Operator").set_value("user", "email", "noc@example.net")
    repo.git.add(".")
    repo.index.commit("desired state")
    return repo, scratch


def actions(plan: Plan) -> list[tuple[Action, Kind, str]]:
    """The plan as (action, kind, path) triples, sorted, for exact comparisons."""
    return sorted((c.action, c.kind, c.path) for c in plan.changes)


def in_ci() -> bool:
    """True when the environment variable CI is set (to anything but an explicit false): there, a
    missing tool fails a test instead of skipping it."""
    return os.environ.get("CI", "").strip().lower() not in {"", "0", "false", "no"}


def missing_tool(message: str, what: str) -> NoReturn:
    """The one policy for a tool a test needs and cannot find: in CI a failure (``what`` must run there,
    never be skipped), elsewhere a skip that says so."""
    if in_ci():
        pytest.fail(f"{message}; CI must run {what}, not skip them", pytrace=False)
    pytest.skip(f"{message}; skipped because CI is not set (in CI this is a failure)")


def later(hours: float) -> datetime:
    return T0 + timedelta(hours=hours)


def routine(changes: list[Change]) -> bool:
    return all(c.routine for c in changes)


def run_on_terminal(
    args: list[str], answer: bytes | list[bytes], prompt: bytes, timeout: float = 120
) -> tuple[int, str]:
    """Run ``rpkictl ARGS`` on a pseudo-terminal and type ``answer`` when ``prompt`` appears (a list:
    the next answer each time the prompt appears once more)."""
    code, output, _ = exec_on_terminal(
        lambda: os.execv(sys.executable, [sys.executable, "-m", "reconciler", *args]), answer, prompt, timeout
    )
    return code, output


def exec_on_terminal(
    become: Callable[[], object], answer: bytes | list[bytes], prompt: bytes, timeout: float
) -> tuple[int, str, bool]:
    """Fork on a pseudo-terminal; the child calls ``become`` (an exec). Type ``answer`` once ``prompt``
    appears, or with a list of answers the next one each time it appears once more. Returns (exit code,
    output, whether the prompt appeared).

    Reads with a deadline: a child still running then (waiting for an answer never typed, or stuck) is
    killed, so a prompt that never comes fails the test instead of hanging it.
    """
    answers = [answer] if isinstance(answer, bytes) else answer
    pid, fd = pty.fork()
    if pid == 0:  # the child becomes the program on the terminal
        become()
    output, typed, closed = b"", 0, False
    deadline = time.monotonic() + timeout
    while (left := deadline - time.monotonic()) > 0:
        ready, _, _ = select.select([fd], [], [], left)
        if not ready:
            break
        try:
            chunk = os.read(fd, 4096)
        except OSError:  # the child closed the terminal
            chunk = b""
        if not chunk:
            closed = True
            break
        output += chunk
        if typed < len(answers) and output.count(prompt) > typed:
            os.write(fd, answers[typed] + b"\n")
            typed += 1
    if not closed:
        os.kill(pid, signal.SIGKILL)
    _, status = os.waitpid(pid, 0)
    os.close(fd)
    return os.waitstatus_to_exitcode(status), output.decode(errors="replace"), output.count(prompt) > 0
