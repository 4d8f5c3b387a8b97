"""The README's quick start on a fresh machine: two commands, the same ones .ci/run runs, that make their
own virtual environment (Debian's python3 refuses pip, PEP 668), never install into the system's Python,
and name the system packages that are missing, with the command that installs them and what needs them.

The end-to-end test runs both commands in a copy of the checkout with ``env -i PATH=/usr/bin:/bin``, as
.ci/run does in a fresh clone for the whole suite.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.docs.doccommands import ROOT, commands_in_text
from tests.helpers import missing_tool

CI_RUN = ROOT / ".ci" / "run"
SHELL_SCRIPTS = sorted((ROOT / "scripts").glob("*.sh"))
THE_TWO_COMMANDS = ["scripts/quickstart.sh", "scripts/test.sh"]


def _quick_start_commands(readme: str) -> list[str]:
    """The shell commands of the README's "Quick start" section, in order."""
    section = readme.split("\n## Quick start\n", 1)[1].split("\n## ", 1)[0]
    return [command.text for command in commands_in_text("README.md", section)]


def _ci_command(name: str) -> str:
    """The command .ci/run keeps in the array ``name`` (``TEST_COMMAND=(scripts/test.sh)``)."""
    found = re.search(rf"^{name}=\((.*)\)\s*$", CI_RUN.read_text(), re.MULTILINE)
    assert found, f".ci/run has no {name}=(...) line"
    return shlex.join(shlex.split(found[1]))


def _code(text: str) -> list[str]:
    """The lines of a shell script that are not comments."""
    return [line for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]


def test_the_quick_start_is_two_commands_that_need_nothing_installed_first() -> None:
    assert _quick_start_commands((ROOT / "README.md").read_text()) == THE_TWO_COMMANDS
    for command in THE_TWO_COMMANDS:
        assert os.access(ROOT / command, os.X_OK), f"{command} is not executable"


def test_ci_runs_the_readme_commands_in_a_fresh_clone_and_a_clean_environment() -> None:
    shown = _quick_start_commands((ROOT / "README.md").read_text())
    assert [_ci_command("QUICKSTART_COMMAND"), _ci_command("TEST_COMMAND")] == shown
    code = "\n".join(_code(CI_RUN.read_text()))
    # Both run once, in the clean environment, after a clone; the test command's run is the CI test run.
    assert "env -i PATH=/usr/bin:/bin " in code
    assert code.count('clean_env "${QUICKSTART_COMMAND[@]}"') == 1
    assert code.count('clean_env "${TEST_COMMAND[@]}"') == 1
    assert code.index(" clone ") < code.index('clean_env "${QUICKSTART_COMMAND[@]}"')
    assert "pytest" not in code, ".ci/run runs the tests only through the README's test command"
    assert "scripts/system-packages.sh tests" in code


@pytest.mark.parametrize(
    "path", [*SHELL_SCRIPTS, CI_RUN], ids=[p.relative_to(ROOT).as_posix() for p in [*SHELL_SCRIPTS, CI_RUN]]
)
def test_no_script_installs_into_the_system_python(path: Path) -> None:
    """pip runs only as the virtual environment's interpreter: ``.venv/bin/python -m pip``."""
    for line in _code(path.read_text()):
        for use in re.finditer(r"\S*\s+-m\s+pip\b|\bpip3?\s+install\b", line):
            assert re.fullmatch(r"\"?(\.venv|\$\{venv\})/bin/python\"?\s+-m\s+pip", use[0]), (
                f"{path.relative_to(ROOT)}: {line.strip()!r} runs pip outside .venv"
            )


def test_the_readme_and_getting_started_never_pip_install_into_the_system_python() -> None:
    for page in ("README.md", "docs/getting-started.md"):
        for command in commands_in_text(page, (ROOT / page).read_text()):
            assert not re.match(r"(sudo\s+)?(python3?\s+-m\s+pip|pip3?)\s+install\b", command.text), command


