"""The Git side of plans, against real repositories made with gitpython in tmp_path.

Each test starts from the bundled example committed as ``state/`` inside a fresh repository, edits the
work tree (and sometimes commits), and checks exactly which intent changes are reported, in which words
and at which line: the summaries are what a reviewer reads in a merge request.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path

import git
import pytest

from reconciler.desired import DesiredState, DesiredStateError, SourceLocation, load
from reconciler.plan import gitcontext
from reconciler.plan.gitcontext import GitContextError, GitInfo, IntentChange, git_info, intent_changes

STATE = Path(__file__).resolve().parents[2] / "state"
ISP = "cas/members/example-isp.yaml"
ISP_PATH = Path("state") / ISP  # as reported: relative to the Git work tree's root
ONLINE_PATH = Path("state/cas/online.yaml")
SETTINGS_PATH = Path("state/rpki.yaml")


@dataclass
class Work:
    """A Git repository holding the bundled example under ``state/``, with helpers to change it."""

    repo: git.Repo
    root: Path

    @property
    def state(self) -> Path:
        return self.root / "state"

    def write(self, rel: str, text: str) -> None:
        path = self.state / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)

    def edit(self, rel: str, old: str, new: str) -> None:
        path = self.state / rel
        text = path.read_text()
        assert old in text, f"{old!r} not in {rel}"
        path.write_text(text.replace(old, new, 1))

    def append(self, rel: str, text: str) -> None:
        path = self.state / rel
        path.write_text(path.read_text() + text)

    def commit(self, message: str) -> git.Commit:
        """Stage every change in the work tree, deletions included, and commit it."""
        present = {
            path.relative_to(self.root).as_posix()
            for path in self.root.rglob("*")
            if path.is_file() and ".git" not in path.relative_to(self.root).parts
        }
        gone = {path for path, _stage in self.repo.index.entries} - present
        if gone:
            self.repo.index.remove(sorted(gone))
        self.repo.index.add(sorted(present))
        return self.repo.index.commit(message)

    def changes(self, base: str = "HEAD") -> list[IntentChange]:
        return intent_changes(self.state, base)


def init_repo(root: Path) -> git.Repo:
    repo = git.Repo.init(root, initial_branch="main")
    with repo.config_writer() as config:  # local to this repository, never the user's own config
        config.set_value("user", "name", "Test Operator")
        config.set_value("user", "email", "operator@example.net")
    return repo


@pytest.fixture
def work(tmp_path: Path) -> Iterator[Work]:
    """The bundled example committed as ``state/`` beside a README, on branch ``main``."""
    root = tmp_path / "repo"
    root.mkdir()
    shutil.copytree(STATE, root / "state")
    (root / "README.md").write_text("desired state for our RPKI CA\n")
    repo = init_repo(root)
    work = Work(repo, root)
    work.commit("the bundled example")
    yield work
    repo.close()


def at(path: Path, line: int, change: IntentChange) -> bool:
    """True when ``change`` points at ``path`` (relative to the repository root) and ``line``."""
    assert change.where is not None
    return (change.where.file, change.where.line) == (path, line)


def facts(changes: list[IntentChange]) -> list[tuple[str, str | None, str, str, int]]:
    """Changes as comparable tuples: kind, CA, summary, file and line."""
    out: list[tuple[str, str | None, str, str, int]] = []
    for change in changes:
        assert change.where is not None, change
        assert not change.where.file.is_absolute(), change
        out.append((change.kind, change.ca, change.summary, change.where.file.as_posix(), change.where.line))
    return out


# --- git_info -------------------------------------------------------------------------------------------


def test_git_info_names_head_and_branch(work: Work) -> None:
    info = git_info(work.state)
    assert info == GitInfo(commit=work.repo.head.commit.hexsha, dirty=False, branch="main")
    assert info is not None and len(info.commit) == 40


def test_git_info_from_a_subdirectory_and_from_the_root(work: Work) -> None:
    """The desired state is a subdirectory of the repository; any depth finds the same repository."""
    head = work.repo.head.commit.hexsha
    for directory in (work.state / "cas" / "members", work.state, work.root):
        info = git_info(directory)
        assert info is not None and info.commit == head


def test_git_info_dirty_after_editing_a_yaml(work: Work) -> None:
    work.edit(ISP, "max_length: 26", "max_length: 27  # wider")
    info = git_info(work.state)
    assert info is not None and info.dirty


def test_git_info_dirty_when_only_staged(work: Work) -> None:
    work.edit(ISP, "comment: anycast", "comment: anycast in two sites")
    work.repo.index.add([ISP_PATH.as_posix()])
    info = git_info(work.state)
    assert info is not None and info.dirty


def test_git_info_dirty_after_deleting_a_tracked_file(work: Work) -> None:
    (work.state / ISP).unlink()
    info = git_info(work.state)
    assert info is not None and info.dirty


def test_git_info_untracked_yaml_is_dirty_other_files_are_not(work: Work) -> None:
    (work.state / "notes.txt").write_text("not read by the loader\n")
    info = git_info(work.state)
    assert info is not None and not info.dirty
    work.write("cas/members/new.yaml", "name: new\n")
    info = git_info(work.state)
    assert info is not None and info.dirty


def test_git_info_changes_outside_the_desired_state_do_not_count(work: Work) -> None:
    (work.root / "README.md").write_text("edited\n")
    (work.root / "other.yaml").write_text("not: desired state\n")
    info = git_info(work.state)
    assert info is not None and not info.dirty
    assert git_info(work.root) == GitInfo(work.repo.head.commit.hexsha, dirty=True, branch="main")


def test_git_info_after_a_second_commit_is_clean_again(work: Work) -> None:
    work.edit(ISP, "max_length: 26", "max_length: 27")
    second = work.commit("wider anycast")
    assert git_info(work.state) == GitInfo(second.hexsha, dirty=False, branch="main")


def test_git_info_detached_head_has_no_branch(work: Work) -> None:
    work.repo.head.reference = work.repo.head.commit  # assigning a commit detaches HEAD
    info = git_info(work.state)
    assert info is not None and info.branch is None and info.commit == work.repo.head.commit.hexsha


def test_git_info_other_branch(work: Work) -> None:
    work.repo.create_head("review").checkout()
    info = git_info(work.state)
    assert info is not None and info.branch == "review"


def test_git_info_outside_git_is_none(tmp_path: Path) -> None:
    shutil.copytree(STATE, tmp_path / "plain" / "state")
    assert git_info(tmp_path / "plain" / "state") is None
    assert git_info(tmp_path / "does-not-exist") is None


def test_git_info_inside_dot_git_is_none(work: Work) -> None:
    assert git_info(work.root / ".git") is None
    assert git_info(work.root / ".git" / "objects") is None


def test_git_info_without_any_commit_is_none(tmp_path: Path) -> None:
    shutil.copytree(STATE, tmp_path / "empty" / "state")
    with init_repo(tmp_path / "empty"):
        assert git_info(tmp_path / "empty" / "state") is None


# --- intent_changes: ROAs -------------------------------------------------------------------------------


def test_no_edit_no_change(work: Work) -> None:
    assert work.changes() == []


def test_reformatting_and_comments_are_no_change(work: Work) -> None:
    work.edit(
        ISP,
        "  - {asn: AS64496, prefix: 192.0.2.0/24}\n",
        "  # the main aggregate\n  - asn: 64496\n    prefix: 192.0.2.0/24\n    max_length: 24\n",
    )
    work.edit(
        "rpki.yaml",
        "rsync_base: rsync://rpki.example.net/repo/",
        'rsync_base: "rsync://rpki.example.net/repo/"',
    )
    assert work.changes() == []


def test_add_a_roa(work: Work) -> None:
    work.append(ISP, "  - {asn: AS64497, prefix: 192.0.2.0/24, max_length: 25, comment: backup}\n")
    assert facts(work.changes()) == [
        (
            "roa-added",
            "example-isp",
            "added ROA AS64497 192.0.2.0/24 max 25 (comment: backup)",
            ISP_PATH.as_posix(),
            13,
        )
    ]


def test_remove_a_roa_points_into_the_base_revision(work: Work) -> None:
    work.edit(ISP, "  - {asn: AS0, prefix: 192.0.2.128/25}\n", "")
    changes = work.changes()
    assert facts(changes) == [
        ("roa-removed", "example-isp", "removed ROA AS0 192.0.2.128/25 max 25", ISP_PATH.as_posix(), 12)
    ]
    assert changes[0].where == SourceLocation(ISP_PATH, 12, 5)


def test_change_max_length(work: Work) -> None:
    work.edit(ISP, "max_length: 26", "max_length: 27")
    assert facts(work.changes()) == [
        (
            "roa-changed",
            "example-isp",
            "ROA AS64496 198.51.100.0/25 max 26 -> max 27 (comment: anycast)",
            ISP_PATH.as_posix(),
            10,
        )
    ]


def test_default_max_length_made_explicit_is_no_change(work: Work) -> None:
    work.edit(
        ISP, "{asn: AS64496, prefix: 192.0.2.0/24}", "{asn: AS64496, prefix: 192.0.2.0/24, max_length: 24}"
    )
    assert work.changes() == []


def test_change_comment(work: Work) -> None:
    work.edit(ISP, "comment: anycast", "comment: anycast in two sites")
    assert facts(work.changes()) == [
        (
            "roa-changed",
            "example-isp",
            "ROA AS64496 198.51.100.0/25 max 26, comment: anycast -> anycast in two sites",
            ISP_PATH.as_posix(),
            10,
        )
    ]


def test_add_a_comment_and_change_max_length_together(work: Work) -> None:
    work.edit(
        ISP,
        "{asn: AS64496, prefix: 192.0.2.0/24}",
        "{asn: AS64496, prefix: 192.0.2.0/24, max_length: 25, comment: split}",
    )
    assert facts(work.changes()) == [
        (
            "roa-changed",
            "example-isp",
            "ROA AS64496 192.0.2.0/24 max 24 -> max 25, comment: (none) -> split",
            ISP_PATH.as_posix(),
            9,
        )
    ]


def test_moving_a_roa_line_within_the_file_is_no_change(work: Work) -> None:
    work.edit(ISP, "  - {asn: AS0, prefix: 192.0.2.128/25}\n", "")
    work.edit(ISP, "roas:\n", "roas:\n  - {asn: AS0, prefix: 192.0.2.128/25}\n")
    assert (work.state / ISP).read_text().splitlines()[8] == "  - {asn: AS0, prefix: 192.0.2.128/25}"
    assert work.changes() == []


def test_moving_a_ca_file_to_another_directory_is_no_change(work: Work) -> None:
    (work.state / "cas" / "customers").mkdir()
    (work.state / ISP).rename(work.state / "cas" / "customers" / "isp.yaml")
    assert work.changes() == []
    work.commit("customers get their own directory")
    assert work.changes("HEAD~1") == []


def test_a_roa_moved_to_another_ca_is_removed_and_added(work: Work) -> None:
    work.edit(ISP, "  - {asn: AS0, prefix: 192.0.2.128/25}\n", "")
    work.append("cas/online.yaml", "roas:\n  - {asn: AS0, prefix: 192.0.2.128/25}\n")
    assert facts(work.changes()) == [
        ("roa-added", "online", "added ROA AS0 192.0.2.128/25 max 25", ONLINE_PATH.as_posix(), 9),
        ("roa-removed", "example-isp", "removed ROA AS0 192.0.2.128/25 max 25", ISP_PATH.as_posix(), 12),
    ]


# --- intent_changes: CAs --------------------------------------------------------------------------------

SECOND_CA = """\
name: second
parent: online
resources:
  asn: [AS64500]
  ipv4: [203.0.113.0/24]
