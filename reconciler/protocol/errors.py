"""The errors of the protocol layer: each says which message, what is wrong with it, and, where the
operator can act, what to do."""

from __future__ import annotations


class ProtocolError(Exception):
    """A message or setup file could not be read, or does not verify; the text names it and the reason."""


class XmlError(ProtocolError):
    """Not well-formed XML, a forbidden construct (DTD, entities), or not the element expected."""


class CmsError(ProtocolError):
    """A CMS-signed message that does not decode or does not verify against the peer's identity."""


class ReplayError(CmsError):
    """A message signed no later than the last one accepted from the same peer."""
