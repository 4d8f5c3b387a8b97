"""The RFC 8181 publication server: the publishers declared in rpki.yaml publish in our repository.

A publisher's objects live in our served tree below its ``sia_base`` (``publishers/<handle>/``), so
the tree stays the reconciler's only memory: a ``list`` is answered from it, and a delta becomes a new
tree published exactly as an apply publishes (rsync swap, then RRDP), under the same publication lock.
Every apply carries the publishers' objects over unchanged (``PublishedState.foreign``); nothing plans,
decodes or counts them.

A delta is all or nothing (RFC 8181 §2.2, §3.7.1): every PDU is checked first -- the URI inside the
publisher's directory and named as relying parties accept (RFC 9286 §4.2.2: one dot, a known
extension), a create only where nothing is, a replace or withdraw only of the object whose hash it
names, the publisher's quota -- and only a delta without a single error is published, with an audit
record. Any error is answered with a signed ``report_error`` per failed PDU, and nothing is changed.

Publications are committed in groups: while one new tree is being written, the messages arriving are
queued; the next tree takes them together (at most :data:`BATCH_MESSAGES` messages and
:data:`BATCH_BYTES` bytes of objects, gathered for at most :data:`BATCH_WAIT` once the first is there).
Each message is still checked on its own, in arrival order, against the objects as the messages before
it in the batch leave them, and is refused alone (its error sent at once) or published with the others
in one rsync swap and one RRDP serial; a message is answered only once that tree is served. Writing a
tree costs the same for one message as for fifty (every file is linked into it, and RRDP's snapshot is
the whole repository), so a busy server publishes many messages for the price of one.

The served tree is read back once, under the publication lock, and kept in memory with the identity of
the tree it was read from (``rsync_tree.ServedTree``); the next batch reuses it while that tree is still
the one served, and reads the tree again when anything else (an apply, the RFC 6492 parent) swapped one
in. The swap itself is still fenced by the lock and refused if the tree moved
(``engine.publish_all(held=...)``).
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from reconciler import clock, engine, layout, refusals
from reconciler.apply import audit, lock
from reconciler.desired.model import DesiredState, Publisher
from reconciler.protocol import publication as rfc8181
from reconciler.protocol import sigmsg
from reconciler.protocol.bpki import CLOCK_SKEW, IdentityCertificate
from reconciler.protocol.errors import CmsError, ProtocolError, ReplayError, XmlError
from reconciler.protocol.replay import ReplayGuard
from reconciler.publish import rrdp
from reconciler.publish.rsync_tree import ServedTree, served_tree
from reconciler.published import reader
from reconciler.serve.app import UnknownPeer
from reconciler.signers import Signer, open_signers

#: How long a publication waits for the publication lock (an apply holding it) before it answers "try
#: again": a publisher's client retries, a waiting server thread serves no one.
LOCK_WAIT = timedelta(seconds=30)
#: PDUs in one message: a publisher with more objects than this sends them in several messages.
MAX_PDUS = 10_000
#: Directories below a publisher's sia_base (Krill publishes in ``<sia_base>0/``).
MAX_DIRECTORIES = 4
#: The longest URI accepted below a sia_base.
MAX_RELATIVE_URI = 1024
#: The object types relying parties know (RFC 9286 §4.2.2 names: ``<name>.<ext>``).
EXTENSIONS = frozenset({"cer", "crl", "mft", "roa", "asa", "gbr", "sig", "tak", "spl"})
#: A report_error echoes a refused PDU up to this size (a publish carries its whole object).
ECHO_LIMIT = 64 * 1024
#: Messages published together in one tree swap and RRDP serial, at most (``rpkictl serve --threads``
#: bounds it too: a message waits in a server thread).
BATCH_MESSAGES = 128
#: Bytes of objects (the publish PDUs') published together, at most (a larger message goes alone).
BATCH_BYTES = 32 * 1024 * 1024
#: How long a batch waits for more messages once its first is there: long enough for messages that
#: arrive together to share a tree, short beside the writing of one.
BATCH_WAIT = timedelta(milliseconds=5)
#: How long one EE key and certificate sign the replies (see ``sigmsg.MessageKey``): an RSA key per
#: reply would cost a core 50 ms each.
REPLY_KEY_LIFETIME = timedelta(minutes=1)
#: The replay-protection file, in the publication directory (never served: only ``rsync/``,
#: ``trees/`` and ``rrdp/`` are).
REPLAY_FILE = "rfc8181-replay.json"

_FILE_NAME = re.compile(r"[A-Za-z0-9_-]+\.([a-z]{3})\Z")
_DIRECTORY_NAME = re.compile(r"[A-Za-z0-9_-]{1,255}\Z")


class _Refused(Exception):  # noqa: N818 - internal: a reply, not a failure
    """The message is answered with these error reports, and nothing is published."""

    def __init__(self, *errors: rfc8181.ReportError) -> None:
        super().__init__("; ".join(f"{e.code}: {e.text}" for e in errors))
        self.errors = errors
        #: What the verified message asked (``list``, ``publish``...); None before it is verified.
        self.asked: str | None = None


def _report(code: str, text: str, pdu: rfc8181.Pdu | None = None) -> rfc8181.ReportError:
    if pdu is None:
        return rfc8181.ReportError(code, text=text)
    small = isinstance(pdu, rfc8181.Withdraw) or len(pdu.der) <= ECHO_LIMIT
    return rfc8181.ReportError(code, pdu.tag, text, rfc8181.pdu_xml(pdu) if small else None)


@dataclass(eq=False)
class _Waiting:
    """A checked message waiting for its batch: answered when ``done`` (``errors`` None: published)."""

    publisher: Publisher
    pdus: tuple[tuple[str, rfc8181.Pdu], ...]
    size: int
    now: datetime
    digest: str  # the message's SHA-256, for the audit log
    verified: sigmsg.Verified
    done: bool = False
    errors: tuple[rfc8181.ReportError, ...] | None = None
    counts: Counts | None = None


@dataclass
class _Served:
    """The served tree as this service last read or wrote it under the lock: valid while ``tree`` is
    still what ``rsync`` serves. ``mine``: each publisher's objects (its directory -> path -> bytes)."""

    tree: ServedTree
    workspace: engine.Workspace
    mine: dict[str, dict[str, bytes]] = field(default_factory=dict)
    #: The RFC 8181 list of each publisher (its directory -> URI-less path -> SHA-256 hex), made from
    #: ``mine`` when first asked for: every apply of a publisher lists first.
    listed: dict[str, dict[str, str]] = field(default_factory=dict)

    def hashes(self, repository: str) -> dict[str, str]:
        found = self.listed.get(repository)
        if found is None:  # two threads may both make it: the same values
            objects = self.mine.get(repository, {})
            found = self.listed[repository] = {
                path: rfc8181.object_hash(data) for path, data in objects.items()
            }
        return found