roas:
  - {asn: AS64500, prefix: 203.0.113.0/24, comment: new customer}
"""


def test_add_a_ca_file(work: Work) -> None:
    work.write("cas/members/second.yaml", SECOND_CA)
    second = "state/cas/members/second.yaml"
    assert facts(work.changes()) == [
        ("ca-added", "second", "added CA second (parent online) holding AS64500; 203.0.113.0/24", second, 1),
        ("roa-added", "second", "added ROA AS64500 203.0.113.0/24 max 24 (comment: new customer)", second, 7),
    ]


def test_remove_a_ca_lists_it_and_its_roas_from_the_base(work: Work) -> None:
    (work.state / ISP).unlink()
    isp = ISP_PATH.as_posix()
    assert facts(work.changes()) == [
        (
            "ca-removed",
            "example-isp",
            "removed CA example-isp (parent online), which held "
            "AS64496-AS64497; 192.0.2.0/24, 198.51.100.0/25; 2001:db8:1000::/36 and 4 ROAs",
            isp,
            2,
        ),
        ("roa-removed", "example-isp", "removed ROA AS64496 192.0.2.0/24 max 24", isp, 9),
        ("roa-removed", "example-isp", "removed ROA AS0 192.0.2.128/25 max 25", isp, 12),
        (
            "roa-removed",
            "example-isp",
            "removed ROA AS64496 198.51.100.0/25 max 26 (comment: anycast)",
            isp,
            10,
        ),
        ("roa-removed", "example-isp", "removed ROA AS64497 2001:db8:1000::/36 max 48", isp, 11),
    ]


def test_renaming_a_ca_is_removed_and_added(work: Work) -> None:
    work.edit(ISP, "name: example-isp", "name: isp-one")
    changes = work.changes()
    kinds = [(c.kind, c.ca) for c in changes]
    assert kinds == [
        ("ca-added", "isp-one"),
        *[("roa-added", "isp-one")] * 4,
        ("ca-removed", "example-isp"),
        *[("roa-removed", "example-isp")] * 4,
    ]


def test_change_resources_names_what_was_added_and_removed(work: Work) -> None:
    work.edit(ISP, "asn: [AS64496, AS64497]", "asn: [AS64496]")
    work.edit(
        ISP, "ipv4: [192.0.2.0/24, 198.51.100.0/25]", "ipv4: [192.0.2.0/24, 198.51.100.0/25, 203.0.113.0/25]"
    )
    assert facts(work.changes()) == [
        (
            "resources-changed",
            "example-isp",
            "resources: added 203.0.113.0/25; removed AS64497",
            ISP_PATH.as_posix(),
            5,  # the first family that changed: asn
        )
    ]


def test_removed_resources_only(work: Work) -> None:
    work.edit("cas/online.yaml", "198.51.100.0/24, 203.0.113.0/24]", "198.51.100.0/24]")
    assert facts(work.changes()) == [
        ("resources-changed", "online", "resources: removed 203.0.113.0/24", ONLINE_PATH.as_posix(), 6)
    ]


def test_change_parent(work: Work) -> None:
    work.edit(ISP, "parent: online", "parent: ta")
    assert facts(work.changes()) == [
        ("parent-changed", "example-isp", "parent online -> ta", ISP_PATH.as_posix(), 3)
    ]


# --- intent_changes: settings ---------------------------------------------------------------------------


def test_change_rsync_base(work: Work) -> None:
    work.edit("rpki.yaml", "rsync://rpki.example.net/repo/", "rsync://rpki.example.org/rpki/")
    assert facts(work.changes()) == [
        (
            "settings-changed",
            None,
            "publication: rsync_base rsync://rpki.example.net/repo/ -> rsync://rpki.example.org/rpki/",
            SETTINGS_PATH.as_posix(),
            2,
        )
    ]


def test_change_timing(work: Work) -> None:
    work.append("rpki.yaml", "timing:\n  manifest_validity: 2d\n  certificate_validity: 26w\n")
    assert facts(work.changes()) == [
        (
            "settings-changed",
            None,
            "timing: manifest_validity 1d -> 2d; certificate_validity 52w -> 26w",
            SETTINGS_PATH.as_posix(),
            10,  # the first changed key, manifest_validity
        )
    ]


def test_removing_a_setting_points_into_the_base(work: Work) -> None:
    work.append("rpki.yaml", "timing:\n  manifest_validity: 2d\n")
    work.commit("longer manifests")
    work.edit("rpki.yaml", "timing:\n  manifest_validity: 2d\n", "")
    assert facts(work.changes()) == [
        ("settings-changed", None, "timing: manifest_validity 2d -> 1d", SETTINGS_PATH.as_posix(), 10)
    ]


def test_publication_and_signer_directories_compare_as_paths(work: Work) -> None:
    """Relative paths resolve the same way in the base copy: only real moves are changes."""
    work.edit("rpki.yaml", "directory: ../keys", "directory: ../../keys")
    work.edit("rpki.yaml", "directory: ../published", "directory: ../published/")
    assert facts(work.changes()) == [
        (
            "settings-changed",
            None,
            "signers: default.directory ../keys -> ../../keys",
            SETTINGS_PATH.as_posix(),
            8,
        )
    ]


def test_add_a_signer(work: Work) -> None:
    work.append("rpki.yaml", "  second:\n    type: file\n    directory: ../keys-2\n")
    assert facts(work.changes()) == [
        (
            "settings-changed",
            None,
            "signers: added second (type file, directory ../keys-2)",
            SETTINGS_PATH.as_posix(),
            9,
        )
    ]


def test_order_settings_then_cas_in_load_order_then_removed_cas(work: Work) -> None:
    (work.state / ISP).unlink()
    work.write("cas/members/second.yaml", SECOND_CA)
    work.edit("rpki.yaml", "rsync://rpki.example.net/repo/", "rsync://rpki.example.org/repo/")
    work.append("cas/ta.yaml", "roas:\n  - {asn: AS65000, prefix: 10.0.0.0/8}\n")
    assert [(c.kind, c.ca) for c in work.changes()] == [
        ("settings-changed", None),
        ("roa-added", "ta"),
        ("ca-added", "second"),
        ("roa-added", "second"),
        ("ca-removed", "example-isp"),
        *[("roa-removed", "example-isp")] * 4,
    ]


# --- intent_changes: base revisions ---------------------------------------------------------------------


@pytest.fixture
def history(work: Work) -> Work:
    """Three commits: the example (branch ``reviewed``, tags ``v1`` and annotated ``v1-signed``),
    a wider anycast max_length, then a comment change (HEAD, on ``main``)."""
    work.repo.create_head("reviewed")
    work.repo.create_tag("v1")
    work.repo.create_tag("v1-signed", message="reviewed by two operators")
    work.edit(ISP, "max_length: 26", "max_length: 27")
    work.commit("wider anycast")
    work.edit(ISP, "comment: anycast", "comment: anycast in two sites")
    work.commit("say where")
    return work


WIDER_AND_SAID = "ROA AS64496 198.51.100.0/25 max 26 -> max 27, comment: anycast -> anycast in two sites"


@pytest.mark.parametrize("base", ["reviewed", "v1", "v1-signed", "HEAD~2", "main~2", "HEAD^^"])
def test_base_as_branch_tag_or_relative_revision(history: Work, base: str) -> None:
    assert facts(history.changes(base)) == [
        ("roa-changed", "example-isp", WIDER_AND_SAID, ISP_PATH.as_posix(), 10)
    ]


def test_base_head_minus_one(history: Work) -> None:
    assert [c.summary for c in history.changes("HEAD~1")] == [
        "ROA AS64496 198.51.100.0/25 max 27, comment: anycast -> anycast in two sites"
    ]


def test_base_as_full_and_short_sha(history: Work) -> None:
    first = history.repo.commit("v1").hexsha
    assert [c.summary for c in history.changes(first)] == [WIDER_AND_SAID]
    assert [c.summary for c in history.changes(first[:10])] == [WIDER_AND_SAID]


def test_work_tree_edits_on_top_of_commits(history: Work) -> None:
    history.edit(ISP, "max_length: 27", "max_length: 26")
    assert [c.summary for c in history.changes("v1")] == [
        "ROA AS64496 198.51.100.0/25 max 26, comment: anycast -> anycast in two sites"
    ]


@pytest.mark.parametrize("base", ["no-such-branch", "HEAD~5", "deadbeefdeadbeef", ""])
def test_unknown_revision(work: Work, base: str) -> None:
    with pytest.raises(GitContextError, match=rf"unknown revision '{base}'") as caught:
        work.changes(base)
    assert "use a branch, a tag, a commit SHA" in str(caught.value)


def test_revision_that_is_not_a_commit(work: Work) -> None:
    with pytest.raises(GitContextError, match=r"revision 'HEAD\^\{tree\}' .* is not a commit"):
        work.changes("HEAD^{tree}")


def test_broken_base_revision_is_reported_with_its_diagnostics(work: Work) -> None:
    work.edit(ISP, "max_length: 26", "max_length: 33")
    work.commit("oops: too long")
    work.edit(ISP, "max_length: 33", "max_length: 27")
    work.commit("fix the max_length")
    with pytest.raises(GitContextError) as caught:
        work.changes("HEAD~1")
    error = caught.value
    message = str(error)
    assert "the desired state at revision 'HEAD~1'" in message and "does not load" in message
    assert f"{ISP_PATH}:10:" in message and "max_length 33" in message
    assert "rpki-base-" not in message  # no temporary paths
    assert [(d.file, d.line) for d in error.diagnostics] == [(ISP_PATH, 10)]
    assert work.changes("HEAD~2") == [
        IntentChange(
            "roa-changed",
            "example-isp",
            "ROA AS64496 198.51.100.0/25 max 26 -> max 27 (comment: anycast)",
            SourceLocation(ISP_PATH, 10, 5),
        )
    ]


def test_broken_yaml_syntax_in_the_base(work: Work) -> None:
    work.edit("cas/ta.yaml", "trust_anchor: true", "trust_anchor: [true")
    work.commit("broken")
    work.edit("cas/ta.yaml", "trust_anchor: [true", "trust_anchor: true")
    with pytest.raises(GitContextError, match=r"state/cas/ta\.yaml:\d+:\d+: YAML syntax error"):
        work.changes("HEAD")


def test_base_without_the_desired_state_directory_adds_everything(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    root.mkdir()
    (root / "README.md").write_text("an RPKI CA, soon\n")
    with init_repo(root) as repo:
        work = Work(repo, root)
        work.commit("empty start")
        shutil.copytree(STATE, root / "state")
        work.commit("the desired state")
        isp = ISP_PATH.as_posix()
        assert facts(work.changes("HEAD~1")) == [
            (
                "ca-added",
                "ta",
                "added CA ta (trust anchor) holding AS0-AS4294967295; 0.0.0.0/0; ::/0",
                "state/cas/ta.yaml",
                2,
            ),
            (
                "ca-added",
                "online",
                "added CA online (parent ta) holding "
                "AS64496-AS64511, AS65536-AS65551; 192.0.2.0/24, 198.51.100.0/24, 203.0.113.0/24; "
                "2001:db8::/32",
                ONLINE_PATH.as_posix(),
                2,
            ),
            (
                "ca-added",
                "example-isp",
                "added CA example-isp (parent online) holding "
                "AS64496-AS64497; 192.0.2.0/24, 198.51.100.0/25; 2001:db8:1000::/36",
                isp,
                2,
            ),
            ("roa-added", "example-isp", "added ROA AS64496 192.0.2.0/24 max 24", isp, 9),
            ("roa-added", "example-isp", "added ROA AS0 192.0.2.128/25 max 25", isp, 12),
            (
                "roa-added",
                "example-isp",
                "added ROA AS64496 198.51.100.0/25 max 26 (comment: anycast)",
                isp,
                10,
            ),
            ("roa-added", "example-isp", "added ROA AS64497 2001:db8:1000::/36 max 48", isp, 11),
        ]


def test_desired_state_at_the_repository_root(tmp_path: Path) -> None:
    """rel == "."; ``../published`` then points outside the repository, in the base copy as well."""
    root = tmp_path / "state"
    shutil.copytree(STATE, root)
    with init_repo(root) as repo:
        work = Work(repo, root)
        work.commit("state at the root")
        assert intent_changes(root, "HEAD") == []
        assert git_info(root) == GitInfo(repo.head.commit.hexsha, dirty=False, branch="main")
        (root / "rpki.yaml").write_text(
            (root / "rpki.yaml").read_text().replace("example.net", "example.org")
        )
        changes = intent_changes(root, "HEAD")
        assert [(c.kind, c.where) for c in changes] == [
            ("settings-changed", SourceLocation(Path("rpki.yaml"), 2, 3))
        ]
        info = git_info(root)
        assert info is not None and info.dirty


def test_not_a_git_work_tree(tmp_path: Path) -> None:
    shutil.copytree(STATE, tmp_path / "state")
    with pytest.raises(GitContextError, match="is not inside a Git work tree"):
        intent_changes(tmp_path / "state", "HEAD")


def test_broken_work_tree_raises_the_loaders_error(work: Work) -> None:
    """The work tree is what plan loads; its problems are reported the usual way, not as Git problems."""
    work.edit(ISP, "max_length: 26", "max_length: 33")
    with pytest.raises(DesiredStateError) as caught:
        work.changes()
    assert any(d.line == 10 for d in caught.value.diagnostics)


def test_str_of_a_change_reads_like_a_compiler_message(work: Work) -> None:
    work.edit(ISP, "max_length: 26", "max_length: 27")
    (change,) = work.changes()
    assert str(change) == (
        f"{ISP_PATH}:10:5: roa-changed [example-isp]: "
        "ROA AS64496 198.51.100.0/25 max 26 -> max 27 (comment: anycast)"
    )
    assert at(ISP_PATH, 10, change)


def test_symbolic_links_in_the_base_are_followed_only_inside_the_desired_state(work: Work) -> None:
    """A link within state/ works in the base copy as in a checkout; one leading out of it is dropped
    there (in the temporary copy it could only reach real files), and the loader refuses to read
    through it in the work tree (it could lead to a key or a system file)."""
    (work.state / "shared").mkdir()
    (work.state / ISP).rename(work.state / "shared" / "isp.yaml")
    (work.state / ISP).symlink_to("../../shared/isp.yaml")
    (work.root / "outsider.yaml").write_text("name: outsider\nparent: online\nresources:\n  asn: [AS64510]\n")
    (work.state / "cas" / "outsider.yaml").symlink_to("../../outsider.yaml")
    work.commit("links")
    tree = work.repo.head.commit.tree
    assert tree[f"state/{ISP}"].mode == 0o120000
    with pytest.raises(DesiredStateError, match="points outside the desired-state repository"):
        work.changes()
    (work.state / "cas" / "outsider.yaml").unlink()
    assert facts(work.changes()) == []


def test_every_loaded_setting_is_compared_and_ca_safety_only_when_its_own(
    work: Work, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Settings are compared field by field on the loaded value, so settings the loader learns later
    (safety, plan_max_age) need no change here; a CA's effective safety is reported only when it is not
    just following the global policy."""

    def load_with_policy(path: Path) -> DesiredState:
        state = load(path)
        if Path(path).resolve() != work.state.resolve():
            return state  # the base revision: unchanged
        strict = replace(state.safety, delete_pct_threshold=0.1)
        loose = replace(strict, allow_empty=True)
        cas = tuple(replace(ca, safety=loose if ca.name == "online" else strict) for ca in state.cas)
        return replace(state, safety=strict, plan_max_age=timedelta(minutes=30), cas=cas)

    monkeypatch.setattr(gitcontext, "load", load_with_policy)
    assert [(c.kind, c.ca, c.summary, c.where) for c in work.changes()] == [
        (
            "settings-changed",
            None,
            "safety: delete_pct_threshold 0.3 -> 0.1",
            SourceLocation(SETTINGS_PATH, 1, 1),
        ),
        ("settings-changed", None, "plan_max_age: 1h -> 30m", SourceLocation(SETTINGS_PATH, 1, 1)),
        (
            "settings-changed",
            "online",
            "safety: delete_pct_threshold 0.3 -> 0.1; allow_empty false -> true",
            SourceLocation(ONLINE_PATH, 2, 1),
        ),
    ]


