"""The canonical SQLite store: schema, migrations and the fast bulk upsert.

Usage::

    with Store.open("data/acme.db") as store:
        with store.transaction():
            store.upsert("accounts", [{"id": "001A", "name": "Acme", ...}])
            store.set_cursor("salesforce", "Account", "2026-03-04T15:16:17Z")

The schema lives in `kpisync.schema`; this module only turns it into tables and
keeps old files readable: `PRAGMA user_version` counts the migrations applied,
and each migration below runs once, in order, inside a transaction. Columns
that a newer schema declares on an existing table are added in place, so a
store written by an older kpisync opens in a newer one without losing rows.

Bulk writes bypass sqlite-utils on purpose: `executemany` with
`INSERT … ON CONFLICT DO UPDATE` in one transaction is about three times faster
for the page-sized batches a sync writes.
"""

from __future__ import annotations

import operator
import os
import sqlite3
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlite_utils

from kpisync.errors import KpisyncError
from kpisync.schema import CANONICAL_TABLES, INDEXES, KPI_VALUES, QUARANTINE, RETIRED_INDEXES, TABLES, Table
from kpisync.timestamps import utc_now


class StoreError(KpisyncError):
    """The store file cannot be opened or written (path, permissions, disk full): an
    operational error the admin can fix, reported as one plain line (exit 1)."""


# Conflict rules that are part of the schema's meaning, not of any one writer:
# a lifecycle stage keeps the *first* time it was entered (canonical-model.md).
_CONFLICT_RULES: dict[str, dict[str, str]] = {
    "lifecycle_events": {
        "source": "CASE WHEN excluded.entered_at < lifecycle_events.entered_at "
        "THEN excluded.source ELSE lifecycle_events.source END",
        "entered_at": "min(lifecycle_events.entered_at, excluded.entered_at)",
    },
}


def create_table_sql(table: Table) -> str:
    cols = ", ".join(f'"{name}" {kind}' for name, kind in table.columns)
    pk = f", PRIMARY KEY ({', '.join(table.pk)})" if table.pk else ""
    options = " WITHOUT ROWID" if table.without_rowid else ""
    return f'CREATE TABLE IF NOT EXISTS "{table.name}" ({cols}{pk}){options}'


def _migration_canonical_tables(conn: sqlite3.Connection) -> None:
    for table in CANONICAL_TABLES:
        conn.execute(create_table_sql(table))


def _migration_quarantine_and_indexes(conn: sqlite3.Connection) -> None:
    conn.execute(create_table_sql(QUARANTINE))
    for name, table, columns in INDEXES:
        conn.execute(f'CREATE INDEX IF NOT EXISTS {name} ON "{table}" ({", ".join(columns)})')


def _migration_writeback_gone(conn: sqlite3.Connection) -> None:
    have = {row[1] for row in conn.execute('PRAGMA table_info("writeback_state")')}
    if "gone" not in have:
        conn.execute('ALTER TABLE "writeback_state" ADD COLUMN "gone" INTEGER')


def _migration_quota_period_end_in_key(conn: sqlite3.Connection) -> None:
    info = list(conn.execute('PRAGMA table_info("quotas")'))
    if any(row[1] == "period_end" and row[5] for row in info):
        return  # created by migration 1 with today's key
    quotas = next(t for t in CANONICAL_TABLES if t.name == "quotas")
    conn.execute('ALTER TABLE "quotas" RENAME TO "quotas_v3"')
    conn.execute(create_table_sql(quotas))
    have = ", ".join(f'"{row[1]}"' for row in info)
    conn.execute(f'INSERT OR REPLACE INTO "quotas" ({have}) SELECT {have} FROM "quotas_v3"')
    conn.execute('DROP TABLE "quotas_v3"')


def _migration_drop_retired_indexes(conn: sqlite3.Connection) -> None:
    for name in RETIRED_INDEXES:
        conn.execute(f"DROP INDEX IF EXISTS {name}")


def _migration_kpi_values_without_rowid(conn: sqlite3.Connection) -> None:
    ddl = conn.execute("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'kpi_values'").fetchone()[0]
    if "WITHOUT ROWID" in ddl.upper():
        return  # created by migration 1 with today's declaration
    conn.execute('ALTER TABLE "kpi_values" RENAME TO "kpi_values_v5"')
    conn.execute(create_table_sql(KPI_VALUES))
    have = ", ".join(f'"{row[1]}"' for row in conn.execute('PRAGMA table_info("kpi_values_v5")'))
    conn.execute(f'INSERT OR REPLACE INTO "kpi_values" ({have}) SELECT {have} FROM "kpi_values_v5"')
    conn.execute('DROP TABLE "kpi_values_v5"')


