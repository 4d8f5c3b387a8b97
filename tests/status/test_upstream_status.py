"""``rpkictl status`` and ``check`` for a CA under an external parent: the parent (RFC 6492) and the
remote repository (RFC 8181) as the last exchanges left them in ``<publication directory>/upstream``.

The child's desired state is real: its parents/ and repositories/ files are RFC 8183 documents carrying a
BPKI identity made in a file signer, its certificate is a resource certificate for the key the signer
holds, and its publication point is signed by ``apply``. No parent or repository answers: status reads
the kept state only, which each test writes as the exchanges would have left it.
"""

from __future__ import annotations

import dataclasses
import io
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import jsonschema
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from rich.console import Console

from reconciler import engine, layout
from reconciler.protocol import bpki, oob, updown
from reconciler.resources import Resources
from reconciler.rpki import cert as rc
from reconciler.rpki import rfc3779
from reconciler.signers.base import key_id
from reconciler.signers.files import FileSigner
from reconciler.status import html, prometheus, table
from reconciler.status.model import StatusReport
from reconciler.upstream import state as stored
from reconciler.upstream.state import Certified, LastError, PeerRecord, PublishedCount, UpstreamState
from tests.test_cli import rpkictl

SCHEMA = Path(__file__).resolve().parents[2] / "schemas" / "status.schema.json"
NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
CA = "acme"
PARENT = "online"
PARENT_URI = "https://rpki.example.net/rfc6492/acme"
REPOSITORY_URI = "https://rpki.example.net/rfc8181/acme"
SIA_BASE = "rsync://rpki.example.net/repo/publishers/acme/"
CERT_URI = "rsync://rpki.example.net/repo/online/acme.cer"
HELD = Resources.parse(["AS64500"], ["203.0.113.0/24"])
WIDER = Resources.parse(["AS64500"], ["198.51.100.0/24", "203.0.113.0/24"])
PARENT_LABELS = f'ca="{CA}",parent="{PARENT}"'
REPOSITORY_LABELS = f'ca="{CA}",repository="{REPOSITORY_URI}"'

SETTINGS = """\
signers:
  default: {type: file, directory: ../keys}
publication:
  directory: ../published
"""
CA_FILE = f"""\
name: {CA}
parent:
  response: parents/{PARENT}.xml
repository:
  response: repositories/{PARENT}.xml
resources: {{asn: [AS64500], ipv4: [203.0.113.0/24]}}
roas:
  - {{asn: AS64500, prefix: 203.0.113.0/24}}
"""


@dataclass
class Child:
    """The child's desired state under ``root``, the parent's key, and the state kept of the exchanges."""

    root: Path
    parent_key: rsa.RSAPrivateKey
    ca_key: rsa.RSAPublicKey
    parent_certificate: bytes

    @property
    def repo(self) -> Path:
        return self.root / "state"

    @property
    def directory(self) -> Path:
        return self.root / "published"

    def certificate(self, resources: Resources = HELD, ends: datetime = NOW + timedelta(days=300)) -> bytes:
        """A certificate the parent issues for the CA's key."""
        repository = f"{SIA_BASE}{CA}/"
        return rc.build(
            issuer=rc.Issuer(
                self.parent_key,
                key_id(self.parent_key.public_key()),
                "rsync://rpki.example.net/repo/ta/online.cer",
                "rsync://rpki.example.net/repo/online/online.crl",
            ),
            subject_key=self.ca_key,
            serial=0x1234,
            not_before=NOW - timedelta(days=1),
            not_after=ends,
            ip_resources=rfc3779.encode_ip(resources),
            as_resources=rfc3779.encode_asn(resources.asn),
            ca=rc.CaAccess(repository, repository + layout.manifest_name(key_id(self.ca_key))),
        )

    def listing(self, entitled: Resources, issued: bytes | None) -> bytes:
        """The parent's list_response: one class granting ``entitled``, with ``issued`` in it."""
        certificates = (updown.IssuedCertificate(CERT_URI, issued),) if issued is not None else ()
        found = updown.ResourceClass(
            "default",
            "rsync://rpki.example.net/repo/ta/online.cer",
            entitled,
            NOW + timedelta(days=365),
            self.parent_certificate,
            certificates,
        )
        return updown.render(updown.Message(CA, PARENT, updown.ListResponse((found,))))

    def healthy(self, certificate: bytes | None = None, entitled: Resources = HELD) -> UpstreamState:
        """What a successful exchange with both peers leaves."""
        der = certificate if certificate is not None else self.certificate()
        return UpstreamState(
            parent=PeerRecord(
                last_success=NOW - timedelta(minutes=40),
                last_attempt=NOW - timedelta(minutes=40),
                next_contact=NOW + timedelta(minutes=35),
            ),
            repository=PeerRecord(
                last_success=NOW - timedelta(minutes=39), last_attempt=NOW - timedelta(minutes=39)
            ),
            list_response=self.listing(entitled, der),
            listed_at=NOW - timedelta(minutes=40),
            certified=Certified("default", CERT_URI, der),
            held=PublishedCount(
                objects=3,
                size=4321,
                sent_publish=3,
                sent_withdraw=1,
                sent_bytes=4000,
                sent_at=NOW - timedelta(minutes=39),
            ),
        )

    def keep(self, state: UpstreamState) -> None:
        stored.save(self.directory, CA, state)

    def status(
        self, warn: timedelta = engine.DEFAULT_WARN, critical: timedelta = engine.DEFAULT_CRITICAL
    ) -> StatusReport:
        return engine.status(engine.open_workspace(self.repo), NOW, warn=warn, critical=critical)


