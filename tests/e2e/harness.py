"""Run the real relying-party validators against a publication tree served by a real rsync daemon.

Why this exists: our CA is only correct if the validators operators actually run (rpki-client, FORT)
accept what it publishes, from the same rsync URIs a relying party would use, and reject it when it is
broken. Unit tests of our own DER encoder cannot prove that; this harness can. The validators run rsync
only, rpki-client with ``-vv``, FORT with every "incidence" upgraded so nothing is silently ignored.

The pieces:

* :class:`RsyncDaemon` serves a directory as an rsync module with a real ``rsync --daemon`` bound to
  127.0.0.1 only. ``path =`` in its configuration is the directory exactly as given (a symlink is *not*
  resolved): every connection is a fresh daemon child that chdir()s into ``path``, so a publication
  tree that is swapped atomically by replacing a ``current -> gen-N`` symlink is served from the new
  target on the next connection, as a production daemon would.

* Host mapping: published URIs name a real-looking host (``rsync://rpki.example.net/repo/...``) that
  does not resolve. We give each validator a generated **rsync wrapper** (:func:`write_rsync_wrapper`):
  a POSIX ``sh`` script that rewrites every argument starting with ``rsync://HOST/`` into
  ``rsync://127.0.0.1:PORT/`` and then ``exec``\\ s the real rsync; any other ``rsync://`` argument is
  refused (exit 10), so a validator can never reach the network through the harness. Both validators
  take a substitute rsync program (rpki-client ``-e``, FORT ``rsync.program`` in its JSON config) and
  keep the *original* URI everywhere else (``-H`` shortlist, cache paths, log lines), so objects are
  validated exactly as a relying party would see them. Alternatives rejected: a bind-mounted
  ``/etc/hosts`` in a private mount namespace needs ``unshare`` privileges (often unavailable in
  containers and sandboxes), cannot give each test its own port, and would force the daemon onto port
  873; editing the system ``/etc/hosts`` is out of the question. The wrapper is ``sh``, world-readable and
  executable, and lives in a world-traversable temporary directory because rpki-client started as root
  drops privileges to ``_rpki-client`` *before* it runs rsync (a Python interpreter under ``/root``
  would not even be reachable for that user).

* Time travel: ``now=`` runs the validator with libfaketime preloaded (``LD_PRELOAD``) and a *relative*
  offset (``FAKETIME=+Ns``), so the clock keeps ticking (timeouts still work) and the environment, hence
  the fake clock, is inherited by every child the validator forks or execs (rpki-client's unprivileged
  workers, the rsync processes). ``DONT_FAKE_MONOTONIC=1`` keeps the monotonic clock real so rsync and
  validator timeouts are unaffected; ``NO_FAKE_STAT=1`` keeps file times in ``stat()`` real so cache
  logic and rsync's quick check are not confused. We preload the library directly rather than using
  the ``faketime`` command so the offset is exact and the environment is explicit. libfaketime leaves
  ``/dev/shm/faketime_shm_<pid>`` / ``sem.faketime_sem_<pid>`` behind when a process that created them
  changes user or execs (rpki-client does both); :func:`_remove_stale_faketime_shm` removes the ones
  created during our run whose process is gone. ``tests/e2e/test_harness.py`` proves the shift reaches
  the validators' own checks: an object valid now is rejected as expired a year later, by both.

* Two generations: ``rpki-client`` and ``fort`` are Debian 12's (8.2, 1.5.4, from the system's
  packages); ``rpki-client-9`` and ``fort-1.6`` are the current ones, unpacked from bookworm-backports
  into :data:`RP_CURRENT` and found there only in their own version. The command lines are the same,
  except that rpki-client 9.x gets the evaluation time as ``-P EPOCH`` instead of libfaketime: its
  unprivileged rsync children cannot open the semaphore that libfaketime, started as root, creates.
  rpki-client 9.x compares every manifest with the one its cache holds and reports ``seqnum gap
  detected #A -> #B`` when the number did not go up by exactly one; the count of its summary line is
  ``counts["seqnum_gaps"]``. ``RECONCILER_E2E_VALIDATORS=rpki-client-9,fort-1.6`` runs any e2e test
  against the current generation.

* Results: :class:`ValidatorResult` carries the VRPs (from rpki-client's ``json`` and FORT's CSV), the
  log lines that are warnings or errors about objects (progress chatter filtered out, so a clean
  repository gives ``[]``), the whole log for assertion messages, and the exit status.

Validator behaviour worth knowing (rpki-client 8.2, FORT 1.5.4):

* rpki-client exits 0 even when nothing validated; FORT exits 22 and leaves an empty CSV. Judge by VRPs
  and warnings, not by exit status.
* rpki-client as root chowns nothing itself: its cache and output directories must already belong to
  ``_rpki-client`` (otherwise ``mkpath ...: Permission denied`` and no output), and the TAL must be
  readable by that user; the harness copies the TAL and does the chown.
* Anything rsync prints on stderr under FORT becomes an ``ERR [Validation]: ... [RSYNC exec]:`` line, so
  the wrapper is silent unless it refuses a URI.
* FORT 1.5.4 does not check the trust anchor certificate's own validity period before it looks for the
  TA's manifest; expiry shows up on the manifest/CRL instead (``CRL is stale/expired``).
* With ``-vv`` rpki-client prints ``superfluous``/``deleted`` cache clean-up lines even for a clean
  repository when the TA certificate sits inside the module it also syncs; they are not warnings.
"""

from __future__ import annotations

import contextlib
import csv
import functools
import io
import ipaddress
import json
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Self
from urllib.parse import urlsplit

from tests.e2e.https import in_private_namespace

