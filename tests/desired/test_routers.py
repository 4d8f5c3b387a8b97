"""BGPsec router keys in a CA file (``routers:``): the routers' real requests and bare public keys load into
:class:`RouterIntent`, every problem of a key file or an entry is reported at the line that has it with a
fix, and the key files are part of the desired state's digest."""

from __future__ import annotations

import shutil
import textwrap
from collections.abc import Callable
from ipaddress import IPv4Address
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from reconciler.desired import DesiredStateError
from reconciler.desired.model import RouterIntent
from reconciler.desired.routerkeys import MAX_KEY_BYTES
from reconciler.resources import AsnSet

from .helpers import RPKI_YAML, TA_YAML, Repo, expect

PROTOCOLS = Path(__file__).resolve().parents[1] / "fixtures" / "real-world" / "protocols"
KRILL_CSR = PROTOCOLS / "krill" / "bgpsec" / "router-csr.der"
RPKI_RS_CSR = PROTOCOLS / "rpki-rs" / "router-csr.der"

#: A CA holding three AS numbers; the ``routers:`` a test appends is line 6, its first entry line 7.
MEMBER = """\
name: member
parent: online
resources:
  asn: ["AS64500-AS64502"]
  ipv4: [192.0.2.0/25]
"""
FIRST = len(MEMBER.splitlines()) + 2
MEMBER_FILE = "cas/member.yaml"


def with_routers(repo: Repo, routers: str) -> None:
    """cas/member.yaml with ``routers:`` and the entries given (indented along with the code)."""
    repo.write(MEMBER_FILE, MEMBER + "routers:\n" + textwrap.indent(textwrap.dedent(routers), "  "))


def put(repo: Repo, relative: str, data: bytes) -> Path:
    path = repo.root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def spki(key: ec.EllipticCurvePublicKey | rsa.RSAPublicKey, encoding: serialization.Encoding) -> bytes:
    return key.public_bytes(encoding, serialization.PublicFormat.SubjectPublicKeyInfo)


def request(key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) -> bytes:
    """A router's PKCS#10 request, signed by its key."""
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ROUTER-0000FBF4")])
    built = x509.CertificateSigningRequestBuilder().subject_name(name).sign(key, hashes.SHA256())
    return built.public_bytes(serialization.Encoding.DER)


def p256() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def errors(repo: Repo) -> list[tuple[int, int, str]]:
    with pytest.raises(DesiredStateError) as info:
        repo.load()
    return [(d.line, d.column, f"{d.message} ({d.hint})") for d in info.value.diagnostics]


# --- what loads -----------------------------------------------------------------------------------------


VALID = """\
- key: routers/real.der
  asns: [AS64502, 64500]
  router_id: 192.0.2.1
  comment: edge router in Amsterdam
- key: routers/edge.csr
  asns: [AS64501]
"""

#: The routers' real requests (the two files hold one and the same request).
REAL = pytest.mark.parametrize("real", [KRILL_CSR, RPKI_RS_CSR], ids=["krill", "rpki-rs"])


def _with_real(repo: Repo, real: Path) -> Path:
    """The real request at routers/real.der and a request made here at routers/edge.csr, in ``VALID``."""
    shutil.copyfile(real, put(repo, "routers/real.der", b""))
    put(repo, "routers/edge.csr", request(p256()))
    with_routers(repo, VALID)
    return repo.root / "routers/edge.csr"


def _independent(path: Path) -> tuple[bytes, bytes]:
    """The request's key (SubjectPublicKeyInfo DER) and its SHA-1 key identifier, by cryptography alone."""
    key = x509.load_der_x509_csr(path.read_bytes()).public_key()
    assert isinstance(key, ec.EllipticCurvePublicKey)
    return spki(key, serialization.Encoding.DER), x509.SubjectKeyIdentifier.from_public_key(key).digest


