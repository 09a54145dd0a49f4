"""A. Deals and pipeline (kpi-catalog.md §A): opportunities, attributed to their owner."""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from kpisync.kpi.aggregate import ByGrain, Compute, Mean, Median, Ratio, RecordSql, Total
from kpisync.kpi.context import Context
from kpisync.kpi.families import MASK_BITS, Family, sums
from kpisync.kpi.live import EXPANSION_TYPES
from kpisync.kpi.registry import KpiDef, register

OTU = ("org", "team", "user")

# Opportunities closed, placed at closed_at (won or lost as of as_of).
CLOSED = Family(
    "opp_closed",
    f"""SELECT id AS rec, closed_seg AS seg, owner_id AS user_id, team, region, channel,
           account_id, won, lost, won + lost AS decided,
           CASE WHEN won THEN coalesce(amount, 0) ELSE 0 END AS revenue,
           won AND deal_type IN {EXPANSION_TYPES} AS expansion,
           CASE WHEN won AND deal_type IN {EXPANSION_TYPES} THEN coalesce(amount, 0) ELSE 0 END
               AS expansion_revenue,
           CASE WHEN won AND channel = 'referral' THEN coalesce(amount, 0) ELSE 0 END
               AS referral_revenue,
           CASE WHEN won AND amount IS NOT NULL AND competitor_price <> 0
                THEN (amount - competitor_price) / competitor_price ELSE 0 END AS price_gap,
           won AND amount IS NOT NULL AND competitor_price <> 0 AS priced
    FROM k_opps WHERE closed_at IS NOT NULL""",
    ("org", "team", "user", "region", "channel"),
    (
        "won",
        "lost",
        "decided",
        "revenue",
        "expansion",
        "expansion_revenue",
        "referral_revenue",
        "price_gap",
        "priced",
    ),
)

# WORKED counted without a row per opportunity and period: opportunities with the
# same owner, created and closed segments and outcome are counted together, and a
# period is its segments [lo, hi) (created before its end: created_seg < hi; not
# closed before its start: closed_seg >= lo). `kpi explain` lists WORKED's rows (WORKED's fast twin).
WORKED_BY_SEGMENTS = Family(
    "opp_worked",
    """WITH grouped AS (
        SELECT owner_id, team, created_seg, closed_seg, won, count(*) AS n
        FROM k_opps GROUP BY owner_id, team, created_seg, closed_seg, won)
    SELECT NULL AS rec, p.label AS period, g.owner_id AS user_id, g.team, g.n AS worked,
           g.n * (g.won AND g.closed_seg >= p.lo AND g.closed_seg < p.hi) AS won
    FROM grouped g JOIN k_periods p
      ON g.created_seg < p.hi AND (g.closed_seg IS NULL OR g.closed_seg >= p.lo)
    WHERE p.kind <> 'all'""",
    OTU,
    ("worked", "won"),
    by="period",
)

# Opportunities worked in each period: created before its end, not closed before its start.
WORKED = Family(
    "opp_worked",
    """SELECT o.id AS rec, p.label AS period, o.owner_id AS user_id, o.team, 1 AS worked,
           o.won AND o.closed_at >= p.start AND o.closed_at < p."end" AS won
    FROM k_opps o JOIN k_periods p
      ON o.created_at < p."end" AND (o.closed_at IS NULL OR o.closed_at >= p.start)
    WHERE p.kind <> 'all'""",
    OTU,
    ("worked", "won"),
    by="period",
    fast=WORKED_BY_SEGMENTS,
)


CYCLE = Family(
    "opp_cycle",
    """SELECT id AS rec, closed_seg AS seg, owner_id AS user_id, team, region,
           (unixepoch(closed_at) - unixepoch(created_at)) / 86400.0 AS x
    FROM k_opps WHERE won AND created_at IS NOT NULL""",
    ("org", "team", "user", "region"),
)

CREATED = Family(
    "opp_created",
    """SELECT id AS rec, created_seg AS seg, owner_id AS user_id, team, channel,
           1 AS opened, coalesce(amount, 0) AS pipeline
    FROM k_opps""",
    ("org", "team", "user", "channel"),
    ("opened", "pipeline"),
)


def _proposal_stages(ctx: Context) -> dict[str, Any]:
    return {"stages": json.dumps(list(ctx.settings.proposal_stages))}


# PROPOSALS without a row per opportunity and period: each opportunity's segments with
# a proposal-stage entry are a bit mask; opportunities with the same mask and owner
# are counted together, and a period (segments [lo, hi)) counts those whose mask
# meets its own (PROPOSALS' fast twin: 0.26 s against 1.56 s on the large bench org).
PROPOSALS_BY_MASK = Family(
    "opp_proposals",
    """WITH masks AS (
        SELECT opportunity_id, sum(1 << seg) AS segs
        FROM (SELECT DISTINCT opportunity_id, seg FROM k_stage_history
              WHERE seg IS NOT NULL AND stage IN (SELECT value FROM json_each(:stages)))
        GROUP BY opportunity_id),
    groups AS MATERIALIZED (
        SELECT count(*) AS n, o.owner_id, o.team, m.segs
        FROM masks m JOIN k_opps o ON o.id = m.opportunity_id
        GROUP BY o.owner_id, o.team, m.segs)
    SELECT NULL AS rec, p.label AS period, g.owner_id AS user_id, g.team, g.n AS proposals
    FROM groups g JOIN k_periods p ON g.segs & ((1 << p.hi) - (1 << p.lo)) <> 0
    WHERE p.kind <> 'all'""",
    OTU,
    ("proposals",),
    by="period",
    params=_proposal_stages,
    max_segments=MASK_BITS,
)

