"""The RFC 8183 request files that the desired state names: external children's child_request and
external publishers' publisher_request XML, committed in the repository beside the YAML.

A request file is desired state like the YAML: its bytes go into the desired state's digest (a plan is
bound to the identities it was made for), and it is read under the same rules as the YAML files -- only
a regular file inside the repository, never through a link that leaves it (a pull request could
otherwise make validate quote any file of the CA machine in its error messages), and never a large one.
Each problem comes back as a message and a fix, which the loader places at the YAML entry naming the
file.
"""

from __future__ import annotations

import stat
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from reconciler.desired.checks import CaDoc, SettingsDoc, diag
from reconciler.diagnostics import Diagnostic
from reconciler.fsutil import read_bytes

if TYPE_CHECKING:
    from reconciler.protocol.bpki import IdentityCertificate
    from reconciler.protocol.oob import ChildRequest, ParentResponse, PublisherRequest, RepositoryResponse

    Message = ChildRequest | PublisherRequest | ParentResponse | RepositoryResponse

#: The largest request file read. RFC 8183 bounds the Base64 identity to 512,000 characters; a real
#: request is a few kilobytes.
MAX_REQUEST_BYTES = 1 << 20

Kind = Literal["child_request", "publisher_request", "parent_response", "repository_response"]

#: Who sends each kind of file, for the fix a message suggests.
_SENDER = {
    "child_request": "the child's operator",
    "publisher_request": "the publisher's operator",
    "parent_response": "the parent (the registry's portal)",
    "repository_response": "the repository's operator",
}


@dataclass(frozen=True)
class Request:
    """One request file, read and parsed: the message and the identity certificate it carries."""

    file: Path  # absolute, inside the desired-state directory
    relative: str  # as keyed in the desired state's digest
    raw: bytes
    message: Message
    identity: IdentityCertificate


class RequestError(Exception):
    """A request file (or another file committed beside the YAML) that cannot be used: ``message`` says
    why, ``hint`` what to do."""

    def __init__(self, message: str, hint: str) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


@dataclass
class Requests:
    """Every request file the desired state names, keyed by the YAML entry naming it."""

    children: dict[tuple[str, int], Request] = field(default_factory=dict)  # (CA name, index in children)
    publishers: dict[int, Request] = field(default_factory=dict)  # index in rpki.yaml's publishers
    parents: dict[str, Request] = field(default_factory=dict)  # CA name -> its parent_response
    repositories: dict[str, Request] = field(default_factory=dict)  # CA name -> its repository_response
    problems: list[Diagnostic] = field(default_factory=list)

    @property
    def contents(self) -> dict[str, bytes]:
        """The files' bytes by path relative to the desired-state directory, for the digest."""
        found = [
            *self.children.values(),
            *self.publishers.values(),
            *self.parents.values(),
            *self.repositories.values(),
        ]
        return {request.relative: request.raw for request in found}


def read_all(root: Path, settings: SettingsDoc | None, docs: Sequence[CaDoc]) -> Requests:
    """Read every request file named by rpki.yaml's ``publishers`` and the CA files' ``children``."""
    found = Requests()
    for doc in docs:
        for kind, entry, into in (
            ("parent_response", doc.spec.upstream, found.parents),
            ("repository_response", doc.spec.repository, found.repositories),
        ):
            if entry is None:
                continue
            try:
                into[doc.name] = read(root, entry.response, kind)  # type: ignore[arg-type]
            except RequestError as exc:
                key = "parent" if kind == "parent_response" else "repository"
                found.problems.append(diag(doc.source, (key, "response"), f"{key}.response: {exc}", exc.hint))
        for index, child in enumerate(doc.spec.children):
            try:
                found.children[(doc.name, index)] = read(root, child.request, "child_request")
            except RequestError as exc:
                loc = ("children", index, "request")
                found.problems.append(diag(doc.source, loc, f"children[{index}].request: {exc}", exc.hint))
    if settings is not None:
        for index, publisher in enumerate(settings.spec.publishers):
            try:
                found.publishers[index] = read(root, publisher.request, "publisher_request")
            except RequestError as exc:
                loc = ("publishers", index, "request")
                problem = diag(settings.source, loc, f"publishers[{index}].request: {exc}", exc.hint)
                found.problems.append(problem)
    return found


