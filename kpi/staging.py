"""A compute's values, gathered in a staging table in the store, then swapped in.

In a parallel compute each group of KPIs a worker finishes is copied into a
staging table in the store (`kpi_values_next_<pid>_<token>`, one per compute)
in a short transaction of its own, while the other groups are still computed;
a compute on one connection stages its values the same way, in the
transaction of its swap. The staging table replaces `kpi_values` in one
transaction (`swap_in`):
readers see the old values or the new ones, never a mix, and the store's
write lock is held for moments, not for the whole copy.

A compute killed halfway leaves its staging table behind; the next compute
drops those of processes that are gone (`sweep`).
"""

from __future__ import annotations

import os
import re
import secrets
import sqlite3
from collections.abc import Sequence
from dataclasses import replace

from kpisync.kpi.workers import alive
from kpisync.schema import KPI_VALUES
from kpisync.store import Store, create_table_sql

PREFIX = "kpi_values_next_"


def create(store: Store) -> str:
    """A new, empty staging table with kpi_values' columns and key; its name."""
    sweep(store.conn)
    name = f"{PREFIX}{os.getpid()}_{secrets.token_hex(4)}"
    with store.transaction() as conn:
        conn.execute(create_table_sql(replace(KPI_VALUES, name=name)))
    return name


def copy(store: Store, staging: str, source: str, computed_at: str) -> None:
    """Add the rows of `source` (FIELDS columns, an attached database's table)."""
    with store.transaction() as conn:
        conn.execute(f'INSERT OR REPLACE INTO "{staging}" SELECT *, ? FROM {source}', (computed_at,))


def swap_in(conn: sqlite3.Connection, staging: str, pairs: Sequence[tuple[str, str]], whole: bool) -> None:
    """Put the staged rows in kpi_values (within the caller's transaction): the whole
    catalog becomes kpi_values itself; a part replaces its (kpi, grain) rows."""
    if whole:
        conn.execute('DROP TABLE "kpi_values"')
        conn.execute(f'ALTER TABLE "{staging}" RENAME TO "kpi_values"')
        return
    conn.executemany("DELETE FROM kpi_values WHERE kpi = ? AND grain = ?", pairs)
    conn.execute(f'INSERT OR REPLACE INTO kpi_values SELECT * FROM "{staging}"')
    conn.execute(f'DROP TABLE "{staging}"')


def drop(store: Store, staging: str) -> None:
    with store.transaction() as conn:
        conn.execute(f'DROP TABLE IF EXISTS "{staging}"')


def sweep(conn: sqlite3.Connection) -> None:
    """Drop the staging tables of computes whose process is gone."""
    names = [row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
    for name in names:
        found = re.fullmatch(rf"{PREFIX}(\d+)_[0-9a-f]+", name)
        if found and not alive(int(found[1])):
            conn.execute(f'DROP TABLE IF EXISTS "{name}"')
