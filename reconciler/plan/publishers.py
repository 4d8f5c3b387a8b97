"""The external publishers' part of the served tree (``publishers/``), as a plan sees it.

Their objects are someone else's: a plan never decodes, checks or counts them, and every apply carries
them over unchanged (see ``PublishedState.foreign``). Only two things concern the plan: a publisher
whose declaration left rpki.yaml, whose objects the apply withdraws -- other people's objects, removed
only with a reviewer's approval, as a CA is -- and what was put in ``publishers/`` outside every
publisher's directory, which no publisher can have published and is removed as damage.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from reconciler import layout
from reconciler.desired.model import DesiredState
from reconciler.plan.model import Action, Change, Gate, Kind, Reason
from reconciler.published.reader import PublishedState

#: The gate a removed publisher trips: the approval names it and the number of objects withdrawn.
GATE = "publisher-remove"


def handle_of(path: str) -> str | None:
    """The publisher whose directory holds ``path`` (``publishers/<handle>/...``); None for a file
    directly in ``publishers/``."""
    parts = path.split("/")
    return parts[1] if len(parts) > 2 and parts[0] == layout.PUBLISHERS else None


def by_publisher(foreign: Mapping[str, bytes]) -> dict[str | None, list[str]]:
    """The paths of the publishers' tree by publisher (None: outside every publisher's directory)."""
    found: dict[str | None, list[str]] = {}
    for path in foreign:
        found.setdefault(handle_of(path), []).append(path)
    return found


def plan_publishers(desired: DesiredState, published: PublishedState) -> list[Change]:
    """The withdrawal of each undeclared publisher's directory, and of files outside every directory."""
    declared = {p.handle for p in desired.publishers}
    changes = []
    for handle, paths in sorted(by_publisher(published.foreign).items(), key=lambda item: item[0] or ""):
        if handle is None:
            for path in sorted(paths):
                reason = "not in a publisher's directory: no publisher published it"
                changes.append(
                    Change(
                        Action.WITHDRAW,
                        Kind.FILE,
                        layout.PUBLISHERS,
                        path,
                        reason,
                        repair=True,
                        cause=Reason.DAMAGE,
                    )
                )
            continue
        if handle in declared:
            continue
        size = sum(len(published.foreign[path]) for path in paths)
        reason = (
            f"publisher {handle} is no longer declared in rpki.yaml: its {len(paths)} object(s) "
            f"({size} bytes) are withdrawn"
        )
        path = layout.publisher_repository(handle)
        changes.append(
            Change(Action.WITHDRAW, Kind.FILE, layout.PUBLISHERS, path, reason, cause=Reason.NOT_DESIRED)
        )
    return changes


def publisher_gates(published: PublishedState, changes: Iterable[Change]) -> list[Gate]:
    """A gate per publisher removed: its objects are other people's, and relying parties lose them."""
    gates = []
    groups = by_publisher(published.foreign)
    for change in changes:
        if not _withdraws_publisher(change):
            continue
        handle = change.path.split("/")[1]
        paths = groups.get(handle, [])
        size = sum(len(published.foreign[path]) for path in paths)
        gates.append(
            Gate(
                GATE,
                handle,
                f"publisher {handle} is removed, with the {len(paths)} object(s) it publishes here",
                (f"remove publisher {handle}", f"withdraw {len(paths)} object(s), {size} bytes"),
            )
        )
    return gates


def _withdraws_publisher(change: Change) -> bool:
    return (
        change.action is Action.WITHDRAW
        and change.kind is Kind.FILE
        and change.ca == layout.PUBLISHERS
        and not change.repair
        and change.path.startswith(f"{layout.PUBLISHERS}/")
        and change.path.endswith("/")
    )


def carried(published: PublishedState, changes: Iterable[Change]) -> dict[str, bytes]:
    """The publishers' tree a new tree carries: all of it, but for what ``changes`` withdraw (an
    undeclared publisher's directory, files outside every directory) and the damage they repair."""
    gone = [
        c.path for c in changes if c.action is Action.WITHDRAW and c.path.startswith(f"{layout.PUBLISHERS}/")
    ]
    if not gone:
        return published.foreign
    directories = tuple(path for path in gone if path.endswith("/"))
    files = {path for path in gone if not path.endswith("/")}
    return {
        path: data
        for path, data in published.foreign.items()
        if path not in files and not path.startswith(directories)
    }
