from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.github.helpers import NOW
from tests.helpers import Scratch, scratch_copy


@pytest.fixture
def scratch(tmp_path: Path) -> Scratch:
    """A fresh copy of the bundled example; nothing published yet."""
    return scratch_copy(tmp_path)


@pytest.fixture
def applied(scratch: Scratch) -> Scratch:
    """The bundled example, applied once at NOW."""
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "reconciler",
            "apply",
            str(scratch.repo),
            "--yes",
            "--simulate-time",
            "--now",
            NOW,
        ],
        capture_output=True,
        text=True,
        timeout=180,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return scratch
