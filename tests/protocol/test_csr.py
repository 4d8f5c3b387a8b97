"""PKCS#10 CA certificate requests (RFC 6487 §6): the request a child builds with a key in its signer is one
OpenSSL verifies and a parent accepts; real children's requests are read; anything outside the profile is
refused with what is wrong."""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import ExtensionOID, NameOID, SignatureAlgorithmOID
from hypothesis import given
from hypothesis import strategies as st

from reconciler.protocol import csr, sigmsg, updown
from reconciler.protocol.csr import CaRequest, build_ca_request, parse_ca_request
from reconciler.protocol.errors import ProtocolError
from reconciler.rpki import oids
from reconciler.signers import FileSigner
from reconciler.signers.base import key_id
from tests.helpers import missing_tool
from tests.hostile.fuzzing import FUZZ

PROTOCOLS = Path(__file__).parent.parent / "fixtures" / "real-world" / "protocols"
DRL_CSR = PROTOCOLS / "rpki-rs" / "drl-csr.der"
ROUTER_CSR = PROTOCOLS / "rpki-rs" / "router-csr.der"
REPOSITORY = "rsync://repo.example.net/repo/child/"
MANIFEST = "rsync://repo.example.net/repo/child/key.mft"
NOTIFY = "https://rrdp.example.net/notification.xml"


@pytest.fixture(scope="module")
def signer(tmp_path_factory: pytest.TempPathFactory) -> tuple[FileSigner, bytes]:
    keys = FileSigner(tmp_path_factory.mktemp("keys"))
    return keys, keys.create_key("child")


@pytest.fixture(scope="module")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


# --- building ---------------------------------------------------------------------------------


