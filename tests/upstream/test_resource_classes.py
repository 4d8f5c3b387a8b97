"""Several resource classes under one external parent: the CA of ours for each class, its name, which
of them signs each ROA and holds each local CA below, and how each class's entitlement compares with
the certificate it issued (what apply asks for, the ``parent-shrink`` gate, the plan and the status).

The parent's list and certificates here are made in the test (real DER, signed by a key of the test);
the exchanges themselves, over HTTP with a parent of two classes, are in
``tests/e2e/test_child_two_classes.py``."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from ipaddress import ip_network
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from reconciler import engine, layout
from reconciler.apply import child_certificate
from reconciler.desired.model import DesiredState
from reconciler.plan.render import text as plain_text
from reconciler.protocol import bpki, oob, updown
from reconciler.published.reader import PublishedState
from reconciler.resources import Resources
from reconciler.rpki import cert as rc
from reconciler.signers import FileSigner
from reconciler.status.upstream import parent_status
from reconciler.upstream import classes, narrowing
from reconciler.upstream import state as stored
from reconciler.upstream.effective import effective
from reconciler.upstream.state import Certified, UpstreamState
from tests.upstream.child_world import HANDLE, make_child

NOW = datetime.now(UTC).replace(microsecond=0)
BASE = "rsync://repo.example.net/member/"
FIRST = Resources.parse(["AS64500"], ["203.0.113.0/24"])
SECOND = Resources.parse([], ["100.64.0.0/16"])


def listed(name: str, resources: Resources, *certificates: updown.IssuedCertificate) -> updown.ResourceClass:
    return updown.ResourceClass(
        name,
        f"rsync://registry.example/{name}.cer",
        resources,
        NOW + timedelta(days=300),
        b"\x30\x00",
        certificates,
    )


# -- names and assignment ------------------------------------------------------------------------------


def test_a_further_class_gets_a_name_no_ca_file_and_no_key_generation_can_take() -> None:
    assert classes.ca_name("acme", "transfers") == "acme_class-transfers"
    odd = classes.ca_name("acme", "APNIC/ARIN transfer #1")
    assert re.fullmatch(r"acme_class-c[0-9a-f]{16}", odd)
    assert odd == classes.ca_name("acme", "APNIC/ARIN transfer #1")  # stable: its keys are found again
    assert odd != classes.ca_name("acme", "APNIC/ARIN transfer #2")
    for name in ("acme_class-transfers", odd, classes.ca_name("acme", "g2")):
        # the file of its certificate is never read as another key generation of a CA
        assert layout.certificate_subject(f"{name}.cer") == (name, 1)
        assert layout.certificate_subject(f"{name}_g3.cer") == (name, 3)
        assert classes.is_class_ca(name, "acme") and not classes.is_class_ca(name, "acme2")


def test_the_class_the_ca_signs_under_keeps_its_name_whatever_the_order() -> None:
    found = (listed("0", SECOND), listed("empty", Resources()), listed("1", FIRST))
    first = classes.assign("acme", found, "1")
    assert [(a.ca, a.listed.class_name) for a in first] == [("acme", "1"), ("acme_class-0", "0")]
    fresh = classes.assign("acme", found, None)  # the first exchange: the first class listed
    assert [(a.ca, a.listed.class_name) for a in fresh] == [("acme", "0"), ("acme_class-1", "1")]
    gone = classes.assign("acme", found, "moved")  # the parent no longer lists it: the first takes over
    assert gone[0] == classes.Assigned("acme", found[0])
    assert classes.assign("acme", (listed("empty", Resources()),), None) == ()


# -- what each class entitles and what its certificate holds -----------------------------------------


class Issuing:
    """A parent's key that issues real certificates for keys of ours."""

    def __init__(self) -> None:
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)

    def certificate(self, subject: rsa.RSAPublicKey, resources: Resources, repository: str) -> bytes:
        issuer = rc.Issuer(
            self.key, b"\x01" * 20, "rsync://registry.example/ca.cer", "rsync://registry.example/ca.crl"
        )
        return child_certificate.build(
            issuer=issuer,
            subject_key=subject,
            access=rc.CaAccess(repository, repository + "x.mft", None),
            resources=resources,
            serial=7,
            not_before=NOW - timedelta(hours=1),
            not_after=NOW + timedelta(days=300),
        )


