"""The approval settings: ``safety`` (in rpki.yaml and per CA), ``plan_max_age`` and ``audit_log``."""

from __future__ import annotations

import textwrap
from dataclasses import fields
from datetime import timedelta
from pathlib import Path

import pytest

from reconciler.desired.model import SafetyPolicy
from reconciler.desired.schema import json_schema

from .helpers import ONLINE_YAML, RPKI_YAML, Repo, expect

# RPKI_YAML is 7 lines and ONLINE_YAML 6, so what a test appends starts on line 8 and 7 respectively.
SAFETY_LINE = len(RPKI_YAML.splitlines()) + 1
CA_SAFETY_LINE = len(ONLINE_YAML.splitlines()) + 1


def with_settings(repo: Repo, extra: str) -> None:
    """rpki.yaml as in every other test, plus ``extra`` (which may be indented along with the code)."""
    repo.write("rpki.yaml", RPKI_YAML + textwrap.dedent(extra))


def with_ca_safety(repo: Repo, extra: str) -> None:
    """cas/online.yaml as in every other test, plus ``extra``."""
    repo.write("cas/online.yaml", ONLINE_YAML + textwrap.dedent(extra))


# --- defaults -------------------------------------------------------------------------------------------


def test_defaults_when_nothing_is_written(repo: Repo) -> None:
    state = repo.load()
    assert state.safety == SafetyPolicy()
    assert state.safety == SafetyPolicy(0.30, 0.30, 10, allow_empty=False)
    assert all(ca.safety == SafetyPolicy() for ca in state.cas)
    assert state.plan_max_age == timedelta(hours=1)
    assert state.audit_log is None
    assert state.audit_log_path == state.publication.directory / "audit.jsonl"


@pytest.mark.parametrize("text", ["safety: {}\n", "safety:\n  # nothing yet\n  {}\n"])
def test_empty_safety_section_keeps_defaults(repo: Repo, text: str) -> None:
    with_settings(repo, text)
    with_ca_safety(repo, "safety: {}\n")
    state = repo.load()
    assert state.safety == SafetyPolicy()
    assert state.ca("online").safety == SafetyPolicy()


def test_global_keys_left_out_keep_the_defaults(repo: Repo) -> None:
    with_settings(repo, "safety:\n  min_existing_vrps: 3\n")
    assert repo.load().safety == SafetyPolicy(min_existing_vrps=3)


# --- global values --------------------------------------------------------------------------------------


def test_global_values_apply_to_every_ca(repo: Repo) -> None:
    with_settings(
        repo,
        """\
        safety:
          delete_pct_threshold: 0.5
          narrow_pct_threshold: "20%"
          min_existing_vrps: 0
          allow_empty: true
        """,
    )
    state = repo.load()
    expected = SafetyPolicy(
        delete_pct_threshold=0.5, narrow_pct_threshold=0.2, min_existing_vrps=0, allow_empty=True
    )
    assert state.safety == expected
    assert [ca.safety for ca in state.cas] == [expected, expected]


# --- per-CA overrides -----------------------------------------------------------------------------------


GLOBAL_SAFETY = """\
safety:
  delete_pct_threshold: 0.5
  narrow_pct_threshold: 0.4
  min_existing_vrps: 20
  allow_empty: true
"""


def test_ca_override_of_one_key_inherits_the_others_from_rpki_yaml(repo: Repo) -> None:
    with_settings(repo, GLOBAL_SAFETY)
    with_ca_safety(repo, 'safety:\n  delete_pct_threshold: "10%"\n')
    state = repo.load()
    # The other three come from rpki.yaml (0.4, 20, true), not from the built-in defaults (0.3, 10, false).
    assert state.ca("online").safety == SafetyPolicy(
        delete_pct_threshold=0.1, narrow_pct_threshold=0.4, min_existing_vrps=20, allow_empty=True
    )
    assert state.safety == SafetyPolicy(0.5, 0.4, 20, allow_empty=True)


def test_ca_without_overrides_gets_exactly_the_global_policy(repo: Repo) -> None:
    with_settings(repo, GLOBAL_SAFETY)
    with_ca_safety(repo, "safety:\n  allow_empty: false\n")
    state = repo.load()
    assert state.ca("ta").safety == state.safety
    assert state.ca("ta").safety is state.safety
    assert state.ca("online").safety == SafetyPolicy(0.5, 0.4, 20, allow_empty=False)