def test_openssl_verifies_the_built_request(signer: tuple[FileSigner, bytes], tmp_path: Path) -> None:
    if shutil.which("openssl") is None:
        missing_tool("openssl is not installed", "the OpenSSL check of certificate requests")
    keys, key = signer
    path = tmp_path / "request.der"
    path.write_bytes(build_ca_request(keys, key, REPOSITORY, MANIFEST, NOTIFY))
    checked = subprocess.run(
        ["openssl", "req", "-inform", "DER", "-in", str(path), "-verify", "-noout"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert checked.returncode == 0, checked.stderr
    assert "verify OK" in checked.stderr + checked.stdout


def test_built_request_has_exactly_the_profile(signer: tuple[FileSigner, bytes]) -> None:
    keys, key = signer
    request = x509.load_der_x509_csr(build_ca_request(keys, key, REPOSITORY, MANIFEST, NOTIFY))
    assert request.is_signature_valid
    assert request.public_key() == keys.public_key(key)
    assert request.signature_algorithm_oid == SignatureAlgorithmOID.RSA_WITH_SHA256
    [cn] = request.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    assert cn.value == key.hex().upper()
    assert len(request.subject) == 1
    extensions = list(request.extensions)
    assert [(e.oid, e.critical) for e in extensions] == [
        (ExtensionOID.BASIC_CONSTRAINTS, True),
        (ExtensionOID.KEY_USAGE, True),
        (ExtensionOID.SUBJECT_INFORMATION_ACCESS, False),
    ]
    assert extensions[0].value == x509.BasicConstraints(ca=True, path_length=None)
    usage = extensions[1].value
    assert isinstance(usage, x509.KeyUsage)
    assert (usage.key_cert_sign, usage.crl_sign) == (True, True)
    assert not (usage.digital_signature or usage.key_encipherment or usage.content_commitment)
    access = extensions[2].value
    assert isinstance(access, x509.SubjectInformationAccess)
    assert [(d.access_method, d.access_location.value) for d in access] == [
        (oids.CA_REPOSITORY, REPOSITORY),
        (oids.RPKI_MANIFEST, MANIFEST),
        (oids.RPKI_NOTIFY, NOTIFY),
    ]


def test_built_request_reads_back(signer: tuple[FileSigner, bytes]) -> None:
    keys, key = signer
    with_notify = parse_ca_request(build_ca_request(keys, key, REPOSITORY, MANIFEST, NOTIFY), "request")
    assert with_notify == CaRequest(keys.public_key(key), key, REPOSITORY, MANIFEST, NOTIFY)
    without = parse_ca_request(build_ca_request(keys, key, REPOSITORY, MANIFEST, None), "request")
    assert (without.ca_repository, without.manifest, without.notify) == (REPOSITORY, MANIFEST, None)


@pytest.mark.parametrize(
    ("repository", "manifest", "notify", "reason"),
    [
        ("rsync://repo.example.net/repo/child", MANIFEST, None, "does not end with '/'"),
        ("https://repo.example.net/repo/child/", MANIFEST, None, "is not an rsync URI"),
        (
            REPOSITORY,
            "https://repo.example.net/key.mft",
            None,
            "rpkiManifest 'https://repo.example.net/key.mft'",
        ),
        (REPOSITORY, MANIFEST, "http://rrdp.example.net/notification.xml", "is not an https URI"),
    ],
)
def test_build_refuses_an_sia_relying_parties_reject(
    signer: tuple[FileSigner, bytes], repository: str, manifest: str, notify: str | None, reason: str
) -> None:
    keys, key = signer
    with pytest.raises(ProtocolError, match=reason):
        build_ca_request(keys, key, repository, manifest, notify)


# --- reading what real children send ------------------------------------------------------------


def test_reads_rpkid_request_of_carol() -> None:
    found = parse_ca_request(DRL_CSR.read_bytes(), "drl-csr.der")
    assert found.ca_repository == "rsync://localhost:4404/rpki/Alice/Bob/Carol/3/"
    assert found.manifest == "rsync://localhost:4404/rpki/Alice/Bob/Carol/3/IozwkwjtGls63XR8W2lo1wc7UoU.mnf"
    assert found.notify is None
    assert found.ski == key_id(found.public_key)
    # rpkid names the subject after the key identifier, as RFC 6487 suggests
    assert found.ski.hex().upper() == "228CF09308ED1A5B3ADD747C5B6968D7073B5285"


@pytest.mark.parametrize(
    ("path", "ski"),
    [
        (PROTOCOLS / "rpki-rs" / "rfc6492" / "issue.der", "9178D3DDECE0A8AC0B85E4A82FA6976688DB74E1"),
        (PROTOCOLS / "rpki-rs" / "sigmsg" / "pdu_200.der", "228CF09308ED1A5B3ADD747C5B6968D7073B5285"),
    ],
)
def test_reads_the_request_inside_an_issue_message(path: Path, ski: str) -> None:
    message = updown.parse(sigmsg.econtent(path.read_bytes(), path.name), path.name)
    assert isinstance(message.payload, updown.IssueRequest)
    found = parse_ca_request(message.payload.csr, path.name)
    assert found.ski.hex().upper() == ski
    assert found.ca_repository.startswith("rsync://localhost:4404/rpki/") and found.ca_repository.endswith(
        "/"
    )
    assert found.manifest.startswith(found.ca_repository) and found.manifest.endswith(".mnf")


def test_refuses_a_bgpsec_router_request() -> None:
    with pytest.raises(ProtocolError) as caught:
        parse_ca_request(ROUTER_CSR.read_bytes(), "router-csr.der")
    assert str(caught.value) == (
        "router-csr.der: this is a BGPsec router key request (RFC 8209: an EC key (secp256r1), EKU "
        "bgpsec-router), not a CA certificate request"
    )


def test_refuses_a_bad_signature() -> None:
    data = bytearray(DRL_CSR.read_bytes())
    data[-1] ^= 0x01  # the last byte of the signature
    with pytest.raises(ProtocolError, match="the signature does not verify with the key in the request"):
        parse_ca_request(bytes(data), "drl-csr.der")


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "not a PKCS#10 certificate request"),
        (b"\x30\x03\x02\x01\x00", "not a PKCS#10 certificate request"),
        ((PROTOCOLS / "krill" / "remote" / "ncc-id.der").read_bytes(), "not a PKCS#10 certificate request"),
        (b"\x30" * 20000, "20000 bytes, more than a CA certificate request has"),
    ],
)
def test_refuses_what_is_no_request(data: bytes, reason: str) -> None:
    with pytest.raises(ProtocolError, match=reason):
        parse_ca_request(data, "request")


