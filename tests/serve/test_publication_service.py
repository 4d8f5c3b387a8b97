"""The RFC 8181 publication server, called as ``rpkictl serve`` calls it: messages signed by a real
publisher identity, answers verified with the repository's; what it accepts appears in the served
rsync tree and in RRDP, what it refuses leaves both untouched, and our own plans and applies never
treat a publisher's objects as theirs."""

from __future__ import annotations

import subprocess
import sys
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from reconciler import engine
from reconciler import identity as ours
from reconciler.apply import audit, lock
from reconciler.desired.model import DesiredState
from reconciler.diagnostics import DesiredStateError
from reconciler.plan.model import Action, Kind
from reconciler.plan.publishers import GATE
from reconciler.protocol import bpki, oob, sigmsg
from reconciler.protocol import publication as rfc8181
from reconciler.protocol.bpki import IdentityCertificate
from reconciler.published import read, reader
from reconciler.serve.app import UnknownPeer
from reconciler.serve.publication import PublicationService
from reconciler.signers import FileSigner
from tests.helpers import T0, Scratch, later, scratch_copy
from tests.publish.test_rrdp import apply_delta, notification, snapshot_files, with_rrdp

HANDLE = "acme"
BASE = "rsync://rpki.example.net/repo/"
SIA = f"{BASE}publishers/{HANDLE}/"
ISP = "cas/members/example-isp.yaml"
#: Bytes named like a ROA that are no ROA at all: a publisher may publish anything.
NOT_A_ROA = b"\x30\x03\x02\x01\x07 this is not a ROA"


@dataclass
class Peer:
    signer: FileSigner
    key: bytes
    identity: IdentityCertificate


def make_peer(directory: Path, owner: str) -> Peer:
    signer = FileSigner(directory)
    key = signer.create_key(bpki.identity_label(owner))
    return Peer(signer, key, bpki.create_identity(signer, key, T0))


@pytest.fixture(scope="module")
def peer(tmp_path_factory: pytest.TempPathFactory) -> Peer:
    return make_peer(tmp_path_factory.mktemp("publisher-keys"), HANDLE)


def declare(scratch: Scratch, peer: Peer, quota: str = "") -> None:
    """Add the publisher to rpki.yaml, with its RFC 8183 publisher_request committed beside it."""
    request = oob.PublisherRequest(publisher_handle=HANDLE, identity=peer.identity.der)
    (scratch.repo / "publishers").mkdir(exist_ok=True)
    (scratch.repo / "publishers" / "acme.xml").write_bytes(oob.render(request))
    text = (scratch.repo / "rpki.yaml").read_text()
    (scratch.repo / "rpki.yaml").write_text(
        text + f"publishers:\n  - handle: {HANDLE}\n    request: publishers/acme.xml\n{quota}"
    )


@dataclass
class Repository:
    scratch: Scratch
    desired: DesiredState
    service: PublicationService
    peer: Peer
    now: datetime = T0

    def tick(self) -> datetime:
        self.now += timedelta(seconds=1)  # CMS signing times are to the second, and must grow
        return self.now

    def sign(self, query: rfc8181.QueryMessage, peer: Peer | None = None) -> bytes:
        who = peer or self.peer
        return sigmsg.sign(rfc8181.render(query), who.signer, who.key, who.identity, self.tick())

    def answer(self, body: bytes) -> rfc8181.ReplyMessage:
        reply = self.service.respond(HANDLE, body, self.now)
        identity = ours.load(ours.REPOSITORY, ours.directory(self.desired))  # what publishers are given
        assert identity is not None
        return rfc8181.parse_reply(sigmsg.verify(reply, identity, self.now, "reply").xml, "reply")

    def send(self, *pdus: rfc8181.Pdu) -> rfc8181.ReplyMessage:
        return self.answer(self.sign(rfc8181.Query(pdus)))

    def list(self) -> dict[str, str]:
        reply = self.answer(self.sign(rfc8181.ListQuery()))
        assert isinstance(reply, rfc8181.ListReply)
        return {entry.uri: entry.hash for entry in reply.entries}

    def served(self) -> dict[str, bytes]:
        """The publisher's part of the rsync tree relying parties fetch."""
        found = read(self.scratch.rsync)
        return {path: data for path, data in found.foreign.items() if path.startswith("publishers/")}

    def rrdp_files(self) -> dict[str, bytes]:
        return snapshot_files(self.scratch, notification(self.scratch))


