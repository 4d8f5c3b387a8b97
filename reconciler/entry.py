"""``rpkictl``'s entry point, apart from :mod:`reconciler.cli` so that the process is tuned before the
CLI's imports run."""

from __future__ import annotations

import gc
import os
import sys
from typing import Any, TextIO


class ReaderGoneStdout:
    """``sys.stdout``, except that once its reader has gone (``rpkictl plan | head -1``: EPIPE), what is
    written later goes nowhere instead of raising.

    A reader that stops early has what it wanted: the command still finishes, with the exit code it
    means (a plan's verdict), and no ``BrokenPipeError`` traceback ends up in front of the operator.
    SIGPIPE keeps Python's setting (ignored): dying of it half-way would cut an apply off at any point.
    """

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        try:
            return self._stream.write(text)
        except BrokenPipeError:
            self._gone()
            return len(text)

    def flush(self) -> None:
        try:
            self._stream.flush()
        except BrokenPipeError:
            self._gone()

    def _gone(self) -> None:
        """Point the descriptor at /dev/null, so that what is still buffered drains there."""
        devnull = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(devnull, self._stream.fileno())
        finally:
            os.close(devnull)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def main() -> None:
    """Tune the garbage collector, make a closed stdout harmless, then run the CLI.

    A plan builds hundreds of thousands of objects that live until the process ends (YAML nodes, decoded
    objects, the plan), and importing the CLI builds as many again (classes, validators); with the
    default threshold the collector walks them all over and over, a tenth of a registry's plan and some
    40 ms of every command. Cycles are still collected, only less often.
    """
    gc.set_threshold(50_000, 20, 20)
    if sys.stdout is not None and not isinstance(sys.stdout, ReaderGoneStdout):
        sys.stdout = ReaderGoneStdout(sys.stdout)
    from reconciler.cli import main as run  # noqa: PLC0415 -- imported once the collector is tuned

    run()
