"""E. Support (kpi-catalog.md §E): cases, attributed to the case owner."""

from __future__ import annotations

from dataclasses import replace

from kpisync.kpi.aggregate import ByGrain, Median, Total
from kpisync.kpi.families import Family
from kpisync.kpi.registry import KpiDef, register

GRAINS = ("org", "team", "user", "account")
OTU = ("org", "team", "user")

CASES = Family(
    "cases",
    """SELECT id AS rec, created_seg AS seg, owner_id AS user_id, team, account_id,
           1 AS opened, 0 AS closed FROM k_cases
    UNION ALL
    SELECT id, closed_seg, owner_id, team, account_id, 0, 1 FROM k_cases
    WHERE closed_at IS NOT NULL""",
    OTU,
    ("opened", "closed"),
)
CASES_BY_ACCOUNT = replace(CASES, name="cases_by_account", grains=("account",))

# Open at the end of each period: created before it, not closed before it
# (period `all`: open at as_of).
OPEN_CASES = Family(
    "open_cases",
    """SELECT c.id AS rec, p.label AS period, c.owner_id AS user_id, c.team, c.account_id,
           1 AS open
    FROM k_cases c JOIN k_periods p
      ON c.created_at < p."end" AND (c.closed_at IS NULL OR c.closed_at >= p."end")""",
    OTU,
    ("open",),
    by="period",
)
OPEN_CASES_BY_ACCOUNT = replace(OPEN_CASES, name="open_cases_by_account", grains=("account",))

RESOLUTION = Family(
    "case_resolution",
    """SELECT id AS rec, closed_seg AS seg, owner_id AS user_id, team, account_id,
           (unixepoch(closed_at) - unixepoch(created_at)) / 3600.0 AS x
    FROM k_cases WHERE closed_at IS NOT NULL""",
    OTU,
)
RESOLUTION_BY_ACCOUNT = replace(RESOLUTION, name="case_resolution_by_account", grains=("account",))

# fmt: off
E = "E"
ACCOUNT_ALL = {"account": ("calendar", "all")}
for defn in (
    KpiDef("cases_opened", "Cases opened", "count", GRAINS, "cases created in P",
           "003 #8, 004 process", E, compute=ByGrain(Total(CASES, "opened"), {"account": Total(CASES_BY_ACCOUNT, "opened")})),
    KpiDef("cases_closed", "Cases closed", "count", GRAINS, "cases with closed_at in P",
           "003 #8, 004 process", E, compute=ByGrain(Total(CASES, "closed"), {"account": Total(CASES_BY_ACCOUNT, "closed")})),
    KpiDef("open_cases", "Open cases", "count", GRAINS,
           "cases created before end of P and not closed before it", "003 #8, 004", E,
           record_periods=ACCOUNT_ALL, compute=ByGrain(Total(OPEN_CASES, "open"), {"account": Total(OPEN_CASES_BY_ACCOUNT, "open")}),
           notes="account grain also with period all: open at as_of"),
    KpiDef("case_resolution_hours", "Case resolution (hours)", "hours", GRAINS,
           "median of closed_at - created_at over cases closed in P", "003 #8, 004", E,
           record_periods=ACCOUNT_ALL, compute=ByGrain(Median(RESOLUTION), {"account": Median(RESOLUTION_BY_ACCOUNT)}),
           notes="account grain also with period all: every case closed up to as_of"),
):
    register(defn)
# fmt: on
