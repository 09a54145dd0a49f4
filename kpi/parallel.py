"""A full compute on two connections at once, both reading one snapshot of the store.

SQLite steps one statement at a time per connection, and Python's sqlite3
lets go of the GIL while it steps, so two connections in two threads use two
cores. The KPIs are split by what they read: those built on the activities
(`k_acts` and the live tables made from it, the largest by far) on one
connection, every other KPI on the other, which never builds the activity
tables. Each connection builds its own live temp tables and writes its values
into its own scratch file; the caller copies both into `kpi_values` in one
transaction.

Both read the same state of the store: their read transactions start while
the store's own connection holds the write lock for a moment, so no sync can
commit between them.
"""

from __future__ import annotations

import sqlite3
import tempfile
import threading
from collections.abc import Callable, Collection, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from kpisync.kpi import live
from kpisync.kpi.aggregate import Family
from kpisync.kpi.registry import KpiDef
from kpisync.store import Store

Chosen = list[tuple[KpiDef, list[str]]]  # KPIs and the grains wanted of each
# computes chosen KPIs on a connection into an output table, with the live tables to build
# (None: all), adding seconds per step to the timings
Work = Callable[[sqlite3.Connection, Chosen, str, Collection[str] | None, dict[str, float]], None]

SPLIT_ROOT = "k_acts"


def reads(compute: Any) -> set[str]:
    """The live tables a compute's declared SQL names (its families, queries, parts)."""
    found: set[str] = set()
    todo = [compute]
    seen: set[int] = set()
    while todo:
        item = todo.pop()
        if id(item) in seen:
            continue
        seen.add(id(item))
        if isinstance(item, Family):
            found |= live.reads(item.sql)
        elif isinstance(item, str):
            found |= live.reads(item)
        elif isinstance(item, list | tuple):
            todo += item
        elif isinstance(item, dict):
            todo += item.values()
        elif hasattr(item, "__dict__"):
            todo += vars(item).values()
            todo += getattr(type(item), "uses", ())
    return found


def split(chosen: Chosen) -> list[tuple[str, Chosen, Collection[str] | None]]:
    """(name, KPIs, live tables to build) per connection; one group when no split helps.

    The activity group builds every live table; the other builds none made from
    the activities (a KPI there that reads one fails with "no such table")."""
    heavy = live.built_from(SPLIT_ROOT)
    activities = [item for item in chosen if reads(item[0].compute) & heavy]
    rest = [item for item in chosen if not reads(item[0].compute) & heavy]
    if not activities or not rest:
        return [("all", chosen, None)]
    return [("activities", activities, None), ("rest", rest, {name for name, _ in live.LIVE_TABLES} - heavy)]


def can_split(store: Store) -> bool:
    """A store file, not inside a caller's transaction (whose writes other connections would not see)."""
    return store.path != ":memory:" and not store.conn.in_transaction


def _worker(path: str, scratch: Path, index: int, out_ddl: str) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA busy_timeout = 10000")
    conn.execute("ATTACH DATABASE ? AS out", (str(scratch / f"out{index}.db"),))
    # a throwaway file: no journal, no syncs
    conn.execute("PRAGMA out.journal_mode = OFF")
    conn.execute("PRAGMA out.synchronous = OFF")
    conn.execute(out_ddl.format(table="out.k_out"))
    return conn


@contextmanager
def computed(
    store: Store, groups: Sequence[tuple[str, Chosen, Collection[str] | None]], out_ddl: str, work: Work
) -> Iterator[tuple[list[str], dict[str, float]]]:
    """Run `work` for each group on its own connection and thread; yields the output
    tables (attached to `store.conn`) and the timings of all groups."""
    with tempfile.TemporaryDirectory(prefix="kpisync-compute-") as scratch_dir:
        scratch = Path(scratch_dir)
        conns = [_worker(store.path, scratch, i, out_ddl) for i in range(len(groups))]
        try:
            store.conn.execute("BEGIN IMMEDIATE")  # no commit can land between the snapshots
            try:
                for conn in conns:
                    conn.execute("BEGIN")
                    conn.execute("SELECT count(*) FROM sqlite_master").fetchone()  # the snapshot starts here
            finally:
                store.conn.execute("ROLLBACK")
            timings: list[dict[str, float]] = [{} for _ in groups]
            errors: list[BaseException] = []

            def run(i: int) -> None:
                name, chosen, tables = groups[i]
                try:
                    work(conns[i], chosen, "out.k_out", tables, timings[i])
                    conns[i].execute("COMMIT")
                    timings[i][f"live tables: {name}"] = timings[i].pop("live tables")
                except BaseException as exc:  # handed to the caller's thread
                    errors.append(exc)

            threads = [threading.Thread(target=run, args=(i,), name=f"kpi-{g[0]}") for i, g in enumerate(groups)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            if errors:
                raise errors[0]
        finally:
            for conn in conns:
                conn.close()
        names = [f"k_out_{i}" for i in range(len(groups))]
        for i, name in enumerate(names):
            store.conn.execute("ATTACH DATABASE ? AS " + name, (str(scratch / f"out{i}.db"),))
        try:
            yield [f"{name}.k_out" for name in names], {k: v for t in timings for k, v in t.items()}
        finally:
            for name in names:
                store.conn.execute(f"DETACH DATABASE {name}")
