"""A compute on several connections at once (kpisync.kpi.workers) gives the values of one."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from kpi_orgs import generated_org

from kpisync.generator import DEFAULT_NOW
from kpisync.kpi import engine, live, staging, workers
from kpisync.kpi.settings import MAX_WORKERS, KpiSettings
from kpisync.store import Store


@pytest.fixture(scope="module")
def org_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generated_org(tmp_path_factory, "workers", seed=7)


@pytest.fixture
def scratch_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Where the computes put their scratch folders (to see that they are removed)."""
    root = tmp_path / "scratch"
    root.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(root))
    yield root


def _values(store: Store) -> list[tuple[object, ...]]:
    return store.conn.execute(
        "SELECT kpi, grain, key, period, value, numerator, denominator, unit FROM kpi_values ORDER BY 1, 2, 3, 4"
    ).fetchall()


def _staging_tables(store: Store) -> list[str]:
    return [
        row[0]
        for row in store.conn.execute("SELECT name FROM sqlite_master WHERE name LIKE ?", (f"{staging.PREFIX}%",))
    ]


def _attached(store: Store) -> set[str]:
    """The databases attached to the store's connection, besides its own and temp."""
    return {row[1] for row in store.conn.execute("PRAGMA database_list")} - {"main", "temp"}


def test_workers_compute_the_values_of_one_connection(
    org_path: Path, scratch_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ran: list[int] = []
    real_run = workers.run
    monkeypatch.setattr(workers, "run", lambda schedule, n, *rest: (ran.append(n), real_run(schedule, n, *rest)))
    with Store.open(org_path) as store:
        engine.compute(store, KpiSettings(workers=1), as_of=DEFAULT_NOW)
        alone = _values(store)
        assert ran == []  # one worker: the store's own connection and temp tables
        result = engine.compute(store, KpiSettings(workers=3), as_of=DEFAULT_NOW)
        assert ran == [3]
        assert _values(store) == alone and len(alone) > 10_000
        assert len(result.values) == len(alone)
        assert _attached(store) == set()
    assert list(scratch_root.iterdir()) == []


def test_an_error_in_a_worker_stops_the_compute_and_keeps_the_old_values(
    org_path: Path, scratch_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = engine._compute_group

    def failing(ctx, group, out, timings):  # type: ignore[no-untyped-def]
        if any(defn.id == "touches" for defn, _ in group):
            raise RuntimeError("disk on fire")
        real(ctx, group, out, timings)

    with Store.open(org_path) as store:
        engine.compute(store, KpiSettings(workers=2), as_of=DEFAULT_NOW, kpis=["win_rate", "touches"])
        before = store.conn.execute("SELECT * FROM kpi_values ORDER BY 1, 2, 3, 4").fetchall()
        monkeypatch.setattr(engine, "_compute_group", failing)
        with pytest.raises(RuntimeError, match="disk on fire"):
            engine.compute(store, KpiSettings(workers=2), as_of="2026-01-01T00:00:00Z")
        assert store.conn.execute("SELECT * FROM kpi_values ORDER BY 1, 2, 3, 4").fetchall() == before
        assert _attached(store) == set() and not store.conn.in_transaction
        assert _staging_tables(store) == []  # the groups copied before the error are gone too
    assert list(scratch_root.iterdir()) == []


def test_a_parallel_compute_of_some_kpis_replaces_only_their_rows(org_path: Path, tmp_path: Path) -> None:
    path = tmp_path / "org.db"
    shutil.copy(org_path, path)
    with Store.open(path) as store:
        engine.compute(store, KpiSettings(workers=1), as_of=DEFAULT_NOW)
        everything = _values(store)
        others = store.conn.execute("SELECT * FROM kpi_values WHERE kpi NOT IN ('win_rate', 'touches')").fetchall()
        store.conn.execute("UPDATE kpi_values SET value = -1 WHERE kpi IN ('win_rate', 'touches')")
        result = engine.compute(store, KpiSettings(workers=2), as_of=DEFAULT_NOW, kpis=["win_rate", "touches"])
        assert _values(store) == everything  # the two recomputed, the rest untouched
        assert store.conn.execute("SELECT * FROM kpi_values WHERE kpi NOT IN ('win_rate', 'touches')").fetchall() == (
            others
        )
        assert {v["kpi"] for v in result.values} == {"win_rate", "touches"}
        assert _staging_tables(store) == []


def test_a_compute_drops_the_staging_tables_a_killed_one_left(org_path: Path, tmp_path: Path) -> None:
    path = tmp_path / "org.db"
    shutil.copy(org_path, path)
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    left = f"{staging.PREFIX}{gone.stdout.strip()}_0badc0de"  # its process was killed
    running = f"{staging.PREFIX}{os.getpid()}_0000beef"  # another compute of this process, still going
    with Store.open(path) as store:
        for name in (left, running):
            store.conn.execute(f'CREATE TABLE "{name}" (kpi TEXT)')
        engine.compute(store, KpiSettings(workers=2), as_of=DEFAULT_NOW, kpis=["win_rate", "touches"])
        assert _staging_tables(store) == [running]


@pytest.mark.parametrize("secure_delete", ["ON", "OFF", "FAST"])
def test_a_compute_gives_the_store_connection_its_settings_back(org_path: Path, secure_delete: str) -> None:
    def settings(conn: sqlite3.Connection) -> list[int]:
        pragmas = ("cache_size", "secure_delete")
        return [conn.execute(f"PRAGMA {s}.{p}").fetchone()[0] for s in ("main", "temp") for p in pragmas]

    with Store.open(org_path) as store:
        store.conn.execute(f"PRAGMA secure_delete = {secure_delete}")
        before = settings(store.conn)
        with workers.tuned(store.conn):
            # superseded values are dropped without zeroing each freed page
            assert settings(store.conn) == [-workers.CACHE_KIB, 2] * 2
        engine.compute(store, KpiSettings(workers=2), as_of=DEFAULT_NOW, kpis=["win_rate"])
        assert settings(store.conn) == before
    assert before[0] != -workers.CACHE_KIB and before[1] == ("OFF", "ON", "FAST").index(secure_delete)


def test_the_scratch_database_is_built_and_read_without_checkpoints(tmp_path: Path) -> None:
    """The live tables stay in the scratch WAL: the build makes no checkpoint, and the
    workers read it read-only, so the last to close does not copy it into a file that
    is deleted right after."""
    live_db = tmp_path / "live.db"
    builder = sqlite3.connect(tmp_path / "store.db", isolation_level=None)
    workers.attach(builder, live_db, "k_live", shared=True)
    reader = workers.connect(live_db)
    with workers.no_checkpoints(builder):
        assert builder.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 0
        builder.execute(  # ~6 MB, past the 1,000-page (4 MB) automatic checkpoint
            """CREATE TABLE k_live.k_acts AS WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n
            WHERE i < 50000) SELECT i, randomblob(100) AS pad FROM n"""
        )
    assert builder.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 1000
    assert reader.execute("SELECT count(*) FROM k_acts").fetchone()[0] == 50000
    with pytest.raises(sqlite3.OperationalError, match="readonly"):
        reader.execute("CREATE TABLE mine (x)")
    # a worker writes its temp tables and its group's own file
    reader.execute("CREATE TEMP TABLE k_roll AS SELECT i FROM k_acts WHERE i <= 10")
    workers.attach(reader, tmp_path / "group0.db", "out")
    reader.execute("CREATE TABLE out.k_out AS SELECT i FROM temp.k_roll")
    assert reader.execute("SELECT count(*) FROM out.k_out").fetchone()[0] == 10
    builder.execute("DETACH DATABASE k_live")
    builder.close()
    reader.close()
    assert (tmp_path / "live.db-wal").stat().st_size > 5_000_000
    assert live_db.stat().st_size < 64 * 1024


def test_support_kpis_wait_for_no_people_or_activity_table() -> None:
    """Workers start on a group once the tables it reads exist: the case KPIs read the
    cases and accounts, so they start seconds before the people and activities exist."""
    (group,) = workers.sharing_groups(engine.select(["cases_opened", "cases_closed"]), lambda c: {"cases"})
    needed = engine.tables_needed(group)
    assert {"k_cases", "k_users", "k_accounts"} <= needed
    assert not needed & {"k_persons", "k_acts", "k_lc", "k_spend"}
    built = [name for name, _ in live.LIVE_TABLES]
    assert max(built.index(t) for t in needed) < built.index("k_persons")
    (channel,) = workers.sharing_groups(engine.select(["lead_contact_rate"]), lambda c: {"x"})
    assert {"k_persons", "k_opps", "k_spend"} <= engine.tables_needed(channel)  # the channel grain's universe


def test_kpis_sharing_a_family_are_grouped() -> None:
    families = {"a": {"f"}, "b": {"g"}, "c": {"h"}, "d": {"g", "f"}, "e": set(), "f": {"h"}}
    groups = workers.sharing_groups(list(families), families.__getitem__)
    assert groups == [["a", "b", "d"], ["c", "f"], ["e"]]


@pytest.mark.parametrize(("cpus", "count"), [(1, 1), (2, 2), (64, MAX_WORKERS)])
def test_worker_count_follows_the_cpus_up_to_a_bound(cpus: int, count: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(cpus)), raising=False)
    assert KpiSettings().worker_count == count
    assert KpiSettings(workers=7).worker_count == 7  # what the YAML says wins
    with pytest.raises(ValueError, match="workers"):
        KpiSettings(workers=0)


def test_a_write_to_the_store_during_the_build_makes_it_compute_again_in_one_snapshot(
    org_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The workers start while the live tables are built table by table: a commit from
    elsewhere in between would mix two states of the store, so the compute starts over."""
    path = tmp_path / "org.db"
    shutil.copy(org_path, path)
    real_built = workers.Schedule.built
    wrote: list[str] = []

    def built(self, table: str, rows: int) -> None:  # type: ignore[no-untyped-def]
        if table == "k_contacts" and not wrote:  # k_cases is not built yet
            other = sqlite3.connect(path)
            user, account = other.execute("SELECT owner_id, id FROM accounts LIMIT 1").fetchone()
            other.execute(
                "INSERT INTO cases (id, owner_id, account_id, created_at, closed_at, is_deleted) "
                "VALUES ('late-case', ?, ?, '2026-01-10T00:00:00Z', '2026-01-11T00:00:00Z', 0)",
                (user, account),
            )
            other.commit()
            other.close()
            wrote.append(user)
        real_built(self, table, rows)

    monkeypatch.setattr(workers.Schedule, "built", built)
    with Store.open(path) as store:
        engine.compute(store, KpiSettings(workers=2), as_of=DEFAULT_NOW)
        assert wrote and "computing again in one snapshot" in caplog.text
        again = _values(store)
        engine.compute(store, KpiSettings(workers=1), as_of=DEFAULT_NOW)
        assert again == _values(store)
    closed = [r for r in again if r[:4] == ("cases_closed", "user", wrote[0], "2026-01")]
    assert closed and closed[0][4] >= 1


def test_a_compute_removes_the_scratch_folders_a_killed_one_left(org_path: Path, scratch_root: Path) -> None:
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    left = scratch_root / f"{workers.SCRATCH_PREFIX}{gone.stdout.strip()}-abc"  # its process was killed
    running = scratch_root / f"{workers.SCRATCH_PREFIX}{os.getpid()}-def"  # another compute, still going
    for folder in (left, running):
        folder.mkdir()
        (folder / "live.db").write_bytes(b"x" * 1000)
    with Store.open(org_path) as store:
        engine.compute(store, KpiSettings(workers=2), as_of=DEFAULT_NOW, kpis=["win_rate", "touches"])
    assert sorted(p.name for p in scratch_root.iterdir()) == [running.name]


def test_the_schedule_hands_out_the_longest_ready_group_first() -> None:
    needs = {"a": {"t1"}, "b": {"t2"}, "c": {"t1", "t2"}}
    for cost, order in ((None, ["c", "b", "a"]), ({"a": 5.0, "b": 0.1, "c": 1.0}, ["a", "c", "b"])):
        schedule = workers.Schedule(list(needs), needs.__getitem__, while_building=1, cost=cost)
        schedule.built("t1", 10)
        schedule.built("t2", 1000)
        schedule.all_built()
        # without seconds measured before: the rows read; with them: the seconds
        assert [schedule.next() for _ in range(4)] == [*order, None]


def test_a_parallel_compute_orders_its_groups_by_the_seconds_they_took_before(
    org_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    costs: list[object] = []
    real = workers.Schedule

    def schedule(*args, cost=None, **kwargs):  # type: ignore[no-untyped-def]
        costs.append(cost)
        return real(*args, cost=cost, **kwargs)

    monkeypatch.setattr(workers, "Schedule", schedule)
    monkeypatch.setattr(engine, "_LAST_SECONDS", {})
    kpis = ["win_rate", "touches", "nps"]
    with Store.open(org_path) as store:
        earlier = engine.compute(store, KpiSettings(workers=2), as_of=DEFAULT_NOW, kpis=kpis)
        engine.compute(store, KpiSettings(workers=2), as_of=DEFAULT_NOW, kpis=kpis)
    assert costs[0] is None  # nothing measured yet: by rows
    # three groups of one KPI each, weighed by what each took the time before
    assert isinstance(costs[1], dict)
    assert sorted(costs[1].values()) == sorted(earlier.timings[k] for k in kpis)
