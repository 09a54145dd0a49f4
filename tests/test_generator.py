"""The generated org: deterministic, nothing after `now`, consistent, and varied
enough that every KPI in kpi-catalog.md has data to work on."""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Iterator

import pytest

from kpisync.generator import DEFAULT_NOW, SIZES, OrgSummary, build_org
from kpisync.schema import INDEXES, TABLES
from kpisync.store import Store

FILLED_TABLES = (
    "users",
    "quotas",
    "accounts",
    "contacts",
    "lifecycle_events",
    "opportunities",
    "opportunity_stage_history",
    "activities",
    "cases",
    "surveys",
    "spend",
)
RECORD_TABLES = ("users", "accounts", "contacts", "opportunities", "activities", "cases")


@pytest.fixture(scope="module")
def org() -> Iterator[tuple[Store, OrgSummary]]:
    with Store.open(":memory:") as store:
        yield store, build_org(store, "small", seed=7)


@pytest.fixture(scope="module")
def store(org: tuple[Store, OrgSummary]) -> Store:
    return org[0]


def _rows(store: Store, sql: str) -> list[tuple[object, ...]]:
    return store.conn.execute(sql).fetchall()


def _values(store: Store, sql: str) -> set[object]:
    return {row[0] for row in store.conn.execute(sql)}


def _count(store: Store, sql: str) -> int:
    return int(store.conn.execute(f"SELECT count(*) FROM ({sql})").fetchone()[0])


def _digest(store: Store) -> dict[str, str]:
    digests = {}
    for name in FILLED_TABLES:
        columns = ", ".join(f'"{c}"' for c in TABLES[name].column_names)
        rows = _rows(store, f"SELECT {columns} FROM {name} ORDER BY {columns}")
        digests[name] = hashlib.sha256(repr(rows).encode()).hexdigest()
    return digests


# -- determinism, size, time --


def test_same_seed_same_org_other_seed_other_org(store: Store) -> None:
    with Store.open(":memory:") as again, Store.open(":memory:") as other:
        build_org(again, "small", seed=7)
        build_org(again, "small", seed=7)  # building twice changes nothing
        build_org(other, "small", seed=8)
        assert _digest(again) == _digest(store)
        different = _digest(other)
    for name, digest in _digest(store).items():
        assert different[name] != digest, name


def test_summary_counts_match_the_store(org: tuple[Store, OrgSummary]) -> None:
    store, summary = org
    assert summary.now == DEFAULT_NOW
    assert summary.window_start == "2025-08-20T12:00:00Z"
    assert summary.counts == {name: store.count(name) for name in FILLED_TABLES}


def test_small_org_has_the_promised_size(org: tuple[Store, OrgSummary]) -> None:
    counts = org[1].counts
    assert 8_000 <= counts["activities"] <= 14_000
    assert 1_800 <= counts["contacts"] <= 3_500
    assert 500 <= counts["opportunities"] <= 1_500
    assert counts["users"] == SIZES["small"].reps + 1  # and a deleted integration user
    assert SIZES["medium"].reps == SIZES["large"].reps == 50


TIME_COLUMNS = {
    "users": ("synced_at",),
    "accounts": ("created_at", "churned_at", "synced_at"),
    "contacts": ("created_at", "converted_at", "synced_at"),
    "lifecycle_events": ("entered_at",),
    "opportunities": ("created_at", "closed_at", "synced_at"),
    "opportunity_stage_history": ("entered_at",),
    "activities": ("occurred_at", "created_at", "synced_at"),
    "cases": ("created_at", "first_response_at", "closed_at", "synced_at"),
    "surveys": ("submitted_at",),
}
STAMP = "[0-9][0-9][0-9][0-9]-[01][0-9]-[0-3][0-9]T[0-2][0-9]:[0-5][0-9]:[0-5][0-9]Z"


def _check_nothing_after(store: Store, now: str) -> None:
    for table, columns in TIME_COLUMNS.items():
        for column in columns:
            late = f"SELECT id FROM {table} WHERE {column} > '{now}'"
            assert _count(store, late.replace("id", column)) == 0, (table, column)
            malformed = f"SELECT 1 FROM {table} WHERE {column} NOT GLOB '{STAMP}'"
            assert _count(store, malformed) == 0, (table, column)
    for table in ("quotas", "spend"):
        assert _count(store, f"SELECT 1 FROM {table} WHERE period_start > '{now[:10]}'") == 0


