"""Signers: where CA keys live. ``open_signers`` builds one per entry of ``rpki.yaml``'s ``signers``."""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from reconciler.desired.model import Pkcs11SignerConfig, SignerConfig
from reconciler.signers.base import MissingKeyError, Signer, SignerError
from reconciler.signers.files import FileSigner
from reconciler.signers.offline import OfflineSigner, is_offline

if TYPE_CHECKING:
    from reconciler.signers.pkcs11 import Pkcs11Signer


def __getattr__(name: str) -> Any:
    """``Pkcs11Signer`` is imported when first used: python-pkcs11 is not needed by a repository whose
    keys are files, and loading it is a noticeable part of starting ``rpkictl``."""
    if name == "Pkcs11Signer":
        from reconciler.signers.pkcs11 import Pkcs11Signer  # noqa: PLC0415 - see the docstring

        return Pkcs11Signer
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def open_signer(config: SignerConfig) -> Signer:
    """The signer for one entry; a pkcs11 signer reads its PIN (and a file signer with ``passphrase_env``
    its passphrase) from the environment here, at run time, so that loading and validating the desired
    state never needs the secret."""
    if config.type == "offline":
        return OfflineSigner(config.name)
    if config.type == "file" and config.directory is not None:
        if config.passphrase_env is None:
            return FileSigner(config.directory)
        what = f"the passphrase of the keys in {config.directory}"
        passphrase = _secret(config.name, config.passphrase_env, what, "<the key passphrase>")
        return FileSigner(config.directory, os.fsencode(passphrase), passphrase_env=config.passphrase_env)
    if (
        isinstance(config, Pkcs11SignerConfig)
        and config.module is not None
        and config.token
        and config.pin_env
    ):
        what = f"the PIN of token {config.token!r}"
        pin = _secret(config.name, config.pin_env, what, "<the token's user PIN>")
        from reconciler.signers.pkcs11 import Pkcs11Signer  # noqa: PLC0415 - see __getattr__

        return Pkcs11Signer(config.module, config.token, pin, pin_env=config.pin_env)
    raise SignerError(f"signer {config.name!r}: unsupported type {config.type!r}")


def _secret(signer: str, variable: str, what: str, placeholder: str) -> str:
    """A PIN or passphrase from the environment; unset or empty is an error naming the variable only."""
    value = os.environ.get(variable, "")
    if not value:
        state = "empty" if variable in os.environ else "not set"
        raise SignerError(
            f"signer {signer!r}: the environment variable {variable} holding {what} is {state} "
            f"(fix: export {variable}={placeholder})"
        )
    return value


def open_signers(configs: dict[str, SignerConfig], used: Iterable[str] | None = None) -> dict[str, Signer]:
    """The signers named in ``used`` (all when None): an offline signer's key signer is only opened by
    ``rpkictl ta sign`` on the offline machine, never online."""
    names = set(configs) if used is None else set(used)
    return {name: open_signer(config) for name, config in configs.items() if name in names}


__all__ = [
    "FileSigner",
    "MissingKeyError",
    "OfflineSigner",
    "Pkcs11Signer",
    "Signer",
    "SignerError",
    "is_offline",
    "open_signer",
    "open_signers",
]
