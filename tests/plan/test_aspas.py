"""What the plan decides for each ASPA of a real published tree: damage (altered bytes, a ROA under an
ASPA's name, an object signed by another tree, a copy under another customer's name) repaired without a
gate, renewals on the clock, the ``aspa-removal`` gate counting only the provider authorisations the
tree really loses, and the plan document's ``aspas`` section in the text and Markdown renderings."""

from __future__ import annotations

import shutil
from datetime import timedelta
from pathlib import Path

import pytest

from reconciler import engine
from reconciler.plan.document import PlanDocument
from reconciler.plan.model import Action, Change, Kind, Plan, Reason
from reconciler.plan.render import markdown
from reconciler.plan.render.text import render_plain
from reconciler.plan.signed import ALTERED, FOREIGN
from reconciler.rpki import kinds
from reconciler.rpki.aspa import AspaContent
from tests.helpers import T0, Scratch, later, scratch_copy

ISP = "cas/members/example-isp.yaml"
ONLINE = "cas/online.yaml"
GATE = "aspa-removal@example-isp"
AS64496 = "example-isp/AS64496.asa"
AS64497 = "example-isp/AS64497.asa"

FIRST = "  - {customer: AS64496, providers: [AS64500, AS64511]}\n"
NONE = "  - {customer: AS64497, providers: [AS0]}\n"
ASPAS = "aspas:\n" + FIRST + NONE

#: The other tree (same YAML, other keys) holds AS64498 too, and authorises one more provider for AS64496:
#: counted by mistake, either of its ASPAs planted here would trip the removal gate.
OTHER_ASPAS = (
    "aspas:\n"
    "  - {customer: AS64496, providers: [AS64500, AS64501, AS64511]}\n"
    "  - {customer: AS64498, providers: [AS64502]}\n"
)


def with_aspas(scratch: Scratch, aspas: str = ASPAS) -> Scratch:
    (scratch.repo / ISP).write_text((scratch.repo / ISP).read_text() + aspas)
    return scratch


