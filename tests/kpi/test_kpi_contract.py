"""What every KPI of the registry must honour (kpi-catalog.md, shared definitions).

Each section module's hand-computed tests declare the ids they cover in
`COVERS`; here the registry is checked against them, and every KPI is run
through the catalog-wide rules on every example org: deleted rows never count,
rows after as_of never count, an empty store gives 0 or null, never an error.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from kpi_orgs import AS_OF, BUILDERS, Org

from kpisync.kpi import registry
from kpisync.store import Store

HERE = Path(__file__).parent

RECORD_TABLES = ("accounts", "contacts", "opportunities", "activities", "cases")
TIMESTAMPS = {
    "accounts": ("created_at", "churned_at"),
    "contacts": ("created_at", "converted_at"),
    "opportunities": ("created_at", "closed_at"),
    "activities": ("occurred_at", "created_at"),
    "cases": ("created_at", "first_response_at", "closed_at"),
}


def covered_ids() -> dict[str, set[str]]:
    """COVERS of every test_kpi_*.py module, read without importing it."""
    out = {}
    for path in sorted(HERE.glob("test_kpi_*.py")):
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "COVERS" for t in node.targets):
                out[path.name] = set(ast.literal_eval(node.value))
    return out


def test_every_kpi_has_a_hand_computed_test() -> None:
    covers = covered_ids()
    tested = set().union(*covers.values())
    assert set(registry.ids()) - tested == set(), "KPIs without a test"
    assert tested - set(registry.ids()) == set(), "tests for KPIs that do not exist"


def test_declarations_are_complete() -> None:
    for defn in registry.load().values():
        assert defn.compute is not None, defn.id
        assert defn.formula and defn.source and defn.section in "ABCDE", defn.id
        assert "\n" not in defn.formula, defn.id


def _built(builder) -> Org:
    store = Store.open(":memory:")
    builder(Org(store))
    return Org(store)


def _copy_rows(store: Store, suffix: str, shift_days: int | None) -> None:
    """Add a copy of every record: deleted (shift None) or moved past as_of."""
    conn = store.conn
    for table in RECORD_TABLES:
        cols = [r[1] for r in conn.execute(f"PRAGMA table_info({table})")]
        exprs = []
        for c in cols:
            if c == "id":
                exprs.append(f"id || '{suffix}'")
            elif c == "is_deleted" and shift_days is None:
                exprs.append("1")
            elif shift_days is not None and c in TIMESTAMPS[table]:
                exprs.append(f"strftime('%Y-%m-%dT%H:%M:%SZ', {c}, '+{shift_days} days')")
            else:
                exprs.append(c)
        conn.execute(f"INSERT INTO {table} SELECT {', '.join(exprs)} FROM {table}")
    shift = f"strftime('%Y-%m-%dT%H:%M:%SZ', entered_at, '+{shift_days} days')" if shift_days else "entered_at"
    conn.execute(
        f"INSERT INTO lifecycle_events SELECT contact_id || '{suffix}', stage, {shift}, source "
        f"FROM lifecycle_events WHERE contact_id NOT LIKE '%\\_%' ESCAPE '\\'"
    )
    conn.execute(
        f"INSERT INTO opportunity_stage_history SELECT opportunity_id || '{suffix}', stage, "
        f"{shift}, amount FROM opportunity_stage_history"
    )
    if shift_days:
        conn.execute(
            f"INSERT INTO surveys SELECT id || '{suffix}', kind, contact_id, account_id, "
            f"user_id, score, strftime('%Y-%m-%dT%H:%M:%SZ', submitted_at, "
            f"'+{shift_days} days') FROM surveys"
        )


@pytest.mark.parametrize("builder", BUILDERS, ids=lambda b: b.__name__)
def test_deleted_rows_never_count(builder) -> None:
    org = _built(builder)
    before = org.compute()
    _copy_rows(org.store, "_del", None)
    assert org.compute() == before


@pytest.mark.parametrize("builder", BUILDERS, ids=lambda b: b.__name__)
def test_rows_after_as_of_never_count(builder) -> None:
    org = _built(builder)
    before = org.compute()
    _copy_rows(org.store, "_late", 1000)  # all after as_of
    assert org.compute() == before


def test_every_kpi_has_a_value_in_the_example_orgs() -> None:
    """So the two rules above are not vacuous for any KPI."""
    seen: set[str] = set()
    for builder in BUILDERS:
        for (kpi, *_), (value, _, _) in _built(builder).compute().items():
            if value not in (None, 0):
                seen.add(kpi)
    assert set(registry.ids()) - seen == set()


def test_empty_store_gives_zero_counts_and_null_rates(org: Org) -> None:
    values = org.compute()
    assert values
    for (kpi, grain, key, period), (value, _, _) in values.items():
        assert value in (None, 0), (kpi, grain, key, period, value)
        if registry.get(kpi).unit in ("ratio", "multiple", "score"):
            assert value is None, (kpi, grain, period)


def test_org_grain_has_every_calendar_period(org: Org) -> None:
    periods = {p for (k, g, _, p) in org.compute(kpis=["deals_won"]) if g == "org"}
    months = {f"2025-{m:02d}" for m in range(3, 13)} | {"2026-01", "2026-02", "2026-03"}
    quarters = {"2025-Q1", "2025-Q2", "2025-Q3", "2025-Q4", "2026-Q1"}
    rolling = {"rolling-7d", "rolling-30d", "rolling-90d"}
    assert periods == months | quarters | {"2025", "2026"} | rolling
    assert AS_OF.startswith("2026-03")
