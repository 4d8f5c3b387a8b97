"""Which responders ``rpkictl serve`` runs: RFC 6492 when a CA declares external ``children:``, RFC 8181
when rpki.yaml declares ``publishers:``; with neither there is nothing to serve, and the command says so
rather than run a server that can only answer 404.

The set is read when the server starts: a merged change that adds the first child or publisher, or
changes the publishers, takes effect when the service is restarted.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from reconciler.desired.model import DesiredState
from reconciler.serve.app import Responder


class NothingToServe(Exception):  # noqa: N818 - the name says the state the caller handles
    """No external child and no publisher is declared: the message says where to declare them."""


@dataclass(frozen=True)
class Responders:
    updown: Responder | None
    publication: Responder | None
    children: int
    publishers: int

    def describe(self) -> str:
        """``RFC 6492 for 2 children and RFC 8181 for 1 publisher``."""
        parts = []
        if self.updown is not None:
            parts.append(f"RFC 6492 for {_count(self.children, 'child', 'children')}")
        if self.publication is not None:
            parts.append(f"RFC 8181 for {_count(self.publishers, 'publisher', 'publishers')}")
        return " and ".join(parts)


def _count(number: int, one: str, many: str) -> str:
    return f"{number} {one if number == 1 else many}"


def build(
    desired: DesiredState,
    load: Callable[[], DesiredState],
    now: datetime,
    log: Callable[[str], None],
    *,
    fingerprint: Callable[[], object] | None = None,
) -> Responders:
    """The responders for ``desired``. ``load`` reads the desired state again (the RFC 6492 responder
    answers each message from the state as committed then; with ``fingerprint``, only once it changes:
    see ``ParentService``); ``now`` is when the repository's identity is made if it does not exist yet;
    ``log`` receives what a responder reports to the operator. Raises :class:`NothingToServe`, or what
    opening the signers raises."""
    children = sum(len(ca.children) for ca in desired.cas)
    publishers = len(desired.publishers)
    if not children and not publishers:
        raise NothingToServe(
            f"nothing to serve: no CA in {desired.root} declares external children (children: in a CA "
            "file) and rpki.yaml declares no publishers (publishers:); declare them "
            "(docs/yaml-reference.md) and start rpkictl serve again"
        )
    updown: Responder | None = None
    publication: Responder | None = None
    if children:
        from reconciler.serve.parent import ParentService  # noqa: PLC0415 - loads only when children exist

        updown = ParentService(load, fingerprint=fingerprint, log=log)
    if publishers:
        from reconciler.serve.publication import PublicationService  # noqa: PLC0415 - likewise

        publication = PublicationService.open(desired, now, log=log)
    return Responders(updown, publication, children, publishers)
