"""What the plan decides for each BGPsec router certificate (RFC 8209) of a real published tree: damage
(altered bytes, an unreadable file under a router name, a certificate another tree's CA signed, a copy of
the CA's own under another router name) repaired or withdrawn without a gate and without revoking what
is not the CA's to revoke, renewals on the clock, no CA gate for a router certificate, and the plan
document's ``before``/``after`` and text line of a router change.

The tree: example-isp certifies a router's real PKCS#10 request (Krill's test request) for AS64496 and
a generated key, given as a bare public key, for AS64497 with a BGP Identifier."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from reconciler import engine
from reconciler.plan.document import ChangeDoc, PlanDocument
from reconciler.plan.model import Action, Change, Kind, Plan, Reason
from reconciler.plan.render.text import render_plain
from reconciler.plan.signed import ALTERED, FOREIGN
from reconciler.published.reader import Unreadable
from reconciler.rpki.router import RouterCertificate
from tests.helpers import T0, Scratch, later, scratch_copy

ISP = "cas/members/example-isp.yaml"
KRILL_CSR = Path(__file__).resolve().parents[1] / "fixtures/real-world/protocols/krill/bgpsec/router-csr.der"
EDGE1 = "  - {key: routers/edge1.der, asns: [AS64496], comment: Krill's test request}\n"
EDGE2 = "  - {key: routers/edge2.pem, asns: [AS64497], router_id: 192.0.2.2}\n"
#: Declared only in the other tree (same YAML, other CA keys), and in this one when a test adds it.
EDGE3 = "  - {key: routers/edge3.pem, asns: [AS64496]}\n"


def key_id(data: bytes) -> str:
    """The key identifier (40 hex, upper case) of a request (DER) or a public key (PEM), computed here."""
    key = (
        serialization.load_pem_public_key(data)
        if data.startswith(b"-----")
        else x509.load_der_x509_csr(data).public_key()
    )
    assert isinstance(key, ec.EllipticCurvePublicKey)
    return x509.SubjectKeyIdentifier.from_public_key(key).digest.hex().upper()


def public_pem() -> bytes:
    key = ec.generate_private_key(ec.SECP256R1()).public_key()
    return key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


@dataclass(frozen=True)
class Trees:
    ours: Path  # the scratch root of this tree, applied at T0
    other: Path  # the other tree's published rsync directory
    edge1: str  # the file names of the routers' certificates
    edge2: str
    edge3: str


def with_routers(scratch: Scratch, keys: dict[str, bytes], routers: str) -> Scratch:
    for name, data in keys.items():
        (scratch.repo / "routers").mkdir(exist_ok=True)
        (scratch.repo / "routers" / name).write_bytes(data)
    (scratch.repo / ISP).write_text((scratch.repo / ISP).read_text() + "routers:\n" + routers)
    return scratch


@pytest.fixture(scope="module")
def trees(tmp_path_factory: pytest.TempPathFactory) -> Trees:
    keys = {"edge1.der": KRILL_CSR.read_bytes(), "edge2.pem": public_pem(), "edge3.pem": public_pem()}
    ours = with_routers(scratch_copy(tmp_path_factory.mktemp("ours")), keys, EDGE1 + EDGE2)
    assert ours.apply(T0) is not None
    other = with_routers(scratch_copy(tmp_path_factory.mktemp("other")), keys, EDGE1 + EDGE3)
    assert other.apply(T0) is not None
    return Trees(
        ours.root,
        other.rsync.resolve(),
        f"router_AS64496_{key_id(keys['edge1.der'])}.cer",
        f"router_AS64497_{key_id(keys['edge2.pem'])}.cer",
        f"router_AS64496_{key_id(keys['edge3.pem'])}.cer",
    )


@pytest.fixture
def scratch(trees: Trees, tmp_path: Path) -> Scratch:
    shutil.copytree(trees.ours, tmp_path / "copy", symlinks=True)
    return Scratch(tmp_path / "copy")


def isp_dir(scratch: Scratch) -> Path:
    return scratch.rsync.resolve() / "example-isp"


def only(plan: Plan, path: str) -> Change:
    found = [c for c in plan.changes if c.path == path]
    assert len(found) == 1, [c.address for c in plan.changes]
    return found[0]


def router_changes(plan: Plan) -> list[Change]:
    return [c for c in plan.changes if c.kind is Kind.ROUTER]


def published_router(scratch: Scratch, path: str) -> RouterCertificate:
    found = engine.open_workspace(scratch.repo).published.router(path)
    assert isinstance(found, RouterCertificate), found
    return found


def document(scratch: Scratch, plan: Plan) -> PlanDocument:
    return engine.plan_document(engine.open_workspace(scratch.repo), plan)


def router_docs(doc: PlanDocument) -> list[ChangeDoc]:
    return [c for c in doc.changes if c.kind == "router"]


def repaired_and_clean(scratch: Scratch, trees: Trees) -> None:
    """Apply the plan; the next plan at the same time is empty, and both routers are certified as the
    YAML says, by example-isp's key."""
    assert scratch.apply(later(1)) is not None
    assert scratch.plan(later(1)).empty
    published = engine.open_workspace(scratch.repo).published
    names = sorted(p for p in published.under("example-isp/") if p.startswith("router_"))
    assert names == sorted([trees.edge1, trees.edge2])
    first = published_router(scratch, "example-isp/" + trees.edge1)
    second = published_router(scratch, "example-isp/" + trees.edge2)
    assert (str(first.asns), first.router_id) == ("AS64496", None)
    assert (str(second.asns), str(second.router_id)) == ("AS64497", "192.0.2.2")


