"""External children (a CA file's ``children``) and publishers (rpki.yaml's ``publishers``): the real
RFC 8183 requests that Krill and rpkid write load into the model, and every mistake is reported at the
YAML entry with the request file named and the fix said."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from reconciler import layout
from reconciler.desired.model import PublisherQuota
from reconciler.protocol import bpki
from reconciler.resources import Resources

from .helpers import Repo, expect

PROTOCOLS = Path(__file__).resolve().parent.parent / "fixtures" / "real-world" / "protocols"
KRILL_CHILD = PROTOCOLS / "krill" / "oob" / "apnic" / "child_request.xml"  # Krill's, as sent to APNIC
RPKID_CHILD = PROTOCOLS / "rpki-rs" / "rfc8183" / "rpkid-child-id.xml"  # rpkid's "Carol"
KRILL_PUBLISHER = PROTOCOLS / "krill" / "oob" / "apnic" / "publisher_request.xml"
RPKID_PUBLISHER = PROTOCOLS / "rpki-rs" / "rfc8183" / "rpkid-publisher-request.xml"  # tag="A0001"
UNICODE_SPACE = PROTOCOLS / "krill" / "testbed" / "child_request_with_unicode_space_char.xml"

CHILDREN = """\
children:
  - handle: krill-child
    request: requests/krill-child.xml
    resources: {asn: [AS64500], ipv4: [192.0.2.0/25]}
  - handle: carol
    request: requests/carol.xml
    resources:
      ipv4: [198.51.100.0/24]
      ipv6: ["2001:db8:100::/48"]
    comment: rpkid test child
"""

PUBLISHERS = """\
publishers:
  - handle: krill-pub
    request: requests/krill-pub.xml
  - handle: bob
    request: requests/bob.xml
    quota: {objects: 500, size: 5 MB}
    comment: rpkid
serve:
  base_uri: https://ca.example.net/rpki/
