"""The one source of "now". Every command takes the time from here, so ``--now`` can replay months of
renewals and expiries in seconds and nothing else in the code asks the system clock."""

from __future__ import annotations

from datetime import UTC, datetime


class ClockError(ValueError):
    """A ``--now`` value that is not an ISO-8601 time."""


def now(override: str | None = None) -> datetime:
    """The current time in UTC, or the ``--now`` override (ISO-8601; a time without zone is UTC)."""
    if override is None:
        return datetime.now(UTC)
    try:
        value = datetime.fromisoformat(override.strip().replace("Z", "+00:00"))
    except ValueError as exc:
        raise ClockError(f"--now {override!r} is not an ISO-8601 time (e.g. 2026-11-23T17:00:00Z)") from exc
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC)
