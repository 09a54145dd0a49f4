"""The pull loop: pages from a connector into the store, cursor and rows together.

    summary = sync(connector, store)                 # incremental
    summary = sync(connector, store, full=True)      # backfill / nightly reconcile

The engine, not the connectors, owns transactions and cursors: each Page's
rows, its quarantined records and its cursor are written in ONE transaction
(several consecutive pages may share it), so a run killed at any moment
leaves a store whose cursor never points past rows it holds. The next run
resumes from that cursor (inclusive, so boundary rows are read again and
upserted harmlessly).

One object's failure does not stop the others; `LimitReached` (the CRM's API
budget) stops the run cleanly. Every run is recorded in `sync_runs`.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from kpisync.connectors.base import Connector, ObjectSpec, Page
from kpisync.errors import AuthError, LimitReached, RunError
from kpisync.store import Store, StoreError
from kpisync.timestamps import utc_now

log = logging.getLogger("kpisync.sync")

Progress = Callable[[str, int], None]  # (object name, rows stored so far for it)

# A first sync writes hundreds of pages: committing each one rewrites the pages of
# every primary-key index it touched (ids arrive in SystemModstamp order, not id
# order). Committing every ~10 pages writes them once; a kill loses at most that
# much progress, never consistency.
BATCH_ROWS = 20_000
BATCH_SECONDS = 5.0


@dataclass
class ObjectResult:
    name: str
    rows: int = 0
    pages: int = 0
    quarantined: int = 0
    cursor: str | None = None
    status: str = "ok"  # ok | failed | skipped | stopped
    error: str | None = None


@dataclass
class RunSummary:
    crm: str
    kind: str
    started_at: str
    finished_at: str | None = None
    status: str = "running"  # ok | failed | partial | stopped | limit
    objects: list[ObjectResult] = field(default_factory=list)
    api_calls: int = 0
    error: str | None = None
    run_id: int | None = None

    @property
    def rows(self) -> int:
        return sum(o.rows for o in self.objects)

    @property
    def ok(self) -> bool:
        return self.status == "ok"


def store_page(store: Store, crm: str, spec: ObjectSpec, page: Page) -> int:
    """Write one page's rows, quarantined records and cursor in one transaction."""
    stored = 0
    now = utc_now()
    with store.transaction():
        for table, rows in page.rows.items():
            # rows of one table may carry different keys (a deletion marker is short)
            by_keys: dict[tuple[str, ...], list[dict[str, Any]]] = defaultdict(list)
            for row in rows:
                by_keys[tuple(row)].append(row)
            for group in by_keys.values():
                stored += store.upsert(table, group)
        if page.quarantined:
            store.upsert(
                "quarantine",
                [
                    {
                        "crm": crm,
                        "object": spec.name,
                        "record_id": q.record_id,
                        "reason": q.reason,
                        "raw": q.raw,
                        "at": now,
                    }
                    for q in page.quarantined
                ],
            )
            for q in page.quarantined:
                log.warning("%s %s quarantined: %s", spec.name, q.record_id, q.reason)
        if page.cursor is not None:
            store.set_cursor(crm, spec.name, page.cursor)
    return stored


def sync(
    connector: Connector,
    store: Store,
    *,
    full: bool = False,
    objects: Sequence[str] | None = None,
    stop: threading.Event | None = None,
    progress: Progress | None = None,
) -> RunSummary:
    crm = connector.crm
    # a first sync is a bulk load: build the store's indexes once, at the end (a reconcile
    # rewrites rows that exist, which costs the indexes little)
    first_sync = not store.cursors(crm)
    # what `status` shows: a first pull reads everything, though nobody asked for --full
    kind = "full" if full else "initial" if first_sync else "incremental"
    summary = RunSummary(crm=crm, kind=kind, started_at=utc_now())
    summary.run_id = _start_run(store, summary)
    calls_before = connector.usage().calls
    specs = list(connector.objects())
    if objects:
        wanted = {o.lower() for o in objects}
        unknown = wanted - {s.name.lower() for s in specs}
        if unknown:
            raise RunError(
                f"unknown object(s) {', '.join(sorted(unknown))}; {crm} has {', '.join(s.name for s in specs)}"
            )
        specs = [s for s in specs if s.name.lower() in wanted]
    t0 = time.monotonic()
    indexes = store.indexes_deferred() if first_sync else contextlib.nullcontext()
    try:
        with indexes:
            _pull_all(connector, store, specs, summary, full=full, stop=stop, progress=progress)
        statuses = {o.status for o in summary.objects}
        if stop is not None and stop.is_set():
            summary.status = "stopped"
        elif "failed" in statuses:
            summary.status = "partial" if "ok" in statuses else "failed"
            summary.error = "; ".join(f"{o.name}: {o.error}" for o in summary.objects if o.error)
        else:
            summary.status = "ok"
    except LimitReached as exc:
        summary.status, summary.error = "limit", str(exc)
        log.error("%s: stopped, API limit: %s", crm, exc)
    except AuthError as exc:
        summary.status, summary.error = "failed", str(exc)
        log.error("%s: stopped, credentials refused: %s", crm, exc)
    except StoreError as exc:
        # the store cannot take the page (disk full): the page's transaction rolled back
        # with its cursor; record why, and let the caller report it
        summary.status, summary.error = "failed", str(exc)
        raise
    finally:
        summary.api_calls = connector.usage().calls - calls_before
        summary.finished_at = utc_now()
        if summary.status == "running":  # an exception we did not expect is on its way up
            summary.status, summary.error = "failed", "interrupted"
        _finish_run(store, summary)
        log.info(
            "%s %s sync %s: %d rows, %d API calls, %.1fs",
            crm,
            kind,
            summary.status,
            summary.rows,
            summary.api_calls,
            time.monotonic() - t0,
        )
    return summary