def kept_state(
    *pairs: tuple[str, Resources, Resources | None], signer: FileSigner | None = None
) -> UpstreamState:
    """A kept state: for each (class, entitled, certified or None) the class listed and, where certified,
    the certificate of a key of ours (the key in ``signer`` under the name of our CA of that class, when
    given), the first certified class being the CA's own."""
    parent = Issuing()
    found, certificates = [], []
    for class_name, entitled, held in pairs:
        issued: tuple[updown.IssuedCertificate, ...] = ()
        if held is not None:
            name = HANDLE if not certificates else classes.ca_name(HANDLE, class_name)
            if signer is not None:
                key = signer.public_key(signer.create_key(layout.key_label(name, 1)))
            else:
                key = rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key()
            der = parent.certificate(key, held, BASE + layout.repository(name))
            uri = f"rsync://registry.example/{class_name}/{name}.cer"
            certificates.append(Certified(class_name, uri, der))
            issued = (updown.IssuedCertificate(uri, der),)
        found.append(listed(class_name, entitled, *issued))
    response = updown.render(updown.Message(HANDLE, "registry", updown.ListResponse(tuple(found))))
    return UpstreamState(
        list_response=response,
        listed_at=NOW,
        certified=certificates[0] if certificates else None,
        others=tuple(certificates[1:]),
    )


def test_each_class_is_compared_with_its_own_certificate() -> None:
    grown = Resources.parse(["AS64500"], ["203.0.113.0/24", "198.51.100.0/24"])
    kept = kept_state(("default", grown, FIRST), ("transfers", SECOND, SECOND))
    found = classes.holdings(kept)
    assert [(h.class_name, h.gained, h.lost) for h in found] == [
        ("default", Resources.parse([], ["198.51.100.0/24"]), Resources()),
        ("transfers", Resources(), Resources()),
    ]
    # over every class: the second class's resources are not "entitled but not certified"
    assert classes.pending(found) == (Resources.parse([], ["198.51.100.0/24"]), Resources())
    assert narrowing.taken_away(kept) == {}


def test_a_shrink_in_one_class_is_taken_away_there_only() -> None:
    kept = kept_state(
        ("default", FIRST, FIRST), ("transfers", Resources.parse([], ["100.64.0.0/17"]), SECOND)
    )
    assert narrowing.taken_away(kept) == {"transfers": Resources.parse([], ["100.64.128.0/17"])}
    assert classes.pending(classes.holdings(kept)) == (Resources(), Resources.parse([], ["100.64.128.0/17"]))


def test_the_kept_state_keeps_the_certificates_of_every_class(tmp_path: Path) -> None:
    kept = kept_state(("default", FIRST, FIRST), ("transfers", SECOND, SECOND))
    stored.save(tmp_path, HANDLE, kept)
    again = stored.load(tmp_path, HANDLE)
    assert again.others == kept.others and again.certified == kept.certified
    assert [c.class_name for c in stored.active(again)] == ["default", "transfers"]
    assert [(n, c.class_name) for n, c in classes.signing(HANDLE, again)] == [
        (HANDLE, "default"),
        ("acme_class-transfers", "transfers"),
    ]


# -- the desired state signed under two classes --------------------------------------------------------


@pytest.fixture
def desired(tmp_path: Path) -> DesiredState:
    """A CA under a registry that declares resources of both classes and one more, ROAs in each, a local
    CA below in the second class's space, and one in neither."""
    child = make_child(tmp_path / "child")
    signer = FileSigner(tmp_path / "registry-keys")
    key = signer.create_key(bpki.identity_label("registry"))
    identity = bpki.create_identity(signer, key, NOW).der
    response = oob.ParentResponse("https://registry.example/up-down/acme", "registry", HANDLE, identity)
    repository = oob.RepositoryResponse("https://registry.example/pub/acme", HANDLE, BASE, identity)
    child.write("parents/registry.xml", oob.render(response))
    child.write("repositories/registry.xml", oob.render(repository))
    child.write(
        f"cas/{HANDLE}.yaml",
        f"name: {HANDLE}\nparent: {{response: parents/registry.xml}}\n"
        "repository: {response: repositories/registry.xml}\n"
        "resources: {asn: [AS64500], ipv4: [203.0.113.0/24, 100.64.0.0/16, 198.51.100.0/24]}\n"
        "roas:\n"
        "  - {asn: AS64500, prefix: 203.0.113.0/24}\n"
        "  - {asn: AS64500, prefix: 100.64.0.0/24}\n"
        "  - {asn: AS64500, prefix: 198.51.100.0/24}\n",
    )
    child.write(
        "cas/lab.yaml",
        f"name: lab\nparent: {HANDLE}\nresources: {{ipv4: [100.64.8.0/24]}}\n"
        "roas:\n  - {asn: AS64501, prefix: 100.64.8.0/24}\n",
    )
    child.write("cas/edge.yaml", f"name: edge\nparent: {HANDLE}\nresources: {{ipv4: [203.0.113.128/25]}}\n")
    return engine.load_desired(child.repo)


