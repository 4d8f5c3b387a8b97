"""Published state: what relying parties actually see, read back from the publication point.

Nothing here trusts a private record of what was written: every number, serial and object comes from
parsing the files, so the publication point is the reconciler's memory.
"""

from reconciler.published.reader import PublishedState, Unreadable, read

__all__ = ["PublishedState", "Unreadable", "read"]
