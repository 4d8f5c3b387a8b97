"""Which ROA objects a CA publishes for its ROA entries (see ``RoaGrouping`` for the policy and why).

The choice for an origin AS between its thresholds depends on what is published, so that it does not
flap; everything else is a pure function of the YAML. Each object's content is canonical
(``RoaContent.of``), so re-grouping never changes a VRP.
"""

from __future__ import annotations

from collections.abc import Container

from reconciler import layout
from reconciler.desired.model import CaIntent, RoaGrouping, RoaIntent
from reconciler.rpki.roa import RoaContent, RoaPrefix


def roa_objects(
    ca: CaIntent, grouping: RoaGrouping, published: Container[str] = frozenset()
) -> dict[str, RoaContent]:
    """File name -> content of each ROA object the CA's entries call for. ``published``: the names in
    the CA's directory now (what an origin AS between the thresholds keeps)."""
    by_origin: dict[tuple[int, int], list[RoaIntent]] = {}
    for entry in ca.roas:
        by_origin.setdefault((entry.asn, entry.prefix.version), []).append(entry)
    objects: dict[str, RoaContent] = {}
    for (asn, version), entries in by_origin.items():
        aggregate_name = layout.aggregate_roa_name(asn, version)
        prefixes = [RoaPrefix(e.prefix, e.max_length) for e in entries]
        if aggregated(len(entries), grouping, aggregate_name in published):
            objects[aggregate_name] = RoaContent.of(asn, prefixes)
        else:
            for prefix in prefixes:
                objects[layout.roa_name(asn, prefix.prefix)] = RoaContent(asn, (prefix,))  # canonical already
    return objects


def aggregated(count: int, grouping: RoaGrouping, published_aggregated: bool) -> bool:
    """Whether ``count`` prefixes of one origin and family share one object."""
    if count > grouping.aggregate_above:
        return True
    if count < grouping.split_below:
        return False
    return published_aggregated
