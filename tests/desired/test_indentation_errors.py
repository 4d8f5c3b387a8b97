"""Indentation mistakes in the bundled example's files are said in words, at the line to change.

Each case breaks one line of ``state/`` the way a hurried edit does and checks the diagnostic names the
key or list item, how far it is indented, what it should line up with, and points at the line that must
change -- which is often not the line the YAML parser stopped at.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reconciler.desired import Diagnostic
from reconciler.desired.yaml_errors import explain

from .helpers import Repo, expect

STATE = Path(__file__).resolve().parents[2] / "state"
ISP = "cas/members/example-isp.yaml"

#: The example CA's ROAs written as block mappings, the other way operators write them.
BLOCK_ROAS = """\
name: example-isp
parent: online
resources:
  asn: [AS64496, AS64497]
  ipv4: [192.0.2.0/24, 198.51.100.0/25]
roas:
  - asn: AS64496
    prefix: 192.0.2.0/24
  - asn: AS64496
    prefix: 198.51.100.0/25
    max_length: 26
  - asn: AS64497
    prefix: 192.0.2.0/24
"""


def _example(relative: str) -> str:
    return (STATE / relative).read_text(encoding="utf-8")


def _break(repo: Repo, relative: str, text: str, old: str, new: str) -> Diagnostic:
    """Write ``text`` with its one occurrence of ``old`` replaced by ``new``; return the one diagnostic."""
    assert text.count(old) == 1, old
    repo.write(relative, text.replace(old, new))
    return repo.error()


def _isp(repo: Repo, old: str, new: str) -> Diagnostic:
    return _break(repo, ISP, _example(ISP), old, new)


def _blocks(repo: Repo, old: str, new: str) -> Diagnostic:
    return _break(repo, ISP, BLOCK_ROAS, old, new)


def _rpki(repo: Repo, old: str, new: str) -> Diagnostic:
    return _break(repo, "rpki.yaml", _example("rpki.yaml"), old, new)


def test_the_bundled_example_loads(repo: Repo) -> None:
    """The cases below break exactly one line of files that are fine as shipped."""
    repo.write("rpki.yaml", _example("rpki.yaml"))
    repo.write("cas/online.yaml", _example("cas/online.yaml"))
    repo.write(ISP, _example(ISP))
    repo.load()
    repo.write(ISP, BLOCK_ROAS)
    repo.load()


# --- list items -----------------------------------------------------------------------------------------


def test_list_item_indented_less_than_the_items_above(repo: Repo) -> None:
    problem = _isp(repo, "  - {asn: AS64497", " - {asn: AS64497")
    expect(problem, repo, ISP, 11, 2, "the list item '- {asn: AS64497")
    assert "is indented 1 space, which lines up with nothing above it" in problem.message
    assert "the list items before it are indented 2 spaces" in problem.message
    assert "on line 10" in problem.message
    assert problem.hint is not None and problem.hint.startswith("indent it by 2 spaces")


def test_list_item_indented_more_than_the_items_above(repo: Repo) -> None:
    problem = _isp(repo, "  - {asn: AS64497", "    - {asn: AS64497")
    expect(problem, repo, ISP, 11, 5, "is indented 4 spaces, more than the list items above it")
    assert "on line 10 is indented 2 spaces" in problem.message


def test_list_item_at_the_column_of_the_top_level_keys(repo: Repo) -> None:
    problem = _isp(repo, "  - {asn: AS64497", "- {asn: AS64497")
    expect(problem, repo, ISP, 11, 1, "is not indented, but the list items before it are indented 2 spaces")


def test_list_item_at_the_level_of_the_keys_of_the_item_above(repo: Repo) -> None:
    problem = _blocks(repo, "  - asn: AS64497", "    - asn: AS64497")
    expect(problem, repo, ISP, 12, 5, "as far as the keys of the item above it, the key 'max_length'")
    assert "the key 'max_length' on line 11, but" in problem.message
    assert "the list's items are indented 2 spaces" in problem.message
    assert problem.hint == "indent its '-' by 2 spaces to line it up with them"


def test_list_item_where_the_keys_of_a_mapping_are(repo: Repo) -> None:
    problem = _isp(repo, '  ipv6: ["2001', '  - ipv6: ["2001')
    expect(problem, repo, ISP, 7, 3, "the list item '- ipv6:")
    assert "starts with '- ', but the lines at its indentation above it are keys" in problem.message
    assert "the key 'ipv4' on line 6" in problem.message
    assert problem.hint is not None and "remove the '- '" in problem.hint


# --- keys -----------------------------------------------------------------------------------------------


def test_key_indented_more_than_its_siblings(repo: Repo) -> None:
    problem = _isp(repo, "  ipv4: [192", "    ipv4: [192")
    expect(problem, repo, ISP, 6, 5, "the key 'ipv4' is indented 4 spaces, more than the keys above it")
    assert "the key 'asn' on line 5 is indented 2 spaces" in problem.message


def test_top_level_key_indented_under_a_value(repo: Repo) -> None:
    """The parser reads ``parent`` as more of the name's text and complains of a colon."""
    problem = _isp(repo, "parent: online", "  parent: online")
    expect(problem, repo, ISP, 3, 3, "the key 'parent' is indented 2 spaces, more than the keys above it")
    assert "mapping values" not in str(problem)