def _by_publisher(foreign: Mapping[str, bytes]) -> dict[str, dict[str, bytes]]:
    found: dict[str, dict[str, bytes]] = {}
    for path, data in foreign.items():
        head, _, rest = path.partition("/")
        handle = rest.partition("/")[0]
        found.setdefault(f"{head}/{handle}/", {})[path] = data
    return found


@dataclass(frozen=True, slots=True)
class Counts:
    """What a delta does: objects created, replaced and withdrawn."""

    created: int = 0
    replaced: int = 0
    withdrawn: int = 0

    def describe(self) -> str:
        return f"{self.created} created, {self.replaced} replaced, {self.withdrawn} withdrawn"


def relative_path(uri: str, jail: str, repository: str) -> str:
    """The path in our tree (relative to the rsync base) of ``uri``, which must be inside ``jail`` (the
    publisher's sia_base) and name a file as relying parties accept it. Raises ValueError saying why
    not. ``repository`` is the publisher's directory relative to the rsync base."""
    if not uri.startswith(jail):
        raise ValueError(f"{uri} is outside this publisher's repository {jail}")
    rest = uri[len(jail) :]
    if len(rest) > MAX_RELATIVE_URI:
        raise ValueError(f"{uri} is longer than {MAX_RELATIVE_URI} characters below {jail}")
    *directories, name = rest.split("/")
    if "" in directories or not name:
        raise ValueError(f"{uri} has an empty path segment (a '//' or a trailing '/')")
    if len(directories) > MAX_DIRECTORIES:
        raise ValueError(f"{uri} is more than {MAX_DIRECTORIES} directories below {jail}")
    for directory in directories:
        if not _DIRECTORY_NAME.match(directory):
            raise ValueError(f"{uri}: the directory name {directory!r} is not 1 to 255 of A-Z a-z 0-9 - _")
    found = _FILE_NAME.match(name)
    if found is None:
        raise ValueError(
            f"{uri}: the file name {name!r} is not <letters, digits, '-', '_'>.<extension> with one dot "
            "(RFC 9286 §4.2.2; relying parties reject other names)"
        )
    if found.group(1) not in EXTENSIONS:
        raise ValueError(
            f"{uri}: .{found.group(1)} is not an RPKI object type ({', '.join(sorted(EXTENSIONS))})"
        )
    return repository + rest


