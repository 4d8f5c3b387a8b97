"""The status of the CAs others run that depend on ours: external children (RFC 6492) and publishers
(RFC 8181).

What each child holds is read back from the served tree, as for our own CAs: the certificates in its
parent's directory are what relying parties see, whatever the YAML says. When a child was last heard
from comes from two places, because the responder writes an audit record only when it changes the tree
(an issue or a revoke) while a child polls with ``list`` far more often: the replay-protection file keeps
the signing time of every message accepted from each child, list included. A publisher's use of its
quota is counted from its part of the served tree (``PublishedState.foreign``), its last publication
from the audit log.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta

from reconciler import layout
from reconciler.apply import audit
from reconciler.desired.model import CaIntent, DesiredState, ExternalChild, Publisher
from reconciler.health import Finding
from reconciler.plan import external_children
from reconciler.plan.model import Action, Change, Gate, Plan, Severity
from reconciler.plan.wording import describe_delta
from reconciler.protocol.errors import ProtocolError
from reconciler.protocol.replay import ReplayGuard
from reconciler.published.reader import PublishedState
from reconciler.resources import Resources
from reconciler.rpki import cert as rc
from reconciler.status.model import (
    ChildCertificateStatus,
    ChildExchange,
    ExternalChildStatus,
    Problem,
    PublisherStatus,
)

#: The RFC 6492 responder's replay-protection file, below the publication directory: the same path as
#: ``reconciler.serve.parent.REPLAY_FILE``, named here so that a status never loads the HTTP server.
REPLAY_FILE = "serve/rfc6492-replay.json"
#: A publisher using more of its quota than this (percent) is a warning: the next publications fail.
QUOTA_WARNING_PCT = 90.0


def served_record(record: Mapping[str, object]) -> bool:
    """Whether an audit record is the responder's (a publication, a child's issue or revoke), not an
    apply's."""
    status = str(record.get("status", ""))
    return status == audit.PUBLISHED or status.startswith("child-")


def replay_times(desired: DesiredState, handles: Iterable[str]) -> tuple[dict[str, datetime], Finding | None]:
    """The signing time of the last message accepted from each child; a finding when the file cannot be
    read (the children's other columns are still shown)."""
    guard = ReplayGuard(desired.publication.directory / REPLAY_FILE)
    found: dict[str, datetime] = {}
    try:
        for handle in handles:
            last = guard.last(f"child:{handle}")
            if last is not None:
                found[handle] = last
    except ProtocolError as exc:
        return found, Finding(Severity.WARNING, "(rpkictl serve)", str(exc))
    return found, None


def _left(ends: datetime, now: datetime) -> str:
    left = ends - now
    if left < timedelta(0):
        return f"expired {describe_delta(-left)} ago ({ends:%Y-%m-%dT%H:%M:%SZ})"
    return f"expires in {describe_delta(left)} ({ends:%Y-%m-%dT%H:%M:%SZ})"


def _text(resources: Resources) -> str:
    return str(resources) if resources else "nothing"


