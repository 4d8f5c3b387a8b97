"""The libyaml path gives what the round-trip loader gives: the same state, locations and diagnostics.

Each test loads one repository twice, once as usual and once with ``FAST_PARSE`` off, which reads every
file with ruamel's round-trip loader, the reference. The tests also check that the fast path was taken
where it should be, so that a comparison cannot pass by both runs quietly using the round-trip loader.
"""

from __future__ import annotations

import sys
import tempfile
import textwrap
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reconciler.desired import DesiredState, DesiredStateError, SourceLocation, loader

from .helpers import Repo

# Locations of the CA and of each ROA entry: SourceLocation is not part of CaIntent's equality.
Where = tuple[SourceLocation | None, tuple[SourceLocation | None, ...]]


def _outcome(repo: Repo, *, fast: bool, monkeypatch: pytest.MonkeyPatch) -> object:
    """The loaded state with every CA's and ROA entry's location, or the diagnostics as text."""
    monkeypatch.setattr(loader, "FAST_PARSE", fast)
    try:
        state = repo.load()
    except DesiredStateError as exc:
        return [(d.file, d.line, d.column, d.message, d.hint) for d in exc.diagnostics]
    return state, _locations(state)


def _locations(state: DesiredState) -> list[Where]:
    return [(ca.where, tuple(roa.where for roa in ca.roas)) for ca in state.cas]


def _both(repo: Repo, monkeypatch: pytest.MonkeyPatch) -> tuple[object, object]:
    fast = _outcome(repo, fast=True, monkeypatch=monkeypatch)
    return fast, _outcome(repo, fast=False, monkeypatch=monkeypatch)


def _takes_fast_path(text: str) -> bool:
    return loader._read_fast(Path("x.yaml"), textwrap.dedent(text)) is not None


# --- good input -----------------------------------------------------------------------------------------

BLOCK = """\
# an ISP, with comments everywhere
name: isp   # the CA's name
parent: online
resources:
  asn: [AS64496, 64497]
  ipv4: [192.0.2.0/24, "198.51.100.0/24"]
  ipv6: ['2001:db8::/32']
roas:
  # announced from both sites
  - asn: AS64496
    prefix: 192.0.2.0/24
  - asn: 64497            # written as a number
    prefix: "198.51.100.0/25"
    max_length: 26
    comment: anycast
  - {asn: AS64496, prefix: '2001:db8::/48', max_length: 64, comment: "v6, in flow style"}

  - asn: AS0
    prefix: 192.0.2.128/25   # AS0: never route this
"""

FLOW = (
    "{name: isp, parent: online, resources: {asn: [AS64496], ipv4: [192.0.2.0/24]},\n"
    " roas: [{asn: AS64496, prefix: 192.0.2.0/24},\n"
    "        {asn: AS64496, prefix: 192.0.2.0/25, max_length: 25}, {prefix: 192.0.2.128/25, asn: 64496}]}\n"
)

ANCHORS = """\
name: isp
parent: online
resources:
  <<: {asn: [AS64496-AS64497]}
  ipv4: &v4 [192.0.2.0/24]
roas:
  - &base {asn: &origin AS64496, prefix: 192.0.2.0/26, max_length: 26}
  - <<: *base
    prefix: 192.0.2.64/26
  - {<<: *base, prefix: 192.0.2.128/26, comment: merged in flow style}
  - <<: [{asn: AS64497}, *base]
    prefix: 192.0.2.192/26
  - asn: *origin
    prefix: 192.0.2.0/24
"""

SCALARS = """\
---
"name": isp
parent: "online"
trust_anchor: false
signer: default
resources:
  asn: ["AS64496-AS64511"]
  ipv4: [192.0.2.0/24]
roas:
  - asn: 0xFBF0                  # 64496
    prefix: 192.0.2.0/24
    max_length: 0o30             # 24
  - asn: 64_497
    prefix: 192.0.2.0/25
    max_length: +25
    comment: 'it''s # not a comment'
  - asn: AS64498
    prefix: 192.0.2.128/25
    comment: "a \\"quote\\", a tab\\t and an emoji 🙂"
  - {asn: AS64499, prefix: 192.0.2.0/26, comment: yes}   # YAML 1.2: yes is text
  - {asn: AS64500, prefix: 192.0.2.64/26, comment: "é 🙂", max_length: 26}
...
"""

