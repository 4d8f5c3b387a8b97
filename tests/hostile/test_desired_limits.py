"""What validate accepts, apply can publish: values no relying party takes, or that no clock, file system
or URI can hold, are refused when the YAML is loaded, each with its file and line and a way out."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from reconciler.desired import load
from tests.desired.helpers import ONLINE_YAML, RPKI_YAML, Repo


@pytest.fixture
def repo(tmp_path: Path) -> Repo:
    return Repo.create(tmp_path)


def _bomb(levels: int = 9, width: int = 9) -> str:
    """A "billion laughs": ``width ** levels`` values from a few hundred bytes of aliases."""
    lines = ['a0: &a0 ["lol"]']
    for level in range(1, levels + 1):
        lines.append(f"a{level}: &a{level} [{', '.join([f'*a{level - 1}'] * width)}]")
    return "\n".join(lines) + "\n"


_LOAD_BOUNDED = textwrap.dedent(
    """
    import resource, sys
    resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))
    from reconciler.desired import DesiredStateError, load
    try:
        load(sys.argv[1], cache_key=lambda _: b"k" * 32)  # with the parse cache, as plans load
    except DesiredStateError as exc:
        print(exc)
    """
)


def _load_in_a_bounded_process(root: Path) -> subprocess.CompletedProcess[str]:
    """Load in a child process with 1 GB of address space and 60 s: a bomb must not take the host."""
    return subprocess.run(
        [sys.executable, "-c", _LOAD_BOUNDED, str(root)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize("where", ["unknown_keys", "roas", "rpki.yaml"])
def test_alias_bomb_is_refused_at_its_line(repo: Repo, tmp_path: Path, where: str) -> None:
    (tmp_path / "published").mkdir()
    bomb = _bomb()
    assert len(bomb.encode()) < 700
    if where == "rpki.yaml":
        repo.write("rpki.yaml", RPKI_YAML + "x_bomb:\n" + textwrap.indent(bomb, "  "))
        name = "rpki.yaml"
    elif where == "roas":
        repo.write("cas/online.yaml", ONLINE_YAML + "x:\n" + textwrap.indent(bomb, "  ") + "roas: *a9\n")
        name = "online.yaml"
    else:
        repo.write("cas/online.yaml", ONLINE_YAML + bomb)
        name = "online.yaml"
    result = _load_in_a_bounded_process(repo.root)
    assert result.returncode == 0, result.stderr[-2000:]
    lines = [line for line in result.stdout.splitlines() if "alias" in line]
    assert lines, result.stdout[-2000:]
    assert name in lines[0] and "expand" in lines[0], lines[0]
    cache = tmp_path / "published" / "cache" / "desired.json"
    assert not cache.exists() or cache.stat().st_size < 100_000


def test_a_few_aliases_still_load_and_are_not_cached_expanded(repo: Repo, tmp_path: Path) -> None:
    (tmp_path / "published").mkdir()
    text = textwrap.dedent(
        """\
        name: member
        parent: online
        resources:
          asn: [AS64500]
          ipv4: &blocks [192.0.2.0/25]
        roas:
          - &roa {asn: AS64500, prefix: 192.0.2.0/26}
          - {<<: *roa, prefix: 192.0.2.64/26}
        """
    )
    repo.write("cas/member.yaml", text)
    state = load(repo.root, cache_key=lambda _: b"k" * 32)  # the parse cache, sealed with this key
    assert [str(r.prefix) for r in state.ca("member").roas] == ["192.0.2.0/26", "192.0.2.64/26"]
    cache = json.loads((tmp_path / "published" / "cache" / "desired.json").read_text())
    assert hashlib.sha256(text.encode()).hexdigest() not in cache["files"]


@pytest.mark.parametrize(
    ("section", "value", "phrase"),
    [
        ("roas", "fe80::1%eth0/128", "zone"),
        ("ipv6", "fe80::%eth0/64", "zone"),
        ("ipv6", "fe80::1%1-fe80::2", "zone"),
        ("roas", "::ffff:1.2.3.4/128", "IPv4-mapped"),
        ("roas", "::ffff:102:304/128", "IPv4-mapped"),
        ("ipv6", "::ffff:0:0/96", "IPv4-mapped"),
        ("ipv6", "::ffff:1.2.3.0-::ffff:1.2.3.255", "IPv4-mapped"),
    ],
)
def test_ipv6_text_that_relying_parties_drop(repo: Repo, section: str, value: str, phrase: str) -> None:
    if section == "roas":
        repo.write("cas/online.yaml", ONLINE_YAML + f'roas:\n  - {{asn: 64496, prefix: "{value}"}}\n')
        line = 8
    else:
        repo.write("cas/online.yaml", ONLINE_YAML.replace('"2001:db8::/32"', f'"2001:db8::/32", "{value}"'))
        line = 6
    error = repo.error()
    assert error.file.name == "online.yaml" and error.line == line, str(error)
    assert phrase in str(error) and error.hint, str(error)


def test_ipv6_prefixes_that_merely_contain_mapped_addresses_stay_legal(repo: Repo) -> None:
    """The trust anchor's ::/0 holds the IPv4-mapped block too; that is not an IPv4-mapped prefix."""
    state = repo.load()
    assert str(state.ca("ta").resources.ipv6) == "::/0"


