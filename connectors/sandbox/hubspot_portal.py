"""The sandbox HubSpot portal's data: records, associations, history, owners,
pipelines, properties and custom-object schemas, held in one SQLite file.

This module knows HubSpot's *data* semantics (string property values, merged
ids resolving to the survivor, archived records, modified dates bumped by every
write, the search 10,000 cap) but not HTTP; `hubspot.py` puts it on the wire.
All times are epoch milliseconds inside, ISO-8601 with milliseconds outside
(hubspot-api.md §0).
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kpisync.connectors.sandbox.hubspot_catalog import OBJECT_TYPES, TYPE_BY_ID, property_catalog

SEARCH_CAP = 10_000  # hubspot-api.md §4: no result past offset 10,000


def ms_to_iso(ms: int | None) -> str | None:
    if ms is None:
        return None
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


def iso_to_ms(text: str) -> int:
    text = text.strip()
    if text.lstrip("-").isdigit():
        return int(text)
    if len(text) == 10:
        text += "T00:00:00Z"
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return round(moment.timestamp() * 1000)


def now_ms() -> int:
    return int(time.time() * 1000)


class PortalError(Exception):
    """A request the portal rejects: (HTTP status, HubSpot error body)."""

    def __init__(self, status: int, body: dict[str, Any]) -> None:
        super().__init__(body.get("message", ""))
        self.status = status
        self.body = body


def error_body(message: str, category: str, **extra: Any) -> dict[str, Any]:
    return {
        "status": "error",
        "message": message,
        "correlationId": "00000000-0000-4000-8000-000000000000",
        "category": category,
        **extra,
    }


_SCHEMA = """
CREATE TABLE IF NOT EXISTS records (type TEXT, id INTEGER, props TEXT, created_ms INTEGER, updated_ms INTEGER,
  archived INTEGER DEFAULT 0, archived_ms INTEGER, merged_into INTEGER, PRIMARY KEY (type, id));
CREATE INDEX IF NOT EXISTS records_modified ON records (type, updated_ms, id);
CREATE TABLE IF NOT EXISTS assoc (from_type TEXT, from_id INTEGER, to_type TEXT, to_id INTEGER,
  PRIMARY KEY (from_type, from_id, to_type, to_id));
