"""``rpkictl``: a thin shell over the library. Commands parse options, call ``reconciler.engine``, talk to
the operator, render, and set the exit code.

Exit codes: 0 success / no changes; 1 any error (bad YAML, signer, publication, usage — Click's usage
exit 2 is remapped so that 2 always means "changes"); 2 plan has changes; 3 changes need approval (plan),
or apply refused unapproved gates; 4 stale or too old a saved plan; 5 the publication lock was not
acquired, or was lost before anything was published.
"""

from __future__ import annotations

import atexit
import errno
import io
import json
import os
import sys
import threading
import time
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Annotated, NoReturn

import typer
from rich.console import Console

from reconciler import clihelp, clock, engine, exchange, faults, fsutil, problem_report
from reconciler import identity as identities
from reconciler import reconcile as reconcile_loop
from reconciler.apply import audit, lock, onetime
from reconciler.apply.executor import ApplyResult
from reconciler.desired import DesiredStateError
from reconciler.desired.discover import desired_root
from reconciler.desired.loader import load_settings
from reconciler.desired.model import DesiredState, SignerConfig
from reconciler.desired.schema import CA_NAME_RE, HANDLE_RULE, parse_duration
from reconciler.diagnostics import Diagnostic
from reconciler.offline import ceremony
from reconciler.offline.request import SigningRequest, dumps, fingerprint, read_request
from reconciler.plan import document
from reconciler.plan.approval import (
    Approval,
    parse_approval,
    too_old,
    unapproved,
)
from reconciler.plan.challenge import challenge
from reconciler.plan.document import GateDoc, PlanDocument
from reconciler.plan.gitcontext import GitContextError
from reconciler.plan.incremental import Refresh
from reconciler.plan.model import Plan, Severity
from reconciler.plan.render import markdown, text
from reconciler.protocol import oob
from reconciler.protocol.bpki import IdentityCertificate
from reconciler.protocol.errors import ProtocolError
from reconciler.publish.rsync_tree import TreeMovedError
from reconciler.signers import Signer, open_signer

# typer vendors its own Click; BadParameter is public and its base class covers every usage mistake.
UsageError: type[Exception] = next(c for c in typer.BadParameter.__mro__ if c.__name__ == "UsageError")

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_CHANGES = 2
EXIT_APPROVAL = 3
EXIT_STALE = 4
EXIT_LOCKED = 5
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as shells report a command stopped by Ctrl-C

app = typer.Typer(
    name="rpkictl",
    help="Declarative RPKI certificate authority: validate, plan and apply a desired state kept in Git.\n\n"
    "Exit codes: 0 ok or no changes; 1 error; 2 plan has changes; 3 changes need approval (or apply "
    "refused unapproved gates); 4 stale saved plan; 5 publication lock held by another apply; 130 "
    "interrupted (Ctrl-C).\n\n"
    "REPO is the desired-state directory or any path in it: rpkictl looks upward for rpki.yaml, as git "
    "looks for .git.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": clihelp.HELP_OPTION_NAMES},
)


def _show_version(value: bool) -> None:
    if value:
        out.print(f"rpkictl {engine.tool_version()}", markup=False)
        raise typer.Exit(EXIT_OK)


@app.callback()
def _options(
    version: Annotated[
        bool,
        typer.Option("--version", is_eager=True, callback=_show_version, help="Print the version and exit."),
    ] = False,
) -> None:
    """Options before the command; the help is the app's."""


out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)

# Errors that are the operator's to fix: a message, never a traceback.
OPERATOR_ERRORS = engine.OPERATOR_ERRORS


class OutputFormat(StrEnum):
    text = "text"
    markdown = "markdown"
    json = "json"


RepoArg = Annotated[
    Path,
    typer.Argument(
        help="Desired-state directory (holds rpki.yaml and cas/), or any path in it: rpki.yaml is looked "
        "for upward."
    ),
]
NowOpt = Annotated[
    str | None,
    typer.Option(
        "--now", metavar="TIME", help="Act as if it were this time (ISO-8601, e.g. 2026-11-23T17:00Z)."
    ),
]
SimulateTimeOpt = Annotated[
    bool,
    typer.Option(
        "--simulate-time",
        help="Sign at --now even when it is more than a few minutes from the system clock (replaying a "
        "schedule on a test publication point; never on a served one).",
    ),
]
AnnouncementsOpt = Annotated[
    Path | None,
    typer.Option(
        "--announcements",
        help="Routes seen in BGP (CSV prefix,origin_asn or a RIS dump; with AS paths: bgpdump -m lines or "
        "CSV prefix,path): report which change RPKI validity, and with paths which change ASPA verification.",
        exists=True,
        dir_okay=False,
    ),
]
MinPeersOpt = Annotated[
    int, typer.Option("--min-peers", min=0, help="RIS dumps: ignore routes seen by fewer peers.")
]


#: The exit codes a message was printed for (an interrupt nothing explained gets a word from ``main``).
_told: set[int] = set()


def _fail(message: str, code: int = EXIT_ERROR) -> NoReturn:
    err.print(f"[bold red]error:[/] {message}")
    _told.add(code)
    raise typer.Exit(code)


PublishedOpt = Annotated[
    str | None,
    typer.Option(
        "--published",
        metavar="DIR|URI",
        help="Read the published state from this publication directory, RRDP notification URL "
        "(https://.../notification.xml) or rsync URI, as relying parties do, instead of the local "
        "publication directory (which is then neither read nor written).",
    ),
]
RefreshOpt = Annotated[
    Refresh,
    typer.Option(
        "--refresh",
        help="auto: plan again only the CAs whose YAML, keys, published files or renewal times changed "
        "since a plan found nothing to do for them (and every CA once a day); full: plan every CA.",
    ),
]
CacheOpt = Annotated[
    Path | None,
    typer.Option("--cache", help="With a --published URL: keep the fetched copy here between runs."),
]


def _open(
    repo: Path, published: str | None = None, cache: Path | None = None, *, as_json: bool = False
) -> engine.Workspace:
    """The workspace of a command that only reads (plan, status, check): no key, PIN or passphrase."""
    if cache is not None and published is None:
        raise typer.BadParameter("--cache keeps a copy fetched with --published URI", param_hint="--cache")
    desired = _desired(repo, caches=published is None, as_json=as_json)
    return engine.review_workspace(desired, published, cache)


def _desired(repo: Path, *, caches: bool = True, as_json: bool = False) -> DesiredState:
    """The checked desired state alone, for commands that need no publication point read back."""
    try:
        return engine.load_desired(repo, caches=caches)
    except DesiredStateError as exc:
        if not as_json:
            for diagnostic in exc.diagnostics:
                err.print(str(diagnostic), markup=False)
        count = len(exc.diagnostics)
        _problems(
            f"{count} problem{'s' if count != 1 else ''} in the desired state; nothing was signed or written",
            exc.diagnostics,
            repo,
            as_json=as_json,
        )


def _problems(message: str, diagnostics: Sequence[Diagnostic], repo: Path, *, as_json: bool) -> NoReturn:
    """Fail with the operator's problems where their tools look: with ``--format json`` one JSON error
    document on stdout (stdout stays JSON), else the message on stderr; in GitHub Actions, also one
    ``::error file=...,line=...`` annotation per problem on stderr, which the runner reads as it reads
    stdout, so the pull request shows each on its line."""
    root = problem_report.repository_root(repo)
    if problem_report.in_github_actions():
        for command in problem_report.workflow_commands(message, diagnostics, root):
            sys.stderr.write(command + "\n")
    if as_json:
        sys.stdout.write(problem_report.error_json(message, diagnostics, root))
        raise typer.Exit(EXIT_ERROR)
    _fail(message)


