"""Pulling one HubSpot object as a stream of Pages (hubspot-api.md §5).

- Full pull (no cursor, or `full=True`): the list endpoint with `after` paging
  (no 10,000 cap, associations inline), then one empty Page carrying the cursor: the time the listing started minus the
  search-lag overlap. Records changed during the listing are found again by
  the next incremental pull.
- Incremental pull: search on the modified-date property, `GTE cursor`,
  ascending, 200 per page. Each Page carries the modified date of its last row
  (inclusive), capped at now − overlap so records not yet searchable
  (eventual consistency, §4) are re-scanned next time. The 10,000-result cap
  cuts the query into windows: when the next offset would pass the cap, a new
  window starts at the last modified date reached, skipping the ids already
  seen at that instant; more than 10,000 rows at one instant are paged by
  `hs_object_id`. Associations come from the v4 batch read (search has none).
- Deletions: the archived listing (its own `<object>.archived` row in OBJECTS)
  marks ids deleted. Search cannot see archived records (§5.5), so the listing
  runs when it is due — `schedule.deletions` after the last whole listing — and
  on every full or first pull; otherwise it costs no call. Its cursor is the
  time the last whole listing began. Ids merged into a record
  (`hs_merged_object_ids`, `hs_calculated_merged_vids`) are marked deleted by
  the object's own pull.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, TypeVar

from kpisync.config import parse_interval
from kpisync.connectors.base import ObjectSpec, Page, Quarantined
from kpisync.connectors.hubspot.mapping import map_record, merged_ids, ms
from kpisync.errors import RunError, SkippableRecord
from kpisync.timestamps import format_ts, utc_now

if TYPE_CHECKING:
    from kpisync.connectors.hubspot.connector import HubSpotConnector

T = TypeVar("T")

SEARCH_CAP = 10_000
SEARCH_LIMIT = 200
LIST_LIMIT = 100
OVERLAP_MS = 60_000  # search lags writes by seconds, reportedly up to ~30 s (§4)
STORE_BATCH = 1_000  # list records per Page of a full pull
READ_AHEAD = 10  # list pages fetched ahead of the mapping
MAPPED_AHEAD = 2  # mapped Pages (of STORE_BATCH records) ahead of the store


def iso_ms(stamp: int) -> str:
    """Cursor text: canonical UTC with milliseconds (HubSpot's modified dates carry them)."""
    return format_ts(_dt(stamp))[:-1] + f".{stamp % 1000:03d}Z"


def _dt(stamp: int) -> Any:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(stamp // 1000, UTC)


class Puller:
    def __init__(self, connector: HubSpotConnector, spec: ObjectSpec) -> None:
        self.c = connector
        self.spec = spec
        self.name = spec.options.get("object", spec.name)  # an archived listing reads its crm object
        self.opts = spec.options
        self.prop = spec.cursor_field or "hs_lastmodifieddate"

    # ------------------------------------------------------------ pages

    def page(self, records: list[dict[str, Any]], cursor: str | None, raws: list[str] | None = None) -> Page:
        """Canonical rows of `records`; `raws`: each record's JSON text from the wire, kept as `raw`."""
        ctx = self.c.context()
        ctx.synced_at = utc_now()
        rows: dict[str, list[dict[str, Any]]] = {t: [] for t in self.spec.tables}
        quarantined: list[Quarantined] = []
        main = self.spec.tables[0]
        mapper, name, prop = self.opts["mapper"], self.name, self.prop
        echo = self.c.echo.is_own_write if self.c.echo.any() else None  # none noted: no record is our echo
        for n, record in enumerate(records):
            if echo is not None and echo(name, str(record.get("id")), (record.get("properties") or {}).get(prop)):
                continue  # nothing changed since our own write-back (docs/hubspot.md, "own echo")
            try:
                mapped = map_record(mapper, record, ctx, name, raws[n] if raws else None)
            except SkippableRecord as exc:
                quarantined.append(Quarantined(str(record.get("id")), str(exc), raws[n] if raws else _raw(record)))
                continue
            for table, table_rows in mapped.items():
                if table_rows:
                    rows[table] += table_rows
            for old in merged_ids(record):
                rows[main].append({"id": old, "is_deleted": 1, "synced_at": ctx.synced_at})
        return Page({t: r for t, r in rows.items() if r}, cursor=cursor, quarantined=quarantined)

    # ------------------------------------------------------------ full

    def full(self) -> Iterator[Page]:
        """The listing in Pages of `STORE_BATCH` records. Two threads work ahead of the caller: one fetches
        and parses list pages, one maps them; the caller's store writes (SQLite releases the GIL while it
        writes, commits and syncs) overlap both."""
        started = int(time.time() * 1000) - OVERLAP_MS
        props = self.c.properties_for(self.spec, refresh=True)  # a full pull sees properties created since
        assoc = list(self.opts.get("associations") or ())
        listing = self._ahead(self._listing(archived=False, properties=props, associations=assoc), READ_AHEAD)
        yield from self._ahead(self._batches(listing), MAPPED_AHEAD)
        yield Page({}, cursor=iso_ms(started))

    def _ahead(self, items: Iterator[T], most: int) -> Iterator[T]:
        return ahead(items, most, f"hubspot-list-{self.name}", self.c.config.connection.timeout_s + 1)

    def _batches(self, listing: Iterator[tuple[list[dict[str, Any]], list[str]]]) -> Iterator[Page]:
        batch: list[dict[str, Any]] = []
        raws: list[str] = []
        try:
            for records, texts in listing:
                batch.extend(records)
                raws.extend(texts)
                if len(batch) >= STORE_BATCH:  # fewer, larger store transactions; the cursor moves at the end anyway
                    yield self.page(batch, None, raws)
                    batch, raws = [], []
            if batch:
                yield self.page(batch, None, raws)
        finally:
            _close(listing)

    def _listing(
        self, *, archived: bool, properties: list[str], associations: list[str]
    ) -> Iterator[tuple[list[dict[str, Any]], list[str]]]:
        """List pages in `after` order, each as (records, their JSON texts), one request at a time."""
        after: str | None = None
        seen: set[str] = set()
        while True:
            data, raws = self.c.client.page(
                f"list {self.name}",
                lambda a, kw, after=after: a.objects.get_page(
                    self.name,
                    limit=LIST_LIMIT,
                    after=after,
                    properties=properties or None,
                    associations=associations or None,
                    archived=archived,
                    **kw,
                ),
            )
            after = ((data.get("paging") or {}).get("next") or {}).get("after")
            if after in seen:  # a paginator that repeats itself would loop forever
                raise RunError(f"HubSpot list {self.name}: paging token {after!r} returned twice")
            yield data.get("results") or [], raws
            if not after:
                return
            seen.add(after)

    def due(self, cursor: str | None, *, full: bool) -> bool:
        """Is an archived listing due? Always on a full or first pull; else `schedule.deletions` after the last."""
        if full or cursor is None:
            return True
        every = parse_interval(self.c.config.schedule.deletions)
        last = ms(cursor)
        return every is None or last is None or time.time() * 1000 - last >= every.total_seconds() * 1000

    def archived(self, cursor: str | None, *, full: bool) -> Iterator[Page]:
        """Archived (deleted) records → deletion markers (§5.5: search cannot see them), when due."""
        if not self.due(cursor, full=full):
            return
        started = int(time.time() * 1000)
        main = self.spec.tables[0]
        for records, _ in self._ahead(self._listing(archived=True, properties=[], associations=[]), READ_AHEAD):
            stamp = utc_now()
            markers = [{"id": str(r["id"]), "is_deleted": 1, "synced_at": stamp} for r in records]
            if markers:
                yield Page({main: markers})
        yield Page({}, cursor=iso_ms(started))  # only a whole listing counts as done

    # ------------------------------------------------------------ incremental

    def _search(self, filters: list[dict[str, Any]], sort: str, after: int, props: list[str]) -> dict[str, Any]:
        body = {
            "filterGroups": [{"filters": filters}],
            "sorts": [{"propertyName": sort, "direction": "ASCENDING"}],
            "properties": props,
            "limit": SEARCH_LIMIT,
            "after": str(after),
        }
        return self.c.client.json(  # type: ignore[no-any-return]
            f"search {self.name}", lambda a, kw: a.search.do_search(self.name, body, **kw), search=True
        )

    def incremental(self, cursor: str) -> Iterator[Page]:
        props = self.c.properties_for(self.spec)
        ceiling = int(time.time() * 1000) - OVERLAP_MS
        lo = ms(cursor) or 0
        skip: set[str] = set()  # ids already yielded at instant `lo`
        run_ms, run_ids = lo, set(skip)
        after = 0
        while True:
            data = self._search(
                [{"propertyName": self.prop, "operator": "GTE", "value": str(lo)}], self.prop, after, props
            )
            fresh = []
            for record in data.get("results") or []:
                stamp = ms((record.get("properties") or {}).get(self.prop)) or 0
                rid = str(record["id"])
                if stamp == lo and rid in skip:
                    continue
                if stamp > run_ms:
                    run_ms, run_ids = stamp, set()
                run_ids.add(rid)
                fresh.append(record)
            if fresh:
                self.c.attach_associations(self.name, fresh, list(self.opts.get("associations") or ()))
                yield self.page(fresh, iso_ms(min(run_ms, ceiling)))
            nxt = ((data.get("paging") or {}).get("next") or {}).get("after")
            if not nxt:
                break
            if int(nxt) < SEARCH_CAP:
                after = int(nxt)
                continue
            # the next offset would pass the 10,000 cap (§4): start a new window where this one got to
            if run_ms == lo:
                yield from self._instant(lo, skip | run_ids, props, ceiling)
                lo, skip, run_ids = lo + 1, set(), set()
                run_ms = lo
            else:
                lo, skip = run_ms, set(run_ids)
            after = 0

    def _instant(self, stamp: int, seen: set[str], props: list[str], ceiling: int) -> Iterator[Page]:
        """More than 10,000 records modified at one instant: page them by id (§5.3)."""
        last_id, after = 0, 0
        while True:
            filters = [
                {"propertyName": self.prop, "operator": "EQ", "value": str(stamp)},
                {"propertyName": "hs_object_id", "operator": "GT", "value": str(last_id)},
            ]
            data = self._search(filters, "hs_object_id", after, props)
            results = data.get("results") or []
            fresh = [r for r in results if str(r["id"]) not in seen]
            if fresh:
                self.c.attach_associations(self.name, fresh, list(self.opts.get("associations") or ()))
                yield self.page(fresh, iso_ms(min(stamp, ceiling)))
            nxt = ((data.get("paging") or {}).get("next") or {}).get("after")
            if not nxt:
                return
            if int(nxt) >= SEARCH_CAP:
                last_id, after = int(results[-1]["id"]), 0
            else:
                after = int(nxt)

    # ------------------------------------------------------------ owners

    def owners(self, cursor: str | None, *, full: bool) -> Iterator[Page]:
        """Active owners every run; deactivated ones (`owners.archived`, only listed with archived=true,
        §7.1) when due, like the other archived listings. Owners have no search: read whole."""
        archived = bool(self.opts.get("archived"))
        if archived and not self.due(cursor, full=full):
            return
        started = int(time.time() * 1000)
        after: str | None = None
        while True:
            data = self.c.client.json(
                "list owners",
                lambda a, kw, after=after: a.owners.get_page(limit=100, after=after, archived=archived, **kw),
            )
            yield self.page(data.get("results") or [], None)
            after = ((data.get("paging") or {}).get("next") or {}).get("after")
            if not after:
                break
        if archived:
            yield Page({}, cursor=iso_ms(started))


def ahead(items: Iterator[T], most: int, name: str, join_s: float) -> Iterator[T]:
    """`items`, produced by a thread of their own up to `most` ahead of the caller. An exception in the
    thread is raised in the caller's at the same point of the sequence; closing this generator (or
    leaving it early) stops the thread, which closes `items` (a generator's own threads stop too)."""
    Item = tuple[T | None, BaseException | None, bool]  # (item, error, done)
    queued: queue.Queue[Item] = queue.Queue(most)
    stop = threading.Event()

    def put(item: Item) -> None:
        while not stop.is_set():
            try:
                queued.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    def produce() -> None:
        try:
            for item in items:
                put((item, None, False))
                if stop.is_set():  # not one item (one request) more once the caller has left
                    return
            put((None, None, True))
        except BaseException as exc:  # handed to the caller's thread, raised there
            put((None, exc, True))
        finally:
            _close(items)

    worker = threading.Thread(target=produce, name=name, daemon=True)
    worker.start()
    try:
        while True:
            item, error, done = queued.get()
            if error is not None:
                raise error
            if done:
                return
            yield item  # type: ignore[misc]
    finally:
        stop.set()
        worker.join(timeout=join_s)


def _close(items: Iterator[Any]) -> None:
    close = getattr(items, "close", None)
    if close is not None:
        close()


def _raw(record: dict[str, Any]) -> str:
    import json

    return json.dumps(record, separators=(",", ":"))
