"""ASPA path verification on paths worked out by hand from the draft's procedures: a small Internet of
two tier-1 networks (64520 and 64530, each with an ASPA of AS0: no provider), transit networks below
them, and origins; each expected outcome is reasoned in its comment."""

from __future__ import annotations

import pytest

from reconciler.plan.path_verification import Hop, Outcome, Procedure, collapse, hop, verify

UP, DOWN = Procedure.UPSTREAM, Procedure.DOWNSTREAM
VALID, INVALID, UNKNOWN = Outcome.VALID, Outcome.INVALID, Outcome.UNKNOWN

ASPAS = {
    64500: frozenset({64510}),  # an origin single-homed to 64510
    64510: frozenset({64520}),  # transit under tier-1 64520
    64520: frozenset({0}),  # tier-1
    64530: frozenset({0}),  # tier-1
    64531: frozenset({64530}),  # transit under tier-1 64530
    64540: frozenset({64520, 64521}),  # multi-homed: 64520 and 64521
    # 64501 (an origin) and 64521 (a provider) have no ASPA
}


def test_hops() -> None:
    assert hop(ASPAS, 64500, 64510) is Hop.PROVIDER
    assert hop(ASPAS, 64500, 64520) is Hop.NOT_PROVIDER
    assert hop(ASPAS, 64520, 64530) is Hop.NOT_PROVIDER  # AS0: no provider at all
    assert hop(ASPAS, 64501, 64510) is Hop.NO_ATTESTATION
    assert collapse([64510, 64510, 64500, 64500, 64500]) == [64510, 64500]


@pytest.mark.parametrize(
    ("path", "procedure", "outcome"),
    [
        # from a customer: 64500 -> 64510 -> 64520, each a provider of the one before
        ([64520, 64510, 64500], UP, VALID),
        ([64520, 64520, 64510, 64500, 64500], UP, VALID),  # prepends change nothing
        ([64500], UP, VALID),  # the neighbour is the origin
        # 64510 sends its customer's route to 64531, which is not its provider: a leak
        ([64531, 64510, 64500], UP, INVALID),
        # tier-1 64520 passes it to its peer 64530, which passes it on to us: a leak (64530 is not a
        # provider of 64520)
        ([64530, 64520, 64510, 64500], UP, INVALID),
        # 64501 has no ASPA: the first hop is not attested, nothing else is wrong
        ([64520, 64510, 64501], UP, UNKNOWN),
        # ... and a later leak still makes it Invalid
        ([64531, 64510, 64501], UP, INVALID),
        # from a provider: up 64500 -> 64510 -> 64520, across to the peer 64530, down to 64531, to us
        ([64531, 64530, 64520, 64510, 64500], DOWN, VALID),
        ([64520, 64510], DOWN, VALID),  # two ASes: always Valid downstream
        # up 64500 -> 64510 -> 64520, then down to 64540 (multi-homed), which leaks it up to its other
        # provider 64521 (no ASPA), which sends it down to us: nothing attests 64521's hop, so
        # the ramps (up 3, down 1 + unattested) cannot say it is a leak
        ([64521, 64540, 64520, 64510, 64500], DOWN, UNKNOWN),
        # the same path received from a customer: 64520 -> 64540 goes down, so Invalid upstream
        ([64521, 64540, 64520, 64510, 64500], UP, INVALID),
        # two tier-1s in a row in the middle of the path: up 64510 -> 64520, across to 64530, and then
        # 64530 to 64520 again would need a second peak: down ramp from 64531 stops at 64530
        ([64531, 64530, 64520, 64530, 64520, 64510, 64500], DOWN, INVALID),
    ],
)
def test_outcomes_worked_by_hand(path: list[int], procedure: Procedure, outcome: Outcome) -> None:
    assert verify(ASPAS, path, procedure) is outcome


def test_an_aspa_added_for_the_leaking_provider_makes_the_leak_invalid() -> None:
    """The change a plan shows: 64521 registers an ASPA with AS0 (it has no provider). Then the down-ramp
    from it ends at once (64540 is not its provider), the up-ramp from the origin ends at 64520 (64540
    is not a provider of 64520): 3 + 1 < 5, Invalid."""
    path = [64521, 64540, 64520, 64510, 64500]
    after = {**ASPAS, 64521: frozenset({0})}
    assert (verify(ASPAS, path, DOWN), verify(after, path, DOWN)) == (UNKNOWN, INVALID)


def test_as_sets_and_empty_paths_are_invalid() -> None:
    assert verify(ASPAS, [64520, 64510, 64500], UP, as_set=True) is INVALID
    assert verify(ASPAS, [], DOWN) is INVALID
