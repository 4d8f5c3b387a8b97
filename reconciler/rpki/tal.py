"""Trust anchor locators (RFC 8630): URIs, a blank line, then the TA's SubjectPublicKeyInfo in base64."""

from __future__ import annotations

import base64
import textwrap
from dataclasses import dataclass

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat, load_der_public_key

from reconciler.rpki import der as strict


class TalError(ValueError):
    """A TAL that does not follow RFC 8630."""


@dataclass(frozen=True, slots=True)
class Tal:
    uris: tuple[str, ...]
    public_key_der: bytes
    comments: tuple[str, ...] = ()


def encode(uris: tuple[str, ...], public_key: rsa.RSAPublicKey, comments: tuple[str, ...] = ()) -> str:
    spki = public_key.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    lines = [f"# {c}" for c in comments]  # RFC 8630 §2.2: comment lines come first
    lines += list(uris)
    lines.append("")
    lines += textwrap.wrap(base64.b64encode(spki).decode("ascii"), 64)
    return "\n".join(lines) + "\n"


def decode(text: str) -> Tal:
    lines = text.splitlines()
    comments = []
    while lines and lines[0].startswith("#"):
        comments.append(lines.pop(0)[1:].strip())
    try:
        blank = lines.index("")
    except ValueError as exc:
        raise TalError("RFC 8630 §2.2: no blank line between the URIs and the key") from exc
    uris = tuple(line.strip() for line in lines[:blank] if line.strip())
    if not uris:
        raise TalError("RFC 8630 §2.2: no URI")
    try:
        der = base64.b64decode("".join(lines[blank + 1 :]), validate=True)
        strict.require_der(der)
        load_der_public_key(der)
    except strict.NotDerError as exc:
        raise TalError(f"RFC 8630 §2.2: the key is not one DER SubjectPublicKeyInfo: {exc}") from exc
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise TalError(f"RFC 8630 §2.2: the key is not a base64 SubjectPublicKeyInfo: {exc}") from exc
    return Tal(uris, der, tuple(comments))
