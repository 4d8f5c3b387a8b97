"""Tests of the end-to-end harness itself, against the real rsync daemon and the real validators.

The harness is what every end-to-end test of the CA trusts, so each of its promises is checked here
with something that can fail: bytes served through the host mapping, the symlink swap, no process
left behind, bogus input reported rather than hung on, the fake clock reaching the validators' own
checks. For the last one we need a repository that is valid *now*; the package's CA does not exist yet,
so ``_build_mini_repository`` below makes the smallest one (TA certificate, CRL, manifest, one ROA)
straight from the RFCs. It doubles as the proof that a clean repository yields exactly the expected
VRPs and *zero* warnings from both validators, i.e. that the warning filters hide only progress noise.
"""

from __future__ import annotations

import base64
import hashlib
import os
import socket
import subprocess
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from asn1crypto import algos, cms
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID, ObjectIdentifier

from .harness import (
    LOOPBACK,
    RUNNERS,
    HarnessError,
    RequireTool,
    RsyncDaemon,
    RsyncDaemonFactory,
    ValidatorResult,
    find_tool,
    fort_clock,
    fort_warnings,
    parse_fort_csv,
    parse_rpki_client_json,
    parse_rsync_base,
    rpki_client_warnings,
    validate_with_all,
    write_rsync_wrapper,
)

pytestmark = pytest.mark.e2e

HOST = "rpki.example.net"
MODULE = "repo"
RSYNC_BASE = f"rsync://{HOST}/{MODULE}/"
EXPECTED_VRPS = frozenset({(64496, "192.0.2.0/24", 24)})


