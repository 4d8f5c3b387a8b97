"""The plan of a CA under an external parent shows the parent and the remote repository: the resource
classes the parent listed and the certificate it issued for our key, whether they differ, how the last
exchanges went; what the repository held, what the plan sends it and what it lacks of the local copy.

The kept state is a real one: a child rpkictl is certified by a parent rpkictl serving RFC 6492 and
RFC 8181 on loopback, once for the module; each test plans a copy of the child's directories, with the
kept state edited where the test says. Planning never contacts the parent (it is stopped by then).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import shutil
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from reconciler import clock, engine
from reconciler.plan.document import PlanDocument
from reconciler.plan.render import markdown, text
from reconciler.protocol import updown
from reconciler.resources import Resources
from reconciler.rpki import cert as rc
from reconciler.upstream import state as stored
from reconciler.upstream.state import LastError, UpstreamState
from tests.helpers import scratch_copy
from tests.serve.remote_child import rpkictl, serve_process
from tests.upstream.child_world import HANDLE, ChildCa, connect, declare_child, make_child

ENTITLED = Resources.parse(["AS64500"], ["203.0.113.0/24"], ["2001:db8:8000::/36"])
WIDER = Resources.parse(["AS64500"], ["198.51.100.0/24", "203.0.113.0/24"], ["2001:db8:8000::/36"])
NARROWER = Resources.parse(["AS64500"], ["203.0.113.0/25"], ["2001:db8:8000::/36"])


@pytest.fixture(scope="module")
def certified(tmp_path_factory: pytest.TempPathFactory) -> ChildCa:
    """A child certified by a parent rpkictl, its objects published at the parent's repository."""
    root = tmp_path_factory.mktemp("upstream-section")
    parent = scratch_copy(root / "parent")
    child = make_child(root / "child")
    declare_child(parent, child)
    assert parent.apply() is not None
    with serve_process(parent.repo, root / "serve.log") as served:
        connect(parent, child, served.url)
        said = child.apply()
    assert "sent 5 publish and 0 withdraw" in said, said
    return child


@pytest.fixture
def child(certified: ChildCa, tmp_path: Path) -> Iterator[ChildCa]:
    """A copy of the certified child's directories, for the test to edit."""
    shutil.copytree(certified.root, tmp_path / "child", symlinks=True)
    yield ChildCa(tmp_path / "child")


def published(child: ChildCa) -> Path:
    return child.root / "published"


def kept(child: ChildCa) -> UpstreamState:
    return stored.load(published(child), HANDLE)


def keep(child: ChildCa, state: UpstreamState) -> None:
    stored.save(published(child), HANDLE, state)


def plan_doc(child: ChildCa) -> PlanDocument:
    workspace = engine.review_workspace(engine.load_desired(child.repo))
    return engine.plan_document(workspace, engine.plan(workspace, clock.now()))


def listed_with(state: UpstreamState, resources: Resources) -> UpstreamState:
    """``state`` with the kept list_response's one class entitling ``resources`` (the certificate kept
    as it is)."""
    assert state.list_response is not None
    message = updown.parse(state.list_response, "kept")
    assert isinstance(message.payload, updown.ListResponse) and len(message.payload.classes) == 1
    changed = dataclasses.replace(message.payload.classes[0], resources=resources)
    payload = updown.ListResponse((changed,))
    return dataclasses.replace(
        state, list_response=updown.render(dataclasses.replace(message, payload=payload))
    )


def plain(doc: PlanDocument) -> str:
    return text.render_plain(doc)


def test_the_parent_section_shows_the_class_and_the_certificate(child: ChildCa) -> None:
    state = kept(child)
    assert state.certified is not None and state.list_response is not None and state.listed_at is not None
    certificate = rc.decode(state.certified.der)
    doc = plan_doc(child)

    parent = doc.parent
    assert parent is not None
    assert (parent.ca, parent.handle) == (HANDLE, "online")
    assert parent.service_uri.startswith("http://127.0.0.1:")
    assert parent.listed_at == state.listed_at
    assert parent.list_sha256 == hashlib.sha256(state.list_response).hexdigest()
    assert [(c.entitled, c.not_after) for c in parent.classes] == [
        (str(ENTITLED), updown.parse(state.list_response, "kept").payload.classes[0].not_after)  # type: ignore[union-attr]
    ]
    assert parent.certified is not None
    assert parent.certified.uri == state.certified.uri
    assert parent.certified.class_name == parent.classes[0].name
    assert parent.certified.resources == str(ENTITLED)
    assert (parent.certified.not_before, parent.certified.not_after) == (
        certificate.not_before,
        certificate.not_after,
    )
    assert parent.certified.key_id == certificate.key_id.hex()
    assert parent.entitled_not_certified == "" and parent.certified_not_entitled == ""
    assert parent.new_certificate is False
    assert parent.contact.last_success == state.parent.last_success and parent.contact.failures == 0
    assert parent.contact.next_contact == state.parent.next_contact

    shown = plain(doc)
    assert "\nParent:\n" in shown
    assert f"  online at {parent.service_uri}, parent of {HANDLE}: list taken" in shown
    assert f"    class {parent.classes[0].name}: entitled to {ENTITLED} until" in shown
    assert (
        f"from {certificate.not_before:%Y-%m-%dT%H:%M:%SZ} to {certificate.not_after:%Y-%m-%dT%H:%M:%SZ}"
        in shown
    )
    assert f"key {certificate.key_id.hex()} ({state.certified.uri})" in shown
    assert "new certificate" not in shown and "entitled but not certified" not in shown