def test_safety_settings_from_yaml(work: Work) -> None:
    """rpki.yaml's safety policy is one setting; a CA's own override is reported for that CA."""
    work.append("rpki.yaml", "safety:\n  delete_pct_threshold: 0.5\nplan_max_age: 30m\n")
    work.append("cas/online.yaml", "safety:\n  allow_empty: true\n")
    assert facts(work.changes()) == [
        ("settings-changed", None, "safety: delete_pct_threshold 0.3 -> 0.5", SETTINGS_PATH.as_posix(), 10),
        ("settings-changed", None, "plan_max_age: 1h -> 30m", SETTINGS_PATH.as_posix(), 11),
        (
            "settings-changed",
            "online",
            "safety: delete_pct_threshold 0.3 -> 0.5; allow_empty false -> true",
            ONLINE_PATH.as_posix(),
            9,
        ),
    ]


# --- where a removed entry points -----------------------------------------------------------------------


def test_a_removed_roa_names_the_base_revision_and_an_added_one_at_its_line_does_not(work: Work) -> None:
    """Replacing the AS0 ROA of line 12 by another ROA puts both at line 12: the added one in the work
    tree, the removed one in the base revision's file. Only the removed one names the revision, so a
    reviewer is not sent to the added ROA's line to find what was removed."""
    work.edit(
        ISP,
        "  - {asn: AS0, prefix: 192.0.2.128/25}\n",
        "  - {asn: AS64497, prefix: 192.0.2.128/25}\n",
    )
    changes = intent_changes(work.state, "main")
    by_kind = {c.kind: c for c in changes}
    assert set(by_kind) == {"roa-added", "roa-removed"}
    added, removed = by_kind["roa-added"], by_kind["roa-removed"]
    assert added.where == removed.where == SourceLocation(ISP_PATH, 12, 5)
    assert (added.revision, removed.revision) == (None, "main")
    assert str(removed) == (
        f"{ISP_PATH}:12:5 (at main): roa-removed [example-isp]: removed ROA AS0 192.0.2.128/25 max 25"
    )
    assert str(added).startswith(f"{ISP_PATH}:12:5: roa-added")


