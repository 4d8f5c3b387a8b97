"""A CA under an external parent: its CA file names the parent_response and the repository_response a
registry sent (the real ones APNIC, AFRINIC and Krill wrote load), and every mistake in declaring it is
reported at the YAML entry that makes it, with the fix."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from .helpers import Repo, expect

PROTOCOLS = Path(__file__).resolve().parent.parent / "fixtures" / "real-world" / "protocols"
RFC8183 = PROTOCOLS / "rpki-rs" / "rfc8183"
APNIC_PARENT = RFC8183 / "apnic-parent-response.xml"
AFRINIC_PARENT = RFC8183 / "afrinic-parent-response.xml"
KRILL_PARENT = RFC8183 / "krill-0-9-parent-response.xml"  # its identity certificate is not valid DER
APNIC_REPOSITORY = RFC8183 / "apnic-repository-response.xml"  # sia_base without its trailing '/'
ARIN_OLD = PROTOCOLS / "krill" / "remote" / "arin-pre-rfc8183-parent-response.xml"

SETTINGS = """\
publication:
  directory: ../published
signers:
  default: {type: file, directory: ../keys}
"""

ACME = """\
name: acme
parent:
  response: parents/registry.xml
repository:
  response: repositories/registry.xml
resources:
  asn: [AS64500]
  ipv4: [203.0.113.0/24]
roas:
  - {asn: AS64500, prefix: 203.0.113.0/24}
"""


@pytest.fixture
def child(tmp_path: Path) -> Repo:
    repo = Repo(tmp_path / "state")
    repo.write("rpki.yaml", SETTINGS)
    repo.write("cas/acme.yaml", ACME)
    copy(repo, APNIC_PARENT, "parents/registry.xml")
    copy(repo, APNIC_REPOSITORY, "repositories/registry.xml")
    return repo


def copy(repo: Repo, source: Path, relative: str) -> None:
    (repo.root / relative).parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, repo.root / relative)


@pytest.mark.parametrize("response", [APNIC_PARENT, AFRINIC_PARENT, KRILL_PARENT], ids=lambda p: p.stem)
def test_real_parent_responses_load(child: Repo, response: Path) -> None:
    copy(child, response, "parents/registry.xml")
    desired = child.load()
    root = desired.external_root
    assert root is not None and root is desired.trust_anchor and not root.trust_anchor
    assert root.upstream is not None and root.parent is None
    assert root.upstream.response.service_uri.startswith(("http://", "https://"))
    assert root.upstream.response_file == child.root / "parents/registry.xml"
    # the repository's sia_base is the base of every URI; RRDP is the repository's
    remote = desired.publication.remote
    assert remote is not None and remote.owner == "acme"
    assert (
        desired.publication.rsync_base == remote.response.sia_base
        and desired.publication.rsync_base.endswith("/")
    )
    assert desired.publication.rrdp_base is None
    assert desired.publication.notify_uri == remote.response.rrdp_notification_uri


def test_the_response_files_are_part_of_the_digest(child: Repo) -> None:
    before = child.load().digest
    copy(child, AFRINIC_PARENT, "parents/registry.xml")
    assert child.load().digest != before


def test_a_local_ca_below_publishes_at_the_same_repository(child: Repo) -> None:
    child.write("cas/branch.yaml", "name: branch\nparent: acme\nresources: {ipv4: [203.0.113.0/25]}\n")
    desired = child.load()
    assert [ca.name for ca in desired.cas] == ["acme", "branch"]
    assert desired.ca("branch").parent == "acme" and desired.ca("branch").upstream is None


def test_a_missing_response_is_named_with_the_fix(child: Repo) -> None:
    child.remove("parents/registry.xml")
    problem = child.error()
    expect(problem, child, "cas/acme.yaml", 3, 13, "parents/registry.xml does not exist")
    assert problem.hint is not None and "parent (the registry's portal)" in problem.hint


def test_a_pre_rfc8183_file_is_refused_with_what_to_ask_for(child: Repo) -> None:
    copy(child, ARIN_OLD, "parents/registry.xml")
    problem = child.error()
    expect(problem, child, "cas/acme.yaml", 3, 13, "RFC 8183")
    assert problem.hint is not None and "parent_response" in problem.hint


def test_a_request_named_where_a_response_belongs_is_refused(child: Repo) -> None:
    copy(child, PROTOCOLS / "krill" / "oob" / "apnic" / "child_request.xml", "parents/registry.xml")
    problem = child.error()
    expect(problem, child, "cas/acme.yaml", 3, 13, "parent.response")


def test_a_trust_anchor_beside_an_external_parent_is_refused(child: Repo) -> None:
    child.write("cas/ta.yaml", "name: ta\ntrust_anchor: true\nresources: {asn: [AS1]}\n")
    problem = child.error()
    expect(
        problem,
        child,
        "cas/ta.yaml",
        2,
        15,
        "either its own trust anchor or a hierarchy under an external parent",
    )


def test_two_cas_under_external_parents_are_refused(child: Repo) -> None:
    child.write(
        "cas/other.yaml", "name: other\nparent: {response: parents/registry.xml}\nresources: {asn: [AS2]}\n"
    )
    problem = child.error()
    assert (
        problem.file == child.root / "cas/other.yaml"
        and "second CA under an external parent" in problem.message
    )


def test_a_repository_without_an_external_parent_is_refused(child: Repo) -> None:
    child.write(
        "cas/branch.yaml",
        "name: branch\nparent: acme\nrepository: {response: repositories/registry.xml}\n"
        "resources: {ipv4: [203.0.113.0/25]}\n",
    )
    problem = child.error()
    expect(problem, child, "cas/branch.yaml", 3, 13, "names a remote repository but no external parent")


def test_rsync_base_beside_a_remote_repository_is_refused(child: Repo) -> None:
    child.write(
        "rpki.yaml",
        SETTINGS.replace("publication:\n", "publication:\n  rsync_base: rsync://rpki.example.net/repo/\n"),
    )
    problem = child.error()
    expect(problem, child, "rpki.yaml", 2, 15, "remove rsync_base: the repository_response says where")


def test_without_a_remote_repository_rsync_base_is_needed(child: Repo) -> None:
    child.write("cas/acme.yaml", ACME.replace("repository:\n  response: repositories/registry.xml\n", ""))
    problem = child.error()
    expect(problem, child, "rpki.yaml", 1, 1, "publication.rsync_base is missing")


def test_an_offline_signer_is_refused_under_an_external_parent(child: Repo) -> None:
    child.write("rpki.yaml", SETTINGS + "  vault: {type: offline, key_signer: default}\n")
    child.write("cas/acme.yaml", ACME + "signer: vault\n")
    problem = child.error()
    expect(problem, child, "cas/acme.yaml", 11, 9, "a CA under an external parent signs online")


def test_a_mapping_parent_with_a_misspelt_key_lists_the_allowed_keys(child: Repo) -> None:
    child.write(
        "cas/acme.yaml", ACME.replace("  response: parents/registry.xml", "  respons: parents/registry.xml")
    )
    found = child.errors()
    assert any("unknown key 'respons'" in d.message and d.hint and "response" in d.hint for d in found), found


def test_a_key_roll_may_be_declared(child: Repo) -> None:
    child.write("cas/acme.yaml", ACME + "key_generation: 2\n")
    assert child.load().ca("acme").key_generation == 2
