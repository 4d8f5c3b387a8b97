"""The status of the peers our CAs depend on when someone else runs them: the external parent that
certifies the root CA (RFC 6492) and the repository where the CAs publish (RFC 8181).

Everything comes from the state kept between runs (``reconciler.upstream.state``): what the parent said
in its last list_response, the certificate it issued, when each peer was last reached and the last error.
A status asks nobody over the network and needs no key: it runs where ``rpkictl check`` runs, and says
how old what it knows is.

The plan's notices about the same exchanges (``upstream.effective``) are left out of the findings here
(:func:`restated`): this module says the same with the margins ``check`` was given, once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from reconciler import health
from reconciler.desired.model import CaIntent, DesiredState, RemoteRepository
from reconciler.health import Finding
from reconciler.plan.model import Notice, Severity
from reconciler.plan.wording import describe_delta
from reconciler.protocol.errors import ProtocolError
from reconciler.resources import Resources
from reconciler.rpki import cert as rc
from reconciler.status.model import (
    Entitlement,
    ExchangeError,
    ExternalParentStatus,
    ObjectKind,
    ObjectTimes,
    ParentCertificate,
    Problem,
    RemoteRepositoryStatus,
    SentMessage,
)
from reconciler.upstream import state as stored
from reconciler.upstream.classes import holdings, is_class_ca, pending, signing
from reconciler.upstream.effective import KIND
from reconciler.upstream.state import Certified, LastError, PeerRecord, StateError, UpstreamState
from reconciler.upstream.state import classes as stored_classes

#: The kind of the plan's notice about the end of the certificate from the external parent.
EXPIRY_KIND = "expiry"


def _stamp(moment: datetime) -> str:
    return f"{moment:%Y-%m-%dT%H:%M:%SZ}"


def _error(error: LastError | None) -> ExchangeError | None:
    if error is None:
        return None
    return ExchangeError(code=error.code, text=error.text, at=error.at, description=error.describe())


def _text(resources: Resources) -> str:
    return str(resources) if resources else ""


def _last_reached(record: PeerRecord) -> str:
    return f"last reached {_stamp(record.last_success)}" if record.last_success else "never reached"


class _Parent:
    """One CA's external parent, judged from the kept state at ``now`` with the margins of ``check``."""

    def __init__(
        self,
        desired: DesiredState,
        ca: CaIntent,
        kept: UpstreamState,
        *,
        now: datetime,
        warn: timedelta,
        critical: timedelta,
    ) -> None:
        assert ca.upstream is not None  # noqa: S101 - parent_status checked it
        self.desired, self.ca, self.kept = desired, ca, kept
        self.now, self.warn, self.critical = now, warn, critical
        self.handle = ca.upstream.response.parent_handle
        self.entitled = Resources()  # every class of the kept list_response together
        self.problems: list[Problem] = []

    def note(self, severity: Severity, message: str) -> None:
        self.problems.append(Problem(severity=severity.value, message=message))

    def classes(self) -> list[Entitlement]:
        """The kept list_response's classes; a damaged one is a warning (the next exchange replaces it)."""
        try:
            found = stored_classes(self.kept)
        except ProtocolError as exc:
            self.note(
                Severity.WARNING,
                f"the list_response kept from the parent cannot be read ({exc}); the next exchange "
                "('rpkictl apply') replaces it",
            )
            return []
        for item in found:
            self.entitled = self.entitled.union(item.resources)
        return [
            Entitlement(class_name=c.class_name, resources=_text(c.resources), not_after=c.not_after)
            for c in found
        ]

    def certificate(self, certified: Certified) -> tuple[ParentCertificate, rc.ResourceCertificate | None]:
        try:
            found = rc.decode(certified.der, where=f"the certificate parent {self.handle} issued")
        except rc.CertificateError as exc:
            self.note(
                Severity.CRITICAL,
                f"the certificate kept from the parent cannot be read ({exc}): 'rpkictl apply' asks the "
                "parent for it again",
            )
            return ParentCertificate(
                class_name=certified.class_name, uri=certified.uri, not_after=None, resources=""
            ), None
        shown = ParentCertificate(
            class_name=certified.class_name,
            uri=certified.uri,
            not_after=found.not_after,
            resources=_text(found.resources.resources),
        )
        return shown, found

    def pending(self) -> tuple[Resources, Resources]:
        """Over every class: what it entitles us to and its certificate does not hold, and the reverse."""
        try:
            return pending(holdings(self.kept))
        except (ProtocolError, rc.CertificateError):
            return Resources(), Resources()  # said by classes() and certificate()

    def check_missing(self) -> None:
        error = self.kept.parent.last_error
        if error is not None:
            why = "the last exchange failed (below); the next attempt asks again"
        elif self.kept.list_response is not None and not self.entitled:
            why = (
                "its last list_response grants no resources: ask the registry to check the resources of "
                "your account"
            )
        else:
            why = "'rpkictl apply' asks it for one"
        self.note(
            Severity.CRITICAL,
            f"no certificate from parent {self.handle} for {self.ca.name}: nothing under it can be signed, "
            f"and relying parties validate nothing of it; {why}",
        )

    def check_expiry(self, ends: datetime, ca: str) -> None:
        left = ends - self.now
        renew = self.desired.timing.certificate_renew_before
        if left >= max(self.warn, renew):
            return
        severity = Severity.CRITICAL if left < self.critical else Severity.WARNING
        state = (
            f"expired {describe_delta(-left)} ago"
            if left < timedelta(0)
            else f"ends in {describe_delta(left)}"
        )
        window = f", inside the renewal window of {describe_delta(renew)}" if left < renew else ""
        self.note(
            severity,
            f"the certificate of {ca} {state} ({_stamp(ends)}){window}: every exchange asks the "
            "parent for a later one ('rpkictl apply' now, or the reconcile loop); if it does not renew "
            "it, ask the registry",
        )

    def check_entitlement(self, gained: Resources, lost: Resources) -> None:
        if gained or lost:
            parts = [f"entitled to {gained} it does not hold"] if gained else []
            parts += [f"holding {lost} no longer entitled"] if lost else []
            self.note(
                Severity.WARNING,
                f"the entitlement changed and the certificate of {self.ca.name} does not follow it yet "
                f"({'; '.join(parts)}): the next exchange with the parent asks for one that does "
                "('rpkictl apply' now, or the reconcile loop)",
            )

    def check_exchange(self) -> None:
        record = self.kept.parent
        if record.last_error is None:
            return
        after = f"; next attempt after {_stamp(record.next_contact)}" if record.next_contact else ""
        self.note(
            Severity.WARNING,
            f"the last exchange failed ({record.failures} in a row, {_last_reached(record)}): "
            f"{record.last_error.describe()}{after}",
        )

    def status(self) -> ExternalParentStatus:
        assert self.ca.upstream is not None  # noqa: S101 - see __init__
        entitlements = self.classes()
        shown: ParentCertificate | None = None
        others: list[ParentCertificate] = []
        gained, lost = self.entitled, Resources()
        if self.kept.certified is None:
            self.check_missing()
        else:
            for name, certified in signing(self.ca.name, self.kept):
                view, found = self.certificate(certified)
                if found is not None:
                    self.check_expiry(found.not_after, name)
                if shown is None:
                    shown = view
                else:
                    others.append(view)
            gained, lost = self.pending()
            self.check_entitlement(gained, lost)
        self.check_exchange()
        record = self.kept.parent
        response = self.ca.upstream.response
        return ExternalParentStatus(
            ca=self.ca.name,
            handle=self.handle,
            child_handle=response.child_handle,
            service_uri=response.service_uri,
            last_success=record.last_success,
            last_attempt=record.last_attempt,
            failures=record.failures,
            last_error=_error(record.last_error),
            next_contact=record.next_contact,
            listed_at=self.kept.listed_at,
            certificate=shown,
            other_certificates=others,
            entitlements=entitlements,
            entitled_not_certified=_text(gained),
            certified_not_entitled=_text(lost),
            entitlement_pending=bool(gained or lost),
            problems=self.problems,
        )


