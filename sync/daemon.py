"""`kpisync run`: every configured CRM on its schedule, until SIGTERM/SIGINT.

- One APScheduler 3.x BackgroundScheduler; per CRM a `cycle` job (sync →
  compute → write-back) on the YAML's interval/cron and a nightly `reconcile`
  (full re-pull). `max_instances=1` and coalescing: a slow run is never stacked.
- Each CRM's jobs are serialised by its own lock; one CRM's failure is logged
  and recorded, and never stops the others.
- The daemon holds each store's file lock for its lifetime, so a second daemon
  or a manual `kpisync sync` on the same store is refused (exit 2).
- SIGTERM/SIGINT: the running page finishes (its rows and cursor commit
  together), the scheduler stops, exit 0 within `grace_s`. SIGHUP: re-read the
  YAML files; a file that no longer validates keeps its old config running.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from apscheduler.schedulers.background import BackgroundScheduler

from kpisync.config import Config, load_config
from kpisync.connectors import build
from kpisync.connectors.base import Connector
from kpisync.errors import ConfigError, KpisyncError, UsageError
from kpisync.store import Store
from kpisync.sync import jobs
from kpisync.sync.lock import StoreLock
from kpisync.sync.metrics import Metrics, MetricsServer
from kpisync.sync.schedule import job_triggers

log = logging.getLogger("kpisync.daemon")


def config_files(paths: list[Path]) -> list[Path]:
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files.extend(sorted(p for p in path.iterdir() if p.suffix in (".yaml", ".yml")))
        elif path.exists():
            files.append(path)
        else:
            raise UsageError(f"{path}: no such file or folder")
    if not files:
        raise UsageError("no configuration files found")
    return files


@dataclass
class CrmWorker:
    """One CRM: its config, store, connector and the lock that serialises its jobs."""

    config: Config
    file: Path
    store_lock: StoreLock
    metrics: Metrics
    stop: threading.Event
    busy: threading.Lock = field(default_factory=threading.Lock)
    store: Store | None = None
    connector: Connector | None = None

    @property
    def name(self) -> str:
        return self.config.name

    def _ensure_open(self) -> tuple[Store, Connector]:
        if self.store is None:
            self.store = Store.open(self.config.store_path)
        if self.connector is None:
            self.connector = build(self.config)
        return self.store, self.connector

    def close(self) -> None:
        if self.connector is not None:
            self.connector.close()
            self.connector = None
        if self.store is not None:
            self.store.close()
            self.store = None

    def replace_config(self, config: Config) -> None:
        with self.busy:
            self.close()  # credentials or connection may have changed
            self.config = config

    def run_job(self, kind: str) -> None:
        if self.stop.is_set():
            return
        with self.busy:
            started = time.time()
            try:
                store, connector = self._ensure_open()
                if kind == "reconcile":
                    summary = jobs.sync(self.config, full=True, stop=self.stop, store=store, connector=connector)
                    outcome: dict[str, Any] = {"sync": summary.status, "rows": summary.rows}
                elif kind == "compute":
                    outcome = {"values": len(jobs.compute(self.config, store=store).values)}
                elif kind == "writeback":
                    result = jobs.writeback(self.config, store=store, connector=connector, stop=self.stop)
                    outcome = {"written": result.written, "failed": result.failed}
                else:
                    outcome = jobs.cycle(self.config, store, connector, stop=self.stop)
                ok = outcome.get("sync", "ok") == "ok" and not outcome.get("failed")
                self.metrics.record(self.name, kind, ok, outcome, connector.usage())
                log.info("%s %s done in %.1fs: %s", self.name, kind, time.time() - started, outcome)
            except KpisyncError as exc:
                self.metrics.record(self.name, kind, False, {}, None)
                log.error("%s %s failed: %s", self.name, kind, exc)
                self.close()  # start the next run from a fresh connection
            except Exception:
                self.metrics.record(self.name, kind, False, {}, None)
                log.exception("%s %s failed unexpectedly", self.name, kind)
                self.close()


class Daemon:
    def __init__(self, paths: list[Path], *, grace_s: float = 30.0) -> None:
        self.paths = paths
        self.grace_s = grace_s
        self.stop = threading.Event()
        self.reload = threading.Event()
        self.metrics = Metrics()
        self.workers: dict[Path, CrmWorker] = {}
        self.scheduler = BackgroundScheduler(
            timezone="UTC", job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": 600}
        )
        self.metrics_server: MetricsServer | None = None

    def start(self) -> None:
        files = config_files(self.paths)
        configs = [(file, load_config(file)) for file in files]  # a bad file at start: exit 2
        names = [c.name for _f, c in configs]
        if len(set(names)) != len(names):
            raise UsageError(f"two configuration files use the same name: {', '.join(names)}")
        try:
            for file, config in configs:
                lock = StoreLock(config.store_path, f"kpisync run ({config.name})").acquire()
                self.workers[file] = CrmWorker(config, file, lock, self.metrics, self.stop)
        except KpisyncError:
            self._release()
            raise
        for worker in self.workers.values():
            self._schedule(worker, first_run_now=True)
        self.scheduler.start()
        metrics_cfg = next((c.metrics for _f, c in configs if c.metrics.enabled), None)
        if metrics_cfg is not None:
            self.metrics_server = MetricsServer(self.metrics, metrics_cfg.host, metrics_cfg.port).start()
            log.info("metrics on http://%s:%d/metrics", metrics_cfg.host, self.metrics_server.port)
        log.info("kpisync running %d CRM(s): %s", len(self.workers), ", ".join(names))

    def _schedule(self, worker: CrmWorker, first_run_now: bool = False) -> None:
        from datetime import UTC, datetime

        for kind, trigger in job_triggers(worker.config).items():
            job_id = f"{worker.name}:{kind}"
            if self.scheduler.get_job(job_id):
                self.scheduler.remove_job(job_id)
            extra: dict[str, Any] = {}
            if first_run_now and kind == "cycle":
                extra["next_run_time"] = datetime.now(UTC)
            self.scheduler.add_job(worker.run_job, trigger, args=[kind], id=job_id, name=job_id, **extra)

    def do_reload(self) -> None:
        self.reload.clear()
        for file, worker in self.workers.items():
            try:
                config = load_config(file)
            except ConfigError as exc:
                log.error("reload: keeping the running config of %s: %s", file.name, exc)
                continue
            if config.store_path != worker.config.store_path:
                log.error("reload: %s changes the store path; restart kpisync to switch stores", file.name)
                continue
            worker.replace_config(config)
            self._schedule(worker)
            log.info("reload: %s reloaded", file.name)

    def wait(self) -> None:
        while not self.stop.is_set():
            if self.reload.is_set():
                self.do_reload()
            self.stop.wait(0.5)

    def shutdown(self) -> bool:
        """Stop; False when a job was still busy after the grace period."""
        log.info("stopping: finishing the current page, then exiting")
        clean = True
        self.scheduler.shutdown(wait=False)
        deadline = time.monotonic() + self.grace_s
        for worker in self.workers.values():
            remaining = max(0.0, deadline - time.monotonic())
            if worker.busy.acquire(timeout=remaining):
                worker.close()
                worker.busy.release()
            else:
                clean = False
                log.warning("%s still busy after %.0fs; leaving its last page uncommitted", worker.name, self.grace_s)
        if self.metrics_server is not None:
            self.metrics_server.stop()
        self._release()
        return clean

    def _release(self) -> None:
        for worker in self.workers.values():
            worker.store_lock.release()


def run_daemon(paths: list[Path], *, grace_s: float = 30.0) -> int:
    daemon = Daemon(paths, grace_s=grace_s)
    daemon.start()

    def on_stop(signum: int, _frame: object) -> None:
        log.info("received %s", signal.Signals(signum).name)
        daemon.stop.set()

    previous = {sig: signal.signal(sig, on_stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    previous[signal.SIGHUP] = signal.signal(signal.SIGHUP, lambda *_: daemon.reload.set())
    try:
        daemon.wait()
    finally:
        clean = daemon.shutdown()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if not clean:
        # a request still hanging past the grace period: leave without it. Its rows and
        # cursor were never committed together, so the next run simply does it again.
        logging.shutdown()
        os._exit(0)
    return 0