def _write(path: Path, data: bytes | str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(data, bytes):
        path.write_bytes(data)
    else:
        path.write_text(data)


def declare(tmp_path: Path) -> Child:
    """The child's desired state and keys, before any exchange: nothing kept, nothing published."""
    repo = tmp_path / "state"
    _write(repo / "rpki.yaml", SETTINGS)
    _write(repo / f"cas/{CA}.yaml", CA_FILE)
    signer = FileSigner(tmp_path / "keys")
    identity = bpki.create_identity(signer, signer.create_key("parent-identity"), NOW)
    _write(
        repo / f"parents/{PARENT}.xml",
        oob.render(oob.ParentResponse(PARENT_URI, PARENT, CA, identity.der)),
    )
    _write(
        repo / f"repositories/{PARENT}.xml",
        oob.render(oob.RepositoryResponse(REPOSITORY_URI, CA, SIA_BASE, identity.der)),
    )
    ca_key = signer.public_key(signer.create_key(layout.key_label(CA, 1)))
    parent_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    parent_id = key_id(parent_key.public_key())
    own = "rsync://rpki.example.net/repo/online/"
    parent_certificate = rc.build(
        issuer=rc.Issuer(parent_key, parent_id, None, None),
        subject_key=parent_key.public_key(),
        serial=1,
        not_before=NOW - timedelta(days=10),
        not_after=NOW + timedelta(days=400),
        ip_resources=rfc3779.encode_ip(WIDER),
        as_resources=rfc3779.encode_asn(WIDER.asn),
        ca=rc.CaAccess(own, own + layout.manifest_name(parent_id)),
    )
    return Child(tmp_path, parent_key, ca_key, parent_certificate)


@pytest.fixture
def child(tmp_path: Path) -> Child:
    """The child certified by the parent and published by apply: a clean status."""
    found = declare(tmp_path)
    found.keep(found.healthy())
    workspace = engine.open_workspace(found.repo)
    assert engine.apply(workspace, engine.plan(workspace, NOW)) is not None
    return found


def _samples(exposition: str) -> dict[str, float]:
    return {
        line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1])
        for line in exposition.splitlines()
        if line and not line.startswith("#")
    }


def _problems(report: StatusReport, label: str) -> list[tuple[str, str]]:
    return [(p.severity, p.message) for name, p in report.every_problem() if name == label]


def _text(report: StatusReport) -> str:
    console = Console(record=True, width=200, file=io.StringIO())
    console.print(table.render(report, console.width))
    return console.export_text()


def test_status_shows_the_parent_and_the_repository_as_kept(child: Child) -> None:
    report = child.status()
    assert report.severity == "info", report.every_problem()
    parent = report.external_parent
    assert parent is not None
    assert (parent.ca, parent.handle, parent.child_handle, parent.service_uri) == (CA, PARENT, CA, PARENT_URI)
    assert parent.last_success == NOW - timedelta(minutes=40) and parent.next_contact == NOW + timedelta(
        minutes=35
    )
    assert parent.failures == 0 and parent.last_error is None and parent.problems == []
    assert parent.certificate is not None
    assert (parent.certificate.class_name, parent.certificate.uri) == ("default", CERT_URI)
    assert parent.certificate.not_after == NOW + timedelta(days=300)
    assert parent.certificate.resources == str(HELD)
    (entitled,) = parent.entitlements
    assert (entitled.class_name, entitled.resources, entitled.not_after) == (
        "default",
        str(HELD),
        NOW + timedelta(days=365),
    )
    assert (
        not parent.entitlement_pending
        and parent.entitled_not_certified == "" == parent.certified_not_entitled
    )
    repository = report.remote_repository
    assert repository is not None
    assert (repository.ca, repository.service_uri, repository.sia_base) == (CA, REPOSITORY_URI, SIA_BASE)
    assert (repository.objects, repository.bytes, repository.failures) == (3, 4321, 0)
    assert repository.last_sent is not None
    assert (repository.last_sent.publish, repository.last_sent.withdraw, repository.last_sent.bytes) == (
        3,
        1,
        4000,
    )
    assert repository.problems == []

    document = json.loads(report.model_dump_json())
    jsonschema.validate(document, json.loads(SCHEMA.read_text()))
    text = _text(report)
    assert f"Parent (RFC 6492) of {CA}" in text and PARENT_URI in text and "Repository (RFC 8181)" in text
    assert "3 publish, 1 withdraw" in text and "3 objects, 4.2 KiB" in text
    page = html.render(report)
    assert 'id="parent"' in page and 'id="repository"' in page and CERT_URI in page


