"""The parent side of RFC 6492 (up-down) for external children declared in Git.

A CA file's ``children:`` names child CAs run by others (Krill, rpkid, another rpkictl): each with the
RFC 8183 child_request its operator sent (its BPKI identity) and the resources it is entitled to. Such a
child polls whenever it likes and expects an answer signed now, so this responder answers online:

* ``list``: one resource class per parent CA (``class_name`` = the CA's name) holding the child's
  entitlement (the YAML's resources, within the CA's), the end of the CA's certificate as
  ``resource_set_notafter``, the CA's certificate as ``<issuer>``, and the child's current certificates;
* ``issue``: a PKCS#10 (``csr.parse_ca_request``, else 1203) for at most the entitlement -- and at most
  what the child asked for (``req_resource_set_*``); nothing left is 1202 -- becomes a certificate signed
  by the CA's active key, published at once through the normal path: under the publication lock, the
  certificate enters the tree, the CA's manifest and CRL are re-signed (by the very planner and executor
  ``apply`` uses), rsync and RRDP are published and the audit log records the child, the class and the
  SHA-256 of the request;
* ``revoke``: every certificate of that key is withdrawn and put on the CA's CRL the same way (1301 for
  another class, 1302 for a key the child holds no certificate for).

The served tree is the memory: what was issued is what the CA's directory holds
(``layout.external_certificate_name``), and every later plan holds it to the YAML
(``plan.external_children``: renewed, narrowed, revoked there, with review where a child loses anything).
Messages are verified against the identity committed in Git, and each must be signed after the last one
accepted from that child (``ReplayGuard``).

A parent of hundreds of children answers each from the desired state as it stands, without parsing it
again for every message: the state is loaded again only when its inputs' fingerprint
(:func:`source_fingerprint`: the commit ``HEAD`` names, or the files themselves with uncommitted changes
allowed) differs from the one taken before the last load. Replies are signed with an EE key kept for a
minute per CA identity, as the publication server does (``sigmsg.MessageKey``); ``list`` reads the
served tree again only once another tree has been swapped in.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import subprocess
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path

from cryptography import x509

from reconciler import clock, engine, identity, layout, refusals
from reconciler.apply import audit, child_certificate, lock
from reconciler.apply.executor import CLOCK_SKEW_MARGIN, ApplyResult, execute
from reconciler.desired.model import CaIntent, DesiredState, ExternalChild
from reconciler.plan import external_children
from reconciler.plan.diff import make_plan
from reconciler.plan.model import Change, Kind, Plan
from reconciler.plan.rollover import KeyIds, key_plans
from reconciler.protocol import csr, sigmsg, updown
from reconciler.protocol.bpki import CLOCK_SKEW, IdentityCertificate
from reconciler.protocol.errors import ProtocolError
from reconciler.protocol.replay import ReplayGuard
from reconciler.publish.rsync_tree import ServedTree, served_tree
from reconciler.published.reader import PublishedState
from reconciler.published.reader import read as read_published
from reconciler.resources import Resources
from reconciler.rpki import cert as rc
from reconciler.serve.app import UnknownPeer
from reconciler.signers import Signer, open_signers
from reconciler.signers.adapter import SignerKey
from reconciler.signers.offline import is_offline

#: Where the last signing time accepted from each child is kept, below the publication directory.
REPLAY_FILE = "serve/rfc6492-replay.json"

#: How long one EE key and certificate sign a CA's replies (see ``sigmsg.MessageKey``): an RSA key per
#: reply would cost a core 50 ms or more.
REPLY_KEY_LIFETIME = timedelta(minutes=1)

#: RFC 6492 §3.6 codes this responder sends.
NO_SUCH_CLASS = 1201
NO_RESOURCES = 1202
BAD_REQUEST = 1203
KEY_IN_USE = 1204
ALREADY_PROCESSING = 1101
UNRECOGNIZED = 1103
REVOKE_NO_CLASS = 1301
REVOKE_NO_KEY = 1302
NOT_PERFORMED = 2001


class _Refused(Exception):  # noqa: N818 - an answer, not a failure
    """A request answered with an RFC 6492 error_response."""

    def __init__(self, status: int, description: str) -> None:
        super().__init__(description)
        self.response = updown.ErrorResponse(status, description)


def replay_path(desired: DesiredState) -> Path:
    return desired.publication.directory / REPLAY_FILE


def identity_signer(desired: DesiredState, ca: CaIntent) -> str:
    """The signer holding a CA's BPKI identity key (owner: the CA's name): the CA's own, as ``rpkictl oob
    parent-response`` uses it. A CA that signs offline has no identity (a protocol message is signed
    now), so no child of it can have been given a parent_response."""
    if desired.signers[ca.signer].type == "offline":
        raise ProtocolError(f"CA {ca.name} signs offline: it cannot answer RFC 6492 messages")
    return ca.signer


@dataclasses.dataclass(frozen=True, slots=True)
class _Point:
    """The CA as an issuer right now: its active key and its published certificate for that key."""

    generation: int
    key: bytes | None  # None in a read-only view (list) that needs no signer
    certificate: rc.ResourceCertificate


class ParentService:
    """The RFC 6492 :class:`~reconciler.serve.app.Responder` for every external child of the desired state.

    ``load`` returns the desired state to answer from: an updated checkout is served from the next message
    on. Without ``fingerprint`` it is called for each message; with it (say :func:`source_fingerprint`),
    only when ``fingerprint()`` -- taken before each load, so an edit made while loading is seen by the
    next message -- differs from the value taken before the last load, or that load failed.
    ``lock_timeout`` is how long an ``issue`` or ``revoke`` waits for the publication lock before it
    answers 1101 (the child asks again later); ``strict_time`` as in ``sigmsg.verify``. Thread-safe:
    state lives in the publication directory, under its locks."""

    def __init__(
        self,
        load: Callable[[], DesiredState],
        *,
        fingerprint: Callable[[], object] | None = None,
        lock_timeout: timedelta = timedelta(seconds=30),
        strict_time: bool = True,
        log: Callable[[str], None] | None = None,
    ) -> None:
        self.load = load
        self.fingerprint = fingerprint
        self.lock_timeout = lock_timeout
        self.strict_time = strict_time
        self.log = log
        self._loading = threading.Lock()  # one load at a time; guards _loaded and _identities
        self._loaded: tuple[object, DesiredState] | None = None
        self._identities: dict[str, tuple[Signer, bytes, IdentityCertificate]] = {}
        self._signing = threading.Lock()
        self._reply_keys: dict[bytes, sigmsg.MessageKey] = {}  # by identity SKI
        self._reading = threading.Lock()
        self._read: tuple[Path, ServedTree, PublishedState] | None = None

    def desired(self) -> DesiredState:
        """The desired state to answer from: the one loaded last while its inputs' fingerprint holds."""
        if self.fingerprint is None:
            return self.load()
        with self._loading:
            seen = self.fingerprint()
            if self._loaded is not None and self._loaded[0] == seen:
                return self._loaded[1]
            self._loaded = None  # a failed load leaves nothing to serve from
            self._identities.clear()  # a CA's signer may have changed with it
            desired = self.load()
            self._loaded = (seen, desired)
            return desired

    def served(self, desired: DesiredState) -> PublishedState:
        """The served tree, for reading only: kept while ``rsync`` links to the very tree it was read
        from (a tree is written whole and swapped in, never changed in place), read again otherwise.
        Without the external publishers' objects, which no answer of a parent needs (a child publishing
        thousands here would make every list read them)."""
        directory = desired.publication.directory
        tree = served_tree(directory)  # before the read: a swap meanwhile means a read next time
        with self._reading:
            kept = self._read
            if tree is not None and kept is not None and kept[:2] == (directory, tree):
                return kept[2]
            published = read_published(directory / "rsync", foreign=False)
            self._read = None if tree is None else (directory, tree, published)
            return published

    def respond(self, handle: str, body: bytes, now: datetime) -> bytes:
        desired = self.desired()
        located = desired.external_child(handle)
        if located is None:
            raise UnknownPeer(f"no external child {handle!r} is declared")
        ca, child = located
        identity_signer(desired, ca)  # a CA that cannot answer refuses before anything is recorded
        where = f"RFC 6492 message from external child {handle}"
        verified = sigmsg.verify(body, child.identity, now, where, strict_time=self.strict_time)
        ReplayGuard(replay_path(desired)).accept(f"child:{handle}", verified.signing_time)
        try:
            message = updown.parse(verified.xml, where)
        except ProtocolError as exc:
            refused = updown.ErrorResponse(UNRECOGNIZED, str(exc)[:1000])
            self._report(desired, handle, "a message", refused, now)
            return self.reply(desired, ca, handle, refused, now)
        request = _Request(self, desired, ca, child, body, now)
        try:
            payload = request.answer(message.payload)
        except _Refused as refused:
            payload = refused.response
        self._report(desired, handle, _ASKED.get(type(message.payload), "a message"), payload, now)
        return self.reply(desired, ca, handle, payload, now)

    def _report(
        self, desired: DesiredState, handle: str, asked: str, answer: updown.Payload, now: datetime
    ) -> None:
        """One log line per message: the operator sees a refusal's code and reason where the child's
        operator cannot show them (the HTTP status of a refusal is 200); a refusal is also kept for the
        plan (``refusals``), which never fails the answer."""
        if isinstance(answer, updown.ErrorResponse):
            refusal = refusals.Refusal(now, answer.status, answer.description or "", asked.removeprefix("a "))
            where = refusals.path(desired)
            try:
                refusals.add(where, refusals.child(handle), refusal, refusals.declared_children(desired))
            except OSError as exc:
                if self.log is not None:
                    self.log(f"external child {handle}: the refusal could not be kept in {where}: {exc}")
        if self.log is None:
            return
        if isinstance(answer, updown.ErrorResponse):
            meaning = updown.ERRORS.get(answer.status, "unknown code")
            self.log(
                f"external child {handle}: {asked} refused with {answer.status} ({meaning})"
                + (f": {answer.description}" if answer.description else "")
            )
        else:
            self.log(f"external child {handle}: {asked} answered")

    def reply(
        self, desired: DesiredState, ca: CaIntent, recipient: str, payload: updown.Payload, now: datetime
    ) -> bytes:
        """The response, signed with the CA's BPKI identity."""
        xml = updown.render(updown.Message(sender=ca.name, recipient=recipient, payload=payload))
        signer, key, ours = self._identity(desired, ca, now)
        with self._signing:  # several server threads: only one makes a CA's next EE certificate
            ee = self._reply_keys.get(ours.ski)
            made = ee.not_before + CLOCK_SKEW if ee is not None else None
            if ee is None or made is None or not made <= now <= made + REPLY_KEY_LIFETIME:
                ee = self._reply_keys[ours.ski] = sigmsg.message_key(signer, key, ours, now)
        # the EE key signs in memory, from any number of threads at once
        return sigmsg.sign(xml, signer, key, ours, now, ee=ee)

    def _identity(
        self, desired: DesiredState, ca: CaIntent, now: datetime
    ) -> tuple[Signer, bytes, IdentityCertificate]:
        """The CA's BPKI identity (made on first use) and the signer holding its key; kept while the
        desired state it came from is served (with a ``fingerprint``)."""
        name = identity_signer(desired, ca)
        with self._loading:
            kept = self._identities.get(ca.name) if self._loaded and self._loaded[1] is desired else None
        if kept is not None:
            return kept
        signer = open_signers(desired.signers, {name})[name]
        key, ours = identity.ensure(signer, ca.name, identity.directory(desired), now)
        with self._loading:
            if self._loaded is not None and self._loaded[1] is desired:
                self._identities[ca.name] = (signer, key, ours)
        return signer, key, ours


