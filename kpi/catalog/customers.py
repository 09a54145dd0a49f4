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

from kpisync.kpi.aggregate import ByGrain, Compute, Family, Mean, Ratio, Total
from kpisync.kpi.context import Context
from kpisync.kpi.registry import KpiDef, register
from kpisync.timestamps import format_ts, parse_ts

OTU = ("org", "team", "user")
OTUR = ("org", "team", "user", "region")

# Each customer account in each period: customer at start / at end, new, churned,
# repeat, its revenue won in P, and its touches and call/meeting minutes in P.
CUSTOMERS = Family(
    "customers",
    """WITH a_seg AS (
        SELECT account_id, seg, sum(is_touch OR is_inbound) AS engaged,
               sum(CASE WHEN type IN ('call', 'meeting') THEN coalesce(duration_s, 0) END)
                   AS seconds
        FROM k_acts WHERE account_id IS NOT NULL AND seg IS NOT NULL GROUP BY account_id, seg),
    a_per AS (
        SELECT account_id, ps.period, sum(engaged) AS engaged, sum(seconds) AS seconds
        FROM a_seg JOIN k_period_seg ps ON ps.seg = a_seg.seg GROUP BY account_id, ps.period),
    r_per AS (
        SELECT o.account_id, ps.period, sum(coalesce(o.amount, 0)) AS revenue
        FROM k_opps o JOIN k_period_seg ps ON ps.seg = o.closed_seg
        WHERE o.won GROUP BY o.account_id, ps.period),
    state AS (
        SELECT a.id, a.owner_id, a.team, a.region, a.churned_at, p.label AS period, p.start,
               p."end",
               a.customer_since < p.start AND coalesce(a.churned_at >= p.start, 1) AS at_start,
               a.customer_since < p."end" AND coalesce(a.churned_at >= p."end", 1) AS at_end,
               a.customer_since >= p.start AND a.customer_since < p."end" AS new,
               coalesce(a.second_won_at < p."end", 0) AS repeat_won
        FROM k_accounts a JOIN k_periods p WHERE a.customer_since IS NOT NULL)
    SELECT s.id AS rec, s.period, s.owner_id AS user_id, s.team, s.region,
           s.at_start, s.at_end, s.new, s.at_start AND s.at_end AS retained,
           s.at_start AND s.churned_at >= s.start AND s.churned_at < s."end" AS churned,
           s.at_end AND s.repeat_won AS repeat, coalesce(r.revenue, 0) AS revenue,
           CASE WHEN s.at_end THEN coalesce(x.engaged, 0) ELSE 0 END AS engaged,
           CASE WHEN s.at_end THEN coalesce(x.seconds, 0) / 60.0 ELSE 0 END AS minutes
    FROM state s
    LEFT JOIN a_per x ON x.account_id = s.id AND x.period = s.period
    LEFT JOIN r_per r ON r.account_id = s.id AND r.period = s.period""",
    OTUR,
    (
        "at_start",
        "at_end",
        "new",
        "retained",
        "churned",
        "repeat",
        "revenue",
        "engaged",
        "minutes",
    ),
    by="period",
)

# Touches and inbound activities on an account (its own, or a contact's of it).
ACCOUNT_ACTIVITY = Family(
    "account_activity",
    """SELECT id AS rec, seg, account_id, 1 AS engaged FROM k_acts
    WHERE account_id IS NOT NULL AND (is_touch OR is_inbound)""",
    ("account",),
    ("engaged",),
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
INBOUND_BY_ACCOUNT = replace(INBOUND, name="inbound_by_account", grains=("account",))

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
                    years = (ctx.as_of - parse_ts(since)).total_seconds() / 86400 / YEAR_DAYS
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
           "clv_cap_years, else the cap; years since customer_since in 365.25-day years"),
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
