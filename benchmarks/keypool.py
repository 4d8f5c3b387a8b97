"""Keys generated beforehand, for a first apply that measures everything but key generation.

A full registry's first apply generates 190,004 RSA-2048 keys: an hour and a half of both cores before its
memory is known and before there is a tree to time its no-op plans and one-ROA changes on. With
``python -m benchmarks.scale --key-pool FILE``, the first apply runs as ``rpkictl apply`` does, but for
where its keys come from: each CA key is drawn once from keys generated beforehand on every core (and kept
in FILE for the next run), and the one-time EE keys cycle through a few of them. Encoding, signing,
publishing and the caches are the real ones. That first apply's wall time leaves out what the floor is
made of, so it is not compared with the floor; the no-op plans and changes after it use real keys.

    python -m benchmarks.keypool FILE apply REPO --yes    # what the benchmark runs
"""

from __future__ import annotations

import itertools
import os
import sys
import threading
import types
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

ONE_TIME = 64  # one-time EE keys, used in turn
_CHUNK = 200


def _generate(count: int) -> list[bytes]:
    keys = (rsa.generate_private_key(public_exponent=65537, key_size=2048) for _ in range(count))
    encoding, pkcs8 = serialization.Encoding.DER, serialization.PrivateFormat.PKCS8
    return [key.private_bytes(encoding, pkcs8, serialization.NoEncryption()) for key in keys]


def _stored(path: Path) -> Iterator[bytes]:
    """The keys in ``path``, each a 4-byte length and its PKCS#8 DER; a piece cut short is left out."""
    data = path.read_bytes() if path.exists() else b""
    at = 0
    while at + 4 <= len(data):
        length = int.from_bytes(data[at : at + 4], "big")
        if at + 4 + length > len(data):
            return
        yield data[at + 4 : at + 4 + length]
        at += 4 + length


def ensure(path: Path, cas: int) -> int:
    """Make ``path`` hold keys for ``cas`` CA keys and the one-time keys, generating what is missing on
    every core; the number generated now."""
    missing = cas + ONE_TIME - sum(1 for _ in _stored(path))
    if missing <= 0:
        return 0
    chunks = [_CHUNK] * (missing // _CHUNK) + ([missing % _CHUNK] if missing % _CHUNK else [])
    with ProcessPoolExecutor(os.cpu_count() or 1) as pool, path.open("ab") as out:
        for keys in pool.map(_generate, chunks):
            out.writelines(len(der).to_bytes(4, "big") + der for der in keys)
    return missing


def install(path: Path) -> None:
    """Draw the file signer's keys from ``path``: the first ONE_TIME in turn for one-time keys, the
    others once each for CA keys."""
    from reconciler.signers import files  # noqa: PLC0415 -- installed before rpkictl runs

    stored = (
        serialization.load_der_private_key(der, None, unsafe_skip_rsa_key_validation=True)
        for der in _stored(path)
    )
    one_time = [next(stored) for _ in range(ONE_TIME)]
    lock = threading.Lock()
    turns = itertools.cycle(one_time)

    def ca_key(**_: object) -> object:
        with lock:
            try:
                return next(stored)
            except StopIteration:
                raise SystemExit(f"{path} holds too few keys for this desired state") from None

    def one_time_key(self: files.OneTimeKey) -> None:
        with lock:
            self.private = next(turns)  # type: ignore[assignment]
        self.public = self.private.public_key()
        self.key_id = files.key_id(self.public)

    module = types.SimpleNamespace(
        **{name: getattr(rsa, name) for name in dir(rsa) if not name.startswith("__")}
    )
    module.generate_private_key = ca_key
    files.rsa = module  # type: ignore[assignment]
    files.OneTimeKey.__init__ = one_time_key  # type: ignore[method-assign]


def main() -> None:
    pool, *args = sys.argv[1:]
    install(Path(pool))
    sys.argv = ["rpkictl", *args]
    from reconciler.entry import main as rpkictl  # noqa: PLC0415 -- once the keys are in place

    rpkictl()


if __name__ == "__main__":
    main()
