"""KPIs computed on several SQLite connections at once, over a scratch database.

SQLite runs one statement on one core, and Python's sqlite3 lets go of the
GIL while a statement runs: so threads, each with its own connection, compute
KPI families side by side. The store's connection builds the live tables
into a scratch database file (`scratch`), table by table, each committed as
it is done; it is kept in WAL mode so that readers and that one writer never
wait for each other. The build makes no checkpoints (`no_checkpoints`): the
whole file stays in its WAL, and no second copy of it is written into a
database file that is deleted right after. Each worker connection opens that
file read-only as its main database (it cannot see the store at all), so
that the last one to close it does not make that copy either. A worker
starts on a group of KPIs as soon as the tables the group reads are built
(`Schedule`), and writes each group's rows into a file of the group's own,
which the store's connection, its build done, copies into the store as soon
as the group is finished (kpisync.kpi.staging).

KPIs that share a family go to the same worker (`sharing_groups`), so a
rollup is computed once. While the build runs (the longest path) it keeps a
core to itself; of the groups ready, the longest goes first, so that no long
one starts last.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import tempfile
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Generic, TypeVar

T = TypeVar("T")


SCRATCH_PREFIX = "kpisync-compute-"


# The page cache of each connection of a compute, in KiB. SQLite sorts in memory up to
# that size, so a GROUP BY over a million activities stays in memory instead of being
# written to temp files and read back (a quarter less read and a tenth less written on
# the large bench org).
CACHE_KIB = 32 * 1024

# What a compute deletes is its own output: superseded KPI values, rollups, scratch
# tables. Python's SQLite is often built with secure_delete on, which zeroes every
# freed page; dropping the old kpi_values of the large bench org then writes 194 MB of
# zeros (1.09 s against 0.13 s with FAST, before the commit writes them again from the
# WAL). FAST zeroes only what costs no extra I/O; scratch databases need none.
SECURE_DELETE = "FAST"


@contextmanager
def tuned(conn: sqlite3.Connection) -> Iterator[None]:
    """The compute's page cache and secure_delete on `conn`'s main and temp databases,
    for the duration (the connection's own settings are restored after)."""
    pragmas = {"cache_size": -CACHE_KIB, "secure_delete": SECURE_DELETE}
    old = {
        (schema, pragma): conn.execute(f"PRAGMA {schema}.{pragma}").fetchone()[0]
        for schema in ("main", "temp")
        for pragma in pragmas
    }
    for schema, pragma in old:
        conn.execute(f"PRAGMA {schema}.{pragma} = {pragmas[pragma]}")
    try:
        yield
    finally:
        for (schema, pragma), value in old.items():
            # (secure_delete reads 0, 1 or 2 but takes 2 for ON: it is set back by name)
            setting = ("OFF", "ON", "FAST")[value] if pragma == "secure_delete" else int(value)
            conn.execute(f"PRAGMA {schema}.{pragma} = {setting}")


@contextmanager
def scratch() -> Iterator[Path]:
    """A private folder for one compute's scratch databases, removed afterwards.

    Its name holds the process id, so that a compute can remove what a killed
    one left behind (hundreds of MB on a large org)."""
    sweep()
    folder = Path(tempfile.mkdtemp(prefix=f"{SCRATCH_PREFIX}{os.getpid()}-"))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def sweep() -> None:
    """Remove the scratch folders of processes that are gone."""
    for folder in Path(tempfile.gettempdir()).glob(f"{SCRATCH_PREFIX}*-*"):
        pid = folder.name[len(SCRATCH_PREFIX) :].split("-")[0]
        if pid.isdigit() and not alive(int(pid)):
            shutil.rmtree(folder, ignore_errors=True)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's
        return True
    return True


def attach(conn: sqlite3.Connection, path: Path, schema: str, *, shared: bool = False) -> None:
    """Attach a scratch database: no fsync, it is thrown away after. One that others
    read while this connection writes it (`shared`) keeps a WAL, so that neither
    waits for the other; one connection's own output needs no journal at all."""
    conn.execute(f"ATTACH DATABASE ? AS {schema}", (str(path),))
    conn.execute(f"PRAGMA {schema}.journal_mode = {'WAL' if shared else 'OFF'}")
    conn.execute(f"PRAGMA {schema}.synchronous = OFF")
    conn.execute(f"PRAGMA {schema}.secure_delete = OFF")


@contextmanager
def no_checkpoints(conn: sqlite3.Connection) -> Iterator[None]:
    """No automatic WAL checkpoints on `conn` for the duration (a scratch database's
    build). Its checkpoints copy every page a second time, from the WAL into the
    database file. Large bench org, alternated full computes with read-only workers
    (`connect`): live tables 15.1-20.8 s against 19.5-23.8 s with checkpoints (six
    pairs); the whole compute, median 35.3 s against 36.4 s, best 27.1 against 33.1 s
    (nine and ten runs on a box whose speed varies by half)."""
    old = int(conn.execute("PRAGMA wal_autocheckpoint").fetchone()[0])
    conn.execute("PRAGMA wal_autocheckpoint = 0")
    try:
        yield
    finally:
        conn.execute(f"PRAGMA wal_autocheckpoint = {old}")


def connect(path: Path) -> sqlite3.Connection:
    """A worker's connection: the scratch database of live tables as its main, read-only
    (SQLite does not checkpoint when the last connection to close is read-only: the
    built file, all in its WAL, is thrown away as it is). Its attached output files and
    temp tables are written as usual."""
    conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, isolation_level=None)
    for schema in ("main", "temp"):
        conn.execute(f"PRAGMA {schema}.cache_size = {-CACHE_KIB}")
        conn.execute(f"PRAGMA {schema}.secure_delete = OFF")  # all of it is thrown away
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


