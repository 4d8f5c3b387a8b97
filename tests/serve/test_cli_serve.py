"""``rpkictl serve`` as a user runs it: a real process on 127.0.0.1, stopped with SIGTERM."""

from __future__ import annotations

import os
import re
import select
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from reconciler.protocol import publication, sigmsg
from reconciler.serve import PUBLICATION_CONTENT_TYPE, UPDOWN_CONTENT_TYPE
from tests.helpers import Scratch, scratch_copy

FIXTURES = Path(__file__).parents[1] / "fixtures" / "real-world" / "protocols" / "krill" / "oob"
OPTIONS = (
    "--host", "--port", "--max-rfc6492-body", "--max-rfc8181-body", "--threads", "--connection-limit",
    "--channel-timeout", "--stop-grace", "--trusted-proxy",
)  # fmt: skip


def rpkictl(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "reconciler", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=120,
        stdin=subprocess.DEVNULL,
        check=False,
    )


def with_publisher(tmp_path: Path) -> Scratch:
    """The bundled example with one publisher, ``alice``, from Krill's publisher_request."""
    request = FIXTURES / "publisher_request.xml"
    scratch = scratch_copy(tmp_path)
    (scratch.repo / "publishers").mkdir()
    shutil.copy(request, scratch.repo / "publishers" / "alice.xml")
    with (scratch.repo / "rpki.yaml").open("a") as handle:
        handle.write("publishers:\n  - handle: alice\n    request: publishers/alice.xml\n")
    return scratch


def with_child(scratch: Scratch) -> Scratch:
    """Also an external child of example-isp, ``downstream``, from APNIC's child_request."""
    request = FIXTURES / "apnic" / "child_request.xml"
    (scratch.repo / "children").mkdir()
    shutil.copy(request, scratch.repo / "children" / "downstream.xml")
    with (scratch.repo / "cas" / "members" / "example-isp.yaml").open("a") as handle:
        handle.write(
            "children:\n  - handle: downstream\n    request: children/downstream.xml\n"
            "    resources: {asn: [AS64497]}\n"
        )
    return scratch


@dataclass
class Served:
    process: subprocess.Popen[str]
    url: str
    first_line: str


def _line(process: subprocess.Popen[str], timeout: float) -> str:
    assert process.stdout is not None
    ready, _, _ = select.select([process.stdout], [], [], timeout)
    return process.stdout.readline() if ready else ""


SERVE = (sys.executable, "-m", "reconciler", "serve")


@contextmanager
def serving(repo: Path, *args: str) -> Iterator[Served]:
    process = subprocess.Popen(
        [*SERVE, str(repo), "--port", "0", "--allow-uncommitted", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "COLUMNS": "500"},
    )
    try:
        first = _line(process, 60)
        found = re.search(r"on (http://127\.0\.0\.1:\d+) ", first)
        if found is None:
            process.kill()
            _, err = process.communicate(timeout=10)
            pytest.fail(f"rpkictl serve did not start: {first!r} {err}")
        yield Served(process, found.group(1), first)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate(timeout=10)


def test_help_lists_every_option() -> None:
    shown = subprocess.run(
        [sys.executable, "-m", "reconciler", "serve", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, "COLUMNS": "200"},
    )
    assert shown.returncode == 0, shown.stderr
    for option in OPTIONS:
        assert option in shown.stdout, option
    assert "127.0.0.1" in shown.stdout and "8080" in shown.stdout and "1048576" in shown.stdout
    for noise in ("<bool>", "<str>", "<int>", "INTEGER", "TEXT"):
        assert noise not in shown.stdout, noise


def test_the_example_declares_nothing_to_serve_and_says_so(tmp_path: Path) -> None:
    scratch = scratch_copy(tmp_path)
    result = rpkictl("serve", str(scratch.repo), "--port", "0", "--allow-uncommitted")
    assert result.returncode == 1
    assert "nothing to serve: no CA in" in result.stderr
    assert "children:" in result.stderr and "publishers:" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (scratch.root / "keys").exists() or not any(
        "identity" in p.name for p in (scratch.root / "keys").iterdir()
    )  # no identity key was made for nothing