def test_prometheus_metrics_of_the_parent_and_the_repository(child: Child) -> None:
    report = child.status()
    exposition = prometheus.render(report)
    samples = _samples(exposition)
    assert samples[f"rpki_parent_failures{{{PARENT_LABELS}}}"] == 0
    assert samples[f"rpki_parent_last_error_code{{{PARENT_LABELS}}}"] == 0
    assert samples[f"rpki_parent_entitlement_pending{{{PARENT_LABELS}}}"] == 0
    assert samples[f"rpki_parent_certificates{{{PARENT_LABELS}}}"] == 1
    assert (
        samples[f"rpki_parent_last_success_timestamp_seconds{{{PARENT_LABELS}}}"]
        == (NOW - timedelta(minutes=40)).timestamp()
    )
    expiry = f'rpki_parent_certificate_expiry_timestamp_seconds{{{PARENT_LABELS},class="default"}}'
    assert samples[expiry] == (NOW + timedelta(days=300)).timestamp()
    assert samples[f"rpki_repository_objects{{{REPOSITORY_LABELS}}}"] == 3
    assert samples[f"rpki_repository_bytes{{{REPOSITORY_LABELS}}}"] == 4321
    assert samples[f"rpki_repository_failures{{{REPOSITORY_LABELS}}}"] == 0
    assert (
        samples[f"rpki_repository_last_success_timestamp_seconds{{{REPOSITORY_LABELS}}}"]
        == (NOW - timedelta(minutes=39)).timestamp()
    )
    names = {line.split("{")[0].split(" ")[0] for line in exposition.splitlines() if not line.startswith("#")}
    for name in (n for n in names if n.startswith(("rpki_parent_", "rpki_repository_"))):
        assert f"# HELP {name} " in exposition and f"# TYPE {name} gauge" in exposition, name


def test_a_failed_exchange_with_the_parent_is_a_warning_with_its_code_and_text(child: Child) -> None:
    kept = child.healthy()
    error = LastError("already processing request", NOW - timedelta(minutes=5), 1101)
    child.keep(
        dataclasses.replace(
            kept, parent=kept.parent.failed(NOW - timedelta(minutes=5), error, NOW + timedelta(minutes=10))
        )
    )
    report = child.status()
    assert report.severity == "warning"
    parent = report.external_parent
    assert parent is not None and parent.failures == 1
    assert parent.last_error is not None and (parent.last_error.code, parent.last_error.text) == (
        1101,
        "already processing request",
    )
    (problem,) = _problems(report, f"parent {PARENT}")
    assert problem[0] == "warning"
    assert "the last exchange failed (1 in a row, last reached 2026-11-24T11:20:00Z)" in problem[1]
    assert "error 1101: already processing request (at 2026-11-24T11:55:00Z)" in problem[1]
    said = [f for f in engine.findings(report) if "already processing request" in f.message]
    assert len(said) == 1, said  # the plan's notice of the same exchange is not repeated
    assert said[0].ca == f"parent {PARENT}"
    samples = _samples(prometheus.render(report))
    assert samples[f"rpki_parent_last_error_code{{{PARENT_LABELS}}}"] == 1101
    assert samples[f"rpki_parent_failures{{{PARENT_LABELS}}}"] == 1
    shown = _text(report)
    assert "1 failed: error 1101:" in shown and "already processing" in shown

    result = rpkictl("check", str(child.repo), "--now", f"{NOW:%Y-%m-%dT%H:%M:%SZ}")
    assert result.returncode == 1, result.stdout + result.stderr
    assert f"WARNING: parent {PARENT}: the last exchange failed" in result.stdout
    assert "error 1101: already processing request" in result.stdout


def test_a_failure_without_a_code_is_minus_one(child: Child) -> None:
    kept = child.healthy()
    error = LastError("connection refused", NOW - timedelta(minutes=5))
    child.keep(dataclasses.replace(kept, parent=kept.parent.failed(NOW - timedelta(minutes=5), error, None)))
    report = child.status()
    assert _samples(prometheus.render(report))[f"rpki_parent_last_error_code{{{PARENT_LABELS}}}"] == -1
    (problem,) = _problems(report, f"parent {PARENT}")
    assert problem[0] == "warning" and "connection refused" in problem[1]


