"""`kpisync run`: two CRMs on short intervals, SIGTERM mid-sync, SIGHUP, one writer per store."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from kpisync.config import load_config
from kpisync.connectors import sandbox as sandboxes
from kpisync.connectors.sandbox.server import Fault
from kpisync.store import Store
from kpisync.sync import jobs
from tests.test_cycle import professional_tier


def quick_config(sandbox: Any, every: str = "2s") -> Path:
    """The sandbox's config on a short schedule with few KPI periods."""
    data = yaml.safe_load(sandbox.config_path.read_text(encoding="utf-8"))
    data["schedule"] = {"sync": every, "reconcile": "0 3 * * *"}
    data["kpi"] = {**(data.get("kpi") or {}), "months": 1, "quarters": 1, "years": 0}
    professional_tier(sandbox, data)
    sandbox.config_path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return Path(sandbox.config_path)


@pytest.fixture(scope="module")
def both(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    started = {
        crm: sandboxes.start(crm, size="small", seed=5, data_dir=tmp_path_factory.mktemp(crm))
        for crm in ("salesforce", "hubspot")
    }
    try:
        yield started
    finally:
        for sandbox in started.values():
            sandbox.stop()


def daemon(*configs: Path, log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "kpisync.cli", "-v", "run", *map(str, configs)],
        stdout=subprocess.DEVNULL,
        stderr=open(log, "wb"),
    )


def runs(config: Path, kind: str, status: str = "ok") -> int:
    store = load_config(config).store_path
    if not store.exists():
        return 0
    conn = sqlite3.connect(store)
    try:
        return int(
            conn.execute("SELECT count(*) FROM sync_runs WHERE kind = ? AND status = ?", (kind, status)).fetchone()[0]
        )
    except sqlite3.OperationalError:
        return 0
    finally:
        conn.close()


def wait_for(predicate: Any, timeout: float, proc: subprocess.Popen[bytes] | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"daemon exited early with {proc.returncode}")
        time.sleep(0.3)
    raise AssertionError("timed out")


def test_two_crms_on_schedule_then_sigterm(both: dict[str, Any], tmp_path: Path) -> None:
    sf, hs = (quick_config(both[c]) for c in ("salesforce", "hubspot"))
    for config in (sf, hs):
        jobs.provision(load_config(config))  # the admin's one-time step before the daemon
    log = tmp_path / "daemon.log"
    proc = daemon(sf, hs, log=log)
    try:
        # a few cycles each: the first pulls everything, later ones are incremental
        wait_for(lambda: runs(sf, "sync-incremental") >= 2 and runs(hs, "sync-incremental") >= 2, 240, proc)
        # a second daemon on the same stores is refused and says who holds them
        second = subprocess.run(
            [sys.executable, "-m", "kpisync.cli", "run", str(sf)], capture_output=True, text=True, timeout=60
        )
        assert second.returncode == 2
        assert "is in use by pid" in second.stderr and str(proc.pid) in second.stderr
        # SIGHUP with a broken file keeps the running config
        good = sf.read_text(encoding="utf-8")
        sf.write_text(good + "\nschedule: {sync: 'every 5 minutez'}\n", encoding="utf-8")
        proc.send_signal(signal.SIGHUP)
        wait_for(lambda: "keeping the running config" in log.read_text(errors="replace"), 30, proc)
        sf.write_text(good, encoding="utf-8")
        before = runs(sf, "sync-incremental")
        wait_for(lambda: runs(sf, "sync-incremental") > before, 60, proc)
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=60)
    assert code == 0, log.read_text(errors="replace")[-2000:]
    text = log.read_text(errors="replace")
    assert "Traceback" not in text
    # write-back ran on schedule, and the CRM accepted every value (tests/test_cycle.py checks the values)
    for config in (sf, hs):
        cfg = load_config(config)
        with Store.open(cfg.store_path) as store:
            assert store.count("writeback_state") > 100
            assert store.count("writeback_errors") == 0
            kinds = [k for (k,) in store.conn.execute("SELECT kind FROM sync_runs ORDER BY id")]
            # the first pull read everything: status says so
            assert kinds[0] == "sync-initial" and kinds.count("sync-initial") == 1
            assert "sync-incremental" in kinds


def test_sigterm_mid_sync_leaves_a_store_the_next_run_completes(both: dict[str, Any], tmp_path: Path) -> None:
    sandbox = both["salesforce"]
    config_path = quick_config(sandbox, every="1h")
    data = yaml.safe_load(config_path.read_text(encoding="utf-8"))
    data["store"] = str(tmp_path / "interrupted.db")
    interrupted = config_path.parent / "interrupted.yaml"  # beside it: secret files are relative
    interrupted.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    sandbox.server.faults.add(Fault("slow", path=r"/query", delay_s=0.4, times=0))
    log = tmp_path / "daemon.log"
    proc = daemon(interrupted, log=log)
    try:
        store_file = tmp_path / "interrupted.db"

        def some_rows_stored() -> bool:
            if not store_file.exists():
                return False
            conn = sqlite3.connect(store_file)
            try:
                return conn.execute("SELECT count(*) FROM sync_state").fetchone()[0] >= 2
            except sqlite3.OperationalError:
                return False
            finally:
                conn.close()

        wait_for(some_rows_stored, 120, proc)
        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=60)
        assert code == 0 and time.monotonic() - started < 30
    finally:
        sandbox.server.faults.clear()
        if proc.poll() is None:
            proc.kill()
    cfg = load_config(interrupted)
    with Store.open(cfg.store_path) as store:
        assert store.conn.execute("SELECT status FROM sync_runs ORDER BY id DESC").fetchone()[0] == "stopped"
        assert store.conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert jobs.sync(cfg).ok  # the next run completes from the cursors it left
    # …and holds exactly what a clean full sync holds
    data["store"] = str(tmp_path / "clean.db")
    clean = config_path.parent / "clean.yaml"
    clean.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    assert jobs.sync(load_config(clean)).ok
    tables = (
        "users",
        "accounts",
        "contacts",
        "opportunities",
        "activities",
        "cases",
        "lifecycle_events",
        "opportunity_stage_history",
    )
    a, b = Store.open(tmp_path / "interrupted.db"), Store.open(tmp_path / "clean.db")
    for table in tables:
        key = "id" if table not in ("lifecycle_events", "opportunity_stage_history") else "*"
        got = sorted(
            map(
                tuple,
                a.conn.execute(f"SELECT {key}, is_deleted FROM {table}" if key == "id" else f"SELECT * FROM {table}"),
            )
        )
        want = sorted(
            map(
                tuple,
                b.conn.execute(f"SELECT {key}, is_deleted FROM {table}" if key == "id" else f"SELECT * FROM {table}"),
            )
        )
        assert got == want, table
