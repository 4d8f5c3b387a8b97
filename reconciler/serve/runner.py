"""Run the ``rpkictl serve`` application under waitress, with the limits of :class:`Limits`, until asked
to stop.

waitress is a pure-Python production WSGI server: it buffers each request body before the application
sees it (bounded here by the largest route limit; chunked bodies too), caps open connections, closes
connections silent for ``channel_timeout`` (also one that stalls half-way through its body), and answers
from a fixed pool of threads. Its own warnings (the connection limit reached, requests queueing for a
thread) go to the same log callback as the application's lines.

Stopping: :class:`StopRequest` is the signal handler. It only records the request, because a handler
runs between any two bytecodes of the main thread -- possibly half-way through writing a log line or
holding a lock; the serving loop notices within a quarter of a second, stops accepting, lets the
requests already being answered finish and their replies go out (at most ``stop_grace`` seconds), and
returns.
"""

from __future__ import annotations

import logging
import signal
import time
from collections.abc import Callable
from types import FrameType
from typing import TYPE_CHECKING, Any, cast

from waitress import wasyncore
from waitress.channel import HTTPChannel
from waitress.server import BaseWSGIServer, MultiSocketServer, create_server

from reconciler.serve.app import Limits, ServeApp

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIApplication

_POLL = 0.25
"""Seconds the serving loop waits for network events before it looks at a stop request again."""

_CHUNK_FRAMING = 64 * 1024
"""Room above the largest body for chunked transfer framing, which waitress counts against its bound
(each route still enforces its exact limit)."""


class StopRequest:
    """A request to stop serving, made by a signal (SIGTERM, SIGINT) or by a call."""

    def __init__(self) -> None:
        self._signal: int | None = None

    def __call__(self, signum: int | None = None, _frame: FrameType | None = None) -> None:
        """Record the request; as a signal handler it neither writes nor takes a lock."""
        self._signal = signum if signum is not None else 0

    @property
    def requested(self) -> bool:
        return self._signal is not None

    @property
    def signal_name(self) -> str | None:
        """The name of the signal that asked to stop (``SIGTERM``), or None."""
        return signal.Signals(self._signal).name if self._signal else None


def install_signal_handlers(stop: StopRequest) -> None:
    """SIGTERM (``systemctl stop``) and SIGINT (Ctrl-C) stop the server cleanly."""
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)


class _LogHandler(logging.Handler):
    """waitress's log records, as lines for the log callback."""

    def __init__(self, log: Callable[[str], None]) -> None:
        super().__init__(logging.WARNING)
        self._log = log

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self._log(f"server: {record.getMessage()}")
        except Exception:  # a failing log line must not take a server thread down
            self.handleError(record)