def apply_delta(
    current: Mapping[str, bytes],
    pdus: tuple[tuple[str, rfc8181.Pdu], ...],
    publisher: Publisher,
) -> tuple[dict[str, bytes], Counts]:
    """The publisher's objects (path -> bytes) after the PDUs (each with its path), in order, checked one
    by one against the objects as the PDUs before it left them; raises :class:`_Refused` with a report
    per failed PDU (nothing applied), and for the PDU that first takes the publisher over its quota when
    the result is over it."""
    objects = dict(current)
    size = before = sum(len(data) for data in objects.values())

    def over_quota() -> bool:  # a publisher over a quota lowered since may still shrink
        return (len(objects) > quota.objects and len(objects) > len(current)) or (
            size > quota.size and size > before
        )

    errors: list[rfc8181.ReportError] = []
    counts = {"created": 0, "replaced": 0, "withdrawn": 0}
    over: rfc8181.ReportError | None = None
    quota = publisher.quota
    for path, pdu in pdus:
        held = objects.get(path)
        problem = _hash_problem(pdu, held)
        if problem is not None:
            errors.append(_report(*problem, pdu))
            continue
        if isinstance(pdu, rfc8181.Publish):
            if not pdu.der:
                errors.append(_report("other_error", f"{pdu.uri}: an empty object", pdu))
                continue
            if len(pdu.der) > reader.LARGEST_OBJECT:
                errors.append(_report("other_error", f"{pdu.uri}: larger than any RPKI object", pdu))
                continue
            size += len(pdu.der) - (len(held) if held is not None else 0)
            objects[path] = pdu.der
            counts["created" if held is None else "replaced"] += 1
        else:
            size -= len(objects.pop(path))
            counts["withdrawn"] += 1
        if over is None and over_quota():
            over = _report(
                "other_error",
                f"over this publisher's quota of {quota.objects} objects and {quota.size} bytes: "
                "withdraw objects first, or ask the repository's operator for a larger quota",
                pdu,
            )
    if not errors and over_quota() and over is not None:
        errors.append(over)
    if errors:
        raise _Refused(*errors)
    return objects, Counts(**counts)


def _hash_problem(pdu: rfc8181.Pdu, held: bytes | None) -> tuple[str, str] | None:
    """The error code and text when the PDU's hash rule does not hold for the object now at its URI."""
    wanted = pdu.hash
    if wanted is None:  # a create
        if held is not None:
            return "object_already_present", f"{pdu.uri} exists: replace it with the hash of the object held"
        return None
    if held is None:
        return "no_object_present", f"{pdu.uri} does not exist: create it without a hash"
    if rfc8181.object_hash(held) != wanted.lower():
        return (
            "no_object_matching_hash",
            f"{pdu.uri}: the object held has hash {rfc8181.object_hash(held)}, not {wanted.lower()} "
            "(list the repository again)",
        )
    return None


