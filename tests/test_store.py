"""The canonical store: schema per the spec, migrations, fast upsert, cursors."""

from __future__ import annotations

import re
import sqlite3
import stat
from pathlib import Path

import pytest

from kpisync import store as store_module
from kpisync.schema import CANONICAL_TABLES, INDEXES, RETIRED_INDEXES, TABLES
from kpisync.store import SCHEMA_VERSION, Store, StoreError, migrate


def spec_tables(spec: Path) -> dict[str, set[str]]:
    """Tables and columns as canonical-model.md lists them (tables and bookkeeping lines)."""
    text = spec.read_text(encoding="utf-8")
    tables: dict[str, set[str]] = {}
    for block in re.split(r"\n### ", text)[1:]:
        name = block.split()[0]
        if not name.islower():  # "Bookkeeping tables": listed below as lines
            continue
        cols: set[str] = set()
        for line in block.splitlines():
            m = re.match(r"^\|\s*([a-z_, ]+?)\s*\|", line)
            if m and m.group(1) != "column":
                cols.update(c.strip() for c in m.group(1).split(","))
        tables[name] = cols
    for name, cols in re.findall(r"^- `([a-z_]+)\(([^)]*)\)`", text, flags=re.M):
        tables[name] = {c.strip() for c in cols.split(",")}
    return tables


def test_every_spec_table_and_column_is_created(shared_dir: Path, tmp_path: Path) -> None:
    wanted = spec_tables(shared_dir / "spec" / "canonical-model.md")
    assert len(wanted) == 16  # the spec's tables, bookkeeping included
    with Store.open(tmp_path / "s.db") as store:
        for table, columns in wanted.items():
            have = {row[1] for row in store.conn.execute(f'PRAGMA table_info("{table}")')}
            assert columns <= have, f"{table} lacks {sorted(columns - have)}"


def test_primary_keys_follow_the_spec(tmp_path: Path) -> None:
    with Store.open(tmp_path / "s.db") as store:
        pks = {
            t.name: tuple(
                r[1] for r in sorted(store.conn.execute(f'PRAGMA table_info("{t.name}")'), key=lambda r: r[5]) if r[5]
            )
            for t in CANONICAL_TABLES
        }
    assert pks["lifecycle_events"] == ("contact_id", "stage")
    assert pks["opportunity_stage_history"] == ("opportunity_id", "stage", "entered_at")
    assert pks["kpi_values"] == ("kpi", "grain", "key", "period")
    # the spec says (user_id, team, period_start); period_end joins it (see schema.py)
    assert pks["quotas"] == ("user_id", "team", "period_start", "period_end")
    assert pks["activities"] == ("id",)