def _check_real(routers: tuple[RouterIntent, ...], repo: Repo, real: Path) -> None:
    (key, key_id), edge = _independent(real), _independent(repo.root / "routers/edge.csr")
    assert len(key_id) == 20
    assert routers == (
        RouterIntent(
            key=key,
            key_id=key_id,
            asns=AsnSet.of([(64500, 64500), (64502, 64502)]),
            router_id=IPv4Address("192.0.2.1"),
            file="routers/real.der",
            comment="edge router in Amsterdam",
        ),
        RouterIntent(key=edge[0], key_id=edge[1], asns=AsnSet.of([(64501, 64501)]), file="routers/edge.csr"),
    )
    # In the file's order, each pointing at its own entry.
    assert [(r.where.file, r.where.line, r.where.column) for r in routers if r.where] == [
        (repo.root / MEMBER_FILE, FIRST, 5),
        (repo.root / MEMBER_FILE, FIRST + 4, 5),
    ]


@REAL
def test_the_routers_real_requests_load(repo: Repo, real: Path) -> None:
    _with_real(repo, real)
    _check_real(repo.load().ca("member").routers, repo, real)


@REAL
def test_the_parse_cache_gives_the_same_routers_and_lines(repo: Repo, tmp_path: Path, real: Path) -> None:
    repo.cache_key = lambda _: b"k" * 32
    (tmp_path / "published").mkdir()
    _with_real(repo, real)
    first = repo.load()
    second = repo.load()  # the CA file from the cache now
    assert second == first
    _check_real(second.ca("member").routers, repo, real)


def test_the_two_real_requests_are_one_key_so_one_entry(repo: Repo) -> None:
    shutil.copyfile(KRILL_CSR, put(repo, "routers/krill.der", b""))
    shutil.copyfile(RPKI_RS_CSR, put(repo, "routers/rpki-rs.der", b""))
    with_routers(
        repo,
        """\
        - {key: routers/krill.der, asns: [AS64500]}
        - {key: routers/rpki-rs.der, asns: [AS64501]}
        """,
    )
    problem = repo.error()
    expect(problem, repo, MEMBER_FILE, FIRST + 1, 11, f"the same router key as the entry at line {FIRST}")


@pytest.mark.parametrize("encoding", [serialization.Encoding.DER, serialization.Encoding.PEM])
def test_a_bare_public_key_loads(repo: Repo, encoding: serialization.Encoding) -> None:
    public = p256().public_key()
    put(repo, "routers/edge.key", spki(public, encoding))
    with_routers(repo, "- {key: routers/edge.key, asns: [AS64500]}\n")
    (found,) = repo.load().ca("member").routers
    assert found.key == spki(public, serialization.Encoding.DER)
    assert found.key_id == x509.SubjectKeyIdentifier.from_public_key(public).digest
    assert (found.asns, found.router_id, found.file) == (
        AsnSet.of([(64500, 64500)]),
        None,
        "routers/edge.key",
    )


def test_a_ca_without_routers_has_none(repo: Repo) -> None:
    repo.write(MEMBER_FILE, MEMBER)
    assert repo.load().ca("member").routers == ()


def test_the_key_files_are_in_the_digest(repo: Repo) -> None:
    edge = _with_real(repo, KRILL_CSR)
    before = repo.load().digest
    assert repo.load().digest == before
    # Another key, the YAML unchanged: a plan made for the old key no longer matches.
    edge.write_bytes(request(p256()))
    after = repo.load().digest
    assert after != before
    # The same key in PEM is other bytes, so another digest too: the digest is of the files as committed.
    edge.write_bytes(x509.load_der_x509_csr(edge.read_bytes()).public_bytes(serialization.Encoding.PEM))
    assert repo.load().digest not in {before, after}


# --- the key file ---------------------------------------------------------------------------------------

#: The value of ``key`` in a block entry starts on the entry's line, column 10.
ENTRY = "- key: {key}\n  asns: [AS64500]\n"


def _key_error(repo: Repo, key: str, phrase: str) -> str:
    """The one problem of a one-entry ``routers``, at the entry's ``key``; returns its hint."""
    with_routers(repo, ENTRY.format(key=key))
    problem = repo.error()
    expect(problem, repo, MEMBER_FILE, FIRST, 10, phrase)
    assert problem.message.startswith("routers[0].key: "), problem.message
    assert problem.hint
    return problem.hint


def test_a_missing_key_file(repo: Repo) -> None:
    hint = _key_error(repo, "routers/edge.csr", "routers/edge.csr does not exist")
    assert "commit the router's PKCS#10 request or its public key" in hint


