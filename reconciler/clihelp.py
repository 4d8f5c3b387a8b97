"""``rpkictl --help`` as an operator reads it: what a value is (TIME, DURATION, FILE), not the Python type
that typer would print beside every option (``<str>``, ``<list[str]>``), nothing beside a flag
(``<bool>``, which suggests that ``--yes true`` is the way to write it), and arguments named as the
README names them (``rpkictl plan [REPO]``)."""

from __future__ import annotations

from typing import Any

import typer

#: Both spellings of help, for every command.
HELP_OPTION_NAMES = ["-h", "--help"]

#: What typer would show for a value with no metavar of its own, and what to show instead.
PLAIN = {
    "<str>": "TEXT",
    "<list[str]>": "TEXT",
    "<int>": "N",
    "<int range>": "N",
    "<float>": "NUMBER",
    "<path>": "PATH",
    "<file>": "FILE",
    "<directory>": "DIR",
}


def _no_type(*_args: Any, **_kwargs: Any) -> None:
    """An argument's type column: empty (its name and help say what it is)."""


def tidy(command: Any) -> Any:
    """Give every option of ``command`` and its subcommands (``--help`` included, which Click makes on
    first use and then keeps) a plain metavar; returns ``command``."""
    context = typer.Context(command, info_name=command.name, help_option_names=HELP_OPTION_NAMES)
    for param in command.get_params(context):
        if not any(o.startswith("-") for o in param.opts):  # an argument: REPO, as the README writes it
            param.metavar = param.metavar or param.name.upper()
            param.display_type_rich = _no_type
        elif getattr(param, "is_flag", False):
            param.metavar = ""
        elif param.metavar is None:
            shown = param.display_type(context)
            param.metavar = PLAIN.get(shown, shown.strip("<>"))
    for sub in getattr(command, "commands", {}).values():
        tidy(sub)
    return command