def test_key_dedented_to_the_top_level_is_blamed_not_the_next_line(repo: Repo) -> None:
    """The parser stops at line 7; the line to change is 6."""
    problem = _isp(repo, "  ipv4: [192", "ipv4: [192")
    expect(problem, repo, ISP, 6, 1, "the key 'ipv4' is not indented, but the keys around it")
    assert "on line 5 and line 7 are indented 2 spaces" in problem.message


def test_first_key_under_a_key_off_the_files_step(repo: Repo) -> None:
    """``type`` at 3 and ``directory`` at 4: the parser stops at line 8, the odd one out is line 7."""
    problem = _rpki(repo, "    type: file", "   type: file")
    expect(problem, repo, "rpki.yaml", 7, 4, "the key 'type' is indented 3 spaces, but the key 'directory'")
    assert problem.hint == "indent both by 4 spaces, as this file indents each level by 2"


def test_key_between_two_levels(repo: Repo) -> None:
    problem = _rpki(repo, "  directory: ../published", " directory: ../published")
    expect(problem, repo, "rpki.yaml", 3, 2, "the key 'directory' is indented 1 space, which lines up with")
    assert problem.hint is not None
    assert "or remove its indentation if it belongs with the key 'publication' on line 1" in problem.hint


def test_first_line_of_the_file_indented(repo: Repo) -> None:
    problem = _isp(repo, "name: example-isp", "  name: example-isp")
    expect(problem, repo, ISP, 2, 3, "the key 'name' is indented 2 spaces, but the key 'parent' after it")


# --- keys under a list item -----------------------------------------------------------------------------


def test_key_of_a_list_item_indented_too_far(repo: Repo) -> None:
    problem = _blocks(repo, "    prefix: 198.51", "      prefix: 198.51")
    expect(problem, repo, ISP, 10, 7, "the key 'prefix' is indented 6 spaces, more than the keys above it")
    assert "the key 'asn' on line 9 is indented 4 spaces" in problem.message


def test_key_of_a_list_item_at_the_column_of_its_dash(repo: Repo) -> None:
    """The parser's words for this one were ``expected <block end>, but found '?'``."""
    problem = _blocks(repo, "    prefix: 198.51", "  prefix: 198.51")
    expect(problem, repo, ISP, 10, 3, "as far as the '-' of the list item above it on line 9")
    assert "that item's keys are indented 4 spaces" in problem.message
    assert "'?'" not in str(problem)


