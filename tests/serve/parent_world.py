"""The bundled example with one external child declared under ``online``, and a real child beside it:
its own BPKI identity and CA keys in a file signer, messages built with the codecs and signed with
``sigmsg.sign``, answers verified with the parent's identity as a child would."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from ipaddress import ip_network
from pathlib import Path

from cryptography import x509

from reconciler import engine, identity, layout
from reconciler.apply.executor import signed_object
from reconciler.protocol import bpki, csr, oob, sigmsg, updown
from reconciler.protocol.bpki import IdentityCertificate
from reconciler.published import PublishedState, read
from reconciler.resources import Resources
from reconciler.rpki import cert as rc
from reconciler.rpki import crl as rc_crl
from reconciler.rpki import manifest, roa
from reconciler.serve.parent import ParentService
from reconciler.signers import FileSigner
from reconciler.signers.adapter import SignerKey
from reconciler.signers.base import key_id
from tests.helpers import T0, Scratch, scratch_copy

HANDLE = "acme"
PARENT = "online"
ONLINE = "cas/online.yaml"
BASE = "rsync://rpki.example.net/repo/"
#: Where the child publishes: in our own repository, as an RFC 8181 publisher would.
SIA = f"{BASE}publishers/{HANDLE}/"
RRDP_BASE = "https://rpki.example.net/rrdp/"
ENTITLEMENT_YAML = '{asn: [AS64500], ipv4: [203.0.113.0/24], ipv6: ["2001:db8:8000::/36"]}'
ENTITLEMENT = Resources.parse(["AS64500"], ["203.0.113.0/24"], ["2001:db8:8000::/36"])


@dataclass
class Child:
    """A child CA run by someone else: its identity and its CA keys."""

    handle: str
    signer: FileSigner
    key: bytes  # the BPKI identity key
    identity: IdentityCertificate

    def ca_key(self, label: str) -> bytes:
        return self.signer.find_key(label) or self.signer.create_key(label)

    def request(self, label: str, sia: str = SIA) -> bytes:
        """A PKCS#10 for the child's CA key ``label``, publishing at ``sia``."""
        key = self.ca_key(label)
        return csr.build_ca_request(self.signer, key, sia, f"{sia}{label}.mft", None)

    def key_id(self, label: str) -> bytes:
        return key_id(self.signer.public_key(self.ca_key(label)))


def make_child(directory: Path, handle: str = HANDLE) -> Child:
    signer = FileSigner(directory)
    key = signer.create_key(bpki.identity_label(handle))
    return Child(handle, signer, key, bpki.create_identity(signer, key, T0))


def declare(scratch: Scratch, child: Child, resources: str = ENTITLEMENT_YAML, ca: str = ONLINE) -> None:
    """The child's RFC 8183 child_request committed in the repository, and its entry in ``children:``."""
    request = oob.ChildRequest(child_handle=child.handle, identity=child.identity.der)
    (scratch.repo / "children").mkdir(exist_ok=True)
    (scratch.repo / "children" / f"{child.handle}.xml").write_bytes(oob.render(request))
    path = scratch.repo / ca
    entry = (
        f"  - handle: {child.handle}\n    request: children/{child.handle}.xml\n    resources: {resources}\n"
    )
    text = path.read_text()
    if "children:\n" in text:
        text = text.replace("children:\n", "children:\n" + entry, 1)
    else:
        text += "children:\n" + entry
    path.write_text(text)


@dataclass
class World:
    scratch: Scratch
    child: Child
    service: ParentService
    now: datetime

    def tick(self, seconds: float = 1) -> datetime:
        self.now += timedelta(seconds=seconds)  # CMS signing times are to the second, and must grow
        return self.now

    def body(self, payload: updown.Payload, child: Child | None = None, sender: str | None = None) -> bytes:
        child = child or self.child
        message = updown.Message(sender or child.handle, PARENT, payload)
        return sigmsg.sign(updown.render(message), child.signer, child.key, child.identity, self.tick())

    def answer(self, body: bytes, handle: str = HANDLE) -> updown.Message:
        """Send ``body`` as the child ``handle`` and read the answer as the child does: verified with the
        parent CA's identity."""
        reply = self.service.respond(handle, body, self.now)
        desired = engine.load_desired(self.scratch.repo)
        parent = identity.load(PARENT, identity.directory(desired))
        assert parent is not None, "the parent answered without an identity certificate"
        verified = sigmsg.verify(reply, parent, self.now, "the parent's answer")
        message = updown.parse(verified.xml, "the parent's answer")
        assert (message.sender, message.recipient) == (PARENT, handle)
        return message

    def send(self, payload: updown.Payload, child: Child | None = None) -> updown.Payload:
        child = child or self.child
        return self.answer(self.body(payload, child), child.handle).payload

    def issue(self, label: str = "k1", limit: Resources | None = None, sia: str = SIA) -> updown.Payload:
        return self.send(updown.IssueRequest(PARENT, self.child.request(label, sia), limit))

    def published(self) -> PublishedState:
        return read(self.scratch.rsync)

    def path(self, label: str, child: Child | None = None) -> str:
        child = child or self.child
        return layout.repository(PARENT) + layout.external_certificate_name(child.handle, child.key_id(label))

    def certificate(self, label: str = "k1") -> rc.ResourceCertificate:
        found = self.published().certificate(self.path(label))
        assert isinstance(found, rc.ResourceCertificate), found
        return found


