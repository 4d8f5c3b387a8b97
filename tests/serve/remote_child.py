"""A child CA run by someone else, reaching us only over the network as a real one does.

It has its own BPKI identity and CA keys (a file signer in its own directory), is set up from the
RFC 8183 files ``rpkictl oob parent-response`` and ``oob repository-response`` print, and from then on
talks only through the protocol clients: :class:`UpDownClient` to ``/rfc6492/<handle>`` (list, issue,
revoke) and :class:`PublicationClient` to ``/rfc8181/<handle>`` (list -> delta -> send). It signs its own
publication point -- CRL, ROAs and manifest per certified key, each key in its own directory below the
``sia_base`` -- with the product's encoders, as any CA implementation would.

Also here: ``rpkictl serve`` as a subprocess whose log goes to a file (a pipe nobody reads would stall
the server once it filled), and the CLI calls a scenario makes.
"""

from __future__ import annotations

import hashlib
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from ipaddress import ip_network
from pathlib import Path

from cryptography import x509

from reconciler import layout
from reconciler.apply.executor import signed_object
from reconciler.protocol import bpki, csr, oob, updown
from reconciler.protocol import publication as rfc8181
from reconciler.protocol.client import PublicationClient, UpDownClient
from reconciler.protocol.replay import ReplayGuard
from reconciler.resources import Resources
from reconciler.rpki import cert as rc
from reconciler.rpki import crl as rc_crl
from reconciler.rpki import manifest, roa
from reconciler.signers import FileSigner
from reconciler.signers.adapter import SignerKey
from reconciler.signers.base import key_id

#: How long the child waits for an answer: short, so that a hung server fails the test quickly.
TIMEOUT = 60.0
#: The validity of what the child signs (its manifests and CRLs are re-signed at each publish).
VALIDITY = timedelta(days=1)


def roa_of(asn: int, *prefixes: str, max_length: int | None = None) -> roa.RoaContent:
    """A ROA for ``asn`` over ``prefixes`` (each its own length, or ``max_length``)."""
    networks = [ip_network(p) for p in prefixes]
    return roa.RoaContent.of(asn, (roa.RoaPrefix(n, max_length or n.prefixlen) for n in networks))


def vrps_of(contents: list[roa.RoaContent]) -> frozenset[tuple[int, str, int]]:
    return frozenset(vrp for content in contents for vrp in content.vrps)


@dataclass
class _Point:
    """One certified key of the child: its certificate and the numbers of what it last signed."""

    label: str
    key: bytes
    key_id: bytes
    issued: updown.IssuedCertificate
    number: int = 0

    @property
    def resources(self) -> Resources:
        held = rc.decode(self.issued.der, where=self.issued.cert_url).resources
        assert not (held.inherit_ip or held.inherit_asn), "a parent of ours never issues inherit"
        return held.resources


