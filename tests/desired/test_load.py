"""Loading good input: the bundled example, ordering, locations, digest and the forms the format accepts."""

from __future__ import annotations

import ipaddress
import os
from datetime import timedelta
from pathlib import Path

import pytest

from reconciler.desired import DesiredStateError, Diagnostic, Timing, load
from reconciler.desired.schema import format_duration, parse_duration

from .helpers import Repo

PROJECT = Path(__file__).resolve().parents[2]


def test_bundled_state_loads() -> None:
    state = load(PROJECT / "state")

    assert [ca.name for ca in state.cas] == ["ta", "online", "example-isp"]
    assert state.trust_anchor.name == "ta"
    assert state.root == PROJECT / "state"
    assert state.publication.rsync_base == "rsync://rpki.example.net/repo/"
    assert state.publication.directory == PROJECT / "published"
    assert state.signers["default"].type == "file"
    assert state.signers["default"].directory == PROJECT / "keys"
    assert state.timing == Timing()
    assert len(state.digest) == 64

    ta, online, isp = state.cas
    assert ta.trust_anchor and ta.parent is None
    assert str(ta.resources) == "AS0-AS4294967295; 0.0.0.0/0; ::/0"
    assert online.parent == "ta"
    assert str(online.resources) == (
        "AS64496-AS64511, AS65536-AS65551; 192.0.2.0/24, 198.51.100.0/24, 203.0.113.0/24; 2001:db8::/32"
    )
    assert isp.parent == "online" and isp.signer == "default"
    assert str(isp.resources) == "AS64496-AS64497; 192.0.2.0/24, 198.51.100.0/25; 2001:db8:1000::/36"
    assert [roa.vrp for roa in isp.roas] == [
        (64496, "192.0.2.0/24", 24),
        (64496, "198.51.100.0/25", 26),
        (64497, "2001:db8:1000::/36", 48),
        (0, "192.0.2.128/25", 25),
    ]
    assert [roa.comment for roa in isp.roas] == [None, "anycast", None, None]
    assert state.children("online") == (isp,)


def test_bundled_state_locations() -> None:
    state = load(PROJECT / "state")
    isp = state.ca("example-isp")
    assert isp.where is not None
    assert (isp.where.file, isp.where.line, isp.where.column) == (
        PROJECT / "state/cas/members/example-isp.yaml",
        2,
        1,
    )
    assert [(roa.where.line, roa.where.column) for roa in isp.roas if roa.where] == [
        (9, 5),
        (10, 5),
        (11, 5),
        (12, 5),
    ]


def test_order_is_parents_first_then_by_name(repo: Repo) -> None:
    repo.write("cas/b.yaml", "name: b\nparent: online\nresources: {asn: [AS64500]}\n")
    repo.write("cas/a.yaml", "name: a\nparent: b\nresources: {asn: [AS64500]}\n")
    repo.write("cas/c.yaml", "name: c\nparent: ta\nresources: {asn: [AS1]}\n")
    repo.write("cas/zz/aa.yaml", "name: aa\nparent: online\nresources: {asn: [AS64501]}\n")

    names = [ca.name for ca in repo.load().cas]

    assert names == ["ta", "c", "online", "aa", "b", "a"]


def test_ca_and_roa_locations(repo: Repo) -> None:
    path = repo.write(
        "cas/members/isp.yaml",
        """\
        # an ISP
        name: isp
        parent: online
        resources:
          ipv4: [192.0.2.0/25]
        roas:
          - asn: AS64496
            prefix: 192.0.2.0/25
          - {asn: 64496, prefix: 192.0.2.0/26}
        """,
    )
    isp = repo.load().ca("isp")
    assert isp.where is not None and (isp.where.file, isp.where.line, isp.where.column) == (path, 2, 1)
    assert [(r.where.line, r.where.column) for r in isp.roas if r.where] == [(7, 5), (9, 5)]
    assert str(isp.where) == f"{path}:2:1"


@pytest.mark.parametrize(
    ("written", "expected"),
    [
        ("AS64496", "AS64496"),
        ("64496", "AS64496"),
        ('"64496"', "AS64496"),
        ("as64496", "AS64496"),
        ("AS0-AS1", "AS0-AS1"),
        ("4294967295", "AS4294967295"),
        ('"64496-64511"', "AS64496-AS64511"),
        ('"AS64496-AS64511"', "AS64496-AS64511"),
        ("AS64496-AS64511", "AS64496-AS64511"),
        ("0-4294967295", "AS0-AS4294967295"),
    ],
)
def test_asn_forms_in_resources(repo: Repo, written: str, expected: str) -> None:
    repo.write("cas/x.yaml", f"name: x\nparent: ta\nresources:\n  asn: [{written}]\n")
    assert str(repo.load().ca("x").resources.asn) == expected


