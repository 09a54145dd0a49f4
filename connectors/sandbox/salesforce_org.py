"""The sandbox org's records: one SQLite file, one row per record, queried by SOQL.

Every record is a JSON object of Salesforce wire values (`2025-03-28T15:40:09.000+0000`,
`2025-03-28`, numbers, booleans) with its id, object, SystemModstamp and IsDeleted
as indexed columns, so `WHERE SystemModstamp >= … ORDER BY SystemModstamp, Id`
pages by keyset (no OFFSET scans) even on the large org.

Custom fields created through the Tooling API live in `custom_fields` and are
visible to describe and SOQL only once a FieldPermissions record grants read —
describe is filtered by field-level security (salesforce-api.md §5.1, §5.3).
"""

from __future__ import annotations

import itertools
import json
import sqlite3
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from kpisync.connectors.sandbox.salesforce_schema import (
    NO_DELETE,
    OBJECT_BY_PREFIX,
    PREFIX,
    SCHEMA,
    TOOLING_SCHEMA,
    FieldSpec,
)
from kpisync.connectors.sandbox.salesforce_soql import Soql, SoqlError, column_error, format_sf_datetime

PAGE_SIZE = 2000  # REST query page (salesforce-api.md §2.3)

_DDL = """
CREATE TABLE IF NOT EXISTS records (
  id TEXT PRIMARY KEY, obj TEXT NOT NULL, modstamp TEXT, created TEXT, is_deleted INTEGER NOT NULL DEFAULT 0,
  data TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS records_mod ON records (obj, modstamp, id);
CREATE INDEX IF NOT EXISTS records_created ON records (obj, created, id);
-- now() asks for the latest stamp on every write: without this, a full scan per written record
CREATE INDEX IF NOT EXISTS records_stamp ON records (modstamp);
CREATE TABLE IF NOT EXISTS id_map (canonical TEXT PRIMARY KEY, sf_id TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS custom_fields (obj TEXT, name TEXT, type TEXT, label TEXT, precision INTEGER,
  scale INTEGER, tooling_id TEXT, PRIMARY KEY (obj, name));
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT);
CREATE TABLE IF NOT EXISTS purged (id TEXT PRIMARY KEY, obj TEXT, deleted TEXT);
"""

_COLUMNS = {"Id": "id", "SystemModstamp": "modstamp", "IsDeleted": "is_deleted", "CreatedDate": "created"}


@dataclass
class QueryState:
    """What a `nextRecordsUrl` locator remembers: the query and where the last page ended."""

    soql: Soql
    sql: str
    params: list[Any]
    order_sql: list[str]
    keyset: bool
    last_key: tuple[Any, ...] | None
    offset: int
    total: int
    tooling: bool = False


