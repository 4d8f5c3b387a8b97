"""What the property-based fuzz tests share: hypothesis settings that keep CI deterministic and each
example within a deadline, and a bound on the memory Python allocates while one input is decoded."""

from __future__ import annotations

import tracemalloc
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import TypeVar

import pytest
from hypothesis import HealthCheck, settings

T = TypeVar("T")

#: Derandomized and without a database, so that CI runs the same examples every time.
FUZZ = settings(
    max_examples=80,
    deadline=timedelta(seconds=3),
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@pytest.fixture(scope="module")
def traced() -> Iterator[None]:
    """Python's allocations traced for a module's tests (import it, and use it autouse there)."""
    tracemalloc.start()
    yield
    tracemalloc.stop()


def bounded(call: Callable[[], T], limit: int) -> T:
    """``call()``, asserting that the memory Python allocated on the way stayed under ``limit`` bytes."""
    tracemalloc.reset_peak()
    before = tracemalloc.get_traced_memory()[0]
    try:
        return call()
    finally:
        peak = tracemalloc.get_traced_memory()[1] - before
        assert peak < limit, f"{peak} bytes allocated"
