"""The connector against the sandbox over real HTTPS: first sync, incremental, page edges, sessions, Bulk."""

from __future__ import annotations

from pathlib import Path

import pytest
from sfkit import drive

from kpisync.config import Config
from kpisync.connectors.salesforce import SalesforceConnector
from kpisync.connectors.sandbox.salesforce import SalesforceSandbox
from kpisync.errors import AuthError
from kpisync.store import Store


def with_connection(config: Config, **changes: object) -> Config:
    return config.model_copy(update={"connection": config.connection.model_copy(update=changes)})


def test_first_sync_fills_every_table(sandbox: SalesforceSandbox, config: Config) -> None:
    store = Store.open(":memory:")
    connector = SalesforceConnector(config)
    drive(connector, store)
    counts = {
        t: store.count(t)
        for t in (
            "users",
            "accounts",
            "contacts",
            "opportunities",
            "activities",
            "cases",
            "spend",
            "opportunity_stage_history",
        )
    }
    assert counts == {
        "users": 4,
        "accounts": 5,
        "contacts": 11,
        "opportunities": 6,
        "activities": 24,
        "cases": 3,
        "spend": 2,
        "opportunity_stage_history": 4,
    }
    assert store.count("quarantine") == 0
    ava = sandbox.sf_id("u0001")
    assert store.conn.execute("SELECT role, team, region FROM users WHERE id = ?", (ava,)).fetchone() == (
        "ae",
        "Enterprise",
        "EMEA",
    )
    # opportunity contact comes from the primary OpportunityContactRole
    assert store.conn.execute(
        "SELECT contact_id FROM opportunities WHERE id = ?", (sandbox.sf_id("opp001"),)
    ).fetchone()[0] == sandbox.sf_id("con002")
    # every object has a cursor, and a no-change incremental sync costs one query per object
    assert len(store.cursors("salesforce")) == len(connector.objects())
    before = sandbox.calls()
    drive(connector, store)
    assert sandbox.calls() - before == len(connector.objects())


def test_incremental_sees_inserts_updates_and_deletes(sandbox: SalesforceSandbox, config: Config) -> None:
    store = Store.open(":memory:")
    connector = SalesforceConnector(config)
    drive(connector, store)
    owner = sandbox.sf_id("u0002")
    new_lead = sandbox.insert(
        "Lead",
        {
            "LastName": "Newcomer",
            "Name": "Ned Newcomer",
            "Status": "Open",
            "LeadSource": "Web",
            "OwnerId": owner,
            "IsConverted": False,
        },
    )
    sandbox.update(
        sandbox.sf_id("opp005"), {"StageName": "Closed Won", "IsClosed": True, "IsWon": True, "CloseDate": "2025-04-02"}
    )
    sandbox.delete(sandbox.sf_id("act003"))
    drive(connector, store)
    assert store.conn.execute("SELECT name, channel, kind FROM contacts WHERE id = ?", (new_lead,)).fetchone() == (
        "Ned Newcomer",
        "inbound",
        "lead",
    )
    assert store.conn.execute(
        "SELECT stage, is_won, closed_at FROM opportunities WHERE id = ?", (sandbox.sf_id("opp005"),)
    ).fetchone() == ("Closed Won", 1, "2025-04-02T00:00:00Z")
    # deleted rows stay, flagged; their data is kept
    assert store.conn.execute(
        "SELECT is_deleted, type FROM activities WHERE id = ?", (sandbox.sf_id("act003"),)
    ).fetchone() == (1, "meeting")
    assert store.count("activities", "is_deleted = 0") == 23


def _bulk_tasks(sandbox: SalesforceSandbox, n: int, stamp: str) -> None:
    owner = sandbox.sf_id("u0002")
    sandbox.org.insert_many(
        "Task",
        [
            {
                "Id": f"00T8d{i:010d}XYZ",
                "Subject": f"Bulk {i}",
                "TaskSubtype": "Call",
                "Type": "Call",
                "CallType": "Outbound",
                "OwnerId": owner,
                "Status": "Completed",
                "CreatedDate": stamp,
                "CompletedDateTime": stamp,
                "SystemModstamp": stamp,
                "IsDeleted": False,
            }
            for i in range(n)
        ],
    )