def _load(desired: DesiredState, ca: str) -> tuple[UpstreamState | None, Finding | None]:
    try:
        return stored.load(desired.publication.directory, ca), None
    except StateError as exc:
        return None, Finding(Severity.WARNING, f"(upstream {ca})", str(exc))


def parent_status(
    desired: DesiredState, *, now: datetime, warn: timedelta, critical: timedelta
) -> tuple[ExternalParentStatus | None, list[Finding]]:
    """The external parent of the root CA (None for a hierarchy with its own trust anchor), and the
    findings of no single peer (the kept state unreadable)."""
    root = desired.external_root
    if root is None or root.upstream is None:
        return None, []
    kept, problem = _load(desired, root.name)
    if kept is None:
        return None, [problem] if problem is not None else []
    found = _Parent(desired, root, kept, now=now, warn=warn, critical=critical).status()
    return found, []


def _repository(remote: RemoteRepository, kept: UpstreamState) -> RemoteRepositoryStatus:
    record, held = kept.repository, kept.held
    problems = []
    if record.last_error is not None:
        problems.append(
            Problem(
                severity=Severity.WARNING.value,
                message=f"the last exchange failed ({record.failures} in a row, {_last_reached(record)}): "
                f"{record.last_error.describe()}; relying parties see what it held before, and the next "
                "'rpkictl apply' (or reconcile cycle) sends everything that is missing there",
            )
        )
    elif record.last_success is None:
        problems.append(
            Problem(
                severity=Severity.INFO.value,
                message="nothing published there yet: 'rpkictl apply' publishes once the parent has "
                "certified the CA",
            )
        )
    sent = None
    if held.sent_at is not None:
        sent = SentMessage(
            publish=held.sent_publish, withdraw=held.sent_withdraw, bytes=held.sent_bytes, at=held.sent_at
        )
    response = remote.response
    return RemoteRepositoryStatus(
        ca=remote.owner,
        service_uri=response.service_uri,
        publisher_handle=response.publisher_handle,
        sia_base=response.sia_base,
        last_success=record.last_success,
        last_attempt=record.last_attempt,
        failures=record.failures,
        last_error=_error(record.last_error),
        objects=held.objects,
        bytes=held.size,
        last_sent=sent,
        problems=problems,
    )