def test_ca_override_of_every_key(repo: Repo) -> None:
    with_settings(repo, GLOBAL_SAFETY)
    with_ca_safety(
        repo,
        """\
        safety:
          delete_pct_threshold: 0
          narrow_pct_threshold: 1
          min_existing_vrps: 1
          allow_empty: false
        """,
    )
    assert repo.load().ca("online").safety == SafetyPolicy(0.0, 1.0, 1, allow_empty=False)


def test_ca_override_without_a_global_section_merges_onto_the_defaults(repo: Repo) -> None:
    with_ca_safety(repo, "safety:\n  min_existing_vrps: 2\n")
    state = repo.load()
    assert state.ca("online").safety == SafetyPolicy(min_existing_vrps=2)
    assert state.ca("ta").safety == SafetyPolicy()


def test_overrides_stay_with_their_ca(repo: Repo) -> None:
    with_settings(repo, GLOBAL_SAFETY)
    repo.write(
        "cas/a.yaml",
        "name: a\nparent: online\nresources: {asn: [AS64500]}\nsafety: {narrow_pct_threshold: 0.9}\n",
    )
    repo.write(
        "cas/b.yaml", "name: b\nparent: a\nresources: {asn: [AS64500]}\nsafety: {min_existing_vrps: 1}\n"
    )
    state = repo.load()
    assert state.ca("a").safety == SafetyPolicy(0.5, 0.9, 20, allow_empty=True)
    # A child does not inherit its parent's overrides: only rpki.yaml's policy and its own.
    assert state.ca("b").safety == SafetyPolicy(0.5, 0.4, 1, allow_empty=True)
    assert state.ca("online").safety == state.safety


# --- threshold forms ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("written", "expected"),
    [
        ("0.3", 0.3),
        ("0.25", 0.25),
        ("0", 0.0),
        ("1", 1.0),
        ("0.0", 0.0),
        ("1.0", 1.0),
        ('"30%"', 0.3),
        ("30%", 0.3),
        ('"0%"', 0.0),
        ('"100%"', 1.0),
        ('"100.0%"', 1.0),
        ('"12.5%"', 0.125),
        ('"33.3%"', 0.333),
        ('" 30 %"', 0.3),
        ('"5%"', 0.05),
        ('".5%"', 0.005),
    ],
)
def test_threshold_forms(repo: Repo, written: str, expected: float) -> None:
    with_settings(repo, f"safety:\n  delete_pct_threshold: {written}\n  narrow_pct_threshold: {written}\n")
    with_ca_safety(repo, f"safety:\n  delete_pct_threshold: {written}\n")
    state = repo.load()
    assert state.safety.delete_pct_threshold == expected
    assert state.safety.narrow_pct_threshold == expected
    assert state.ca("online").safety.delete_pct_threshold == expected
    assert isinstance(state.safety.delete_pct_threshold, float)


# --- errors ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("written", "phrase", "hint"),
    [
        ("1.5", "1.5 is not between 0 and 1", 'did you mean "1.5%"?'),
        ("30", "30 is not between 0 and 1", 'did you mean "30%"?'),
        ("-0.1", "-0.1 is not between 0 and 1", "a share from 0 to 1"),
        ("1000", "1000 is not between 0 and 1", "a share from 0 to 1"),
        (".inf", "inf is not between 0 and 1", "a share from 0 to 1"),
        (".nan", "nan is not between 0 and 1", "a share from 0 to 1"),
        pytest.param("9" * 1000, "the number is not between 0 and 1", "a share from 0", id="huge"),
        ('"130%"', "130% is not between 0% and 100%", '"100%" turns the check off'),
        ("130%", "130% is not between 0% and 100%", 'from "0%" to "100%"'),
        ('"-5%"', "-5% is not between 0% and 100%", 'from "0%" to "100%"'),
        ('"0.3"', "'0.3' is text, not a number", "write 0.3 without quotes"),
        ('"30 percent"', "is neither a share from 0 to 1 nor a percentage", 'such as "30%"'),
        ('"%"', "is neither a share from 0 to 1 nor a percentage", "such as 0.3"),
        ("true", "found true (a yes/no value)", "a share from 0 to 1"),
        ("[0.3]", "found a list", "a share from 0 to 1"),
    ],
)
def test_bad_global_threshold(repo: Repo, written: str, phrase: str, hint: str) -> None:
    with_settings(repo, f"safety:\n  delete_pct_threshold: {written}\n")
    problem = repo.error()
    expect(problem, repo, "rpki.yaml", SAFETY_LINE + 1, 25, phrase)
    assert problem.message.startswith("safety.delete_pct_threshold: ")
    assert hint in str(problem.hint)