PROPOSALS = Family(
    "opp_proposals",
    """SELECT DISTINCT o.id AS rec, p.label AS period, o.owner_id AS user_id, o.team,
           1 AS proposals
    FROM k_opps o
    JOIN k_stage_history h ON h.opportunity_id = o.id
    JOIN k_periods p ON h.entered_at >= p.start AND h.entered_at < p."end"
    WHERE h.stage IN (SELECT value FROM json_each(:stages))
      AND p.kind <> 'all'""",
    OTU,
    ("proposals",),
    by="period",
    params=_proposal_stages,
    fast=PROPOSALS_BY_MASK,
)


def _quotas(ctx: Context) -> dict[tuple[str, str], float]:
    """Quota per (grain:key, period) for quotas whose dates equal a period exactly."""

    def build() -> dict[tuple[str, str], float]:
        rows = ctx.query(
            """SELECT q.user_id, q.team, u.team, p.label, q.amount
            FROM k_quotas q
            JOIN k_periods p ON substr(q.period_start, 1, 10) = p.start_date
                            AND substr(q.period_end, 1, 10) = p.end_date
            LEFT JOIN k_users u ON u.id = q.user_id
            WHERE q.amount IS NOT NULL"""
        )
        user: dict[tuple[str, str], float] = defaultdict(float)
        team: dict[tuple[str, str], float] = defaultdict(float)
        members: dict[tuple[str, str], float] = defaultdict(float)
        for user_id, quota_team, user_team, period, amount in rows:
            if user_id is not None:
                user[(f"user:{user_id}", period)] += amount
                if user_team is not None:
                    members[(f"team:{user_team}", period)] += amount
            elif quota_team is not None:
                team[(f"team:{quota_team}", period)] += amount
        return {**user, **members, **team}  # a team's own quota wins over its members' sum

    return ctx.memo("quotas", build)


@dataclass
class QuotaAttainment(Compute):
    """revenue_won ÷ the quota whose period is exactly P; null without a quota."""

    uses = (CLOSED,)

    def values(self, ctx: Context, grain: str) -> dict[tuple[str, str], tuple[Any, Any, Any]]:
        i = CLOSED.measures.index("revenue")
        revenue = {(k, p): v[i] for (g, k, p), v in sums(ctx, CLOSED).items() if g == grain}
        quotas = _quotas(ctx)
        out = {}
        for key in ctx.universe(grain):
            for period in (p for p, per in ctx.periods.items() if per.start_date):
                quota = quotas.get((f"{grain}:{key}", period))
                won = revenue.get((key, period), 0)
                out[(key, period)] = (won / quota if quota else None, won, quota)
        return out


@dataclass
class RepsAtQuota(Compute):
    """Share of reps with a quota for P whose attainment is ≥ 1."""

    uses = (CLOSED,)

    def __post_init__(self) -> None:
        self.fill = (None, 0, 0)

    def values(self, ctx: Context, grain: str) -> dict[tuple[str, str], tuple[Any, Any, Any]]:
        i = CLOSED.measures.index("revenue")
        revenue = {(k, p): v[i] for (g, k, p), v in sums(ctx, CLOSED).items() if g == "user"}
        teams = dict(ctx.query("SELECT id, team FROM k_users"))
        counts: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])
        for (name, period), quota in _quotas(ctx).items():
            if not name.startswith("user:"):
                continue
            user = name[5:]
            key = "" if grain == "org" else teams.get(user)
            if key is None:
                continue
            count = counts[(key, period)]
            count[1] += 1
            count[0] += bool(quota > 0 and revenue.get((user, period), 0) >= quota)
        return {kp: (n / d if d else None, n, d) for kp, (n, d) in counts.items()}


ACCOUNT_EXPANSION = RecordSql(
    f"""SELECT account_id, sum(CASE WHEN deal_type IN {EXPANSION_TYPES} THEN coalesce(amount, 0) ELSE 0 END),
           NULL, NULL
    FROM k_opps WHERE won AND account_id IS NOT NULL GROUP BY account_id""",
    fill_value=(0, None, None),
)
DAYS_OPEN = RecordSql(
    """SELECT id, (unixepoch(coalesce(closed_at, :as_of)) - unixepoch(created_at)) / 86400.0,
           NULL, NULL
    FROM k_opps"""
)
# the latest stage entry is looked up for open opportunities only (a few percent)
DAYS_IN_CURRENT_STAGE = RecordSql(
    """SELECT o.id, CASE WHEN o.closed_at IS NULL THEN
               (unixepoch(:as_of) - unixepoch(coalesce(
                   (SELECT max(h.entered_at) FROM k_stage_history h
                    WHERE h.opportunity_id = o.id),
                   o.created_at))) / 86400.0
           END, NULL, NULL
    FROM k_opps o"""
)