def test_a_key_file_outside_the_repository(repo: Repo) -> None:
    (repo.root.parent / "edge.der").write_bytes(request(p256()))
    hint = _key_error(repo, "../edge.der", "lies outside the desired-state repository")
    assert hint == "copy the router's key file into the repository and name that copy"


def test_a_link_that_leaves_the_repository_is_not_followed(repo: Repo) -> None:
    outside = repo.root.parent / "edge.der"
    outside.write_bytes(request(p256()))
    (repo.root / "routers").mkdir()
    (repo.root / "routers/edge.der").symlink_to(outside)
    _key_error(repo, "routers/edge.der", "lies outside the desired-state repository")


def test_a_key_file_that_is_a_directory(repo: Repo) -> None:
    (repo.root / "routers").mkdir()
    _key_error(repo, "routers", "routers is not a regular file")


def test_a_key_file_too_large(repo: Repo) -> None:
    put(repo, "routers/edge.pem", b"#" * (MAX_KEY_BYTES + 1))
    hint = _key_error(
        repo, "routers/edge.pem", f"too large for a router's key file ({MAX_KEY_BYTES + 1} bytes)"
    )
    assert "a few hundred bytes" in hint


def test_a_key_path_not_relative_to_the_repository(repo: Repo) -> None:
    with_routers(repo, ENTRY.format(key="/etc/edge.csr"))
    expect(repo.error(), repo, MEMBER_FILE, FIRST, 10, "is not relative to the desired-state directory")


@pytest.mark.parametrize(
    ("key", "phrase"),
    [
        (lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048), "this one is RSA"),
        (lambda: ec.generate_private_key(ec.SECP384R1()), "this one is ECDSA on secp384r1"),
    ],
    ids=["rsa", "p384"],
)
def test_a_key_in_another_algorithm_is_refused(
    repo: Repo, key: Callable[[], ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey], phrase: str
) -> None:
    private = key()
    put(repo, "routers/edge.csr", request(private))
    hint = _key_error(repo, "routers/edge.csr", phrase)
    assert "ECDSA on P-256" in hint and "ask the router's operator" in hint
    # A bare public key in that algorithm is refused the same way.
    put(repo, "routers/edge.csr", spki(private.public_key(), serialization.Encoding.PEM))
    _key_error(repo, "routers/edge.csr", phrase)


def test_a_request_whose_signature_does_not_verify(repo: Repo) -> None:
    altered = bytearray(request(p256()))
    altered[-5] ^= 0x01  # inside the signature
    put(repo, "routers/edge.csr", bytes(altered))
    _key_error(repo, "routers/edge.csr", "routers/edge.csr: the request's signature does not verify")


def test_a_file_that_holds_no_key(repo: Repo) -> None:
    put(repo, "routers/edge.csr", b"router edge1, key to follow\n")
    _key_error(repo, "routers/edge.csr", "neither a PKCS#10 request nor a public key")


def test_the_same_key_twice_names_the_first_line(repo: Repo) -> None:
    private = p256()
    put(repo, "routers/edge.csr", request(private))
    put(repo, "routers/edge.pem", spki(private.public_key(), serialization.Encoding.PEM))
    with_routers(
        repo,
        """\
        - {key: routers/edge.csr, asns: [AS64500]}
        - {key: routers/edge.pem, asns: [AS64501]}
        """,
    )
    problem = repo.error()
    expect(problem, repo, MEMBER_FILE, FIRST + 1, 11, f"the same router key as the entry at line {FIRST}")
    assert "keep one entry per key, listing all its AS numbers" in str(problem.hint)


def test_one_key_in_two_cas_is_not_an_error(repo: Repo) -> None:
    shutil.copyfile(KRILL_CSR, put(repo, "routers/krill.der", b""))
    with_routers(repo, "- {key: routers/krill.der, asns: [AS64500]}\n")
    other = MEMBER.replace("member", "other").replace("64500-AS64502", "64503")
    repo.write("cas/other.yaml", other + "routers:\n  - {key: routers/krill.der, asns: [AS64503]}\n")
    state = repo.load()
    assert state.ca("member").routers[0].key == state.ca("other").routers[0].key
    assert state.ca("other").routers[0].asns == AsnSet.of([(64503, 64503)])