def test_bad_options_name_the_option(tmp_path: Path) -> None:
    scratch = scratch_copy(tmp_path)
    for args, option in (
        (["--channel-timeout", "soon"], "--channel-timeout"),
        (["--stop-grace", "0s"], "--stop-grace"),
        (["--threads", "0"], "--threads"),
        (["--max-rfc6492-body", "0"], "--max-rfc6492-body"),
        (["--port", "70000"], "--port"),
    ):
        result = rpkictl("serve", str(scratch.repo), "--allow-uncommitted", *args)
        assert result.returncode == 1, (args, result.stderr)
        assert option in result.stderr, (args, result.stderr)


def test_serves_a_declared_publisher_and_stops_on_sigterm_with_exit_0(tmp_path: Path) -> None:
    scratch = with_publisher(tmp_path)
    with serving(scratch.repo) as served:
        assert "serving RFC 8181 for 1 publisher on" in served.first_line
        health = httpx.get(f"{served.url}/healthz", timeout=10)
        unknown = httpx.post(
            f"{served.url}/rfc8181/bob", content=b"x", headers={"Content-Type": PUBLICATION_CONTENT_TYPE}
        )
        unserved = httpx.post(
            f"{served.url}/rfc6492/alice", content=b"x", headers={"Content-Type": UPDOWN_CONTENT_TYPE}
        )
        garbage = httpx.post(
            f"{served.url}/rfc8181/alice",
            content=b"not a CMS message",
            headers={"Content-Type": PUBLICATION_CONTENT_TYPE},
            timeout=30,
        )
        served.process.send_signal(signal.SIGTERM)
        out, err = served.process.communicate(timeout=60)
    assert (health.status_code, health.text) == (200, "ok\n")
    assert unknown.status_code == 404
    assert unserved.status_code == 404  # no external child declared: RFC 6492 is not served
    # the publication server answers a message it cannot verify with a signed RFC 8181 error report
    assert garbage.status_code == 200, garbage.text
    assert garbage.headers["content-type"] == PUBLICATION_CONTENT_TYPE
    reply = publication.parse_reply(sigmsg.econtent(garbage.content, "reply"), "reply")
    assert isinstance(reply, publication.ErrorReply)
    assert [e.code for e in reply.errors] == ["bad_cms_signature"]
    assert served.process.returncode == 0, err
    assert "POST /rfc8181/bob 404" in out and "POST /rfc8181/alice 200" in out
    assert "received SIGTERM" in out and out.rstrip().endswith("serve: stopped")
    assert "Traceback" not in err


def test_serves_children_and_publishers_together(tmp_path: Path) -> None:
    scratch = with_child(with_publisher(tmp_path))
    with serving(scratch.repo) as served:
        assert "serving RFC 6492 for 1 child and RFC 8181 for 1 publisher on" in served.first_line
        garbage = httpx.post(
            f"{served.url}/rfc6492/downstream",
            content=b"not a CMS message",
            headers={"Content-Type": UPDOWN_CONTENT_TYPE},
            timeout=30,
        )
        unknown = httpx.post(
            f"{served.url}/rfc6492/alice", content=b"x", headers={"Content-Type": UPDOWN_CONTENT_TYPE}
        )
        served.process.send_signal(signal.SIGTERM)
        out, err = served.process.communicate(timeout=60)
    # a message that is not CMS cannot be answered even with a signed error: refused, the reason logged
    assert garbage.status_code == 400
    assert "CMS" not in garbage.text
    assert re.search(r"POST /rfc6492/downstream 400 .*external child downstream: not a CMS message", out), out
    assert unknown.status_code == 404  # a publisher's handle is not a child's
    assert served.process.returncode == 0, err


def test_a_port_in_use_is_a_clear_error(tmp_path: Path) -> None:
    scratch = with_publisher(tmp_path)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        started = time.monotonic()
        result = rpkictl("serve", str(scratch.repo), "--port", str(port), "--allow-uncommitted")
    assert result.returncode == 1
    assert f"cannot listen on 127.0.0.1 port {port}: Address already in use" in result.stderr
    assert "Traceback" not in result.stderr
    assert time.monotonic() - started < 60
