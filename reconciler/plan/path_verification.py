"""ASPA-based AS_PATH verification (draft-ietf-sidrops-aspa-verification): what a router that validates
routes with the ASPAs would decide about one AS path.

A path is read as the verifying router receives it: the neighbour first, the origin last; prepends are
collapsed, and a path with an AS_SET is Invalid. Numbered from the origin, ``AS(1)`` .. ``AS(N)``, each
pair of adjacent ASes is a *hop*, and ``hop(a, b)`` says what ``a``'s ASPA says of ``b``:

- ``NO_ATTESTATION`` when ``a`` has no ASPA;
- ``PROVIDER`` when ``b`` is among ``a``'s providers;
- ``NOT_PROVIDER`` otherwise.

The *up-ramp* runs from the origin as long as each AS names the next as a provider; the *down-ramp* runs
from the neighbour back towards the origin the same way (a route going down a ramp goes from a provider to
its customer). Its greatest length counts hops that are not ``NOT_PROVIDER``; its least length only
``PROVIDER`` hops. Then:

- **upstream** (the route came from a customer or a lateral peer: it may only have gone up): Valid when
  the least up-ramp covers the whole path, Invalid when even the greatest does not, Unknown otherwise;
- **downstream** (the route came from a provider: up, then down): Invalid when the greatest up- and
  down-ramps together do not cover the path, Unknown when the least do not, Valid otherwise; paths of one
  or two ASes are Valid.

Plans compare the outcome before and after an ASPA change for each announcement given; the change that
turns a path Invalid is the route leak protection an operator wants, or the outage one did not mean.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from enum import StrEnum


class Outcome(StrEnum):
    VALID = "valid"
    INVALID = "invalid"
    UNKNOWN = "unknown"


class Hop(StrEnum):
    PROVIDER = "provider+"
    NOT_PROVIDER = "not provider+"
    NO_ATTESTATION = "no attestation"


class Procedure(StrEnum):
    UPSTREAM = "upstream"
    DOWNSTREAM = "downstream"


#: Customer AS -> its providers, as the validated ASPAs say (the union of a customer's ASPAs).
Providers = Mapping[int, frozenset[int]]


def hop(providers: Providers, customer: int, other: int) -> Hop:
    """What ``customer``'s ASPA says of ``other``."""
    found = providers.get(customer)
    if found is None:
        return Hop.NO_ATTESTATION
    return Hop.PROVIDER if other in found else Hop.NOT_PROVIDER


def collapse(path: Sequence[int]) -> list[int]:
    """The path without prepends: each run of one AS kept once."""
    found: list[int] = []
    for asn in path:
        if not found or found[-1] != asn:
            found.append(asn)
    return found


def verify(
    providers: Providers, path: Sequence[int], procedure: Procedure, *, as_set: bool = False
) -> Outcome:
    """The outcome of ``procedure`` for ``path`` (neighbour first, origin last). ``as_set``: the path
    held an AS_SET, which makes it Invalid whatever it says."""
    if as_set or not path:
        return Outcome.INVALID
    ases = collapse(path)
    ases.reverse()  # AS(1), the origin, first
    count = len(ases)
    if procedure is Procedure.UPSTREAM:
        if count == 1:
            return Outcome.VALID
        greatest, least = _up_ramps(providers, ases)
        if greatest < count:
            return Outcome.INVALID
        return Outcome.UNKNOWN if least < count else Outcome.VALID
    if count <= 2:
        return Outcome.VALID
    up_greatest, up_least = _up_ramps(providers, ases)
    down_greatest, down_least = _up_ramps(providers, ases[::-1])
    if up_greatest + down_greatest < count:
        return Outcome.INVALID
    return Outcome.UNKNOWN if up_least + down_least < count else Outcome.VALID


def _up_ramps(providers: Providers, ases: Sequence[int]) -> tuple[int, int]:
    """The greatest and the least up-ramp from ``ases[0]``: how many ASes, counting it, are reached while
    the hops are not NOT_PROVIDER, and while they are PROVIDER."""
    greatest = least = len(ases)
    for index in range(len(ases) - 1):
        found = hop(providers, ases[index], ases[index + 1])
        if found is not Hop.PROVIDER and least == len(ases):
            least = index + 1
        if found is Hop.NOT_PROVIDER:
            greatest = index + 1
            break
    return greatest, min(least, greatest)
