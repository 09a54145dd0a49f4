"""D. Customers and accounts (kpi-catalog.md §D), attributed to the account owner.

Inbound questions (average_response_hours, answered_inbound_rate) are a
population of activities and cases, so they go to the activity's or the
case's owner (catalog, attribution: the row follows what the KPI counts).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any

from kpisync.kpi.aggregate import ByGrain, Compute, Mean, Ratio, Total
from kpisync.kpi.context import Context
from kpisync.kpi.families import Family
from kpisync.kpi.registry import KpiDef, register
from kpisync.timestamps import format_ts, parse_ts

OTU = ("org", "team", "user")
OTUR = ("org", "team", "user", "region")

NEVER = 1_000_000  # a segment after every period: not churned, no second deal

# Customer state per period from segment positions (a period is segments [lo, hi)):
# accounts with the same owner and the same since/churn/second-deal segments are
# counted together, so the cost does not grow with accounts x periods. Then the
# revenue won on the accounts, and their touches and call/meeting minutes in P
# for accounts that are customers at its end, summed per segment for accounts
# alike in the same way before they are spread over periods (0.6 s instead of
# 3.8 s on the large bench org; the seconds are summed whole, then turned into
# minutes once per group).
CUSTOMERS = Family(
    "customers",
    f"""WITH grouped AS (
        SELECT owner_id, team, region, since_seg, coalesce(churn_seg, {NEVER}) AS churn_seg,
               coalesce(second_seg, {NEVER}) AS second_seg, count(*) AS n, group_concat(id, ' ') AS ids
        FROM k_accounts WHERE customer_since IS NOT NULL
        GROUP BY owner_id, team, region, since_seg, churn_seg, second_seg),
    engaged AS (
        SELECT a.owner_id, a.team, a.region, a.since_seg, coalesce(a.churn_seg, {NEVER}) AS churn_seg, x.seg,
               sum(x.engaged) AS engaged, sum(x.seconds) AS seconds, group_concat(a.id, ' ') AS ids
        FROM k_account_seg x JOIN k_accounts a ON a.id = x.account_id
        WHERE a.customer_since IS NOT NULL
        GROUP BY a.owner_id, a.team, a.region, a.since_seg, churn_seg, x.seg)
    SELECT g.ids AS rec, p.label AS period, g.owner_id AS user_id, g.team, g.region,
           g.n * (g.since_seg < p.lo AND g.churn_seg >= p.lo) AS at_start,
           g.n * (g.since_seg < p.hi AND g.churn_seg >= p.hi) AS at_end,
           g.n * (g.since_seg >= p.lo AND g.since_seg < p.hi) AS new,
           g.n * (g.since_seg < p.lo AND g.churn_seg >= p.hi) AS retained,
           g.n * (g.since_seg < p.lo AND g.churn_seg >= p.lo AND g.churn_seg < p.hi) AS churned,
           g.n * (g.since_seg < p.hi AND g.churn_seg >= p.hi AND g.second_seg < p.hi) AS repeat,
           0 AS revenue, 0 AS engaged, 0 AS minutes
    FROM grouped g JOIN k_periods p
    UNION ALL
    SELECT o.id, ps.period, a.owner_id, a.team, a.region, 0, 0, 0, 0, 0, 0, coalesce(o.amount, 0), 0, 0
    FROM k_opps o JOIN k_accounts a ON a.id = o.account_id JOIN k_period_seg ps ON ps.seg = o.closed_seg
    WHERE o.won
    UNION ALL
    SELECT e.ids, p.label, e.owner_id, e.team, e.region, 0, 0, 0, 0, 0, 0, 0, e.engaged, e.seconds / 60.0
    FROM engaged e JOIN k_period_seg ps ON ps.seg = e.seg JOIN k_periods p ON p.label = ps.period
    WHERE e.since_seg < p.hi AND e.churn_seg >= p.hi""",
    OTUR,
    ("at_start", "at_end", "new", "retained", "churned", "repeat", "revenue", "engaged", "minutes"),
    by="period",
)

# Touches and inbound activities on an account (its own, or a contact's of it).
ACCOUNT_ACTIVITY = Family(
    "account_activity",
    "SELECT account_id AS rec, seg, account_id, engaged FROM k_account_seg WHERE engaged > 0",
    ("account",),
    ("engaged",),
    only=("rolling-90d",),
)

# Inbound activities (at occurred_at) and cases (at created_at), with the time to
# the first later touch on the same person (a case: first_response_at when set).
INBOUND = Family(
    "inbound",
    """SELECT rec, seg, user_id, team, account_id, 1 AS items, answered_at IS NOT NULL AS answered,
           coalesce((unixepoch(answered_at) - unixepoch(asked_at)) / 3600.0, 0) AS hours
    FROM k_inbound""",
    OTU,
    ("items", "answered", "hours"),
)
INBOUND_BY_ACCOUNT = replace(INBOUND, name="inbound_by_account", grains=("account",), only=("rolling-90d",))

SURVEYS = Family(
    "customer_surveys",
    """SELECT id AS rec, seg, account_owner AS user_id, account_team AS team, account_id,
           kind = 'nps' AS nps_n,
           CASE WHEN kind = 'nps' THEN CASE WHEN score >= 9 THEN 100 WHEN score <= 6 THEN -100
                ELSE 0 END ELSE 0 END AS nps_points,
           kind = 'csat' AS csat_n, CASE WHEN kind = 'csat' THEN score ELSE 0 END AS csat_total
    FROM k_surveys WHERE kind IN ('nps', 'csat')""",
    OTU,
    ("nps_n", "nps_points", "csat_n", "csat_total"),
)
SURVEYS_BY_ACCOUNT = replace(SURVEYS, name="customer_surveys_by_account", grains=("account",))

EMPLOYEE_SURVEYS = Family(
    "employee_surveys",
    """SELECT id AS rec, seg, user_id, user_team AS team, 1 AS enps_n,
           CASE WHEN score >= 9 THEN 100 WHEN score <= 6 THEN -100 ELSE 0 END AS enps_points
    FROM k_surveys WHERE kind = 'enps'""",
    ("org", "team"),
    ("enps_n", "enps_points"),
)

YEAR_DAYS = 365.25


def clv_lifetime_years(ctx: Context) -> float:
    """Configured, else 1 ÷ last 365 days' churn (at most the cap), else the cap."""
    settings = ctx.settings
    if settings.clv_lifetime_years is not None:
        return settings.clv_lifetime_years
    year_ago = format_ts(ctx.as_of - timedelta(days=365))
    customers, churned = ctx.query(
        """SELECT count(*), coalesce(sum(churned_at IS NOT NULL), 0) FROM k_accounts
        WHERE customer_since <= :year_ago AND coalesce(churned_at > :year_ago, 1)""",
        {"year_ago": year_ago},
    )[0]
    if not churned:
        return settings.clv_cap_years
    return min(customers / churned, settings.clv_cap_years)


