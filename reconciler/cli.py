"""``rpkictl``: a thin shell over the library. Commands parse options, call ``reconciler.engine``, render,
and set the exit code.

Exit codes: 0 success / no changes; 2 ``plan`` found changes; 1 any error (bad YAML, signer, publication,
usage). A usage error is remapped from Click's 2 to 1 so that 2 always means "changes".
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, NoReturn

import typer
from rich.console import Console

from reconciler import clock, engine
from reconciler.desired import DesiredStateError
from reconciler.publish.rsync_tree import PublishError
from reconciler.render_text import render
from reconciler.signers import SignerError

# typer vendors its own Click; BadParameter is public and its base class covers every usage mistake.
UsageError: type[Exception] = next(c for c in typer.BadParameter.__mro__ if c.__name__ == "UsageError")

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_CHANGES = 2

app = typer.Typer(
    name="rpkictl",
    help="Declarative RPKI certificate authority: validate, plan and apply a desired state kept in Git.\n\n"
    "Exit codes: 0 ok or no changes, 2 plan has changes, 1 error.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)

RepoArg = Annotated[
    Path, typer.Argument(help="Desired-state directory (holds rpki.yaml and cas/).", show_default=True)
]
NowOpt = Annotated[
    str | None, typer.Option("--now", help="Act as if it were this time (ISO-8601, e.g. 2026-11-23T17:00Z).")
]


def _fail(message: str) -> NoReturn:
    err.print(f"[bold red]error:[/] {message}")
    raise typer.Exit(EXIT_ERROR)


def _open(repo: Path) -> engine.Workspace:
    try:
        return engine.open_workspace(repo)
    except DesiredStateError as exc:
        for diagnostic in exc.diagnostics:
            err.print(str(diagnostic), markup=False)
        count = len(exc.diagnostics)
        _fail(
            f"{count} problem{'s' if count != 1 else ''} in the desired state; nothing was signed or written"
        )


@app.command()
def validate(repo: RepoArg = Path()) -> None:
    """Load and check the desired state; list every problem as file:line:col."""
    workspace = _open(repo)
    cas = workspace.desired.cas
    roas = sum(len(ca.roas) for ca in cas)
    out.print(f"{repo}: valid ({len(cas)} CAs, {roas} ROA entries)")


@app.command()
def plan(repo: RepoArg = Path(), now: NowOpt = None) -> None:
    """Show what apply would issue, reissue, renew, revoke and withdraw, and why. Exit 2 when changes."""
    try:
        workspace = _open(repo)
        the_plan = engine.plan(workspace, clock.now(now))
    except (SignerError, clock.ClockError) as exc:
        _fail(str(exc))
    for line in render(the_plan):
        out.print(line)
    raise typer.Exit(EXIT_OK if the_plan.empty else EXIT_CHANGES)


def _confirm(count: int) -> bool:
    if not sys.stdin.isatty():
        _fail("no terminal to confirm on; re-run with --yes to apply without a prompt")
    return typer.confirm(f"Apply these {count} changes?", default=False)


@app.command()
def apply(
    repo: RepoArg = Path(),
    now: NowOpt = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Apply without asking for confirmation.")] = False,
) -> None:
    """Plan, confirm, sign and publish atomically. Running it again when nothing changed does nothing."""
    try:
        workspace = _open(repo)
        the_plan = engine.plan(workspace, clock.now(now))
        for line in render(the_plan):
            out.print(line)
        if the_plan.empty:
            return
        if not yes and not _confirm(len(the_plan.changes)):
            _fail("not applied: nothing was signed or written")
        with err.status("Signing and publishing…"):
            result = engine.apply(workspace, the_plan)
    except (SignerError, PublishError, clock.ClockError) as exc:
        _fail(str(exc))
    assert result is not None  # noqa: S101 - a non-empty plan always yields a result
    out.print(
        f"Applied: {result.signed} signatures, {len(result.written)} files written, "
        f"{len(result.removed)} removed. Published in {workspace.rsync_dir}."
    )


@app.command()
def tal(
    repo: RepoArg = Path(),
    output: Annotated[Path | None, typer.Option("--out", "-o", help="Write the TAL to this file.")] = None,
) -> None:
    """Print the trust anchor locator (RFC 8630) that relying parties configure."""
    try:
        text = engine.trust_anchor_locator(_open(repo))
    except SignerError as exc:
        _fail(str(exc))
    if output is None:
        sys.stdout.write(text)
    else:
        output.write_text(text)


def main() -> None:
    """Entry point: run the app, remapping Click's usage errors (exit 2) to 1."""
    try:
        code = app(standalone_mode=False)
    except UsageError as exc:
        exc.show()  # type: ignore[attr-defined]
        sys.exit(EXIT_ERROR)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.Abort:
        err.print("aborted: nothing was signed or written")
        sys.exit(EXIT_ERROR)
    sys.exit(code if isinstance(code, int) else EXIT_OK)
