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

#: What a diagnostic may quote of a value the operator wrote: enough to recognise it, never a whole file.
EXCERPT_CHARACTERS = 40
#: The longest message or hint shown; the rest is cut. Lists of names in a large registry stay readable.
TEXT_CHARACTERS = 1000

#: A PEM block, or what is left of one after its end was cut off.
_PEM = re.compile(r"-----BEGIN[^\n]{0,80}?-----.*?(?:-----END[^\n]{0,80}?-----|\Z)", re.DOTALL)
#: A run of base64 long enough to be key material (a 2048-bit key's PEM lines are 64 characters).
_BASE64 = re.compile(r"[A-Za-z0-9+/]{40,}={0,2}")
#: Characters that a terminal, a log viewer or a review page acts on rather than shows: C0 and C1
#: controls, and the bidirectional overrides that make text read differently from what it holds.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")
_HIDDEN_PEM = "[PEM block hidden]"
_HIDDEN_BASE64 = "[base64 hidden]"


def _looks_like_key(run: str) -> bool:
    """Base64 of random bytes mixes upper case, lower case and digits; hex digests, key identifiers and
    words do not, so they stay visible."""
    return any(c.isupper() for c in run) and any(c.islower() for c in run) and any(c.isdigit() for c in run)


def _hide_base64(match: re.Match[str]) -> str:
    return _HIDDEN_BASE64 if _looks_like_key(match.group()) else match.group()


def _escape_control(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def sanitise(text: str, limit: int = TEXT_CHARACTERS) -> str:
    """``text`` safe to show anywhere a diagnostic goes (a terminal, CI logs, a pull-request comment):
    PEM blocks and long base64 are hidden, control characters escaped, and the whole cut to ``limit``.

    A message may quote what a file holds, and the file may not be what its name says: this is the one
    place that makes sure no key material is ever echoed, whoever wrote the message.
    """
    text = _CONTROL.sub(_escape_control, _hide_keys(text))
    if len(text) > limit:
        text = text[: limit - 1] + "\u2026"
    return text


def _hide_keys(text: str) -> str:
    return _BASE64.sub(_hide_base64, _PEM.sub(_HIDDEN_PEM, text))


def excerpt(value: str, limit: int = EXCERPT_CHARACTERS) -> str:
    """A value the operator wrote, quoted as ``repr`` quotes it (control characters escaped), with key
    material hidden and cut to about ``limit`` characters: a message must let them find the value, not
    reproduce it."""
    shown = repr(_hide_keys(value))
    if len(shown) <= limit + 2:
        return shown
    return f"{shown[:limit]}\u2026{shown[0]} ({len(value)} characters)"


def display_path(path: Path) -> str:
    """Show ``path`` relative to the current directory when it lies below it, else absolutely.

    Relative paths keep messages short and clickable in a terminal; a path outside the current
    directory is shown whole rather than as a confusing ``../../..`` chain.
    """
    absolute = path if path.is_absolute() else Path.cwd() / path
    try:
        shown = str(absolute.relative_to(Path.cwd()))
    except ValueError:
        shown = str(absolute)
    return _CONTROL.sub(_escape_control, shown)  # a file's name is input too


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

    def __post_init__(self) -> None:
        # Every diagnostic is sanitised as it is made, so that no caller can echo key material.
        object.__setattr__(self, "message", sanitise(self.message))
        if self.hint is not None:
            object.__setattr__(self, "hint", sanitise(self.hint))

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