def _pull_all(
    connector: Connector,
    store: Store,
    specs: Sequence[ObjectSpec],
    summary: RunSummary,
    *,
    full: bool,
    stop: threading.Event | None,
    progress: Progress | None,
) -> None:
    crm = connector.crm
    for spec in specs:
        result = ObjectResult(spec.name)
        summary.objects.append(result)
        if stop is not None and stop.is_set():
            result.status = "skipped"
            continue
        cursor = None if full else store.get_cursor(crm, spec.name)
        try:
            _pull_object(connector, store, spec, result, cursor, full=full, stop=stop, progress=progress)
        except (LimitReached, AuthError):
            result.status = "failed"
            raise
        except RunError as exc:
            result.status, result.error = "failed", str(exc)
            log.error("%s: %s failed: %s", crm, spec.name, exc)


def _pull_object(
    connector: Connector,
    store: Store,
    spec: ObjectSpec,
    result: ObjectResult,
    cursor: str | None,
    *,
    full: bool,
    stop: threading.Event | None,
    progress: Progress | None,
) -> None:
    """Store one object's pages, several to a transaction (`BATCH_ROWS`, `BATCH_SECONDS`).

    Each page's rows, quarantine and cursor are written together by `store_page`;
    a batch only decides when they are committed, so the cursor still never
    passes rows the store does not hold. When the connector fails or the run
    stops, the pages already written whole are committed.
    """
    crm = connector.crm
    pages = iter(connector.pull(spec, cursor, full=full))
    try:
        _store_batches(store, crm, spec, pages, result, stop=stop, progress=progress)
    finally:
        close = getattr(pages, "close", None)
        if close is not None:  # a generator: its read-ahead thread stops now, not when collected
            close()


def _store_batches(
    store: Store,
    crm: str,
    spec: ObjectSpec,
    pages: Iterator[Page],
    result: ObjectResult,
    *,
    stop: threading.Event | None,
    progress: Progress | None,
) -> None:
    finished = False
    while not finished:
        failure: RunError | None = None
        started, batch_rows = time.monotonic(), 0
        with store.transaction():
            try:
                for page in pages:
                    stored = store_page(store, crm, spec, page)
                    batch_rows += stored
                    result.rows += stored
                    result.pages += 1
                    result.quarantined += len(page.quarantined)
                    if page.cursor is not None:
                        result.cursor = page.cursor
                    if progress is not None:
                        progress(spec.name, result.rows)
                    if stop is not None and stop.is_set():
                        # the pages just written are whole; the cursor covers them
                        result.status = "stopped"
                        finished = True
                        break
                    if batch_rows >= BATCH_ROWS or time.monotonic() - started >= BATCH_SECONDS:
                        break
                else:
                    finished = True
            except RunError as exc:  # from the connector: what it handed over before is whole
                failure, finished = exc, True
        if failure is not None:
            raise failure


def _start_run(store: Store, summary: RunSummary) -> int:
    with store.transaction():
        cur = store.conn.execute(
            "INSERT INTO sync_runs (crm, kind, started_at, status) VALUES (?, ?, ?, 'running')",
            (summary.crm, f"sync-{summary.kind}", summary.started_at),
        )
    return int(cur.lastrowid or 0)


def _finish_run(store: Store, summary: RunSummary) -> None:
    objects = {
        o.name: {
            "rows": o.rows,
            "pages": o.pages,
            "quarantined": o.quarantined,
            "status": o.status,
            **({"error": o.error} if o.error else {}),
        }
        for o in summary.objects
    }
    with store.transaction():
        store.conn.execute(
            "UPDATE sync_runs SET finished_at = ?, status = ?, objects_json = ?, error = ?, "
            "rows = ?, api_calls = ? WHERE id = ?",
            (
                summary.finished_at,
                summary.status,
                json.dumps(objects),
                summary.error,
                summary.rows,
                summary.api_calls,
                summary.run_id,
            ),
        )
