"""One-time EE keys, generated ahead on every core while the objects that use them are encoded and signed.

Each signed object needs a fresh RSA-2048 key (RFC 6487 §3), and generating it is almost all of the cost
of an object. ``cryptography`` releases the GIL while it generates a key, so threads keep every core busy;
the thread that assembles the objects takes the keys in order and rarely waits. Only a few keys are
generated ahead, so a large apply does not hold thousands of private keys in memory, and the keys of an
apply that fails are simply dropped: they were never written anywhere.
"""

from __future__ import annotations

import os
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor

from reconciler.signers.files import OneTimeKey

AHEAD_PER_WORKER = 8


def workers() -> int:
    """Threads for key generation: one per core this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


class OneTimeKeys:
    """``take()`` hands out the ``count`` keys an apply needs, in order; more are made on demand."""

    def __init__(self, count: int, threads: int | None = None) -> None:
        self._remaining = count
        self._threads = threads or workers()
        self._pool: ThreadPoolExecutor | None = None
        self._ahead: deque[Future[OneTimeKey]] = deque()
        if count > 1:
            self._pool = ThreadPoolExecutor(max_workers=self._threads, thread_name_prefix="one-time-key")
            self._top_up()

    def _top_up(self) -> None:
        assert self._pool is not None  # noqa: S101 - only called with a pool
        while self._remaining > len(self._ahead) and len(self._ahead) < self._threads * AHEAD_PER_WORKER:
            self._ahead.append(self._pool.submit(OneTimeKey))

    def take(self) -> OneTimeKey:
        if not self._ahead:
            return OneTimeKey()
        key = self._ahead.popleft().result()
        self._remaining -= 1
        self._top_up()
        return key

    def close(self) -> None:
        """Stop generating; keys made and not taken are dropped."""
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
        self._ahead.clear()

    def __enter__(self) -> OneTimeKeys:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()