def test_removed_ca_and_dropped_setting_name_the_base_revision(work: Work) -> None:
    """Every location read from the base revision says so: a removed CA, its ROAs, and a setting the
    work tree dropped; a changed entry stays a work-tree location."""
    work.append("rpki.yaml", "timing:\n  manifest_validity: 2d\n")
    work.commit("longer manifests")
    work.edit("rpki.yaml", "timing:\n  manifest_validity: 2d\n", "")
    (work.state / ISP).unlink()
    changes = work.changes("HEAD")
    assert {c.kind for c in changes} == {"settings-changed", "ca-removed", "roa-removed"}
    for change in changes:
        from_base = change.kind in ("ca-removed", "roa-removed") or change.summary.startswith("timing:")
        assert change.revision == ("HEAD" if from_base else None), change


def test_the_plan_document_and_comment_carry_the_base_revision(work: Work) -> None:
    """Through the CLI: ``plan --base main --format json`` gives the removed ROA's location with its
    revision, and the Markdown comment shows it open, ``(at `main`)`` beside the base file's line."""
    work.edit(
        ISP,
        "  - {asn: AS0, prefix: 192.0.2.128/25}\n",
        "  - {asn: AS64497, prefix: 192.0.2.128/25}\n",
    )

    def plan(fmt: str) -> str:
        result = subprocess.run(
            [sys.executable, "-m", "reconciler", "plan", "state", "--base", "main", "--format", fmt],
            cwd=work.root,
            capture_output=True,
            text=True,
            check=False,
            stdin=subprocess.DEVNULL,
            timeout=120,
        )
        assert result.returncode in (2, 3), result.stderr
        return result.stdout

    intent = json.loads(plan("json"))["intent"]
    removed = next(i for i in intent if i["kind"] == "roa-removed")
    added = next(i for i in intent if i["kind"] == "roa-added")
    assert (removed["where"], removed["revision"]) == (f"{ISP_PATH}:12:5", "main")
    assert (added["where"], added["revision"]) == (f"{ISP_PATH}:12:5", None)
    comment = plan("markdown")
    assert f"| `{ISP_PATH}:12:5` (at `main`) | removed ROA AS0 192.0.2.128/25 max 25 |" in comment
    assert f"| `{ISP_PATH}:12:5` | added ROA AS64497 192.0.2.128/25 max 25 |" in comment
