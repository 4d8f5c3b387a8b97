"""The reconciler's caches on disk (``<publication directory>/cache/``, never served): JSON documents
that only ever save work -- the object memo, the YAML parse cache, the RRDP snapshot record.

Reading one that is missing, damaged or of another version gives nothing, and the work is done again. A
cache that cannot be written (the publication directory does not exist yet, or is read-only where plans
are reviewed) is not the operator's problem: only the next run is slower. Each is replaced in one rename,
so that two runs never leave half of one.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from reconciler.fsutil import replace_public


def read(path: Path, version: int | None = None) -> dict[str, Any] | None:
    """The cache's document; None when it is missing, unreadable, not a JSON object, or (with
    ``version``) written by another version of its format."""
    try:
        document = json.loads(path.read_bytes())
    except (OSError, ValueError):
        return None
    if not isinstance(document, dict) or (version is not None and document.get("version") != version):
        return None
    return document


def write(path: Path, document: dict[str, Any]) -> bool:
    """Replace the cache with ``document``; False when it could not be written."""
    try:
        path.parent.mkdir(mode=0o755, exist_ok=True)
        replace_public(path, json.dumps(document, separators=(",", ":")).encode())
    except (OSError, ValueError):
        return False
    return True
