"""Where each object lives in the publication point, and what URI it is served as.

The layout is a pure function of the desired state and the CA keys, so a lost publication point is
rebuilt at the very same URIs:

    <rsync_base><ta>.cer                 the trust anchor's self-signed certificate (the TAL points here)
    <rsync_base><ca>/                    each CA's repository (its certificate's caRepository)
    <rsync_base><ca>_class-<class>/      ... of the CA signing under a further resource class of an
                                         external parent (``upstream.classes``)
    <rsync_base><ca>/<KEYID>.mft|.crl    its manifest and CRL, named after the CA key's identifier
    <rsync_base><ca>/<child>.cer         certificates it issued to child CAs (key generation 1)
    <rsync_base><ca>/<child>_g<N>.cer    ... for the child's key generation N (both during a key roll)
    <rsync_base><ca>/<handle>_<KEYID>.cer  certificates it issued to an external child (RFC 6492), one per
                                         key of the child (two during the child's key roll)
    <rsync_base><ca>/AS<asn>_<prefix>_<len>.roa   its ROAs, one prefix each
    <rsync_base><ca>/AS<asn>_ipv<4|6>.roa         ... or one for all of an origin's prefixes of a family
    <rsync_base><ca>/AS<customer>.asa             its ASPAs, one per customer AS
    <rsync_base><ca>/router_AS<asn>_<KEYID>.cer   its BGPsec router certificates, one per router key
    <rsync_base>publishers/<handle>/     an external publisher's repository (RFC 8181), its sia_base
"""

from __future__ import annotations

import re

from reconciler.desired.model import CaIntent
from reconciler.resources import IPNetwork, prefix_text


def repository(ca: str) -> str:
    """The CA's directory, relative to the rsync base; ends with '/'."""
    return f"{ca}/"


#: The directory, below the rsync base, of external publishers' repositories (rpki.yaml ``publishers``).
#: A CA of that name would share it, so validate refuses one while publishers are declared.
PUBLISHERS = "publishers"


def publisher_repository(handle: str) -> str:
    """An external publisher's directory (its RFC 8183 sia_base), relative to the rsync base; ends with
    '/'. Handles follow the CA-name rule, so this is one path segment below ``publishers/``."""
    return f"{PUBLISHERS}/{handle}/"


def key_label(ca: str, generation: int) -> str:
    """The label of a CA's key in its signer, and the stem of the certificate for that key. Declared CA
    names have no '_', and the one CA name with '_' is ``<ca>_class-<class>`` (``upstream.classes``), so
    ``<ca>_g<N>`` can never be another CA's name."""
    return ca if generation == 1 else f"{ca}_g{generation}"


def certificate_path(ca: CaIntent, generation: int | None = None) -> str:
    """Where the certificate for one of the CA's keys is published (``generation`` defaults to the
    desired one): at the top for the TA, else in its parent's directory. During a key roll the old and
    the new key each have their certificate, under different names."""
    stem = key_label(ca.name, ca.key_generation if generation is None else generation)
    if ca.parent is None:  # the trust anchor (one key), or the CA an external parent certifies
        return f"{stem}.cer"
    return f"{repository(ca.parent)}{stem}.cer"


def certificate_subject(name: str) -> tuple[str, int]:
    """The CA and key generation of a child certificate's file name: ``isp_g2.cer`` -> ("isp", 2)."""
    stem = name.removesuffix(".cer")
    ca, sep, generation = stem.rpartition("_g")
    if sep and ca and generation.isdigit() and not generation.startswith("0"):
        return ca, int(generation)
    return stem, 1


def external_certificate_name(handle: str, key_id: bytes) -> str:
    """The file of the certificate a CA issued to external child ``handle`` for one of the child's keys.
    Handles and CA names have no '_', and a key identifier in upper-case hex never starts with 'g', so
    the name is never a local child's (``<ca>.cer``, ``<ca>_g<N>.cer``); naming by key keeps both
    certificates of a child's key roll, and a re-issue for the same key replaces its predecessor."""
    return f"{handle}_{key_id.hex().upper()}.cer"


def external_certificate_subject(name: str) -> tuple[str, bytes] | None:
    """The handle and key identifier of an external child's certificate file name, None for any other
    name: ``acme_0A1B...(40 hex digits).cer`` -> ("acme", bytes)."""
    stem, dot, suffix = name.rpartition(".")
    handle, sep, key = stem.rpartition("_")
    if dot and suffix == "cer" and sep and handle and "_" not in handle and _KEY_HEX.fullmatch(key):
        return handle, bytes.fromhex(key)
    return None


_KEY_HEX = re.compile(r"[0-9A-F]{40}")
_ROUTER = re.compile(r"router_AS[0-9]{1,10}_[0-9A-F]{40}\.cer")


def manifest_name(key_id: bytes) -> str:
    return f"{key_id.hex().upper()}.mft"


def crl_name(key_id: bytes) -> str:
    return f"{key_id.hex().upper()}.crl"


def roa_name(asn: int, prefix: IPNetwork) -> str:
    """A readable file name with exactly one dot, as RFC 9286 §4.2.2 file names must have."""
    address = prefix_text(prefix).partition("/")[0].replace(".", "-").replace(":", "-")
    return f"AS{asn}_{address}_{prefix.prefixlen}.roa"


def aspa_name(customer: int) -> str:
    """The ASPA of a customer AS: one object per customer (draft-ietf-sidrops-aspa-profile)."""
    return f"AS{customer}.asa"


def router_name(asn: int, key_id: bytes) -> str:
    """A BGPsec router certificate (RFC 8209), named by its first AS and its key: ``router_AS<asn>_<KEYID>``.
    Two '_' make it no child's certificate name (``<ca>.cer``, ``<ca>_g<N>.cer``, ``<handle>_<KEYID>.cer``:
    CA names and handles have no '_')."""
    return f"router_AS{asn}_{key_id.hex().upper()}.cer"


def is_router_name(name: str) -> bool:
    """Whether a file name is that of a router certificate (see :func:`router_name`)."""
    return _ROUTER.fullmatch(name) is not None


def aggregate_roa_name(asn: int, version: int) -> str:
    """The one ROA object of an origin AS's many prefixes of one address family (``RoaGrouping``);
    ``ipv4`` is no address, so it never clashes with a one-prefix name."""
    return f"AS{asn}_ipv{version}.roa"


def uri(rsync_base: str, path: str) -> str:
    return rsync_base + path
