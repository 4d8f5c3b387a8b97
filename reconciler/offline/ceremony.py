"""The offline trust anchor ceremony: request (online), sign (offline), import (online).

``apply`` signs everything online keys can sign and publishes it; what the trust anchor's key must sign
becomes a :class:`SigningRequest`, kept as ``<publication directory>/ta-request.json`` until a response
to it is imported. While the plan asks for the same thing, the same request is kept (a scheduled apply
does not void the request an operator is carrying to the offline machine); when the plan changes, or
the request expires, a new one replaces it and a response to the old one is refused.

``sign`` runs on the offline machine with the trust anchor's real signer: it checks the request against
its own copy of the desired state, builds the objects with the same encoders as apply, and returns them.
``import_response`` verifies every object against the trust anchor's key and the request, then apply's
publisher swaps the new tree in. Dates are set when signing, so a ceremony held days after the request
still gives the full validity.
"""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from reconciler import layout
from reconciler.apply.executor import CLOCK_SKEW_MARGIN, next_number, signed_object
from reconciler.desired.model import DesiredState
from reconciler.fsutil import fsync_dir, read_bytes
from reconciler.offline.request import (
    CeremonyError,
    CertificateSpec,
    PointSpec,
    Revoked,
    SigningRequest,
    SigningResponse,
    b64,
    dumps,
    unb64,
)
from reconciler.plan.model import Action, Change, Kind, Plan
from reconciler.published.reader import PublishedState, SignedManifest, Unreadable
from reconciler.rpki import cert as rc
from reconciler.rpki import crl, manifest, rfc3779
from reconciler.signers.adapter import SignerKey
from reconciler.signers.base import Signer, SignerError

REQUEST_VALIDITY = timedelta(days=14)
PENDING_NAME = "ta-request.json"


def pending_path(publication_directory: Path) -> Path:
    return publication_directory / PENDING_NAME


# --- online: the request ----------------------------------------------------------------------------


def build_request(
    plan: Plan,
    deferred: tuple[Change, ...],
    desired: DesiredState,
    published: PublishedState,
    signers: dict[str, Signer],
    *,
    git_commit: str | None = None,
) -> SigningRequest:
    """What the offline trust anchor must sign so that the publication point reaches the plan's state."""
    ta = desired.trust_anchor
    base = desired.publication.rsync_base
    directory = layout.repository(ta.name)
    key = signers[ta.signer].find_key(ta.name)
    certificates = [
        _certificate_spec(change, desired, signers, plan)
        for change in deferred
        if change.kind is Kind.CERTIFICATE and change.action in (Action.ISSUE, Action.REISSUE, Action.RENEW)
    ]
    replaced = {spec.path for spec in certificates}
    dropped = {c.path for c in deferred if c.action in (Action.WITHDRAW, Action.REVOKE)}
    keep = {
        name: published.sha256(directory + name).hex()
        for name in published.under(directory)
        if directory + name not in replaced | dropped and not name.endswith((".mft", ".crl"))
    }
    previous_mft, previous_crl, kept_revocations = _previous_point(desired, published, key, plan.now)
    known = {r.serial for r in kept_revocations}
    new = [
        Revoked(serial=f"{c.revoke_serial:x}", revoked_at=plan.now.replace(microsecond=0))
        for c in deferred
        if c.revoke_serial is not None and f"{c.revoke_serial:x}" not in known
    ]
    now = plan.now.replace(microsecond=0)
    return SigningRequest(
        request_id=uuid.uuid4().hex,
        created_at=now,
        expires_at=now + REQUEST_VALIDITY,
        trust_anchor=ta.name,
        key_label=ta.name,
        key_id=key.hex() if key else None,
        rsync_base=base,
        directory=directory,
        desired_digest=desired.digest,
        git_commit=git_commit,
        certificates=certificates,
        point=PointSpec(
            previous_manifest_number=previous_mft,
            previous_crl_number=previous_crl,
            revoked=[*kept_revocations, *new],
            keep=keep,
            validity_seconds=int(desired.timing.ta_manifest_validity.total_seconds()),
        ),
        summary=[f"{c.action.value} {c.address}: {c.reason}" for c in deferred],
    )


