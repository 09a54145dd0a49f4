"""The Salesforce sandbox's HTTP surface: login, REST query, describe, Bulk 2.0, collections, Tooling, limits.

Shapes follow the recorded payloads in shared/fixtures/salesforce/ and the wire
reference (salesforce-api.md). Every `/services/data` call counts against a
daily budget, carries `Sforce-Limit-Info`, and needs a live session: a revoked
or expired one gets the 401 JSON list simple-salesforce expects (§1.4).
"""

from __future__ import annotations

import itertools
import json
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from kpisync.connectors.sandbox.salesforce_bulk import BulkJob, BulkRoutes
from kpisync.connectors.sandbox.salesforce_login import LoginRoutes
from kpisync.connectors.sandbox.salesforce_org import OrgStore, QueryState
from kpisync.connectors.sandbox.salesforce_schema import PREFIX, SCHEMA, describe_field
from kpisync.connectors.sandbox.salesforce_soql import SoqlError, datetime_literal, parse
from kpisync.connectors.sandbox.salesforce_wire import ORG_ID, error
from kpisync.connectors.sandbox.server import Request, Response, Router

API = r"/services/data/v(?P<ver>\d+\.\d)"
BULK_CHUNK = 50_000
_FIELD_TYPES = {"Percent": "percent", "Number": "double", "Currency": "currency", "Text": "string", "Date": "date"}


@dataclass
class Credentials:
    username: str
    password: str
    security_token: str
    consumer_key: str


@dataclass
class ApiBudget:
    used: int = 0
    limit: int = 1_000_000
    lock: threading.Lock = field(default_factory=threading.Lock)