# ------------------------------------------------------------------------------------------- the tree


def test_the_applied_tree_holds_one_certificate_per_router_and_plans_nothing(
    scratch: Scratch, trees: Trees
) -> None:
    """Applied, then planned again at a later time: nothing to do (the plan converges)."""
    published = engine.open_workspace(scratch.repo).published
    names = sorted(p for p in published.under("example-isp/") if p.startswith("router_"))
    assert names == sorted([trees.edge1, trees.edge2])
    first = published_router(scratch, "example-isp/" + trees.edge1)
    assert first.key_id.hex().upper() == trees.edge1.removesuffix(".cer").rsplit("_", 1)[1]
    assert scratch.plan(T0).empty and scratch.plan(later(1)).empty


# ----------------------------------------------------------------------------------------------- damage


def test_altered_bytes_are_reissued_as_repair_without_revoking(scratch: Scratch, trees: Trees) -> None:
    """AS64497's own, valid certificate over AS64496's file: readable and the CA's, but not what the
    manifest lists; its serial is AS64497's, so revoking it would take that router down."""
    (isp_dir(scratch) / trees.edge1).write_bytes((isp_dir(scratch) / trees.edge2).read_bytes())
    plan = scratch.plan(later(1))
    change = only(plan, "example-isp/" + trees.edge1)
    assert (change.action, change.kind, change.cause, change.reason) == (
        Action.REISSUE,
        Kind.ROUTER,
        Reason.ALTERED,
        ALTERED,
    )
    assert change.repair and not change.routine and change.revoke_serial is None
    assert plan.revocations == () and not plan.gates
    repaired_and_clean(scratch, trees)


def test_an_unreadable_file_at_a_desired_router_name_is_reissued(scratch: Scratch, trees: Trees) -> None:
    (isp_dir(scratch) / trees.edge2).write_bytes(b"not DER")
    plan = scratch.plan(later(1))
    change = only(plan, "example-isp/" + trees.edge2)
    assert (change.action, change.kind, change.cause) == (Action.REISSUE, Kind.ROUTER, Reason.UNREADABLE)
    assert change.reason.startswith("unreadable: "), change.reason
    assert change.repair and change.revoke_serial is None and not plan.gates
    repaired_and_clean(scratch, trees)


def test_an_unreadable_file_at_an_undesired_router_name_is_withdrawn(scratch: Scratch, trees: Trees) -> None:
    name = "router_AS64499_" + "AB" * 20 + ".cer"
    (isp_dir(scratch) / name).write_bytes((isp_dir(scratch) / trees.edge2).read_bytes()[:100])
    plan = scratch.plan(later(1))
    change = only(plan, "example-isp/" + name)
    assert (change.action, change.kind, change.cause, change.repair) == (
        Action.WITHDRAW,
        Kind.ROUTER,
        Reason.UNREADABLE,
        True,
    )
    assert change.revoke_serial is None and plan.revocations == () and not plan.gates
    assert [c.path for c in router_changes(plan)] == ["example-isp/" + name]
    repaired_and_clean(scratch, trees)


def test_a_foreign_router_certificate_under_a_new_name_is_withdrawn_not_revoked(
    scratch: Scratch, trees: Trees
) -> None:
    """The other tree's certificate for a router this one does not declare, planted at its own name."""
    shutil.copy(trees.other / "example-isp" / trees.edge3, isp_dir(scratch) / trees.edge3)
    plan = scratch.plan(later(1))
    change = only(plan, "example-isp/" + trees.edge3)
    assert (change.action, change.kind, change.cause) == (Action.WITHDRAW, Kind.ROUTER, Reason.FOREIGN)
    assert change.reason.startswith(FOREIGN) and "does not hold" in change.reason, change.reason
    assert change.repair and change.revoke_serial is None
    assert plan.revocations == () and not plan.gates
    assert [c.path for c in router_changes(plan)] == ["example-isp/" + trees.edge3]
    repaired_and_clean(scratch, trees)


