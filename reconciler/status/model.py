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

    def every_problem(self) -> list[tuple[str, Problem]]:
        """(CA name, problem) for each CA's problems, then ("", problem) for those of no single CA."""
        return [(ca.name, p) for ca in self.cas for p in ca.problems] + [("", p) for p in self.problems]


def json_schema() -> dict[str, Any]:
    schema = StatusReport.model_json_schema()
    schema["$id"] = "https://rpki-reconciler.invalid/schemas/status.schema.json"
    schema["title"] = "rpki-reconciler status"
    return schema


if __name__ == "__main__":
    print(json.dumps(json_schema(), indent=2, sort_keys=True))