@pytest.mark.parametrize(
    "value",
    ["1000000w", "1000000000000000000000000000000", "1000000000000000000000000000000s", "99999999999d"],
)
@pytest.mark.parametrize("key", ["manifest_validity", "certificate_validity", "ta_certificate_validity"])
def test_absurd_durations(repo: Repo, key: str, value: str) -> None:
    repo.write("rpki.yaml", RPKI_YAML + f"timing:\n  {key}: {value}\n")
    error = repo.errors()[0]
    assert error.file.name == "rpki.yaml" and error.line == 9, str(error)
    assert "too long" in error.message and error.hint, str(error)


def test_plan_max_age_is_bounded_too(repo: Repo) -> None:
    repo.write("rpki.yaml", RPKI_YAML + "plan_max_age: 10000000000000000000000w\n")
    error = repo.error()
    assert error.line == 8 and "too long" in error.message, str(error)


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("directory", "/tmp/" + "a" * 100_000),
        ("directory", "../" + "/".join(["b" * 200] * 30)),
        ("directory", "../" + "c" * 300),
        ("audit_log", "/var/log/" + "d" * 100_000),
        ("signer", "e" * 100_000),
    ],
)
def test_absurdly_long_paths(repo: Repo, key: str, value: str) -> None:
    if key == "directory":
        repo.write("rpki.yaml", RPKI_YAML.replace("directory: ../published", f"directory: {value}"))
        line = 3
    elif key == "signer":
        repo.write("rpki.yaml", RPKI_YAML.replace("directory: ../keys", f"directory: {value}"))
        line = 7
    else:
        repo.write("rpki.yaml", RPKI_YAML + f"audit_log: {value}\n")
        line = 8
    error = repo.error()
    assert error.line == line and "too long" in error.message and error.hint, str(error)[:500]
    assert len(str(error)) < 500


@pytest.mark.parametrize("key", ["directory", "audit_log"])
def test_a_path_no_file_name_can_hold_is_refused(repo: Repo, key: str) -> None:
    """A double-quoted YAML string can carry unpaired UTF-16 surrogates, which no file name encodes:
    resolving such a path raised UnicodeEncodeError out of the loader."""
    value = '"../\\ud800\\udc00"'
    if key == "directory":
        repo.write("rpki.yaml", RPKI_YAML.replace("directory: ../published", f"directory: {value}"))
        line = 3
    else:
        repo.write("rpki.yaml", RPKI_YAML + f"audit_log: {value}\n")
        line = 8
    error = repo.error()
    assert error.line == line and "surrogates" in error.message and error.hint, str(error)


@pytest.mark.parametrize("item", ["AS0", "0", "AS0-AS0", '"0-0"'])
def test_as0_is_not_a_ca_resource(repo: Repo, item: str) -> None:
    repo.write("cas/online.yaml", ONLINE_YAML.replace('"AS64496-AS64511"', f'"AS64496-AS64511", {item}'))
    error = repo.error()
    assert error.file.name == "online.yaml" and error.line == 4, str(error)
    assert "AS0" in error.message and error.hint and "ROA" in error.hint, str(error)