_ASKED: dict[type, str] = {
    updown.ListQuery: "list",
    updown.IssueRequest: "issue",
    updown.RevokeRequest: "revoke",
}


@dataclasses.dataclass
class _Request:
    """One verified message from ``child`` of ``ca``."""

    service: ParentService
    desired: DesiredState
    ca: CaIntent
    child: ExternalChild
    body: bytes
    now: datetime

    @property
    def base(self) -> str:
        return self.desired.publication.rsync_base

    def answer(self, payload: updown.Payload) -> updown.Payload:
        if isinstance(payload, updown.ListQuery):
            return self.entitlements()
        if isinstance(payload, updown.IssueRequest):
            return self.issue(payload)
        if isinstance(payload, updown.RevokeRequest):
            return self.revoke(payload)
        raise _Refused(UNRECOGNIZED, f"a parent answers list, issue and revoke, not {type(payload).__name__}")

    # -- reading ------------------------------------------------------------------------------------

    def point(self, published: PublishedState, keys: KeyIds | None) -> _Point:
        """The CA's active key and its certificate, as the tree serves them; refused (2001) while the CA
        has no certificate for it (its first apply, a key roll's activation not yet published)."""
        known = keys if keys is not None else engine.published_keys(self.desired, published)
        plan = key_plans(self.desired, known, published, self.now, frozenset({self.ca.name}))[self.ca.name]
        key = known.get(self.ca.name, {}).get(plan.active)
        found = published.certificate(layout.certificate_path(self.ca, plan.active))
        if not isinstance(found, rc.ResourceCertificate) or key is None or found.key_id != key:
            raise _Refused(
                NOT_PERFORMED,
                f"CA {self.ca.name} has no published certificate for its key yet: ask again later",
            )
        return _Point(plan.active, key if keys is not None else None, found)

    def resource_class(
        self, point: _Point, certificates: tuple[updown.IssuedCertificate, ...]
    ) -> updown.ResourceClass:
        return updown.ResourceClass(
            class_name=self.ca.name,
            cert_url=self.base + layout.certificate_path(self.ca, point.generation),
            resources=external_children.entitlement(self.ca, self.child),
            not_after=point.certificate.not_after,
            issuer=point.certificate.der,
            certificates=certificates,
        )

    def current(self, published: PublishedState, point: _Point) -> tuple[updown.IssuedCertificate, ...]:
        """The child's certificates in the CA's directory that the CA's active key signed."""
        found = []
        for item in external_children.child_certificates(published, self.ca.name, self.child.handle):
            cert = item.found
            if (
                isinstance(cert, rc.ResourceCertificate)
                and cert.key_id == item.key_id
                and cert.authority_key_id == point.certificate.key_id
            ):
                found.append(updown.IssuedCertificate(self.base + item.path, cert.der))
        return tuple(found)

    def entitlements(self) -> updown.ListResponse:
        published = self.service.served(self.desired)
        if not external_children.entitlement(self.ca, self.child):
            return updown.ListResponse(())  # RFC 6492 §3.3.2: no class without resources
        point = self.point(published, None)
        return updown.ListResponse((self.resource_class(point, self.current(published, point)),))

    # -- issue ----------------------------------------------------------------------------------------

    def granted(self, request: updown.IssueRequest) -> Resources:
        if request.class_name != self.ca.name:
            raise _Refused(
                NO_SUCH_CLASS, f"no resource class {request.class_name!r}: the class is {self.ca.name!r}"
            )
        entitled = external_children.entitlement(self.ca, self.child)
        if not entitled:
            raise _Refused(NO_SUCH_CLASS, f"no resource class {request.class_name!r}: nothing is entitled")
        granted = (
            entitled if request.limit is None else external_children.intersection(entitled, request.limit)
        )
        if not granted:
            raise _Refused(
                NO_RESOURCES,
                f"the request asks for {request.limit}, none of which is in the entitlement ({entitled})",
            )
        return granted

    def issue(self, request: updown.IssueRequest) -> updown.IssueResponse:
        granted = self.granted(request)
        try:
            wanted = csr.parse_ca_request(request.csr, "the certificate request")
        except ProtocolError as exc:
            raise _Refused(BAD_REQUEST, str(exc)[:1000]) from exc
        with self.locked("rfc6492 issue") as (workspace, held):
            keys = workspace.keys()
            point = self.point(workspace.published, keys)
            self.check_key(workspace, keys, wanted.ski)
            path = layout.repository(self.ca.name) + layout.external_certificate_name(
                self.child.handle, wanted.ski
            )
            previous = workspace.published.certificate(path)
            signer = workspace.signers[self.ca.signer]
            assert point.key is not None  # noqa: S101 - read with the signers' keys
            issuer = rc.Issuer(
                SignerKey(signer, point.key),
                point.key,
                self.base + layout.certificate_path(self.ca, point.generation),
                self.base + layout.repository(self.ca.name) + layout.crl_name(point.key),
            )
            now = self.now.replace(microsecond=0)
            der = child_certificate.build(
                issuer=issuer,
                subject_key=wanted.public_key,
                access=rc.CaAccess(wanted.ca_repository, wanted.manifest, wanted.notify),
                resources=granted,
                serial=x509.random_serial_number(),
                not_before=now - CLOCK_SKEW_MARGIN,
                not_after=point.certificate.not_after,
            )
            revoke = _ours(previous, point.key, self.now)
            files = {**workspace.published.files, path: der}
            self.publish(
                workspace,
                held,
                files,
                revoke=[] if revoke is None else [revoke],
                what="issued",
                class_name=request.class_name,
                path=path,
                signed=1,
            )
        issued = updown.IssuedCertificate(self.base + path, der, requested=request.limit)
        return updown.IssueResponse(self.resource_class(point, (issued,)))

    def check_key(self, workspace: engine.Workspace, keys: KeyIds, ski: bytes) -> None:
        """1204 for a key certified for another child or held by one of our CAs; 2001 for a third key of
        the child (it holds certificates for its current key and, during its key roll, the next)."""
        if any(ski in generations.values() for generations in keys.values()):
            raise _Refused(KEY_IN_USE, f"key {ski.hex()} is already in use")
        mine = set()
        for ca in self.desired.cas:
            for item in external_children.child_certificates(workspace.published, ca.name):
                if item.key_id == ski and item.handle != self.child.handle:
                    raise _Refused(KEY_IN_USE, f"key {ski.hex()} is already certified for another child")
                if item.handle == self.child.handle:
                    mine.add(item.key_id)
        if ski not in mine and len(mine) >= external_children.MAX_KEYS:
            raise _Refused(
                NOT_PERFORMED,
                f"the child holds certificates for {len(mine)} keys already: revoke one before asking for "
                "another",
            )

    # -- revoke ---------------------------------------------------------------------------------------

    def revoke(self, request: updown.RevokeRequest) -> updown.RevokeResponse:
        if request.class_name != self.ca.name:
            raise _Refused(
                REVOKE_NO_CLASS, f"no resource class {request.class_name!r}: the class is {self.ca.name!r}"
            )
        with self.locked("rfc6492 revoke") as (workspace, held):
            keys = workspace.keys()
            point = self.point(workspace.published, keys)
            items = [
                item
                for item in external_children.child_certificates(
                    workspace.published, self.ca.name, self.child.handle
                )
                if item.key_id == request.ski
            ]
            if not items:
                raise _Refused(
                    REVOKE_NO_KEY, f"no certificate of key {request.ski.hex()} in class {self.ca.name!r}"
                )
            files = {p: d for p, d in workspace.published.files.items() if p not in {i.path for i in items}}
            revoke = [s for i in items if (s := _ours(i.found, point.key, self.now)) is not None]
            self.publish(
                workspace,
                held,
                files,
                revoke=revoke,
                what="revoked",
                class_name=request.class_name,
                path=items[0].path,
            )
        return updown.RevokeResponse(request.class_name, request.ski)

    # -- publication ----------------------------------------------------------------------------------

    @contextmanager
    def locked(self, operation: str) -> Iterator[tuple[engine.Workspace, lock.Lock]]:
        """The publication lock, and the workspace read under it (1101 while the lock stays busy)."""
        try:
            taken = lock.acquire(
                self.desired.publication.directory,
                who=audit.who(),
                operation=operation,
                plan_id=None,
                timeout=self.service.lock_timeout,
            )
        except lock.LockHeld as exc:
            raise _Refused(ALREADY_PROCESSING, "the publication point is busy: ask again later") from exc
        with taken as held:
            workspace = engine.workspace_for(self.desired)
            if is_offline(workspace.signers[self.ca.signer]):
                raise _Refused(
                    NOT_PERFORMED, f"CA {self.ca.name} signs offline: it cannot issue or revoke on request"
                )
            yield workspace, held

    def publish(
        self,
        workspace: engine.Workspace,
        held: lock.Lock,
        files: dict[str, bytes],
        *,
        revoke: list[int],
        what: str,
        class_name: str,
        path: str,
        signed: int = 0,
    ) -> ApplyResult:
        """Make ``files`` the CA's part of the tree: its manifest and CRL re-signed over them (revoking
        ``revoke``) exactly as ``apply`` would, then rsync and RRDP published, and an audit record."""
        state = PublishedState(files=files, memo=workspace.published.memo)
        the_plan = point_plan(self.desired, state, workspace.keys(), self.ca, now=self.now, revoke=revoke)
        result = execute(the_plan, self.desired, state, workspace.signers)
        progress = engine.Progress()
        record = {
            "who": audit.who(),
            "status": f"child-{what}",
            "child": self.child.handle,
            "ca": self.ca.name,
            "class": class_name,
            "request_sha256": hashlib.sha256(self.body).hexdigest(),
            "desired_digest": self.desired.digest,
            "certificate": path,
            "revoked_serials": [str(s) for s in revoke],
            "signatures": result.signed + signed,
            "summary": f"RFC 6492: certificate {what} for external child {self.child.handle} of "
            f"{self.ca.name}",
        }
        old = workspace.published.files
        record["changes"] = [
            *(f"write {p}" for p in sorted(p for p, d in result.files.items() if old.get(p) != d)),
            *(f"remove {p}" for p in sorted(set(old) - set(result.files))),
        ]
        log = self.desired.audit_log_path
        try:
            rrdp = engine.publish_all(workspace, result.files, self.now, held=held, progress=progress)
        except Exception as exc:
            rrdp_configured = self.desired.publication.rrdp_base is not None
            message = f"{exc}; {progress.state(rrdp_configured)}"
            audit.append(
                log, {**record, "status": f"child-{what}-failed", "message": message}, now=clock.now()
            )
            raise
        engine.remember_signed(workspace, result)
        audit.append(log, {**record, "message": rrdp or ""}, now=clock.now())
        return result