__all__ = [
    "ALL_VALIDATORS",
    "CURRENT_INSTALL_HINT",
    "CURRENT_VALIDATORS",
    "INSTALL_HINT",
    "RP_CURRENT",
    "RUNNERS",
    "HarnessError",
    "RequireTool",
    "RpkiClientOutput",
    "RsyncDaemon",
    "RsyncDaemonFactory",
    "ToolMissingError",
    "ValidatorResult",
    "ValidatorTimeoutError",
    "Vrp",
    "faketime_env",
    "find_tool",
    "fort_clock",
    "fort_warnings",
    "install_hint",
    "parse_fort_csv",
    "parse_rpki_client_json",
    "parse_rsync_base",
    "rpki_client_summary_counts",
    "rpki_client_warnings",
    "run_fort",
    "run_rpki_client",
    "tool_version",
    "validate_with_all",
    "write_rsync_wrapper",
]

Vrp = tuple[int, str, int]
"""(origin ASN, prefix as :mod:`ipaddress` prints it, max length)."""

ALL_VALIDATORS: tuple[str, ...] = ("rpki-client", "fort")
"""Debian 12's generation (rpki-client 8.2, FORT 1.5.4), from the system's packages."""

CURRENT_VALIDATORS: tuple[str, ...] = ("rpki-client-9", "fort-1.6")
"""The generation operators run today (rpki-client 9.x, FORT 1.6.x), unpacked beside Debian 12's into
:data:`RP_CURRENT` from bookworm-backports, so that both generations stay runnable on one machine."""

RP_CURRENT = Path(os.environ.get("RECONCILER_RP_CURRENT", "/opt/rp-current"))
"""Where the current generation's packages are unpacked (``dpkg -x``); ``RECONCILER_RP_CURRENT`` moves it."""

INSTALL_HINT = "apt-get install rpki-client fort-validator rsync faketime"

CURRENT_INSTALL_HINT = (
    "add the bookworm-backports suite, then 'apt-get download -t bookworm-backports rpki-client "
    f"fort-validator' and 'dpkg -x' both packages into {RP_CURRENT} "
    "(as root, scripts/system-packages.sh tests does both)"
)

DEFAULT_TIMEOUT = 120.0
"""Seconds one validator run may take. The sample repository takes well under a second."""

LOOPBACK = "127.0.0.1"

_RPKI_CLIENT_USER = "_rpki-client"
# rpki-client lives in /usr/sbin, which is not on an unprivileged user's PATH.
_EXTRA_BIN_DIRS = ("/usr/sbin", "/usr/local/sbin", "/sbin")
_LIBFAKETIME_GLOBS = (
    "/usr/lib/*/faketime/libfaketimeMT.so.1",
    "/usr/lib/faketime/libfaketimeMT.so.1",
    "/usr/local/lib/faketime/libfaketimeMT.so.1",
    "/usr/lib/*/faketime/libfaketime.so.1",
    "/usr/lib/faketime/libfaketime.so.1",
    "/usr/local/lib/faketime/libfaketime.so.1",
)
_HOST_RE = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?$")
_MODULE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_WRAPPER_REFUSED = 10

# FORT's incidences, upgraded: the first two default to "ignore", which would
# let a SHA-256 AlgorithmIdentifier with NULL parameters or non-DER objects pass without a word.
FORT_INCIDENCES: tuple[dict[str, str], ...] = (
    {"name": "incid-hashalg-has-params", "action": "warn"},
    {"name": "incid-obj-not-der-encoded", "action": "warn"},
    {"name": "incid-file-at-mft-not-found", "action": "error"},
    {"name": "incid-file-at-mft-hash-not-match", "action": "error"},
    {"name": "incid-mft-stale", "action": "error"},
    {"name": "incid-crl-stale", "action": "error"},
)


class HarnessError(RuntimeError):
    """The harness itself could not do its job (as opposed to a validator rejecting objects)."""


class ToolMissingError(HarnessError):
    """A validator, rsync or libfaketime is not installed."""


class ValidatorTimeoutError(HarnessError):
    """A validator did not finish within its time limit; the partial log is in the message."""


# --------------------------------------------------------------------------------------------- tools


@dataclass(frozen=True)
class _Generation:
    """A validator of the current generation: where its unpacked binary lives, how it tells its version,
    and whether it takes the evaluation time as an option (rpki-client 9.x ``-P``) instead of
    libfaketime, whose semaphore its unprivileged rsync children cannot open."""

    binary: str
    version_flag: str
    version: re.Pattern[str]
    clock_option: bool


_GENERATIONS: dict[str, _Generation] = {
    "rpki-client-9": _Generation(
        "usr/sbin/rpki-client", "-V", re.compile(r"^rpki-client(?:-portable)? 9\.\d+", re.MULTILINE), True
    ),
    "fort-1.6": _Generation("usr/bin/fort", "--version", re.compile(r"^fort 1\.6\.\d+", re.MULTILINE), False),
}


def install_hint(name: str) -> str:
    """How to install tool ``name``: for the message about a missing tool."""
    return CURRENT_INSTALL_HINT if name in _GENERATIONS else INSTALL_HINT