@dataclass
class Clv(Compute):
    """Account: mean won amount × purchases per year × lifetime years; others: mean."""

    def __post_init__(self) -> None:
        self.fill = (None, None, 0)

    def _accounts(self, ctx: Context) -> list[tuple[str, str, str, float | None, bool]]:
        def build() -> list[tuple[str, str, str, float | None, bool]]:
            lifetime = clv_lifetime_years(ctx)
            out = []
            rows = ctx.query(
                """SELECT id, owner_id, team, customer_since, won_count, won_amount,
                          churned_at IS NULL FROM k_accounts"""
            )
            for account, owner, team, since, count, amount, current in rows:
                value = None
                if count:
                    # whole days as a customer: the value holds still between a daemon's cycles of
                    # one day instead of moving by cents each cycle (which the write-back would send)
                    years = (ctx.as_of - parse_ts(since)).days / YEAR_DAYS
                    per_year = count / max(1.0, years)
                    value = (amount or 0) / count * per_year * lifetime
                out.append((account, owner, team, value, bool(count and current)))
            return out

        return ctx.memo("clv", build)

    def values(self, ctx: Context, grain: str) -> dict[tuple[str, str], tuple[Any, Any, Any]]:
        accounts = self._accounts(ctx)
        if grain == "account":
            return {(a, "all"): (v, None, None) for a, _, _, v, _ in accounts}
        groups: dict[str, list[float]] = defaultdict(list)
        for _, owner, team, value, current in accounts:
            key = {"org": "", "user": owner, "team": team}[grain]
            if current and key is not None and value is not None:
                groups[key].append(value)
        return {(k, "all"): (sum(v) / len(v), None, len(v)) for k, v in groups.items()}

    def explain(self, ctx: Context, grain: str, key: str, period: str) -> dict[str, Any]:
        lifetime = clv_lifetime_years(ctx)
        members = [
            (a, v)
            for a, owner, team, v, current in self._accounts(ctx)
            if (grain == "account" and a == key)
            or (
                grain != "account"
                and current
                and v is not None
                and {"org": "", "user": owner, "team": team}[grain] == key
            )
        ]
        return {"denominator": members, "lifetime_years": lifetime}


