"""Each injected fault either heals (the sync completes) or stops the run cleanly with its cursor intact."""

from __future__ import annotations

import pytest
from sfkit import drive

from kpisync.config import Config
from kpisync.connectors.salesforce import SalesforceConnector
from kpisync.connectors.sandbox.salesforce import SalesforceSandbox
from kpisync.connectors.sandbox.server import Fault
from kpisync.errors import LimitReached, RetriableError
from kpisync.store import Store

TASKS = 4100  # three REST pages of Task: faults can hit a nextRecordsUrl page
EXPECTED_ACTIVITIES = 24 + TASKS


def with_connection(config: Config, **changes: object) -> Config:
    return config.model_copy(update={"connection": config.connection.model_copy(update=changes)})


@pytest.fixture
def busy(sandbox: SalesforceSandbox) -> SalesforceSandbox:
    owner = sandbox.sf_id("u0002")
    sandbox.org.insert_many(
        "Task",
        [
            {
                "Id": f"00T8d{i:010d}XYZ",
                "Subject": f"Dial {i}",
                "TaskSubtype": "Call",
                "CallType": "Outbound",
                "OwnerId": owner,
                "Status": "Completed",
                "CreatedDate": f"2026-01-01T00:{i % 60:02d}:00.000+0000",
                "SystemModstamp": f"2026-01-01T00:{i % 60:02d}:00.000+0000",
                "IsDeleted": False,
            }
            for i in range(TASKS)
        ],
    )
    return sandbox


def _limit_body() -> list[dict[str, str]]:
    return [{"message": "TotalRequests Limit exceeded.", "errorCode": "REQUEST_LIMIT_EXCEEDED"}]


HEALING = {
    "429 with Retry-After": Fault(
        "status",
        path=r"/query/0r8",
        status=429,
        retry_after=0.2,
        body=[{"message": "Too many requests", "errorCode": "REQUEST_LIMIT"}],
    ),
    "503 with Retry-After": Fault(
        "status",
        path=r"/queryAll",
        status=503,
        retry_after=0.1,
        times=2,
        body=[{"message": "Service Unavailable", "errorCode": "SERVER_UNAVAILABLE"}],
    ),
    "connection reset mid-page": Fault("reset", path=r"/query/0r8", times=1),
    "body cut off mid-transfer": Fault("truncate", path=r"/queryAll", times=1),
    # a complete HTTP response whose JSON is cut short (a proxy's doing)
    "truncated JSON": Fault("status", path=r"/query/0r8", status=200, body='{"totalSize": 4116, "done": fal'),
    "slow responses": Fault("slow", path=r"/services/data", delay_s=0.3, times=3),
    "expired session": Fault(
        "status",
        path=r"/query/0r8",
        status=401,
        times=1,
        body=[{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}],
    ),
    "concurrent long-running limit": Fault(
        "status",
        path=r"/queryAll",
        status=403,
        retry_after=0.1,
        times=1,
        body=[{"message": "ConcurrentPerOrgLongTxn Limit exceeded.", "errorCode": "REQUEST_LIMIT_EXCEEDED"}],
    ),
}


@pytest.mark.parametrize("name", list(HEALING))
def test_fault_heals_and_the_sync_completes(name: str, busy: SalesforceSandbox, config: Config) -> None:
    fault = HEALING[name]
    busy.server.faults.add(Fault(**{**fault.__dict__, "headers": dict(fault.headers)}))
    store = Store.open(":memory:")
    drive(SalesforceConnector(config), store)
    assert busy.server.faults.pending() == [], "the fault was never hit"
    assert store.count("activities") == EXPECTED_ACTIVITIES
    assert store.count("quarantine") == 0


def test_daily_limit_exceeded_stops_cleanly_and_the_next_run_completes(busy: SalesforceSandbox, config: Config) -> None:
    store = Store.open(":memory:")
    connector = SalesforceConnector(config)
    drive(connector, store, objects=["User", "Account"])
    # the second Task page is refused: the allocation is spent
    busy.server.faults.add(Fault("status", path=r"/query/0r8", status=403, body=_limit_body(), times=1))
    with pytest.raises(LimitReached, match="daily API request limit"):
        drive(connector, store, objects=["Task"])
    cursor = store.get_cursor("salesforce", "Task")
    assert cursor is not None  # the first page is stored, with the cursor it covers
    stored = store.count("activities")
    assert stored == 2000
    assert store.conn.execute("SELECT max(created_at) FROM activities").fetchone()[0] <= cursor
    drive(SalesforceConnector(config), store, objects=["Task"])
    assert store.count("activities") == 16 + TASKS


def test_persistent_5xx_gives_up_with_cursor_intact(busy: SalesforceSandbox, config: Config) -> None:
    store = Store.open(":memory:")
    cfg = with_connection(config, max_retries=1)
    busy.server.faults.add(Fault("status", path=r"/query/0r8", status=503, retry_after=0.05, times=0))
    with pytest.raises(RetriableError):
        drive(SalesforceConnector(cfg), store, objects=["Task"])
    assert store.count("activities") == 2000
    busy.server.faults.clear()
    drive(SalesforceConnector(cfg), store, objects=["Task"])
    assert store.count("activities") == 16 + TASKS


def test_api_floor_is_never_crossed(busy: SalesforceSandbox, config: Config) -> None:
    floor, limit = 1000, 100_000
    busy.set_api_usage(limit - floor - 5, limit)  # five calls to spare above the floor
    store = Store.open(":memory:")
    with pytest.raises(LimitReached, match="min_api_calls_left"):
        drive(SalesforceConnector(with_connection(config, min_api_calls_left=floor)), store)
    assert busy.api.budget.used <= limit - floor
    assert store.count("users") == 4  # what was read before the floor is stored


def test_retry_after_is_honoured(sandbox: SalesforceSandbox, config: Config) -> None:
    import time

    sandbox.server.faults.add(
        Fault(
            "status",
            path=r"/queryAll",
            status=503,
            retry_after=1,
            times=1,
            body=[{"message": "Service Unavailable", "errorCode": "SERVER_UNAVAILABLE"}],
        )
    )
    connector = SalesforceConnector(config)
    spec = next(s for s in connector.objects() if s.name == "Case")
    started = time.monotonic()
    assert sum(p.count() for p in connector.pull(spec, None)) == 3
    assert time.monotonic() - started >= 1.0
    assert sandbox.server.calls(r"/queryAll") == 2