"""


def copy_request(repo: Repo, source: Path, relative: str) -> Path:
    target = repo.root / relative
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, target)
    return target


@pytest.fixture
def peers(repo: Repo) -> Repo:
    """The small repository with two external children of 'online' and two publishers, all valid."""
    copy_request(repo, KRILL_CHILD, "requests/krill-child.xml")
    copy_request(repo, RPKID_CHILD, "requests/carol.xml")
    copy_request(repo, KRILL_PUBLISHER, "requests/krill-pub.xml")
    copy_request(repo, RPKID_PUBLISHER, "requests/bob.xml")
    online = (repo.root / "cas/online.yaml").read_text()
    repo.write("cas/online.yaml", online + CHILDREN)
    settings = (repo.root / "rpki.yaml").read_text()
    repo.write("rpki.yaml", settings + PUBLISHERS)
    return repo


# --- the happy path -------------------------------------------------------------------------------------


def test_children_load_with_their_requests_and_resources(peers: Repo) -> None:
    desired = peers.load()
    online = desired.ca("online")
    assert [c.handle for c in online.children] == ["krill-child", "carol"]
    krill, carol = online.children
    assert krill.request.child_handle == "rand"  # what Krill asked for; the handle is ours to choose
    assert carol.request.child_handle == "Carol"
    assert krill.resources == Resources.parse(["AS64500"], ["192.0.2.0/25"], [])
    assert carol.resources == Resources.parse([], ["198.51.100.0/24"], ["2001:db8:100::/48"])
    assert carol.comment == "rpkid test child" and krill.comment is None
    assert krill.request_file == peers.root / "requests/krill-child.xml"
    assert krill.where is not None
    assert (krill.where.file, krill.where.line) == (peers.root / "cas/online.yaml", 8)
    assert carol.where is not None and carol.where.line == 11
    # The identity is the certificate inside the request, loaded.
    expected = bpki.load_identity(krill.request.identity, "test")
    assert krill.identity.ski == expected.ski and krill.identity.der == krill.request.identity
    assert desired.external_child("carol") == (online, carol)
    assert desired.external_child("online") is None
    assert desired.ca("ta").children == ()
    assert len({online, desired.ca("ta")}) == 2  # intents stay hashable with children


def test_publishers_load_with_sia_base_quota_and_serve(peers: Repo) -> None:
    desired = peers.load()
    krill, bob = desired.publishers
    assert (krill.handle, bob.handle) == ("krill-pub", "bob")
    assert bob.request.publisher_handle == "Bob" and bob.request.tag == "A0001"
    assert krill.sia_base == "rsync://rpki.example.net/repo/publishers/krill-pub/"
    assert bob.sia_base == "rsync://rpki.example.net/repo/" + layout.publisher_repository("bob")
    assert krill.quota == PublisherQuota(objects=10_000, size=100 * 1024 * 1024)
    assert bob.quota == PublisherQuota(objects=500, size=5_000_000)
    assert bob.where is not None and (bob.where.file.name, bob.where.line) == ("rpki.yaml", 11)
    assert desired.publisher("bob") is bob and desired.publisher("nobody") is None
    assert desired.serve.base_uri == "https://ca.example.net/rpki"  # the trailing "/" is dropped
    assert desired.serve.signer == "default"
    assert len(set(desired.publishers)) == 2


def test_request_files_are_part_of_the_digest(peers: Repo) -> None:
    before = peers.load().digest
    copy_request(peers, RPKID_CHILD, "requests/krill-child.xml")  # another child identity, same YAML
    assert peers.load().digest != before


def test_a_repository_without_peers_loads_as_before(repo: Repo) -> None:
    desired = repo.load()
    assert desired.publishers == ()
    assert all(ca.children == () for ca in desired.cas)
    assert desired.serve.base_uri is None


def test_a_request_reached_through_a_link_inside_the_repository_is_read(peers: Repo) -> None:
    (peers.root / "requests/alias.xml").symlink_to(peers.root / "requests/carol.xml")
    peers.write(
        "cas/online.yaml", (peers.root / "cas/online.yaml").read_text().replace("carol.xml", "alias.xml")
    )
    carol = peers.load().ca("online").children[1]
    assert carol.request_file == peers.root / "requests/carol.xml"


# --- request files --------------------------------------------------------------------------------------


def test_missing_request_file(peers: Repo) -> None:
    (peers.root / "requests/carol.xml").unlink()
    problem = peers.error()
    expect(
        problem, peers, "cas/online.yaml", 12, 14, "children[1].request: requests/carol.xml does not exist"
    )
    assert problem.hint is not None and "commit the child_request" in problem.hint


def test_request_outside_the_repository_through_a_directory_link(peers: Repo, tmp_path: Path) -> None:
    outside = tmp_path / "elsewhere"
    shutil.move(peers.root / "requests", outside)
    (peers.root / "requests").symlink_to(outside)
    problems = peers.errors()
    assert {(p.file.name, p.line) for p in problems} == {
        ("online.yaml", 9),
        ("online.yaml", 12),
        ("rpki.yaml", 10),
        ("rpki.yaml", 12),
    }
    assert all("lies outside the desired-state repository" in p.message for p in problems)


def test_request_outside_the_repository_through_dot_dot(peers: Repo, tmp_path: Path) -> None:
    shutil.copyfile(RPKID_CHILD, tmp_path / "carol.xml")
    peers.write(
        "cas/online.yaml",
        (peers.root / "cas/online.yaml").read_text().replace("requests/carol.xml", "../carol.xml"),
    )
    problem = peers.error()
    expect(
        problem, peers, "cas/online.yaml", 12, 14, "../carol.xml lies outside the desired-state repository"
    )


def test_absolute_request_path_is_refused(peers: Repo) -> None:
    absolute = peers.root / "requests/carol.xml"
    peers.write(
        "cas/online.yaml",
        (peers.root / "cas/online.yaml").read_text().replace("requests/carol.xml", str(absolute)),
    )
    problem = peers.error()
    expect(problem, peers, "cas/online.yaml", 12, 14, "is not relative to the desired-state directory")


def test_request_that_is_a_directory(peers: Repo) -> None:
    (peers.root / "requests/carol.xml").unlink()
    (peers.root / "requests/carol.xml").mkdir()
    expect(peers.error(), peers, "cas/online.yaml", 12, 14, "requests/carol.xml is not a regular file")


def test_request_with_a_zero_width_space_names_the_file(peers: Repo) -> None:
    copy_request(peers, UNICODE_SPACE, "requests/carol.xml")
    problem = peers.error()
    expect(problem, peers, "cas/online.yaml", 12, 14, "children[1].request: requests/carol.xml")
    assert "ZERO WIDTH SPACE" in problem.message.upper()
    assert (
        problem.hint is not None
        and "ask the child's operator for a new RFC 8183 child_request" in problem.hint
    )


def test_publisher_request_given_as_a_child_request(peers: Repo) -> None:
    copy_request(peers, RPKID_PUBLISHER, "requests/carol.xml")
    problem = peers.error()
    expect(problem, peers, "cas/online.yaml", 12, 14, "requests/carol.xml")
    assert "child_request" in problem.message


def test_child_request_given_as_a_publisher_request(peers: Repo) -> None:
    copy_request(peers, RPKID_CHILD, "requests/bob.xml")
    problem = peers.error()
    expect(problem, peers, "rpki.yaml", 12, 14, "publishers[1].request: requests/bob.xml")
    assert "publisher_request" in problem.message


def test_garbage_request(peers: Repo) -> None:
    (peers.root / "requests/krill-pub.xml").write_bytes(b"not xml at all")
    expect(peers.error(), peers, "rpki.yaml", 10, 14, "requests/krill-pub.xml: not well-formed XML")


# --- handles --------------------------------------------------------------------------------------------


def test_child_handle_used_twice_across_files(peers: Repo) -> None:
    copy_request(peers, RPKID_CHILD, "requests/other.xml")
    peers.write(
        "cas/other.yaml",
        """\
        name: other
        parent: ta
        resources: {asn: [AS65000]}
        children:
          - handle: carol
            request: requests/other.xml
            resources: {asn: [AS65000]}
        """,
    )
    problem = peers.error()
    expect(problem, peers, "cas/other.yaml", 5, 13, "child handle 'carol' is also used in")
    assert "online.yaml:11:13" in problem.message


def test_child_handle_that_is_a_ca_name(peers: Repo) -> None:
    peers.write(
        "cas/online.yaml", (peers.root / "cas/online.yaml").read_text().replace("handle: carol", "handle: ta")
    )
    problem = peers.error()
    expect(problem, peers, "cas/online.yaml", 11, 13, "child handle 'ta' is the name of CA 'ta'")
    assert problem.hint is not None and "choose another handle" in problem.hint


def test_child_handle_syntax(peers: Repo) -> None:
    peers.write(
        "cas/online.yaml",
        (peers.root / "cas/online.yaml").read_text().replace("handle: carol", "handle: carol_2"),
    )
    problem = peers.error()
    expect(problem, peers, "cas/online.yaml", 11, 13, "'carol_2' is not a usable handle")


def test_publisher_handle_used_twice(peers: Repo) -> None:
    peers.write(
        "rpki.yaml", (peers.root / "rpki.yaml").read_text().replace("handle: bob", "handle: krill-pub")
    )
    expect(peers.error(), peers, "rpki.yaml", 11, 13, "publisher handle 'krill-pub' is also used at line 9")


def test_a_ca_named_publishers_while_publishers_are_declared(peers: Repo) -> None:
    peers.write("cas/publishers.yaml", "name: publishers\nparent: ta\nresources: {asn: [AS65001]}\n")
    problem = peers.error()
    expect(problem, peers, "cas/publishers.yaml", 1, 7, "the CA name 'publishers' is reserved")
    assert problem.hint is not None and "<rsync_base>publishers/" in problem.hint


def test_a_ca_named_publishers_is_refused_even_without_publishers(repo: Repo) -> None:
    """Every reading of the publication treats ``publishers/`` as the publishers' (a removed publisher's
    objects stay there until an approved apply withdraws them), declared or not."""
    repo.write("cas/publishers.yaml", "name: publishers\nparent: ta\nresources: {asn: [AS65001]}\n")
    assert "rename this CA" in str(repo.error())


# --- resources, signers, values -------------------------------------------------------------------------


def test_child_resources_outside_the_ca(peers: Repo) -> None:
    peers.write(
        "cas/online.yaml",
        (peers.root / "cas/online.yaml")
        .read_text()
        .replace("ipv4: [198.51.100.0/24]", "ipv4: [198.51.0.0/16]"),
    )
    problem = peers.error()
    expect(
        problem,
        peers,
        "cas/online.yaml",
        14,
        14,
        "is not held by CA 'online', the parent of external child 'carol'",
    )
    assert "part of 198.51.0.0/16" in problem.message


def test_child_without_resources(peers: Repo) -> None:
    text = (peers.root / "cas/online.yaml").read_text()
    peers.write(
        "cas/online.yaml", text.replace("resources: {asn: [AS64500], ipv4: [192.0.2.0/25]}", "resources: {}")
    )
    expect(
        peers.error(),
        peers,
        "cas/online.yaml",
        10,
        5,
        "external child 'krill-child' is entitled to no resources",
    )


def test_child_without_resources_key(peers: Repo) -> None:
    text = (peers.root / "cas/online.yaml").read_text()
    peers.write(
        "cas/online.yaml", text.replace("    resources: {asn: [AS64500], ipv4: [192.0.2.0/25]}\n", "")
    )
    expect(peers.error(), peers, "cas/online.yaml", 8, 5, "missing required key 'resources' in children[0]")


def test_children_of_a_ca_with_an_offline_signer(peers: Repo) -> None:
    settings = (peers.root / "rpki.yaml").read_text()
    peers.write(
        "rpki.yaml",
        settings.replace("signers:\n", "signers:\n  vault:\n    type: offline\n    key_signer: default\n"),
    )
    text = (peers.root / "cas/online.yaml").read_text()
    peers.write("cas/online.yaml", text.replace("parent: ta\n", "parent: ta\nsigner: vault\n"))
    messages = [p.message for p in peers.errors()]
    assert any("uses the offline signer 'vault' and cannot answer external children" in m for m in messages)


def test_serve_signer_must_exist_when_publishers_are_declared(peers: Repo) -> None:
    settings = (peers.root / "rpki.yaml").read_text()
    peers.write("rpki.yaml", settings + "  signer: hsm\n")
    problem = peers.error()
    expect(problem, peers, "rpki.yaml", 17, 11, "the publication server's identity key needs signer 'hsm'")


def test_quota_size_syntax(peers: Repo) -> None:
    peers.write("rpki.yaml", (peers.root / "rpki.yaml").read_text().replace("size: 5 MB", "size: 5 MiBs"))
    expect(peers.error(), peers, "rpki.yaml", 13, 33, "publishers[1].quota.size: '5 MiBs' is not a size")


@pytest.mark.parametrize(
    ("written", "size"),
    [("100 MiB", 100 << 20), ("2GB", 2_000_000_000), ("1 TiB", 1 << 40), ("4096", 4096), ("12 kB", 12_000)],
)
def test_quota_sizes(peers: Repo, written: str, size: int) -> None:
    peers.write("rpki.yaml", (peers.root / "rpki.yaml").read_text().replace("size: 5 MB", f"size: {written}"))
    assert peers.load().publishers[1].quota.size == size


def test_quota_size_too_large(peers: Repo) -> None:
    peers.write("rpki.yaml", (peers.root / "rpki.yaml").read_text().replace("size: 5 MB", "size: 2 TiB"))
    expect(peers.error(), peers, "rpki.yaml", 13, 33, "out of range")


def test_serve_base_uri_must_be_http(peers: Repo) -> None:
    text = (peers.root / "rpki.yaml").read_text()
    peers.write("rpki.yaml", text.replace("https://ca.example.net/rpki/", "rsync://ca.example.net/rpki/"))
    expect(peers.error(), peers, "rpki.yaml", 16, 13, "is not an http(s) URI")


def test_serve_base_uri_without_query(peers: Repo) -> None:
    text = (peers.root / "rpki.yaml").read_text()
    peers.write("rpki.yaml", text.replace("https://ca.example.net/rpki/", "https://ca.example.net/rpki?x=1"))
    expect(peers.error(), peers, "rpki.yaml", 16, 13, "without '?', '#' or spaces")


def test_children_load_the_same_from_the_parse_cache(peers: Repo) -> None:
    """The second load takes the CA file from the parse cache; the children and their places are the
    same, and a changed request file is still read afresh."""
    peers.cache_key = lambda _: b"k" * 32
    (peers.root.parent / "published").mkdir()
    first = peers.load()
    second = peers.load()
    assert second == first
    assert [c.where for c in second.ca("online").children] == [c.where for c in first.ca("online").children]
    copy_request(peers, KRILL_CHILD, "requests/carol.xml")
    third = peers.load()
    assert third.ca("online").children[1].request.child_handle == "rand"
    assert third.digest != first.digest
