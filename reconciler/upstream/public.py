"""The certificate an external parent issued us, read where relying parties read it.

A plan made without secrets -- a pull request's runner, with the publication read from the repository's
public side (``--published``) -- has no kept state of the exchanges with the parent. It finds our
certificate as a relying party does: our manifest's EE certificate names it (its AIA), in the parent's
repository, and names our key (its AKI); the object fetched there must certify that very key. The
entitlements the parent has not certified yet are known only on the CA machine, which asks the parent.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from reconciler import layout
from reconciler.desired.model import DesiredState
from reconciler.published.reader import PublishedState, SignedManifest
from reconciler.published.remote_cache import RemoteError
from reconciler.published.remote_rsync import fetch_object
from reconciler.rpki import cert as rc
from reconciler.upstream import classes
from reconciler.upstream.state import Certified

#: Seconds for fetching the one certificate.
TIMEOUT = 60.0


def issued_certificates(
    desired: DesiredState, found: PublishedState
) -> tuple[list[tuple[str, Certified]], str]:
    """Our CAs under the parent (the root first, then the CA of each further resource class that has a
    directory in the publication read) with the certificate of each one's active key, from the parent's
    repository, and how they were found (or why not). Without the root's, none."""
    root = desired.external_root
    if root is None:
        return [], "no CA under an external parent"
    names = sorted(
        {
            top
            for path in found.files
            if "/" in path and classes.is_class_ca(top := path.split("/", 1)[0], root.name)
        }
    )
    signing: list[tuple[str, Certified]] = []
    said = []
    for name in (root.name, *names):
        certified, how = _issued_certificate(name, found)
        if certified is None and name == root.name:
            return [], how
        if certified is not None:
            signing.append((name, certified))
        said.append(how if len(names) == 0 else f"{name}: {how}")
    return signing, "; ".join(said)


def _issued_certificate(name: str, found: PublishedState) -> tuple[Certified | None, str]:
    """The certificate of CA ``name`` from the parent's repository, and how it was found (or why not).
    Its ``class_name`` is the CA's name: the class is known only to the CA machine."""
    directory = layout.repository(name)
    named = []
    for path in sorted(found.files):
        if path.startswith(directory) and path.endswith(".mft"):
            manifest = found.manifest(path)
            if isinstance(manifest, SignedManifest) and manifest.signed.ee.aia:
                named.append(
                    (manifest.content.number, manifest.signed.ee.aia, manifest.signed.ee.authority_key_id)
                )
    if not named:
        return None, f"the publication read holds no manifest of {name} naming its certificate"
    _, uri, key = max(named)
    try:
        with tempfile.TemporaryDirectory(prefix="rpkictl-issuer-") as scratch:
            der = fetch_object(uri, Path(scratch) / "certificate.cer", TIMEOUT)
        certificate = rc.decode(der, where=uri)
    except (RemoteError, rc.CertificateError) as exc:
        return None, f"the certificate of {name} could not be read from the parent's repository: {exc}"
    if certificate.key_id != key:
        return None, f"{uri} certifies key {certificate.key_id.hex()}, not {name}'s manifest key"
    return Certified(name, uri, der), f"read from the parent's repository ({uri}), as relying parties read it"