@dataclass
class RemoteChild:
    """The child CA ``handle``, keeping everything of its own below ``directory``."""

    handle: str
    directory: Path
    now: datetime
    signer: FileSigner = field(init=False)
    key: bytes = field(init=False)
    identity: bpki.IdentityCertificate = field(init=False)
    replay: ReplayGuard = field(init=False)
    parent: UpDownClient | None = None
    repository: PublicationClient | None = None
    points: dict[str, _Point] = field(default_factory=dict)
    #: What the child publishes, under each of its certified keys (a ROA its certificate does not
    #: cover is left out: a child does not sign what it does not hold).
    roas: list[roa.RoaContent] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.signer = FileSigner(self.directory / "keys")
        self.key = self.signer.create_key(bpki.identity_label(self.handle))
        self.identity = bpki.create_identity(self.signer, self.key, self.now)
        self.replay = ReplayGuard(self.directory / "replay.json")

    # -- RFC 8183 ------------------------------------------------------------------------------------

    def child_request(self) -> bytes:
        return oob.render(oob.ChildRequest(child_handle=self.handle, identity=self.identity.der))

    def publisher_request(self) -> bytes:
        return oob.render(oob.PublisherRequest(publisher_handle=self.handle, identity=self.identity.der))

    def connect(
        self, parent_response: bytes, repository_response: bytes, *, timeout: float = TIMEOUT
    ) -> None:
        """Configure both clients from the files the parent's operator sent."""
        parent = oob.parse_parent_response(parent_response, "parent_response")
        repository = oob.parse_repository_response(repository_response, "repository_response")
        assert parent.child_handle == self.handle and repository.publisher_handle == self.handle
        self.parent = UpDownClient(parent, self.signer, self.key, self.identity, self.replay, timeout=timeout)
        self.repository = PublicationClient(
            repository, self.signer, self.key, self.identity, self.replay, timeout=timeout
        )

    @property
    def sia_base(self) -> str:
        assert self.repository is not None
        return self.repository.repository.sia_base

    def _parent(self) -> UpDownClient:
        assert self.parent is not None, "connect() first"
        return self.parent

    def _repository(self) -> PublicationClient:
        assert self.repository is not None, "connect() first"
        return self.repository

    # -- RFC 6492 -------------------------------------------------------------------------------------

    def list(self) -> updown.ListResponse:
        return self._parent().list()

    def ca_key(self, label: str) -> bytes:
        return self.signer.find_key(label) or self.signer.create_key(label)

    def key_id(self, label: str) -> bytes:
        return key_id(self.signer.public_key(self.ca_key(label)))

    def repository_of(self, label: str) -> str:
        """Where the key ``label`` publishes: its own directory below the sia_base."""
        return f"{self.sia_base}{label}/"

    def request(self, label: str, class_name: str, limit: Resources | None = None) -> updown.IssueResponse:
        """A certificate for the CA key ``label`` (made the first time), kept for signing."""
        key = self.ca_key(label)
        where = self.repository_of(label)
        notify = self._repository().repository.rrdp_notification_uri
        request = csr.build_ca_request(self.signer, key, where, f"{where}{label}.mft", notify)
        response = self._parent().issue(updown.IssueRequest(class_name, request, limit))
        (issued,) = response.resource_class.certificates
        previous = self.points.get(label)
        self.points[label] = _Point(
            label, key, self.key_id(label), issued, previous.number if previous else 0
        )
        return response

    def revoke(self, label: str, class_name: str) -> updown.RevokeResponse:
        """Revoke the key ``label`` at the parent; it signs nothing any more."""
        answer = self._parent().revoke(class_name, self.key_id(label))
        del self.points[label]
        return answer

    # -- signing and RFC 8181 -------------------------------------------------------------------------

    def signed(self, now: datetime) -> dict[str, bytes]:
        """URI -> object of every certified key's publication point, freshly signed at ``now``: a CRL,
        the ROAs its certificate covers and a manifest of them (numbers going up by one each time)."""
        objects: dict[str, bytes] = {}
        start, end = now - timedelta(minutes=5), now + VALIDITY
        for point in self.points.values():
            point.number += 1
            where = self.repository_of(point.label)
            crl_name = layout.crl_name(point.key_id)
            issuer = rc.Issuer(
                SignerKey(self.signer, point.key), point.key_id, point.issued.cert_url, where + crl_name
            )
            files = {
                crl_name: rc_crl.build(
                    issuer=issuer, number=point.number, this_update=start, next_update=end, revoked=()
                )
            }
            held = point.resources
            for content in self.roas:
                if not all(held.holds_prefix(p.prefix) for p in content.prefixes):
                    continue
                name = layout.roa_name(content.asn, content.prefixes[0].prefix)
                files[name] = signed_object(
                    issuer=issuer,
                    uri=where + name,
                    content_type=roa.CONTENT_TYPE,
                    econtent=roa.encode(content),
                    ee=(start, end),
                    resources=rc.EeResources.prefixes(
                        Resources.of_prefixes(p.prefix for p in content.prefixes)
                    ),
                    serial=x509.random_serial_number(),
                    signing_time=now,
                )
            listed = tuple((name, hashlib.sha256(data).digest()) for name, data in sorted(files.items()))
            files[f"{point.label}.mft"] = signed_object(
                issuer=issuer,
                uri=f"{where}{point.label}.mft",
                content_type=manifest.CONTENT_TYPE,
                econtent=manifest.encode(manifest.ManifestContent(point.number, start, end, listed)),
                ee=(start, end),
                resources=rc.EeResources.inherit(),
                serial=x509.random_serial_number(),
                signing_time=now,
            )
            objects.update({where + name: data for name, data in files.items()})
        return objects

    def publish(self, now: datetime) -> tuple[rfc8181.Pdu, ...]:
        """list -> delta -> send: the repository holds exactly :meth:`signed` afterwards."""
        client = self._repository()
        sent = rfc8181.delta(client.list(), self.signed(now))
        client.send(sent)
        return sent

    def listed(self) -> dict[str, str]:
        return self._repository().list()