CRLF = "name: isp\r\nparent: online\r\nresources: {ipv4: [192.0.2.0/24]}\r\n" + (
    "roas:\r\n  - {asn: 1, prefix: 192.0.2.0/24}\r\n"
)


@pytest.mark.parametrize(
    "text", [BLOCK, FLOW, ANCHORS, SCALARS, CRLF], ids=["block", "flow", "anchors", "scalars", "crlf"]
)
def test_the_same_state_and_locations_both_ways(
    repo: Repo, text: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo.write("cas/members/isp.yaml", text)
    assert _takes_fast_path(text)

    fast, slow = _both(repo, monkeypatch)

    assert isinstance(fast, tuple), fast
    assert fast == slow
    state, locations = fast
    assert isinstance(state, DesiredState)
    assert state.ca("isp").roas, "the document should have ROA entries to compare"
    assert all(roa is not None for _, roas in locations for roa in roas)


def test_roa_entry_locations_are_those_of_the_entries(repo: Repo, monkeypatch: pytest.MonkeyPatch) -> None:
    """Pinned, not only compared: both paths could otherwise agree on a wrong place."""
    path = repo.write("cas/members/isp.yaml", ANCHORS)
    monkeypatch.setattr(loader, "FAST_PARSE", True)

    isp = repo.load().ca("isp")

    assert isp.where == SourceLocation(path, 1, 1)
    assert [(r.where.line, r.where.column) for r in isp.roas if r.where] == [
        (7, 5),
        (8, 5),
        (10, 5),
        (11, 5),
        (13, 5),
    ]
    assert [(r.prefix.compressed, r.max_length, r.asn) for r in isp.roas] == [
        ("192.0.2.0/26", 26, 64496),
        ("192.0.2.64/26", 26, 64496),
        ("192.0.2.128/26", 26, 64496),
        ("192.0.2.192/26", 26, 64497),
        ("192.0.2.0/24", 24, 64496),
    ]


def test_the_bundled_state_takes_the_fast_path() -> None:
    state_dir = Path(__file__).resolve().parents[2] / "state"
    for path in sorted(state_dir.rglob("*.yaml")):
        assert _takes_fast_path(path.read_text(encoding="utf-8")), path


# --- bad input ------------------------------------------------------------------------------------------

HEAD = "name: isp\nparent: online\nresources: {ipv4: [192.0.2.0/24]}\n"


@pytest.mark.parametrize(
    ("roas", "fast_path"),
    [
        ("roas:\n  - {asn: AS64496, prefix: 192.0.2.0/24, max_length: twenty}\n", True),
        ("roas:\n  - asn: AS64496\n    prefix: 192.0.2.0/24\n    max_length: [24]\n", True),
        ("roas:\n  - asn:\n    prefix: 192.0.2.0/24\n", True),
        ("roas:\n  - asn: AS64496\n    prefx: 192.0.2.0/24\n", True),
        (
            "roas:\n  - &a {asn: AS64496, prefix: 192.0.2.0/24}\n  - {<<: *a, max_length: 33, colour: red}\n",
            True,
        ),
        ("roas:\n  - {asn: AS64496, 2: x, true: y, ~: z, prefix: 192.0.2.0/24}\n", True),
        ("roas:\n  - asn: AS64496\n    prefix: 192.0.2.0/24\n    prefix: 192.0.2.0/25\n", False),
        ("roas:\n  - {asn: AS64496, prefix: 192.0.2.0/24, 1: a, 1.0: b}\n", False),
        ("roas:\n  - {<<: {asn: 1}, <<: {asn: 2}, prefix: 192.0.2.0/24}\n", False),
    ],
    ids=[
        "max-length-text",
        "max-length-list",
        "asn-empty",
        "unknown-key",
        "merged-entry",
        "odd-keys",
        "duplicate-key",
        "duplicate-typed-key",
        "two-merges",
    ],
)
def test_the_same_diagnostics_both_ways(
    repo: Repo, roas: str, fast_path: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo.write("cas/members/isp.yaml", HEAD + roas)
    assert _takes_fast_path(HEAD + roas) == fast_path

    fast, slow = _both(repo, monkeypatch)

    assert isinstance(fast, list), "expected diagnostics"
    assert fast == slow


def test_a_wrong_max_length_is_pinned(repo: Repo, monkeypatch: pytest.MonkeyPatch) -> None:
    path = repo.write("cas/x.yaml", HEAD + "roas:\n  - {asn: AS64496, prefix: 192.0.2.0/24, max_length: x}\n")
    monkeypatch.setattr(loader, "FAST_PARSE", True)

    (problem,) = repo.errors()

    assert (problem.file, problem.line, problem.column) == (path, 5, 54)
    assert "expected a prefix length" in problem.message


# --- what is left to the round-trip loader --------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "name:\tx\n",  # libyaml takes a tab after the colon; ruamel refuses it
        "name: x\nparent: ta\x85resources: {}\n",  # NEL: a line break to libyaml only
        "name: x\u2028parent: ta\n",
        "name: x\nparent: t\ufeffa\n",
        "%YAML 1.1\n---\nname: x\ntrust_anchor: yes\n",  # YAML 1.1 booleans
        "name: !!str x\n",
        "name: ! x\n",
        "resources: !!map {asn: [1]}\n",
        "trust_anchor: &t false\n",  # an anchored boolean
        "resources:\n  &ipv4: [192.0.2.0/24]\n",  # libyaml reads anchor 'ipv4' on an empty key
        "name: 2024-01-01\n",  # a date
        "=: x\n",
        "a: &a [*a]\n",  # an alias inside itself
        "a: &a {b: *a}\n",
        "a: " + "[" * 65 + "]" * 65 + "\n",
        "[a]: b\n",
        'resources: {asn: ["AS1":]}\n',  # libyaml reads a one-pair mapping, ruamel a syntax error
        "resources: {? : x}\n",  # an empty key: the parsers place it differently
        "name: x\ncomment: >-\n  folded\n  text\n",  # text over several lines
        "name: x\ncomment: |\n \n   more indented than the first line\n",
        'name: "x\n  y"\n',
        "name: # comment\n  x\n\nparent: ta\n",  # ruamel fails: "overlap in comment"
        "? name\n: x\n",  # the value below its key
        "[name, x]\n",  # not a mapping
    ],
)
def test_left_to_the_round_trip_loader(repo: Repo, text: str, monkeypatch: pytest.MonkeyPatch) -> None:
    repo.write("cas/x.yaml", text)
    assert not _takes_fast_path(text)

    fast, slow = _both(repo, monkeypatch)

    assert fast == slow


