"""The plan document (``plan --format json``, ``plan --out``): its version, its id, its round trip and
what each change and gate carries.

The plan id must be a function of what the plan does and what it was computed against: equal for two
plans of the same state (at the same time, or at times between which nothing became due), different as
soon as the desired state, the publication point's due renewals, the announcements or any change differ.
Saved plans written by a newer minor version must load; those of another major version, and anything
that is not a plan, must be refused with an error that names the file.
"""

from __future__ import annotations

import hashlib
import json
import re
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from reconciler import engine
from reconciler.plan import document
from reconciler.plan.document import PlanDocument, PlanFormatError
from reconciler.plan.model import APPROVAL_HASH_CHARS
from tests.helpers import T0, Scratch, later, scratch_copy

ISP = "cas/members/example-isp.yaml"
ANYCAST = "roa example-isp/AS64496_198-51-100-0_25.roa"
AS0 = "roa example-isp/AS0_192-0-2-128_25.roa"
SHA256 = re.compile(r"[0-9a-f]{64}")
CHANGE_KEYS = ("action", "kind", "ca", "address", "path", "reason", "routine", "before", "after")


def plan_doc(scratch: Scratch, now: datetime, *, announcements: bool = False) -> PlanDocument:
    """The plan document as ``rpkictl plan`` builds it, from a freshly opened workspace."""
    workspace = engine.open_workspace(scratch.repo)
    routes = engine.Announcements.read(scratch.repo / "announcements.txt") if announcements else None
    return engine.plan_document(workspace, engine.plan(workspace, now, routes), announcements=routes)


@pytest.fixture
def scratch(tmp_path: Path) -> Scratch:
    """The bundled example, never applied."""
    return scratch_copy(tmp_path)


@pytest.fixture
def applied(tmp_path: Path) -> Scratch:
    """The bundled example, applied once at T0."""
    scratch = scratch_copy(tmp_path)
    assert scratch.apply(T0) is not None
    return scratch


def change_roas(scratch: Scratch) -> None:
    """Remove the AS0 ROA and lower the anycast ROA's max length from 26 to 25."""
    scratch.edit(ISP, "  - {asn: AS0, prefix: 192.0.2.128/25}\n", "")
    scratch.edit(ISP, "max_length: 26", "max_length: 25")


def by_address(doc: PlanDocument) -> dict[str, document.ChangeDoc]:
    return {c.address: c for c in doc.changes}


# --- version ---


def test_format_version_is_2_0(scratch: Scratch) -> None:
    """Documents are written as format 2.0 (VRPs as objects, no longer sentences), the first key."""
    doc = plan_doc(scratch, T0)
    assert document.FORMAT_VERSION == "2.6"
    assert doc.format_version == "2.6"
    raw = json.loads(document.dumps(doc))
    assert next(iter(raw)) == "format_version" and raw["format_version"] == "2.6"


def test_a_1_x_plan_is_refused_with_what_to_do(scratch: Scratch, tmp_path: Path) -> None:
    """A plan saved by an rpkictl writing format 1.1 (its VRPs as strings) is refused, naming the file,
    its version, what this tool reads and that it must be planned again: a changed key type is a major
    version, never silently misread."""
    raw = json.loads(document.dumps(plan_doc(scratch, T0)))
    raw["format_version"] = "1.1"
    raw["vrps"]["added"] = [f"AS{v['asn']} {v['prefix']} max {v['max_length']}" for v in raw["vrps"]["added"]]
    path = _saved(tmp_path, json.dumps(raw))
    with pytest.raises(PlanFormatError) as caught:
        document.loads(path.read_text(), where=str(path))
    message = str(caught.value)
    assert message.startswith(f"{path}: plan format 1.1 is not supported (this rpkictl reads 2.x)")
    assert "re-run 'rpkictl plan --out'" in message


# --- plan id ---


def test_plan_id_is_the_sha256_of_the_document_identity(scratch: Scratch) -> None:
    """``plan_id`` is a SHA-256 hex digest that anyone can recompute from the saved document."""
    doc = plan_doc(scratch, T0, announcements=True)
    assert SHA256.fullmatch(doc.plan_id)
    assert document.compute_plan_id(doc) == doc.plan_id
    assert document.compute_plan_id(document.loads(document.dumps(doc))) == doc.plan_id