# Ordered, named, each applied once. Append; never edit or reorder a released one.
MIGRATIONS: tuple[tuple[str, Callable[[sqlite3.Connection], None]], ...] = (
    ("canonical tables", _migration_canonical_tables),
    ("quarantine table and KPI indexes", _migration_quarantine_and_indexes),
    ("writeback_state.gone: records the CRM deleted", _migration_writeback_gone),
    ("quotas keyed by period_end too: monthly and quarterly quotas side by side", _migration_quota_period_end_in_key),
    ("drop indexes no query reads (kpisync.schema.RETIRED_INDEXES)", _migration_drop_retired_indexes),
    ("kpi_values without rowid: a full compute fills one B-tree, not two", _migration_kpi_values_without_rowid),
    ("drop the stage-history index: the KPI engine copies that table instead", _migration_drop_retired_indexes),
)
SCHEMA_VERSION = len(MIGRATIONS)


def migrate(conn: sqlite3.Connection, upto: int = SCHEMA_VERSION) -> int:
    """Apply the migrations a store has not seen yet; returns the new version."""
    current = conn.execute("PRAGMA user_version").fetchone()[0]
    if current > SCHEMA_VERSION:
        raise StoreError(
            f"store schema version {current} is newer than this kpisync understands ({SCHEMA_VERSION}); upgrade kpisync"
        )
    if 0 < current < upto:
        # a store from an older kpisync: tables declared since then exist before the
        # migrations that index or alter them run
        for table in CANONICAL_TABLES:
            conn.execute(create_table_sql(table))
    for version in range(current + 1, upto + 1):
        _name, step = MIGRATIONS[version - 1]
        conn.execute("BEGIN IMMEDIATE")
        try:
            step(conn)
            conn.execute(f"PRAGMA user_version = {version}")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
    if upto == SCHEMA_VERSION:
        _add_missing_columns(conn)
    return int(conn.execute("PRAGMA user_version").fetchone()[0])


def _add_missing_columns(conn: sqlite3.Connection) -> None:
    for table in TABLES.values():
        have = {row[1] for row in conn.execute(f'PRAGMA table_info("{table.name}")')}
        if not have:
            continue
        for name, kind in table.columns:
            if name not in have:
                conn.execute(f'ALTER TABLE "{table.name}" ADD COLUMN "{name}" {kind}')


def _ensure_indexes(conn: sqlite3.Connection) -> None:
    """Every KPI index exists (a bulk load killed before it rebuilt them leaves them missing)."""
    have = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
    for name, table, columns in INDEXES:
        if name not in have:
            conn.execute(f'CREATE INDEX IF NOT EXISTS {name} ON "{table}" ({", ".join(columns)})')


BULK_CACHE_KIB = 64 * 1024  # page cache during a first sync (see Store.indexes_deferred)
BULK_CHECKPOINT_PAGES = 20_000  # WAL autocheckpoint during a first sync (see Store.indexes_deferred)