CREATE TABLE IF NOT EXISTS history (type TEXT, id INTEGER, prop TEXT, value TEXT, ts_ms INTEGER, source TEXT);
CREATE INDEX IF NOT EXISTS history_record ON history (type, id, prop);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT);
CREATE TABLE IF NOT EXISTS idmap (canonical_id TEXT PRIMARY KEY, type TEXT, hs_id INTEGER);
"""


class Portal:
    def __init__(self, path: Path | str) -> None:
        self.path = str(path)
        self.conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute("PRAGMA synchronous=OFF")
        self.conn.executescript(_SCHEMA)
        self.lock = threading.RLock()
        self._meta_cache: dict[str, Any] = {}
        self.generation = 0  # bumped by every write to records, associations or history (drops rendered JSON)

    def close(self) -> None:
        self.conn.close()

    @contextmanager
    def batch(self) -> Iterator[sqlite3.Connection]:
        with self.lock:
            self.conn.execute("BEGIN")
            try:
                yield self.conn
            except BaseException:
                self.conn.execute("ROLLBACK")
                raise
            self.conn.execute("COMMIT")

    # ------------------------------------------------------------ meta (owners, pipelines, properties, schemas)

    def meta(self, key: str, default: Any = None) -> Any:
        if key not in self._meta_cache:
            row = self.conn.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
            self._meta_cache[key] = json.loads(row[0]) if row else default
        return self._meta_cache[key]

    def set_meta(self, key: str, value: Any) -> None:
        with self.lock:
            self.conn.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, json.dumps(value)))
            self._meta_cache[key] = value

    def next_id(self, object_type: str) -> int:
        with self.lock:
            counter = self.meta(f"next_id:{object_type}")
            if counter is None:
                row = self.conn.execute("SELECT max(id) FROM records WHERE type=?", (object_type,)).fetchone()
                counter = (row[0] or 0) + 1
            self.set_meta(f"next_id:{object_type}", counter + 1)
            return int(counter)

    # ------------------------------------------------------------ object types

    def resolve_type(self, name: str) -> str:
        """`contacts`, `0-1`, `2-101`, `p_sandbox_sales_kpi_scorecard`, `sales_kpi_scorecard` → canonical path name."""
        if name in OBJECT_TYPES:
            return name
        if name in TYPE_BY_ID:
            return TYPE_BY_ID[name]
        for schema in self.meta("schemas", []):
            if name in (schema["objectTypeId"], schema["fullyQualifiedName"], schema["name"]):
                return str(schema["objectTypeId"])
        raise PortalError(400, error_body(f"Unable to infer object type from: {name}", "VALIDATION_ERROR"))

    def modified_prop(self, object_type: str) -> str:
        return OBJECT_TYPES[object_type][1] if object_type in OBJECT_TYPES else "hs_lastmodifieddate"

    def properties(self, object_type: str) -> list[dict[str, Any]]:
        props = self.meta(f"properties:{object_type}")
        if props is None:
            stages = (
                [s["id"] for p in self.meta("pipelines:deals", []) for s in p["stages"]]
                if object_type == "deals"
                else []
            )
            props = property_catalog(object_type, stages) if object_type in OBJECT_TYPES else []
            self.set_meta(f"properties:{object_type}", props)
        return list(props)

    def property_types(self, object_type: str) -> dict[str, str]:
        key = f"_ptypes:{object_type}"
        cached = self._meta_cache.get(key)
        if cached is None:
            cached = {p["name"]: p["type"] for p in self.properties(object_type)}
            self._meta_cache[key] = cached
        return cached  # type: ignore[no-any-return]

    def add_property(self, object_type: str, prop: dict[str, Any]) -> None:
        props = self.properties(object_type)
        if any(p["name"] == prop["name"] for p in props):
            raise PortalError(
                409, error_body(f"Property named '{prop['name']}' already exists.", "OBJECT_ALREADY_EXISTS")
            )
        self.set_meta(f"properties:{object_type}", [*props, prop])
        self._meta_cache.pop(f"_ptypes:{object_type}", None)

    # ------------------------------------------------------------ records

    def insert(self, object_type: str, rows: Iterable[tuple[int, dict[str, Any], int, int]]) -> None:
        """Bulk insert (id, props, created_ms, updated_ms); callers wrap in `batch()`."""
        self.generation += 1
        self.conn.executemany(
            "INSERT OR REPLACE INTO records (type, id, props, created_ms, updated_ms) VALUES (?, ?, ?, ?, ?)",
            ((object_type, i, json.dumps(p, separators=(",", ":")), c, u) for i, p, c, u in rows),
        )

    def associate(self, pairs: Iterable[tuple[str, int, str, int]]) -> None:
        self.generation += 1
        rows = []
        for a_type, a_id, b_type, b_id in pairs:
            rows += [(a_type, a_id, b_type, b_id), (b_type, b_id, a_type, a_id)]
        self.conn.executemany("INSERT OR IGNORE INTO assoc VALUES (?, ?, ?, ?)", rows)

    def add_history(self, rows: Iterable[tuple[str, int, str, str, int, str]]) -> None:
        self.generation += 1
        self.conn.executemany("INSERT INTO history VALUES (?, ?, ?, ?, ?, ?)", rows)

    def winner(self, object_type: str, record_id: int) -> tuple[Any, ...] | None:
        """The row for an id, following merges (a merged-away id answers with the survivor, §3.2)."""
        for _ in range(10):
            row = self.conn.execute(
                "SELECT id, props, created_ms, updated_ms, archived, archived_ms, merged_into FROM records WHERE type=? AND id=?",
                (object_type, record_id),
            ).fetchone()
            if row is None or row[6] is None:
                return row  # type: ignore[no-any-return]
            record_id = row[6]
        return None

    def list_rows(self, object_type: str, after: int, limit: int, archived: bool) -> list[tuple[Any, ...]]:
        with self.lock:
            return self.conn.execute(
                "SELECT id, props, created_ms, updated_ms, archived, archived_ms FROM records "
                "WHERE type=? AND id>? AND archived=? AND merged_into IS NULL ORDER BY id LIMIT ?",
                (object_type, after, 1 if archived else 0, limit),
            ).fetchall()

    def list_ids(self, object_type: str, after: int, limit: int, archived: bool) -> list[int]:
        with self.lock:
            return [
                r[0]
                for r in self.conn.execute(
                    "SELECT id FROM records WHERE type=? AND id>? AND archived=? AND merged_into IS NULL "
                    "ORDER BY id LIMIT ?",
                    (object_type, after, 1 if archived else 0, limit),
                )
            ]

    def rows_by_id(self, object_type: str, ids: list[int]) -> list[tuple[Any, ...]]:
        with self.lock:
            marks = ",".join("?" * len(ids))
            return self.conn.execute(
                "SELECT id, props, created_ms, updated_ms, archived, archived_ms FROM records "
                f"WHERE type=? AND id IN ({marks}) ORDER BY id",
                (object_type, *ids),
            ).fetchall()

    def associations_of(self, object_type: str, ids: list[int], to_type: str) -> dict[int, list[int]]:
        out: dict[int, list[int]] = {}
        if not ids:
            return out
        with self.lock:
            for chunk_start in range(0, len(ids), 500):
                chunk = ids[chunk_start : chunk_start + 500]
                marks = ",".join("?" * len(chunk))
                for from_id, to_id in self.conn.execute(
                    f"SELECT from_id, to_id FROM assoc WHERE from_type=? AND to_type=? AND from_id IN ({marks}) ORDER BY to_id",
                    (object_type, to_type, *chunk),
                ):
                    out.setdefault(from_id, []).append(to_id)
        return out

    def history_of(
        self, object_type: str, ids: list[int], props: list[str]
    ) -> dict[tuple[int, str], list[tuple[str, int, str]]]:
        out: dict[tuple[int, str], list[tuple[str, int, str]]] = {}
        if not ids or not props:
            return out
        with self.lock:
            marks, pmarks = ",".join("?" * len(ids)), ",".join("?" * len(props))
            for rid, prop, value, ts, source in self.conn.execute(
                f"SELECT id, prop, value, ts_ms, source FROM history WHERE type=? AND id IN ({marks}) AND prop IN ({pmarks}) "
                "ORDER BY ts_ms DESC",
                (object_type, *ids, *props),
            ):
                out.setdefault((rid, prop), []).append((value, ts, source))
        return out

    def update(
        self, object_type: str, record_id: int, changes: dict[str, str | None], source: str, at_ms: int | None = None
    ) -> int:
        """Write properties on one (resolved) record, bumping its modified date; returns the new modified ms."""
        with self.lock:
            row = self.winner(object_type, record_id)
            if row is None:
                raise KeyError(record_id)
            rid, props = row[0], json.loads(row[1])
            if object_type == "deals" and "amount" in changes and "amount_in_home_currency" not in changes:
                # a single-currency portal: HubSpot recalculates the home-currency amount
                changes = {**changes, "amount_in_home_currency": changes["amount"]}
            stamp = max(at_ms or now_ms(), row[3] + 1)
            self.generation += 1
            hist = []
            for name, value in changes.items():
                value = None if value in ("", None) else str(value)
                if props.get(name) != value:
                    hist.append((object_type, rid, name, value, stamp, source))
                props[name] = value
            props[self.modified_prop(object_type)] = ms_to_iso(stamp)
            self.conn.execute(
                "UPDATE records SET props=?, updated_ms=? WHERE type=? AND id=?",
                (json.dumps(props, separators=(",", ":")), stamp, object_type, rid),
            )
            self.add_history(hist)
            return stamp

    def create(self, object_type: str, props: dict[str, Any], at_ms: int | None = None) -> int:
        with self.lock:
            rid = self.next_id(object_type)
            stamp = at_ms or now_ms()
            props = {k: (None if v is None else str(v)) for k, v in props.items()}
            props["hs_object_id"] = str(rid)
            props.setdefault(
                "createdate" if object_type in ("contacts", "companies", "deals", "tickets") else "hs_createdate",
                ms_to_iso(stamp),
            )
            props[self.modified_prop(object_type)] = ms_to_iso(stamp)
            self.insert(object_type, [(rid, props, stamp, stamp)])
            return rid

    def archive(self, object_type: str, record_id: int, at_ms: int | None = None) -> None:
        stamp = at_ms or now_ms()
        with self.lock:
            self.generation += 1
            self.conn.execute(
                "UPDATE records SET archived=1, archived_ms=?, updated_ms=? WHERE type=? AND id=?",
                (stamp, stamp, object_type, record_id),
            )

    def merge(self, object_type: str, primary: int, loser: int) -> int:
        """Merge two records into a new survivor id (§5.6); both old ids resolve to it."""
        with self.lock:
            a, b = self.winner(object_type, primary), self.winner(object_type, loser)
            if a is None or b is None:
                raise KeyError(primary if a is None else loser)
            stamp = now_ms()
            props = {k: v for k, v in json.loads(b[1]).items() if v is not None}
            props.update({k: v for k, v in json.loads(a[1]).items() if v is not None})
            new_id = self.next_id(object_type)
            props["hs_object_id"] = str(new_id)
            self.generation += 1
            if object_type == "contacts":
                props["hs_calculated_merged_vids"] = f"{a[0]}:{stamp};{b[0]}:{stamp}"
            else:
                props["hs_merged_object_ids"] = f"{a[0]};{b[0]}"
            props[self.modified_prop(object_type)] = ms_to_iso(stamp)
            self.insert(object_type, [(new_id, props, min(a[2], b[2]), stamp)])
            self.conn.execute(
                "UPDATE records SET merged_into=? WHERE type=? AND id IN (?, ?)", (new_id, object_type, a[0], b[0])
            )
            for old in (a[0], b[0]):
                moved = self.conn.execute(
                    "SELECT to_type, to_id FROM assoc WHERE from_type=? AND from_id=?", (object_type, old)
                ).fetchall()
                self.associate((object_type, new_id, t, i) for t, i in moved)
                self.conn.execute("DELETE FROM assoc WHERE from_type=? AND from_id=?", (object_type, old))
                self.conn.execute("DELETE FROM assoc WHERE to_type=? AND to_id=?", (object_type, old))
                self.conn.execute("UPDATE history SET id=? WHERE type=? AND id=?", (new_id, object_type, old))
            return new_id

    def hs_id(self, canonical_id: str) -> tuple[str, int]:
        row = self.conn.execute("SELECT type, hs_id FROM idmap WHERE canonical_id=?", (canonical_id,)).fetchone()
        if row is None:
            raise KeyError(canonical_id)
        return row[0], int(row[1])

    def canonical_ids(self) -> dict[tuple[str, int], str]:
        return {(t, i): c for c, t, i in self.conn.execute("SELECT canonical_id, type, hs_id FROM idmap")}

    def count(self, object_type: str, archived: bool = False) -> int:
        row = self.conn.execute(
            "SELECT count(*) FROM records WHERE type=? AND archived=? AND merged_into IS NULL",
            (object_type, int(archived)),
        ).fetchone()
        return int(row[0])
