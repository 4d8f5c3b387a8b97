"""``rpkictl oob``: the RFC 8183 files we hand out, as a real process prints them, read back with the
same codec a peer's file is read with."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from reconciler.protocol import bpki, oob
from reconciler.signers import FileSigner
from tests.helpers import Scratch, scratch_copy
from tests.test_cli import rpkictl

PROTOCOLS = Path(__file__).resolve().parent / "fixtures" / "real-world" / "protocols"
KRILL_CHILD = PROTOCOLS / "krill" / "oob" / "apnic" / "child_request.xml"
RPKID_PUBLISHER = PROTOCOLS / "rpki-rs" / "rfc8183" / "rpkid-publisher-request.xml"  # tag="A0001"
NOW = "2026-12-07T12:00:00Z"

CHILD = """\
children:
  - handle: acme
    request: requests/acme-child.xml
    resources: {asn: [AS64500], ipv4: [192.0.2.0/25]}
"""
PUBLISHERS = """\
publishers:
  - handle: bob
    request: requests/bob.xml
"""


@pytest.fixture
def scratch(tmp_path: Path) -> Scratch:
    """The bundled example with an external child 'acme' of 'online' (Krill's child_request) and a
    publisher 'bob' (rpkid's publisher_request)."""
    found = scratch_copy(tmp_path)
    (found.repo / "requests").mkdir()
    shutil.copyfile(KRILL_CHILD, found.repo / "requests" / "acme-child.xml")
    shutil.copyfile(RPKID_PUBLISHER, found.repo / "requests" / "bob.xml")
    online = found.repo / "cas" / "online.yaml"
    online.write_text(online.read_text() + CHILD)
    settings = found.repo / "rpki.yaml"
    settings.write_text(settings.read_text() + PUBLISHERS)
    return found


def store(scratch: Scratch) -> Path:
    return scratch.root / "published" / "bpki"


def signer(scratch: Scratch) -> FileSigner:
    return FileSigner(scratch.root / "keys")


def test_child_request_carries_the_cas_identity(scratch: Scratch) -> None:
    result = rpkictl("oob", "child-request", "online", str(scratch.repo), "--now", NOW)
    assert result.returncode == 0, result.stderr
    request = oob.parse_child_request(result.stdout.encode(), "stdout")
    assert request.child_handle == "online"
    identity = bpki.load_identity(request.identity, "stdout")
    key = signer(scratch).find_key(bpki.identity_label("online"))
    assert key is not None and identity.ski == key and identity.self_signed
    assert (store(scratch) / "online.cer").read_bytes() == request.identity
    # The publisher request of the same CA carries the same identity, from the stored certificate.
    result = rpkictl("oob", "publisher-request", "online", str(scratch.repo), "--now", "2027-01-01T00:00Z")
    assert result.returncode == 0, result.stderr
    publisher = oob.parse_publisher_request(result.stdout.encode(), "stdout")
    assert (publisher.publisher_handle, publisher.identity) == ("online", request.identity)


def test_identity_is_made_again_from_the_key_when_its_file_is_lost(scratch: Scratch) -> None:
    first = rpkictl("oob", "child-request", "online", str(scratch.repo), "--now", NOW)
    assert first.returncode == 0, first.stderr
    (store(scratch) / "online.cer").unlink()
    second = rpkictl("oob", "child-request", "online", str(scratch.repo), "--now", "2026-12-08T12:00Z")
    assert second.returncode == 0, second.stderr
    old = bpki.load_identity(oob.parse_child_request(first.stdout.encode(), "first").identity, "first")
    new = bpki.load_identity(oob.parse_child_request(second.stdout.encode(), "second").identity, "second")
    assert new.der != old.der and new.not_before > old.not_before  # a new certificate ...
    assert new.ski == old.ski  # ... over the same key
    assert new.public_key.public_numbers() == old.public_key.public_numbers()
    assert len(list((scratch.root / "keys").glob("bpki-identity*.pem"))) == 1


def test_parent_response_for_a_declared_child(scratch: Scratch) -> None:
    out = scratch.root / "acme-parent-response.xml"
    result = rpkictl(
        "oob", "parent-response", "online", "acme", str(scratch.repo),
        "--service-uri", "https://ca.example.net/rpki/", "--out", str(out), "--now", NOW,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert str(out) in result.stdout and "fingerprint" in result.stdout
    response = oob.parse_parent_response(out.read_bytes(), str(out))
    assert response.service_uri == "https://ca.example.net/rpki/rfc6492/acme"
    assert (response.parent_handle, response.child_handle) == ("online", "acme")
    assert response.tag is None and not response.offer
    # The identity is the parent CA's own: the one its child_request carries.
    request = rpkictl("oob", "child-request", "online", str(scratch.repo), "--now", NOW)
    assert oob.parse_child_request(request.stdout.encode(), "stdout").identity == response.identity


def test_service_uri_from_rpki_yaml(scratch: Scratch) -> None:
    scratch.edit("rpki.yaml", "publishers:\n", "serve:\n  base_uri: http://127.0.0.1:8080/ca\npublishers:\n")
    result = rpkictl("oob", "parent-response", "online", "acme", str(scratch.repo), "--now", NOW)
    assert result.returncode == 0, result.stderr
    response = oob.parse_parent_response(result.stdout.encode(), "stdout")
    assert response.service_uri == "http://127.0.0.1:8080/ca/rfc6492/acme"


def test_repository_response_for_a_declared_publisher(scratch: Scratch) -> None:
    scratch.edit(
        "rpki.yaml",
        "  directory: ../published",
        "  rrdp_base: https://rpki.example.net/rrdp/\n  directory: ../published",
    )
    result = rpkictl(
        "oob",
        "repository-response",
        "bob",
        str(scratch.repo),
        "--service-uri",
        "https://ca.example.net",
        "--now",
        NOW,
    )
    assert result.returncode == 0, result.stderr
    response = oob.parse_repository_response(result.stdout.encode(), "stdout")
    assert response.service_uri == "https://ca.example.net/rfc8181/bob"
    assert response.publisher_handle == "bob"
    assert response.sia_base == "rsync://rpki.example.net/repo/publishers/bob/"
    assert response.rrdp_notification_uri == "https://rpki.example.net/rrdp/notification.xml"
    assert response.tag == "A0001"  # echoed from the publisher's request
    identity = bpki.load_identity(response.identity, "stdout")
    assert identity.ski == signer(scratch).find_key(bpki.identity_label("repository"))
    assert (store(scratch) / "repository.cer").read_bytes() == response.identity
    assert not (store(scratch) / "online.cer").exists()  # the server's identity is not a CA's


def test_repository_response_without_rrdp(scratch: Scratch) -> None:
    result = rpkictl(
        "oob", "repository-response", "bob", str(scratch.repo), "--service-uri", "https://h", "--now", NOW
    )
    assert result.returncode == 0, result.stderr
    assert oob.parse_repository_response(result.stdout.encode(), "stdout").rrdp_notification_uri is None


def test_undeclared_child_creates_nothing(scratch: Scratch) -> None:
    result = rpkictl(
        "oob", "parent-response", "online", "nobody", str(scratch.repo), "--service-uri", "https://h"
    )
    assert result.returncode == 1
    assert "CA 'online' declares no external child 'nobody' (its children: acme)" in result.stderr
    assert "Traceback" not in result.stderr and result.stdout == ""
    assert not store(scratch).exists() and not (scratch.root / "keys").exists()


def test_no_service_uri_is_an_error(scratch: Scratch) -> None:
    result = rpkictl("oob", "repository-response", "bob", str(scratch.repo))
    assert result.returncode == 1
    assert "no service URI: pass --service-uri" in result.stderr
    assert not store(scratch).exists()


def test_unknown_ca(scratch: Scratch) -> None:
    result = rpkictl("oob", "child-request", "nope", str(scratch.repo))
    assert result.returncode == 1
    assert "no CA named 'nope'" in result.stderr and "online" in result.stderr


def test_broken_request_file_stops_every_oob_command(scratch: Scratch) -> None:
    (scratch.repo / "requests" / "acme-child.xml").write_text("<child_request/>")
    result = rpkictl("oob", "child-request", "online", str(scratch.repo))
    assert result.returncode == 1
    assert "cas/online.yaml:10:14: children[0].request: requests/acme-child.xml" in result.stderr
    assert not store(scratch).exists()


def test_a_new_ca_prints_its_requests_from_rpki_yaml_alone(tmp_path: Path) -> None:
    """Before a CA under a registry can be declared (its CA file names the registry's answers), its
    requests come from rpki.yaml alone: the identity key in the named signer, the same identity in
    both requests, and the same again next time."""
    repo = tmp_path / "state"
    (repo / "cas").mkdir(parents=True)
    (repo / "rpki.yaml").write_text(
        "publication:\n  directory: ../published\nsigners:\n  default: {type: file, directory: ../keys}\n"
    )
    child = rpkictl("oob", "child-request", "acme", str(repo), "--signer", "default", "--now", NOW)
    assert child.returncode == 0, child.stderr
    request = oob.parse_child_request(child.stdout.encode(), "child_request")
    assert request.child_handle == "acme"
    publisher = rpkictl("oob", "publisher-request", "acme", str(repo), "--signer", "default", "--now", NOW)
    assert publisher.returncode == 0, publisher.stderr
    assert (
        oob.parse_publisher_request(publisher.stdout.encode(), "publisher_request").identity
        == request.identity
    )
    key = FileSigner(tmp_path / "keys").find_key(bpki.identity_label("acme"))
    assert key is not None
    assert (tmp_path / "published" / "bpki" / "acme.cer").read_bytes() == request.identity
    again = rpkictl("oob", "child-request", "acme", str(repo), "--signer", "default", "--now", NOW)
    assert oob.parse_child_request(again.stdout.encode(), "again").identity == request.identity
    bad = rpkictl("oob", "child-request", "ac_me", str(repo), "--signer", "default")
    assert bad.returncode == 1 and "'ac_me' is not a usable CA name" in bad.stderr
    unknown = rpkictl("oob", "child-request", "acme", str(repo), "--signer", "hsm")
    assert (
        unknown.returncode == 1 and "rpki.yaml has no signer 'hsm' (its signers: default)" in unknown.stderr
    )