def test_a_wider_class_is_entitled_but_not_certified_and_apply_asks_again(child: ChildCa) -> None:
    keep(child, listed_with(kept(child), WIDER))
    parent = plan_doc(child).parent
    assert parent is not None
    assert parent.classes[0].entitled == str(WIDER)
    assert parent.certified is not None and parent.certified.resources == str(ENTITLED)
    assert parent.entitled_not_certified == "198.51.100.0/24"
    assert parent.certified_not_entitled == ""
    assert parent.new_certificate is True
    shown = plain(plan_doc(child))
    assert "    entitled but not certified: 198.51.100.0/24\n" in shown
    assert "apply asks the parent for a new certificate" in shown


def test_a_narrower_class_is_certified_but_not_entitled(child: ChildCa) -> None:
    keep(child, listed_with(kept(child), NARROWER))
    parent = plan_doc(child).parent
    assert parent is not None
    assert parent.certified_not_entitled == "203.0.113.128/25"
    assert parent.entitled_not_certified == ""
    assert parent.new_certificate is True


def test_the_same_class_rewritten_keeps_the_section_quiet(child: ChildCa) -> None:
    """Entitlement equal to the certificate (the list re-rendered with the same class) asks nothing."""
    keep(child, listed_with(kept(child), ENTITLED))
    parent = plan_doc(child).parent
    assert parent is not None and not parent.new_certificate
    assert parent.entitled_not_certified == parent.certified_not_entitled == ""


def test_the_last_error_and_failures_are_shown(child: ChildCa) -> None:
    state = kept(child)
    at = state.listed_at
    assert at is not None
    error = LastError("the parent is busy", at + timedelta(hours=1), 1101)
    keep(child, dataclasses.replace(state, parent=state.parent.failed(at + timedelta(hours=1), error, None)))
    doc = plan_doc(child)
    assert doc.parent is not None
    assert doc.parent.contact.failures == 1
    assert doc.parent.contact.last_error == error.describe()
    assert doc.parent.contact.last_error_code == 1101
    assert f"1 failure in a row; last error: {error.describe()}" in plain(doc)


def test_a_changed_list_changes_the_plan_id_and_makes_a_saved_plan_stale(child: ChildCa) -> None:
    workspace = engine.review_workspace(engine.load_desired(child.repo))
    saved = engine.plan_document(workspace, engine.plan(workspace, clock.now()))

    def again() -> PlanDocument:
        ws = engine.review_workspace(engine.load_desired(child.repo))
        return engine.plan_document(ws, engine.plan(ws, saved.created_at))

    state = kept(child)
    assert state.listed_at is not None
    # the same list taken again later: the plan is the same one
    keep(child, dataclasses.replace(state, listed_at=state.listed_at + timedelta(hours=1)))
    same = again()
    assert same.plan_id == saved.plan_id
    assert engine.saved_plan_problems(workspace, saved, same) == []
    # the parent lists more: nothing to sign differs, but the plan was made from another list
    keep(child, listed_with(state, WIDER))
    moved = again()
    assert [c.address for c in moved.changes] == [c.address for c in saved.changes]
    assert moved.plan_id != saved.plan_id
    problems = engine.saved_plan_problems(workspace, saved, moved)
    assert len(problems) == 1 and problems[0].startswith(
        "parent online listed other entitlements or certificates since the plan was made"
    ), problems