def test_the_scripts_pass_shellcheck() -> None:
    shellcheck = shutil.which("shellcheck")
    if shellcheck is None:
        missing_tool("shellcheck is not installed (apt-get install shellcheck)", "the shellcheck lint")
    result = subprocess.run(
        [shellcheck, *map(str, SHELL_SCRIPTS)], capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def _bare_path(tmp_path: Path) -> str:
    """A PATH with python3 (this interpreter), bash, grep, dirname and tr, and nothing else of the system's
    (the script itself adds the sbin directories, where rpki-client lives)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(parents=True)
    (bin_dir / "python3").symlink_to(sys.executable)
    for tool in ("bash", "grep", "dirname", "tr"):
        found = shutil.which(tool)
        assert found, tool
        (bin_dir / tool).symlink_to(found)
    return str(bin_dir)


def _system_packages(tmp_path: Path, purpose: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(ROOT / "scripts" / "system-packages.sh"), purpose],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        stdin=subprocess.DEVNULL,
        env={
            "PATH": _bare_path(tmp_path),
            "RECONCILER_APT": "no",  # list, never install, even as root
            "RECONCILER_RP_CURRENT": str(tmp_path / "no-rp-current"),
            **env,
        },
    )


def test_missing_packages_are_listed_with_the_install_command_and_what_needs_them(tmp_path: Path) -> None:
    result = _system_packages(tmp_path, "tests")
    assert result.returncode == 0, result.stderr  # the caller goes on: the tests skip (or fail in CI)
    report = result.stderr
    sudo = "sudo " if os.geteuid() != 0 else ""
    assert "missing system packages, and what needs them:" in report
    assert "  git: the GitOps tests" in report
    assert "  shellcheck: the shellcheck lint" in report
    assert f"  rpki-client 9.x and FORT 1.6.x in {tmp_path / 'no-rp-current'}: the end-to-end" in report
    (install,) = [line for line in report.splitlines() if "apt-get install" in line]
    assert install.startswith(f"  {sudo}apt-get install -y --no-install-recommends ")
    packages = set(install.split("--no-install-recommends ")[1].split())
    assert {"git", "shellcheck", "rsync", "fort-validator", "faketime"} <= packages
    assert "python3-venv" not in install  # this interpreter has ensurepip
    assert f"  {sudo}scripts/system-packages.sh tests" in report
    assert "CI is not set: the tests that need them are skipped" in report
    in_ci = _system_packages(tmp_path / "ci", "tests", CI="true").stderr
    assert "CI=true: the tests that need them FAIL" in in_ci
    assert "CI is not set" in _system_packages(tmp_path / "ci-no", "tests", CI="false").stderr

    quickstart = _system_packages(tmp_path / "q", "quickstart")
    assert quickstart.returncode == 0, quickstart.stderr
    assert "the last step, the relying parties' check of published/ (skipped)" in quickstart.stderr
    assert "git" not in quickstart.stderr.split()  # the quick start needs no git
    assert "Going on without them." in quickstart.stderr


def test_without_ensurepip_the_commands_stop_with_the_fix(tmp_path: Path) -> None:
    """Debian's python3 without python3-venv cannot make a virtual environment: nothing can run."""
    shadow = tmp_path / "shadow" / "ensurepip"
    shadow.mkdir(parents=True)  # what the interpreter finds first in place of the standard library's
    (shadow / "__init__.py").write_text("raise ModuleNotFoundError(\"No module named 'ensurepip'\")\n")
    scripts = tmp_path / "checkout" / "scripts"
    shutil.copytree(ROOT / "scripts", scripts, ignore=shutil.ignore_patterns("__pycache__"))
    for command in THE_TWO_COMMANDS:
        result = subprocess.run(
            [str(tmp_path / "checkout" / command)],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
            stdin=subprocess.DEVNULL,
            env={
                "PATH": _bare_path(tmp_path / command.replace("/", "-")),
                "PYTHONPATH": str(shadow.parent),
                "RECONCILER_APT": "no",
                "RECONCILER_RP_CURRENT": str(tmp_path / "no-rp-current"),
            },
        )
        assert result.returncode == 1, f"{command}: {result.stdout}{result.stderr}"
        assert "  python3-venv: everything" in result.stderr
        assert re.search(r"apt-get install -y --no-install-recommends .*\bpython3-venv\b", result.stderr)
        assert "ensurepip (Debian's python3-venv): nothing can run without it" in result.stderr
        assert not (tmp_path / "checkout" / ".venv").exists(), command


def _checkout_copy(destination: Path) -> Path:
    """This checkout's files, without its Git history, virtual environment, keys or publication."""
    top = {".git", ".venv", "keys", "published", "build", "dist", ".mypy_cache", ".ruff_cache", ".hypothesis"}

    def ignore(directory: str, names: list[str]) -> set[str]:
        left_out = {n for n in names if n in {"__pycache__", ".pytest_cache"} or n.endswith(".egg-info")}
        return left_out | (top & set(names) if Path(directory) == ROOT else set())

    shutil.copytree(ROOT, destination, ignore=ignore, symlinks=True)
    return destination


@pytest.mark.e2e
def test_the_two_commands_on_a_fresh_checkout_with_debians_python(tmp_path: Path) -> None:
    """What a new developer runs, in a clean environment: each command makes what it needs in .venv."""
    system_python = Path("/usr/bin/python3")
    probe = [str(system_python), "-c", "import sys; sys.exit(sys.version_info < (3, 11))"]
    if not system_python.exists() or subprocess.run(probe, check=False).returncode != 0:
        missing_tool("/usr/bin/python3 3.11 or newer is not installed (apt-get install python3)", "this test")
    checkout = _checkout_copy(tmp_path / "checkout")
    # env -i PATH=/usr/bin:/bin, keeping what makes the tests behave as here; apt-get is never run.
    env = {"PATH": "/usr/bin:/bin", "RECONCILER_APT": "no"}
    env.update({k: os.environ[k] for k in ("CI", "RECONCILER_RP_CURRENT") if k in os.environ})

    def run(*command: str) -> str:
        done = subprocess.run(
            command, cwd=checkout, env=env, capture_output=True, text=True, timeout=600, check=False
        )
        output = done.stdout + done.stderr
        assert done.returncode == 0, f"{shlex.join(command)} exited {done.returncode}:\n{output}"
        return output

    quickstart = run("scripts/quickstart.sh")
    assert "== python3 -m venv .venv" in quickstart
    assert "== installing rpki-reconciler" in quickstart
    assert "Applied:" in quickstart
    assert (checkout / "published" / "ta.tal").read_text().startswith("rsync://")
    assert "home = /usr/bin" in (checkout / ".venv" / "pyvenv.cfg").read_text()  # Debian's python3

    one_test = "tests/docs/test_doc_commands.py::test_commands_are_read_from_shell_blocks_only"
    first = run("scripts/test.sh", one_test)
    assert "adding the test dependencies" in first and "1 passed" in first, first
    again = run("scripts/test.sh", one_test)
    assert "up to date" in again and "installing" not in again and "1 passed" in again, again
    with (checkout / "pyproject.toml").open("a") as pyproject:
        pyproject.write("# changed\n")
    changed = run("scripts/test.sh", one_test)
    assert "pyproject.toml or the checkout's path changed" in changed and "installing" in changed, changed

    # The system's interpreter was never installed into.
    system = subprocess.run(
        [str(system_python), "-c", "import reconciler"], cwd="/", env=env, capture_output=True, check=False
    )
    assert system.returncode != 0
