"""A narrower certificate that *we* would ask for: gated like a deletion.

When the parent lists a smaller entitlement but the certificate it issued us still holds the resources
it took away, the VRPs under them are still valid for relying parties. Asking for a certificate that
matches the new entitlement is what would take them away -- a step that loses routes, which a human
approves, as for ROA deletions: the plan shows the gate ``parent-shrink@<ca>`` with the VRPs it takes
away, ``apply --approve`` with its token lets the next exchange ask for it. Until then the certificate we
hold is used (the parent may also re-issue it narrower itself, which is upstream reality and needs no
approval). A parent that re-issues or revokes on its own, or a certificate that ends, is not held back.
"""

from __future__ import annotations

from reconciler.desired.model import DesiredState
from reconciler.plan.model import Gate
from reconciler.resources import Resources, prefix_text
from reconciler.upstream.classes import holdings, pending
from reconciler.upstream.state import UpstreamState

RULE = "parent-shrink"


def taken_away(kept: UpstreamState) -> dict[str, Resources]:
    """By resource class, what our certificate holds and the parent's kept list no longer entitles us
    to (empty: nothing)."""
    return {h.class_name: h.lost for h in holdings(kept) if h.lost}


def gate(desired: DesiredState, kept: UpstreamState) -> Gate | None:
    """The gate of asking for the narrower certificates, with the VRPs they take away (the ROA entries
    of the CAs under the parent whose prefix the new entitlements no longer cover)."""
    root = desired.external_root
    found = holdings(kept)
    _, removed = pending(found)
    if root is None or root.upstream is None or not removed:
        return None
    held = remaining = Resources()
    for holding in found:
        held = held.union(holding.held)
        remaining = remaining.union(holding.held.subtract(holding.lost))
    items = sorted(
        {
            f"AS{roa.asn} {prefix_text(roa.prefix)} max {roa.max_length}"
            for ca in desired.cas
            for roa in ca.roas
            if held.holds_prefix(roa.prefix) and not remaining.holds_prefix(roa.prefix)
        }
    )
    parent = root.upstream.response.parent_handle
    message = (
        f"parent {parent} no longer entitles {root.name} to {removed}, which the certificate it issued still "
        f"holds: asking for a certificate without them takes away {len(items)} VRPs"
    )
    return Gate(RULE, root.name, message, tuple(items) or (f"{removed} (no VRP)",))