def tool_version(name: str) -> str | None:
    """The version a current-generation validator reports (``rpki-client-portable 9.7``), or None when
    it is missing or of another version: a test that names ``rpki-client-9`` never quietly runs 8.2."""
    generation = _GENERATIONS[name]
    binary = RP_CURRENT / generation.binary
    if not os.access(binary, os.X_OK):
        return None
    try:
        completed = subprocess.run(
            [str(binary), generation.version_flag],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            errors="replace",
            timeout=30,
            check=False,
            env=_base_env(),
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    match = generation.version.search(completed.stdout + completed.stderr)
    return match.group(0) if match else None


def find_tool(name: str) -> str | None:
    """Absolute path of tool ``name``, or None.

    Also looks in the sbin directories (rpki-client is ``/usr/sbin/rpki-client``). For ``faketime`` the
    preload library is what we use, so it must be present too. The current generation's validators
    (:data:`CURRENT_VALIDATORS`) are looked up under :data:`RP_CURRENT`, and only in their own version.
    """
    if name in _GENERATIONS:
        return str(RP_CURRENT / _GENERATIONS[name].binary) if tool_version(name) is not None else None
    path = shutil.which(name)
    if path is None:
        search = os.pathsep.join(_EXTRA_BIN_DIRS)
        path = shutil.which(name, path=search)
    if name == "faketime" and path is not None and _find_libfaketime() is None:
        return None
    return path


def _require(name: str) -> str:
    path = find_tool(name)
    if path is None:
        raise ToolMissingError(f"{name} is not installed; install it with: {install_hint(name)}")
    return path


def _find_libfaketime() -> Path | None:
    # The multi-threaded variant is safe for single-threaded programs too, and FORT uses threads.
    for pattern in _LIBFAKETIME_GLOBS:
        for candidate in sorted(Path("/").glob(pattern.lstrip("/"))):
            if candidate.is_file():
                return candidate
    return None


# ---------------------------------------------------------------------------------------- processes


@dataclass(frozen=True)
class _Completed:
    returncode: int
    stdout: str
    stderr: str
    elapsed: float


def _run(argv: Sequence[str], *, env: Mapping[str, str], timeout: float, cwd: Path) -> _Completed:
    """Run ``argv`` in its own session with a hard time limit.

    Its own session so that on timeout the whole group (validator plus the rsync processes it forked)
    is killed while the leader is still unreaped, i.e. we only ever signal processes we started.
    """
    start = time.monotonic()
    with subprocess.Popen(
        list(argv),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        errors="replace",
        env=dict(env),
        cwd=cwd,
        start_new_session=True,
    ) as proc:
        try:
            stdout, stderr = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            try:
                stdout, stderr = proc.communicate(timeout=10)
            except subprocess.TimeoutExpired:  # a grandchild escaped the group and holds the pipes
                proc.kill()
                stdout, stderr = "", ""
            raise ValidatorTimeoutError(
                f"{argv[0]} did not finish within {timeout:.0f} s\n$ {' '.join(argv)}\n"
                f"--- stdout ---\n{stdout}\n--- stderr ---\n{stderr}"
            ) from None
    return _Completed(proc.returncode, stdout, stderr, time.monotonic() - start)


def _base_env() -> dict[str, str]:
    """The caller's environment minus anything that would change the validators' clock or messages."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("FAKETIME") and key not in {"LD_PRELOAD", "DONT_FAKE_MONOTONIC", "NO_FAKE_STAT"}
    }
    # C locale: stable English messages. UTC: FORT's log timestamps are local time ("%b %e %T").
    env["LC_ALL"] = "C"
    env["TZ"] = "UTC"
    env["PATH"] = os.pathsep.join([env.get("PATH", "/usr/bin:/bin"), *_EXTRA_BIN_DIRS])
    return env


def faketime_env(now: datetime) -> dict[str, str]:
    """Environment variables that make a process (and its children) believe it is ``now``.

    A relative offset rather than an absolute start time: it needs no date parsing and the clock keeps
    running, so validator and rsync timeouts still behave.
    """
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware (e.g. datetime.now(UTC))")
    library = _find_libfaketime()
    if library is None:
        raise ToolMissingError(f"libfaketime is not installed; install it with: {INSTALL_HINT}")
    offset = round((now - datetime.now(UTC)).total_seconds())
    return {
        "LD_PRELOAD": str(library),
        "FAKETIME": f"{offset:+d}",
        "DONT_FAKE_MONOTONIC": "1",
        "NO_FAKE_STAT": "1",
    }


_FAKETIME_SHM_RE = re.compile(r"^(?:faketime_shm_|sem\.faketime_sem_)(\d+)$")


def _remove_stale_faketime_shm(since: float) -> None:
    """Remove libfaketime's shared-memory leftovers created since ``since`` by processes now gone.

    Only entries whose owning pid no longer exists are touched, so a concurrent faketime user on the
    same machine is never disturbed.
    """
    shm = Path("/dev/shm")
    if not shm.is_dir():
        return
    for entry in shm.iterdir():
        match = _FAKETIME_SHM_RE.match(entry.name)
        if match is None:
            continue
        try:
            if entry.stat().st_mtime < since - 1:
                continue
            os.kill(int(match.group(1)), 0)
        except ProcessLookupError:
            with contextlib.suppress(OSError):
                entry.unlink()
        except OSError:  # alive but someone else's (EPERM), or already gone
            continue


# -------------------------------------------------------------------------------------- rsync daemon


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        port: int = sock.getsockname()[1]
        return port


class RsyncDaemon:
    """A real ``rsync --daemon`` serving ``directory`` as module ``module`` on 127.0.0.1.

    Use as a context manager (or ``start()``/``stop()``); ``port`` is chosen free unless given (873 works
    as root). The daemon runs with ``--no-detach`` in its own process group, so ``stop()`` can terminate
    it and any connection children it forked, and waits for them: nothing is left running.

    ``directory`` may be a symlink that is replaced between connections: the configuration names the
    symlink itself, and each connection's daemon child chdir()s into it afresh.

    Started as root the daemon would switch to ``nobody`` to read files; we keep the current user
    instead (``uid``/``gid``), because test trees live under pytest's private (0700) temporary directory.
    So this harness does not prove the published files are world-readable.
    """

    def __init__(
        self,
        directory: Path,
        module: str = "repo",
        *,
        port: int | None = None,
        start_timeout: float = 10.0,
    ) -> None:
        if not _MODULE_RE.match(module):
            raise ValueError(f"rsync module name {module!r} must match {_MODULE_RE.pattern}")
        if "\n" in str(directory):
            raise ValueError("directory path must not contain a newline")
        self.directory = directory.absolute()  # absolute() keeps a symlink a symlink
        self.module = module
        self._requested_port = port
        self._start_timeout = start_timeout
        self._port: int | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._tmp: Path | None = None
        self._final_log = ""
        # Put in the module's comment and looked for in the module list: proves that whatever answers
        # on the port is this daemon (connect() alone would also succeed against a stranger).
        self._nonce = os.urandom(8).hex()

    # -- public API

    @property
    def port(self) -> int:
        """The TCP port on 127.0.0.1 (only while running)."""
        if self._port is None or self._proc is None:
            raise HarnessError("the rsync daemon is not running")
        return self._port

    @property
    def pid(self) -> int:
        """The daemon's process id (only while running): lets tests prove nothing is left behind."""
        if self._proc is None:
            raise HarnessError("the rsync daemon is not running")
        return self._proc.pid

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def url(self, path: str = "") -> str:
        """``rsync://127.0.0.1:PORT/MODULE/path``: the daemon's real address, for direct fetches."""
        return f"rsync://{LOOPBACK}:{self.port}/{self.module}/{path}"

    def hosts(self, *names: str) -> dict[str, int]:
        """A host map for the validators: every published host name in ``names`` goes to this daemon."""
        return dict.fromkeys(names, self.port)

    def log(self) -> str:
        """The daemon's log so far (connections, transfers, errors): for assertion messages."""
        if self._tmp is not None:
            log = self._tmp / "rsyncd.log"
            return log.read_text(errors="replace") if log.exists() else ""
        return self._final_log

    def start(self) -> Self:
        if self._proc is not None:
            raise HarnessError("the rsync daemon is already running")
        rsync = _require("rsync")
        self._tmp = Path(tempfile.mkdtemp(prefix="reconciler-rsyncd-"))
        attempts = 1 if self._requested_port is not None else 5
        try:
            for attempt in range(attempts):
                port = self._requested_port if self._requested_port is not None else _free_port()
                if self._launch(rsync, port):
                    return self
                if attempt + 1 == attempts or "in use" not in self.log():
                    break  # only a lost race for a free port is worth another try
            raise HarnessError(f"rsync daemon did not start on {LOOPBACK}:{port}\n{self.log()}")
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None:
            self._terminate(proc)
        if self._tmp is not None:
            self._final_log = self.log()
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None
        self._port = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- internals

    def _config(self) -> str:
        lines = [
            "# generated by tests/e2e/harness.py",
            "use chroot = no",
            "read only = yes",
            "list = yes",
            "reverse lookup = no",
            f"hosts allow = {LOOPBACK}",
            "timeout = 60",
            "numeric ids = yes",
            "transfer logging = yes",
        ]
        if os.geteuid() == 0:
            lines += [f"uid = {os.getuid()}", f"gid = {os.getgid()}"]
        lines += [
            "",
            f"[{self.module}]",
            f"path = {self.directory}",
            f"comment = reconciler e2e {self._nonce}",
        ]
        return "\n".join(lines) + "\n"

    def _launch(self, rsync: str, port: int) -> bool:
        assert self._tmp is not None
        config = self._tmp / "rsyncd.conf"
        config.write_text(self._config())
        log = self._tmp / "rsyncd.log"
        log.unlink(missing_ok=True)
        with (self._tmp / "rsyncd.stderr").open("ab") as stderr:
            proc = subprocess.Popen(
                [
                    rsync,
                    "--daemon",
                    "--no-detach",
                    f"--config={config}",
                    f"--address={LOOPBACK}",
                    f"--port={port}",
                    f"--log-file={log}",
                ],
                stdin=subprocess.DEVNULL,
                stdout=stderr,
                stderr=stderr,
                start_new_session=True,
            )
        deadline = time.monotonic() + self._start_timeout
        while time.monotonic() < deadline and proc.poll() is None:
            if self._answers(rsync, port):
                self._proc, self._port = proc, port
                return True
            time.sleep(0.05)
        self._terminate(proc)
        with contextlib.suppress(OSError), log.open("a") as out:
            out.write((self._tmp / "rsyncd.stderr").read_text(errors="replace"))
        return False

    def _answers(self, rsync: str, port: int) -> bool:
        """Whether ``rsync rsync://127.0.0.1:PORT/`` lists our module with our nonce (the real client)."""
        try:
            listing = subprocess.run(
                [rsync, "--contimeout=2", "--timeout=2", f"rsync://{LOOPBACK}:{port}/"],
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                errors="replace",
                timeout=10,
                check=False,
            )
        except subprocess.TimeoutExpired:
            return False
        return listing.returncode == 0 and self._nonce in listing.stdout

    @staticmethod
    def _terminate(proc: subprocess.Popen[bytes]) -> None:
        # Signal the group while the leader is unreaped: the pgid cannot have been reused.
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)
        else:
            proc.wait()


