"""The resource classes of an external parent, and the CA of ours that signs under each.

A parent lists our resources in one or more resource classes (RFC 6492 §3.3.2: RIRs keep, for example,
resources transferred from another registry in a class of their own), and certifies each class
separately: one key of ours per class, each with its certificate, its publication point, manifest and
CRL. So each class with resources is signed under a CA of its own. The class the CA signed under first
keeps the CA's name -- its keys, its directory and everything published there stay where they were
when a second class appears; each further class is signed under ``<ca>_class-<class>``, a name no CA
file can declare (CA names have no '_') and that no key generation's label takes (``<ca>_g<N>``), with
a key, a directory and a certificate of its own; its letters are those every repository takes in a
directory name. Should the parent stop listing the first class, the CA's name goes to the first class
still listed.

A ROA is signed in the first of those CAs whose certificate covers its prefix; a local CA below in the
first whose certificate covers all its resources (else in the first). The comparison of what a class
entitles us to with what the certificate it issued holds -- which decides whether apply asks for a new
certificate, what the plan and the status show, and the ``parent-shrink`` gate -- is :func:`holdings`.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass

from reconciler.protocol import updown
from reconciler.resources import Resources
from reconciler.rpki import cert as rc
from reconciler.upstream.state import Certified, UpstreamState, active
from reconciler.upstream.state import classes as listed_classes

#: Between the CA's name and the class in the name of the CA of a further class.
SEPARATOR = "_class-"
#: A class name used as it is in that name; any other is replaced by a digest of it.
_PLAIN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]{0,31}$")


def ca_name(root: str, class_name: str) -> str:
    """The name of the CA that signs under a further class of ``root``'s parent: a file name, stable
    for the class, never one a CA file can declare."""
    plain = (
        class_name if _PLAIN.match(class_name) else "c" + hashlib.sha256(class_name.encode()).hexdigest()[:16]
    )
    return f"{root}{SEPARATOR}{plain}"


def is_class_ca(name: str, root: str) -> bool:
    """Whether ``name`` is the name of a CA of a further class of ``root``."""
    return name.startswith(root + SEPARATOR)


@dataclass(frozen=True)
class Assigned:
    """A resource class with resources, and the name of our CA that signs under it."""

    ca: str
    listed: updown.ResourceClass


def assign(root: str, listed: Sequence[updown.ResourceClass], first: str | None) -> tuple[Assigned, ...]:
    """The classes with resources in the parent's order, each with our CA: ``root`` for the class it
    signs under (``first``, as kept; the first listed when that one is gone), first in the result."""
    usable = [c for c in listed if c.resources]
    own = next((c for c in usable if c.class_name == first), usable[0] if usable else None)
    if own is None:
        return ()
    return (
        Assigned(root, own),
        *(Assigned(ca_name(root, c.class_name), c) for c in usable if c is not own),
    )


def signing(root: str, kept: UpstreamState) -> list[tuple[str, Certified]]:
    """Our CAs under the parent with the certificate of each one's active key, ``root`` first."""
    if kept.certified is None:
        return []
    return [(root, kept.certified), *((ca_name(root, c.class_name), c) for c in kept.others)]


@dataclass(frozen=True)
class Holding:
    """One class as last listed and the certificate it issued for our active key: the two differ when
    the entitlement changed and the certificate does not follow yet."""

    class_name: str
    entitled: Resources
    certified: Certified | None
    held: Resources  # what the certificate holds (nothing without one)

    @property
    def gained(self) -> Resources:
        """Entitled but not certified: apply asks for a certificate that holds it."""
        return self.entitled.subtract(self.held)

    @property
    def lost(self) -> Resources:
        """Certified but no longer entitled: asking for a certificate without it is gated."""
        return self.held.subtract(self.entitled) if self.certified is not None else Resources()


def holdings(kept: UpstreamState) -> tuple[Holding, ...]:
    """Each class of the kept list that has resources or holds one of our certificates, with that
    certificate: the first class's first. Raises ``ProtocolError`` for a damaged list, and
    ``rc.CertificateError`` for a damaged certificate."""
    certified = {c.class_name: c for c in active(kept)}
    found = []
    for listed in listed_classes(kept):
        mine = certified.get(listed.class_name)
        if not listed.resources and mine is None:
            continue
        held = rc.decode(mine.der, where=mine.uri).resources.resources if mine is not None else Resources()
        found.append(Holding(listed.class_name, listed.resources, mine, held))
    first = kept.certified.class_name if kept.certified is not None else None
    found.sort(key=lambda h: h.class_name != first)
    return tuple(found)


def pending(found: Sequence[Holding]) -> tuple[Resources, Resources]:
    """(entitled but not certified, certified but no longer entitled) over every class."""
    gained = lost = Resources()
    for holding in found:
        gained, lost = gained.union(holding.gained), lost.union(holding.lost)
    return gained, lost
