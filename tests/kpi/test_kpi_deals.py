"""§A deals and pipeline, on kpi_orgs.build_deals (February 2026 unless named).

Won in Feb: o1 (u1, 1000, referral, a1/EU), o2 (u1, 500, upsell, a1/EU),
o4 (u2, 2000, cross_sell, region APAC). Lost: o3 (u1). o7 is deleted, o8 is
won after as_of (so open), o9 is created after as_of.
"""

from __future__ import annotations

import pytest
from kpi_orgs import Org, build_deals

from kpisync.kpi.settings import KpiSettings

COVERS = {
    "deals_won",
    "revenue_won",
    "average_deal_size",
    "win_rate",
    "win_loss_ratio",
    "close_ratio",
    "sales_cycle_days",
    "new_opportunities",
    "new_pipeline_amount",
    "proposals_sent",
    "quota_attainment",
    "reps_at_quota",
    "upsell_cross_sell_rate",
    "expansion_revenue",
    "referral_revenue",
    "competitor_price_gap",
    "days_open",
    "days_in_current_stage",
}


@pytest.fixture
def v(org: Org):
    build_deals(org)
    return org.compute()


def test_deals_won_by_grain(v) -> None:
    assert v.v("deals_won") == 3  # o1 o2 o4; not o7 (deleted), not o8 (won after as_of)
    assert v.v("deals_won", "user", "u1") == 2
    assert v.v("deals_won", "user", "u3") == 0
    assert v.v("deals_won", "team", "T1") == 3
    assert v.v("deals_won", "team", "T2") == 0
    assert v.v("deals_won", "region", "EU") == 2  # o1, o2 take account a1's region
    assert v.v("deals_won", "region", "APAC") == 1  # the opportunity's own region wins
    assert v.v("deals_won", "channel", "referral") == 1
    assert v.v("deals_won", period="2026-03") == 0  # o8 closes 03-25 > as_of
    assert v.v("deals_won", period="2026-Q1") == 3


def test_revenue_and_average_deal_size(v) -> None:
    assert v.v("revenue_won") == 3500  # 1000 + 500 + 2000
    assert v.v("revenue_won", "user", "u1") == 1500
    assert v.v("revenue_won", "region", "APAC") == 2000
    assert v.row("average_deal_size") == (3500 / 3, 3500, 3)
    assert v.v("average_deal_size", "user", "u1") == 750  # 1500 / 2
    assert v.row("average_deal_size", "user", "u3") == (None, 0, 0)


def test_win_rate_and_win_loss(v) -> None:
    assert v.row("win_rate") == (0.75, 3, 4)  # 3 won / (3 won + 1 lost)
    assert v.v("win_rate", "user", "u1") == 2 / 3
    assert v.v("win_rate", "user", "u2") == 1.0
    assert v.row("win_rate", "user", "u3") == (None, 0, 0)  # nothing closed: null
    assert v.v("win_loss_ratio") == 3.0  # 3 / 1
    assert v.v("win_loss_ratio", "team", "T1") == 3.0
    assert v.row("win_loss_ratio", "user", "u2") == (None, 1, 0)  # no loss: null


def test_close_ratio_counts_worked_opportunities(v) -> None:
    # worked in Feb: o1 o2 o3 o4 o5 o8 (o6 closed in Jan, o9 after as_of) -> 3 / 6
    assert v.row("close_ratio") == (0.5, 3, 6)
    assert v.v("close_ratio", "user", "u1") == 2 / 3  # o1 o2 of o1 o2 o3
    assert v.v("close_ratio", "user", "u2") == 0.5  # o4 of o4 o8
    assert v.v("close_ratio", "user", "u3") == 0.0  # o5 open


def test_sales_cycle_is_median_days(v) -> None:
    # o1 26 days, o2 19, o4 22
    assert v.row("sales_cycle_days") == (22.0, None, 3)
    assert v.v("sales_cycle_days", "user", "u1") == 22.5  # (26 + 19) / 2
    assert v.v("sales_cycle_days", "region", "APAC") == 22.0
    assert v.row("sales_cycle_days", "user", "u3") == (None, None, 0)


def test_new_opportunities_and_pipeline(v) -> None:
    # created in Feb: o2 (500) o4 (2000) o5 (700) o8 (4000); o7 deleted
    assert v.v("new_opportunities") == 4
    assert v.v("new_opportunities", "user", "u2") == 2
    assert v.v("new_opportunities", "channel", "inbound") == 2
    assert v.v("new_opportunities", period="2026-03") == 0  # o9 is after as_of
    assert v.v("new_pipeline_amount") == 7200
    assert v.v("new_pipeline_amount", "user", "u2") == 6000
    assert v.v("new_pipeline_amount", "team", "T2") == 700


