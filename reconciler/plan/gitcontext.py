"""The Git side of a plan: which commit it was made from, and which intent entries changed since a revision.

A plan answers "what will apply do to the publication point"; a reviewer of a merge request also asks
"what did this change *declare*". The second answer comes from Git, not from the published objects: the
desired state at a base revision is loaded with the same loader as the work tree and the two loaded values
are compared entry by entry, so that reformatting, reordering or moving files never shows up as a change,
and every change that does show up points at the YAML line it came from.

Everything here goes through gitpython; repositories are opened, read and closed again within each call.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, fields, is_dataclass, replace
from datetime import timedelta
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any, Literal, get_args

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap

from reconciler.desired import CaIntent, DesiredState, DesiredStateError, RoaIntent, SourceLocation, load
from reconciler.desired.loader import SETTINGS_FILE
from reconciler.desired.model import AspaIntent, ExternalChild, PublisherQuota
from reconciler.desired.schema import format_duration, format_size
from reconciler.diagnostics import Diagnostic
from reconciler.resources import IPNetwork, Resources

if TYPE_CHECKING:  # gitpython is imported by the functions that use it: a plan outside Git never needs it
    import git

__all__ = [
    "ChangeKind",
    "Committed",
    "GitContextError",
    "GitInfo",
    "IntentChange",
    "git_info",
    "intent_changes",
    "load_committed",
    "uncommitted_files",
]

ChangeKind = Literal[
    "ca-added",
    "ca-removed",
    "resources-changed",
    "parent-changed",
    "roa-added",
    "roa-removed",
    "roa-changed",
    "aspa-added",
    "aspa-removed",
    "aspa-changed",
    "settings-changed",
    "external-child-added",
    "external-child-removed",
    "entitlement-changed",
    "external-child-changed",
    "publisher-added",
    "publisher-removed",
    "publisher-changed",
]
_KIND_ORDER: dict[str, int] = {kind: i for i, kind in enumerate(get_args(ChangeKind))}

# DesiredState fields that are not rpki.yaml settings: where it was loaded from, the CAs (compared entry
# by entry instead), a digest that changes with every byte of every file, and the external publishers
# (entries carrying parsed requests and certificates, not values to print as a setting).
_NOT_SETTINGS = frozenset({"root", "cas", "digest", "publishers"})

_LINK_MODE = 0o120000
_TYPE_MASK = 0o170000


@dataclass(frozen=True, slots=True)
class GitInfo:
    """What a plan records about the commit it was made from, so an audit record can name the exact input."""

    commit: str  # full hex SHA of HEAD
    dirty: bool  # uncommitted changes under the desired-state directory (tracked, or untracked *.yaml)
    branch: str | None  # None when HEAD is detached (as in most CI checkouts)


@dataclass(frozen=True, slots=True)
class IntentChange:
    """One declared change between a base revision and the work tree, in the reviewer's words.

    ``where`` is a location whose ``file`` is relative to the root of the Git work tree (for example
    ``state/cas/members/example-isp.yaml``), not absolute: the same form serves entries that exist in the
    work tree (added and changed ones) and entries that only exist in the base revision (removed ones),
    whose files may be gone from disk. ``ca`` is None for rpki.yaml settings.

    ``revision`` is the base revision (as given, e.g. ``origin/main``) when ``where`` is a line of that
    revision's file rather than of the work tree's: a removed entry has no line in the work tree, and its
    base line number would otherwise read as the line of whatever the work tree holds there now.
    """

    kind: ChangeKind
    ca: str | None
    summary: str
    where: SourceLocation | None
    revision: str | None = None

    def __str__(self) -> str:
        at = f" (at {self.revision})" if self.revision is not None else ""
        where = f"{self.where}{at}: " if self.where is not None else ""
        return f"{where}{self.kind}{f' [{self.ca}]' if self.ca else ''}: {self.summary}"


class GitContextError(Exception):
    """The Git side cannot be worked out: not a work tree, an unknown revision, or a base that does not load.

    When the base revision's desired state is broken, ``diagnostics`` lists its problems with paths
    relative to the Git work tree's root (the files exist only in that revision, not on disk).
    """

    diagnostics: list[Diagnostic]

    def __init__(self, message: str, diagnostics: Sequence[Diagnostic] = ()) -> None:
        super().__init__(message)
        self.diagnostics = list(diagnostics)


# --- opening the repository -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _WorkTree:
    """An open repository and where the desired-state directory sits inside it."""

    repo: git.Repo
    root: Path  # the work tree's root, resolved
    rel: PurePosixPath  # the desired-state directory relative to root ("." when it is the root)


@contextmanager
def _open_work_tree(repo_dir: Path) -> Iterator[_WorkTree | None]:
    """Open the Git work tree holding ``repo_dir`` (at any depth), or yield None when there is none.

    The repository is closed on exit: gitpython keeps ``git cat-file`` helpers running otherwise. A
    directory inside ``.git`` or a bare repository has no work tree, so it counts as "not a repository".
    """
    start = Path(repo_dir).expanduser().resolve()
    if "GIT_DIR" not in os.environ and not any((d / ".git").exists() for d in (start, *start.parents)):
        yield None  # no work tree can hold it: gitpython need not even be loaded
        return
    import git  # noqa: PLC0415 - see TYPE_CHECKING above
    from git.exc import InvalidGitRepositoryError, NoSuchPathError  # noqa: PLC0415

    try:
        repo = git.Repo(start, search_parent_directories=True)
    except (InvalidGitRepositoryError, NoSuchPathError, OSError):
        yield None
        return
    with repo:
        tree_dir = None if repo.bare else repo.working_tree_dir
        if tree_dir is None:
            yield None
            return
        root = Path(tree_dir).resolve()
        try:
            rel = PurePosixPath(start.relative_to(root).as_posix())
        except ValueError:
            yield None
            return
        if rel.parts[:1] == (".git",):
            yield None
            return
        yield _WorkTree(repo, root, rel)


def _under(path: str, rel: PurePosixPath) -> bool:
    """True when the work-tree-relative ``path`` lies in the desired-state directory ``rel``."""
    return rel == PurePosixPath(".") or PurePosixPath(path).is_relative_to(rel)


def git_info(repo_dir: Path) -> GitInfo | None:
    """HEAD's commit, branch and whether the desired state has uncommitted changes; None outside Git.

    None also when the repository has no commit yet: there is no revision a plan could name. "Dirty" is
    limited to the desired-state directory because only those files feed the plan; an edited README does
    not make a plan unreproducible, an edited CA file does. What counts is what :func:`uncommitted_files`
    lists.
    """
    with _open_work_tree(repo_dir) as found:
        if found is None:
            return None
        repo = found.repo
        try:
            commit = repo.head.commit.hexsha
        except ValueError:  # unborn branch: nothing committed yet
            return None
        dirty = bool(_uncommitted(found))
        branch = None if repo.head.is_detached else repo.active_branch.name
        return GitInfo(commit=commit, dirty=dirty, branch=branch)


def uncommitted_files(repo_dir: Path) -> tuple[str, ...] | None:
    """The desired-state files whose content is not HEAD's, relative to the Git work tree's root (as
    ``git status`` names them); None outside a Git work tree.

    That is: staged and unstaged changes to tracked files under the desired-state directory (a deleted
    file too), and the untracked or ignored files there that the loader reads anyway (``rpki.yaml``, and
    ``*.yaml`` or ``*.yml`` under ``cas/``): an ignored CA file is published as surely as a committed one.
    Other untracked files (notes, editor backups) are not the desired state and do not count.
    """
    with _open_work_tree(repo_dir) as found:
        return None if found is None else _uncommitted(found)


def _uncommitted(work: _WorkTree) -> tuple[str, ...]:
    out = work.repo.git.status(
        "--porcelain=v1",
        "-z",
        "--untracked-files=all",
        "--ignored=traditional",
        "--no-renames",
        "--",
        f":(literal){work.rel.as_posix()}",
    )
    files = []
    for item in out.split("\0"):
        code, path = item[:2], item[3:]
        if not path or not _under(path, work.rel):
            continue
        if code in ("??", "!!") and not _read_by_loader(PurePosixPath(path), work.rel):
            continue
        files.append(path)
    return tuple(sorted(set(files)))


def _read_by_loader(path: PurePosixPath, rel: PurePosixPath) -> bool:
    """Whether the loader reads this file of the desired-state directory ``rel`` (``.yml`` under cas/ is
    read to be refused)."""
    inside = path if rel == PurePosixPath(".") else path.relative_to(rel)
    if inside.as_posix() == SETTINGS_FILE:
        return True
    return inside.parts[:1] == ("cas",) and inside.suffix in (".yaml", ".yml")


@dataclass(frozen=True, slots=True)
class Committed:
    """The desired state exactly as HEAD holds it, with the paths it names as the checkout resolves them."""

    desired: DesiredState
    commit: str  # full hex SHA of the commit it was read from


def load_committed(repo_dir: Path) -> Committed:
    """Load the desired state of ``repo_dir`` as committed in HEAD, whatever the work tree holds now.

    HEAD's desired-state directory is written into a temporary copy of the work tree's root, recreated at
    its own absolute path inside a temporary directory (as for ``--base``), so that relative paths in
    rpki.yaml resolve there exactly as from the checkout; the loaded paths (the desired-state directory,
    the publication and key directories, the audit log, the files behind each location) are then mapped
    back to the real ones. What is signed and published is HEAD's; where it goes is the checkout's.

    Raises :class:`GitContextError` outside a Git work tree, before the first commit, when HEAD has no
    such directory, or when HEAD's desired state does not load (its problems listed, with paths relative
    to the work tree's root).
    """
    with _open_work_tree(repo_dir) as work:
        if work is None:
            raise GitContextError(f"{repo_dir} is not inside a Git work tree, so nothing in it is committed")
        try:
            commit = work.repo.head.commit
        except ValueError as exc:
            raise GitContextError(
                f"nothing is committed yet in {work.root}: commit the desired state first"
            ) from exc
        with tempfile.TemporaryDirectory(prefix="rpki-head-") as tmp:
            mirror_top = Path(tmp).resolve()
            mirror_root = mirror_top / work.root.relative_to(work.root.anchor)
            loaded = _load_at(
                commit,
                work,
                mirror_root,
                f"the committed desired state (HEAD {commit.hexsha[:12]}) does not load; fix it in a new "
                "commit",
            )
            if loaded is None:
                raise GitContextError(
                    f"the desired state {work.rel.as_posix()} is not in the commit HEAD "
                    f"({commit.hexsha[:12]}) of {work.root}: commit it first"
                )
            return Committed(_unmirror_desired(loaded, mirror_top), commit.hexsha)


def _unmirror_desired(desired: DesiredState, mirror_top: Path) -> DesiredState:
    """A desired state loaded from the temporary copy, with every path it holds mapped to the real one.
    CAs, ROAs and ASPAs carry only their source locations as paths: mapped one by one, not by
    :func:`_unmirror`, which would rebuild every resource set of a registry."""

    def where(location: SourceLocation | None) -> SourceLocation | None:
        if location is None:
            return None
        return replace(location, file=_real_path(location.file, mirror_top))

    cas = tuple(
        replace(
            ca,
            where=where(ca.where),
            roas=tuple(replace(roa, where=where(roa.where)) for roa in ca.roas),
            aspas=tuple(replace(aspa, where=where(aspa.where)) for aspa in ca.aspas),
            children=tuple(
                replace(
                    child, where=where(child.where), request_file=_real_path(child.request_file, mirror_top)
                )
                for child in ca.children
            ),
        )
        for ca in desired.cas
    )
    publishers = tuple(
        replace(
            publisher,
            where=where(publisher.where),
            request_file=_real_path(publisher.request_file, mirror_top),
        )
        for publisher in desired.publishers
    )
    return replace(
        desired,
        root=_real_path(desired.root, mirror_top),
        publication=_unmirror(desired.publication, mirror_top),
        signers=_unmirror(desired.signers, mirror_top),
        audit_log=_unmirror(desired.audit_log, mirror_top),
        cas=cas,
        publishers=publishers,
    )


def _resolve_revision(repo: git.Repo, base: str) -> git.Commit:
    """The commit ``base`` names (branch, tag, SHA, ``HEAD~1``...), or a GitContextError saying why not."""
    from git.exc import GitCommandError, ODBError  # noqa: PLC0415 - see TYPE_CHECKING above

    where = repo.working_tree_dir or repo.git_dir
    try:
        return repo.commit(base)
    except ValueError as exc:
        if "to type commit" in str(exc):  # a tree or blob, e.g. HEAD^{tree} or HEAD:rpki.yaml
            raise GitContextError(f"revision {base!r} in {where} is not a commit ({exc})") from exc
        reason = f": {exc}"
    except (ODBError, LookupError, GitCommandError) as exc:
        if "not enough parent commits" in str(exc):
            reason = ": the history is not that long"
        else:
            reason = f" ({exc})" if isinstance(exc, LookupError) else ""
    raise GitContextError(
        f"unknown revision {base!r} in {where}{reason}; use a branch, a tag, a commit SHA or e.g. HEAD~1 "
        "(fetch it first if it only exists on a remote)"
    )


# --- the base revision's desired state ------------------------------------------------------------------


def _safe_name(name: str) -> bool:
    """Git refuses such names, but a crafted tree object could still carry one."""
    return name not in ("", ".", "..") and "/" not in name and "\0" not in name


def _write_tree(tree: git.Tree, dest: Path, links: list[Path]) -> None:
    """Copy a Git tree's files below ``dest``; symbolic links are recreated and listed in ``links``.

    Submodules are skipped: their content is not in this repository's object database.
    """
    dest.mkdir(parents=True, exist_ok=True)
    for blob in tree.blobs:
        if not _safe_name(blob.name):
            continue
        data = blob.data_stream.read()
        if blob.mode & _TYPE_MASK == _LINK_MODE:
            (dest / blob.name).symlink_to(os.fsdecode(data))
            links.append(dest / blob.name)
        else:
            (dest / blob.name).write_bytes(data)
    for sub in tree.trees:
        if _safe_name(sub.name):
            _write_tree(sub, dest / sub.name, links)


def _materialise(commit: git.Commit, rel: PurePosixPath, git_root: Path) -> bool:
    """Write the desired-state directory as it was at ``commit`` to ``git_root / rel``; False if absent.

    A symbolic link that stays inside the desired-state directory (a CA file shared under another name,
    say) keeps working as in a checkout; one that leads out of it is removed, because in the temporary
    copy it could only reach real files outside the revision (``/``-absolute targets, the real keys).
    """
    import git  # noqa: PLC0415 - see TYPE_CHECKING above

    try:
        tree: object = commit.tree if rel == PurePosixPath(".") else commit.tree / rel.as_posix()
    except KeyError:
        return False
    if not isinstance(tree, git.Tree):
        return False
    top = git_root / rel
    links: list[Path] = []
    _write_tree(tree, top, links)
    escaping = [link for link in links if not Path(os.path.realpath(link)).is_relative_to(top)]
    for link in escaping:  # checked before any is removed: removing one can only break others
        link.unlink()
    return True


def _rebase_text(text: str, mirror_root: Path) -> str:
    """Replace the temporary directory in a loader message by the work-tree-relative form."""
    return text.replace(f"{mirror_root}{os.sep}", "").replace(str(mirror_root), ".")


def _rebase_diagnostic(diagnostic: Diagnostic, mirror_root: Path) -> Diagnostic:
    """A diagnostic from the base revision, pointing at repository paths instead of the temporary copy."""
    file = diagnostic.file
    if file.is_relative_to(mirror_root):
        file = file.relative_to(mirror_root)
    hint = None if diagnostic.hint is None else _rebase_text(diagnostic.hint, mirror_root)
    return Diagnostic(
        file, diagnostic.line, diagnostic.column, _rebase_text(diagnostic.message, mirror_root), hint
    )


def _load_at(commit: git.Commit, work: _WorkTree, mirror_root: Path, failure: str) -> DesiredState | None:
    """Load the desired state as it was at ``commit``; None when the commit has no such directory. When
    it does not load, :class:`GitContextError` says ``failure``, then its problems with repository paths.

    ``mirror_root`` is the work tree's root recreated at its own absolute path inside a temporary
    directory, so that relative paths in rpki.yaml (``../published``, ``../keys``) resolve inside the
    temporary directory exactly as they would from the work tree, and never reach the real keys or
    publication directory.
    """
    if not _materialise(commit, work.rel, mirror_root):
        return None
    try:
        return load(mirror_root / work.rel)
    except DesiredStateError as exc:
        diagnostics = [_rebase_diagnostic(d, mirror_root) for d in exc.diagnostics]
        listed = "\n".join(f"  {d}" for d in diagnostics)
        raise GitContextError(f"{failure}:\n{listed}", diagnostics) from exc


def _real_path(path: Path, mirror_top: Path) -> Path:
    """Where a path resolved inside the temporary mirror would point from the real work tree."""
    if not path.is_relative_to(mirror_top):
        return path  # absolute or ~ paths in rpki.yaml are the same from either copy
    real = Path(mirror_top.anchor) / path.relative_to(mirror_top)
    try:
        return real.resolve()  # as the loader would: through the same symbolic links
    except (OSError, RuntimeError):
        return real


def _unmirror(value: Any, mirror_top: Path) -> Any:
    """A loaded setting from the base revision with its paths mapped back to real-world paths."""
    if isinstance(value, Path):
        return _real_path(value, mirror_top)
    if is_dataclass(value) and not isinstance(value, type):
        changes = {f.name: _unmirror(getattr(value, f.name), mirror_top) for f in fields(value) if f.init}
        return replace(value, **changes)
    if isinstance(value, dict):
        return {key: _unmirror(item, mirror_top) for key, item in value.items()}
    if isinstance(value, tuple):
        return tuple(_unmirror(item, mirror_top) for item in value)
    return value


# --- YAML positions for changes the loaded model has no location for -------------------------------------


class _Positions:
    """Line and column of keys in YAML files, for changes to settings, parents and resources.

    The loaded model records where CAs and ROAs are; a changed parent or timing value is best shown at
    its own key, so the (already successfully loaded) file is parsed again here, once per file.
    """

    def __init__(self) -> None:
        self._roots: dict[Path, Any] = {}

    def _root(self, file: Path) -> Any:
        if file not in self._roots:
            try:
                self._roots[file] = YAML(typ="rt").load(file.read_text(encoding="utf-8-sig"))
            except Exception:  # only used to refine a location; the loader has read this file already
                self._roots[file] = None
        return self._roots[file]

    def deepest(self, file: Path, keys: Sequence[str]) -> tuple[int, int, int] | None:
        """``(depth, line, column)`` of the deepest key of ``keys`` present in ``file`` (1-based)."""
        node = self._root(file)
        found: tuple[int, int, int] | None = None
        for depth, key in enumerate(keys, 1):
            if not isinstance(node, CommentedMap) or key not in node:
                break
            try:
                line, column = node.lc.key(key)
            except (KeyError, IndexError, TypeError):  # keys merged in with <<: have no position
                break
            found = (depth, line + 1, column + 1)
            node = node[key]
        return found

    def at(self, file: Path, *candidates: Sequence[str]) -> tuple[int, int] | None:
        """The first candidate key path that is fully present in ``file``."""
        for keys in candidates:
            found = self.deepest(file, keys)
            if found is not None and found[0] == len(keys):
                return found[1], found[2]
        return None


# --- comparing ------------------------------------------------------------------------------------------


class _Absent:
    """A dictionary entry or setting present on one side only."""

    def __repr__(self) -> str:
        return "absent"


_ABSENT = _Absent()

_SortKey = tuple[int, int, int, tuple[int, int, int, int], int]


def _prefix_key(prefix: IPNetwork, asn: int) -> tuple[int, int, int, int]:
    return (prefix.version, int(prefix.network_address), prefix.prefixlen, asn)


_NO_PREFIX = (0, 0, 0, 0)


def _roa_text(roa: RoaIntent) -> str:
    return f"ROA AS{roa.asn} {roa.prefix} max {roa.max_length}"


def _one_line(text: str) -> str:
    return " ".join(text.splitlines())


def _comment_suffix(roa: RoaIntent) -> str:
    return f" (comment: {_one_line(roa.comment)})" if roa.comment else ""


def _roa_changed_summary(old: RoaIntent, new: RoaIntent) -> str:
    if old.max_length != new.max_length:
        text = f"ROA AS{new.asn} {new.prefix} max {old.max_length} -> max {new.max_length}"
    else:
        text = _roa_text(new)
    if old.comment == new.comment:
        return text + _comment_suffix(new)
    before = _one_line(old.comment) if old.comment else "(none)"
    after = _one_line(new.comment) if new.comment else "(none)"
    return f"{text}, comment: {before} -> {after}"


def _aspa_text(aspa: AspaIntent) -> str:
    """AS0 alone is the profile's way of saying "no provider at all"; it reads as such."""
    providers = "none (AS0)" if aspa.providers == (0,) else ", ".join(f"AS{p}" for p in aspa.providers)
    return f"ASPA AS{aspa.customer} -> {providers}"


