"""What both sandbox CRMs share: a threaded HTTP(S) server on 127.0.0.1, a
router, a request log (API-call counting) and switchable fault injection.

A sandbox is a `Router` of `(method, path regex) → handler`; a handler gets a
`Request` and returns a `Response`. Faults are rules consulted before routing:

    server.faults.add(Fault("status", path=r"/query", status=503, retry_after=1, times=2))
    server.faults.add(Fault("reset", path=r"/query", times=1))       # connection reset mid-body
    server.faults.add(Fault("truncate", path=r"/query", times=1))    # half a JSON body
    server.faults.add(Fault("slow", delay_s=2.0, times=3))
    server.faults.add(Fault("hook", path=r"/query", hook="expire_auth", after=2))  # mid-run event

A `hook` fault calls `server.hooks[name]()` (registered by a sandbox or a test:
sessions expire, a record is deleted…) and then serves the request as usual,
so something can happen to the CRM at an exact moment of a run.

The same switches are reachable over HTTP (`POST /__sandbox__/faults` with a
JSON list of faults, `DELETE /__sandbox__/faults`), so a sandbox running in
another process (`kpisync sandbox serve`) can be steered by tests.

The server only ever binds to 127.0.0.1.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import re
import socket
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

LOOPBACK = "127.0.0.1"


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]  # lower-cased names
    body: bytes
    match: re.Match[str] | None = None

    def json(self) -> Any:
        return json.loads(self.body or b"null")

    def arg(self, name: str, default: str | None = None) -> str | None:
        values = self.query.get(name)
        return values[0] if values else default

    def args(self, name: str) -> list[str]:
        """Repeated and comma-separated values alike (`?p=a&p=b` or `?p=a,b`)."""
        out: list[str] = []
        for value in self.query.get(name, []):
            out.extend(v for v in value.split(",") if v)
        return out


@dataclass
class Response:
    status: int = 200
    body: Any = None  # dict/list → JSON; bytes/str sent as is
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = "application/json;charset=UTF-8"

    def payload(self) -> bytes:
        if self.body is None:
            return b""
        if isinstance(self.body, bytes):
            return self.body
        if isinstance(self.body, str):
            return self.body.encode("utf-8")
        return json.dumps(self.body, separators=(",", ":")).encode("utf-8")


Handler = Callable[[Request], Response]


class Router:
    def __init__(self) -> None:
        self._routes: list[tuple[str, re.Pattern[str], Handler]] = []

    def add(self, method: str, pattern: str, handler: Handler) -> None:
        self._routes.append((method.upper(), re.compile(f"^{pattern}$"), handler))

    def route(self, request: Request) -> Response | None:
        for method, pattern, handler in self._routes:
            if method == request.method and (m := pattern.match(request.path)):
                request.match = m
                return handler(request)
        return None


@dataclass
class Fault:
    """kind: status | reset | truncate | slow | hook. Applies to matching requests, `times` times (0: always)."""

    kind: str
    path: str = ".*"
    method: str | None = None
    times: int = 1
    status: int = 503
    body: Any = None
    retry_after: float | None = None
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0
    after: int = 0  # let this many matching requests through first
    hook: str | None = None  # kind "hook": the name of the server.hooks callable to run

    def matches(self, request: Request) -> bool:
        if self.method and self.method.upper() != request.method:
            return False
        return re.search(self.path, request.path) is not None


class FaultPlan:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: list[Fault] = []

    def add(self, fault: Fault) -> Fault:
        with self._lock:
            self._faults.append(fault)
        return fault

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()

    def take(self, request: Request) -> Fault | None:
        """The fault to apply to this request, consuming one of its uses."""
        with self._lock:
            for fault in self._faults:
                if not fault.matches(request):
                    continue
                if fault.after > 0:
                    fault.after -= 1
                    continue
                if fault.times == 1:
                    self._faults.remove(fault)
                elif fault.times > 1:
                    fault.times -= 1
                return fault
        return None

    def pending(self) -> list[dict[str, Any]]:
        with self._lock:
            return [asdict(f) for f in self._faults]


@dataclass
class LoggedRequest:
    method: str
    path: str
    query: str
    status: int
    at: float


class SandboxServer(ThreadingHTTPServer):
    """Serve `router` on 127.0.0.1 (HTTPS when `tls_dir` is given) in a background thread."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, router: Router, *, port: int = 0, tls_dir: Path | None = None) -> None:
        self.router = router
        self.faults = FaultPlan()
        self.log: list[LoggedRequest] = []
        self.hooks: dict[str, Callable[[], None]] = {}  # for faults of kind "hook"
        self._log_lock = threading.Lock()
        super().__init__((LOOPBACK, port), _RequestHandler)
        self.ca_bundle: Path | None = None
        if tls_dir is not None:
            cert, key, ca = make_certificates(tls_dir)
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(cert, key)
            self.socket = context.wrap_socket(self.socket, server_side=True)
            self.ca_bundle = ca
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    @property
    def url(self) -> str:
        scheme = "https" if self.ca_bundle else "http"
        return f"{scheme}://{LOOPBACK}:{self.port}"

    def get_request(self) -> tuple[socket.socket, Any]:
        conn, addr = super().get_request()
        # small JSON answers must not wait ~40 ms for delayed ACKs
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return conn, addr

    def handle_error(self, request: Any, client_address: Any) -> None:
        # a client that hung up (or a TLS handshake that failed) is not our error
        pass

    def start(self) -> SandboxServer:
        # shutdown() waits for the serving loop's next poll: 0.05 s, not the default 0.5 s per stop
        self._thread = threading.Thread(
            target=self.serve_forever, kwargs={"poll_interval": 0.05}, name="sandbox", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self.shutdown()
        self.server_close()

    def record(self, entry: LoggedRequest) -> None:
        with self._log_lock:
            self.log.append(entry)

    def calls(self, path_pattern: str = ".*", method: str | None = None) -> int:
        """API calls seen whose path matches (control endpoints excluded)."""
        with self._log_lock:
            return sum(
                1 for e in self.log if re.search(path_pattern, e.path) and (method is None or e.method == method)
            )

    def reset_log(self) -> None:
        with self._log_lock:
            self.log.clear()


class _RequestHandler(BaseHTTPRequestHandler):
    server: SandboxServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _serve(self) -> None:
        parts = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        request = Request(
            method=self.command,
            path=parts.path,
            query=parse_qs(parts.query, keep_blank_values=True),
            headers={k.lower(): v for k, v in self.headers.items()},
            body=body,
        )
        if request.path.startswith("/__sandbox__/"):
            self._send(self._control(request))
            return
        fault = self.server.faults.take(request)
        if fault is not None and fault.kind == "slow":
            time.sleep(fault.delay_s)
            fault = None
        if fault is not None and fault.kind == "hook":
            self.server.hooks[fault.hook or ""]()
            fault = None
        if fault is not None and fault.kind == "status":
            headers = dict(fault.headers)
            if fault.retry_after is not None:
                headers["Retry-After"] = str(int(fault.retry_after) if fault.retry_after >= 1 else fault.retry_after)
            response = Response(fault.status, fault.body, headers)
        else:
            try:
                response = self.server.router.route(request) or Response(
                    404, [{"errorCode": "NOT_FOUND", "message": f"no such resource: {request.path}"}]
                )
            except Exception as exc:
                response = Response(500, {"message": f"sandbox error: {exc!r}"})
        self.server.record(LoggedRequest(request.method, request.path, parts.query, response.status, time.time()))
        if fault is not None and fault.kind in ("reset", "truncate"):
            payload = response.payload()
            self.send_response(response.status)
            self.send_header("Content-Type", response.content_type)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload[: max(1, len(payload) // 2)])
            self.wfile.flush()
            if fault.kind == "reset":
                # RST instead of FIN: the client sees a connection reset mid-body
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
            self.close_connection = True
            return
        self._send(response)

    def _send(self, response: Response) -> None:
        payload = response.payload()
        self.send_response(response.status)
        if payload or response.status not in (204, 304):
            self.send_header("Content-Type", response.content_type)
        for name, value in response.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if payload:
            self.wfile.write(payload)

    def _control(self, request: Request) -> Response:
        if request.path == "/__sandbox__/faults":
            if request.method == "POST":
                for spec in request.json() or []:
                    self.server.faults.add(Fault(**spec))
                return Response(200, {"faults": self.server.faults.pending()})
            if request.method == "DELETE":
                self.server.faults.clear()
                return Response(200, {"faults": []})
            return Response(200, {"faults": self.server.faults.pending()})
        if request.path == "/__sandbox__/calls":
            return Response(200, {"calls": self.server.calls()})
        return Response(404, {"message": "unknown control endpoint"})

    do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _serve


def make_certificates(folder: Path) -> tuple[Path, Path, Path]:
    """A throwaway CA and a 127.0.0.1 server certificate it signed: (cert, key, ca)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    folder.mkdir(parents=True, exist_ok=True)
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kpisync sandbox CA")])
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, LOOPBACK)]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(LOOPBACK)), x509.DNSName("localhost")]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    cert_file, key_file, ca_file = folder / "server.pem", folder / "server.key", folder / "ca.pem"
    cert_file.write_bytes(cert.public_bytes(pem))
    key_file.write_bytes(key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    key_file.chmod(0o600)
    ca_file.write_bytes(ca_cert.public_bytes(pem))
    return cert_file, key_file, ca_file
