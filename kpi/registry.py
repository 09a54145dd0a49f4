"""The KPI registry: each KPI declared once, as data plus the function that computes it.

Adding a KPI means adding one declaration (in the module of its catalog
section) and its hand-computed test; the CLI, the docs, config validation and
write-back read everything else from here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, NamedTuple

Unit = Literal["ratio", "count", "currency", "minutes", "hours", "days", "score", "per_day", "multiple"]
GRAINS = (
    "org",
    "team",
    "user",
    "region",
    "channel",
    "activity_type",
    "account",
    "contact",
    "opportunity",
)
# grains whose key is one CRM record: their values can be written onto that record
RECORD_GRAINS = ("account", "contact", "opportunity")


class Breakdown(NamedTuple):
    """What `kpi explain` adds under a value: its records' contents counted by a label."""

    title: str  # "touches by type"
    sql: str  # (label, count) rows for :keys, a JSON array of the record keys behind the value


@dataclass(frozen=True)
class KpiDef:
    id: str
    name: str
    unit: Unit
    grains: tuple[str, ...]
    formula: str  # one line, for `kpi list` and the docs
    source: str  # the seed article (and item) it comes from
    section: str  # catalog section: A deals, B activity, C funnel, D customers, E support
    # periods: "calendar" (months, quarters, years, rolling windows), "fixed"
    # (months, quarters, years only), "all", or one label such as "rolling-90d"
    periods: tuple[str, ...] = ("calendar",)
    # per-grain periods where a grain differs from `periods` (record-level values)
    record_periods: dict[str, tuple[str, ...]] = field(default_factory=dict)
    compute: Callable[..., Any] | None = field(default=None, compare=False, repr=False)
    # for `kpi explain`: the keys are the numerator's records (at a record grain, its own key)
    breakdown: Breakdown | None = None
    # how an ambiguity of the catalog was resolved, or an extra the write-back needs
    notes: str = ""
    # a record's age, growing with as_of: the write-back sends it in whole days elapsed, so
    # each record's field changes once a day (at one decimal: every 2.4 hours, on every record)
    age: bool = False

    def periods_for(self, grain: str) -> tuple[str, ...]:
        return self.record_periods.get(grain, self.periods)


REGISTRY: dict[str, KpiDef] = {}


def register(defn: KpiDef) -> KpiDef:
    if defn.id in REGISTRY:
        raise ValueError(f"KPI {defn.id} declared twice")
    unknown = set(defn.grains) - set(GRAINS)
    if unknown:
        raise ValueError(f"KPI {defn.id}: unknown grains {sorted(unknown)}")
    stray = set(defn.record_periods) - set(defn.grains)
    if stray:
        raise ValueError(f"KPI {defn.id}: periods for grains it lacks {sorted(stray)}")
    REGISTRY[defn.id] = defn
    return defn


def load() -> dict[str, KpiDef]:
    """The full registry (importing the catalog modules registers their KPIs)."""
    from kpisync.kpi import catalog  # noqa: F401  (import registers)

    return REGISTRY


def get(kpi_id: str) -> KpiDef | None:
    return load().get(kpi_id)


def ids() -> list[str]:
    return sorted(load())
