"""Tests for the desired-state loader (a package, so module names cannot clash with other test dirs)."""
