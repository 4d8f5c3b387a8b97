"""How plans word time: what remains before an object expires, and renewal margins, as operators read
them. Shared by the planner, the reminders and key rolls, the status and the health checks (kept apart
from the planner so that none of those imports it for a phrase).
"""

from __future__ import annotations

from datetime import timedelta

#: An object whose validity starts later than this after now was signed by a clock that ran ahead (a
#: --now in the future, an NTP step): relying parties reject it until then, so it is damage to repair.
#: The margin keeps a plan on a machine whose clock lags the signer's by seconds from re-issuing. The
#: repair is a renewal (the same content, dated now): routine, so the unattended loop makes it.
FUTURE_TOLERANCE = timedelta(minutes=5)
FUTURE_DATED = "dated in the future"


def describe_delta(delta: timedelta) -> str:
    """``5h``, ``3d 4h``, ``expired 2h ago``: how an operator reads a remaining time."""
    seconds = int(delta.total_seconds())
    if seconds < 0:
        return f"expired {describe_delta(-delta)} ago"
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes = rest // 60
    if days:
        return f"{days}d {hours}h" if hours else f"{days}d"
    if hours:
        return f"{hours}h {minutes}m" if minutes else f"{hours}h"
    return f"{minutes}m"


def expiry(subject: str, left: timedelta, margin: timedelta, *, plural: bool = False) -> str:
    """``manifest and CRL expire in 7h (renewal margin 8h)``, or ``certificate expired 2h ago (...)``."""
    tail = f"(renewal margin {describe_delta(margin)})"
    if left < timedelta(0):
        return f"{subject} expired {describe_delta(-left)} ago {tail}"
    return f"{subject} {'expire' if plural else 'expires'} in {describe_delta(left)} {tail}"
