"""The RFC 6492 parent, called as ``rpkictl serve`` calls it: messages signed by a real child identity,
answers verified with the parent CA's identity. What it issues enters the served tree and the parent's
manifest at once; what it refuses leaves the tree untouched; every later plan expects what it issued."""

from __future__ import annotations

import hashlib
import json
from datetime import timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import Encoding

from reconciler import engine, layout
from reconciler.plan.model import Action, Kind
from reconciler.protocol import updown
from reconciler.protocol.errors import CmsError, ReplayError
from reconciler.published import read
from reconciler.published.reader import SignedManifest
from reconciler.resources import Resources
from reconciler.rpki import cert as rc
from reconciler.rpki import crl as rc_crl
from reconciler.serve.app import UnknownPeer
from reconciler.signers import FileSigner
from tests.publish.test_rrdp import notification, snapshot_files
from tests.serve.parent_world import (
    BASE,
    ENTITLEMENT,
    HANDLE,
    PARENT,
    SIA,
    World,
    declare,
    make_child,
    make_world,
)


@pytest.fixture
def world(tmp_path: Path) -> World:
    return make_world(tmp_path)


def refused(payload: updown.Payload, status: int) -> str:
    assert isinstance(payload, updown.ErrorResponse), payload
    assert payload.status == status, payload
    return payload.description or ""


def parent_point(world: World) -> tuple[bytes, dict[str, bytes], rc_crl.Crl]:
    """The parent CA's key, what its manifest lists (name -> SHA-256), and its CRL."""
    published = world.published()
    own = published.certificate(f"ta/{PARENT}.cer")
    assert isinstance(own, rc.ResourceCertificate)
    repo = layout.repository(PARENT)
    mft = published.manifest(repo + layout.manifest_name(own.key_id))
    crl = published.crl(repo + layout.crl_name(own.key_id))
    assert isinstance(mft, SignedManifest), mft
    assert isinstance(crl, rc_crl.Crl), crl
    return own.key_id, dict(mft.content.files), crl


def test_list_answers_the_entitlement_with_the_parent_certificate(world: World) -> None:
    answer = world.send(updown.ListQuery())
    assert isinstance(answer, updown.ListResponse)
    (resource_class,) = answer.classes
    own = world.published().certificate(f"ta/{PARENT}.cer")
    assert isinstance(own, rc.ResourceCertificate)
    assert resource_class.class_name == PARENT
    assert resource_class.resources == ENTITLEMENT
    assert resource_class.cert_url == f"{BASE}ta/{PARENT}.cer"
    assert resource_class.issuer == own.der
    assert resource_class.not_after == own.not_after
    assert resource_class.certificates == ()


def test_issue_publishes_the_certificate_on_the_parent_manifest(world: World) -> None:
    body = world.body(updown.IssueRequest(PARENT, world.child.request("k1")))
    answer = world.answer(body).payload
    assert isinstance(answer, updown.IssueResponse)
    (issued,) = answer.resource_class.certificates
    path = world.path("k1")
    assert issued.cert_url == BASE + path
    published = world.published()
    assert published.files[path] == issued.der

    cert = world.certificate("k1")
    key, listed, _ = parent_point(world)
    assert cert.key_id == world.child.key_id("k1")
    assert cert.authority_key_id == key
    assert cert.resources.resources == ENTITLEMENT
    assert (cert.repository, cert.manifest_uri) == (SIA, f"{SIA}k1.mft")
    assert cert.aia == f"{BASE}ta/{PARENT}.cer"
    assert cert.crldp == f"{BASE}{PARENT}/{layout.crl_name(key)}"
    assert cert.not_after == answer.resource_class.not_after  # the parent's own end
    assert listed[path.rsplit("/", 1)[1]] == hashlib.sha256(issued.der).digest()

    # The next plan expects it: nothing to do, and list now shows it.
    assert world.scratch.plan(world.tick()).changes == ()
    listed_now = world.send(updown.ListQuery())
    assert isinstance(listed_now, updown.ListResponse)
    assert [c.der for c in listed_now.classes[0].certificates] == [issued.der]

    # The audit log names the child, the class and the request.
    desired = engine.load_desired(world.scratch.repo)
    last = json.loads(desired.audit_log_path.read_text().splitlines()[-1])
    assert last["status"] == "child-issued"
    assert (last["child"], last["class"]) == (HANDLE, PARENT)
    assert last["request_sha256"] == hashlib.sha256(body).hexdigest()
    assert f"write {path}" in last["changes"]


