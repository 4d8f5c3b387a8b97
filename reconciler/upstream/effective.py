"""The desired state as it can be signed under the certificate an external parent issued us.

The YAML says what we want; the parent says what we hold. The CA under the external parent takes the
resources of its certificate (not those written in YAML), the URI where the parent publishes it becomes
the AIA of everything its key signs, and a ROA whose prefix the certificate does not cover is left out
-- signing it would make an object every relying party rejects -- with a notice naming the ROA entry and
what the parent certifies. A local CA below is narrowed the same way. Entries come back by themselves
when the parent grants the resources again, as the YAML still holds them.

The certificate is placed where the trust anchor's would be in the publication point as read (``<ca>.cer``
at the top), so that the planner, which knows each CA's key from its published certificate, sees it; it
is never sent to the repository (see :mod:`.repository`).
"""

from __future__ import annotations

import dataclasses
from datetime import datetime

from reconciler import layout
from reconciler.desired.model import AspaIntent, CaIntent, DesiredState, RoaIntent, RouterIntent
from reconciler.plan.model import Notice, Severity
from reconciler.plan.wording import describe_delta
from reconciler.published.reader import PublishedState
from reconciler.resources import AsnSet, Resources, prefix_text
from reconciler.rpki import cert as rc
from reconciler.upstream import classes
from reconciler.upstream import state as stored
from reconciler.upstream.public import issued_certificates
from reconciler.upstream.state import Certified, UpstreamState

#: Notices about what the parent grants, and about the exchanges with it and the repository.
KIND = "upstream"


def effective(
    desired: DesiredState, found: PublishedState, *, public: bool = False
) -> tuple[DesiredState, tuple[Notice, ...]]:
    """``desired`` narrowed to what the parent certified, the certificate put into ``found``, and what
    the operator should know. Unchanged for a hierarchy with its own trust anchor. ``public``: the
    publication was read from the repository's public side (``--published``), so nothing is read from
    the local directory; the certificate is read from the parent's repository (``upstream.public``).
    With several resource classes, the CA of each further class is added after the root
    (``upstream.classes``)."""
    root = desired.external_root
    if root is None or root.upstream is None:
        return desired, ()
    parent = root.upstream.response.parent_handle
    if public:
        signing, how = issued_certificates(desired, found)
        kept = UpstreamState()
        notices = [
            Notice(
                KIND,
                Severity.INFO if signing else Severity.WARNING,
                root.name,
                f"our certificate from parent {parent}: {how}",
            )
        ]
    else:
        kept = stored.load(desired.publication.directory, root.name)
        notices = list(_peer_notices(root, kept, parent))
        signing = classes.signing(root.name, kept)
    if not signing:
        notices.append(
            Notice(
                KIND,
                Severity.WARNING,
                root.name,
                f"no certificate from parent {parent} yet: apply asks for one; until then nothing of "
                f"{root.name} can be signed",
            )
        )
        return desired, tuple(notices)
    names = {certified.class_name: name for name, certified in signing}
    issued: dict[str, list[Certified]] = {name: [certified] for name, certified in signing}
    for certified in kept.staged:
        if certified.class_name in names:
            issued[names[certified.class_name]].append(certified)
    held: dict[str, Resources] = {}
    for name, certified in signing:
        certificate = rc.decode(certified.der, where=f"the certificate parent {parent} issued to {name}")
        held[name] = certificate.resources.resources
        _place_certificates(dataclasses.replace(root, name=name), issued[name], found)
    total = Resources()
    for resources in held.values():
        total = total.union(resources)
    notices += _declared_versus_held(root, total, parent)
    roas = _by_class(root, held, _describe_held(held), parent, notices)
    aspas = _aspas_by_class(root, held, _describe_held(held), parent, notices)
    routers = _routers_by_class(root, held, _describe_held(held), parent, notices)
    limits: dict[str, Resources] = dict(held)
    cas: list[CaIntent] = []
    for ca in desired.cas:
        if ca is not root:
            cas.append(_below(ca, root.name, held=held, limits=limits, parent=parent, notices=notices))
            continue
        cas += (
            dataclasses.replace(
                ca,
                name=name,
                resources=held[name],
                roas=roas[name],
                aspas=aspas[name],
                routers=routers[name],
                certificate_uris=tuple(sorted((c.generation, c.uri) for c in issued[name])),
                children=ca.children if name == root.name else (),
            )
            for name in held
        )
    return dataclasses.replace(desired, cas=tuple(cas)), tuple(notices)


