"""Loading a few million rows into a fresh store quickly.

Two settings make most of the difference on a large org (measured on the
2-core box, medium org: 12.6 s -> 8.0 s; large: about half the write time):

- Indexes: keeping the six KPI indexes up to date row by row costs about three
  times more than building each index once from sorted data at the end. Only
  done on an empty store (a store that holds rows keeps its indexes), and the
  indexes are rebuilt even when the build fails, from the same declarations
  (schema.INDEXES) the store's migration uses.
- WAL checkpoints: with SQLite's default (every 1,000 pages) each chunk's
  commit copies pages back into the database file; checkpointing every 20,000
  pages during the load makes commits nearly free. Into an empty store the
  checkpoints also skip fsync (a build cut short by a power loss is built
  again, there is nothing else in the file to protect). The connection's
  settings are restored afterwards and the WAL checkpointed once.

Both belong to the store in the long run (a `Store.bulk_load()`); they live
here until a second bulk writer needs them.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator
from contextlib import contextmanager

from kpisync.schema import INDEXES
from kpisync.store import Store

CHECKPOINT_PAGES = 20_000


@contextmanager
def bulk_load(store: Store, tables: Collection[str]) -> Iterator[None]:
    conn = store.conn
    checkpoint_pages = conn.execute("PRAGMA wal_autocheckpoint").fetchone()[0]
    synchronous = conn.execute("PRAGMA synchronous").fetchone()[0]
    conn.execute(f"PRAGMA wal_autocheckpoint = {CHECKPOINT_PAGES}")
    indexed = {table for _, table, _ in INDEXES if table in tables}
    empty = not any(store.count(t) for t in tables)
    deferred = [index for index in INDEXES if index[1] in indexed] if empty else []
    if empty:
        conn.execute("PRAGMA synchronous = OFF")
    with store.transaction():
        for name, _, _ in deferred:
            conn.execute(f"DROP INDEX IF EXISTS {name}")
    try:
        yield
    finally:
        with store.transaction():
            for name, table, columns in deferred:
                conn.execute(f'CREATE INDEX IF NOT EXISTS {name} ON "{table}" ({", ".join(columns)})')
        conn.execute(f"PRAGMA wal_autocheckpoint = {checkpoint_pages}")
        conn.execute(f"PRAGMA synchronous = {synchronous}")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
