"""What every end-to-end test asks: do both validators, fetching the published tree, output exactly the
VRPs of the YAML, with no warnings about our objects?"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from reconciler import engine
from reconciler.published.reader import Unreadable
from tests.e2e.harness import DEFAULT_TIMEOUT, ValidatorResult, validate_with_all
from tests.helpers import Scratch


def write_tal(scratch: Scratch) -> Path:
    path = scratch.root / "ta.tal"
    path.write_text(engine.trust_anchor_locator(engine.open_workspace(scratch.repo)))
    return path


def validate(
    scratch: Scratch,
    validators: tuple[str, ...],
    *,
    now: datetime | None = None,
    caches: dict[str, Path] | None = None,
    tal: Path | None = None,
    timeout: float = DEFAULT_TIMEOUT,
) -> dict[str, ValidatorResult]:
    desired = engine.open_workspace(scratch.repo).desired
    return validate_with_all(
        tal or write_tal(scratch),
        scratch.rsync,
        desired.publication.rsync_base,
        now=now,
        validators=validators,
        caches=caches,
        timeout=timeout,
    )


def assert_accepts_exactly_the_yaml(scratch: Scratch, results: dict[str, ValidatorResult]) -> None:
    want = scratch.desired_vrps()
    assert want, "the scenario should have VRPs"
    for result in results.values():
        assert result.vrps == want, result.summary()
        assert result.warnings == [], result.summary()


@dataclass
class Steps:
    """What each step of a scenario saw, for the assertion at the end (every step's problems, not just
    the first)."""

    problems: list[str] = field(default_factory=list)
    seen: list[str] = field(default_factory=list)  # one line per step and validator, for -rP


def revoked_in(scratch: Scratch, directory: str) -> set[int]:
    """The serials on the CRL of a CA directory (of its one key)."""
    published = engine.open_workspace(scratch.repo).published
    (path,) = [p for p in published.under(directory) if p.endswith(".crl")]
    crl = published.crl(directory + path)
    assert crl is not None and not isinstance(crl, Unreadable), path
    return {r.serial for r in crl.revoked}
