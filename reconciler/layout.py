"""Where each object lives in the publication point, and what URI it is served as.

The layout is a pure function of the desired state and the CA keys, so a lost publication point is
rebuilt at the very same URIs:

    <rsync_base><ta>.cer                 the trust anchor's self-signed certificate (the TAL points here)
    <rsync_base><ca>/                    each CA's repository (its certificate's caRepository)
    <rsync_base><ca>/<KEYID>.mft|.crl    its manifest and CRL, named after the CA key's identifier
    <rsync_base><ca>/<child>.cer         certificates it issued to child CAs (key generation 1)
    <rsync_base><ca>/<child>_g<N>.cer    ... for the child's key generation N (both during a key roll)
    <rsync_base><ca>/AS<asn>_<prefix>_<len>.roa   its ROAs, one prefix each
    <rsync_base><ca>/AS<asn>_ipv<4|6>.roa         ... or one for all of an origin's prefixes of a family
"""

from __future__ import annotations

from reconciler.desired.model import CaIntent
from reconciler.resources import IPNetwork, prefix_text


def repository(ca: str) -> str:
    """The CA's directory, relative to the rsync base; ends with '/'."""
    return f"{ca}/"


def key_label(ca: str, generation: int) -> str:
    """The label of a CA's key in its signer, and the stem of the certificate for that key. CA names
    have no '_', so ``<ca>_g<N>`` can never be another CA's name."""
    return ca if generation == 1 else f"{ca}_g{generation}"


def certificate_path(ca: CaIntent, generation: int | None = None) -> str:
    """Where the certificate for one of the CA's keys is published (``generation`` defaults to the
    desired one): at the top for the TA, else in its parent's directory. During a key roll the old and
    the new key each have their certificate, under different names."""
    if ca.parent is None:
        return f"{ca.name}.cer"
    stem = key_label(ca.name, ca.key_generation if generation is None else generation)
    return f"{repository(ca.parent)}{stem}.cer"


def certificate_subject(name: str) -> tuple[str, int]:
    """The CA and key generation of a child certificate's file name: ``isp_g2.cer`` -> ("isp", 2)."""
    stem = name.removesuffix(".cer")
    ca, sep, generation = stem.rpartition("_g")
    if sep and ca and generation.isdigit() and not generation.startswith("0"):
        return ca, int(generation)
    return stem, 1


def manifest_name(key_id: bytes) -> str:
    return f"{key_id.hex().upper()}.mft"


def crl_name(key_id: bytes) -> str:
    return f"{key_id.hex().upper()}.crl"


def roa_name(asn: int, prefix: IPNetwork) -> str:
    """A readable file name with exactly one dot, as RFC 9286 §4.2.2 file names must have."""
    address = prefix_text(prefix).partition("/")[0].replace(".", "-").replace(":", "-")
    return f"AS{asn}_{address}_{prefix.prefixlen}.roa"


def aggregate_roa_name(asn: int, version: int) -> str:
    """The one ROA object of an origin AS's many prefixes of one address family (``RoaGrouping``);
    ``ipv4`` is no address, so it never clashes with a one-prefix name."""
    return f"AS{asn}_ipv{version}.roa"


def uri(rsync_base: str, path: str) -> str:
    return rsync_base + path