def _announcements(path: Path | None, min_peers: int) -> engine.Announcements | None:
    return engine.Announcements.read(path, min_peers) if path is not None else None


def _emit(doc: PlanDocument, fmt: OutputFormat) -> None:
    if fmt is OutputFormat.json:
        sys.stdout.write(document.dumps(doc))
    elif fmt is OutputFormat.markdown:
        sys.stdout.write(markdown.render(doc))
    else:
        for line in text.render(doc):
            out.print(line)


def _plan_exit(doc: PlanDocument) -> int:
    if doc.approval_required:  # also with nothing to sign: a request to the parent can wait for one
        return EXIT_APPROVAL
    return EXIT_CHANGES if doc.changes else EXIT_OK


def _github_outputs(doc: PlanDocument) -> None:
    """In GitHub Actions, hand the verdict to later steps without anyone parsing exit codes."""
    target = os.environ.get("GITHUB_OUTPUT")
    if not target:
        return
    revocations = sum(1 for c in doc.changes if c.revoke_serial is not None)
    with Path(target).open("a", encoding="utf-8") as handle:
        handle.write(f"has_changes={'true' if doc.changes else 'false'}\n")
        handle.write(f"approval_required={'true' if doc.approval_required else 'false'}\n")
        handle.write(f"plan_id={doc.plan_id}\nrevocations={revocations}\n")


class ValidateFormat(StrEnum):
    text = "text"
    json = "json"


@app.command()
def validate(
    repo: RepoArg = Path(),
    output_format: Annotated[
        ValidateFormat,
        typer.Option("--format", help="text, or json: a summary, or {error, diagnostics} on failure."),
    ] = ValidateFormat.text,
) -> None:
    """Load and check the desired state; list every problem as file:line:col."""
    as_json = output_format is ValidateFormat.json
    desired = _desired(repo, as_json=as_json)  # the YAML alone: no signer, no publication point
    cas = desired.cas
    roas = sum(len(ca.roas) for ca in cas)
    if as_json:
        summary = {"valid": True, "repo": str(desired.root), "cas": len(cas), "roa_entries": roas}
        sys.stdout.write(json.dumps(summary, indent=2) + "\n")
        return
    out.print(f"{desired.root}: valid ({len(cas)} CAs, {roas} ROA entries)")


@app.command()
def plan(
    repo: RepoArg = Path(),
    now: NowOpt = None,
    output_format: Annotated[
        OutputFormat, typer.Option("--format", help="text, markdown (PR comment) or json.")
    ] = (OutputFormat.text),
    save: Annotated[
        Path | None, typer.Option("--out", help="Save the plan (JSON) for 'rpkictl apply FILE'.")
    ] = None,
    announcements: AnnouncementsOpt = None,
    min_peers: MinPeersOpt = 0,
    base: Annotated[
        str | None, typer.Option("--base", help="Git revision: also list the YAML entries changed since it.")
    ] = None,
    published: PublishedOpt = None,
    cache: CacheOpt = None,
    refresh: RefreshOpt = Refresh.AUTO,
) -> None:
    """Show what apply would issue, reissue, renew, revoke and withdraw, and why.

    Needs no private key, PIN or passphrase: each CA's key is the one its published certificate shows.
    Exit 0 no changes, 2 changes, 3 changes that need approval, 1 error."""
    as_json = output_format is OutputFormat.json
    try:
        workspace = _open(repo, published, cache, as_json=as_json)
        routes = _announcements(announcements, min_peers)
        the_plan = engine.plan(workspace, clock.now(now), routes, refresh=refresh)
        doc = engine.plan_document(workspace, the_plan, announcements=routes, base=base)
        if save is not None:
            save.write_text(document.dumps(doc))
    except OPERATOR_ERRORS as exc:
        _problems(str(exc), getattr(exc, "diagnostics", ()), repo, as_json=as_json)
    _emit(doc, output_format)
    _github_outputs(doc)
    raise typer.Exit(_plan_exit(doc))


#: How many answers an operator may type to a gated plan's question before apply gives up.
APPROVAL_TRIES = 3


def _changes_phrase(doc: PlanDocument) -> str:
    """The plan's changes, counted as its verdict counts them (``1 change to review and 6 routine``)."""
    counts = doc.counts()
    review = f"{counts.review} change{'s' if counts.review != 1 else ''} to review"
    routine = f"{counts.routine} routine change{'s' if counts.routine != 1 else ''}"
    if not counts.review:
        return routine
    return f"{review} and {counts.routine} routine" if counts.routine else review


def _confirm(doc: PlanDocument) -> None:
    if not sys.stdin.isatty():
        _fail("no terminal to confirm on; re-run with --yes to apply without a prompt")
    counts = doc.counts()
    split = f"{counts.routine} routine"
    if counts.review:
        split = f"{counts.review} to review, {split}"
    if not typer.confirm(f"Apply these changes ({split}) to {doc.desired.repo}?", default=False):
        _fail("not applied: nothing was signed or written")


def _approve_on_terminal(doc: PlanDocument, gates: list[GateDoc]) -> list[Approval]:
    """A gated plan on a terminal: the operator types what the plan says it costs (which CA loses how
    many VRPs), which the question does not show; a few tries, then nothing is signed."""
    tokens = " ".join(f"--approve {g.approve}" for g in gates)
    if not sys.stdin.isatty():
        _fail(
            f"{len(gates)} gate(s) need approval; nothing was signed or written. "
            "Review the plan, then re-run "
            f"with {tokens}",
            EXIT_APPROVAL,
        )
    asked = challenge(gates)
    names = ", ".join(g.id for g in gates)
    err.print(
        f"This plan ({_changes_phrase(doc)}) needs approval: {len(gates)} gate"
        f"{'s' if len(gates) != 1 else ''} listed above ({names}).",
        markup=False,
    )
    for left in range(APPROVAL_TRIES - 1, -1, -1):
        if asked.accepts(typer.prompt(asked.question, err=True)):
            return [Approval(g.id, g.hash, "typed on a terminal") for g in gates]
        if left:
            err.print(
                f"That is not what the plan above says; read its 'Approval required' part again "
                f"({left} {'tries' if left != 1 else 'try'} left).",
                markup=False,
            )
    _fail(f"not approved after {APPROVAL_TRIES} tries: nothing was signed or written", EXIT_APPROVAL)


def _saved_plan(target: Path) -> bool:
    """A file given to apply is a saved plan (JSON), unless it is one of the desired state's YAML files
    (``rpkictl apply rpki.yaml`` means the desired state it belongs to)."""
    return target.is_file() and target.suffix.lower() not in {".yaml", ".yml"}


def _saved_plan_repo(saved: PlanDocument, given: Path | None) -> Path:
    """The desired state a saved plan is applied with. A plan made elsewhere (a pull request's runner)
    names a checkout that is not on this machine: then the one the current directory is in. Which one it
    is matters little: the plan is stale unless that checkout's YAML digest is the plan's."""
    if given is not None:
        return given
    named = Path(saved.desired.repo)
    if named.is_dir():
        return named
    try:
        return desired_root(Path())
    except DesiredStateError:
        _fail(
            f"the plan was made from the desired state in {named}, which is not on this machine, and "
            f"{Path().absolute()} is not in a desired state: give the checkout with --repo DIR"
        )


