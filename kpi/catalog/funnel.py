"""C. Funnel and marketing (kpi-catalog.md §C): people, attributed to their owner."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from kpisync.kpi.aggregate import Compute, Median, Ratio, RecordSql, Total
from kpisync.kpi.context import Context
from kpisync.kpi.families import Family, sums
from kpisync.kpi.live import FUNNEL_STAGES
from kpisync.kpi.registry import KpiDef, register
from kpisync.timestamps import parse_ts

GRAINS = ("org", "team", "user", "channel")
CONVERSIONS = (
    ("lead", "mql"),
    ("mql", "sql"),
    ("sql", "opportunity"),
    ("opportunity", "customer"),
    ("mql", "customer"),
    ("lead", "customer"),
    ("lead", "opportunity"),  # lead_conversion_rate (§B)
)

# One row per person and funnel stage entered, at its entry: cohort flags say
# whether the person reached a later stage by as_of.
FUNNEL = Family(
    "funnel",
    f"""SELECT l.person_id AS rec, l.seg, p.owner_id AS user_id, p.team, p.channel,
           {", ".join(f"l.stage = '{s}' AS entered_{s}" for s in FUNNEL_STAGES)},
           {", ".join(f"l.stage = '{a}' AND s.{b}_at IS NOT NULL AS {a}_to_{b}" for a, b in CONVERSIONS)}
    FROM k_lc l JOIN k_persons p ON p.id = l.person_id
    JOIN k_stages s ON s.person_id = l.person_id
    WHERE l.stage IN {FUNNEL_STAGES}""",
    GRAINS,
    (*(f"entered_{s}" for s in FUNNEL_STAGES), *(f"{a}_to_{b}" for a, b in CONVERSIONS)),
)

LIFECYCLE = Family(
    "customer_lifecycle",
    """SELECT p.id AS rec, l.seg, p.owner_id AS user_id, p.team, p.channel,
           (unixepoch(l.entered_at) - unixepoch(p.created_at)) / 86400.0 AS x
    FROM k_lc l JOIN k_persons p ON p.id = l.person_id
    WHERE l.stage = 'customer' AND p.created_at IS NOT NULL AND l.entered_at >= p.created_at""",
    GRAINS,
)

DAYS_IN_STAGE = RecordSql(
    """SELECT p.id, (unixepoch(:as_of) - unixepoch(coalesce(cur.entered_at, s.latest_at))) / 86400.0,
           NULL, NULL
    FROM k_persons p
    LEFT JOIN k_lc cur ON cur.person_id = p.id AND cur.stage = p.lifecycle_stage
    LEFT JOIN k_stages s ON s.person_id = p.id"""
)

PEOPLE_CREATED = Family(
    "people_created",
    "SELECT id AS rec, created_seg AS seg, channel, 1 AS people FROM k_persons",
    ("org", "channel"),
    ("people",),
)

NEW_ACCOUNTS = Family(
    "new_accounts",
    """SELECT id AS rec, since_seg AS seg, first_channel AS channel, 1 AS acquired
    FROM k_accounts WHERE customer_since IS NOT NULL""",
    ("org", "channel"),
    ("acquired",),
)


def _local(ts: str, ctx: Context) -> datetime:
    return parse_ts(ts).astimezone(ctx.settings.zone).replace(tzinfo=None)


def spend_by_period(ctx: Context) -> dict[tuple[str, str], float]:
    """Spend per (channel or '' for all, period), pro rata by days of overlap."""

    def build() -> dict[tuple[str, str], float]:
        out: dict[tuple[str, str], float] = defaultdict(float)
        periods = [
            (label, _local(p.start, ctx), _local(p.end, ctx)) for label, p in ctx.periods.items() if label != "all"
        ]
        rows = ctx.query(
            """SELECT channel, period_start, period_end, amount FROM k_spend
            WHERE amount IS NOT NULL AND period_start < period_end"""
        )
        for channel, first, after, amount in rows:
            start = datetime.fromisoformat(first[:10])
            end = datetime.fromisoformat(after[:10])
            length = (end - start).total_seconds()
            for label, p_start, p_end in periods:
                overlap = (min(end, p_end) - max(start, p_start)).total_seconds()
                if overlap > 0:
                    share = amount * overlap / length
                    out[("", label)] += share
                    if channel is not None:
                        out[(channel, label)] += share
        return dict(out)

    return ctx.memo("spend", build)


@dataclass
class SpendPer(Compute):
    """Spend in P (pro rata by days) ÷ a count in P, at org and channel grain."""

    family: Family
    measure: str

    def __post_init__(self) -> None:
        self.fill = (None, 0, 0)

    def values(self, ctx: Context, grain: str) -> dict[tuple[str, str], tuple[Any, Any, Any]]:
        i = self.family.measures.index(self.measure)
        counts = {(k, p): v[i] for (g, k, p), v in sums(ctx, self.family).items() if g == grain}
        spend = spend_by_period(ctx)
        out = {}
        for key, period in set(counts) | set(spend):
            if period not in ctx.periods or (grain == "org") != (key == ""):
                continue
            money, n = spend.get((key, period), 0.0), counts.get((key, period), 0)
            out[(key, period)] = (money / n if n else None, money, n)
        return out


# fmt: off
C = "C"
_ENTERED = [
    KpiDef(f"entered_{stage}", f"Entered {stage}", "count", GRAINS,
           f"people whose {stage} lifecycle entry is in P", "002 sales and marketing", C,
           compute=Total(FUNNEL, f"entered_{stage}"))
    for stage in FUNNEL_STAGES
]
_CONVERSIONS = [
    KpiDef(f"conv_{a}_to_{b}", f"Conversion {a} to {b}", "ratio", GRAINS,
           f"of people entering {a} in P, the share with a {b} entry by as_of",
           "002 sales and marketing", C, compute=Ratio(FUNNEL, f"{a}_to_{b}", f"entered_{a}"))
    for a, b in CONVERSIONS[:-1]
]
for defn in (
    *_ENTERED,
    *_CONVERSIONS,
    KpiDef("customer_lifecycle_days", "Customer lifecycle (days)", "days", GRAINS,
           "median over people entering customer in P of customer entry - created_at",
           "002 lifecycle length", C, compute=Median(LIFECYCLE),
           notes="created_at of a person is the earliest of its lead and contact records; people "
                 "recorded in the CRM only after they became customers (added with a won deal) are "
                 "left out: their lifecycle length is unknown, not negative"),
    KpiDef("days_in_stage", "Days in lifecycle stage", "days", ("contact",),
           "as_of - entry of the contact's current lifecycle_stage", "002", C,
           periods=("all",), compute=DAYS_IN_STAGE, age=True,
           notes="when the current stage has no entry by as_of, the latest entry by as_of"),
    KpiDef("cost_per_lead", "Cost per lead", "currency", ("org", "channel"),
           "spend in P (pro rata by days) / contacts created in P", "002", C,
           compute=SpendPer(PEOPLE_CREATED, "people")),
    KpiDef("cac", "Customer acquisition cost", "currency", ("org", "channel"),
           "spend in P / accounts whose customer_since is in P (channel of first won deal)",
           "002 cost per acquisition, 004 CAC", C, compute=SpendPer(NEW_ACCOUNTS, "acquired")),
):
    register(defn)
# fmt: on
