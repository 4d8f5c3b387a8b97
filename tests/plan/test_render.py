"""What a reviewer reads: ``rpkictl plan --format text`` and ``--format markdown``, pinned by golden files.

Each scenario runs the real CLI (a subprocess, stdin from /dev/null and stdout a pipe, so no colour) on a
scratch copy of the bundled example at a fixed ``--now`` and compares its output, normalised, with
``tests/plan/golden/<scenario>.txt`` and ``<scenario>.md``:

* ``first-plan``: the first plan of the bundled example, with ``--announcements state/announcements.txt``;
* ``change``: after applying it, one ROA removed and another's max length lowered (26 -> 25), with the
  announcements, whose two /26 routes this breaks (the ``route-invalid`` gate);
* ``ca-empty``: after applying, every ROA of ``example-isp`` removed (the ``ca-empty`` gate);
* ``ca-revoke``: after applying, the ``example-isp`` CA removed (the ``ca-revoke`` gate).

Normalised, because legitimately random: the temporary directory (``<tmp>``), 40-hex key identifiers in
manifest and CRL names (``<key-1>``...), revoked serial numbers (``<serial-1>``...) and the 12-hex plan id
prefix (``<plan-id>``). Placeholders are numbered by first appearance, so the golden files still show which
names are the same key and that each revoked serial is distinct. Gate hashes and approval tokens are kept
as they are: they hash the flagged VRP and route strings, so any change in how gates are hashed shows.

After an intended change of wording or layout, rewrite the golden files instead of comparing with::

    UPDATE_GOLDEN=1 python -m pytest tests/plan/test_render.py

and review ``git diff tests/plan/golden/`` as a reviewer of a plan would.

The other tests here check that the text output carries no ANSI escapes when it is not written to a
terminal; ``test_markdown.py`` holds the comment's layout and its limit.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from reconciler.plan import document
from reconciler.plan.gitcontext import git_info
from reconciler.plan.render import markdown, text
from tests.helpers import T0, Scratch, scratch_copy

GOLDEN = Path(__file__).resolve().parent / "golden"
UPDATE = os.environ.get("UPDATE_GOLDEN") == "1"
ISP = "cas/members/example-isp.yaml"
FIRST_NOW = "2026-11-23T12:00:00Z"  # T0: the first plan, and the time of the apply the others follow
LATER_NOW = "2026-11-23T13:00:00Z"  # an hour after the apply: nothing routine is due yet

ANSI = re.compile(r"\x1b\[")
WITHDRAWAL = re.compile(r"  - withdraw   file |\| - withdraw \| `file ")  # text, Markdown
# Environment variables that would make rich colour a pipe, or make rpkictl write GitHub step outputs.
COLOUR_FORCING = ("FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE", "CLICOLOR_FORCE", "NO_COLOR")


def _environment(**extra: str) -> dict[str, str]:
    """The caller's environment minus what forces colour or writes step outputs; a colour terminal type."""
    env = {k: v for k, v in os.environ.items() if k not in (*COLOUR_FORCING, "GITHUB_OUTPUT")}
    env.update(TERM="xterm-256color", PYTHONIOENCODING="utf-8", COLUMNS="80", **extra)
    return env