def make_world(tmp_path: Path, child_dir: Path | None = None, *, rrdp: bool = False) -> World:
    """The example (publishing RRDP too, with ``rrdp``) applied at T0, then the child declared (its
    request in Git, no certificate yet)."""
    scratch = scratch_copy(tmp_path)
    if rrdp:
        scratch.edit(
            "rpki.yaml", "  directory: ../published", f"  rrdp_base: {RRDP_BASE}\n  directory: ../published"
        )
    assert scratch.apply(T0) is not None
    child = make_child(child_dir or tmp_path / "child-keys")
    declare(scratch, child)
    service = ParentService(lambda: engine.load_desired(scratch.repo), lock_timeout=timedelta(seconds=5))
    return World(scratch, child, service, T0 + timedelta(minutes=1))


def declare_publisher(scratch: Scratch, child: Child) -> None:
    """The child also publishes in our repository (RFC 8181), at :data:`SIA`."""
    request = oob.PublisherRequest(publisher_handle=child.handle, identity=child.identity.der)
    (scratch.repo / "publishers").mkdir(exist_ok=True)
    (scratch.repo / "publishers" / f"{child.handle}.xml").write_bytes(oob.render(request))
    text = (scratch.repo / "rpki.yaml").read_text()
    entry = f"  - handle: {child.handle}\n    request: publishers/{child.handle}.xml\n"
    (scratch.repo / "rpki.yaml").write_text(text + "publishers:\n" + entry)


def publish_as_child(world: World, label: str, roas: list[roa.RoaContent]) -> dict[str, bytes]:
    """What the child publishes under its certificate for key ``label``: a CRL, ``roas`` and a manifest
    listing them, valid a day around ``world.now``, written into the served tree at :data:`SIA` as our
    publication server would."""
    child, key = world.child, world.child.ca_key(label)
    key_id = world.child.key_id(label)
    crl_name = layout.crl_name(key_id)
    issuer = rc.Issuer(SignerKey(child.signer, key), key_id, BASE + world.path(label), SIA + crl_name)
    start, end = world.now - timedelta(minutes=5), world.now + timedelta(days=1)
    files = {crl_name: rc_crl.build(issuer=issuer, number=1, this_update=start, next_update=end, revoked=())}
    for content in roas:
        name = layout.roa_name(content.asn, content.prefixes[0].prefix)
        files[name] = signed_object(
            issuer=issuer,
            uri=SIA + name,
            content_type=roa.CONTENT_TYPE,
            econtent=roa.encode(content),
            ee=(start, end),
            resources=rc.EeResources.prefixes(Resources.of_prefixes(p.prefix for p in content.prefixes)),
            serial=x509.random_serial_number(),
            signing_time=world.now,
        )
    listed = tuple((name, hashlib.sha256(data).digest()) for name, data in sorted(files.items()))
    files[f"{label}.mft"] = signed_object(
        issuer=issuer,
        uri=f"{SIA}{label}.mft",
        content_type=manifest.CONTENT_TYPE,
        econtent=manifest.encode(manifest.ManifestContent(1, start, end, listed)),
        ee=(start, end),
        resources=rc.EeResources.inherit(),
        serial=x509.random_serial_number(),
        signing_time=world.now,
    )
    directory = world.scratch.rsync / layout.PUBLISHERS / child.handle
    directory.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        (directory / name).write_bytes(data)
    return files


def roa_of(asn: int, *prefixes: str) -> roa.RoaContent:
    return roa.RoaContent.of(asn, (roa.RoaPrefix(p, p.prefixlen) for p in map(ip_network, prefixes)))
