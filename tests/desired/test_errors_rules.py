"""Bad input that only shows across values or files: trust anchors, parents, containment, ROAs,
signers and timing -- and that all problems in all files come back together."""

from __future__ import annotations

import pytest

from .helpers import RPKI_YAML, Repo, expect

# --- trust anchors and parents --------------------------------------------------------------------------


def test_two_trust_anchors_error_at_the_second(repo: Repo) -> None:
    repo.write("cas/zz.yaml", "name: zz\ntrust_anchor: true\nresources: {asn: [1]}\n")
    problem = repo.error()
    expect(problem, repo, "cas/zz.yaml", 2, 15, "CA 'zz' is a second trust anchor; 'ta'")
    assert "exactly one" in str(problem.hint)


def test_no_trust_anchor(repo: Repo) -> None:
    repo.write(
        "cas/ta.yaml", "name: ta\nresources: {asn: [0-4294967295], ipv4: [0.0.0.0/0], ipv6: ['::/0']}\n"
    )
    no_ta, no_parent = repo.errors()
    expect(no_ta, repo, "cas", 1, 1, "no CA is the trust anchor")
    assert "trust_anchor: true" in str(no_ta.hint)
    expect(no_parent, repo, "cas/ta.yaml", 1, 1, "CA 'ta' has no parent")


def test_trust_anchor_false_is_not_a_trust_anchor(repo: Repo) -> None:
    repo.write("cas/ta.yaml", "name: ta\ntrust_anchor: false\nparent: online\nresources: {asn: [1]}\n")
    found = repo.errors()
    assert "no CA is the trust anchor" in found[0].message


def test_trust_anchor_with_parent(repo: Repo) -> None:
    repo.write(
        "cas/ta.yaml",
        """\
        name: ta
        trust_anchor: true
        parent: online
        resources: {asn: ["0-4294967295"], ipv4: [0.0.0.0/0], ipv6: ["::/0"]}
        """,
    )
    problem = repo.error()
    expect(problem, repo, "cas/ta.yaml", 3, 9, "trust anchor 'ta' cannot have a parent")
    assert "remove 'parent: online'" in str(problem.hint)


def test_ca_without_parent(repo: Repo) -> None:
    repo.write("cas/x.yaml", "# an orphan\nname: x\nresources: {asn: [1]}\n")
    problem = repo.error()
    expect(problem, repo, "cas/x.yaml", 2, 1, "CA 'x' has no parent")
    assert "add 'parent:" in str(problem.hint)


def test_unknown_parent(repo: Repo) -> None:
    repo.write("cas/x.yaml", "name: x\nparent: onlin\nresources: {asn: [64496]}\n")
    problem = repo.error()
    expect(problem, repo, "cas/x.yaml", 2, 9, "parent 'onlin' of CA 'x' is not defined")
    assert problem.hint == "did you mean 'online'? known CAs: online, ta, x"


def test_parent_cycle_names_the_cycle(repo: Repo) -> None:
    repo.write("cas/a.yaml", "name: a\nparent: b\nresources: {asn: [1]}\n")
    repo.write("cas/b.yaml", "name: b\nparent: c\nresources: {asn: [1]}\n")
    repo.write("cas/c.yaml", "name: c\nparent: a\nresources: {asn: [1]}\n")
    a, b, c = repo.errors()
    expect(a, repo, "cas/a.yaml", 2, 9, "CA 'a' is its own ancestor: a -> b -> c -> a")
    expect(b, repo, "cas/b.yaml", 2, 9, "b -> c -> a -> b")
    expect(c, repo, "cas/c.yaml", 2, 9, "c -> a -> b -> c")


def test_ca_that_is_its_own_parent(repo: Repo) -> None:
    repo.write("cas/x.yaml", "name: x\nparent: x\nresources: {asn: [1]}\n")
    expect(repo.error(), repo, "cas/x.yaml", 2, 9, "CA 'x' names itself as its parent")


