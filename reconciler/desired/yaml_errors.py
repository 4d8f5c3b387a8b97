"""Indentation mistakes in a YAML file, said in words and placed on the line the operator must change.

When a block of YAML does not line up, the parser reports what its grammar expected (``expected <block
end>, but found '<block sequence start>'``, ``found '?'``, ``mapping values are not allowed here``), often on
the line *after* the mistake, since only there does it notice. An operator editing a CA file at 3 a.m.
needs to hear "the key 'prefix' on line 12 is indented 6 spaces but the keys above it are at 4".

This module re-reads the lines of a file the parser refused, tracking the open blocks as YAML does
(a mapping's keys or a list's items all start at one column), and names the first line that breaks the
pattern: the key or list item, how far it is indented, and the siblings it should line up with. It only
explains: the loader calls it once parsing has failed, and uses its answer only when it is no later in the
file than where the parser stopped. Anything it does not model (multi-line quoted text, directives, several
documents) makes it give up, and the loader words the parser's own message instead.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Literal

Kind = Literal["key", "item", "complex", "text"]

#: A key with no space after its colon (``parent:online``): YAML reads the whole as one piece of text.
_NO_SPACE = re.compile(r"([A-Za-z_][\w.-]*):(?=[^\s/:])")
#: What may follow a block scalar indicator (``|``, ``>-``, ``|2``...) on its line.
_BLOCK_SCALAR = re.compile(r"[|>][0-9+-]*(\s+#.*)?$")
#: A value that is only an anchor and/or a tag: what follows on the next lines is its content.
_PROPERTIES_ONLY = re.compile(r"([&!]\S*\s*)+$")
_SHOWN = 44  # characters of a line's text quoted in a message


@dataclass(frozen=True)
class Explanation:
    """A mistake at a 1-based line and column, in words, with what to do about it."""

    line: int
    column: int
    message: str
    hint: str


class _BeyondReadingError(Exception):
    """Something this reading does not model; the parser's own message is used instead."""


@dataclass
class _Line:
    """One line's structure: what starts at ``column`` (0-based) on line ``number`` (0-based)."""

    number: int
    column: int
    kind: Kind
    name: str  # the key, or the text shown for an item or a line of text
    opens: bool = False  # nothing follows on the line: a nested block may start on the next one
    inline: bool = False  # a plain value follows on the line, which later deeper lines may continue
    block_scalar: bool = False  # ``|`` or ``>``: deeper lines that follow are text
    nested: _Line | None = None  # what follows an item's ``- `` on the same line
    flow_depth: int = 0  # brackets left open at the end of the line


@dataclass
class _Block:
    """An open mapping (``key``) or list (``item``) whose members start at ``column``."""

    column: int
    kind: Kind
    members: list[_Line] = field(default_factory=list)
    opener: _Line | None = None  # the line whose value this block is


def explain(text: str) -> Explanation | None:
    """The first indentation mistake in ``text``, or None if none is found (or the text is beyond what
    this reading models)."""
    try:
        return _Reader(text.splitlines()).run()
    except _BeyondReadingError:
        return None


#: The parser's grammar words, for the errors :func:`explain` cannot place, and what they mean.
_PARSER_WORDS = (
    ("found '<block sequence start>'", "this list item does not line up with the lines above it"),
    ("found '-'", "this list item does not line up with the lines above it"),
    ("found '<block mapping start>'", "this key does not line up with the lines above it"),
    ("found '?'", "this key does not line up with the lines above it"),
    (
        "mapping values are not allowed here",
        "YAML cannot read a key here: it is indented deeper than the key above it, or it is a value that"
        " contains ': '",
    ),
    ("could not find expected ':'", "this line is not a 'key: value' pair"),
    ("expected '<document start>'", "this line is indented less than the first line of the file"),
)


def words(problem: str) -> str | None:
    """The parser's ``problem`` in words, for the common ones; None for the rest."""
    for jargon, meaning in _PARSER_WORDS:
        if jargon in problem:
            return meaning
    return None


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


def _spaces(count: int) -> str:
    return "not indented" if count == 0 else f"indented {_plural(count, 'space')}"


def _indent_to(count: int) -> str:
    return "remove its indentation" if count == 0 else f"indent it by {_plural(count, 'space')}"


