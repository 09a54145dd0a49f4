"""Health and Prometheus metrics for the daemon, on 127.0.0.1 unless configured otherwise.

GET /healthz → 200 `ok` while every CRM's last run succeeded (or none ran yet),
503 with the failing CRMs otherwise. GET /metrics → Prometheus text format.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from kpisync.connectors.base import ApiUsage


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.runs = Counter("kpisync_runs", "jobs run", ["crm", "job", "status"], registry=self.registry)
        self.rows = Counter("kpisync_rows_pulled", "rows stored by syncs", ["crm"], registry=self.registry)
        self.values = Counter("kpisync_values_written", "KPI values the CRM accepted", ["crm"], registry=self.registry)
        self.errors = Counter("kpisync_errors", "failed jobs and rejected writes", ["crm"], registry=self.registry)
        self.calls_left = Gauge("kpisync_api_calls_left", "CRM daily API calls left", ["crm"], registry=self.registry)
        self.last_success = Gauge(
            "kpisync_last_success_timestamp_seconds", "end of the last successful job", ["crm"], registry=self.registry
        )
        self._lock = threading.Lock()
        self.last_ok: dict[str, bool] = {}

    def record(self, crm: str, job: str, ok: bool, outcome: dict[str, Any], usage: ApiUsage | None) -> None:
        with self._lock:
            self.last_ok[crm] = ok
        self.runs.labels(crm, job, "ok" if ok else "failed").inc()
        self.rows.labels(crm).inc(int(outcome.get("rows", 0) or 0))
        self.values.labels(crm).inc(int(outcome.get("written", 0) or 0))
        failed = int(outcome.get("failed", 0) or 0) + (0 if ok else 1)
        if failed:
            self.errors.labels(crm).inc(failed)
        if ok:
            self.last_success.labels(crm).set(time.time())
        if usage is not None and usage.remaining is not None:
            self.calls_left.labels(crm).set(usage.remaining)

    def health(self) -> tuple[bool, list[str]]:
        with self._lock:
            failing = sorted(crm for crm, ok in self.last_ok.items() if not ok)
        return not failing, failing


class MetricsServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, metrics: Metrics, host: str = "127.0.0.1", port: int = 9464) -> None:
        self.metrics = metrics
        super().__init__((host, port), _Handler)
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    def start(self) -> MetricsServer:
        self._thread = threading.Thread(target=self.serve_forever, name="metrics", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self.shutdown()
        self.server_close()


class _Handler(BaseHTTPRequestHandler):
    server: MetricsServer

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        if self.path == "/healthz":
            ok, failing = self.server.metrics.health()
            body = b"ok\n" if ok else json.dumps({"failing": failing}).encode() + b"\n"
            self._send(200 if ok else 503, body, "text/plain; charset=utf-8")
        elif self.path == "/metrics":
            self._send(200, generate_latest(self.server.metrics.registry), CONTENT_TYPE_LATEST)
        else:
            self._send(404, b"not found\n", "text/plain")

    def _send(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