def point_plan(
    desired: DesiredState,
    state: PublishedState,
    keys: KeyIds,
    ca: CaIntent,
    *,
    now: datetime,
    revoke: list[int],
) -> Plan:
    """The part of a plan of ``state`` that re-signs the CA's manifest and CRL (with ``revoke`` added to
    the CRL), with the repairs of damage in the CA's directory (a manifest lists what the directory
    holds: planted files must go first, as any unattended run removes them); the desired state's other
    changes wait for a reviewed apply. A key roll of the CA does not activate here (its objects would be
    left signed by the old key)."""
    full = make_plan(desired, state, keys, now, hold=frozenset({ca.name}))
    point: list[Change] = []
    for change in full.changes:
        own_point = change.kind in (Kind.CRL, Kind.MANIFEST) and change.generation is None
        if change.ca == ca.name and (own_point or change.repair):
            point.append(change)
    if not any(c.kind is Kind.MANIFEST for c in point):
        raise ProtocolError(f"the plan does not re-sign the manifest of {ca.name} after the change")
    crl = next(c for c in point if c.kind is Kind.CRL)
    point += [dataclasses.replace(crl, revoke_serial=serial) for serial in revoke]
    return Plan(now=now, desired_digest=desired.digest, changes=tuple(point), key_plans=full.key_plans)