def _aspa_changed_summary(old: AspaIntent, new: AspaIntent) -> str:
    """The providers gained (+) and lost (-), which is what a reviewer checks against the peering."""
    if old.providers != new.providers:
        gained = [f"+AS{p}" for p in new.providers if p not in old.providers]
        lost = [f"-AS{p}" for p in old.providers if p not in new.providers]
        text = f"ASPA AS{new.customer}: {' '.join(gained + lost)}"
    else:
        text = _aspa_text(new)
    if old.comment == new.comment:
        return text + _entry_comment(new.comment)
    return f"{text}, {_comment_change(old.comment, new.comment)}"


def _resources_text(resources: Resources) -> str:
    """The non-empty families, comma-separated so that "added ...; removed ..." stays readable."""
    return ", ".join(str(part) for part in (resources.asn, resources.ipv4, resources.ipv6) if part)


def _parent_text(ca: CaIntent) -> str:
    return "none (trust anchor)" if ca.trust_anchor or ca.parent is None else ca.parent


def _ca_added_summary(ca: CaIntent) -> str:
    role = "trust anchor" if ca.trust_anchor else f"parent {ca.parent}"
    return f"added CA {ca.name} ({role}) holding {ca.resources}"


def _ca_removed_summary(ca: CaIntent) -> str:
    role = "trust anchor" if ca.trust_anchor else f"parent {ca.parent}"
    count = len(ca.roas)
    return f"removed CA {ca.name} ({role}), which held {ca.resources} and {count} ROA{'s' * (count != 1)}"