RsyncDaemonFactory = Callable[..., RsyncDaemon]
"""The ``rsync_daemon`` fixture's type: ``(directory, module="repo", *, port=None) -> started daemon``."""


# ------------------------------------------------------------------------------------- host mapping


def write_rsync_wrapper(path: Path, hosts: Mapping[str, int], *, rsync: str | None = None) -> Path:
    """Write an ``sh`` script at ``path`` that behaves like rsync with published hosts mapped to 127.0.0.1.

    ``hosts`` maps a published host name (``rpki.example.net``) to the port of the local daemon serving
    it. Every argument ``rsync://HOST/rest`` becomes ``rsync://127.0.0.1:PORT/rest``; an ``rsync://``
    argument naming any other host makes the script exit 10 without running rsync, so nothing ever
    leaves the machine. The script is silent otherwise, because FORT logs whatever its rsync prints on
    stderr as an error. Mode 0755: rpki-client runs it as ``_rpki-client``.
    """
    real = rsync or _require("rsync")
    cases = []
    for host, port in sorted(hosts.items()):
        if not _HOST_RE.match(host):
            raise ValueError(f"host name {host!r} must match {_HOST_RE.pattern}")
        if not 0 < port < 65536:
            raise ValueError(f"port {port} for {host} is out of range")
        prefix = f"rsync://{host}/"
        cases.append(f'        {prefix}*) arg="rsync://{LOOPBACK}:{port}/${{arg#{prefix}}}" ;;')
    script = "\n".join(
        [
            "#!/bin/sh",
            "# Generated by tests/e2e/harness.py: rsync with published hosts mapped to local daemons.",
            "for arg do",
            "    shift",
            "    case $arg in",
            *cases,
            "        rsync://*)",
            '            echo "harness rsync wrapper: no local daemon for $arg" >&2',
            f"            exit {_WRAPPER_REFUSED} ;;",
            "    esac",
            '    set -- "$@" "$arg"',
            "done",
            f'exec {_sh_quote(real)} "$@"',
            "",
        ]
    )
    path.write_text(script)
    path.chmod(0o755)
    return path