def test_a_failed_exchange_with_the_repository_is_a_warning(child: Child) -> None:
    kept = child.healthy()
    error = LastError("HTTP 503 from the repository", NOW - timedelta(minutes=2))
    child.keep(
        dataclasses.replace(kept, repository=kept.repository.failed(NOW - timedelta(minutes=2), error, None))
    )
    report = child.status()
    assert report.severity == "warning"
    (problem,) = _problems(report, f"repository {REPOSITORY_URI}")
    assert problem[0] == "warning" and "HTTP 503 from the repository" in problem[1]
    assert _problems(report, f"parent {PARENT}") == []
    assert _samples(prometheus.render(report))[f"rpki_repository_failures{{{REPOSITORY_LABELS}}}"] == 1


def test_no_certificate_from_the_parent_is_critical(child: Child) -> None:
    child.keep(dataclasses.replace(child.healthy(), certified=None))
    report = child.status()
    assert report.severity == "critical"
    critical = [m for s, m in _problems(report, f"parent {PARENT}") if s == "critical"]
    assert len(critical) == 1 and critical[0].startswith(f"no certificate from parent {PARENT} for {CA}")
    samples = _samples(prometheus.render(report))
    assert samples[f"rpki_parent_certificates{{{PARENT_LABELS}}}"] == 0
    assert not [name for name in samples if name.startswith("rpki_parent_certificate_expiry")]
    assert samples[f"rpki_parent_entitlement_pending{{{PARENT_LABELS}}}"] == 1  # entitled, nothing certified


@pytest.mark.parametrize(
    ("left", "warn", "severity"),
    [
        (timedelta(minutes=30), timedelta(hours=4), "critical"),  # within --critical
        (timedelta(days=10), timedelta(hours=4), "warning"),  # inside the renewal window, not renewed
        (timedelta(days=40), timedelta(days=60), "warning"),  # within --warn
        (timedelta(days=40), timedelta(hours=4), None),
    ],
)
def test_the_end_of_the_parents_certificate_against_the_margins(
    child: Child, left: timedelta, warn: timedelta, severity: str | None
) -> None:
    certificate = child.certificate(ends=NOW + left)
    child.keep(child.healthy(certificate))
    report = child.status(warn=warn)
    ending = [s for s, m in _problems(report, f"parent {PARENT}") if f"the certificate of {CA} ends in" in m]
    assert ending == ([severity] if severity else [])
    # said once: the CA's own certificate finding and the plan's notice leave it to the parent's status
    assert not [
        f for f in engine.findings(report) if f.ca == CA and "certificate" in f.message.split(" ")[:2]
    ]


def test_an_entitlement_not_yet_certified_is_pending(child: Child) -> None:
    child.keep(child.healthy(entitled=WIDER))
    report = child.status()
    parent = report.external_parent
    assert parent is not None and parent.entitlement_pending
    assert parent.entitled_not_certified == "198.51.100.0/24" and parent.certified_not_entitled == ""
    (problem,) = _problems(report, f"parent {PARENT}")
    assert problem[0] == "warning" and "entitled to 198.51.100.0/24 it does not hold" in problem[1]
    assert _samples(prometheus.render(report))[f"rpki_parent_entitlement_pending{{{PARENT_LABELS}}}"] == 1
    assert "not certified: 198.51.100.0/24" in _text(report)


def test_a_certificate_holding_more_than_the_entitlement_is_pending(child: Child) -> None:
    child.keep(child.healthy(entitled=Resources.parse(["AS64500"], ["203.0.113.0/25"])))
    parent = child.status().external_parent
    assert parent is not None and parent.entitlement_pending
    assert parent.certified_not_entitled == "203.0.113.128/25" and parent.entitled_not_certified == ""
    assert "holding 203.0.113.128/25 no longer entitled" in parent.problems[0].message


def test_before_the_first_exchange_the_parent_says_what_is_missing(tmp_path: Path) -> None:
    """Nothing kept and nothing published: the CA's missing key is the parent's missing certificate, not
    something apply creates by itself; the repository has nothing yet."""
    report = declare(tmp_path).status()
    assert report.severity == "critical"
    ((severity, message),) = _problems(report, f"parent {PARENT}")
    assert severity == "critical" and message.endswith("'rpkictl apply' asks it for one")
    assert not [p for name, p in report.every_problem() if name == CA and p.severity == "critical"]
    parent = report.external_parent
    assert parent is not None and parent.last_success is None and parent.entitlements == []
    assert not parent.entitlement_pending  # nothing listed yet: nothing to compare
    ((severity, message),) = _problems(report, f"repository {REPOSITORY_URI}")
    assert severity == "info" and message.startswith("nothing published there yet")
    repository = report.remote_repository
    assert repository is not None and repository.last_sent is None and repository.objects == 0