@pytest.fixture(scope="module")
def trees(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    ours = with_aspas(scratch_copy(tmp_path_factory.mktemp("ours")))
    assert ours.apply(T0) is not None
    other = scratch_copy(tmp_path_factory.mktemp("other"))
    other.edit(ISP, "asn: [AS64496, AS64497]", "asn: [AS64496, AS64497, AS64498]")
    with_aspas(other, OTHER_ASPAS)
    assert other.apply(T0) is not None
    return ours.root, other.rsync.resolve()


@pytest.fixture
def scratch(trees: tuple[Path, Path], tmp_path: Path) -> Scratch:
    shutil.copytree(trees[0], tmp_path / "copy", symlinks=True)
    return Scratch(tmp_path / "copy")


@pytest.fixture
def other(trees: tuple[Path, Path]) -> Path:
    return trees[1]


def tree(scratch: Scratch) -> Path:
    return scratch.rsync.resolve()


def only(plan: Plan, path: str) -> Change:
    found = [c for c in plan.changes if c.path == path]
    assert len(found) == 1, [c.address for c in plan.changes]
    return found[0]


def aspa_changes(plan: Plan) -> list[Change]:
    return [c for c in plan.changes if c.kind is Kind.ASPA]


def gate_items(plan: Plan) -> dict[str, tuple[str, ...]]:
    return {g.id: g.items for g in plan.gates}


def document(scratch: Scratch, plan: Plan) -> PlanDocument:
    return engine.plan_document(engine.open_workspace(scratch.repo), plan)


def repaired_and_clean(scratch: Scratch) -> None:
    """Apply the plan; the next plan at the same time is empty and AS64496's ASPA is the YAML's."""
    assert scratch.apply(later(1)) is not None
    assert scratch.plan(later(1)).empty
    found = engine.open_workspace(scratch.repo).published.signed(AS64496)
    assert isinstance(found, kinds.Signed) and found.content == AspaContent(64496, (64500, 64511))


# ------------------------------------------------------------------------------------------- the tree


def test_the_applied_tree_holds_one_aspa_per_customer_and_plans_nothing(scratch: Scratch) -> None:
    published = engine.open_workspace(scratch.repo).published
    found = {p: published.signed(p) for p in published.files if p.endswith(".asa")}
    assert sorted(found) == [AS64496, AS64497]
    contents = {p: s.content for p, s in found.items() if isinstance(s, kinds.Signed)}
    assert contents == {AS64496: AspaContent(64496, (64500, 64511)), AS64497: AspaContent(64497, (0,))}
    assert scratch.plan(later(1)).empty


# ----------------------------------------------------------------------------------------------- damage


def test_altered_bytes_are_reissued_as_repair_without_a_gate(scratch: Scratch) -> None:
    """AS64497's own, valid ASPA over AS64496's file: readable, the CA's, but not what the manifest lists
    (and it would take AS64496's two providers away, were it counted)."""
    (tree(scratch) / "example-isp" / "AS64496.asa").write_bytes(
        (tree(scratch) / "example-isp" / "AS64497.asa").read_bytes()
    )
    plan = scratch.plan(later(1))
    change = only(plan, AS64496)
    assert (change.action, change.kind, change.cause, change.reason) == (
        Action.REISSUE,
        Kind.ASPA,
        Reason.ALTERED,
        ALTERED,
    )
    assert change.repair and not change.routine
    assert change.revoke_serial is None  # AS64497's serial: revoking it would take that ASPA down
    assert plan.revocations == () and not plan.gates
    assert change.content == AspaContent(64496, (64500, 64511))
    repaired_and_clean(scratch)


def test_a_replayed_older_aspa_is_repaired_without_a_gate(scratch: Scratch) -> None:
    """The CA's own previous AS64496 ASPA (one provider more, revoked when it was replaced) put back: the
    manifest lists other bytes, so it is damage, and its extra provider is no authorisation to lose."""
    scratch.edit(ISP, "providers: [AS64500, AS64511]", "providers: [AS64500, AS64502, AS64511]")
    assert scratch.apply(later(1)) is not None
    older = (tree(scratch) / "example-isp" / "AS64496.asa").read_bytes()
    scratch.edit(ISP, "providers: [AS64500, AS64502, AS64511]", "providers: [AS64500, AS64511]")
    plan = scratch.plan(later(2))
    assert gate_items(plan) == {GATE: ("AS64496 -> AS64502",)}
    assert scratch.apply(later(2)) is not None  # as approved
    (tree(scratch) / "example-isp" / "AS64496.asa").write_bytes(older)
    plan = scratch.plan(later(3))
    change = only(plan, AS64496)
    assert (change.action, change.cause, change.repair) == (Action.REISSUE, Reason.ALTERED, True)
    assert not plan.gates
    assert scratch.apply(later(3)) is not None
    assert scratch.plan(later(3)).empty
    found = engine.open_workspace(scratch.repo).published.signed(AS64496)
    assert isinstance(found, kinds.Signed) and found.content == AspaContent(64496, (64500, 64511))


def test_a_roa_under_an_aspa_name_is_unreadable_and_reissued(scratch: Scratch) -> None:
    roa = next((tree(scratch) / "example-isp").glob("*.roa"))
    (tree(scratch) / "example-isp" / "AS64496.asa").write_bytes(roa.read_bytes())
    found = engine.open_workspace(scratch.repo).published.signed(AS64496)
    assert not isinstance(found, kinds.Signed)
    plan = scratch.plan(later(1))
    change = only(plan, AS64496)
    assert (change.action, change.cause) == (Action.REISSUE, Reason.UNREADABLE)
    assert "eContentType" in change.reason and "aspa" in change.reason, change.reason
    assert change.repair and change.revoke_serial is None and not plan.gates
    repaired_and_clean(scratch)


def test_a_foreign_aspa_over_a_listed_name_is_reissued_without_a_gate(scratch: Scratch, other: Path) -> None:
    """The other tree's AS64496 ASPA authorises AS64501 too. Over a name the manifest lists it is, first of
    all, altered bytes; repaired, it is not counted as published (its AS64501 is no removal)."""
    shutil.copy(other / "example-isp" / "AS64496.asa", tree(scratch) / "example-isp" / "AS64496.asa")
    plan = scratch.plan(later(1))
    change = only(plan, AS64496)
    assert (change.action, change.cause, change.reason) == (Action.REISSUE, Reason.ALTERED, ALTERED)
    assert change.repair and change.revoke_serial is None
    assert not plan.gates and plan.revocations == ()
    repaired_and_clean(scratch)


def test_a_foreign_aspa_at_a_newly_desired_name_is_reissued(scratch: Scratch, other: Path) -> None:
    """Planted before the YAML declares the very same ASPA: not on the manifest, saying what is wanted,
    and still not the CA's."""
    shutil.copy(other / "example-isp" / "AS64498.asa", tree(scratch) / "example-isp" / "AS64498.asa")
    scratch.edit(ISP, "asn: [AS64496, AS64497]", "asn: [AS64496, AS64497, AS64498]")
    with_aspas(scratch, "  - {customer: AS64498, providers: [AS64502]}\n")
    plan = scratch.plan(later(1))
    change = only(plan, "example-isp/AS64498.asa")
    assert (change.action, change.kind, change.cause) == (Action.REISSUE, Kind.ASPA, Reason.FOREIGN)
    assert change.reason.startswith(FOREIGN) and "does not hold" in change.reason
    assert change.repair and change.revoke_serial is None
    assert change.content == AspaContent(64498, (64502,))
    assert not plan.gates  # the certificate of example-isp is re-issued for AS64498, the old one revoked
    assert [c.kind for c in plan.revocations] == [Kind.CERTIFICATE]
    assert scratch.apply(later(1)) is not None
    assert scratch.plan(later(1)).empty
    planted = (other / "example-isp" / "AS64498.asa").read_bytes()
    assert engine.open_workspace(scratch.repo).published.files["example-isp/AS64498.asa"] != planted


def test_a_planted_foreign_aspa_is_withdrawn_as_damage_without_a_gate(scratch: Scratch, other: Path) -> None:
    shutil.copy(other / "example-isp" / "AS64498.asa", tree(scratch) / "example-isp" / "AS64498.asa")
    plan = scratch.plan(later(1))
    change = only(plan, "example-isp/AS64498.asa")
    assert (change.action, change.kind, change.cause) == (Action.WITHDRAW, Kind.ASPA, Reason.FOREIGN)
    assert change.reason.startswith(FOREIGN)
    assert change.repair and change.revoke_serial is None
    assert not plan.gates and plan.revocations == ()
    assert [c.path for c in aspa_changes(plan)] == ["example-isp/AS64498.asa"]
    assert scratch.apply(later(1)) is not None
    assert "example-isp/AS64498.asa" not in engine.open_workspace(scratch.repo).published.files
    assert scratch.plan(later(1)).empty


def test_a_copy_under_another_customers_name_is_withdrawn_not_revoked(scratch: Scratch) -> None:
    """Revoking the copy's serial -- the original's -- would take AS64496's ASPA down."""
    original = (tree(scratch) / "example-isp" / "AS64496.asa").read_bytes()
    (tree(scratch) / "example-isp" / "AS64499.asa").write_bytes(original)
    plan = scratch.plan(later(1))
    change = only(plan, "example-isp/AS64499.asa")
    assert (change.action, change.cause, change.revoke_serial) == (Action.WITHDRAW, Reason.COPY, None)
    assert f"a copy of rsync://rpki.example.net/repo/{AS64496}" in change.reason
    assert plan.revocations == () and not plan.gates
    assert [c.path for c in aspa_changes(plan)] == ["example-isp/AS64499.asa"]
    assert scratch.apply(later(1)) is not None
    published = engine.open_workspace(scratch.repo).published
    assert "example-isp/AS64499.asa" not in published.files and published.files[AS64496] == original
    assert scratch.plan(later(1)).empty


def test_a_copy_of_an_older_aspa_under_another_name_trips_no_gate(scratch: Scratch) -> None:
    """The CA's previous AS64496 ASPA (one provider more, revoked since) planted as AS64499.asa: a copy,
    on no manifest, that no relying party accepts -- its extra provider is no authorisation to lose."""
    scratch.edit(ISP, "providers: [AS64500, AS64511]", "providers: [AS64500, AS64502, AS64511]")
    assert scratch.apply(later(1)) is not None
    older = (tree(scratch) / "example-isp" / "AS64496.asa").read_bytes()
    scratch.edit(ISP, "providers: [AS64500, AS64502, AS64511]", "providers: [AS64500, AS64511]")
    assert scratch.apply(later(2)) is not None  # as approved (aspa-removal)
    (tree(scratch) / "example-isp" / "AS64499.asa").write_bytes(older)
    plan = scratch.plan(later(3))
    change = only(plan, "example-isp/AS64499.asa")
    assert (change.action, change.cause, change.revoke_serial) == (Action.WITHDRAW, Reason.COPY, None)
    assert not plan.gates, [(g.id, g.items) for g in plan.gates]
    assert scratch.apply(later(3)) is not None
    assert scratch.plan(later(3)).empty


def test_an_unreadable_file_with_an_aspa_suffix_is_withdrawn_and_documented(scratch: Scratch) -> None:
    """No customer in it nor in its name: the plan and its document still name it."""
    (tree(scratch) / "example-isp" / "junk.asa").write_bytes(b"not DER")
    plan = scratch.plan(later(1))
    change = only(plan, "example-isp/junk.asa")
    assert (change.action, change.cause, change.repair) == (Action.WITHDRAW, Reason.UNREADABLE, True)
    assert not plan.gates
    doc = document(scratch, plan)
    assert [a.path for a in doc.aspas] == ["example-isp/junk.asa"]
    assert "example-isp/junk.asa" in render_plain(doc)


# -------------------------------------------------------------------------------------------- the clock


def test_an_expiring_aspa_is_renewed_on_schedule(scratch: Scratch) -> None:
    workspace = engine.open_workspace(scratch.repo)
    found = workspace.published.signed(AS64496)
    assert isinstance(found, kinds.Signed)
    renew = workspace.desired.timing.certificate_renew_before
    when = found.signed.ee.not_after - renew + timedelta(days=1)
    early = scratch.plan(when - timedelta(days=2))
    assert aspa_changes(early) == [], [c.address for c in aspa_changes(early)]
    plan = scratch.plan(when)
    renewals = aspa_changes(plan)
    assert sorted(c.path for c in renewals) == [AS64496, AS64497]
    for change in renewals:
        assert (change.action, change.cause) == (Action.RENEW, Reason.EXPIRING), change.address
        assert change.scheduled and change.routine and not change.repair
        assert change.revoke_serial is not None  # the old one is the CA's own, still valid
    assert GATE not in gate_items(plan)
    assert document(scratch, plan).aspas == []  # routine: not listed for review


# --------------------------------------------------------------------------------------------- the gate


def test_a_removed_provider_trips_the_gate_with_that_authorisation(scratch: Scratch) -> None:
    scratch.edit(ISP, "providers: [AS64500, AS64511]", "providers: [AS64500]")
    plan = scratch.plan(later(1))
    assert gate_items(plan) == {GATE: ("AS64496 -> AS64511",)}
    change = only(plan, AS64496)
    assert (change.action, change.cause) == (Action.REISSUE, Reason.CONTENT_CHANGED)
    assert change.revoke_serial is not None and not change.repair


def test_removing_an_aspa_that_expired_already_trips_no_gate(scratch: Scratch) -> None:
    """Relying parties dropped an expired ASPA when it expired: taking it out of the YAML afterwards
    removes no authorisation they see. The same removal a second before it expires is gated."""
    found = engine.open_workspace(scratch.repo).published.signed(AS64496)
    assert isinstance(found, kinds.Signed)
    ends = found.signed.ee.not_after
    scratch.edit(ISP, FIRST, "")
    assert gate_items(scratch.plan(ends - timedelta(seconds=1))) == {
        GATE: ("AS64496 -> AS64500", "AS64496 -> AS64511")
    }
    late = scratch.plan(ends + timedelta(seconds=1))
    assert GATE not in gate_items(late)
    assert only(late, AS64496).action is Action.WITHDRAW  # expired: nothing left to revoke


def test_the_threshold_allows_one_removal_and_gates_two(scratch: Scratch) -> None:
    (scratch.repo / ISP).write_text(
        (scratch.repo / ISP).read_text() + "safety: {aspa_removal_threshold: 1}\n"
    )
    scratch.edit(ISP, "providers: [AS64500, AS64511]", "providers: [AS64500]")
    assert GATE not in gate_items(scratch.plan(later(1)))
    scratch.edit(ISP, "  - {customer: AS64496, providers: [AS64500]}\n", "")
    plan = scratch.plan(later(1))
    assert gate_items(plan) == {GATE: ("AS64496 -> AS64500", "AS64496 -> AS64511")}
    assert "more than 1" in plan.gates[0].message
    change = only(plan, AS64496)
    assert change.action is Action.REVOKE and change.revoke_serial is not None


def test_providers_in_place_of_as0_trip_no_gate(scratch: Scratch) -> None:
    scratch.edit(ISP, "{customer: AS64497, providers: [AS0]}", "{customer: AS64497, providers: [AS64502]}")
    plan = scratch.plan(later(1))
    assert not plan.gates
    assert (only(plan, AS64497).action, only(plan, AS64497).content) == (
        Action.REISSUE,
        AspaContent(64497, (64502,)),
    )


def test_removing_an_as0_aspa_trips_no_gate(scratch: Scratch) -> None:
    scratch.edit(ISP, NONE, "")
    plan = scratch.plan(later(1))
    assert not plan.gates
    change = only(plan, AS64497)
    assert (change.action, change.cause) == (Action.REVOKE, Reason.NOT_DESIRED)


def test_a_customer_moved_to_another_ca_of_the_tree_trips_no_gate(scratch: Scratch) -> None:
    scratch.edit(ISP, FIRST, "")
    (scratch.repo / ONLINE).write_text((scratch.repo / ONLINE).read_text() + "aspas:\n" + FIRST)
    plan = scratch.plan(later(1))
    assert not plan.gates, [(g.id, g.items) for g in plan.gates]
    assert only(plan, AS64496).action is Action.REVOKE
    issued = only(plan, "online/AS64496.asa")
    assert (issued.action, issued.content) == (Action.ISSUE, AspaContent(64496, (64500, 64511)))
    # Taken from example-isp with nowhere to go, the same authorisations are gated.
    (scratch.repo / ONLINE).write_text((scratch.repo / ONLINE).read_text().replace("aspas:\n" + FIRST, ""))
    assert gate_items(scratch.plan(later(1))) == {GATE: ("AS64496 -> AS64500", "AS64496 -> AS64511")}


# ------------------------------------------------------------------------------------------ the document


def test_the_document_shows_a_provider_change(scratch: Scratch) -> None:
    scratch.edit(ISP, "providers: [AS64500, AS64511]", "providers: [AS64500, AS64502]")
    doc = document(scratch, scratch.plan(later(1)))
    assert [
        (a.ca, a.customer, a.action, a.path, a.providers_before, a.providers_after, a.added, a.removed)
        for a in doc.aspas
    ] == [("example-isp", 64496, "reissue", AS64496, [64500, 64511], [64500, 64502], [64502], [64511])]
    text = render_plain(doc)
    assert "ASPAs (1):" in text
    (line,) = [x for x in text.splitlines() if "example-isp AS64496" in x]
    assert "+AS64502" in line and "-AS64511" in line and line.strip().startswith("-"), line
    md = markdown.render(doc)
    assert "ASPAs (1)" in md and "+AS64502 -AS64511" in md and f"`{AS64496}`" in md


def test_the_document_shows_a_new_and_a_removed_aspa(scratch: Scratch) -> None:
    scratch.edit(ISP, "asn: [AS64496, AS64497]", "asn: [AS64496, AS64497, AS64498]")
    scratch.edit(ISP, NONE, "  - {customer: AS64498, providers: [AS64503]}\n")
    doc = document(scratch, scratch.plan(later(1)))
    by_customer = {a.customer: a for a in doc.aspas}
    assert sorted(by_customer) == [64497, 64498]
    new, gone = by_customer[64498], by_customer[64497]
    assert (new.action, new.providers_before, new.providers_after, new.added, new.removed) == (
        "issue",
        None,
        [64503],
        [64503],
        [],
    )
    assert (gone.action, gone.providers_before, gone.providers_after, gone.added, gone.removed) == (
        "revoke",
        [0],
        None,
        [],
        [0],
    )
    text = render_plain(doc)
    assert "ASPAs (2):" in text
    assert "+ example-isp AS64498: providers AS64503" in text
    assert "- example-isp AS64497: ASPA removed (providers were none (AS0))" in text
    md = markdown.render(doc)
    assert "ASPAs (2)" in md and "example-isp AS64498: providers AS64503" in md