def open_repository(scratch: Scratch, peer: Peer, **options: object) -> Repository:
    desired = engine.load_desired(scratch.repo)
    return Repository(scratch, desired, PublicationService.open(desired, T0, **options), peer)


@pytest.fixture
def repo(tmp_path: Path, peer: Peer) -> Repository:
    scratch = with_rrdp(scratch_copy(tmp_path))
    declare(scratch, peer, "    quota: {objects: 4, size: 4096}\n")
    assert scratch.apply(T0) is not None
    return open_repository(scratch, peer)


def errors(reply: rfc8181.ReplyMessage) -> list[tuple[str, str | None]]:
    assert isinstance(reply, rfc8181.ErrorReply), reply
    return [(e.code, e.tag) for e in reply.errors]


def test_create_replace_withdraw_reach_rsync_and_rrdp(repo: Repository) -> None:
    ours = read(repo.scratch.rsync).files
    first = notification(repo.scratch)
    assert repo.list() == {}
    reply = repo.send(
        rfc8181.Publish(SIA + "x.roa", NOT_A_ROA, tag="a"),
        rfc8181.Publish(SIA + "0/ca.cer", b"certificate bytes", tag="b"),
    )
    assert reply == rfc8181.SuccessReply()
    assert repo.served() == {
        "publishers/acme/x.roa": NOT_A_ROA,
        "publishers/acme/0/ca.cer": b"certificate bytes",
    }
    assert repo.list() == {
        SIA + "x.roa": rfc8181.object_hash(NOT_A_ROA),
        SIA + "0/ca.cer": rfc8181.object_hash(b"certificate bytes"),
    }
    second = notification(repo.scratch)
    assert (second.session_id, second.serial) == (first.session_id, first.serial + 1)
    snapshot = repo.rrdp_files()
    assert (
        snapshot["publishers/acme/x.roa"] == NOT_A_ROA
        and {k: v for k, v in snapshot.items() if not k.startswith("publishers/")} == ours
    )
    # a relying party following the delta from the previous snapshot gets the same
    assert (
        apply_delta(repo.scratch, snapshot_files(repo.scratch, first), second.deltas[0], first.session_id)
        == snapshot
    )

    reply = repo.send(
        rfc8181.Publish(SIA + "x.roa", b"new bytes", hash=rfc8181.object_hash(NOT_A_ROA), tag="r"),
        rfc8181.Withdraw(SIA + "0/ca.cer", rfc8181.object_hash(b"certificate bytes"), tag="w"),
    )
    assert reply == rfc8181.SuccessReply()
    assert repo.served() == {"publishers/acme/x.roa": b"new bytes"}
    assert not (repo.scratch.rsync / "publishers" / "acme" / "0").exists()
    third = notification(repo.scratch)
    assert third.serial == second.serial + 1
    assert apply_delta(repo.scratch, snapshot, third.deltas[0], first.session_id) == repo.rrdp_files()
    assert repo.rrdp_files()["publishers/acme/x.roa"] == b"new bytes"
    assert read(repo.scratch.rsync).files == ours  # our objects untouched

    records = [
        e.record for e in audit.read(repo.desired.audit_log_path) if e.record["status"] == audit.PUBLISHED
    ]
    assert [(r["publisher"], r["created"], r["replaced"], r["withdrawn"]) for r in records] == [
        (HANDLE, 2, 0, 0),
        (HANDLE, 0, 1, 1),
    ]
    assert all(len(r["message_sha256"]) == 64 for r in records)


