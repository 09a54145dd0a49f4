"""The jobs one CRM config runs — sync, compute, write-back, provision, doctor —
each opening the store under its lock and closing what it opened.

The CLI and the daemon both call these; neither knows how they are done.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kpisync.config import Config
from kpisync.connectors import build
from kpisync.connectors.base import Change, CheckResult, Connector, FieldDef
from kpisync.store import Store
from kpisync.sync import writeback as wb
from kpisync.sync.engine import RunSummary
from kpisync.sync.engine import sync as run_sync
from kpisync.sync.lock import StoreLock

if TYPE_CHECKING:
    from kpisync.kpi.engine import ComputeResult
    from kpisync.kpi.settings import KpiSettings

log = logging.getLogger("kpisync.jobs")


def kpi_settings(config: Config | None) -> KpiSettings:
    from kpisync.kpi.settings import KpiSettings

    if config is None:
        return KpiSettings()
    return KpiSettings(
        timezone=config.timezone,
        months=config.kpi.months,
        quarters=config.kpi.quarters,
        # the config counts earlier years as it counts earlier months and quarters; the engine
        # counts calendar years including the current one
        years=config.kpi.years + 1,
        proposal_stages=tuple(config.kpi.proposal_stages),
        clv_lifetime_years=config.kpi.clv.lifetime_years,
        clv_cap_years=config.kpi.clv.cap_years,
        workers=config.kpi.workers,
    )


@contextmanager
def opened(config: Config, purpose: str, *, lock: bool = True) -> Iterator[Store]:
    """The config's store, locked against other writers for the duration."""
    store_lock = StoreLock(config.store_path, purpose).acquire() if lock else None
    try:
        with Store.open(config.store_path) as store:
            yield store
    finally:
        if store_lock is not None:
            store_lock.release()


@contextmanager
def connected(config: Config) -> Iterator[Connector]:
    connector = build(config)
    try:
        yield connector
    finally:
        connector.close()


def load_inputs(config: Config, store: Store) -> dict[str, int]:
    inputs = config.inputs
    if not (inputs.quotas_csv or inputs.spend_csv or inputs.surveys_csv):
        return {}
    from kpisync.inputs import load_inputs as load

    return load(store, quotas_csv=inputs.quotas_csv, spend_csv=inputs.spend_csv, surveys_csv=inputs.surveys_csv)


def sync(
    config: Config,
    *,
    full: bool = False,
    objects: Sequence[str] | None = None,
    progress: bool = False,
    stop: threading.Event | None = None,
    store: Store | None = None,
    connector: Connector | None = None,
) -> RunSummary:
    if store is None:
        with opened(config, "sync") as own_store:
            return sync(config, full=full, objects=objects, progress=progress, stop=stop, store=own_store)
    if connector is None:
        with connected(config) as own:
            return sync(config, full=full, objects=objects, progress=progress, stop=stop, store=store, connector=own)
    if progress:
        return _sync_with_progress(config, store, connector, full, objects, stop)
    return run_sync(connector, store, full=full, objects=objects, stop=stop)


def _sync_with_progress(
    config: Config,
    store: Store,
    connector: Connector,
    full: bool,
    objects: Sequence[str] | None,
    stop: threading.Event | None,
) -> RunSummary:
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    with Progress(
        SpinnerColumn(), TextColumn("{task.description}"), TextColumn("{task.completed:>9,} rows"), TimeElapsedColumn()
    ) as bar:
        tasks: dict[str, Any] = {}

        def on_page(name: str, rows: int) -> None:
            if name not in tasks:
                tasks[name] = bar.add_task(f"{config.name}: {name}", total=None)
            bar.update(tasks[name], completed=rows)

        return run_sync(connector, store, full=full, objects=objects, stop=stop, progress=on_page)


