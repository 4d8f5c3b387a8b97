"""The RFC 8183 files we hand out: a child_request or publisher_request for one of our CAs to become a
child or publisher elsewhere, and the parent_response or repository_response that answers an external
child or publisher declared in the desired state.

The answers are a pure function of the desired state, our identity and the service base URI, so they can
be printed again at any time and come out the same: the handles we assigned, the service URI
``<base>/rfc6492/<handle>`` or ``<base>/rfc8181/<handle>`` (where ``rpkictl serve`` answers), the
publisher's ``sia_base`` below our rsync base, and the request's ``tag`` echoed back (RFC 8183 §5.2.2).
"""

from __future__ import annotations

import re
from typing import Literal

from reconciler.desired.model import CaIntent, DesiredState, ExternalChild, Publisher
from reconciler.desired.schema import SERVICE_BASE_PATTERN
from reconciler.protocol import oob
from reconciler.protocol.bpki import IdentityCertificate

Protocol = Literal["rfc6492", "rfc8181"]

_SERVICE_BASE_RE = re.compile(SERVICE_BASE_PATTERN)


class ExchangeError(Exception):
    """A file cannot be made: an unknown CA, child or publisher, or no usable service URI. The message
    says what to do."""


def service_uri(base_uri: str, protocol: Protocol, handle: str) -> str:
    """Where a child (RFC 6492) or publisher (RFC 8181) with ``handle`` sends its messages."""
    return f"{base_uri.rstrip('/')}/{protocol}/{handle}"


def base_uri(desired: DesiredState, given: str | None) -> str:
    """The service base URI: ``given`` (a command-line option) over rpki.yaml's ``serve.base_uri``."""
    if given is None:
        if desired.serve.base_uri is None:
            raise ExchangeError(
                "no service URI: pass --service-uri https://HOST/PATH, or set serve.base_uri in rpki.yaml "
                "(where 'rpkictl serve' is reached)"
            )
        return desired.serve.base_uri
    text = given.strip()
    if not _SERVICE_BASE_RE.fullmatch(text):
        raise ExchangeError(
            f"--service-uri {given!r} is not an http(s) URI of a host and an optional path, e.g. "
            "https://ca.example.net/rpki"
        )
    return text.rstrip("/")


def find_ca(desired: DesiredState, name: str) -> CaIntent:
    if not desired.has(name):
        known = ", ".join(ca.name for ca in desired.cas)
        raise ExchangeError(f"no CA named {name!r} in the desired state; its CAs: {known}")
    return desired.ca(name)


def find_child(desired: DesiredState, ca: CaIntent, handle: str) -> ExternalChild:
    """The external child ``handle`` of ``ca``."""
    found = desired.external_child(handle)
    if found is not None and found[0].name == ca.name:
        return found[1]
    if found is not None:
        raise ExchangeError(f"child {handle!r} is declared under CA {found[0].name!r}, not {ca.name!r}")
    declared = ", ".join(child.handle for child in ca.children) or "none"
    raise ExchangeError(
        f"CA {ca.name!r} declares no external child {handle!r} (its children: {declared}); add it under "
        "'children:' in the CA's file, with the child_request its operator sent"
    )


def find_publisher(desired: DesiredState, handle: str) -> Publisher:
    found = desired.publisher(handle)
    if found is None:
        declared = ", ".join(p.handle for p in desired.publishers) or "none"
        raise ExchangeError(
            f"rpki.yaml declares no publisher {handle!r} (its publishers: {declared}); add it under "
            "'publishers:', with the publisher_request its operator sent"
        )
    return found


def parent_response(
    ca: CaIntent, child: ExternalChild, identity: IdentityCertificate, base: str
) -> oob.ParentResponse:
    """Our answer to an external child of ``ca``: ``identity`` is ``ca``'s own."""
    return oob.ParentResponse(
        service_uri=service_uri(base, "rfc6492", child.handle),
        parent_handle=ca.name,
        child_handle=child.handle,
        identity=identity.der,
        tag=child.request.tag,
    )


def repository_response(
    desired: DesiredState, publisher: Publisher, identity: IdentityCertificate, base: str
) -> oob.RepositoryResponse:
    """Our answer to an external publisher: ``identity`` is the publication server's; the RRDP
    notification URI is given when the repository publishes RRDP."""
    return oob.RepositoryResponse(
        service_uri=service_uri(base, "rfc8181", publisher.handle),
        publisher_handle=publisher.handle,
        sia_base=publisher.sia_base,
        identity=identity.der,
        rrdp_notification_uri=desired.publication.notify_uri,
        tag=publisher.request.tag,
    )
