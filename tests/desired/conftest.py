"""Fixtures for the desired-state tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from .helpers import Repo


@pytest.fixture
def repo(tmp_path: Path) -> Repo:
    """A valid three-file repository under ``tmp_path/state``; keys and output go next to it."""
    return Repo.create(tmp_path)
