"""§D customers and accounts, on kpi_orgs.build_customers (February 2026 unless named).

Customers at 02-01: A1 (u1), A3 (u3), A7 (u2); A4 churned in Jan. At 03-01: A1, A2
(new 02-05), A7; A3 churned 02-15. A5 is won after as_of, A6 is deleted, A7's
churn (04-01) is after as_of.
"""

from __future__ import annotations

import pytest
from kpi_orgs import Org, build_customers

from kpisync.kpi.settings import KpiSettings

COVERS = {
    "active_customers",
    "new_customers",
    "churned_customers",
    "churn_rate",
    "retention_rate",
    "repeat_customer_rate",
    "average_revenue_per_account",
    "clv",
    "customer_touches",
    "customer_engagement_minutes",
    "average_response_hours",
    "answered_inbound_rate",
    "nps",
    "csat",
    "enps",
}


@pytest.fixture
def v(org: Org):
    build_customers(org)
    return org.compute()


def test_customer_counts(v) -> None:
    assert v.v("active_customers") == 3  # A1 A2 A7
    assert v.v("active_customers", "user", "u1") == 2
    assert v.v("active_customers", "user", "u3") == 0
    assert v.v("active_customers", "team", "T1") == 3
    assert v.v("active_customers", "region", "EU") == 3
    assert v.v("active_customers", period="2026-03") == 3  # A5 won after as_of
    assert v.v("new_customers") == 1 and v.v("new_customers", "user", "u1") == 1
    assert v.v("churned_customers") == 1  # A3
    assert v.v("churned_customers", "region", "US") == 1
    assert v.v("churned_customers", "team", "T1") == 0


def test_churn_and_retention(v) -> None:
    assert v.row("churn_rate") == (1 / 3, 1, 3)
    assert v.v("churn_rate", "user", "u3") == 1.0
    assert v.v("churn_rate", "user", "u1") == 0.0
    assert v.row("churn_rate", "user", "u1", "2025-05") == (None, 0, 0)
    assert v.row("retention_rate") == (2 / 3, 2, 3)  # A1 A7 of A1 A3 A7
    assert v.v("retention_rate", "user", "u1") == 1.0
    assert v.v("retention_rate", "user", "u3") == 0.0


def test_repeat_and_revenue_per_account(v) -> None:
    assert v.row("repeat_customer_rate") == (1 / 3, 1, 3)  # A1 won twice
    assert v.v("repeat_customer_rate", "user", "u1") == 0.5
    # revenue won in Feb on accounts: A1 500 + A2 2000, over 3 customers at end
    assert v.row("average_revenue_per_account") == (2500 / 3, 2500, 3)
    assert v.v("average_revenue_per_account", "user", "u1") == 1250.0
    assert v.v("average_revenue_per_account", "region", "US") is None


def test_clv_per_account_and_mean(v) -> None:
    # nobody was a customer 365 days before as_of, so lifetime = cap 10;
    # every account is a customer for under a year: purchases/year = won count
    assert v.v("clv", "account", "A1", "all") == 750 * 2 * 10  # mean (1000+500)/2
    assert v.v("clv", "account", "A2", "all") == 2000 * 1 * 10
    assert v.v("clv", "account", "A3", "all") == 3000 * 10  # churned, still has a value
    assert v.v("clv", "account", "A5", "all") is None  # won after as_of
    assert v.row("clv", "org", "", "all") == ((15000 + 20000 + 1000) / 3, None, 3)
    assert v.v("clv", "user", "u1", "all") == 17500.0
    assert v.v("clv", "user", "u2", "all") == 1000.0  # A4 churned, only A7
    assert ("clv", "org", "", "2026-02") not in v


def test_seed_clv_200_times_80_times_11(org: Org) -> None:
    org.user("u1")
    org.account("A", "u1")
    org.store.upsert(
        "opportunities",
        [
            {
                "id": f"o{i}",
                "owner_id": "u1",
                "account_id": "A",
                "amount": 200.0,
                "is_won": 1,
                "is_closed": 1,
                "created_at": "2025-04-01T00:00:00Z",
                "closed_at": f"2025-{4 + i // 10:02d}-{1 + i % 10:02d}T00:00:00Z",
                "is_deleted": 0,
            }
            for i in range(80)
        ],
    )  # 80 purchases of 200 within the last year; lifetime configured as 11 years
    v = org.compute(settings=KpiSettings(clv_lifetime_years=11))
    assert v.v("clv", "account", "A", "all") == pytest.approx(176_000, rel=1e-12)