def test_a_foreign_router_certificate_at_a_newly_desired_name_is_reissued(
    scratch: Scratch, trees: Trees
) -> None:
    """Planted before the YAML declares the very same router: on no manifest, certifying what is wanted,
    and still not the CA's."""
    planted = (trees.other / "example-isp" / trees.edge3).read_bytes()
    (isp_dir(scratch) / trees.edge3).write_bytes(planted)
    (scratch.repo / ISP).write_text((scratch.repo / ISP).read_text() + EDGE3)
    plan = scratch.plan(later(1))
    change = only(plan, "example-isp/" + trees.edge3)
    assert (change.action, change.cause) == (Action.REISSUE, Reason.FOREIGN)
    assert change.repair and change.revoke_serial is None
    assert plan.revocations == () and not plan.gates
    assert scratch.apply(later(1)) is not None
    assert scratch.plan(later(1)).empty
    ours = engine.open_workspace(scratch.repo).published.files["example-isp/" + trees.edge3]
    assert ours != planted
    issued = published_router(scratch, "example-isp/" + trees.edge3)
    assert issued.public_key == x509.load_der_x509_certificate(planted).public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def test_the_other_trees_certificate_of_the_same_router_over_ours_is_altered(
    scratch: Scratch, trees: Trees
) -> None:
    """Same key, same AS, same name: only the manifest tells it from ours."""
    shutil.copy(trees.other / "example-isp" / trees.edge1, isp_dir(scratch) / trees.edge1)
    plan = scratch.plan(later(1))
    change = only(plan, "example-isp/" + trees.edge1)
    assert (change.action, change.cause, change.revoke_serial) == (Action.REISSUE, Reason.ALTERED, None)
    assert plan.revocations == () and not plan.gates
    repaired_and_clean(scratch, trees)


def test_a_copy_of_the_cas_own_router_certificate_is_withdrawn_not_revoked(
    scratch: Scratch, trees: Trees
) -> None:
    """Under another router name the copy carries the original's serial: revoking it would take the
    AS64496 router down."""
    copy_name = trees.edge1.replace("AS64496", "AS64497")
    original = (isp_dir(scratch) / trees.edge1).read_bytes()
    (isp_dir(scratch) / copy_name).write_bytes(original)
    plan = scratch.plan(later(1))
    change = only(plan, "example-isp/" + copy_name)
    assert (change.action, change.kind, change.cause, change.revoke_serial) == (
        Action.WITHDRAW,
        Kind.ROUTER,
        Reason.COPY,
        None,
    )
    assert plan.revocations == () and not plan.gates
    assert [c.path for c in router_changes(plan)] == ["example-isp/" + copy_name]
    assert scratch.apply(later(1)) is not None
    published = engine.open_workspace(scratch.repo).published
    assert "example-isp/" + copy_name not in published.files
    assert published.files["example-isp/" + trees.edge1] == original
    assert scratch.plan(later(1)).empty


def test_a_router_certificate_under_a_child_certificate_name_is_not_a_child(
    scratch: Scratch, trees: Trees
) -> None:
    """A router certificate at ``example-isp/lab.cer``, where a child CA's certificate would be: not
    read as a CA certificate, withdrawn as damage, revoking nothing and tripping no CA gate."""
    (isp_dir(scratch) / "lab.cer").write_bytes((isp_dir(scratch) / trees.edge1).read_bytes())
    plan = scratch.plan(later(1))
    change = only(plan, "example-isp/lab.cer")
    assert (change.action, change.kind, change.cause) == (
        Action.WITHDRAW,
        Kind.CERTIFICATE,
        Reason.UNREADABLE,
    )
    assert change.repair and change.revoke_serial is None
    assert plan.revocations == () and not plan.gates
    repaired_and_clean(scratch, trees)