def _below(
    declared: CaIntent,
    root: str,
    *,
    held: dict[str, Resources],
    limits: dict[str, Resources],
    parent: str,
    notices: list[Notice],
) -> CaIntent:
    """A local CA below the CAs under the parent, narrowed to what its parent holds; one whose parent is
    the root goes under the first of them whose certificate covers all its resources."""
    ca = declared
    if ca.parent == root:
        home = next((name for name, resources in held.items() if resources.contains(ca.resources)), root)
        ca = dataclasses.replace(ca, parent=home) if home != root else ca
    limit = limits[ca.parent or ""]
    resources = ca.resources.subtract(ca.resources.subtract(limit))
    limits[ca.name] = resources
    covered = [resources.holds_prefix(r.prefix) for r in ca.roas]  # one pass: a CA has thousands
    kept_roas = tuple(r for r, held_here in zip(ca.roas, covered, strict=True) if held_here)
    notices += (
        _left_out(ca, roa, str(resources or "nothing"), parent)
        for roa, held_here in zip(ca.roas, covered, strict=True)
        if not held_here
    )
    kept_aspas = tuple(a for a in ca.aspas if _holds_as(resources, a.customer))
    notices += (
        _aspa_left_out(ca, a, str(resources or "nothing"), parent)
        for a in ca.aspas
        if not _holds_as(resources, a.customer)
    )
    kept_routers = _routers_within(ca, resources, parent, notices)
    changes: dict[str, object] = {}
    if kept_routers != ca.routers:
        changes["routers"] = kept_routers
    if resources != ca.resources:
        changes["resources"] = resources
    if len(kept_roas) != len(ca.roas):
        changes["roas"] = kept_roas
    if len(kept_aspas) != len(ca.aspas):
        changes["aspas"] = kept_aspas
    return dataclasses.replace(ca, **changes) if changes else ca  # type: ignore[arg-type]


def _by_class(
    root: CaIntent, held: dict[str, Resources], described: str, parent: str, notices: list[Notice]
) -> dict[str, tuple[RoaIntent, ...]]:
    """The root's ROA entries by the CA that signs them: the first whose certificate covers the prefix;
    those no certificate covers are left out, each with a notice."""
    placed: dict[str, list[RoaIntent]] = {name: [] for name in held}
    order = list(held.items())
    for roa in root.roas:
        home = next((name for name, resources in order if resources.holds_prefix(roa.prefix)), None)
        if home is None:
            notices.append(_left_out(root, roa, described, parent))
        else:
            placed[home].append(roa)
    return {name: tuple(roas) for name, roas in placed.items()}


def _holds_as(resources: Resources, asn: int) -> bool:
    return resources.asn.contains(AsnSet.of([(asn, asn)]))


def _aspas_by_class(
    root: CaIntent, held: dict[str, Resources], described: str, parent: str, notices: list[Notice]
) -> dict[str, tuple[AspaIntent, ...]]:
    """The root's ASPAs by the CA that signs them: the first whose certificate holds the customer AS;
    one that no certificate holds is left out, with a notice."""
    placed: dict[str, list[AspaIntent]] = {name: [] for name in held}
    for aspa in root.aspas:
        home = next((name for name, resources in held.items() if _holds_as(resources, aspa.customer)), None)
        if home is None:
            notices.append(_aspa_left_out(root, aspa, described, parent))
        else:
            placed[home].append(aspa)
    return {name: tuple(aspas) for name, aspas in placed.items()}


def _routers_by_class(
    root: CaIntent, held: dict[str, Resources], described: str, parent: str, notices: list[Notice]
) -> dict[str, tuple[RouterIntent, ...]]:
    """The root's router keys by the CA that certifies them: each AS number of a router under the first
    CA whose certificate holds it (a certificate per AS number, see ``plan.routers``); the AS numbers
    no certificate holds are left out, with a notice."""
    placed: dict[str, list[RouterIntent]] = {name: [] for name in held}
    for router in root.routers:
        left = router.asns
        for name, resources in held.items():
            here = AsnSet(_intersect(left, resources.asn))
            if here:
                placed[name].append(dataclasses.replace(router, asns=here))
                left = left.subtract(here)
        if left:
            notices.append(_router_left_out(root, router, left, described, parent))
    return {name: tuple(routers) for name, routers in placed.items()}


def _routers_within(
    ca: CaIntent, resources: Resources, parent: str, notices: list[Notice]
) -> tuple[RouterIntent, ...]:
    """The router keys of a CA below, each with the AS numbers its narrowed resources still hold."""
    described = str(resources or "nothing")
    kept = []
    for router in ca.routers:
        here = AsnSet(_intersect(router.asns, resources.asn))
        if here != router.asns:
            notices.append(_router_left_out(ca, router, router.asns.subtract(here), described, parent))
        if here:
            kept.append(router if here == router.asns else dataclasses.replace(router, asns=here))
    return tuple(kept)


def _intersect(ours: AsnSet, held: AsnSet) -> tuple[tuple[int, int], ...]:
    return ours.subtract(ours.subtract(held)).ranges


def _router_left_out(ca: CaIntent, router: RouterIntent, left: AsnSet, held: str, parent: str) -> Notice:
    entry = f"router key {router.file} for {left}"
    return _withheld(ca, entry, router.where, str(left), held=held, parent=parent, done="certified")


