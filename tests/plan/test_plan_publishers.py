"""``rpkictl plan`` lists the external publishers (RFC 8181) declared in rpki.yaml, each with the objects
and bytes it publishes in our repository now and its quota -- declared with the real Krill
publisher_request, its objects placed in the served tree as a publication places them. A tree without
publishers shows no such section, in text, Markdown or JSON."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from reconciler import engine, layout
from reconciler.plan.render import markdown
from reconciler.plan.render.text import render_plain
from reconciler.published import reader
from tests.helpers import T0, Scratch, later, scratch_copy
from tests.test_cli import rpkictl

KRILL = Path(__file__).resolve().parents[1] / "fixtures" / "real-world" / "protocols" / "krill" / "oob"
PUBLISHER_REQUEST = KRILL / "publisher_request.xml"  # publisher_handle="Bob"
SIA_BASE = "rsync://rpki.example.net/repo/publishers/bob/"
PUBLISHER = """\
publishers:
  - handle: bob
    request: publishers/bob.xml
    quota: {objects: 500, size: "2 MiB"}
"""
NOW = later(1)


def declare(scratch: Scratch) -> None:
    (scratch.repo / "publishers").mkdir(exist_ok=True)
    shutil.copyfile(PUBLISHER_REQUEST, scratch.repo / "publishers" / "bob.xml")
    settings = scratch.repo / "rpki.yaml"
    settings.write_text(settings.read_text() + PUBLISHER)


def place(scratch: Scratch, foreign: dict[str, bytes]) -> None:
    """What the publication server does with accepted objects: a new served tree (rsync and RRDP) with
    our own objects unchanged and ``foreign`` as the publishers' part."""
    workspace = engine.open_workspace(scratch.repo)
    engine.publish_all(workspace, workspace.published.files, NOW, foreign=foreign)


@pytest.fixture
def applied(tmp_path: Path) -> Scratch:
    """The example applied once: our own tree served, nothing of anyone else's."""
    scratch = scratch_copy(tmp_path)
    assert scratch.apply(T0) is not None
    return scratch


def own_objects(scratch: Scratch) -> list[bytes]:
    """Two real signed objects of different sizes (our published ROAs), as a publisher's would be."""
    files = engine.open_workspace(scratch.repo).published.files
    roas = sorted((data for path, data in files.items() if path.endswith(".roa")), key=len)
    assert len(roas) >= 2 and len(roas[0]) != len(roas[-1])
    return [roas[0], roas[-1]]


@pytest.fixture
def publishing(applied: Scratch) -> tuple[Scratch, int]:
    """Publisher bob declared with two objects under its directory (one in a subdirectory), and objects
    that are not bob's beside them: an undeclared publisher's and one outside every directory."""
    declare(applied)
    first, second = own_objects(applied)
    place(
        applied,
        {
            "publishers/bob/one.roa": first,
            "publishers/bob/deeper/two.roa": second,
            "publishers/bobby/three.roa": first,
            "publishers/stray.roa": second,
        },
    )
    return applied, len(first) + len(second)


def test_json_lists_the_publisher_with_its_counts_and_quota(publishing: tuple[Scratch, int]) -> None:
    scratch, size = publishing
    result = rpkictl("plan", str(scratch.repo), "--now", NOW.isoformat(), "--format", "json")
    assert result.returncode == 3, result.stderr  # the undeclared publisher's objects: withdrawn if approved
    doc = json.loads(result.stdout)
    assert [g["id"] for g in doc["gates"]] == ["publisher-remove@bobby"]
    assert doc["publishers"] == [
        {
            "handle": "bob",
            "sia_base": SIA_BASE,
            "objects": 2,
            "bytes": size,
            "quota_objects": 500,
            "quota_bytes": 2 * 1024 * 1024,
            "refused": [],
        }
    ]


def test_text_shows_a_publishers_section(publishing: tuple[Scratch, int]) -> None:
    scratch, size = publishing
    result = rpkictl("plan", str(scratch.repo), "--now", NOW.isoformat())
    assert result.returncode == 3, result.stderr
    lines = result.stdout.splitlines()
    at = lines.index("Publishers:")
    assert lines[at + 1] == f"  bob: 2 objects, {size} bytes (quota 500 objects, 2MiB) in {SIA_BASE}"
    assert not lines[at + 2].startswith(
        "  bobby"
    )  # an undeclared publisher's objects are a change, not bob's


def test_markdown_shows_the_publisher(publishing: tuple[Scratch, int]) -> None:
    scratch, size = publishing
    workspace = engine.open_workspace(scratch.repo)
    comment = markdown.render(engine.plan_document(workspace, engine.plan(workspace, NOW)))
    assert f"#### Publishers\n\n- bob: 2 objects, {size} bytes (quota 500 objects, 2MiB) in {SIA_BASE}\n" in (
        comment
    )


def test_a_publisher_that_published_nothing_yet_shows_zero(applied: Scratch) -> None:
    declare(applied)
    workspace = engine.open_workspace(applied.repo)
    the_plan = engine.plan(workspace, NOW)
    doc = engine.plan_document(workspace, the_plan)
    (entry,) = doc.publishers
    assert (entry.objects, entry.bytes, entry.quota_objects) == (0, 0, 500)
    assert not the_plan.changes  # declaring a publisher changes nothing published
    assert f"  bob: 0 objects, 0 bytes (quota 500 objects, 2MiB) in {SIA_BASE}\n" in render_plain(doc)


def test_without_publishers_there_is_no_section(applied: Scratch) -> None:
    """Objects in ``publishers/`` without a declaration (a removed publisher's) are a gated withdrawal,
    not a publisher: the list stays empty and no section is shown."""
    place(applied, {"publishers/bob/one.roa": own_objects(applied)[0]})
    workspace = engine.open_workspace(applied.repo)
    doc = engine.plan_document(workspace, engine.plan(workspace, NOW))
    assert doc.publishers == []
    assert [c.path for c in doc.changes if c.ca == layout.PUBLISHERS] == ["publishers/bob/"]
    assert "Publishers" not in render_plain(doc)
    assert "#### Publishers" not in markdown.render(doc)
    assert (
        '"publishers": []'
        in rpkictl("plan", str(applied.repo), "--now", NOW.isoformat(), "--format", "json").stdout
    )


def test_a_reader_of_our_own_objects_leaves_the_publishers_tree_unread(
    publishing: tuple[Scratch, int],
) -> None:
    """What the RFC 6492 parent reads: our objects as a full read finds them, none of the publishers'."""
    scratch, _ = publishing
    whole = reader.read(scratch.rsync)
    ours = reader.read(scratch.rsync, foreign=False)
    assert sorted(whole.foreign) == [
        "publishers/bob/deeper/two.roa",
        "publishers/bob/one.roa",
        "publishers/bobby/three.roa",
        "publishers/stray.roa",
    ]
    assert ours.foreign == {}
    assert ours.files == whole.files and ours.files
    assert ours.damage == whole.damage