def _sh_quote(word: str) -> str:
    return "'" + word.replace("'", "'\"'\"'") + "'"


def parse_rsync_base(rsync_base: str) -> tuple[str, str]:
    """Split ``rsync://HOST/MODULE/`` into (host, module).

    Only a module-level base is supported: rsync sends a module's contents, so the publication
    directory must be the module root (a deeper base would need symlinks inside the module, which the
    validators' ``rsync -rt`` would skip).
    """
    parts = urlsplit(rsync_base)
    segments = [segment for segment in parts.path.split("/") if segment]
    if parts.scheme != "rsync" or not parts.hostname or parts.port is not None or len(segments) != 1:
        raise ValueError(f"expected rsync://HOST/MODULE/, got {rsync_base!r}")
    return parts.hostname, segments[0]


# ------------------------------------------------------------------------------------------- results


@dataclass(frozen=True)
class ValidatorResult:
    """What one validator run concluded.

    ``vrps`` is the verdict; ``warnings`` are the log lines about problems with objects (empty for a
    clean repository: progress lines are filtered out); ``log`` is everything, for assertion messages;
    ``counts`` are rpki-client's end-of-run statistics (``roas``, ``certificates``, ``manifests``,
    ``invalidcertificates``, ``failedroas``... from its ``json`` metadata; empty for FORT); ``clock`` is
    when the validator itself believed it ran (rpki-client's ``buildtime``; FORT's first log timestamp,
    which has no year, so the year nearest to the requested time is assumed): it shows whether a
    ``now=`` shift really reached the validator.
    """

    validator: str
    vrps: frozenset[Vrp]
    warnings: list[str]
    log: str
    returncode: int
    counts: dict[str, int] = field(default_factory=dict)
    elapsed: float = 0.0
    clock: datetime | None = None
    aspas: dict[int, tuple[int, ...]] | None = None  # rpki-client's (customer -> providers); None: FORT
    bgpsec_keys: frozenset[tuple[int, str, str]] | None = None  # rpki-client's (AS, SKI, key); None: FORT

    def summary(self) -> str:
        """A compact, readable account for ``assert ..., result.summary()``."""
        vrps = "\n".join(f"  AS{asn} {prefix} max {max_len}" for asn, prefix, max_len in sorted(self.vrps))
        warnings = "\n".join(f"  {line}" for line in self.warnings)
        clock = f", clock {self.clock:%Y-%m-%d %H:%M:%S}" if self.clock else ""
        return (
            f"{self.validator}: exit {self.returncode}, {len(self.vrps)} VRPs, "
            f"{len(self.warnings)} warnings, {self.elapsed:.2f} s{clock}\n"
            f"VRPs:\n{vrps or '  (none)'}\nwarnings:\n{warnings or '  (none)'}\n"
            f"--- full log ---\n{self.log}"
        )


def _normalise_vrp(asn: int | str, prefix: str, max_length: int | str) -> Vrp:
    asn_text = str(asn).strip()
    if asn_text.upper().startswith("AS"):
        asn_text = asn_text[2:]
    return int(asn_text), str(ipaddress.ip_network(prefix.strip(), strict=True)), int(max_length)


@dataclass(frozen=True)
class RpkiClientOutput:
    """What rpki-client's ``json`` output file says."""

    vrps: frozenset[Vrp]
    counts: dict[str, int]
    buildtime: datetime | None
    aspas: dict[int, tuple[int, ...]] = field(default_factory=dict)  # customer AS -> providers
    bgpsec_keys: frozenset[tuple[int, str, str]] = frozenset()  # (AS, SKI hex, public key Base64)


def _asn(value: int | str) -> int:
    return int(str(value).upper().removeprefix("AS"))