def test_child_below_a_cycle_gets_no_extra_error(repo: Repo) -> None:
    repo.write("cas/a.yaml", "name: a\nparent: b\nresources: {asn: [1]}\n")
    repo.write("cas/b.yaml", "name: b\nparent: a\nresources: {asn: [1]}\n")
    repo.write("cas/c.yaml", "name: c\nparent: a\nresources: {asn: [1]}\n")
    assert [d.file.name for d in repo.errors()] == ["a.yaml", "b.yaml"]


def test_duplicate_ca_names_point_at_both_files(repo: Repo) -> None:
    repo.write("cas/members/copy.yaml", "name: online\nparent: ta\nresources: {asn: [1]}\n")
    first, second = repo.errors()
    expect(first, repo, "cas/members/copy.yaml", 1, 7, "CA name 'online' is also used in")
    assert "online.yaml:1:1" in first.message
    expect(second, repo, "cas/online.yaml", 1, 7, "CA name 'online' is also used in")
    assert "copy.yaml:1:1" in second.message


# --- resources ------------------------------------------------------------------------------------------


def test_child_overclaims_parent_resources(repo: Repo) -> None:
    repo.write(
        "cas/x.yaml",
        """\
        name: x
        parent: online
        resources:
          asn: [AS64496, AS64512]
          ipv4: [192.0.2.0/23]
          ipv6: ["2001:db8::/32", "2001:db9::/48"]
        """,
    )
    asn, ipv4, ipv6 = repo.errors()
    expect(asn, repo, "cas/x.yaml", 4, 18, "AS64512 is not held by parent CA 'online'")
    expect(ipv4, repo, "cas/x.yaml", 5, 10, "192.0.3.0/24 (part of 192.0.2.0/23) is not held by parent CA")
    expect(ipv6, repo, "cas/x.yaml", 6, 27, "2001:db9::/48 is not held by parent CA 'online'")
    assert "add it to 'online' in" in str(asn.hint)


def test_overclaim_by_an_address_range(repo: Repo) -> None:
    repo.write("cas/x.yaml", "name: x\nparent: online\nresources:\n  ipv4: [192.0.2.128-192.0.3.5]\n")
    expect(repo.error(), repo, "cas/x.yaml", 4, 10, "192.0.3.0-192.0.3.5 (part of 192.0.2.128-192.0.3.5)")


def test_overclaim_against_grandparent_is_checked_one_level_at_a_time(repo: Repo) -> None:
    repo.write("cas/x.yaml", "name: x\nparent: online\nresources: {asn: [AS64496]}\n")
    repo.write("cas/y.yaml", "name: y\nparent: x\nresources: {asn: [AS64497]}\n")
    expect(repo.error(), repo, "cas/y.yaml", 3, 19, "AS64497 is not held by parent CA 'x'")


@pytest.mark.parametrize("resources", ["{}", "{asn: [], ipv4: [], ipv6: []}"])
def test_trust_anchor_must_hold_resources(repo: Repo, resources: str) -> None:
    repo.remove("cas/online.yaml")
    repo.write("cas/ta.yaml", f"name: ta\ntrust_anchor: true\nresources: {resources}\n")
    problem = repo.error()
    expect(problem, repo, "cas/ta.yaml", 3, 1, "CA 'ta' holds no resources")
    assert '"0-4294967295"' in str(problem.hint)


def test_other_cas_must_hold_resources_too(repo: Repo) -> None:
    repo.write("cas/x.yaml", "name: x\nparent: online\nresources: {}\n")
    expect(repo.error(), repo, "cas/x.yaml", 3, 1, "CA 'x' holds no resources")


# --- ROAs -----------------------------------------------------------------------------------------------

ROA_CA = """\
name: x
parent: online
resources:
  ipv4: [192.0.2.0/24]
  ipv6: ["2001:db8::/32"]
roas:
  - {roa}
"""


def _roa(repo: Repo, roa: str) -> None:
    repo.write("cas/x.yaml", ROA_CA.replace("{roa}", roa))


