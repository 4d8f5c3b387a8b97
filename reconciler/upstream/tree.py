"""What a remote repository should hold for us, from our local copy of the publication point: shared by
the exchange that publishes it and the plan that shows what it will send."""

from __future__ import annotations

from collections.abc import Mapping

from reconciler.desired.model import DesiredState


def wanted(desired: DesiredState, files: Mapping[str, bytes]) -> dict[str, bytes]:
    """URI -> object of everything the repository should hold for us: the CAs' directories."""
    base = desired.publication.rsync_base
    return {base + path: data for path, data in files.items() if "/" in path}
