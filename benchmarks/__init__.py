"""Benchmarks that print figures (``python -m benchmarks.scale``); not part of the installed package."""
