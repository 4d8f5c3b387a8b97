"""The status report: what each CA holds and publishes, when each of its objects expires and is renewed,
what drifted, and the last apply -- one document behind every ``rpkictl status`` format.

It is a versioned JSON document (``--format json``) for tools; the table, the Prometheus textfile and
the HTML report are renderings of it, so they can never disagree.
"""

from __future__ import annotations

import json
from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

STATUS_FORMAT_VERSION = "1.0"


class _Doc(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ObjectKind(StrEnum):
    CERTIFICATE = "certificate"  # the CA's own resource certificate, published by its parent
    MANIFEST = "manifest"
    CRL = "crl"
    ROA = "roa"  # the soonest-expiring ROA of the CA
    ASPA = "aspa"  # the soonest-expiring ASPA of the CA
    ROUTER = "router"  # the soonest-expiring router certificate of the CA


class ObjectTimes(_Doc):
    """When one published object stops being valid, and when ``apply`` renews it."""

    kind: ObjectKind
    path: str = Field(description="Relative to the rsync base.")
    expires: datetime = Field(
        description="notAfter (certificates, ROAs) or nextUpdate (manifests, CRLs): relying parties reject "
        "the object after it."
    )
    renew_at: datetime = Field(description="When apply (or reconcile) re-signs it: expires - renew_before.")


class KeyStatus(_Doc):
    signer: str
    signer_type: str
    key_id: str | None = Field(description="Hex SubjectKeyIdentifier of the active key; null: no key yet.")
    generation: int
    roll_phase: str | None = Field(description="staging, activating or cleanup during a key roll.")
    roll_due: datetime | None = Field(description="When the roll's next step happens.")


class Problem(_Doc):
    severity: str = Field(description="info, warning or critical (the 'rpkictl check' convention).")
    message: str = Field(description="What is wrong and what to do.")


class CaStatus(_Doc):
    name: str
    parent: str | None
    trust_anchor: bool
    depth: int = Field(description="0 for the trust anchor, 1 for its children, ...")
    children: list[str]
    resources: dict[str, str] = Field(description="asn, ipv4, ipv6 as held (from the desired state).")
    roas_desired: int = Field(description="ROA entries in the desired state.")
    roa_objects: int = Field(description="ROA objects published in the CA's directory.")
    vrps: int = Field(description="VRPs the published ROAs make.")
    vrps_desired: int
    key: KeyStatus
    manifest_number: int | None
    objects: list[ObjectTimes] = Field(
        description="Expiry and renewal of each kind of object, soonest first."
    )
    renewals_due: int = Field(description="Scheduled renewals the next apply makes (nothing drifted).")
    drift: int = Field(description="Changes that are not scheduled renewals: published differs from desired.")
    drift_review: int = Field(description="Of the drift, changes that need a reviewed apply (not routine).")
    changes: list[str] = Field(description="What the next apply would do for this CA (action address).")
    problems: list[Problem]


class ChildCertificateStatus(_Doc):
    """One certificate a CA issued to an external child, as the served tree holds it."""

    path: str = Field(description="Relative to the rsync base.")
    key_id: str = Field(description="Hex SubjectKeyIdentifier of the child's key it certifies.")
    serial: str = Field(description="Serial number (hex).")
    not_after: datetime
    renew_at: datetime = Field(
        description="When apply (or reconcile) renews it: not_after - certificate_renew_before."
    )
    resources: str = Field(description="The resources it holds.")


class ChildExchange(_Doc):
    """The newest issue or revoke the parent responder recorded for a child in the audit log."""

    time: datetime
    status: str = Field(description="child-issued, child-revoked, or either with -failed.")
    certificate: str | None = Field(description="The certificate's path, relative to the rsync base.")
    summary: str | None


class ExternalChildStatus(_Doc):
    handle: str
    ca: str = Field(description="The parent CA that certifies it over RFC 6492.")
    entitlement: str = Field(description="Its resources in the YAML, as far as the CA holds them.")
    certificates: list[ChildCertificateStatus] = Field(
        description="What the CA issued to it (one per key of the child), soonest expiry first."
    )
    last_message: datetime | None = Field(
        description="Signing time of the last message accepted from it (list, issue or revoke), from the "
        "responder's replay-protection file; null: none yet."
    )
    last_exchange: ChildExchange | None = Field(
        description="The newest issue or revoke recorded in the audit log (a list is not recorded)."
    )
    last_request: datetime | None = Field(
        description="The newer of last_message and last_exchange's time: when it was last heard from."
    )
    problems: list[Problem]


class PublisherStatus(_Doc):
    handle: str
    sia_base: str
    objects: int = Field(description="Objects it publishes in the served tree.")
    bytes: int = Field(description="Their total size.")
    quota_objects: int
    quota_bytes: int
    quota_used_pct: float = Field(
        description="The larger of objects / quota_objects and bytes / quota_bytes, in percent (one decimal)."
    )
    last_publication: datetime | None = Field(description="Its newest publication in the audit log.")
    last_summary: str | None = Field(description="What that publication did (created, replaced, withdrawn).")
    problems: list[Problem]


class ExchangeError(_Doc):
    """The last failed exchange with the external parent or the remote repository (cleared by a success)."""

    code: int | None = Field(
        description="The RFC 6492 error code the parent sent; null: none (transport, CMS, a refusal of ours)."
    )
    text: str
    at: datetime
    description: str = Field(description="Code, text and time in one line, as 'rpkictl check' shows it.")


class ParentCertificate(_Doc):
    """The certificate the external parent issued for the CA's key, as kept from its last list_response."""

    class_name: str = Field(description="The RFC 6492 resource class it was issued in.")
    uri: str = Field(description="Where the parent publishes it (the AIA of what the CA signs).")
    not_after: datetime | None = Field(description="null: the kept certificate cannot be read.")
    resources: str = Field(description="The resources it certifies.")


class Entitlement(_Doc):
    """One resource class of the parent's last list_response: what the CA may be certified for."""

    class_name: str
    resources: str
    not_after: datetime = Field(description="The class's end: no certificate in it can end later.")


class ExternalParentStatus(_Doc):
    """The RFC 6492 parent run by someone else that certifies the CA, from the state kept between runs
    (``<publication directory>/upstream/<ca>.json``): nothing is asked over the network."""

    ca: str = Field(description="The CA it certifies.")
    handle: str = Field(description="The parent's handle (parent_response).")
    child_handle: str = Field(description="Our handle at the parent.")
    service_uri: str
    last_success: datetime | None = Field(description="The last exchange that succeeded; null: never.")
    last_attempt: datetime | None
    failures: int = Field(description="Failed exchanges in a row since the last success.")
    last_error: ExchangeError | None
    next_contact: datetime | None = Field(description="When the reconcile loop asks the parent again.")
    listed_at: datetime | None = Field(description="When its kept list_response was received.")
    certificate: ParentCertificate | None = Field(description="null: the parent has issued none for our key.")
    other_certificates: list[ParentCertificate] = Field(
        default_factory=list,
        description="The certificates of the CAs of its further resource classes ('<ca>_class-<class>').",
    )
    entitlements: list[Entitlement] = Field(description="The resource classes of its last list_response.")
    entitled_not_certified: str = Field(
        description="What the classes grant that the certificate does not hold yet ('' when nothing)."
    )
    certified_not_entitled: str = Field(
        description="What the certificate holds that the classes no longer grant ('' when nothing)."
    )
    entitlement_pending: bool = Field(
        description="The entitlement changed and no certificate matching it was issued yet."
    )
    problems: list[Problem]


class SentMessage(_Doc):
    """The last RFC 8181 message that changed something at the remote repository."""

    publish: int
    withdraw: int
    bytes: int
    at: datetime


class RemoteRepositoryStatus(_Doc):
    """The RFC 8181 repository run by someone else where the CAs publish, from the kept state."""

    ca: str = Field(description="The CA whose BPKI identity the repository knows us by.")
    service_uri: str
    publisher_handle: str = Field(description="Our handle at the repository.")
    sia_base: str
    last_success: datetime | None
    last_attempt: datetime | None
    failures: int
    last_error: ExchangeError | None
    objects: int = Field(description="Objects it held for us after the last exchange.")
    bytes: int = Field(description="Their total size.")
    last_sent: SentMessage | None = Field(description="null: nothing sent yet.")
    problems: list[Problem]


class LastApply(_Doc):
    time: datetime
    status: str = Field(description="applied, failed, or interrupted (started, never finished).")
    who: str | None
    git_commit: str | None
    plan_id: str | None
    summary: str | None


class StatusReport(_Doc):
    format_version: str = STATUS_FORMAT_VERSION
    generated_at: datetime
    tool_version: str
    repo: str
    desired_digest: str
    git_commit: str | None
    rsync_base: str
    rrdp_base: str | None
    publication_directory: str
    severity: str = Field(description="The worst problem: info (none), warning or critical.")
    problems: list[Problem] = Field(description="Problems not tied to one CA (RRDP, audit log).")
    cas: list[CaStatus] = Field(description="Parents before children (depth-first), the trust anchor first.")
    gates: list[str] = Field(description="Approval gates the current plan trips (rule@CA).")
    signing_request: str | None = Field(description="Path of a request waiting for the offline trust anchor.")
    last_apply: LastApply | None
    last_success: datetime | None = Field(description="Time of the last apply that published.")
    external_children: list[ExternalChildStatus] = Field(
        default_factory=list,
        description="The external child CAs (RFC 6492) the CAs certify, in the order of the CA files.",
    )
    publishers: list[PublisherStatus] = Field(
        default_factory=list, description="The external publishers (RFC 8181) declared in rpki.yaml."
    )
    external_parent: ExternalParentStatus | None = Field(
        default=None, description="The parent run by someone else that certifies the root CA (RFC 6492)."
    )
    remote_repository: RemoteRepositoryStatus | None = Field(
        default=None, description="The repository run by someone else where the CAs publish (RFC 8181)."
    )

    def every_problem(self) -> list[tuple[str, Problem]]:
        """(CA name, problem) for each CA's problems; ("child <handle>", problem) and ("publisher
        <handle>", problem) for each external child's and publisher's; ("parent <handle>", problem) and
        ("repository <service URI>", problem) for the external parent's and the remote repository's; then
        ("", problem) for those of no single CA."""
        upstream: list[tuple[str, Problem]] = []
        if self.external_parent is not None:
            label = parent_label(self.external_parent.handle)
            upstream += [(label, p) for p in self.external_parent.problems]
        if self.remote_repository is not None:
            label = repository_label(self.remote_repository.service_uri)
            upstream += [(label, p) for p in self.remote_repository.problems]
        return (
            [(ca.name, p) for ca in self.cas for p in ca.problems]
            + [(child_label(c.handle), p) for c in self.external_children for p in c.problems]
            + [(publisher_label(p.handle), q) for p in self.publishers for q in p.problems]
            + upstream
            + [("", p) for p in self.problems]
        )


def child_label(handle: str) -> str:
    """How an external child is named where a CA name would stand (problems, ``rpkictl check``)."""
    return f"child {handle}"


def publisher_label(handle: str) -> str:
    return f"publisher {handle}"


def parent_label(handle: str) -> str:
    """How the external parent is named where a CA name would stand."""
    return f"parent {handle}"


def repository_label(service_uri: str) -> str:
    """How the remote repository is named where a CA name would stand: by its service URI, which is
    what its operator knows it by."""
    return f"repository {service_uri}"


def json_schema() -> dict[str, Any]:
    schema = StatusReport.model_json_schema()
    schema["$id"] = "https://rpki-reconciler.invalid/schemas/status.schema.json"
    schema["title"] = "rpki-reconciler status"
    return schema


if __name__ == "__main__":
    print(json.dumps(json_schema(), indent=2, sort_keys=True))
