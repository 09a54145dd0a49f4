"""§C funnel and marketing, on kpi_orgs.build_funnel (February 2026 unless named).

p1: lead 02-01, mql 02-04 (on its converted lead L4, earlier than its own
02-05), sql 02-10, opportunity 02-15, customer 03-01; created 01-10 (L4).
p2: lead 02-02, mql 02-20. p3 (u3): lead 02-03, customer 02-25, created 01-01.
p5 is deleted; p6's lead entry is after as_of.
"""

from __future__ import annotations

import pytest
from kpi_orgs import Org, build_funnel

COVERS = {
    "entered_lead",
    "entered_mql",
    "entered_sql",
    "entered_opportunity",
    "entered_customer",
    "conv_lead_to_mql",
    "conv_mql_to_sql",
    "conv_sql_to_opportunity",
    "conv_opportunity_to_customer",
    "conv_mql_to_customer",
    "conv_lead_to_customer",
    "customer_lifecycle_days",
    "days_in_stage",
    "cost_per_lead",
    "cac",
}


@pytest.fixture
def v(org: Org):
    build_funnel(org)
    return org.compute()


def test_entered_stages(v) -> None:
    assert v.v("entered_lead") == 3  # p1 p2 p3 (p5 deleted)
    assert v.v("entered_lead", "user", "u1") == 2
    assert v.v("entered_lead", "user", "u2") == 0  # L4 is p1, owned by u1
    assert v.v("entered_lead", "team", "T2") == 1
    assert v.v("entered_lead", "channel", "inbound") == 2
    assert v.v("entered_lead", period="2026-03") == 0  # p6's is after as_of
    assert v.v("entered_mql") == 2  # p1 (via L4, once) p2
    assert v.v("entered_sql") == 1
    assert v.v("entered_opportunity") == 1
    assert v.v("entered_customer") == 1  # p3
    assert v.v("entered_customer", period="2026-03") == 1  # p1
    assert v.v("entered_customer", "user", "u3") == 1


def test_cohort_conversions(v, org: Org) -> None:
    assert v.row("conv_lead_to_mql") == (2 / 3, 2, 3)  # p1 p2 of p1 p2 p3
    assert v.v("conv_lead_to_mql", "user", "u3") == 0.0
    assert v.row("conv_mql_to_sql") == (0.5, 1, 2)
    assert v.row("conv_sql_to_opportunity") == (1.0, 1, 1)
    assert v.row("conv_opportunity_to_customer") == (1.0, 1, 1)  # p1 customer 03-01
    assert v.row("conv_mql_to_customer") == (0.5, 1, 2)
    assert v.row("conv_lead_to_customer") == (2 / 3, 2, 3)  # p1 p3
    assert v.v("conv_lead_to_customer", "channel", "outbound") == 0.0
    assert v.row("conv_sql_to_opportunity", "user", "u3") == (None, 0, 0)
    before = org.compute(as_of="2026-02-28T00:00:00Z")
    assert before.row("conv_opportunity_to_customer") == (0.0, 0, 1)


def test_customer_lifecycle_days(v) -> None:
    assert v.row("customer_lifecycle_days") == (55.0, None, 1)  # p3: 01-01 -> 02-25
    assert v.v("customer_lifecycle_days", period="2026-03") == 50.0  # p1: L4 01-10 -> 03-01
    assert v.v("customer_lifecycle_days", "user", "u1") is None


def test_customer_lifecycle_days_leaves_out_people_recorded_after_they_became_customers(org: Org) -> None:
    build_funnel(org)
    # p9 entered the CRM on 02-26, after its customer entry on 02-10 (added with a won deal): its
    # lifecycle length is unknown, not -16 days
    org.contact("p9", "u1", channel="inbound", created_at="2026-02-26T00:00:00Z", lifecycle_stage="customer")
    org.stage("p9", "customer", "2026-02-10T00:00:00Z")
    v = org.compute()
    assert v.row("customer_lifecycle_days") == (55.0, None, 1)  # p3 alone
    assert v.v("customer_lifecycle_days", "user", "u1") is None


def test_days_in_stage(v) -> None:
    assert v.v("days_in_stage", "contact", "p2", "all") == 28.5  # mql 02-20 -> as_of
    assert v.v("days_in_stage", "contact", "p1", "all") == 19.5  # customer 03-01
    assert v.v("days_in_stage", "contact", "p3", "all") == 23.5  # no evangelist entry: latest
    assert v.v("days_in_stage", "contact", "p7", "all") is None  # no entry at all
    assert ("days_in_stage", "contact", "L4", "all") not in v


def test_cost_per_lead(v) -> None:
    # Feb spend: inbound 2800; outbound 3000 over 01-15..02-14 = 30 days, 13 in Feb = 1300
    # contacts created in Feb: p2 (outbound), p7 (inbound); p5 deleted
    assert v.row("cost_per_lead") == (2050.0, 4100.0, 2)
    assert v.v("cost_per_lead", "channel", "inbound") == 2800.0
    assert v.v("cost_per_lead", "channel", "outbound") == 1300.0
    # March: p6 (inbound) created, no spend; p8 is after as_of
    assert v.row("cost_per_lead", "channel", "inbound", "2026-03") == (0.0, 0.0, 1)
    assert v.row("cost_per_lead", period="2025-12") == (None, 0.0, 0)


def test_cac(v) -> None:
    # customer_since in Feb: acc1 (first won w1, inbound); acc2 first won in Jan
    assert v.row("cac") == (4100.0, 4100.0, 1)
    assert v.v("cac", "channel", "inbound") == 2800.0
    assert v.row("cac", "channel", "outbound") == (None, 1300.0, 0)
    assert v.row("cac", period="2026-01") == (1700.0, 1700.0, 1)  # 17 of 30 days of s2