def test_nothing_happens_after_now(store: Store) -> None:
    _check_nothing_after(store, DEFAULT_NOW)


def test_now_moves_the_whole_org() -> None:
    with Store.open(":memory:") as store:
        summary = build_org(store, "small", now="2026-03-04T15:16:17Z")
        assert (summary.now, summary.window_start) == (
            "2026-03-04T15:16:17Z",
            "2024-12-04T15:16:17Z",
        )
        _check_nothing_after(store, summary.now)


def test_only_the_installed_base_predates_the_window(org: tuple[Store, OrgSummary]) -> None:
    store, summary = org
    start = summary.window_start
    for table, column in (
        ("activities", "occurred_at"),
        ("cases", "created_at"),
        ("surveys", "submitted_at"),
    ):
        assert _count(store, f"SELECT 1 FROM {table} WHERE {column} < '{start}'") == 0
    old_deals = f"SELECT DISTINCT deal_type, is_won FROM opportunities WHERE created_at < '{start}'"
    assert _rows(store, old_deals) == [("new_business", 1)]
    assert _count(store, f"SELECT 1 FROM contacts WHERE kind = 'lead' AND created_at < '{start}'") == 0


# -- consistency --

REFERENCES = (
    ("accounts", "owner_id", "users"),
    ("contacts", "owner_id", "users"),
    ("contacts", "account_id", "accounts"),
    ("contacts", "converted_contact_id", "contacts"),
    ("users", "manager_id", "users"),
    ("lifecycle_events", "contact_id", "contacts"),
    ("opportunities", "owner_id", "users"),
    ("opportunities", "created_by_id", "users"),
    ("opportunities", "account_id", "accounts"),
    ("opportunities", "contact_id", "contacts"),
    ("opportunity_stage_history", "opportunity_id", "opportunities"),
    ("activities", "owner_id", "users"),
    ("activities", "contact_id", "contacts"),
    ("activities", "account_id", "accounts"),
    ("activities", "opportunity_id", "opportunities"),
    ("cases", "owner_id", "users"),
    ("cases", "account_id", "accounts"),
    ("cases", "contact_id", "contacts"),
    ("surveys", "contact_id", "contacts"),
    ("surveys", "account_id", "accounts"),
    ("surveys", "user_id", "users"),
    ("quotas", "user_id", "users"),
)


@pytest.mark.parametrize(("table", "column", "target"), REFERENCES)
def test_references_resolve(store: Store, table: str, column: str, target: str) -> None:
    dangling = f"SELECT {column} FROM {table} WHERE {column} IS NOT NULL AND {column} NOT IN (SELECT id FROM {target})"
    assert _rows(store, dangling + " LIMIT 5") == []


def test_ids_are_unique_across_tables(store: Store) -> None:
    tables = ("users", "accounts", "contacts", "opportunities", "activities", "cases", "surveys")
    union = " UNION ALL ".join(f"SELECT id FROM {t}" for t in (*tables, "spend"))
    assert _count(store, union) == _count(store, f"SELECT DISTINCT id FROM ({union})")


MUST_BE_EMPTY = {
    "won deals are closed, dated and in the won stage": "SELECT id FROM opportunities "
    "WHERE is_won = 1 AND (is_closed = 0 OR closed_at IS NULL OR stage != 'Closed Won')",
    "open deals have no close date": "SELECT id FROM opportunities WHERE is_closed = 0 "
    "AND (closed_at IS NOT NULL OR stage LIKE 'Closed%')",
    "deals close after they open": "SELECT id FROM opportunities WHERE closed_at < created_at",
    "deals have an amount": "SELECT id FROM opportunities WHERE NOT amount > 0",
    "stage history starts at creation": "SELECT id FROM opportunities o WHERE created_at != "
    "(SELECT min(entered_at) FROM opportunity_stage_history WHERE opportunity_id = o.id)",
    "stage history ends at the close": "SELECT id FROM opportunities o WHERE is_closed AND "
    "closed_at != (SELECT max(entered_at) FROM opportunity_stage_history "
    "WHERE opportunity_id = o.id)",
    "meetings are booked before they happen": "SELECT id FROM activities "
    "WHERE type = 'meeting' AND created_at > occurred_at",
    "calls and meetings have durations": "SELECT id FROM activities WHERE type = 'call' "
    "AND duration_s IS NULL OR type = 'meeting' AND outcome = 'completed' AND NOT duration_s > 0",
    "cases are answered and closed after they open": "SELECT id FROM cases "
    "WHERE first_response_at < created_at OR closed_at < created_at",
    "closed cases have a close date": "SELECT id FROM cases WHERE is_closed != (closed_at IS NOT NULL)",
    "churn follows the first purchase": "SELECT id FROM accounts a WHERE churned_at < "
    "(SELECT min(closed_at) FROM opportunities WHERE account_id = a.id AND is_won = 1)",
    "scores are on their scales": "SELECT id FROM surveys WHERE kind = 'csat' AND score "
    "NOT BETWEEN 1 AND 5 OR kind != 'csat' AND score NOT BETWEEN 0 AND 10",
    "eNPS answers come from users": "SELECT id FROM surveys WHERE (kind = 'enps') != (user_id IS NOT NULL)",
}