# fmt: off
A = "A"
for defn in (
    KpiDef("deals_won", "Deals won", "count", ("org", "team", "user", "region", "channel"),
           "opportunities won in P", "002 field sales", A, compute=Total(CLOSED, "won")),
    KpiDef("revenue_won", "Revenue won", "currency",
           ("org", "team", "user", "region", "channel"),
           "sum of amount won in P (at region grain: sales volume by location)",
           "002 #1, 004 sales by region", A, compute=Total(CLOSED, "revenue")),
    KpiDef("average_deal_size", "Average deal size", "currency",
           ("org", "team", "user", "region"), "revenue_won / deals_won", "002 field sales", A,
           compute=Ratio(CLOSED, "revenue", "won"),
           notes="a quotient of two KPIs: numerator revenue_won, denominator deals_won"),
    KpiDef("win_rate", "Win rate", "ratio", ("org", "team", "user", "region", "channel"),
           "won in P / (won + lost in P)", "002 field sales", A,
           compute=Ratio(CLOSED, "won", "decided")),
    KpiDef("win_loss_ratio", "Win/loss ratio", "multiple", OTU, "won in P / lost in P",
           "002 SDR win/loss", A, compute=Ratio(CLOSED, "won", "lost")),
    KpiDef("close_ratio", "Close ratio", "ratio", OTU,
           "won in P / opportunities worked in P (created before end, not closed before start)",
           "002 #7", A, compute=Ratio(WORKED, "won", "worked")),
    KpiDef("sales_cycle_days", "Sales cycle (days)", "days", ("org", "team", "user", "region"),
           "median of closed_at - created_at over won in P", "002 #6", A,
           compute=Median(CYCLE)),
    KpiDef("new_opportunities", "New opportunities", "count", ("org", "team", "user", "channel"),
           "opportunities created in P", "002 new opportunity volume", A,
           compute=Total(CREATED, "opened")),
    KpiDef("new_pipeline_amount", "New pipeline amount", "currency",
           ("org", "team", "user", "channel"), "sum of amount of opportunities created in P",
           "002 new opportunity volume", A, compute=Total(CREATED, "pipeline")),
    KpiDef("proposals_sent", "Proposals sent", "count", OTU,
           "opportunities entering a configured proposal stage in P (each once per period)",
           "002 BDR", A, compute=Total(PROPOSALS, "proposals")),
    KpiDef("quota_attainment", "Quota attainment", "ratio", ("team", "user"),
           "revenue_won / quota whose period equals P (team: team quota, else members' sum)",
           "002, 004 revenue vs target", A, periods=("fixed",), compute=QuotaAttainment(),
           notes="months, quarters and years only (a quota never equals a rolling window); "
           "a user's or team's revenue_won follows the opportunity owner"),
    KpiDef("reps_at_quota", "Reps at quota", "ratio", ("org", "team"),
           "share of reps with a quota for P whose quota_attainment >= 1", "002 BDR", A,
           periods=("fixed",), compute=RepsAtQuota()),
    KpiDef("upsell_cross_sell_rate", "Upsell/cross-sell rate", "ratio", OTU,
           "won in P with deal_type upsell or cross_sell / won in P", "002 #5", A,
           compute=Ratio(CLOSED, "expansion", "won")),
    KpiDef("expansion_revenue", "Expansion revenue", "currency", (*OTU, "account"),
           "sum of amount won in P with deal_type upsell or cross_sell", "003 #9", A,
           record_periods={"account": ("all",)}, compute=ByGrain(Total(CLOSED, "expansion_revenue"), {"account": ACCOUNT_EXPANSION}),
           notes="account grain, period all: the account's upsell revenue up to as_of"),
    KpiDef("referral_revenue", "Referral revenue", "currency", OTU,
           "revenue_won where channel = referral", "003 #4", A,
           compute=Total(CLOSED, "referral_revenue")),
    KpiDef("competitor_price_gap", "Price gap to competitor", "ratio", OTU,
           "mean of (amount - competitor_price) / competitor_price over won in P with both set",
           "002 #2", A, compute=Mean(CLOSED, "price_gap", "priced"),
           notes="may be negative; a competitor price of 0 is left out (no gap defined)"),
    KpiDef("days_open", "Days open", "days", ("opportunity",),
           "as_of - created_at while open; closed_at - created_at once closed", "002", A,
           periods=("all",), compute=DAYS_OPEN, age=True),
    KpiDef("days_in_current_stage", "Days in current stage", "days", ("opportunity",),
           "as_of - latest stage-history entered_at (else created_at), open opportunities",
           "002", A, periods=("all",), compute=DAYS_IN_CURRENT_STAGE, age=True,
           notes="null for closed opportunities"),
):
    register(defn)
# fmt: on