def test_equal_timestamps_across_a_page_edge_and_a_crash_lose_nothing(
    sandbox: SalesforceSandbox, config: Config
) -> None:
    store = Store.open(":memory:")
    connector = SalesforceConnector(config)
    drive(connector, store)
    # 4,500 rows share one SystemModstamp: they span three 2,000-row pages
    _bulk_tasks(sandbox, 4500, "2026-01-01T00:00:00.000+0000")
    stored = drive(connector, store, objects=["Task"], max_pages=1)  # the process dies after one page
    assert stored == 1
    # the incremental page re-read the one boundary task (inclusive cursor) and 1,999 new ones
    assert store.count("activities") == 24 + 1999
    assert store.get_cursor("salesforce", "Task") == "2026-01-01T00:00:00Z"
    drive(SalesforceConnector(config), store, objects=["Task"])  # restart
    assert store.count("activities") == 24 + 4500


def test_session_expiry_mid_sync_logs_in_again(sandbox: SalesforceSandbox, config: Config) -> None:
    _bulk_tasks(sandbox, 4100, "2026-01-01T00:00:00.000+0000")
    connector = SalesforceConnector(config)
    spec = next(s for s in connector.objects() if s.name == "Task")
    pages = connector.pull(spec, None)
    first = next(pages)
    sandbox.expire_sessions()  # between page 1 and the nextRecordsUrl of page 2
    rest = list(pages)
    assert first.count() + sum(p.count() for p in rest) == 4100 + 16  # 16 of the 24 activities are Tasks
    assert sandbox.server.calls(r"/services/Soap/u/") == 2


def test_given_session_that_expires_is_an_auth_error(sandbox: SalesforceSandbox, config: Config) -> None:
    from pydantic import SecretStr

    session_id = SecretStr(sandbox.api.new_session())
    cfg = config.model_copy(
        update={"auth": config.auth.model_copy(update={"method": "session", "session_id": session_id})}
    )
    cfg = with_connection(cfg, instance_url=sandbox.url)
    connector = SalesforceConnector(cfg)
    spec = next(s for s in connector.objects() if s.name == "User")
    assert sum(p.count() for p in connector.pull(spec, None)) == 4
    sandbox.expire_sessions()
    with pytest.raises(AuthError, match="fresh session id"):
        list(connector.pull(next(s for s in connector.objects() if s.name == "Account"), None))


def test_jwt_bearer_login(sandbox: SalesforceSandbox, config: Config, tmp_path: Path) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = tmp_path / "server.key"
    pem.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    auth = config.auth.model_copy(
        update={"method": "jwt", "consumer_key": sandbox.api.creds.consumer_key, "private_key_file": pem}
    )
    connector = SalesforceConnector(config.model_copy(update={"auth": auth}))
    spec = next(s for s in connector.objects() if s.name == "User")
    assert sum(p.count() for p in connector.pull(spec, None)) == 4
    assert sandbox.server.calls(r"/services/oauth2/token") == 1


def test_wrong_password_is_an_auth_error_without_the_secret(sandbox: SalesforceSandbox, config: Config) -> None:
    from pydantic import SecretStr

    auth = config.auth.model_copy(update={"password": SecretStr("not-the-password")})
    connector = SalesforceConnector(config.model_copy(update={"auth": auth}))
    with pytest.raises(AuthError) as err:
        list(connector.pull(connector.objects()[0], None))
    assert "INVALID_LOGIN" in str(err.value)
    assert "not-the-password" not in str(err.value)
    assert sandbox.api.creds.security_token not in str(err.value)