def test_issue_with_a_limit_certifies_what_both_allow(world: World) -> None:
    limit = Resources.parse(["AS64500", "AS64501"], ["203.0.113.0/25"], [])
    answer = world.issue(limit=limit)
    assert isinstance(answer, updown.IssueResponse)
    assert world.certificate().resources.resources == Resources.parse(["AS64500"], ["203.0.113.0/25"], [])
    assert answer.resource_class.certificates[0].requested == limit


def test_a_request_outside_the_entitlement_is_refused_and_publishes_nothing(world: World) -> None:
    before = world.published().files
    answer = world.issue(limit=Resources.parse(["AS64496"], ["192.0.2.0/24"], []))
    assert "none of which is in the entitlement" in refused(answer, 1202)
    assert world.published().files == before


def test_a_request_in_another_class_is_refused(world: World) -> None:
    answer = world.send(updown.IssueRequest("DEFAULT", world.child.request("k1")))
    assert "'DEFAULT'" in refused(answer, 1201)


def test_a_badly_formed_request_is_refused(world: World) -> None:
    """A PKCS#10 without the SIA a CA request must carry (RFC 6487 §6) is 1203, with the reason."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    request = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "child")]))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
        .public_bytes(Encoding.DER)
    )
    before = world.published().files
    description = refused(world.send(updown.IssueRequest(PARENT, request)), 1203)
    assert "certificate request" in description
    assert refused(world.send(updown.IssueRequest(PARENT, b"\x30\x03garbage")), 1203)
    assert world.published().files == before


def test_a_replayed_issue_is_refused(world: World) -> None:
    body = world.body(updown.IssueRequest(PARENT, world.child.request("k1")))
    assert isinstance(world.answer(body).payload, updown.IssueResponse)
    after_first = world.published().files
    world.tick(60)
    with pytest.raises(ReplayError, match="not after the last one accepted"):
        world.service.respond(HANDLE, body, world.now)
    assert world.published().files == after_first


def test_an_undeclared_child_is_unknown(world: World) -> None:
    body = world.body(updown.ListQuery())
    with pytest.raises(UnknownPeer):
        world.service.respond("stranger", body, world.now)


def test_a_message_signed_by_another_identity_is_refused(world: World, tmp_path: Path) -> None:
    impostor = make_child(tmp_path / "impostor", HANDLE)
    body = world.body(updown.IssueRequest(PARENT, impostor.request("k1")), impostor)
    before = world.published().files
    with pytest.raises(CmsError):
        world.service.respond(HANDLE, body, world.now)
    assert world.published().files == before


def test_revoke_puts_the_certificate_on_the_crl_and_withdraws_it(world: World) -> None:
    assert isinstance(world.issue("k1"), updown.IssueResponse)
    serial = world.certificate("k1").serial
    path = world.path("k1")
    answer = world.send(updown.RevokeRequest(PARENT, world.child.key_id("k1")))
    assert answer == updown.RevokeResponse(PARENT, world.child.key_id("k1"))
    assert path not in world.published().files
    _, listed, crl = parent_point(world)
    assert path.rsplit("/", 1)[1] not in listed
    assert serial in {r.serial for r in crl.revoked}
    assert world.scratch.plan(world.tick()).changes == ()


def test_revoke_of_an_unknown_key_or_class(world: World) -> None:
    assert isinstance(world.issue("k1"), updown.IssueResponse)
    refused(world.send(updown.RevokeRequest(PARENT, world.child.key_id("other"))), 1302)
    refused(world.send(updown.RevokeRequest("DEFAULT", world.child.key_id("k1"))), 1301)
    assert world.path("k1") in world.published().files


def test_a_new_certificate_for_the_same_key_replaces_and_revokes_the_old(world: World) -> None:
    assert isinstance(world.issue("k1"), updown.IssueResponse)
    first = world.certificate("k1")
    assert isinstance(world.issue("k1", limit=Resources.parse(["AS64500"], [], [])), updown.IssueResponse)
    second = world.certificate("k1")
    assert second.serial != first.serial
    assert second.resources.resources == Resources.parse(["AS64500"], [], [])
    _, _, crl = parent_point(world)
    assert first.serial in {r.serial for r in crl.revoked}


def test_a_key_in_use_elsewhere_is_refused(world: World, tmp_path: Path) -> None:
    """A key certified for another child, or held by one of our own CAs, is 1204; a third key of the
    child is refused until it revokes one."""
    beta = make_child(tmp_path / "beta-keys", "beta")
    declare(world.scratch, beta, "{ipv4: [198.51.100.0/24]}")
    assert isinstance(world.issue("k1"), updown.IssueResponse)
    stolen = world.child.request("k1")
    assert "another child" in refused(world.send(updown.IssueRequest(PARENT, stolen), beta), 1204)

    ours = FileSigner(world.scratch.root / "keys")
    isp_key = ours.find_key("example-isp")
    assert isp_key is not None
    from reconciler.protocol import csr  # noqa: PLC0415

    request = csr.build_ca_request(ours, isp_key, SIA, f"{SIA}x.mft", None)
    refused(world.send(updown.IssueRequest(PARENT, request)), 1204)

    assert isinstance(world.issue("k2"), updown.IssueResponse)
    assert "revoke one" in refused(world.issue("k3"), 2001)


def test_the_next_plan_renews_with_the_parent(world: World) -> None:
    """Near the parent certificate's end both are renewed in one routine plan, the child's for the same
    key and to the parent's new end, and the plan after is empty."""
    assert isinstance(world.issue("k1"), updown.IssueResponse)
    first = world.certificate("k1")
    late = first.not_after - timedelta(weeks=3)
    the_plan = world.scratch.plan(late)
    renewals = {(c.action, c.kind, c.path) for c in the_plan.changes if c.kind is Kind.CERTIFICATE}
    assert (Action.RENEW, Kind.CERTIFICATE, world.path("k1")) in renewals
    assert (Action.RENEW, Kind.CERTIFICATE, f"ta/{PARENT}.cer") in renewals
    assert the_plan.gates == () and all(c.routine for c in the_plan.changes)
    assert world.scratch.apply(late) is not None
    renewed = world.certificate("k1")
    own = read(world.scratch.rsync).certificate(f"ta/{PARENT}.cer")
    assert isinstance(own, rc.ResourceCertificate)
    assert renewed.key_id == first.key_id and renewed.serial != first.serial
    assert renewed.not_after == own.not_after > first.not_after
    assert (renewed.repository, renewed.resources.resources) == (first.repository, ENTITLEMENT)
    assert world.scratch.plan(late).changes == ()