def _aspa_left_out(ca: CaIntent, aspa: AspaIntent, held: str, parent: str) -> Notice:
    customer = f"AS{aspa.customer}"
    return _withheld(ca, f"the ASPA of {customer}", aspa.where, customer, held=held, parent=parent)


def _describe_held(held: dict[str, Resources]) -> str:
    if len(held) == 1:
        return str(next(iter(held.values())) or "nothing")
    return "; ".join(f"{name}: {resources or 'nothing'}" for name, resources in held.items())


def expiry_notices(desired: DesiredState, found: PublishedState, now: datetime) -> list[Notice]:
    """When a certificate the parent issued for an active key nears its end (the plan's ``now``): the
    parent renews it when asked, and apply (or the loop) asks well before."""
    root = desired.external_root
    if root is None or root.upstream is None:
        return []
    parent = root.upstream.response.parent_handle
    notices = []
    for ca in desired.cas:
        if not ca.external or ca.parent is not None:
            continue
        certificates = [
            found.certificate(layout.certificate_path(ca, g)) for g in range(1, ca.key_generation + 1)
        ]
        ends = [c.not_after for c in certificates if isinstance(c, rc.ResourceCertificate)]
        if not ends:
            continue
        last = max(ends)  # the newest key's: during a roll, the one that goes on
        left, renew = last - now, desired.timing.certificate_renew_before
        if left >= renew:
            continue
        severity = Severity.CRITICAL if left < renew / 4 else Severity.WARNING
        message = (
            f"the certificate parent {parent} issued ends {last:%Y-%m-%dT%H:%M:%SZ} ({describe_delta(left)} "
            "from now): apply or the reconcile loop asks for a new one; if the parent does not renew it, ask "
            "the registry"
        )
        notices.append(Notice("expiry", severity, ca.name, message, last))
    return notices


def _place_certificates(ca: CaIntent, listed: list[Certified], found: PublishedState) -> None:
    """Exactly the certificates the parent lists for the CA's keys, whatever our local copy kept at
    those paths: a revoked key's certificate left there would keep its key roll from ending."""
    by_generation = {c.generation: c for c in listed}
    for generation in range(1, ca.key_generation + 1):
        path = layout.certificate_path(ca, generation)
        if generation in by_generation:
            found.put(path, by_generation[generation].der)
        else:
            found.drop(path)


def _left_out(ca: CaIntent, roa: RoaIntent, held: str, parent: str) -> Notice:
    prefix = prefix_text(roa.prefix)
    entry = f"ROA AS{roa.asn} {prefix}-{roa.max_length}"
    return _withheld(ca, entry, roa.where, prefix, held=held, parent=parent)


def _withheld(
    ca: CaIntent, entry: str, where: object, missing: str, *, held: str, parent: str, done: str = "signed"
) -> Notice:
    """An entry of the YAML that is not signed because the parent does not certify what it needs."""
    at = f" ({where})" if where is not None else ""
    grant = "the prefix" if "/" in missing else "the AS"
    return Notice(
        KIND,
        Severity.WARNING,
        ca.name,
        f"{entry}{at} is not {done}: parent {parent} does not certify {missing} to {ca.name} (it certifies "
        f"{held}); the entry stays in the YAML and is {done} again once the parent grants {grant}",
    )


def _declared_versus_held(root: CaIntent, held: Resources, parent: str) -> list[Notice]:
    """The YAML's resources are what the operator expects to hold; the difference is worth a word."""
    missing = root.resources.subtract(held)
    extra = held.subtract(root.resources)
    found = []
    if missing:
        found.append(
            Notice(
                KIND,
                Severity.WARNING,
                root.name,
                f"parent {parent} does not certify {missing} to {root.name}, which its YAML lists: "
                "nothing below can use them (an address transfer? ask the registry, or remove them from "
                "the YAML)",
            )
        )
    if extra:
        found.append(
            Notice(
                KIND,
                Severity.INFO,
                root.name,
                f"parent {parent} also certifies {extra} to {root.name}, which its YAML does not list",
            )
        )
    return found


def _peer_notices(root: CaIntent, kept: UpstreamState, parent: str) -> list[Notice]:
    found = []
    error = kept.parent.last_error
    if error is not None:
        since = kept.parent.last_success
        last = f"last reached {since:%Y-%m-%dT%H:%M:%SZ}" if since else "never reached"
        found.append(
            Notice(
                KIND,
                Severity.WARNING,
                root.name,
                f"parent {parent}: {kept.parent.failures} failed exchange(s) in a row, {last}; "
                f"last error: {error.describe()}",
            )
        )
    error = kept.repository.last_error
    if error is not None:
        found.append(
            Notice(
                KIND,
                Severity.WARNING,
                root.name,
                f"repository: {kept.repository.failures} failed exchange(s) in a row; last error: "
                f"{error.describe()}; apply sends everything that is missing there once it is reachable",
            )
        )
    return found
