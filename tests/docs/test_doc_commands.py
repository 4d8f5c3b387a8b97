"""Every shell command shown in README.md and docs/**/*.md is run by a test, or excepted with a reason.

For each page with shell commands, the page's scenario (``tests/docs/scenarios/``) runs them for real,
in order, in a sandbox copy of the bundled example, with the installed ``rpkictl``, checking each exit
code. Afterwards the commands the page shows are compared with those the scenario ran plus the page's
entries in :data:`EXCEPTIONS`: a command that is neither fails the page, and so does an exception that
matches no command of its page (stale) or a command that is both run and excepted. A page with commands
and no scenario fails too, naming the commands.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.docs.doccommands import (
    DocCommand,
    Excepted,
    commands_in,
    commands_in_text,
    coverage_problems,
    doc_pages,
)
from tests.docs.sandbox import Sandbox
from tests.docs.scenarios import SCENARIOS, load_all
from tests.e2e.harness import INSTALL_HINT, find_tool
from tests.helpers import missing_tool

load_all()

# Commands a test cannot run as shown: (page, the command as the page shows it, why, what checks it).
EXCEPTIONS: list[Excepted] = [
    Excepted(
        "README.md",
        "scripts/test.sh",
        "runs the whole suite, this test included",
        ".ci/run runs exactly this command (TEST_COMMAND) in a fresh clone with env -i, and that run is "
        "CI's test run; tests/docs/test_fresh_machine.py runs it with a small selection",
    ),
    Excepted(
        "docs/getting-started.md",
        "python3 -m venv .venv",
        "makes a virtual environment in the checkout, for the next command to install into",
        "scripts/venv.sh runs the same two commands: tests/docs/test_fresh_machine.py's end-to-end test "
        "in a copy of the checkout, .ci/run in a fresh clone",
    ),
    Excepted(
        "docs/getting-started.md",
        ".venv/bin/python -m pip install -e .",
        "installs the package from the package index: a minute and the network",
        "scripts/venv.sh runs the same two commands: tests/docs/test_fresh_machine.py's end-to-end test "
        "in a copy of the checkout, .ci/run in a fresh clone",
    ),
    Excepted(
        "docs/getting-started.md",
        ". .venv/bin/activate",
        "needs the .venv of the two commands before it",
        "every scenario runs rpkictl from the environment under test, first on PATH as activate puts it",
    ),
    Excepted(
        "docs/getting-started.md",
        "apt-get install rpki-client fort-validator rsync",
        "installs system packages as root",
        ".ci/run installs these packages; the getting-started scenario needs them (a failure in CI)",
    ),
]

_PUBLICATION_SERVER = (
    "tests/serve/test_group_commit.py and tests/serve/test_abuse.py run the same server, group commit and "
    "a hundred concurrent clients"
)
_BENCHMARK = (
    "tests/docs/scenarios/performance.py runs the same script on the small scenario; "
    "tests/e2e/test_scale.py applies the large operator and has rpki-client and FORT check it"
)
EXCEPTIONS += [
    Excepted(
        "docs/performance.md",
        "python3 -m benchmarks.scale large",
        "signs over 3,000 objects: minutes of both cores, and its figures are only meaningful on an idle "
        "machine",
        _BENCHMARK,
    ),
    Excepted(
        "docs/performance.md",
        "python3 -m benchmarks.scale large-aspa",
        "signs over 4,000 objects: minutes of both cores, and its figures are only meaningful on an idle "
        "machine",
        "tests/docs/scenarios/performance.py runs the same script on the small scenario; "
        "tests/scale/test_aspa_scenario.py loads the scenario and checks its one-ASPA changes",
    ),
    Excepted(
        "docs/performance.md",
        "python3 -m benchmarks.scale registry --scale 0.05 --repeat 3",
        "creates a thousand CAs and signs nearly 10,000 objects: several minutes of both cores",
        _BENCHMARK,
    ),
    Excepted(
        "docs/performance.md",
        "python3 -m benchmarks.scale registry --scale 0.2 --repeat 3",
        "creates 4,000 CAs and signs about 40,000 objects: some 20 minutes of both cores",
        _BENCHMARK,
    ),
    Excepted(
        "docs/performance.md",
        "python3 -m benchmarks.scale registry --key-pool keys.bin --repeat 3",
        "creates 20,000 CAs and signs 380,000 objects with 20,000 keys made first: half an hour of both "
        "cores and 1.5 GB of memory",
        "tests/scale/test_keypool.py checks the key pool itself; the benchmark's other steps are the ones "
        "tests/docs/scenarios/performance.py runs",
    ),
    Excepted(
        "docs/performance.md",
        "python3 -m benchmarks.publication_floor",
        "writes 210,006 files and a 474 MB snapshot, some 800 MB of disk, for about a minute",
        "tests/docs/scenarios/performance.py runs it at the large operator's size; "
        "tests/scale/test_publication_floor.py checks what it does",
    ),
    Excepted(
        "docs/performance.md",
        "python3 -m benchmarks.rrdp_serial",
        "publishes eleven serials of a 474 MB snapshot, 1.5 GB of memory at its peak: over a minute",
        "tests/docs/scenarios/performance.py runs it at the large operator's size; "
        "tests/scale/test_rrdp_serial.py checks what it does",
    ),
    Excepted(
        "docs/performance.md",
        "python3 -m benchmarks.publication_server",
        "makes 1,000 publisher keys (a minute and a half of both cores), then loads a server for minutes",
        _PUBLICATION_SERVER,
    ),
    Excepted(
        "docs/performance.md",
        "python3 -m benchmarks.publication_server --publishers 100 --seconds 10 --scratch /tmp/pub",
        "a minute of both cores loading a server with publications, and its figures mean something only on "
        "an idle machine",
        _PUBLICATION_SERVER,
    ),
]

_CHILD_BENCHMARK = (
    "tests/upstream/test_child_of_rpkictl.py runs the same two installations (tests/upstream/child_world.py) "
    "through certification, publication and a no-op apply; tests/upstream/test_repository_messages.py "
    "checks how a large publication is split into messages"
)
EXCEPTIONS += [
    Excepted(
        "docs/performance.md",
        "python3 -m benchmarks.child_ca",
        "signs 5,000 ROAs (two to five minutes of both cores), and its figures mean something only on an "
        "idle machine",
        _CHILD_BENCHMARK,
    ),
    Excepted(
        "docs/performance.md",
        "python3 -m benchmarks.child_ca --roas 500 --repeat 5 --profile",
        "signs 500 ROAs and profiles a change: half a minute of both cores, figures for an idle machine",
        _CHILD_BENCHMARK,
    ),
]

_ROUTE_LEAKS_BENCHMARK = (
    "tests/plan/test_route_leaks.py checks the impact on paths worked out by hand and runs the benchmark "
    "script on a table of a few thousand paths"
)
EXCEPTIONS += [
    Excepted(
        "docs/performance.md",
        "python3 -m benchmarks.route_leaks",
        "generates and reads a table of 1,000,000 paths (half a minute of a core), and its figures mean "
        "something only on an idle machine",
        _ROUTE_LEAKS_BENCHMARK,
    ),
    Excepted(
        "docs/performance.md",
        "python3 -m benchmarks.route_leaks --change transit",
        "the same table with another change",
        _ROUTE_LEAKS_BENCHMARK,
    ),
    Excepted(
        "docs/performance.md",
        "python3 -m benchmarks.route_leaks --plan",
        "applies the bundled example, then plans over a table of 1,000,000 paths: a minute of a core and "
        "700 MB of memory, and its figures mean something only on an idle machine",
        "tests/plan/test_path_impact.py checks the plan's path impact worked out by hand and runs the "
        "benchmark script's --plan mode on a table of a few thousand paths",
    ),
]

_CHILD_VALIDATED = (
    "tests/e2e/test_child_under_external_parent.py has both generations of rpki-client and FORT validate a "
    "CA under an external parent from that parent's TAL through certification, shrink and losses"
)
EXCEPTIONS += [
    Excepted(
        "docs/under-a-registry.md",
        "sudo rpki-client -j -t /etc/tals/ripe.tal",
        "fetches a registry's real repository as root over the network",
        _CHILD_VALIDATED,
    ),
    Excepted(
        "docs/under-a-registry.md",
        "routinator validate -a 64500 -p 203.0.113.0/24",
        "routinator is not packaged in Debian 12, and it fetches every registry's repository",
        _CHILD_VALIDATED,
    ),
]

_SYSTEMD = "docs/systemd/ units: tests/docs/test_systemd_units.py runs systemd-analyze verify on each"
EXCEPTIONS += [
    Excepted(
        "docs/monitoring.md",
        "sudo install -m 0644 docs/systemd/rpki-reconcile.service docs/systemd/rpki-status.service "
        "docs/systemd/rpki-status.timer /etc/systemd/system/",
        "installs units into the host's systemd as root",
        _SYSTEMD,
    ),
    Excepted(
        "docs/monitoring.md", "sudo systemctl daemon-reload", "needs a running systemd as PID 1", _SYSTEMD
    ),
    Excepted(
        "docs/monitoring.md",
        "sudo systemctl enable --now rpki-reconcile.service rpki-status.timer",
        "needs a running systemd as PID 1",
        _SYSTEMD + "; the commands the units start are run by the monitoring scenario",
    ),
    Excepted(
        "docs/monitoring.md",
        "journalctl -u rpki-reconcile.service -f",
        "follows a host journal forever",
        "the loop's log lines are asserted by the monitoring scenario and tests/test_reconcile.py",
    ),
]

# Tools a scenario may need, and how to install them.
_INSTALL = {
    "rpki-client": INSTALL_HINT,
    "fort": INSTALL_HINT,
    "rsync": INSTALL_HINT,
    "git": "apt-get install git",
    "softhsm2-util": "apt-get install softhsm2",
    "promtool": "apt-get install prometheus",
}
SOFTHSM_MODULE = Path("/usr/lib/softhsm/libsofthsm2.so")


def _installed(tool: str) -> bool:
    if tool == "softhsm2-util":
        return shutil.which(tool) is not None and SOFTHSM_MODULE.is_file()
    return find_tool(tool) is not None


def _require(tools: tuple[str, ...]) -> None:
    """Fail in CI, skip elsewhere, when a tool a scenario needs is missing (as the e2e tests do)."""
    missing = [tool for tool in tools if not _installed(tool)]
    if not missing:
        return
    hints = sorted({_INSTALL.get(tool, f"install {tool}") for tool in missing})
    missing_tool(
        f"{', '.join(missing)} not installed (install with: {'; '.join(hints)})",
        "the documentation's commands",
    )


def _pages() -> list[object]:
    """Every page with shell commands; pages whose scenario needs validators or an HSM are e2e."""
    params: list[object] = []
    for page in doc_pages():
        if not commands_in(page):
            continue
        found = SCENARIOS.get(page)
        marks = [pytest.mark.e2e] if found and set(found.needs) - {"git"} else []
        params.append(pytest.param(page, marks=marks, id=page))
    return params


@pytest.mark.parametrize("page", _pages())
def test_page_commands_run(page: str, tmp_path: Path) -> None:
    commands = commands_in(page)
    exceptions = [e for e in EXCEPTIONS if e.page == page]
    excepted = {e.command for e in exceptions}
    found = SCENARIOS.get(page)
    if found is None:
        unrun = "\n  ".join(str(c) for c in commands if c.text not in excepted)
        assert not unrun, (
            f"{page} shows shell commands but no scenario runs them; add one in tests/docs/scenarios/ "
            f"(see its __init__.py) or list them in EXCEPTIONS with the reason:\n  {unrun}"
        )
        return
    _require(found.needs)
    root = tmp_path / "sandbox"
    root.mkdir()
    substitutions = {key: value.format(root=root) for key, value in found.substitutions}
    sandbox = Sandbox(page, root, commands, substitutions)
    found.run(sandbox)
    problems = coverage_problems(commands, sandbox.executed, exceptions)
    assert not problems, "\n".join(problems)


def test_every_exception_and_scenario_names_a_page_command() -> None:
    """Stale entries fail even for pages whose scenario is skipped here."""
    pages = set(doc_pages())
    for exception in EXCEPTIONS:
        assert exception.page in pages, f"EXCEPTIONS names {exception.page}, which does not exist"
        assert exception.reason and exception.checked_by
        shown = {c.text for c in commands_in(exception.page)}
        assert exception.command in shown, f"stale exception: {exception.page} has no {exception.command!r}"
    for page in SCENARIOS:
        assert page in pages, f"a scenario covers {page}, which does not exist"


# The extraction and the comparison themselves: the coverage check has to be able to fail.

_PAGE = """# A page