def test_an_issue_never_lists_a_planted_file_on_the_manifest(world: World) -> None:
    """The manifest re-signed for the new certificate lists what the directory holds: a file planted
    there meanwhile is removed first, as any unattended run removes it, never made legitimate."""
    planted = world.scratch.rsync / layout.repository(PARENT) / "planted.roa"
    planted.write_bytes(b"\x30\x03\x02\x01\x07 not a ROA")
    assert isinstance(world.issue("k1"), updown.IssueResponse)
    _, listed, _ = parent_point(world)
    assert "planted.roa" not in listed
    assert f"{PARENT}/planted.roa" not in world.published().files
    assert world.path("k1").rsplit("/", 1)[1] in listed


def test_an_issue_is_published_in_rrdp_too(tmp_path: Path) -> None:
    world = make_world(tmp_path, rrdp=True)
    before = notification(world.scratch)
    assert isinstance(world.issue("k1"), updown.IssueResponse)
    after = notification(world.scratch)
    assert (after.session_id, after.serial) == (before.session_id, before.serial + 1)
    files = snapshot_files(world.scratch, after)
    assert files[world.path("k1")] == world.published().files[world.path("k1")]
    assert files == world.published().files
    assert world.scratch.plan(world.tick()).changes == ()  # RRDP serves what rsync serves