def _children(state: DesiredState) -> dict[str, tuple[CaIntent, ExternalChild, int]]:
    """Every external child by handle, with its parent CA and its position in the CA's list."""
    return {child.handle: (ca, child, i) for ca in state.cas for i, child in enumerate(ca.children)}


def _entry_comment(comment: str | None) -> str:
    return f" (comment: {_one_line(comment)})" if comment else ""


def _comment_change(old: str | None, new: str | None) -> str:
    before = _one_line(old) if old else "(none)"
    after = _one_line(new) if new else "(none)"
    return f"comment: {before} -> {after}"


def _identity_text(old: str, new: str) -> str:
    """A new BPKI identity (a new RFC 8183 request): its messages verify against another certificate."""
    return f"new identity certificate (SHA-256 {old[:16]}... -> {new[:16]}...)"


def _entitlement_summary(handle: str, old: Resources, new: Resources) -> str:
    """``grown``, ``shrunk`` or ``changed``, naming the resources gained and lost."""
    added = new.subtract(old)
    removed = old.subtract(new)
    parts = [f"added {_resources_text(added)}"] if added else []
    parts += [f"removed {_resources_text(removed)}"] if removed else []
    direction = "changed" if added and removed else "grown" if added else "shrunk"
    text = f"external child {handle} entitlement {direction}: {'; '.join(parts)}"
    if removed:
        text += (
            f": apply re-issues a certificate holding any of it without it (gate ca-shrink@{handle}), or "
            f"revokes one left with nothing (gate ca-revoke@{handle}), with approval"
        )
    return text


