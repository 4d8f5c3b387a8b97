"""Fixtures of the remote-reading tests (see ``serving``)."""

from tests.remote.serving import _published_once, served

__all__ = ["_published_once", "served"]
