"""docs/performance.md: the scale benchmark, on its smallest scenario; the publication floor, at the large
operator's size; one RRDP serial spliced and encoded, at the same size."""

from __future__ import annotations

import re

from tests.docs.sandbox import Sandbox
from tests.docs.scenarios import scenario


@scenario("docs/performance.md")
def performance(sandbox: Sandbox) -> None:
    result = sandbox.run("python3 -m benchmarks.scale small")
    assert re.search(r"first apply .* floor [\d.]+ s, ratio [\d.]+", result.stdout), result.stdout
    assert re.search(r"one-ROA change .* exit 0 +5 signatures", result.stdout), result.stdout
    assert re.search(r"no-op plan .* exit 0 ", result.stdout), result.stdout
    assert re.search(r"full plan .* exit 0 ", result.stdout), result.stdout
    floor = sandbox.run(
        "python3 -m benchmarks.publication_floor --files 6000 --directories 1 --snapshot-mb 8"
    )
    assert re.search(r"files 6,000, snapshot 8 MB", floor.stdout), floor.stdout
    assert re.search(r"every apply, whatever changed +[\d.]+ s", floor.stdout), floor.stdout
    serial = sandbox.run("python3 -m benchmarks.rrdp_serial --objects 6000 --directories 1 --snapshot-mb 8")
    assert re.search(r"objects 6,000, snapshot 8 MB", serial.stdout), serial.stdout
    for made in ("spliced", "encoded"):
        assert re.search(rf"one serial, snapshot {made} +[\d.]+ s \(", serial.stdout), serial.stdout