def _certificate_spec(
    change: Change, desired: DesiredState, signers: dict[str, Signer], plan: Plan
) -> CertificateSpec:
    assert change.subject is not None  # noqa: S101 - certificate changes name their subject
    subject = desired.ca(change.subject)
    base = desired.publication.rsync_base
    repository = base + layout.repository(subject.name)
    ip = rfc3779.encode_ip(subject.resources)
    asn = rfc3779.encode_asn(subject.resources.asn)
    subject_key: str | None = None
    manifest: str | None = None
    validity = desired.timing.ta_certificate_validity
    if not subject.trust_anchor:
        signer = signers[subject.signer]
        generation = change.generation or plan.key_plans[subject.name].active
        key = signer.find_key(layout.key_label(subject.name, generation))
        if key is None:
            raise SignerError(
                f"the key of {subject.name} (generation {generation}) is missing from its signer"
            )
        public = signer.public_key(key).public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        subject_key, manifest = b64(public), repository + layout.manifest_name(key)
        validity = desired.timing.certificate_validity
    return CertificateSpec(
        path=change.path,
        subject=subject.name,
        resources=str(subject.resources),
        ip_resources=b64(ip) if ip else None,
        as_resources=b64(asn) if asn else None,
        repository=repository,
        why=change.reason,
        self_signed=subject.trust_anchor,
        notify=desired.publication.notify_uri,
        subject_key=subject_key,
        manifest=manifest,
        validity_seconds=int(validity.total_seconds()),
    )


def _known(number: int) -> int | None:
    """A previous number of the request (-1: none was readable) as ``next_number`` takes it."""
    return number if number >= 0 else None


def _previous_point(
    desired: DesiredState, published: PublishedState, key: bytes | None, now: datetime
) -> tuple[int, int, list[Revoked]]:
    """The numbers to go above, and the CRL entries to keep (as apply keeps them)."""
    if key is None:
        return -1, -1, []
    directory = layout.repository(desired.trust_anchor.name)
    found_mft = published.manifest(directory + layout.manifest_name(key))
    found_crl = published.crl(directory + layout.crl_name(key))
    mft_number = found_mft.content.number if isinstance(found_mft, SignedManifest) else -1
    if not isinstance(found_crl, crl.Crl) or found_crl.authority_key_id != key:
        return mft_number, -1, []
    timing = desired.timing
    keep = max(timing.certificate_validity, timing.ta_certificate_validity, timing.ta_manifest_validity)
    kept = [
        Revoked(serial=f"{r.serial:x}", revoked_at=r.revoked_at)
        for r in found_crl.revoked
        if r.revoked_at + keep > now
    ]
    return mft_number, found_crl.number, kept


@dataclass(frozen=True, slots=True)
class Pending:
    path: Path
    request: SigningRequest
    raw: bytes
    kept: bool  # True: the request already waiting asked exactly this, and stays


def read_pending(publication_directory: Path) -> tuple[SigningRequest, bytes] | None:
    path = pending_path(publication_directory)
    if not path.exists():
        return None
    try:
        raw = read_bytes(str(path))
    except OSError:
        return None  # not a regular file, or unreadable: replaced by the next request
    try:
        return SigningRequest.model_validate_json(raw), raw
    except ValueError:
        return None  # unreadable: replaced by the next request


def keep_or_write(publication_directory: Path, request: SigningRequest, now: datetime) -> Pending:
    """Keep the waiting request when it asks the same and has not expired; else write this one."""
    path = pending_path(publication_directory)
    current = read_pending(publication_directory)
    if current is not None:
        waiting, raw = current
        if waiting.body_digest == request.body_digest and waiting.expires_at > now:
            return Pending(path, waiting, raw, kept=True)
    raw = dumps(request)
    _write_atomically(path, raw)
    return Pending(path, request, raw, kept=False)


