"""One scenario per documentation page: it walks the page's shell commands in order, in one sandbox.

To cover a new page, add a module here (every module of this package is imported) with a function
decorated ``@scenario("docs/<page>.md")``. It receives a :class:`~tests.docs.sandbox.Sandbox` and calls
``sandbox.run("<command exactly as the page shows it>", expect=<exit code>)`` for each command, with
``sandbox.prepare(...)`` or Python in between to set up what the page assumes (an earlier apply, an
edited ROA, a moved clock). Commands that cannot run in a test go to ``EXCEPTIONS`` in
``tests/docs/test_doc_commands.py`` with the reason and what checks them instead.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass

from tests.docs.sandbox import Sandbox

ScenarioFunction = Callable[[Sandbox], None]


@dataclass(frozen=True)
class Scenario:
    page: str
    run: ScenarioFunction
    needs: tuple[str, ...]  # tools that must be installed: a failure in CI, a skip elsewhere
    substitutions: tuple[tuple[str, str], ...]  # placeholder -> what replaces it (sandbox paths: {root})


SCENARIOS: dict[str, Scenario] = {}


def scenario(
    page: str, *, needs: tuple[str, ...] = (), substitutions: dict[str, str] | None = None
) -> Callable[[ScenarioFunction], ScenarioFunction]:
    """Register ``function`` as the scenario of ``page``. ``substitutions`` apply to every command of the
    page (``{root}`` in a value is the sandbox directory); a scenario can pass more per command."""

    def register(function: ScenarioFunction) -> ScenarioFunction:
        assert page not in SCENARIOS, f"two scenarios for {page}"
        SCENARIOS[page] = Scenario(page, function, needs, tuple((substitutions or {}).items()))
        return function

    return register


def load_all() -> dict[str, Scenario]:
    for module in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{module.name}")
    return SCENARIOS