@pytest.mark.parametrize("rule", MUST_BE_EMPTY)
def test_records_are_consistent(store: Store, rule: str) -> None:
    assert _rows(store, MUST_BE_EMPTY[rule] + " LIMIT 5") == []


def test_converted_leads_point_to_their_contact(store: Store) -> None:
    pairs = _rows(
        store,
        "SELECT l.kind, l.source_object, c.kind, c.source_object, l.email = c.email, "
        "l.converted_at = c.created_at, l.lead_status "
        "FROM contacts l JOIN contacts c ON c.id = l.converted_contact_id",
    )
    assert len(pairs) >= 50
    assert set(pairs) == {("lead", "Lead", "contact", "Contact", 1, 1, "Closed - Converted")}
    # The conversion stamps `sql` on the contact too: a KPI that counts rows
    # instead of people sees each of them enter `sql` twice.
    both = (
        "SELECT l.id FROM contacts l "
        "JOIN lifecycle_events a ON a.contact_id = l.id AND a.stage = 'sql' "
        "JOIN lifecycle_events b ON b.contact_id = l.converted_contact_id AND b.stage = 'sql' "
        "WHERE a.entered_at <= b.entered_at"
    )
    assert _count(store, both) == len(pairs)


def test_lifecycle_stages_are_entered_in_order_and_thin_out(store: Store) -> None:
    order = ("lead", "mql", "sql", "opportunity", "customer")
    for earlier, later in itertools.pairwise(order):
        backwards = (
            "SELECT a.contact_id FROM lifecycle_events a JOIN lifecycle_events b "
            f"ON a.contact_id = b.contact_id WHERE a.stage = '{earlier}' "
            f"AND b.stage = '{later}' AND b.entered_at < a.entered_at"
        )
        assert _rows(store, backwards) == []
    # per person: a converted lead and its contact are one person
    people = _rows(
        store,
        "SELECT e.stage, count(DISTINCT coalesce(l.id, e.contact_id)) FROM lifecycle_events e "
        "LEFT JOIN contacts l ON l.converted_contact_id = e.contact_id "
        "WHERE coalesce(l.id, e.contact_id) IN "
        "(SELECT contact_id FROM lifecycle_events WHERE stage = 'lead') GROUP BY e.stage",
    )
    entered = dict(people)
    counts = [entered[stage] for stage in order]
    assert counts == sorted(counts, reverse=True)
    assert counts[-1] > 50


# -- variety the KPIs need --


def test_every_category_the_kpis_split_by_occurs(store: Store) -> None:
    channels = {"referral", "inbound", "outbound", "event", "paid", "other"}
    assert _values(store, "SELECT stage FROM lifecycle_events") == {
        "subscriber",
        "lead",
        "mql",
        "sql",
        "opportunity",
        "customer",
        "evangelist",
    }
    assert _values(store, "SELECT type FROM activities") == {
        "call",
        "email",
        "meeting",
        "visit",
        "task",
        "note",
    }
    assert _values(store, "SELECT outcome FROM activities") == {
        None,
        "connected",
        "no_answer",
        "positive",
        "negative",
        "replied",
        "booked",
        "completed",
        "no_show",
        "canceled",
    }
    assert _values(store, "SELECT direction FROM activities") == {"outbound", "inbound", None}
    assert _values(store, "SELECT deal_type FROM opportunities") == {
        "new_business",
        "upsell",
        "cross_sell",
        "renewal",
    }
    assert _values(store, "SELECT channel FROM contacts WHERE kind = 'lead'") | {"outbound"} == (channels)
    assert _values(store, "SELECT channel FROM opportunities") >= channels
    assert _values(store, "SELECT channel FROM spend") == channels
    assert _values(store, "SELECT role FROM users WHERE is_deleted = 0") == {
        "manager",
        "sdr",
        "bdr",
        "ae",
        "am",
    }
    assert _values(store, "SELECT region FROM accounts") == {"na", "emea", "apac", "latam"}
    assert _values(store, "SELECT kind FROM surveys") == {"nps", "csat", "enps"}
    assert "Proposal/Price Quote" in _values(store, "SELECT stage FROM opportunity_stage_history")
    for table in RECORD_TABLES:
        assert _count(store, f"SELECT 1 FROM {table} WHERE is_deleted = 1") >= 1, table


