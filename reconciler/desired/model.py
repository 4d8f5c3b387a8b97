"""The desired state after loading and checking: what the rest of the reconciler consumes.

These are plain frozen values. The YAML schema (what users write) lives in ``schema.py``; the loader turns
that into these, so that planning never sees a half-checked input.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from ipaddress import IPv4Address
from pathlib import Path
from typing import TYPE_CHECKING

from reconciler.resources import AsnSet, IPNetwork, Resources, prefix_text

if TYPE_CHECKING:  # only types: loading YAML needs no XML or BPKI code until a request file is read
    from reconciler.protocol.bpki import IdentityCertificate
    from reconciler.protocol.oob import ChildRequest, ParentResponse, PublisherRequest, RepositoryResponse


@dataclass(frozen=True, slots=True)
class SourceLocation:
    """Where a value came from, so every later message can point back at the YAML."""

    file: Path
    line: int  # 1-based
    column: int  # 1-based

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"


@dataclass(frozen=True, slots=True)
class RoaIntent:
    """One ROA entry: this AS may originate this prefix, up to this length."""

    asn: int
    prefix: IPNetwork
    max_length: int
    comment: str | None = None
    where: SourceLocation | None = field(default=None, compare=False)

    @property
    def vrp(self) -> tuple[int, str, int]:
        """The validated ROA payload a relying party will output for this entry."""
        return (self.asn, prefix_text(self.prefix), self.max_length)


@dataclass(frozen=True, slots=True)
class AspaIntent:
    """One ASPA entry: the customer AS (held by the CA) and every AS it may send routes up to. The CA
    signs one ASPA object per customer AS (draft-ietf-sidrops-aspa-profile)."""

    customer: int
    providers: tuple[int, ...]  # ascending and unique, as the object lists them
    comment: str | None = None
    where: SourceLocation | None = field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class RouterIntent:
    """A router key the CA certifies for BGPsec (RFC 8209): the router's public key, read and checked
    from a file committed beside the YAML (its PKCS#10 request or its public key), the AS numbers it
    signs for and its BGP Identifier."""

    key: bytes  # SubjectPublicKeyInfo DER of the router's P-256 key
    key_id: bytes  # the key's identifier (SHA-1 of the key, RFC 6487 §4.8.2): what BGPsec names
    asns: AsnSet
    router_id: IPv4Address | None = None
    file: str = ""  # the key file, relative to the desired-state directory
    comment: str | None = None
    where: SourceLocation | None = field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class SafetyPolicy:
    """When a plan needs a human's approval (octoDNS-style thresholds, measured in VRPs).

    The percentage checks apply only to a CA holding at least ``min_existing_vrps`` VRPs; a share of
    removed (or narrowed) VRPs strictly above the threshold trips the gate. ``allow_empty`` lets a CA
    end with no ROAs without approval. ASPAs are counted in provider authorisations (customer-provider
    pairs): removing more than ``aspa_removal_threshold`` of a CA's trips the gate, so by default any
    removal does -- a provider dropped by mistake makes its customer's routes through it invalid.
    """

    delete_pct_threshold: float = 0.30
    narrow_pct_threshold: float = 0.30
    min_existing_vrps: int = 10
    allow_empty: bool = False
    aspa_removal_threshold: int = 0


@dataclass(frozen=True, slots=True)
class RoaGrouping:
    """How ROA entries become ROA objects.

    One object per prefix by default: a ROA that fails validation (its prefix left the CA's resources
    before the ROA was withdrawn, say) takes no other prefix down with it. An origin AS with many
    prefixes of one address family is better served by one object for them all -- thousands of objects
    each cost a key generation and a manifest entry -- so above ``aggregate_above`` prefixes its entries
    of that family share one object, and only below ``split_below`` do they go back to one object each.
    Between the two, what is published stays as it is: adding or removing the prefix that crosses a
    threshold re-signs that origin's objects, never the CA's other ROAs, and never back and forth.
    """

    aggregate_above: int = 32
    split_below: int = 16


@dataclass(frozen=True, slots=True)
class ExternalChild:
    """A child CA run by someone else (Krill, rpkid, another rpkictl) that one of our CAs certifies over
    RFC 6492. Its operator sent an RFC 8183 child_request, committed in the repository; the handle is the
    one we assign (RFC 8183 lets the parent choose), and the resources are what the child is entitled to."""

    handle: str
    request: ChildRequest  # request.child_handle is what the child asked for: informational only
    # The child's BPKI trust anchor, which its up-down messages verify against. Left out of the hash (its
    # key object has none): ``request`` carries the same certificate's bytes.
    identity: IdentityCertificate = field(hash=False)
    request_file: Path  # absolute, inside the desired-state directory
    resources: Resources
    comment: str | None = None
    where: SourceLocation | None = field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class UpstreamParent:
    """A parent run by someone else (a registry, another operator's Krill) that certifies one of our CAs
    over RFC 6492, from the RFC 8183 parent_response committed in the repository. What it grants (the
    resource classes and the certificates it issued) is observed state, kept by ``reconciler.upstream``."""

    response: ParentResponse
    identity: IdentityCertificate = field(hash=False)  # the parent's BPKI trust anchor (hashed via response)
    response_file: Path  # absolute, inside the desired-state directory


@dataclass(frozen=True, slots=True)
class RemoteRepository:
    """A publication server run by someone else where our CAs publish over RFC 8181, from the RFC 8183
    repository_response committed in the repository. Its ``sia_base`` is our rsync base then."""

    response: RepositoryResponse
    identity: IdentityCertificate = field(hash=False)
    response_file: Path
    owner: str  # the CA whose BPKI identity the repository knows us by (the one naming the response)


@dataclass(frozen=True, slots=True)
class CaIntent:
    """One certificate authority as declared in ``cas/**.yaml``."""

    name: str
    parent: str | None
    trust_anchor: bool
    resources: Resources
    roas: tuple[RoaIntent, ...] = ()
    aspas: tuple[AspaIntent, ...] = ()  # one per customer AS, by customer ascending
    routers: tuple[RouterIntent, ...] = ()  # BGPsec router keys to certify, one per key
    signer: str = "default"
    where: SourceLocation | None = field(default=None, compare=False)
    safety: SafetyPolicy = field(default_factory=SafetyPolicy)  # global policy with this CA's overrides
    key_generation: int = 1  # raising it starts an RFC 6489 key roll to a new key
    children: tuple[ExternalChild, ...] = ()  # external child CAs; local ones name this CA as parent
    upstream: UpstreamParent | None = None  # an RFC 6492 parent run by someone else (parent is None)
    #: Where the certificates of the CA's keys are published, by key generation, when someone else
    #: publishes them (the URIs the RFC 6492 parent gave): the AIA of everything each key signs. Set on
    #: the effective desired state (``upstream.effective``); empty when the layout says where (our tree).
    certificate_uris: tuple[tuple[int, str], ...] = ()

    @property
    def external(self) -> bool:
        """True for a CA certified over RFC 6492 by a parent run by someone else."""
        return self.upstream is not None

    def certificate_uri(self, generation: int) -> str | None:
        """Where someone else publishes the certificate of this generation's key (None: in our tree)."""
        return next((uri for g, uri in self.certificate_uris if g == generation), None)


@dataclass(frozen=True, slots=True)
class Timing:
    """Validity periods and renewal margins (Krill's production defaults)."""

    manifest_validity: timedelta = timedelta(hours=24)
    manifest_renew_before: timedelta = timedelta(hours=8)
    certificate_validity: timedelta = timedelta(weeks=52)
    certificate_renew_before: timedelta = timedelta(weeks=4)
    ta_certificate_validity: timedelta = timedelta(weeks=52 * 5)
    ta_certificate_renew_before: timedelta = timedelta(weeks=26)
    # The trust anchor's manifest and CRL live longer: an offline trust anchor is renewed by hand,
    # monthly, with weeks to spare (Krill's trust anchor uses 12 weeks too).
    ta_manifest_validity: timedelta = timedelta(weeks=12)
    ta_manifest_renew_before: timedelta = timedelta(weeks=8)
    ta_reminder_before: timedelta = timedelta(days=15)  # plan warns
    ta_critical_before: timedelta = timedelta(days=7)  # plan warns louder, ``check`` fails
    key_roll_staging: timedelta = timedelta(hours=24)  # RFC 6489 §2: new key published, not yet used

    def point_validity(self, trust_anchor: bool) -> tuple[timedelta, timedelta]:
        """(validity, renew_before) of a CA's manifest and CRL."""
        if trust_anchor:
            return self.ta_manifest_validity, self.ta_manifest_renew_before
        return self.manifest_validity, self.manifest_renew_before


@dataclass(frozen=True, slots=True)
class Publication:
    rsync_base: str  # always ends with "/"
    directory: Path  # absolute
    rrdp_base: str | None = None  # https, ends with "/"; None: no RRDP
    #: A publication server run by someone else: ``directory`` then keeps our copy of what is published
    #: there (its ``rsync`` tree), ``rsync_base`` is the repository's sia_base, and RRDP is theirs.
    remote: RemoteRepository | None = None

    @property
    def notify_uri(self) -> str | None:
        """The rpkiNotify URI every CA certificate carries when RRDP is configured (ours, or the remote
        repository's)."""
        if self.remote is not None:
            return self.remote.response.rrdp_notification_uri
        return None if self.rrdp_base is None else self.rrdp_base + "notification.xml"


@dataclass(frozen=True, slots=True)
class SignerConfig:
    """One entry of rpki.yaml's ``signers``; a ``type: pkcs11`` entry is a :class:`Pkcs11SignerConfig`."""

    name: str
    type: str  # "file" or "pkcs11"
    directory: Path | None = None  # absolute, for type "file"
    # For type "file": the environment variable holding the passphrase of the key files (None: the files
    # are not encrypted). Like the PIN, the passphrase itself is never in the model.
    passphrase_env: str | None = None
    key_signer: str | None = None  # type "offline": the signer holding the key on the offline machine


@dataclass(frozen=True, slots=True)
class Pkcs11SignerConfig(SignerConfig):
    """A ``type: pkcs11`` signer: an HSM token reached through its PKCS#11 library.

    A subclass rather than more fields on :class:`SignerConfig`, so that file signers keep exactly their
    old shape (plan summaries print a signer's fields). The PIN is deliberately not here: only the
    *name* of the environment variable holding it is, so ``validate`` works without the secret and no
    desired-state value ever contains it.
    """

    module: Path | None = None  # absolute path of the PKCS#11 library
    token: str | None = None  # the token's label
    pin_env: str | None = None  # the environment variable holding the user PIN


@dataclass(frozen=True, slots=True)
class PublisherQuota:
    """How much one external publisher may keep in our repository: a full disk stops every CA's
    publication, not only the publisher's."""

    objects: int = 10_000
    size: int = 100 * 1024 * 1024  # bytes, all its objects together


@dataclass(frozen=True, slots=True)
class Publisher:
    """A CA run by someone else that publishes in our repository over RFC 8181, from the RFC 8183
    publisher_request committed in the repository. Its objects live below ``sia_base``, which is ours to
    choose and cannot change without the publisher migrating (see ``layout.publisher_repository``)."""

    handle: str
    request: PublisherRequest
    identity: IdentityCertificate = field(hash=False)  # its BPKI trust anchor (hashed through request)
    request_file: Path  # absolute, inside the desired-state directory
    sia_base: str  # <rsync_base>publishers/<handle>/
    quota: PublisherQuota = field(default_factory=PublisherQuota)
    comment: str | None = None
    where: SourceLocation | None = field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class Serve:
    """rpki.yaml's ``serve``: how the RFC 6492 / RFC 8181 responder is reached and signs."""

    base_uri: str | None = None  # http(s), without a trailing "/"; service URIs append /rfc6492/<handle>
    signer: str = "default"  # holds the publication server's BPKI identity key


@dataclass(frozen=True, slots=True)
class DesiredState:
    """Everything ``plan`` needs from the Git repository, checked and resolved."""

    root: Path  # the desired-state directory (REPO)
    publication: Publication
    signers: dict[str, SignerConfig]
    timing: Timing
    cas: tuple[CaIntent, ...]  # parents before children; exactly one trust anchor first
    digest: str  # sha256 over the loaded YAML files, for plans and audit records
    safety: SafetyPolicy = field(default_factory=SafetyPolicy)
    plan_max_age: timedelta = timedelta(hours=1)  # a saved plan older than this is refused
    audit_log: Path | None = None  # absolute; None means <publication directory>/audit.jsonl
    roa_grouping: RoaGrouping = field(default_factory=RoaGrouping)
    publishers: tuple[Publisher, ...] = ()  # external publishers of our repository, in file order
    serve: Serve = field(default_factory=Serve)

    @property
    def audit_log_path(self) -> Path:
        return self.audit_log or self.publication.directory / "audit.jsonl"

    _by_name: dict[str, CaIntent] = field(init=False, repr=False, compare=False)
    _children: dict[str, tuple[CaIntent, ...]] = field(init=False, repr=False, compare=False)
    _external: dict[str, tuple[CaIntent, ExternalChild]] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # Looked up for every object of every CA: a registry has tens of thousands of CAs.
        children: dict[str, list[CaIntent]] = {}
        for ca in self.cas:
            if ca.parent is not None:
                children.setdefault(ca.parent, []).append(ca)
        object.__setattr__(self, "_by_name", {ca.name: ca for ca in reversed(self.cas)})
        object.__setattr__(self, "_children", {name: tuple(found) for name, found in children.items()})
        external = {child.handle: (ca, child) for ca in self.cas for child in ca.children}
        object.__setattr__(self, "_external", external)

    def ca(self, name: str) -> CaIntent:
        return self._by_name[name]

    def has(self, name: str) -> bool:
        """Whether a CA of this name is in the desired state."""
        return name in self._by_name

    @property
    def trust_anchor(self) -> CaIntent:
        """The root of the hierarchy: the trust anchor, or the CA an external parent certifies."""
        return self.cas[0]

    @property
    def external_root(self) -> CaIntent | None:
        """The CA certified by an external parent (RFC 6492), when this hierarchy has no trust anchor of
        its own."""
        root = self.cas[0] if self.cas else None
        return root if root is not None and root.upstream is not None else None

    def children(self, name: str) -> tuple[CaIntent, ...]:
        return self._children.get(name, ())

    def external_child(self, handle: str) -> tuple[CaIntent, ExternalChild] | None:
        """The external child with this handle and the CA that is its parent (handles are unique)."""
        return self._external.get(handle)

    def publisher(self, handle: str) -> Publisher | None:
        """The external publisher with this handle."""
        return next((p for p in self.publishers if p.handle == handle), None)