def test_our_plans_and_applies_leave_the_publishers_objects_alone(repo: Repository) -> None:
    assert repo.send(rfc8181.Publish(SIA + "x.roa", NOT_A_ROA)) == rfc8181.SuccessReply()
    vrps = repo.scratch.vrps()
    workspace = engine.review_workspace(engine.load_desired(repo.scratch.repo))
    assert "publishers/acme/x.roa" not in workspace.published.files
    the_plan = engine.plan(workspace, repo.now)
    assert the_plan.empty, the_plan.changes
    assert not [f for f in engine.check(workspace, repo.now) if "publishers" in f.message + f.ca]

    # a change of our own: published with the publisher's object carried over, in rsync and RRDP
    repo.scratch.edit(ISP, "max_length: 26", "max_length: 25")
    result = repo.scratch.apply(later(1))
    assert result is not None and not [p for p in (*result.written, *result.removed) if "publishers" in p]
    assert repo.scratch.vrps() != vrps
    assert repo.served() == {"publishers/acme/x.roa": NOT_A_ROA}
    assert repo.rrdp_files()["publishers/acme/x.roa"] == NOT_A_ROA
    assert repo.scratch.plan(later(1)).empty

    shown = subprocess.run(
        [sys.executable, "-m", "reconciler", "plan", str(repo.scratch.repo), "--now", "2026-11-23T13:00:00Z"],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert shown.returncode == 0, shown.stderr
    assert "No changes" in shown.stdout
    changes = shown.stdout.split("Publishers:")[0]  # the publishers' own section says what they hold
    assert "publishers/" not in changes and "acme: 1 object," in shown.stdout.split("Publishers:")[1]


def test_outside_the_sia_base_is_refused_and_nothing_applied(repo: Repository) -> None:
    before = (read(repo.scratch.rsync).served_files(), notification(repo.scratch).serial)
    reply = repo.send(
        rfc8181.Publish(SIA + "fine.roa", b"fine", tag="ok"),
        rfc8181.Publish(BASE + "publishers/other/x.roa", b"x", tag="other"),
        rfc8181.Publish(BASE + "example-isp/AS1_ipv4.roa", b"x", tag="ours"),
        rfc8181.Publish(SIA + "../online/x.roa", b"x", tag="dotdot"),
        rfc8181.Publish(SIA + "a//x.roa", b"x", tag="empty"),
        rfc8181.Publish(SIA + "x.y.roa", b"x", tag="two-dots"),
        rfc8181.Publish(SIA + "x.exe", b"x", tag="extension"),
    )
    assert errors(reply) == [
        ("permission_failure", tag) for tag in ("other", "ours", "dotdot", "empty", "two-dots", "extension")
    ]
    assert (read(repo.scratch.rsync).served_files(), notification(repo.scratch).serial) == before


def test_a_hash_mismatch_in_the_third_pdu_applies_none(repo: Repository) -> None:
    assert repo.send(rfc8181.Publish(SIA + "c.roa", b"current")) == rfc8181.SuccessReply()
    before = (repo.served(), notification(repo.scratch).serial)
    reply = repo.send(
        rfc8181.Publish(SIA + "a.roa", b"a", tag="1"),
        rfc8181.Publish(SIA + "b.roa", b"b", tag="2"),
        rfc8181.Publish(SIA + "c.roa", b"c", hash=rfc8181.object_hash(b"something else"), tag="3"),
    )
    assert errors(reply) == [("no_object_matching_hash", "3")]
    assert isinstance(reply, rfc8181.ErrorReply) and reply.errors[0].failed_pdu is not None
    assert (repo.served(), notification(repo.scratch).serial) == before


def test_hash_rules(repo: Repository) -> None:
    assert repo.send(rfc8181.Publish(SIA + "c.roa", b"current")) == rfc8181.SuccessReply()
    reply = repo.send(
        rfc8181.Publish(SIA + "c.roa", b"again", tag="create-existing"),
        rfc8181.Withdraw(SIA + "gone.roa", rfc8181.object_hash(b"x"), tag="withdraw-missing"),
        rfc8181.Publish(SIA + "gone.cer", b"x", hash=rfc8181.object_hash(b"x"), tag="replace-missing"),
    )
    assert errors(reply) == [
        ("object_already_present", "create-existing"),
        ("no_object_present", "withdraw-missing"),
        ("no_object_present", "replace-missing"),
    ]
    assert repo.served() == {"publishers/acme/c.roa": b"current"}


def test_quota_of_objects_and_bytes(repo: Repository) -> None:
    four = [rfc8181.Publish(SIA + f"o{i}.roa", b"x", tag=str(i)) for i in range(5)]
    assert errors(repo.send(*four)) == [("other_error", "4")]  # the 5th object: quota 4
    assert repo.served() == {}
    assert errors(repo.send(rfc8181.Publish(SIA + "big.roa", b"x" * 5000, tag="big"))) == [
        ("other_error", "big")
    ]
    assert repo.send(*four[:4]) == rfc8181.SuccessReply()
    # a withdrawal in the same message makes room
    assert (
        repo.send(four[4], rfc8181.Withdraw(SIA + "o0.roa", rfc8181.object_hash(b"x")))
        == rfc8181.SuccessReply()
    )
    assert sorted(repo.served()) == [f"publishers/acme/o{i}.roa" for i in range(1, 5)]


def test_a_replayed_message_is_refused(repo: Repository) -> None:
    body = repo.sign(rfc8181.Query((rfc8181.Publish(SIA + "x.roa", b"x"),)))
    assert repo.answer(body) == rfc8181.SuccessReply()
    assert repo.send(rfc8181.Withdraw(SIA + "x.roa", rfc8181.object_hash(b"x"))) == rfc8181.SuccessReply()
    repo.tick()
    replayed = repo.answer(body)  # would publish x.roa again
    assert errors(replayed) == [("permission_failure", None)]
    assert isinstance(replayed, rfc8181.ErrorReply) and "not after" in (replayed.errors[0].text or "")
    assert repo.served() == {}


def test_an_unknown_publisher_is_not_served(repo: Repository) -> None:
    body = repo.sign(rfc8181.ListQuery())
    with pytest.raises(UnknownPeer, match="nobody"):
        repo.service.respond("nobody", body, repo.now)


def test_garbage_and_foreign_signatures_are_refused(repo: Repository, tmp_path: Path) -> None:
    assert errors(repo.answer(b"\x30\x80garbage")) == [("bad_cms_signature", None)]
    stranger = make_peer(tmp_path / "stranger", "stranger")
    assert errors(
        repo.answer(repo.sign(rfc8181.Query((rfc8181.Publish(SIA + "x.roa", b"x"),)), stranger))
    ) == [("bad_cms_signature", None)]
    not_xml = sigmsg.sign(b"<msg", repo.peer.signer, repo.peer.key, repo.peer.identity, repo.tick())
    assert errors(repo.answer(not_xml)) == [("xml_error", None)]
    assert repo.served() == {}


def test_a_publication_waits_for_an_apply_then_says_try_again(tmp_path: Path, peer: Peer) -> None:
    scratch = with_rrdp(scratch_copy(tmp_path))
    declare(scratch, peer)
    assert scratch.apply(T0) is not None
    repo = open_repository(scratch, peer, lock_wait=timedelta(seconds=0.5))
    directory = repo.desired.publication.directory
    with lock.acquire(directory, who="operator", operation="apply", plan_id=None, timeout=timedelta(0)):
        reply = repo.send(rfc8181.Publish(SIA + "x.roa", b"x", tag="t"))
    assert errors(reply) == [("other_error", None)]
    assert repo.served() == {}
    assert repo.send(rfc8181.Publish(SIA + "x.roa", b"x")) == rfc8181.SuccessReply()


def test_concurrent_publications_are_serialised(repo: Repository) -> None:
    bodies = [repo.sign(rfc8181.Query((rfc8181.Publish(SIA + f"t{i}.roa", b"x"),))) for i in range(3)]
    replies: list[bytes] = []

    def post(body: bytes) -> None:
        replies.append(repo.service.respond(HANDLE, body, repo.now))

    threads = [threading.Thread(target=post, args=(body,)) for body in bodies]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert len(replies) == 3
    accepted = sorted(repo.served())
    # the replay guard lets a later-signed message overtake an earlier one, never both orders: every
    # accepted object is in the tree, none half-written
    assert accepted and all(path.startswith("publishers/acme/t") for path in accepted)
    assert repo.rrdp_files().keys() >= set(accepted)


def test_a_removed_publisher_is_withdrawn_only_with_approval(repo: Repository) -> None:
    assert repo.send(rfc8181.Publish(SIA + "x.roa", NOT_A_ROA)) == rfc8181.SuccessReply()
    text = (repo.scratch.repo / "rpki.yaml").read_text()
    (repo.scratch.repo / "rpki.yaml").write_text(text.split("publishers:")[0])
    workspace = engine.open_workspace(repo.scratch.repo)
    the_plan = engine.plan(workspace, repo.now)
    assert [(c.action, c.kind, c.path) for c in the_plan.changes] == [
        (Action.WITHDRAW, Kind.FILE, "publishers/acme/")
    ]
    assert [g.id for g in the_plan.gates] == [f"{GATE}@{HANDLE}"]
    assert "1 object" in the_plan.gates[0].message
    # the unattended loop applies only routine changes: the objects stay
    assert engine.routine_only(the_plan).empty
    gated = subprocess.run(
        [
            sys.executable,
            "-m",
            "reconciler",
            "apply",
            str(repo.scratch.repo),
            "--yes",
            "--now",
            "2026-11-23T12:10:00Z",
            "--simulate-time",
        ],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert gated.returncode != 0 and f"{GATE}@{HANDLE}" in gated.stdout + gated.stderr
    assert repo.served() == {"publishers/acme/x.roa": NOT_A_ROA}
    # approved: withdrawn from rsync and RRDP
    result = engine.apply(workspace, the_plan)
    assert result is not None and "publishers/acme/x.roa" in result.removed
    assert repo.served() == {}
    assert not [p for p in repo.rrdp_files() if p.startswith("publishers/")]
    desired = engine.load_desired(repo.scratch.repo)
    with pytest.raises(UnknownPeer):
        PublicationService.open(desired, T0).respond(HANDLE, repo.sign(rfc8181.ListQuery()), repo.now)


def test_planted_files_in_the_publishers_directory_are_removed_as_damage(repo: Repository) -> None:
    assert repo.send(rfc8181.Publish(SIA + "x.roa", NOT_A_ROA)) == rfc8181.SuccessReply()
    served = repo.scratch.rsync.resolve()
    (served / "publishers" / "planted.roa").write_bytes(b"junk")
    the_plan = repo.scratch.plan(repo.now)
    # RRDP no longer serves what rsync serves, and says so too
    assert [(c.kind, c.path, c.repair) for c in the_plan.changes] == [
        (Kind.FILE, "publishers/planted.roa", True),
        (Kind.RRDP, "notification.xml", False),
    ]
    assert not the_plan.gates
    assert repo.scratch.apply(repo.now) is not None
    assert repo.served() == {"publishers/acme/x.roa": NOT_A_ROA}
    assert "publishers/planted.roa" not in read(repo.scratch.rsync).foreign


def test_no_ca_may_be_named_like_the_publishers_directory(tmp_path: Path) -> None:
    scratch = scratch_copy(tmp_path)  # no publisher declared: the directory is reserved all the same
    scratch.write(
        "cas/members/publishers.yaml",
        "name: publishers\nparent: online\nresources:\n  asn: [AS64500]\n",
    )
    with pytest.raises(DesiredStateError, match="'publishers' is reserved"):
        engine.load_desired(scratch.repo)


def test_a_list_after_a_publication_is_answered_from_what_was_written(
    repo: Repository, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The list every publisher sends before each change is made from the objects the service wrote,
    while that tree is the one served; once another tree is served (our own apply), from the tree."""
    assert repo.send(rfc8181.Publish(SIA + "x.roa", NOT_A_ROA)) == rfc8181.SuccessReply()
    reads: list[str] = []
    real = reader.read_foreign

    def counted(rsync: Path, directory: str) -> dict[str, bytes]:
        reads.append(directory)
        return real(rsync, directory)

    monkeypatch.setattr(reader, "read_foreign", counted)
    assert repo.list() == {SIA + "x.roa": rfc8181.object_hash(NOT_A_ROA)}
    assert reads == []  # from memory
    repo.scratch.edit(ISP, "max_length: 26", "max_length: 25")
    assert repo.scratch.apply(later(1)) is not None  # another tree is served now
    assert repo.list() == {SIA + "x.roa": rfc8181.object_hash(NOT_A_ROA)}
    assert reads == ["publishers/acme/"]