def _lock_timeout(value: str) -> timedelta:
    if value.strip() in {"0", "0s"}:
        return timedelta(0)
    try:
        return parse_duration(value)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--lock-timeout") from exc


@app.command()
def apply(
    target: Annotated[
        Path, typer.Argument(help="Desired-state directory, or a plan saved by 'plan --out'.")
    ] = Path(),
    now: NowOpt = None,
    simulate_time: SimulateTimeOpt = False,
    yes: Annotated[
        bool, typer.Option("--yes", "-y", help="Apply without asking (never approves a gate).")
    ] = False,
    approve: Annotated[
        list[str] | None,
        typer.Option(
            "--approve", metavar="GATE:HASH", help="GATE:HASH token printed by plan; repeat for each gate."
        ),
    ] = None,
    lock_timeout: Annotated[
        str,
        typer.Option(
            "--lock-timeout", metavar="DURATION", help="Wait this long for another apply (e.g. 30s, 10m)."
        ),
    ] = "0s",
    announcements: AnnouncementsOpt = None,
    min_peers: MinPeersOpt = 0,
    routine_only: Annotated[
        bool,
        typer.Option(
            "--routine-only",
            help="Apply only manifest/CRL renewals and scheduled re-issues (for a scheduled job: keeps the "
            "tree valid while other changes wait for review or approval).",
        ),
    ] = False,
    repo_dir: Annotated[
        Path | None,
        typer.Option(
            "--repo",
            metavar="DIR",
            help="With a saved plan: the desired-state checkout to apply it with (default: the one the plan "
            "names when it is on this machine, else the one the current directory is in). The plan is "
            "refused unless this checkout's YAML is the YAML it was made from.",
        ),
    ] = None,
    reason: Annotated[
        str | None,
        typer.Option(
            "--reason",
            metavar="TEXT",
            help="Why: the change or incident ticket, kept in the audit record and shown by 'rpkictl log' "
            f"(one line, at most {audit.REASON_MAX} characters).",
        ),
    ] = None,
    refresh: RefreshOpt = Refresh.AUTO,
) -> None:
    """Plan (or take a saved plan), check gates, confirm, sign and publish atomically, and audit.

    Exit 0 applied or nothing to do, 1 error, 3 unapproved gates, 4 stale saved plan, 5 lock held,
    130 interrupted (Ctrl-C: it says what is published, and the lock is released)."""
    wait = _lock_timeout(lock_timeout)
    # a ROA's and a manifest's keys, made while the YAML loads and the plan is made; under an external
    # parent the first goes to the protocol messages' EE certificate, needed before anything is signed
    onetime.make_ahead(3)
    taken: lock.Lock | None = None  # once held, for what an interrupt says
    served: Path | None = None
    try:
        current = clock.signing_time(now, simulate=simulate_time)
        reason = audit.check_reason(reason)
        approvals = [parse_approval(token) for token in approve or []]
        saved = document.loads(target.read_text(), where=str(target)) if _saved_plan(target) else None
        if saved is not None and routine_only:
            _fail("--routine-only applies to a desired-state directory, not to a saved plan")
        repo = _saved_plan_repo(saved, repo_dir) if saved else target
        if saved is None and repo_dir is not None:
            _fail("--repo goes with a saved plan: give the desired-state directory as the argument instead")
        desired = _desired(repo)  # the publication point is read once the lock is held
        if saved is not None and (problem := too_old(saved, current, desired.plan_max_age)):
            _fail(f"refusing the saved plan: {problem}", EXIT_STALE)
        with lock.acquire(
            desired.publication.directory,
            who=audit.who(),
            operation="apply",
            plan_id=saved.plan_id if saved else None,
            timeout=wait,
        ) as held:
            taken, served = held, (desired.publication.directory / "rsync").resolve()
            faults.point("lock.acquired")
            routes = None if routine_only else _announcements(announcements, min_peers)
            _apply_locked(
                desired,
                saved,
                current,
                approvals,
                yes,
                routes,
                routine_only=routine_only,
                held=held,
                reason=reason,
                refresh=refresh,
            )
    except KeyboardInterrupt as exc:
        _fail(_interrupted(exc, taken, served), EXIT_INTERRUPTED)
    except lock.LockHeld as exc:
        waited = f" (waited {clock.describe_span(wait)})" if wait else ""
        _fail(f"the publication point is locked{waited}: {exc.holder.describe()}", EXIT_LOCKED)
    except OSError as exc:
        _fail(_os_error(exc))
    except OPERATOR_ERRORS as exc:
        _fail(str(exc))


def _interrupted(exc: KeyboardInterrupt, held: lock.Lock | None, served: Path | None) -> str:
    """Ctrl-C during apply, said plainly: what relying parties are served now, and that the lock is gone
    (the ``with`` around the apply released it before this runs)."""
    if held is None:
        return "interrupted: nothing was signed or published"
    if isinstance(exc, engine.ApplyInterrupted):
        what = f"{exc}; the apply is recorded as failed in the audit log"
    elif served is not None and (held.directory / "rsync").resolve() != served:
        what = (
            f"interrupted after the new rsync tree ({(held.directory / 'rsync').resolve().name}) was "
            "published: run 'rpkictl plan' to see what is left to do"
        )
    else:
        what = "interrupted: nothing was published, the previous publication is still served"
    current = lock.current(held.directory)
    if current is not None and current.id == held.id:
        return f"{what}; the lock on {held.directory} is still held: rpkictl force-unlock {held.id}"
    return f"{what}; the lock on {held.directory} is released"


def _os_error(exc: OSError) -> str:
    """A file-system failure as the operator needs it: what, where, that nothing changed, the fix."""
    where = f" {exc.filename}" if exc.filename else ""
    if isinstance(exc, fsutil.ReadError):
        read_fixes = {
            errno.EACCES: "give the user running rpkictl read access to it",
            errno.EPERM: "give the user running rpkictl read access to it",
            errno.EINVAL: "put the regular file expected there in its place",
        }
        return (
            f"cannot read{where}: {exc.strerror or exc}; nothing was published and the previous "
            f"publication is still served (fix: {read_fixes.get(exc.errno or 0, 'check the file system')}, "
            "then run apply again)"
        )
    fixes = {
        errno.ENOSPC: "free space on that file system",
        errno.EDQUOT: "raise the disk quota",
        errno.EROFS: "the file system is mounted read-only: remount it read-write",
        errno.EACCES: "give the user running rpkictl write access",
        errno.EPERM: "give the user running rpkictl write access",
    }
    fix = fixes.get(exc.errno or 0, "check the file system")
    return (
        f"cannot write{where}: {exc.strerror or exc}; nothing was published and the previous publication "
        f"is still served (fix: {fix}, then run apply again)"
    )


