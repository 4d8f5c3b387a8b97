"""ASPAs in a CA file (``aspas:``): what loads into :class:`AspaIntent`, each rule of the profile broken
at the line that breaks it, and the ``aspa_removal_threshold`` approval setting."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from reconciler.desired import DesiredState, DesiredStateError
from reconciler.desired.model import AspaIntent, SafetyPolicy
from reconciler.rpki import aspa

from .helpers import ONLINE_YAML, RPKI_YAML, TA_YAML, Repo, expect

#: A CA holding three AS numbers; the ``aspas:`` a test appends start on line 8, its first entry on 9.
MEMBER = """\
name: member
parent: online
resources:
  asn: ["AS64500-AS64502"]
  ipv4: [192.0.2.0/25]
roas:
  - {asn: AS64500, prefix: 192.0.2.0/26}
"""
FIRST = len(MEMBER.splitlines()) + 2


def with_aspas(repo: Repo, aspas: str) -> None:
    """cas/member.yaml with ``aspas:`` and the entries given (indented along with the code)."""
    repo.write("cas/member.yaml", MEMBER + "aspas:\n" + textwrap.indent(textwrap.dedent(aspas), "  "))


def _errors(repo: Repo) -> list[tuple[int, int, str]]:
    with pytest.raises(DesiredStateError) as info:
        repo.load()
    return [(d.line, d.column, f"{d.message} ({d.hint})") for d in info.value.diagnostics]


# --- what loads -----------------------------------------------------------------------------------------


VALID = """\
- customer: AS64502
  providers: [AS65002, 65001]
  comment: transit through two upstreams
- customer: 64500
  providers: [AS0]
