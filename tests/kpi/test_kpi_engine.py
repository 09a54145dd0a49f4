"""The library API the CLI calls: compute, to_json, explain, catalog_rows; periods."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from kpi_orgs import AS_OF, Org, build_activity, build_customers, build_deals, build_funnel, build_support

from kpisync.cli import main
from kpisync.kpi import engine, live, registry
from kpisync.kpi.periods import calendar_periods, parse_as_of, working_days
from kpisync.kpi.settings import KpiSettings
from kpisync.store import Store


def test_to_json_is_the_interfaces_shape(org: Org) -> None:
    build_deals(org)
    result = engine.compute(org.store, KpiSettings(), as_of=AS_OF, kpis=["win_rate"])
    doc = engine.to_json(result)
    assert doc["as_of"] == AS_OF and set(doc) == {"as_of", "kpis"}
    row = next(r for r in doc["kpis"] if r["grain"] == "user" and r["key"] == "u1" and r["period"] == "2026-02")
    assert row == {
        "kpi": "win_rate",
        "grain": "user",
        "key": "u1",
        "period": "2026-02",
        "value": 2 / 3,
        "numerator": 2,
        "denominator": 3,
        "unit": "ratio",
    }
    json.dumps(doc)


def test_compute_replaces_the_rows_of_the_computed_kpis(org: Org) -> None:
    build_deals(org)
    conn = org.store.conn
    first = engine.compute(org.store, KpiSettings(), as_of=AS_OF)
    assert conn.execute("SELECT count(*) FROM kpi_values").fetchone()[0] == len(first.values)
    assert conn.execute("SELECT count(*) FROM kpi_values WHERE computed_at IS NULL").fetchone()[0] == 0
    conn.execute("UPDATE opportunities SET is_deleted = 1 WHERE id = 'o4'")
    engine.compute(org.store, KpiSettings(), as_of=AS_OF, kpis=["deals_won"], grains=["org"])
    stored = dict(
        conn.execute(
            "SELECT kpi, value FROM kpi_values WHERE grain = 'org' AND period = '2026-02' "
            "AND kpi IN ('deals_won', 'revenue_won')"
        )
    )
    assert stored == {"deals_won": 2, "revenue_won": 3500}  # revenue_won was not recomputed
    assert conn.execute("SELECT count(*) FROM kpi_values WHERE kpi = 'deals_won' AND grain = 'user'").fetchone()[0]


def test_grains_filter_and_default_as_of(org: Org) -> None:
    result = engine.compute(org.store, KpiSettings(), kpis=["touches"], grains=["team", "user"])
    assert {v["grain"] for v in result.values} <= {"team", "user"}
    assert abs(parse_as_of(result.as_of) - datetime.now(UTC)).total_seconds() < 60


@pytest.mark.parametrize(
    ("kpis", "grains", "message"),
    [
        (["no_such_kpi"], None, "unknown KPI no_such_kpi"),
        (None, ["planet"], "unknown grain planet"),
        (["enps"], ["user"], "KPI enps has no grain user"),
    ],
)
def test_unknown_kpi_or_grain_is_a_value_error(org: Org, kpis, grains, message) -> None:
    with pytest.raises(ValueError, match=message):
        engine.compute(org.store, KpiSettings(), as_of=AS_OF, kpis=kpis, grains=grains)


def test_explain_lists_numerator_and_denominator_records(org: Org) -> None:
    build_deals(org)
    e = engine.explain(org.store, KpiSettings(), "win_rate", "org", "", "2026-02", as_of=AS_OF)
    assert (e.value, e.numerator, e.denominator) == (0.75, 3, 4)
    assert [r[0] for r in e.numerator_records] == ["o1", "o2", "o4"]
    assert [r[0] for r in e.denominator_records] == ["o1", "o2", "o3", "o4"]
    text = engine.render_text(e)
    assert "won in P / (won + lost in P)" in text and "o3" in text
    user = engine.explain(org.store, KpiSettings(), "sales_cycle_days", "user", "u1", "2026-02", as_of=AS_OF)
    assert user.value == 22.5 and sorted(r[1] for r in user.denominator_records) == [19.0, 26.0]


def test_explain_touches_to_close_by_touch_type(org: Org) -> None:
    build_activity(org)
    e = engine.explain(org.store, KpiSettings(), "touches_to_close", "opportunity", "o1", "all", as_of=AS_OF)
    assert e.value == 3
    assert e.breakdown == {"call": 1, "email": 1, "meeting": 1}
    assert sorted(r[1] for r in e.numerator_records) == ["m1", "r2", "t3"]
    assert "touches by type: call 1, email 1, meeting 1" in engine.render_text(e)


def test_explain_touches_to_close_by_touch_type_over_a_team(org: Org) -> None:
    build_activity(org)
    # o3, won by u3 (team T2) on 02-20 with contact c3: its touch is t4 (a meeting on c3, no deal);
    # f1 and f2 on c3 come after its close
    org.opp("o3", "u3", "2026-02-04T00:00:00Z", "2026-02-20T00:00:00Z", won=True, contact_id="c3")
    e = engine.explain(org.store, KpiSettings(), "touches_to_close", "org", "", "2026-02", as_of=AS_OF)
    assert (e.value, e.denominator) == (2.0, 2)  # (3 on o1 + 1 on o3) / 2 deals
    assert sorted(e.numerator_records) == [("o1", 3), ("o3", 1)]
    # o1: r2 call, t3 email, m1 meeting; o3: t4 meeting (x1, a deleted call on c2, counts nowhere)
    assert e.breakdown == {"call": 1, "email": 1, "meeting": 2}
    assert "touches by type: call 1, email 1, meeting 2" in engine.render_text(e)
    team = engine.explain(org.store, KpiSettings(), "touches_to_close", "team", "T2", "2026-02", as_of=AS_OF)
    assert (team.value, team.breakdown) == (1.0, {"meeting": 1})
    # a KPI without a breakdown shows none
    assert engine.explain(org.store, KpiSettings(), "touches", "org", "", "2026-02", as_of=AS_OF).breakdown == {}


def test_explanation_json_names_every_field_of_every_record(org: Org) -> None:
    build_deals(org)
    win = engine.explanation_json(
        engine.explain(org.store, KpiSettings(), "win_rate", "org", "", "2026-02", as_of=AS_OF)
    )
    assert (win["kpi"], win["grain"], win["key"], win["period"], win["as_of"]) == (
        "win_rate",
        "org",
        "",
        "2026-02",
        AS_OF,
    )
    assert (win["value"], win["numerator"], win["denominator"], win["unit"]) == (0.75, 3, 4, "ratio")
    assert win["formula"] == "won in P / (won + lost in P)"
    assert win["numerator_records"] == [{"id": "o1", "value": 1}, {"id": "o2", "value": 1}, {"id": "o4", "value": 1}]
    assert [r["id"] for r in win["denominator_records"]] == ["o1", "o2", "o3", "o4"]
    assert win["breakdown"] is None
    # a record-level KPI lists its records with the fields its own query names
    build_activity(org)
    touches = engine.explanation_json(
        engine.explain(org.store, KpiSettings(), "touches_to_close", "opportunity", "o1", "all", as_of=AS_OF)
    )
    assert touches["value"] == 3
    assert touches["numerator_records"] == [
        {"type": "call", "id": "r2", "occurred_at": "2026-02-05T00:00:00Z"},
        {"type": "email", "id": "t3", "occurred_at": "2026-02-03T00:30:00Z"},
        {"type": "meeting", "id": "m1", "occurred_at": "2026-02-07T00:00:00Z"},
    ]
    assert touches["breakdown"] == {"title": "touches by type", "counts": {"call": 1, "email": 1, "meeting": 1}}
    assert json.loads(json.dumps(touches)) == touches


def test_kpi_explain_json_on_the_command_line(tmp_path: Path) -> None:
    path = tmp_path / "hand.db"
    with Store.open(str(path)) as store:
        build_deals(Org(store))
    args = ["kpi", "explain", "win_rate", "--store", str(path), "--grain", "user", "--key", "u1"]
    got = CliRunner().invoke(main, [*args, "--period", "2026-02", "--as-of", AS_OF, "--json"])
    assert got.exit_code == 0, got.output
    doc = json.loads(got.output)
    assert (doc["value"], doc["numerator"], doc["denominator"]) == (2 / 3, 2, 3)
    assert len(doc["denominator_records"]) == 3
    # a period the KPI lacks: exit 2, one line, no traceback
    bad = CliRunner().invoke(main, [*args, "--period", "all", "--as-of", AS_OF, "--json"])
    assert bad.exit_code == 2 and "has no period 'all'" in bad.output and "Traceback" not in bad.output


def test_explain_builds_only_the_live_tables_it_reads_and_explains_the_same(
    org: Org, monkeypatch: pytest.MonkeyPatch
) -> None:
    for build in (build_deals, build_activity, build_funnel, build_customers, build_support):
        build(org)
    every = {name for name, _ in live.LIVE_TABLES}
    # a deal KPI does not wait for the activities (the largest live table)
    assert "k_acts" not in live.with_inputs(engine.tables_needed(engine.select(["win_rate"], ["org"])))
    assert "k_acts" in live.with_inputs(engine.tables_needed(engine.select(["touches"], ["org"])))
    # every KPI at every grain: one of its values (one with a value where there is one), explained
    # on the tables it names and on all of them
    picked: dict[tuple[str, str], tuple[str, str, Any]] = {}
    for (kpi, grain, key, period), (value, _, _) in sorted(org.compute().items()):
        if (kpi, grain) not in picked or (picked[(kpi, grain)][2] is None and value is not None):
            picked[(kpi, grain)] = (key, period, value)
    assert {k for k, _ in picked} == set(registry.ids())
    for (kpi, grain), (key, period, _) in picked.items():
        partial = engine.explain(org.store, KpiSettings(), kpi, grain, key, period, as_of=AS_OF)
        with monkeypatch.context() as m:
            m.setattr(engine, "tables_needed", lambda group: every)
            full = engine.explain(org.store, KpiSettings(), kpi, grain, key, period, as_of=AS_OF)
        assert partial == full, (kpi, grain, key, period)
        json.dumps(engine.explanation_json(partial))  # every record's fields named, every value serialisable


@pytest.mark.parametrize(
    ("grain", "key", "message"),
    [
        ("user", "nobody", "no user 'nobody' in the store"),
        ("team", "Narnia", "no team 'Narnia' in the store"),
        ("user", "", "grain user needs --key: which user"),
        ("org", "u1", "grain org takes no --key"),
    ],
)
def test_explain_rejects_a_key_the_grain_lacks(org: Org, grain: str, key: str, message: str) -> None:
    build_deals(org)
    with pytest.raises(ValueError, match=message):
        engine.explain(org.store, KpiSettings(), "win_rate", grain, key, "2026-02", as_of=AS_OF)
    # a key the grain has, with nothing counted in P, is explained as the fill compute writes
    org.user("u9", team="T3")
    quiet = engine.explain(org.store, KpiSettings(), "win_rate", "user", "u9", "2026-02", as_of=AS_OF)
    assert (quiet.value, quiet.numerator, quiet.denominator) == (None, 0, 0)


def test_explain_rejects_a_period_the_kpi_lacks(org: Org) -> None:
    with pytest.raises(ValueError, match="no period"):
        engine.explain(org.store, KpiSettings(), "days_open", "opportunity", "o1", "2026-02", as_of=AS_OF)
    with pytest.raises(ValueError, match="has no grain"):
        engine.explain(org.store, KpiSettings(), "days_open", "user", "u1", "all", as_of=AS_OF)


def test_catalog_rows_and_out_of_reach() -> None:
    rows = engine.catalog_rows()
    assert [r["id"] for r in rows] == sorted(registry.ids(), key=lambda i: (registry.get(i).section, i))
    for r in rows:
        assert {"id", "name", "unit", "grains", "periods", "formula", "section", "source"} <= set(r)
    assert {r["id"] for r in engine.OUT_OF_REACH} == {
        "profit",
        "cost",
        "cogs",
        "expenses_vs_budget",
        "dso",
        "defect_rate",
        "lob_efficiency",
    }
    assert all("CRM does not hold" in r["reason"] for r in engine.OUT_OF_REACH)


def test_periods_are_cut_in_the_org_time_zone(org: Org) -> None:
    org.user("u1")
    # 01:00 UTC on March 1st is still February 28th in New York
    org.opp("o", "u1", "2026-02-01T12:00:00Z", "2026-03-01T01:00:00Z", won=True)
    ny = KpiSettings(timezone="America/New_York")
    utc = org.compute(as_of="2026-03-10T00:00:00Z")
    local = org.compute(as_of="2026-03-10T00:00:00Z", settings=ny)
    assert utc.v("deals_won", period="2026-03") == 1
    assert local.v("deals_won", period="2026-02") == 1
    assert local.v("deals_won", period="2026-03") == 0
    feb = next(p for p in calendar_periods(parse_as_of("2026-03-10T00:00:00Z"), ny) if p.label == "2026-02")
    assert (feb.start, feb.end) == ("2026-02-01T05:00:00Z", "2026-03-01T05:00:00Z")


def test_period_counts_and_capping() -> None:
    as_of = parse_as_of(AS_OF)
    periods = calendar_periods(as_of, KpiSettings(months=2, quarters=1, years=1))
    assert [p.label for p in periods] == [
        "2026-03",
        "2026-02",
        "2026-01",
        "2026-Q1",
        "2025-Q4",
        "2026",
        "rolling-7d",
        "rolling-30d",
        "rolling-90d",
    ]
    current = periods[0]
    assert current.end == "2026-03-20T12:00:01Z"  # capped just past as_of: as_of itself counts
    assert periods[6].start == "2026-03-13T12:00:01Z"
    assert (
        working_days(parse_as_of("2026-02-01T00:00:00Z"), parse_as_of("2026-03-01T00:00:00Z"), KpiSettings().zone) == 20
    )


def test_a_record_at_exactly_as_of_counts(org: Org) -> None:
    org.user("u1")
    org.act("a", "u1", AS_OF)
    assert org.compute().v("touches", period="2026-03") == 1
    assert org.compute(as_of="2026-03-20T11:59:59Z").v("touches", period="2026-03") == 0


def test_bad_settings_are_rejected() -> None:
    with pytest.raises(ValueError, match="time zone"):
        KpiSettings(timezone="Mars/Olympus")
    with pytest.raises(ValueError, match="months"):
        KpiSettings(months=-1)


def test_values_of_a_file_store_are_read_back_after_it_closes(tmp_path) -> None:
    from kpisync.store import Store

    with Store.open(tmp_path / "org.db") as store:
        build_deals(Org(store))
        result = engine.compute(store, KpiSettings(), as_of=AS_OF, kpis=["win_rate", "days_open"])
    rows = list(result.values)
    assert len(result.values) == len(rows) > 0
    assert {r["kpi"] for r in rows} == {"win_rate", "days_open"}
    org_feb = next(r for r in rows if r["grain"] == "org" and r["period"] == "2026-02" and r["kpi"] == "win_rate")
    assert (org_feb["value"], org_feb["numerator"], org_feb["denominator"]) == (0.75, 3, 4)
    assert result.values[0] == rows[0]
    assert engine.to_json(result)["kpis"][:2] == rows[:2]


def test_record_grains_skip_empty_calendar_rows_but_fill_all(org: Org) -> None:
    build_deals(org)
    org.add("cases", id="k1", owner_id="u1", account_id="a1", created_at="2026-02-02T00:00:00Z", is_deleted=0)
    v = org.compute(kpis=["cases_opened", "open_cases"])
    assert v.row("cases_opened", "account", "a1") == (1, None, None)
    assert ("cases_opened", "account", "a2", "2026-02") not in v  # no case: no row per month
    assert v.v("open_cases", "account", "a2", "all") == 0  # the write-back period is filled


def test_inlined_segment_search_matches_the_python_one() -> None:
    import sqlite3

    from hypothesis import given, settings
    from hypothesis import strategies as st

    from kpisync.kpi.live import inline_segments
    from kpisync.kpi.periods import Segments, all_period

    as_of = parse_as_of(AS_OF)
    periods = calendar_periods(as_of, KpiSettings())
    segments = Segments.of([*periods, all_period(as_of, KpiSettings().zone)])
    sql = inline_segments("SELECT kpi_seg(:ts)", segments.bounds)
    conn = sqlite3.connect(":memory:")
    stamps = st.datetimes(datetime(2024, 1, 1), datetime(2026, 12, 31)).map(lambda d: d.strftime("%Y-%m-%dT%H:%M:%SZ"))

    @settings(max_examples=300, deadline=None)
    @given(st.none() | stamps | st.sampled_from(segments.bounds))
    def same(ts) -> None:
        assert conn.execute(sql, {"ts": ts}).fetchone()[0] == segments.index(ts)

    same()


def test_live_tables_leave_the_raw_json_in_the_store(org: Org) -> None:
    """A synced store keeps each record's JSON (~1.3 KB a HubSpot contact): the live tables of a
    compute copy the columns the KPIs read, never that copy."""
    from kpisync.kpi.context import Context

    build_deals(org)
    org.contact("c1", "u1", raw='{"id": "c1"}')
    conn = org.store.conn
    with Context(conn, KpiSettings(), parse_as_of(AS_OF)):
        tables = [r[0] for r in conn.execute("SELECT name FROM temp.sqlite_master WHERE type = 'table'")]
        copied = {t: {r[1] for r in conn.execute(f'PRAGMA temp.table_info("{t}")')} for t in tables}
        assert "k_contacts" in copied and "c1" in {r[0] for r in conn.execute("SELECT id FROM k_contacts")}
    assert not [t for t, columns in copied.items() if "raw" in columns]


@pytest.mark.parametrize("by", ["seg", "period"])
def test_presummed_rollups_equal_grouped_ones_with_null_keys(org: Org, by: str) -> None:
    """A family whose grains have few keys is summed by upsert into a small table, not by
    GROUP BY (kpisync.kpi.families.presum): the same sums, with NULL teams and users kept
    apart from every real one, and NULL measures counted as nothing."""
    from kpisync.kpi.context import Context
    from kpisync.kpi.families import Family, presum, rollup_sql

    where = "seg" if by == "seg" else "period"
    place = ("2", "3") if by == "seg" else ("'2026-01'", "'2026-02'")
    facts = " UNION ALL ".join(
        f"SELECT {rec} AS rec, {at} AS {where}, {user} AS user_id, {team} AS team, {n} AS n, {x} AS x"
        for rec, at, user, team, n, x in (
            (1, place[0], "'u1'", "'t1'", 1, 2.5),
            (2, place[0], "'u1'", "'t1'", 1, 1.0),
            (3, place[0], "NULL", "'t1'", 1, "NULL"),  # no owner: the team and org count it
            (4, place[1], "'u2'", "NULL", 1, 4.0),  # a user without a team
            (5, place[1], "NULL", "NULL", 1, 0.5),
            (6, place[1], "'u2'", "NULL", 0, 1.5),
        )
    )
    fam = Family(f"test_{by}", facts, ("org", "team", "user"), ("n", "x"), by=by)
    with Context(org.store.conn, KpiSettings(), parse_as_of(AS_OF)) as ctx:
        grouped = {(g, k, p): (n or 0, x or 0) for g, k, p, n, x in ctx.query(rollup_sql(fam))}
        table = presum(ctx, fam)
        assert table is not None
        # one row per key, NULLs too: facts 4 and 6 (user u2, no team) share theirs
        assert ctx.conn.execute(f"SELECT count(*) FROM temp.{table}").fetchone()[0] == 4
        summed = {(g, k, p): (n or 0, x or 0) for g, k, p, n, x in ctx.query(rollup_sql(fam, table))}
    assert summed == grouped
    first = "2026-01" if by == "period" else ctx.seg_periods[2][0]
    assert summed[("user", "u1", first)] == (2, 3.5)
    assert summed[("team", "t1", first)] == (3, 3.5)  # the owner-less fact too
    assert ("user", None, first) not in summed and ("team", None, first) not in summed


def test_a_person_fills_its_blanks_from_the_records_merged_into_it(org: Org) -> None:
    """k_persons: a contact and the leads converted into it are one person, with the
    contact's own owner, region, channel and account where it has them, else the largest
    of its leads', and the earliest creation of them all; a lead converted into a contact
    that was itself converted on is the contact's, not the final person's."""
    from kpisync.kpi.context import Context

    org.user("u1"), org.user("u2"), org.user("u3", team="T2")
    t = "2026-{}Z".format
    lead = {"kind": "lead", "converted_at": t("02-10T00:00:00")}
    org.contact("c1", None, created_at=t("02-01T00:00:00"), channel="inbound", region="EU")
    org.contact("L1", "u2", created_at=t("01-25T00:00:00"), channel="web", account_id="a1",
                converted_contact_id="c1", **lead)  # fmt: skip
    org.contact("L2", "u3", created_at=t("01-28T00:00:00"), region="US", account_id="a2",
                converted_contact_id="c1", **lead)  # fmt: skip
    org.contact("c2", "u1", created_at=t("02-03T00:00:00"))  # no leads: itself
    # a chain: L3 was converted into L4, which was converted into c2
    org.contact("L4", None, created_at=t("01-05T00:00:00"), converted_contact_id="c2", **lead)
    org.contact("L3", "u2", created_at=t("01-20T00:00:00"), region="APAC", converted_contact_id="L4", **lead)
    with Context(org.store.conn, KpiSettings(), parse_as_of(AS_OF)):
        persons = {
            r[0]: r[1:]
            for r in org.store.conn.execute(
                "SELECT id, owner_id, team, region, channel, account_id, created_at FROM k_persons"
            )
        }
        mapped = dict(org.store.conn.execute("SELECT contact_id, person_id FROM k_person_map"))
    assert mapped == {"c1": "c1", "L1": "c1", "L2": "c1", "c2": "c2", "L4": "c2", "L3": "L4"}
    assert persons == {
        # owner: c1 has none, the largest of L1's u2 and L2's u3; channel and region its own
        "c1": ("u3", "T2", "EU", "inbound", "a2", t("01-25T00:00:00")),
        # c2's own values; created at L4's earlier creation
        "c2": ("u1", "T1", None, None, None, t("01-05T00:00:00")),
        # L4 is merged into c2, but L3 maps to it: a person of L3 alone, under L4's id
        "L4": ("u2", "T1", "APAC", None, None, t("01-20T00:00:00")),
    }


@pytest.mark.parametrize("xs", [[3.0], [2.5, 1.0], [5.0, 1.0, 4.0], [0.1, 0.7, 0.2, 0.4], [1, 2, 2, 9, 7]])
def test_the_median_is_the_statistics_median(xs: list[float]) -> None:
    import statistics

    from kpisync.kpi.aggregate import _median

    assert _median(list(xs)) == statistics.median(xs)


def test_rows_without_an_id_are_skipped_not_a_crash(org: Org) -> None:
    """SQLite lets a store's id (or a lifecycle event's stage) be NULL, whichever tool wrote
    it; the live tables keyed by them skip such rows, which no record could refer to."""
    build_deals(org)
    before = {(v["kpi"], v["grain"], v["key"], v["period"]): v["value"] for v in _computed(org)}
    conn = org.store.conn
    for table, created in (("users", None), ("contacts", "2026-02-01"), ("opportunities", "2026-02-02"),
                           ("accounts", "2025-01-01")):  # fmt: skip
        columns = "id, owner_id, created_at, is_deleted" if created else "id, name, team"
        values = f"NULL, 'u1', '{created}T00:00:00Z', 0" if created else "NULL, 'ghost', 'T1'"
        conn.execute(f"INSERT INTO {table} ({columns}) VALUES ({values})")
    conn.execute(
        "INSERT INTO lifecycle_events (contact_id, stage, entered_at) VALUES ('c1', NULL, ?)", ("2026-02-11T00:00:00Z",)
    )
    conn.commit()
    after = {(v["kpi"], v["grain"], v["key"], v["period"]): v["value"] for v in _computed(org)}
    assert after == before
    assert before[("new_opportunities", "org", "", "2026-02")] > 0


def _computed(org: Org) -> list[dict[str, object]]:
    return engine.to_json(engine.compute(org.store, KpiSettings(), as_of=AS_OF))["kpis"]  # type: ignore[no-any-return]
