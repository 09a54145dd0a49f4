"""What a CRM field gets for a KPI value: rounded to what the field shows, ages in whole days."""

from __future__ import annotations

import pytest

from kpisync.kpi import registry
from kpisync.sync import writeback as wb


@pytest.mark.parametrize(
    ("kpi", "value", "unit", "written"),
    [
        ("win_rate", 0.312549, "ratio", 0.3125),
        ("clv", 172520.4549, "currency", 172520.45),
        ("sales_cycle_days", 22.46, "days", 22.5),  # a median of durations keeps its decimal
        ("days_open", 3.96, "days", 3.0),  # an age: whole days elapsed
        ("days_in_stage", 0.2, "days", 0.0),
        ("days_in_current_stage", 12.0, "days", 12.0),
        ("days_open", None, "days", None),
    ],
)
def test_written_value(kpi: str, value: float | None, unit: str, written: float | None) -> None:
    assert wb.written_value(kpi, value, unit) == written


def test_ages_written_in_whole_days_are_record_level_day_counts() -> None:
    ages = sorted(d.id for d in registry.load().values() if d.age)
    assert ages == ["days_in_current_stage", "days_in_stage", "days_open"]
    for kpi in ages:
        defn = registry.get(kpi)
        assert defn is not None and defn.unit == "days", kpi
        assert set(defn.grains) <= {"contact", "opportunity", "account"}, kpi


def test_an_age_is_sent_once_a_day_not_every_few_hours() -> None:
    # days_open of an open deal, computed at 15-minute cycles through one day: one value a day
    sent = {wb.written_value("days_open", 40 + minutes / 1440, "days") for minutes in range(0, 1440, 15)}
    assert sent == {40.0}