class Stopped(Exception):
    """The build stops because a worker failed (whose error is the one raised)."""


class Schedule(Generic[T]):
    """Hands groups to workers as the live tables they read get built: of the groups
    ready, the longest first, so that no long one starts last. How long a group takes
    is `cost` (seconds it took before) when known, else the rows of the tables it reads."""

    def __init__(
        self,
        groups: Sequence[T],
        needs: Callable[[T], set[str]],
        while_building: int,
        cost: Mapping[T, float] | None = None,
    ) -> None:
        self._pending = list(groups)
        self._needs = needs
        self._cost = cost
        # groups computed at once while the build runs: it is the longest path, so it
        # keeps a core of its own
        self._while_building = while_building
        self._busy: set[int] = set()  # threads on a group
        self._rows: dict[str, int] = {}  # built tables and their rows
        self._building = True
        self._failed = False
        self._finished: list[T] = []  # computed, not yet taken by `finished`
        self._changed = threading.Condition()

    def built(self, table: str, rows: int) -> None:
        with self._changed:
            if self._failed:
                raise Stopped("a worker failed")
            self._rows[table] = rows
            self._changed.notify_all()

    def all_built(self) -> None:
        with self._changed:
            self._building = False
            self._changed.notify_all()

    def _length(self, group: T) -> float:
        if self._cost is not None:
            return self._cost[group]
        return sum(self._rows[t] for t in self._needs(group))

    def fail(self) -> None:
        """Stop: workers take no more groups, and the build and `finished` stop."""
        with self._changed:
            self._failed = True
            self._changed.notify_all()

    def done(self, group: T) -> None:
        """A worker computed `group` (its rows are ready to be copied)."""
        with self._changed:
            self._finished.append(group)
            self._changed.notify_all()

    def finished(self, count: int) -> Iterator[T]:
        """The groups as workers finish them, until `count` have; Stopped when one failed."""
        taken = 0
        while taken < count:
            with self._changed:
                while not self._failed and not self._finished:
                    self._changed.wait()
                if self._failed:
                    raise Stopped("a worker failed")
                batch, self._finished = self._finished, []
            for group in batch:
                taken += 1
                yield group

    def next(self) -> T | None:
        """The next group to compute, waiting for its tables; None when there is none."""
        me = threading.get_ident()
        with self._changed:
            self._busy.discard(me)  # done with the last one
            self._changed.notify_all()
            while not self._failed and self._pending:
                ready = [g for g in self._pending if self._needs(g) <= self._rows.keys()]
                if ready and (not self._building or len(self._busy) < self._while_building):
                    group = max(ready, key=self._length)
                    self._pending.remove(group)
                    self._busy.add(me)
                    return group
                if not self._building:
                    missing = set().union(*(self._needs(g) for g in self._pending)) - self._rows.keys()
                    raise RuntimeError(f"KPI queries read live tables that were never built: {sorted(missing)}")
                self._changed.wait()
            return None


def run(
    schedule: Schedule[T],
    workers: int,
    work: Callable[[int, Callable[[], T | None]], None],
    build: Callable[[], None],
    after: Callable[[], None] = lambda: None,
) -> None:
    """Run `work(i, schedule.next)` on `workers` threads while `build()`, then `after()`
    (with the workers still going), run here. The first error stops the others (after
    the group each is on) and is raised."""

    def guarded(i: int) -> None:
        try:
            work(i, schedule.next)
        except BaseException:
            schedule.fail()
            raise

    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="kpisync-kpi") as pool:
        futures = [pool.submit(guarded, i) for i in range(workers)]
        try:
            try:
                build()
            finally:
                schedule.all_built()
            after()
        except Stopped:
            pass  # the worker's error is raised below
        except BaseException:
            schedule.fail()
            raise
    for future in futures:
        future.result()