def test_empty_threshold_is_an_error_not_the_default(repo: Repo) -> None:
    with_settings(repo, "safety:\n  narrow_pct_threshold:\n")
    problem = repo.error()
    expect(problem, repo, "rpki.yaml", SAFETY_LINE + 1, 3, "safety.narrow_pct_threshold: expected a share")
    assert "found nothing" in problem.message


def test_bad_ca_threshold(repo: Repo) -> None:
    with_ca_safety(repo, 'safety:\n  narrow_pct_threshold: "130%"\n')
    problem = repo.error()
    expect(problem, repo, "cas/online.yaml", CA_SAFETY_LINE + 1, 25, "130% is not between 0% and 100%")
    assert problem.message.startswith("safety.narrow_pct_threshold: ")


@pytest.mark.parametrize(
    ("written", "phrase", "hint"),
    [
        ("-1", "safety.min_existing_vrps: -1 is negative", "write 0 or more"),
        pytest.param("-" + "9" * 1000, "the number is negative", "write 0 or more", id="huge"),
        ("1.5", "expected a whole number of VRPs, found the number 1.5", "such as 10"),
        ("10.0", "expected a whole number of VRPs, found the number 10.0", "such as 10"),
        ('"5"', "expected a whole number of VRPs, found the text '5'", "write 5 without quotes"),
        ("ten", "expected a whole number of VRPs, found the text 'ten'", "such as 10"),
        ("false", "found false (a yes/no value)", "such as 10"),
    ],
)
def test_bad_min_existing_vrps(repo: Repo, written: str, phrase: str, hint: str) -> None:
    with_settings(repo, f"safety:\n  min_existing_vrps: {written}\n")
    problem = repo.error()
    expect(problem, repo, "rpki.yaml", SAFETY_LINE + 1, 22, phrase)
    assert hint in str(problem.hint)


def test_negative_min_existing_vrps_in_a_ca(repo: Repo) -> None:
    with_ca_safety(repo, "safety: {min_existing_vrps: -3}\n")
    expect(
        repo.error(), repo, "cas/online.yaml", CA_SAFETY_LINE, 29, "safety.min_existing_vrps: -3 is negative"
    )


@pytest.mark.parametrize(
    ("written", "found"), [("yes", "the text 'yes'"), ("1", "the number 1"), ("~", "nothing")]
)
def test_allow_empty_must_be_true_or_false(repo: Repo, written: str, found: str) -> None:
    with_settings(repo, f"safety:\n  allow_empty: {written}\n")
    problem = repo.error()
    column = 3 if written == "~" else 16  # an empty value is reported at its key
    expect(problem, repo, "rpki.yaml", SAFETY_LINE + 1, column, "safety.allow_empty: expected true or false")
    assert found in problem.message
    assert problem.hint == "write true or false"


def test_allow_empty_in_a_ca_must_be_true_or_false(repo: Repo) -> None:
    with_ca_safety(repo, "safety:\n  allow_empty: 'no'\n")
    expect(repo.error(), repo, "cas/online.yaml", CA_SAFETY_LINE + 1, 16, "expected true or false")


def test_unknown_global_safety_key(repo: Repo) -> None:
    with_settings(repo, "safety:\n  delete_threshold: 0.2\n")
    problem = repo.error()
    expect(problem, repo, "rpki.yaml", SAFETY_LINE + 1, 3, "unknown key 'delete_threshold' in safety")
    assert problem.hint == (
        "did you mean 'delete_pct_threshold'? allowed keys here: delete_pct_threshold, narrow_pct_threshold, "
        "min_existing_vrps, allow_empty, aspa_removal_threshold"
    )


def test_unknown_ca_safety_key(repo: Repo) -> None:
    with_ca_safety(repo, "safety:\n  allow_empty: true\n  min_vrps: 3\n")
    problem = repo.error()
    expect(problem, repo, "cas/online.yaml", CA_SAFETY_LINE + 2, 3, "unknown key 'min_vrps' in safety")
    assert str(problem.hint).startswith("did you mean 'min_existing_vrps'? allowed keys here: ")