def test_deep_nesting_is_left_to_the_round_trip_loader(monkeypatch: pytest.MonkeyPatch) -> None:
    """Deep nesting stops the one-pass composer early; libyaml's own composer, which recurses in C and
    overflows the stack on such files, is never used."""

    def composed(*_: object) -> None:
        raise AssertionError("libyaml's composer was used")

    monkeypatch.setattr(loader._LibyamlParser, "get_single_node", composed, raising=False)
    for text in ("[" * 100_000, "- " * 100_000, "".join(" " * i + "a:\n" for i in range(5_000))):
        with pytest.raises(loader._RoundTripOnlyError):
            loader._compose(text)
        assert loader._read_fast(Path("x.yaml"), text) is None


def _same_tree(mine: object, libyaml: object, seen: dict[int, int]) -> None:
    """Node for node: kind, tag, value, style and where each starts and ends; an alias is the same node
    object where libyaml's is."""
    assert type(mine) is type(libyaml)
    assert isinstance(mine, loader.Node) and isinstance(libyaml, loader.Node)
    if id(mine) in seen:
        assert seen[id(mine)] == id(libyaml)
        return
    seen[id(mine)] = id(libyaml)
    for mark in ("start_mark", "end_mark"):
        ours, theirs = getattr(mine, mark), getattr(libyaml, mark)
        assert (ours.index, ours.line, ours.column) == (theirs.index, theirs.line, theirs.column)
    assert mine.tag == libyaml.tag
    if isinstance(mine, loader.ScalarNode):
        assert (mine.value, mine.style) == (libyaml.value, libyaml.style)  # type: ignore[attr-defined]
        return
    assert mine.flow_style == libyaml.flow_style  # type: ignore[attr-defined]
    assert len(mine.value) == len(libyaml.value)
    for ours, theirs in zip(mine.value, libyaml.value, strict=True):
        if isinstance(mine, loader.MappingNode):
            _same_tree(ours[0], theirs[0], seen)
            _same_tree(ours[1], theirs[1], seen)
        else:
            _same_tree(ours, theirs, seen)