def test_removing_a_router_revokes_it_and_trips_no_ca_gate(scratch: Scratch, trees: Trees) -> None:
    """A router certificate is a ``.cer`` in a CA's directory, as a child's is: revoking it is not
    revoking a CA (no ``ca-revoke``), nor does it shrink one (no ``ca-shrink``)."""
    scratch.edit(ISP, "routers:\n" + EDGE1 + EDGE2, "")
    plan = scratch.plan(later(1))
    revoked = sorted((c.action, c.cause, c.path) for c in router_changes(plan))
    assert revoked == [
        (Action.REVOKE, Reason.NOT_DESIRED, "example-isp/" + trees.edge1),
        (Action.REVOKE, Reason.NOT_DESIRED, "example-isp/" + trees.edge2),
    ]
    serials = {
        published_router(scratch, "example-isp/" + trees.edge1).serial,
        published_router(scratch, "example-isp/" + trees.edge2).serial,
    }
    assert {c.revoke_serial for c in router_changes(plan)} == serials
    assert plan.gates == (), [(g.id, g.items) for g in plan.gates]
    assert scratch.apply(later(1)) is not None
    published = engine.open_workspace(scratch.repo).published
    assert not [p for p in published.under("example-isp/") if p.startswith("router_")]
    (crl_path,) = [p for p in published.under("example-isp/") if p.endswith(".crl")]
    crl = published.crl("example-isp/" + crl_path)
    assert crl is not None and not isinstance(crl, Unreadable)
    assert serials <= {r.serial for r in crl.revoked}
    assert scratch.plan(later(1)).empty


# -------------------------------------------------------------------------------------------- the clock


def test_an_expiring_router_certificate_is_renewed_on_schedule(scratch: Scratch, trees: Trees) -> None:
    workspace = engine.open_workspace(scratch.repo)
    found = published_router(scratch, "example-isp/" + trees.edge1)
    renew = workspace.desired.timing.certificate_renew_before
    when = found.not_after - renew + timedelta(days=1)
    early = scratch.plan(when - timedelta(days=2))
    assert router_changes(early) == [], [c.address for c in router_changes(early)]
    plan = scratch.plan(when)
    renewals = router_changes(plan)
    assert sorted(c.path for c in renewals) == sorted(
        ["example-isp/" + trees.edge1, "example-isp/" + trees.edge2]
    )
    for change in renewals:
        assert (change.action, change.cause) == (Action.RENEW, Reason.EXPIRING), change.address
        assert change.scheduled and change.routine and not change.repair
        assert change.revoke_serial == published_router(scratch, change.path).serial
    assert plan.gates == ()
    assert [c.address for c in document(scratch, plan).changes if c.kind == "router" and not c.routine] == []


# ------------------------------------------------------------------------------------------ the document


def test_the_document_shows_a_changed_bgp_identifier_before_and_after(scratch: Scratch, trees: Trees) -> None:
    scratch.edit(ISP, "router_id: 192.0.2.2", "router_id: 192.0.2.9")
    plan = scratch.plan(later(1))
    change = only(plan, "example-isp/" + trees.edge2)
    assert (change.action, change.cause) == (Action.REISSUE, Reason.CONTENT_CHANGED)
    assert change.revoke_serial == published_router(scratch, change.path).serial
    doc = document(scratch, plan)
    (entry,) = router_docs(doc)
    keyid = trees.edge2.removesuffix(".cer").rsplit("_", 1)[1]
    assert (entry.action, entry.before, entry.after) == (
        "reissue",
        {"key_id": keyid, "asns": "AS64497", "router_id": "192.0.2.2"},
        {"key_id": keyid, "asns": "AS64497", "router_id": "192.0.2.9"},
    )
    text = render_plain(doc)
    (line,) = [x for x in text.splitlines() if trees.edge2 in x and "reissue" in x]
    assert line.strip().startswith(f"~ reissue    router example-isp/{trees.edge2}"), line
    assert "192.0.2.2" in line and "192.0.2.9" in line, line


def test_the_document_shows_a_router_moved_to_another_as(scratch: Scratch, trees: Trees) -> None:
    """A new first AS is a new name: the new certificate issued, the old one revoked."""
    scratch.edit(ISP, "asns: [AS64497], router_id", "asns: [AS64496], router_id")
    moved = trees.edge2.replace("AS64497", "AS64496")
    plan = scratch.plan(later(1))
    assert sorted((c.action, c.path) for c in router_changes(plan)) == [
        (Action.ISSUE, "example-isp/" + moved),
        (Action.REVOKE, "example-isp/" + trees.edge2),
    ]
    assert not plan.gates
    keyid = trees.edge2.removesuffix(".cer").rsplit("_", 1)[1]
    docs = {c.path: (c.action, c.before, c.after) for c in router_docs(document(scratch, plan))}
    assert docs == {
        "example-isp/" + moved: (
            "issue",
            None,
            {"key_id": keyid, "asns": "AS64496", "router_id": "192.0.2.2"},
        ),
        "example-isp/" + trees.edge2: (
            "revoke",
            {"key_id": keyid, "asns": "AS64497", "router_id": "192.0.2.2"},
            None,
        ),
    }
    text = render_plain(document(scratch, plan))
    assert f"+ issue      router example-isp/{moved}" in text, text
    assert f"- revoke     router example-isp/{trees.edge2}" in text, text
