"""The one source of "now". Every command takes the time from here, so ``--now`` can replay months of
renewals and expiries in seconds and nothing else in the code asks the system clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

#: The times the reconciler works at. Certificates, CRLs and manifests carry UTCTime up to 2049 and
#: GeneralizedTime after (RFC 5280 §4.1.2.5); nothing before 1950 can be encoded, and validity periods
#: added to a time near the year 9999 overflow. Outside this window a time is a mistake, not a plan.
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(2099, 12, 31, 23, 59, 59, tzinfo=UTC)

#: How far ``--now`` may be from the system clock for a command that signs, without --simulate-time.
SIGNING_TOLERANCE = timedelta(minutes=5)


class ClockError(ValueError):
    """A ``--now`` value that is not an ISO-8601 time, or not one the reconciler can sign at."""


def now(override: str | None = None) -> datetime:
    """The current time in UTC, or the ``--now`` override (ISO-8601; a time without zone is UTC)."""
    if override is None:
        return datetime.now(UTC)
    try:
        value = datetime.fromisoformat(override.strip().replace("Z", "+00:00"))
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        value = value.astimezone(UTC)
    except (ValueError, OverflowError) as exc:
        raise ClockError(f"--now {override!r} is not an ISO-8601 time (e.g. 2026-11-23T17:00:00Z)") from exc
    return in_range(value, f"--now {override!r}")


def in_range(value: datetime, what: str) -> datetime:
    """``value`` when it lies in the years the reconciler works at; else a ClockError naming ``what``."""
    if not EARLIEST <= value <= LATEST:
        raise ClockError(
            f"{what} is outside the years {EARLIEST.year} to {LATEST.year} that RPKI objects are dated "
            "in (RFC 5280 §4.1.2.5: UTCTime up to 2049, GeneralizedTime after; validity periods must fit "
            "as well) (fix: give a time in that range, e.g. 2026-11-23T17:00:00Z)"
        )
    return value


def signing_time(override: str | None, *, simulate: bool = False) -> datetime:
    """The time for a command that signs: :func:`now`, but a ``--now`` more than
    :data:`SIGNING_TOLERANCE` away from the system clock only with ``simulate`` (--simulate-time).

    Objects signed at another time than the real one are dated in the future (relying parties reject
    them until then) or already close to expiry; replaying a schedule that way belongs on a test
    publication point, and must be asked for by name."""
    value = now(override)
    if override is None or simulate:
        return value
    real = datetime.now(UTC)
    if abs(value - real) > SIGNING_TOLERANCE:
        direction = "ahead of" if value > real else "behind"
        raise ClockError(
            f"--now {override!r} is {_span(abs(value - real))} {direction} this machine's clock "
            f"({real:%Y-%m-%dT%H:%M:%SZ}); objects signed then would be "
            + ("dated in the future, which relying parties reject" if value > real else "out of date already")
            + " (fix: leave out --now to sign at the current time; to replay a schedule on a test "
            "publication point, add --simulate-time)"
        )
    return value


def _span(delta: timedelta) -> str:
    hours = delta.total_seconds() / 3600
    return f"{hours / 24:.1f} days" if hours >= 48 else f"{hours:.1f} hours"


def describe_span(delta: timedelta) -> str:
    """A length of time as a person says it, to the two largest units: ``3 days 4 hours``, ``1 hour``,
    ``12 minutes``, ``40 seconds`` (not ``3 days, 4:00:00``, which reads as a time of day)."""
    seconds = int(abs(delta).total_seconds())
    parts: list[tuple[int, str]] = []
    for unit, size in (("week", 604800), ("day", 86400), ("hour", 3600), ("minute", 60), ("second", 1)):
        count, seconds = divmod(seconds, size)
        if count or (parts and len(parts) < 2):
            parts.append((count, unit))
        if len(parts) == 2:
            break
    shown = [f"{count} {unit}{'s' if count != 1 else ''}" for count, unit in parts if count]
    return " ".join(shown) or "0 seconds"
