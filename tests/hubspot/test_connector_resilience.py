"""Faults, token expiry and pacing: a run completes, or stops with a clear error
and an intact cursor, and the next run completes."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from kpisync.config import Config, HubSpotAuth
from kpisync.connectors.hubspot import HubSpotConnector
from kpisync.connectors.hubspot.client import SlidingWindow
from kpisync.connectors.sandbox.hubspot import OAUTH_CLIENT_ID, HubSpotSandbox
from kpisync.connectors.sandbox.server import Fault
from kpisync.errors import AuthError, RunError
from kpisync.store import Store

from .conftest import drive

FIXTURES = Path(__file__).resolve().parents[3] / "shared" / "fixtures" / "hubspot"  # shared/ beside the checkout


def tuned(config: Config, **connection: object) -> Config:
    return config.model_copy(update={"connection": config.connection.model_copy(update=connection)})


def synced(config: Config, objects: list[str] | None = None) -> tuple[HubSpotConnector, Store]:
    store = Store.open(":memory:")
    connector = HubSpotConnector(config)
    drive(connector, store, objects=objects)
    return connector, store


RATE_LIMITED = json.loads((FIXTURES / "error_429_ten_secondly_rolling.json").read_text()) if FIXTURES.exists() else {}

FAULTS = {
    "429 storm": Fault("status", path=r"/deals/search$", status=429, body=RATE_LIMITED, retry_after=0.2, times=3),
    "5xx": Fault("status", path=r"/deals/search$", status=502, body="<html>bad gateway</html>", times=2),
    "reset": Fault("reset", path=r"/deals/search$", times=1),
    "truncated JSON": Fault("truncate", path=r"/deals/search$", times=1),
    "slow": Fault("slow", path=r"/deals/search$", delay_s=1.5, times=1),
    "list reset": Fault("reset", path=r"/objects/calls$", times=1),
}


@pytest.mark.parametrize("name", list(FAULTS))
def test_each_fault_is_survived(sandbox: HubSpotSandbox, config: Config, name: str) -> None:
    config = tuned(config, timeout_s=1.0, max_retries=4)
    objects = ["calls", "deals"] if name == "list reset" else ["deals"]
    connector, store = synced(config, objects)
    sandbox.change("deals", 18000000002, {"dealname": f"after {name}"})
    fault = FAULTS[name]
    sandbox.server.faults.add(Fault(**{**fault.__dict__}))
    drive(connector, store, full=name == "list reset", objects=objects)
    assert not sandbox.server.faults.pending(), "the fault was never hit"
    assert (
        store.conn.execute("SELECT name FROM opportunities WHERE id = '18000000002'").fetchone()[0] == f"after {name}"
    )


def test_persistent_failure_stops_cleanly_and_keeps_the_cursor(sandbox: HubSpotSandbox, config: Config) -> None:
    connector, store = synced(tuned(config, max_retries=1), ["deals"])
    cursor = store.get_cursor("hubspot", "deals")
    sandbox.change("deals", 18000000002, {"dealname": "changed during the outage"})
    sandbox.server.faults.add(Fault("status", path=r"/deals/search$", status=503, times=0))
    with pytest.raises(RunError, match="search deals: HTTP 503"):
        drive(connector, store, objects=["deals"])
    assert store.get_cursor("hubspot", "deals") == cursor
    sandbox.server.faults.clear()
    drive(connector, store, objects=["deals"])
    assert (
        store.conn.execute("SELECT name FROM opportunities WHERE id = '18000000002'").fetchone()[0]
        == "changed during the outage"
    )


def test_daily_limit_stops_the_run(sandbox: HubSpotSandbox, config: Config) -> None:
    connector, store = synced(config)
    sandbox.limits.daily = sandbox.limits.daily_used
    with pytest.raises(RunError, match="daily API limit"):
        drive(connector, store)


def oauth(config: Config, sandbox: HubSpotSandbox, refresh_token: str | None = None) -> Config:
    auth = HubSpotAuth(
        method="oauth",
        refresh_token=refresh_token or sandbox.refresh_token,
        client_id=OAUTH_CLIENT_ID,
        client_secret=sandbox.client_secret,
    )
    return config.model_copy(update={"auth": auth})


def test_oauth_token_expiry_is_refreshed_once(sandbox: HubSpotSandbox, config: Config) -> None:
    connector, store = synced(oauth(config, sandbox))
    assert sandbox.server.calls("/oauth/v1/token") == 1
    sandbox.expire_tokens()
    sandbox.change("contacts", 1001, {"hs_lead_status": "BAD_TIMING"})
    drive(connector, store)
    assert sandbox.server.calls("/oauth/v1/token") == 2
    assert sum(1 for e in sandbox.server.log if e.status == 401) == 1
    assert store.conn.execute("SELECT lead_status FROM contacts WHERE id = '1001'").fetchone()[0] == "BAD_TIMING"


def test_dead_refresh_token_is_an_auth_error_without_secrets(sandbox: HubSpotSandbox, config: Config) -> None:
    connector = HubSpotConnector(oauth(config, sandbox, refresh_token="revoked-refresh-token"))
    with pytest.raises(AuthError) as err:
        drive(connector, Store.open(":memory:"))
    assert "re-authorize" in str(err.value)
    assert sandbox.client_secret not in str(err.value) and "revoked-refresh-token" not in str(err.value)


def test_sliding_window_never_exceeds_its_budget() -> None:
    window = SlidingWindow(3, 0.3)
    sent = []
    for _ in range(9):
        window.acquire()
        sent.append(time.monotonic())
    assert sent[-1] - sent[0] >= 0.6
    assert all(sent[i + 3] - sent[i] >= 0.3 for i in range(len(sent) - 3))


def test_sliding_window_takes_the_servers_count_of_calls_made_elsewhere() -> None:
    window = SlidingWindow(5, 0.3)
    window.acquire()
    window.observe(used=4, server_limit=6)  # three more calls by another process on the same app
    started = time.monotonic()
    window.acquire()  # the fifth of the window: no wait
    assert time.monotonic() - started < 0.2
    window.acquire()  # the sixth waits for the window to roll
    assert time.monotonic() - started >= 0.25
    fresh = SlidingWindow(5, 10.0)
    for _ in range(3):
        fresh.acquire()
    fresh.observe(used=1, server_limit=6)  # a lower count (the server's window rolled sooner) frees nothing
    assert len(fresh._sent) == 3


@pytest.mark.full_matrix
def test_a_fresh_connector_paces_under_a_budget_another_one_spent(sandbox: HubSpotSandbox, config: Config) -> None:
    sandbox.limits.ten_secondly = 8  # the next job of a cycle opens a new client: its pacer starts empty
    objects = ["owners", "companies", "companies.archived", "deals", "deals.archived"]
    drive(HubSpotConnector(tuned(config, requests_per_10s=7)), Store.open(":memory:"), objects=objects)
    drive(HubSpotConnector(tuned(config, requests_per_10s=7)), Store.open(":memory:"), objects=objects)
    assert all(e.status != 429 for e in sandbox.server.log)


@pytest.mark.full_matrix
def test_pacing_stays_under_the_ten_second_budget(sandbox: HubSpotSandbox, config: Config) -> None:
    sandbox.limits.ten_secondly = 7  # a tight portal; kpisync is told to use 6 of them
    drive(
        HubSpotConnector(tuned(config, requests_per_10s=6)),
        Store.open(":memory:"),
        objects=["owners", "owners.archived", "companies", "companies.archived", "deals", "deals.archived"],
    )
    assert len(sandbox.server.log) > 7 and all(e.status != 429 for e in sandbox.server.log)
