"""The errors of the exchanges with a parent and a repository run by someone else, apart from the
modules that make them: the CLI names them among the operator's errors without loading an HTTP client."""

from __future__ import annotations


class ParentError(Exception):
    """No usable certificate from the parent: the message says why and what to do. ``code`` is the
    parent's RFC 6492 status when it refused."""

    def __init__(self, message: str, code: int | None = None) -> None:
        super().__init__(message)
        self.code = code


class RepositoryError(Exception):
    """The repository could not be brought up to date; the local copy is signed and the next apply
    sends what is missing."""
