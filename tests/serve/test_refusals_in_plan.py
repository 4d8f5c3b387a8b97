"""What ``rpkictl serve`` refuses a declared external child (RFC 6492) or publisher (RFC 8181) is kept
in ``serve/refused.json`` and shown by ``rpkictl plan`` under that child or publisher: real children and
publishers sign real messages, the services answer them, and the plan is a real ``rpkictl`` process."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from reconciler import refusals
from reconciler.protocol import publication as rfc8181
from reconciler.protocol import updown
from reconciler.resources import Resources
from tests.helpers import T0, Scratch, scratch_copy
from tests.serve.parent_world import World, make_world
from tests.serve.test_publication_service import (
    NOT_A_ROA,
    SIA,
    Peer,
    Repository,
    declare,
    errors,
    make_peer,
    open_repository,
)
from tests.test_cli import rpkictl

OUTSIDE = Resources.parse(["AS64999"], ["198.51.100.0/24"], [])


def record_path(scratch: Scratch) -> Path:
    return scratch.root / "published" / refusals.RECORD_FILE


def kept(scratch: Scratch) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(record_path(scratch).read_text())
    return document


def plan_text(scratch: Scratch, now: datetime) -> str:
    result = rpkictl("plan", str(scratch.repo), "--now", now.isoformat())
    assert result.returncode in (0, 2), result.stderr
    return result.stdout


def plan_json(scratch: Scratch, now: datetime) -> dict[str, Any]:
    result = rpkictl("plan", str(scratch.repo), "--now", now.isoformat(), "--format", "json")
    assert result.returncode in (0, 2), result.stderr
    doc: dict[str, Any] = json.loads(result.stdout)
    return doc


def wrong_class(world: World, name: str) -> updown.Payload:
    return world.send(updown.IssueRequest(name, world.child.request("k1"), None))


@pytest.fixture
def world(tmp_path: Path) -> World:
    return make_world(tmp_path)


def test_a_childs_refusals_are_kept_and_shown_in_the_plan(world: World) -> None:
    outside = world.issue(limit=OUTSIDE)
    assert isinstance(outside, updown.ErrorResponse) and outside.status == 1202
    first = world.now
    unknown = wrong_class(world, "elsewhere")
    assert isinstance(unknown, updown.ErrorResponse) and unknown.status == 1201
    assert isinstance(world.issue(), updown.IssueResponse)  # an answer is not a refusal

    entries = kept(world.scratch)["refused"]["child:acme"]
    assert [(e["code"], e["request"]) for e in entries] == [(1202, "issue"), (1201, "issue")]
    assert entries[0]["text"] == outside.description
    assert entries[0]["at"] == f"{first:%Y-%m-%dT%H:%M:%SZ}"
    assert entries[1]["at"] == f"{first + timedelta(seconds=1):%Y-%m-%dT%H:%M:%SZ}"

    doc = plan_json(world.scratch, world.now)
    (child,) = doc["external_children"]
    assert [(r["code"], r["request"], r["text"]) for r in child["refused"]] == [
        ("1202", "issue", outside.description),
        ("1201", "issue", unknown.description),
    ]
    text = plan_text(world.scratch, world.now)
    assert (
        f"    refused {first:%Y-%m-%dT%H:%M:%SZ}: issue -> 1202 (request - no resources allocated in "
        f"resource class): {outside.description}"
    ) in text.splitlines()
    assert f"issue -> 1201 (request - no such resource class): {unknown.description}" in text
    result = rpkictl("plan", str(world.scratch.repo), "--now", world.now.isoformat(), "--format", "markdown")
    assert f"  - refused {first:%Y-%m-%dT%H:%M:%SZ}: issue -> 1202 " in result.stdout, result.stdout


def test_at_most_five_are_kept_per_child_the_latest(world: World) -> None:
    for number in range(7):
        assert isinstance(wrong_class(world, f"class{number}"), updown.ErrorResponse)
    entries = kept(world.scratch)["refused"]["child:acme"]
    assert len(entries) == refusals.KEPT
    assert [e["text"].split("'")[1] for e in entries] == [f"class{n}" for n in range(2, 7)]
    assert len(plan_json(world.scratch, world.now)["external_children"][0]["refused"]) == refusals.KEPT


def test_undeclared_childrens_entries_are_dropped_publishers_kept(world: World) -> None:
    where = record_path(world.scratch)
    where.parent.mkdir(parents=True, exist_ok=True)
    entry = {"at": "2026-01-01T00:00:00Z", "code": 1201, "text": "old", "request": "issue"}
    where.write_text(
        json.dumps(
            {
                "format": 1,
                "refused": {"child:ghost": [entry], "publisher:bob": [{**entry, "code": "xml_error"}]},
            }
        )
    )
    assert isinstance(wrong_class(world, "elsewhere"), updown.ErrorResponse)
    assert sorted(kept(world.scratch)["refused"]) == ["child:acme", "publisher:bob"]


def test_a_damaged_record_neither_blocks_serving_nor_planning(world: World) -> None:
    where = record_path(world.scratch)
    where.parent.mkdir(parents=True, exist_ok=True)
    where.write_text('{"format": 1, "refused": {"child:acme": "not a list"}')
    text = plan_text(world.scratch, world.now)
    assert f"the record of refused requests in {where} cannot be read: not JSON" in text
    doc = plan_json(world.scratch, world.now)
    assert doc["external_children"][0]["refused"] == []
    assert [n["kind"] for n in doc["notices"]].count("serve") == 1

    refused = wrong_class(world, "elsewhere")
    assert isinstance(refused, updown.ErrorResponse) and refused.status == 1201
    assert [e["code"] for e in kept(world.scratch)["refused"]["child:acme"]] == [1201]  # written afresh
    assert "cannot be read" not in plan_text(world.scratch, world.now)


def test_a_record_that_cannot_be_written_does_not_fail_the_answer(world: World, tmp_path: Path) -> None:
    logged: list[str] = []
    world.service.log = logged.append
    where = record_path(world.scratch)
    where.parent.mkdir(parents=True, exist_ok=True)
    elsewhere = tmp_path / "elsewhere.lock"
    where.with_name(where.name + ".lock").symlink_to(elsewhere)  # a planted link is never followed
    refused = wrong_class(world, "elsewhere")
    assert isinstance(refused, updown.ErrorResponse) and refused.status == 1201
    assert not elsewhere.exists() and not where.exists()
    assert any("the refusal could not be kept in" in line for line in logged), logged
    assert any("refused with 1201" in line for line in logged), logged


def test_the_kept_text_is_one_line_and_bounded(tmp_path: Path) -> None:
    where = tmp_path / "serve" / "refused.json"
    peer = refusals.child("acme")
    at = datetime(2026, 12, 7, 10, 0, 0, 123456, tzinfo=UTC)
    refusals.add(where, peer, refusals.Refusal(at, 1203, "bad\nrequest\x1b[31m" * 100, "issue"), {peer})
    refusals.add(where, refusals.child("ghost"), refusals.Refusal(at, 1201, "x", "issue"), {peer})
    (found,) = refusals.read(where).of_child("acme")
    assert found.at == at.replace(microsecond=0) and found.code == 1203
    assert len(found.text) == refusals.TEXT_LIMIT and "\n" not in found.text and "\x1b" not in found.text
    assert refusals.read(where).of_child("ghost") == ()  # not declared: not kept
    assert refusals.read(tmp_path / "none.json") == refusals.Kept()
    where.write_text('{"format": 1, "refused": {"child:acme": "not a list"}}')
    problem = refusals.read(where).problem
    assert problem == f"the record of refused requests in {where} cannot be read: " + (
        "the entries of 'child:acme' are not a list"
    )


# -- publishers --------------------------------------------------------------------------------------


@pytest.fixture
def repo(tmp_path: Path) -> Repository:
    scratch = scratch_copy(tmp_path)
    peer: Peer = make_peer(tmp_path / "publisher-keys", "acme")
    declare(scratch, peer)
    assert scratch.apply(T0) is not None
    return open_repository(scratch, peer)


def test_a_publishers_refusals_are_kept_and_shown_in_the_plan(repo: Repository) -> None:
    outside = repo.send(rfc8181.Publish("rsync://rpki.example.net/repo/cas/x.roa", NOT_A_ROA, tag="a"))
    assert errors(outside) == [("permission_failure", "a")]
    assert repo.send(rfc8181.Publish(SIA + "x.roa", NOT_A_ROA)) == rfc8181.SuccessReply()
    wrong = repo.send(rfc8181.Withdraw(SIA + "x.roa", "00" * 32, tag="b"))
    assert errors(wrong) == [("no_object_matching_hash", "b")]
    assert isinstance(outside, rfc8181.ErrorReply) and isinstance(wrong, rfc8181.ErrorReply)

    entries = kept(repo.scratch)["refused"]["publisher:acme"]
    assert [(e["code"], e["request"]) for e in entries] == [
        ("permission_failure", "publish"),
        ("no_object_matching_hash", "publish"),
    ]
    assert entries[1]["text"] == wrong.errors[0].text

    doc = plan_json(repo.scratch, repo.now)
    (publisher,) = doc["publishers"]
    assert [(r["code"], r["text"]) for r in publisher["refused"]] == [
        ("permission_failure", outside.errors[0].text),
        ("no_object_matching_hash", wrong.errors[0].text),
    ]
    lines = plan_text(repo.scratch, repo.now).splitlines()
    at = lines.index("Publishers:")
    assert lines[at + 1].startswith("  acme: 1 object")
    assert lines[at + 2].startswith("    refused ") and "publish -> permission_failure: " in lines[at + 2]
    assert lines[at + 3].endswith(f"publish -> no_object_matching_hash: {wrong.errors[0].text}")


def test_an_unverified_message_is_not_kept(repo: Repository, tmp_path: Path) -> None:
    stranger = make_peer(tmp_path / "stranger-keys", "acme")
    reply = repo.answer(repo.sign(rfc8181.ListQuery(), stranger))
    assert errors(reply)[0][0] == "bad_cms_signature"
    assert not record_path(repo.scratch).exists()
    assert isinstance(
        repo.answer(repo.sign(rfc8181.Query((rfc8181.Withdraw(SIA + "y.roa", "00" * 32),)))),
        rfc8181.ErrorReply,
    )
    assert [e["code"] for e in kept(repo.scratch)["refused"]["publisher:acme"]] == ["no_object_present"]