def _ours(found: object, key: bytes | None, now: datetime) -> int | None:
    """The serial to revoke of a certificate the CA's active key issued and that has not expired."""
    if isinstance(found, rc.ResourceCertificate) and found.authority_key_id == key and found.not_after > now:
        return found.serial
    return None


def source_fingerprint(root: Path, *, allow_uncommitted: bool = False) -> Callable[[], object]:
    """What ``reconcile.committed_state(root, allow_uncommitted=...)`` reads, summed up cheaply for
    :class:`ParentService`: the commit ``HEAD`` names (the committed desired state is that commit's,
    whatever the work tree holds); with ``allow_uncommitted`` (the files as they are, in Git or not), the
    size, times and inode of every file below ``root``: the YAML and the RFC 8183 request files it names
    (``.git`` left out, and directories reached through a symbolic link, which may loop). Where ``HEAD``
    cannot be read, a value equal to no other: load every time (the load says what is wrong)."""
    where = Path(root)

    def commit() -> object:
        try:
            done = subprocess.run(
                ["git", "-C", str(where), "rev-parse", "--verify", "--quiet", "HEAD"],
                capture_output=True,
                check=False,
                timeout=30,
            )
        except (OSError, subprocess.SubprocessError):
            return object()
        return ("commit", done.stdout.strip()) if done.returncode == 0 and done.stdout.strip() else object()

    def files() -> object:
        return ("files", tuple(sorted(_stat_tree(where))))

    return files if allow_uncommitted else commit


def _stat_tree(directory: Path) -> Iterator[tuple[str, int, int, int, int]]:
    """Path, size, modification and change time (ns) and inode of each entry below ``directory`` (of the
    target, for a symbolic link); a directory that cannot be read counts as empty (the load says why)."""
    try:
        entries = list(os.scandir(directory))
    except OSError:
        return
    for entry in entries:
        try:
            if entry.is_dir(follow_symlinks=False):
                if entry.name != ".git":
                    yield from _stat_tree(Path(entry.path))
                continue
            info = entry.stat(follow_symlinks=True)
        except OSError:
            continue
        yield entry.path, info.st_size, info.st_mtime_ns, info.st_ctime_ns, info.st_ino