def rpkictl(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """rpkictl as CI runs it: a real process, stdin from /dev/null, stdout and stderr to pipes."""
    return subprocess.run(
        [sys.executable, "-m", "reconciler", *args],
        capture_output=True,
        text=True,
        encoding="utf-8",
        cwd=cwd,
        env=env if env is not None else _environment(),
        timeout=120,
        stdin=subprocess.DEVNULL,
        check=False,
    )


def _numbered(pattern: str, label: str, output: str, flags: int = 0) -> str:
    """Replace each distinct ``value`` group of ``pattern`` with ``<label-N>``, N by first appearance."""
    seen: dict[str, str] = {}

    def placeholder(match: re.Match[str]) -> str:
        name = seen.setdefault(match.group("value").lower(), f"<{label}-{len(seen) + 1}>")
        start, end = match.start("value") - match.start(), match.end("value") - match.start()
        return match.group(0)[:start] + name + match.group(0)[end:]

    return re.sub(pattern, placeholder, output, flags=flags)


def _sort_withdrawals(output: str) -> str:
    """Sort each run of withdrawal lines: they come in path order, and a CA's manifest and CRL are named
    after its random key, so they sort before or after its ROAs by chance."""
    lines: list[str] = []
    run: list[str] = []
    for line in output.split("\n"):
        if WITHDRAWAL.match(line):
            run.append(line)
            continue
        lines += [*sorted(run), line]
        run = []
    return "\n".join([*lines, *sorted(run)])


def normalise(output: str, root: Path) -> str:
    """The output with what legitimately differs between runs replaced by stable placeholders."""
    for path in sorted({str(root.resolve()), str(root)}, key=len, reverse=True):
        output = output.replace(path, "<tmp>")
    output = _numbered(r"serial (?P<value>[0-9a-f]+)\b", "serial", output)
    output = _numbered(r"\b(?P<value>[0-9a-f]{40})\b", "key", output, re.IGNORECASE)
    output = re.sub(r"(RPKI plan |plan `)[0-9a-f]{12}\b", r"\1<plan-id>", output)
    return _sort_withdrawals(output)


def _applied(scratch: Scratch) -> None:
    assert scratch.apply(T0) is not None


def _change(scratch: Scratch) -> None:
    _applied(scratch)
    scratch.edit(ISP, "  - {asn: AS0, prefix: 192.0.2.128/25}\n", "")
    scratch.edit(ISP, "max_length: 26", "max_length: 25")


def _empty(scratch: Scratch) -> None:
    _applied(scratch)
    path = scratch.repo / ISP
    content = path.read_text()
    path.write_text(content[: content.index("roas:")])


def _ca_removed(scratch: Scratch) -> None:
    _applied(scratch)
    (scratch.repo / ISP).unlink()


@dataclass(frozen=True)
class Scenario:
    name: str
    prepare: Callable[[Scratch], None]
    now: str
    announcements: bool
    exit_code: int  # 2 changes, 3 changes that need approval


SCENARIOS = [
    Scenario("first-plan", lambda scratch: None, FIRST_NOW, announcements=True, exit_code=2),
    Scenario("change", _change, LATER_NOW, announcements=True, exit_code=3),
    Scenario("ca-empty", _empty, LATER_NOW, announcements=False, exit_code=3),
    Scenario("ca-revoke", _ca_removed, LATER_NOW, announcements=False, exit_code=3),
]


@dataclass(frozen=True)
class Prepared:
    scenario: Scenario
    scratch: Scratch

    def plan(
        self, output_format: str, *args: str, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        """``rpkictl plan state [--announcements state/announcements.txt] --format F --now T ARGS``, run
        in the scratch directory as an operator would from the top of the repository."""
        routes = ["--announcements", "state/announcements.txt"] if self.scenario.announcements else []
        return rpkictl(
            "plan",
            "state",
            *routes,
            "--format",
            output_format,
            "--now",
            self.scenario.now,
            *args,
            cwd=self.scratch.root,
            env=env,
        )


@pytest.fixture(scope="module", params=SCENARIOS, ids=[s.name for s in SCENARIOS])
def prepared(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Prepared]:
    """A scratch copy of the bundled example brought into the scenario's state (shared by both formats)."""
    scenario: Scenario = request.param
    scratch = scratch_copy(tmp_path_factory.mktemp(scenario.name))
    assert git_info(scratch.repo) is None, "the temporary directory must not be inside a Git work tree"
    scenario.prepare(scratch)
    yield Prepared(scenario, scratch)


@pytest.mark.parametrize(("output_format", "suffix"), [("text", "txt"), ("markdown", "md")])
def test_golden(prepared: Prepared, output_format: str, suffix: str, tmp_path: Path) -> None:
    """The plan reads exactly as its golden file: wording, order (verdict first, revocations last),
    gate tokens and hashes; only random names, serials, the plan id and the temporary path differ. The
    plan saved with ``--out`` renders to exactly what was printed, so a PR comment or log made from
    ``plan.json`` shows the very plan that apply will check."""
    saved = tmp_path / "plan.json"
    result = prepared.plan(output_format, "--out", str(saved))
    assert result.returncode == prepared.scenario.exit_code, result.stderr
    assert result.stderr == ""
    doc = document.loads(saved.read_text(), where=str(saved))
    rendered = text.render_plain(doc) if output_format == "text" else markdown.render(doc)
    assert rendered == result.stdout
    actual = normalise(result.stdout, prepared.scratch.root)
    golden = GOLDEN / f"{prepared.scenario.name}.{suffix}"
    if UPDATE:
        GOLDEN.mkdir(exist_ok=True)
        golden.write_text(actual, encoding="utf-8")
        return
    assert golden.exists(), f"{golden} is missing; create it with UPDATE_GOLDEN=1 (see the module docstring)"
    assert actual == golden.read_text(encoding="utf-8"), (
        f"{golden.name} differs; if the change is intended, re-run with UPDATE_GOLDEN=1 and review the diff"
    )


@pytest.mark.parametrize("prepared", [SCENARIOS[1]], ids=["change"], indirect=True)
def test_text_has_no_ansi_escapes_off_a_terminal(prepared: Prepared) -> None:
    """Piped text output is plain even with a colour TERM (the 'change' plan uses every style: gates,
    breaking routes, revocations); forcing colour shows that the check would see escapes."""
    plain = prepared.plan("text")
    assert plain.stdout and not ANSI.search(plain.stdout), plain.stdout
    assert not ANSI.search(plain.stderr)
    forced = prepared.plan("text", env=_environment(FORCE_COLOR="1"))
    assert ANSI.search(forced.stdout), "FORCE_COLOR=1 should colour the output (the check would be blind)"


def test_normalise_hides_only_what_is_random(tmp_path: Path) -> None:
    """Two runs that differ only in the temporary path, key names, serials, plan id and so the order of
    withdrawals normalise alike; gate hashes are kept, and distinct keys and serials stay distinct."""

    def run(root: Path, key: str, other: str, serials: tuple[str, str], plan_id: str) -> str:
        withdrawals = [f"  - withdraw   file isp/{name}  (gone)" for name in (f"{key}.crl", "AS0_x.roa")]
        return "\n".join(
            [
                f"RPKI plan {plan_id} for {root}/state at 2026-11-23T13:00:00Z (desired not in Git)",
                *sorted(withdrawals),
                f"  ↻ renew      crl online/{other}.crl",
                "    approve with: --approve ca-revoke@isp:05b63adfaa0b14bf",
                f"  - roa isp/a.roa, serial {serials[0]}, on isp's CRL",
                f"  - roa isp/b.roa, serial {serials[1]}, on isp's CRL",
                "",
            ]
        )

    first = run(tmp_path / "a", "0" * 40, "F" * 40, ("3a87", "442d"), "4b8219c62944")
    second = run(tmp_path / "b", "C6" * 20, "1" * 40, ("90ad", "4c63"), "5ada81919d56")
    assert first != second
    assert normalise(first, tmp_path / "a") == normalise(second, tmp_path / "b")
    normalised = normalise(second, tmp_path / "b")
    assert normalised.startswith("RPKI plan <plan-id> for <tmp>/state at")
    assert "isp/<key-1>.crl" in normalised and "online/<key-2>.crl" in normalised
    assert "serial <serial-1>," in normalised and "serial <serial-2>," in normalised
    assert "--approve ca-revoke@isp:05b63adfaa0b14bf" in normalised
