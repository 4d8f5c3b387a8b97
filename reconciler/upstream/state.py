"""What we last learned from the parent and the repository, kept between runs in
``<publication directory>/upstream/<ca>.json``.

It is observed state, like the publication point: the parent's last ``list_response`` (our entitlements
and the certificates it issued us), when we last reached each peer, the last error with its RFC code and
text, and when to ask the parent again. Nothing secret is in it. Losing it costs one exchange: the next
apply asks the parent again, and the certificate it lists for our key is taken up again.

A file that cannot be read is an error naming it, never silently reset: a reset would forget a back-off
the parent asked for.
"""

from __future__ import annotations

import base64
import binascii
import errno
import json
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from reconciler.fsutil import read_bytes, replace_public
from reconciler.protocol import updown

_FORMAT = 1
STORE = "upstream"


class StateError(Exception):
    """The stored state of the exchanges cannot be read: the message names the file and the fix."""


@dataclass(frozen=True)
class LastError:
    """The last failed exchange with a peer: the RFC 6492 status code or None (transport, CMS, a
    refusal of ours), its text, and when."""

    text: str
    at: datetime
    code: int | None = None

    def describe(self) -> str:
        code = f"error {self.code}: " if self.code is not None else ""
        return f"{code}{self.text} (at {_when(self.at)})"


@dataclass(frozen=True)
class PeerRecord:
    """One peer's side: when we last reached it, the last error since, and the back-off."""

    last_success: datetime | None = None
    last_attempt: datetime | None = None
    last_error: LastError | None = None  # cleared by a success
    failures: int = 0  # failed exchanges in a row
    next_contact: datetime | None = None  # when the reconcile loop asks again (the parent)

    def succeeded(self, now: datetime, next_contact: datetime | None = None) -> PeerRecord:
        return PeerRecord(now, now, None, 0, next_contact)

    def failed(self, now: datetime, error: LastError, next_contact: datetime | None) -> PeerRecord:
        return replace(
            self, last_attempt=now, last_error=error, failures=self.failures + 1, next_contact=next_contact
        )


@dataclass(frozen=True)
class Certified:
    """The certificate the parent issued for one of our keys: where it publishes it, its DER, and the
    generation of the key (``key_generation``)."""

    class_name: str
    uri: str
    der: bytes
    generation: int = 1


@dataclass(frozen=True)
class PublishedCount:
    """What the repository held for us after the last exchange."""

    objects: int = 0
    size: int = 0
    sent_publish: int = 0  # in the last message we sent
    sent_withdraw: int = 0
    sent_bytes: int = 0
    sent_at: datetime | None = None


@dataclass(frozen=True)
class UpstreamState:
    """Everything kept for one CA under an external parent."""

    parent: PeerRecord = field(default_factory=PeerRecord)
    repository: PeerRecord = field(default_factory=PeerRecord)
    #: The parent's last list_response as XML (RFC 6492), re-read with ``updown.parse``: the
    #: entitlements and every certificate the parent says it issued us.
    list_response: bytes | None = None
    listed_at: datetime | None = None
    certified: Certified | None = None  # the certificate of our active key (the CA's first class)
    #: During a key roll: the certificate of the new key while it is staged (RFC 6489), in every class.
    staged: tuple[Certified, ...] = ()
    #: The certificates of the active keys of the CAs that sign under the parent's further resource
    #: classes (``upstream.classes``), in the order of the parent's list.
    others: tuple[Certified, ...] = ()
    held: PublishedCount = field(default_factory=PublishedCount)
    #: What the repository holds for us (URI -> SHA-256 hex, as its RFC 8181 list says) after the last
    #: message it accepted; None before the first. A plan compares it with the local copy to say what
    #: apply will send without asking the repository.
    listed: dict[str, str] | None = None


def active(state: UpstreamState) -> tuple[Certified, ...]:
    """The certificates of our active keys, one per resource class we sign under (the first class's
    first)."""
    return (state.certified, *state.others) if state.certified is not None else state.others


def classes(state: UpstreamState) -> tuple[updown.ResourceClass, ...]:
    """The resource classes of the last list_response kept (none before the first exchange)."""
    if state.list_response is None:
        return ()
    message = updown.parse(state.list_response, "the list_response kept from the parent")
    if not isinstance(message.payload, updown.ListResponse):
        return ()
    return message.payload.classes


