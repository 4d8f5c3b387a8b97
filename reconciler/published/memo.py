"""What the reconciler already knows of published ROAs, by the SHA-256 of their bytes.

A plan compares every published ROA with the YAML. Decoding one and checking its two signatures costs
about a millisecond, which for the 5,000 ROAs of a large operator is seconds on every plan, and for a
registry minutes. But a ROA's content and its EE certificate's fields are a function of its bytes alone,
and so is whether a given CA key signed it: they are remembered under the SHA-256 of the bytes, and a ROA
whose bytes are unchanged is not decoded again. Any other bytes -- an edited, damaged or replaced file --
miss the memo and are decoded and checked in full, so the memo never hides drift.

The memo is a cache: losing it costs one slow plan, never a wrong one. It lives in the publication
directory (``cache/roas.json``, not served), is written in one rename, and keeps only the objects
published when it was written.
"""

from __future__ import annotations

import ipaddress
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from reconciler.fsutil import replace_public
from reconciler.resources import prefix_text
from reconciler.rpki.roa import RoaContent, RoaPrefix

VERSION = 1


@dataclass(slots=True)
class RoaSummary:
    """The facts of one ROA a plan checks (see ``plan.diff``), with the CA keys known to have signed its
    EE certificate."""

    content: RoaContent
    authority_key_id: bytes | None
    serial: int
    not_before: datetime
    not_after: datetime
    signed_object: str | None
    crldp: str | None
    aia: str | None
    resources_match: bool  # the EE certificate's resources are exactly the ROA's prefixes
    signed_by: set[bytes] = field(default_factory=set)

    def to_json(self) -> list[object]:
        return [
            self.content.asn,
            [[prefix_text(p.prefix), p.max_length] for p in self.content.prefixes],
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
            # saved in canonical order (``RoaContent.of``): no need to sort again
            RoaContent(int(asn), tuple(RoaPrefix(ipaddress.ip_network(p), int(m)) for p, m in prefixes)),
            bytes.fromhex(aki) if isinstance(aki, str) else None,
            int(serial),
            datetime.fromtimestamp(int(not_before), UTC),
            datetime.fromtimestamp(int(not_after), UTC),
            signed_object if isinstance(signed_object, str) else None,
            crldp if isinstance(crldp, str) else None,
            aia if isinstance(aia, str) else None,
            bool(match),
            {bytes.fromhex(k) for k in signers},
        )


@dataclass
class RoaMemo:
    """SHA-256 of a ROA's bytes -> its summary; ``changed`` once something was learnt."""

    entries: dict[bytes, RoaSummary] = field(default_factory=dict)
    changed: bool = False

    def get(self, digest: bytes) -> RoaSummary | None:
        return self.entries.get(digest)

    def remember(self, digest: bytes, summary: RoaSummary) -> None:
        self.entries[digest] = summary
        self.changed = True

    def signed(self, summary: RoaSummary, key: bytes) -> None:
        if key not in summary.signed_by:
            summary.signed_by.add(key)
            self.changed = True


def path(publication_directory: Path) -> Path:
    return publication_directory / "cache" / "roas.json"


def load(publication_directory: Path) -> RoaMemo:
    """The memo as last saved; empty when missing or unreadable (it is only a cache)."""
    try:
        document = json.loads(path(publication_directory).read_bytes())
        if document.get("version") != VERSION:
            return RoaMemo()
        entries = {bytes.fromhex(d): RoaSummary.from_json(row) for d, row in document["roas"].items()}
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
        return RoaMemo()
    return RoaMemo(entries)


def save(publication_directory: Path, memo: RoaMemo, published: set[bytes]) -> None:
    """Keep the entries of the ROAs published now (``published``: their SHA-256), in one rename. A memo
    that cannot be written is only a slower next plan: the error is not the operator's problem."""
    if not memo.changed and published >= memo.entries.keys():
        return
    kept = {d.hex(): s.to_json() for d, s in memo.entries.items() if d in published}
    try:
        target = path(publication_directory)
        target.parent.mkdir(mode=0o755, exist_ok=True)
        replace_public(target, json.dumps({"version": VERSION, "roas": kept}, separators=(",", ":")).encode())
    except OSError:
        return
    memo.changed = False