def test_wal_mode_and_private_file(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "s.db"
    with Store.open(path) as store:
        assert store.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_reopen_is_a_no_op(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    with Store.open(path) as store:
        store.upsert("accounts", [{"id": "001A", "name": "Acme"}])
        schema = store.conn.execute("SELECT sql FROM sqlite_master ORDER BY name").fetchall()
    with Store.open(path) as store:
        assert store.schema_version == SCHEMA_VERSION
        assert store.conn.execute("SELECT sql FROM sqlite_master ORDER BY name").fetchall() == schema
        assert store.count("accounts") == 1


# The store as kpisync 0.1's first release wrote it (migration 1 only): written out by
# hand, so that later edits to the schema declarations cannot make this test vacuous.
V1_DDL = [
    "CREATE TABLE accounts (id TEXT, name TEXT, owner_id TEXT, type TEXT, industry TEXT, country TEXT, state TEXT, "
    "city TEXT, region TEXT, created_at TEXT, churned_at TEXT, annual_revenue REAL, is_deleted INTEGER, raw TEXT, "
    "synced_at TEXT, PRIMARY KEY (id))",
    "CREATE TABLE writeback_state (crm TEXT, object TEXT, record_id TEXT, field TEXT, value TEXT, written_at TEXT, "
    "PRIMARY KEY (crm, object, record_id, field))",
    "CREATE TABLE sync_state (crm TEXT, object TEXT, cursor TEXT, updated_at TEXT, PRIMARY KEY (crm, object))",
]


def old_store(path: Path, version: int, *statements: str) -> Path:
    """A store file as another kpisync version left it: the given statements run, at schema `version`."""
    conn = sqlite3.connect(path)
    for statement in statements:
        conn.execute(statement)
    conn.execute(f"PRAGMA user_version = {version}")
    conn.commit()
    conn.close()
    return path


def test_old_store_migrates_without_losing_rows(tmp_path: Path) -> None:
    path = old_store(
        tmp_path / "old.db",
        1,
        *V1_DDL,
        "INSERT INTO accounts (id, name) VALUES ('001A', 'Acme')",
        "INSERT INTO writeback_state VALUES ('salesforce', 'Account', '001A', 'KPI_CLV__c', '10.0', 'x')",
        "INSERT INTO sync_state VALUES ('salesforce', 'Account', '2026-01-01T00:00:00Z', 'x')",
    )

    with Store.open(path) as store:
        assert store.schema_version == SCHEMA_VERSION
        assert store.conn.execute("SELECT name FROM accounts").fetchall() == [("Acme",)]
        assert store.get_cursor("salesforce", "Account") == "2026-01-01T00:00:00Z"
        # migration 3 added the marker; the old row reads as "not gone"
        assert store.conn.execute("SELECT value, gone FROM writeback_state").fetchall() == [("10.0", None)]
        # migration 2: quarantine table and indexes
        assert "quarantine" in store.db.table_names()
        indexes = {r[0] for r in store.conn.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
        assert {name for name, _, _ in INDEXES} <= indexes
        assert not indexes & set(RETIRED_INDEXES)  # migration 5
        # tables the old file never had are created with every declared column
        have = {r[1] for r in store.conn.execute("PRAGMA table_info(opportunities)")}
        assert set(TABLES["opportunities"].column_names) <= have


def test_indexes_no_query_reads_are_dropped_from_old_stores(tmp_path: Path) -> None:
    """A store from kpisync ≤ schema 4 carries sixteen indexes every sync kept up to date for nothing."""
    path = tmp_path / "v4.db"
    with Store.open(path) as store:
        store.upsert("activities", [{"id": "a1", "owner_id": "u1", "occurred_at": "2026-01-02T00:00:00Z"}])
        store.conn.execute("CREATE INDEX idx_activities_owner_time ON activities (owner_id, occurred_at)")
        store.conn.execute("CREATE INDEX idx_contacts_converted ON contacts (converted_contact_id)")
        store.conn.execute("CREATE INDEX my_own_index ON activities (type)")  # an admin's own: left alone
        store.conn.execute("PRAGMA user_version = 4")
    with Store.open(path) as store:
        names = {r[0] for r in store.conn.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
        assert not names & set(RETIRED_INDEXES)
        assert {"my_own_index", "idx_sync_runs_crm"} <= names
        assert store.count("activities") == 1
        assert store.schema_version == SCHEMA_VERSION


def test_the_stage_history_index_is_dropped_from_schema_6_stores(tmp_path: Path) -> None:
    """Each stage entry a sync wrote kept an index the KPI engine stopped reading (it copies the table)."""
    path = tmp_path / "v6.db"
    with Store.open(path) as store:
        store.conn.execute("CREATE INDEX idx_stage_history_time ON opportunity_stage_history (stage, entered_at)")
        store.conn.execute("PRAGMA user_version = 6")
    with Store.open(path) as store:
        names = {r[0] for r in store.conn.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
        assert "idx_stage_history_time" not in names and "idx_sync_runs_crm" in names
        assert store.schema_version == SCHEMA_VERSION == 7


def test_old_quota_key_is_widened_so_monthly_and_quarterly_quotas_coexist(tmp_path: Path) -> None:
    path = old_store(
        tmp_path / "v3.db",
        3,
        "CREATE TABLE quotas (user_id TEXT, team TEXT, period_start TEXT, period_end TEXT, amount REAL, "
        "source TEXT, PRIMARY KEY (user_id, team, period_start))",
        "INSERT INTO quotas VALUES ('u1', 'T1', '2026-01-01', '2026-04-01', 9000, 'q.csv')",
    )

    with Store.open(path) as store:
        assert store.schema_version == SCHEMA_VERSION
        store.upsert(
            "quotas",
            [{"user_id": "u1", "team": "T1", "period_start": "2026-01-01", "period_end": "2026-02-01", "amount": 3000}],
        )
        rows = store.conn.execute("SELECT period_end, amount FROM quotas ORDER BY period_end").fetchall()
    assert rows == [("2026-02-01", 3000.0), ("2026-04-01", 9000.0)]  # the quarter's row survived both steps


def test_old_kpi_values_become_without_rowid_and_keep_their_rows(tmp_path: Path) -> None:
    path = old_store(
        tmp_path / "v5.db",
        5,
        "CREATE TABLE kpi_values (kpi TEXT, grain TEXT, key TEXT, period TEXT, value REAL, numerator REAL, "
        "denominator REAL, unit TEXT, computed_at TEXT, PRIMARY KEY (kpi, grain, key, period))",
        "INSERT INTO kpi_values VALUES ('win_rate', 'user', 'u1', '2026-Q1', 0.5, 1, 2, 'ratio', 'x')",
    )

    with Store.open(path) as store:
        assert store.schema_version == SCHEMA_VERSION
        ddl = store.conn.execute("SELECT sql FROM sqlite_master WHERE name = 'kpi_values'").fetchone()[0]
        assert ddl.endswith("WITHOUT ROWID")
        assert store.conn.execute("SELECT * FROM kpi_values").fetchall() == [
            ("win_rate", "user", "u1", "2026-Q1", 0.5, 1.0, 2.0, "ratio", "x")
        ]
        assert "kpi_values_v5" not in store.db.table_names()
        # the key still holds: a second row for the same key replaces the first
        store.conn.execute(
            "INSERT OR REPLACE INTO kpi_values VALUES ('win_rate', 'user', 'u1', '2026-Q1', 1, 2, 2, 'ratio', 'y')"
        )
        assert store.count("kpi_values") == 1


def test_partial_migration_then_rest(tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / "s.db", isolation_level=None)
    assert migrate(conn, upto=1) == 1
    assert "quarantine" not in {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
    assert migrate(conn) == SCHEMA_VERSION
    conn.close()


def test_a_newer_store_is_refused(tmp_path: Path) -> None:
    path = old_store(tmp_path / "s.db", SCHEMA_VERSION + 1)
    with pytest.raises(StoreError, match="newer than this kpisync"):
        Store.open(path)


def test_not_a_database_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StoreError, match="not a usable kpisync store"):
        Store.open(path)


def test_bulk_upsert_of_a_page_that_repeats_ids() -> None:
    store = Store.open(":memory:")
    page = [
        {"id": "a1", "type": "call", "owner_id": "u1", "occurred_at": "2026-01-01T00:00:00Z"},
        {"id": "a2", "type": "email", "owner_id": "u1", "occurred_at": "2026-01-02T00:00:00Z"},
        {"id": "a1", "type": "meeting", "owner_id": "u2", "occurred_at": "2026-01-03T00:00:00Z"},
    ]
    assert store.upsert("activities", page) == 3
    rows = store.conn.execute("SELECT id, type, owner_id FROM activities ORDER BY id").fetchall()
    assert rows == [("a1", "meeting", "u2"), ("a2", "email", "u1")]  # the later a1 wins


def test_upsert_keeps_columns_it_was_not_given() -> None:
    store = Store.open(":memory:")
    store.upsert("opportunities", [{"id": "o1", "name": "Deal", "amount": 100.0}])
    store.upsert("opportunities", [{"id": "o1", "contact_id": "c1"}])
    assert store.conn.execute("SELECT name, amount, contact_id FROM opportunities").fetchone() == ("Deal", 100.0, "c1")


def test_lifecycle_stage_keeps_the_first_entry() -> None:
    store = Store.open(":memory:")
    later = {"contact_id": "c1", "stage": "mql", "entered_at": "2026-02-01T00:00:00Z", "source": "lead_history"}
    earlier = {"contact_id": "c1", "stage": "mql", "entered_at": "2026-01-01T00:00:00Z", "source": "hs_date_entered"}
    store.upsert("lifecycle_events", [later])
    store.upsert("lifecycle_events", [earlier])
    store.upsert("lifecycle_events", [later])
    assert store.conn.execute("SELECT entered_at, source FROM lifecycle_events").fetchall() == [
        ("2026-01-01T00:00:00Z", "hs_date_entered")
    ]


def test_unknown_column_is_refused() -> None:
    store = Store.open(":memory:")
    with pytest.raises(ValueError, match="unknown columns"):
        store.upsert("accounts", [{"id": "a", "nmae": "typo"}])


def test_cursor_moves_only_with_its_rows() -> None:
    store = Store.open(":memory:")
    with pytest.raises(RuntimeError), store.transaction():
        store.upsert("accounts", [{"id": "001A", "name": "Acme"}])
        store.set_cursor("salesforce", "Account", "2026-03-01T00:00:00Z")
        raise RuntimeError("killed before commit")
    assert store.count("accounts") == 0
    assert store.get_cursor("salesforce", "Account") is None
    with store.transaction():
        store.upsert("accounts", [{"id": "001A", "name": "Acme"}])
        store.set_cursor("salesforce", "Account", "2026-03-01T00:00:00Z")
    assert store.cursors("salesforce") == {"Account": "2026-03-01T00:00:00Z"}


def test_disk_full_is_a_clear_error(tmp_path: Path) -> None:
    store = Store.open(tmp_path / "s.db")
    pages = store.conn.execute("PRAGMA page_count").fetchone()[0]
    store.conn.execute(f"PRAGMA max_page_count = {pages + 2}")
    rows = [{"id": f"a{i}", "subject": "x" * 2000} for i in range(200)]
    with pytest.raises(StoreError, match="cannot write activities"):
        store.upsert("activities", rows)
    assert store.conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert store.count("activities") == 0


def test_deferred_indexes_come_back_even_after_a_crash(tmp_path: Path) -> None:
    def index_names(store: Store) -> set[str]:
        return {
            r[0]
            for r in store.conn.execute("SELECT name FROM sqlite_master WHERE type = 'index' AND name LIKE 'idx_%'")
        }

    store = Store.open(tmp_path / "s.db")
    full = index_names(store)
    with store.indexes_deferred():
        assert index_names(store) == set()
        store.upsert("activities", [{"id": "a1", "owner_id": "u1"}])
    assert index_names(store) == full
    # a process killed inside the bulk load: the next open rebuilds them
    for name in full:
        store.conn.execute(f"DROP INDEX {name}")
    store.close()
    with Store.open(tmp_path / "s.db") as again:
        assert index_names(again) == full


def test_a_bulk_load_has_a_large_page_cache_and_gives_it_back(tmp_path: Path) -> None:
    store = Store.open(tmp_path / "bulk.db")
    before = store.conn.execute("PRAGMA cache_size").fetchone()[0]
    checkpoint = store.conn.execute("PRAGMA wal_autocheckpoint").fetchone()[0]
    with store.indexes_deferred():
        assert store.conn.execute("PRAGMA cache_size").fetchone()[0] == -store_module.BULK_CACHE_KIB
        assert store.conn.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == store_module.BULK_CHECKPOINT_PAGES
        store.upsert("activities", [{"id": f"a{n}", "raw": "x" * 2000} for n in range(2000)])
    assert store.conn.execute("PRAGMA cache_size").fetchone()[0] == before
    assert store.conn.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == checkpoint
    assert (tmp_path / "bulk.db-wal").stat().st_size == 0  # checkpointed whole at the end
    assert store.count("activities") == 2000
