"""Asking the parent (RFC 6492): what we are entitled to, and a certificate for our key that matches it.

One exchange is a ``list``, then -- only when the certificate listed for our key is missing, holds other
resources than the class now grants, names other publication URIs than ours, or is about to expire while
the parent could give a later end -- an ``issue`` with a fresh PKCS#10 request for the same key, and a
``list`` again to keep the parent's own account of what it issued. We never ask for fewer resources than
the class holds, and never for a certificate of an empty class. Each class with resources is signed under
a CA of its own with a key of its own (``upstream.classes``): the exchange asks for each class's
certificate in the same way, in one session.

A failed exchange is never taken as lost resources: the last list and certificate stay as they were,
the error is recorded with its RFC code and text, and the next attempt is put off (five minutes, doubling
up to six hours). "Try again later" (1101, 1104) is such a failure, not an error of the plan. Apply asks
whenever it runs; the reconcile loop asks when :func:`due` says so -- every hour with up to a quarter more
at random, so that the children of a registry do not all ask in the same minute, and sooner when our
certificate nears its end.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from reconciler import clock, identity, layout
from reconciler.desired.model import CaIntent, DesiredState
from reconciler.plan import rollover
from reconciler.protocol import csr, updown
from reconciler.protocol.client import UpDownClient, UpDownRefused
from reconciler.protocol.errors import ProtocolError
from reconciler.protocol.replay import ReplayGuard
from reconciler.published.reader import PublishedState
from reconciler.resources import Resources
from reconciler.rpki import cert as rc
from reconciler.signers.base import Signer, SignerError, key_id
from reconciler.upstream import classes
from reconciler.upstream import state as stored
from reconciler.upstream.errors import ParentError
from reconciler.upstream.state import Certified, LastError, PeerRecord, UpstreamState

#: How often the reconcile loop asks the parent when nothing is due sooner. A registry has thousands of
#: children: asking every minute is load it did not agree to, asking daily leaves a transfer's shrink
#: unnoticed for a day.
REFRESH = timedelta(hours=1)
#: Up to this share of REFRESH is added at random to each wait.
JITTER = 0.25
#: The first wait after a failed exchange, doubled after each further failure up to RETRY_MAX.
RETRY_FIRST = timedelta(minutes=5)
RETRY_MAX = timedelta(hours=6)
#: Seconds for one HTTP exchange with the parent.
TIMEOUT = 60.0
#: A parent that could give a certificate ending this much later than ours is asked for one when ours
#: nears its end (a shorter gain is not worth a new certificate).
WORTH_RENEWING = timedelta(days=1)


@dataclass(frozen=True)
class Exchange:
    """The outcome of one exchange (:func:`refresh`, :func:`revoke_retired`): the state kept, what we
    asked the parent to do and why (a certificate, a revocation; empty when nothing was needed), and
    what the operator should know although the exchange did not fail the apply (the parent was
    unreachable, but the certificate we hold is still good)."""

    state: UpstreamState
    requested: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()


def due(state: UpstreamState, now: datetime, renew_before: timedelta) -> str | None:
    """Why the reconcile loop should ask the parent now (None: not yet)."""
    if state.parent.next_contact is None or now >= state.parent.next_contact:
        return "the parent's entitlements are due to be checked"
    if state.certified is None:
        return None  # waiting for the next attempt after a failure
    ends = min(rc.decode(c.der, where=c.uri).not_after for c in stored.active(state))
    if ends - now < renew_before and state.parent.failures == 0:
        return "our certificate from the parent ends soon"
    return None


def next_contact(now: datetime, rng: Callable[[], float] = random.random) -> datetime:
    return now + REFRESH * (1 + JITTER * rng())


def retry_after(failures: int) -> timedelta:
    """The wait before the next attempt after ``failures`` failed exchanges in a row."""
    return min(RETRY_MAX, RETRY_FIRST * (1 << min(max(failures - 1, 0), 20)))


def refresh(
    desired: DesiredState,
    ca: CaIntent,
    signer: Signer,
    now: datetime,
    *,
    timeout: float = TIMEOUT,
    rng: Callable[[], float] = random.random,
    narrowing: Mapping[str, Resources] | None = None,
) -> Exchange:
    """Ask the parent of ``ca`` (an external parent) for its list and, when needed, new certificates;
    keep what it said. ``narrowing``: by class, the resources an approved ``parent-shrink`` gate lets a
    new certificate leave out (``upstream.narrowing``). Raises :class:`ParentError` when we end up without a
    certificate to sign under; a failure while the certificate we hold is still good is a warning of
    the :class:`Exchange`."""
    if ca.upstream is None:
        raise ValueError(f"CA {ca.name} has no external parent")
    directory = desired.publication.directory
    kept = stored.load(directory, ca.name)
    parent = ca.upstream.response.parent_handle
    first = kept.certified.class_name if kept.certified is not None else None
    try:
        talked = _talk(desired, ca, signer, now, timeout, first=first, narrowing=narrowing or {})
    except (ProtocolError, SignerError, OSError) as exc:
        record = _failed(desired, ca, kept, exc, now)
        if kept.certified is not None and _still_valid(kept.certified, now):
            return Exchange(
                replace(kept, parent=record),
                warnings=(
                    f"could not reach parent {parent}: {_describe(record)}; signing under the certificate "
                    f"it issued before; next attempt after {record.next_contact:%Y-%m-%dT%H:%M:%SZ}",
                ),
            )
        raise ParentError(
            f"no certificate from parent {parent} for CA {ca.name}: {_describe(record)}",
            record.last_error.code if record.last_error else None,
        ) from exc
    kept = replace(
        kept,
        parent=kept.parent.succeeded(now, next_contact(now, rng)),
        list_response=updown.render(updown.Message(ca.upstream.response.child_handle, parent, talked.listed)),
        listed_at=now,
        certified=talked.certified,
        staged=talked.staged,
        others=talked.others,
    )
    stored.save(directory, ca.name, kept)
    if talked.certified is None:
        raise ParentError(
            f"parent {parent} grants CA {ca.name} no resources: its list_response has "
            f"{_describe_classes(talked.listed.classes)}; nothing can be signed under {ca.name} until it "
            "grants some (ask the registry to check the resources of your account)"
        )
    return Exchange(kept, talked.requested)


def revoke_retired(
    desired: DesiredState,
    ca: CaIntent,
    signer: Signer,
    retired: Mapping[str, tuple[int, ...]],
    now: datetime,
    *,
    timeout: float = TIMEOUT,
) -> Exchange:
    """The last step of a key roll under an external parent (RFC 6489 §2.2): once what the new key
    signed is published, ask the parent to revoke the certificates of the retired keys (``retired``: the
    generations of each of our CAs under the parent, by name). "No such key" or
    "no such class" (1301, 1302) means it is done already. Returns what was done (``requested``); a
    failure is recorded and returned as a warning -- the roll stays in its activation step, and the next
    apply asks again."""
    directory = desired.publication.directory
    kept = stored.load(directory, ca.name)
    if ca.upstream is None or not retired or kept.certified is None:
        return Exchange(kept)
    parent = ca.upstream.response.parent_handle
    said = []
    try:
        client = _client(desired, ca, signer, now, timeout)
        for certified in stored.active(kept):
            mine = _class_ca(ca, certified.class_name, kept)
            keys = _keys(signer, mine, create=False)
            for generation in retired.get(mine.name, ()):
                key = keys.get(generation)
                if key is None:
                    continue
                try:
                    client.revoke(certified.class_name, key_id(signer.public_key(key)))
                except UpDownRefused as exc:
                    if exc.kind != "done":
                        raise
                said.append(
                    f"key generation {generation} of {mine.name} revoked by parent {parent}: the key roll "
                    "is done"
                )
        listed = client.list()
    except (ProtocolError, SignerError, OSError) as exc:
        record = _failed(desired, ca, kept, exc, now)
        waiting = f"the key roll of {ca.name} waits for parent {parent} to revoke the old key"
        return Exchange(replace(kept, parent=record), warnings=(f"{waiting}: {_describe(record)}",))
    names = {c.class_name: _class_ca(ca, c.class_name, kept).name for c in stored.active(kept)}
    kept = replace(
        kept,
        list_response=updown.render(updown.Message(ca.upstream.response.child_handle, parent, listed)),
        listed_at=now,
        staged=tuple(
            c for c in kept.staged if c.generation not in retired.get(names.get(c.class_name, ""), ())
        ),
    )
    stored.save(directory, ca.name, kept)
    return Exchange(kept, requested=tuple(said))


def _failed(
    desired: DesiredState, ca: CaIntent, kept: UpstreamState, exc: Exception, now: datetime
) -> PeerRecord:
    """Record a failed exchange and the wait before the next one; the record kept."""
    code = exc.status if isinstance(exc, UpDownRefused) else None
    error = LastError(_what_to_do(str(exc), code), clock.now().replace(microsecond=0), code)
    record = kept.parent.failed(now, error, now + retry_after(kept.parent.failures + 1))
    stored.save(desired.publication.directory, ca.name, replace(kept, parent=record))
    return record


def _describe(record: PeerRecord) -> str:
    return record.last_error.describe() if record.last_error else "no answer"


def _client(
    desired: DesiredState, ca: CaIntent, signer: Signer, now: datetime, timeout: float
) -> UpDownClient:
    """The up-down client under our identity."""
    assert ca.upstream is not None  # noqa: S101 - callers checked it
    identity_key, certificate = identity.ensure(signer, ca.name, identity.directory(desired), now)
    replay = ReplayGuard(desired.publication.directory / stored.STORE / "replay.json")
    return UpDownClient(
        ca.upstream.response, signer, identity_key, certificate, replay, timeout=timeout, strict_time=False
    )


def _keys(signer: Signer, ca: CaIntent, *, create: bool = True) -> dict[int, bytes]:
    """The CA's keys by generation; ``create``: the declared one made when missing (the first key, the
    new key of a roll, or the key of a class the parent lists for the first time)."""
    keys = {
        g: key
        for g in range(1, ca.key_generation + 1)
        if (key := signer.find_key(layout.key_label(ca.name, g))) is not None
    }
    if create and ca.key_generation not in keys:
        keys[ca.key_generation] = signer.create_key(layout.key_label(ca.name, ca.key_generation))
    return keys


def _class_ca(ca: CaIntent, class_name: str, kept: UpstreamState) -> CaIntent:
    """The CA of ours that signs under ``class_name``: ``ca`` itself for the class it signs under."""
    if kept.certified is None or kept.certified.class_name == class_name:
        return ca
    return replace(ca, name=classes.ca_name(ca.name, class_name))


@dataclass(frozen=True)
class _Talked:
    """What one session with the parent ended with."""

    listed: updown.ListResponse
    certified: Certified | None  # the active key's in the first class
    others: tuple[Certified, ...]  # the active keys' in the further classes
    staged: tuple[Certified, ...]  # the other keys' (a roll), in every class
    requested: tuple[str, ...]


def _talk(
    desired: DesiredState,
    ca: CaIntent,
    signer: Signer,
    now: datetime,
    timeout: float,
    *,
    first: str | None,
    narrowing: Mapping[str, Resources],
) -> _Talked:
    client = _client(desired, ca, signer, now, timeout)
    listed = client.list()
    assigned = classes.assign(ca.name, listed.classes, first)
    if not assigned:
        return _Talked(listed, None, (), (), ())
    cas = {item.ca: replace(ca, name=item.ca) for item in assigned}
    keys = {name: _keys(signer, mine) for name, mine in cas.items()}
    ids = {name: {g: key_id(signer.public_key(k)) for g, k in found.items()} for name, found in keys.items()}
    notify = desired.publication.notify_uri
    reasons: list[str] = []
    for item in assigned:
        mine, found = cas[item.ca], item.listed
        roll = _key_plan(desired, mine, ids[mine.name], found, now)
        repo = desired.publication.rsync_base + layout.repository(mine.name)
        for generation in roll.generations:
            key = ids[mine.name][generation]
            access = (repo, repo + layout.manifest_name(key), notify)
            why = _request_reasons(
                desired,
                found,
                _certificate_of(found, key),
                access,
                now,
                narrowing=narrowing.get(found.class_name),
            )
            if why:
                request = csr.build_ca_request(signer, keys[mine.name][generation], *access)
                client.issue(updown.IssueRequest(found.class_name, request))
                label = f"key generation {generation}: " if roll.phase is not None else ""
                label = f"{mine.name}, {label}" if len(assigned) > 1 else label
                reasons += [label + reason for reason in why]
    if reasons:
        listed = client.list()  # the parent's own account of what it issued, as the next plan reads it
        assigned = classes.assign(ca.name, listed.classes, first)
        if not assigned:
            raise ProtocolError("the parent issued a certificate but lists no resource class afterwards")
    active: list[Certified] = []
    staged: list[Certified] = []
    for item in assigned:
        mine, found = cas.get(item.ca) or replace(ca, name=item.ca), item.listed
        known = ids.get(mine.name, {})
        roll = _key_plan(desired, mine, known, found, now)
        certificates = {g: c for g in known if (c := _certificate_of(found, known[g])) is not None}
        if roll.active not in certificates:
            raise ProtocolError(
                f"parent {ca.upstream.response.parent_handle if ca.upstream else ''} does not list a "
                f"certificate for the key of {mine.name} (generation {roll.active}) in class "
                f"{found.class_name} after issuing it"
            )
        for generation, issued in sorted(certificates.items()):
            held = Certified(found.class_name, issued.cert_url, issued.der, generation)
            (active if generation == roll.active else staged).append(held)
    return _Talked(listed, active[0], tuple(active[1:]), tuple(staged), tuple(reasons))


def _key_plan(
    desired: DesiredState, ca: CaIntent, ids: dict[int, bytes], found: updown.ResourceClass, now: datetime
) -> rollover.KeyPlan:
    """Where the CA's key roll stands (``plan.rollover``), from the certificates the parent lists for
    each of our keys -- as the planner will see them once ``effective`` has put them in place."""
    published = PublishedState()
    for generation, ours in ids.items():
        issued = _certificate_of(found, ours)
        if issued is not None:
            published.put(layout.certificate_path(ca, generation), issued.der)
    return rollover.key_plan(ca, ids, published, now, desired.timing.key_roll_staging)


def _certificate_of(found: updown.ResourceClass, ours: bytes) -> updown.IssuedCertificate | None:
    for issued in found.certificates:
        try:
            if rc.decode(issued.der, where=issued.cert_url).key_id == ours:
                return issued
        except rc.CertificateError:
            continue
    return None


def _request_reasons(
    desired: DesiredState,
    found: updown.ResourceClass,
    mine: updown.IssuedCertificate | None,
    access: tuple[str, str, str | None],
    now: datetime,
    *,
    narrowing: Resources | None = None,
) -> tuple[str, ...]:
    """Why we ask for a new certificate (empty: the one listed for our key is what we want). ``access``:
    the caRepository, manifest and rpkiNotify URIs it should carry. A certificate that would hold less
    than the one we have is asked for only when ``narrowing`` -- approved -- is exactly what it loses
    (see ``upstream.narrowing``); while it still holds, nothing is asked for."""
    if mine is None:
        return (f"no certificate for our key in class {found.class_name} yet",)
    current = rc.decode(mine.der, where=mine.cert_url)
    reasons = []
    held = current.resources.resources
    removed = held.subtract(found.resources)
    if removed and removed != narrowing and current.not_before <= now < current.not_after:
        return ()
    if held != found.resources or current.resources.inherit_ip or current.resources.inherit_asn:
        added = found.resources.subtract(held)
        reasons.append(
            f"the entitlement changed (added: {added or 'nothing'}; removed: {removed or 'nothing'})"
        )
    if (current.repository, current.manifest_uri, current.notify) != access:
        reasons.append("our publication URIs changed")
    renew = desired.timing.certificate_renew_before
    if current.not_after - now < renew and found.not_after - current.not_after > WORTH_RENEWING:
        reasons.append(f"our certificate ends {current.not_after:%Y-%m-%dT%H:%M:%SZ}")
    return tuple(reasons)


def _still_valid(certified: Certified, now: datetime) -> bool:
    try:
        found = rc.decode(certified.der, where=certified.uri)
    except rc.CertificateError:
        return False
    return found.not_before <= now < found.not_after


def _describe_classes(found: tuple[updown.ResourceClass, ...]) -> str:
    if not found:
        return "no resource class"
    return ", ".join(f"class {c.class_name} with {c.resources or 'no resources'}" for c in found)


def _what_to_do(text: str, code: int | None) -> str:
    """The error as recorded and shown, with what the operator does about it."""
    if code is None:
        return text
    kind = updown.error_kind(code)
    if kind == "retry":
        return f"{text}; the parent is busy: asked again later, nothing to do"
    if kind == "drop-class":
        return (
            f"{text}; the parent no longer has this resource class for us (or saw this key before): check "
            "the resources of your account at the registry"
        )
    return text
