"""The shell commands the operator's documentation shows, read from its Markdown.

A command is a line of a fenced code block whose language is one of :data:`SHELL_LANGUAGES`, after
joining backslash continuations; blank lines and comment lines are not commands, and a trailing comment
(``rpkictl plan state   # exit 2: changes``) is not part of one. In a ``console`` block only the lines
after a ``$`` prompt are commands (the rest is output).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SHELL_LANGUAGES = frozenset({"sh", "bash", "console", "shell"})
_FENCE = re.compile(r"^(?P<indent>\s*)(?P<fence>`{3,}|~{3,})\s*(?P<info>[^`\s]*)")


@dataclass(frozen=True, order=True)
class DocCommand:
    """One command as the page shows it: ``text`` has continuations joined and the trailing comment cut."""

    page: str  # relative to the project root, e.g. "docs/runbook.md"
    line: int  # 1-based line of the command's first line
    text: str

    def __str__(self) -> str:
        return f"{self.page}:{self.line}: {self.text}"


def doc_pages(root: Path = ROOT) -> list[str]:
    """README.md and every Markdown page under docs/, relative to ``root``."""
    pages = [root / "README.md", *sorted((root / "docs").rglob("*.md"))]
    return [page.relative_to(root).as_posix() for page in pages if page.is_file()]


def strip_comment(line: str) -> str:
    """``line`` without a trailing shell comment: a ``#`` outside quotes that starts a word."""
    quote = ""
    escaped = False
    for i, char in enumerate(line):
        if escaped:
            escaped = False
        elif char == "\\" and quote != "'":
            escaped = True
        elif quote:
            quote = "" if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char == "#" and (i == 0 or line[i - 1].isspace()):
            return line[:i].rstrip()
    return line.rstrip()


def _block_commands(lines: list[tuple[int, str]], console: bool) -> list[tuple[int, str]]:
    """The commands of one shell block: (first line number, joined text)."""
    commands: list[tuple[int, str]] = []
    pending: list[str] = []
    start = 0
    for number, raw in lines:
        line = raw.strip()
        if not pending:
            if console:
                if not line.startswith("$"):
                    continue  # output
                line = line[1:].strip()
            if not line or line.startswith("#"):
                continue
            start = number
        if line.endswith("\\"):
            pending.append(line[:-1].strip())
            continue
        pending.append(line)
        text = strip_comment(" ".join(part for part in pending if part))
        pending = []
        if text:
            commands.append((start, text))
    if pending:
        commands.append((start, strip_comment(" ".join(pending))))
    return commands


def commands_in_text(page: str, text: str) -> list[DocCommand]:
    """Every command of every shell code block of one Markdown page, in order."""
    found: list[DocCommand] = []
    fence = ""
    language = ""
    block: list[tuple[int, str]] = []
    for number, line in enumerate(text.splitlines(), start=1):
        match = _FENCE.match(line)
        if not fence:
            if match:
                fence, language, block = match["fence"], match["info"].lower(), []
            continue
        if match and match["fence"].startswith(fence) and not match["info"]:
            if language in SHELL_LANGUAGES:
                found += [DocCommand(page, n, t) for n, t in _block_commands(block, language == "console")]
            fence = ""
            continue
        block.append((number, line))
    return found


def commands_in(page: str, root: Path = ROOT) -> list[DocCommand]:
    return commands_in_text(page, (root / page).read_text(encoding="utf-8"))


@dataclass(frozen=True)
class Excepted:
    """A doc command that no scenario runs: why not, and what checks it instead."""

    page: str
    command: str
    reason: str
    checked_by: str


def coverage_problems(
    commands: list[DocCommand], executed: set[str], exceptions: list[Excepted]
) -> list[str]:
    """What is wrong with one page's coverage: commands neither executed nor excepted, exceptions that
    match no command of the page (stale), and commands both executed and excepted."""
    shown = {command.text for command in commands}
    excepted = {exception.command for exception in exceptions}
    problems = [
        f"{command}: neither executed by the page's scenario nor listed in EXCEPTIONS"
        for command in commands
        if command.text not in executed and command.text not in excepted
    ]
    problems += [
        f"stale exception for {exception.page}: {exception.command!r} is not a command of the page"
        for exception in exceptions
        if exception.command not in shown
    ]
    problems += [
        f"{command}: both executed and excepted; remove the exception"
        for command in commands
        if command.text in executed and command.text in excepted
    ]
    return problems
