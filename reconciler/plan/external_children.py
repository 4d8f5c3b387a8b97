"""External child CAs (RFC 6492) in a plan: the certificates a CA issued to children run by others.

A CA declared in Git may certify children it does not run (``children:`` in its file): they ask over
RFC 6492 (``reconciler.serve.parent``), and what was issued to them is kept where relying parties find it,
in the CA's directory (``layout.external_certificate_name``). The served tree is the only memory of them,
so each plan reads those certificates back and holds them to the desired state:

* a child's certificate that its entitlement (the YAML's resources, within the CA's) still covers, signed
  by the CA's current key, is expected: the manifest lists it, and nothing changes;
* near expiry it is renewed for the same key, to the CA certificate's own end (the ``resource_set_notafter``
  the child is told) -- routine, as any renewal;
* a parent key roll re-issues it under the new key (a roll step);
* an entitlement that shrank re-issues it narrower for the same key, as RIPE NCC and Krill parents do, and
  one that no longer covers any of its resources revokes it; a child no longer declared loses all its
  certificates. Those changes are a reviewer's (``gates``): they name the resources lost and, where the
  child publishes in this repository (``publishers/``), the VRPs that die with them.

Certificates the CA did not issue, or that are not what their name says, are damage and withdrawn.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from reconciler import layout
from reconciler.desired.model import CaIntent, DesiredState, ExternalChild, Timing
from reconciler.plan.model import Action, Change, Gate, Kind, Reason
from reconciler.plan.wording import FUTURE_DATED, FUTURE_TOLERANCE, expiry
from reconciler.published.reader import PublishedState, Unreadable
from reconciler.resources import Resources
from reconciler.rpki import cert as rc
from reconciler.rpki import cms, roa

if TYPE_CHECKING:
    from reconciler.plan.diff import _Planner

#: No child of ours holds certificates for more keys at once: its current key and, during its key roll,
#: the new one (RFC 6489). ``issue`` for a third key is refused until the child revokes one.
MAX_KEYS = 2


def intersection(a: Resources, b: Resources) -> Resources:
    """What both hold."""
    return a.subtract(a.subtract(b))


def entitlement(ca: CaIntent, child: ExternalChild) -> Resources:
    """What the child may be certified for: its declared resources, as far as the CA holds them."""
    return intersection(child.resources, ca.resources)


@dataclass(frozen=True, slots=True)
class ChildCertificate:
    """A certificate in a CA's directory named as one issued to an external child."""

    path: str  # relative to the rsync base
    handle: str
    key_id: bytes  # the key its name says it certifies
    found: rc.ResourceCertificate | Unreadable | None


def child_certificates(
    published: PublishedState, ca: str, handle: str | None = None
) -> list[ChildCertificate]:
    """The external children's certificates in the CA's directory (of one child, given ``handle``), in
    name order."""
    repo = layout.repository(ca)
    found = []
    for name in sorted(published.under(repo)):
        subject = layout.external_certificate_subject(name)
        if subject is None or (handle is not None and subject[0] != handle):
            continue
        found.append(
            ChildCertificate(repo + name, subject[0], subject[1], published.certificate(repo + name))
        )
    return found


def validity_end(ca_certificate: rc.ResourceCertificate | None, now: datetime, timing: Timing) -> datetime:
    """The end of a child certificate issued now: that of the CA's own certificate (RFC 6492
    ``resource_set_notafter``: a child told one end and certified to another re-requests on every poll),
    or the usual validity when the CA's certificate is not there to say."""
    if ca_certificate is None:
        return now + timing.certificate_validity
    return ca_certificate.not_after


def _published_resources(found: rc.ResourceCertificate) -> Resources | None:
    """The resources a child certificate holds; None when it inherits (never issued by this tree)."""
    if found.resources.inherit_ip or found.resources.inherit_asn:
        return None
    return found.resources.resources


