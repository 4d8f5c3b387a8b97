"""Build the status report from what is published, the plan and the audit log.

Everything is read back from the publication point (the only state there is): expiry times are those
relying parties see, not what the last apply meant to write. The plan says what drifted and what is
merely due; the audit log says when an apply last published.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from reconciler import health, layout
from reconciler.apply import audit
from reconciler.desired.model import CaIntent, DesiredState
from reconciler.health import Finding
from reconciler.plan.diff import desired_roas, repaired
from reconciler.plan.model import Change, Kind, Plan, Reason, Severity
from reconciler.plan.rollover import KeyIds
from reconciler.published.memo import RoaSummary
from reconciler.published.reader import PublishedState, SignedManifest
from reconciler.rpki import cert as rc
from reconciler.rpki import crl, kinds
from reconciler.rpki.router import RouterCertificate
from reconciler.status import peers, upstream
from reconciler.status.model import (
    CaStatus,
    KeyStatus,
    LastApply,
    ObjectKind,
    ObjectTimes,
    Problem,
    StatusReport,
)


def _depths(desired: DesiredState) -> list[tuple[CaIntent, int]]:
    """The CAs depth-first from the trust anchor, so that a listing reads as the tree."""
    ordered: list[tuple[CaIntent, int]] = []

    def visit(ca: CaIntent, depth: int) -> None:
        ordered.append((ca, depth))
        for child in sorted(desired.children(ca.name), key=lambda c: c.name):
            visit(child, depth + 1)

    for root in desired.cas:
        if root.parent is None:  # the trust anchor; or the CAs under an external parent, one per class
            visit(root, 0)
    return ordered


def object_times(
    desired: DesiredState, published: PublishedState, ca: CaIntent, generation: int, key: bytes | None
) -> list[ObjectTimes]:
    """When the CA's certificate, manifest, CRL and soonest ROA expire, and when apply renews them."""
    timing = desired.timing
    cert_renew = timing.ta_certificate_renew_before if ca.trust_anchor else timing.certificate_renew_before
    _, point_renew = timing.point_validity(ca.trust_anchor)
    found: list[ObjectTimes] = []
    cert_path = layout.certificate_path(ca, generation)
    certificate = published.certificate(cert_path)
    if isinstance(certificate, rc.ResourceCertificate):
        found.append(
            ObjectTimes(
                kind=ObjectKind.CERTIFICATE,
                path=cert_path,
                expires=certificate.not_after,
                renew_at=certificate.not_after - cert_renew,
            )
        )
    repo = layout.repository(ca.name)
    if key is not None:
        mft_path = repo + layout.manifest_name(key)
        mft = published.manifest(mft_path)
        if isinstance(mft, SignedManifest):
            ends = mft.content.next_update
            found.append(
                ObjectTimes(
                    kind=ObjectKind.MANIFEST, path=mft_path, expires=ends, renew_at=ends - point_renew
                )
            )
        crl_path = repo + layout.crl_name(key)
        found_crl = published.crl(crl_path)
        if isinstance(found_crl, crl.Crl):
            ends = found_crl.next_update
            found.append(
                ObjectTimes(kind=ObjectKind.CRL, path=crl_path, expires=ends, renew_at=ends - point_renew)
            )
    soonest: tuple[datetime, str] | None = None
    for path in _roa_paths(published, repo):
        roa = published.roa_summary(path)
        if isinstance(roa, RoaSummary) and (soonest is None or roa.not_after < soonest[0]):
            soonest = (roa.not_after, path)
    if soonest is not None:
        found.append(
            ObjectTimes(
                kind=ObjectKind.ROA,
                path=soonest[1],
                expires=soonest[0],
                renew_at=soonest[0] - timing.certificate_renew_before,
            )
        )
    found += _soonest_others(published, repo, timing.certificate_renew_before)
    return sorted(found, key=lambda o: (o.expires, o.kind.value))