# --- refusing requests outside the profile ------------------------------------------------------

Extension = tuple[x509.ExtensionType, bool]


def access(*pairs: tuple[x509.ObjectIdentifier, str]) -> x509.SubjectInformationAccess:
    return x509.SubjectInformationAccess(
        [x509.AccessDescription(method, x509.UniformResourceIdentifier(uri)) for method, uri in pairs]
    )


def key_usage(
    *, cert_sign: bool = True, crl_sign: bool = True, digital_signature: bool = False
) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=digital_signature,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=cert_sign,
        crl_sign=crl_sign,
        encipher_only=False,
        decipher_only=False,
    )


CA = (x509.BasicConstraints(ca=True, path_length=None), True)
USAGE = (key_usage(), True)
SIA = (access((oids.CA_REPOSITORY, REPOSITORY), (oids.RPKI_MANIFEST, MANIFEST)), False)


def request(
    key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey,
    extensions: Sequence[Extension],
    algorithm: hashes.SHA256 | hashes.SHA384 | None = None,
) -> bytes:
    builder = x509.CertificateSigningRequestBuilder().subject_name(
        x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "child")])
    )
    for value, critical in extensions:
        builder = builder.add_extension(value, critical=critical)
    return builder.sign(key, algorithm or hashes.SHA256()).public_bytes(Encoding.DER)


def test_a_request_with_the_profile_is_read_whatever_the_subject(rsa_key: rsa.RSAPrivateKey) -> None:
    found = parse_ca_request(request(rsa_key, [CA, USAGE, SIA]), "request")
    assert found.ski == key_id(rsa_key.public_key())


@pytest.mark.parametrize(
    ("extensions", "reason"),
    [
        ([USAGE, SIA], "no BasicConstraints extension"),
        ([CA, SIA], "no KeyUsage extension"),
        ([CA, USAGE], "no SubjectInfoAccess extension"),
        (
            [CA, USAGE, SIA, (x509.ExtendedKeyUsage([x509.ObjectIdentifier("1.3.6.1.5.5.7.3.30")]), False)],
            "the extension ExtendedKeyUsage (2.5.29.37) is not allowed in a CA certificate request",
        ),
        (
            [CA, USAGE, SIA, (x509.SubjectKeyIdentifier(b"\x01" * 20), False)],
            "the extension subjectKeyIdentifier (2.5.29.14) is not allowed",
        ),
        ([(x509.BasicConstraints(ca=False, path_length=None), True), USAGE, SIA], "cA FALSE"),
        ([(x509.BasicConstraints(ca=True, path_length=0), True), USAGE, SIA], "has a path length"),
        (
            [CA, (key_usage(digital_signature=True), True), SIA],
            "KeyUsage is digitalSignature, keyCertSign, cRLSign",
        ),
        ([CA, (key_usage(crl_sign=False), True), SIA], "KeyUsage is keyCertSign;"),
        (
            [
                CA,
                USAGE,
                (
                    access((oids.CA_REPOSITORY, "rsync://r.example/child"), (oids.RPKI_MANIFEST, MANIFEST)),
                    False,
                ),
            ],
            "caRepository 'rsync://r.example/child' does not end with '/'",
        ),
        (
            [
                CA,
                USAGE,
                (
                    access((oids.CA_REPOSITORY, "https://r.example/child/"), (oids.RPKI_MANIFEST, MANIFEST)),
                    False,
                ),
            ],
            "caRepository 'https://r.example/child/' is not an rsync URI",
        ),
        ([CA, USAGE, (access((oids.CA_REPOSITORY, REPOSITORY)), False)], "the SIA has no rpkiManifest"),
        ([CA, USAGE, (access((oids.RPKI_MANIFEST, MANIFEST)), False)], "the SIA has no caRepository"),
        (
            [
                CA,
                USAGE,
                (
                    access(
                        (oids.CA_REPOSITORY, REPOSITORY),
                        (oids.RPKI_MANIFEST, MANIFEST),
                        (oids.RPKI_NOTIFY, "http://r.example/n.xml"),
                    ),
                    False,
                ),
            ],
            "rpkiNotify 'http://r.example/n.xml' is not an https URI",
        ),
        (
            [
                CA,
                USAGE,
                (
                    access(
                        (oids.CA_REPOSITORY, REPOSITORY),
                        (oids.CA_REPOSITORY, REPOSITORY + "x/"),
                        (oids.RPKI_MANIFEST, MANIFEST),
                    ),
                    False,
                ),
            ],
            "the SIA holds more than one caRepository",
        ),
        (
            [
                CA,
                USAGE,
                (
                    access(
                        (oids.CA_REPOSITORY, REPOSITORY),
                        (oids.RPKI_MANIFEST, MANIFEST),
                        (oids.SIGNED_OBJECT, MANIFEST),
                    ),
                    False,
                ),
            ],
            "the SIA holds the access method 1.3.6.1.5.5.7.48.11",
        ),
    ],
)
def test_refuses_requests_outside_the_profile(
    rsa_key: rsa.RSAPrivateKey, extensions: list[Extension], reason: str
) -> None:
    with pytest.raises(ProtocolError, match=re.escape(reason)):
        parse_ca_request(request(rsa_key, extensions), "request from child")