def test_clv_lifetime_from_last_years_churn(org: Org) -> None:
    org.user("u1")
    for i in range(4):  # 4 customers a year before as_of, 1 churned since: lifetime 4 years
        org.account(f"A{i}", "u1", churned_at="2025-12-01T00:00:00Z" if i == 0 else None)
        org.opp(
            f"o{i}",
            "u1",
            "2024-01-01T00:00:00Z",
            "2024-03-20T00:00:00Z",
            won=True,
            amount=100,
            account_id=f"A{i}",
        )
    v = org.compute()
    # 730.5 days as a customer, counted in whole days: 730 / 365.25 years, 1 purchase in that
    # time; 100 x (365.25 / 730) a year x 4 years
    assert v.v("clv", "account", "A1", "all") == pytest.approx(100 * 365.25 / 730 * 4, rel=1e-12)
    capped = org.compute(settings=KpiSettings(clv_cap_years=3))
    assert capped.v("clv", "account", "A1", "all") == pytest.approx(100 * 365.25 / 730 * 3, rel=1e-12)
    # the same all day: a daemon's next cycles find nothing to write back; the next day moves it
    later = org.compute(as_of="2026-03-20T23:59:00Z").v("clv", "account", "A1", "all")
    assert later == v.v("clv", "account", "A1", "all")
    next_day = org.compute(as_of="2026-03-21T00:00:00Z").v("clv", "account", "A1", "all")
    assert next_day == pytest.approx(100 * 365.25 / 731 * 4, rel=1e-12)


def test_customer_touches(v) -> None:
    # on customers at end of Feb: x1 (A1), x2 x6 y1 (A2 via contact cA2); x3 y2 on A3
    assert v.row("customer_touches") == (4 / 3, 4, 3)
    assert v.v("customer_touches", "user", "u1") == 2.0
    assert v.row("customer_touches", "user", "u3") == (None, 0, 0)
    # account grain, last 90 days: touches and inbound, x4 is a task, x7 deleted
    assert v.v("customer_touches", "account", "A1", "rolling-90d") == 2  # x1 x5
    assert v.v("customer_touches", "account", "A2", "rolling-90d") == 3
    assert v.v("customer_touches", "account", "A3", "rolling-90d") == 2
    assert v.v("customer_touches", "account", "A4", "rolling-90d") == 0


def test_customer_engagement_minutes(v) -> None:
    # x1 600 s + x6 1200 s = 30 minutes on customers at end; x3 on churned A3
    assert v.row("customer_engagement_minutes") == (10.0, 30.0, 3)
    assert v.v("customer_engagement_minutes", "user", "u1") == 15.0


def test_average_response_hours(v) -> None:
    # x2 (u1) answered by y1 after 3 h; x6 (u1) never; case k1 (u3) first response 5 h;
    # case k2 (u3) answered by y2 on its contact after 10 h
    assert v.row("average_response_hours") == (6.0, None, 3)
    assert v.v("average_response_hours", "user", "u1") == 3.0
    assert v.v("average_response_hours", "user", "u3") == 7.5
    assert v.v("average_response_hours", "account", "A2", "rolling-90d") == 3.0
    assert v.v("average_response_hours", "account", "A3", "rolling-90d") == 7.5
    assert ("average_response_hours", "account", "A1", "rolling-90d") not in v  # null: no row


def test_answered_inbound_rate(v) -> None:
    assert v.row("answered_inbound_rate") == (0.75, 3, 4)
    assert v.v("answered_inbound_rate", "user", "u1") == 0.5
    assert v.v("answered_inbound_rate", "team", "T2") == 1.0
    assert v.row("answered_inbound_rate", "user", "u1", "2026-03") == (0.0, 0, 1)  # x5


def test_nps(v) -> None:
    # Feb: 10, 9 promoters; 7 passive; 3 detractor -> (2 - 1) / 4 x 100 = 25
    assert v.row("nps") == (25.0, None, 4)
    assert v.v("nps", "user", "u1") == 25.0
    assert v.v("nps", "account", "A1") == 100.0
    assert v.v("nps", "account", "A2") == -50.0
    assert v.v("nps", "account", "A1", "all") == 100.0  # s5 (a 0) is after as_of
    assert v.row("nps", "user", "u3") == (None, None, 0)


def test_seed_nps_is_promoters_minus_detractors(org: Org) -> None:
    org.user("u1")
    org.account("A", "u1")
    for i, score in enumerate([10, 9, 9, 10, 9, 8, 7, 7, 6, 0]):  # 50 % - 20 % = 30
        org.survey(f"s{i}", "nps", score, "2026-02-10T00:00:00Z", account_id="A")
    assert org.compute().v("nps") == pytest.approx(30.0, rel=1e-12)


def test_csat(v) -> None:
    assert v.row("csat") == (4.5, None, 2)  # 4 on A1, 5 by cA2 of A2
    assert v.v("csat", "account", "A2") == 5.0
    assert v.v("csat", "user", "u1") == 4.5


def test_enps(v) -> None:
    # 10 9 promoters, 5 detractor, 8 passive: (2 - 1) / 4 x 100
    assert v.row("enps") == (25.0, None, 4)
    assert v.v("enps", "team", "T1") == 0.0  # 10, 5, 8
    assert v.v("enps", "team", "T2") == 100.0