class OrgStore:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.conn = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self.conn.execute("PRAGMA journal_mode = WAL")
        self.conn.execute("PRAGMA synchronous = OFF")
        self.conn.executescript(_DDL)
        self.lock = threading.RLock()
        self._seq = itertools.count(self._max_seq() + 1)

    # ---------------------------------------------------------------- ids and clock

    def _max_seq(self) -> int:
        row = self.conn.execute("SELECT value FROM meta WHERE key = 'seq'").fetchone()
        return int(row[0]) if row else 0

    def new_id(self, obj: str) -> str:
        seq = next(self._seq)
        self.conn.execute("INSERT OR REPLACE INTO meta VALUES ('seq', ?)", (str(seq),))
        return f"{PREFIX[obj]}8d{seq:010d}AAK"  # 18 characters, Salesforce key prefix

    def meta(self, key: str) -> str | None:
        row = self.conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def set_meta(self, key: str, value: str) -> None:
        self.conn.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))

    def now(self) -> str:
        """A SystemModstamp for a change made now: never earlier than anything already stamped."""
        with self.lock:
            latest = self.conn.execute("SELECT max(modstamp) FROM records").fetchone()[0]
        stamp = format_sf_datetime(datetime.now(UTC))
        if latest and latest >= stamp:
            moment = datetime.strptime(latest, "%Y-%m-%dT%H:%M:%S.%f%z") + timedelta(seconds=1)
            stamp = format_sf_datetime(moment)
        return stamp

    # ---------------------------------------------------------------- writes

    def insert_many(self, obj: str, records: Iterable[dict[str, Any]]) -> None:
        rows = (
            (
                r["Id"],
                obj,
                r.get("SystemModstamp") or r.get("CreatedDate"),
                r.get("CreatedDate"),
                1 if r.get("IsDeleted") else 0,
                json.dumps({k: v for k, v in r.items() if k not in ("Id", "SystemModstamp", "IsDeleted")}),
            )
            for r in records
        )
        with self.lock:
            self.conn.execute("BEGIN")
            self.conn.executemany("INSERT OR REPLACE INTO records VALUES (?, ?, ?, ?, ?, ?)", rows)
            self.conn.execute("COMMIT")

    def get(self, record_id: str) -> tuple[str, dict[str, Any], bool] | None:
        with self.lock:
            row = self.conn.execute(
                "SELECT obj, data, is_deleted, modstamp FROM records WHERE id = ?", (record_id,)
            ).fetchone()
        if row is None:
            return None
        data = json.loads(row[1])
        data["Id"], data["SystemModstamp"] = record_id, row[3]
        return row[0], data, bool(row[2])

    def update(self, record_id: str, values: dict[str, Any], stamp: str | None = None) -> None:
        with self.lock:
            found = self.get(record_id)
            if found is None:
                raise KeyError(record_id)
            _obj, data, _deleted = found
            data.update(values)
            stamp = stamp or self.now()
            data["LastModifiedDate"] = stamp
            body = json.dumps({k: v for k, v in data.items() if k not in ("Id", "SystemModstamp", "IsDeleted")})
            self.conn.execute("UPDATE records SET data = ?, modstamp = ? WHERE id = ?", (body, stamp, record_id))

    def set_deleted(self, record_id: str, deleted: bool = True, stamp: str | None = None) -> None:
        with self.lock:
            self.conn.execute(
                "UPDATE records SET is_deleted = ?, modstamp = ? WHERE id = ?",
                (1 if deleted else 0, stamp or self.now(), record_id),
            )

    def purge(self, record_id: str) -> None:
        """Hard delete (Recycle Bin emptied): gone from queryAll, still in getDeleted."""
        with self.lock:
            obj = self.conn.execute("SELECT obj FROM records WHERE id = ?", (record_id,)).fetchone()
            self.conn.execute("DELETE FROM records WHERE id = ?", (record_id,))
            if obj:
                self.conn.execute("INSERT OR REPLACE INTO purged VALUES (?, ?, ?)", (record_id, obj[0], self.now()))

    # ---------------------------------------------------------------- schema

    def fields(self, obj: str, *, tooling: bool = False, visible_only: bool = True) -> dict[str, FieldSpec]:
        schema = TOOLING_SCHEMA if tooling else SCHEMA
        if obj not in schema:
            raise SoqlError("INVALID_TYPE", f"sObject type '{obj}' is not supported.")
        out = {f.name: f for f in schema[obj]}
        if not tooling:
            for name, kind, precision, scale in self.custom_fields(obj, visible_only=visible_only):
                out[name] = FieldSpec(
                    name,
                    kind,
                    custom=True,
                    precision=precision,
                    scale=scale,
                    updateable=self.can_edit(obj, name) or not visible_only,
                )
        return out

    def custom_fields(self, obj: str, *, visible_only: bool = True) -> list[tuple[str, str, int, int]]:
        with self.lock:
            rows = self.conn.execute(
                "SELECT name, type, precision, scale FROM custom_fields WHERE obj = ?", (obj,)
            ).fetchall()
        return [r for r in rows if not visible_only or self.can_read(obj, r[0])]

    def _permission(self, obj: str, name: str, column: str) -> bool:
        with self.lock:
            row = self.conn.execute(
                f"SELECT 1 FROM records WHERE obj = 'FieldPermissions' AND is_deleted = 0 "
                f"AND json_extract(data, '$.Field') = ? AND json_extract(data, '$.{column}') = 1 LIMIT 1",
                (f"{obj}.{name}",),
            ).fetchone()
        return row is not None

    def can_read(self, obj: str, name: str) -> bool:
        return self._permission(obj, name, "PermissionsRead")

    def can_edit(self, obj: str, name: str) -> bool:
        return self._permission(obj, name, "PermissionsEdit")

    def add_custom_field(self, obj: str, name: str, kind: str, label: str, precision: int, scale: int) -> str:
        with self.lock:
            tooling_id = self.new_id("CustomField")
            self.conn.execute(
                "INSERT INTO custom_fields VALUES (?, ?, ?, ?, ?, ?, ?)",
                (obj, name, kind, label, precision, scale, tooling_id),
            )
            stamp = self.now()
            self.insert_many(
                "CustomField",
                [
                    {
                        "Id": tooling_id,
                        "DeveloperName": name.removesuffix("__c"),
                        "TableEnumOrId": obj,
                        "FullName": f"{obj}.{name}",
                        "CreatedDate": stamp,
                        "SystemModstamp": stamp,
                    }
                ],
            )
        return tooling_id

    # ---------------------------------------------------------------- SOQL

    def start_query(self, soql: Soql, *, include_deleted: bool, tooling: bool = False) -> QueryState:
        fields = self.fields(soql.sobject, tooling=tooling)
        for name in soql.fields:
            self._check_field(soql, fields, name)
        where = ["obj = ?"]
        params: list[Any] = [soql.sobject]
        if not include_deleted and soql.sobject not in NO_DELETE:
            where.append("is_deleted = 0")
        for cond in soql.where:
            self._check_field(soql, fields, cond.field)
            expr = self._expr(cond.field)
            value = cond.value
            if isinstance(value, bool):
                value = 1 if value else 0
            if cond.op == "IN":
                where.append(f"{expr} IN ({', '.join('?' for _ in value)})")
                params.extend(value)
            elif value is None:
                where.append(f"{expr} IS {'NOT ' if cond.op == '!=' else ''}NULL")
            else:
                where.append(f"{expr} {cond.op} ?")
                params.append(value)
        order = [(self._expr(name), desc) for name, desc in soql.order_by]
        for name, _desc in soql.order_by:
            self._check_field(soql, fields, name)
        keyset = all(not desc for _e, desc in order) and all(e in _COLUMNS.values() for e, _d in order)
        order_sql = [e for e, _d in order]
        if "id" not in order_sql:
            order_sql.append("id")
        sql_where = " AND ".join(where)
        with self.lock:
            total = self.conn.execute(f"SELECT count(*) FROM records WHERE {sql_where}", params).fetchone()[0]
        if soql.limit is not None:
            total = min(total, soql.limit)
        if not keyset:
            order_sql = [f"{e} {'DESC' if d else 'ASC'}" for e, d in order] + ["id"]
        return QueryState(soql, sql_where, params, order_sql, keyset, None, 0, total, tooling)

    def _check_field(self, soql: Soql, fields: dict[str, FieldSpec], name: str) -> None:
        if "." in name:
            rel = name.split(".", 1)[0]
            if not any(f.relationship == rel for f in fields.values()):
                raise column_error(soql, name)
        elif name not in fields:
            raise column_error(soql, name)

    @staticmethod
    def _expr(name: str) -> str:
        return _COLUMNS.get(name) or f"json_extract(data, '$.{name}')"

    def next_page(self, state: QueryState, size: int = PAGE_SIZE) -> list[dict[str, Any]]:
        """The next page of a query as wire records; advances the state."""
        size = min(size, state.total - state.offset)
        if size <= 0:
            return []
        columns = ", ".join(state.order_sql) if state.keyset else "1"
        sql = f"SELECT id, data, is_deleted, modstamp, {columns} FROM records WHERE {state.sql}"
        params = list(state.params)
        if state.keyset:
            if state.last_key is not None:
                sql += f" AND ({', '.join(state.order_sql)}) > ({', '.join('?' for _ in state.order_sql)})"
                params.extend(state.last_key)
            sql += f" ORDER BY {', '.join(state.order_sql)} LIMIT {size}"
        else:
            sql += f" ORDER BY {', '.join(state.order_sql)} LIMIT {size} OFFSET {state.offset}"
        with self.lock:
            rows = self.conn.execute(sql, params).fetchall()
        if rows and state.keyset:
            state.last_key = tuple(rows[-1][4:])
        state.offset += len(rows)
        return [self._project(state, row) for row in rows]

    def _project(self, state: QueryState, row: tuple[Any, ...]) -> dict[str, Any]:
        obj = state.soql.sobject
        data = json.loads(row[1])
        data["Id"], data["IsDeleted"], data["SystemModstamp"] = row[0], bool(row[2]), row[3]
        version = "v59.0"
        out: dict[str, Any] = {"attributes": {"type": obj, "url": f"/services/data/{version}/sobjects/{obj}/{row[0]}"}}
        for name in state.soql.fields:
            if "." in name:
                rel, sub = name.split(".", 1)
                out[rel] = self._parent(obj, data, rel, sub, out.get(rel))
            else:
                out[name] = data.get(name)
        return out

    def _parent(self, obj: str, data: dict[str, Any], rel: str, sub: str, have: Any) -> Any:
        spec = next(f for f in SCHEMA[obj] if f.relationship == rel)
        parent_id = data.get(spec.name)
        if not parent_id:
            return None
        found = self.get(parent_id)
        if found is None:
            return None
        parent_obj, parent, _deleted = found
        # polymorphic lookups report the type "Name" (salesforce-api.md §2.1)
        kind = "Name" if len(spec.reference_to) > 1 else parent_obj
        block = have or {"attributes": {"type": kind, "url": f"/services/data/v59.0/sobjects/{parent_obj}/{parent_id}"}}
        block[sub] = parent.get(sub) if sub != "Type" or kind != "Name" else parent_obj
        return block

    def iter_query(self, state: QueryState, size: int) -> Iterator[list[dict[str, Any]]]:
        while True:
            page = self.next_page(state, size)
            if not page:
                return
            yield page

    # ---------------------------------------------------------------- replication feeds

    def deleted_between(self, obj: str, start: str, end: str) -> list[dict[str, str]]:
        with self.lock:
            rows = self.conn.execute(
                "SELECT id, modstamp FROM records WHERE obj = ? AND is_deleted = 1 AND modstamp >= ? AND modstamp < ? "
                "UNION SELECT id, deleted FROM purged WHERE obj = ? AND deleted >= ? AND deleted < ?",
                (obj, start, end, obj, start, end),
            ).fetchall()
        return [{"id": r[0], "deletedDate": r[1]} for r in rows]

    def updated_between(self, obj: str, start: str, end: str) -> list[str]:
        with self.lock:
            rows = self.conn.execute(
                "SELECT id FROM records WHERE obj = ? AND is_deleted = 0 AND modstamp >= ? AND modstamp < ?",
                (obj, start, end),
            ).fetchall()
        return [r[0] for r in rows]

    def object_of(self, record_id: str) -> str | None:
        return OBJECT_BY_PREFIX.get(record_id[:3])

    def close(self) -> None:
        self.conn.close()
