"""The status report in Prometheus' text exposition format, for node_exporter's textfile collector.

Times are exported as Unix timestamps, never as "seconds left" or an "ok" flag: an alert written as
``rpki_object_expiry_timestamp_seconds - time() < 4 * 3600`` keeps firing correctly even when this
file stops being refreshed, whereas a cached "ready" flag would stay green while the CA dies.
``rpki_status_generated_timestamp_seconds`` lets an alert catch the refresh itself stopping.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from reconciler.status.model import ExchangeError, StatusReport

SEVERITY_VALUE = {"info": 0, "warning": 1, "critical": 2}

Sample = tuple[dict[str, str], float]


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(labels: dict[str, str]) -> str:
    if not labels:
        return ""
    return "{" + ",".join(f'{name}="{_escape(value)}"' for name, value in labels.items()) + "}"


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(value)


def _ts(moment: datetime) -> float:
    return moment.timestamp()


class _Writer:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def gauge(self, name: str, help_text: str, samples: Iterable[Sample]) -> None:
        samples = list(samples)
        if not samples:
            return
        self.lines.append(f"# HELP {name} {help_text}")
        self.lines.append(f"# TYPE {name} gauge")
        self.lines.extend(f"{name}{_labels(labels)} {_number(value)}" for labels, value in samples)


def render(report: StatusReport) -> str:
    w = _Writer()
    cas = report.cas
    w.gauge(
        "rpki_status_generated_timestamp_seconds",
        "When this status was computed; alert when it stops moving (the collector job is down).",
        [({}, _ts(report.generated_at))],
    )
    w.gauge(
        "rpki_status_severity",
        "Worst problem found, as rpkictl check exits: 0 ok, 1 warning, 2 critical.",
        [({}, SEVERITY_VALUE[report.severity])],
    )
    w.gauge(
        "rpki_ca_info",
        "One per CA: its parent, signer and active key.",
        [
            (
                {
                    "ca": ca.name,
                    "parent": ca.parent or "",
                    "signer": ca.key.signer,
                    "signer_type": ca.key.signer_type,
                    "key_id": ca.key.key_id or "",
                    "generation": str(ca.key.generation),
                    "roll_phase": ca.key.roll_phase or "",
                },
                1,
            )
            for ca in cas
        ],
    )
    w.gauge(
        "rpki_object_expiry_timestamp_seconds",
        "When relying parties stop accepting the object: certificate/ROA notAfter (the soonest ROA), "
        "manifest/CRL nextUpdate.",
        [({"ca": ca.name, "kind": o.kind.value}, _ts(o.expires)) for ca in cas for o in ca.objects],
    )
    w.gauge(
        "rpki_object_next_update_timestamp_seconds",
        "The nextUpdate of each CA's published manifest and CRL.",
        [
            ({"ca": ca.name, "kind": o.kind.value}, _ts(o.expires))
            for ca in cas
            for o in ca.objects
            if o.kind.value in ("manifest", "crl")
        ],
    )
    w.gauge(
        "rpki_object_renewal_timestamp_seconds",
        "When apply (or reconcile) re-signs the object: expiry minus its renew_before.",
        [({"ca": ca.name, "kind": o.kind.value}, _ts(o.renew_at)) for ca in cas for o in ca.objects],
    )
    w.gauge(
        "rpki_manifest_number",
        "The number of each CA's published manifest.",
        [({"ca": ca.name}, ca.manifest_number) for ca in cas if ca.manifest_number is not None],
    )
    w.gauge("rpki_roa_objects", "ROA objects published.", [({"ca": ca.name}, ca.roa_objects) for ca in cas])
    w.gauge("rpki_vrps", "VRPs the published ROAs make.", [({"ca": ca.name}, ca.vrps) for ca in cas])
    w.gauge(
        "rpki_desired_vrps",
        "VRPs the desired state asks for.",
        [({"ca": ca.name}, ca.vrps_desired) for ca in cas],
    )
    w.gauge(
        "rpki_drift_changes",
        "Changes between desired and published that are not scheduled renewals.",
        [({"ca": ca.name}, ca.drift) for ca in cas],
    )
    w.gauge(
        "rpki_drift_review_changes",
        "Of the drift, changes that wait for a reviewed apply (reconcile does not apply them).",
        [({"ca": ca.name}, ca.drift_review) for ca in cas],
    )
    w.gauge(
        "rpki_renewals_due",
        "Scheduled renewals the next apply makes.",
        [({"ca": ca.name}, ca.renewals_due) for ca in cas],
    )
    w.gauge(
        "rpki_problems",
        "Problems rpkictl check reports, by severity.",
        [({"severity": level}, _count(report, level)) for level in ("warning", "critical")],
    )
    w.gauge("rpki_gates_waiting", "Approval gates the current plan trips.", [({}, len(report.gates))])
    w.gauge(
        "rpki_signing_request_waiting",
        "1 while a request waits for the offline trust anchor's signature.",
        [({}, 1 if report.signing_request else 0)],
    )
    if report.last_apply is not None:
        w.gauge(
            "rpki_last_apply_timestamp_seconds",
            "Time of the newest apply record, labelled with its outcome.",
            [({"status": report.last_apply.status.split(" ")[0]}, _ts(report.last_apply.time))],
        )
    if report.last_success is not None:
        w.gauge(
            "rpki_last_successful_apply_timestamp_seconds",
            "Time of the newest apply that published.",
            [({}, _ts(report.last_success))],
        )
    _peers(w, report)
    _upstream(w, report)
    return "\n".join(w.lines) + "\n"


def _peers(w: _Writer, report: StatusReport) -> None:
    """External children (RFC 6492) and publishers (RFC 8181): only written when some are declared."""
    children = report.external_children
    w.gauge(
        "rpki_external_child_certificates",
        "Certificates a CA issued to each external child, as published (0: it has not asked yet).",
        [({"ca": c.ca, "child": c.handle}, len(c.certificates)) for c in children],
    )
    w.gauge(
        "rpki_external_child_certificate_expiry_timestamp_seconds",
        "notAfter of each certificate issued to an external child, by the child's key.",
        [
            ({"ca": c.ca, "child": c.handle, "key_id": cert.key_id}, _ts(cert.not_after))
            for c in children
            for cert in c.certificates
        ],
    )
    w.gauge(
        "rpki_external_child_certificate_renewal_timestamp_seconds",
        "When apply (or reconcile) renews each certificate issued to an external child.",
        [
            ({"ca": c.ca, "child": c.handle, "key_id": cert.key_id}, _ts(cert.renew_at))
            for c in children
            for cert in c.certificates
        ],
    )
    w.gauge(
        "rpki_external_child_last_request_timestamp_seconds",
        "When each external child was last heard from: its last accepted RFC 6492 message (signing "
        "time) or recorded issue/revoke, whichever is newer.",
        [({"ca": c.ca, "child": c.handle}, _ts(c.last_request)) for c in children if c.last_request],
    )
    publishers = report.publishers
    w.gauge(
        "rpki_publisher_objects",
        "Objects each external publisher publishes in the repository.",
        [({"publisher": p.handle}, p.objects) for p in publishers],
    )
    w.gauge(
        "rpki_publisher_bytes",
        "Total size of each external publisher's objects.",
        [({"publisher": p.handle}, p.bytes) for p in publishers],
    )
    w.gauge(
        "rpki_publisher_quota_objects",
        "The most objects each publisher may publish (rpki.yaml publishers: quota).",
        [({"publisher": p.handle}, p.quota_objects) for p in publishers],
    )
    w.gauge(
        "rpki_publisher_quota_bytes",
        "The most bytes each publisher's objects may take together.",
        [({"publisher": p.handle}, p.quota_bytes) for p in publishers],
    )
    w.gauge(
        "rpki_publisher_quota_used_ratio",
        "The larger of objects/quota and bytes/quota, 0 to 1 (above 1 after a quota was lowered).",
        [
            ({"publisher": p.handle}, max(p.objects / p.quota_objects, p.bytes / p.quota_bytes))
            for p in publishers
        ],
    )
    w.gauge(
        "rpki_publisher_last_publication_timestamp_seconds",
        "Time of each publisher's newest publication recorded in the audit log.",
        [({"publisher": p.handle}, _ts(p.last_publication)) for p in publishers if p.last_publication],
    )


def _error_code(error: ExchangeError | None) -> int:
    if error is None:
        return 0
    return error.code if error.code is not None else -1


def _upstream(w: _Writer, report: StatusReport) -> None:
    """The external parent (RFC 6492) and the remote repository (RFC 8181), from the state kept between
    runs: only written for a CA under an external parent, or one publishing at a remote repository."""
    parent = report.external_parent
    found = [parent] if parent is not None else []
    labels = [({"ca": p.ca, "parent": p.handle}, p) for p in found]
    w.gauge(
        "rpki_parent_last_success_timestamp_seconds",
        "When the last exchange with the external parent succeeded.",
        [(key, _ts(p.last_success)) for key, p in labels if p.last_success],
    )
    w.gauge(
        "rpki_parent_last_attempt_timestamp_seconds",
        "When the external parent was last asked, whatever the outcome.",
        [(key, _ts(p.last_attempt)) for key, p in labels if p.last_attempt],
    )
    w.gauge(
        "rpki_parent_next_contact_timestamp_seconds",
        "When the reconcile loop asks the external parent again.",
        [(key, _ts(p.next_contact)) for key, p in labels if p.next_contact],
    )
    w.gauge(
        "rpki_parent_failures",
        "Failed exchanges with the external parent in a row (0: the last one succeeded).",
        [(key, p.failures) for key, p in labels],
    )
    w.gauge(
        "rpki_parent_last_error_code",
        "The RFC 6492 error code of the last failed exchange with the external parent: 0 none, -1 a "
        "failure without a code (transport, CMS, a refusal of ours).",
        [(key, _error_code(p.last_error)) for key, p in labels],
    )
    w.gauge(
        "rpki_parent_certificates",
        "1 while a certificate from the external parent is kept for the CA's key, 0 while there is none.",
        [(key, 1 if p.certificate is not None else 0) for key, p in labels],
    )
    w.gauge(
        "rpki_parent_certificate_expiry_timestamp_seconds",
        "notAfter of the certificate the external parent issued for the CA's key, per resource class.",
        [
            ({**key, "class": c.class_name}, _ts(c.not_after))
            for key, p in labels
            for c in ((p.certificate, *p.other_certificates) if p.certificate is not None else ())
            if c.not_after is not None
        ],
    )
    w.gauge(
        "rpki_parent_entitlement_expiry_timestamp_seconds",
        "The end of each resource class the external parent lists: no certificate in it ends later.",
        [({**key, "class": e.class_name}, _ts(e.not_after)) for key, p in labels for e in p.entitlements],
    )
    w.gauge(
        "rpki_parent_entitlement_pending",
        "1 while what the external parent entitles the CA to differs from what its certificate holds.",
        [(key, 1 if p.entitlement_pending else 0) for key, p in labels],
    )
    repository = report.remote_repository
    remote = [({"ca": repository.ca, "repository": repository.service_uri}, repository)] if repository else []
    w.gauge(
        "rpki_repository_last_success_timestamp_seconds",
        "When the last exchange with the remote repository succeeded.",
        [(key, _ts(r.last_success)) for key, r in remote if r.last_success],
    )
    w.gauge(
        "rpki_repository_failures",
        "Failed exchanges with the remote repository in a row (0: the last one succeeded).",
        [(key, r.failures) for key, r in remote],
    )
    w.gauge(
        "rpki_repository_objects",
        "Objects the remote repository held for us after the last exchange.",
        [(key, r.objects) for key, r in remote],
    )
    w.gauge(
        "rpki_repository_bytes",
        "Total size of the objects the remote repository held for us after the last exchange.",
        [(key, r.bytes) for key, r in remote],
    )
    w.gauge(
        "rpki_repository_last_sent_timestamp_seconds",
        "When the last message that changed something was sent to the remote repository.",
        [(key, _ts(r.last_sent.at)) for key, r in remote if r.last_sent is not None],
    )


def _count(report: StatusReport, level: str) -> int:
    return sum(1 for _, p in report.every_problem() if p.severity == level)