def _apply_locked(
    desired: DesiredState,
    saved: PlanDocument | None,
    current: datetime,
    approvals: list[Approval],
    yes: bool,
    routes: engine.Announcements | None,
    *,
    routine_only: bool = False,
    held: lock.Lock | None = None,
    reason: str | None = None,
    refresh: Refresh = Refresh.AUTO,
) -> None:
    """Under the lock: ask the external parent (if any), re-read the publication point, re-plan, publish
    only what was reviewed, and bring a remote repository up to date."""
    signers = engine.signers_for(desired)
    for note in engine.contact_parent(desired, signers, current, always=True, approvals=approvals):
        err.print(note, style="bold yellow", markup=False)
    workspace = engine.workspace_for(desired, signers)  # the publication point as it is now: we hold the lock
    if saved is not None and saved.announcements is not None:
        routes = engine.Announcements.read(Path(saved.announcements.path), saved.announcements.min_peers)
    plan_time = saved.created_at if saved is not None else current
    if routine_only:
        the_plan = engine.routine_plan(workspace, plan_time)
    else:
        the_plan = engine.plan(workspace, plan_time, routes, refresh=refresh)
    doc = engine.plan_document(workspace, the_plan, announcements=routes)
    if saved is not None and (reasons := engine.saved_plan_problems(workspace, saved, doc, routes)):
        _fail("refusing a stale plan: " + "; ".join(reasons) + ". Make a new plan.", EXIT_STALE)
    for line in text.render(doc):
        out.print(line)
    if the_plan.empty:
        for broken in held.broken if held is not None else ():
            err.print(f"[bold yellow]{engine.broken_lock_warning(broken)}[/]", markup=True)
        _publish_remote(workspace, current, the_plan)
        _refuse_unapproved_requests(doc, approvals)
        return
    missing = unapproved(doc, approvals)
    if missing:
        approvals = approvals + _approve_on_terminal(doc, missing)
    elif not yes:
        _confirm(doc)
    audited = engine.AuditedPlan.of(doc)
    del doc  # a registry's first plan document is hundreds of megabytes: not held while signing
    try:
        with err.status("Signing and publishing…"):
            result = engine.apply_recorded(
                workspace,
                the_plan,
                audited,
                approvals,
                now=current,
                signing_time=current if saved is not None else None,
                held=held,
                reason=reason,
            )
    except (lock.LockLost, TreeMovedError) as exc:
        _fail(f"refused: {exc}; nothing was published by this apply (recorded as refused)", EXIT_LOCKED)
    except engine.AuditedApplyError as exc:
        _fail(str(exc))
    _report(result, workspace)
    _publish_remote(workspace, current, the_plan, result)


def _refuse_unapproved_requests(doc: PlanDocument, approvals: list[Approval]) -> None:
    """A plan with nothing to sign can still wait for approval: of a request to the external parent,
    which an approval on the command line lets the exchange make before the plan (``parent-shrink``)."""
    waiting = unapproved(doc, approvals)
    if waiting:
        tokens = " ".join(f"--approve {g.approve}" for g in waiting)
        _fail(
            f"{len(waiting)} gate(s) need approval; review the plan, then re-run with {tokens}", EXIT_APPROVAL
        )


def _publish_remote(
    workspace: engine.Workspace, now: datetime, the_plan: Plan, result: ApplyResult | None = None
) -> None:
    """Send the repository what it lacks of the local copy (a remote repository only); then, when the
    plan activated a key roll, have the parent revoke the old key."""
    remote = workspace.desired.publication.remote
    if remote is None:
        return
    with err.status("Publishing at the repository…"):
        synced = engine.publish_remote(workspace, now, result)
    if synced is not None:
        out.print(synced.describe(remote.response.service_uri), markup=False)
    for said in engine.finish_parent_roll(workspace, the_plan, now):
        out.print(said, markup=False)


def _report(result: ApplyResult, workspace: engine.Workspace) -> None:
    out.print(
        f"Applied: {result.signed} signatures, {len(result.written)} files written, "
        f"{len(result.removed)} removed. Published in {workspace.rsync_dir}."
    )
    if result.rrdp is not None:
        out.print(result.rrdp)
    for warning in result.warnings:
        err.print(warning, style="bold yellow", markup=False)
    if result.request is not None:
        raw = Path(result.request).read_bytes()
        out.print(
            f"[bold yellow]{len(result.deferred)} change(s) wait for the offline trust anchor.[/] "
            f"Signing request: {result.request} (fingerprint {fingerprint(raw)}).\n"
            f"  1. Carry it to the offline machine and run: rpkictl ta sign {Path(result.request).name} "
            "--out ta-response.json\n"
            "  2. Carry ta-response.json back and run: rpkictl ta import ta-response.json "
            f"{workspace.desired.root}"
        )


ta_app = typer.Typer(
    help="The offline trust anchor: sign a request on the offline machine, import the response online.",
    no_args_is_help=True,
)
app.add_typer(ta_app, name="ta")


def _offline_key_signer(desired: DesiredState) -> Signer:
    """The signer that holds the trust anchor's key here, on the offline machine."""
    ta = desired.trust_anchor
    config = desired.signers[ta.signer]
    if config.type != "offline" or config.key_signer is None:
        _fail(
            f"the trust anchor {ta.name} uses signer {ta.signer!r}, which is not offline: "
            "'rpkictl ta sign' is for a trust anchor with an offline signer"
        )
    return open_signer(desired.signers[config.key_signer])


@ta_app.command("sign")
def ta_sign(
    request_path: Annotated[Path, typer.Argument(help="The signing request written by apply online.")],
    response_path: Annotated[Path, typer.Option("--out", "-o", help="Where to write the signed response.")],
    repo: Annotated[
        Path, typer.Option("--repo", help="This machine's copy of the desired-state directory.")
    ] = Path(),
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Sign without asking.")] = False,
    now: NowOpt = None,
) -> None:
    """On the offline machine: show what the request asks the trust anchor to sign, confirm, sign."""
    try:
        desired = _desired(repo)
        request, raw = read_request(request_path)
        problems = ceremony.check_against(request, desired)
        if problems:
            for problem in problems:
                err.print(f"  {problem}", markup=False)
            _fail(
                f"the request does not match the desired state in {repo} ({len(problems)} difference(s)): "
                "bring this copy up to date, or find out who changed the request; nothing was signed"
            )
        signer = _offline_key_signer(desired)
        _key, create = ceremony.signing_key(request, signer)
        _show_request(request, raw, create)
        if not yes:
            if not sys.stdin.isatty():
                _fail("no terminal to confirm on; re-run with --yes to sign without a prompt")
            if not typer.confirm("Sign these objects with the trust anchor's key?", default=False):
                _fail("not signed: no response was written")
        response = ceremony.sign(request, raw, signer, clock.now(now))
        response_path.write_bytes(dumps(response))
    except OPERATOR_ERRORS as exc:
        _fail(str(exc))
    out.print(
        f"Signed {len(response.files)} objects with key {response.key_id}. Wrote {response_path}: carry it "
        f"to the online machine and run 'rpkictl ta import {response_path.name}'."
    )


def _show_request(request: SigningRequest, raw: bytes, create: bool) -> None:
    out.print(f"[bold]Signing request {request.request_id}[/] (fingerprint {fingerprint(raw)})")
    out.print(
        f"  written {request.created_at:%Y-%m-%dT%H:%M:%SZ}, "
        f"expires {request.expires_at:%Y-%m-%dT%H:%M:%SZ}; "
        f"desired state {request.git_commit or request.desired_digest[:12]}"
    )
    key = "a NEW key will be created" if create else f"key {request.key_id}"
    out.print(f"  trust anchor {request.trust_anchor} ({key})")
    for spec in request.certificates:
        what = "its own certificate" if spec.self_signed else f"certificate for {spec.subject}"
        out.print(f"  sign {what} ({spec.path}): {spec.resources}; {spec.why}", markup=False)
    point = request.point
    out.print(
        f"  sign the CRL ({len(point.revoked)} revoked serial(s)) and the manifest "
        f"({len(point.keep)} file(s) kept as published)"
    )
    for line in request.summary:
        out.print(f"    {line}", markup=False)


