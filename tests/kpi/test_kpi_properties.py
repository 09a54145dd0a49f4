"""Properties over random small orgs (hypothesis): bounds, additivity, as_of replay."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from kpi_orgs import Org, Values

from kpisync.kpi import registry
from kpisync.kpi.aggregate import ByGrain, Total
from kpisync.store import Store
from kpisync.timestamps import format_ts

BASE = datetime(2025, 11, 1, tzinfo=UTC)
USERS = {"u1": "T1", "u2": "T1", "u3": "T2"}
# ratios that may leave [0, 1] by definition
UNBOUNDED = {
    "quota_attainment",  # revenue beyond quota
    "activity_to_opportunity",  # more deals sourced than touches
    "meeting_booking_rate",  # meetings booked without a response in P
    "competitor_price_gap",  # a price gap, may be negative or above 100 %
}

ts = st.integers(0, 170 * 24).map(lambda h: format_ts(BASE + timedelta(hours=h)))
maybe_ts = st.none() | ts
user = st.sampled_from(sorted(USERS))


@st.composite
def orgs(draw: st.DrawFn) -> list[tuple[str, dict[str, Any]]]:
    rows: list[tuple[str, dict[str, Any]]] = []
    accounts = [f"a{i}" for i in range(draw(st.integers(0, 3)))]
    people = [f"c{i}" for i in range(draw(st.integers(1, 5)))]
    deleted = st.sampled_from([0, 0, 0, 1])
    account = st.none() | st.sampled_from(accounts) if accounts else st.none()
    person = st.none() | st.sampled_from(people)
    for a in accounts:
        rows.append(
            (
                "accounts",
                {
                    "id": a,
                    "owner_id": draw(user),
                    "region": draw(st.sampled_from(["EU", "US"])),
                    "created_at": draw(ts),
                    "churned_at": draw(maybe_ts),
                    "is_deleted": draw(deleted),
                },
            )
        )
    for c in people:
        rows.append(
            (
                "contacts",
                {
                    "id": c,
                    "kind": "contact",
                    "owner_id": draw(user),
                    "account_id": draw(account),
                    "channel": draw(st.sampled_from(["inbound", "outbound"])),
                    "created_at": draw(ts),
                    "is_deleted": draw(deleted),
                    "lifecycle_stage": draw(st.sampled_from(["lead", "mql", "customer"])),
                },
            )
        )
    for i in range(draw(st.integers(0, 2))):
        target = draw(person)
        rows.append(
            (
                "contacts",
                {
                    "id": f"L{i}",
                    "kind": "lead",
                    "owner_id": draw(user),
                    "created_at": draw(ts),
                    "converted_contact_id": target,
                    "converted_at": draw(ts) if target else None,
                    "is_deleted": 0,
                },
            )
        )
        people.append(f"L{i}")
    for c in people:
        for stage in draw(st.sets(st.sampled_from(["lead", "mql", "sql", "opportunity", "customer"]))):
            rows.append(("lifecycle_events", {"contact_id": c, "stage": stage, "entered_at": draw(ts)}))
    for i in range(draw(st.integers(0, 6))):
        created = draw(ts)
        closed = draw(st.none() | st.integers(0, 60 * 24)) if True else None
        closed_at = (
            None
            if closed is None
            else format_ts(datetime.fromisoformat(created[:-1]).replace(tzinfo=UTC) + timedelta(hours=closed))
        )
        rows.append(
            (
                "opportunities",
                {
                    "id": f"o{i}",
                    "owner_id": draw(user),
                    "created_by_id": draw(st.none() | user),
                    "account_id": draw(account),
                    "contact_id": draw(person),
                    "amount": draw(st.integers(0, 5) | st.none()),
                    "created_at": created,
                    "closed_at": closed_at,
                    "is_closed": int(closed_at is not None),
                    "is_won": int(closed_at is not None and draw(st.booleans())),
                    "deal_type": draw(st.sampled_from(["new_business", "upsell"])),
                    "is_deleted": draw(deleted),
                    "competitor_price": draw(st.none() | st.integers(1, 5)),
                    "channel": draw(st.sampled_from(["inbound", "referral"])),
                },
            )
        )
        if draw(st.booleans()):
            rows.append(
                (
                    "opportunity_stage_history",
                    {"opportunity_id": f"o{i}", "stage": "Proposal/Price Quote", "entered_at": draw(ts)},
                )
            )
    for i in range(draw(st.integers(0, 14))):
        occurred = draw(ts)
        rows.append(
            (
                "activities",
                {
                    "id": f"x{i}",
                    "owner_id": draw(user),
                    "occurred_at": occurred,
                    "created_at": draw(st.sampled_from([occurred, None]) | ts),
                    "type": draw(st.sampled_from(["call", "email", "meeting", "visit", "task"])),
                    "direction": draw(st.sampled_from(["outbound", "outbound", "inbound", None])),
                    "outcome": draw(st.sampled_from([None, "positive", "negative", "canceled", "connected"])),
                    "contact_id": draw(person),
                    "account_id": draw(account),
                    "duration_s": draw(st.integers(0, 900)),
                    "opportunity_id": draw(st.none() | st.sampled_from(["o0", "o1"])),
                    "is_deleted": draw(deleted),
                },
            )
        )
    for i in range(draw(st.integers(0, 3))):
        rows.append(
            (
                "cases",
                {
                    "id": f"k{i}",
                    "owner_id": draw(user),
                    "account_id": draw(account),
                    "contact_id": draw(person),
                    "created_at": draw(ts),
                    "closed_at": draw(maybe_ts),
                    "first_response_at": draw(maybe_ts),
                    "is_deleted": draw(deleted),
                },
            )
        )
    for i in range(draw(st.integers(0, 4))):
        rows.append(
            (
                "surveys",
                {
                    "id": f"s{i}",
                    "kind": draw(st.sampled_from(["nps", "csat", "enps"])),
                    "score": draw(st.integers(0, 10)),
                    "submitted_at": draw(ts),
                    "account_id": draw(account),
                    "contact_id": draw(person),
                    "user_id": draw(user),
                },
            )
        )
    return rows


def _store(rows: list[tuple[str, dict[str, Any]]]) -> Org:
    org = Org(Store.open(":memory:"))
    for uid, team in USERS.items():
        org.user(uid, team=team)
    org.add("quotas", user_id="u1", team="T1", period_start="2026-02-01", period_end="2026-03-01", amount=5)
    org.add("spend", id="s", channel="inbound", period_start="2026-01-10", period_end="2026-02-20", amount=90)
    for table, row in rows:
        org.add(table, **row)
    return org


def _known_at(rows: list[tuple[str, dict[str, Any]]], t: str) -> list[tuple[str, dict[str, Any]]]:
    """The rows as a sync at time t would have stored them."""
    out = []
    for table, row in rows:
        r = dict(row)
        born = {
            "activities": r.get("created_at") or r.get("occurred_at"),
            "lifecycle_events": r.get("entered_at"),
            "opportunity_stage_history": r.get("entered_at"),
            "surveys": r.get("submitted_at"),
        }.get(table, r.get("created_at"))
        if born is not None and born > t:
            continue
        if table == "opportunities" and r["closed_at"] and r["closed_at"] > t:
            r.update(closed_at=None, is_closed=0, is_won=0)
        if table == "accounts" and r["churned_at"] and r["churned_at"] > t:
            r["churned_at"] = None
        if table == "contacts" and r.get("converted_at") and r["converted_at"] > t:
            r.update(converted_at=None, converted_contact_id=None)
        if table == "cases":
            for col in ("closed_at", "first_response_at"):
                if r[col] and r[col] > t:
                    r[col] = None
        out.append((table, r))
    return out


def _counts() -> list[str]:
    out = []
    for defn in registry.load().values():
        compute = defn.compute.default if isinstance(defn.compute, ByGrain) else defn.compute
        if isinstance(compute, Total) and {"team", "user"} <= set(defn.grains):
            out.append(defn.id)
    return out


SETTINGS = settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(orgs(), st.integers(110, 170))
def test_rates_bounded_and_counts_additive(rows, day) -> None:
    as_of = format_ts(BASE + timedelta(days=day, hours=7))
    values: Values = _store(rows).compute(as_of=as_of)
    for (kpi, grain, key, period), (value, num, den) in values.items():
        if registry.get(kpi).unit == "ratio" and kpi not in UNBOUNDED and value is not None:
            assert 0 <= value <= 1, (kpi, grain, key, period, value, num, den)
    for kpi in _counts():
        teams: dict[tuple[str, str], float] = {}
        for (k, grain, key, period), (value, _, _) in values.items():
            if k == kpi and grain == "user":
                teams[(USERS[key], period)] = teams.get((USERS[key], period), 0) + value
        for (team, period), total in teams.items():
            assert values.v(kpi, "team", team, period) == total, (kpi, team, period)


@SETTINGS
@given(orgs(), st.integers(120, 170), st.integers(1, 60))
def test_earlier_as_of_equals_a_store_truncated_then(rows, day, back) -> None:
    t = format_ts(BASE + timedelta(days=day - back, hours=3))
    replayed = _store(rows).compute(as_of=t)
    truncated = _store(_known_at(rows, t)).compute(as_of=t)
    assert replayed == truncated
