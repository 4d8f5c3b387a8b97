"""``rpkictl serve``: the online side of a parent (RFC 6492) and of a repository (RFC 8181).

:mod:`reconciler.serve.app` is the HTTP layer (routes, content types, body limits, error mapping),
:mod:`reconciler.serve.runner` runs it under waitress until SIGTERM; the responders that answer each
protocol implement :class:`Responder`.
"""

from reconciler.serve.app import (
    PUBLICATION_CONTENT_TYPE,
    UPDOWN_CONTENT_TYPE,
    Limits,
    Responder,
    ServeApp,
    UnknownPeer,
    make_app,
)
from reconciler.serve.runner import Server, StopRequest, install_signal_handlers, run

__all__ = [
    "PUBLICATION_CONTENT_TYPE",
    "UPDOWN_CONTENT_TYPE",
    "Limits",
    "Responder",
    "ServeApp",
    "Server",
    "StopRequest",
    "UnknownPeer",
    "install_signal_handlers",
    "make_app",
    "run",
]