class Server:
    """The listening sockets (bound on construction: a port in use fails here, with an OSError) and the
    serving loop (:meth:`serve`)."""

    def __init__(
        self,
        app: WSGIApplication,
        host: str,
        port: int,
        limits: Limits,
        *,
        trusted_proxy: str | None = None,
    ) -> None:
        self.limits = limits
        # the largest body a served route accepts (any body, for an application not made by make_app)
        bound = (
            app.max_body
            if isinstance(app, ServeApp)
            else max(limits.max_updown_body, limits.max_publication_body)
        )
        self._map: dict[int, Any] = {}
        proxy: dict[str, Any] = {}
        if trusted_proxy is not None:
            # Only the proxy's own X-Forwarded-For is believed, and only from that address: the client
            # address in the log is then the real client's.
            proxy = {
                "trusted_proxy": trusted_proxy,
                "trusted_proxy_count": 1,
                "trusted_proxy_headers": {"x-forwarded-for"},
            }
        try:
            self._server = self._create(app, host, port, limits, bound=bound, proxy=proxy)
        except BaseException:
            wasyncore.close_all(cast("Any", self._map))  # what was made before the bind failed
            raise

    def _create(
        self,
        app: WSGIApplication,
        host: str,
        port: int,
        limits: Limits,
        *,
        bound: int,
        proxy: dict[str, Any],
    ) -> MultiSocketServer | BaseWSGIServer:
        return create_server(
            app,
            map=self._map,
            host=host,
            port=port,
            threads=limits.threads,
            connection_limit=limits.connection_limit,
            channel_timeout=limits.channel_timeout,
            # how often silent connections are looked for: a tenth of the time-out, at least every second
            cleanup_interval=max(1, min(30, limits.channel_timeout // 10)),
            max_request_body_size=bound + _CHUNK_FRAMING,
            max_request_header_size=limits.max_header_bytes,
            expose_tracebacks=False,
            clear_untrusted_proxy_headers=True,
            ident="rpkictl",
            **proxy,
        )

    @property
    def addresses(self) -> list[tuple[str, int]]:
        """The (host, port) of each listening socket (port 0 asked for: the port the system chose)."""
        found = []
        for dispatcher in self._listeners():
            if dispatcher.socket is not None:  # None once closed
                name = dispatcher.socket.getsockname()
                found.append((str(name[0]), int(name[1])))
        return found

    def _listeners(self) -> list[BaseWSGIServer]:
        return [d for d in list(self._map.values()) if isinstance(d, BaseWSGIServer)]

    def _channels(self) -> list[HTTPChannel]:
        return [d for d in list(self._map.values()) if isinstance(d, HTTPChannel)]

    def serve(self, stop: StopRequest, log: Callable[[str], None]) -> None:
        """Answer requests until ``stop`` is requested, then stop as the module describes and close
        every socket. ``log`` also receives waitress's warnings meanwhile."""
        handler = _LogHandler(log)
        waitress_log = logging.getLogger("waitress")
        waitress_log.addHandler(handler)
        drained = False
        try:
            while not stop.requested:
                wasyncore.loop(timeout=_POLL, use_poll=True, map=self._map, count=1)
            why = f"received {stop.signal_name}" if stop.signal_name else "asked to stop"
            log(f"{why}: no new connections; finishing the requests in progress")
            drained = self._drain(log)
        finally:
            # idle threads end at once; after the grace, those still answering are not waited for
            self.close(wait=1 if drained else 0)
            waitress_log.removeHandler(handler)
        log("stopped")

    def _drain(self, log: Callable[[str], None]) -> bool:
        """Stop accepting, then run the loop while requests are answered and replies sent; False when
        some were still unanswered at the end of the grace."""
        for listener in self._listeners():
            listener.accepting = False
            wasyncore.dispatcher.close(listener)  # the listening socket only; its trigger stays
        deadline = time.monotonic() + self.limits.stop_grace
        while self._busy():
            if time.monotonic() >= deadline:
                log(f"stopping: {self._busy()} request(s) still unanswered after {self.limits.stop_grace}s")
                return False
            wasyncore.loop(timeout=_POLL / 5, use_poll=True, map=self._map, count=1)
        return True

    def _busy(self) -> int:
        """Connections with a request being answered, or a reply not yet sent."""
        return sum(1 for c in self._channels() if c.requests or c.total_outbufs_len)

    def close(self, wait: int = 1) -> None:
        """Close every socket and let the server threads end, waiting at most ``wait`` seconds for them
        (those still answering then are abandoned)."""
        dispatcher = self._server.task_dispatcher
        dispatcher.shutdown(cancel_pending=True, timeout=wait)
        wasyncore.close_all(cast("Any", self._map))


def run(
    app: WSGIApplication,
    host: str,
    port: int,
    limits: Limits,
    *,
    log: Callable[[str], None],
    stop: StopRequest | None = None,
    trusted_proxy: str | None = None,
) -> None:
    """Serve ``app`` on ``host``:``port`` until ``stop`` is requested (by default: a new request that
    only a call sets -- install it as the signal handler to stop on SIGTERM)."""
    Server(app, host, port, limits, trusted_proxy=trusted_proxy).serve(stop or StopRequest(), log)
