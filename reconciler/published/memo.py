"""What the reconciler already knows of published objects, by the SHA-256 of their bytes.

A plan compares every published ROA with the YAML, and checks every CA's certificate, manifest and CRL.
Decoding one and checking its signatures costs up to a millisecond, which for the 5,000 ROAs of a large
operator is seconds on every plan, and for a registry minutes. But what an object says is a function of its
bytes alone, and so is whether a given CA key signed it: both are remembered under the SHA-256 of the
bytes, and an object whose bytes are unchanged is not decoded or checked again. Any other bytes -- an
edited, damaged or replaced file -- miss the memo and are decoded and checked in full, so the memo never
hides drift.

The memo is a cache: losing it costs one slow plan, never a wrong one. It lives in the publication
directory (``cache/memo.json``, not served), is written in one rename, and keeps only the objects
published when it was written.

Whoever can write the publication directory could also write the memo, and make a plan believe that a
forged object says what the desired state says and carries this CA's signature. So the memo is
authenticated: it ends with an HMAC whose key is derived from a signature of one of the CA's own keys
(:func:`secret_of`; RSASSA-PKCS1-v1_5 is deterministic, so every run with the signers derives the same
key, and nobody without them can). A memo without the right MAC is dropped whole and rebuilt, and without
a usable key no memo is read or written at all.
"""

from __future__ import annotations

import hashlib
import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from reconciler import cachefile, layout
from reconciler.resources import prefix_text
from reconciler.rpki.roa import RoaContent, RoaPrefix

if TYPE_CHECKING:
    from reconciler.desired.model import DesiredState
    from reconciler.signers.base import Signer

VERSION = 2


@dataclass(slots=True)
class RoaSummary:
    """The facts of one ROA a plan checks (see ``plan.diff``), with the CA keys known to have signed its
    EE certificate.

    The prefixes are kept as text, as the memo stores them: comparing them with the YAML's and listing
    VRPs then needs no address objects, which for thousands of ROAs is most of the cost of a plan."""

    asn: int
    prefixes: tuple[tuple[str, int], ...]  # (prefix_text, max length) in RoaContent's canonical order
    authority_key_id: bytes | None
    serial: int
    not_before: datetime
    not_after: datetime
    signed_object: str | None
    crldp: str | None
    aia: str | None
    resources_match: bool  # the EE certificate's resources are exactly the ROA's prefixes
    signed_by: set[bytes] = field(default_factory=set)
    _vrps: frozenset[tuple[int, str, int]] | None = field(default=None, init=False, repr=False, compare=False)

    @property
    def content(self) -> RoaContent:
        return RoaContent(self.asn, tuple(RoaPrefix(ipaddress.ip_network(p), m) for p, m in self.prefixes))

    @property
    def vrps(self) -> frozenset[tuple[int, str, int]]:
        """Made once: a plan lists every ROA's VRPs twice (what changes, and the deletion gate)."""
        if self._vrps is None:
            asn = self.asn
            self._vrps = frozenset([(asn, prefix, max_length) for prefix, max_length in self.prefixes])
        return self._vrps

    def holds(self, content: RoaContent) -> bool:
        """Whether the ROA says exactly ``content``."""
        return self.asn == content.asn and self.prefixes == texts(content)

    def to_json(self) -> list[object]:
        return [
            self.asn,
            [list(p) for p in self.prefixes],
            self.authority_key_id.hex() if self.authority_key_id is not None else None,
            self.serial,
            int(self.not_before.timestamp()),
            int(self.not_after.timestamp()),
            self.signed_object,
            self.crldp,
            self.aia,
            self.resources_match,
            sorted(k.hex() for k in self.signed_by),
        ]

    @classmethod
    def from_json(cls, row: list[Any]) -> RoaSummary:
        asn, prefixes, aki, serial, not_before, not_after, signed_object, crldp, aia, match, signers = row
        return cls(
            int(asn),
            # saved in canonical order and form (``RoaContent.of``, ``prefix_text``): kept as they are
            tuple([(str(p), int(m)) for p, m in prefixes]),
            bytes.fromhex(aki) if isinstance(aki, str) else None,
            int(serial),
            _instant(int(not_before)),
            _instant(int(not_after)),
            signed_object if isinstance(signed_object, str) else None,
            crldp if isinstance(crldp, str) else None,
            aia if isinstance(aia, str) else None,
            bool(match),
            {bytes.fromhex(k) for k in signers},
        )


#: The instants rows name, made once each: the ROAs of one apply share their validity times, and
#: thousands of rows are read on every plan. Bounded, so that it cannot grow without end in a long-lived
#: process.
_INSTANTS: dict[int, datetime] = {}
_INSTANTS_AT_MOST = 4096


def _instant(timestamp: int) -> datetime:
    found = _INSTANTS.get(timestamp)
    if found is None:
        if len(_INSTANTS) >= _INSTANTS_AT_MOST:
            _INSTANTS.clear()
        found = _INSTANTS[timestamp] = datetime.fromtimestamp(timestamp, UTC)
    return found


def texts(content: RoaContent) -> tuple[tuple[str, int], ...]:
    """A ROA's prefixes as the memo keeps them."""
    return tuple((prefix_text(p.prefix), p.max_length) for p in content.prefixes)


