"""Files remembered by the SHA-256 of their bytes (``desired.parse_cache``): a file seen before is not
parsed again, yet the state, every location and every diagnostic are what parsing it gives."""

from __future__ import annotations

import gc
import hashlib
import json
from pathlib import Path

import pytest

from reconciler import engine
from reconciler.desired import DesiredState, DesiredStateError, loader, parse_cache
from tests.helpers import T0, later, scratch_copy

from .helpers import ONLINE_YAML, RPKI_YAML, Repo

MEMBER = """\
name: member
parent: online
resources:
  asn: [AS64500]
  ipv4: [192.0.2.0/25]
roas:
  - {asn: AS64500, prefix: 192.0.2.0/26}
  - asn: AS64500
    prefix: 192.0.2.64/26
    max_length: 27
"""


@pytest.fixture
def repo(tmp_path: Path) -> Repo:
    found = Repo.create(tmp_path)
    found.cache_key = _key
    found.write("cas/member.yaml", MEMBER)
    (tmp_path / "published").mkdir()
    return found


def _key(_: DesiredState) -> bytes:
    """The sealing key a signer would give (these repositories have no keys)."""
    return b"k" * 32


def _where(state: DesiredState) -> list[object]:
    """Every CA's and ROA entry's location (not part of the intents' equality)."""
    return [(ca.where, [roa.where for roa in ca.roas]) for ca in state.cas]


def _diagnostics(repo: Repo) -> list[tuple[object, ...]]:
    with pytest.raises(DesiredStateError) as info:
        repo.load()
    return [(d.file, d.line, d.column, d.message, d.hint) for d in info.value.diagnostics]