def _quota_text(quota: PublisherQuota) -> str:
    return f"quota {quota.objects} objects, {format_size(quota.size)}"


def _quota_change(old: PublisherQuota, new: PublisherQuota) -> str:
    parts = []
    if old.objects != new.objects:
        parts.append(f"objects {old.objects} -> {new.objects}")
    if old.size != new.size:
        parts.append(f"size {format_size(old.size)} -> {format_size(new.size)}")
    return "quota " + ", ".join(parts)


def _differences(old: Any, new: Any, path: tuple[str, ...]) -> list[tuple[tuple[str, ...], Any, Any]]:
    """Every leaf where two loaded settings differ, as ``(key path, old, new)``.

    Recursing into dataclasses and dictionaries lets a summary say "manifest_validity 1d -> 2d" instead
    of printing two whole Timing objects.
    """
    if old == new:
        return []
    if is_dataclass(old) and not isinstance(old, type) and type(old) is type(new):
        found = []
        for f in fields(old):
            if f.compare:
                found += _differences(getattr(old, f.name), getattr(new, f.name), (*path, f.name))
        return found
    if isinstance(old, dict) and isinstance(new, dict):
        found = []
        for key in [*old, *(k for k in new if k not in old)]:
            found += _differences(old.get(key, _ABSENT), new.get(key, _ABSENT), (*path, str(key)))
        return found
    return [(path, old, new)]


