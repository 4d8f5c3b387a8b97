"""The library API behind ``rpkictl``: load, plan, apply, TAL. The CLI only parses options and renders.

Every function takes the current time as an argument; none of them prints.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from reconciler import layout, published
from reconciler.apply.executor import ApplyResult, execute
from reconciler.desired import load
from reconciler.desired.model import DesiredState
from reconciler.plan.diff import make_plan
from reconciler.plan.model import Plan
from reconciler.publish.rsync_tree import publish
from reconciler.published.reader import PublishedState
from reconciler.rpki import tal
from reconciler.signers import Signer, SignerError, open_signers


@dataclass(frozen=True, slots=True)
class Workspace:
    """A loaded desired state with its signers and the publication point as it is now."""

    desired: DesiredState
    signers: dict[str, Signer]
    published: PublishedState

    @property
    def rsync_dir(self) -> Path:
        return self.desired.publication.directory / "rsync"

    def keys(self) -> dict[str, bytes | None]:
        return {ca.name: self.signers[ca.signer].find_key(ca.name) for ca in self.desired.cas}


def open_workspace(repo: Path) -> Workspace:
    """Load and check the YAML (raises DesiredStateError), open the signers, read the publication point."""
    desired = load(repo)
    signers = open_signers(desired.signers)
    return Workspace(desired, signers, published.read(desired.publication.directory / "rsync"))


def plan(workspace: Workspace, now: datetime) -> Plan:
    return make_plan(workspace.desired, workspace.published, workspace.keys(), now)


def apply(workspace: Workspace, the_plan: Plan) -> ApplyResult | None:
    """Sign and publish what the plan lists; None when the plan is empty (nothing is signed or written)."""
    if the_plan.empty:
        return None
    result = execute(the_plan, workspace.desired, workspace.published, workspace.signers)
    publish(workspace.desired.publication.directory, result.files, the_plan.now)
    return result


def trust_anchor_locator(workspace: Workspace) -> str:
    """RFC 8630 TAL of the trust anchor; its key must exist (created by the first apply)."""
    ta = workspace.desired.trust_anchor
    signer = workspace.signers[ta.signer]
    key = signer.find_key(ta.name)
    if key is None:
        raise SignerError(f"the trust anchor {ta.name!r} has no key yet (fix: run 'rpkictl apply' first)")
    uri = layout.uri(workspace.desired.publication.rsync_base, layout.certificate_path(ta))
    return tal.encode((uri,), signer.public_key(key))