# -- rpkictl --------------------------------------------------------------------------------------------


def rpkictl(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "reconciler", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
        check=False,
        env={**os.environ, "COLUMNS": "500"},
    )


def oob_files(repo: Path, ca: str, handle: str, url: str) -> tuple[bytes, bytes]:
    """The parent_response and repository_response ``rpkictl oob`` prints for ``handle``."""
    files = []
    for args in (("parent-response", ca, handle), ("repository-response", handle)):
        shown = subprocess.run(
            [sys.executable, "-m", "reconciler", "oob", *args, str(repo), "--service-uri", url],
            capture_output=True,
            timeout=120,
            stdin=subprocess.DEVNULL,
            check=False,
        )
        assert shown.returncode == 0, shown.stderr.decode()
        files.append(shown.stdout)
    return files[0], files[1]


def approved_apply(repo: Path, gate: str) -> tuple[str, str]:
    """``rpkictl apply --yes`` refused for want of the approval of ``gate`` (exit 3), then applied with
    the token it printed; (what the refusal said, the token)."""
    refused = rpkictl("apply", str(repo), "--yes")
    said = refused.stdout + refused.stderr
    assert refused.returncode == 3, said
    found = re.search(rf"--approve ({re.escape(gate)}:[0-9a-f]+)", said)
    assert found is not None, said
    done = rpkictl("apply", str(repo), "--yes", "--approve", found.group(1))
    assert done.returncode == 0, done.stdout + done.stderr
    return said, found.group(1)


@dataclass
class ServeProcess:
    process: subprocess.Popen[bytes]
    url: str
    log: Path

    def logged(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self) -> int:
        """SIGTERM, and the exit status."""
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=60)


@contextmanager
def serve_process(
    repo: Path, log: Path, *args: str, allow_uncommitted: bool = True
) -> Iterator[ServeProcess]:
    """``rpkictl serve REPO --port 0 ARGS`` until the block ends, its output in ``log``; the files as they
    are unless ``allow_uncommitted`` is False (then what HEAD holds)."""
    files = ("--allow-uncommitted",) if allow_uncommitted else ()
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "reconciler", "serve", str(repo), "--port", "0", *files, *args],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env={**os.environ, "COLUMNS": "500"},
        )
    try:
        deadline = time.monotonic() + 60
        while (found := re.search(rb"on (http://127\.0\.0\.1:\d+) ", log.read_bytes())) is None:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                process.wait(timeout=10)
                raise AssertionError(f"rpkictl serve did not start:\n{log.read_text(errors='replace')}")
            time.sleep(0.1)
        yield ServeProcess(process, found.group(1).decode(), log)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)


def declare(repo: Path, child: RemoteChild, resources: str, ca_file: str = "cas/online.yaml") -> None:
    """The child's RFC 8183 requests committed in the repository; it is an external child of the CA in
    ``ca_file`` entitled to ``resources`` (YAML flow text), and a publisher of our repository."""
    for directory, data in (("children", child.child_request()), ("publishers", child.publisher_request())):
        (repo / directory).mkdir(exist_ok=True)
        (repo / directory / f"{child.handle}.xml").write_bytes(data)
    with (repo / ca_file).open("a") as handle:
        handle.write(
            f"children:\n  - handle: {child.handle}\n    request: children/{child.handle}.xml\n"
            f"    resources: {resources}\n"
        )
    with (repo / "rpki.yaml").open("a") as handle:
        handle.write(f"publishers:\n  - handle: {child.handle}\n    request: publishers/{child.handle}.xml\n")