def parse_rpki_client_json(text: str) -> RpkiClientOutput:
    """VRPs, integer metadata and build time from rpki-client's ``json`` (ASN as 64496 or "AS64496")."""
    document = json.loads(text)
    vrps = frozenset(
        _normalise_vrp(roa["asn"], roa["prefix"], roa["maxLength"]) for roa in document.get("roas", [])
    )
    metadata = document.get("metadata", {})
    counts = {key: value for key, value in metadata.items() if type(value) is int}  # not bools, not strings
    buildtime = None
    if isinstance(metadata.get("buildtime"), str):
        buildtime = datetime.strptime(metadata["buildtime"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    aspas = {
        _asn(aspa["customer_asid"]): tuple(sorted(_asn(p) for p in aspa["providers"]))
        for aspa in document.get("aspas", [])
    }
    keys = frozenset(
        (_asn(key["asn"]), str(key["ski"]).replace(":", "").lower(), str(key["pubkey"]))
        for key in document.get("bgpsec_keys", [])
    )
    return RpkiClientOutput(vrps, counts, buildtime, aspas, keys)


def parse_fort_csv(text: str) -> frozenset[Vrp]:
    """VRPs from FORT's CSV (``ASN,Prefix,Max prefix length``; ASN as ``AS64496``)."""
    vrps = set()
    for row in csv.reader(io.StringIO(text)):
        if not row or row[0].strip().upper() == "ASN":
            continue
        if len(row) < 3:
            raise HarnessError(f"unexpected FORT CSV row {row!r}")
        vrps.add(_normalise_vrp(row[0], row[1], row[2]))
    return frozenset(vrps)


# rpki-client prints these at -v/-vv whatever the repository contains; everything else on its stderr
# (object errors, rsync failures, openssl complaints, "CPS <uri>" notes) counts as a warning.
_RPKI_CLIENT_PROGRESS = tuple(
    re.compile(pattern)
    for pattern in (
        r": pulling from \S+$",
        r": loaded from network$",
        # RRDP: the relying party starts from the snapshot, or catches up through deltas (9.x adds the
        # session and serial it moves to: "(<uuid>#<serial>)")
        r": downloading snapshot(?: \(\S+#\d+\))?$",
        r": downloading \d+ deltas?(?: \(\S+#\d+\))?$",
        r"^all files parsed: generating output$",
        r"^(?:superfluous|deleted|deleted superfluous) \S+$",  # cache clean-up after a run (9.x: both words)
        r"^rsync_sync",
        r"^\s*\.\.\.trace: ",  # OpenSSL error-stack detail; the object's own line says what failed
        r"^(?:Processing time|Route Origin Authorizations:|Skiplist entries:)",
    )
)


_RPKI_CLIENT_MANIFEST_SUMMARY = re.compile(
    r"^Manifests: \d+ \((?P<failed>\d+) failed parse, (?P<gaps>\d+) seqnum gaps?\)$", re.MULTILINE
)


def rpki_client_summary_counts(stdout: str) -> dict[str, int]:
    """Counts that rpki-client 9.x prints in its end-of-run summary but not in its ``json``: how many
    manifests had a ``seqnum gap`` (``seqnum_gaps``), i.e. a number that did not go up by exactly one
    since the manifest it validated before (RFC 9286 section 4.2.1). Empty for 8.2, which does not count."""
    match = _RPKI_CLIENT_MANIFEST_SUMMARY.search(stdout)
    return {"seqnum_gaps": int(match.group("gaps"))} if match else {}


def rpki_client_warnings(stderr: str) -> list[str]:
    """The lines of rpki-client's stderr that report a problem (progress lines removed)."""
    warnings = []
    for line in stderr.splitlines():
        if not line.strip():
            continue
        message = line.removeprefix("rpki-client: ")
        if any(pattern.search(message) for pattern in _RPKI_CLIENT_PROGRESS):
            continue
        warnings.append(line)
    return warnings


_FORT_LINE = re.compile(  # "Nov 23 08:57:13 ERR [Validation]: ..." (strftime "%b %e %T", then the level)
    r"^(?P<month>[A-Z][a-z]{2}) +(?P<day>\d{1,2}) (?P<time>\d{2}:\d{2}:\d{2}) "
    r"(?P<level>[A-Z]{3})\b(?P<rest>.*)$"
)
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_FORT_PROGRESS = ("The validation has begun.", "The validation has successfully ended.")


def fort_warnings(log: str) -> list[str]:
    """FORT's WRN/ERR/CRT lines, minus its "validation has begun/ended" progress notes."""
    warnings = []
    for line in log.splitlines():
        match = _FORT_LINE.match(line)
        if match is None or match.group("level") not in {"WRN", "ERR", "CRT"}:
            continue
        if match.group("rest").strip(" :") in _FORT_PROGRESS:
            continue
        warnings.append(line)
    return warnings


def fort_clock(log: str, near: datetime) -> datetime | None:
    """The time of FORT's first log line (``%b %e %T`` in UTC, no year: the year closest to ``near``)."""
    for line in log.splitlines():
        match = _FORT_LINE.match(line)
        if match is None or match.group("month") not in _MONTHS:
            continue
        month = _MONTHS.index(match.group("month")) + 1
        hour, minute, second = (int(part) for part in match.group("time").split(":"))
        candidates = []
        for year in (near.year - 1, near.year, near.year + 1):
            with contextlib.suppress(ValueError):  # 29 February in a common year
                candidates.append(
                    datetime(year, month, int(match.group("day")), hour, minute, second, tzinfo=UTC)
                )
        return min(candidates, key=lambda candidate: abs(candidate - near), default=None)
    return None


# ---------------------------------------------------------------------------------------- validators


class _WorkDir:
    """A temporary directory that the unprivileged ``_rpki-client`` user can traverse.

    ``RECONCILER_E2E_KEEP_WORK=1`` keeps it (its path is printed in the result's log) for debugging.
    """

    def __init__(self, prefix: str) -> None:
        self.path = Path(tempfile.mkdtemp(prefix=prefix))
        self.path.chmod(0o755)
        self.keep = os.environ.get("RECONCILER_E2E_KEEP_WORK", "") not in {"", "0"}

    def __enter__(self) -> Path:
        return self.path

    def __exit__(self, *exc: object) -> None:
        if not self.keep:
            shutil.rmtree(self.path, ignore_errors=True)


def _drop_user() -> pwd.struct_passwd | None:
    """The user rpki-client switches to, when we run it as root (None when it keeps our identity)."""
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam(_RPKI_CLIENT_USER)
    except KeyError:
        return None


def _chown_tree(root: Path, user: pwd.struct_passwd) -> None:
    os.chown(root, user.pw_uid, user.pw_gid)
    for directory, dirnames, filenames in os.walk(root):
        for name in (*dirnames, *filenames):
            os.lchown(Path(directory) / name, user.pw_uid, user.pw_gid)


def _check_traversable(path: Path) -> None:
    for ancestor in [path, *path.parents]:
        if not ancestor.stat().st_mode & 0o001:
            raise HarnessError(
                f"{ancestor} is not world-searchable, so {_RPKI_CLIENT_USER} cannot reach {path}; "
                "point TMPDIR at a directory like /tmp"
            )


def _copy_tree(source: Path, destination: Path) -> None:
    if destination.exists():
        shutil.rmtree(destination)
    shutil.copytree(source, destination, symlinks=True)


def _epoch(now: datetime) -> int:
    """``now`` as POSIX seconds, for rpki-client 9.x's ``-P``."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware (e.g. datetime.now(UTC))")
    return int(now.timestamp())


def _prepare_env(now: datetime | None) -> dict[str, str]:
    env = _base_env()
    if now is not None:
        env.update(faketime_env(now))
    return env


def _with_log_header(work: Path, argv: Sequence[str], completed: _Completed, keep: bool) -> str:
    kept = f"(work directory kept at {work})\n" if keep else ""
    return (
        f"{kept}$ {' '.join(argv)}\nexit status {completed.returncode}\n"
        f"--- stdout ---\n{completed.stdout}--- stderr ---\n{completed.stderr}"
    )


def run_rpki_client(
    tal: Path,
    hosts: Mapping[str, int],
    *,
    now: datetime | None = None,
    cache: Path | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    https: HttpsAccess | None = None,
    program: str = "rpki-client",
) -> ValidatorResult:
    """Run rpki-client once against ``tal`` with ``hosts`` mapped to local daemons: rsync only, or
    RRDP first when ``https`` says how to reach it.

    ``program`` is ``rpki-client`` (Debian 12's 8.2) or ``rpki-client-9`` (the current generation, see
    :data:`CURRENT_VALIDATORS`); it also names the result. ``hosts`` maps each published host name to a
    daemon port (``RsyncDaemon.hosts(...)``); each becomes a ``-H`` shortlist entry. ``now`` runs 8.2
    under libfaketime and gives 9.x its evaluation time (``-P``). ``cache``, if given, is the cache
    directory to continue from and is updated after the run, so two calls see each other's state
    (rpki-client remembers manifests between runs); it is copied through a private, world-traversable
    directory because rpki-client as root works as ``_rpki-client``, which cannot enter pytest's
    0700 temporary directories.
    """
    rpki_client = _require(program)
    generation = _GENERATIONS.get(program)
    clock_option = generation is not None and generation.clock_option
    start = time.time()
    workdir = _WorkDir("reconciler-rpki-client-")
    with workdir as work:
        wrapper = write_rsync_wrapper(work / "rsync-wrapper", hosts)
        work_tal = work / tal.name  # the file name (minus .tal) is the trust anchor's name
        shutil.copyfile(tal, work_tal)
        work_tal.chmod(0o644)
        work_cache, out = work / "cache", work / "out"
        if cache is not None and cache.is_dir():
            _copy_tree(cache, work_cache)
        work_cache.mkdir(exist_ok=True)
        out.mkdir()
        user = _drop_user()
        if user is not None:
            _check_traversable(work)
            _chown_tree(work_cache, user)
            _chown_tree(out, user)
        argv = [rpki_client, *([] if https else ["-R"]), "-j", "-c", "-vv", "-s", str(max(1, int(timeout)))]
        argv += ["-e", str(wrapper), "-t", str(work_tal), "-d", str(work_cache)]
        if clock_option and now is not None:
            argv += ["-P", str(_epoch(now))]
        for host in sorted(hosts):
            argv += ["-H", host]
        argv.append(str(out))
        env = _prepare_env(None if clock_option else now)
        if https is not None:
            env["http_proxy"] = https.proxy_url
            argv = in_private_namespace(argv, https.bundle)
        try:
            completed = _run(argv, env=env, timeout=timeout + 30, cwd=work)
        finally:
            if now is not None and not clock_option:
                _remove_stale_faketime_shm(start)
        json_file = out / "json"
        output = RpkiClientOutput(frozenset(), {}, None)
        if json_file.exists():  # absent when rpki-client could not even start
            output = parse_rpki_client_json(json_file.read_text())
        output.counts.update(rpki_client_summary_counts(completed.stdout))
        if cache is not None:
            _copy_tree(work_cache, cache)
        return ValidatorResult(
            validator=program,
            vrps=output.vrps,
            warnings=rpki_client_warnings(completed.stderr),
            log=_with_log_header(work, argv, completed, workdir.keep),
            returncode=completed.returncode,
            counts=output.counts,
            elapsed=completed.elapsed,
            clock=output.buildtime,
            aspas=output.aspas,
            bgpsec_keys=output.bgpsec_keys,
        )


def run_fort(
    tal: Path,
    hosts: Mapping[str, int],
    *,
    now: datetime | None = None,
    cache: Path | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    https: HttpsAccess | None = None,
    program: str = "fort",
) -> ValidatorResult:
    """Run FORT once in standalone mode, every incidence upgraded to error or warning: rsync only, or
    RRDP first when ``https`` says how to reach it.

    ``program`` is ``fort`` (Debian 12's 1.5.4) or ``fort-1.6`` (the current generation); both take the
    same command line and run under libfaketime for ``now``. Otherwise the same arguments as
    :func:`run_rpki_client`. FORT keeps our identity, so ``cache`` (its ``--local-repository``) is used
    in place. ``--rsync.transfer-timeout`` bounds each rsync.
    """
    fort = _require(program)
    start = time.time()
    workdir = _WorkDir("reconciler-fort-")
    with workdir as work:
        wrapper = write_rsync_wrapper(work / "rsync-wrapper", hosts)
        work_tal = work / tal.name
        shutil.copyfile(tal, work_tal)
        config = work / "fort.json"
        config.write_text(
            json.dumps({"incidences": list(FORT_INCIDENCES), "rsync": {"program": str(wrapper)}}, indent=1)
        )
        local_repository = cache if cache is not None else work / "cache"
        local_repository.mkdir(parents=True, exist_ok=True)
        roa_csv = work / "roa.csv"
        argv = [
            fort,
            f"--configuration-file={config}",
            "--mode=standalone",
            f"--tal={work_tal}",
            f"--local-repository={local_repository}",
            "--rsync.enabled=true",
            "--rsync.retry.count=0",
            f"--rsync.transfer-timeout={max(1, int(timeout))}",
            *(
                ["--http.enabled=true", f"--http.ca-path={https.ca_dir}", "--http.retry.count=0"]
                if https
                else ["--http.enabled=false"]
            ),
            f"--output.roa={roa_csv}",
            "--output.format=csv",
            "--log.output=console",
            "--log.level=warning",
            "--log.color-output=false",
            "--validation-log.enabled=true",
            "--validation-log.output=console",
            "--validation-log.level=info",
            "--validation-log.color-output=false",
        ]
        env = _prepare_env(now)
        if https is not None:
            env["https_proxy"] = https.proxy_url
        try:
            completed = _run(argv, env=env, timeout=timeout + 30, cwd=work)
        finally:
            if now is not None:
                _remove_stale_faketime_shm(start)
        vrps = parse_fort_csv(roa_csv.read_text()) if roa_csv.exists() else frozenset()
        log = completed.stdout + "\n" + completed.stderr
        return ValidatorResult(
            validator=program,
            vrps=vrps,
            warnings=fort_warnings(log),
            log=_with_log_header(work, argv, completed, workdir.keep),
            returncode=completed.returncode,
            elapsed=completed.elapsed,
            clock=fort_clock(log, now or datetime.now(UTC)),
        )


@dataclass(frozen=True)
class HttpsAccess:
    """How validators reach RRDP over HTTPS in a test: the CONNECT proxy that maps the published host
    to the local server, the CA bundle (for rpki-client, in its own mount namespace) and the CA
    directory (for FORT)."""

    proxy_url: str
    bundle: Path
    ca_dir: Path


Runner = Callable[..., ValidatorResult]
RequireTool = Callable[[str], str]
"""The ``require_tool`` fixture's type (tests/e2e/conftest.py): tool name -> absolute path."""

RUNNERS: dict[str, Runner] = {
    "rpki-client": run_rpki_client,
    "fort": run_fort,
    "rpki-client-9": functools.partial(run_rpki_client, program="rpki-client-9"),
    "fort-1.6": functools.partial(run_fort, program="fort-1.6"),
}


def validate_with_all(
    tal: Path,
    publication_rsync_dir: Path,
    rsync_base: str,
    *,
    now: datetime | None = None,
    validators: Iterable[str] = ALL_VALIDATORS,
    caches: Mapping[str, Path] | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    https: HttpsAccess | None = None,
) -> dict[str, ValidatorResult]:
    """Serve a publication tree over real rsync and run every validator on it: the e2e tests' entry point.

    ``tal`` is the trust anchor locator the CA wrote (its rsync URI must be under ``rsync_base``'s host);
    ``publication_rsync_dir`` is the directory published at ``rsync_base`` (``rsync://HOST/MODULE/``),
    possibly a symlink to the current generation; ``now`` shifts the validators' clock; ``caches`` maps
    a validator name to a cache directory kept between calls (to test what a long-running relying party
    sees, e.g. manifest numbers that must never go backwards). Returns ``{validator name: result}``.

    Typical use::

        results = validate_with_all(tal, state.publication.directory, state.publication.rsync_base)
        for name, result in results.items():
            assert result.vrps == expected, result.summary()
            assert result.warnings == [], result.summary()
    """
    host, module = parse_rsync_base(rsync_base)
    names = list(validators)
    unknown = set(names) - set(RUNNERS)
    if unknown:
        raise ValueError(f"unknown validators {sorted(unknown)}; known: {sorted(RUNNERS)}")
    caches = caches or {}
    with RsyncDaemon(publication_rsync_dir, module) as daemon:
        hosts = daemon.hosts(host)
        return {
            name: RUNNERS[name](tal, hosts, now=now, cache=caches.get(name), timeout=timeout, https=https)
            for name in names
        }
