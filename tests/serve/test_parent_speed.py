"""The RFC 6492 responder answers from the desired state it loaded last while the inputs' fingerprint
holds, and signs its replies with one EE key a minute per CA: a committed change (or, with uncommitted
changes allowed, any edited file, a request file too) is still seen by the very next message."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import git
import pytest

from reconciler import engine, identity
from reconciler import reconcile as reconcile_loop
from reconciler.desired.model import DesiredState
from reconciler.protocol import oob, sigmsg, updown
from reconciler.protocol.errors import CmsError
from reconciler.published import reader
from reconciler.published.reader import PublishedState
from reconciler.resources import Resources
from reconciler.serve import parent
from reconciler.serve.parent import REPLY_KEY_LIFETIME, ParentService, source_fingerprint
from tests.helpers import T0, Scratch, committed_copy, scratch_copy
from tests.serve.parent_world import ENTITLEMENT, ENTITLEMENT_YAML, HANDLE, PARENT, World, declare, make_child

NARROWED_YAML = "{asn: [AS64500], ipv4: [203.0.113.0/25]}"
NARROWED = Resources.parse(["AS64500"], ["203.0.113.0/25"], [])


class CountingLoader:
    """``rpkictl serve``'s loader, counting its calls."""

    def __init__(self, repo: Path, *, allow_uncommitted: bool) -> None:
        self.repo = repo
        self.allow_uncommitted = allow_uncommitted
        self.calls = 0

    def __call__(self) -> DesiredState:
        self.calls += 1
        return reconcile_loop.committed_state(self.repo, allow_uncommitted=self.allow_uncommitted).desired


def served_world(tmp_path: Path, *, allow_uncommitted: bool) -> tuple[World, CountingLoader, git.Repo | None]:
    """The example applied at T0 with the child declared (and committed, in Git), served as ``rpkictl
    serve`` serves it."""
    repo: git.Repo | None = None
    if allow_uncommitted:
        scratch = scratch_copy(tmp_path)
    else:
        repo, scratch = committed_copy(tmp_path)
    assert scratch.apply(T0) is not None
    child = make_child(tmp_path / "child-keys")
    declare(scratch, child)
    if repo is not None:
        commit(repo, "external child acme")
    loader = CountingLoader(scratch.repo, allow_uncommitted=allow_uncommitted)
    service = ParentService(
        loader,
        fingerprint=source_fingerprint(scratch.repo, allow_uncommitted=allow_uncommitted),
        lock_timeout=timedelta(seconds=5),
    )
    return World(scratch, child, service, T0 + timedelta(minutes=1)), loader, repo


def commit(repo: git.Repo, message: str) -> None:
    repo.git.add("-A", ".")
    repo.index.commit(message)


def entitled(world: World) -> Resources:
    payload = world.send(updown.ListQuery())
    assert isinstance(payload, updown.ListResponse), payload
    (resource_class,) = payload.classes
    return resource_class.resources


def narrow(scratch: Scratch) -> None:
    scratch.edit("cas/online.yaml", ENTITLEMENT_YAML, NARROWED_YAML)


def test_messages_without_a_change_load_the_desired_state_once(tmp_path: Path) -> None:
    world, loader, _ = served_world(tmp_path, allow_uncommitted=False)
    assert entitled(world) == ENTITLEMENT
    assert entitled(world) == ENTITLEMENT
    assert world.send(updown.ListQuery()) is not None
    assert loader.calls == 1


def test_a_committed_change_is_seen_by_the_next_message(tmp_path: Path) -> None:
    world, loader, repo = served_world(tmp_path, allow_uncommitted=False)
    assert repo is not None
    assert entitled(world) == ENTITLEMENT
    narrow(world.scratch)  # edited, not committed: the committed entitlement is still served
    assert entitled(world) == ENTITLEMENT
    assert loader.calls == 1
    commit(repo, "narrow acme")
    assert entitled(world) == NARROWED
    assert loader.calls == 2
    assert entitled(world) == NARROWED
    assert loader.calls == 2


def test_with_uncommitted_changes_allowed_an_edit_is_seen_by_the_next_message(tmp_path: Path) -> None:
    world, loader, _ = served_world(tmp_path, allow_uncommitted=True)
    assert entitled(world) == ENTITLEMENT
    assert entitled(world) == ENTITLEMENT
    assert loader.calls == 1
    narrow(world.scratch)
    assert entitled(world) == NARROWED
    assert loader.calls == 2


def test_a_replaced_request_file_is_seen_by_the_next_message(tmp_path: Path) -> None:
    """The child's operator sends a new child_request (a new identity): once its file is replaced, the
    old identity's messages are refused and the new one's answered."""
    world, loader, _ = served_world(tmp_path, allow_uncommitted=True)
    assert entitled(world) == ENTITLEMENT
    old = world.child
    new = make_child(tmp_path / "new-child-keys")
    request = world.scratch.repo / "children" / f"{HANDLE}.xml"
    declared = request.read_bytes()
    request.write_bytes(oob.render(oob.ChildRequest(child_handle=HANDLE, identity=new.identity.der)))
    assert request.read_bytes() != declared
    world.child = new
    assert entitled(world) == ENTITLEMENT
    assert loader.calls == 2
    try:
        world.send(updown.ListQuery(), old)
    except CmsError:
        pass
    else:
        raise AssertionError("a message signed by the replaced identity was answered")


def test_replies_share_an_ee_key_for_a_while_and_verify_with_the_ca_identity(tmp_path: Path) -> None:
    world, _, _ = served_world(tmp_path, allow_uncommitted=False)
    desired = engine.load_desired(world.scratch.repo)

    def ee_of_reply() -> bytes:
        reply = world.service.respond(HANDLE, world.body(updown.ListQuery()), world.now)
        parent = identity.load(PARENT, identity.directory(desired))
        assert parent is not None
        verified = sigmsg.verify(reply, parent, world.now, "the parent's answer")
        assert isinstance(updown.parse(verified.xml, "the parent's answer").payload, updown.ListResponse)
        return verified.ee_ski

    first = ee_of_reply()
    assert ee_of_reply() == first
    world.tick(REPLY_KEY_LIFETIME.total_seconds() + 1)
    later = ee_of_reply()
    assert later != first
    assert ee_of_reply() == later


def test_a_plain_loader_is_called_for_every_message(tmp_path: Path) -> None:
    """Without a fingerprint (callers that give only ``load``), nothing is kept between messages."""
    world, loader, _ = served_world(tmp_path, allow_uncommitted=True)
    world.service = ParentService(loader, lock_timeout=timedelta(seconds=5))
    entitled(world)
    entitled(world)
    assert loader.calls == 2


def test_list_reads_the_served_tree_again_only_once_another_is_swapped_in(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    world, _, _ = served_world(tmp_path, allow_uncommitted=False)
    reads: list[Path] = []

    def counted(rsync_dir: Path, *, foreign: bool = True) -> PublishedState:
        reads.append(rsync_dir)
        return reader.read(rsync_dir, foreign=foreign)

    monkeypatch.setattr(parent, "read_published", counted)
    first = world.send(updown.ListQuery())
    assert isinstance(first, updown.ListResponse) and first.classes[0].certificates == ()
    world.send(updown.ListQuery())
    assert len(reads) == 1
    assert isinstance(world.issue(), updown.IssueResponse)  # swaps in a new tree
    after = world.send(updown.ListQuery())
    assert isinstance(after, updown.ListResponse)
    (issued,) = after.classes[0].certificates
    assert issued.der == world.certificate().der
    assert len(reads) == 2