def _libyaml_tree(text: str) -> object:
    parser = loader._LibyamlParser(text)
    try:
        return parser.get_single_node()
    finally:
        parser.dispose()


_COMPOSED = [
    BLOCK,
    FLOW,
    "a: &x [1, 'b', {c: ~}]\nb: *x\nc: &y\n  d: 1\ne: [*y, *x]\n",
    "base: &base {asn: AS64496, prefix: 192.0.2.0/24}\nroas:\n  - <<: *base\n    max_length: 25\n",
    "a: 'q'\nb: \"d\"\nc: |\n  lit\nd: >\n  fold\ne:\nf: [x,]\n? g\n: h\n",
    "- a\n- - b\n  - c\n- {x: 1, y: [2, 3]}\n",
    "",
    "# only a comment\n",
    "x\n",
]


@pytest.mark.parametrize("text", _COMPOSED)
def test_one_pass_gives_libyamls_own_tree(text: str) -> None:
    text = textwrap.dedent(text)
    mine = loader._compose(text)
    libyaml = _libyaml_tree(text)
    if libyaml is None:
        assert mine is None
    else:
        _same_tree(mine, libyaml, {})


@pytest.mark.parametrize(
    "text",
    [
        "a: *nowhere\n",  # an undefined alias
        "a: &x 1\nb: &x 2\n",  # a reused anchor
        "a: 1\n---\nb: 2\n",  # two documents
        "%YAML 1.1\n---\na: 1\n",
        "a: !!str 1\n",
        "a: &t true\n",
        "a: !!map {b: 1}\n",
    ],
)
def test_what_one_pass_refuses(text: str) -> None:
    """What libyaml's composer refuses, and what it would read other than the round-trip loader does."""
    with pytest.raises(Exception):  # noqa: B017 -- which exception does not matter: the fast path is off
        loader._compose(text)
    assert loader._read_fast(Path("x.yaml"), text) is None


def test_without_ruamel_yaml_clib_everything_takes_the_round_trip_loader(
    repo: Repo, monkeypatch: pytest.MonkeyPatch
) -> None:
    def read_fast(*_: object) -> None:
        raise AssertionError("the fast path was tried")

    assert loader._c_parser_available()
    monkeypatch.setitem(sys.modules, "_ruamel_yaml", None)  # what an import finds when it is not installed
    monkeypatch.setattr(loader, "FAST_PARSE", loader._c_parser_available())
    monkeypatch.setattr(loader, "_read_fast", read_fast)

    assert [ca.name for ca in repo.load().cas] == ["ta", "online"]


# --- values straight from the events ---------------------------------------------------------------------


