"""A failure as machines read it: a JSON error document, and GitHub Actions ``::error`` annotations.

``rpkictl plan --format json`` promises JSON on stdout, so a broken desired state must not leave a CI
step parsing an empty stdout: it gets ``{"error": ..., "diagnostics": [...]}`` instead, each diagnostic
with its file, line, column, message and hint. In GitHub Actions each diagnostic also becomes a
workflow command, which the runner turns into an annotation on that line of the pull request's diff.

Paths are relative to the repository root (``GITHUB_WORKSPACE`` in Actions, else the Git work tree
holding the desired state), because that is how GitHub names the files of a diff. Messages and hints
are already cleaned of key material by :class:`~reconciler.diagnostics.Diagnostic`; the overall
message is cleaned here the same way. Nothing here prints: the CLI writes what these functions return.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from reconciler.diagnostics import Diagnostic, sanitise

__all__ = [
    "error_document",
    "error_json",
    "in_github_actions",
    "repository_root",
    "workflow_commands",
]


def in_github_actions(environ: Mapping[str, str] | None = None) -> bool:
    """True in a GitHub Actions job (the runner sets ``GITHUB_ACTIONS=true``)."""
    return (os.environ if environ is None else environ).get("GITHUB_ACTIONS") == "true"


def repository_root(start: Path, environ: Mapping[str, str] | None = None) -> Path:
    """The directory diagnostics' paths are shown relative to: ``GITHUB_WORKSPACE`` when set, else the
    nearest directory at or above ``start`` holding ``.git``, else the current directory."""
    env = os.environ if environ is None else environ
    workspace = env.get("GITHUB_WORKSPACE")
    if workspace:
        return Path(workspace).resolve()
    here = (start if start.is_absolute() else Path.cwd() / start).resolve()
    for directory in (here, *here.parents):
        if (directory / ".git").exists():
            return directory
    return Path.cwd().resolve()


def _relative(file: Path, root: Path) -> str:
    """``file`` relative to ``root`` when it lies below it; a relative path is taken as already relative
    to the repository (the base revision's files, which exist only in Git); else absolute."""
    if not file.is_absolute():
        return file.as_posix()
    resolved = file.resolve()
    return resolved.relative_to(root).as_posix() if resolved.is_relative_to(root) else resolved.as_posix()


def _clean(message: str) -> str:
    """The overall message cleaned line by line, so that a multi-line message keeps its lines."""
    return "\n".join(sanitise(line) for line in message.splitlines())


def error_document(message: str, diagnostics: Sequence[Diagnostic], root: Path) -> dict[str, Any]:
    """``{"error": message, "diagnostics": [{file, line, column, message, hint}, ...]}``."""
    return {
        "error": _clean(message),
        "diagnostics": [
            {
                "file": _relative(d.file, root),
                "line": d.line,
                "column": d.column,
                "message": d.message,
                "hint": d.hint,
            }
            for d in diagnostics
        ],
    }


def error_json(message: str, diagnostics: Sequence[Diagnostic], root: Path) -> str:
    """The error document as the text written to stdout (indented, one trailing newline)."""
    return json.dumps(error_document(message, diagnostics, root), indent=2, ensure_ascii=False) + "\n"


def _escape_data(text: str) -> str:
    """A workflow command's message: ``%``, CR and LF would end or garble the command."""
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    """A workflow command's property value: as data, and ``:`` and ``,`` would end the property."""
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")


def _command(message: str, properties: Mapping[str, str]) -> str:
    shown = ",".join(f"{key}={_escape_property(value)}" for key, value in properties.items())
    return f"::error{' ' + shown if shown else ''}::{_escape_data(message)}"


def workflow_commands(message: str, diagnostics: Sequence[Diagnostic], root: Path) -> list[str]:
    """One ``::error file=...,line=...,col=...::message`` line per diagnostic, or, when the failure has
    no place in a file, one ``::error::message`` line."""
    if not diagnostics:
        return [_command(_clean(message), {"title": "rpkictl"})]
    commands = []
    for d in diagnostics:
        text = f"{d.message} ({d.hint})" if d.hint else d.message
        properties = {
            "file": _relative(d.file, root),
            "line": str(d.line),
            "col": str(d.column),
            "title": "rpkictl",
        }
        commands.append(_command(text, properties))
    return commands