def kept(found: rc.ResourceCertificate, entitled: Resources) -> Resources:
    """What a re-issue of ``found`` holds: its resources as far as the entitlement still covers them (the
    child may have asked for less than all of it); the entitlement for one that inherits, which this
    tree never issues."""
    have = _published_resources(found)
    return entitled if have is None else intersection(have, entitled)


class _Check:
    """One CA's external children's certificates against the desired state, for a ``_Planner``."""

    def __init__(self, planner: _Planner, ca: CaIntent) -> None:
        self.planner = planner
        self.ca = ca
        self.children = {child.handle: child for child in ca.children}

    @property
    def key(self) -> bytes | None:
        return self.planner.keys[self.ca.name]

    def change(
        self,
        item: ChildCertificate,
        action: Action,
        why: tuple[Reason, str],
        *,
        serial: int | None = None,
        roll: bool = False,
        repair: bool = False,
    ) -> Change:
        cause, reason = why
        return Change(
            action,
            Kind.CERTIFICATE,
            self.ca.name,
            item.path,
            reason,
            subject=item.handle,
            revoke_serial=serial,
            roll=roll,
            scheduled=action is Action.RENEW,
            repair=repair,
            cause=cause,
        )

    def ca_not_after(self) -> datetime:
        """When the CA's certificate for its active key ends once this plan is applied (a renewal of it in
        this plan starts a new validity)."""
        planner, timing = self.planner, self.planner.desired.timing
        path = layout.certificate_path(self.ca, planner.rolls[self.ca.name].active)
        renewing = any(
            c.path == path and c.kind is Kind.CERTIFICATE and c.action not in (Action.REVOKE, Action.WITHDRAW)
            for c in planner.changes
        )
        found = planner.published.certificate(path)
        if renewing or not isinstance(found, rc.ResourceCertificate):
            validity = timing.ta_certificate_validity if self.ca.trust_anchor else timing.certificate_validity
            return planner.now + validity
        return found.not_after

    def check(self, item: ChildCertificate) -> Change | None:
        planner, found = self.planner, item.found
        if isinstance(found, Unreadable):
            return self.change(
                item, Action.WITHDRAW, (Reason.UNREADABLE, f"unreadable: {found.reason}"), repair=True
            )
        if found is None:
            return None
        if found.key_id != item.key_id:
            reason = f"its name says key {item.key_id.hex()}, but it certifies key {found.key_id.hex()}"
            return self.change(item, Action.WITHDRAW, (Reason.COPY, reason), repair=True)
        foreign = planner.foreign_stray_cert(self.ca, item.path, found)
        if foreign is not None:
            return self.change(item, Action.WITHDRAW, foreign, repair=True)
        ours = found.authority_key_id == self.key and found.not_after > planner.now
        serial = found.serial if ours else None
        child = self.children.get(item.handle)
        if child is None:
            action = Action.REVOKE if serial is not None else Action.WITHDRAW
            reason = f"external child {item.handle} is no longer declared among {self.ca.name}'s children"
            return self.change(item, action, (Reason.NOT_DESIRED, reason), serial=serial)
        return self.check_declared(item, found, child, serial)

    def check_declared(
        self, item: ChildCertificate, found: rc.ResourceCertificate, child: ExternalChild, serial: int | None
    ) -> Change | None:
        planner, ca = self.planner, self.ca
        entitled = entitlement(ca, child)
        have = _published_resources(found)
        keep = kept(found, entitled)
        if not keep:
            action = Action.REVOKE if serial is not None else Action.WITHDRAW
            reason = f"the entitlement of {item.handle} no longer covers any of its resources ({have})"
            return self.change(item, action, (Reason.ENTITLEMENT_CHANGED, reason), serial=serial)
        if have is None or keep != have:
            lost = have.subtract(keep) if have is not None else "inherited resources"
            reason = f"entitlement narrowed: {item.handle} loses {lost}"
            return self.change(item, Action.REISSUE, (Reason.ENTITLEMENT_CHANGED, reason), serial=serial)
        if planner.drifted(ca.name, item.path):
            return self.change(
                item,
                Action.REISSUE,
                (Reason.ALTERED, "altered after publication (does not match the manifest)"),
                serial=serial,
                repair=True,
            )
        if found.authority_key_id != self.key:
            reason = f"issuer {ca.name} has a new key"
            return self.change(
                item, Action.REISSUE, (Reason.ISSUER_NEW_KEY, reason), roll=planner.rolled(ca.name)
            )
        crldp = planner.base + layout.repository(ca.name) + layout.crl_name(self.key or b"")
        if found.aia != planner.cert_uri(ca) or found.crldp != crldp:
            return self.change(
                item, Action.REISSUE, (Reason.URIS_CHANGED, "issuer URIs changed"), serial=serial
            )
        if found.serial in planner.revoked(ca):
            return self.change(item, Action.REISSUE, (Reason.REVOKED, "revoked on the CA's CRL"), serial=None)
        return self.check_time(item, found, serial)

    def check_time(
        self, item: ChildCertificate, found: rc.ResourceCertificate, serial: int | None
    ) -> Change | None:
        planner = self.planner
        if found.not_before > planner.now + FUTURE_TOLERANCE:
            reason = f"{FUTURE_DATED} (valid from {found.not_before:%Y-%m-%dT%H:%M:%SZ})"
            return self.change(item, Action.RENEW, (Reason.FUTURE_DATED, reason), serial=serial)
        left = found.not_after - planner.now
        renew = planner.desired.timing.certificate_renew_before
        # Renewed only to a later end: while the CA's own certificate is not renewed (an offline trust
        # anchor waits for its ceremony), re-issuing to the same end would churn on every run.
        if left < renew and self.ca_not_after() > found.not_after:
            why = (Reason.EXPIRING, expiry("certificate", left, renew))
            return self.change(item, Action.RENEW, why, serial=serial)
        return None


