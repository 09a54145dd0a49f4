"""One compute's shared state: as_of, periods, the live temp tables, memoised rollups."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Collection, Iterable
from datetime import datetime
from typing import Any, TypeVar

from kpisync.kpi import live
from kpisync.kpi.periods import ALL, Period, Segments, all_period, calendar_periods
from kpisync.kpi.settings import KpiSettings
from kpisync.timestamps import format_ts

T = TypeVar("T")

ACTIVITY_TYPES = live.TOUCH_TYPES

# which keys a grain has even when nothing was counted for them (they get 0 / null)
_UNIVERSE_SQL = {
    "team": "SELECT DISTINCT team FROM k_users WHERE is_deleted = 0 AND team IS NOT NULL",
    "user": "SELECT id FROM k_users WHERE is_deleted = 0",
    "region": """SELECT region FROM k_users WHERE is_deleted = 0 AND region IS NOT NULL
                 UNION SELECT region FROM k_accounts WHERE region IS NOT NULL
                 UNION SELECT region FROM k_persons WHERE region IS NOT NULL
                 UNION SELECT region FROM k_opps WHERE region IS NOT NULL""",
    "channel": """SELECT channel FROM k_persons WHERE channel IS NOT NULL
                  UNION SELECT channel FROM k_opps WHERE channel IS NOT NULL
                  UNION SELECT channel FROM k_spend WHERE channel IS NOT NULL""",
    "account": "SELECT id AS key FROM k_accounts",
    "contact": "SELECT id AS key FROM k_persons",
    "opportunity": "SELECT id AS key FROM k_opps",
}


def universe_tables(grains: Iterable[str]) -> set[str]:
    """The live tables a KPI reads through the universes of the grains it reports."""
    return live.tables_read(" ".join(_UNIVERSE_SQL.get(g, "") for g in grains))


class Context:
    """What every KPI compute function receives.

    `periods` holds the calendar periods and `all`; `segments` places
    timestamps; the live tables of `kpisync.kpi.live` are built on open (in temp,
    or in `schema`, a scratch database a parallel compute's workers read).
    """

    def __init__(
        self,
        conn: sqlite3.Connection,
        settings: KpiSettings,
        as_of: datetime,
        schema: str = "temp",
        tables: Collection[str] | None = None,
    ) -> None:
        self.conn = conn
        self.schema = schema  # where the live tables are: temp, or an attached scratch database
        self.tables = tables  # the live tables `open` builds (with their inputs); None: all
        self.settings = settings
        self.as_of = as_of
        self.as_of_text = format_ts(as_of)
        calendar = calendar_periods(as_of, settings)
        self.calendar = [p.label for p in calendar]
        self.periods: dict[str, Period] = {p.label: p for p in calendar}
        self.periods[ALL] = all_period(as_of, settings.zone)
        self.segments = Segments.of(list(self.periods.values()))
        # segment -> labels of the periods containing it
        self.seg_periods: dict[int, list[str]] = {}
        for label, members in self.segments.members.items():
            for seg in members:
                self.seg_periods.setdefault(seg, []).append(label)
        self._memo: dict[str, Any] = {}
        self._own_snapshot = False
        self._universe: dict[str, list[str]] = {}

    def open(self, build: bool = True) -> Context:
        """Make the period tables and build the live tables in one read snapshot of the
        store; or, with build=False, leave the live tables to `build`."""
        conn = self.conn
        # One read snapshot for the whole build, and one transaction for its tables:
        # in autocommit every row written to a temp table is a transaction of its
        # own, and a sync committing halfway would mix two states of the store.
        self._own_snapshot = build and not conn.in_transaction
        if self._own_snapshot:
            conn.execute("BEGIN")
        self.register(conn)
        live.drop(conn, self.schema)
        # lo, hi: the period is segments [lo, hi), so "before the period" is seg < lo
        conn.execute(
            f"CREATE TABLE {self.schema}.k_periods (label TEXT PRIMARY KEY, kind TEXT, start TEXT, "
            '"end" TEXT, start_date TEXT, end_date TEXT, working_days INTEGER, lo INTEGER, hi INTEGER)'
        )
        bounds = self.segments.bounds
        conn.executemany(
            f"INSERT INTO {self.schema}.k_periods VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (
                    p.label,
                    p.kind,
                    p.start,
                    p.end,
                    p.start_date,
                    p.end_date,
                    p.working_days,
                    bounds.index(p.start),
                    bounds.index(p.end),
                )
                for p in self.periods.values()
            ],
        )
        conn.execute(f"CREATE TABLE {self.schema}.k_period_seg (seg INTEGER, period TEXT)")
        conn.executemany(
            f"INSERT INTO {self.schema}.k_period_seg VALUES (?, ?)",
            [(seg, label) for seg, labels in self.seg_periods.items() for label in labels],
        )
        conn.execute(f"CREATE INDEX {self.schema}.k_period_seg_seg ON k_period_seg (seg)")
        if build:
            live.build(conn, self.as_of_text, self.segments.bounds, self.schema, only=self.tables)
        return self

    def build(self, on_table: Callable[[str, int], None]) -> None:
        """Build the live tables one by one, each committed as it is done, for workers
        that read them meanwhile: not one read snapshot, so the caller checks that
        nothing changed the store during the build."""
        assert not self.conn.in_transaction, "the workers could not see the tables"
        live.build(self.conn, self.as_of_text, self.segments.bounds, self.schema, on_table)

    def register(self, conn: sqlite3.Connection) -> None:
        """The SQL functions KPI queries may call."""
        conn.create_function("kpi_seg", 1, self.segments.index, deterministic=True)

    def worker(self, conn: sqlite3.Connection) -> Context:
        """A context for another connection that reads the live tables this one built
        (in an attached scratch database, committed): same periods, its own memo."""
        other = Context(conn, self.settings, self.as_of, self.schema)
        other.register(conn)
        return other

    def end_snapshot(self) -> None:
        """Commit the temp tables and let go of the read snapshot (before writing results)."""
        if self._own_snapshot and self.conn.in_transaction:
            self.conn.execute("COMMIT")
        self._own_snapshot = False

    def close(self) -> None:
        for key in [k for k in self._memo if k.startswith("table:")]:
            self.conn.execute(f"DROP TABLE IF EXISTS temp.{self._memo.pop(key)}")
        if self.schema == "temp":
            live.drop(self.conn)
        self.end_snapshot()

    def __enter__(self) -> Context:
        return self.open()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def memo(self, key: str, build: Callable[[], T]) -> T:
        """A value shared by several KPIs of one compute, built on first use."""
        if key not in self._memo:
            self._memo[key] = build()
        return self._memo[key]  # type: ignore[no-any-return]

    def forget(self, families: set[str]) -> None:
        """Free the rollups of families no KPI still to come reads."""
        for name in families:
            self._memo.pop(f"sums:{name}", None)
            self._memo.pop(f"samples:{name}", None)
            for key in [k for k in self._memo if k.startswith(f"table:{name}:")]:
                self.conn.execute(f"DROP TABLE IF EXISTS temp.{self._memo.pop(key)}")

    def query(self, sql: str, params: dict[str, Any] | None = None) -> list[tuple[Any, ...]]:
        return self.conn.execute(sql, {"as_of": self.as_of_text, **(params or {})}).fetchall()

    def universe_sql(self, grain: str) -> str:
        """The SELECT listing a record grain's keys (column `key`)."""
        return _UNIVERSE_SQL[grain]

    def universe(self, grain: str) -> list[str]:
        """Keys a grain reports even when nothing was counted for them."""
        if grain not in self._universe:
            if grain == "org":
                keys = [""]
            elif grain == "activity_type":
                keys = list(ACTIVITY_TYPES)
            else:
                keys = [row[0] for row in self.query(_UNIVERSE_SQL[grain])]
            self._universe[grain] = keys
        return self._universe[grain]