def _shown(text: str) -> str:
    return text if len(text) <= _SHOWN else text[: _SHOWN - 1] + "\u2026"


def _what(line: _Line) -> str:
    if line.kind == "key":
        return f"the key '{_shown(line.name)}'"
    if line.kind == "item":
        return f"the list item '{_shown(line.name)}'"
    return f"the line '{_shown(line.name)}'"


def _members(block: _Block) -> str:
    return "keys" if block.kind == "key" else "list items"


def _at(line: _Line) -> str:
    return f"line {line.number + 1}"


class _Reader:
    """Walks the lines once, keeping the stack of open blocks, and stops at the first misfit."""

    def __init__(self, lines: list[str]) -> None:
        self.lines = lines
        self.stack: list[_Block] = []
        self.previous: _Line | None = None
        self.closed: list[_Block] = []  # blocks the previous line closed by dedenting
        self.openers: list[tuple[_Line, _Line]] = []  # (opening line, first line inside it)

    # --- reading lines ----------------------------------------------------------------------------------

    def run(self) -> Explanation | None:
        skip_deeper_than: int | None = None  # inside a block scalar
        flow = 0
        for number, raw in enumerate(self.lines):
            content = raw.lstrip(" ")
            column = len(raw) - len(content)
            if not content.strip() or content.lstrip(" \t").startswith("#"):
                continue
            if content.startswith("\t"):
                if skip_deeper_than is None and not flow:
                    return self._tab(number, column)
                continue
            if skip_deeper_than is not None:
                if column > skip_deeper_than:
                    continue
                skip_deeper_than = None
            if flow:
                flow = _flow_depth(content, flow)
                continue
            if _document_marker(number, content):
                continue
            line = _parse(number, column, content)
            found = self._place(line)
            if found is not None:
                return found
            owner, last = line, line
            while last.nested is not None:
                owner, last = last, last.nested
            if last.block_scalar:
                # A block scalar's lines are deeper than its key, or than the item it is the value of.
                skip_deeper_than = last.column if last.kind == "key" else owner.column
            flow = last.flow_depth
        return None

    # --- the blocks -------------------------------------------------------------------------------------

    def _place(self, line: _Line) -> Explanation | None:
        """Fit ``line`` into the open blocks, or explain why it does not fit."""
        previous, self.previous = self.previous, line
        closed, self.closed = self.closed, []
        if line.kind == "complex":
            return Explanation(
                line.number + 1,
                line.column + 1,
                "a '?' starts a complex mapping key, which no desired-state file uses",
                "remove the '? ' and write the key as 'key: value'",
            )
        opener = _deepest(previous) if previous is not None else None
        if opener is not None and opener.opens:
            parent = self.stack[-1].column if self.stack else -1
            deeper = line.column > parent if opener.kind == "item" else line.column > opener.column
            beside = opener.kind == "key" and line.kind == "item" and line.column == opener.column
            if deeper or beside:
                if line.kind == "text":
                    return None  # a scalar value on its own line
                self.openers.append((opener, line))
                self._open(line, opener)
                return None
        if self.stack and line.column > self.stack[-1].column:
            if line.kind == "text" and previous is not None and _deepest(previous).inline:
                return None  # a plain value continued on the next line
            return self._too_deep(line, previous, closed)
        while self.stack and (self.stack[-1].column > line.column or _ends_beside(self.stack[-1], line)):
            self.closed.append(self.stack.pop())
        if not self.stack:
            if not self.closed:
                self._open(line, None)
                return None
            return self._below_first(line, self.closed[-1])
        top = self.stack[-1]
        if top.column < line.column:
            return self._between(line, self.closed[-1], top)
        if top.kind != line.kind:
            return self._wrong_kind(line, top)
        top.members.append(line)
        self._nest(line)
        return None

    def _open(self, line: _Line, opener: _Line | None) -> None:
        if line.kind == "text":
            raise _BeyondReadingError  # a file that is one scalar, or a value this reading cannot place
        block = _Block(line.column, line.kind, [line], opener)
        self.stack.append(block)
        self._nest(line)

    def _nest(self, line: _Line) -> None:
        """An item's ``- key: value`` or ``- - x`` opens blocks on the same line."""
        inner = line.nested
        while inner is not None and inner.kind in {"key", "item"}:
            self.stack.append(_Block(inner.column, inner.kind, [inner], line))
            line, inner = inner, inner.nested

    # --- what does not fit ------------------------------------------------------------------------------

    def _too_deep(self, line: _Line, previous: _Line | None, closed: list[_Block]) -> Explanation:
        """``line`` is deeper than the block it is in, and nothing above opened a new one."""
        top = self.stack[-1]
        # The line before dedented out of a block at this very column: that line is the odd one out.
        for block in closed:
            if block.column == line.column and block.kind == line.kind and previous is not None:
                return Explanation(
                    previous.number + 1,
                    previous.column + 1,
                    f"{_what(previous)} is {_spaces(previous.column)}, but the {_members(block)} around it"
                    f" on {_at(block.members[-1])} and {_at(line)} are {_spaces(line.column)}",
                    f"{_indent_to(line.column)} to line it up with them",
                )
        # A block of one member that is off the file's usual step, followed by a line that is on it.
        odd = self._odd_first(top, line)
        if odd is not None:
            return odd
        if line.kind == "text":
            return self._not_a_member(line, top)
        last = top.members[-1]
        return Explanation(
            line.number + 1,
            line.column + 1,
            f"{_what(line)} is {_spaces(line.column)}, more than the {_members(top)} above it:"
            f" {_what(last)} on {_at(last)} is {_spaces(top.column)}",
            f"{_indent_to(top.column)} to line it up with them, or put it under a key that ends with ':'",
        )

    def _between(self, line: _Line, inner: _Block, outer: _Block) -> Explanation:
        """``line`` dedented to a column between two open blocks."""
        odd = self._odd_first(inner, line)
        if odd is not None:
            return odd
        last, outer_last = inner.members[-1], outer.members[-1]
        return Explanation(
            line.number + 1,
            line.column + 1,
            f"{_what(line)} is {_spaces(line.column)}, which lines up with nothing above it: the"
            f" {_members(inner)} before it are {_spaces(inner.column)}, like {_what(last)} on {_at(last)}",
            f"{_indent_to(inner.column)} to line it up with them, or {_indent_to(outer.column)} if it"
            f" belongs with {_what(outer_last)} on {_at(outer_last)}",
        )

    def _odd_first(self, block: _Block, line: _Line) -> Explanation | None:
        """The first line under a key, when it is off the file's usual step and ``line``, its next
        sibling, is on it: that first line is the one to move."""
        if len(block.members) != 1 or block.opener is None or block.opener.kind != "key":
            return None
        if block.kind != line.kind:
            return None
        first, step = block.members[0], self._step(besides=block.opener)
        expected = block.opener.column + step
        if line.column != expected or first.column == expected:
            return None
        return Explanation(
            first.number + 1,
            first.column + 1,
            f"{_what(first)} is {_spaces(first.column)}, but {_what(line)} after it on {_at(line)}"
            f" is {_spaces(line.column)}",
            f"indent both by {_plural(expected, 'space')}, as this file indents each level by {step}",
        )

    def _below_first(self, line: _Line, root: _Block) -> Explanation:
        """``line`` is less indented than the file's first line."""
        first = root.members[0]
        if len(root.members) == 1:
            return Explanation(
                first.number + 1,
                first.column + 1,
                f"{_what(first)} is {_spaces(first.column)}, but {_what(line)} after it on {_at(line)}"
                f" is {_spaces(line.column)}",
                "start the file's top-level keys at the beginning of the line",
            )
        return Explanation(
            line.number + 1,
            line.column + 1,
            f"{_what(line)} is {_spaces(line.column)}, less than the file's first"
            f" {_members(root)[:-1]} on {_at(first)}: it is {_spaces(root.column)}",
            f"{_indent_to(root.column)} to line it up with it",
        )

    def _wrong_kind(self, line: _Line, top: _Block) -> Explanation:
        """``line`` is at the column of a block whose members are of another kind."""
        last = top.members[-1]
        outer = self.stack[-2] if len(self.stack) > 1 else None
        closed = self.closed[-1] if self.closed else None
        items = [block for block in self.closed if block.kind == "item"]
        if line.kind == "item" and items:
            return Explanation(
                line.number + 1,
                line.column + 1,
                f"{_what(line)} is {_spaces(line.column)}, but the list items before it are"
                f" {_spaces(items[-1].column)}, like {_what(items[-1].members[-1])}"
                f" on {_at(items[-1].members[-1])}",
                f"{_indent_to(items[-1].column)} to line it up with them",
            )
        if line.kind == "item" and outer is not None and outer.kind == "item":
            return Explanation(
                line.number + 1,
                line.column + 1,
                f"{_what(line)} is {_spaces(line.column)}, as far as the keys of the item above it"
                f", {_what(last)} on {_at(last)}, but the list's items are {_spaces(outer.column)},"
                f" like {_what(outer.members[-1])} on {_at(outer.members[-1])}",
                f"indent its '-' by {_plural(outer.column, 'space')} to line it up with them",
            )
        if line.kind == "item":
            return Explanation(
                line.number + 1,
                line.column + 1,
                f"{_what(line)} starts with '- ', but the lines at its indentation above it are keys,"
                f" like {_what(last)} on {_at(last)}",
                "remove the '- ' to make it a key like them, or indent the list under a key ending with ':'",
            )
        if line.kind == "key" and closed is not None and closed.kind == "key":
            return Explanation(
                line.number + 1,
                line.column + 1,
                f"{_what(line)} is {_spaces(line.column)}, as far as the '-' of the list item above it"
                f" on {_at(last)}, but that item's keys are {_spaces(closed.column)},"
                f" like {_what(closed.members[-1])} on {_at(closed.members[-1])}",
                f"{_indent_to(closed.column)} to line it up with them, or start a new item with '- '",
            )
        if line.kind == "key":
            return Explanation(
                line.number + 1,
                line.column + 1,
                f"{_what(line)} is at the indentation of the list items above it,"
                f" like {_what(last)} on {_at(last)}",
                "indent it under an item, or start it with '- ' to make it an item",
            )
        return self._not_a_member(line, top)

    def _not_a_member(self, line: _Line, top: _Block) -> Explanation:
        """``line`` is text where a key or a list item should be."""
        missing = _NO_SPACE.match(line.name)
        if missing is not None:
            key = missing.group(1)
            value = line.name[missing.end() :]
            return Explanation(
                line.number + 1,
                line.column + missing.end(),
                f"there is no space after the colon of '{key}:', so YAML reads '{line.name}' as text,"
                f" not as the key '{key}'",
                f"write '{key}: {value}'",
            )
        last = top.members[-1]
        wanted = "a 'key: value' pair" if top.kind == "key" else "a list item starting with '- '"
        return Explanation(
            line.number + 1,
            line.column + 1,
            f"{_what(line)} is not {wanted} like {_what(last)} on {_at(last)}",
            "add the missing 'key:' or '- ', or join it to the line above",
        )

    def _tab(self, number: int, column: int) -> Explanation:
        """A tab in a line's indentation; the hint says how many spaces would line it up."""
        content = self.lines[number].lstrip(" \t")
        line = _parse(number, column, content)
        opener = _deepest(self.previous) if self.previous is not None else None
        if opener is not None and opener.opens:
            count = opener.column + self._step()
            hint = f"replace it with spaces: {count}, to nest it under {_what(opener)} on {_at(opener)}"
        elif self.stack:
            top = self.stack[-1]
            hint = (
                f"replace it with spaces: {top.column}, to line it up with {_what(top.members[-1])}"
                f" on {_at(top.members[-1])}"
            )
        else:
            hint = "replace it with spaces"
        return Explanation(
            number + 1,
            column + 1,
            f"{_what(line)} is indented with a tab, and YAML does not allow tabs in indentation",
            hint,
        )

    def _step(self, besides: _Line | None = None) -> int:
        """How far this file indents a nested block under its key, as most of its other blocks do (2 if
        none): ``besides``, the block in question, does not count."""
        steps = Counter(
            inner.column - opener.column
            for opener, inner in self.openers
            if opener.kind == "key" and inner.column > opener.column and opener is not besides
        )
        return steps.most_common(1)[0][0] if steps else 2