def _soonest_others(published: PublishedState, repo: str, renew: timedelta) -> list[ObjectTimes]:
    """The soonest-expiring ASPA and router certificate of a CA's directory (they are few: read whole)."""
    soonest: dict[ObjectKind, tuple[datetime, str]] = {}
    for name in published.under(repo):
        path, ends, kind = repo + name, None, None
        if kinds.of(name) is kinds.ASPA:
            item = published.signed(path)
            if isinstance(item, kinds.Signed):
                ends, kind = item.signed.ee.not_after, ObjectKind.ASPA
        elif layout.is_router_name(name):
            cert = published.router(path)
            if isinstance(cert, RouterCertificate):
                ends, kind = cert.not_after, ObjectKind.ROUTER
        if kind is not None and ends is not None and (kind not in soonest or ends < soonest[kind][0]):
            soonest[kind] = (ends, path)
    return [
        ObjectTimes(kind=kind, path=path, expires=ends, renew_at=ends - renew)
        for kind, (ends, path) in soonest.items()
    ]


def _roa_paths(published: PublishedState, repo: str) -> list[str]:
    return [repo + name for name in published.under(repo) if name.endswith(".roa")]


def _published_vrps(published: PublishedState, repo: str, damaged: frozenset[str]) -> tuple[int, int]:
    """ROA objects and the VRPs they make, in one CA's directory; ROAs the plan repairs (relying
    parties reject them) make none."""
    objects = 0
    vrps: set[tuple[int, str, int]] = set()
    for path in _roa_paths(published, repo):
        if path in damaged:
            continue
        roa = published.roa_summary(path)
        if isinstance(roa, RoaSummary):
            objects += 1
            vrps |= roa.vrps
    return objects, len(vrps)


def _drift(changes: list[Change]) -> tuple[int, int, int]:
    """(scheduled renewals, drift, drift that needs review) among one CA's changes."""
    scheduled = sum(1 for c in changes if c.scheduled or c.roll)
    drift = [c for c in changes if not (c.scheduled or c.roll)]
    return scheduled, len(drift), sum(1 for c in drift if not c.routine)


def _problems(findings: list[Finding], ca: str) -> list[Problem]:
    return [Problem(severity=f.severity.value, message=f.message) for f in findings if f.ca == ca]


def last_apply(entries: list[audit.AuditEntry]) -> tuple[LastApply | None, datetime | None]:
    """The newest apply (an interrupted one included) and the time of the newest one that published;
    what ``rpkictl serve`` records (a publisher's publication, a child's issue or revoke) is no apply."""
    shown = [(e, r) for e, r in audit.outcomes(entries) if not peers.served_record(r)]
    success = next(
        (entry.time for entry, record in reversed(shown) if record.get("status") == "applied"), None
    )
    if not shown:
        return None, success
    entry, record = shown[-1]
    latest = LastApply(
        time=entry.time,
        status=str(record.get("status")),
        who=record.get("who"),
        git_commit=record.get("git_commit"),
        plan_id=record.get("plan_id"),
        summary=record.get("summary"),
    )
    return latest, success