class _Comparison:
    """The two loaded states and everything needed to describe their differences."""

    def __init__(
        self,
        work: _WorkTree,
        current: DesiredState,
        previous: DesiredState | None,
        mirror_root: Path,
        base: str = "base",
    ) -> None:
        self.work = work
        self.base = base  # the revision as the operator named it, for locations in its files
        self.current = current
        self.previous = previous
        self.mirror_root = mirror_root  # the temporary copy of the work tree's root, for base locations
        self.positions = _Positions()
        self.changes: list[tuple[_SortKey, IntentChange]] = []

    # -- locations

    def _relative(self, file: Path, *, in_base: bool) -> Path:
        root = self.mirror_root if in_base else self.work.root
        return file.relative_to(root) if file.is_relative_to(root) else file

    def _location(self, where: SourceLocation | None, *, in_base: bool) -> SourceLocation | None:
        if where is None:
            return None
        return SourceLocation(self._relative(where.file, in_base=in_base), where.line, where.column)

    def _key_location(self, ca: CaIntent, *candidates: Sequence[str]) -> SourceLocation | None:
        """The first present key of ``candidates`` in a work-tree CA's file, else the CA's own location."""
        if ca.where is None:
            return None
        found = self.positions.at(ca.where.file, *candidates)
        if found is None:
            return self._location(ca.where, in_base=False)
        return SourceLocation(self._relative(ca.where.file, in_base=False), *found)

    # -- recording

    def add(
        self,
        kind: ChangeKind,
        ca: str | None,
        summary: str,
        where: SourceLocation | None,
        *,
        slot: tuple[int, int],
        prefix: tuple[int, int, int, int] = _NO_PREFIX,
        tiebreak: int = 0,
        in_base: bool = False,
    ) -> None:
        """Record a change; ``slot`` is (0 for settings or 1 for CAs, the CA's position); ``in_base``
        when ``where`` is a line of the base revision's file."""
        key: _SortKey = (*slot, _KIND_ORDER[kind], prefix, tiebreak)
        revision = self.base if in_base and where is not None else None
        self.changes.append((key, IntentChange(kind, ca, summary, where, revision)))

    def result(self) -> list[IntentChange]:
        return [change for _, change in sorted(self.changes, key=lambda item: item[0])]

    # -- CAs and ROAs

    def ca_order(self) -> dict[str, int]:
        """Current CAs in load order (trust anchor first), then CAs that only the base had."""
        order = {ca.name: i for i, ca in enumerate(self.current.cas)}
        for ca in self.previous.cas if self.previous is not None else ():
            order.setdefault(ca.name, len(order))
        return order

    def compare_cas(self) -> None:
        order = self.ca_order()
        before = {ca.name: ca for ca in self.previous.cas} if self.previous is not None else {}
        after = {ca.name: ca for ca in self.current.cas}
        for name, new in after.items():
            old = before.get(name)
            if old is None:
                self.add(
                    "ca-added",
                    name,
                    _ca_added_summary(new),
                    self._location(new.where, in_base=False),
                    slot=(1, order[name]),
                )
            else:
                self.compare_ca(old, new, (1, order[name]))
        for name, old in before.items():
            if name not in after:
                self.add(
                    "ca-removed",
                    name,
                    _ca_removed_summary(old),
                    self._location(old.where, in_base=True),
                    slot=(1, order[name]),
                    in_base=True,
                )
        self.compare_roas(before, after, order)
        self.compare_aspas(before, after, order)

    def compare_ca(self, old: CaIntent, new: CaIntent, slot: tuple[int, int]) -> None:
        """Parent, resources and signer of a CA that both sides have."""
        name = new.name
        if (old.parent, old.trust_anchor) != (new.parent, new.trust_anchor):
            where = self._key_location(new, ("parent",), ("trust_anchor",))
            self.add(
                "parent-changed", name, f"parent {_parent_text(old)} -> {_parent_text(new)}", where, slot=slot
            )
        if old.resources != new.resources:
            added = new.resources.subtract(old.resources)
            removed = old.resources.subtract(new.resources)
            parts = [f"added {_resources_text(added)}"] if added else []
            parts += [f"removed {_resources_text(removed)}"] if removed else []
            changed = [
                family
                for family in ("asn", "ipv4", "ipv6")
                if getattr(old.resources, family) != getattr(new.resources, family)
            ]
            where = self._key_location(new, *(("resources", family) for family in changed), ("resources",))
            self.add("resources-changed", name, f"resources: {'; '.join(parts)}", where, slot=slot)
        if old.signer != new.signer:
            where = self._key_location(new, ("signer",))
            self.add("settings-changed", name, f"signer: {old.signer} -> {new.signer}", where, slot=slot)
        self.compare_ca_safety(old, new, slot)

    def compare_ca_safety(self, old: CaIntent, new: CaIntent, slot: tuple[int, int]) -> None:
        """A CA's own safety overrides; a change that only follows the global policy is reported once."""
        if self.previous is None or old.safety == new.safety:
            return
        if old.safety == self.previous.safety and new.safety == self.current.safety:
            return
        diffs = _differences(old.safety, new.safety, ())
        summary = "safety: " + "; ".join(self.describe(path, a, b) for path, a, b in diffs)
        keys = [("safety", *path) for path, _, _ in diffs]  # the first key this CA's file sets itself
        where = self._key_location(new, *keys, ("safety",))
        self.add("settings-changed", new.name, summary, where, slot=slot)

    def compare_roas(
        self, before: Mapping[str, CaIntent], after: Mapping[str, CaIntent], order: Mapping[str, int]
    ) -> None:
        """ROAs by identity (CA, AS, prefix): file, position and formatting do not matter."""
        old_roas = {(ca.name, roa.asn, roa.prefix): roa for ca in before.values() for roa in ca.roas}
        new_roas = {(ca.name, roa.asn, roa.prefix): roa for ca in after.values() for roa in ca.roas}
        for identity, roa in new_roas.items():
            ca_name = identity[0]
            slot = (1, order[ca_name])
            prefix = _prefix_key(roa.prefix, roa.asn)
            old = old_roas.get(identity)
            where = self._location(roa.where, in_base=False)
            if old is None:
                self.add(
                    "roa-added",
                    ca_name,
                    f"added {_roa_text(roa)}{_comment_suffix(roa)}",
                    where,
                    slot=slot,
                    prefix=prefix,
                )
            elif (old.max_length, old.comment) != (roa.max_length, roa.comment):
                self.add(
                    "roa-changed", ca_name, _roa_changed_summary(old, roa), where, slot=slot, prefix=prefix
                )
        for identity, roa in old_roas.items():
            if identity not in new_roas:
                ca_name = identity[0]
                self.add(
                    "roa-removed",
                    ca_name,
                    f"removed {_roa_text(roa)}{_comment_suffix(roa)}",
                    self._location(roa.where, in_base=True),
                    slot=(1, order[ca_name]),
                    prefix=_prefix_key(roa.prefix, roa.asn),
                    in_base=True,
                )

    def compare_aspas(
        self, before: Mapping[str, CaIntent], after: Mapping[str, CaIntent], order: Mapping[str, int]
    ) -> None:
        """ASPAs by identity (CA, customer AS), as ROAs: moving one to another CA is a removal and an
        addition."""
        old_aspas = {(ca.name, aspa.customer): aspa for ca in before.values() for aspa in ca.aspas}
        new_aspas = {(ca.name, aspa.customer): aspa for ca in after.values() for aspa in ca.aspas}
        for (ca_name, customer), aspa in new_aspas.items():
            slot = (1, order[ca_name])
            old = old_aspas.get((ca_name, customer))
            where = self._location(aspa.where, in_base=False)
            if old is None:
                summary = f"added {_aspa_text(aspa)}{_entry_comment(aspa.comment)}"
                self.add("aspa-added", ca_name, summary, where, slot=slot, tiebreak=customer)
            elif (old.providers, old.comment) != (aspa.providers, aspa.comment):
                summary = _aspa_changed_summary(old, aspa)
                self.add("aspa-changed", ca_name, summary, where, slot=slot, tiebreak=customer)
        for (ca_name, customer), aspa in old_aspas.items():
            if (ca_name, customer) not in new_aspas:
                self.add(
                    "aspa-removed",
                    ca_name,
                    f"removed {_aspa_text(aspa)}{_entry_comment(aspa.comment)}",
                    self._location(aspa.where, in_base=True),
                    slot=(1, order[ca_name]),
                    tiebreak=customer,
                    in_base=True,
                )

    # -- external children and publishers

    def _request_text(self, file: Path, state: DesiredState) -> str:
        """A request file as rpki.yaml names it: relative to the desired-state directory."""
        return file.relative_to(state.root).as_posix() if file.is_relative_to(state.root) else str(file)

    def compare_children(self) -> None:
        """External children by handle (unique across every CA): added, removed, or changed in
        entitlement, parent, identity or comment. Each is listed with its parent CA (the new one)."""
        order = self.ca_order()
        before = _children(self.previous) if self.previous is not None else {}
        after = _children(self.current)
        for handle, (ca, child, index) in after.items():
            slot = (1, order[ca.name])
            where = self._location(child.where, in_base=False)
            found = before.get(handle)
            if found is None:
                request = self._request_text(child.request_file, self.current)
                summary = (
                    f"added external child {handle} of {ca.name}, entitled to "
                    f"{_resources_text(child.resources)} (request {request}){_entry_comment(child.comment)}"
                )
                self.add("external-child-added", ca.name, summary, where, slot=slot, tiebreak=index)
                continue
            old_ca, old, _ = found
            if old.resources != child.resources:
                summary = _entitlement_summary(handle, old.resources, child.resources)
                self.add("entitlement-changed", ca.name, summary, where, slot=slot, tiebreak=index)
            parts = []
            if old_ca.name != ca.name:
                parts.append(f"parent {old_ca.name} -> {ca.name}")
            if old.request.identity != child.request.identity:
                parts.append(_identity_text(old.identity.fingerprint(), child.identity.fingerprint()))
            if old.comment != child.comment:
                parts.append(_comment_change(old.comment, child.comment))
            if parts:
                summary = f"external child {handle}: {'; '.join(parts)}"
                self.add("external-child-changed", ca.name, summary, where, slot=slot, tiebreak=index)
        for handle, (ca, child, index) in before.items():
            if handle in after:
                continue
            summary = (
                f"removed external child {handle} of {ca.name}, which was entitled to "
                f"{_resources_text(child.resources)}: apply revokes its certificates, with approval "
                f"(gate ca-revoke@{handle}){_entry_comment(child.comment)}"
            )
            self.add(
                "external-child-removed",
                ca.name,
                summary,
                self._location(child.where, in_base=True),
                slot=(1, order[ca.name]),
                tiebreak=index,
                in_base=True,
            )

    def compare_publishers(self) -> None:
        """Publishers by handle: added, removed, or with a new quota, identity or comment; listed after
        the settings, in rpki.yaml's order (then those only the base had)."""
        before = {p.handle: p for p in self.previous.publishers} if self.previous is not None else {}
        after = {p.handle: p for p in self.current.publishers}
        order = {handle: i for i, handle in enumerate([*after, *(h for h in before if h not in after)])}
        for handle, new in after.items():
            slot = (0, 1)
            where = self._location(new.where, in_base=False)
            old = before.get(handle)
            if old is None:
                request = self._request_text(new.request_file, self.current)
                summary = (
                    f"added publisher {handle} ({_quota_text(new.quota)}; request {request})"
                    f"{_entry_comment(new.comment)}"
                )
                self.add("publisher-added", None, summary, where, slot=slot, tiebreak=order[handle])
                continue
            parts = []
            if old.quota != new.quota:
                parts.append(_quota_change(old.quota, new.quota))
            if old.request.identity != new.request.identity:
                parts.append(_identity_text(old.identity.fingerprint(), new.identity.fingerprint()))
            if old.comment != new.comment:
                parts.append(_comment_change(old.comment, new.comment))
            if parts:
                summary = f"publisher {handle}: {'; '.join(parts)}"
                self.add("publisher-changed", None, summary, where, slot=slot, tiebreak=order[handle])
        for handle, old in before.items():
            if handle in after:
                continue
            summary = (
                f"removed publisher {handle} ({_quota_text(old.quota)}): apply withdraws the objects it "
                f"published here, with approval (gate publisher-remove@{handle}){_entry_comment(old.comment)}"
            )
            self.add(
                "publisher-removed",
                None,
                summary,
                self._location(old.where, in_base=True),
                slot=(0, 1),
                tiebreak=order[handle],
                in_base=True,
            )

    # -- settings

    def show(self, value: Any) -> str:
        """A setting's value the way rpki.yaml writes it (durations as ``1d``, paths relative to it)."""
        if value is None:
            return "none"
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, timedelta):
            return format_duration(value)
        if isinstance(value, Path):
            if value.is_relative_to(self.work.root.parent):  # beside or inside the repository
                return os.path.relpath(value, self.current.root)
            return str(value)
        if is_dataclass(value) and not isinstance(value, type):
            # An optional key left out (None, its default: e.g. a file signer's passphrase_env) is not shown.
            shown = (
                f"{f.name} {self.show(getattr(value, f.name))}"
                for f in fields(value)
                if f.name != "name" and not (getattr(value, f.name) is None and f.default is None)
            )
            return ", ".join(shown)
        return str(value)

    def describe(self, path: tuple[str, ...], old: Any, new: Any) -> str:
        label = ".".join(path)
        if old is _ABSENT:
            return f"added {label} ({self.show(new)})"
        if new is _ABSENT:
            return f"removed {label}"
        return f"{label + ' ' if label else ''}{self.show(old)} -> {self.show(new)}"

    def compare_settings(self, mirror_top: Path) -> None:
        """One change per top-level setting whose loaded value differs, paths compared as real paths."""
        if self.previous is None:
            return  # nothing to compare with; the CAs and ROAs all show up as added
        settings = [f.name for f in fields(DesiredState) if f.name not in _NOT_SETTINGS and f.compare]
        for index, name in enumerate(settings):
            old = _unmirror(getattr(self.previous, name), mirror_top)
            diffs = _differences(old, getattr(self.current, name), ())
            if not diffs:
                continue
            summary = f"{name}: " + "; ".join(self.describe(path, a, b) for path, a, b in diffs)
            where, in_base = self.setting_location(name, diffs[0][0])
            self.add("settings-changed", None, summary, where, slot=(0, 0), tiebreak=index, in_base=in_base)

    def setting_location(self, name: str, path: tuple[str, ...]) -> tuple[SourceLocation, bool]:
        """The changed key in the work tree's rpki.yaml; in the base's when the work tree dropped it
        (then True: the location is in the base revision)."""
        keys = (name, *path)
        current_file = self.current.root / SETTINGS_FILE
        found = self.positions.deepest(current_file, keys)
        if found is not None:
            return SourceLocation(self._relative(current_file, in_base=False), found[1], found[2]), False
        if self.previous is not None:
            base_file = self.previous.root / SETTINGS_FILE
            found = self.positions.deepest(base_file, keys)
            if found is not None:
                return SourceLocation(self._relative(base_file, in_base=True), found[1], found[2]), True
        return SourceLocation(self._relative(current_file, in_base=False), 1, 1), False


