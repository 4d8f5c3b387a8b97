"""Problems found in user input, each pinned to a file, line and column.

The loader collects every problem it can find before it gives up, so that an operator fixes a broken
change in one round instead of one error per run. Each problem is a :class:`Diagnostic`; the whole batch
travels in one :class:`DesiredStateError`. The text form is the ``file:line:col: message`` convention that
editors, CI logs and ``grep`` already understand.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

_TRAILING_HINT = re.compile(r"^(?P<message>.*?)\s*\((?P<hint>[^()]*)\)$", re.DOTALL)


def display_path(path: Path) -> str:
    """Show ``path`` relative to the current directory when it lies below it, else absolutely.

    Relative paths keep messages short and clickable in a terminal; a path outside the current
    directory is shown whole rather than as a confusing ``../../..`` chain.
    """
    absolute = path if path.is_absolute() else Path.cwd() / path
    try:
        return str(absolute.relative_to(Path.cwd()))
    except ValueError:
        return str(absolute)


def split_hint(text: str) -> tuple[str, str | None]:
    """Split ``"message (hint)"`` into its parts, so messages from other modules format like ours."""
    match = _TRAILING_HINT.match(text)
    if match is None or not match.group("message"):
        return text, None
    return match.group("message"), match.group("hint")


@dataclass(frozen=True)
class Diagnostic:
    """One problem in one place. ``line`` and ``column`` are 1-based, like editors count."""

    file: Path
    line: int
    column: int
    message: str
    hint: str | None = None

    def __str__(self) -> str:
        text = f"{display_path(self.file)}:{self.line}:{self.column}: {self.message}"
        return f"{text} ({self.hint})" if self.hint else text

    def sort_key(self) -> tuple[str, int, int, str]:
        """Order by place, so a report reads top to bottom through each file."""
        return (str(self.file), self.line, self.column, self.message)


class DesiredStateError(Exception):
    """The desired state cannot be used; ``diagnostics`` lists every problem found, in file order."""

    diagnostics: list[Diagnostic]

    def __init__(self, diagnostics: Iterable[Diagnostic]) -> None:
        unique = sorted(set(diagnostics), key=Diagnostic.sort_key)
        self.diagnostics = unique
        super().__init__(str(self))

    def __str__(self) -> str:
        return "\n".join(str(d) for d in self.diagnostics)
