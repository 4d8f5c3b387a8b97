"""Bad input that one file shows on its own: files, YAML syntax, keys, types and value syntax.

Every test pins the exact file, line and column, since pointing at the right spot is the whole point.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from reconciler.desired import DesiredStateError, load

from .helpers import Repo, expect

# --- files and directories ------------------------------------------------------------------------------


def test_missing_repository(tmp_path: Path) -> None:
    with pytest.raises(DesiredStateError) as info:
        load(tmp_path / "nope")
    (problem,) = info.value.diagnostics
    assert (problem.file, problem.line, problem.column) == (tmp_path / "nope", 1, 1)
    assert "does not exist" in problem.message


def test_missing_rpki_yaml(repo: Repo) -> None:
    repo.remove("rpki.yaml")
    expect(repo.error(), repo, "rpki.yaml", 1, 1, "rpki.yaml is missing")


def test_missing_cas_directory(repo: Repo) -> None:
    shutil.rmtree(repo.root / "cas")
    expect(repo.error(), repo, "cas", 1, 1, "there is no cas/ directory")


def test_no_ca_files(repo: Repo) -> None:
    repo.remove("cas/ta.yaml")
    repo.remove("cas/online.yaml")
    repo.write("cas/README.md", "CAs go here\n")
    expect(repo.error(), repo, "cas", 1, 1, "no CA files")


def test_yml_extension_is_refused_not_ignored(repo: Repo) -> None:
    repo.write("cas/x.yml", "name: x\nparent: ta\nresources: {asn: [1]}\n")
    expect(repo.error(), repo, "cas/x.yml", 1, 1, "rename it to x.yaml")


def test_not_utf8(repo: Repo) -> None:
    (repo.root / "cas" / "x.yaml").write_bytes(b"name: x\nparent: caf\xe9\n")
    expect(repo.error(), repo, "cas/x.yaml", 2, 12, "not UTF-8")


# --- YAML syntax ----------------------------------------------------------------------------------------


def test_malformed_yaml(repo: Repo) -> None:
    repo.write(
        "cas/x.yaml",
        """\
        name: x
        parent: ta
        resources:
          asn: [1, 2
          ipv4: []
        """,
    )
    problem = repo.error()
    expect(problem, repo, "cas/x.yaml", 5, 7, "YAML syntax error: expected ',' or ']'")
    assert problem.hint == "while parsing a flow sequence that starts at line 4, column 8"


def test_duplicate_yaml_key(repo: Repo) -> None:
    repo.write("cas/x.yaml", "name: x\nparent: ta\nname: y\nresources: {asn: [1]}\n")
    expect(repo.error(), repo, "cas/x.yaml", 3, 1, "duplicate key")


def test_tab_indentation(repo: Repo) -> None:
    repo.write("cas/x.yaml", "name: x\nparent: ta\nresources:\n\tasn: [1]\n")
    expect(repo.error(), repo, "cas/x.yaml", 4, 1, "YAML does not allow tabs")


def test_control_character(repo: Repo) -> None:
    repo.write("cas/x.yaml", "name: x\x07\n")
    expect(repo.error(), repo, "cas/x.yaml", 1, 8, "YAML syntax error")


@pytest.mark.parametrize(
    ("text", "line", "column", "phrase"),
    [
        ("name: !!int abc\n", 1, 1, "YAML error: ValueError: invalid literal for int()"),
        ("name: !!bool maybe\n", 1, 1, "check explicit tags"),
        ("name: !!timestamp abc\n", 1, 7, "failed to construct timestamp"),
        ("name: !custom x\nparent: ta\nresources: {asn: [1]}\n", 1, 7, "with the YAML tag !custom"),
        ("name: 2024-01-01\nparent: ta\nresources: {asn: [1]}\n", 1, 7, "found a date"),
        ("name: x\nparent: ta\nresources: {asn: [1]}\nroas: *nowhere\n", 4, 7, "undefined alias"),
        ("a: " + "[" * 3000 + "\n", 1, 103, "nested too deeply"),  # the first list past 100 levels
    ],
)
def test_unusual_yaml_is_reported_not_raised(
    repo: Repo, text: str, line: int, column: int, phrase: str
) -> None:
    repo.write("cas/x.yaml", text)
    expect(repo.errors()[0], repo, "cas/x.yaml", line, column, phrase)


def test_merge_keys_work_and_errors_inside_them_are_located(repo: Repo) -> None:
    repo.write(
        "cas/x.yaml",
        """\
        name: x
        parent: online
        resources:
          <<: {asn: [AS64496]}
          ipv4: [192.0.2.0/24]
        """,
    )
    assert str(repo.load().ca("x").resources) == "AS64496; 192.0.2.0/24"
    repo.write("cas/x.yaml", "name: x\nparent: online\nresources:\n  <<: {asn: [AS1-AS0]}\n")
    expect(repo.error(), repo, "cas/x.yaml", 4, 3, "runs backwards")


@pytest.mark.parametrize("text", ["", "\n", "# nothing but a comment\n", "---\n"])
def test_empty_file(repo: Repo, text: str) -> None:
    repo.write("cas/x.yaml", text)
    expect(repo.error(), repo, "cas/x.yaml", 1, 1, "this file is empty")


def test_empty_rpki_yaml(repo: Repo) -> None:
    repo.write("rpki.yaml", "")
    expect(repo.error(), repo, "rpki.yaml", 1, 1, "this file is empty")


@pytest.mark.parametrize(
    ("text", "found"),
    [("- name: x\n", "found a list"), ("just some text\n", "found the text"), ("42\n", "the number 42")],
)
def test_top_level_must_be_a_mapping(repo: Repo, text: str, found: str) -> None:
    repo.write("cas/x.yaml", text)
    problem = repo.error()
    expect(problem, repo, "cas/x.yaml", 1, 1, "the top level must be a mapping")
    assert found in problem.message


# --- keys -----------------------------------------------------------------------------------------------


def test_unknown_key_in_ca(repo: Repo) -> None:
    repo.write("cas/x.yaml", "name: x\nparnet: ta\nresources: {asn: [1]}\n")
    problem = repo.error()
    expect(problem, repo, "cas/x.yaml", 2, 1, "unknown key 'parnet'")
    assert problem.hint == (
        "did you mean 'parent'? "
        "allowed keys here: name, trust_anchor, parent, repository, signer, key_generation, resources, roas, "
        "aspas, routers, children, "
        "safety"
    )


def test_unknown_key_in_roa(repo: Repo) -> None:
    repo.write(
        "cas/x.yaml",
        """\
        name: x
        parent: online
        resources: {ipv4: [192.0.2.0/24]}
        roas:
          - {asn: 1, prefix: 192.0.2.0/24, maxlength: 24}
        """,
    )
    problem = repo.error()
    expect(problem, repo, "cas/x.yaml", 5, 36, "unknown key 'maxlength' in roas[0]")
    assert problem.hint is not None and problem.hint.startswith("did you mean 'max_length'?")


def test_unknown_key_in_resources_without_close_match(repo: Repo) -> None:
    repo.write("cas/x.yaml", "name: x\nparent: ta\nresources:\n  asn: [1]\n  prefixes: []\n")
    problem = repo.error()
    expect(problem, repo, "cas/x.yaml", 5, 3, "unknown key 'prefixes' in resources")
    assert problem.hint == "allowed keys here: asn, ipv4, ipv6"


def test_unknown_key_in_publication(repo: Repo) -> None:
    repo.write(
        "rpki.yaml",
        """\
        publication:
          rsync_base: rsync://rpki.example.net/repo/
          directory: ../published
          rrdp_url: https://rpki.example.net/rrdp/
        signers:
          default: {type: file, directory: ../keys}
        """,
    )
    problem = repo.error()
    expect(problem, repo, "rpki.yaml", 4, 3, "unknown key 'rrdp_url' in publication")
    assert "allowed keys here: rsync_base, directory, rrdp_base" in str(problem.hint)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("http://rpki.example.net/rrdp/", "is not an https URI"),
        ("https://rpki.example.net/rrdp", "must end with '/'"),
        ("rsync://rpki.example.net/rrdp/", "is not an https URI"),
    ],
)
def test_rrdp_base_must_be_an_https_directory(repo: Repo, value: str, message: str) -> None:
    repo.write(
        "rpki.yaml",
        f"""\
        publication:
          rsync_base: rsync://rpki.example.net/repo/
          directory: ../published
          rrdp_base: {value}
        signers:
          default: {{type: file, directory: ../keys}}
        """,
    )
    problem = repo.error()
    expect(problem, repo, "rpki.yaml", 4, 14, message)


def test_unknown_top_level_key_in_rpki_yaml(repo: Repo) -> None:
    repo.write(
        "rpki.yaml",
        """\
        publication: {rsync_base: "rsync://h/m/", directory: ../published}
        signer:
          default: {type: file, directory: ../keys}
        """,
    )
    missing, unknown = repo.errors()
    expect(missing, repo, "rpki.yaml", 1, 1, "missing required key 'signers'")
    expect(unknown, repo, "rpki.yaml", 2, 1, "did you mean 'signers'?")


def test_unknown_timing_key(repo: Repo) -> None:
    repo.write("rpki.yaml", (repo.root / "rpki.yaml").read_text() + "timing:\n  manifest_lifetime: 1d\n")
    expect(repo.error(), repo, "rpki.yaml", 9, 3, "did you mean 'manifest_validity'?")


@pytest.mark.parametrize(
    ("text", "line", "column", "phrase"),
    [
        ("parent: ta\nresources: {asn: [1]}\n", 1, 1, "missing required key 'name'"),
        ("name: x\nparent: ta\n", 1, 1, "missing required key 'resources'"),
        (
            "name: x\nparent: online\nresources: {}\nroas:\n  - {prefix: 192.0.2.0/24}\n",
            5,
            5,
            "'asn' in roas[0]",
        ),
    ],
)
def test_missing_ca_keys(repo: Repo, text: str, line: int, column: int, phrase: str) -> None:
    repo.write("cas/x.yaml", text)
    expect(repo.error(), repo, "cas/x.yaml", line, column, phrase)


def test_missing_rsync_base(repo: Repo) -> None:
    repo.write(
        "rpki.yaml",
        """\
        signers:
          default: {type: file, directory: ../keys}
        publication:
          directory: ../published
        """,
    )
    problem = repo.error()
    expect(problem, repo, "rpki.yaml", 3, 1, "publication.rsync_base is missing")
    assert problem.hint is not None and "rsync URI" in problem.hint


def test_missing_publication_directory(repo: Repo) -> None:
    repo.write(
        "rpki.yaml",
        """\
        signers:
          default: {type: file, directory: ../keys}
        publication:
          rsync_base: rsync://rpki.example.net/repo/
        """,
    )
    expect(repo.error(), repo, "rpki.yaml", 3, 1, "missing required key 'directory' in publication")


def test_missing_signers(repo: Repo) -> None:
    repo.write("rpki.yaml", "publication: {rsync_base: 'rsync://h/m/', directory: ../published}\n")
    expect(repo.error(), repo, "rpki.yaml", 1, 1, "missing required key 'signers'")


def test_missing_publication(repo: Repo) -> None:
    repo.write("rpki.yaml", "# settings\nsigners:\n  default: {type: file, directory: ../keys}\n")
    expect(repo.error(), repo, "rpki.yaml", 2, 1, "missing required key 'publication'")


def test_signer_without_directory(repo: Repo) -> None:
    repo.write(
        "rpki.yaml",
        """\
        publication:
          rsync_base: rsync://rpki.example.net/repo/
          directory: ../published
        signers:
          default:
            type: file
        """,
    )
    expect(repo.error(), repo, "rpki.yaml", 5, 3, "missing required key 'directory' in signers.default")


def test_signer_type_must_be_known(repo: Repo) -> None:
    repo.write(
        "rpki.yaml",
        """\
        publication:
          rsync_base: rsync://rpki.example.net/repo/
          directory: ../published
        signers:
          default:
            type: hsm
            directory: ../keys
        """,
    )
    problem = repo.error()
    expect(problem, repo, "rpki.yaml", 6, 11, "signer type 'hsm' is not supported")
    assert problem.hint == "write 'file', 'pkcs11' or 'offline'"


# --- types ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "line", "column", "phrase"),
    [
        ("name: x\ntrust_anchor: yes\nresources: {asn: [1]}\n", 2, 15, "expected true or false"),
        ("name: x\nparent: ta\nresources: [1]\n", 3, 12, "expected a mapping of keys, found a list"),
        ("name: x\nparent: ta\nresources:\n  ipv4: 192.0.2.0/24\n", 4, 9, "expected a list, found the text"),
        ("name: 123\nparent: ta\nresources: {asn: [1]}\n", 1, 7, 'put it in quotes: "123"'),
        ("name: x\nparent: ta\nresources: {asn: [1]}\nroas:\n", 4, 1, "write [] for none"),
        (
            "name: x\nparent: ta\nresources: {asn: [[1]]}\n",
            3,
            19,
            "expected an AS number or range, found a list",
        ),
        ("name: x\nparent: ta\nresources:\n  ipv6: [1]\n", 4, 10, "expected an IPv6 prefix or range"),
        (
            "name: x\nparent: ta\nsigner: 7\nresources: {asn: [1]}\n",
            3,
            9,
            "expected text, found the number 7",
        ),
        ("name: x\nparent: ta\nresources: {asn: [1]}\nroas: [{asn: 1, prefix: 1}]\n", 4, 25, "IP prefix"),
        ("name: x\nparent: ta\nresources: {asn: [1]}\nroas: [{asn: 1.5, prefix: 1}]\n", 4, 14, "AS number"),
    ],
)
def test_wrong_types(repo: Repo, text: str, line: int, column: int, phrase: str) -> None:
    repo.write("cas/x.yaml", text)
    found = repo.errors()
    expect(found[0], repo, "cas/x.yaml", line, column, phrase)


def test_rpki_yaml_section_of_the_wrong_type(repo: Repo) -> None:
    repo.write("rpki.yaml", "publication: rsync://h/m/\nsigners:\n  default: {type: file, directory: ../k}\n")
    expect(repo.error(), repo, "rpki.yaml", 1, 14, "publication: expected a mapping of keys")


# --- rsync_base -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "phrase"),
    [
        ("rsync://rpki.example.net/repo", "add the trailing slash: rsync://rpki.example.net/repo/"),
        ("rsync://rpki.example.net/repo/sub", "add the trailing slash: rsync://rpki.example.net/repo/sub/"),
        ("https://rpki.example.net/repo/", "is not an rsync URI"),
        ("rsync://rpki.example.net/", "needs a host and an rsync module"),
        ("rsync:///repo/", "needs a host and an rsync module"),
        ("'rsync://rpki.example.net/my repo/'", "needs a host and an rsync module"),
        ("''", "expected an rsync URI, found empty text"),
    ],
)
def test_rsync_base(repo: Repo, value: str, phrase: str) -> None:
    repo.write(
        "rpki.yaml",
        f"""\
        publication:
          rsync_base: {value}
          directory: ../published
        signers:
          default: {{type: file, directory: ../keys}}
        """,
    )
    expect(repo.error(), repo, "rpki.yaml", 2, 15, phrase)


# --- CA names -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["a.b", "a_b", "-ab", "x" * 65, "ab c", "émile", "'a/b'"])
def test_bad_ca_name(repo: Repo, name: str) -> None:
    repo.write("cas/x.yaml", f"name: {name}\nparent: ta\nresources: {{asn: [1]}}\n")
    problem = repo.error()
    expect(problem, repo, "cas/x.yaml", 1, 7, "is not a usable CA name")
    assert "letters, digits and '-'" in str(problem.hint)


@pytest.mark.parametrize("name", ["A", "'007'", "x" * 64, "a-b-0", "TA2"])
def test_good_ca_names(repo: Repo, name: str) -> None:
    repo.write("cas/x.yaml", f"name: {name}\nparent: ta\nresources: {{asn: [1]}}\n")
    assert repo.load().ca(name.strip("'")).parent == "ta"


def test_bad_parent_name_syntax(repo: Repo) -> None:
    repo.write("cas/x.yaml", "name: x\nparent: ta.example\nresources: {asn: [1]}\n")
    expect(repo.error(), repo, "cas/x.yaml", 2, 9, "'ta.example' is not a usable CA name")


# --- value syntax: AS numbers and prefixes --------------------------------------------------------------


@pytest.mark.parametrize(
    ("item", "column", "phrase"),
    [
        ('"AS64511-AS64496"', 9, "runs backwards"),
        ('"64511-64496"', 9, "runs backwards"),
        ("4294967296", 9, "AS number 4294967296 is out of range"),
        ("AS4294967296", 9, "out of range (0 to 4294967295)"),
        ('"AS1-AS4294967296"', 9, "out of range"),
        ("ASN1", 9, "is not an AS number"),
        ("-1", 9, "AS number -1 is out of range"),
        ("true", 9, "expected an AS number or range, found true"),
    ],
)
def test_bad_asn_in_resources(repo: Repo, item: str, column: int, phrase: str) -> None:
    repo.write("cas/x.yaml", f"name: x\nparent: ta\nresources:\n  asn: [{item}]\n")
    problem = repo.error()
    expect(problem, repo, "cas/x.yaml", 4, column, phrase)
    assert problem.message.startswith("resources.asn[0]: ")


@pytest.mark.parametrize(
    ("family", "item", "phrase"),
    [
        ("ipv4", "192.0.2.1/24", "did you mean 192.0.2.0/24?"),
        ("ipv4", '"2001:db8::/32"', "is not an IPv4 prefix"),
        ("ipv4", "banana", "is not an IP prefix"),
        ("ipv4", "192.0.2.0", "has no prefix length"),
        ("ipv4", "192.0.2.0/33", "is not an IP prefix"),
        ("ipv4", "192.0.2.9-192.0.2.1", "runs backwards"),
        ("ipv6", '"2001:db8::1/32"', "did you mean 2001:db8::/32?"),
        ("ipv6", "192.0.2.0/24", "is not an IPv6 prefix"),
        ("ipv6", '"2001:db8::-192.0.2.1"', "is not an IPv6 range"),
    ],
)
def test_bad_prefix_in_resources(repo: Repo, family: str, item: str, phrase: str) -> None:
    repo.write("cas/x.yaml", f"name: x\nparent: ta\nresources:\n  {family}:\n    - {item}\n")
    problem = repo.error()
    expect(problem, repo, "cas/x.yaml", 5, 7, phrase)
    assert problem.message.startswith(f"resources.{family}[0]: ")


def test_roa_asn_out_of_range(repo: Repo) -> None:
    repo.write(
        "cas/x.yaml",
        """\
        name: x
        parent: online
        resources:
          ipv4: [192.0.2.0/24]
        roas:
          - {asn: AS4294967296, prefix: 192.0.2.0/24}
        """,
    )
    problem = repo.error()
    expect(problem, repo, "cas/x.yaml", 6, 11, "roas[0].asn: AS number 4294967296 is out of range")
    assert problem.hint == "0 to 4294967295"


def test_roa_asn_cannot_be_a_range(repo: Repo) -> None:
    repo.write(
        "cas/x.yaml",
        "name: x\nparent: online\nresources: {ipv4: [192.0.2.0/24]}\nroas:\n"
        '  - {asn: "AS1-AS2", prefix: 192.0.2.0/24}\n',
    )
    expect(repo.error(), repo, "cas/x.yaml", 5, 11, "'AS1-AS2' is not an AS number")


def test_roa_prefix_with_host_bits(repo: Repo) -> None:
    repo.write(
        "cas/x.yaml",
        """\
        name: x
        parent: online
        resources:
          ipv4: [192.0.2.0/24]
        roas:
          - {asn: 1, prefix: 192.0.2.1/24}
        """,
    )
    problem = repo.error()
    expect(problem, repo, "cas/x.yaml", 6, 22, "roas[0].prefix: '192.0.2.1/24' has host bits set")
    assert problem.hint == "did you mean 192.0.2.0/24?"


def test_roa_max_length_must_be_a_number(repo: Repo) -> None:
    repo.write(
        "cas/x.yaml",
        "name: x\nparent: online\nresources: {ipv4: [192.0.2.0/24]}\nroas:\n"
        "  - {asn: 1, prefix: 192.0.2.0/24, max_length: -1}\n",
    )
    expect(repo.error(), repo, "cas/x.yaml", 5, 48, "expected a prefix length")


# --- timing ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "phrase"),
    [("1x", "'1x' is not a duration"), ("0h", "must be longer than zero"), ("1.5", "found the number 1.5")],
)
def test_bad_duration(repo: Repo, value: str, phrase: str) -> None:
    repo.write(
        "rpki.yaml", (repo.root / "rpki.yaml").read_text() + f"timing:\n  manifest_validity: {value}\n"
    )
    expect(repo.error(), repo, "rpki.yaml", 9, 22, phrase)


def test_diagnostic_string_form(repo: Repo, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(repo.root)
    repo.write("cas/x.yaml", "name: x\nparnet: ta\nresources: {asn: [1]}\n")
    with pytest.raises(DesiredStateError) as info:
        repo.load()
    assert str(info.value) == (
        "cas/x.yaml:2:1: unknown key 'parnet' (did you mean 'parent'? "
        "allowed keys here: name, trust_anchor, parent, repository, signer, key_generation, resources, roas, "
        "aspas, routers, children, "
        "safety)"
    )


@pytest.mark.parametrize(
    ("value", "phrase"),
    [
        ('"../pub\\0lished"', "cannot contain a NUL character"),
        ("~no-such-user-here/out", "cannot find the home directory"),
        ("''", "expected a directory path, found empty text"),
    ],
)
def test_bad_publication_directory(repo: Repo, value: str, phrase: str) -> None:
    repo.write(
        "rpki.yaml",
        f"publication:\n  rsync_base: rsync://h/m/\n  directory: {value}\n"
        "signers:\n  default: {type: file, directory: ../keys}\n",
    )
    expect(repo.error(), repo, "rpki.yaml", 3, 14, phrase)


def test_absurdly_long_asn(repo: Repo) -> None:
    repo.write("cas/x.yaml", f'name: x\nparent: ta\nresources: {{asn: ["AS{"9" * 5000}"]}}\n')
    expect(repo.error(), repo, "cas/x.yaml", 3, 19, "that is not an AS number")