@ta_app.command("import")
def ta_import(
    response_path: Annotated[Path, typer.Argument(help="The response written by 'rpkictl ta sign'.")],
    repo: RepoArg = Path(),
    now: NowOpt = None,
    expect_key: Annotated[
        str | None,
        typer.Option(
            "--expect-key",
            help="The trust anchor key id that 'rpkictl ta sign' printed; required when no trust anchor key "
            "is published yet (the first ceremony, or after the publication point was lost).",
        ),
    ] = None,
) -> None:
    """Online: verify the offline trust anchor's response against the waiting request, and publish it."""
    try:
        current = clock.now(now)
        desired = _desired(repo)
        directory = desired.publication.directory
        with lock.acquire(
            directory, who=audit.who(), operation="ta import", plan_id=None, timeout=timedelta(0)
        ) as held:
            workspace = engine.workspace_for(desired)
            imported = engine.import_signed(
                workspace, response_path, current, expect_key=expect_key, held=held
            )
            record = {
                "who": audit.who(),
                "status": "ta-imported",
                "request_id": imported.request_id,
                "desired_digest": desired.digest,
                "changes": [
                    *(f"write {p}" for p in imported.written),
                    *(f"remove {p}" for p in imported.removed),
                ],
                "summary": f"offline trust anchor response {imported.request_id[:12]} imported",
            }
            audit.append(desired.audit_log_path, record, now=clock.now())  # when it ran, not --now
    except lock.LockHeld as exc:
        _fail(f"the publication point is locked: {exc.holder.describe()}", EXIT_LOCKED)
    except engine.AuditedApplyError as exc:  # after the rsync swap: it says what is published
        _fail(str(exc))
    except OPERATOR_ERRORS as exc:
        _fail(f"{exc}; nothing was published")
    except KeyboardInterrupt:
        _fail(
            "interrupted: the lock is released; 'rpkictl status' shows what is published now, and "
            "'rpkictl ta import' can be run again",
            EXIT_INTERRUPTED,
        )
    out.print(
        f"Imported {imported.files} objects signed offline by trust anchor key {imported.key_id}: "
        f"{len(imported.written)} files written, "
        f"{len(imported.removed)} removed. Published in {workspace.rsync_dir}."
    )


oob_app = typer.Typer(
    help="RFC 8183 setup files: requests for our CAs to become a child or publisher elsewhere, and the "
    "responses for external children and publishers declared in the desired state.",
    no_args_is_help=True,
)
app.add_typer(oob_app, name="oob")

CaArg = Annotated[str, typer.Argument(help="The name of one of our CAs.")]
OobOutOpt = Annotated[
    Path | None, typer.Option("--out", "-o", help="Write the XML to this file instead of printing it.")
]
ServiceUriOpt = Annotated[
    str | None,
    typer.Option(
        "--service-uri",
        metavar="BASE",
        help="Where 'rpkictl serve' is reached (e.g. https://ca.example.net/rpki); the service URI is "
        "BASE/rfc6492/HANDLE or BASE/rfc8181/HANDLE. Default: serve.base_uri of rpki.yaml.",
    ),
]
NewCaSignerOpt = Annotated[
    str | None,
    typer.Option(
        "--signer",
        metavar="NAME",
        help="For a CA not declared yet (its CA file names the parent's answer, which comes after this "
        "request): the signer of rpki.yaml that keeps its keys. Only rpki.yaml is read then.",
    ),
]
#: What the out-of-band commands may fail with, besides the operator errors of every command.
OOB_ERRORS: tuple[type[Exception], ...] = (*OPERATOR_ERRORS, exchange.ExchangeError, ProtocolError, OSError)


def _identity(desired: DesiredState, owner: str, signer_name: str, now: datetime) -> IdentityCertificate:
    """Our identity for ``owner``, its key created in the signer the first time (see ``identity``)."""
    return _identity_in(desired.signers, identities.directory(desired), owner, signer_name, now)


def _identity_in(
    signers: dict[str, SignerConfig], store: Path, owner: str, signer_name: str, now: datetime
) -> IdentityCertificate:
    config = signers.get(signer_name)
    if config is None:
        _fail(f"rpki.yaml has no signer {signer_name!r} (its signers: {', '.join(sorted(signers))})")
    if config.type == "offline":
        _fail(
            f"signer {signer_name!r} is offline: a BPKI identity signs protocol messages online, so "
            f"{owner!r} cannot have one there"
        )
    _key, found = identities.ensure(open_signer(config), owner, store, now)
    return found


def _request_identity(repo: Path, ca: str, signer: str | None, now: datetime) -> IdentityCertificate:
    """The identity of our CA ``ca`` for a request: of a declared CA, in its signer; with ``signer``, of
    a CA not declared yet (its CA file cannot name the parent's answer before there is one), from
    rpki.yaml alone."""
    if signer is None:
        desired = _desired(repo)
        found = exchange.find_ca(desired, ca)
        return _identity(desired, found.name, found.signer, now)
    if not CA_NAME_RE.match(ca):
        _fail(f"{ca!r} is not a usable CA name ({HANDLE_RULE})")
    try:
        settings = load_settings(_root(repo))
    except DesiredStateError as exc:
        for diagnostic in exc.diagnostics:
            err.print(str(diagnostic), markup=False)
        _fail(f"{len(exc.diagnostics)} problem(s) in rpki.yaml; nothing was written")
    return _identity_in(settings.signers, settings.directory / identities.STORE, ca, signer, now)


def _hand_out(message: oob.Message, output: Path | None, identity: IdentityCertificate, what: str) -> None:
    """Print the XML, or write it and say which identity it carries (the fingerprint to compare with
    the peer over another channel)."""
    data = oob.render(message)
    if output is None:
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
        return
    output.write_bytes(data)
    out.print(f"Wrote {output}: {what}; identity SHA-256 fingerprint {identity.fingerprint()}", markup=False)


@oob_app.command("child-request")
def oob_child_request(
    ca: CaArg,
    repo: RepoArg = Path(),
    output: OobOutOpt = None,
    now: NowOpt = None,
    signer: NewCaSignerOpt = None,
) -> None:
    """Print the child_request for CA to become a child of another parent (a registry's portal, Krill);
    creates the CA's BPKI identity key the first time."""
    try:
        identity = _request_identity(repo, ca, signer, clock.now(now))
        message = oob.ChildRequest(child_handle=ca, identity=identity.der)
        _hand_out(message, output, identity, "upload it to the parent")
    except OOB_ERRORS as exc:
        _fail(str(exc))


@oob_app.command("publisher-request")
def oob_publisher_request(
    ca: CaArg,
    repo: RepoArg = Path(),
    output: OobOutOpt = None,
    now: NowOpt = None,
    signer: NewCaSignerOpt = None,
) -> None:
    """Print the publisher_request for CA to publish at another publication server; creates the CA's
    BPKI identity key the first time."""
    try:
        identity = _request_identity(repo, ca, signer, clock.now(now))
        message = oob.PublisherRequest(publisher_handle=ca, identity=identity.der)
        _hand_out(message, output, identity, "send it to the publication server's operator")
    except OOB_ERRORS as exc:
        _fail(str(exc))