```sh
rpkictl validate state        # exit 0
rpkictl plan state --base origin/main \\
        --format markdown --out plan.json > plan.md

# a comment line
export TA_PIN='1#2'
```

```text
rpkictl not-a-command
```

```console
$ rpkictl check state
ok: nothing to do
```

- in a list:

  ```bash
  rpkictl tal state --out "published/ta.tal"   # the TAL
  ```
"""


def test_commands_are_read_from_shell_blocks_only() -> None:
    assert [(c.line, c.text) for c in commands_in_text("p.md", _PAGE)] == [
        (4, "rpkictl validate state"),
        (5, "rpkictl plan state --base origin/main --format markdown --out plan.json > plan.md"),
        (9, "export TA_PIN='1#2'"),
        (17, "rpkictl check state"),
        (24, 'rpkictl tal state --out "published/ta.tal"'),
    ]


def test_a_new_command_or_a_stale_exception_fails_the_page() -> None:
    commands = commands_in_text("p.md", _PAGE)
    texts = {c.text for c in commands}
    assert coverage_problems(commands, texts, []) == []
    new = DocCommand("p.md", 30, "rpkictl apply state --yes")
    problems = coverage_problems([*commands, new], texts, [])
    assert problems == [f"{new}: neither executed by the page's scenario nor listed in EXCEPTIONS"]
    excused = Excepted("p.md", new.text, "why", "what instead")
    assert coverage_problems([*commands, new], texts, [excused]) == []
    stale = Excepted("p.md", "rpkictl gone", "why", "what instead")
    assert coverage_problems(commands, texts, [stale]) == [
        "stale exception for p.md: 'rpkictl gone' is not a command of the page"
    ]
    twice = Excepted("p.md", "rpkictl validate state", "why", "what instead")
    assert "both executed and excepted" in coverage_problems(commands, texts, [twice])[0]


def test_a_scenario_can_only_run_what_its_page_shows(tmp_path: Path) -> None:
    sandbox = Sandbox("p.md", tmp_path, commands_in_text("p.md", _PAGE))
    with pytest.raises(AssertionError, match="shows no command 'rpkictl apply state --yes'"):
        sandbox.run("rpkictl apply state --yes")
    assert sandbox.executed == set()
    result = sandbox.run("rpkictl validate state")
    assert result.code == 0 and sandbox.executed == {"rpkictl validate state"}
    with pytest.raises(AssertionError, match="exited 2, expected \\[0\\]"):
        sandbox.run("rpkictl check state", expect=0)  # nothing is published yet: critical
