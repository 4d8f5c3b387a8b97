"""ASPA eContent in the current profile (version 1): what the world publishes is read, what the profile
forbids is refused with its rule, and the earlier drafts are refused as such."""

from __future__ import annotations

import pytest

from reconciler.rpki import aspa, cms
from tests.rpki.conftest import FIXTURES

REGRESS = FIXTURES / "rpki-client-regress" / "aspa"
RPKI_RS = FIXTURES / "rpki-rs-test-data" / "repository"


def test_the_published_asp_as_are_read() -> None:
    ripe = cms.decode((REGRESS / "5m80fwYws_3FiFD7JiQjAqZ1RYQ.asa").read_bytes())
    assert ripe.content_type == aspa.CONTENT_TYPE
    assert aspa.decode(ripe.econtent) == aspa.AspaContent(15562, (2914, 8283, 51088, 206238))
    small = cms.decode((REGRESS / "AS1000.asa").read_bytes())
    assert aspa.decode(small.econtent) == aspa.AspaContent(1000, (1025,))
    content = (RPKI_RS / "aspa-content.der").read_bytes()
    assert aspa.decode(content) == aspa.AspaContent(15562, (2914, 8283, 51088, 206238))


def test_we_encode_what_the_world_publishes_byte_for_byte() -> None:
    content = (RPKI_RS / "aspa-content.der").read_bytes()
    assert aspa.encode(aspa.decode(content)) == content
    assert aspa.encode(aspa.AspaContent.of(15562, [206238, 2914, 51088, 8283, 2914])) == content


@pytest.mark.parametrize(
    "econtent",
    [
        (RPKI_RS / "aspa-content-draft-13.der").read_bytes(),
        cms.decode((RPKI_RS / "aspa-bm.asa").read_bytes()).econtent,
    ],
    ids=["draft-13", "aspa-bm"],
)
def test_the_earlier_drafts_are_refused_as_such(econtent: bytes) -> None:
    with pytest.raises(aspa.AspaError, match=r"an ASPA of an earlier draft.*\(version 1\)"):
        aspa.decode(econtent, where="x.asa")


def _raw(version: int | None, customer: int, providers: list[int]) -> bytes:
    """An eContent with any values, including those the encoder refuses."""
    from reconciler.rpki import der  # noqa: PLC0415

    head = der.tlv(0xA0, der.integer(version)) if version is not None else b""
    return der.sequence(head, der.integer(customer), der.sequence(*map(der.integer, providers)))


@pytest.mark.parametrize(
    ("version", "customer", "providers", "rule"),
    [
        (None, 64496, [64497], "version 0: the current ASPA profile is version 1"),
        (2, 64496, [64497], "version 2"),
        (1, 64496, [], "at least one provider"),
        (1, 64496, [64498, 64497], "ascending"),
        (1, 64496, [64497, 64497], "more than once: AS64497"),
        (1, 64496, [64496, 64497], "cannot be its own provider"),
        (1, 64496, [0, 64497], "AS0 may only be listed alone"),
        (1, 0, [64497], "AS0 cannot be a customer"),
        (1, 64496, [2**32], "a provider AS must be 0 to"),
    ],
)
def test_each_rule_of_the_profile_is_enforced(
    version: int | None, customer: int, providers: list[int], rule: str
) -> None:
    with pytest.raises(aspa.AspaError, match=rule):
        aspa.decode(_raw(version, customer, providers), where="x.asa")


def test_as0_alone_and_trailing_data() -> None:
    assert aspa.decode(_raw(1, 64496, [0])) == aspa.AspaContent(64496, (0,))
    with pytest.raises(aspa.AspaError, match="not DER"):
        aspa.decode(_raw(1, 64496, [64497]) + b"\x00")
    with pytest.raises(aspa.AspaError, match="at most 4000"):
        aspa.encode(aspa.AspaContent.of(64496, range(1, 4002)))


def test_an_aspa_is_signed_with_the_customer_as_and_no_addresses() -> None:
    """The EE certificate of an ASPA holds exactly the customer AS and no IP extension (FORT requires
    the exact match, rpki-client refuses IP resources there); a ROA's holds its prefixes, a manifest's
    inherits both."""
    from datetime import UTC, datetime, timedelta  # noqa: PLC0415

    from cryptography.hazmat.primitives.asymmetric import rsa  # noqa: PLC0415

    from reconciler.apply.executor import signed_object  # noqa: PLC0415
    from reconciler.resources import AsnSet, Resources  # noqa: PLC0415
    from reconciler.rpki import cert as rc  # noqa: PLC0415
    from reconciler.signers.base import key_id  # noqa: PLC0415

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    issuer = rc.Issuer(key, key_id(key.public_key()), "rsync://x/ta/ca.cer", "rsync://x/ca/K.crl")
    now = datetime.now(UTC).replace(microsecond=0)
    content = aspa.AspaContent.of(64496, [64497, 64498])

    def ee_of(resources: rc.EeResources) -> rc.ResourceCertificate:
        der = signed_object(
            issuer=issuer,
            uri="rsync://x/ca/AS64496.asa",
            content_type=aspa.CONTENT_TYPE,
            econtent=aspa.encode(content),
            ee=(now, now + timedelta(days=1)),
            resources=resources,
            serial=1,
            signing_time=now,
        )
        signed = cms.decode(der)
        assert aspa.decode(signed.econtent) == content
        return signed.ee

    ee = ee_of(rc.EeResources.asns(AsnSet.parse([64496])))
    assert ee.resources.resources == Resources.parse(["AS64496"]) and not ee.resources.inherit_asn
    assert not ee.resources.inherit_ip
    assert not {e.oid.dotted_string for e in ee.cert.extensions} & {"1.3.6.1.5.5.7.1.7"}
    roa_ee = ee_of(rc.EeResources.prefixes(Resources.parse([], ["192.0.2.0/24"])))
    assert roa_ee.resources.resources == Resources.parse([], ["192.0.2.0/24"])
    inheriting = ee_of(rc.EeResources.inherit())
    assert inheriting.resources.inherit_asn and inheriting.resources.inherit_ip