@oob_app.command("parent-response")
def oob_parent_response(
    ca: CaArg,
    child: Annotated[str, typer.Argument(help="The handle of an external child declared under CA.")],
    repo: RepoArg = Path(),
    service_uri: ServiceUriOpt = None,
    output: OobOutOpt = None,
    now: NowOpt = None,
) -> None:
    """Print the parent_response for an external child of CA declared in its 'children:', with CA's
    BPKI identity (created the first time)."""
    try:
        desired = _desired(repo)
        found = exchange.find_ca(desired, ca)
        declared = exchange.find_child(desired, found, child)
        base = exchange.base_uri(desired, service_uri)
        identity = _identity(desired, found.name, found.signer, clock.now(now))
        message = exchange.parent_response(found, declared, identity, base)
        _hand_out(message, output, identity, "send it to the child's operator")
    except OOB_ERRORS as exc:
        _fail(str(exc))


@oob_app.command("repository-response")
def oob_repository_response(
    publisher: Annotated[str, typer.Argument(help="The handle of a publisher declared in rpki.yaml.")],
    repo: RepoArg = Path(),
    service_uri: ServiceUriOpt = None,
    output: OobOutOpt = None,
    now: NowOpt = None,
) -> None:
    """Print the repository_response for a publisher declared in rpki.yaml's 'publishers:', with the
    publication server's BPKI identity (created the first time, in serve.signer)."""
    try:
        desired = _desired(repo)
        declared = exchange.find_publisher(desired, publisher)
        base = exchange.base_uri(desired, service_uri)
        identity = _identity(desired, identities.REPOSITORY, desired.serve.signer, clock.now(now))
        message = exchange.repository_response(desired, declared, identity, base)
        _hand_out(message, output, identity, "send it to the publisher's operator")
    except OOB_ERRORS as exc:
        _fail(str(exc))


CHECK_EXIT = {Severity.INFO: 0, Severity.WARNING: 1, Severity.CRITICAL: 2}


def _duration(value: str, option: str) -> timedelta:
    """An option's duration, or a usage error that names the option."""
    try:
        return parse_duration(value)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint=option) from exc


def _running_clock(now: str | None, simulate: bool) -> Callable[[], datetime]:
    """The time for a command that runs on (reconcile): the system clock, or with --now a clock that
    starts there and runs at the real pace (a usage error when --now is not a time it may sign at)."""
    try:
        start = clock.signing_time(now, simulate=simulate)
    except clock.ClockError as exc:
        raise typer.BadParameter(str(exc).removeprefix("--now "), param_hint="--now") from exc
    if now is None:
        return clock.now
    began = time.monotonic()
    return lambda: start + timedelta(seconds=time.monotonic() - began)


def _root(repo: Path) -> Path:
    """The desired-state directory ``repo`` lies in (see :mod:`reconciler.desired.discover`)."""
    try:
        return desired_root(repo)
    except DesiredStateError as exc:
        for diagnostic in exc.diagnostics:
            err.print(str(diagnostic), markup=False)
        _fail("no desired state there; nothing was signed or written")


def _margins(warn: str, critical: str) -> tuple[timedelta, timedelta]:
    return _duration(warn, "--warn"), _duration(critical, "--critical")


WarnOpt = Annotated[
    str,
    typer.Option("--warn", help="Warn when an object (certificate, manifest, CRL, ROA) expires within this."),
]
CriticalOpt = Annotated[str, typer.Option("--critical", help="Critical when it expires within this.")]


@app.command()
def check(
    repo: RepoArg = Path(),
    warn: WarnOpt = "4h",
    critical: CriticalOpt = "1h",
    now: NowOpt = None,
    published: PublishedOpt = None,
    cache: CacheOpt = None,
) -> None:
    """Monitoring check: exit 0 ok, 1 warning, 2 critical, one line per problem with what to do.

    Covers the soonest expiry anywhere in the tree (certificates, manifests, CRLs, ROAs), drift between
    the desired state and what is published, the trust anchor's reminders (rpki.yaml's
    ta_reminder_before and ta_critical_before) and renewals waiting for the offline signer."""
    margins = _margins(warn, critical)
    try:
        workspace = engine.review_workspace(
            engine.load_desired(repo, caches=published is None), published, cache
        )
        findings = engine.check(workspace, clock.now(now), warn=margins[0], critical=margins[1])
    except DesiredStateError as exc:
        for diagnostic in exc.diagnostics:
            out.print(f"CRITICAL: {diagnostic}", markup=False)
        raise typer.Exit(CHECK_EXIT[Severity.CRITICAL]) from exc
    except OPERATOR_ERRORS as exc:
        out.print(f"CRITICAL: cannot check: {exc}", markup=False)
        raise typer.Exit(CHECK_EXIT[Severity.CRITICAL]) from exc
    from reconciler import health  # noqa: PLC0415 - monitoring code loads only for check and status

    level = health.worst(findings)
    shown = [f for f in findings if f.severity is not Severity.INFO]
    if not shown:
        out.print(
            "OK: every object is valid beyond the warning margins, published matches desired, "
            "nothing waits for a person"
        )
    for finding in sorted(shown, key=lambda f: -health.RANK[f.severity]):
        out.print(f"{finding.severity.value.upper()}: {finding.ca}: {finding.message}", markup=False)
    raise typer.Exit(CHECK_EXIT[level])


class StatusFormat(StrEnum):
    table = "table"
    json = "json"
    prometheus = "prometheus"
    html = "html"


@app.command()
def status(
    repo: RepoArg = Path(),
    fmt: Annotated[
        StatusFormat,
        typer.Option(
            "--format",
            help="table (terminal), json (tools), prometheus (node_exporter textfile), html (a report page).",
        ),
    ] = StatusFormat.table,
    output: Annotated[
        Path | None,
        typer.Option(
            "--out",
            "-o",
            help="Write to this file, replacing it in one rename (readers never see half a file).",
        ),
    ] = None,
    warn: WarnOpt = "4h",
    critical: CriticalOpt = "1h",
    now: NowOpt = None,
    published: PublishedOpt = None,
    cache: CacheOpt = None,
) -> None:
    """Each CA in the tree: resources, ROAs and VRPs, key and roll phase, when its certificate, manifest,
    CRL and ROAs expire and are renewed, drift, problems; and the last apply.

    Exit 0 when the report was written (whatever it says: 'rpkictl check' is the alerting verdict), 1 on
    error."""
    from reconciler.status import html as status_html  # noqa: PLC0415 - see check
    from reconciler.status import prometheus as status_prometheus  # noqa: PLC0415
    from reconciler.status import table as status_table  # noqa: PLC0415

    margins = _margins(warn, critical)
    try:
        report = engine.status(
            _open(repo, published, cache), clock.now(now), warn=margins[0], critical=margins[1]
        )
    except OPERATOR_ERRORS as exc:
        _fail(str(exc))
    if fmt is StatusFormat.table:
        if output is None:
            out.print(status_table.render(report, out.width), soft_wrap=False)
            return
        console = Console(record=True, width=160, file=io.StringIO())
        console.print(status_table.render(report, console.width))
        rendered = console.export_text()
    elif fmt is StatusFormat.json:
        rendered = report.model_dump_json(indent=2) + "\n"
    elif fmt is StatusFormat.prometheus:
        rendered = status_prometheus.render(report)
    else:
        rendered = status_html.render(report)
    if output is None:
        sys.stdout.write(rendered)
        return
    try:
        fsutil.replace_public(output, rendered.encode())
    except OSError as exc:
        _fail(f"cannot write {output}: {exc.strerror or exc}")