def test_each_roa_and_each_ca_below_go_to_the_class_that_covers_them(desired: DesiredState) -> None:
    directory = desired.publication.directory
    stored.save(directory, HANDLE, kept_state(("default", FIRST, FIRST), ("transfers", SECOND, SECOND)))
    found = PublishedState()
    narrowed, notices = effective(desired, found)

    second = classes.ca_name(HANDLE, "transfers")
    assert [ca.name for ca in narrowed.cas[:2]] == [HANDLE, second]
    assert narrowed.external_root is narrowed.cas[0]
    mine, other = narrowed.ca(HANDLE), narrowed.ca(second)
    assert (mine.resources, other.resources) == (FIRST, SECOND)
    assert [str(r.prefix) for r in mine.roas] == ["203.0.113.0/24"]
    assert [str(r.prefix) for r in other.roas] == ["100.64.0.0/24"]
    assert other.external and other.parent is None and other.children == ()
    assert other.certificate_uris == ((1, "rsync://registry.example/transfers/acme_class-transfers.cer"),)
    # each CA's certificate where the planner looks for it, and nothing for generations it lacks
    assert found.certificate(f"{second}.cer") is not None and found.certificate(f"{HANDLE}.cer") is not None
    # the local CAs below: under the class whose certificate covers them
    assert narrowed.ca("lab").parent == second and narrowed.ca("lab").resources == Resources.parse(
        [], ["100.64.8.0/24"]
    )
    assert narrowed.ca("edge").parent == HANDLE
    # the ROA no class covers is left out, with the certificates of both classes named
    (left,) = [n for n in notices if "is not signed" in n.message]
    assert "198.51.100.0/24" in left.message
    assert f"{HANDLE}: AS64500; 203.0.113.0/24" in left.message and f"{second}: 100.64.0.0/16" in left.message
    assert any("does not certify 198.51.100.0/24" in n.message for n in notices)


def test_aspas_and_router_keys_go_to_the_class_that_holds_their_as(tmp_path: Path) -> None:
    """An ASPA goes under the first class CA whose certificate holds its customer AS, a router key's AS
    numbers each under the class that holds it; what no class holds is left out with a notice naming
    the entry, as a ROA no class covers is."""
    child = make_child(tmp_path / "child")
    signer = FileSigner(tmp_path / "registry-keys")
    identity = bpki.create_identity(signer, signer.create_key(bpki.identity_label("registry")), NOW).der
    response = oob.ParentResponse("https://registry.example/up-down/acme", "registry", HANDLE, identity)
    repository = oob.RepositoryResponse("https://registry.example/pub/acme", HANDLE, BASE, identity)
    child.write("parents/registry.xml", oob.render(response))
    child.write("repositories/registry.xml", oob.render(repository))
    router_key = ec.generate_private_key(ec.SECP256R1()).public_key()
    child.write("routers/edge.pem", router_key.public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo))
    child.write(
        f"cas/{HANDLE}.yaml",
        f"name: {HANDLE}\nparent: {{response: parents/registry.xml}}\n"
        "repository: {response: repositories/registry.xml}\n"
        "resources: {asn: [AS64500, AS64502], ipv4: [203.0.113.0/24, 100.64.0.0/16]}\n"
        "aspas:\n"
        "  - {customer: AS64500, providers: [AS64510]}\n"
        "  - {customer: AS64502, providers: [AS64510]}\n"
        "routers:\n"
        "  - {key: routers/edge.pem, asns: [AS64500, AS64502]}\n",
    )
    desired = engine.load_desired(child.repo)
    stored.save(
        desired.publication.directory,
        HANDLE,
        kept_state(("default", FIRST, FIRST), ("transfers", SECOND, SECOND)),
    )

    narrowed, notices = effective(desired, PublishedState())

    mine, other = narrowed.ca(HANDLE), narrowed.ca(classes.ca_name(HANDLE, "transfers"))
    assert [a.customer for a in mine.aspas] == [64500] and other.aspas == ()
    assert [(r.file, str(r.asns)) for r in mine.routers] == [("routers/edge.pem", "AS64500")]
    assert other.routers == ()
    left = sorted(n.message for n in notices if n.message.startswith(("router key", "the ASPA")))
    assert len(left) == 2, notices
    assert left[0].startswith("router key routers/edge.pem for AS64502") and "is not certified" in left[0]
    assert left[1].startswith("the ASPA of AS64502") and "is not signed" in left[1]


