"""``rpkictl plan --published https://.../notification.xml``: a plan made from the repository as relying
parties read it, over real HTTPS, on a machine without the keys, is the CA machine's own plan (same
``plan_id``); it records the RRDP session and serial it read, and the CA machine applies it only while
the publication has not moved since."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from tests.remote.serving import ISP, NOTIFICATION, Served
from tests.test_cli import rpkictl

NEW_ROA = "  - prefix: 192.0.2.128/25\n    asn: 64497\n"
OTHER_ROA = "  - prefix: 198.51.100.0/25\n    asn: 64497\n"


def listing(directory: Path) -> dict[str, tuple[int, int]]:
    return {
        str(p.relative_to(directory)): (p.lstat().st_size, p.lstat().st_mtime_ns)
        for p in sorted(directory.rglob("*"))
    }


def test_a_plan_read_over_rrdp_without_keys_applies_on_the_ca_machine_until_rrdp_moves(
    served: Served, tmp_path: Path
) -> None:
    scratch = served.scratch
    now = datetime.now(UTC).replace(microsecond=0)
    at = f"{now:%Y-%m-%dT%H:%M:%SZ}"
    assert scratch.apply(now) is not None  # the served publication, current at the real time
    scratch.edit(ISP, "roas:\n", "roas:\n" + NEW_ROA)
    state, keys = str(scratch.repo), scratch.root / "keys"

    on_ca_machine = rpkictl("plan", state, "--now", at, "--format", "json")
    assert on_ca_machine.returncode == 2, on_ca_machine.stderr
    local = json.loads(on_ca_machine.stdout)

    # The pull request's runner: no key directory, nothing read or written in the publication directory.
    keys.rename(scratch.root / "keys.elsewhere")
    before = listing(scratch.root / "published")
    saved = tmp_path / "plan.json"
    cache = str(tmp_path / "remote-cache")
    args = ("plan", state, "--published", NOTIFICATION, "--cache", cache, "--now", at, "--out", str(saved))
    reviewed = rpkictl(*args, "--format", "json")
    assert reviewed.returncode == 2, reviewed.stderr
    assert listing(scratch.root / "published") == before
    remote = json.loads(reviewed.stdout)
    assert remote["plan_id"] == local["plan_id"]
    assert remote["changes"] == local["changes"]
    notification = served.notification()
    assert remote["observed"]["source"] == {
        "kind": "rrdp",
        "uri": NOTIFICATION,
        "session_id": notification.session_id,
        "serial": notification.serial,
    }
    assert local["observed"]["source"]["kind"] == "local"
    assert json.loads(saved.read_text())["plan_id"] == local["plan_id"]

    # Back on the CA machine: the reviewed plan applies while nothing moved.
    (scratch.root / "keys.elsewhere").rename(keys)
    applied = rpkictl("apply", str(saved), "--yes")
    assert applied.returncode == 0, applied.stdout + applied.stderr
    assert "Applied" in applied.stdout

    # A plan read, then another publication: the saved plan is refused, naming how RRDP moved.
    scratch.edit(ISP, "roas:\n", "roas:\n" + OTHER_ROA)
    again = rpkictl(*args)
    assert again.returncode == 2, again.stderr
    read_at = served.notification()
    moved = rpkictl("apply", state, "--yes")
    assert moved.returncode == 0, moved.stdout + moved.stderr
    refused = rpkictl("apply", str(saved), "--yes")
    assert refused.returncode == 4, refused.stdout + refused.stderr
    assert (
        f"RRDP moved from session {read_at.session_id} serial {read_at.serial} to serial "
        f"{read_at.serial + 1} since the plan was made"
    ) in refused.stderr
