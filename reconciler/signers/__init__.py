"""Signers: where CA keys live. ``open_signers`` builds one per entry of ``rpki.yaml``'s ``signers``."""

from __future__ import annotations

import os
from collections.abc import Iterable

from reconciler.desired.model import Pkcs11SignerConfig, SignerConfig
from reconciler.signers.base import Signer, SignerError
from reconciler.signers.files import FileSigner
from reconciler.signers.offline import OfflineSigner, is_offline
from reconciler.signers.pkcs11 import Pkcs11Signer


def open_signer(config: SignerConfig) -> Signer:
    """The signer for one entry; a pkcs11 signer reads its PIN (and a file signer with ``passphrase_env``
    its passphrase) from the environment here, at run time, so that loading and validating the desired
    state never needs the secret."""
    if config.type == "offline":
        return OfflineSigner(config.name)
    if config.type == "file" and config.directory is not None:
        if config.passphrase_env is None:
            return FileSigner(config.directory)
        passphrase = os.environ.get(config.passphrase_env, "")
        if not passphrase:
            raise SignerError(
                f"signer {config.name!r}: the environment variable {config.passphrase_env} holding the "
                f"passphrase of the keys in {config.directory} is "
                f"{'empty' if config.passphrase_env in os.environ else 'not set'} "
                f"(fix: export {config.passphrase_env}=<the key passphrase>)"
            )
        return FileSigner(config.directory, os.fsencode(passphrase), passphrase_env=config.passphrase_env)
    if (
        isinstance(config, Pkcs11SignerConfig)
        and config.module is not None
        and config.token
        and config.pin_env
    ):
        pin = os.environ.get(config.pin_env, "")
        if not pin:
            raise SignerError(
                f"signer {config.name!r}: the environment variable {config.pin_env} holding the PIN of "
                f"token {config.token!r} is {'empty' if config.pin_env in os.environ else 'not set'} "
                f"(fix: export {config.pin_env}=<the token's user PIN>)"
            )
        return Pkcs11Signer(config.module, config.token, pin, pin_env=config.pin_env)
    raise SignerError(f"signer {config.name!r}: unsupported type {config.type!r}")


def open_signers(configs: dict[str, SignerConfig], used: Iterable[str] | None = None) -> dict[str, Signer]:
    """The signers named in ``used`` (all when None): an offline signer's key signer is only opened by
    ``rpkictl ta sign`` on the offline machine, never online."""
    names = set(configs) if used is None else set(used)
    return {name: open_signer(config) for name, config in configs.items() if name in names}


__all__ = [
    "FileSigner",
    "OfflineSigner",
    "Pkcs11Signer",
    "Signer",
    "SignerError",
    "is_offline",
    "open_signer",
    "open_signers",
]
