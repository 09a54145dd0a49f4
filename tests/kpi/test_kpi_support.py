"""§E support, on kpi_orgs.build_support (February 2026 unless named).

k1 (u1, A1) 02-02 -> 02-04 (48 h); k2 (u1, A1) 01-20 -> 02-10 12:00 (516 h);
k3 (u3, A2) open since 02-15; k4 (u3, A2) 02-20, closed after as_of; k5 deleted;
k6 created after as_of.
"""

from __future__ import annotations

import pytest
from kpi_orgs import Org, build_support

COVERS = {"cases_opened", "cases_closed", "open_cases", "case_resolution_hours"}


@pytest.fixture
def v(org: Org):
    build_support(org)
    return org.compute()


def test_cases_opened_and_closed(v) -> None:
    assert v.v("cases_opened") == 3  # k1 k3 k4
    assert v.v("cases_opened", "user", "u3") == 2
    assert v.v("cases_opened", "team", "T1") == 1
    assert v.v("cases_opened", "account", "A1") == 1
    assert v.v("cases_opened", period="2026-03") == 0  # k6 is after as_of
    assert v.v("cases_closed") == 2  # k1 k2
    assert v.v("cases_closed", "user", "u3") == 0
    assert v.v("cases_closed", period="2026-03") == 0  # k4 closes after as_of


def test_open_cases(v) -> None:
    assert v.v("open_cases") == 2  # at 03-01: k3 k4
    assert v.v("open_cases", period="2026-01") == 1  # at 02-01: k2
    assert v.v("open_cases", "user", "u3") == 2
    assert v.v("open_cases", "account", "A2", "all") == 2  # open at as_of
    assert v.v("open_cases", "account", "A1", "all") == 0


def test_case_resolution_hours(v) -> None:
    assert v.row("case_resolution_hours") == (282.0, None, 2)  # median(48, 516)
    assert v.v("case_resolution_hours", "team", "T1") == 282.0
    assert v.v("case_resolution_hours", "account", "A1", "all") == 282.0
    assert v.row("case_resolution_hours", "user", "u3") == (None, None, 0)


def test_case_resolution_hours_per_account_is_the_middle_case(org: Org) -> None:
    """Odd and even counts per account and period."""
    build_support(org)
    org.account("A3", "u1")
    org.case("k7", "u1", "2026-02-01T00:00:00Z", "2026-02-01T10:00:00Z", account_id="A3")  # 10 h
    org.case("k8", "u1", "2026-02-02T00:00:00Z", "2026-02-02T02:00:00Z", account_id="A3")  # 2 h
    org.case("k9", "u1", "2026-01-05T00:00:00Z", "2026-01-06T06:00:00Z", account_id="A3")  # 30 h
    v = org.compute(kpis=["case_resolution_hours"])
    assert v.row("case_resolution_hours", "account", "A3", "all") == (10.0, None, 3)  # median(2, 10, 30)
    assert v.row("case_resolution_hours", "account", "A3", "2026-02") == (6.0, None, 2)  # (2 + 10) / 2
    assert v.row("case_resolution_hours", "account", "A3", "2026-01") == (30.0, None, 1)
    assert ("case_resolution_hours", "account", "A1", "2026-01") not in v  # no case closed: no row
