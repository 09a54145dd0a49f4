"""§B activity, SDR and BDR, on kpi_orgs.build_activity (February 2026 unless named).

Touches in Feb: u1 t1 (call, c1), t3 (email, c2), r2 (call, c2, positive),
m1 (meeting, c2, canceled); u2 t2 (email on lead L1 = person c1); u3 t4
(meeting, c3, booked 02-04). r1 is an inbound email on c1. x1 is deleted, f1 is
a meeting booked 03-19 for 03-21, f2 a call logged after as_of, k1 a task.
"""

from __future__ import annotations

import pytest
from kpi_orgs import Org, build_activity

COVERS = {
    "touches",
    "calls",
    "emails",
    "meetings",
    "touches_per_day",
    "activity_to_opportunity",
    "lead_response_minutes",
    "lead_contact_rate",
    "response_rate",
    "positive_response_rate",
    "meeting_booking_rate",
    "touches_to_close",
    "lead_conversion_rate",
    "acquisition_rate",
}


@pytest.fixture
def v(org: Org):
    build_activity(org)
    return org.compute()


def test_touch_counts_go_to_the_activity_owner(v) -> None:
    assert v.v("touches") == 6
    assert v.v("touches", "user", "u1") == 4  # t1 t3 r2 m1 (x1 deleted, k1 a task)
    assert v.v("touches", "user", "u2") == 1  # t2, on a lead another rep's contact became
    assert v.v("touches", "team", "T1") == 5
    assert v.v("touches", "team", "T2") == 1
    assert v.v("touches", period="2026-03") == 0  # f1 not happened yet, f2 not logged yet
    assert v.v("calls") == 2 and v.v("calls", "user", "u1") == 2  # t1 r2
    assert v.v("emails") == 2 and v.v("emails", "user", "u2") == 1  # t2 t3
    assert v.v("meetings") == 2 and v.v("meetings", "team", "T2") == 1  # m1 t4


def test_touches_so_far_on_a_contact(v) -> None:
    assert v.v("touches", "contact", "c1", "all") == 2  # t1 + t2 on its converted lead
    assert v.v("touches", "contact", "c2", "all") == 3  # t3 r2 m1
    assert v.v("touches", "contact", "c4", "all") == 0
    assert ("touches", "contact", "L1", "all") not in v  # the lead is the person c1


def test_touches_per_working_day(v) -> None:
    # February 2026 has 20 weekdays; March up to Friday the 20th has 15
    assert v.row("touches_per_day") == (6 / 20, 6, 20)
    assert v.v("touches_per_day", "user", "u3") == 1 / 20
    assert v.row("touches_per_day", period="2026-03") == (0.0, 0, 15)
    assert v.row("touches_per_day", period="rolling-7d")[2] == 5


def test_activity_to_opportunity_uses_the_creator(v) -> None:
    # o1 created by u2 (owner u1), o2 by its owner u1
    assert v.row("activity_to_opportunity") == (2 / 6, 2, 6)
    assert v.v("activity_to_opportunity", "user", "u1") == 0.25
    assert v.v("activity_to_opportunity", "user", "u2") == 1.0
    assert v.v("activity_to_opportunity", "user", "u3") == 0.0


def test_lead_response_minutes(v) -> None:
    # c1: mql (on its lead) 02-02 00:00 -> t1 01:00 = 60 (t2 came before the mql);
    # c2: created 02-03 00:00 -> t3 00:30 = 30; c3: created 02-05 -> t4 02-06 = 1440
    assert v.v("lead_response_minutes", "contact", "c1", "all") == 60.0
    assert v.v("lead_response_minutes", "contact", "c2", "all") == 30.0
    assert v.v("lead_response_minutes", "contact", "c3", "all") == 1440.0
    assert v.v("lead_response_minutes", "contact", "c4", "all") is None  # never touched
    assert v.row("lead_response_minutes") == (60.0, None, 3)
    assert v.v("lead_response_minutes", "user", "u1") == 45.0  # c1 c2 are u1's
    assert v.row("lead_response_minutes", "user", "u2") == (None, None, 0)


def test_lead_contact_rate(v) -> None:
    # mql in Feb: c1 (touched after), c4 (never); cx is deleted
    assert v.row("lead_contact_rate") == (0.5, 1, 2)
    assert v.v("lead_contact_rate", "user", "u1") == 1.0
    assert v.v("lead_contact_rate", "user", "u3") == 0.0
    assert v.v("lead_contact_rate", "channel", "inbound") == 0.5