def _rsync_through_wrapper(wrapper: Path, source: str, destination: Path) -> subprocess.CompletedProcess[str]:
    destination.mkdir(parents=True, exist_ok=True)
    return subprocess.run(
        [str(wrapper), "-rt", source, f"{destination}/"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _tree(root: Path) -> dict[str, bytes]:
    return {
        str(path.relative_to(root)): path.read_bytes() for path in sorted(root.rglob("*")) if path.is_file()
    }


# ---------------------------------------------------------------------------------- rsync daemon


def test_daemon_serves_byte_identical_files_through_the_host_mapping(
    rsync_daemon: RsyncDaemonFactory, tmp_path: Path
) -> None:
    published = tmp_path / "published"
    (published / "ca1").mkdir(parents=True)
    (published / "ta.cer").write_bytes(os.urandom(1500))
    (published / "ca1" / "AS64496.roa").write_bytes(bytes(range(256)) * 7)
    daemon = rsync_daemon(published, MODULE)
    wrapper = write_rsync_wrapper(tmp_path / "rsync-wrapper", daemon.hosts(HOST))

    fetched = tmp_path / "fetched"
    completed = _rsync_through_wrapper(wrapper, RSYNC_BASE, fetched)

    assert completed.returncode == 0, completed.stderr + daemon.log()
    assert completed.stderr == ""  # FORT would log any stderr output of its rsync as an error
    assert _tree(fetched) == _tree(published)
    assert len(_tree(fetched)) == 2
    assert f"rsync allowed access on module {MODULE}" in daemon.log()


def test_wrapper_refuses_hosts_it_does_not_map(rsync_daemon: RsyncDaemonFactory, tmp_path: Path) -> None:
    published = tmp_path / "published"
    published.mkdir()
    (published / "x.cer").write_bytes(b"x")
    daemon = rsync_daemon(published, MODULE)
    wrapper = write_rsync_wrapper(tmp_path / "rsync-wrapper", daemon.hosts(HOST))

    completed = _rsync_through_wrapper(wrapper, f"rsync://elsewhere.example.org/{MODULE}/", tmp_path / "out")

    assert completed.returncode == 10
    assert "no local daemon for rsync://elsewhere.example.org/" in completed.stderr
    assert not any((tmp_path / "out").iterdir())


def test_daemon_follows_a_symlink_swapped_between_connections(
    rsync_daemon: RsyncDaemonFactory, tmp_path: Path
) -> None:
    generation1, generation2 = tmp_path / "gen-1", tmp_path / "gen-2"
    generation1.mkdir()
    generation2.mkdir()
    (generation1 / "ta.mft").write_bytes(b"manifest number 1")
    (generation2 / "ta.mft").write_bytes(b"manifest number 2, longer")
    (generation2 / "new.roa").write_bytes(b"only in generation 2")
    current = tmp_path / "current"
    current.symlink_to(generation1.name)
    daemon = rsync_daemon(current, MODULE)
    wrapper = write_rsync_wrapper(tmp_path / "rsync-wrapper", daemon.hosts(HOST))

    before = _rsync_through_wrapper(wrapper, RSYNC_BASE, tmp_path / "before")
    # The atomic swap a publisher does: a new symlink renamed over the old one.
    (tmp_path / "current.new").symlink_to(generation2.name)
    (tmp_path / "current.new").replace(current)
    after = _rsync_through_wrapper(wrapper, RSYNC_BASE, tmp_path / "after")

    assert before.returncode == after.returncode == 0, before.stderr + after.stderr
    assert _tree(tmp_path / "before") == _tree(generation1)
    assert _tree(tmp_path / "after") == _tree(generation2)


def test_daemon_stops_and_leaves_no_process(require_tool: RequireTool, tmp_path: Path) -> None:
    require_tool("rsync")
    tmp_path.joinpath("f").write_bytes(b"f")
    with RsyncDaemon(tmp_path, MODULE) as daemon:
        pid, port = daemon.pid, daemon.port
        with socket.create_connection((LOOPBACK, port), timeout=5):
            pass

    assert not daemon.running
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    with pytest.raises(OSError), socket.create_connection((LOOPBACK, port), timeout=2):
        pass
    with pytest.raises(HarnessError):
        _ = daemon.port


def test_daemon_reports_a_port_it_cannot_bind(require_tool: RequireTool, tmp_path: Path) -> None:
    require_tool("rsync")
    with socket.socket() as busy:
        busy.bind((LOOPBACK, 0))
        busy.listen()
        daemon = RsyncDaemon(tmp_path, MODULE, port=busy.getsockname()[1], start_timeout=5)
        try:
            with pytest.raises(HarnessError, match="did not start"):
                daemon.start()
        finally:
            daemon.stop()
    assert not daemon.running
    assert "in use" in daemon.log()


# -------------------------------------------------------------------- validators on bogus input


def _bogus_trust_anchor(directory: Path) -> Path:
    """A TAL whose rsync URI serves 600 random bytes instead of a certificate."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "ta.cer").write_bytes(os.urandom(600))
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    spki = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    tal = directory.parent / "bogus.tal"
    tal.write_text(f"{RSYNC_BASE}ta.cer\n\n{base64.b64encode(spki).decode()}\n")
    return tal


def test_validators_report_a_bogus_certificate_instead_of_hanging(
    validators: tuple[str, ...], tmp_path: Path
) -> None:
    tal = _bogus_trust_anchor(tmp_path / "published")

    results = validate_with_all(tal, tmp_path / "published", RSYNC_BASE, validators=validators, timeout=60)

    assert set(results) == set(validators)
    for result in results.values():
        assert result.vrps == frozenset(), result.summary()
        assert any("ta.cer" in line for line in result.warnings), result.summary()
        assert result.elapsed < 60, result.summary()
    if "rpki-client" in results:
        # rpki-client 8.2 exits 0 even then: only the VRPs and warnings tell.
        assert results["rpki-client"].counts["invalidcertificates"] == 1, results["rpki-client"].summary()
    if "fort" in results:
        assert results["fort"].returncode != 0, results["fort"].summary()  # 22: nothing validated


def test_faketime_shifts_the_validators_clock(
    validators: tuple[str, ...], require_tool: RequireTool, tmp_path: Path
) -> None:
    """Cheap: both validators print their own idea of "now" (rpki-client's buildtime, FORT's log stamps)."""
    require_tool("faketime")
    tal = _bogus_trust_anchor(tmp_path / "published")
    now = datetime.now(UTC) + timedelta(days=200, hours=5)  # not a whole year: FORT's stamps lack one

    results = validate_with_all(tal, tmp_path / "published", RSYNC_BASE, validators=validators, now=now)

    for result in results.values():
        assert result.clock is not None, result.summary()
        assert abs(result.clock - now) < timedelta(minutes=5), result.summary()


# ------------------------------------------------------------------- a minimal valid repository

_IP_RESOURCES = ObjectIdentifier("1.3.6.1.5.5.7.1.7")
_AS_RESOURCES = ObjectIdentifier("1.3.6.1.5.5.7.1.8")
_RPKI_POLICY = x509.CertificatePolicies(
    [x509.PolicyInformation(ObjectIdentifier("1.3.6.1.5.5.7.14.2"), None)]
)
_CT_ROA, _CT_MANIFEST = "1.2.840.113549.1.9.16.1.24", "1.2.840.113549.1.9.16.1.26"
# DigestAlgorithm sha256 with parameters *absent*: asn1crypto would add NULL, which FORT flags.
_SHA256_NO_PARAMS = bytes.fromhex("300b0609608648016503040201")


def _der(tag: int, content: bytes) -> bytes:
    length = len(content)
    if length < 0x80:
        return bytes([tag, length]) + content
    octets = length.to_bytes((length.bit_length() + 7) // 8, "big")
    return bytes([tag, 0x80 | len(octets)]) + octets + content


def _der_integer(value: int) -> bytes:
    return _der(0x02, value.to_bytes(value.bit_length() // 8 + 1, "big"))


def _der_generalized_time(moment: datetime) -> bytes:
    return _der(0x18, moment.strftime("%Y%m%d%H%M%SZ").encode())


# RFC 3779 / RFC 9582 structures for 192.0.2.0/24 and AS64496, written out by hand: small and exact.
_PREFIX = _der(0x03, b"\x00\xc0\x00\x02")
_IPV4 = _der(0x04, b"\x00\x01")
_IP_EXPLICIT = _der(0x30, _der(0x30, _IPV4 + _der(0x30, _PREFIX)))
_IP_INHERIT = _der(0x30, _der(0x30, _IPV4 + _der(0x05, b"")))
_AS_EXPLICIT = _der(0x30, _der(0xA0, _der(0x30, _der_integer(64496))))
_AS_INHERIT = _der(0x30, _der(0xA0, _der(0x05, b"")))


def _key_usage(ca: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=not ca,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=ca,
        crl_sign=ca,
        encipher_only=False,
        decipher_only=False,
    )


def _access(oid: str, uri: str) -> x509.AccessDescription:
    return x509.AccessDescription(ObjectIdentifier(oid), x509.UniformResourceIdentifier(uri))


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _new_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@dataclass(frozen=True)
class _TrustAnchor:
    key: rsa.RSAPrivateKey
    name: x509.Name
    certificate_uri: str
    repository_uri: str

    @property
    def aki(self) -> x509.AuthorityKeyIdentifier:
        ski = x509.SubjectKeyIdentifier.from_public_key(self.key.public_key())
        return x509.AuthorityKeyIdentifier(ski.digest, None, None)


def _signed_object(
    ta: _TrustAnchor,
    file_name: str,
    *,
    serial: int,
    content_type: str,
    econtent: bytes,
    resources: tuple[bytes, bytes | None],
    validity: tuple[datetime, datetime],
) -> bytes:
    """RFC 6488 signed object with a one-time EE certificate (RFC 6487 profile)."""
    key = _new_key()
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    ip_resources, as_resources = resources
    crl_uri = x509.UniformResourceIdentifier(ta.repository_uri + "ta.crl")
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(hashlib.sha1(file_name.encode()).hexdigest()))  # noqa: S324 - a name, not security
        .issuer_name(ta.name)
        .public_key(key.public_key())
        .serial_number(serial)
        .not_valid_before(validity[0])
        .not_valid_after(validity[1])
        .add_extension(ski, critical=False)
        .add_extension(ta.aki, critical=False)
        .add_extension(_key_usage(ca=False), critical=True)
        .add_extension(
            x509.CRLDistributionPoints([x509.DistributionPoint([crl_uri], None, None, None)]), False
        )
        .add_extension(
            x509.AuthorityInformationAccess([_access("1.3.6.1.5.5.7.48.2", ta.certificate_uri)]), False
        )
        .add_extension(
            x509.SubjectInformationAccess([_access("1.3.6.1.5.5.7.48.11", ta.repository_uri + file_name)]),
            False,
        )
        .add_extension(_RPKI_POLICY, critical=True)
        .add_extension(x509.UnrecognizedExtension(_IP_RESOURCES, ip_resources), critical=True)
    )
    if as_resources is not None:
        builder = builder.add_extension(
            x509.UnrecognizedExtension(_AS_RESOURCES, as_resources), critical=True
        )
    ee_certificate = builder.sign(ta.key, hashes.SHA256())
    signed_attributes = cms.CMSAttributes(
        [
            {"type": "content_type", "values": [content_type]},
            {"type": "signing_time", "values": [cms.Time({"utc_time": validity[0]})]},
            {"type": "message_digest", "values": [hashlib.sha256(econtent).digest()]},
        ]
    )
    signer = cms.SignerInfo(
        {
            "version": "v3",
            "sid": cms.SignerIdentifier({"subject_key_identifier": ski.digest}),
            "digest_algorithm": algos.DigestAlgorithm.load(_SHA256_NO_PARAMS),
            "signed_attrs": signed_attributes,
            "signature_algorithm": {"algorithm": "rsassa_pkcs1v15"},
            "signature": key.sign(signed_attributes.dump(), padding.PKCS1v15(), hashes.SHA256()),
        }
    )
    signed_data = cms.SignedData(
        {
            "version": "v3",
            "digest_algorithms": [algos.DigestAlgorithm.load(_SHA256_NO_PARAMS)],
            "encap_content_info": {"content_type": content_type, "content": econtent},
            "certificates": [
                asn1_x509.Certificate.load(ee_certificate.public_bytes(serialization.Encoding.DER))
            ],
            "signer_infos": [signer],
        }
    )
    return bytes(cms.ContentInfo({"content_type": "signed_data", "content": signed_data}).dump())


def _build_mini_repository(directory: Path, rsync_base: str, lifetime: timedelta) -> Path:
    """Write TA certificate, CRL, manifest and one ROA (AS64496, 192.0.2.0/24) under ``directory``.

    Layout: ``ta.cer`` at the module root, the TA's publication point in ``ta/``. The manifest, its CRL
    and the ROA's EE certificate are valid for ``lifetime`` from now; the TA for five years. Returns
    the TAL (``mini.tal`` next to ``directory``).
    """
    now = datetime.now(UTC).replace(microsecond=0)
    validity = (now - timedelta(hours=1), now + lifetime)
    ta = _TrustAnchor(_new_key(), _name("harness-mini-ta"), rsync_base + "ta.cer", rsync_base + "ta/")
    ta_certificate = (
        x509.CertificateBuilder()
        .subject_name(ta.name)
        .issuer_name(ta.name)
        .public_key(ta.key.public_key())
        .serial_number(1)
        .not_valid_before(validity[0])
        .not_valid_after(now + timedelta(days=5 * 365))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ta.key.public_key()), critical=False)
        .add_extension(_key_usage(ca=True), critical=True)
        .add_extension(
            x509.SubjectInformationAccess(
                [
                    _access("1.3.6.1.5.5.7.48.5", ta.repository_uri),
                    _access("1.3.6.1.5.5.7.48.10", ta.repository_uri + "ta.mft"),
                ]
            ),
            critical=False,
        )
        .add_extension(_RPKI_POLICY, critical=True)
        .add_extension(x509.UnrecognizedExtension(_IP_RESOURCES, _IP_EXPLICIT), critical=True)
        .add_extension(x509.UnrecognizedExtension(_AS_RESOURCES, _AS_EXPLICIT), critical=True)
        .sign(ta.key, hashes.SHA256())
    )
    crl = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(ta.name)
        .last_update(validity[0])
        .next_update(validity[1])
        .add_extension(ta.aki, critical=False)
        .add_extension(x509.CRLNumber(1), critical=False)
        .sign(ta.key, hashes.SHA256())
    )
    roa = _der(
        0x30,
        _der_integer(64496)
        + _der(0x30, _der(0x30, _IPV4 + _der(0x30, _der(0x30, _PREFIX + _der_integer(24))))),
    )
    files = {
        "ta.crl": crl.public_bytes(serialization.Encoding.DER),
        "AS64496.roa": _signed_object(
            ta,
            "AS64496.roa",
            serial=2,
            content_type=_CT_ROA,
            econtent=roa,
            resources=(_IP_EXPLICIT, None),
            validity=validity,
        ),
    }
    file_list = b"".join(
        _der(0x30, _der(0x16, name.encode()) + _der(0x03, b"\x00" + hashlib.sha256(data).digest()))
        for name, data in files.items()
    )
    sha256_oid = _der(0x06, bytes.fromhex("608648016503040201"))
    manifest = _der(
        0x30,
        _der_integer(1)
        + _der_generalized_time(validity[0])
        + _der_generalized_time(validity[1])
        + sha256_oid
        + _der(0x30, file_list),
    )
    files["ta.mft"] = _signed_object(
        ta,
        "ta.mft",
        serial=3,
        content_type=_CT_MANIFEST,
        econtent=manifest,
        resources=(_IP_INHERIT, _AS_INHERIT),
        validity=validity,
    )

    (directory / "ta").mkdir(parents=True, exist_ok=True)
    (directory / "ta.cer").write_bytes(ta_certificate.public_bytes(serialization.Encoding.DER))
    for name, data in files.items():
        (directory / "ta" / name).write_bytes(data)
    spki = ta.key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    tal = directory.parent / "mini.tal"
    tal.write_text(f"{ta.certificate_uri}\n\n{base64.b64encode(spki).decode()}\n")
    return tal


@pytest.fixture(scope="module")
def mini_repository(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(TAL, publication directory) of a repository valid for 30 days from now."""
    root = tmp_path_factory.mktemp("mini")
    tal = _build_mini_repository(root / "published", RSYNC_BASE, timedelta(days=30))
    return tal, root / "published"


def test_clean_repository_gives_its_vrps_and_no_warning_then_expires_a_year_later(
    validators: tuple[str, ...], require_tool: RequireTool, mini_repository: tuple[Path, Path]
) -> None:
    """The definitive faketime check: what is valid now must be rejected as expired a year on."""
    require_tool("faketime")
    tal, published = mini_repository

    today = validate_with_all(tal, published, RSYNC_BASE, validators=validators)
    next_year = validate_with_all(
        tal, published, RSYNC_BASE, validators=validators, now=datetime.now(UTC) + timedelta(days=365)
    )

    for name in validators:
        assert today[name].vrps == EXPECTED_VRPS, today[name].summary()
        assert today[name].warnings == [], today[name].summary()
        assert next_year[name].vrps == frozenset(), next_year[name].summary()
        assert any("expired" in line or "stale" in line for line in next_year[name].warnings), next_year[
            name
        ].summary()
    if "rpki-client" in today:
        counts = today["rpki-client"].counts
        assert (counts["roas"], counts["manifests"], counts["crls"], counts["vrps"]) == (1, 1, 1, 1), counts


def test_cache_is_kept_between_runs(
    validators: tuple[str, ...],
    rsync_daemon: RsyncDaemonFactory,
    mini_repository: tuple[Path, Path],
    tmp_path: Path,
) -> None:
    tal, published = mini_repository
    hosts = rsync_daemon(published, MODULE).hosts(HOST)

    for name in validators:
        cache = tmp_path / name  # inside pytest's 0700 directory: the harness must cope
        first: ValidatorResult = RUNNERS[name](tal, hosts, cache=cache)
        cached = sorted(str(path.relative_to(cache)) for path in cache.rglob("ta.mft"))
        second: ValidatorResult = RUNNERS[name](tal, hosts, cache=cache)

        assert first.vrps == second.vrps == EXPECTED_VRPS, first.summary() + second.summary()
        assert cached == [f"{HOST}/{MODULE}/ta/ta.mft"], first.summary()
        assert second.warnings == [], second.summary()


# -------------------------------------------------------------------------- parsing, no tools needed


def test_rpki_client_warning_filter_keeps_problems_and_drops_progress() -> None:
    stderr = "\n".join(
        [
            "rpki-client: ta/mini: pulling from rsync://rpki.example.net/repo/ta.cer",
            "rpki-client: ta/mini: loaded from network",
            "rpki-client: .rsync/rpki.example.net/repo: pulling from rsync://rpki.example.net/repo",
            "rpki-client:  ...trace: error:068000A8:asn1 encoding routines::wrong tag",
            "rpki-client: ta/ta/ta.cer: d2i_X509",
            "rpki-client: rpki.example.net/repo/ta/ta.mft: CRL has expired",
            "rpki-client: ta/ta: load from network failed",
            "rpki-client: all files parsed: generating output",
            "rpki-client: superfluous .rsync/rpki.example.net/repo/ta.cer",
            "rpki-client: deleted .rsync/rpki.example.net/repo/ta.cer",
            "rsync: [Receiver] failed to connect to 127.0.0.1 (127.0.0.1): Connection refused (111)",
        ]
    )
    assert rpki_client_warnings(stderr) == [
        "rpki-client: ta/ta/ta.cer: d2i_X509",
        "rpki-client: rpki.example.net/repo/ta/ta.mft: CRL has expired",
        "rpki-client: ta/ta: load from network failed",
        "rsync: [Receiver] failed to connect to 127.0.0.1 (127.0.0.1): Connection refused (111)",
    ]


def test_fort_warning_filter_and_clock() -> None:
    log = "\n".join(
        [
            "Nov 23 08:57:13 INF: Console log output configured; disabling validation logging on syslog.",
            "Nov 23 08:57:13 WRN: The validation has begun.",
            "Nov 23 08:57:13 INF [Validation]: /tmp/x/ta.tal: rsync: rsync://h/repo/ta.cer",
            "Nov 23 08:57:13 ERR [Validation]: rsync://h/repo/ta.cer: Error parsing certificate",
            "",
            "Nov  3 08:59:18 WRN [Validation]: rsync://h/repo/ta/ta.mft: The hash algorithm of the "
            "'SignedData' has a NULL object as parameters",
            "Nov 23 08:59:18 WRN: The validation has successfully ended.",
        ]
    )
    assert [line[16:19] for line in fort_warnings(log)] == ["ERR", "WRN"]
    assert fort_clock(log, datetime(2027, 1, 2, tzinfo=UTC)) == datetime(2026, 11, 23, 8, 57, 13, tzinfo=UTC)


def test_vrp_parsers_normalise_both_validators() -> None:
    rpki_client_json = """{"metadata": {"buildtime": "2026-11-23T08:57:04Z", "roas": 2, "elapsedtime": "0"},
        "roas": [{"asn": 64496, "prefix": "192.0.2.0/24", "maxLength": 24, "ta": "mini"},
                 {"asn": "AS64497", "prefix": "2001:DB8:0::/32", "maxLength": 48, "ta": "mini"}]}"""
    output = parse_rpki_client_json(rpki_client_json)
    assert output.vrps == {(64496, "192.0.2.0/24", 24), (64497, "2001:db8::/32", 48)}
    assert output.counts == {"roas": 2}
    assert output.buildtime == datetime(2026, 11, 23, 8, 57, 4, tzinfo=UTC)

    fort_csv = "ASN,Prefix,Max prefix length\nAS64496,192.0.2.0/24,24\nAS64497,2001:db8::/32,48\n"
    assert parse_fort_csv(fort_csv) == output.vrps
    assert parse_fort_csv("") == frozenset()


def test_rsync_base_and_host_names_are_checked(tmp_path: Path) -> None:
    assert parse_rsync_base("rsync://rpki.example.net/repo/") == ("rpki.example.net", "repo")
    for bad in ("https://rpki.example.net/repo/", "rsync://rpki.example.net/", "rsync://h/repo/sub/"):
        with pytest.raises(ValueError, match="rsync://HOST/MODULE/"):
            parse_rsync_base(bad)
    with pytest.raises(ValueError, match="host name"):
        write_rsync_wrapper(tmp_path / "w", {"bad host;rm -rf /": 873}, rsync="/usr/bin/rsync")


@pytest.mark.parametrize("ci", ["true", ""])
def test_require_tool_fails_in_ci_and_skips_elsewhere(
    require_tool: RequireTool, monkeypatch: pytest.MonkeyPatch, ci: str
) -> None:
    monkeypatch.setenv("CI", ci)
    missing = "reconciler-no-such-validator"
    assert find_tool(missing) is None
    expected: type[BaseException] = pytest.fail.Exception if ci else pytest.skip.Exception
    with pytest.raises(expected, match="apt-get install rpki-client fort-validator rsync faketime"):
        require_tool(missing)