@app.command()
def reconcile(
    repo: RepoArg = Path(),
    interval: Annotated[str, typer.Option("--interval", help="Time between cycles (e.g. 10m).")] = "10m",
    max_backoff: Annotated[
        str, typer.Option("--max-backoff", help="Longest wait after repeated failures.")
    ] = "1h",
    once: Annotated[
        bool, typer.Option("--once", help="One cycle, then exit (for a systemd timer or cron).")
    ] = False,
    routine_only: Annotated[
        bool,
        typer.Option(
            "--routine-only", help="Only manifest/CRL renewals and scheduled re-issues, even without gates."
        ),
    ] = False,
    git_pull: Annotated[
        bool,
        typer.Option("--pull", help="Fast-forward the desired-state checkout from its upstream each cycle."),
    ] = False,
    allow_uncommitted: Annotated[
        bool,
        typer.Option(
            "--allow-uncommitted",
            help="Apply the files as they are: uncommitted edits too, or a desired state outside Git.",
        ),
    ] = False,
    now: NowOpt = None,
    simulate_time: SimulateTimeOpt = False,
) -> None:
    """Plan and apply on a schedule what needs no approval; report gated changes without applying them.

    What is applied is the desired state committed in Git (HEAD, after --pull): uncommitted edits to it
    are reported on every cycle and left alone, while HEAD (renewals included) is applied. Outside Git
    it refuses to run unless --allow-uncommitted says to apply the files as they are.

    With no gate in the plan, everything is applied (renewals, drift repair, the merged desired state);
    with a gate, only the routine renewals. Failures back off (interval, 2x, 4x, ... up to --max-backoff).
    SIGTERM or SIGINT stops the loop after the current cycle, exit 0. With --once: exit 0 when the cycle
    succeeded (changes waiting for approval are reported, not an error), 1 when it failed. With --now,
    the first cycle runs at that time and the clock runs on from it."""
    every, longest = _duration(interval, "--interval"), _duration(max_backoff, "--max-backoff")
    cycle_time = _running_clock(now, simulate_time)

    def log(message: str) -> None:
        out.print(f"{cycle_time():%Y-%m-%dT%H:%M:%SZ} reconcile: {message}", markup=False, highlight=False)

    loop = reconcile_loop.Loop(
        _root(repo),
        every,
        max(longest, every),
        log,
        routine_only=routine_only,
        git_pull=git_pull,
        allow_uncommitted=allow_uncommitted,
        now=cycle_time,
    )
    if once:
        try:
            succeeded = loop.once()
        except engine.ApplyInterrupted as exc:  # the lock is released by now
            _fail(f"{exc}; the lock is released", EXIT_INTERRUPTED)
        raise typer.Exit(EXIT_OK if succeeded else EXIT_ERROR)
    reconcile_loop.install_signal_handlers(loop)
    loop.run()


@app.command()
def serve(
    repo: RepoArg = Path(),
    host: Annotated[
        str,
        typer.Option(
            "--host",
            metavar="ADDRESS",
            help="Address to listen on; 127.0.0.1 behind a reverse proxy doing TLS.",
        ),
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=0, max=65535, metavar="PORT", help="TCP port.")] = 8080,
    max_updown_body: Annotated[
        int,
        typer.Option(
            "--max-rfc6492-body", min=1, metavar="BYTES", help="Largest RFC 6492 request (413 above)."
        ),
    ] = 1024 * 1024,
    max_publication_body: Annotated[
        int,
        typer.Option(
            "--max-rfc8181-body", min=1, metavar="BYTES", help="Largest RFC 8181 request (413 above)."
        ),
    ] = 16 * 1024 * 1024,
    threads: Annotated[
        int, typer.Option("--threads", min=1, metavar="N", help="Requests answered at once.")
    ] = 8,
    connection_limit: Annotated[
        int, typer.Option("--connection-limit", min=1, metavar="N", help="Open connections; more wait.")
    ] = 100,
    channel_timeout: Annotated[
        str,
        typer.Option(
            "--channel-timeout",
            metavar="DURATION",
            help="Close a connection silent this long (also mid-request).",
        ),
    ] = "30s",
    stop_grace: Annotated[
        str,
        typer.Option(
            "--stop-grace",
            metavar="DURATION",
            help="On SIGTERM, how long requests in progress may take to finish.",
        ),
    ] = "30s",
    trusted_proxy: Annotated[
        str | None,
        typer.Option(
            "--trusted-proxy",
            metavar="ADDRESS",
            help="The reverse proxy's address: its X-Forwarded-For names the client in the log.",
        ),
    ] = None,
    allow_uncommitted: Annotated[
        bool,
        typer.Option(
            "--allow-uncommitted",
            help="Serve the desired state's files as they are, edits nobody committed included (needed "
            "outside Git). By default what is served is what HEAD holds, as for reconcile.",
        ),
    ] = False,
) -> None:
    """Answer external children (RFC 6492, POST /rfc6492/HANDLE) and publishers (RFC 8181,
    POST /rfc8181/HANDLE) declared in the desired state as committed in Git; GET /healthz answers "ok".

    An entitlement is what a child is certified for on request, unattended: like the reconcile loop,
    serve answers from what HEAD holds, never from an edit nobody reviewed.

    Plain HTTP: terminate TLS at a reverse proxy (the messages are CMS-signed; docs/operations.md).
    Exit 1 when nothing is declared to serve. SIGTERM or SIGINT stops it after the requests in progress
    (at most --stop-grace), exit 0. A change to children: or publishers: takes effect on restart."""
    from reconciler import serve as http  # noqa: PLC0415 - the server loads only for this command
    from reconciler.serve import responders  # noqa: PLC0415

    limits = http.Limits(
        max_updown_body=max_updown_body,
        max_publication_body=max_publication_body,
        threads=threads,
        connection_limit=connection_limit,
        channel_timeout=max(1, round(_duration(channel_timeout, "--channel-timeout").total_seconds())),
        stop_grace=max(1, round(_duration(stop_grace, "--stop-grace").total_seconds())),
    )

    def log(message: str) -> None:
        out.print(f"{clock.now():%Y-%m-%dT%H:%M:%SZ} serve: {message}", markup=False, highlight=False)

    root = _root(repo)

    def committed() -> DesiredState:
        return reconcile_loop.committed_state(root, allow_uncommitted=allow_uncommitted).desired

    failures: tuple[type[Exception], ...] = (
        *OPERATOR_ERRORS,
        ProtocolError,
        OSError,
        reconcile_loop.UncommittedError,
        GitContextError,
    )
    try:
        desired = committed()
    except DesiredStateError as exc:
        for diagnostic in exc.diagnostics:
            err.print(str(diagnostic), markup=False)
        _fail(f"{len(exc.diagnostics)} problem(s) in the desired state; nothing is served")
    except failures as exc:
        _fail(str(exc))
    try:
        from reconciler.serve.parent import source_fingerprint  # noqa: PLC0415 - as the server, on use

        fingerprint = source_fingerprint(root, allow_uncommitted=allow_uncommitted)
        served = responders.build(desired, committed, clock.now(), log, fingerprint=fingerprint)
    except responders.NothingToServe as exc:
        _fail(str(exc))
    except failures as exc:
        _fail(f"cannot start the responders: {exc}")
    application = http.make_app(served.updown, served.publication, limits, log)
    try:
        server = http.Server(application, host, port, limits, trusted_proxy=trusted_proxy)
    except OSError as exc:
        _fail(f"cannot listen on {host} port {port}: {exc.strerror or exc}")
    stop = http.StopRequest()
    http.install_signal_handlers(stop)
    where = ", ".join(f"http://[{h}]:{p}" if ":" in h else f"http://{h}:{p}" for h, p in server.addresses)
    log(f"serving {served.describe()} on {where} (GET /healthz for health checks)")
    server.serve(stop, log)


