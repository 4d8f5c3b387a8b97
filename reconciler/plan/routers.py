"""A CA's BGPsec router certificates in a plan (RFC 8209): one per router key and AS number of its
``routers:`` entries, checked against what is published, and those of keys it no longer lists revoked.

A router certificate is an EE certificate the CA's key signs directly, without a signed object around
it: the router's own key, the AS number it signs BGPsec updates for, its BGP Identifier. It is named
by its AS and its key (``layout.router_name``), so that no child's certificate is taken for one.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

from reconciler import layout
from reconciler.desired.model import CaIntent, RouterIntent
from reconciler.plan.model import Action, Change, Kind, Reason
from reconciler.plan.signed import ALTERED, Verdict, change
from reconciler.plan.wording import FUTURE_DATED, FUTURE_TOLERANCE, expiry
from reconciler.published.reader import Unreadable
from reconciler.resources import AsnSet
from reconciler.rpki.router import RouterCertificate

if TYPE_CHECKING:
    from reconciler.plan.diff import _Planner


def describe(key_id: bytes, asns: object, router_id: object) -> str:
    """``router key 0A1B2C3D... for AS64496 (BGP Identifier 192.0.2.1)``."""
    identifier = f" (BGP Identifier {router_id})" if router_id is not None else ""
    return f"router key {key_id.hex().upper()[:16]}... for {asns}{identifier}"


def wanted(ca: CaIntent) -> dict[str, RouterIntent]:
    """The CA's router certificates by file name: one per router key and AS number. RFC 8209 lets one
    certificate hold several, but rpki-client refuses those ("more than one AS number are not
    supported") and outputs no key for that router at all."""
    return {
        layout.router_name(asn, r.key_id): dataclasses.replace(r, asns=AsnSet.of([(asn, asn)]))
        for r in ca.routers
        for low, high in r.asns.ranges
        for asn in range(low, high + 1)
    }


def foreign(planner: _Planner, ca: CaIntent, path: str, found: RouterCertificate) -> str | None:
    """Why a router certificate in the CA's directory is not the CA's (see ``_Planner.not_issued``)."""
    return planner.not_issued(ca, path, found.authority_key_id, lambda: found.cert)


def problem(
    planner: _Planner, ca: CaIntent, path: str, want: RouterIntent, found: RouterCertificate
) -> Verdict | None:
    """What is wrong with the CA's router certificate at ``path`` (None: it stands)."""
    key = planner.keys[ca.name]
    if (found.public_key, found.asns, found.router_id) != (want.key, want.asns, want.router_id):
        was = describe(found.key_id, found.asns, found.router_id)
        now = describe(want.key_id, want.asns, want.router_id)
        return Action.REISSUE, Reason.CONTENT_CHANGED, f"content changed ({was} -> {now})"
    if key is None or found.authority_key_id != key:
        return Action.REISSUE, Reason.NEW_KEY, "the CA has a new key"
    if found.serial in planner.revoked(ca):
        return Action.REISSUE, Reason.REVOKED, "revoked on the CA's CRL"
    if found.crldp != planner.base + layout.repository(ca.name) + layout.crl_name(key):
        return Action.REISSUE, Reason.URIS_CHANGED, "publication URIs changed"
    if found.aia != planner.cert_uri(ca):
        return Action.REISSUE, Reason.URIS_CHANGED, "the CA's certificate moved (new parent)"
    if found.not_before > planner.now + FUTURE_TOLERANCE:
        why = f"{FUTURE_DATED} (valid from {found.not_before:%Y-%m-%dT%H:%M:%SZ})"
        return Action.RENEW, Reason.FUTURE_DATED, why
    left = found.not_after - planner.now
    renew = planner.desired.timing.certificate_renew_before
    planner.until(ca.name, found.not_after - renew)
    if left < renew:
        return Action.RENEW, Reason.EXPIRING, expiry("router certificate", left, renew)
    return None


def _own_name(path: str, found: RouterCertificate) -> bool:
    """Whether the certificate is at the name its content gives: a copy of another one under a new name
    carries the original's serial, and revoking it would take the original down."""
    first = found.asns.ranges[0][0] if found.asns.ranges else -1
    return path.rsplit("/", 1)[-1] == layout.router_name(first, found.key_id)


def _serial(planner: _Planner, ca: CaIntent, path: str, found: object) -> int | None:
    """The serial to revoke when replacing or withdrawing it: only of one our current key signed, still
    valid, and at its own name."""
    if not isinstance(found, RouterCertificate) or found.authority_key_id != planner.keys[ca.name]:
        return None
    return found.serial if found.not_after > planner.now and _own_name(path, found) else None


def owns(name: str) -> bool:
    """Whether a file name is a router certificate's."""
    return layout.is_router_name(name)


def plan(planner: _Planner, ca: CaIntent) -> set[str]:
    """Add a change for every router certificate of the CA that must be issued, re-issued or renewed;
    return their file names (none of them is a stray)."""
    repo = layout.repository(ca.name)
    want = wanted(ca)
    for name, intent in want.items():
        path = repo + name
        found = planner.published.router(path)
        verdict: Verdict | None
        if found is None:
            verdict = (
                Action.ISSUE,
                Reason.NEW_OBJECT,
                f"new {describe(intent.key_id, intent.asns, intent.router_id)}",
            )
        elif isinstance(found, Unreadable):
            verdict = Action.REISSUE, Reason.UNREADABLE, f"unreadable: {found.reason}"
        elif planner.drifted(ca.name, path):
            verdict = Action.REISSUE, Reason.ALTERED, ALTERED
        elif (why := foreign(planner, ca, path, found)) is not None:
            verdict = Action.REISSUE, Reason.FOREIGN, why
        elif not _own_name(path, found):
            verdict = (
                Action.REISSUE,
                Reason.COPY,
                "a copy of another router certificate, not the one of this name",
            )
        else:
            verdict = problem(planner, ca, path, intent, found)
        if verdict is not None:
            revoke = _serial(planner, ca, path, found)
            made = change(
                planner, ca, path, kind=Kind.ROUTER, want=intent, found=found, verdict=verdict, revoke=revoke
            )
            planner.add(made)
    return set(want)


def plan_stray(planner: _Planner, ca: CaIntent, path: str) -> None:
    """A router certificate the desired state no longer has: withdrawn, and revoked when ours and still
    valid (the router's key must no longer be taken for the AS)."""
    found = planner.published.router(path)
    if isinstance(found, Unreadable):
        reason = f"unreadable: {found.reason}"
        planner.add(
            Change(Action.WITHDRAW, Kind.ROUTER, ca.name, path, reason, repair=True, cause=Reason.UNREADABLE)
        )
        return
    if isinstance(found, RouterCertificate) and (why := foreign(planner, ca, path, found)) is not None:
        planner.add(
            Change(Action.WITHDRAW, Kind.ROUTER, ca.name, path, why, repair=True, cause=Reason.FOREIGN)
        )
        return
    said = describe(found.key_id, found.asns, found.router_id) if found is not None else "router certificate"
    cause, reason = Reason.NOT_DESIRED, f"{said} is no longer in the desired state"
    if found is not None and not _own_name(path, found):
        cause, reason = Reason.COPY, "a copy of another router certificate, not one of its own"
    serial = _serial(planner, ca, path, found)
    action = Action.REVOKE if serial is not None else Action.WITHDRAW
    planner.add(Change(action, Kind.ROUTER, ca.name, path, reason, revoke_serial=serial, cause=cause))