def test_unknown_top_level_key_suggests_the_new_keys(repo: Repo) -> None:
    with_settings(repo, "saftey: {}\nplan_maxage: 1h\naudit-log: a.jsonl\n")
    typo, other, third = repo.errors()
    expect(typo, repo, "rpki.yaml", SAFETY_LINE, 1, "did you mean 'safety'?")
    expect(other, repo, "rpki.yaml", SAFETY_LINE + 1, 1, "did you mean 'plan_max_age'?")
    expect(third, repo, "rpki.yaml", SAFETY_LINE + 2, 1, "did you mean 'audit_log'?")
    assert "safety, plan_max_age, audit_log" in str(typo.hint)


def test_unknown_key_in_a_ca_file_lists_safety(repo: Repo) -> None:
    with_ca_safety(repo, "safty: {}\n")
    problem = repo.error()
    expect(problem, repo, "cas/online.yaml", CA_SAFETY_LINE, 1, "did you mean 'safety'?")
    assert str(problem.hint).endswith("resources, roas, aspas, routers, children, safety")


@pytest.mark.parametrize(
    ("text", "line", "column", "phrase"),
    [
        ("safety: [0.3]\n", 0, 9, "safety: expected a mapping of keys, found a list"),
        ("safety: 30%\n", 0, 9, "safety: expected a mapping of keys, found the text '30%'"),
        ("safety:\n", 0, 1, "safety: expected a mapping of keys, found nothing"),
    ],
)
def test_safety_section_of_the_wrong_type(repo: Repo, text: str, line: int, column: int, phrase: str) -> None:
    with_settings(repo, text)
    expect(repo.error(), repo, "rpki.yaml", SAFETY_LINE + line, column, phrase)
    with_settings(repo, "")
    with_ca_safety(repo, text)
    expect(repo.error(), repo, "cas/online.yaml", CA_SAFETY_LINE + line, column, phrase)


def test_every_safety_problem_is_reported_at_once(repo: Repo) -> None:
    with_settings(
        repo,
        """\
        safety:
          delete_pct_threshold: 1.5
          narrow_pct_threshold: "130%"
          min_existing_vrps: -1
          allow_empty: yes
        plan_max_age: 0h
        """,
    )
    with_ca_safety(repo, "safety:\n  delete_pct_threshold: -1\n")
    found = [(d.file.name, d.line, d.column) for d in repo.errors()]
    assert found == [
        ("online.yaml", CA_SAFETY_LINE + 1, 25),
        ("rpki.yaml", SAFETY_LINE + 1, 25),
        ("rpki.yaml", SAFETY_LINE + 2, 25),
        ("rpki.yaml", SAFETY_LINE + 3, 22),
        ("rpki.yaml", SAFETY_LINE + 4, 16),
        ("rpki.yaml", SAFETY_LINE + 5, 15),
    ]


# --- plan_max_age ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("written", "expected"),
    [
        ("1h", timedelta(hours=1)),
        ("30m", timedelta(minutes=30)),
        ("1d12h", timedelta(hours=36)),
        ("90", timedelta(seconds=90)),
    ],
)
def test_plan_max_age(repo: Repo, written: str, expected: timedelta) -> None:
    with_settings(repo, f"plan_max_age: {written}\n")
    assert repo.load().plan_max_age == expected


@pytest.mark.parametrize(
    ("written", "column", "phrase"),
    [
        ("0h", 15, "plan_max_age: the duration '0h' must be longer than zero"),
        ("1x", 15, "plan_max_age: '1x' is not a duration (write e.g. 30m, 8h, 7d, 52w or 1d12h)"),
        ("1.5", 15, "plan_max_age: expected a duration, found the number 1.5"),
        ("-5", 15, "must be longer than zero"),
        ("~", 1, "plan_max_age: expected a duration, found nothing"),
    ],
)
def test_bad_plan_max_age(repo: Repo, written: str, column: int, phrase: str) -> None:
    with_settings(repo, f"plan_max_age: {written}\n")
    expect(repo.error(), repo, "rpki.yaml", SAFETY_LINE, column, phrase)


# --- audit_log ------------------------------------------------------------------------------------------