class PublicationService:
    """The RFC 8181 :class:`~reconciler.serve.app.Responder` for the publishers ``desired`` declares.

    ``signer``/``key``/``identity``: the repository's BPKI identity, which signs every reply.
    ``signers``: the CA signers, opened once (a publication publishes RRDP as an apply does, with the
    caches' key). Thread-safe: the thread whose message finds no batch being written writes the next
    batches until its own message is answered (then another waiting thread takes over), holding the
    publication lock for each; lists and refusals are answered concurrently. ``batch_messages``,
    ``batch_bytes`` and ``batch_wait`` bound a batch (see the module). ``log`` receives what the
    operator should know of a failure (never sent to the publisher)."""

    def __init__(
        self,
        desired: DesiredState,
        signer: Signer,
        key: bytes,
        identity: IdentityCertificate,
        *,
        signers: dict[str, Signer] | None = None,
        replay: ReplayGuard | None = None,
        lock_wait: timedelta = LOCK_WAIT,
        max_pdus: int = MAX_PDUS,
        strict_time: bool = True,
        batch_messages: int = BATCH_MESSAGES,
        batch_bytes: int = BATCH_BYTES,
        batch_wait: timedelta = BATCH_WAIT,
        log: Callable[[str], None] | None = None,
    ) -> None:
        self._desired = desired
        self._signer = signer
        self._key = key
        self._identity = identity
        self._signers = signers
        directory = desired.publication.directory
        self._replay = replay if replay is not None else ReplayGuard(directory / REPLAY_FILE)
        self._lock_wait = lock_wait
        self._max_pdus = max_pdus
        self._strict_time = strict_time
        self._log = log or (lambda _line: None)
        self._batch_messages = max(1, batch_messages)
        self._batch_bytes = batch_bytes
        self._batch_wait = batch_wait.total_seconds()
        self._turn = threading.Condition()  # guards the queue, _writing and each message's ``done``
        self._queue: list[_Waiting] = []
        self._writing = False  # a thread is writing batches
        self._served: _Served | None = None  # replaced only by the writing thread; read by lists
        self._encoded: rrdp.Encoded = {}  # likewise: the last RRDP snapshot's elements
        self._signing = threading.Lock()
        self._reply_key: sigmsg.MessageKey | None = None

    @classmethod
    def open(cls, desired: DesiredState, now: datetime, **options: Any) -> PublicationService:
        """The service with the repository's identity (made, with its key, on first use) in the signer
        rpki.yaml's ``serve`` names, and the CA signers opened."""
        from reconciler import identity  # noqa: PLC0415 - only the server needs it

        names = {ca.signer for ca in desired.cas} | {desired.serve.signer}
        signers = open_signers(desired.signers, names)
        signer = signers[desired.serve.signer]
        key, certificate = identity.ensure(signer, identity.REPOSITORY, identity.directory(desired), now)
        return cls(desired, signer, key, certificate, signers=signers, **options)

    def respond(self, handle: str, body: bytes, now: datetime) -> bytes:
        publisher = self._desired.publisher(handle)
        if publisher is None:
            raise UnknownPeer(f"no publisher {handle!r} is declared in rpki.yaml")
        try:
            reply = self._answer(publisher, body, now)
        except _Refused as refused:
            reply = rfc8181.ErrorReply(refused.errors)
            if refused.asked is not None:
                self._remember(publisher, refused, refused.asked, now)
        return self._sign(reply, now)

    def _remember(self, publisher: Publisher, refused: _Refused, asked: str, now: datetime) -> None:
        """Keep the refusal of a verified message for the plan (``refusals``): its first error's code
        and text. Never fails the answer. A message that fails verification is not kept: anyone can
        send one, and it would push the publisher's real refusals out of the record."""
        first = refused.errors[0]
        more = len(refused.errors) - 1
        suffix = f" (and {more} more error{'s' if more != 1 else ''})" if more else ""
        text = refusals.clean(first.text or "", refusals.TEXT_LIMIT - len(suffix)) + suffix
        where = refusals.path(self._desired)
        try:
            refusals.add(
                where,
                refusals.publisher(publisher.handle),
                refusals.Refusal(now, first.code, text, asked),
                refusals.declared_publishers(self._desired),
            )
        except OSError as exc:
            self._log(f"publisher {publisher.handle}: the refusal could not be kept in {where}: {exc}")

    def _answer(self, publisher: Publisher, body: bytes, now: datetime) -> rfc8181.ReplyMessage:
        where = f"RFC 8181 message from publisher {publisher.handle}"
        try:
            verified = sigmsg.verify(body, publisher.identity, now, where, strict_time=self._strict_time)
        except CmsError as exc:
            raise _Refused(_report("bad_cms_signature", str(exc))) from exc
        peer = f"publisher:{publisher.handle}"
        asked = "message"
        try:
            try:
                query = rfc8181.parse_query(verified.xml, where)
            except XmlError as exc:  # changes nothing, replayed or not
                raise _Refused(_report("xml_error", str(exc))) from exc
            if isinstance(query, rfc8181.ListQuery):
                asked = "list"
                self._check_replay(where, self._replay.accept, peer, verified)
                return self._list(publisher)
            asked = "publish"
            # a delta's signing time is checked and recorded with its batch, in one write for all of them
            return self._publish(publisher, query, hashlib.sha256(body).hexdigest(), verified, now)
        except _Refused as refused:
            refused.asked = asked
            raise

    def _check_replay(
        self,
        where: str,
        check: Callable[[str, datetime], None],
        peer: str,
        verified: sigmsg.Verified,
    ) -> None:
        try:
            check(peer, verified.signing_time)
        except ReplayError as exc:
            raise _Refused(_report("permission_failure", str(exc))) from exc
        except ProtocolError as exc:
            self._log(f"{where}: {exc}")
            raise _Refused(_report("other_error", "the server cannot check for replays now")) from exc

    def _sign(self, reply: rfc8181.ReplyMessage, now: datetime) -> bytes:
        with self._signing:  # one signer, several server threads: it only signs a new EE certificate
            ee = self._reply_key
            made = ee.not_before + CLOCK_SKEW if ee is not None else None
            if ee is None or made is None or not made <= now <= made + REPLY_KEY_LIFETIME:
                ee = self._reply_key = sigmsg.message_key(self._signer, self._key, self._identity, now)
        # the EE key signs in memory, from any number of threads at once
        return sigmsg.sign(rfc8181.render(reply), self._signer, self._key, self._identity, now, ee=ee)

    def _jail(self, publisher: Publisher) -> tuple[str, str]:
        """The publisher's sia_base and its directory relative to the rsync base: ours to choose, so
        always ``publishers/<handle>/`` (the reader and every apply know the publishers' objects there)."""
        repository = layout.publisher_repository(publisher.handle)
        return self._desired.publication.rsync_base + repository, repository

    def _list(self, publisher: Publisher) -> rfc8181.ListReply:
        _, repository = self._jail(publisher)
        base = self._desired.publication.rsync_base
        directory = self._desired.publication.directory
        # What this service wrote last, while that very tree is the one served (the writing thread
        # replaces the reference, never the object): a publisher of thousands of objects lists before
        # every change, and reading and hashing them all again took most of the answer.
        kept = self._served
        if kept is not None and served_tree(directory) == kept.tree:
            hashes = kept.hashes(repository)
            return rfc8181.ListReply(tuple(rfc8181.ListEntry(base + p, h) for p, h in sorted(hashes.items())))
        try:
            held = reader.read_foreign(directory / "rsync", repository)
        except (reader.UnusableTreeError, OSError) as exc:
            self._log(f"RFC 8181 list for publisher {publisher.handle}: {exc}")
            raise _Refused(
                _report("other_error", "the repository cannot be read now: try again later")
            ) from exc
        return rfc8181.ListReply(
            tuple(rfc8181.ListEntry(base + path, rfc8181.object_hash(data)) for path, data in held.items())
        )

    def _paths(self, publisher: Publisher, query: rfc8181.Query) -> tuple[tuple[str, rfc8181.Pdu], ...]:
        """Each PDU with the path it names in our tree; every PDU outside the jail or badly named is
        reported (permission_failure), all of them at once."""
        if len(query.pdus) > self._max_pdus:
            raise _Refused(
                _report(
                    "other_error",
                    f"{len(query.pdus)} PDUs in one message, at most {self._max_pdus}: send the rest later",
                )
            )
        jail, repository = self._jail(publisher)
        found, errors = [], []
        for pdu in query.pdus:
            try:
                found.append((relative_path(pdu.uri, jail, repository), pdu))
            except ValueError as exc:
                errors.append(_report("permission_failure", str(exc), pdu))
        if errors:
            raise _Refused(*errors)
        return tuple(found)

    def _publish(
        self,
        publisher: Publisher,
        query: rfc8181.Query,
        digest: str,
        verified: sigmsg.Verified,
        now: datetime,
    ) -> rfc8181.ReplyMessage:
        pdus = self._paths(publisher, query)
        if not pdus:
            return rfc8181.SuccessReply()
        size = sum(len(pdu.der) for _, pdu in pdus if isinstance(pdu, rfc8181.Publish))
        waiting = _Waiting(publisher, pdus, size, now, digest, verified)
        self._commit(waiting)
        if waiting.errors is not None:
            raise _Refused(*waiting.errors)
        return rfc8181.SuccessReply()

    def _commit(self, waiting: _Waiting) -> None:
        """Queue ``waiting`` and return once it is answered: published in a served tree, or refused.
        The thread that finds nobody writing writes batches until its own message is done."""
        with self._turn:
            self._queue.append(waiting)
            self._turn.notify_all()  # a writer gathering its batch counts this one
            while not waiting.done and self._writing:
                self._turn.wait()
            if waiting.done:
                return
            self._writing = True
        try:
            while not waiting.done:
                self._write_batch(self._gather())
        finally:
            with self._turn:
                self._writing = False
                self._turn.notify_all()  # another waiting thread writes the next batch

    def _gather(self) -> list[_Waiting]:
        """The next batch, in arrival order: the messages queued within ``batch_wait`` of the first,
        up to ``batch_messages`` of them and ``batch_bytes`` of objects (the first goes whatever its
        size)."""
        with self._turn:
            deadline = time.monotonic() + self._batch_wait
            while len(self._queue) < self._batch_messages:
                left = deadline - time.monotonic()
                if left <= 0 or sum(w.size for w in self._queue) >= self._batch_bytes:
                    break
                self._turn.wait(left)
            batch: list[_Waiting] = []
            size = 0
            for waiting in self._queue:
                full = len(batch) >= self._batch_messages or size + waiting.size > self._batch_bytes
                if batch and full:
                    break
                batch.append(waiting)
                size += waiting.size
            del self._queue[: len(batch)]
            return batch

    def _answer_now(self, *answered: _Waiting) -> None:
        with self._turn:
            for waiting in answered:
                waiting.done = True
            self._turn.notify_all()

    def _refuse_all(self, batch: list[_Waiting], error: rfc8181.ReportError) -> None:
        for waiting in batch:
            if not waiting.done:
                waiting.errors = (error,)
        self._answer_now(*batch)

    def _write_batch(self, batch: list[_Waiting]) -> None:
        """Check each message of ``batch`` against the served state and publish those accepted in one
        new tree, holding the publication lock; every message of the batch is answered on return."""
        who = ", ".join(sorted({w.publisher.handle for w in batch}))
        busy = _report("other_error", "the repository is busy publishing: try again in a minute")
        try:
            try:
                held = lock.acquire(
                    self._desired.publication.directory,
                    who=f"publisher {who} (rpkictl serve)"[:200],
                    operation="publication",
                    plan_id=None,
                    timeout=self._lock_wait,
                )
            except lock.LockError as exc:
                self._log(f"RFC 8181 publication by {who} waits: {exc}")
                self._refuse_all(batch, busy)
                return
            with held:
                self._publish_locked(batch, held, who)
        except Exception:
            self._served = None  # whatever happened, the next batch reads the tree again
            self._refuse_all(batch, _report("other_error", "the repository could not publish now"))
            raise
        finally:
            self._answer_now(*batch)  # no message of the batch is left waiting, whatever happened

    def _state(self, held: lock.Lock, who: str) -> _Served | None:
        """The served state, under the lock: the one kept from the last batch while its tree is still the
        one served, else read from the tree (None, logged, when it cannot be read or used)."""
        directory = self._desired.publication.directory
        kept = self._served
        if kept is not None and served_tree(directory) == kept.tree:
            return kept
        self._served = None
        try:
            workspace = engine.workspace_for(self._desired, self._signers)
        except engine.OPERATOR_ERRORS as exc:
            self._log(f"RFC 8181 publication by {who}: the publication point cannot be read: {exc}")
            return None
        if workspace.published.unusable is not None:  # publishing now would serve a tree without ours
            self._log(f"RFC 8181 publication by {who} refused: {workspace.published.unusable}")
            return None
        if workspace.served is None:  # nothing published by an apply yet: read it again next time
            return _Served(ServedTree("", -1, -1), workspace, _by_publisher(workspace.published.foreign))
        return _Served(workspace.served, workspace, _by_publisher(workspace.published.foreign))

    def _check(
        self, batch: list[_Waiting], state: _Served, who: str
    ) -> tuple[dict[str, dict[str, bytes]], list[_Waiting]] | None:
        """Record the batch's signing times (one write) and check each message against the objects as
        the ones before it left them, answering each refusal at once: each publisher's objects after
        the accepted messages, and those messages (None when there are none)."""
        try:
            replays = self._replay.accept_all(
                [(f"publisher:{w.publisher.handle}", w.verified.signing_time) for w in batch]
            )
        except ProtocolError as exc:
            self._log(f"RFC 8181 publication by {who}: {exc}")
            self._refuse_all(batch, _report("other_error", "the server cannot check for replays now"))
            return None
        mine = dict(state.mine)
        accepted = []
        for waiting, replayed in zip(batch, replays, strict=True):
            if replayed is not None:
                waiting.errors = (_report("permission_failure", str(replayed)),)
                self._answer_now(waiting)
                continue
            _, repository = self._jail(waiting.publisher)
            try:
                objects, counts = apply_delta(mine.get(repository, {}), waiting.pdus, waiting.publisher)
            except _Refused as refused:
                waiting.errors = refused.errors
                self._answer_now(waiting)
                continue
            mine[repository] = objects
            waiting.counts = counts
            accepted.append(waiting)
        return (mine, accepted) if accepted else None

    def _publish_locked(self, batch: list[_Waiting], held: lock.Lock, who: str) -> None:
        """Check each message against the objects as the ones before it left them (refusals answered at
        once), then publish the accepted ones in one new tree and RRDP serial."""
        failed = _report("other_error", "the repository could not publish now: try again later")
        began = time.monotonic()
        state = self._state(held, who)
        if state is None:
            self._refuse_all(batch, failed)
            return
        checked = self._check(batch, state, who)
        if checked is None:
            return
        mine, accepted = checked
        workspace = state.workspace
        published = workspace.published
        foreign = {path: data for objects in mine.values() for path, data in objects.items()}
        progress = engine.Progress()
        self._served = None  # until the new tree is known to be served
        started = time.monotonic()
        try:
            engine.publish_all(
                workspace,
                published.files,
                max(w.now for w in accepted),
                held=held,
                progress=progress,
                foreign=foreign,
                encoded=self._encoded,
            )
        except Exception as exc:  # any failure: what is served decides the answer
            configured = self._desired.publication.rrdp_base is not None
            self._log(f"RFC 8181 publication by {who}: {exc}; {progress.state(configured)}")
            if progress.rsync is None:
                self._refuse_all(accepted, failed)
                return
            self._record(accepted)  # served by rsync: published, RRDP catches up with the next one
            self._answer_now(*accepted)
            return
        written = time.monotonic()
        self._record(accepted)
        self._answer_now(*accepted)  # served: answered whatever the bookkeeping below does
        tree = served_tree(self._desired.publication.directory)
        if tree is not None and progress.rsync is not None and tree.name == progress.rsync.name:
            kept = published.with_foreign(foreign)
            self._served = _Served(tree, dataclasses.replace(workspace, published=kept, served=tree), mine)
        self._log(
            f"RFC 8181: published {len(accepted)} message(s) of {len(batch)} in one tree in "
            f"{time.monotonic() - began:.2f}s (checks {started - began:.2f}s, rsync and RRDP "
            f"{written - started:.2f}s; {progress.rrdp or 'no RRDP'})"
        )

    def _record(self, published: list[_Waiting]) -> None:
        """The audit records of the messages just published, one each (which publisher, which
        message, what it did), in one write."""
        records = [
            self._audit_record(w.publisher, w.digest, w.counts or Counts(), w.verified, w.now)
            for w in published
        ]
        try:
            audit.append_all(self._desired.audit_log_path, records, now=clock.now())
        except (audit.AuditError, OSError) as exc:
            summaries = "; ".join(record["summary"] for record in records)
            self._log(f"{summaries}: published, but the audit records could not be written: {exc}")

    def _audit_record(
        self, publisher: Publisher, digest: str, counts: Counts, verified: sigmsg.Verified, now: datetime
    ) -> dict[str, Any]:
        summary = f"publisher {publisher.handle}: {counts.describe()}"
        return {
            "who": f"publisher {publisher.handle} (rpkictl serve, {audit.who()})",
            "status": audit.PUBLISHED,
            "operation": "rfc8181",
            "publisher": publisher.handle,
            "message_sha256": digest,
            "git_commit": None,
            "git_dirty": None,
            "desired_digest": self._desired.digest,
            "plan_id": None,
            "approvals": [],
            "summary": summary,
            "changes": [],
            "created": counts.created,
            "replaced": counts.replaced,
            "withdrawn": counts.withdrawn,
            "signatures": 0,
            "message": "",
            "message_signed": audit.stamp(verified.signing_time),
            "served_time": audit.stamp(now),
        }


def replay_path(desired: DesiredState) -> Path:
    """Where the publication server keeps the last signing time accepted from each publisher."""
    return desired.publication.directory / REPLAY_FILE