def test_full_backfill_above_threshold_uses_bulk_2(
    sandbox: SalesforceSandbox, config: Config, monkeypatch: pytest.MonkeyPatch
) -> None:
    from kpisync.connectors.salesforce import client

    monkeypatch.setattr(client, "BULK_CHUNK", 50)  # results in three chunks, chained by Sforce-Locator
    _bulk_tasks(sandbox, 120, "2026-01-01T00:00:00.000+0000")
    rest, bulk = Store.open(":memory:"), Store.open(":memory:")
    drive(SalesforceConnector(config), rest, objects=["Task", "Event"], full=True)
    assert sandbox.server.calls(r"/jobs/query") == 0
    connector = SalesforceConnector(with_connection(config, bulk_threshold=20))
    drive(connector, bulk, objects=["Task", "Event"], full=True)
    assert sandbox.server.calls(r"/jobs/query$", "POST") == 1  # Task only: Event has fewer rows
    assert sandbox.server.calls(r"/jobs/query/\w+/results") == 3
    columns = (
        "id, type, direction, owner_id, contact_id, account_id, opportunity_id, occurred_at, created_at, "
        "duration_s, outcome, subject, is_deleted"
    )
    query = f"SELECT {columns} FROM activities ORDER BY id"
    assert bulk.conn.execute(query).fetchall() == rest.conn.execute(query).fetchall()
    assert bulk.get_cursor("salesforce", "Task") == rest.get_cursor("salesforce", "Task") == "2026-01-01T00:00:00Z"


def test_full_reconcile_flags_records_purged_from_the_recycle_bin(sandbox: SalesforceSandbox, config: Config) -> None:
    store = Store.open(":memory:")
    connector = SalesforceConnector(config)
    drive(connector, store)
    purged = sandbox.sf_id("case002")
    sandbox.purge(purged)  # hard delete: queryAll never shows it again
    drive(connector, store)
    assert store.conn.execute("SELECT is_deleted FROM cases WHERE id = ?", (purged,)).fetchone() == (0,)
    drive(connector, store, full=True)  # the nightly reconcile reads the getDeleted feed
    assert store.conn.execute("SELECT is_deleted, status FROM cases WHERE id = ?", (purged,)).fetchone() == (1, "New")
    assert store.count("cases", "is_deleted = 1") == 1


def test_a_bad_record_is_quarantined_and_the_run_goes_on(sandbox: SalesforceSandbox, config: Config) -> None:
    store = Store.open(":memory:")
    connector = SalesforceConnector(config)
    drive(connector, store)
    owner = sandbox.sf_id("u0002")
    bad = sandbox.insert(
        "Task", {"Subject": "Broken", "TaskSubtype": "Call", "OwnerId": owner, "CompletedDateTime": "last Tuesday"}
    )
    good = sandbox.insert("Task", {"Subject": "Fine", "TaskSubtype": "Call", "OwnerId": owner})
    drive(connector, store, objects=["Task"])
    reason, raw = store.conn.execute("SELECT reason, raw FROM quarantine WHERE record_id = ?", (bad,)).fetchone()
    assert "last Tuesday" in reason and '"Subject": "Broken"' in raw
    assert store.conn.execute("SELECT subject FROM activities WHERE id = ?", (good,)).fetchone() == ("Fine",)
    assert store.conn.execute("SELECT 1 FROM activities WHERE id = ?", (bad,)).fetchone() is None
    assert (
        store.get_cursor("salesforce", "Task")
        >= store.conn.execute("SELECT max(created_at) FROM activities").fetchone()[0]
    )


@pytest.mark.parametrize(
    ("login_url", "audience"),
    [
        ("https://login.salesforce.com", "https://login.salesforce.com"),
        ("https://test.salesforce.com", "https://test.salesforce.com"),
        ("https://acme.my.salesforce.com", "https://login.salesforce.com"),
        ("https://acme--uat.sandbox.my.salesforce.com", "https://test.salesforce.com"),
        ("https://127.0.0.1:8443", "https://127.0.0.1:8443"),
    ],
)
def test_jwt_audience_follows_the_login_host(login_url: str, audience: str) -> None:
    from kpisync.connectors.salesforce.auth import _audience

    assert _audience(login_url) == audience
