"""Store safety: `kpisync sync` killed with SIGKILL at seeded random moments leaves
an intact SQLite file, the next run completes, and the result equals a clean sync."""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.reliability.conftest import edit_config, kpisync, store_path

TABLES = (
    "users",
    "accounts",
    "contacts",
    "opportunities",
    "opportunity_stage_history",
    "activities",
    "lifecycle_events",
    "cases",
)


def _content(db: Path) -> dict[str, tuple[int, list[str]]]:
    """Per table: row count and the sorted first-column values (ids, or the history's parent ids)."""
    conn = sqlite3.connect(db)
    try:
        out = {}
        for table in TABLES:
            rows = conn.execute(f"SELECT * FROM {table}").fetchall()
            out[table] = (len(rows), sorted(str(r[0]) for r in rows))
        return out
    finally:
        conn.close()


def _integrity(db: Path) -> str:
    conn = sqlite3.connect(db)
    try:
        return str(conn.execute("PRAGMA integrity_check").fetchone()[0])
    finally:
        conn.close()


def _kill_after(config: Path, delay: float) -> None:
    env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
    child = subprocess.Popen(
        [sys.executable, "-m", "kpisync.cli", "sync", "--full", str(config)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    time.sleep(delay)
    if child.poll() is None:
        child.send_signal(signal.SIGKILL)
    child.wait(timeout=30)


@pytest.mark.parametrize(
    "kills", [pytest.param(2, id="quick"), pytest.param(50, id="full", marks=pytest.mark.full_matrix)]
)
def test_sigkill_during_sync_never_corrupts_or_loses(box: Any, tmp_path: Path, kills: int) -> None:
    config = box.config_path
    rng = random.Random(f"kill-{box.crm}")
    for _ in range(kills):
        _kill_after(config, rng.uniform(0.8, 3.5))
        db = store_path(config)
        if db.exists():
            assert _integrity(db) == "ok"
    kpisync("sync", str(config), check=True)
    killed = _content(store_path(config))
    assert _integrity(store_path(config)) == "ok"
    # oracle: a clean sync of the same CRM into a fresh store
    clean_cfg = config.with_name("clean.yaml")
    clean_cfg.write_text(config.read_text())
    edit_config(clean_cfg, store=str(tmp_path / "clean.db"))
    kpisync("sync", str(clean_cfg), check=True)
    clean = _content(tmp_path / "clean.db")
    assert sum(n for n, _ in clean.values()) > 100
    assert killed == clean