def test_response_rates(v) -> None:
    # contacted in Feb: c1 c2 c3; responded: c1 (r1), c2 (r2); positive: c2
    assert v.row("response_rate") == (2 / 3, 2, 3)
    assert v.row("positive_response_rate") == (1 / 3, 1, 3)
    assert v.v("response_rate", "user", "u1") == 1.0  # c1 c2 belong to u1
    assert v.v("positive_response_rate", "user", "u1") == 0.5
    assert v.v("response_rate", "user", "u3") == 0.0
    assert v.v("response_rate", "team", "T1") == 1.0
    # first touch in Feb: c1 email (t2), c2 email (t3), c3 meeting
    assert v.row("response_rate", "activity_type", "email") == (1.0, 2, 2)
    assert v.v("response_rate", "activity_type", "meeting") == 0.0
    assert v.row("response_rate", "activity_type", "call") == (None, 0, 0)


def test_seed_positive_response_rate_50_contacted_3_positive(org: Org) -> None:
    org.user("u1")
    for i in range(50):  # 002: 50 contacted, 3 positive = 0.06
        org.contact(f"p{i}", "u1")
        org.act(
            f"a{i}",
            "u1",
            "2026-02-10T00:00:00Z",
            contact_id=f"p{i}",
            outcome="positive" if i < 3 else "no_answer",
        )
    assert org.compute().row("positive_response_rate") == (0.06, 3, 50)


def test_meeting_booking_rate(v) -> None:
    # booked in Feb: t4 (u3; m1 canceled); responses in Feb: r1 r2 (u1)
    assert v.row("meeting_booking_rate") == (0.5, 1, 2)
    assert v.v("meeting_booking_rate", "user", "u1") == 0.0
    assert v.row("meeting_booking_rate", "user", "u3") == (None, 1, 0)
    assert v.row("meeting_booking_rate", "user", "u1", "2026-03") == (None, 1, 0)  # f1


def test_touches_to_close(v) -> None:
    # o1 (won 02-10, contact c2): r2 (on o1) + t3 and m1 (on c2, no deal) = 3
    assert v.v("touches_to_close", "opportunity", "o1", "all") == 3
    assert v.v("touches_to_close", "opportunity", "o2", "all") == 1  # open: t4 so far
    assert v.row("touches_to_close") == (3.0, None, 1)
    assert v.v("touches_to_close", "user", "u1") == 3.0
    assert v.row("touches_to_close", "user", "u2") == (None, None, 0)


def test_lead_conversion_rate(v) -> None:
    # lead entries in Feb: c2 (opportunity 02-10), c3 (none); cx is deleted
    assert v.row("lead_conversion_rate") == (0.5, 1, 2)
    assert v.v("lead_conversion_rate", "user", "u1") == 1.0
    assert v.v("lead_conversion_rate", "user", "u3") == 0.0
    assert v.v("lead_conversion_rate", "channel", "outbound") == 1.0


def test_acquisition_rate(v) -> None:
    # contacted in Feb: c1 c2 c3; c2 became a customer 03-01 (by as_of)
    assert v.row("acquisition_rate") == (1 / 3, 1, 3)
    assert v.v("acquisition_rate", "user", "u1") == 0.5
    assert v.v("acquisition_rate", "activity_type", "email") == 0.5


def test_acquisition_rate_before_the_customer_entry(org: Org) -> None:
    build_activity(org)
    assert org.compute(as_of="2026-02-28T00:00:00Z").v("acquisition_rate") == 0.0


def test_seed_acquisition_rate_1500_contacted_480_customers(org: Org) -> None:
    org.user("u1")
    rows = []
    for i in range(1500):  # 003 #7: 1,500 prospects contacted, 480 customers = 0.32
        org.contact(f"p{i}", "u1")
        rows.append(i)
    org.store.upsert(
        "activities",
        [
            {
                "id": f"a{i}",
                "type": "email",
                "direction": "outbound",
                "owner_id": "u1",
                "contact_id": f"p{i}",
                "occurred_at": "2026-02-10T00:00:00Z",
                "created_at": "2026-02-10T00:00:00Z",
                "is_deleted": 0,
            }
            for i in rows
        ],
    )
    org.store.upsert(
        "lifecycle_events",
        [
            {
                "contact_id": f"p{i}",
                "stage": "customer",
                "entered_at": "2026-03-01T00:00:00Z",
                "source": "won",
            }
            for i in rows[:480]
        ],
    )
    v = org.compute()
    assert v.row("acquisition_rate") == (0.32, 480, 1500)
    assert v.v("acquisition_rate", "activity_type", "email") == 0.32