def path(directory: Path, ca: str) -> Path:
    """The state file of CA ``ca`` below the publication directory (CA names are plain file names)."""
    return directory / STORE / f"{ca}.json"


def load(directory: Path, ca: str) -> UpstreamState:
    """The stored state, or a fresh one when there is none yet."""
    where = path(directory, ca)
    try:
        raw = read_bytes(str(where))
    except OSError as exc:
        if exc.errno == errno.ENOENT:
            return UpstreamState()
        raise StateError(f"cannot read {where}: {exc.strerror} (fix: check its permissions)") from exc
    try:
        return _decode(json.loads(raw))
    except (ValueError, KeyError, TypeError, binascii.Error) as exc:
        raise StateError(
            f"{where} is damaged ({exc}); it only holds what the parent and the repository said: move it "
            "away, and the next apply asks them again"
        ) from exc


def save(directory: Path, ca: str, state: UpstreamState) -> None:
    where = path(directory, ca)
    where.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
    # One line: with an indent, json writes in Python rather than C (the repository's list of thousands
    # of objects, saved several times per apply, took tens of milliseconds each time).
    data = json.dumps(_encode(state), sort_keys=True).encode() + b"\n"
    replace_public(where, data)


def _when(moment: datetime) -> str:
    return f"{moment.astimezone(UTC):%Y-%m-%dT%H:%M:%SZ}"


def _time(text: object) -> datetime | None:
    if text is None:
        return None
    if not isinstance(text, str):
        raise TypeError(f"a time is text, found {type(text).__name__}")
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)


def _encode(state: UpstreamState) -> dict[str, Any]:
    listed = state.listed  # thousands of plain strings: kept out of asdict's deep copy
    fields = asdict(replace(state, listed=None))

    def plain(value: Any) -> Any:
        if isinstance(value, datetime):
            return _when(value)
        if isinstance(value, bytes):
            return base64.b64encode(value).decode()
        if isinstance(value, dict):
            return {key: plain(item) for key, item in value.items()}
        if isinstance(value, list | tuple):
            return [plain(item) for item in value]
        return value

    return {"format": _FORMAT, **plain(fields), "listed": listed}


def _decode(data: dict[str, Any]) -> UpstreamState:
    if data.get("format") != _FORMAT:
        raise ValueError(f"format {data.get('format')!r}, not {_FORMAT}")

    def peer(item: dict[str, Any]) -> PeerRecord:
        error = item.get("last_error")
        return PeerRecord(
            last_success=_time(item.get("last_success")),
            last_attempt=_time(item.get("last_attempt")),
            last_error=None
            if error is None
            else LastError(str(error["text"]), _time(error["at"]) or datetime.min, error.get("code")),
            failures=int(item.get("failures", 0)),
            next_contact=_time(item.get("next_contact")),
        )

    def certificate(item: dict[str, Any]) -> Certified:
        return Certified(
            str(item["class_name"]),
            str(item["uri"]),
            base64.b64decode(item["der"], validate=True),
            int(item.get("generation", 1)),
        )

    certified = data.get("certified")
    held = data.get("held") or {}
    response = data.get("list_response")
    return UpstreamState(
        parent=peer(data.get("parent") or {}),
        repository=peer(data.get("repository") or {}),
        list_response=None if response is None else base64.b64decode(response, validate=True),
        listed_at=_time(data.get("listed_at")),
        certified=None if certified is None else certificate(certified),
        staged=tuple(certificate(item) for item in data.get("staged") or ()),
        others=tuple(certificate(item) for item in data.get("others") or ()),
        held=PublishedCount(
            objects=int(held.get("objects", 0)),
            size=int(held.get("size", 0)),
            sent_publish=int(held.get("sent_publish", 0)),
            sent_withdraw=int(held.get("sent_withdraw", 0)),
            sent_bytes=int(held.get("sent_bytes", 0)),
            sent_at=_time(held.get("sent_at")),
        ),
        listed=_listed(data.get("listed")),
    )


def _listed(value: object) -> dict[str, str] | None:
    """The repository's list as kept: URI -> hash, both text (absent in files written before it was kept)."""
    if value is None:
        return None
    if not isinstance(value, dict) or not all(
        isinstance(uri, str) and isinstance(digest, str) for uri, digest in value.items()
    ):
        raise TypeError("'listed' is not a map of URIs to hashes")
    return dict(value)