def _document_marker(number: int, content: str) -> bool:
    """A ``---`` opening the file is skipped; directives and other markers are beyond this reading."""
    if number == 0 and content.rstrip() == "---":
        return True
    if content.startswith(("%", "---", "...")):
        raise _BeyondReadingError
    return False


def _ends_beside(block: _Block, line: _Line) -> bool:
    """A key at the column of a list written beside its key (``roas:`` then ``- ...`` at the same
    indentation) ends that list."""
    return (
        line.kind == "key"
        and block.kind == "item"
        and block.column == line.column
        and block.opener is not None
        and block.opener.column == block.column
    )


def _deepest(line: _Line) -> _Line:
    while line.nested is not None:
        line = line.nested
    return line


def _parse(number: int, column: int, content: str) -> _Line:
    """What starts at ``column``: a list item, a ``?`` key, a ``key:`` or text."""
    content = _strip_comment(content).rstrip()
    if not content:
        raise _BeyondReadingError
    if content[0] in "&*!%@`":
        raise _BeyondReadingError  # anchors, aliases and tags before a key, or reserved characters
    if content == "-" or content.startswith("- "):
        rest = content[1:].lstrip(" ")
        item = _Line(number, column, "item", f"- {rest}" if rest else "-")
        if not rest:
            item.opens = True
            return item
        item.nested = _parse(number, column + len(content) - len(rest), rest)
        return item
    if content == "?" or content.startswith("? "):
        return _Line(number, column, "complex", content)
    colon = _key_end(content)
    if colon is None:
        return _value(_Line(number, column, "text", content), content)
    key = content[:colon].strip().strip("\"'")
    value = content[colon + 1 :].strip()
    line = _Line(number, column, "key", key)
    if not value or _PROPERTIES_ONLY.fullmatch(value):
        line.opens = True
        return line
    return _value(line, value)


