"""Time for the generator: integer epoch seconds inside, canonical text outside.

A large org formats a few million timestamps; `strftime` per value would be a
third of the build time, so stamps are built from cached day strings and a
precomputed table of the 86,400 times of day.
"""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta

from kpisync.timestamps import parse_ts

DAY = 86_400
HOUR = 3_600
MINUTE = 60
_EPOCH = date(1970, 1, 1)
# 1970-01-01 was a Thursday: weekday (Monday = 0) of epoch day d is (d + 3) % 7.
_THURSDAY = 3

_TIMES_OF_DAY = tuple(f"T{s // HOUR:02d}:{s // MINUTE % 60:02d}:{s % 60:02d}Z" for s in range(DAY))
_day_cache: dict[int, str] = {}


def to_epoch(moment: str | datetime) -> int:
    if isinstance(moment, str):
        moment = parse_ts(moment)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp())


def day_text(day: int) -> str:
    """`YYYY-MM-DD` of epoch day `day`."""
    text = _day_cache.get(day)
    if text is None:
        text = _day_cache[day] = (_EPOCH + timedelta(days=day)).isoformat()
    return text


def stamp(t: int) -> str:
    """Canonical `YYYY-MM-DDTHH:MM:SSZ` of epoch second `t`."""
    day = t // DAY
    text = _day_cache.get(day) or day_text(day)
    return text + _TIMES_OF_DAY[t - day * DAY]


def stamp_or_none(t: int | None) -> str | None:
    return None if t is None else stamp(t)


def business_time(t: int, offset_h: int, rng: random.Random) -> int:
    """`t` if it falls in working hours (Mon–Fri 08:00–18:00 local), else a
    moment early in the next working morning: reps work office hours."""
    local = t + offset_h * HOUR
    day, second = divmod(local, DAY)
    wd = (day + _THURSDAY) % 7
    if wd < 5 and 8 * HOUR <= second < 18 * HOUR:
        return t
    if wd < 5 and second < 8 * HOUR:
        shift = 0
    else:
        shift = 1
        wd = (wd + 1) % 7
    if wd >= 5:
        shift += 7 - wd
    morning = (day + shift) * DAY + 8 * HOUR + int(rng.random() * 2.5 * HOUR)
    return morning - offset_h * HOUR


def month_starts(first: date, last: date) -> list[date]:
    """First days of the months from `first`'s month to `last`'s month, inclusive."""
    months = []
    year, month = first.year, first.month
    while (year, month) <= (last.year, last.month):
        months.append(date(year, month, 1))
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return months


def add_months(day: date, count: int) -> date:
    """`day` moved by `count` calendar months, clamped to the month's last day."""
    year, month = divmod(day.year * 12 + day.month - 1 + count, 12)
    month += 1
    last = (date(year + month // 12, month % 12 + 1, 1) - timedelta(days=1)).day
    return date(year, month, min(day.day, last))


def epoch_of(day: date) -> int:
    return (day - _EPOCH).days * DAY