def read(root: Path, written: str, kind: Kind) -> Request:
    """Read, parse and check one request file, ``written`` relative to ``root`` (the desired-state
    directory, resolved); raises :class:`RequestError`."""
    commit = f"commit the {kind} XML that {_SENDER[kind]} sent at {written} (relative to the directory "
    commit += "holding rpki.yaml), or correct the path"
    rules = Committed(
        what=f"the {kind}",
        commit=commit,
        kind=f"an RFC 8183 {kind}",
        usual_size=f"a {kind} is a few kilobytes of XML",
        limit=MAX_REQUEST_BYTES,
    )
    real, raw = read_committed(root, written, rules)
    relative = real.relative_to(root).as_posix()
    message, identity = _parse(raw, relative, kind)
    return Request(real, relative, raw, message, identity)


@dataclass(frozen=True)
class Committed:
    """How the problems of one kind of file committed beside the YAML are worded, and its size limit."""

    what: str  # what to copy into the repository: "the child_request"
    commit: str  # the fix when the file is missing or not a file
    kind: str  # what it is too large for: "an RFC 8183 child_request"
    usual_size: str  # how large one is: "a child_request is a few kilobytes of XML"
    limit: int  # the largest file read, in bytes


def read_committed(root: Path, written: str, rules: Committed) -> tuple[Path, bytes]:
    """The real path and the bytes of the file ``written`` relative to ``root`` (the desired-state
    directory, resolved), read only if it is a regular file inside ``root`` of at most ``rules.limit``
    bytes; raises :class:`RequestError`."""
    real = _inside(root, root / written, written, rules)
    try:
        raw = read_bytes(str(real))
    except OSError as exc:
        raise RequestError(f"cannot read {written}: {exc.strerror}", "check its permissions") from exc
    return real, raw


def _inside(root: Path, path: Path, written: str, rules: Committed) -> Path:
    """The real path of a regular, not too large file inside ``root``; every link on the way is followed
    before anything is read, so a link to a directory outside counts as outside."""
    commit = rules.commit
    try:
        real = path.resolve(strict=True)
    except FileNotFoundError as exc:
        raise RequestError(f"{written} does not exist", commit) from exc
    except (OSError, RuntimeError) as exc:
        raise RequestError(
            f"cannot read {written}: it is a broken or looping symbolic link, or not accessible", commit
        ) from exc
    if root not in real.parents:
        raise RequestError(
            f"{written} lies outside the desired-state repository (through '..' or a symbolic link); it "
            "was not read",
            f"copy {rules.what} into the repository and name that copy",
        )
    try:
        found = real.stat()
    except OSError as exc:
        raise RequestError(f"cannot read {written}: {exc.strerror}", commit) from exc
    if not stat.S_ISREG(found.st_mode):
        raise RequestError(f"{written} is not a regular file", commit)
    if found.st_size > rules.limit:
        raise RequestError(
            f"{written} is too large for {rules.kind} ({found.st_size} bytes)",
            f"{rules.usual_size}: {commit}",
        )
    return real


def _parse(raw: bytes, where: str, kind: Kind) -> tuple[Message, IdentityCertificate]:
    """The parsed request and its identity certificate. The codecs are imported here: a desired state
    without external peers never loads them."""
    from reconciler.protocol import bpki, oob  # noqa: PLC0415
    from reconciler.protocol.errors import ProtocolError  # noqa: PLC0415

    fix = f"ask {_SENDER[kind]} for a new RFC 8183 {kind} and commit it in place of this one"
    try:
        message: Message
        if kind == "child_request":
            message = oob.parse_child_request(raw, where)
        elif kind == "publisher_request":
            message = oob.parse_publisher_request(raw, where)
        elif kind == "parent_response":
            message = oob.parse_parent_response(raw, where)
        else:
            message = oob.parse_repository_response(raw, where)
        identity = bpki.load_identity(message.identity, f"{where}: the identity certificate")
    except ProtocolError as exc:
        raise RequestError(str(exc), fix) from exc
    return message, identity
