"""The one seam between the reconciler and private keys.

A signer holds CA keys and only ever hands out public keys, key identifiers and signatures. CA keys are
found by a label (``<ca-name>``) so that a lost publication point can be rebuilt from the keys alone, and
addressed by key identifier (the SHA-1 of the public key, RFC 6487 §4.8.2) everywhere else.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa

RSA_KEY_BITS = 2048  # RFC 7935 §3
RSA_PUBLIC_EXPONENT = 65537


class SignerError(Exception):
    """A key could not be found, created or used; the message says how to fix it."""


class MissingKeyError(SignerError):
    """A CA's key is published (relying parties hold its certificate) but its signer cannot find it.

    Never a reason to create a new key: the cause is far more often a key directory that is not
    mounted, or a signer pointing at the wrong directory or token, than a lost key; and a new trust
    anchor key breaks every relying party's TAL. Replacing a lost key is a reviewed change
    (``key_generation``), never a side effect of apply."""


def key_id(public_key: rsa.RSAPublicKey) -> bytes:
    """RFC 6487 §4.8.2: the 160-bit SHA-1 of the subjectPublicKey bits."""
    return x509.SubjectKeyIdentifier.from_public_key(public_key).digest


@runtime_checkable
class Signer(Protocol):
    """Creates and uses RSA-2048 keys that never leave it."""

    def find_key(self, label: str) -> bytes | None:
        """The key identifier of the key with this label, or None when there is none."""
        ...

    def create_key(self, label: str) -> bytes:
        """Generate a new key under this label and return its key identifier."""
        ...

    def public_key(self, key: bytes) -> rsa.RSAPublicKey: ...

    def sign(self, key: bytes, data: bytes) -> bytes:
        """RSASSA-PKCS1-v1_5 with SHA-256 over ``data`` (RFC 7935 §2)."""
        ...

    def destroy_key(self, key: bytes) -> None:
        """Destroy the private key (and what else the signer keeps of it) for good; it cannot be used or
        found by its label again. Used when a key roll has retired a key. An unknown key is an error."""
        ...