def test_audit_log_is_relative_to_rpki_yaml(
    repo: Repo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    with_settings(repo, "audit_log: ../logs/./rpki/../audit.jsonl\n")
    state = repo.load()
    assert state.audit_log == tmp_path.resolve() / "logs" / "audit.jsonl"
    assert state.audit_log_path == state.audit_log
    assert state.audit_log.is_absolute()


def test_audit_log_absolute_path_is_kept(repo: Repo, tmp_path: Path) -> None:
    target = tmp_path / "var" / "log" / "rpki-audit.jsonl"
    with_settings(repo, f'audit_log: "{target}"\n')
    assert repo.load().audit_log == target.resolve()


def test_audit_log_follows_symlinks(repo: Repo, tmp_path: Path) -> None:
    real = tmp_path / "real-logs"
    real.mkdir()
    (tmp_path / "logs").symlink_to(real)
    with_settings(repo, "audit_log: ../logs/audit.jsonl\n")
    assert repo.load().audit_log == real.resolve() / "audit.jsonl"


def test_audit_log_may_be_inside_the_desired_state_directory(repo: Repo) -> None:
    with_settings(repo, "audit_log: audit.jsonl\n")
    assert repo.load().audit_log == repo.root.resolve() / "audit.jsonl"


def test_audit_log_may_be_an_existing_file(repo: Repo, tmp_path: Path) -> None:
    (tmp_path / "audit.jsonl").write_text("{}\n")
    with_settings(repo, "audit_log: ../audit.jsonl\n")
    assert repo.load().audit_log == tmp_path.resolve() / "audit.jsonl"


@pytest.mark.parametrize(
    ("written", "phrase", "hint"),
    [
        ("..", "audit_log '..' is a directory, not a file", "name a file in it, e.g. ../audit.jsonl"),
        ("cas", "audit_log 'cas' is a directory, not a file", "e.g. cas/audit.jsonl"),
        (".", "audit_log '.' is a directory", "e.g. ./audit.jsonl"),
        (
            "../logs/",
            "'../logs/' ends with '/', so it names a directory, not a file",
            "e.g. ../logs/audit.jsonl",
        ),
    ],
)
def test_audit_log_must_not_be_a_directory(repo: Repo, written: str, phrase: str, hint: str) -> None:
    with_settings(repo, f"audit_log: {written}\n")
    problem = repo.error()
    expect(problem, repo, "rpki.yaml", SAFETY_LINE, 12, phrase)
    assert hint in str(problem.hint)


def test_audit_log_symlink_to_a_directory_is_a_directory(repo: Repo, tmp_path: Path) -> None:
    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "real")
    with_settings(repo, "audit_log: ../link\n")
    expect(repo.error(), repo, "rpki.yaml", SAFETY_LINE, 12, "audit_log '../link' is a directory")


@pytest.mark.parametrize(
    ("written", "column", "phrase"),
    [
        ("''", 12, "audit_log: expected a file path, found empty text"),
        ("~", 1, "audit_log: expected a file path, found nothing"),
        ("42", 12, "audit_log: expected a file path, found the number 42"),
        ("[a.jsonl]", 12, "audit_log: expected a file path, found a list"),
        ('"a\\0b"', 12, "audit_log: a path cannot contain a NUL character"),
        ("~no-such-user-here/audit.jsonl", 12, "cannot find the home directory"),
    ],
)
def test_bad_audit_log(repo: Repo, written: str, column: int, phrase: str) -> None:
    with_settings(repo, f"audit_log: {written}\n")
    expect(repo.error(), repo, "rpki.yaml", SAFETY_LINE, column, phrase)


def test_audit_log_is_not_checked_when_rpki_yaml_is_broken(repo: Repo) -> None:
    with_settings(repo, "audit_log: ..\nplan_max_age: 0h\n")
    expect(repo.error(), repo, "rpki.yaml", SAFETY_LINE + 1, 15, "must be longer than zero")


# --- JSON Schema ----------------------------------------------------------------------------------------


def test_schema_defaults_match_the_model() -> None:
    defs = json_schema()["$defs"]
    rpki = defs["RpkiFile"]["properties"]
    assert rpki["plan_max_age"]["default"] == "1h"
    assert "default" not in rpki["audit_log"]
    assert "publication directory" in rpki["audit_log"]["description"]
    section = defs["SafetySection"]["properties"]
    assert {key: prop["default"] for key, prop in section.items()} == {
        f.name: getattr(SafetyPolicy(), f.name) for f in fields(SafetyPolicy)
    }
    overrides = defs["CaSafetySection"]["properties"]
    assert set(overrides) == set(section)
    for key, prop in overrides.items():
        assert "default" not in prop, key
        assert "null" not in str(prop), key
        assert "rpki.yaml" in prop["description"], key
    assert defs["CaFile"]["properties"]["safety"]["$ref"] == "#/$defs/CaSafetySection"
    assert defs["RpkiFile"]["properties"]["safety"]["$ref"] == "#/$defs/SafetySection"
    assert "safety" not in defs["RpkiFile"]["required"] and "safety" not in defs["CaFile"]["required"]
