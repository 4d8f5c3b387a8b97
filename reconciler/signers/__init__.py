"""Signers: where CA keys live. ``open_signers`` builds one per entry of ``rpki.yaml``'s ``signers``."""

from __future__ import annotations

from reconciler.desired.model import SignerConfig
from reconciler.signers.base import Signer, SignerError
from reconciler.signers.files import FileSigner


def open_signer(config: SignerConfig) -> Signer:
    if config.type == "file" and config.directory is not None:
        return FileSigner(config.directory)
    raise SignerError(f"signer {config.name!r}: unsupported type {config.type!r}")


def open_signers(configs: dict[str, SignerConfig]) -> dict[str, Signer]:
    return {name: open_signer(config) for name, config in configs.items()}


__all__ = ["FileSigner", "Signer", "SignerError", "open_signer", "open_signers"]
