"""Published state: what relying parties actually see, read back from the publication point.

Nothing here trusts a private record of what was written: every number, serial and object comes from
parsing the files, so the publication point is the reconciler's memory. (``memo`` only spares decoding the
same bytes, and checking their signatures, twice: what it keeps is keyed by the SHA-256 of the bytes, and
authenticated by a key only the CA's signers can derive.) The publication directory is written by the
reconciler but others can write there too: it is read as input, never followed elsewhere.
"""

from reconciler.published.reader import PublishedState, Unreadable, read, remember_decoded

__all__ = ["PublishedState", "Unreadable", "read", "remember_decoded"]