def repository_status(desired: DesiredState) -> tuple[RemoteRepositoryStatus | None, list[Finding]]:
    """The remote repository (None when the publication is local), and the findings of no single peer."""
    remote = desired.publication.remote
    if remote is None:
        return None, []
    kept, problem = _load(desired, remote.owner)
    if kept is None:
        return None, [problem] if problem is not None else []
    return _repository(remote, kept), []


def restated(notice: Notice, desired: DesiredState) -> bool:
    """Whether ``notice`` is one of the plan's notices about the exchanges with the external parent or
    the repository, or the end of the parent's certificate, that this module reports itself (with the
    margins of ``check``, and the time the status is made for)."""
    root = desired.external_root
    if root is None or root.upstream is None:
        return False
    if notice.ca != root.name and not (notice.kind == EXPIRY_KIND and is_class_ca(notice.ca, root.name)):
        return False
    if notice.kind == EXPIRY_KIND:
        return True  # a root under an external parent has no reminders of its own (plan.reminders)
    parent = root.upstream.response.parent_handle
    openings = (f"parent {parent}: ", "repository: ", f"no certificate from parent {parent} yet")
    return notice.kind == KIND and notice.message.startswith(openings)


@dataclass(frozen=True)
class UpstreamPeers:
    """The external parent and the remote repository of a desired state, for the status report."""

    desired: DesiredState
    parent: ExternalParentStatus | None
    repository: RemoteRepositoryStatus | None
    findings: list[Finding]  # of no single peer: a kept state that cannot be read

    def problems(self) -> list[Problem]:
        return [p for peer in (self.parent, self.repository) if peer is not None for p in peer.problems]

    def object_findings(
        self,
        ca: CaIntent,
        key: bytes | None,
        objects: list[ObjectTimes],
        now: datetime,
        *,
        warn: timedelta,
        critical: timedelta,
    ) -> list[Finding]:
        """``health.object_findings``; for the CA under the external parent, less what the parent's
        status says better: the end of the certificate the parent issued, and there being none (then no
        key of the CA is known either, and "apply creates its key" would send the operator the wrong
        way)."""
        if self.parent is not None and ca.name == self.parent.ca:
            if self.parent.certificate is None:
                return []
            objects = [o for o in objects if o.kind is not ObjectKind.CERTIFICATE]
        return health.object_findings(ca, key, objects, now, warn=warn, critical=critical)

    def notices(self, notices: tuple[Notice, ...]) -> tuple[Notice, ...]:
        """The plan's notices less those :func:`restated` here."""
        return tuple(n for n in notices if not restated(n, self.desired))


def peers_status(
    desired: DesiredState, *, now: datetime, warn: timedelta, critical: timedelta
) -> UpstreamPeers:
    parent, problems = parent_status(desired, now=now, warn=warn, critical=critical)
    repository, more = repository_status(desired)
    return UpstreamPeers(desired, parent, repository, problems + more)
