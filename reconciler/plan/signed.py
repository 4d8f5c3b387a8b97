"""The checks every signed object of a CA's directory gets, whatever its type (see ``rpki.kinds``): is it
the CA's, is it what the desired state says, will relying parties accept it until the next run.

A type's planner module (``plan.aspas``) says which objects the CA should hold and what each should say;
this module decides, for one of them, whether the published object stands, must be re-issued or renewed,
and how an object nobody wants any more leaves the directory.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from reconciler import layout
from reconciler.desired.model import CaIntent
from reconciler.plan.model import DAMAGE_REASONS, Action, Change, Kind, Reason
from reconciler.plan.wording import FUTURE_DATED, FUTURE_TOLERANCE, expiry
from reconciler.published.reader import Unreadable
from reconciler.rpki import kinds

if TYPE_CHECKING:
    from reconciler.plan.diff import _Planner

#: Why an object is replaced when its bytes are not those the CA signed and listed.
ALTERED = "altered after publication (does not match the manifest)"
#: How a plan names an object that this tree did not issue.
FOREIGN = "not issued by this CA (planted?)"

#: The plan's kind of each signed-object type it plans through this module.
PLAN_KIND: dict[str, Kind] = {kinds.ASPA.name: Kind.ASPA}

Verdict = tuple[Action, Reason, str]


def foreign(planner: _Planner, ca: CaIntent, path: str, found: kinds.Signed[object]) -> str | None:
    """Why an object in the CA's directory is not the CA's (see ``_Planner.not_issued``): its EE
    certificate is not one the CA issued."""
    ee = found.signed.ee
    return planner.not_issued(ca, path, ee.authority_key_id, lambda: ee.cert, subject="its EE certificate ")


def unusable(
    planner: _Planner, ca: CaIntent, path: str, found: kinds.Signed[object] | Unreadable
) -> Verdict | None:
    """Damage that makes the object worthless whatever it says: unreadable, altered, not the CA's."""
    if isinstance(found, Unreadable):
        return Action.REISSUE, Reason.UNREADABLE, f"unreadable: {found.reason}"
    if planner.drifted(ca.name, path):
        return Action.REISSUE, Reason.ALTERED, ALTERED
    why = foreign(planner, ca, path, found)
    return (Action.REISSUE, Reason.FOREIGN, why) if why is not None else None


def problem(
    planner: _Planner, ca: CaIntent, path: str, *, want: object, found: kinds.Signed[object], describe: str
) -> Verdict | None:
    """What is wrong with the CA's own object at ``path`` that should say ``want`` (None: it stands).
    ``describe``: the change of content in words, used when the content differs."""
    key = planner.keys[ca.name]
    ee = found.signed.ee
    if found.content != want:
        return Action.REISSUE, Reason.CONTENT_CHANGED, f"content changed ({describe})"
    if key is None or ee.authority_key_id != key:
        return Action.REISSUE, Reason.NEW_KEY, "the CA has a new key"
    if not planner.verifies(ca, path, lambda: ee.cert):
        why = "EE certificate not validly signed by the CA (altered after publication?)"
        return Action.REISSUE, Reason.BAD_SIGNATURE, why
    if ee.signed_object != planner.base + path:
        return Action.REISSUE, Reason.COPY, f"a copy of {ee.signed_object}, not the object of this name"
    if ee.serial in planner.revoked(ca):
        return Action.REISSUE, Reason.REVOKED, "revoked on the CA's CRL"
    holds = ee.resources
    if holds.inherit_asn or holds.inherit_ip or holds.resources != found.kind.ee_holds(found.content):
        why = f"EE certificate resources do not match the {found.kind.name}"
        return Action.REISSUE, Reason.EE_MISMATCH, why
    if ee.crldp != planner.base + layout.repository(ca.name) + layout.crl_name(key):
        return Action.REISSUE, Reason.URIS_CHANGED, "publication URIs changed"
    if ee.aia != planner.cert_uri(ca):
        return Action.REISSUE, Reason.URIS_CHANGED, "the CA's certificate moved (new parent)"
    if ee.not_before > planner.now + FUTURE_TOLERANCE:
        why = f"{FUTURE_DATED} (valid from {ee.not_before:%Y-%m-%dT%H:%M:%SZ})"
        return Action.RENEW, Reason.FUTURE_DATED, why
    left = ee.not_after - planner.now
    renew = planner.desired.timing.certificate_renew_before
    planner.until(ca.name, ee.not_after - renew)
    if left < renew:
        return Action.RENEW, Reason.EXPIRING, expiry("EE certificate", left, renew)
    return None


def serial(planner: _Planner, ca: CaIntent, path: str, found: object) -> int | None:
    """The EE serial to revoke when replacing or withdrawing the object: only of one our current key
    signed, still valid, and the object of this very path (a copy carries the original's serial, and
    revoking it would take the original down)."""
    if not isinstance(found, kinds.Signed):
        return None
    ee = found.signed.ee
    if ee.signed_object != planner.base + path or ee.authority_key_id != planner.keys[ca.name]:
        return None
    return ee.serial if ee.not_after > planner.now else None


def change(
    planner: _Planner,
    ca: CaIntent,
    path: str,
    *,
    kind: Kind,
    want: object,
    found: object,
    verdict: Verdict,
    revoke: int | None,
) -> Change:
    """The change that replaces the object at ``path`` (or issues it where there is none); ``revoke``:
    the serial of the published one to put on the CRL (see :func:`serial`)."""
    action, cause, reason = verdict
    return Change(
        action,
        kind,
        ca.name,
        path,
        reason,
        content=want,  # type: ignore[arg-type]
        revoke_serial=revoke,
        roll=cause is Reason.NEW_KEY and planner.rolled(ca.name),
        scheduled=action is Action.RENEW,
        repair=isinstance(found, Unreadable) or cause in DAMAGE_REASONS,
        cause=cause,
    )


def stray(planner: _Planner, ca: CaIntent, path: str, describe: Callable[[Any], str]) -> None:
    """An object of a planned type that the desired state no longer has: withdrawn, and revoked too when
    it is ours and still valid, so that a copy kept elsewhere cannot be replayed. ``describe``: its
    content in words."""
    found = planner.published.signed(path)
    kind = kinds.of(path)
    assert kind is not None  # noqa: S101 - only called for names of a signed-object type
    plan_kind = PLAN_KIND[kind.name]
    damaged: Verdict | None = None
    if isinstance(found, Unreadable):
        damaged = unusable(planner, ca, path, found)
    elif isinstance(found, kinds.Signed) and (why := foreign(planner, ca, path, found)) is not None:
        damaged = Action.WITHDRAW, Reason.FOREIGN, why
    if damaged is not None:
        _, cause, reason = damaged
        planner.add(Change(Action.WITHDRAW, plan_kind, ca.name, path, reason, repair=True, cause=cause))
        return
    said = describe(found.content) if isinstance(found, kinds.Signed) else kind.name.upper()
    cause, reason = Reason.NOT_DESIRED, f"{said} is no longer in the desired state"
    if isinstance(found, kinds.Signed) and found.signed.ee.signed_object != planner.base + path:
        cause, reason = Reason.COPY, f"a copy of {found.signed.ee.signed_object}, not an object of its own"
    revoke = serial(planner, ca, path, found)
    action = Action.REVOKE if revoke is not None else Action.WITHDRAW
    planner.add(Change(action, plan_kind, ca.name, path, reason, revoke_serial=revoke, cause=cause))