def test_proposals_sent_once_per_opportunity(v, org: Org) -> None:
    assert v.v("proposals_sent") == 2  # o1 (twice, counted once), o5; o7 deleted
    assert v.v("proposals_sent", "user", "u1") == 1
    assert v.v("proposals_sent", "team", "T2") == 1
    assert v.v("proposals_sent", period="2026-03") == 0  # o8's entry is after as_of
    custom = org.compute(settings=KpiSettings(proposal_stages=("Negotiation",)))
    assert custom.v("proposals_sent") == 1  # o4


def test_quota_attainment(v) -> None:
    assert v.row("quota_attainment", "user", "u1") == (0.5, 1500, 3000)
    assert v.v("quota_attainment", "user", "u2") == 1.0
    assert v.v("quota_attainment", "user", "u3") == 0.0
    assert v.v("quota_attainment", "team", "T1") == 3500 / 4000  # the team's own quota
    assert v.v("quota_attainment", "team", "T2") == 0.0  # members' sum: 0 / 1000
    assert v.v("quota_attainment", "user", "u1", "2026-Q1") == 0.25  # 1500 / 6000
    assert v.v("quota_attainment", "user", "u2", "2026-Q1") is None  # no Q1 quota
    assert ("quota_attainment", "user", "u1", "rolling-30d") not in v


def test_monthly_and_quarterly_quota_starting_the_same_day(org: Org) -> None:
    build_deals(org)
    # u1 already has a Q1 quota of 6000 (from 2026-01-01); a January one starts the same day
    org.add("quotas", user_id="u1", team="T1", period_start="2026-01-01", period_end="2026-02-01", amount=1000)
    v = org.compute()
    assert v.row("quota_attainment", "user", "u1", "2026-01") == (0.0, 0, 1000)  # nothing won in January
    assert v.row("quota_attainment", "user", "u1", "2026-Q1") == (0.25, 1500, 6000)  # the quarter's quota kept


def test_reps_at_quota(v) -> None:
    assert v.row("reps_at_quota") == (1 / 3, 1, 3)  # u2 of u1 u2 u3
    assert v.v("reps_at_quota", "team", "T1") == 0.5
    assert v.v("reps_at_quota", "team", "T2") == 0.0
    assert v.row("reps_at_quota", period="2026-01") == (None, 0, 0)


def test_upsell_expansion_and_referral(v) -> None:
    assert v.row("upsell_cross_sell_rate") == (2 / 3, 2, 3)  # o2, o4 of 3 won
    assert v.v("upsell_cross_sell_rate", "user", "u1") == 0.5
    assert v.v("expansion_revenue") == 2500
    assert v.v("expansion_revenue", "user", "u1") == 500
    assert v.v("expansion_revenue", "account", "a1", "all") == 500  # o2 up to as_of
    assert v.v("expansion_revenue", "account", "a2", "all") == 0
    assert v.v("referral_revenue") == 1000  # o1
    assert v.v("referral_revenue", "user", "u2") == 0


def test_competitor_price_gap_is_a_mean(v) -> None:
    # o1 (1000 - 800) / 800 = 0.25, o2 (500 - 500) / 500 = 0; o4 has no competitor price
    assert v.row("competitor_price_gap") == (0.125, None, 2)
    assert v.row("competitor_price_gap", "user", "u2") == (None, None, 0)


def test_days_open_and_in_current_stage(v) -> None:
    assert v.v("days_open", "opportunity", "o1", "all") == 26.0  # closed: 01-10 -> 02-05
    assert v.v("days_open", "opportunity", "o5", "all") == 38.5  # open: 02-10 -> as_of
    assert v.v("days_open", "opportunity", "o8", "all") == 33.5  # won after as_of: open
    assert ("days_open", "opportunity", "o7", "all") not in v  # deleted
    assert v.v("days_in_current_stage", "opportunity", "o5", "all") == 36.5  # since 02-12
    assert v.v("days_in_current_stage", "opportunity", "o8", "all") == 33.5  # created
    assert v.v("days_in_current_stage", "opportunity", "o1", "all") is None  # closed


def test_as_of_in_january_sees_only_january(org: Org) -> None:
    build_deals(org)
    v = org.compute(as_of="2026-01-31T00:00:00Z")
    assert v.v("deals_won", period="2026-01") == 0
    assert ("deals_won", "org", "", "2026-02") not in v  # periods end at as_of's month
    assert v.row("win_rate", period="2026-01") == (0.0, 0, 1)  # o6 lost 01-20
