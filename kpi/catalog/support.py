"""E. Support (kpi-catalog.md §E): cases, attributed to the case owner."""

from __future__ import annotations

from kpisync.kpi.aggregate import Family, Median, Total
from kpisync.kpi.registry import KpiDef, register

GRAINS = ("org", "team", "user", "account")

CASES = Family(
    "cases",
    """SELECT id AS rec, created_seg AS seg, owner_id AS user_id, team, account_id,
           1 AS opened, 0 AS closed FROM k_cases
    UNION ALL
    SELECT id, closed_seg, owner_id, team, account_id, 0, 1 FROM k_cases
    WHERE closed_at IS NOT NULL""",
    GRAINS,
    ("opened", "closed"),
)

# Open at the end of each period: created before it, not closed before it
# (period `all`: open at as_of).
OPEN_CASES = Family(
    "open_cases",
    """SELECT c.id AS rec, p.label AS period, c.owner_id AS user_id, c.team, c.account_id,
           1 AS open
    FROM k_cases c JOIN k_periods p
      ON c.created_at < p."end" AND (c.closed_at IS NULL OR c.closed_at >= p."end")""",
    GRAINS,
    ("open",),
    by="period",
)

RESOLUTION = Family(
    "case_resolution",
    """SELECT id AS rec, closed_seg AS seg, owner_id AS user_id, team, account_id,
           (unixepoch(closed_at) - unixepoch(created_at)) / 3600.0 AS x
    FROM k_cases WHERE closed_at IS NOT NULL""",
    GRAINS,
)

# fmt: off
E = "E"
ACCOUNT_ALL = {"account": ("calendar", "all")}
for defn in (
    KpiDef("cases_opened", "Cases opened", "count", GRAINS, "cases created in P",
           "003 #8, 004 process", E, compute=Total(CASES, "opened")),
    KpiDef("cases_closed", "Cases closed", "count", GRAINS, "cases with closed_at in P",
           "003 #8, 004 process", E, compute=Total(CASES, "closed")),
    KpiDef("open_cases", "Open cases", "count", GRAINS,
           "cases created before end of P and not closed before it", "003 #8, 004", E,
           record_periods=ACCOUNT_ALL, compute=Total(OPEN_CASES, "open"),
           notes="account grain also with period all: open at as_of"),
    KpiDef("case_resolution_hours", "Case resolution (hours)", "hours", GRAINS,
           "median of closed_at - created_at over cases closed in P", "003 #8, 004", E,
           record_periods=ACCOUNT_ALL, compute=Median(RESOLUTION),
           notes="account grain also with period all: every case closed up to as_of"),
):
    register(defn)
# fmt: on
