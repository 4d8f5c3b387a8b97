"""The desired state as committed: which files count as uncommitted, and HEAD's desired state loaded with
the paths the checkout resolves (``../published``, ``../keys``), whatever the work tree holds."""

from __future__ import annotations

import shutil
from pathlib import Path

import git
import pytest

from reconciler.desired import load
from reconciler.plan.gitcontext import GitContextError, git_info, load_committed, uncommitted_files
from tests.helpers import STATE

ISP = "cas/members/example-isp.yaml"


def _commit_all(root: Path) -> git.Repo:
    repo = git.Repo.init(root, initial_branch="main")
    with repo.config_writer() as config:
        config.set_value("user", "name", "Operator").set_value("user", "email", "noc@example.net")
    repo.git.add(".")
    repo.index.commit("desired state")
    return repo


@pytest.fixture
def nested(tmp_path: Path) -> Path:
    """A repository holding ``state/`` one level down, ignoring the local CA files ``*.local.yaml``."""
    shutil.copytree(STATE, tmp_path / "state")
    (tmp_path / ".gitignore").write_text("/keys/\n/published/\n*.local.yaml\n.venv/\n")
    _commit_all(tmp_path)
    return tmp_path / "state"


def test_what_counts_as_uncommitted(nested: Path) -> None:
    assert uncommitted_files(nested) == ()
    (nested / "notes.txt").write_text("not read by the loader\n")
    (nested / "cas" / "README").write_text("not a CA file\n")
    (nested.parent / ".venv" / "lib").mkdir(parents=True)
    (nested.parent / ".venv" / "lib" / "x.yaml").write_text("outside the desired state\n")
    assert uncommitted_files(nested) == ()
    info = git_info(nested)
    assert info is not None and not info.dirty
    (nested / "cas" / "members" / "extra.local.yaml").write_text("name: ignored but read\n")
    (nested / "cas" / "new.yml").write_text("name: refused by the loader, so it counts\n")
    (nested / ISP).write_text((nested / ISP).read_text() + "\n")
    (nested / "cas" / "online.yaml").unlink()
    assert uncommitted_files(nested) == (
        "state/cas/members/example-isp.yaml",
        "state/cas/members/extra.local.yaml",
        "state/cas/new.yml",
        "state/cas/online.yaml",
    )
    info = git_info(nested)
    assert info is not None and info.dirty


def test_outside_git_nothing_is_listed(tmp_path: Path) -> None:
    shutil.copytree(STATE, tmp_path / "state")
    assert uncommitted_files(tmp_path / "state") is None
    with pytest.raises(GitContextError, match="not inside a Git work tree"):
        load_committed(tmp_path / "state")


@pytest.mark.parametrize("layout", ["nested", "at the root"])
def test_head_is_loaded_with_the_checkouts_paths(tmp_path: Path, layout: str) -> None:
    if layout == "nested":  # ../published lies inside the repository
        shutil.copytree(STATE, tmp_path / "state")
        repo = _commit_all(tmp_path)
    else:  # the desired state is the repository: ../published lies outside it
        shutil.copytree(STATE, tmp_path / "state")
        repo = _commit_all(tmp_path / "state")
    state = tmp_path / "state"
    clean = load(state)
    (state / ISP).write_text((state / ISP).read_text().replace("max_length: 48}", "max_length: 47}"))
    committed = load_committed(state)
    assert committed.commit == repo.head.commit.hexsha
    desired = committed.desired
    assert desired.digest == clean.digest != load(state).digest  # HEAD's bytes, not the work tree's
    assert desired.root == state.resolve()
    assert desired.publication == clean.publication
    assert desired.publication.directory == (tmp_path / "published").resolve()
    assert desired.signers == clean.signers
    assert desired.audit_log_path == clean.audit_log_path
    isp = desired.ca("example-isp")
    assert isp.where is not None and isp.where.file == (state / ISP).resolve()
    assert isp.roas == clean.ca("example-isp").roas


def test_a_desired_state_never_committed_is_named(tmp_path: Path) -> None:
    (tmp_path / "README").write_text("a repository without the desired state\n")
    _commit_all(tmp_path)
    shutil.copytree(STATE, tmp_path / "state")
    with pytest.raises(GitContextError, match=r"the desired state state is not in the commit HEAD"):
        load_committed(tmp_path / "state")