@dataclass
class Memo:
    """By the SHA-256 of an object's bytes: a ROA's summary, what decoding a certificate, CRL or manifest
    found (a row of ``published.decoded``), and the CA keys whose signature on it was checked and holds.
    ``changed`` once something was learnt.

    ROA summaries are read from their saved rows when first asked for, and a row nothing changed is saved
    again as it was read: for a registry's hundred thousand ROAs, converting every row both ways was a
    good part of a second on every plan."""

    roas: dict[bytes, RoaSummary] = field(default_factory=dict)  # read or learnt in this run
    objects: dict[bytes, list[Any]] = field(default_factory=dict)
    verified: dict[bytes, set[bytes]] = field(default_factory=dict)
    changed: bool = False
    rows: dict[bytes, list[Any]] = field(default_factory=dict)  # ROA summaries as saved
    secret: bytes | None = field(default=None, repr=False)  # the MAC key (see the module docstring)
    _learnt: set[bytes] = field(default_factory=set)  # ROA summaries new or changed in this run

    def get(self, digest: bytes) -> RoaSummary | None:
        found = self.roas.get(digest)
        if found is None and digest in self.rows:
            try:
                found = self.roas[digest] = RoaSummary.from_json(self.rows[digest])
            except cachefile.DAMAGED:  # a damaged row: as if not known
                del self.rows[digest]
        return found

    def remember(self, digest: bytes, summary: RoaSummary) -> None:
        self.roas[digest] = summary
        self._learnt.add(digest)
        self.changed = True

    def signed(self, digest: bytes, summary: RoaSummary, key: bytes) -> None:
        if key not in summary.signed_by:
            summary.signed_by.add(key)
            self._learnt.add(digest)
            self.changed = True

    def roa_rows(self, published: set[bytes]) -> dict[str, list[Any]]:
        """The rows to save of the ROAs among ``published``: as read, unless learnt in this run."""
        saved = {}
        for digest in published:
            if digest in self._learnt:
                saved[digest.hex()] = self.roas[digest].to_json()
            elif digest in self.rows:
                saved[digest.hex()] = self.rows[digest]
        return saved

    def remember_object(self, digest: bytes, row: list[Any]) -> None:
        self.objects[digest] = row
        self.changed = True

    def signed_with(self, digest: bytes, key: bytes) -> bool:
        """Whether the object of these bytes is known to carry a valid signature of CA key ``key``."""
        return key in self.verified.get(digest, ())

    def remember_signed_with(self, digest: bytes, key: bytes) -> None:
        keys = self.verified.setdefault(digest, set())
        if key not in keys:
            keys.add(key)
            self.changed = True


def path(publication_directory: Path) -> Path:
    return publication_directory / "cache" / "memo.json"


#: What the CA key signs to derive the memo's MAC key; never published, never an RPKI object.
_PURPOSE = b"rpki-reconciler: the MAC key of the object memo in the publication directory, version 1"


def secret_of(desired: DesiredState, signers: Mapping[str, Signer]) -> bytes | None:
    """The memo's MAC key: the SHA-256 of a signature of :data:`_PURPOSE` by the first CA (in the
    desired state's order) whose key is held online. None when no such key exists yet (before the
    first apply) or the signer cannot sign: then the memo is neither read nor written."""
    from reconciler.signers.base import SignerError  # noqa: PLC0415 - signers load only when used

    for ca in desired.cas:
        if desired.signers[ca.signer].type == "offline":
            continue
        signer = signers[ca.signer]
        try:
            key = signer.find_key(layout.key_label(ca.name, ca.key_generation))
            if key is not None:
                return hashlib.sha256(signer.sign(key, _PURPOSE)).digest()
        except (SignerError, OSError):
            return None
    return None


def load(publication_directory: Path, secret: bytes | None) -> Memo:
    """The memo as last saved, when it carries the MAC of ``secret``; empty when missing, unreadable or
    not authentic (it is only a cache), or without a secret."""
    if secret is None:
        return Memo()
    found = cachefile.read_as(path(publication_directory), VERSION, _from_document, secret=secret)
    found = found or Memo()
    found.secret = secret
    return found


def _from_document(document: dict[str, Any]) -> Memo:
    return Memo(
        rows={bytes.fromhex(d): row for d, row in document["roas"].items() if isinstance(row, list)},
        objects={bytes.fromhex(d): row for d, row in document["objects"].items() if isinstance(row, list)},
        verified={
            bytes.fromhex(d): {bytes.fromhex(k) for k in keys} for d, keys in document["verified"].items()
        },
    )


def save(publication_directory: Path, memo: Memo, published: set[bytes]) -> None:
    """Keep what is known of the objects published now (``published``: the SHA-256 of every file).
    Nothing is kept without the memo's secret: what is kept must be authenticated."""
    if memo.secret is None:
        return
    if not memo.changed and all(
        known.keys() <= published for known in (memo.rows, memo.roas, memo.objects, memo.verified)
    ):
        return
    document = {
        "version": VERSION,
        "roas": memo.roa_rows(published),
        "objects": {d.hex(): row for d, row in memo.objects.items() if d in published},
        "verified": {
            d.hex(): sorted(k.hex() for k in keys) for d, keys in memo.verified.items() if d in published
        },
    }
    if cachefile.write(path(publication_directory), document, secret=memo.secret):
        memo.changed = False
