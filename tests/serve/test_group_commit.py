"""Group commit in the RFC 8181 publication server: messages that arrive while a tree is being written
are checked one by one, in arrival order, against the objects as the messages before them leave them,
and published together in the next tree and RRDP serial; each is answered once its objects are served,
a refused one at once; and an apply that takes the publication lock meanwhile is neither overwritten nor
undone."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from reconciler import engine
from reconciler.apply import audit, lock
from reconciler.protocol import publication as rfc8181
from reconciler.protocol import sigmsg
from reconciler.published import read
from reconciler.serve.publication import PublicationService
from tests.helpers import T0, later, scratch_copy
from tests.publish.test_rrdp import notification, with_rrdp
from tests.serve.test_publication_service import (
    HANDLE,
    ISP,
    SIA,
    Peer,
    Repository,
    declare,
    make_peer,
    open_repository,
)

A, B = b"first object", b"second object"


@pytest.fixture(scope="module")
def peer(tmp_path_factory: pytest.TempPathFactory) -> Peer:
    return make_peer(tmp_path_factory.mktemp("publisher-keys"), HANDLE)


def repository(tmp_path: Path, peer: Peer, **options: Any) -> Repository:
    scratch = with_rrdp(scratch_copy(tmp_path))
    declare(scratch, peer)
    assert scratch.apply(T0) is not None
    return open_repository(scratch, peer, **options)


class Sender:
    """Messages posted from their own threads, as server threads answer them; each reply is verified
    and kept with what ``on_reply`` saw when it arrived."""

    def __init__(self, repo: Repository, on_reply: Callable[[], object] | None = None) -> None:
        self.repo = repo
        self.on_reply = on_reply or (lambda: None)
        self.replies: dict[str, rfc8181.ReplyMessage] = {}
        self.seen: dict[str, object] = {}
        self.order: list[str] = []
        self._threads: list[threading.Thread] = []
        self._guard = threading.Lock()

    def post(self, name: str, *pdus: rfc8181.Pdu) -> None:
        body = self.repo.sign(rfc8181.Query(pdus))  # signed now: later messages are signed later
        thread = threading.Thread(target=self._post, args=(name, body))
        self._threads.append(thread)
        thread.start()

    def _post(self, name: str, body: bytes) -> None:
        reply = self.repo.answer(body)
        seen = self.on_reply()
        with self._guard:
            self.replies[name], self.seen[name] = reply, seen
            self.order.append(name)

    def wait(self) -> None:
        for thread in self._threads:
            thread.join(timeout=120)
        assert not any(thread.is_alive() for thread in self._threads)


def queued(service: PublicationService, count: int) -> None:
    """Wait until ``count`` messages wait for a batch (they are queued in arrival order)."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with service._turn:
            if len(service._queue) >= count:
                return
        time.sleep(0.01)
    raise AssertionError(f"{count} messages never queued")


def published_records(repo: Repository) -> list[tuple[str, int, int, int]]:
    return [
        (r["publisher"], r["created"], r["replaced"], r["withdrawn"])
        for r in (e.record for e in audit.read(repo.desired.audit_log_path))
        if r["status"] == audit.PUBLISHED
    ]


def test_a_message_replacing_what_the_one_before_it_in_the_batch_created(tmp_path: Path, peer: Peer) -> None:
    repo = repository(tmp_path, peer, batch_messages=2, batch_wait=timedelta(seconds=20))
    serial = notification(repo.scratch).serial
    sender = Sender(repo)
    sender.post("create", rfc8181.Publish(SIA + "x.roa", A))
    queued(repo.service, 1)
    sender.post("replace", rfc8181.Publish(SIA + "x.roa", B, hash=rfc8181.object_hash(A)))
    sender.wait()
    assert sender.replies == {"create": rfc8181.SuccessReply(), "replace": rfc8181.SuccessReply()}
    assert repo.served() == {"publishers/acme/x.roa": B}
    assert notification(repo.scratch).serial == serial + 1  # one tree, one RRDP serial for both
    assert repo.rrdp_files()["publishers/acme/x.roa"] == B
    assert published_records(repo) == [(HANDLE, 1, 0, 0), (HANDLE, 0, 1, 0)]  # in arrival order


