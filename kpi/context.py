"""One compute's shared state: as_of, periods, the live temp tables, memoised rollups."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
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
                  UNION SELECT channel FROM main.spend WHERE channel IS NOT NULL""",
    "account": "SELECT id FROM k_accounts",
    "contact": "SELECT id FROM k_persons",
    "opportunity": "SELECT id FROM k_opps",
}


class Context:
    """What every KPI compute function receives.

    `periods` holds the calendar periods and `all`; `segments` places
    timestamps; the temp tables of `kpisync.kpi.live` are built on open.
    """

    def __init__(self, conn: sqlite3.Connection, settings: KpiSettings, as_of: datetime) -> None:
        self.conn = conn
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
        self._universe: dict[str, list[str]] = {}

    def open(self) -> Context:
        conn = self.conn
        conn.create_function("kpi_seg", 1, self.segments.index, deterministic=True)
        live.build(conn, self.as_of_text, self.segments.bounds)
        # lo, hi: the period is segments [lo, hi), so "before the period" is seg < lo
        conn.execute(
            "CREATE TEMP TABLE k_periods (label TEXT PRIMARY KEY, kind TEXT, start TEXT, "
            '"end" TEXT, start_date TEXT, end_date TEXT, working_days INTEGER, lo INTEGER, hi INTEGER)'
        )
        bounds = self.segments.bounds
        conn.executemany(
            "INSERT INTO k_periods VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
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
        conn.execute("CREATE TEMP TABLE k_period_seg (seg INTEGER, period TEXT)")
        conn.executemany(
            "INSERT INTO k_period_seg VALUES (?, ?)",
            [(seg, label) for seg, labels in self.seg_periods.items() for label in labels],
        )
        conn.execute("CREATE INDEX temp.k_period_seg_seg ON k_period_seg (seg)")
        return self

    def close(self) -> None:
        live.drop(self.conn)

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

    def query(self, sql: str, params: dict[str, Any] | None = None) -> list[tuple[Any, ...]]:
        return self.conn.execute(sql, {"as_of": self.as_of_text, **(params or {})}).fetchall()

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