def _value(line: _Line, value: str) -> _Line:
    """Note what ``value`` (the rest of the line) leaves open for the next lines."""
    if _BLOCK_SCALAR.match(value):
        line.block_scalar = True
    elif value[0] in "[{":
        line.flow_depth = _flow_depth(value, 0)
    elif value[0] in "\"'":
        if _closing_quote(value, 0) is None:
            raise _BeyondReadingError  # quoted text over several lines
    else:
        line.inline = True
    return line


def _key_end(content: str) -> int | None:
    """Where the colon that ends a block key is: ``: `` or a final ``:``, outside quotes and brackets."""
    if content[0] in "[{|>":
        return None
    index = 0
    if content[0] in "\"'":
        end = _closing_quote(content, 0)
        if end is None:
            raise _BeyondReadingError
        index = end + 1
    while index < len(content):
        char = content[index]
        if char == ":" and (index + 1 == len(content) or content[index + 1] in " \t"):
            return index
        index += 1
    return None


def _closing_quote(text: str, start: int) -> int | None:
    """Index of the quote closing the one at ``start``, or None if it is not closed on this line."""
    quote = text[start]
    index = start + 1
    while index < len(text):
        char = text[index]
        if quote == '"' and char == "\\":
            index += 2
            continue
        if char == quote:
            if quote == "'" and index + 1 < len(text) and text[index + 1] == "'":
                index += 2
                continue
            return index
        index += 1
    return None


def _flow_depth(text: str, depth: int) -> int:
    """Brackets still open after ``text``, starting from ``depth`` open ones."""
    index = 0
    while index < len(text):
        char = text[index]
        if char in "\"'":
            end = _closing_quote(text, index)
            if end is None:
                raise _BeyondReadingError
            index = end
        elif char == "#" and (index == 0 or text[index - 1] in " \t"):
            break
        elif char in "[{":
            depth += 1
        elif char in "]}":
            depth -= 1
        index += 1
    return max(depth, 0)


def _strip_comment(content: str) -> str:
    """``content`` without a trailing ``# comment`` (a ``#`` after a space, outside quotes)."""
    index = 0
    while index < len(content):
        char = content[index]
        if char in "\"'" and (index == 0 or content[index - 1] in " \t[{,:-?"):
            end = _closing_quote(content, index)
            if end is None:
                return content
            index = end
        elif char == "#" and (index == 0 or content[index - 1] in " \t"):
            return content[:index]
        index += 1
    return content
