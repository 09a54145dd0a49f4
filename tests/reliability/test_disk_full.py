"""Disk full: `kpisync sync` on a store that hits its size limit (SQLite's
`PRAGMA max_page_count`, set on every store connection the CLI opens — the
portable stand-in for a full filesystem) exits non-zero with one clear line and
no traceback; the file passes `PRAGMA integrity_check`, no cursor points past rows
the store lacks, and the next run with room completes with a clean sync's store."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

from kpisync.config import load_config
from kpisync.sync import jobs
from tests.reliability.conftest import edit_config, integrity, kpisync, store_path
from tests.reliability.test_kill import _content

# the real CLI, with every store it opens capped at KPISYNC_TEST_MAX_PAGES pages
_LIMITED_CLI = """
import os, sys
from kpisync import store as store_mod
_open = store_mod.Store.open.__func__
def _limited(cls, path, **kw):
    store = _open(cls, path, **kw)
    store.conn.execute("PRAGMA max_page_count = " + os.environ["KPISYNC_TEST_MAX_PAGES"])
    return store
store_mod.Store.open = classmethod(_limited)
from kpisync.cli import main
sys.argv = ["kpisync", *sys.argv[1:]]
main()
"""


def _grow_crm(box: Any, n: int) -> None:
    """n new activities with long subjects: more rows than the capped store can take."""
    text = "Follow-up on the renewal terms " * 70  # ~2 kB a row
    if box.crm == "salesforce":
        owner = box.sf_id("u0001")
        for i in range(n):
            box.insert(
                "Task",
                {
                    "Subject": f"{text}{i}",
                    "OwnerId": owner,
                    "TaskSubtype": "Call",
                    "Type": "Call",
                    "Status": "Completed",
                    "IsClosed": True,
                    "ActivityDate": "2026-11-02",
                    "CompletedDateTime": "2026-11-02T10:00:00.000+0000",
                },
            )
    else:
        import time

        now = int(time.time() * 1000)
        rows = [
            {"hs_call_title": f"{text}{i}", "hs_timestamp": str(now - 60_000), "hs_call_direction": "OUTBOUND"}
            for i in range(n)
        ]
        box.bulk_add("calls", rows, [now - 1000 + i % 500 for i in range(n)])


def _pages(db: Path) -> int:
    conn = sqlite3.connect(db)
    try:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return int(conn.execute("PRAGMA page_count").fetchone()[0])
    finally:
        conn.close()


def test_sync_into_a_full_store_fails_cleanly_and_resumes(box: Any, tmp_path: Path) -> None:
    config = box.config_path
    assert jobs.sync(load_config(config)).ok  # the store as it was before the CRM grew
    db = store_path(config)
    _grow_crm(box, 300)
    cursors_before = dict(sqlite3.connect(db).execute("SELECT object, cursor FROM sync_state"))

    env = {**os.environ, "KPISYNC_TEST_MAX_PAGES": str(_pages(db) + 8)}
    done = subprocess.run(
        [sys.executable, "-c", _LIMITED_CLI, "sync", str(config)], capture_output=True, text=True, timeout=300, env=env
    )
    assert done.returncode != 0, done.stdout
    err = done.stderr.strip()
    assert "Traceback" not in done.stderr and len(err.splitlines()) == 1, done.stderr
    assert err.startswith("error: ") and "database or disk is full" in err and str(db) in err, err
    assert integrity(db) == "ok"
    cursors_after = dict(sqlite3.connect(db).execute("SELECT object, cursor FROM sync_state"))
    assert set(cursors_after) == set(cursors_before)
    status, error = sqlite3.connect(db).execute("SELECT status, error FROM sync_runs ORDER BY id DESC").fetchone()
    assert status == "failed" and "database or disk is full" in error

    kpisync("sync", str(config), check=True)  # with room again
    clean_cfg = config.with_name("clean.yaml")
    clean_cfg.write_text(config.read_text())
    edit_config(clean_cfg, store=str(tmp_path / "clean.db"))
    assert jobs.sync(load_config(clean_cfg)).ok
    assert integrity(db) == "ok"
    mine, clean = _content(db), _content(tmp_path / "clean.db")
    assert mine["activities"][0] >= 300
    assert mine == clean
