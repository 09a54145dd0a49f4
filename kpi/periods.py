"""Periods of interfaces.md §2, cut in the org time zone, as UTC text bounds.

A period is `[start, end)`. Its end is capped just past `as_of` (one second,
the store's precision), so a record stamped exactly at `as_of` counts, as it
does when the store is replayed up to `as_of`. Bounds are UTC `…Z` text, so the
SQL compares them with the stored timestamps as plain strings.

Facts are placed once into *segments*: the pieces between consecutive period
bounds. Every period is a run of whole segments, so additive measures are
summed per segment once and then per period (no fact is joined to a period
more than once per query).
"""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from kpisync.kpi.settings import KpiSettings
from kpisync.timestamps import format_ts, parse_ts

ALL = "all"
ONE_SECOND = timedelta(seconds=1)


@dataclass(frozen=True)
class Period:
    label: str  # 2026-03, 2026-Q1, 2026, rolling-30d, all
    kind: str  # month, quarter, year, rolling, all
    start: str  # inclusive, UTC text
    end: str  # exclusive, UTC text, capped at as_of + 1 s
    # local dates of the natural (uncapped) bounds, for matching quotas
    start_date: str | None = None
    end_date: str | None = None
    working_days: int = 0


def parse_as_of(as_of: str | datetime | None) -> datetime:
    """`as_of` as an aware UTC datetime at second precision (default: now)."""
    if as_of is None:
        moment = datetime.now(UTC)
    elif isinstance(as_of, datetime):
        moment = as_of if as_of.tzinfo else as_of.replace(tzinfo=UTC)
    else:
        moment = parse_ts(as_of)
    return moment.astimezone(UTC).replace(microsecond=0)


def _local_midnight(day: date, zone: ZoneInfo) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=zone).astimezone(UTC)


def working_days(start: datetime, end: datetime, zone: ZoneInfo) -> int:
    """Monday–Friday local dates whose midnight falls in [start, end)."""
    day = start.astimezone(zone).date()
    if _local_midnight(day, zone) < start:
        day += timedelta(days=1)
    count = 0
    while _local_midnight(day, zone) < end:
        if day.weekday() < 5:
            count += 1
        day += timedelta(days=1)
    return count


def _month_start(day: date, back: int) -> date:
    index = day.year * 12 + day.month - 1 - back
    return date(index // 12, index % 12 + 1, 1)


def calendar_periods(as_of: datetime, settings: KpiSettings) -> list[Period]:
    """Months, quarters, years and rolling windows for `as_of`, newest first per kind."""
    zone = settings.zone
    cap = as_of + ONE_SECOND
    local = as_of.astimezone(zone).date()
    spans: list[tuple[str, str, date, date]] = []
    for back in range(settings.months + 1):
        first = _month_start(local, back)
        spans.append((f"{first:%Y-%m}", "month", first, _month_start(first, -1)))
    quarter_first = date(local.year, 3 * ((local.month - 1) // 3) + 1, 1)
    for back in range(settings.quarters + 1):
        first = _month_start(quarter_first, 3 * back)
        label = f"{first.year}-Q{(first.month - 1) // 3 + 1}"
        spans.append((label, "quarter", first, _month_start(first, -3)))
    for back in range(settings.years):
        year = local.year - back
        spans.append((str(year), "year", date(year, 1, 1), date(year + 1, 1, 1)))
    periods = []
    for label, kind, first, after in spans:
        start = _local_midnight(first, zone)
        end = min(_local_midnight(after, zone), cap)
        periods.append(
            Period(
                label,
                kind,
                format_ts(start),
                format_ts(end),
                first.isoformat(),
                after.isoformat(),
                working_days(start, end, zone),
            )
        )
    for days in settings.rolling_days:
        start = cap - timedelta(days=days)
        periods.append(
            Period(
                f"rolling-{days}d",
                "rolling",
                format_ts(start),
                format_ts(cap),
                working_days=working_days(start, cap, zone),
            )
        )
    return periods


def all_period(as_of: datetime, zone: ZoneInfo) -> Period:
    return Period(ALL, ALL, "0000-00-00T00:00:00Z", format_ts(as_of + ONE_SECOND))


@dataclass(frozen=True)
class Segments:
    """The pieces between period bounds; `index(ts)` places a timestamp in one."""

    bounds: tuple[str, ...]
    # period label -> the segment indexes it covers
    members: dict[str, tuple[int, ...]]

    @classmethod
    def of(cls, periods: list[Period]) -> Segments:
        bounds = tuple(sorted({p.start for p in periods} | {p.end for p in periods}))
        members = {
            p.label: tuple(i for i in range(len(bounds) - 1) if p.start <= bounds[i] and bounds[i + 1] <= p.end)
            for p in periods
        }
        return cls(bounds, members)

    def index(self, ts: str | None) -> int | None:
        """Segment of a UTC timestamp, None outside every period (or when NULL)."""
        if ts is None:
            return None
        i = bisect_right(self.bounds, ts) - 1
        return i if 0 <= i < len(self.bounds) - 1 else None