def test_plan_id_recomputed_from_the_saved_json(scratch: Scratch) -> None:
    """The id is the SHA-256 of the canonical JSON (sorted keys, no spaces, UTF-8) of the saved plan's
    desired digest and commit, observed points, changes without their reasons and but RRDP's, gate ids
    and hashes, and the announcements' digest -- recomputed here from the JSON alone, in one piece, as a
    reviewer's tool would. The reconciler hashes the changes one at a time; both must agree byte for byte."""
    rpki = "  directory: ../published"
    scratch.edit("rpki.yaml", rpki, f"  rrdp_base: https://rpki.example.net/rrdp/\n{rpki}")
    assert scratch.apply(T0) is not None
    change_roas(scratch)
    (scratch.root / "published" / "rrdp" / "notification.xml").unlink()  # RRDP drifts: a change of kind rrdp
    doc = plan_doc(scratch, later(1), announcements=True)
    kinds = {c.kind for c in doc.changes}
    assert {"roa", "rrdp"} <= kinds and doc.gates and doc.announcements is not None
    saved = json.loads(document.dumps(doc))
    identity = {
        "format_major": int(saved["format_version"].split(".")[0]),
        "desired": {"digest": saved["desired"]["digest"], "git_commit": saved["desired"]["git_commit"]},
        "observed": {k: v for k, v in saved["observed"].items() if k != "source"},  # not where it was read
        "changes": [
            {k: v for k, v in c.items() if k != "reason"} for c in saved["changes"] if c["kind"] != "rrdp"
        ],
        "gates": [{"id": g["id"], "hash": g["hash"]} for g in saved["gates"]],
        "announcements": saved["announcements"]["sha256"],
    }
    text = json.dumps(identity, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    assert hashlib.sha256(text).hexdigest() == doc.plan_id


def test_same_state_same_time_same_document(scratch: Scratch) -> None:
    """Planning the same state twice at the same time gives the same id, indeed the same document."""
    first = plan_doc(scratch, T0, announcements=True)
    second = plan_doc(scratch, T0, announcements=True)
    assert first.changes and first.plan_id == second.plan_id
    assert document.dumps(first) == document.dumps(second)


def test_first_plan_id_does_not_depend_on_when(scratch: Scratch) -> None:
    """The first plan at T0 and an hour later does the same things: same id, different ``created_at``."""
    at_t0 = plan_doc(scratch, T0)
    an_hour_later = plan_doc(scratch, later(1))
    assert at_t0.created_at != an_hour_later.created_at
    assert at_t0.plan_id == an_hour_later.plan_id


def test_empty_plans_after_apply_share_an_id(applied: Scratch) -> None:
    """Right after apply, plans at +1 min and +2 min (and at the apply time) are empty and share an id."""
    docs = [plan_doc(applied, T0 + timedelta(minutes=m)) for m in (0, 1, 2)]
    assert all(not d.changes and not d.gates for d in docs)
    assert len({d.created_at for d in docs}) == 3
    assert len({d.plan_id for d in docs}) == 1


def test_due_renewals_change_the_id(applied: Scratch) -> None:
    """Once the manifests' renewal margin is reached (24 h validity, renew 8 h before), the plan has
    routine changes and so another id; later still, the same renewals keep that id."""
    quiet = plan_doc(applied, T0 + timedelta(minutes=1))
    due = plan_doc(applied, later(17))
    overdue = plan_doc(applied, later(30))
    assert due.changes and all(c.routine for c in due.changes)
    assert due.plan_id != quiet.plan_id
    assert overdue.plan_id == due.plan_id  # same changes; only the reasons' wording ("expired ...") differs


def test_desired_change_changes_the_id_and_reverting_restores_it(applied: Scratch) -> None:
    """A different desired state is a different plan; putting the YAML back gives the first id again."""
    before = plan_doc(applied, later(1))
    applied.edit(ISP, "max_length: 26", "max_length: 25")
    changed = plan_doc(applied, later(1))
    applied.edit(ISP, "max_length: 25", "max_length: 26")
    reverted = plan_doc(applied, later(1))
    assert changed.plan_id != before.plan_id
    assert reverted.plan_id == before.plan_id


def test_id_binds_the_exact_yaml_reviewed(applied: Scratch) -> None:
    """The id covers the desired state's digest: even a comment-only edit, which changes no object, gives
    a new id, so apply can tell that the YAML it runs is not the YAML that was reviewed."""
    before = plan_doc(applied, later(1))
    applied.edit(ISP, "# cas/members/example-isp.yaml", "# cas/members/example-isp.yaml (reviewed)")
    after = plan_doc(applied, later(1))
    assert not after.changes and after.desired.digest != before.desired.digest
    assert after.plan_id != before.plan_id


def test_announcements_are_part_of_the_id(scratch: Scratch) -> None:
    """The announcements file's hash is part of the id: with it and without it are different plans."""
    without = plan_doc(scratch, T0)
    with_routes = plan_doc(scratch, T0, announcements=True)
    assert with_routes.announcements is not None
    assert with_routes.plan_id != without.plan_id


def test_id_ignores_presentation_but_not_substance(applied: Scratch) -> None:
    """Reasons, the summary wording, the time, the tool version and the repository path do not count;
    what a change does (its ``after``) and a gate's hash do."""
    change_roas(applied)
    doc = plan_doc(applied, later(1), announcements=True)
    reworded = doc.model_copy(
        update={
            "changes": [c.model_copy(update={"reason": "reworded"}) for c in doc.changes],
            "summary": doc.summary.model_copy(update={"text": "reworded"}),
            "created_at": later(5),
            "tool_version": "9.9.9",
            "desired": doc.desired.model_copy(update={"repo": "/elsewhere/state"}),
        }
    )
    assert document.compute_plan_id(reworded) == doc.plan_id
    reissue = by_address(doc)[ANYCAST]
    other_after = reissue.model_copy(update={"after": {"asn": 64496, "prefixes": []}})
    altered = doc.model_copy(update={"changes": [other_after if c is reissue else c for c in doc.changes]})
    assert document.compute_plan_id(altered) != doc.plan_id
    assert doc.gates
    regated = doc.model_copy(update={"gates": [g.model_copy(update={"hash": "0" * 64}) for g in doc.gates]})
    assert document.compute_plan_id(regated) != doc.plan_id


# --- dumps / loads ---


def test_round_trip(applied: Scratch) -> None:
    """``loads(dumps(doc))`` is the document again, gates, route impact and all; dumping it again gives
    the same text."""
    change_roas(applied)
    doc = plan_doc(applied, later(1), announcements=True)
    assert doc.gates and doc.route_impact and doc.announcements
    text = document.dumps(doc)
    loaded = document.loads(text)
    assert loaded == doc
    assert document.dumps(loaded) == text


def test_round_trip_of_the_first_plan(scratch: Scratch) -> None:
    """The first plan (keys to create, no observed publication point) round-trips too."""
    doc = plan_doc(scratch, T0)
    assert document.loads(document.dumps(doc)) == doc


def _saved(tmp_path: Path, content: str) -> Path:
    path = tmp_path / "saved" / "plan.json"
    path.parent.mkdir()
    path.write_text(content)
    return path


def test_unknown_major_version_is_refused_naming_the_file(scratch: Scratch, tmp_path: Path) -> None:
    """A plan written by format 3.0 is refused, naming the file, the version and what this tool reads."""
    raw = json.loads(document.dumps(plan_doc(scratch, T0)))
    raw["format_version"] = "3.0"
    path = _saved(tmp_path, json.dumps(raw))
    with pytest.raises(PlanFormatError) as caught:
        document.loads(path.read_text(), where=str(path))
    message = str(caught.value)
    assert message.startswith(f"{path}: ")
    assert "plan format 3.0 is not supported" in message and "2.x" in message


@pytest.mark.parametrize(
    "content",
    [
        "garbage, not JSON",
        "",
        "[1, 2, 3]",
        '{"plan_id": "abc"}',
        '{"format_version": "2.0", "plan_id": "abc"}',
        '{"format_version": "10.0"}',
    ],
    ids=["garbage", "empty", "not-an-object", "no-version", "missing-keys", "major-10"],
)
def test_what_is_not_a_plan_is_refused_naming_the_file(tmp_path: Path, content: str) -> None:
    """Garbage, non-objects, documents without a version or missing required keys raise PlanFormatError
    (never a bare JSON or validation error), and the message starts with the file's name."""
    path = _saved(tmp_path, content)
    with pytest.raises(PlanFormatError, match=rf"^{re.escape(str(path))}: "):
        document.loads(path.read_text(), where=str(path))


def test_minor_bump_with_unknown_keys_is_accepted(applied: Scratch) -> None:
    """A 2.7 document with keys this version does not know loads: the unknown keys are ignored, the
    known ones are kept, and the plan id still recomputes to the saved one."""
    change_roas(applied)
    doc = plan_doc(applied, later(1), announcements=True)
    raw: dict[str, Any] = json.loads(document.dumps(doc))
    raw["format_version"] = "2.7"
    raw["signatures"] = [{"by": "reviewer", "sig": "..."}]
    raw["changes"][0]["risk"] = "low"
    raw["gates"][0]["owner"] = "noc"
    raw["summary"]["certificates_touched"] = 0
    loaded = document.loads(json.dumps(raw), where="plan-2.7.json")
    assert loaded.format_version == "2.7"
    assert loaded.changes == doc.changes and loaded.gates == doc.gates and loaded.summary == doc.summary
    assert document.compute_plan_id(loaded) == doc.plan_id
    assert "signatures" not in loaded.model_dump() and "risk" not in loaded.changes[0].model_dump()


# --- what changes and gates carry ---


def test_changes_carry_action_kind_address_reason_before_after(applied: Scratch) -> None:
    """Every change says what, to which object and why; a max-length change shows max 26 before and 25
    after, a removed ROA its content before and nothing after, each with the serial it revokes; the
    manifest and CRL renewals are routine and show the published number and next update."""
    change_roas(applied)
    workspace = engine.open_workspace(applied.repo)
    the_plan = engine.plan(workspace, later(1))
    doc = engine.plan_document(workspace, the_plan)
    raw = json.loads(document.dumps(doc))
    for change in raw["changes"]:
        assert set(CHANGE_KEYS) <= set(change)
        assert change["action"] and change["kind"] and change["address"] and change["reason"]
    changes = by_address(doc)
    assert len(changes) == 4

    anycast = changes[ANYCAST]
    assert (anycast.action, anycast.kind, anycast.ca) == ("reissue", "roa", "example-isp")
    assert not anycast.routine
    assert anycast.path == "example-isp/AS64496_198-51-100-0_25.roa"
    assert anycast.reason == "content changed (AS64496 198.51.100.0/25-26 -> AS64496 198.51.100.0/25)"
    assert anycast.before == {"asn": 64496, "prefixes": [{"prefix": "198.51.100.0/25", "max_length": 26}]}
    assert anycast.after == {"asn": 64496, "prefixes": [{"prefix": "198.51.100.0/25", "max_length": 25}]}

    removed = changes[AS0]
    assert (removed.action, removed.kind, removed.routine) == ("revoke", "roa", False)
    assert removed.reason == "ROA AS0 192.0.2.128/25 is no longer in the desired state"
    assert removed.before == {"asn": 0, "prefixes": [{"prefix": "192.0.2.128/25", "max_length": 25}]}
    assert removed.after is None

    serials = {c.address: c.revoke_serial for c in the_plan.changes if c.revoke_serial is not None}
    assert set(serials) == {ANYCAST, AS0}
    assert anycast.revoke_serial == f"{serials[ANYCAST]:x}" and removed.revoke_serial == f"{serials[AS0]:x}"

    routine = [c for c in doc.changes if c.routine]
    assert sorted(c.kind for c in routine) == ["crl", "manifest"]
    for change in routine:
        assert (change.action, change.ca) == ("renew", "example-isp")
        assert change.after is None and change.revoke_serial is None
        next_update = later(24).strftime("%Y-%m-%dT%H:%M:%SZ")
        assert change.before == {"number": int(T0.timestamp() * 1000), "next_update": next_update}

    assert (doc.summary.replace, doc.summary.revoke, doc.summary.routine) == (1, 1, 2)
    assert doc.vrps.model_dump(mode="json") == {
        "added": [{"asn": 64496, "prefix": "198.51.100.0/25", "max_length": 25}],
        "removed": [
            {"asn": 0, "prefix": "192.0.2.128/25", "max_length": 25},
            {"asn": 64496, "prefix": "198.51.100.0/25", "max_length": 26},
        ],
    }


def _assert_gate_is_bound(gate: document.GateDoc) -> None:
    """The hash is SHA-256 over rule, CA and items, one a line; the token is the id and its prefix."""
    assert gate.id == (gate.rule if gate.ca == "*" else f"{gate.rule}@{gate.ca}")
    assert gate.hash == hashlib.sha256("\n".join((gate.rule, gate.ca, *gate.items)).encode()).hexdigest()
    assert gate.approve == f"{gate.id}:{gate.hash[:APPROVAL_HASH_CHARS]}"
    assert gate.count == len(gate.items) and gate.items == sorted(gate.items)


def test_ca_empty_gate_carries_its_items(applied: Scratch) -> None:
    """Removing every ROA of example-isp gives one ca-empty gate listing the four VRPs it would lose."""
    path = applied.repo / ISP
    path.write_text(path.read_text().split("roas:")[0])
    doc = plan_doc(applied, later(1))
    assert doc.approval_required
    raw = json.loads(document.dumps(doc))
    assert set(raw["gates"][0]) >= {"id", "rule", "ca", "message", "count", "existing", "threshold", "hash"}
    assert {"approve", "items"} <= set(raw["gates"][0])
    [gate] = doc.gates
    assert (gate.id, gate.rule, gate.ca) == ("ca-empty@example-isp", "ca-empty", "example-isp")
    assert (gate.count, gate.existing, gate.threshold) == (4, 4, None)
    assert gate.message == "CA example-isp would publish no ROAs (it has 4 VRPs now)"
    assert gate.items == [
        "AS0 192.0.2.128/25 max 25",
        "AS64496 192.0.2.0/24 max 24",
        "AS64496 198.51.100.0/25 max 26",
        "AS64497 2001:db8:1000::/36 max 48",
    ]
    assert gate.approve == "ca-empty@example-isp:c349a7542090b72e"  # as in tests/plan/golden/ca-empty.*
    _assert_gate_is_bound(gate)


def test_percentage_and_route_gates_carry_threshold_existing_and_items(applied: Scratch) -> None:
    """With the CA's thresholds lowered to 20 % of at least 1 VRP, removing 1 of 4 VRPs and narrowing
    another trips both percentage gates (with existing 4 and threshold 0.2); the announcements add the
    tree-wide route-invalid gate for the two /26 routes the narrowing breaks."""
    change_roas(applied)
    (applied.repo / ISP).write_text(
        (applied.repo / ISP).read_text()
        + "safety: {min_existing_vrps: 1, delete_pct_threshold: 0.2, narrow_pct_threshold: 0.2}\n"
    )
    doc = plan_doc(applied, later(1), announcements=True)
    gates = {g.id: g for g in doc.gates}
    assert list(gates) == ["roa-delete-pct@example-isp", "roa-narrow-pct@example-isp", "route-invalid"]

    deleted = gates["roa-delete-pct@example-isp"]
    assert (deleted.rule, deleted.ca, deleted.count, deleted.existing, deleted.threshold) == (
        "roa-delete-pct",
        "example-isp",
        1,
        4,
        0.2,
    )
    assert deleted.message == "1 of 4 VRPs removed (25.0% > 20.0%)"
    assert deleted.items == ["AS0 192.0.2.128/25 max 25"]

    narrowed = gates["roa-narrow-pct@example-isp"]
    assert (narrowed.count, narrowed.existing, narrowed.threshold) == (1, 4, 0.2)
    assert narrowed.message == "1 of 4 VRPs narrowed (25.0% > 20.0%)"
    assert narrowed.items == ["AS64496 198.51.100.0/25 max 26 -> max 25"]

    routes = gates["route-invalid"]
    assert (routes.rule, routes.ca, routes.existing, routes.threshold) == ("route-invalid", "*", 0, None)
    assert routes.items == [f"AS64496 198.51.100.{n}/26: valid -> invalid" for n in (0, 64)]
    assert routes.approve == "route-invalid:5bf5b07658772b00"

    for gate in doc.gates:
        _assert_gate_is_bound(gate)


# --- counts ---


def test_counts_split_review_and_routine_once_for_everyone(applied: Scratch) -> None:
    """One split of the changes serves every place a count is shown: the two ROA changes are to review,
    the manifest and CRL renewals are routine, and the total is their sum; the summary line, the
    verdict and the JSON summary agree with it."""
    change_roas(applied)
    doc = plan_doc(applied, later(1))
    counts = doc.counts()
    assert (counts.review, counts.routine, counts.total) == (2, 2, 4) == (2, 2, len(doc.changes))
    assert (counts.revocations, counts.vrps_added, counts.vrps_removed) == (2, 1, 2)
    assert counts.describe() == "2 changes to review and 2 routine"
    assert doc.summary.routine == counts.routine
    assert sum((doc.summary.issue, doc.summary.replace, doc.summary.revoke, doc.summary.withdraw)) == 2
    from reconciler.plan.render.common import verdict  # noqa: PLC0415 - the renderer's use of it

    assert verdict(doc).startswith("2 changes to review;")