def _write_atomically(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with tmp.open("wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    tmp.replace(path)
    fsync_dir(path.parent)


# --- offline: signing -----------------------------------------------------------------------------


def check_against(request: SigningRequest, desired: DesiredState) -> list[str]:
    """Differences between the request and the offline copy of the desired state (a tampered request,
    or an out-of-date copy): each certificate must be for a CA of the YAML, with its resources."""
    problems = []
    ta = desired.trust_anchor
    if request.trust_anchor != ta.name:
        problems.append(f"the request is for trust anchor {request.trust_anchor!r}, the YAML has {ta.name!r}")
    if request.rsync_base != desired.publication.rsync_base:
        problems.append(
            f"rsync base {request.rsync_base} differs from the YAML's {desired.publication.rsync_base}"
        )
    if request.directory != layout.repository(ta.name) or request.key_label != ta.name:
        problems.append(f"the request names directory {request.directory!r} and key {request.key_label!r}")
    timing = desired.timing
    if request.point.validity_seconds != int(timing.ta_manifest_validity.total_seconds()):
        problems.append("the manifest and CRL validity differs from the YAML's ta_manifest_validity")
    names = {ca.name: ca for ca in desired.cas}
    for spec in request.certificates:
        validity = timing.ta_certificate_validity if spec.self_signed else timing.certificate_validity
        if spec.validity_seconds != int(validity.total_seconds()):
            problems.append(f"{spec.path}: validity differs from the YAML's timing")
        if spec.manifest is not None and not spec.manifest.startswith(spec.repository):
            problems.append(
                f"{spec.path}: manifest {spec.manifest} is outside the repository {spec.repository}"
            )
        directory, _, name = spec.path.rpartition("/")
        where_ok = (
            spec.path == layout.certificate_path(ta)
            if spec.self_signed
            else directory + "/" == layout.repository(ta.name)
            and layout.certificate_subject(name)[0] == spec.subject
        )
        if not where_ok or spec.self_signed != (spec.subject == ta.name):
            problems.append(f"{spec.path}: not where the certificate of {spec.subject!r} is published")
        ca = names.get(spec.subject)
        if ca is None or (ca.parent != ta.name and ca is not ta):
            problems.append(
                f"{spec.path}: {spec.subject!r} is not the trust anchor or a child of it in the YAML"
            )
            continue
        ip, asn = rfc3779.encode_ip(ca.resources), rfc3779.encode_asn(ca.resources.asn)
        if spec.ip_resources != (b64(ip) if ip else None) or spec.as_resources != (b64(asn) if asn else None):
            problems.append(f"{spec.path}: resources differ from the YAML's for {ca.name} ({ca.resources})")
        if spec.repository != desired.publication.rsync_base + layout.repository(ca.name):
            problems.append(f"{spec.path}: repository {spec.repository} is not {ca.name}'s")
    return problems


def signing_key(request: SigningRequest, signer: Signer) -> tuple[bytes, bool]:
    """The trust anchor's key in the offline signer, and whether it must be created first."""
    key = signer.find_key(request.key_label)
    if key is None:
        if request.key_id is not None:
            raise CeremonyError(
                f"this signer has no key labelled {request.key_label!r}, but the published trust anchor uses "
                f"key {request.key_id}: is this the right token or key directory?"
            )
        return b"", True
    if request.key_id is not None and key.hex() != request.key_id:
        raise CeremonyError(
            f"the key labelled {request.key_label!r} here is {key.hex()}, but the published trust anchor "
            f"uses {request.key_id}: is this the right token or key directory?"
        )
    return key, False


def check_request(request: SigningRequest, now: datetime) -> None:
    """Everything in the request parses, and this machine's clock agrees it is current -- checked before
    any key is created or used."""
    if now >= request.expires_at:
        raise CeremonyError(
            f"the request expired at {request.expires_at:%Y-%m-%dT%H:%M:%SZ}; "
            "run 'rpkictl apply' online for a new one"
        )
    if now < request.created_at - CLOCK_SKEW_MARGIN:
        raise CeremonyError(
            f"this machine's clock ({now:%Y-%m-%dT%H:%M:%SZ}) is behind the time the request was written "
            f"({request.created_at:%Y-%m-%dT%H:%M:%SZ}): set the clock, objects are dated with it"
        )
    _check_fields(request)


def _check_fields(request: SigningRequest) -> None:
    """Every key, resource extension, serial, digest and key id a request carries parses: a request is a
    file carried between machines, and a damaged one is refused before anything is signed or imported."""
    try:
        for spec in request.certificates:
            if spec.subject_key is not None:
                serialization.load_der_public_key(unb64(spec.subject_key))
            # the extension values are signed as they are: each must be exactly one RFC 3779 value
            _requested_resources(spec)
        for revoked in request.point.revoked:
            int(revoked.serial, 16)
        for digest in request.point.keep.values():
            if len(bytes.fromhex(digest)) != 32:
                raise ValueError(f"{digest!r} is not a SHA-256")
        if request.key_id is not None:
            bytes.fromhex(request.key_id)
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise CeremonyError(f"the request is damaged: {exc}") from exc


def _requested_resources(spec: CertificateSpec) -> rfc3779.DecodedResources:
    """The resources a request's certificate carries, read strictly from its two extension values."""
    return rfc3779.decode(
        unb64(spec.ip_resources) if spec.ip_resources else None,
        unb64(spec.as_resources) if spec.as_resources else None,
    )


def sign(request: SigningRequest, raw: bytes, signer: Signer, now: datetime) -> SigningResponse:
    """Build and sign what the request asks, with the trust anchor's key (created if the request says
    there is none yet). The caller has shown the request and had it confirmed."""
    check_request(request, now)
    key, create = signing_key(request, signer)
    if create:
        key = signer.create_key(request.key_label)
    now = now.replace(microsecond=0)
    valid_from = now - CLOCK_SKEW_MARGIN
    ta_uri = request.rsync_base + f"{request.trust_anchor}.cer"
    directory = request.directory
    crl_uri = request.rsync_base + directory + layout.crl_name(key)
    handle = SignerKey(signer, key)
    issuer = rc.Issuer(handle, key, ta_uri, crl_uri)
    files: dict[str, bytes] = {}
    for spec in request.certificates:
        if spec.self_signed:
            subject_key = signer.public_key(key)
            access = rc.CaAccess(spec.repository, spec.repository + layout.manifest_name(key), spec.notify)
            cert_issuer = rc.Issuer(handle, key, None, None)
        else:
            loaded = serialization.load_der_public_key(unb64(spec.subject_key or ""))
            if not isinstance(loaded, rsa.RSAPublicKey):
                raise CeremonyError(f"{spec.path}: the subject key is not an RSA key")
            subject_key, access, cert_issuer = (
                loaded,
                rc.CaAccess(spec.repository, spec.manifest or "", spec.notify),
                issuer,
            )
        files[spec.path] = rc.build(
            issuer=cert_issuer,
            subject_key=subject_key,
            serial=x509.random_serial_number(),
            not_before=valid_from,
            not_after=now + timedelta(seconds=spec.validity_seconds),
            ip_resources=unb64(spec.ip_resources) if spec.ip_resources else None,
            as_resources=unb64(spec.as_resources) if spec.as_resources else None,
            ca=access,
        )
    point = request.point
    next_update = now + timedelta(seconds=point.validity_seconds)
    crl_path = directory + layout.crl_name(key)
    files[crl_path] = crl.build(
        issuer=issuer,
        number=next_number(_known(point.previous_crl_number), now),
        this_update=valid_from,
        next_update=next_update,
        revoked=tuple(crl.Revocation(int(r.serial, 16), r.revoked_at) for r in point.revoked),
    )
    mft_path = directory + layout.manifest_name(key)
    listed = {name: bytes.fromhex(digest) for name, digest in point.keep.items()}
    for path, data in files.items():
        if path.startswith(directory) and "/" not in path[len(directory) :]:
            listed[path[len(directory) :]] = _sha256(data)
    content = manifest.ManifestContent(
        next_number(_known(point.previous_manifest_number), now),
        valid_from,
        next_update,
        tuple(sorted(listed.items())),
    )
    files[mft_path] = signed_object(
        issuer=issuer,
        uri=request.rsync_base + mft_path,
        content_type=manifest.CONTENT_TYPE,
        econtent=manifest.encode(content),
        ee=(valid_from, next_update),
        resources=rc.EeResources.inherit(),
        serial=x509.random_serial_number(),
        signing_time=now,
    )
    return SigningResponse(
        request_id=request.request_id,
        request_sha256=_sha256(raw).hex(),
        signed_at=now,
        key_id=key.hex(),
        files={path: b64(data) for path, data in files.items()},
    )


def _sha256(data: bytes) -> bytes:
    digest = hashes.Hash(hashes.SHA256())
    digest.update(data)
    return digest.finalize()


# --- online: import -------------------------------------------------------------------------------


def import_response(
    response: SigningResponse,
    pending: tuple[SigningRequest, bytes] | None,
    published: PublishedState,
    now: datetime,
    *,
    expect_key: str | None = None,
) -> dict[str, bytes]:
    """Verify a response against the waiting request and the trust anchor's key; return the complete
    new tree. Raises CeremonyError, naming what is wrong, and nothing is published.

    A request written when no trust anchor key was published (the first ceremony, or after the
    publication point was lost) cannot say which key to expect: then the operator must name it
    (``expect_key``, the key id that ``rpkictl ta sign`` printed offline), or any key would do."""
    if pending is None:
        raise CeremonyError(
            "no signing request is waiting (it was imported already, or never written): "
            "a response can be imported once; run 'rpkictl apply' to see whether a new one is needed"
        )
    request, raw = pending
    _check_fields(request)
    if response.request_id != request.request_id:
        raise CeremonyError(
            f"the response answers request {response.request_id}, but the waiting request is "
            f"{request.request_id} (written {request.created_at:%Y-%m-%dT%H:%M:%SZ}); "
            "sign the waiting request instead"
        )
    if response.request_sha256 != _sha256(raw).hex():
        raise CeremonyError("the response was made from another version of the request file; sign it again")
    if now >= request.expires_at:
        raise CeremonyError(
            f"the request expired at {request.expires_at:%Y-%m-%dT%H:%M:%SZ}; "
            "run 'rpkictl apply' for a new one and sign that"
        )
    wanted = request.key_id or (expect_key.lower() if expect_key else None)
    if wanted is None:
        raise CeremonyError(
            f"the response introduces the trust anchor key {response.key_id}: confirm it is the key "
            "'rpkictl ta sign' printed on the offline machine, with --expect-key KEY_ID"
        )
    if response.key_id != wanted:
        raise CeremonyError(
            f"the response is signed by key {response.key_id}, not the trust anchor's {wanted}"
        )
    files = response.decoded()
    try:
        key = bytes.fromhex(response.key_id)
    except ValueError as exc:
        raise CeremonyError(f"the response's key id is damaged: {exc}") from exc
    directory = request.directory
    expected = {spec.path for spec in request.certificates} | {
        directory + layout.crl_name(key),
        directory + layout.manifest_name(key),
    }
    if set(files) != expected:
        extra, missing = sorted(set(files) - expected), sorted(expected - set(files))
        raise CeremonyError(
            f"the response does not carry exactly what was requested (extra: {extra}; missing: {missing})"
        )
    public = _trust_anchor_key(request, files, published, key)
    for spec in request.certificates:
        _verify_certificate(spec, files[spec.path], public, key, now)
    _verify_point(request, files, public, key, now)
    for name, digest in request.point.keep.items():
        path = directory + name
        if path not in published.files or published.sha256(path).hex() != digest:
            raise CeremonyError(
                f"{path} changed since the request was written; run 'rpkictl apply' for a new request"
            )
    tree = {
        path: data
        for path, data in published.files.items()
        if not (path.startswith(directory) and path[len(directory) :] not in request.point.keep)
    }
    tree.update(files)
    return tree


def _trust_anchor_key(
    request: SigningRequest, files: dict[str, bytes], published: PublishedState, key: bytes
) -> rsa.RSAPublicKey:
    path = f"{request.trust_anchor}.cer"
    try:
        found = rc.decode(files[path], where=path) if path in files else published.certificate(path)
    except ValueError as exc:
        raise CeremonyError(str(exc)) from exc
    if isinstance(found, rc.ResourceCertificate) and found.key_id == key:
        _verify_signature(found.cert, found.public_key, path)
        return found.public_key
    raise CeremonyError(f"no certificate of the trust anchor's key {key.hex()} to verify the response with")


def _verify_signature(cert: x509.Certificate, public: rsa.RSAPublicKey, where: str) -> None:
    if not rc.verify_signed_by(cert, public):
        raise CeremonyError(f"{where}: not signed by the trust anchor's key (tampered?)")


def _current(where: str, start: datetime, end: datetime, now: datetime, validity: int) -> None:
    """Dated by the offline machine's clock: refuse objects not yet valid, expired, or valid much longer
    or shorter than requested (a clock far off, or a response for something else)."""
    if start > now + CLOCK_SKEW_MARGIN:
        raise CeremonyError(
            f"{where}: valid only from {start:%Y-%m-%dT%H:%M:%SZ}; is the offline clock ahead?"
        )
    if end <= now:
        raise CeremonyError(f"{where}: expired at {end:%Y-%m-%dT%H:%M:%SZ}; is the offline clock behind?")
    expected = timedelta(seconds=validity) + CLOCK_SKEW_MARGIN
    if abs((end - start) - expected) > timedelta(minutes=1):
        raise CeremonyError(f"{where}: valid for {end - start}, but {expected} was requested")


def _verify_certificate(
    spec: CertificateSpec, der: bytes, public: rsa.RSAPublicKey, key: bytes, now: datetime
) -> None:
    try:
        found = rc.decode(der, where=spec.path)
    except ValueError as exc:
        raise CeremonyError(f"{spec.path}: {exc}") from exc
    _verify_signature(found.cert, public, spec.path)
    _current(spec.path, found.not_before, found.not_after, now, spec.validity_seconds)
    try:
        want = _requested_resources(spec)
    except ValueError as exc:
        raise CeremonyError(f"{spec.path}: the waiting request is damaged: {exc}") from exc
    if found.resources != want or found.repository != spec.repository or found.notify != spec.notify:
        raise CeremonyError(f"{spec.path}: not the certificate that was requested (resources or URIs differ)")
    if spec.subject_key is not None:
        subject = found.public_key.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        if subject != unb64(spec.subject_key) or found.authority_key_id != key:
            raise CeremonyError(f"{spec.path}: not the certificate that was requested (subject key differs)")


def _verify_point(
    request: SigningRequest, files: dict[str, bytes], public: rsa.RSAPublicKey, key: bytes, now: datetime
) -> None:
    directory = request.directory
    crl_path, mft_path = directory + layout.crl_name(key), directory + layout.manifest_name(key)
    try:
        found_crl = crl.decode(files[crl_path], where=crl_path)
    except ValueError as exc:
        raise CeremonyError(f"{crl_path}: {exc}") from exc
    try:
        signed = found_crl.crl.is_signature_valid(public)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise CeremonyError(f"{crl_path}: the signature cannot be checked: {exc}") from exc
    if not signed:
        raise CeremonyError(f"{crl_path}: not signed by the trust anchor's key (tampered?)")
    _current(crl_path, found_crl.this_update, found_crl.next_update, now, request.point.validity_seconds)
    if found_crl.number <= request.point.previous_crl_number:
        raise CeremonyError(f"{crl_path}: CRL number does not go up")
    revoked = {r.serial for r in found_crl.revoked}
    if revoked != {int(r.serial, 16) for r in request.point.revoked}:
        raise CeremonyError(f"{crl_path}: does not revoke exactly what was requested")
    checked = PublishedState(files={mft_path: files[mft_path]})
    found = checked.manifest(mft_path)
    if isinstance(found, Unreadable) or found is None:
        reason = found.reason if found else "missing"
        raise CeremonyError(f"{mft_path}: {reason}")
    _verify_signature(found.signed.ee.cert, public, mft_path + " (EE certificate)")
    listed = dict(found.content.files)
    want = {name: bytes.fromhex(digest) for name, digest in request.point.keep.items()}
    for path, data in files.items():
        if path.startswith(directory) and path != mft_path and "/" not in path[len(directory) :]:
            want[path[len(directory) :]] = _sha256(data)
    if listed != want:
        raise CeremonyError(f"{mft_path}: does not list exactly the trust anchor's files (tampered?)")
    content = found.content
    _current(mft_path, content.this_update, content.next_update, now, request.point.validity_seconds)
    if found.content.number <= request.point.previous_manifest_number:
        raise CeremonyError(f"{mft_path}: manifest number does not go up")
