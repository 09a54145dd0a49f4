"""Reliability tests: both sandboxes serving a tiny hand-made org over real HTTPS,
and `kpisync` run as a real subprocess where a crash or a log line matters."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import yaml

from kpisync.store import Store
from tests.hubspot.conftest import canonical_rows

CRMS = ("salesforce", "hubspot")


@pytest.fixture(scope="session")
def canonical_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("canonical") / "canonical.db"
    with Store.open(path) as store:
        for table, rows in canonical_rows().items():
            store.upsert(table, rows)
    return path


def start_box(crm: str, data_dir: Path, canonical: Path) -> Any:
    """One sandbox over the tiny org; the caller stops it."""
    if crm == "salesforce":
        from kpisync.connectors.sandbox.salesforce import start

        return start(data_dir=data_dir, canonical=canonical)
    from kpisync.connectors.sandbox.hubspot import start as start_hs

    source = Store.open(canonical)
    try:
        return start_hs(data_dir=data_dir, canonical=source)
    finally:
        source.close()


@contextmanager
def running_box(crm: str, folder: Path, canonical: Path) -> Iterator[Any]:
    """A sandbox of `crm` serving the canonical org, stopped on the way out."""
    sandbox = start_box(crm, folder, canonical)
    sandbox.crm = crm
    try:
        yield sandbox
    finally:
        sandbox.stop()


@pytest.fixture(params=CRMS)
def box(request: pytest.FixtureRequest, tmp_path: Path, canonical_path: Path) -> Iterator[Any]:
    with running_box(request.param, tmp_path / "sandbox", canonical_path) as sandbox:
        yield sandbox


def kpisync(*args: str, timeout: float = 60, check: bool = False) -> subprocess.CompletedProcess[str]:
    """`kpisync ARGS` in a child process, as an admin runs it."""
    env = {**os.environ, "NO_PROXY": "127.0.0.1,localhost"}
    for var in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY"):
        env.pop(var, None)
    done = subprocess.run(
        [sys.executable, "-m", "kpisync.cli", *args], capture_output=True, text=True, timeout=timeout, env=env
    )
    if check and done.returncode != 0:
        raise AssertionError(f"kpisync {' '.join(args)} → {done.returncode}\n{done.stdout}\n{done.stderr}")
    return done


def edit_config(path: Path, **changes: Any) -> Path:
    """Rewrite top-level sections of a sandbox config (dicts are merged one level deep)."""
    text = path.read_text()
    data = yaml.safe_load(text)
    for key, value in changes.items():
        if isinstance(value, dict) and isinstance(data.get(key), dict):
            data[key].update(value)
        else:
            data[key] = value
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def store_path(config_path: Path) -> Path:
    from kpisync.config import load_config

    return Path(load_config(config_path).store_path)


# ---------------------------------------------------------------- shared checks


def tune(box: Any, **changes: Any) -> Any:
    """The sandbox's config with fewer KPI periods (same code paths, a faster suite) plus `changes`."""
    from kpisync.config import load_config

    edit_config(box.config_path, kpi={"months": 2, "quarters": 1, "years": 0}, **changes)
    return load_config(box.config_path)


def use_oauth(box: Any) -> Any:
    """HubSpot: OAuth (access tokens that expire) instead of the private-app token."""
    from kpisync.connectors.sandbox.hubspot import OAUTH_CLIENT_ID

    return tune(
        box,
        auth={
            "method": "oauth",
            "refresh_token": "${file:hubspot.refresh_token}",
            "client_id": OAUTH_CLIENT_ID,
            "client_secret": "${file:hubspot.client_secret}",
        },
    )


def crm_field(box: Any, obj: str, record_id: str, field: str) -> float | None:
    """What the sandbox CRM holds in a write-back field (Salesforce percent fields as 0–100)."""
    from tests.test_cycle import crm_value

    return crm_value(box.crm, box, obj, record_id, field)


def _scale(box: Any, config: Any, field: str) -> float:
    from tests.test_cycle import _percent_fields

    return 100.0 if box.crm == "salesforce" and field in _percent_fields(config) else 1.0


def assert_state_matches_crm(box: Any, config: Any) -> None:
    """writeback_state never claims a value the CRM does not hold (no lost or phantom write)."""
    from kpisync.sync import jobs

    with jobs.opened(config, "check") as store:
        state = store.conn.execute(
            "SELECT object, record_id, field, value FROM writeback_state WHERE crm = ? AND coalesce(gone, 0) = 0",
            (config.crm,),
        ).fetchall()
    for obj, record_id, field, value in state:
        want = None if value in (None, "") else float(value) * _scale(box, config, field)
        assert crm_field(box, obj, record_id, field) == pytest.approx(want, abs=1e-6), (obj, record_id, field)


def assert_converged(box: Any, config: Any) -> int:
    """Write-back converged: nothing left to write, and every write-back field in the CRM
    equals kpi_values (rounded to the field). HubSpot scorecards exist once per key.
    Returns the number of fields checked."""
    from kpisync.sync import jobs
    from kpisync.sync import writeback as wb
    from tests.test_cycle import _scorecards, desired

    with jobs.opened(config, "check") as store, jobs.connected(config) as connector:
        assert wb.plan(store, connector, config.writeback_targets(), config.timezone) == []
        want = desired(store, config, connector)
    assert want
    for (obj, record_id, field), value in want.items():
        held = crm_field(box, obj, record_id, field)
        assert held == pytest.approx(value * _scale(box, config, field), abs=1e-6), (obj, record_id, field)
    if box.crm == "hubspot":
        scorecard = {o for o, _r, _f in want if o.startswith("2-")}
        for obj in scorecard:
            keys = [r.get("kpi_scorecard_key") for r in _scorecards(box, obj)]
            assert len(keys) == len(set(keys)), "a scorecard written twice"
    return len(want)


def integrity(db: Path) -> str:
    import sqlite3

    conn = sqlite3.connect(db)
    try:
        return str(conn.execute("PRAGMA integrity_check").fetchone()[0])
    finally:
        conn.close()


# ---------------------------------------------------------------- generated doc

# Every test run records the matrix cells it covered into one folder (shared by the
# xdist workers); the controller rewrites docs/reliability.md only when that run
# covered every cell and every cell passed, so the doc never claims a cell not run.
CELLS_ENV = "KPISYNC_RELIABILITY_CELLS"


def record_cell(section: str, key: list[str], outcome: str) -> None:
    import json
    import uuid

    folder = os.environ.get(CELLS_ENV)
    if not folder:
        return
    path = Path(folder) / f"{uuid.uuid4().hex}.json"
    path.write_text(json.dumps({"section": section, "key": key, "outcome": outcome}))