def plan_external_children(planner: _Planner, ca: CaIntent) -> set[str]:
    """Check the CA's external children's certificates, adding a change for each that must change, and
    return their file names: none of them is a stray for the caller to withdraw again."""
    check = _Check(planner, ca)
    names = set()
    for item in child_certificates(planner.published, ca.name):
        names.add(item.path.rsplit("/", 1)[-1])
        change = check.check(item)
        if change is not None:
            planner.add(change)
    return names


def is_external(change: Change) -> bool:
    """Whether a change concerns a certificate issued to an external child."""
    return (
        change.kind is Kind.CERTIFICATE
        and layout.external_certificate_subject(change.path.rsplit("/", 1)[-1]) is not None
    )


# -- gates ------------------------------------------------------------------------------------------


def _vrp_text(vrp: tuple[int, str, int]) -> str:
    return f"AS{vrp[0]} {vrp[1]} max {vrp[2]}"


def published_roas(
    desired: DesiredState, published: PublishedState, found: rc.ResourceCertificate
) -> list[roa.RoaContent]:
    """The ROAs a child publishes in this repository (below ``publishers/``, where its certificate's
    caRepository points), as far as they decode; none when it publishes elsewhere."""
    base = desired.publication.rsync_base
    repository = found.repository or ""
    if not repository.startswith(base + layout.PUBLISHERS + "/"):
        return []
    below = repository[len(base) :]
    contents = []
    for path, data in sorted(published.foreign.items()):
        if path.startswith(below) and path.endswith(".roa"):
            try:
                signed = cms.decode(data, where=path)
                if signed.content_type == roa.CONTENT_TYPE:
                    contents.append(roa.decode(signed.econtent, where=path))
            except ValueError:
                continue  # relying parties reject it already: it publishes no VRP to lose
    return contents


def _vrps_of(contents: Iterable[roa.RoaContent]) -> set[str]:
    return {_vrp_text(vrp) for content in contents for vrp in content.vrps}