def _count_parses(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    parsed: list[str] = []
    read_fast = loader._read_fast

    def counting(path: Path, text: str, *, nodes: bool = False) -> object:
        parsed.append(path.name)
        return read_fast(path, text, nodes=nodes)

    monkeypatch.setattr(loader, "_read_fast", counting)
    return parsed


def test_a_second_load_parses_nothing_and_gives_the_same_state(
    repo: Repo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = repo.load()
    assert parse_cache.path(tmp_path / "published").is_file()
    parsed = _count_parses(monkeypatch)
    second = repo.load()
    assert parsed == ["rpki.yaml"]  # it says where the cache is: always read
    assert second == first
    assert _where(second) == _where(first)
    assert [roa.where.line for roa in second.ca("member").roas if roa.where] == [7, 8]


def test_only_an_edited_file_is_parsed_again(repo: Repo, monkeypatch: pytest.MonkeyPatch) -> None:
    repo.load()
    parsed = _count_parses(monkeypatch)
    repo.write("cas/member.yaml", MEMBER.replace("max_length: 27", "max_length: 26"))
    state = repo.load()
    assert parsed == ["rpki.yaml", "member.yaml"]
    assert [roa.max_length for roa in state.ca("member").roas] == [26, 26]


def test_a_file_read_now_is_kept_as_values_and_positions_not_as_a_node_tree(
    repo: Repo, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Once a CA file is checked, its intent needs only its values and the positions of its name and ROA
    entries: its node tree is dropped then, not at the end of the load (a registry's thousands of files
    were all held as trees at once). Each file is still parsed only once: every position the state
    carries was found before the tree went."""
    entries = "".join(f"  - {{asn: AS64500, prefix: 192.0.2.{i}/32}}\n" for i in range(40))
    for index in range(5):
        repo.write(f"cas/m{index}.yaml", MEMBER.replace("name: member", f"name: m{index}") + entries)
    alive: list[int] = []
    build = loader._build

    def counting(*args: object, **kwargs: object) -> object:
        alive.append(sum(isinstance(o, loader.ScalarNode) for o in gc.get_objects()))
        return build(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(loader, "_build", counting)
    parsed = _count_parses(monkeypatch)
    state = repo.load()
    assert sorted(parsed) == sorted(
        ["rpki.yaml", "ta.yaml", "online.yaml", "member.yaml"] + [f"m{index}.yaml" for index in range(5)]
    )
    assert alive and alive[0] < 40  # rpki.yaml's scalars at most: no CA file's 120 and more
    m4 = state.ca("m4")
    assert m4.where is not None and (m4.where.line, m4.where.column) == (1, 1)  # its name's key
    assert [roa.where.line for roa in m4.roas if roa.where][-3:] == [48, 49, 50]


def test_a_position_not_remembered_is_found_by_parsing_the_file_then(
    repo: Repo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The member's file is remembered; shrinking its parent makes its resources an error, at a position
    nobody asked for before."""
    repo.load()
    repo.write("cas/online.yaml", ONLINE_YAML.replace("192.0.2.0/24", "192.0.2.128/25"))
    parsed = _count_parses(monkeypatch)
    remembered = _diagnostics(repo)
    assert "member.yaml" in parsed  # parsed for the position, not for its values
    parse_cache.path(tmp_path / "published").unlink()
    assert remembered == _diagnostics(repo)
    member = [d for d in remembered if str(d[0]).endswith("member.yaml")]
    assert member and member[0][1] == 5  # the ipv4 line


def test_a_damaged_cache_only_costs_time(repo: Repo, tmp_path: Path) -> None:
    first = repo.load()
    cache = parse_cache.path(tmp_path / "published")
    saved = json.loads(cache.read_text())
    rows = dict(saved["files"])
    damage = ['[["a list"], []]', '[{"name": 1}, [[["x"], false, "y", 1]]]', "[{not json", "[" * 100_000]
    for index, digest in enumerate(sorted(saved["files"])):
        saved["files"][digest] = damage[index % len(damage)]
    cache.write_text(json.dumps(saved))
    assert repo.load() == first
    saved["files"] = {digest: json.loads(row) for digest, row in rows.items()}
    cache.write_text(json.dumps(saved))  # rows as values, not as the JSON text of each
    assert repo.load() == first
    cache.write_text("{not json")
    second = repo.load()
    assert second == first and _where(second) == _where(first)


def test_rows_are_read_only_for_bytes_seen_again(
    repo: Repo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An edited file costs no row to look up, and rows nobody asked more of are saved as they were read;
    the edited file's new row replaces the old."""
    repo.load()
    cache = parse_cache.path(tmp_path / "published")
    before = json.loads(cache.read_text())["files"]
    decoded: list[object] = []
    from_json = parse_cache.Parsed.from_json
    monkeypatch.setattr(
        parse_cache.Parsed, "from_json", classmethod(lambda cls, row: decoded.append(row) or from_json(row))
    )
    repo.write("cas/member.yaml", MEMBER.replace("max_length: 27", "max_length: 26"))
    repo.load()
    assert len(decoded) == len(before) - 2  # every file but the edited one and rpki.yaml (always parsed)
    after = json.loads(cache.read_text())["files"]
    assert len(after) == len(before)
    kept = before.keys() & after.keys()
    assert len(kept) == len(before) - 1 and all(after[digest] == before[digest] for digest in kept)
    (new,) = after.keys() - kept
    assert json.loads(after[new])[0]["roas"][1]["max_length"] == 26


def test_the_cache_keeps_the_files_of_the_last_load(repo: Repo, tmp_path: Path) -> None:
    repo.load()
    repo.remove("cas/member.yaml")
    repo.load()
    saved = json.loads(parse_cache.path(tmp_path / "published").read_text())
    assert len(saved["files"]) == 3  # rpki.yaml, ta.yaml, online.yaml


def test_without_libyaml_no_cache_is_read_or_written(
    repo: Repo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(loader, "FAST_PARSE", False)
    repo.load()
    assert not parse_cache.path(tmp_path / "published").exists()


def test_the_plan_after_a_first_apply_parses_only_rpki_yaml(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A first apply loads the YAML before its publication directory exists, so the cache waits for the
    directory and is written once the apply has published; a plan alone never creates the directory."""
    scratch = scratch_copy(tmp_path)
    published = tmp_path / "published"
    assert not published.exists()
    engine.plan(engine.open_workspace(scratch.repo), T0)
    assert not published.exists()  # the plan wrote nothing
    assert scratch.apply(T0) is not None
    assert parse_cache.path(published).is_file()
    parsed = _count_parses(monkeypatch)
    assert scratch.plan(later(1)).empty
    assert parsed == ["rpki.yaml"]


def test_a_row_is_the_same_whichever_way_the_file_was_read(
    repo: Repo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Values straight from the events, or through the node tree: the same values and only the positions
    asked for (the name's key, each ROA entry), since a registry's plan reads every file's row."""
    cache = parse_cache.path(tmp_path / "published")
    digest = hashlib.sha256(MEMBER.encode()).hexdigest()

    def row() -> str:
        return json.loads(cache.read_text())["files"][digest]

    repo.load()
    direct = row()
    cache.unlink()

    def nodes_needed(*_: object) -> None:
        raise loader._NodesNeededError

    monkeypatch.setattr(loader, "_read_direct", nodes_needed)
    repo.load()
    assert row() == direct
    assert json.loads(direct)[1] == [
        [["name"], True, 1, 1],
        [["roas", 0], False, 7, 5],
        [["roas", 1], False, 8, 5],
    ]


def test_a_load_with_nothing_edited_writes_nothing(repo: Repo, tmp_path: Path) -> None:
    """``rpki.yaml`` is parsed every time, to the row it had: a registry's cache is not written again."""
    repo.load()
    cache = parse_cache.path(tmp_path / "published")
    before = cache.stat()
    repo.load()
    after = cache.stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    repo.write("rpki.yaml", RPKI_YAML + "# edited\n")
    repo.load()
    assert cache.stat().st_ino != before.st_ino  # written anew, in one rename
