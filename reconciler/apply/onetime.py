"""One-time EE keys, generated ahead on every core while the objects that use them are encoded and signed.

Each signed object needs a fresh RSA-2048 key (RFC 6487 §3), and generating it is almost all of the cost
of an object. ``cryptography`` releases the GIL while it generates a key, so threads keep every core busy;
the thread that assembles the objects takes the keys in order and rarely waits. Only a few keys are
generated ahead, so a large apply does not hold thousands of private keys in memory, and the keys of an
apply that fails are simply dropped: they were never written anywhere.
"""

from __future__ import annotations

import os
import threading
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor

from reconciler.signers.files import MADE_AHEAD, OneTimeKey, made_ahead

AHEAD_PER_WORKER = 8


def make_ahead(count: int) -> None:
    """Start making ``count`` keys now, in the background, for an apply that learns only once it has
    loaded the YAML and planned whether it signs anything -- a second core is idle meanwhile, and any
    change signs at least a ROA and a manifest. Keys not taken die with the process (the thread is a
    daemon: it never holds an exit up)."""

    def make() -> None:
        for _ in range(count):
            MADE_AHEAD.put(OneTimeKey())

    threading.Thread(target=make, name="one-time-key-ahead", daemon=True).start()


def _taken_ahead(count: int) -> list[OneTimeKey]:
    """Up to ``count`` of the keys made ahead that are ready now."""
    ready: list[OneTimeKey] = []
    while len(ready) < count and (key := made_ahead()) is not None:
        ready.append(key)
    return ready


def workers() -> int:
    """Threads for key generation: one per core this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


class OneTimeKeys:
    """``take()`` hands out the ``count`` keys an apply needs, in order; more are made on demand."""

    def __init__(self, count: int, threads: int | None = None) -> None:
        self._ready = _taken_ahead(count)
        count -= len(self._ready)
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
        if self._ready:
            return self._ready.pop()
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
        self._ready.clear()

    def __enter__(self) -> OneTimeKeys:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()
