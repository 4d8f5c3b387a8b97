"""``rpkictl``'s entry point, apart from :mod:`reconciler.cli` so that the process is tuned before the
CLI's imports run."""

from __future__ import annotations

import gc


def main() -> None:
    """Tune the garbage collector, then run the CLI.

    A plan builds hundreds of thousands of objects that live until the process ends (YAML nodes, decoded
    objects, the plan), and importing the CLI builds as many again (classes, validators); with the
    default threshold the collector walks them all over and over, a tenth of a registry's plan and some
    40 ms of every command. Cycles are still collected, only less often.
    """
    gc.set_threshold(50_000, 20, 20)
    from reconciler.cli import main as run  # noqa: PLC0415 -- imported once the collector is tuned

    run()
