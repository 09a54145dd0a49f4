"""`SalesforceConnector`: the Connector interface (connectors/base.py) over SalesforceClient.

    connector = SalesforceConnector(load_config("salesforce.yaml"))
    for spec in connector.objects():
        for page in connector.pull(spec, cursor=None):
            ...store page.rows and page.cursor in one transaction...

Incremental pulls read `WHERE SystemModstamp >= <cursor> ORDER BY SystemModstamp, Id`
through queryAll, so soft deletes arrive in the same pass (salesforce-api.md
§2.4, §2.6). A `full` pull re-reads everything and, above
`connection.bulk_threshold` rows (one COUNT() first), uses a Bulk API 2.0 query
job instead of REST pages (§3). Pages are mapped and handed over one at a
time; nothing holds an object's whole result.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from kpisync.config import Config, SalesforceAuth
from kpisync.connectors.base import (
    ApiUsage,
    Change,
    CheckResult,
    FieldDef,
    FieldWrite,
    ObjectSpec,
    Page,
    Quarantined,
    WriteResult,
)
from kpisync.connectors.salesforce import provision as provisioning
from kpisync.connectors.salesforce import writeback
from kpisync.connectors.salesforce.client import SalesforceClient
from kpisync.connectors.salesforce.mapping import MAPPERS, Context
from kpisync.connectors.salesforce.objects import BY_NAME, OBJECTS, SObject, available, select_fields, soql
from kpisync.errors import AuthError, RunError, SkippableRecord
from kpisync.timestamps import BadTimestamp, normalize_ts, utc_now

log = logging.getLogger("kpisync.salesforce")
PAGE = 2000
PURGE_WINDOW_DAYS = 14  # getDeleted looks back at most 15 days (§2.7)


class SalesforceConnector:
    crm = "salesforce"

    def __init__(self, config: Config) -> None:
        if not isinstance(config.auth, SalesforceAuth):
            raise TypeError("SalesforceConnector needs a Salesforce config")
        self.config = config
        self.client = SalesforceClient(config)
        self._fields: dict[str, tuple[list[str], list[str]]] = {}
        self._memo: dict[Any, Any] = {}  # mapping answers kept across pages (values.Context.memo)

    # ---------------------------------------------------------------- reading

    def objects(self) -> Sequence[ObjectSpec]:
        return [o.spec() for o in OBJECTS]

    def _selected(self, obj: SObject) -> tuple[list[str], list[str]]:
        if obj.name not in self._fields:
            self._fields[obj.name] = select_fields(obj, self.config.mapping, self.client.describe(obj.name))
        return self._fields[obj.name]

    def query_for(self, name: str) -> tuple[str, bool]:
        """(SOQL of a whole pull, whether it reads deleted rows): what `pull` sends first, for tools and benches."""
        obj = BY_NAME[name]
        return soql(obj, self._selected(obj)[0], None), obj.deletions

    def pull(self, spec: ObjectSpec, cursor: str | None, *, full: bool = False) -> Iterator[Page]:
        obj = BY_NAME[spec.name]
        fields, missing = self._selected(obj)
        if missing and not obj.sibling:
            log.info("%s: the org lacks %s; pulling without them (kpisync doctor lists them)", obj.name, missing)
        if full and self.client.count(f"SELECT COUNT() FROM {obj.name}") > self.config.connection.bulk_threshold:
            yield from self._pull_bulk(obj, fields)
        else:
            since = None if full else _cursor_literal(cursor)
            query = soql(obj, fields, since)
            for records in self.client.query_pages(query, include_deleted=obj.deletions):
                yield self._page(obj, records, ordered=True)
        if full and obj.purges:
            yield self._purged(obj)

    def _purged(self, obj: SObject) -> Page:
        """Records deleted in the last 15 days per the getDeleted feed (§2.7), flagged; the cursor stays."""
        # the feed covers whole minutes and its end is exclusive: end at the next minute to include now
        end = datetime.now(UTC).replace(second=0, microsecond=0) + timedelta(minutes=1)
        start = end - timedelta(days=PURGE_WINDOW_DAYS)
        feed = self.client.restful(
            f"sobjects/{obj.name}/deleted/",
            params={"start": start.isoformat(), "end": end.isoformat()},
        )
        synced = utc_now()
        markers = [{"id": d["id"], "is_deleted": 1, "synced_at": synced} for d in feed.get("deletedRecords", [])]
        return Page(rows={obj.tables[0]: markers} if markers else {})

    def _pull_bulk(self, obj: SObject, fields: list[str]) -> Iterator[Page]:
        # Bulk results come unordered (ORDER BY disables PK chunking, §3): pages move no cursor;
        # the last one sets it to the highest value seen, once every row is stored.
        highest: str | None = None
        query = soql(obj, fields, None, ordered=False)
        for rows in self.client.bulk_query(query, include_deleted=obj.deletions, page_size=PAGE):
            records = [_from_csv(r) for r in rows]
            page = self._page(obj, records, ordered=False)
            for r in records:
                stamp = _stamp(r.get(obj.cursor_field))
                if stamp and (highest is None or stamp > highest):
                    highest = stamp
            yield page
        yield Page(rows={}, cursor=highest)

    def _page(self, obj: SObject, records: list[dict[str, Any]], *, ordered: bool) -> Page:
        mapper = MAPPERS[obj.mapper]
        ctx = Context(self.config.mapping, utc_now(), self._memo)
        rows: dict[str, list[dict[str, Any]]] = {}
        quarantined: list[Quarantined] = []
        for record in records:
            try:
                for table, table_rows in mapper(record, ctx).items():
                    rows.setdefault(table, []).extend(table_rows)
            except (SkippableRecord, BadTimestamp, KeyError, TypeError, ValueError) as exc:
                quarantined.append(
                    Quarantined(
                        str(record.get("Id", "")), f"{type(exc).__name__}: {exc}", json.dumps(record, default=str)
                    )
                )
        cursor = _stamp(records[-1].get(obj.cursor_field)) if ordered and records else None
        return Page(rows=rows, cursor=cursor, quarantined=quarantined)

    # ---------------------------------------------------------------- doctor

    def check(self) -> list[CheckResult]:
        results: list[CheckResult] = []
        try:
            self.client.connect()
        except (AuthError, RunError) as exc:
            return [CheckResult("credentials", False, str(exc))]
        session = self.client.session
        results.append(CheckResult("credentials", True, f"logged in to {session.instance_url if session else '?'}"))
        try:
            limits = self.client.limits().get("DailyApiRequests", {})
            left, floor = limits.get("Remaining"), self.config.connection.min_api_calls_left
            ok = left is None or left > floor
            results.append(CheckResult("api calls left", ok, f"{left} of {limits.get('Max')} (floor {floor})"))
        except RunError as exc:
            results.append(CheckResult("api calls left", False, str(exc), severity="warning"))
        for obj in OBJECTS:
            try:
                _fields, missing = self._selected(obj)
                if obj.sibling:
                    other = self.client.describe(obj.sibling)
                    missing = [f for f in missing if not available(other, f)]
            except RunError as exc:
                results.append(CheckResult(f"object {obj.name}", False, str(exc), severity="warning"))
                continue
            results.append(
                CheckResult(
                    f"fields of {obj.name}",
                    not missing,
                    f"missing (check config.mapping and field-level security): {', '.join(missing)}"
                    if missing
                    else "all mapped fields present",
                    severity="warning",
                )
            )
        for target in self.config.writeback_targets():
            for obj_name in provisioning.GRAIN_OBJECTS.get(target.grain, ()):
                describe = self.client.describe(obj_name)
                entry = next((f for f in describe.get("fields", []) if f.get("name") == target.field), None)
                if entry is None:
                    results.append(
                        CheckResult(
                            f"write-back {obj_name}.{target.field}",
                            False,
                            "field missing or not visible: run `kpisync provision`",
                        )
                    )
                elif not entry.get("updateable"):
                    results.append(
                        CheckResult(
                            f"write-back {obj_name}.{target.field}",
                            False,
                            "field not writable for the integration user: grant edit access",
                        )
                    )
                else:
                    results.append(CheckResult(f"write-back {obj_name}.{target.field}", True, entry.get("type", "")))
        return results

    # ---------------------------------------------------------------- write-back

    def locate(self, grain: str, key: str, source_object: str | None, period: str) -> tuple[str, str] | None:
        if grain == "user":
            return ("User", key)
        if grain == "contact":
            obj = (
                source_object
                if source_object in ("Lead", "Contact")
                else ("Lead" if key.startswith("00Q") else "Contact")
            )
            return (obj, key)
        if grain == "account":
            return ("Account", key)
        if grain == "opportunity":
            return ("Opportunity", key)
        return None

    def push(self, writes: Sequence[FieldWrite]) -> list[WriteResult]:
        return writeback.push(self.client, writes)

    def provision(self, fields: Sequence[FieldDef], *, dry_run: bool = False) -> list[Change]:
        changes = provisioning.provision(self.client, fields, dry_run=dry_run)
        self._fields.clear()
        return changes

    def usage(self) -> ApiUsage:
        return ApiUsage(self.client.calls, self.client.remaining, self.client.limit)

    def close(self) -> None:
        self.client.close()

    def has_field(self, obj: str, name: str) -> bool:
        return available(self.client.describe(obj), name)


def _stamp(raw: Any) -> str | None:
    try:
        return normalize_ts(raw)
    except BadTimestamp:
        return None


def _cursor_literal(cursor: str | None) -> str | None:
    """A stored cursor as a SOQL datetime literal (unquoted UTC, §2.5); never anything else in the query."""
    if not cursor:
        return None
    try:
        return normalize_ts(cursor)
    except BadTimestamp as exc:
        raise RunError(f"stored cursor {cursor!r} is not a timestamp; run a --full sync to reset it") from exc


def _from_csv(row: dict[str, str]) -> dict[str, Any]:
    """A Bulk CSV row in the REST record shape: "" → None, `Owner.Name` → nested (§3)."""
    record: dict[str, Any] = {}
    for key, raw in row.items():
        val = None if raw == "" else raw
        if "." in key:
            parent, child = key.split(".", 1)
            block = record.get(parent)
            if val is not None:
                if not isinstance(block, dict):
                    block = record[parent] = {}
                block[child] = val
            elif parent not in record:
                record[parent] = None
        else:
            record[key] = val
    return record