def lost_vrps(
    desired: DesiredState, published: PublishedState, found: rc.ResourceCertificate, keep: Resources | None
) -> set[str]:
    """The VRPs the child publishes here that die when its certificate holds only ``keep`` (None: when it
    is revoked). A ROA with one prefix outside the certificate is invalid as a whole (RFC 6482 §4)."""
    contents = published_roas(desired, published, found)
    if keep is not None:
        contents = [c for c in contents if not all(keep.holds_prefix(p.prefix) for p in c.prefixes)]
    return _vrps_of(contents)


def gates(desired: DesiredState, published: PublishedState, changes: Iterable[Change]) -> list[Gate]:
    """``ca-revoke`` for an external child losing a certificate, ``ca-shrink`` for one re-issued with less
    (one gate per child and rule); damage and roll steps are nobody's decision."""
    revoked: dict[str, tuple[list[str], set[str]]] = {}
    shrunk: dict[str, tuple[list[str], set[str]]] = {}
    for change in changes:
        if not is_external(change) or change.repair or change.roll or change.subject is None:
            continue
        found = published.certificate(change.path)
        if not isinstance(found, rc.ResourceCertificate):
            continue
        handle = change.subject
        if change.action in (Action.REVOKE, Action.WITHDRAW):
            what, vrps = revoked.setdefault(handle, ([], set()))
            what.append(f"remove CA {handle}")
            vrps |= lost_vrps(desired, published, found, None)
        elif change.action is Action.REISSUE:
            have = _published_resources(found)
            located = desired.external_child(handle)
            if have is None or located is None:
                continue
            keep = intersection(have, entitlement(*located))
            lost = have.subtract(keep)
            if lost:
                what, vrps = shrunk.setdefault(handle, ([], set()))
                what.append(f"{handle} loses {lost}")
                vrps |= lost_vrps(desired, published, found, keep)
    found_gates = []
    for handle, (what, vrps) in sorted(revoked.items()):
        found_gates.append(
            Gate(
                "ca-revoke",
                handle,
                f"external child CA {handle} loses its certificate(s), with the {len(vrps)} VRPs it "
                "publishes in this repository",
                (*sorted(set(what)), *sorted(vrps)),
            )
        )
    for handle, (what, vrps) in sorted(shrunk.items()):
        tail = f", and {len(vrps)} VRPs it publishes in this repository die" if vrps else ""
        found_gates.append(
            Gate(
                "ca-shrink",
                handle,
                f"external child CA {handle} loses resources: {'; '.join(sorted(set(what)))}{tail}",
                (*sorted(set(what)), *sorted(vrps)),
            )
        )
    return found_gates


# -- what a plan shows ------------------------------------------------------------------------------


def certified_after(desired: DesiredState, published: PublishedState, change: Change) -> Resources | None:
    """The resources a certificate change leaves an external child's certificate with (None when the
    change issues nothing, or the certificate is not there to re-issue)."""
    found = published.certificate(change.path)
    located = desired.external_child(change.subject or "")
    if change.action not in (Action.REISSUE, Action.RENEW) or located is None:
        return None
    if not isinstance(found, rc.ResourceCertificate):
        return None
    return kept(found, entitlement(*located))


@dataclass(frozen=True, slots=True)
class Issued:
    """One certificate an external child holds, as the tree serves it."""

    path: str
    serial: int
    key_id: bytes
    not_after: datetime
    resources: Resources


@dataclass(frozen=True, slots=True)
class Entry:
    """An external child as a plan shows it: its parent, its entitlement, and what it holds now."""

    handle: str
    ca: str
    entitlement: Resources
    certificates: tuple[Issued, ...]


def entries(desired: DesiredState, published: PublishedState) -> list[Entry]:
    """Every declared external child, in the order of the CA files and their ``children:`` lists."""
    found = []
    for ca in desired.cas:
        for child in ca.children:
            issued = []
            for item in child_certificates(published, ca.name, child.handle):
                cert = item.found
                if isinstance(cert, rc.ResourceCertificate):
                    held = _published_resources(cert) or Resources()
                    issued.append(Issued(item.path, cert.serial, cert.key_id, cert.not_after, held))
            found.append(Entry(child.handle, ca.name, entitlement(ca, child), tuple(issued)))
    return found