def test_max_length_shorter_than_prefix(repo: Repo) -> None:
    _roa(repo, "{asn: 1, prefix: 192.0.2.0/24, max_length: 23}")
    problem = repo.error()
    expect(problem, repo, "cas/x.yaml", 7, 48, "max_length 23 is shorter than the prefix length")
    assert problem.hint == "use 24 to 32, or leave max_length out to mean 24"


def test_max_length_longer_than_ipv4(repo: Repo) -> None:
    _roa(repo, "{asn: 1, prefix: 192.0.2.0/24, max_length: 33}")
    problem = repo.error()
    expect(problem, repo, "cas/x.yaml", 7, 48, "max_length 33 is longer than an IPv4 prefix can be")
    assert problem.hint == "use 24 to 32"


def test_max_length_longer_than_ipv6(repo: Repo) -> None:
    _roa(repo, '{asn: 1, prefix: "2001:db8::/32", max_length: 129}')
    expect(repo.error(), repo, "cas/x.yaml", 7, 51, "longer than an IPv6 prefix can be")


def test_roa_prefix_outside_ca(repo: Repo) -> None:
    _roa(repo, "{asn: 1, prefix: 198.51.100.0/24}")
    problem = repo.error()
    expect(problem, repo, "cas/x.yaml", 7, 22, "ROA prefix 198.51.100.0/24 is not held by CA 'x'")
    assert problem.hint is not None and "192.0.2.0/24" in problem.hint


def test_roa_prefix_partly_outside_ca(repo: Repo) -> None:
    _roa(repo, "{asn: 1, prefix: 192.0.2.0/23}")
    expect(
        repo.error(), repo, "cas/x.yaml", 7, 22, "ROA prefix 192.0.2.0/23 (192.0.3.0/24 of it) is not held"
    )


def test_roa_ipv6_prefix_outside_ca(repo: Repo) -> None:
    _roa(repo, '{asn: 1, prefix: "2001:db9::/32"}')
    problem = repo.error()
    expect(problem, repo, "cas/x.yaml", 7, 22, "ROA prefix 2001:db9::/32 is not held")
    assert "IPv6 resources are: 2001:db8::/32" in str(problem.hint)


def test_duplicate_roa(repo: Repo) -> None:
    repo.write(
        "cas/x.yaml",
        """\
        name: x
        parent: online
        resources:
          ipv4: [192.0.2.0/24]
        roas:
          - {asn: 1, prefix: 192.0.2.0/24}
          - {asn: 2, prefix: 192.0.2.0/24}
          - {asn: 1, prefix: 192.0.2.0/25}
          - {asn: AS1, prefix: 192.0.2.0/24, max_length: 25}
        """,
    )
    problem = repo.error()
    expect(problem, repo, "cas/x.yaml", 9, 5, "duplicate ROA for AS1 192.0.2.0/24 (first at line 6)")
    assert problem.hint == "keep one entry, with the larger max_length"


def test_same_roa_in_two_cas_is_fine(repo: Repo) -> None:
    roa = "roas: [{asn: 1, prefix: 192.0.2.0/24}]\n"
    repo.write("cas/online.yaml", (repo.root / "cas/online.yaml").read_text() + roa)
    repo.write("cas/x.yaml", "name: x\nparent: online\nresources: {ipv4: [192.0.2.0/24]}\n" + roa)
    state = repo.load()
    assert state.ca("x").roas[0].vrp == state.ca("online").roas[0].vrp


# --- signers --------------------------------------------------------------------------------------------


def test_unknown_signer(repo: Repo) -> None:
    repo.write("cas/x.yaml", "name: x\nparent: ta\nsigner: hsm\nresources: {asn: [1]}\n")
    problem = repo.error()
    expect(problem, repo, "cas/x.yaml", 3, 9, "signer 'hsm' is not defined in rpki.yaml")
    assert problem.hint is not None and problem.hint.endswith("rpki.yaml: default")


