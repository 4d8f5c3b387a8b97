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
from reconciler.upstream.state import Certified

#: Seconds for fetching the one certificate.
TIMEOUT = 60.0


def issued_certificate(desired: DesiredState, found: PublishedState) -> tuple[Certified | None, str]:
    """Our certificate from the parent's repository, and how it was found (or why not)."""
    root = desired.external_root
    if root is None:
        return None, "no CA under an external parent"
    directory = layout.repository(root.name)
    named = []
    for path in sorted(found.files):
        if path.startswith(directory) and path.endswith(".mft"):
            manifest = found.manifest(path)
            if isinstance(manifest, SignedManifest) and manifest.signed.ee.aia:
                named.append(
                    (manifest.content.number, manifest.signed.ee.aia, manifest.signed.ee.authority_key_id)
                )
    if not named:
        return None, f"the publication read holds no manifest of {root.name} naming its certificate"
    _, uri, key = max(named)
    try:
        with tempfile.TemporaryDirectory(prefix="rpkictl-issuer-") as scratch:
            der = fetch_object(uri, Path(scratch) / "certificate.cer", TIMEOUT)
        certificate = rc.decode(der, where=uri)
    except (RemoteError, rc.CertificateError) as exc:
        return None, f"the certificate of {root.name} could not be read from the parent's repository: {exc}"
    if certificate.key_id != key:
        return None, f"{uri} certifies key {certificate.key_id.hex()}, not {root.name}'s manifest key"
    return Certified("", uri, der), f"read from the parent's repository ({uri}), as relying parties read it"