class SalesforceApi(LoginRoutes, BulkRoutes):
    def __init__(self, org: OrgStore, creds: Credentials, describe_template: dict[str, Any], api_limit: int) -> None:
        self.org = org
        self.creds = creds
        self.template = describe_template
        self.sessions: set[str] = set()
        self.budget = ApiBudget(limit=api_limit)
        self.queries: dict[str, QueryState] = {}
        self.jobs: dict[str, BulkJob] = {}
        self.write_failures: dict[str, tuple[str, str]] = {}  # record id → (statusCode, message), one use
        self.base_url = ""  # set once the server knows its port
        self._ids = itertools.count(1)
        self.lock = threading.Lock()

    # ---------------------------------------------------------------- plumbing

    def router(self) -> Router:
        r = Router()
        r.add("POST", r"/services/Soap/u/(?P<ver>[\d.]+)", self.soap_login)
        r.add("POST", r"/services/oauth2/token", self.oauth_token)
        routes: list[tuple[str, str, Callable[[Request], Response]]] = [
            ("GET", rf"{API}/(?P<res>query|queryAll)/?", self.query),
            ("GET", rf"{API}/query/(?P<loc>[^/]+)", self.query_more),
            ("GET", rf"{API}/tooling/query/?", self.tooling_query),
            ("GET", rf"{API}/sobjects/(?P<obj>\w+)/describe/?", self.describe),
            ("GET", rf"{API}/sobjects/(?P<obj>\w+)/deleted/?", self.deleted),
            ("GET", rf"{API}/sobjects/(?P<obj>\w+)/updated/?", self.updated),
            ("POST", rf"{API}/sobjects/(?P<obj>\w+)/?", self.create),
            ("PATCH", rf"{API}/composite/sobjects/?", self.collections_update),
            ("PATCH", rf"{API}/sobjects/(?P<obj>\w+)/(?P<id>\w+)/?", self.update_one),
            ("POST", rf"{API}/tooling/sobjects/CustomField/?", self.create_custom_field),
            ("GET", rf"{API}/limits/?", self.limits),
            ("POST", rf"{API}/jobs/query/?", self.bulk_create),
            ("GET", rf"{API}/jobs/query/(?P<job>\w+)/results/?", self.bulk_results),
            ("GET", rf"{API}/jobs/query/(?P<job>\w+)/?", self.bulk_status),
            ("DELETE", rf"{API}/jobs/query/(?P<job>\w+)/?", self.bulk_delete),
        ]
        for method, pattern, handler in routes:
            r.add(method, pattern, self._api(handler))
        return r

    def _api(self, handler: Callable[[Request], Response]) -> Callable[[Request], Response]:
        def wrapped(request: Request) -> Response:
            token = request.headers.get("authorization", "").removeprefix("Bearer ").strip()
            if token not in self.sessions:
                response = error(401, "INVALID_SESSION_ID", "Session expired or invalid")
                response.headers["WWW-Authenticate"] = "Token"
                return response
            with self.budget.lock:
                if self.budget.used >= self.budget.limit:
                    response = error(403, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded.")
                    response.headers["Sforce-Limit-Info"] = f"api-usage={self.budget.used}/{self.budget.limit}"
                    return response
                self.budget.used += 1
                usage = f"api-usage={self.budget.used}/{self.budget.limit}"
            try:
                response = handler(request)
            except SoqlError as exc:
                response = error(400, exc.code, exc.message)
            response.headers["Sforce-Limit-Info"] = usage
            return response

        return wrapped

    def new_session(self) -> str:
        token = f"{ORG_ID[:15]}!AQ0AQ{secrets.token_urlsafe(48)}"
        self.sessions.add(token)
        return token

    # ---------------------------------------------------------------- query (§2)

    def _start(self, request: Request, *, include_deleted: bool, tooling: bool = False) -> Response:
        text = request.arg("q")
        if not text:
            return error(400, "MALFORMED_QUERY", "A query string has to be specified")
        soql = parse(text)
        state = self.org.start_query(soql, include_deleted=include_deleted, tooling=tooling)
        if soql.count:
            return Response(200, {"totalSize": state.total, "done": True, "records": []})
        return self._page(request, state)

    def _page(self, request: Request, state: QueryState) -> Response:
        records = self.org.next_page(state)
        body: dict[str, Any] = {"totalSize": state.total, "done": state.offset >= state.total}
        if state.tooling:
            body = {"size": len(records), **body, "queryLocator": None, "entityTypeName": state.soql.sobject}
        if not body["done"]:
            with self.lock:
                locator = f"0r88d{next(self._ids):010d}AAV"
                self.queries[locator] = state
            ver = request.match.group("ver") if request.match else "59.0"
            body["nextRecordsUrl"] = f"/services/data/v{ver}/query/{locator}-{state.offset}"
        body["records"] = records
        return Response(200, body)

    def query(self, request: Request) -> Response:
        res = request.match.group("res") if request.match else "query"
        return self._start(request, include_deleted=res == "queryAll")

    def tooling_query(self, request: Request) -> Response:
        return self._start(request, include_deleted=False, tooling=True)

    def query_more(self, request: Request) -> Response:
        loc = request.match.group("loc") if request.match else ""
        locator, _, offset = loc.rpartition("-")
        with self.lock:
            state = self.queries.get(locator)
        if state is None or not offset.isdigit():
            return error(400, "INVALID_QUERY_LOCATOR", "invalid query locator")
        if int(offset) != state.offset:
            # a replayed page (the client retried after a reset): serve the same rows again
            if not state.keyset:
                return error(400, "INVALID_QUERY_LOCATOR", "invalid query locator")
            state = self._rewind(state, int(offset))
        return self._page(request, state)

    def _rewind(self, state: QueryState, offset: int) -> QueryState:
        fresh = self.org.start_query(
            state.soql, include_deleted="is_deleted = 0" not in state.sql, tooling=state.tooling
        )
        for _page in range(offset // 2000):
            self.org.next_page(fresh)
        return fresh

    # ---------------------------------------------------------------- describe and replication feeds

    def describe(self, request: Request) -> Response:
        obj = request.match.group("obj") if request.match else ""
        if obj not in SCHEMA:
            return error(404, "NOT_FOUND", "The requested resource does not exist")
        top = {k: v for k, v in self.template.items() if k not in ("fields", "childRelationships")}
        field_template = self.template["fields"][0]
        fields = [describe_field(spec, field_template) for spec in self.org.fields(obj).values()]
        top.update(
            name=obj,
            label=obj,
            labelPlural=f"{obj}s",
            keyPrefix=PREFIX[obj],
            urls={k: str(v).replace("vxx.0", "v59.0").replace("Opportunity", obj) for k, v in top["urls"].items()},
            replicateable=obj != "User",
        )
        return Response(200, {**top, "fields": fields, "childRelationships": []})

    def _window(self, request: Request) -> tuple[str, str] | Response:
        start, end = request.arg("start"), request.arg("end")
        if not start or not end:
            return error(400, "MALFORMED_QUERY", "start and end are required")
        try:
            return datetime_literal(start), datetime_literal(end)
        except ValueError:
            return error(400, "INVALID_REPLICATION_DATE", "Invalid startDate or endDate")

    def deleted(self, request: Request) -> Response:
        obj = request.match.group("obj") if request.match else ""
        window = self._window(request)
        if isinstance(window, Response):
            return window
        records = self.org.deleted_between(obj, *window)
        return Response(
            200, {"deletedRecords": records, "earliestDateAvailable": window[0], "latestDateCovered": window[1]}
        )

    def updated(self, request: Request) -> Response:
        obj = request.match.group("obj") if request.match else ""
        window = self._window(request)
        if isinstance(window, Response):
            return window
        return Response(200, {"ids": self.org.updated_between(obj, *window), "latestDateCovered": window[1]})

    def limits(self, request: Request) -> Response:
        with self.budget.lock:
            used, limit = self.budget.used, self.budget.limit
        return Response(
            200,
            {
                "DailyApiRequests": {"Max": limit, "Remaining": max(limit - used, 0)},
                "DailyBulkV2QueryJobs": {"Max": 10000, "Remaining": 10000 - len(self.jobs)},
                "DataStorageMB": {"Max": 1024, "Remaining": 1000},
            },
        )

    # ---------------------------------------------------------------- writes (§4.2, §5)

    def create(self, request: Request) -> Response:
        obj = request.match.group("obj") if request.match else ""
        if obj not in SCHEMA:
            return error(404, "NOT_FOUND", f"The requested resource does not exist: {obj}")
        body = request.json() or {}
        fields = self.org.fields(obj)
        bad = [k for k in body if k not in fields and k != "attributes"]
        if bad:
            return error(400, "INVALID_FIELD", f"No such column '{bad[0]}' on sobject of type {obj}")
        if obj == "PermissionSet" and self._exists("PermissionSet", "Name", body.get("Name")):
            return error(400, "DUPLICATE_DEVELOPER_NAME", "The API Name you entered is already in use", fields=["Name"])
        # one grant per permission set and field, one assignment per user and set (as a real org)
        unique = {
            "FieldPermissions": ("ParentId", "Field"),
            "PermissionSetAssignment": ("AssigneeId", "PermissionSetId"),
        }
        if obj in unique and self._exists_all(obj, {k: body.get(k) for k in unique[obj]}):
            return error(
                400, "DUPLICATE_VALUE", f"duplicate value found: {obj} already exists", fields=list(unique[obj])
            )
        record_id = self.org.new_id(obj)
        stamp = self.org.now()
        self.org.insert_many(obj, [{**body, "Id": record_id, "CreatedDate": stamp, "SystemModstamp": stamp}])
        return Response(201, {"id": record_id, "success": True, "errors": []})

    def _exists_all(self, obj: str, values: dict[str, Any]) -> bool:
        where = " AND ".join(f"json_extract(data, '$.{k}') = ?" for k in values)
        with self.org.lock:
            row = self.org.conn.execute(
                f"SELECT 1 FROM records WHERE obj = ? AND {where}", (obj, *values.values())
            ).fetchone()
        return row is not None

    def _exists(self, obj: str, fld: str, value: Any) -> bool:
        with self.org.lock:
            row = self.org.conn.execute(
                f"SELECT 1 FROM records WHERE obj = ? AND json_extract(data, '$.{fld}') = ?", (obj, value)
            ).fetchone()
        return row is not None

    def create_custom_field(self, request: Request) -> Response:
        body = request.json() or {}
        full = str(body.get("FullName", ""))
        meta = body.get("Metadata") or {}
        obj, _, name = full.partition(".")
        if obj not in SCHEMA or not name.endswith("__c"):
            return error(400, "INVALID_INPUT", f"invalid FullName: {full}")
        kind = _FIELD_TYPES.get(str(meta.get("type")))
        if kind is None:
            return error(400, "FIELD_INTEGRITY_EXCEPTION", f"unsupported field type: {meta.get('type')}")
        if kind in ("percent", "double", "currency") and ("precision" not in meta or "scale" not in meta):
            return error(400, "FIELD_INTEGRITY_EXCEPTION", "Precision and scale are required for this type")
        if name in self.org.fields(obj, visible_only=False):
            return error(400, "DUPLICATE_DEVELOPER_NAME", f"Duplicate developer name: {full}")
        tooling_id = self.org.add_custom_field(
            obj,
            name,
            kind,
            str(meta.get("label") or name),
            int(meta.get("precision") or 0),
            int(meta.get("scale") or 0),
        )
        return Response(201, {"id": tooling_id, "success": True, "errors": [], "warnings": [], "infos": []})

    def collections_update(self, request: Request) -> Response:
        try:
            body = request.json() or {}
        except json.JSONDecodeError:
            return error(400, "JSON_PARSER_ERROR", "Unexpected character")
        records = body.get("records") or []
        if len(records) > 200:
            return error(400, "EXCEEDED_ID_LIMIT", "record limit reached. cannot submit more than 200 records")
        described: dict[str, dict[str, Any]] = {}  # one field-permission lookup per object, not per record
        results = [self._update_one(r, described) for r in records]
        if body.get("allOrNone") and not all(r["success"] for r in results):
            rolled = {"statusCode": "ALL_OR_NONE_OPERATION_ROLLED_BACK", "message": "Record rolled back", "fields": []}
            return Response(
                200, [r if not r["success"] else {"id": r["id"], "success": False, "errors": [rolled]} for r in results]
            )
        for record, result in zip(records, results, strict=True):
            if result["success"]:
                values = {k: v for k, v in record.items() if k not in ("attributes", "id")}
                self.org.update(record["id"], values)
        return Response(200, results)

    def update_one(self, request: Request) -> Response:
        obj = request.match.group("obj") if request.match else ""
        record_id = request.match.group("id") if request.match else ""
        body = request.json() or {}
        result = self._update_one({"attributes": {"type": obj}, "id": record_id, **body})
        if not result["success"]:
            err = result["errors"][0]
            status = 404 if err["statusCode"] == "INVALID_CROSS_REFERENCE_KEY" else 400
            return error(status, err["statusCode"], err["message"])
        self.org.update(record_id, body)
        return Response(204)

    def _update_one(self, record: dict[str, Any], described: dict[str, dict[str, Any]] | None = None) -> dict[str, Any]:
        def fail(code: str, message: str, fields: list[str] | None = None) -> dict[str, Any]:
            return {"success": False, "errors": [{"statusCode": code, "message": message, "fields": fields or []}]}

        record_id = str(record.get("id") or "")
        obj = (record.get("attributes") or {}).get("type")
        if not record_id or len(record_id) not in (15, 18):
            return fail("MALFORMED_ID", f"malformed id {record_id}")
        injected = self.write_failures.pop(record_id, None)
        if injected:
            return fail(*injected)
        found = self.org.get(record_id)
        if found is None:
            return fail("INVALID_CROSS_REFERENCE_KEY", f"invalid cross reference id: {record_id}")
        found_obj, _data, deleted = found
        if deleted:
            return fail("ENTITY_IS_DELETED", "entity is deleted")
        if obj != found_obj:
            return fail("INVALID_TYPE", f"id {record_id} is not a {obj}")
        described = {} if described is None else described
        if found_obj not in described:
            described[found_obj] = self.org.fields(found_obj)
        fields = described[found_obj]
        for name in record:
            if name in ("attributes", "id"):
                continue
            spec = fields.get(name)
            if spec is None:
                return fail("INVALID_FIELD", f"No such column '{name}' on sobject of type {obj}", [name])
            if not spec.updateable:
                return fail(
                    "INVALID_FIELD_FOR_INSERT_UPDATE",
                    f"Unable to create/update fields: {name}. Please check the security settings of this field.",
                    [name],
                )
        return {"id": record_id, "success": True, "errors": []}