def test_deals_win_lose_and_stay_open(store: Store) -> None:
    won, lost, still_open = _rows(
        store,
        "SELECT sum(is_won), sum(is_closed AND NOT is_won), sum(NOT is_closed) FROM opportunities",
    )[0]
    assert won > lost / 3 and lost > won / 3 and still_open > 10
    assert _count(store, "SELECT 1 FROM opportunities WHERE competitor_price > 0") > 20
    sourced_by_sdrs = (
        "SELECT 1 FROM opportunities o JOIN users u ON u.id = o.created_by_id "
        "WHERE u.role IN ('sdr', 'bdr') AND o.owner_id != o.created_by_id"
    )
    assert _count(store, sourced_by_sdrs) > 100


def test_lead_response_spans_minutes_to_days(store: Store) -> None:
    minutes = _values(
        store,
        "SELECT (julianday(min(a.occurred_at)) - julianday(e.entered_at)) * 1440 "
        "FROM lifecycle_events e JOIN activities a ON a.contact_id = e.contact_id "
        "AND a.occurred_at >= e.entered_at AND a.direction = 'outbound' "
        "AND a.type IN ('call', 'email', 'meeting', 'visit') "
        "WHERE e.stage = 'mql' GROUP BY e.contact_id",
    )
    assert len(minutes) > 200
    assert min(minutes) < 15 and max(minutes) > 3 * 1440  # type: ignore[operator]


def test_customers_churn_answer_surveys_and_open_cases(org: tuple[Store, OrgSummary]) -> None:
    store, summary = org
    churned = f"SELECT 1 FROM accounts WHERE churned_at >= '{summary.window_start}'"
    assert _count(store, churned) >= 5
    assert _count(store, "SELECT 1 FROM contacts WHERE nps_score IS NOT NULL") > 20
    assert _count(store, "SELECT 1 FROM cases WHERE is_closed = 0") >= 1
    assert _count(store, "SELECT 1 FROM cases WHERE first_response_at IS NULL") >= 1


def test_quotas_cover_every_month_for_quota_carriers(store: Store) -> None:
    monthly = "julianday(period_end) - julianday(period_start) < 32"
    months = f"SELECT DISTINCT period_start FROM quotas WHERE user_id IS NOT NULL AND {monthly}"
    assert _count(store, months) == 16  # 2025-08 .. 2026-11
    # quotas are keyed by period_end too, so reps carry quarterly quotas beside the monthly ones
    quarters = f"SELECT DISTINCT period_start FROM quotas WHERE user_id IS NOT NULL AND NOT ({monthly})"
    assert _count(store, quarters) == 6  # 2025-Q3 .. 2026-Q4
    carriers = _values(store, "SELECT id FROM users WHERE role IN ('ae', 'am')")
    assert _values(store, "SELECT user_id FROM quotas WHERE user_id IS NOT NULL") == carriers
    assert _count(store, "SELECT 1 FROM quotas WHERE user_id IS NULL") >= 3


def test_the_bulk_load_leaves_the_store_as_it_found_it(store: Store) -> None:
    indexes = "SELECT name FROM sqlite_master WHERE type = 'index' AND name NOT LIKE 'sqlite_%'"
    assert _values(store, indexes) == {name for name, _, _ in INDEXES}
    assert _rows(store, "PRAGMA synchronous") == [(1,)]  # NORMAL, as Store.open sets it
    assert _rows(store, "PRAGMA wal_autocheckpoint") == [(1000,)]


def test_unknown_size_is_refused() -> None:
    with Store.open(":memory:") as store, pytest.raises(ValueError, match="small, medium"):
        build_org(store, "huge")