class _Child:
    """One external child's certificates against the YAML and the plan."""

    def __init__(
        self,
        desired: DesiredState,
        published: PublishedState,
        the_plan: Plan,
        ca: CaIntent,
        child: ExternalChild,
        *,
        now: datetime,
        critical: timedelta,
    ) -> None:
        self.desired, self.published, self.plan = desired, published, the_plan
        self.ca, self.child, self.now, self.critical = ca, child, now, critical
        self.entitled = external_children.entitlement(ca, child)
        self.changes: dict[str, Change] = {c.path: c for c in the_plan.changes if c.subject == child.handle}
        self.problems: list[Problem] = []

    def note(self, severity: Severity, message: str) -> None:
        self.problems.append(Problem(severity=severity.value, message=message))

    def gates(self) -> list[Gate]:
        wanted = {f"ca-shrink@{self.child.handle}", f"ca-revoke@{self.child.handle}"}
        return [gate for gate in self.plan.gates if gate.id in wanted]

    def ca_end(self) -> datetime | None:
        """The end of the parent CA's published certificate (a child's certificate never outlives it)."""
        key_plan = self.plan.key_plans.get(self.ca.name)
        generation = key_plan.active if key_plan is not None else 1
        found = self.published.certificate(layout.certificate_path(self.ca, generation))
        return found.not_after if isinstance(found, rc.ResourceCertificate) else None

    def issued(self) -> list[external_children.Issued]:
        """The child's readable certificates in the CA's directory (what relying parties see)."""
        found = []
        for item in external_children.child_certificates(self.published, self.ca.name, self.child.handle):
            cert = item.found
            if isinstance(cert, rc.ResourceCertificate):
                held = Resources() if cert.resources.inherit_ip or cert.resources.inherit_asn else None
                resources = held if held is not None else cert.resources.resources
                found.append(
                    external_children.Issued(item.path, cert.serial, cert.key_id, cert.not_after, resources)
                )
        return found

    def check_expiry(self, issued: external_children.Issued) -> None:
        renew = self.desired.timing.certificate_renew_before
        left = issued.not_after - self.now
        if left >= renew:
            return
        severity = Severity.CRITICAL if left < self.critical else Severity.WARNING
        what = (
            f"certificate for key {issued.key_id.hex()} (serial {issued.serial:x}) "
            f"{_left(issued.not_after, self.now)}"
        )
        change = self.changes.get(issued.path)
        ca_end = self.ca_end()
        if change is not None and change.action in (Action.RENEW, Action.REISSUE):
            todo = "not renewed yet: 'rpkictl apply' (or the scheduled 'rpkictl reconcile') renews it; run it"
        elif ca_end is not None and ca_end <= issued.not_after:
            todo = (
                f"it cannot be renewed beyond the certificate of {self.ca.name}, which ends "
                f"{ca_end:%Y-%m-%dT%H:%M:%SZ}: renew that one first ('rpkictl apply'; below an offline "
                "trust anchor, its signing ceremony)"
            )
        else:
            todo = "not renewed: 'rpkictl plan' shows what apply does with it"
        self.note(severity, f"{what}, inside the renewal window of {describe_delta(renew)}: {todo}")

    def check_entitlement(self, issued: external_children.Issued) -> None:
        have = issued.resources
        if not have:
            return  # inherits: never issued by this tree, and the plan withdraws it as such
        lost = have.subtract(self.entitled)
        gained = self.entitled.subtract(have)
        key = issued.key_id.hex()
        if lost:
            change = self.changes.get(issued.path)
            if change is not None and change.action is Action.REISSUE:
                kept = external_children.intersection(have, self.entitled)
                todo = f"the next apply re-issues it with {_text(kept)}"
            elif change is not None and change.action in (Action.REVOKE, Action.WITHDRAW):
                todo = "the next apply revokes it"
            else:
                todo = "'rpkictl plan' shows what apply does with it"
            gates = self.gates()
            if gates:
                todo += f", once approved ({', '.join(g.id for g in gates)})"
            if gained:
                todo += f"; it gets {gained}, newly entitled, when it next asks for a certificate"
            self.note(
                Severity.WARNING,
                f"its certificate for key {key} holds {lost}, beyond its entitlement in the YAML "
                f"({_text(self.entitled)}): {todo}",
            )
        elif gained:
            self.note(
                Severity.INFO,
                f"entitled to {gained} that its certificate for key {key} does not hold: the child gets "
                "them when it next asks for a certificate (apply does not re-issue to add resources)",
            )

    def status(
        self, last_message: datetime | None, last_exchange: ChildExchange | None
    ) -> ExternalChildStatus:
        renew = self.desired.timing.certificate_renew_before
        certificates = []
        issued_all = sorted(self.issued(), key=lambda i: (i.not_after, i.path))
        for issued in issued_all:
            self.check_expiry(issued)
            self.check_entitlement(issued)
            certificates.append(
                ChildCertificateStatus(
                    path=issued.path,
                    key_id=issued.key_id.hex(),
                    serial=f"{issued.serial:x}",
                    not_after=issued.not_after,
                    renew_at=issued.not_after - renew,
                    resources=str(issued.resources),
                )
            )
        if not certificates:
            self.note(
                Severity.INFO,
                f"no certificate issued yet: the child has not asked ({self.ca.name}'s parent_response, "
                f"from 'rpkictl oob parent-response {self.ca.name} {self.child.handle}', tells it where to)",
            )
        times = [t for t in (last_message, last_exchange.time if last_exchange else None) if t is not None]
        return ExternalChildStatus(
            handle=self.child.handle,
            ca=self.ca.name,
            entitlement=str(self.entitled),
            certificates=certificates,
            last_message=last_message,
            last_exchange=last_exchange,
            last_request=max(times, default=None),
            problems=self.problems,
        )