def test_the_repository_section_counts_what_the_last_list_lacks(child: ChildCa) -> None:
    state = kept(child)
    assert state.listed is not None and len(state.listed) == 5  # recorded by the apply's send
    doc = plan_doc(child)
    repo = doc.repository
    assert repo is not None
    assert repo.ca == HANDLE and repo.sia_base.endswith(f"/publishers/{HANDLE}/")
    assert (repo.objects, repo.bytes) == (5, state.held.size) and repo.bytes > 0
    assert (repo.publish, repo.withdraw) == (0, 0)
    assert (repo.missing, repo.different, repo.extra) == (0, 0, 0)
    assert "it held the local copy exactly at the last exchange" in plain(doc)

    uris = sorted(state.listed)
    listed = {uri: digest for uri, digest in state.listed.items() if uri != uris[0]}  # one missing
    listed[uris[1]] = "00" * 32  # one differs
    listed[uris[2]] = listed[uris[2]].upper()  # the same hash in capitals: not a difference
    listed[f"{repo.sia_base}{HANDLE}/stale.roa"] = "11" * 32  # one extra
    listed[f"{repo.sia_base}{HANDLE}/older.roa"] = "22" * 32  # and another
    keep(child, dataclasses.replace(state, listed=listed))
    doc = plan_doc(child)
    assert doc.repository is not None
    assert (doc.repository.missing, doc.repository.different, doc.repository.extra) == (1, 1, 2)
    shown = plain(doc)
    assert "\nRepository:\n" in shown
    assert "    1 object missing at the repository, 1 differ, 2 extra: apply sends them\n" in shown


def test_without_a_kept_list_the_first_apply_sends_everything(child: ChildCa) -> None:
    keep(child, dataclasses.replace(kept(child), listed=None))
    doc = plan_doc(child)
    assert doc.repository is not None and doc.repository.missing is None
    assert "no list of the repository kept yet: apply sends every object of the local copy" in plain(doc)


def test_the_repository_section_counts_the_plans_publish_and_withdraw(child: ChildCa) -> None:
    """A ROA removed from the YAML: the ROA is withdrawn, the manifest and CRL re-signed."""
    ca_file = child.repo / "cas" / f"{HANDLE}.yaml"
    lines = ca_file.read_text().splitlines(keepends=True)
    ca_file.write_text("".join(line for line in lines if "203.0.113.128/25" not in line))
    doc = plan_doc(child)
    assert doc.repository is not None
    withdrawn = [c.address for c in doc.changes if c.action in ("withdraw", "revoke")]
    published_ = [c.kind for c in doc.changes if c.action in ("issue", "reissue", "renew")]
    assert withdrawn == [f"roa {HANDLE}/AS64500_203-0-113-128_25.roa"], withdrawn
    assert sorted(published_) == ["crl", "manifest"], published_
    assert (doc.repository.publish, doc.repository.withdraw) == (2, 1)
    assert "    this plan sends 2 publish and 1 withdraw (its changes in CA directories)\n" in plain(doc)


def test_markdown_and_json_carry_both_sections(child: ChildCa) -> None:
    keep(child, listed_with(kept(child), WIDER))
    done = rpkictl("plan", str(child.repo), "--format", "json")
    assert done.returncode in (0, 2), done.stderr
    raw = json.loads(done.stdout)
    assert raw["format_version"] == "2.6"
    assert raw["parent"]["entitled_not_certified"] == "198.51.100.0/24"
    assert raw["parent"]["classes"][0]["entitled"] == str(WIDER)
    assert raw["repository"]["missing"] == 0 and raw["repository"]["objects"] == 5
    comment = markdown.render(plan_doc(child))
    assert "\n#### Parent\n" in comment and "\n#### Repository\n" in comment
    assert "  - entitled but not certified: 198.51.100.0/24\n" in comment


def test_a_hierarchy_with_its_own_trust_anchor_has_neither_section(tmp_path: Path) -> None:
    scratch = scratch_copy(tmp_path)
    workspace = engine.review_workspace(engine.load_desired(scratch.repo))
    doc = engine.plan_document(workspace, engine.plan(workspace, clock.now()))
    assert doc.parent is None and doc.repository is None
    assert "Parent:" not in plain(doc) and "Repository:" not in plain(doc)


def test_the_repositorys_list_is_kept_and_read_back(tmp_path: Path) -> None:
    state = UpstreamState(listed={"rsync://r.example/a/x.roa": "ab" * 32})
    stored.save(tmp_path, "x", state)
    assert stored.load(tmp_path, "x").listed == state.listed
    raw = json.loads(stored.path(tmp_path, "x").read_text())
    del raw["listed"]  # a file written before the list was kept
    stored.path(tmp_path, "x").write_text(json.dumps(raw))
    assert stored.load(tmp_path, "x").listed is None
    raw["listed"] = ["not", "a", "map"]
    stored.path(tmp_path, "x").write_text(json.dumps(raw))
    with pytest.raises(stored.StateError, match="'listed' is not a map of URIs to hashes"):
        stored.load(tmp_path, "x")
