"""Named points where a crash test may kill ``rpkictl`` (SIGKILL), to prove that no interruption leaves
relying parties a half-written publication point.

Inert unless the environment variable ``RPKICTL_CRASH_AT`` is set to ``NAME`` or ``NAME:N`` (the Nth
time the point is reached). ``RPKICTL_CRASH_TRACE`` names a file to which every point reached is
appended, so a harness can list the points an apply goes through before killing it at each one.
``RPKICTL_STOP_AT`` (the same syntax) stops the process there (SIGSTOP) instead: a holder frozen past
its lease, as a laptop lid or a slow NFS server freezes one, until the harness sends SIGCONT.
"""

from __future__ import annotations

import os
import signal
from collections import Counter

_reached: Counter[str] = Counter()


def point(name: str) -> None:
    """Mark a step; the crash harness may kill the process here."""
    target = os.environ.get("RPKICTL_CRASH_AT")
    stop = os.environ.get("RPKICTL_STOP_AT")
    trace = os.environ.get("RPKICTL_CRASH_TRACE")
    if target is None and trace is None and stop is None:
        return
    _reached[name] += 1
    if trace is not None:
        with open(trace, "a", encoding="utf-8") as handle:  # noqa: PTH123 - appended once per point
            handle.write(f"{name}:{_reached[name]}\n")
    if target in (name, f"{name}:{_reached[name]}"):
        os.kill(os.getpid(), signal.SIGKILL)
    if stop in (name, f"{name}:{_reached[name]}"):
        os.kill(os.getpid(), signal.SIGSTOP)
