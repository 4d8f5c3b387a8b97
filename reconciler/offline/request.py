"""The two files of the offline trust anchor ceremony: the signing request and its response.

The request says exactly what the trust anchor's key is to sign -- its own certificate, the
certificates of its children (their public keys and resources), its CRL and its manifest -- with the
numbers and revocations read from the publication point. It holds no secret, so it can travel on any
medium; it is bound to one response by its id and SHA-256 and expires, so that an old response can
never be replayed.
"""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import datetime
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from reconciler.fsutil import read_bytes

REQUEST_FORMAT: Literal["rpkictl-ta-request/1"] = "rpkictl-ta-request/1"
RESPONSE_FORMAT: Literal["rpkictl-ta-response/1"] = "rpkictl-ta-response/1"


class CeremonyError(Exception):
    """A request or response that cannot be used; the message says what to do."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)


class CertificateSpec(_Model):
    """A certificate the trust anchor issues: to itself (self-signed) or to a child CA."""

    path: str = Field(description="Path in the rsync tree.")
    subject: str = Field(description="The CA the certificate is for.")
    self_signed: bool
    subject_key: str | None = Field(
        description="The child's public key (base64 DER SubjectPublicKeyInfo); null for the trust "
        "anchor's own certificate, whose key is the offline one."
    )
    resources: str = Field(description="The resources, as people read them.")
    ip_resources: str | None = Field(description="base64 DER of the RFC 3779 IP extension value.")
    as_resources: str | None = Field(description="base64 DER of the RFC 3779 AS extension value.")
    repository: str = Field(description="The subject's caRepository URI.")
    manifest: str | None = Field(
        description="The subject's rpkiManifest URI; null for the trust anchor (named after its key)."
    )
    validity_seconds: int
    why: str = Field(description="The plan's reason, shown at the signing ceremony.")
    notify: str | None = Field(None, description="The rpkiNotify URI (RRDP), when RRDP is configured.")


class Revoked(_Model):
    serial: str = Field(description="Hexadecimal serial.")
    revoked_at: datetime


class PointSpec(_Model):
    """The trust anchor's CRL and manifest."""

    previous_manifest_number: int
    previous_crl_number: int
    revoked: list[Revoked] = Field(description="Every entry of the new CRL: kept ones and new ones.")
    keep: dict[str, str] = Field(
        description="Files of the trust anchor's directory that stay as published: name -> SHA-256 hex."
    )
    validity_seconds: int


class SigningRequest(_Model):
    format: Literal["rpkictl-ta-request/1"] = REQUEST_FORMAT
    request_id: str
    created_at: datetime
    expires_at: datetime
    trust_anchor: str
    key_label: str
    key_id: str | None = Field(description="The key the trust anchor publishes (hex); null if none yet.")
    rsync_base: str
    directory: str = Field(description="The trust anchor's directory in the rsync tree (ends with '/').")
    desired_digest: str
    git_commit: str | None
    certificates: list[CertificateSpec]
    point: PointSpec
    summary: list[str] = Field(description="What the plan changes, one line each, for the ceremony.")

    def body(self) -> dict[str, object]:
        """What the request asks, without when it was written or the wording of its reasons (which say
        "expires in 5d"): equal bodies are the same request."""
        body = self.model_dump(mode="json", exclude={"request_id", "created_at", "expires_at", "summary"})
        for spec in body["certificates"]:
            spec.pop("why")
        point = body["point"]
        point["revoked"] = sorted(r["serial"] for r in point["revoked"])
        return body

    @property
    def body_digest(self) -> str:
        return hashlib.sha256(_canonical(self.body())).hexdigest()


class SigningResponse(_Model):
    format: Literal["rpkictl-ta-response/1"] = RESPONSE_FORMAT
    request_id: str
    request_sha256: str = Field(description="SHA-256 of the request file the signer read.")
    signed_at: datetime
    key_id: str
    files: dict[str, str] = Field(description="Path in the rsync tree -> base64 DER.")

    def decoded(self) -> dict[str, bytes]:
        try:
            return {path: base64.b64decode(data, validate=True) for path, data in self.files.items()}
        except ValueError as exc:
            raise CeremonyError(f"the response carries a file that is not base64: {exc}") from exc


def _canonical(value: object) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def unb64(text: str) -> bytes:
    return base64.b64decode(text, validate=True)


def dumps(model: BaseModel) -> bytes:
    return (model.model_dump_json(indent=2) + "\n").encode()


def read_request(path: Path) -> tuple[SigningRequest, bytes]:
    """The request and its raw bytes (whose SHA-256 the response carries)."""
    raw = _read(path, "signing request")
    try:
        return SigningRequest.model_validate_json(raw), raw
    except ValidationError as exc:
        raise CeremonyError(f"{path} is not an rpkictl signing request ({_first_error(exc)})") from exc


def read_response(path: Path) -> SigningResponse:
    raw = _read(path, "signing response")
    try:
        return SigningResponse.model_validate_json(raw)
    except ValidationError as exc:
        raise CeremonyError(f"{path} is not an rpkictl signing response ({_first_error(exc)})") from exc


def _read(path: Path, what: str) -> bytes:
    """A regular file's bytes: a FIFO or a device given as the file is refused, never waited on."""
    try:
        return read_bytes(str(path))
    except OSError as exc:
        raise CeremonyError(f"cannot read the {what} {path}: {exc.strerror}") from exc


def _first_error(exc: ValidationError) -> str:
    error = exc.errors()[0]
    where = ".".join(str(p) for p in error["loc"]) or "the document"
    return f"{where}: {error['msg']}"


def fingerprint(raw: bytes) -> str:
    """A short SHA-256 prefix for people to compare on both machines: ``3F2A-91C0-...``."""
    digest = hashlib.sha256(raw).hexdigest().upper()[:16]
    return "-".join(digest[i : i + 4] for i in range(0, 16, 4))
