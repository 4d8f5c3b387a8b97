"""A sandbox in which a documentation page's commands run for real, one shell session per page.

The sandbox directory plays the operator's working directory (the repository root of the README, or
``/srv/rpki`` of the operations pages): it holds a copy of the bundled example in ``state/`` and of
``scripts/``, and ``state/rpki.yaml`` puts the keys in ``keys/`` and the publication in ``published/``
beside it. Each command runs in ``bash`` with the real ``rpkictl`` executable first on ``PATH``; the
working directory and the environment carry over from one command to the next (``cd`` and ``export`` in
a page work as in a terminal). Exit codes are checked against what the scenario expects.

A scenario may only :meth:`Sandbox.run` commands that its page shows, verbatim; placeholders in them
(``GATE:HASH``, ``/srv/rpki``) are replaced by the values passed as ``subst``, and every replacement is
printed with the command, so the log shows exactly what ran. Everything else a scenario needs -- an
earlier apply, an edited ROA, a Git remote -- it does with :meth:`Sandbox.prepare` (a shell command that
is not from the page) or in Python between commands.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from tests.docs.doccommands import ROOT, DocCommand
from tests.helpers import exec_on_terminal

# Environment that would make a sandboxed command write into the CI job running the tests.
_JOB_VARIABLES = ("GITHUB_OUTPUT", "GITHUB_STEP_SUMMARY", "GITHUB_ENV", "GITHUB_PATH", "GITHUB_STATE")


def rpkictl_executable() -> Path:
    """The installed ``rpkictl`` (the console script of ``pip install -e .``), beside this interpreter
    or on PATH."""
    beside = Path(sys.executable).parent / "rpkictl"
    found = beside if beside.is_file() else shutil.which("rpkictl")
    assert found, "rpkictl is not installed: python3 -m pip install -e '.[test]'"
    return Path(found)


@dataclass
class Result:
    command: str  # what ran, after substitutions
    code: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


@dataclass
class Sandbox:
    """One page's shell session in ``root``; :attr:`executed` is what it ran of the page."""

    page: str
    root: Path
    commands: list[DocCommand]
    substitutions: dict[str, str] = field(default_factory=dict)  # for every command of this page
    executed: set[str] = field(default_factory=set)
    log: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        shutil.copytree(ROOT / "state", self.root / "state")
        shutil.copytree(ROOT / "scripts", self.root / "scripts", ignore=shutil.ignore_patterns("__pycache__"))
        self._session = self.root / ".session"
        self._session.mkdir()
        env = {k: v for k, v in os.environ.items() if k not in _JOB_VARIABLES}
        env["PATH"] = f"{rpkictl_executable().parent}{os.pathsep}{env.get('PATH', '')}:/usr/sbin:/sbin"
        env["PYTHONPATH"] = str(ROOT)  # scripts/validate_published.py imports the e2e harness
        env.update(
            GIT_AUTHOR_NAME="Docs Test",
            GIT_AUTHOR_EMAIL="docs@example.net",
            GIT_COMMITTER_NAME="Docs Test",
            GIT_COMMITTER_EMAIL="docs@example.net",
            COLUMNS="120",
        )
        self.env = env
        self.cwd = self.root

    @property
    def repo(self) -> Path:
        return self.root / "state"

    def shown(self, command: str) -> DocCommand:
        """The page's command with exactly this text (continuations joined, trailing comment cut)."""
        for doc_command in self.commands:
            if doc_command.text == command:
                return doc_command
        shown = "\n  ".join(c.text for c in self.commands)
        raise AssertionError(f"{self.page} shows no command {command!r}; it shows:\n  {shown}")

    def run(
        self,
        command: str,
        expect: int | set[int] = 0,
        *,
        subst: dict[str, str] | None = None,
        answer: str | None = None,
        prompt: str | None = None,
        timeout: float = 600,
    ) -> Result:
        """Run the page's ``command`` (after ``subst``) and check its exit code; with ``answer``, on a
        terminal, typing ``answer`` when ``prompt`` appears."""
        self.shown(command)
        self.executed.add(command)
        result = self._shell(command, {**self.substitutions, **(subst or {})}, answer, prompt, timeout)
        wanted = {expect} if isinstance(expect, int) else expect
        assert result.code in wanted, (
            f"{self.page}: `{result.command}` exited {result.code}, expected {sorted(wanted)}:\n"
            f"{result.output}"
        )
        return result

    def prepare(self, command: str, expect: int | set[int] = 0, timeout: float = 600) -> Result:
        """A shell command the scenario needs that is not from the page (not counted as covered)."""
        result = self._shell(command, {}, None, None, timeout)
        wanted = {expect} if isinstance(expect, int) else expect
        assert result.code in wanted, f"preparing `{command}` exited {result.code}:\n{result.output}"
        return result

    def _shell(
        self, command: str, subst: dict[str, str], answer: str | None, prompt: str | None, timeout: float
    ) -> Result:
        actual = command
        for placeholder, value in subst.items():
            actual = actual.replace(placeholder, value)
        shown = actual if actual == command else f"{actual}    (page: {command})"
        self.log.append(f"$ {shown}")
        print(f"$ {shown}")
        cwd_file, env_file = self._session / "cwd", self._session / "env"
        script = (
            f"{actual}\n__rc=$?\npwd > {shlex.quote(str(cwd_file))}\n"
            f"env -0 > {shlex.quote(str(env_file))}\nexit $__rc\n"
        )
        if answer is None:
            done = subprocess.run(
                ["bash", "-c", script],
                cwd=self.cwd,
                env=self.env,
                capture_output=True,
                text=True,
                stdin=subprocess.DEVNULL,
                timeout=timeout,
                check=False,
            )
            result = Result(actual, done.returncode, done.stdout, done.stderr)
        else:
            assert prompt is not None, "an answer needs the prompt to wait for"
            code, output = self._on_terminal(script, answer, prompt, timeout)
            result = Result(actual, code, output, "")
        print(result.output)
        if cwd_file.exists():
            self.cwd = Path(cwd_file.read_text().strip())
        if env_file.exists():
            pairs = (item.split("=", 1) for item in env_file.read_text().split("\0") if "=" in item)
            self.env = {key: value for key, value in pairs if key not in {"_", "SHLVL", "PWD", "OLDPWD"}}
        return result

    def _on_terminal(self, script: str, answer: str, prompt: str, timeout: float) -> tuple[int, str]:
        """Run ``script`` on a pseudo-terminal; type ``answer`` once ``prompt`` appears."""

        def become() -> None:
            os.chdir(self.cwd)
            os.execve("/bin/bash", ["bash", "-c", script], self.env)

        code, output, answered = exec_on_terminal(become, answer.encode(), prompt.encode(), timeout)
        text = output.replace("\r\n", "\n")
        assert answered, f"the prompt {prompt!r} never appeared:\n{text}"
        return code, text