def collect(
    desired: DesiredState,
    published: PublishedState,
    the_plan: Plan,
    keys: KeyIds,
    *,
    now: datetime,
    warn: timedelta,
    critical: timedelta,
    tool_version: str,
    git_commit: str | None,
    signing_request: str | None,
) -> StatusReport:
    findings: list[Finding] = []
    cas: list[CaStatus] = []
    by_ca: dict[str, list[Change]] = {}
    for change in the_plan.changes:
        by_ca.setdefault(change.ca, []).append(change)
    damaged = repaired(the_plan.changes)
    external = upstream.peers_status(desired, now=now, warn=warn, critical=critical)
    for ca, depth in _depths(desired):
        key_plan = the_plan.key_plans.get(ca.name)
        generation = key_plan.active if key_plan is not None else 1
        key = keys.get(ca.name, {}).get(generation)
        objects = object_times(desired, published, ca, generation, key)
        ca_findings = external.object_findings(ca, key, objects, now, warn=warn, critical=critical)
        changes = by_ca.get(ca.name, [])
        scheduled, drift, review = _drift(changes)
        if drift:
            ca_findings.append(health.drift_finding(ca.name, drift, review))
        repairs = [c.address for c in changes if c.repair]
        if repairs:
            ca_findings.append(health.damage_finding(ca.name, repairs))
        dated = [c.address for c in changes if c.cause is Reason.FUTURE_DATED]
        if dated:
            ca_findings.append(health.future_finding(ca.name, dated))
        findings += ca_findings
        repo = layout.repository(ca.name)
        roa_objects, vrps = _published_vrps(published, repo, damaged)
        wanted = desired_roas(ca, desired.roa_grouping, published)
        signer = desired.signers[ca.signer]
        cas.append(
            CaStatus(
                name=ca.name,
                parent=ca.parent,
                trust_anchor=ca.trust_anchor,
                depth=depth,
                children=sorted(c.name for c in desired.children(ca.name)),
                resources={
                    "asn": str(ca.resources.asn) if ca.resources.asn else "",
                    "ipv4": str(ca.resources.ipv4) if ca.resources.ipv4 else "",
                    "ipv6": str(ca.resources.ipv6) if ca.resources.ipv6 else "",
                },
                roas_desired=len(ca.roas),
                roa_objects=roa_objects,
                vrps=vrps,
                vrps_desired=len({v for content in wanted.values() for v in content.vrps}),
                key=KeyStatus(
                    signer=ca.signer,
                    signer_type=signer.type,
                    key_id=key.hex() if key is not None else None,
                    generation=generation,
                    roll_phase=key_plan.phase.value if key_plan and key_plan.phase else None,
                    roll_due=key_plan.due if key_plan else None,
                ),
                manifest_number=_manifest_number(published, repo, key),
                objects=objects,
                renewals_due=scheduled,
                drift=drift,
                drift_review=review,
                changes=[f"{c.action.value} {c.address}" for c in changes],
                problems=[],
            )
        )
    findings += health.notice_findings(external.notices(the_plan.notices))
    names = {ca.name for ca in desired.cas}
    for owner in sorted({c.ca for c in the_plan.changes if c.ca not in names and c.kind is Kind.FILE}):
        outside = [c for c in the_plan.changes if c.ca == owner]
        repairs = [c.address for c in outside if c.repair]
        if repairs:
            findings.append(health.damage_finding(owner, repairs))
        if len(repairs) < len(outside):  # a removed publisher's directory: withdrawn after approval
            review = sum(1 for c in outside if not (c.repair or c.routine))
            findings.append(health.drift_finding(owner, len(outside) - len(repairs), review))
    general = [c for c in the_plan.changes if c.kind is Kind.RRDP]
    if general:
        findings.append(Finding(Severity.WARNING, "(rrdp)", f"{general[0].reason}; run 'rpkictl apply'"))
    cas = [ca.model_copy(update={"problems": _problems(findings, ca.name)}) for ca in cas]
    entries, audit_problem = _audit_entries(desired)
    if audit_problem is not None:
        findings.append(audit_problem)
    latest, success = last_apply(entries)
    children, serve_problems = peers.children_status(
        desired, published, the_plan, entries, now=now, critical=critical
    )
    findings += serve_problems + external.findings
    publishers = peers.publishers_status(desired, published, entries)
    problems = [p for c in children for p in c.problems] + [p for q in publishers for p in q.problems]
    problems += external.problems()
    severities = [Severity(p.severity) for p in problems]
    return StatusReport(
        generated_at=now,
        tool_version=tool_version,
        repo=str(desired.root),
        desired_digest=desired.digest,
        git_commit=git_commit,
        rsync_base=desired.publication.rsync_base,
        rrdp_base=desired.publication.rrdp_base,
        publication_directory=str(desired.publication.directory),
        severity=health.worst([*findings, *(Finding(level, "", "") for level in severities)]).value,
        problems=[
            Problem(severity=f.severity.value, message=f"{f.ca}: {f.message}")
            for f in findings
            if f.ca not in names
        ],
        cas=cas,
        gates=[gate.id for gate in the_plan.gates],
        signing_request=signing_request,
        last_apply=latest,
        last_success=success,
        external_children=children,
        publishers=publishers,
        external_parent=external.parent,
        remote_repository=external.repository,
    )


def _manifest_number(published: PublishedState, repo: str, key: bytes | None) -> int | None:
    if key is None:
        return None
    mft = published.manifest(repo + layout.manifest_name(key))
    return mft.content.number if isinstance(mft, SignedManifest) else None


def _audit_entries(desired: DesiredState) -> tuple[list[audit.AuditEntry], Finding | None]:
    try:
        return audit.read(desired.audit_log_path), None
    except (audit.AuditError, OSError) as exc:
        return [], Finding(Severity.WARNING, "(audit log)", f"cannot read the audit log: {exc}")