def test_default_signer_missing(repo: Repo) -> None:
    repo.write("rpki.yaml", RPKI_YAML.replace("  default:", "  soft:"))
    online, ta = repo.errors()
    expect(online, repo, "cas/online.yaml", 1, 1, "uses signer 'default' (the default)")
    expect(ta, repo, "cas/ta.yaml", 1, 1, "which rpki.yaml does not define")
    assert "soft" in str(ta.hint)


def test_signer_keys_inside_the_desired_state_directory(repo: Repo) -> None:
    repo.write("rpki.yaml", RPKI_YAML.replace("directory: ../keys", "directory: ./keys"))
    problem = repo.error()
    expect(problem, repo, "rpki.yaml", 7, 16, "keeps private keys inside the desired-state directory")


# --- timing ---------------------------------------------------------------------------------------------


def test_renew_before_not_shorter_than_default_validity(repo: Repo) -> None:
    repo.write("rpki.yaml", RPKI_YAML + "timing:\n  manifest_validity: 6h\n")
    expect(
        repo.error(),
        repo,
        "rpki.yaml",
        9,
        22,
        "manifest_renew_before (8h, the default) must be shorter than manifest_validity (6h)",
    )


def test_renew_before_equal_to_validity(repo: Repo) -> None:
    repo.write(
        "rpki.yaml", RPKI_YAML + "timing:\n  certificate_validity: 4w\n  certificate_renew_before: 28d\n"
    )
    expect(
        repo.error(),
        repo,
        "rpki.yaml",
        10,
        29,
        "certificate_renew_before (4w) must be shorter than certificate_validity (4w)",
    )


def test_ta_timing(repo: Repo) -> None:
    repo.write("rpki.yaml", RPKI_YAML + "timing:\n  ta_certificate_renew_before: 300w\n")
    expect(repo.error(), repo, "rpki.yaml", 9, 32, "ta_certificate_renew_before (300w)")


# --- collecting -----------------------------------------------------------------------------------------


def test_all_problems_in_all_files_are_reported_together(repo: Repo) -> None:
    repo.write("rpki.yaml", RPKI_YAML.replace("/repo/", "/repo"))
    repo.write("cas/online.yaml", (repo.root / "cas/online.yaml").read_text() + "colour: blue\n")
    repo.write("cas/broken.yaml", "name: broken\nparent: [ta\n")
    repo.write(
        "cas/members/isp.yaml",
        """\
        name: isp
        parent: online
        resources: {asn: [AS64496, AS1]}
        roas:
          - {asn: 1, prefix: 10.0.0.0/8}
        """,
    )
    repo.write("cas/z.yaml", "name: z\nparent: ghost\nresources: {asn: [1]}\n")
    found = [(d.file.relative_to(repo.root).as_posix(), d.line, d.column) for d in repo.errors()]
    assert found == [
        ("cas/broken.yaml", 3, 1),  # YAML syntax
        ("cas/members/isp.yaml", 5, 22),  # ROA outside the CA (the overclaim needs a loaded parent)
        ("cas/online.yaml", 7, 1),  # unknown key
        ("cas/z.yaml", 2, 9),  # unknown parent
        ("rpki.yaml", 2, 15),  # no trailing slash
    ]


def test_broken_files_do_not_cause_follow_on_errors(repo: Repo) -> None:
    repo.write("cas/ta.yaml", "name: ta\ntrust_anchor: yes\nresources: {asn: [0-4294967295]}\n")
    repo.write("cas/online.yaml", "name: online\nparent: ta\nresources: {asn: [AS64496]}\nextra: 1\n")
    repo.write("cas/x.yaml", "name: x\nparent: online\nresources: {asn: [AS64496]}\n")
    found = [(d.file.name, d.line) for d in repo.errors()]
    assert found == [("online.yaml", 4), ("ta.yaml", 2)]


def test_broken_rpki_yaml_does_not_cause_signer_errors(repo: Repo) -> None:
    repo.write("rpki.yaml", "publication: {}\nsigners: {}\n")
    repo.write("cas/x.yaml", "name: x\nparent: ta\nsigner: hsm\nresources: {asn: [1]}\n")
    assert {d.file.name for d in repo.errors()} == {"rpki.yaml"}