@pytest.mark.parametrize("written", ["AS64496", "64496", '"64496"', "as64496", '"AS64496"'])
def test_asn_forms_in_roas(repo: Repo, written: str) -> None:
    repo.write(
        "cas/x.yaml",
        f"name: x\nparent: online\nresources: {{ipv4: [192.0.2.0/24]}}\n"
        f"roas:\n  - {{asn: {written}, prefix: 192.0.2.0/24}}\n",
    )
    assert repo.load().ca("x").roas[0].asn == 64496


def test_roa_asn_need_not_be_held_by_the_ca(repo: Repo) -> None:
    repo.write(
        "cas/x.yaml",
        """\
        name: x
        parent: online
        resources: {ipv4: [192.0.2.0/24]}
        roas: [{asn: AS65000, prefix: 192.0.2.0/24, max_length: 32}]
        """,
    )
    (roa,) = repo.load().ca("x").roas
    assert roa.vrp == (65000, "192.0.2.0/24", 32)


def test_optional_resource_families_and_ranges(repo: Repo) -> None:
    repo.write(
        "cas/x.yaml",
        """\
        name: x
        parent: online
        resources:
          ipv4: [192.0.2.0-192.0.2.99]
        roas:
          - {asn: 1, prefix: 192.0.2.64/27}
        """,
    )
    x = repo.load().ca("x")
    assert str(x.resources) == "192.0.2.0-192.0.2.99"
    assert not x.resources.asn and not x.resources.ipv6
    assert x.roas[0].prefix == ipaddress.ip_network("192.0.2.64/27")
    assert x.roas[0].max_length == 27


def test_max_length_defaults_to_prefix_length_for_both_families(repo: Repo) -> None:
    repo.write(
        "cas/x.yaml",
        """\
        name: x
        parent: online
        resources: {ipv4: [192.0.2.0/24], ipv6: ["2001:db8::/32"]}
        roas:
          - {asn: 1, prefix: 192.0.2.0/24}
          - {asn: 1, prefix: "2001:db8:ff00::/40"}
          - {asn: 1, prefix: "2001:db8::/32", max_length: 128}
        """,
    )
    assert [r.max_length for r in repo.load().ca("x").roas] == [24, 40, 128]


def test_signer_is_default_unless_named(repo: Repo) -> None:
    repo.write(
        "rpki.yaml",
        """\
        publication: {rsync_base: "rsync://h/m/", directory: /srv/rpki}
        signers:
          default: {type: file, directory: /var/lib/keys}
          other: {type: file, directory: /var/lib/other-keys}
        """,
    )
    repo.write("cas/x.yaml", "name: x\nparent: ta\nsigner: other\nresources: {asn: [1]}\n")
    state = repo.load()
    assert state.ca("x").signer == "other"
    assert state.ca("online").signer == "default"
    assert set(state.signers) == {"default", "other"}


# --- paths -----------------------------------------------------------------------------------------------