@app.command()
def tal(
    repo: RepoArg = Path(),
    output: Annotated[Path | None, typer.Option("--out", "-o", help="Write the TAL to this file.")] = None,
    now: NowOpt = None,
) -> None:
    """Print the trust anchor locator (RFC 8630) that relying parties configure.

    A TAL does not change with time; --now is checked and accepted as every command accepts it."""
    try:
        clock.now(now)
        locator = engine.trust_anchor_locator(_open(repo))
    except OPERATOR_ERRORS as exc:
        _fail(str(exc))
    if output is None:
        sys.stdout.write(locator)
    else:
        output.write_text(locator)


@app.command("log")
def show_log(
    repo: RepoArg = Path(),
    verify: Annotated[bool, typer.Option("--verify", help="Check the hash chain; exit 1 if broken.")] = False,
    now: NowOpt = None,
) -> None:
    """Show the audit log of applies (who, when and how long ago, commit, plan, approvals, changes).

    A damaged log is shown as far as it can be read, each unreadable line named; exit 1 then. Ages are
    counted to --now when given."""
    path = _desired(repo).audit_log_path
    try:
        current = clock.now(now)
    except clock.ClockError as exc:
        _fail(str(exc))
    try:
        entries, unreadable = audit.scan(path)
        problems = audit.verify(path) if verify else []
    except audit.AuditError as exc:
        _fail(str(exc))
    started = audit.started_times(entries)
    for entry, record in audit.outcomes(entries):
        out.print(_log_line(entry, record, current), markup=False)
        for detail in _log_details(entry, record, started.get(entry.seq)):
            out.print(f"    {detail}", markup=False)
        approvals = record.get("approvals")
        for approval in approvals if isinstance(approvals, list) else []:
            found = approval if isinstance(approval, dict) else {}
            gate, digest, how = (str(found.get(key, "?")) for key in ("gate", "hash", "how"))
            out.print(f"    approved {gate}:{digest[:16]} ({how})", markup=False)
    if verify:
        for problem in problems:
            err.print(f"{path}:{problem}", markup=False)
        if problems:
            _fail(f"the audit log {path} has been altered ({len(problems)} problem(s))")
        out.print(f"{path}: hash chain intact ({len(entries)} records)")
    elif unreadable:
        for problem in unreadable:
            err.print(f"{path}:{problem}", markup=False)
        _fail(f"the audit log {path} has {len(unreadable)} unreadable line(s): run 'rpkictl log --verify'")


def _log_line(entry: audit.AuditEntry, record: dict[str, object], now: datetime | None = None) -> str:
    """One apply, from fields that may hold anything (the log is a file anyone with access can edit);
    with ``now``, how long ago it was."""

    def field(key: str, width: int | None = None) -> str:
        value = record.get(key)
        shown = "-" if value is None or value == "" else audit.printable(str(value))
        return shown[:width] if width else shown

    dirty = "+dirty" if record.get("git_dirty") is True else ""
    line = (
        f"#{entry.seq} {entry.time:%Y-%m-%dT%H:%M:%SZ}{_ago(entry.time, now)} {field('status')} "
        f"by {field('who')} "
        f"commit {field('git_commit', 12)}{dirty} plan {field('plan_id', 12)}: {field('summary')}"
    )
    if record.get("status") in ("failed", "refused", audit.REPAIRED) and record.get("message"):
        line += f" ({field('message')})"
    return line


def _ago(then: datetime, now: datetime | None) -> str:
    if now is None:
        return ""
    if then > now:
        return f" (in {clock.describe_span(then - now)})"
    return f" ({clock.describe_span(now - then)} ago)"


def _log_details(entry: audit.AuditEntry, record: dict[str, object], started: datetime | None) -> list[str]:
    """The lines under an apply: uncommitted changes, how long it ran, the plan's and the signatures'
    time when they are not the record's (--simulate-time, a saved plan), the reason. Records written
    before these fields existed have none of them, and show none."""
    details = []
    if record.get("git_dirty") is True:
        commit = audit.printable(str(record.get("git_commit") or "-"))[:12]
        details.append(
            f"uncommitted changes on top of commit {commit} were applied: the commit alone does not hold "
            "what was published"
        )
    if "signing_time" in record:  # the record's own time is the system clock's
        if started is not None:
            took = (entry.time - started).total_seconds()
            details.append(f"started {started:%Y-%m-%d %H:%M:%S}Z, took {took:.0f}s")
        planned, signed = _log_time(record.get("plan_time")), _log_time(record.get("signing_time"))
        times = [(planned, "planned and signed")]
        if planned != signed:
            times = [(planned, "planned"), (signed, "signed")]
        for when, what in times:
            if when is not None and abs(when - entry.time) > clock.SIGNING_TOLERANCE:
                details.append(f"{what} for {when:%Y-%m-%dT%H:%M:%SZ}, not when it ran")
    reason = record.get("reason")
    if reason:
        details.append(f"reason: {audit.printable(str(reason))}")
    return details


def _log_time(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None


@app.command("force-unlock")
def force_unlock(
    lock_id: Annotated[str, typer.Argument(help="The lock ID that the refused apply printed.")],
    repo: RepoArg = Path(),
) -> None:
    """Remove a lock left by an apply that can no longer release it (only with its exact ID)."""
    try:
        info = lock.force_unlock(_desired(repo).publication.directory, lock_id)
    except lock.LockError as exc:
        _fail(str(exc))
    out.print(f"Removed the lock {info.describe()}")


def main() -> None:
    """Run the app, remapping Click's usage errors (exit 2) to 1 (``rpkictl`` starts in
    :func:`reconciler.entry.main`)."""
    try:
        code = clihelp.tidy(typer.main.get_command(app))(standalone_mode=False, prog_name="rpkictl")
    except UsageError as exc:
        exc.show()  # type: ignore[attr-defined]
        code = EXIT_ERROR
    except typer.Exit as exc:
        code = exc.exit_code
    except typer.Abort:
        err.print("aborted: nothing was signed or written")
        code = EXIT_ERROR
    if code == EXIT_INTERRUPTED and EXIT_INTERRUPTED not in _told:
        err.print("interrupted: nothing was signed or written", markup=False)
    _exit(code if isinstance(code, int) else EXIT_OK)


def _exit(code: int) -> NoReturn:
    """Leave without tearing the heap down object by object: after a plan over thousands of ROAs that
    teardown alone takes a noticeable part of a second. Output is flushed and exit handlers run first;
    with another thread still running (other than a daemon, which nothing waits for), the exit is the
    ordinary one, which waits for it."""
    if any(t.is_alive() and not t.daemon for t in threading.enumerate() if t is not threading.main_thread()):
        sys.exit(code)
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except (OSError, ValueError):  # a closed pipe: the reader is gone, there is nothing left to tell
        code = code or EXIT_ERROR
    atexit._run_exitfuncs()
    os._exit(code)
