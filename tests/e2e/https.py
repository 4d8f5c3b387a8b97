"""RRDP over real HTTPS on 127.0.0.1: a throw-away CA, a TLS server for the published host name, and
an HTTP CONNECT proxy that maps that host to the server -- so relying parties fetch
``https://rpki.example.net/rrdp/notification.xml`` unchanged, through ``https_proxy``.

The CA is trusted for the validator processes only: FORT takes a CA directory (``--http.ca-path``);
rpki-client reads the system bundle, so it runs in a private mount namespace (``unshare -m``) where a
bundle with the test CA is bind-mounted over the system one. Nothing on the machine changes.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import http.server
import select
import socket
import socketserver
import ssl
import subprocess
import threading
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Self

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

SYSTEM_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")


@dataclass(frozen=True)
class ThrowawayCa:
    """A CA and a server certificate for ``host``, as files in ``directory``."""

    directory: Path
    host: str

    @property
    def ca_pem(self) -> Path:
        return self.directory / "test-ca.pem"

    @property
    def bundle(self) -> Path:
        """The system bundle plus the test CA: what rpki-client sees in its namespace."""
        return self.directory / "bundle.pem"

    @property
    def ca_dir(self) -> Path:
        """An OpenSSL CA directory (hashed names) with only the test CA: FORT's --http.ca-path."""
        return self.directory / "ca-dir"

    @property
    def server_cert(self) -> Path:
        return self.directory / "server.pem"

    @property
    def server_key(self) -> Path:
        return self.directory / "server.key"

    @classmethod
    def create(cls, directory: Path, host: str) -> ThrowawayCa:
        directory.mkdir(parents=True, exist_ok=True)
        directory.chmod(0o755)
        now = dt.datetime.now(dt.UTC)
        ca_key = ec.generate_private_key(ec.SECP256R1())
        ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "rpki-reconciler test CA")])
        ca = (
            x509.CertificateBuilder()
            .subject_name(ca_name)
            .issuer_name(ca_name)
            .public_key(ca_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=400))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256())
        )
        key = ec.generate_private_key(ec.SECP256R1())
        server = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)]))
            .issuer_name(ca_name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=400))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(host)]), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([x509.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
            )
            .sign(ca_key, hashes.SHA256())
        )
        made = cls(directory, host)
        ca_pem = ca.public_bytes(serialization.Encoding.PEM)
        made.ca_pem.write_bytes(ca_pem)
        system = SYSTEM_BUNDLE.read_bytes() if SYSTEM_BUNDLE.exists() else b""
        made.bundle.write_bytes(system + b"\n" + ca_pem)
        made.server_cert.write_bytes(server.public_bytes(serialization.Encoding.PEM))
        made.server_key.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
        made.ca_dir.mkdir()
        subject_hash = subprocess.run(
            ["openssl", "x509", "-hash", "-noout", "-in", str(made.ca_pem)],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        (made.ca_dir / f"{subject_hash}.0").write_bytes(ca_pem)
        for path in (made.ca_pem, made.bundle, made.server_cert, made.ca_dir / f"{subject_hash}.0"):
            path.chmod(0o644)
        made.ca_dir.chmod(0o755)
        return made


class _Quiet(http.server.SimpleHTTPRequestHandler):
    requests: list[str]

    def log_message(self, format: str, *args: object) -> None:
        self.requests.append(self.path)

    def finish(self) -> None:
        """Close TLS properly (close_notify): rpki-client reports a bare TCP close as an error."""
        super().finish()
        with contextlib.suppress(OSError, ValueError):
            self.connection.unwrap()  # type: ignore[attr-defined]


@dataclass
class HttpsServer:
    """Serves ``root`` over TLS on 127.0.0.1, recording every path requested (``requests``)."""

    root: Path
    ca: ThrowawayCa
    requests: list[str] = field(default_factory=list)
    _server: socketserver.TCPServer | None = None

    @property
    def port(self) -> int:
        assert self._server is not None
        return int(self._server.server_address[1])

    def __enter__(self) -> Self:
        requests = self.requests
        root = str(self.root)

        class Handler(_Quiet):
            def __init__(self, *args: object, **kwargs: object) -> None:
                self.requests = requests
                super().__init__(*args, directory=root, **kwargs)  # type: ignore[misc]

        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.ca.server_cert, self.ca.server_key)
        server.socket = context.wrap_socket(server.socket, server_side=True)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        self._server = server
        return self

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()


class ConnectProxy:
    """An HTTP CONNECT proxy on 127.0.0.1 that sends every tunnel to one local port (``target``)."""

    def __init__(self, target: int) -> None:
        self.target = target
        self.tunnels: list[str] = []
        self._server: socketserver.ThreadingTCPServer | None = None

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> Self:
        proxy = self

        class Handler(socketserver.StreamRequestHandler):
            def handle(self) -> None:
                line = self.rfile.readline().decode("latin-1")
                while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                    pass
                parts = line.split()
                if len(parts) < 2 or parts[0] != "CONNECT":
                    self.wfile.write(b"HTTP/1.1 405 Method Not Allowed\r\n\r\n")
                    return
                proxy.tunnels.append(parts[1])
                upstream = socket.create_connection(("127.0.0.1", proxy.target))
                self.wfile.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
                self.wfile.flush()
                _pipe(self.connection, upstream)

        server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, daemon=True).start()
        self._server = server
        return self

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()


def _pipe(a: socket.socket, b: socket.socket) -> None:
    sockets = [a, b]
    try:
        while True:
            ready, _, _ = select.select(sockets, [], [], 60)
            if not ready:
                return
            for sock in ready:
                data = sock.recv(65536)
                if not data:
                    return
                (b if sock is a else a).sendall(data)
    finally:
        b.close()


def in_private_namespace(argv: list[str], bundle: Path) -> list[str]:
    """``argv`` run with ``bundle`` in place of the system CA bundle, in a private mount namespace."""
    script = f'mount --bind "$1" {SYSTEM_BUNDLE} && shift && exec "$@"'
    return ["unshare", "--mount", "--propagation", "private", "sh", "-c", script, "sh", str(bundle), *argv]