def compute(
    config: Config,
    *,
    store: Store | None = None,
    as_of: str | None = None,
    kpis: Sequence[str] | None = None,
    grains: Sequence[str] | None = None,
) -> ComputeResult:
    """Load the config's input CSVs (quotas, spend, surveys), then compute."""
    from kpisync.kpi import engine

    if store is None:
        with opened(config, "compute") as own_store:
            return compute(config, store=own_store, as_of=as_of, kpis=kpis, grains=grains)
    load_inputs(config, store)
    return engine.compute(
        store,
        kpi_settings(config),
        as_of=as_of,
        kpis=list(kpis) if kpis else None,
        grains=list(grains) if grains else None,
    )


def writeback(
    config: Config,
    *,
    dry_run: bool = False,
    store: Store | None = None,
    connector: Connector | None = None,
    stop: threading.Event | None = None,
) -> wb.WritebackResult:
    if store is None:
        with opened(config, "writeback", lock=not dry_run) as own_store:
            return writeback(config, dry_run=dry_run, store=own_store, connector=connector, stop=stop)
    if connector is None:
        with connected(config) as own:
            return writeback(config, dry_run=dry_run, store=store, connector=own, stop=stop)
    if not config.writeback.enabled:
        return wb.WritebackResult([])
    changes = wb.plan(store, connector, config.writeback_targets(), config.timezone)
    if dry_run:
        return wb.WritebackResult(changes)
    return wb.apply(store, connector, changes, stop=stop)


def field_defs(config: Config) -> list[FieldDef]:
    from kpisync.kpi import registry
    from kpisync.kpi.aggregate import averages

    defs = []
    for target in config.writeback_targets():
        defn = registry.get(target.kpi)
        if defn is None:  # config validation already refused this; be safe
            continue
        unit = defn.unit
        if unit == "count" and averages(defn.compute, target.grain):
            unit = "multiple"  # a field with decimals: a Number(18,0) field would show 6.87 as 7
        defs.append(FieldDef(target.grain, target.field, target.label or defn.name, unit))
    return defs


def provision(config: Config, *, dry_run: bool = False, connector: Connector | None = None) -> list[Change]:
    if connector is None:
        with connected(config) as own:
            return provision(config, dry_run=dry_run, connector=own)
    return connector.provision(field_defs(config), dry_run=dry_run)


def doctor(config: Config) -> list[CheckResult]:
    checks = [CheckResult("configuration", True, str(config.source_file or ""))]
    try:
        with Store.open(config.store_path) as store:
            checks.append(CheckResult("store", True, f"{config.store_path} (schema v{store.schema_version})"))
    except Exception as exc:
        checks.append(CheckResult("store", False, str(exc)))
    try:
        with connected(config) as connector:
            checks.extend(connector.check())
    except Exception as exc:
        checks.append(CheckResult("connection", False, f"{type(exc).__name__}: {exc}"))
    return checks


def status(config: Config, limit: int = 10) -> dict[str, Any]:
    from kpisync.sync.schedule import next_runs

    runs: list[dict[str, Any]] = []
    if Path(config.store_path).exists():
        with Store.open(config.store_path) as store:
            cur = store.conn.execute(
                "SELECT id, kind, started_at, finished_at, status, rows, api_calls, error FROM sync_runs "
                "WHERE crm = ? ORDER BY id DESC LIMIT ?",
                (config.crm, limit),
            )
            cols = [d[0] for d in cur.description]
            runs = [dict(zip(cols, row, strict=True)) for row in cur]
    return {"store": str(config.store_path), "runs": runs, "next": next_runs(config)}


def cycle(config: Config, store: Store, connector: Connector, stop: threading.Event | None = None) -> dict[str, Any]:
    """sync → compute → write-back, as the daemon runs it; each step recorded in sync_runs."""
    summary = sync(config, store=store, connector=connector, stop=stop)
    out: dict[str, Any] = {"sync": summary.status, "rows": summary.rows}
    if stop is not None and stop.is_set():
        return out
    if config.schedule.compute == "after_sync":
        result = compute(config, store=store)
        out["values"] = len(result.values)
        if config.schedule.writeback == "after_compute":
            written = writeback(config, store=store, connector=connector, stop=stop)
            out.update(written=written.written, failed=written.failed)
    return out