"""


def _check_valid(state: DesiredState, repo: Repo) -> None:
    member = state.ca("member")
    assert member.aspas == (
        AspaIntent(customer=64500, providers=(0,)),
        AspaIntent(customer=64502, providers=(65001, 65002), comment="transit through two upstreams"),
    )
    # Sorted by customer, each still pointing at its own entry in the file.
    assert [(a.where.file, a.where.line, a.where.column) for a in member.aspas if a.where] == [
        (repo.root / "cas/member.yaml", FIRST + 3, 5),
        (repo.root / "cas/member.yaml", FIRST, 5),
    ]
    assert [roa.where.line for roa in member.roas if roa.where] == [7]


def test_a_valid_file_loads_sorted_aspas(repo: Repo) -> None:
    with_aspas(repo, VALID)
    _check_valid(repo.load(), repo)


def test_the_parse_cache_gives_the_same_aspas_and_lines(repo: Repo, tmp_path: Path) -> None:
    repo.cache_key = lambda _: b"k" * 32
    (tmp_path / "published").mkdir()
    with_aspas(repo, VALID)
    first = repo.load()
    second = repo.load()  # every CA file from the cache now
    assert second == first
    _check_valid(second, repo)


def test_providers_in_any_order_are_not_an_error(repo: Repo) -> None:
    with_aspas(repo, "- {customer: AS64501, providers: [AS65009, AS65003, AS65005]}\n")
    assert repo.load().ca("member").aspas == (AspaIntent(64501, (65003, 65005, 65009)),)


def test_a_ca_without_aspas_loads_as_before(repo: Repo) -> None:
    repo.write("cas/member.yaml", MEMBER)
    state = repo.load()
    assert [ca.aspas for ca in state.cas] == [(), (), ()]
    assert state.ca("member").roas[0].where is not None


def test_every_intent_passes_the_profile(repo: Repo) -> None:
    """What the checks let through, the encoder takes: the same rules, in ``aspa.problems``."""
    with_aspas(repo, VALID)
    for intent in repo.load().ca("member").aspas:
        assert aspa.problems(intent.customer, intent.providers) == []


# --- each rule, at its line -----------------------------------------------------------------------------


def test_customer_not_held_by_the_ca(repo: Repo) -> None:
    with_aspas(repo, "- customer: AS64999\n  providers: [AS65001]\n")
    problem = repo.error()
    expect(problem, repo, "cas/member.yaml", FIRST, 15, "ASPA customer AS64999 is not held by CA 'member'")
    assert problem.hint == (
        "its AS resources are: AS64500-AS64502; add AS64999 to them, or declare the ASPA in the CA that "
        "holds it"
    )


def test_customer_as0(repo: Repo) -> None:
    with_aspas(repo, "- customer: AS0\n  providers: [AS65001]\n")
    problem = repo.error()
    expect(problem, repo, "cas/member.yaml", FIRST, 15, "AS0 cannot be a customer")
    assert "AS0 alone" in str(problem.hint)


def test_no_providers(repo: Repo) -> None:
    with_aspas(repo, "- customer: AS64500\n  providers: []\n")
    problem = repo.error()
    expect(problem, repo, "cas/member.yaml", FIRST + 1, 16, "the ASPA of AS64500 lists no providers")
    assert problem.hint == "list the ASes it sends its routes up to, or AS0 alone for an AS with no upstream"


def test_a_provider_listed_twice_names_the_first_line(repo: Repo) -> None:
    with_aspas(
        repo,
        """\
        - customer: AS64500
          providers:
            - AS65001
            - AS65002
            - 65001
        """,
    )
    problem = repo.error()
    expect(
        problem,
        repo,
        "cas/member.yaml",
        FIRST + 4,
        9,
        f"provider AS65001 is listed twice in the ASPA of AS64500 (first at line {FIRST + 2})",
    )
    assert problem.hint == "list each provider once"


def test_the_customer_among_its_providers(repo: Repo) -> None:
    with_aspas(repo, "- customer: AS64500\n  providers: [AS65001, AS64500]\n")
    problem = repo.error()
    expect(problem, repo, "cas/member.yaml", FIRST + 1, 26, "the customer AS64500 is listed among its own")
    assert "never the customer" in str(problem.hint)


def test_as0_with_other_providers(repo: Repo) -> None:
    with_aspas(repo, "- customer: AS64500\n  providers: [AS65001, AS0]\n")
    problem = repo.error()
    expect(problem, repo, "cas/member.yaml", FIRST + 1, 26, "AS0 is listed with other providers")
    assert "remove AS0 or the others" in str(problem.hint)


def test_as0_twice_is_only_a_repeat(repo: Repo) -> None:
    with_aspas(repo, "- customer: AS64500\n  providers: [AS0, AS0]\n")
    expect(repo.error(), repo, "cas/member.yaml", FIRST + 1, 22, "provider AS0 is listed twice")


def test_more_providers_than_validators_take(repo: Repo) -> None:
    many = ", ".join(str(65536 + n) for n in range(aspa.MAX_PROVIDERS + 1))
    with_aspas(repo, f"- customer: AS64500\n  providers: [{many}]\n")
    problem = repo.error()
    expect(
        problem,
        repo,
        "cas/member.yaml",
        FIRST + 1,
        16,
        f"lists {aspa.MAX_PROVIDERS + 1} providers, more than the {aspa.MAX_PROVIDERS} every validator takes",
    )


def test_two_entries_for_one_customer(repo: Repo) -> None:
    with_aspas(
        repo,
        """\
        - customer: AS64500
          providers: [AS65001]
        - customer: 64500
          providers: [AS65002]
        """,
    )
    problem = repo.error()
    expect(
        problem,
        repo,
        "cas/member.yaml",
        FIRST + 2,
        15,
        f"a second ASPA for customer AS64500 in CA 'member' (first at line {FIRST})",
    )
    assert problem.hint == "a CA signs one ASPA per customer AS: merge their providers into one entry"


def test_every_problem_of_every_entry_comes_back(repo: Repo) -> None:
    with_aspas(
        repo,
        """\
        - customer: AS64999
          providers: [AS64999, AS0]
        - customer: AS64501
          providers: []
        """,
    )
    assert [(line, column) for line, column, _ in _errors(repo)] == [
        (FIRST, 15),
        (FIRST + 1, 17),
        (FIRST + 1, 26),
        (FIRST + 3, 16),
    ]


def test_a_ca_under_an_external_parent_is_checked_against_its_yaml_resources(repo: Repo) -> None:
    """As for ROAs: the parent certifies what it certifies, the YAML says what the CA expects to hold."""
    repo.write("cas/member.yaml", MEMBER.replace("parent: online", "parent: {response: parents/x.xml}"))
    with_aspas(repo, "- customer: AS64999\n  providers: [AS65001]\n")
    found = _errors(repo)
    assert any(
        (line, column) == (FIRST, 15) and "AS64999 is not held by CA 'member'" in text
        for line, column, text in found
    ), found


@pytest.mark.parametrize(
    ("entry", "column", "phrase"),
    [
        ("- {customer: AS64500, providers: AS65001}", 36, "expected a list"),
        ("- {customer: AS64500}", 5, "missing required key 'providers' in aspas[0]"),
        ("- {customer: AS64500, providers: [AS65001], provider: [AS65002]}", 47, "did you mean 'providers'?"),
        ("- {customer: AS64500, providers: [ASX]}", 37, "'ASX' is not an AS number"),
    ],
)
def test_the_shape_of_an_entry(repo: Repo, entry: str, column: int, phrase: str) -> None:
    with_aspas(repo, entry + "\n")
    expect(repo.error(), repo, "cas/member.yaml", FIRST, column, phrase)


# --- the approval threshold -----------------------------------------------------------------------------


def test_the_threshold_defaults_to_zero(repo: Repo) -> None:
    state = repo.load()
    assert state.safety.aspa_removal_threshold == 0
    assert all(ca.safety.aspa_removal_threshold == 0 for ca in state.cas)


def test_the_threshold_globally_and_per_ca(repo: Repo) -> None:
    repo.write("rpki.yaml", RPKI_YAML + "safety:\n  aspa_removal_threshold: 5\n")
    repo.write("cas/online.yaml", ONLINE_YAML + "safety:\n  aspa_removal_threshold: 2\n")
    state = repo.load()
    assert state.safety == SafetyPolicy(aspa_removal_threshold=5)
    assert state.ca("ta").safety == SafetyPolicy(aspa_removal_threshold=5)
    assert state.ca("online").safety == SafetyPolicy(aspa_removal_threshold=2)


@pytest.mark.parametrize(
    ("value", "phrase"),
    [("-1", "-1 is negative"), ('"3"', "write 3 without quotes"), ("1.5", "a whole number")],
)
def test_a_bad_threshold(repo: Repo, value: str, phrase: str) -> None:
    repo.write("cas/online.yaml", ONLINE_YAML + f"safety:\n  aspa_removal_threshold: {value}\n")
    line = len(ONLINE_YAML.splitlines()) + 2
    expect(repo.error(), repo, "cas/online.yaml", line, 27, phrase)


def test_an_offline_trust_anchor_issues_no_aspas(repo: Repo) -> None:
    repo.write("rpki.yaml", RPKI_YAML + "  vault: {type: offline, key_signer: default}\n")
    repo.write(
        "cas/ta.yaml", TA_YAML + "signer: vault\naspas:\n  - {customer: AS64500, providers: [AS65001]}\n"
    )
    problem = repo.error()
    expect(problem, repo, "cas/ta.yaml", len(TA_YAML.splitlines()) + 2, 1, "an offline trust anchor cannot")
    assert "a CA below the trust anchor" in str(problem.hint)