# fmt: off
D = "D"
for defn in (
    KpiDef("active_customers", "Active customers", "count", OTUR, "customers at end of P",
           "004 number of customers", D, compute=Total(CUSTOMERS, "at_end")),
    KpiDef("new_customers", "New customers", "count", OTUR,
           "accounts whose customer_since is in P", "002, 004", D,
           compute=Total(CUSTOMERS, "new")),
    KpiDef("churned_customers", "Churned customers", "count", OTUR,
           "accounts that were customers before P with churned_at in P", "003 #6", D,
           compute=Total(CUSTOMERS, "churned")),
    KpiDef("churn_rate", "Churn rate", "ratio", OTUR,
           "churned_customers / customers at start of P", "003 #6", D,
           compute=Ratio(CUSTOMERS, "churned", "at_start")),
    KpiDef("retention_rate", "Retention rate", "ratio", OTUR,
           "(customers at end - new_customers) / customers at start of P",
           "002 customer retention", D, compute=Ratio(CUSTOMERS, "retained", "at_start"),
           notes="customers at end - new_customers is taken as the customers at start who "
           "are still customers at end, so a new account churning within P cannot make it "
           "negative"),
    KpiDef("repeat_customer_rate", "Repeat customer rate", "ratio", OTU,
           "customers at end with >= 2 won deals closed by end / customers at end",
           "003 #4, 004", D, compute=Ratio(CUSTOMERS, "repeat", "at_end")),
    KpiDef("average_revenue_per_account", "Average revenue per account", "currency", OTUR,
           "revenue_won in P / customers at end of P", "002", D,
           compute=Ratio(CUSTOMERS, "revenue", "at_end"),
           notes="revenue of the account's won deals, attributed to the account owner"),
    KpiDef("clv", "Customer lifetime value", "currency", (*OTU, "account"),
           "mean won amount x purchases per year x lifetime years; aggregates: mean over "
           "customers at as_of", "003 #1", D, periods=("all",), compute=Clv(),
           notes="lifetime = configured, else 1 / churn of the last 365 days capped at "
           "clv_cap_years, else the cap; years since customer_since counted in whole days, "
           "in 365.25-day years (the value moves once a day, not every cycle)"),
    KpiDef("customer_touches", "Customer touches", "count", (*OTU, "account"),
           "touches + inbound activities on customers in P / customers at end of P",
           "002 #3, 003 #2", D, record_periods={"account": ("rolling-90d",)},
           compute=ByGrain(Ratio(CUSTOMERS, "engaged", "at_end"),
                           {"account": Total(ACCOUNT_ACTIVITY, "engaged")}),
           notes="account grain: the count on that account in the last 90 days"),
    KpiDef("customer_engagement_minutes", "Customer engagement (minutes)", "minutes", OTU,
           "call and meeting minutes on customers in P / customers at end of P", "003 #2", D,
           compute=Ratio(CUSTOMERS, "minutes", "at_end"),
           notes="calls and meetings of either direction"),
    KpiDef("average_response_hours", "Average response (hours)", "hours", (*OTU, "account"),
           "mean hours from inbound activity or case in P to first later touch (case: "
           "first_response_at)", "003 #12", D, record_periods={"account": ("rolling-90d",)},
           compute=ByGrain(Mean(INBOUND, "hours", "answered"),
                           {"account": Mean(INBOUND_BY_ACCOUNT, "hours", "answered")}),
           notes="goes to the activity's or case's owner; unanswered ones are left out"),
    KpiDef("answered_inbound_rate", "Answered inbound rate", "ratio", OTU,
           "answered / all inbound activities and cases in P", "003 #12", D,
           compute=Ratio(INBOUND, "answered", "items")),
    KpiDef("nps", "Net promoter score", "score", (*OTU, "account"),
           "(share of nps scores 9-10 - share 0-6) x 100 over surveys in P",
           "002, 003 #3, 004", D, record_periods={"account": ("calendar", "all")},
           compute=ByGrain(Mean(SURVEYS, "nps_points", "nps_n"),
                           {"account": Mean(SURVEYS_BY_ACCOUNT, "nps_points", "nps_n")}),
           notes="a mean of +100/0/-100 per answer: denominator = answers; account grain "
           "also with period all (every answer up to as_of)"),
    KpiDef("csat", "Customer satisfaction", "score", (*OTU, "account"),
           "mean score of csat surveys in P", "003, 004", D,
           compute=ByGrain(Mean(SURVEYS, "csat_total", "csat_n"),
                           {"account": Mean(SURVEYS_BY_ACCOUNT, "csat_total", "csat_n")})),
    KpiDef("enps", "Employee NPS", "score", ("org", "team"),
           "as nps over enps surveys in P, by the answering user's team", "002 #4, 003 #5", D,
           compute=Mean(EMPLOYEE_SURVEYS, "enps_points", "enps_n")),
):
    register(defn)
# fmt: on
