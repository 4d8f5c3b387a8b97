"""CRLs: RFC 6487 §5 as FORT and rpki-client enforce it."""

from __future__ import annotations

from datetime import timedelta

from asn1crypto import crl as asn1_crl

from reconciler.rpki import cert, crl
from tests.rpki.conftest import FIXTURES, NOW


def test_round_trip_with_revocations(issuer: cert.Issuer) -> None:
    """Number, times, AKI and revoked serials read back."""
    revoked = (crl.Revocation(5, NOW - timedelta(hours=1)), crl.Revocation(3, NOW))
    der = crl.build(
        issuer=issuer, number=42, this_update=NOW, next_update=NOW + timedelta(days=1), revoked=revoked
    )
    found = crl.decode(der)
    assert found.number == 42
    assert found.this_update == NOW and found.next_update == NOW + timedelta(days=1)
    assert found.authority_key_id == issuer.key_id
    assert sorted(r.serial for r in found.revoked) == [3, 5]


def test_exactly_two_extensions_and_no_entry_extensions(issuer: cert.Issuer) -> None:
    """RFC 6487 §5: AKI and CRLNumber only, non-critical; entries carry no extensions (FORT)."""
    der = crl.build(
        issuer=issuer,
        number=1,
        this_update=NOW,
        next_update=NOW + timedelta(days=1),
        revoked=(crl.Revocation(9, NOW),),
    )
    tbs = asn1_crl.CertificateList.load(der)["tbs_cert_list"]
    assert tbs["version"].native == "v2"
    assert [(e["extn_id"].native, e["critical"].native) for e in tbs["crl_extensions"]] == [
        ("authority_key_identifier", False),
        ("crl_number", False),
    ]
    for entry in tbs["revoked_certificates"]:
        assert len(entry["crl_entry_extensions"]) == 0


def test_empty_crl_omits_revoked_certificates(issuer: cert.Issuer) -> None:
    """An empty list is left out, not sent as an empty SEQUENCE (newer rpki-client warns)."""
    der = crl.build(issuer=issuer, number=1, this_update=NOW, next_update=NOW + timedelta(days=1), revoked=())
    tbs = asn1_crl.CertificateList.load(der)["tbs_cert_list"]
    assert not tbs["revoked_certificates"].contents


def test_decodes_real_crl() -> None:
    found = crl.decode((FIXTURES / "rpki-rs-test-data" / "repository" / "ca1.crl").read_bytes())
    assert found.number == 1702


def test_garbage_is_a_crl_error() -> None:
    try:
        crl.decode(b"not a crl", where="ca/x.crl")
    except crl.CrlError as exc:
        assert "ca/x.crl" in str(exc)
    else:
        raise AssertionError("garbage accepted")
