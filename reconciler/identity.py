"""Our BPKI identities: the long-lived keys by which peers recognise us in RFC 6492 and RFC 8181
messages, and the self-signed certificates that carry them in the RFC 8183 files we hand out.

Each CA has its own identity (owner: the CA's name), and the publication server has one (owner
:data:`REPOSITORY`). The key lives in a signer under ``bpki.identity_label(owner)``, like the CA keys, and
never leaves it. The certificate is public, derived data: it is kept in ``<publication directory>/bpki/
<owner>.cer`` so that every file handed out carries the very same bytes, and it is made again from the key
whenever that file is lost, no longer matches the key, or has expired. A peer checks our messages by key
(the signature, and the key identifier as authority key identifier), never by the certificate's bytes or
serial number, so a peer still holding the earlier certificate over the same key keeps working. Losing
the *key* is different: every peer then needs a new RFC 8183 exchange.
"""

from __future__ import annotations

import errno
import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

from reconciler.desired.model import DesiredState
from reconciler.fsutil import read_bytes, replace_public
from reconciler.protocol import bpki
from reconciler.protocol.bpki import IdentityCertificate
from reconciler.protocol.errors import ProtocolError
from reconciler.signers.base import Signer

#: The owner of the publication server's identity; validate refuses a CA of this name while publishers
#: are declared, so that it never shares a key or a certificate file with a CA.
REPOSITORY = "repository"

#: The directory below the publication directory that keeps the identity certificates.
STORE = "bpki"


def directory(desired: DesiredState) -> Path:
    """Where the identity certificates of this desired state are kept."""
    return desired.publication.directory / STORE


def certificate_path(owner: str, store: Path) -> Path:
    """The stored certificate of ``owner``; the owner is checked to be a CA name or :data:`REPOSITORY`
    (``bpki.identity_label`` refuses anything else), so it is always one plain file name."""
    bpki.identity_label(owner)
    return store / f"{owner}.cer"


def load(owner: str, store: Path) -> IdentityCertificate | None:
    """The stored identity certificate of ``owner``, or None when there is none yet. For callers that
    must not create keys or need no secret (plan, status): reads one public file, never a signer.

    A file that does not load raises :class:`ProtocolError` naming it."""
    path = certificate_path(owner, store)
    try:
        der = read_bytes(str(path))
    except OSError as exc:
        if exc.errno == errno.ENOENT:
            return None
        raise
    return bpki.load_identity(der, str(path))


def ensure(signer: Signer, owner: str, store: Path, now: datetime) -> tuple[bytes, IdentityCertificate]:
    """The key identifier and certificate of ``owner``'s identity, creating what is missing: the key in
    ``signer`` (under ``bpki.identity_label(owner)``) the first time, and the certificate whenever the
    stored one is missing, unreadable, for another key, or expired at ``now``.

    A certificate made again over the same key is as good as the one peers already hold: they verify
    by key (see the module docstring). Processes that call this at once (``rpkictl serve`` starting while
    an operator prints a request) take a lock in ``store`` first, so that only one of them creates the
    key."""
    label = bpki.identity_label(owner)
    path = certificate_path(owner, store)
    store.mkdir(mode=0o755, parents=True, exist_ok=True)
    with _locked(store):
        key = signer.find_key(label)
        if key is None:
            key = signer.create_key(label)
        stored = _stored(path)
        if stored is not None and _usable(stored, signer, key, now):
            return key, stored
        made = bpki.create_identity(signer, key, now)
        replace_public(path, made.der)
        return key, made


def _stored(path: Path) -> IdentityCertificate | None:
    """The stored certificate, or None when it is missing or does not load (it is made again)."""
    try:
        return bpki.load_identity(read_bytes(str(path)), str(path))
    except OSError as exc:
        if exc.errno == errno.ENOENT:
            return None
        raise
    except ProtocolError:
        return None


def _usable(stored: IdentityCertificate, signer: Signer, key: bytes, now: datetime) -> bool:
    """Whether the stored certificate is for the signer's key, self-signed and not expired."""
    public = signer.public_key(key)
    same_key = stored.public_key.public_numbers() == public.public_numbers()
    return same_key and stored.self_signed and stored.not_before <= now < stored.not_after


@contextmanager
def _locked(store: Path) -> Iterator[None]:
    """An exclusive ``flock`` on ``<store>/.lock`` for the duration of a ``with`` block."""
    # O_NOFOLLOW: a link planted in the store must not make us create or lock a file elsewhere.
    fd = os.open(store / ".lock", os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock
