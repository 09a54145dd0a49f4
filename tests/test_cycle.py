"""The whole job against each sandbox CRM, with the real clients over HTTPS:
provision → sync → compute → write-back, then what the CRM holds equals kpi_values;
a cycle with no change writes nothing; one change writes exactly what it affects;
a rejected write is recorded and retried, a record the CRM deleted is dropped."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
import yaml

from kpisync.config import Config, load_config
from kpisync.connectors import sandbox as sandboxes
from kpisync.store import Store
from kpisync.sync import jobs
from kpisync.sync import writeback as wb
from kpisync.timestamps import format_ts, parse_ts, utc_now

WRITE_PATHS = {"salesforce": r"/composite/sobjects", "hubspot": r"/batch/(update|upsert)"}


def professional_tier(sandbox: Any, data: dict[str, Any]) -> None:
    """A HubSpot portal on Professional (190 calls per ten seconds) and kpisync paced to it:
    these tests are about whole cycles, and the Free tier's 100 makes them wait on pacing
    (tests/hubspot covers pacing itself)."""
    if hasattr(sandbox, "limits"):
        sandbox.limits.ten_secondly = 190
        data["connection"] = {**(data.get("connection") or {}), "requests_per_10s": 180}


@pytest.fixture(scope="module", params=["salesforce", "hubspot"])
def crm(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Any, Config]]:
    folder = tmp_path_factory.mktemp(request.param)
    sandbox = sandboxes.start(request.param, size="small", seed=11, data_dir=folder)
    # fewer calendar periods than the default 12 months: the same code paths, a faster suite
    data = yaml.safe_load(sandbox.config_path.read_text(encoding="utf-8"))
    data["kpi"] = {**(data.get("kpi") or {}), "months": 2, "quarters": 1, "years": 0}
    professional_tier(sandbox, data)
    sandbox.config_path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    try:
        yield request.param, sandbox, load_config(sandbox.config_path)
    finally:
        sandbox.stop()


def crm_value(name: str, sandbox: Any, obj: str, record_id: str, field: str) -> float | None:
    if name == "salesforce":
        raw = sandbox.field_value(record_id, field)
    elif obj.startswith("2-"):  # HubSpot scorecard: found by its unique key property
        raw = next((r.get(field) for r in _scorecards(sandbox, obj) if r.get("kpi_scorecard_key") == record_id), None)
    else:
        raw = sandbox.read(obj, int(record_id)).get(field)
    return None if raw in (None, "") else float(raw)


def _scorecards(sandbox: Any, obj: str) -> list[dict[str, Any]]:
    import json

    with sandbox.portal.lock:
        rows = sandbox.portal.conn.execute(
            "SELECT props FROM records WHERE type = ?", (sandbox.portal.resolve_type(obj),)
        ).fetchall()
    return [json.loads(r[0]) for r in rows]


def desired(store: Store, config: Config, connector: Any) -> dict[tuple[str, str, str], float | None]:
    """What every write-back field should hold now, by planning against an empty state."""
    as_of = parse_ts(store.conn.execute("SELECT max(computed_at) FROM kpi_values").fetchone()[0])
    out: dict[tuple[str, str, str], float | None] = {}
    # records a write-back was told are gone (deleted in the CRM before the store's next
    # deletion check saw it) get no writes either
    gone = set(
        store.conn.execute("SELECT object, record_id FROM writeback_state WHERE crm = ? AND gone = 1", (config.crm,))
    )
    for target in config.writeback_targets():
        label = wb.period_label(target.period, as_of, config.timezone)
        for key, value, unit, source in store.conn.execute(
            "SELECT v.key, v.value, v.unit, c.source_object FROM kpi_values v "
            "LEFT JOIN contacts c ON c.id = v.key AND v.grain = 'contact' "
            "WHERE v.kpi = ? AND v.grain = ? AND v.period = ? "
            # deactivated reps and deleted records get no writes
            "AND NOT EXISTS (SELECT 1 FROM users u WHERE v.grain = 'user' AND u.id = v.key AND u.is_active = 0) "
            "AND coalesce(c.is_deleted, 0) = 0 "
            "AND NOT EXISTS (SELECT 1 FROM accounts a WHERE v.grain = 'account' AND a.id = v.key AND a.is_deleted = 1) "
            "AND NOT EXISTS (SELECT 1 FROM opportunities o WHERE v.grain = 'opportunity' AND o.id = v.key AND o.is_deleted = 1)",
            (target.kpi, target.grain, label),
        ):
            located = connector.locate(target.grain, key, source, label)
            if located is not None and value is not None and (located[0], located[1]) not in gone:
                out[(located[0], located[1], target.field)] = wb.written_value(target.kpi, value, unit)
    return out


def test_full_cycle_converges_and_stays_quiet(crm: tuple[str, Any, Config]) -> None:
    name, sandbox, config = crm
    as_of = format_ts(parse_ts(utc_now()) + timedelta(minutes=5))  # after every change below: one view throughout

    created = jobs.provision(config)
    assert any(c.done for c in created)
    again = jobs.provision(config)
    assert not any(c.done for c in again), "provisioning twice creates nothing the second time"

    summary = jobs.sync(config)
    assert summary.ok, summary.error
    with jobs.opened(config, "test") as store:
        jobs.compute(config, store=store, as_of=as_of)
    result = jobs.writeback(config)
    assert result.failed == 0 and result.written > 100

    with jobs.opened(config, "test") as store, jobs.connected(config) as connector:
        want = desired(store, config, connector)
        state = {
            (o, r, f): (None if v is None else float(v))
            for o, r, f, v in store.conn.execute(
                "SELECT object, record_id, field, value FROM writeback_state WHERE coalesce(gone, 0) = 0"
            )
        }
    assert want and {k: v for k, v in state.items() if v is not None} == want
    # what the CRM holds (read back from the sandbox) equals kpi_values, rounded to the field
    for (obj, record_id, field), value in list(want.items())[:: max(1, len(want) // 300)]:
        held = crm_value(name, sandbox, obj, record_id, field)
        scale = 100.0 if name == "salesforce" and field in _percent_fields(config) else 1.0
        assert held == pytest.approx(value * scale, abs=1e-6), (obj, record_id, field)

    # a second cycle with nothing changed sends no write at all
    before = sandbox.server.calls(WRITE_PATHS[name])
    assert jobs.sync(config).ok
    with jobs.opened(config, "test") as store:
        jobs.compute(config, store=store, as_of=as_of)
    quiet = jobs.writeback(config)
    assert quiet.changes == [] and quiet.calls == 0
    assert sandbox.server.calls(WRITE_PATHS[name]) == before

    # one touch deleted in the CRM → exactly the fields it affects are written
    with jobs.opened(config, "test") as store:
        touch_id, contact_id = store.conn.execute(
            "SELECT id, contact_id FROM activities WHERE type = 'call' AND direction = 'outbound' "
            "AND contact_id IS NOT NULL AND opportunity_id IS NOT NULL AND coalesce(is_deleted, 0) = 0 "
            "ORDER BY occurred_at DESC LIMIT 1"
        ).fetchone()
    if name == "salesforce":
        sandbox.delete(touch_id)
    else:
        sandbox.archive("calls", int(touch_id))
        # search cannot see archived records: they are listed on schedule.deletions (1h) — let it pass
        with jobs.opened(config, "test") as store:
            store.set_cursor("hubspot", "calls.archived", "2000-01-01T00:00:00.000Z")
    assert jobs.sync(config).ok
    with jobs.opened(config, "test") as store, jobs.connected(config) as connector:
        jobs.compute(config, store=store, as_of=as_of)
        assert store.conn.execute("SELECT is_deleted FROM activities WHERE id = ?", (touch_id,)).fetchone() == (1,)
        new_want = desired(store, config, connector)
        expected = {k for k in set(want) | set(new_want) if want.get(k) != new_want.get(k)}
        plan = wb.plan(store, connector, config.writeback_targets(), config.timezone)
    assert expected, "deleting a touch must change some written KPI"
    assert any(k[1] == contact_id for k in expected)
    assert {(c.object, c.record_id, c.field) for c in plan} == expected

    # one of those writes is refused (Salesforce) or its record deleted (HubSpot)
    victim = next(c for c in plan if c.object not in ("User",) and not c.object.startswith("2-"))
    if name == "salesforce":
        sandbox.fail_write(victim.record_id)
    else:
        sandbox.archive(victim.object, int(victim.record_id))
    first = jobs.writeback(config)
    refused = [c for c in plan if c.object == victim.object and c.record_id == victim.record_id]
    with jobs.opened(config, "test") as store:
        errors = store.conn.execute(
            "SELECT record_id, error FROM writeback_errors WHERE record_id = ?", (victim.record_id,)
        ).fetchall()
    assert errors and len(errors) == len(refused)
    if name == "salesforce":
        assert first.failed == len(refused) and "UNABLE_TO_LOCK_ROW" in errors[0][1]
        retried = jobs.writeback(config)  # the next run retries only what was refused
        assert retried.failed == 0
        assert {(c.object, c.record_id, c.field) for c in retried.changes} == {
            (c.object, c.record_id, c.field) for c in refused
        }
    else:
        assert first.gone == len(refused) and first.failed == 0
        assert jobs.writeback(config).changes == []  # dropped, not retried forever
    assert jobs.writeback(config, dry_run=True).changes == []


def _percent_fields(config: Config) -> set[str]:
    from kpisync.kpi import registry

    return {t.field for t in config.writeback_targets() if registry.get(t.kpi).unit == "ratio"}


def test_dry_run_json_lists_changes_and_sends_nothing(crm: tuple[str, Any, Config]) -> None:
    """The CLI path of the same job, after the cycle above converged."""
    import json
    import subprocess
    import sys

    name, sandbox, _config = crm
    cli = [sys.executable, "-m", "kpisync.cli"]
    cfg = str(sandbox.config_path)
    # provisioned and synced here too (a no-op after the cycle above): under xdist this test may
    # run on a worker whose sandbox the cycle never touched, and compute loads the config's
    # quotas.csv, whose emails must name synced users
    for step in ("provision", "sync"):
        proc = subprocess.run([*cli, step, cfg], capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr
    later = format_ts(parse_ts(utc_now()) + timedelta(days=3))  # days open/in stage move on
    proc = subprocess.run([*cli, "kpi", "compute", cfg, "--as-of", later], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    writes_before = sandbox.server.calls(WRITE_PATHS[name])
    proc = subprocess.run([*cli, "writeback", cfg, "--dry-run", "--json"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    changes = json.loads(proc.stdout)["changes"]
    assert changes and set(changes[0]) == {"object", "record_id", "field", "old", "new"}
    assert any(c["field"].lower().endswith(("days_open__c", "days_open")) for c in changes)
    assert sandbox.server.calls(WRITE_PATHS[name]) == writes_before
    proc = subprocess.run([*cli, "writeback", cfg], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    proc = subprocess.run([*cli, "writeback", cfg, "--dry-run", "--json"], capture_output=True, text=True, timeout=300)
    assert json.loads(proc.stdout) == {"changes": []}
