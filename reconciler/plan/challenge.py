"""The question an operator answers to approve a gated plan on a terminal.

A prompt that names the answer ("type 6 to approve") checks only that a key was pressed. The question
here asks for the consequence the plan above it shows -- which CA loses VRPs, and how many -- and never
shows the answer itself, so that typing it right means the plan was read. The answer comes from the
gates alone (their CA, their flagged items), the same facts the text, Markdown and JSON plans print.
"""

from __future__ import annotations

from dataclasses import dataclass

from reconciler.plan.document import GateDoc

#: Gates whose flagged items are the VRPs a CA stops publishing (``ca-revoke`` also lists the CAs
#: removed, as ``remove CA NAME``).
VRP_LOSS_RULES = ("roa-delete-pct", "ca-empty", "ca-revoke")
_REMOVED_CA = "remove CA "


@dataclass(frozen=True, slots=True)
class Challenge:
    """A question and the answers it accepts (each a sequence of words, compared in any order, case
    and commas aside)."""

    question: str
    answers: frozenset[tuple[str, ...]]

    def accepts(self, typed: str) -> bool:
        return _words(typed) in self.answers


def _words(text: str) -> tuple[str, ...]:
    return tuple(sorted(text.replace(",", " ").casefold().split()))


def _answer(*parts: object) -> tuple[str, ...]:
    return _words(" ".join(str(p) for p in parts))


def _first(gates: list[GateDoc], rule: str) -> GateDoc | None:
    return next((g for g in gates if g.rule == rule), None)


def vrps_lost(gates: list[GateDoc]) -> dict[str, int]:
    """Per CA, how many VRPs the gated plan takes away (each VRP once, however many gates flag it)."""
    lost: dict[str, set[str]] = {}
    for gate in gates:
        if gate.rule in VRP_LOSS_RULES and gate.ca != "*":
            items = {i for i in gate.items if not i.startswith(_REMOVED_CA)}
            lost.setdefault(gate.ca, set()).update(items)
    return {ca: len(items) for ca, items in lost.items() if items}


def challenge(gates: list[GateDoc]) -> Challenge:
    """The question for ``gates`` (the unapproved gates of a plan), about its weightiest consequence:
    VRPs lost, then routes made invalid (by origin, then by path), VRPs narrowed, resources or a key
    lost, the trust anchor."""
    lost = vrps_lost(gates)
    if lost:
        most = max(lost.values())
        which = "the CA that loses VRPs" if len(lost) == 1 else "the CA that loses the most VRPs"
        return Challenge(
            f"Type the name of {which}, and how many VRPs it loses (as the plan above says: the name, "
            "a space, the number)",
            frozenset(_answer(ca, n) for ca, n in lost.items() if n == most),
        )
    if (gate := _first(gates, "route-invalid")) is not None:
        return Challenge(
            "Type how many announcements that are valid now would become invalid (as the plan above says)",
            frozenset({_answer(gate.count)}),
        )
    if (gate := _first(gates, "aspa-invalid")) is not None:
        return Challenge(
            "Type how many announced paths would become ASPA-invalid (as the plan above says)",
            frozenset({_answer(gate.count)}),
        )
    if (gate := _first(gates, "roa-narrow-pct")) is not None:
        return Challenge(
            "Type the name of the CA whose VRPs are narrowed, and how many are (the name, a space, the "
            "number)",
            frozenset({_answer(gate.ca, len(gate.items))}),
        )
    if (gate := _first(gates, "ca-shrink")) is not None:
        return Challenge("Type the name of the CA that loses resources", frozenset({_answer(gate.ca)}))
    if (gate := _first(gates, "key-missing")) is not None:
        return Challenge("Type the name of the CA whose key would be replaced", frozenset({_answer(gate.ca)}))
    gate = _first(gates, "trust-anchor") or gates[0]
    if gate.ca == "*":
        return Challenge(
            f"Type how many items the {gate.rule} gate above lists", frozenset({_answer(len(gate.items))})
        )
    return Challenge(
        "Type the name of the CA the gate above is about, and how many items it lists (the name, a "
        "space, the number)",
        frozenset({_answer(gate.ca, len(gate.items))}),
    )