def test_key_of_a_list_item_not_indented_is_blamed_not_the_next_line(repo: Repo) -> None:
    problem = _blocks(repo, "    prefix: 198.51", "prefix: 198.51")
    expect(problem, repo, ISP, 10, 1, "the key 'prefix' is not indented, but the keys around it")


# --- tabs, '?', a missing space -------------------------------------------------------------------------


def test_tab_in_the_indentation(repo: Repo) -> None:
    problem = _isp(repo, "  ipv4: [192", "\tipv4: [192")
    expect(problem, repo, ISP, 6, 1, "the key 'ipv4' is indented with a tab")
    assert "YAML does not allow tabs" in problem.message
    assert problem.hint == "replace it with spaces: 2, to line it up with the key 'asn' on line 5"


def test_tab_under_a_key_says_how_deep_to_nest(repo: Repo) -> None:
    problem = _rpki(repo, "    type: file", "\ttype: file")
    expect(problem, repo, "rpki.yaml", 7, 1, "the key 'type' is indented with a tab")
    assert problem.hint == "replace it with spaces: 4, to nest it under the key 'default' on line 6"


def test_stray_question_mark(repo: Repo) -> None:
    """``? ipv4: [...]`` makes a mapping a key: the parser's reader fails with a Python TypeError."""
    problem = _isp(repo, "  ipv4: [192", "  ? ipv4: [192")
    expect(problem, repo, ISP, 6, 3, "a '?' starts a complex mapping key")
    assert "TypeError" not in str(problem)


def test_missing_space_after_a_colon(repo: Repo) -> None:
    """The parser blames the next line (``could not find expected ':'``)."""
    problem = _isp(repo, "parent: online", "parent:online")
    expect(problem, repo, ISP, 3, 7, "there is no space after the colon of 'parent:'")
    assert problem.hint == "write 'parent: online'"


def test_missing_space_after_a_colon_in_a_list_item(repo: Repo) -> None:
    problem = _blocks(repo, "    max_length: 26", "    max_length:26")
    expect(problem, repo, ISP, 11, 15, "so YAML reads 'max_length:26' as text, not as the key 'max_length'")


# --- what the explanation cannot place ------------------------------------------------------------------


def test_unexplained_indentation_error_still_in_words(repo: Repo) -> None:
    """A ``%YAML`` directive is beyond the line reading; the parser's jargon is still translated."""
    repo.write("cas/x.yaml", "%YAML 1.2\n---\nname: x\nparent: ta\nresources:\n  asn: [1]\n    ipv4: []\n")
    problem = repo.error()
    expect(problem, repo, "cas/x.yaml", 7, 5, "this key does not line up with the lines above it")
    assert "block" not in str(problem)


def test_an_explanation_past_where_the_parser_stopped_is_not_used(repo: Repo) -> None:
    """An unclosed list at line 4 is the real problem, not the key indented below it."""
    repo.write("cas/x.yaml", "name: x\nparent: ta\nresources:\n  asn: [1, 2\n  ipv4: []\n    ipv6: []\n")
    problem = repo.error()
    expect(problem, repo, "cas/x.yaml", 5, 7, "YAML syntax error: expected ',' or ']'")


_YAMLISH = st.text(alphabet=" \t\n-:?#'\"[]{}|>&*!%ab1", max_size=120)


@settings(max_examples=400, deadline=None)
@given(_YAMLISH)
def test_explain_never_raises_and_stays_in_the_file(text: str) -> None:
    found = explain(text)
    if found is not None:
        assert 1 <= found.line <= max(1, len(text.splitlines()))
        assert found.column >= 1
        assert found.message and found.hint


@pytest.mark.parametrize("relative", ["rpki.yaml", "cas/ta.yaml", "cas/online.yaml", ISP])
def test_explain_finds_nothing_in_the_bundled_files(relative: str) -> None:
    assert explain(_example(relative)) is None
    assert explain(BLOCK_ROAS) is None
