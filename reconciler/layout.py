"""Where each object lives in the publication point, and what URI it is served as.

The layout is a pure function of the desired state and the CA keys, so a lost publication point is
rebuilt at the very same URIs:

    <rsync_base><ta>.cer                 the trust anchor's self-signed certificate (the TAL points here)
    <rsync_base><ca>/                    each CA's repository (its certificate's caRepository)
    <rsync_base><ca>/<KEYID>.mft|.crl    its manifest and CRL, named after the CA key's identifier
    <rsync_base><ca>/<child>.cer         certificates it issued to child CAs
    <rsync_base><ca>/AS<asn>_<prefix>_<len>.roa   its ROAs, one prefix each
"""

from __future__ import annotations

from reconciler.desired.model import CaIntent
from reconciler.resources import IPNetwork


def repository(ca: str) -> str:
    """The CA's directory, relative to the rsync base; ends with '/'."""
    return f"{ca}/"


def certificate_path(ca: CaIntent) -> str:
    """Where the CA's own certificate is published: at the top for the TA, else in its parent's directory."""
    if ca.parent is None:
        return f"{ca.name}.cer"
    return f"{repository(ca.parent)}{ca.name}.cer"


def manifest_name(key_id: bytes) -> str:
    return f"{key_id.hex().upper()}.mft"


def crl_name(key_id: bytes) -> str:
    return f"{key_id.hex().upper()}.crl"


def roa_name(asn: int, prefix: IPNetwork) -> str:
    """A readable file name with exactly one dot, as RFC 9286 §4.2.2 file names must have."""
    address = str(prefix.network_address).replace(".", "-").replace(":", "-")
    return f"AS{asn}_{address}_{prefix.prefixlen}.roa"


def uri(rsync_base: str, path: str) -> str:
    return rsync_base + path
