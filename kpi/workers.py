"""KPIs computed on several SQLite connections at once, over a scratch database.

SQLite runs one statement on one core, and Python's sqlite3 lets go of the
GIL while a statement runs: so threads, each with its own connection, compute
KPI families side by side. The live tables they read are built once, by the
store's connection in one read snapshot, into a scratch database file
(`scratch`); each worker connection opens that file as its main database (it
cannot see the store at all) and writes its rows into its own output file,
which the store's connection copies into `kpi_values`.

KPIs that share a family go to the same worker (`sharing_groups`), so a
rollup is computed once; workers take the groups heaviest first from one queue.
"""

from __future__ import annotations

import queue
import shutil
import sqlite3
import tempfile
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")


@contextmanager
def scratch() -> Iterator[Path]:
    """A private folder for one compute's scratch databases, removed afterwards."""
    folder = Path(tempfile.mkdtemp(prefix="kpisync-compute-"))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def attach(conn: sqlite3.Connection, path: Path, schema: str) -> None:
    """Attach a scratch database: no journal and no fsync, it is thrown away after."""
    conn.execute(f"ATTACH DATABASE ? AS {schema}", (str(path),))
    conn.execute(f"PRAGMA {schema}.journal_mode = OFF")
    conn.execute(f"PRAGMA {schema}.synchronous = OFF")


def connect(path: Path) -> sqlite3.Connection:
    """A worker's connection: the scratch database of live tables as its main."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = OFF")
    return conn


def sharing_groups(items: Sequence[T], families: Callable[[T], set[str]]) -> list[list[T]]:
    """The items grouped so that items sharing a family are in one group (order kept)."""
    owner: dict[str, int] = {}
    groups: list[list[T]] = []
    for item in items:
        mine = {owner[f] for f in families(item) if f in owner}
        if not mine:
            target = len(groups)
            groups.append([])
        else:
            target = min(mine)
            for other in sorted(mine - {target}):  # the item joins groups that were apart
                groups[target] += groups[other]
                groups[other] = []
                owner.update({f: target for f, g in owner.items() if g == other})
        groups[target].append(item)
        owner.update({f: target for f in families(item)})
    return [g for g in groups if g]


def run(groups: Sequence[T], workers: int, work: Callable[[int, Callable[[], T | None]], None]) -> None:
    """Run `work(i, next_group)` on `workers` threads; `next_group()` hands out the
    groups in order, then None. The first error stops the others (after the group
    each is on) and is raised here."""
    pending: queue.SimpleQueue[T] = queue.SimpleQueue()
    for group in groups:
        pending.put(group)
    failed = threading.Event()

    def next_group() -> T | None:
        if failed.is_set():
            return None
        try:
            return pending.get_nowait()
        except queue.Empty:
            return None

    def guarded(i: int) -> None:
        try:
            work(i, next_group)
        except BaseException:
            failed.set()
            raise

    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="kpisync-kpi") as pool:
        futures = [pool.submit(guarded, i) for i in range(workers)]
    for future in futures:
        future.result()