def test_the_plan_signs_each_class_under_its_own_key(desired: DesiredState, tmp_path: Path) -> None:
    """Planned against the signers, the two CAs under the parent each sign their own manifest, CRL and
    ROAs, in their own directories, and nothing is planned for their certificates (the parent's)."""
    signer = FileSigner(tmp_path / "child" / "keys")  # rpki.yaml's signer
    directory = desired.publication.directory
    stored.save(
        directory, HANDLE, kept_state(("default", FIRST, FIRST), ("transfers", SECOND, SECOND), signer=signer)
    )
    workspace = engine.open_workspace(tmp_path / "child" / "state")
    plan = engine.plan(workspace, NOW)
    second = classes.ca_name(HANDLE, "transfers")
    paths = {c.path for c in plan.changes}
    assert f"{second}/{layout.roa_name(64500, ip_network('100.64.0.0/24'))}" in paths
    assert f"{HANDLE}/{layout.roa_name(64500, ip_network('203.0.113.0/24'))}" in paths
    assert not any(p.endswith(".cer") and "/" not in p for p in paths), sorted(paths)
    keys = {ca: plan.key_plans[ca].active for ca in (HANDLE, second)}
    assert keys == {HANDLE: 1, second: 1}


def test_plan_and_status_show_each_class_with_its_ca_and_certificate(desired: DesiredState) -> None:
    directory = desired.publication.directory
    narrower = Resources.parse([], ["100.64.0.0/17"])
    stored.save(directory, HANDLE, kept_state(("default", FIRST, FIRST), ("transfers", narrower, SECOND)))
    workspace = engine.review_workspace(desired)
    doc = engine.plan_document(workspace, engine.plan(workspace, NOW))
    assert doc.parent is not None
    assert [(c.name, c.ca) for c in doc.parent.classes] == [
        ("default", HANDLE),
        ("transfers", "acme_class-transfers"),
    ]
    assert doc.parent.certified is not None and doc.parent.certified.class_name == "default"
    assert [(c.class_name, c.resources) for c in doc.parent.other_certificates] == [
        ("transfers", str(SECOND))
    ]
    # only the second class lost anything; the first class's resources are not "entitled, not certified"
    assert (doc.parent.entitled_not_certified, doc.parent.certified_not_entitled) == ("", "100.64.128.0/17")
    assert [g.id for g in doc.gates if g.id.startswith("parent-shrink")] == [f"parent-shrink@{HANDLE}"]
    text = plain_text.render_plain(doc)
    assert "class transfers: entitled to 100.64.0.0/17" in text and "(our CA acme_class-transfers)" in text
    assert "certified in class transfers: 100.64.0.0/16" in text

    parent, _ = parent_status(desired, now=NOW, warn=timedelta(days=14), critical=timedelta(days=3))
    assert parent is not None and parent.certificate is not None
    assert [c.class_name for c in parent.other_certificates] == ["transfers"]
    assert (parent.entitled_not_certified, parent.certified_not_entitled) == ("", "100.64.128.0/17")


def test_status_says_the_end_of_each_class_certificate_once(desired: DesiredState) -> None:
    """The plan's notice that a class CA's certificate ends is restated by the status with its own
    margins, like the root's: shown once, not twice."""
    from reconciler.plan.model import Notice, Severity  # noqa: PLC0415
    from reconciler.status.upstream import restated  # noqa: PLC0415

    ends = NOW + timedelta(days=3)
    second = classes.ca_name(HANDLE, "transfers")
    assert restated(Notice("expiry", Severity.WARNING, second, "ends", ends), desired)
    assert restated(Notice("expiry", Severity.WARNING, HANDLE, "ends", ends), desired)
    assert not restated(Notice("expiry", Severity.WARNING, "lab", "ends", ends), desired)
    assert not restated(Notice("roa", Severity.WARNING, second, "something else"), desired)
