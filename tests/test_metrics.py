"""The daemon's health and metrics endpoint."""

from __future__ import annotations

import urllib.error
import urllib.request

from kpisync.connectors.base import ApiUsage
from kpisync.sync.metrics import Metrics, MetricsServer


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def test_health_follows_the_last_run_and_metrics_count() -> None:
    metrics = Metrics()
    server = MetricsServer(metrics, "127.0.0.1", 0).start()
    base = f"http://127.0.0.1:{server.port}"
    try:
        assert server.server_address[0] == "127.0.0.1"
        assert get(f"{base}/healthz") == (200, "ok\n")
        metrics.record("acme-sf", "cycle", True, {"rows": 120, "written": 7}, ApiUsage(calls=9, remaining=14_000))
        metrics.record("acme-hs", "cycle", False, {}, None)
        status, body = get(f"{base}/healthz")
        assert status == 503 and "acme-hs" in body
        status, text = get(f"{base}/metrics")
        assert status == 200
        assert 'kpisync_rows_pulled_total{crm="acme-sf"} 120.0' in text
        assert 'kpisync_values_written_total{crm="acme-sf"} 7.0' in text
        assert 'kpisync_api_calls_left{crm="acme-sf"} 14000.0' in text
        assert 'kpisync_runs_total{crm="acme-hs",job="cycle",status="failed"} 1.0' in text
        assert 'kpisync_errors_total{crm="acme-hs"} 1.0' in text
        assert "kpisync_last_success_timestamp_seconds" in text
        metrics.record("acme-hs", "cycle", True, {}, None)
        assert get(f"{base}/healthz")[0] == 200
    finally:
        server.stop()
