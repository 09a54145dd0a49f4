"""What an admin can tune about KPI computation (built by the config module from YAML)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

MAX_WORKERS = 4  # past a few, the connections wait on the disk and each other, not the CPU


@dataclass(frozen=True)
class KpiSettings:
    """Inputs of the KPI engine that are not in the store.

    `months` and `quarters` count the periods *before* the one containing
    `as_of` (12 months + the current one gives a same-month-last-year view);
    `years` is the number of calendar years including the current one
    (interfaces.md §2: current and previous).
    """

    timezone: str = "UTC"
    months: int = 12
    quarters: int = 4
    years: int = 2
    rolling_days: tuple[int, ...] = (7, 30, 90)
    # opportunity stages whose entry counts as a proposal sent (proposals_sent)
    proposal_stages: tuple[str, ...] = ("Proposal/Price Quote",)
    # clv: a fixed customer lifetime; None derives it from the last 365 days' churn
    clv_lifetime_years: float | None = None
    # clv: the longest lifetime assumed, also used when nobody churned
    clv_cap_years: float = 10.0
    # connections computing KPI families at once (SQLite runs each on its own core);
    # None: one per CPU this process may use, at most MAX_WORKERS
    workers: int | None = None

    def __post_init__(self) -> None:
        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"kpi settings: unknown time zone {self.timezone!r}") from exc
        for name in ("months", "quarters", "years"):
            if getattr(self, name) < 0:
                raise ValueError(f"kpi settings: {name} must be >= 0")
        if self.clv_cap_years <= 0:
            raise ValueError("kpi settings: clv_cap_years must be > 0")
        if self.clv_lifetime_years is not None and self.clv_lifetime_years <= 0:
            raise ValueError("kpi settings: clv_lifetime_years must be > 0")
        if self.workers is not None and self.workers < 1:
            raise ValueError("kpi settings: workers must be >= 1")

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def worker_count(self) -> int:
        if self.workers is not None:
            return self.workers
        cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
        return max(1, min(cpus, MAX_WORKERS))
