"""Let pyca/cryptography's certificate and CRL builders sign through any ``Signer``.

The builders accept any ``RSAPrivateKey``; they call ``sign(tbs_bytes, PKCS1v15(), SHA256())`` once, which
maps onto a signer's hash-and-sign operation. Nothing else of the private key is ever asked for.
"""

from __future__ import annotations

from typing import Any, NoReturn

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import NoDigestInfo, Prehashed

from reconciler.signers.base import Signer


class SignerKey(rsa.RSAPrivateKey):
    """A handle on a key inside a signer, shaped like an RSA private key."""

    def __init__(self, signer: Signer, key: bytes) -> None:
        self._signer = signer
        self._key = key

    def sign(
        self,
        data: bytes,
        padding: padding.AsymmetricPadding,
        algorithm: Prehashed | hashes.HashAlgorithm | NoDigestInfo,
    ) -> bytes:
        if not isinstance(algorithm, hashes.SHA256) or padding.name != "EMSA-PKCS1-v1_5":
            raise ValueError("RPKI signatures are RSASSA-PKCS1-v1_5 with SHA-256 (RFC 7935)")
        return self._signer.sign(self._key, data)

    def public_key(self) -> rsa.RSAPublicKey:
        return self._signer.public_key(self._key)

    @property
    def key_size(self) -> int:
        return self.public_key().key_size

    def _refuse(self) -> NoReturn:
        raise TypeError("private key material never leaves its signer")

    def decrypt(self, ciphertext: bytes, padding: padding.AsymmetricPadding) -> bytes:
        self._refuse()

    def private_numbers(self) -> rsa.RSAPrivateNumbers:
        self._refuse()

    def private_bytes(self, *args: Any, **kwargs: Any) -> bytes:
        self._refuse()

    def __copy__(self) -> SignerKey:
        return self

    def __deepcopy__(self, memo: dict[int, object]) -> SignerKey:
        return self