def test_refuses_keys_other_than_rsa_2048() -> None:
    small = rsa.generate_private_key(public_exponent=65537, key_size=1024)  # noqa: S505 - to be refused
    with pytest.raises(
        ProtocolError, match=r"the key is RSA-1024; RPKI CA keys are RSA-2048 \(RFC 7935 §3\)"
    ):
        parse_ca_request(request(small, [CA, USAGE, SIA]), "request")
    odd = rsa.generate_private_key(public_exponent=3, key_size=2048)
    with pytest.raises(ProtocolError, match="public exponent is 3; RFC 7935 §3 requires 65537"):
        parse_ca_request(request(odd, [CA, USAGE, SIA]), "request")
    curve = ec.generate_private_key(ec.SECP256R1())
    with pytest.raises(
        ProtocolError, match=r"the key is an EC key \(secp256r1\); a CA certificate request needs"
    ):
        parse_ca_request(request(curve, [CA, USAGE, SIA]), "request")


def test_refuses_another_signature_algorithm(rsa_key: rsa.RSAPrivateKey) -> None:
    with pytest.raises(
        ProtocolError, match=r"signed with 1.2.840.113549.1.1.12, not sha256WithRSAEncryption"
    ):
        parse_ca_request(request(rsa_key, [CA, USAGE, SIA], hashes.SHA384()), "request")


# --- hostile input ------------------------------------------------------------------------------

SEEDS = [DRL_CSR.read_bytes(), ROUTER_CSR.read_bytes()]


def _parse_or_refuse(data: bytes) -> None:
    try:
        found = parse_ca_request(data, "fuzz")
    except ProtocolError:
        return
    assert found.ca_repository.endswith("/") and found.ski == key_id(found.public_key)


@FUZZ
@given(st.binary(max_size=2048))
def test_arbitrary_bytes_are_refused(data: bytes) -> None:
    _parse_or_refuse(data)


@FUZZ
@given(
    st.sampled_from(SEEDS),
    st.lists(st.tuples(st.integers(min_value=0), st.binary(max_size=4), st.integers(0, 4)), max_size=4),
)
def test_mutated_requests_are_refused_or_read(seed: bytes, edits: list[tuple[int, bytes, int]]) -> None:
    data = bytearray(seed)
    for position, insert, delete in edits:
        at = position % (len(data) + 1)
        data[at : at + delete] = insert
    _parse_or_refuse(bytes(data))


def test_module_bound_is_above_real_requests() -> None:
    assert len(DRL_CSR.read_bytes()) < csr.MAX_REQUEST_BYTES
