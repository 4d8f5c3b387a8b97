"""``rpkictl`` starts in ``reconciler.entry``: the process is tuned before the CLI's imports run."""

from __future__ import annotations

import subprocess
import sys

_SPY = """
import gc, sys

class Spy:
    def find_spec(self, name, path=None, target=None):
        if name == "reconciler.cli":
            print("threshold when the CLI is imported:", gc.get_threshold()[0], flush=True)
        return None

sys.meta_path.insert(0, Spy())
sys.argv = ["rpkictl", "--help"]
import runpy
runpy.run_module("reconciler", run_name="__main__")
"""


def test_the_collector_is_tuned_before_the_cli_is_imported() -> None:
    """Importing the CLI builds hundreds of thousands of objects; with the default threshold (700) the
    collector would walk them over and over before the command even starts."""
    run = subprocess.run(
        [sys.executable, "-c", _SPY], capture_output=True, text=True, timeout=60, check=False
    )
    assert run.returncode == 0, run.stderr
    assert "threshold when the CLI is imported: 50000" in run.stdout
    assert "Usage" in run.stdout  # and the CLI ran