class Store:
    """One CRM's SQLite file. Open with `Store.open(path)` (or ":memory:")."""

    def __init__(self, conn: sqlite3.Connection, path: str) -> None:
        self.conn = conn
        self.path = path
        self._depth = 0

    @classmethod
    def open(cls, path: str | os.PathLike[str], *, create: bool = True) -> Store:
        path_text = str(path)
        if path_text != ":memory:":
            file = Path(path_text)
            if not file.exists():
                if not create:
                    raise StoreError(f"{file}: no such store")
                try:
                    file.parent.mkdir(parents=True, exist_ok=True)
                    # created 0600 before SQLite touches it: the store holds CRM data
                    os.close(os.open(file, os.O_CREAT | os.O_WRONLY, 0o600))
                except OSError as exc:
                    raise StoreError(f"{file}: cannot create store: {exc.strerror}") from exc
        try:
            conn = sqlite3.connect(path_text, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA busy_timeout = 10000")
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = NORMAL")
            conn.execute("PRAGMA foreign_keys = OFF")
            migrate(conn)
            _ensure_indexes(conn)
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"{path_text}: not a usable kpisync store: {exc}") from exc
        return cls(conn, path_text)

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def db(self) -> sqlite_utils.Database:
        """sqlite-utils over the same connection, for convenience reads and schema work."""
        return sqlite_utils.Database(self.conn)

    @property
    def schema_version(self) -> int:
        return int(self.conn.execute("PRAGMA user_version").fetchone()[0])

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction; nested calls join the outer one."""
        if self._depth:
            self._depth += 1
            try:
                yield self.conn
            finally:
                self._depth -= 1
            return
        self.conn.execute("BEGIN IMMEDIATE")
        self._depth = 1
        try:
            yield self.conn
        except BaseException:
            self._depth = 0
            if self.conn.in_transaction:  # SQLite rolls back by itself on some errors (disk full)
                self.conn.execute("ROLLBACK")
            raise
        self._depth = 0
        try:
            self.conn.execute("COMMIT")
        except sqlite3.OperationalError as exc:
            self.conn.execute("ROLLBACK")
            raise StoreError(f"{self.path}: cannot commit: {exc}") from exc

    def upsert(self, table: str, rows: Sequence[Mapping[str, Any]]) -> int:
        """Insert or update rows by primary key; the last of repeated ids wins.

        Every row must carry the same keys (a subset of the table's columns);
        columns not given keep their stored value on update.
        """
        if not rows:
            return 0
        spec = TABLES[table]
        columns = list(rows[0].keys())
        unknown = set(columns) - set(spec.column_names)
        if unknown:
            raise ValueError(f"{table}: unknown columns {sorted(unknown)}")
        quoted = ", ".join(f'"{c}"' for c in columns)
        marks = ", ".join("?" for _ in columns)
        sql = f'INSERT INTO "{table}" ({quoted}) VALUES ({marks})'
        if spec.pk:
            rules = _CONFLICT_RULES.get(table, {})
            updates = [f'"{c}" = {rules.get(c, f"excluded.{c}")}' for c in columns if c not in spec.pk]
            pk = ", ".join(spec.pk)
            sql += f" ON CONFLICT ({pk}) DO " + (f"UPDATE SET {', '.join(updates)}" if updates else "NOTHING")
        # itemgetter builds each tuple in C: several times faster than a generator per row
        getter = operator.itemgetter(*columns)
        values = [getter(row) for row in rows] if len(columns) > 1 else [(getter(row),) for row in rows]
        with self.transaction():
            try:
                self.conn.executemany(sql, values)
            except KeyError as exc:
                raise ValueError(f"{table}: every row needs the same columns") from exc
            except sqlite3.OperationalError as exc:
                raise StoreError(f"{self.path}: cannot write {table}: {exc}") from exc
        return len(values)

    def insert(self, table: str, rows: Iterable[Mapping[str, Any]]) -> int:
        """Append rows to a table without a primary key (errors, logs)."""
        rows = list(rows)
        if not rows:
            return 0
        columns = list(rows[0].keys())
        quoted = ", ".join(f'"{c}"' for c in columns)
        marks = ", ".join("?" for _ in columns)
        with self.transaction():
            self.conn.executemany(
                f'INSERT INTO "{table}" ({quoted}) VALUES ({marks})',
                [tuple(r[c] for c in columns) for r in rows],
            )
        return len(rows)

    @contextmanager
    def indexes_deferred(self) -> Iterator[None]:
        """Drop the store's indexes for a bulk load and build them once at the end.

        Keeping several indexes up to date row by row makes a first sync about
        four times slower than building them afterwards. If the process dies
        in between, `Store.open` rebuilds whatever is missing.

        The page cache grows to `BULK_CACHE_KIB` meanwhile: rows arrive in
        modification order, so each insert lands on a random leaf of its
        table's primary-key index, which on a large org is tens of megabytes;
        with SQLite's default 2 MB cache nearly every insert reads a page back.

        WAL checkpoints run every `BULK_CHECKPOINT_PAGES` pages instead of
        SQLite's 1,000: with the default nearly every commit of the load copies
        the pages it wrote (and the index pages it touched, again and again)
        back into the database file and syncs it; the load checkpoints a few
        times and once at the end, as `generator.bulk` does (medium HubSpot
        portal, store alone: about 48 → 43 µs per record, on a noisy box). Commits keep
        `synchronous = NORMAL`.
        """
        cache = self.conn.execute("PRAGMA cache_size").fetchone()[0]
        checkpoint = self.conn.execute("PRAGMA wal_autocheckpoint").fetchone()[0]
        self.conn.execute(f"PRAGMA cache_size = {-BULK_CACHE_KIB}")
        self.conn.execute(f"PRAGMA wal_autocheckpoint = {BULK_CHECKPOINT_PAGES}")
        for name, _table, _columns in INDEXES:
            self.conn.execute(f"DROP INDEX IF EXISTS {name}")
        try:
            yield
        finally:
            # back before the index build: CREATE INDEX sorts in memory up to the cache size,
            # which with the bulk cache more than doubled peak RSS on the large org (244 MB)
            self.conn.execute(f"PRAGMA cache_size = {int(cache)}")
            _ensure_indexes(self.conn)
            self.conn.execute(f"PRAGMA wal_autocheckpoint = {int(checkpoint)}")
            if not self.conn.in_transaction:
                self.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # the load's WAL back to nothing

    # -- cursors: the high-water mark moves only with the rows it covers --

    def get_cursor(self, crm: str, obj: str) -> str | None:
        row = self.conn.execute("SELECT cursor FROM sync_state WHERE crm = ? AND object = ?", (crm, obj)).fetchone()
        return row[0] if row else None

    def set_cursor(self, crm: str, obj: str, cursor: str | None) -> None:
        """Call inside the transaction that stored the rows the cursor covers."""
        self.upsert(
            "sync_state",
            [{"crm": crm, "object": obj, "cursor": cursor, "updated_at": utc_now()}],
        )

    def cursors(self, crm: str) -> dict[str, str | None]:
        return dict(self.conn.execute("SELECT object, cursor FROM sync_state WHERE crm = ?", (crm,)))

    def count(self, table: str, where: str = "1", params: Sequence[Any] = ()) -> int:
        if table not in TABLES:
            raise ValueError(f"unknown table {table}")
        return int(self.conn.execute(f'SELECT count(*) FROM "{table}" WHERE {where}', params).fetchone()[0])