def test_relative_paths_are_relative_to_rpki_yaml_not_cwd(
    repo: Repo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    state = repo.load()
    assert state.publication.directory == tmp_path.resolve() / "published"
    assert state.signers["default"].directory == tmp_path.resolve() / "keys"


def test_absolute_paths_are_kept(repo: Repo, tmp_path: Path) -> None:
    out, keys = tmp_path / "out" / "pub", tmp_path / "secret" / "keys"
    repo.write(
        "rpki.yaml",
        f"""\
        publication:
          rsync_base: rsync://rpki.example.net/repo/sub/
          directory: {out}
        signers:
          default: {{type: file, directory: "{keys}"}}
        """,
    )
    state = repo.load()
    assert state.publication.directory == out.resolve()
    assert state.publication.rsync_base == "rsync://rpki.example.net/repo/sub/"
    assert state.signers["default"].directory == keys.resolve()


def test_paths_are_normalised(repo: Repo, tmp_path: Path) -> None:
    repo.write("rpki.yaml", RPKI_WITH_DOTS)
    state = repo.load()
    assert state.publication.directory == tmp_path.resolve() / "published"
    assert state.publication.directory.is_absolute()


RPKI_WITH_DOTS = """\
publication:
  rsync_base: rsync://rpki.example.net/repo/
  directory: ./../state/../published/
signers:
  default: {type: file, directory: ../keys}
"""


def test_load_accepts_a_relative_repo_path(repo: Repo, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(repo.root.parent)
    state = load(Path("state"))
    assert state.root == repo.root.resolve()


# --- files ----------------------------------------------------------------------------------------------


def test_nested_directories_and_hidden_files(repo: Repo) -> None:
    repo.write("cas/a/b/c/deep.yaml", "name: deep\nparent: ta\nresources: {asn: [1]}\n")
    repo.write("cas/.backup.yaml", "this: is ignored")
    repo.write("cas/.git/x.yaml", "ignored too")
    repo.write("cas/README.md", "# not YAML, not a CA")
    assert {ca.name for ca in repo.load().cas} == {"ta", "online", "deep"}


def test_digest_covers_every_loaded_file(repo: Repo) -> None:
    first = repo.load().digest
    assert repo.load().digest == first
    repo.write("cas/online.yaml", ONLINE_COMMENTED)
    second = repo.load().digest
    assert second != first
    repo.write("rpki.yaml", (repo.root / "rpki.yaml").read_text() + "# a comment\n")
    assert repo.load().digest not in (first, second)


ONLINE_COMMENTED = """\
# only a comment changed, but the bytes did, so the digest must too
name: online
parent: ta
resources:
  asn: ["AS64496-AS64511"]
  ipv4: [192.0.2.0/24, 198.51.100.0/24]
  ipv6: ["2001:db8::/32"]
"""


def test_digest_does_not_depend_on_where_the_repo_is(tmp_path: Path) -> None:
    one = Repo.create(tmp_path / "one")
    two = Repo.create(tmp_path / "two")
    assert one.load().digest == two.load().digest


# --- timing ---------------------------------------------------------------------------------------------


def test_timing_section(repo: Repo) -> None:
    repo.write(
        "rpki.yaml",
        """\
        publication: {rsync_base: "rsync://h/m/", directory: ../out}
        signers: {default: {type: file, directory: ../keys}}
        timing:
          manifest_validity: 12h
          manifest_renew_before: 30m
          certificate_validity: 7d
          certificate_renew_before: 86400
          ta_certificate_validity: 52w1d12h
        """,
    )
    timing = repo.load().timing
    assert timing.manifest_validity == timedelta(hours=12)
    assert timing.manifest_renew_before == timedelta(minutes=30)
    assert timing.certificate_validity == timedelta(days=7)
    assert timing.certificate_renew_before == timedelta(days=1)
    assert timing.ta_certificate_validity == timedelta(weeks=52, hours=36)
    assert timing.ta_certificate_renew_before == Timing().ta_certificate_renew_before


def test_timing_may_be_omitted(repo: Repo) -> None:
    assert repo.load().timing == Timing()


@pytest.mark.parametrize(
    ("written", "expected"),
    [
        ("24h", timedelta(hours=24)),
        ("8h", timedelta(hours=8)),
        ("52w", timedelta(weeks=52)),
        ("4w", timedelta(weeks=4)),
        ("30m", timedelta(minutes=30)),
        ("7d", timedelta(days=7)),
        ("90s", timedelta(seconds=90)),
        ("1d12h", timedelta(hours=36)),
        ("1w 2d", timedelta(days=9)),
        ("8H", timedelta(hours=8)),
        (3600, timedelta(hours=1)),
    ],
)
def test_parse_duration(written: str | int, expected: timedelta) -> None:
    assert parse_duration(written) == expected


@pytest.mark.parametrize("written", ["", "h", "1x", "1.5h", "-1h", "1h-", 0, "0h", -5, True, 1.5, None, []])
def test_parse_duration_refuses(written: object) -> None:
    with pytest.raises(ValueError, match=r"duration"):
        parse_duration(written)


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (timedelta(hours=24), "1d"),
        (timedelta(hours=8), "8h"),
        (timedelta(weeks=52), "52w"),
        (timedelta(days=9, minutes=1), "1w2d1m"),
        (timedelta(0), "0s"),
    ],
)
def test_format_duration(value: timedelta, text: str) -> None:
    assert format_duration(value) == text
    if value:
        assert parse_duration(text) == value


# --- diagnostics as text --------------------------------------------------------------------------------


def test_diagnostic_text_is_relative_to_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    inside = Diagnostic(tmp_path / "cas" / "x.yaml", 3, 9, "bad thing", "fix it")
    outside = Diagnostic(Path("/somewhere/else.yaml"), 1, 2, "no hint", None)
    assert str(inside) == f"cas{os.sep}x.yaml:3:9: bad thing (fix it)"
    assert str(outside) == "/somewhere/else.yaml:1:2: no hint"


def test_error_text_is_one_diagnostic_per_line() -> None:
    error = DesiredStateError(
        [Diagnostic(Path("/b.yaml"), 2, 1, "second"), Diagnostic(Path("/a.yaml"), 5, 3, "first", "h")]
    )
    assert str(error) == "/a.yaml:5:3: first (h)\n/b.yaml:2:1: second"
    assert [d.message for d in error.diagnostics] == ["first", "second"]