def _last_exchanges(entries: list[audit.AuditEntry]) -> dict[str, ChildExchange]:
    found: dict[str, ChildExchange] = {}
    for entry in entries:
        record = entry.record
        handle = record.get("child")
        status = str(record.get("status", ""))
        if isinstance(handle, str) and status.startswith("child-"):
            certificate = record.get("certificate")
            summary = record.get("summary")
            found[handle] = ChildExchange(
                time=entry.time,
                status=status,
                certificate=certificate if isinstance(certificate, str) else None,
                summary=summary if isinstance(summary, str) else None,
            )
    return found


def children_status(
    desired: DesiredState,
    published: PublishedState,
    the_plan: Plan,
    entries: list[audit.AuditEntry],
    *,
    now: datetime,
    critical: timedelta,
) -> tuple[list[ExternalChildStatus], list[Finding]]:
    """Every declared external child, in the order of the CA files; and the findings of no single child
    (the replay-protection file unreadable)."""
    declared = [(ca, child) for ca in desired.cas for child in ca.children]
    if not declared:
        return [], []
    messages, problem = replay_times(desired, [child.handle for _, child in declared])
    exchanges = _last_exchanges(entries)
    found = [
        _Child(desired, published, the_plan, ca, child, now=now, critical=critical).status(
            messages.get(child.handle), exchanges.get(child.handle)
        )
        for ca, child in declared
    ]
    return found, [problem] if problem is not None else []


def human_size(size: int) -> str:
    """``1.5 MiB``: a byte count for people."""
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{size} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def publisher_status(
    desired: DesiredState, published: PublishedState, publisher: Publisher, entries: list[audit.AuditEntry]
) -> PublisherStatus:
    directory = layout.publisher_repository(publisher.handle)
    held = [data for path, data in published.foreign.items() if path.startswith(directory)]
    size = sum(len(data) for data in held)
    quota = publisher.quota
    used = max(len(held) / quota.objects, size / quota.size) * 100
    last = next(
        (
            e
            for e in reversed(entries)
            if e.record.get("status") == audit.PUBLISHED and e.record.get("publisher") == publisher.handle
        ),
        None,
    )
    problems = []
    if used > QUOTA_WARNING_PCT:
        state = "is over its quota" if used > 100 else f"uses {used:.0f}% of its quota"
        refused = (
            "publications that add to it are refused until it withdraws objects (a quota lowered below "
            "what it holds)"
            if used > 100
            else "publications that take it over the quota are refused"
        )
        problems.append(
            Problem(
                severity=Severity.WARNING.value,
                message=f"{state}: {len(held)} of {quota.objects} objects, {human_size(size)} of "
                f"{human_size(quota.size)}; {refused}. Raise its quota in rpki.yaml (publishers: quota) "
                "and restart 'rpkictl serve', or ask its operator to withdraw objects",
            )
        )
    summary = last.record.get("summary") if last is not None else None
    return PublisherStatus(
        handle=publisher.handle,
        sia_base=publisher.sia_base,
        objects=len(held),
        bytes=size,
        quota_objects=quota.objects,
        quota_bytes=quota.size,
        quota_used_pct=round(used, 1),
        last_publication=last.time if last is not None else None,
        last_summary=summary if isinstance(summary, str) else None,
        problems=problems,
    )


def publishers_status(
    desired: DesiredState, published: PublishedState, entries: list[audit.AuditEntry]
) -> list[PublisherStatus]:
    """Every declared publisher, in rpki.yaml's order."""
    return [publisher_status(desired, published, p, entries) for p in desired.publishers]
