"""The online stand-in for a key that lives on a machine that is never online.

It knows the trust anchor's public key only from what is published (its self-signed certificate), and
refuses to sign: apply defers whatever that key must sign into a signing request instead (see
``reconciler.offline``).
"""

from __future__ import annotations

from cryptography.hazmat.primitives.asymmetric import rsa

from reconciler.signers.base import SignerError, key_id


class OfflineSigner:
    """Answers ``find_key`` from published certificates; never signs, creates or destroys."""

    offline = True

    def __init__(self, name: str) -> None:
        self.name = name
        self._labels: dict[str, bytes] = {}
        self._keys: dict[bytes, rsa.RSAPublicKey] = {}

    def learn(self, label: str, public_key: rsa.RSAPublicKey) -> None:
        """Record the public key of ``label`` as published (the self-signed certificate says it)."""
        kid = key_id(public_key)
        self._labels[label] = kid
        self._keys[kid] = public_key

    def find_key(self, label: str) -> bytes | None:
        return self._labels.get(label)

    def create_key(self, label: str) -> bytes:
        raise SignerError(self._refusal(f"create the key {label!r}"))

    def public_key(self, key: bytes) -> rsa.RSAPublicKey:
        try:
            return self._keys[key]
        except KeyError:
            raise SignerError(f"signer {self.name!r}: the key {key.hex()} is held offline") from None

    def sign(self, key: bytes, data: bytes) -> bytes:
        raise SignerError(self._refusal("sign"))

    def destroy_key(self, key: bytes) -> None:
        raise SignerError(self._refusal("destroy a key"))

    def _refusal(self, what: str) -> str:
        return (
            f"signer {self.name!r} is offline and cannot {what} here "
            "(fix: apply writes a signing request; run 'rpkictl ta sign' on the offline machine)"
        )


def is_offline(signer: object) -> bool:
    return getattr(signer, "offline", False) is True