def intent_changes(repo_dir: Path, base: str) -> list[IntentChange]:
    """Which desired-state entries changed between revision ``base`` and the work tree of ``repo_dir``.

    ``repo_dir`` is the desired-state directory (holding rpki.yaml), anywhere inside a Git work tree. The
    work tree is loaded as it is on disk, uncommitted edits included, because that is what a plan is made
    from; the same directory at ``base`` is read from the commit's tree into a temporary copy and loaded
    with the same loader, so both sides are checked and resolved alike before they are compared:

    - CAs by name (added, removed, parent or resources changed; a CA's signer or safety overrides as
      ``settings-changed`` with ``ca`` set);
    - ROAs by ``(CA, AS, prefix)``: moving or reordering entries is no change, moving one to another CA is
      a removal and an addition, and the ROAs of an added or removed CA are listed one by one;
    - ASPAs likewise by ``(CA, customer AS)``, a change naming the providers gained and lost;
    - one ``settings-changed`` per top-level rpki.yaml setting whose loaded value differs;
    - external publishers by handle (``publisher-added``, ``publisher-removed``, and
      ``publisher-changed`` for a new quota, identity or comment), listed after the settings;
    - external children by handle, with their parent CA (``external-child-added``,
      ``external-child-removed``, ``entitlement-changed`` naming the resources it gains and loses, and
      ``external-child-changed`` for a new parent, identity or comment).

    When ``base`` has no desired-state directory yet, every CA, ROA and ASPA is "added" (there are no
    base settings to compare with). The list is ordered: settings first, then CAs as in
    ``DesiredState.cas`` (trust anchor first) followed by CAs only the base had, then by kind, then by
    prefix (ASPAs by customer AS). Locations are relative to the Git work tree's root (see
    :class:`IntentChange`).

    Raises :class:`GitContextError` when ``repo_dir`` is not in a Git work tree, ``base`` names no commit,
    or the base's desired state does not load; a broken work tree raises the loader's own
    :class:`DesiredStateError`, exactly as planning would, so it is reported the usual way.
    """
    with _open_work_tree(repo_dir) as work:
        if work is None:
            raise GitContextError(
                f"{repo_dir} is not inside a Git work tree, so there is no revision to compare with"
            )
        commit = _resolve_revision(work.repo, base)
        current = load(Path(repo_dir))
        with tempfile.TemporaryDirectory(prefix="rpki-base-") as tmp:
            mirror_top = Path(tmp).resolve()
            mirror_root = mirror_top / work.root.relative_to(work.root.anchor)
            previous = _load_at(
                commit,
                work,
                mirror_root,
                f"the desired state at revision {base!r} (commit {commit.hexsha[:12]}) does not load, so "
                "there is nothing to compare the work tree with; pick another base revision",
            )
            comparison = _Comparison(work, current, previous, mirror_root, base)
            comparison.compare_settings(mirror_top)
            comparison.compare_publishers()
            comparison.compare_cas()
            comparison.compare_children()
            return comparison.result()
