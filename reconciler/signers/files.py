"""CA keys as PEM files in a directory kept outside the Git repository.

Keys are written with mode 0600 in a 0700 directory, and a key file that others can read is refused
rather than used: a leaked CA key lets anyone sign routes for the CA's address space.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from reconciler.signers.base import RSA_KEY_BITS, RSA_PUBLIC_EXPONENT, SignerError, key_id


class FileSigner:
    """One PEM file per key, named ``<label>.pem``."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._by_id: dict[bytes, rsa.RSAPrivateKey] = {}
        self._by_label: dict[str, bytes] = {}

    def _path(self, label: str) -> Path:
        return self.directory / f"{label}.pem"

    def _load(self, path: Path) -> rsa.RSAPrivateKey:
        mode = path.stat().st_mode
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise SignerError(
                f"{path} is readable by other users (mode {stat.S_IMODE(mode):04o}); "
                f"refusing to use it (fix: chmod 600 {path})"
            )
        try:
            key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        except (ValueError, TypeError) as exc:
            raise SignerError(f"{path} is not a readable private key: {exc}") from exc
        if not isinstance(key, rsa.RSAPrivateKey) or key.key_size != RSA_KEY_BITS:
            raise SignerError(f"{path} is not an RSA-{RSA_KEY_BITS} key (RFC 7935 requires one)")
        return key

    def _remember(self, label: str, key: rsa.RSAPrivateKey) -> bytes:
        kid = key_id(key.public_key())
        self._by_id[kid] = key
        self._by_label[label] = kid
        return kid

    def find_key(self, label: str) -> bytes | None:
        if label in self._by_label:
            return self._by_label[label]
        path = self._path(label)
        if not path.exists():
            return None
        return self._remember(label, self._load(path))

    def create_key(self, label: str) -> bytes:
        path = self._path(label)
        if path.exists():
            raise SignerError(f"a key labelled {label!r} already exists at {path}")
        try:
            self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        except OSError as exc:
            raise SignerError(f"cannot create the key directory {self.directory}: {exc.strerror}") from exc
        key = rsa.generate_private_key(public_exponent=RSA_PUBLIC_EXPONENT, key_size=RSA_KEY_BITS)
        pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        tmp = path.with_suffix(".pem.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(pem)
            handle.flush()
            os.fsync(handle.fileno())
        tmp.replace(path)
        return self._remember(label, key)

    def _key(self, key: bytes) -> rsa.RSAPrivateKey:
        try:
            return self._by_id[key]
        except KeyError:
            raise SignerError(f"no key with identifier {key.hex()} in {self.directory}") from None

    def public_key(self, key: bytes) -> rsa.RSAPublicKey:
        return self._key(key).public_key()

    def sign(self, key: bytes, data: bytes) -> bytes:
        return self._key(key).sign(data, padding.PKCS1v15(), hashes.SHA256())


class OneTimeKey:
    """A software key used for exactly one EE certificate and then forgotten (RFC 6487 §3)."""

    def __init__(self) -> None:
        self.private = rsa.generate_private_key(public_exponent=RSA_PUBLIC_EXPONENT, key_size=RSA_KEY_BITS)
        self.public = self.private.public_key()
        self.key_id = key_id(self.public)

    def sign(self, data: bytes) -> bytes:
        return self.private.sign(data, padding.PKCS1v15(), hashes.SHA256())
