"""The desired state: what the operator declared in Git, loaded, checked and resolved.

``load(repo)`` is the only entry point the rest of the reconciler needs; it returns a
:class:`DesiredState` or raises :class:`DesiredStateError` with every problem it found.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from reconciler.desired.model import (
    AspaIntent,
    CaIntent,
    DesiredState,
    Publication,
    RoaIntent,
    RouterIntent,
    SignerConfig,
    SourceLocation,
    Timing,
)
from reconciler.diagnostics import DesiredStateError, Diagnostic

__all__ = [
    "AspaIntent",
    "CaIntent",
    "DesiredState",
    "DesiredStateError",
    "Diagnostic",
    "Publication",
    "RoaIntent",
    "RouterIntent",
    "SignerConfig",
    "SourceLocation",
    "Timing",
    "load",
]


#: What gives the key the parse cache is sealed with, once the desired state is known (None: no key).
CacheKey = Callable[[DesiredState], bytes | None]


def load(repo: Path, *, cache_key: CacheKey | None = None) -> DesiredState:
    """Load and check the desired state in ``repo``; raises :class:`DesiredStateError` with every problem.
    ``repo`` may be any path in the desired-state directory (see :mod:`reconciler.desired.discover`).
    ``cache_key``: see :func:`reconciler.desired.loader.load`.

    The loader is imported here rather than at the top so that importing the package does not import
    ``schema.py``; otherwise ``python -m reconciler.desired.schema`` warns about a double import.
    """
    from reconciler.desired.discover import desired_root  # noqa: PLC0415
    from reconciler.desired.loader import load as load_checked  # noqa: PLC0415  # see docstring

    return load_checked(desired_root(repo), cache_key=cache_key)