# --- the AS numbers and the BGP Identifier --------------------------------------------------------------


def _entry(repo: Repo, asns: str, extra: str = "") -> None:
    """One router entry whose ``asns`` list starts at column 12 of the line after the entry's."""
    put(repo, "routers/edge.csr", request(p256()))
    with_routers(repo, f"- key: routers/edge.csr\n  asns: {asns}\n{extra}")


def test_an_as_not_held_by_the_ca(repo: Repo) -> None:
    _entry(repo, "[AS64500, AS65000]")
    problem = repo.error()
    expect(problem, repo, MEMBER_FILE, FIRST + 1, 21, "router AS65000 is not held by CA 'member'")
    assert "its AS resources are: AS64500-AS64502" in str(problem.hint)


def test_no_as_numbers(repo: Repo) -> None:
    _entry(repo, "[]")
    problem = repo.error()
    expect(problem, repo, MEMBER_FILE, FIRST + 1, 11, "lists no AS numbers")
    assert "list the AS numbers this router signs" in str(problem.hint)


def test_an_as_listed_twice_names_the_first_line(repo: Repo) -> None:
    _entry(repo, "\n    - AS64500\n    - AS64501\n    - 64500")
    expect(
        repo.error(),
        repo,
        MEMBER_FILE,
        FIRST + 4,
        9,
        f"AS64500 is listed twice for router key routers/edge.csr (first at line {FIRST + 2})",
    )


def test_as0(repo: Repo) -> None:
    _entry(repo, "[AS0]")
    expect(repo.error(), repo, MEMBER_FILE, FIRST + 1, 12, "AS0 cannot be certified for a router")


def test_asns_left_out(repo: Repo) -> None:
    put(repo, "routers/edge.csr", request(p256()))
    with_routers(repo, "- key: routers/edge.csr\n")
    expect(repo.error(), repo, MEMBER_FILE, FIRST, 5, "missing required key 'asns' in routers[0]")


@pytest.mark.parametrize(
    ("value", "phrase"),
    [
        ("192.0.2", "'192.0.2' is not an IPv4 address"),
        ('"2001:db8::1"', "is an IPv6 address; a BGP Identifier is 32 bits"),
        ("0.0.0.0", "RFC 6286 wants a non-zero one"),  # noqa: S104 - a BGP Identifier, bound to nothing
        ("3221225985", "expected a BGP Identifier (an IPv4 address)"),
    ],
)
def test_a_router_id_that_is_not_an_ipv4_address(repo: Repo, value: str, phrase: str) -> None:
    _entry(repo, "[AS64500]", f"  router_id: {value}\n")
    problem = repo.error()
    expect(problem, repo, MEMBER_FILE, FIRST + 2, 16, phrase)
    assert problem.hint


def test_every_problem_of_every_entry_comes_back(repo: Repo) -> None:
    put(repo, "routers/rsa.csr", request(rsa.generate_private_key(public_exponent=65537, key_size=2048)))
    with_routers(
        repo,
        """\
        - {key: routers/rsa.csr, asns: [AS64500]}
        - {key: routers/gone.csr, asns: [AS64999]}
        """,
    )
    found = errors(repo)
    assert [(line, column) for line, column, _ in found] == [(FIRST, 11), (FIRST + 1, 11), (FIRST + 1, 36)]
    assert "this one is RSA" in found[0][2]
    assert "routers/gone.csr does not exist" in found[1][2]
    assert "AS64999 is not held" in found[2][2]


def test_an_offline_trust_anchor_certifies_no_routers(repo: Repo) -> None:
    repo.write("rpki.yaml", RPKI_YAML + "  vault: {type: offline, key_signer: default}\n")
    put(repo, "routers/edge.csr", request(p256()))
    repo.write(
        "cas/ta.yaml", TA_YAML + "signer: vault\nrouters:\n  - {key: routers/edge.csr, asns: [AS64500]}\n"
    )
    problem = repo.error()
    expect(
        problem,
        repo,
        "cas/ta.yaml",
        len(TA_YAML.splitlines()) + 2,
        1,
        "an offline trust anchor cannot certify router keys",
    )
    assert "a CA below the trust anchor" in str(problem.hint)