def test_a_refused_message_in_a_batch_leaves_the_others_and_is_answered_first(
    tmp_path: Path, peer: Peer, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = repository(tmp_path, peer, batch_messages=3, batch_wait=timedelta(seconds=20))
    refused = threading.Event()
    publish_all = engine.publish_all
    waited: list[bool] = []

    def after_the_refusal(*args: Any, **kwargs: Any) -> str | None:
        waited.append(refused.wait(timeout=30))  # the refusal goes out while the tree is written
        return publish_all(*args, **kwargs)

    monkeypatch.setattr(engine, "publish_all", after_the_refusal)
    sender = Sender(repo, on_reply=lambda: refused.set() if len(sender.order) == 0 else None)
    sender.post("a", rfc8181.Publish(SIA + "a.roa", A, tag="a"))
    queued(repo.service, 1)
    sender.post("bad", rfc8181.Publish(SIA + "a.roa", B, hash=rfc8181.object_hash(b"not held"), tag="bad"))
    queued(repo.service, 2)
    sender.post("b", rfc8181.Publish(SIA + "b.roa", B, tag="b"))
    sender.wait()
    assert waited == [True]
    assert sender.order[0] == "bad"
    bad = sender.replies["bad"]
    assert isinstance(bad, rfc8181.ErrorReply) and [(e.code, e.tag) for e in bad.errors] == [
        ("no_object_matching_hash", "bad")
    ]
    assert sender.replies["a"] == sender.replies["b"] == rfc8181.SuccessReply()
    assert repo.served() == {"publishers/acme/a.roa": A, "publishers/acme/b.roa": B}
    assert published_records(repo) == [(HANDLE, 1, 0, 0), (HANDLE, 1, 0, 0)]


def test_a_reply_is_sent_only_once_its_objects_are_served(
    tmp_path: Path, peer: Peer, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = repository(tmp_path, peer)
    publish_all = engine.publish_all

    def slow(*args: Any, **kwargs: Any) -> str | None:
        time.sleep(0.5)  # a reply sent before the swap would find the old tree
        return publish_all(*args, **kwargs)

    monkeypatch.setattr(engine, "publish_all", slow)

    def served_now() -> tuple[dict[str, bytes], dict[str, bytes]]:
        return repo.served(), repo.rrdp_files()

    sender = Sender(repo, on_reply=served_now)
    for index in range(4):
        sender.post(f"m{index}", rfc8181.Publish(SIA + f"m{index}.roa", A))
    sender.wait()
    for index in range(4):
        name, path = f"m{index}", f"publishers/acme/m{index}.roa"
        assert sender.replies[name] == rfc8181.SuccessReply()
        seen = sender.seen[name]
        assert isinstance(seen, tuple)
        rsync, snapshot = seen
        assert rsync[path] == A and snapshot[path] == A


def test_an_apply_holding_the_lock_meanwhile_is_kept(tmp_path: Path, peer: Peer) -> None:
    repo = repository(tmp_path, peer, lock_wait=timedelta(seconds=60))
    assert repo.send(rfc8181.Publish(SIA + "x.roa", A)) == rfc8181.SuccessReply()  # the state is kept
    ours_before = read(repo.scratch.rsync).files
    repo.scratch.edit(ISP, "max_length: 26", "max_length: 25")
    directory = repo.desired.publication.directory
    sender = Sender(repo)
    with lock.acquire(
        directory, who="operator", operation="apply", plan_id=None, timeout=timedelta(0)
    ) as held:
        sender.post("replace", rfc8181.Publish(SIA + "x.roa", B, hash=rfc8181.object_hash(A)))
        sender.post("create", rfc8181.Publish(SIA + "y.roa", A))
        queued(repo.service, 1)
        time.sleep(0.3)
        assert not sender.replies  # waiting for the lock
        workspace = engine.open_workspace(repo.scratch.repo)
        assert engine.apply(workspace, engine.plan(workspace, later(1)), held=held) is not None
    ours_applied = read(repo.scratch.rsync).files
    assert ours_applied != ours_before
    sender.wait()
    assert sender.replies == {"replace": rfc8181.SuccessReply(), "create": rfc8181.SuccessReply()}
    # the publications went on from the apply's tree, not from the one they had kept
    assert read(repo.scratch.rsync).files == ours_applied
    assert repo.served() == {"publishers/acme/x.roa": B, "publishers/acme/y.roa": A}
    snapshot = repo.rrdp_files()
    assert {k: v for k, v in snapshot.items() if not k.startswith("publishers/")} == ours_applied
    assert repo.scratch.plan(later(1)).empty


def test_a_tree_swapped_in_between_is_noticed(tmp_path: Path, peer: Peer) -> None:
    repo = repository(tmp_path, peer)
    assert repo.send(rfc8181.Publish(SIA + "x.roa", A)) == rfc8181.SuccessReply()
    repo.scratch.edit(ISP, "max_length: 26", "max_length: 25")
    assert repo.scratch.apply(later(1)) is not None  # between two publications, with its own lock
    ours = read(repo.scratch.rsync).files
    assert repo.send(rfc8181.Publish(SIA + "x.roa", B, hash=rfc8181.object_hash(A))) == rfc8181.SuccessReply()
    assert read(repo.scratch.rsync).files == ours
    assert repo.served() == {"publishers/acme/x.roa": B}


def test_replies_share_one_ee_certificate_for_a_while(tmp_path: Path, peer: Peer) -> None:
    repo = repository(tmp_path, peer)
    first = repo.service.respond(HANDLE, repo.sign(rfc8181.ListQuery()), repo.now)
    second = repo.service.respond(HANDLE, repo.sign(rfc8181.ListQuery()), repo.now)
    later_one = repo.service.respond(HANDLE, repo.sign(rfc8181.ListQuery()), repo.now + timedelta(minutes=2))
    identity = repo.service._identity
    keys = [
        sigmsg.verify(r, identity, repo.now + timedelta(seconds=s), "reply").ee_ski
        for r, s in ((first, 0), (second, 0), (later_one, 120))
    ]
    assert keys[0] == keys[1] != keys[2]