def test_a_range_from_as0_and_a_roa_for_as0_stay_legal(repo: Repo) -> None:
    repo.write("cas/online.yaml", ONLINE_YAML + "roas:\n  - {asn: AS0, prefix: 192.0.2.0/24}\n")
    state = repo.load()
    assert state.ca("ta").resources.asn.ranges == ((0, 2**32 - 1),)
    assert [roa.asn for roa in state.ca("online").roas] == [0]


@pytest.mark.parametrize(
    ("key", "value", "phrase"),
    [
        ("rsync_base", "rsync://rpki.example.net/repo/../etc/", "'.'"),
        ("rsync_base", "rsync://rpki.example.net/repo/./x/", "'.'"),
        ("rsync_base", "rsync://rpki.example.net/repo/.hidden/", "'.'"),
        ("rsync_base", "rsync://rpki.example.net/../", "'.'"),
        ("rsync_base", "rsync://rpki.example.net/" + "r" * 1_000_000 + "/", "too long"),
        ("rsync_base", "rsync://rpki.example.net/répo/", "ASCII"),
        ("rrdp_base", "https://rpki.example.net/rrdp/../x/", "'.'"),
        ("rrdp_base", "https://rpki.example.net/" + "r" * 5000 + "/", "too long"),
        ("rrdp_base", "https://rpki.exämple.net/rrdp/", "ASCII"),
    ],
)
def test_publication_uris_relying_parties_refuse(repo: Repo, key: str, value: str, phrase: str) -> None:
    if key == "rsync_base":
        text = RPKI_YAML.replace("rsync://rpki.example.net/repo/", value)
        line = 2
    else:
        text = RPKI_YAML.replace(
            "  directory: ../published\n", f"  directory: ../published\n  rrdp_base: {value}\n"
        )
        line = 4
    repo.write("rpki.yaml", text)
    error = repo.error()
    assert error.file.name == "rpki.yaml" and error.line == line, str(error)[:500]
    assert phrase in error.message and error.hint, str(error)[:500]
    assert len(str(error)) < 500


_HUGE = "0x" + "f" * 5000  # a valid YAML integer that Python cannot print


@pytest.mark.parametrize(
    ("file", "text", "line"),
    [
        ("rpki.yaml", RPKI_YAML + f"safety:\n  min_existing_vrps: {_HUGE}\n", 9),
        ("rpki.yaml", RPKI_YAML + f"roa_grouping:\n  aggregate_above: {_HUGE}\n", 9),
        ("cas/online.yaml", ONLINE_YAML + f"safety: {{min_existing_vrps: {_HUGE}}}\n", 7),
        ("cas/online.yaml", ONLINE_YAML + f"key_generation: {_HUGE}\n", 7),
        (
            "cas/online.yaml",
            ONLINE_YAML + f"roas: [{{asn: 1, prefix: 192.0.2.0/24, max_length: {_HUGE}}}]\n",
            7,
        ),
        ("cas/online.yaml", ONLINE_YAML + f"roas: [{{asn: 1, prefix: 192.0.2.0/24, comment: {_HUGE}}}]\n", 7),
        ("cas/online.yaml", ONLINE_YAML.replace("name: online", f"name: {_HUGE}"), 1),
    ],
)
def test_numbers_too_large_to_print_are_refused(repo: Repo, file: str, text: str, line: int) -> None:
    """A count past any need was accepted, then crashed apply after it published ("Exceeds the limit
    (4300 digits) for integer string conversion"), and every status, check and log after it."""
    repo.write(file, text)
    error = repo.errors()[0]
    assert error.file.name == Path(file).name and error.line == line, str(error)[:500]
    assert "4300" not in str(error) and len(str(error)) < 500, str(error)[:500]


def test_signer_names_are_plain(repo: Repo) -> None:
    repo.write("rpki.yaml", RPKI_YAML.replace("  default:", '  "default\\e[2J":'))
    errors = repo.errors()
    named = [e for e in errors if e.file.name == "rpki.yaml"]
    assert named and named[0].line == 5 and "signer name" in named[0].message, list(map(str, errors))
    assert not any("\x1b" in str(e) for e in errors)
