"""The BGPsec router keys that CA files name (``routers[].key``): each router's PKCS#10 request or public
key, committed in the repository beside the YAML.

A key file is desired state like the YAML: its bytes go into the desired state's digest (a plan is bound to
the keys it was made for), and it is read under the same rules as RFC 8183 request files (``oobfiles``):
only a regular file inside the repository, never through a link that leaves it, and never a large one.
What the file holds is checked by :func:`reconciler.rpki.router.read_key`: a P-256 key, and a request's
signature that verifies. Each problem is a diagnostic at the entry's ``key``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from reconciler.desired.checks import CaDoc, diag
from reconciler.desired.oobfiles import Committed, RequestError, read_committed
from reconciler.diagnostics import Diagnostic

#: The largest key file read. A router's request or public key is a few hundred bytes, in PEM under
#: 4 KiB with any comment lines around it.
MAX_KEY_BYTES = 64 << 10

_SEND = "the router's PKCS#10 request or its public key (ECDSA on P-256, DER or PEM)"


@dataclass(frozen=True)
class RouterKeyFile:
    """One key file, read and checked."""

    relative: str  # the file, relative to the desired-state directory: as keyed in the digest
    raw: bytes
    key: bytes  # SubjectPublicKeyInfo DER, encoded anew: the same for a key's request and the bare key
    key_id: bytes  # SHA-1 of the key (RFC 6487 §4.8.2)


@dataclass
class RouterKeys:
    """Every key file the CA files name, keyed by (CA name, index in its ``routers``)."""

    keys: dict[tuple[str, int], RouterKeyFile] = field(default_factory=dict)
    problems: list[Diagnostic] = field(default_factory=list)

    @property
    def contents(self) -> dict[str, bytes]:
        """The files' bytes by path relative to the desired-state directory, for the digest."""
        return {found.relative: found.raw for found in self.keys.values()}


def read_all(root: Path, docs: Sequence[CaDoc]) -> RouterKeys:
    """Read every CA file's router keys; a key listed twice in one CA is reported at its second entry
    (a key's one entry lists all its AS numbers)."""
    found = RouterKeys()
    for doc in docs:
        first_at: dict[bytes, int] = {}
        for index, entry in enumerate(doc.spec.routers):
            at = ("routers", index, "key")
            try:
                key = read(root, entry.key)
            except RequestError as exc:
                found.problems.append(diag(doc.source, at, f"routers[{index}].key: {exc}", exc.hint))
                continue
            first = first_at.setdefault(key.key, index)
            if first != index:
                line, _ = doc.source.position(("routers", first))
                found.problems.append(
                    diag(
                        doc.source,
                        at,
                        f"routers[{index}].key: {entry.key} holds the same router key as the entry at line "
                        f"{line} of CA '{doc.name}'",
                        "a CA certifies each router key once: keep one entry per key, listing all its AS "
                        "numbers",
                    )
                )
                continue
            found.keys[(doc.name, index)] = key
    return found


def read(root: Path, written: str) -> RouterKeyFile:
    """Read and check one key file, ``written`` relative to ``root`` (the desired-state directory,
    resolved); raises :class:`RequestError`. The router code is imported here: a desired state without
    routers never loads it."""
    from cryptography.hazmat.primitives import serialization  # noqa: PLC0415

    from reconciler.rpki.router import RouterKeyError, read_key  # noqa: PLC0415

    rules = Committed(
        what="the router's key file",
        commit=f"commit {_SEND} at {written} (relative to the directory holding rpki.yaml), or correct the "
        "path",
        kind="a router's key file",
        usual_size="a router's request or public key is a few hundred bytes",
        limit=MAX_KEY_BYTES,
    )
    real, raw = read_committed(root, written, rules)
    relative = real.relative_to(root).as_posix()
    try:
        key = read_key(raw, relative)
    except RouterKeyError as exc:
        fix = f"ask the router's operator for {_SEND} and commit it in its place"
        raise RequestError(str(exc), fix) from exc
    spki = key.public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return RouterKeyFile(relative, raw, spki, key.key_id)