def _direct_matches_nodes(text: str) -> bool:
    """Whether the events-only path decided on ``text`` rather than leave it to the node path; the values
    and every position it recorded are the node path's, and where it gave nothing, so does the node path."""
    direct = loader._read_fast(Path("x.yaml"), text)
    nodes = loader._read_fast(Path("x.yaml"), text, nodes=True)
    assert nodes is None or isinstance(nodes.root, loader.Node)
    if direct is None:
        assert nodes is None
        try:
            loader._read_direct(Path("x.yaml"), text)
        except loader._NodesNeededError:
            return False
        except Exception:  # a syntax error, or a scalar only ruamel reads
            return True
        return True
    assert nodes is not None and direct.plain() == nodes.plain()
    if not isinstance(direct, loader._RememberedSource):
        return False
    for (loc, key), position in direct._known.items():
        assert nodes.position(loc, key=key) == position, (loc, key)
    return True


@pytest.mark.parametrize(
    ("text", "taken"),
    [
        (BLOCK, True),
        (FLOW, True),
        (SCALARS, True),
        (CRLF, True),
        ("name: isp\nempty:\nroas: []\nlater: [a, b]\n", True),
        ("", True),
        ("x\n", True),
        (ANCHORS, False),
        ("a: &x 1\nb: 2\n", False),  # any anchor
        ("a: !!str 1\n", False),
        ("1: a\n'1': b\n", False),  # one top-level name for two keys
        ("a:\n  b\n", False),  # a value below its key
        ("a: 1\na: 2\n", False),
        ("? [a]\n: 1\n", False),
        ("a: 'two\n  lines'\n", False),
    ],
)
def test_values_from_the_events_are_the_node_paths(text: str, taken: bool) -> None:
    assert _direct_matches_nodes(text) is taken


def test_the_positions_a_ca_carries_are_recorded_without_nodes() -> None:
    source = loader._read_fast(Path("x.yaml"), BLOCK)
    assert isinstance(source, loader._RememberedSource)
    roas = BLOCK.splitlines().index("roas:") + 1
    assert source.position(("name",), key=True) == (2, 1)
    assert [source.position(("roas", index))[0] for index in range(4)] == [
        roas + 2,
        roas + 4,
        roas + 8,
        roas + 10,
    ]
    assert source._parsed is None
    assert source.position(("roas", 1, "max_length")) == (roas + 6, 17)  # not recorded: parsed for it
    assert source._parsed is not None


# --- anything at all ------------------------------------------------------------------------------------

_TOKENS = [
    "name: ",
    "parent: ",
    "resources:",
    "roas:",
    "asn: ",
    "prefix: ",
    "max_length: ",
    "ipv4: ",
    "\n",
    "\n  ",
    "\n    ",
    "- ",
    "[",
    "]",
    "{",
    "}",
    ", ",
    ": ",
    "x",
    "online",
    "AS64496",
    "192.0.2.0/24",
    "24",
    "0x18",
    "~",
    "true",
    "yes",
    "&a ",
    "*a",
    "<<: ",
    "? ",
    "'",
    '"',
    " # c",
    "|\n",
    ">\n",
    "---\n",
]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from(_TOKENS), max_size=40).map("".join))
def test_token_soup_gives_the_same_result_both_ways(text: str) -> None:
    with tempfile.TemporaryDirectory() as tmp, pytest.MonkeyPatch.context() as monkeypatch:
        repo = Repo.create(Path(tmp))
        (repo.root / "cas" / "soup.yaml").write_text(HEAD + text, encoding="utf-8")
        fast, slow = _both(repo, monkeypatch)
        assert fast == slow
    _direct_matches_nodes(HEAD + text)
    try:
        libyaml = _libyaml_tree(HEAD + text)
    except Exception:
        return
    try:
        mine = loader._compose(HEAD + text)
    except loader._RoundTripOnlyError:
        return  # left to the round-trip loader: compared above
    _same_tree(mine, libyaml, {})
