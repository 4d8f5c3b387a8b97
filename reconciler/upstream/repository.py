"""Publishing at a repository run by someone else (RFC 8181).

Apply signs into our local copy of the publication point (``<publication directory>/rsync``), as it does
for a repository we serve ourselves. This module then makes the repository hold exactly that copy's
objects below its ``sia_base``: a ``list`` (what it holds, URI -> hash), then one message with every
``publish`` (without a hash for a new object, with the hash of the one replaced) and ``withdraw`` (with
the hash of the one withdrawn), which the server applies all or nothing -- several in order, for a
publication too large for one message (:func:`messages`: the first of a CA with thousands of ROAs).
Comparing with the list on every apply, not only sending what this apply signed, is what repairs a
repository that lost objects or holds stale ones, and what lets an apply that failed half-way converge
on the next run.

Only objects in a CA's directory are sent: the file at the top of our copy is the certificate the parent
issued us, which the parent publishes in its own repository.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime

from reconciler import clock, identity
from reconciler.desired.model import DesiredState
from reconciler.protocol import publication
from reconciler.protocol.client import PublicationClient
from reconciler.protocol.errors import ProtocolError
from reconciler.protocol.replay import ReplayGuard
from reconciler.signers.base import Signer, SignerError
from reconciler.upstream import state as stored
from reconciler.upstream.errors import RepositoryError
from reconciler.upstream.state import LastError, PublishedCount
from reconciler.upstream.tree import wanted

#: Seconds for one HTTP exchange with the repository (a first publication of thousands of objects is
#: one large message).
TIMEOUT = 240.0
#: The most bytes (of XML, estimated) and PDUs one message carries. RFC 8181 sets no limit, servers do:
#: ``rpkictl serve`` reads at most 4 MiB of XML and 10,000 PDUs a message, and the first publication of
#: a CA with 5,000 ROAs is some 13 MB.
MESSAGE_BYTES = 3 << 20
MESSAGE_PDUS = 5_000


@dataclass(frozen=True)
class Synced:
    """One synchronisation: what the repository held before, and what we sent."""

    held: int  # objects the repository listed
    published: int  # publish PDUs sent (new or replaced)
    withdrawn: int
    size: int  # bytes of the objects sent
    message: int  # bytes of the queries, before signing
    messages: int = 1  # queries sent (more than one only for a publication too large for one)

    @property
    def sent(self) -> bool:
        return bool(self.published or self.withdrawn)

    def describe(self, where: str) -> str:
        if not self.sent:
            return f"The repository ({where}) holds all {self.held} objects already."
        return (
            f"Repository {where}: sent {self.published} publish and {self.withdrawn} withdraw in "
            f"{'one message' if self.messages == 1 else f'{self.messages} messages'} "
            f"({self.size:,} bytes of objects; it held {self.held} objects)."
        )


def _estimated_size(pdu: publication.Pdu) -> int:
    """An upper bound of the bytes ``pdu`` takes in a query, without encoding its object."""
    encoded = (len(pdu.der) + 2) // 3 * 4 if isinstance(pdu, publication.Publish) else 0
    return 200 + 2 * (len(pdu.uri) + len(pdu.tag or "")) + encoded + encoded // 32


def messages(
    pdus: tuple[publication.Pdu, ...], limit: int = MESSAGE_BYTES, most: int = MESSAGE_PDUS
) -> list[tuple[publication.Pdu, ...]]:
    """``pdus`` as the queries to send: one when they fit in ``limit`` bytes and ``most`` PDUs, as any
    change's do; none when there are none. A larger publication -- the first of a CA with thousands of
    ROAs -- goes in several, each applied all or nothing and in order: the other objects first, then
    the manifests, CRLs and withdrawals, so that relying parties see the manifest the repository held
    (and objects it does not list yet) until the last message brings the new one. If one of them fails,
    the next synchronisation lists what the repository holds and sends the rest."""
    sizes = [_estimated_size(pdu) for pdu in pdus]
    if len(pdus) <= most and sum(sizes) <= limit:
        return [pdus] if pdus else []
    last = [isinstance(pdu, publication.Withdraw) or pdu.uri.endswith((".mft", ".crl")) for pdu in pdus]
    ordered = [i for i in range(len(pdus)) if not last[i]] + [i for i in range(len(pdus)) if last[i]]
    batches: list[tuple[publication.Pdu, ...]] = []
    batch: list[publication.Pdu] = []
    size = 0
    for index in ordered:
        if batch and (size + sizes[index] > limit or len(batch) >= most):
            batches.append(tuple(batch))
            batch, size = [], 0
        batch.append(pdus[index])
        size += sizes[index]
    batches.append(tuple(batch))
    return batches


def synchronise(
    desired: DesiredState,
    signer: Signer,
    files: Mapping[str, bytes],
    now: datetime,
    *,
    timeout: float = TIMEOUT,
) -> Synced:
    """Make the remote repository hold exactly ``files`` (our copy's tree: path -> bytes); records the
    outcome in the upstream state of the CA that publishes there. Raises :class:`RepositoryError`."""
    remote = desired.publication.remote
    if remote is None:
        raise ValueError("this desired state publishes in a local directory")
    directory = desired.publication.directory
    kept = stored.load(directory, remote.owner)
    want = wanted(desired, files)
    # What the server lists once it applied what we send: the delta compares with it too.
    listed = {uri: publication.object_hash(data) for uri, data in want.items()}
    try:
        identity_key, certificate = identity.ensure(signer, remote.owner, identity.directory(desired), now)
        replay = ReplayGuard(directory / stored.STORE / "replay.json")
        client = PublicationClient(
            remote.response, signer, identity_key, certificate, replay, timeout=timeout, strict_time=False
        )
        held = client.list()
        pdus = publication.delta(held, want, listed)
        queries = messages(pdus)
        for query in queries:
            client.send(query)
    except (ProtocolError, SignerError, OSError, ValueError) as exc:
        error = LastError(str(exc), clock.now().replace(microsecond=0))  # RFC 8181 codes are in the text
        failed = kept.repository.failed(now, error, None)
        stored.save(directory, remote.owner, replace(kept, repository=failed))
        raise RepositoryError(
            f"could not publish at the repository ({remote.response.service_uri}): {exc}; the objects are "
            "signed in the local copy, and the next apply (or the reconcile loop) sends what the "
            "repository lacks"
        ) from exc
    sent = [p for p in pdus if isinstance(p, publication.Publish)]
    result = Synced(
        held=len(held),
        published=len(sent),
        withdrawn=len(pdus) - len(sent),
        size=sum(len(p.der) for p in sent),
        message=sum(len(publication.render(publication.Query(query))) for query in queries),
        messages=len(queries) or 1,
    )
    count = PublishedCount(
        objects=len(want),
        size=sum(len(data) for data in want.values()),
        sent_publish=result.published if pdus else kept.held.sent_publish,
        sent_withdraw=result.withdrawn if pdus else kept.held.sent_withdraw,
        sent_bytes=result.size if pdus else kept.held.sent_bytes,
        sent_at=now if pdus else kept.held.sent_at,
    )
    # The server applied each message all or nothing: it now lists exactly what we want it to hold.
    done = replace(kept, repository=kept.repository.succeeded(now), held=count, listed=listed)
    stored.save(directory, remote.owner, done)
    return result
