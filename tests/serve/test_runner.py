"""Starting and stopping the server: a request in progress is answered before the server stops, SIGTERM
stops a real process with exit 0, and the body limit holds at the WSGI level for any server."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import httpx
import pytest

from reconciler.serve import UPDOWN_CONTENT_TYPE, Limits, Server, StopRequest, make_app
from tests.serve.harness import NOW, EchoResponder, expected, serving

UPDOWN = {"Content-Type": UPDOWN_CONTENT_TYPE}


def test_a_stop_lets_the_request_in_progress_finish_and_then_refuses_connections() -> None:
    updown = EchoResponder("updown", frozenset({"alice"}), delay=1.0)
    answers: list[httpx.Response] = []
    with serving(updown=updown, both=False) as running:
        client = threading.Thread(
            target=lambda: answers.append(
                httpx.post(f"{running.url}/rfc6492/slow", content=b"abc", headers=UPDOWN, timeout=10)
            )
        )
        client.start()
        while updown.calls == 0:  # the request is with the responder
            time.sleep(0.01)
    # the block's end asked the server to stop and waited for it
    client.join(timeout=10)
    assert [a.status_code for a in answers] == [200]
    assert answers[0].content == expected("updown", "slow", b"abc")
    assert running.logged("asked to stop: no new connections; finishing the requests in progress")
    assert running.lines[-1] == "stopped"
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{running.url}/healthz", timeout=2)


def test_a_request_longer_than_the_grace_is_abandoned_with_a_log_line() -> None:
    updown = EchoResponder("updown", frozenset(), delay=3.0)
    with serving(Limits(stop_grace=1), updown=updown, both=False) as running:
        dropped: list[Exception] = []

        def post() -> None:
            try:
                httpx.post(f"{running.url}/rfc6492/slow", content=b"a", headers=UPDOWN, timeout=10)
            except httpx.HTTPError as exc:
                dropped.append(exc)

        client = threading.Thread(target=post)
        client.start()
        while updown.calls == 0:
            time.sleep(0.01)
        began = time.monotonic()
    stopped_after = time.monotonic() - began
    client.join(timeout=10)
    assert stopped_after < 2.5  # it did not wait for the 3-second request (grace 1 s)
    assert running.logged("stopping: 1 request(s) still unanswered after 1s")
    assert len(dropped) == 1  # its client saw the connection close


SERVER_SCRIPT = textwrap.dedent(
    """
    import sys, time
    from reconciler.serve import Limits, Server, StopRequest, install_signal_handlers, make_app
    from tests.serve.harness import EchoResponder

    def log(line):
        print(line, flush=True)

    app = make_app(EchoResponder("updown", frozenset({"alice"}), delay=1.5), None, Limits(), log)
    server = Server(app, "127.0.0.1", 0, Limits())
    stop = StopRequest()
    install_signal_handlers(stop)
    print("PORT", server.addresses[0][1], flush=True)
    server.serve(stop, log)
    """
)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=lambda sig: sig.name)
def test_a_signal_stops_a_serving_process_cleanly_with_exit_0(sig: signal.Signals) -> None:
    root = Path(__file__).resolve().parents[2]
    process = subprocess.Popen(
        [sys.executable, "-c", SERVER_SCRIPT],
        cwd=root,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(root)},
    )
    try:
        assert process.stdout is not None
        first = process.stdout.readline()
        assert first.startswith("PORT "), first + (process.stderr.read() if process.stderr else "")
        url = f"http://127.0.0.1:{first.split()[1]}"
        answers: list[httpx.Response] = []
        client = threading.Thread(
            target=lambda: answers.append(
                httpx.post(f"{url}/rfc6492/slow", content=b"x", headers=UPDOWN, timeout=10)
            )
        )
        client.start()
        time.sleep(0.5)  # the request is with the responder (it takes 1.5 s)
        process.send_signal(sig)
        out, err = process.communicate(timeout=20)
        client.join(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0, err
    assert f"received {sig.name}: no new connections; finishing the requests in progress" in out
    assert out.rstrip().endswith("stopped")
    assert [a.status_code for a in answers] == [200]
    assert "Traceback" not in err


class CountingInput(io.RawIOBase):
    """An endless request body that counts what the application reads of it."""

    def __init__(self) -> None:
        self.read_bytes = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        size = len(buffer)
        buffer[:size] = b"z" * size
        self.read_bytes += size
        return size


def _call(environ: dict[str, object], limits: Limits) -> tuple[str, int]:
    """Run the application on ``environ`` with a CountingInput body: (status, bytes read of the body)."""
    body = CountingInput()
    responder = EchoResponder("updown", frozenset({"alice"}))
    app = make_app(responder, None, limits, lambda _line: None, now=lambda: NOW)
    statuses: list[str] = []
    base = {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": "/rfc6492/alice",
        "CONTENT_TYPE": UPDOWN_CONTENT_TYPE,
        "REMOTE_ADDR": "192.0.2.1",
        "wsgi.input": io.BufferedReader(body, buffer_size=1),
    }
    app({**base, **environ}, lambda status, _headers, _exc=None: statuses.append(status))  # type: ignore[arg-type]
    return statuses[0], body.read_bytes


@pytest.mark.parametrize(
    ("environ", "status", "read"),
    [
        ({}, "413 Request Entity Too Large", 1001),  # no Content-Length: read to limit + 1, then stop
        ({"CONTENT_LENGTH": "5000000"}, "413 Request Entity Too Large", 0),  # refused from the header
        ({"CONTENT_LENGTH": "1000"}, "200 OK", 1000),  # exactly the limit
        ({"CONTENT_LENGTH": "7"}, "200 OK", 7),  # never more than declared
        ({"CONTENT_LENGTH": "12x"}, "400 Bad Request", 0),
    ],
)
def test_the_application_reads_at_most_the_limit_plus_one_byte(
    environ: dict[str, object], status: str, read: int
) -> None:
    assert _call(environ, Limits(max_updown_body=1000)) == (status, read)


@pytest.mark.parametrize("field", ["threads", "connection_limit", "channel_timeout", "max_updown_body"])
def test_limits_refuse_nonsense(field: str) -> None:
    with pytest.raises(ValueError, match=f"{field} must be a whole number of at least 1, not 0"):
        Limits(**{field: 0})


def test_a_port_in_use_fails_at_construction_with_an_os_error() -> None:
    app = make_app(None, None, Limits(), lambda _line: None)
    first = Server(app, "127.0.0.1", 0, Limits())
    try:
        port = first.addresses[0][1]
        with pytest.raises(OSError, match="in use"):
            Server(app, "127.0.0.1", port, Limits())
    finally:
        first.close()
    assert StopRequest().requested is False
