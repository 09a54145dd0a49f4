"""Sandbox Bulk API 2.0 query jobs: create, poll, CSV results with Sforce-Locator (salesforce-api.md §3)."""

from __future__ import annotations

import base64
import csv
import io
import itertools
import threading
from dataclasses import dataclass
from typing import Any

from kpisync.connectors.sandbox.salesforce_org import OrgStore, QueryState
from kpisync.connectors.sandbox.salesforce_soql import parse
from kpisync.connectors.sandbox.salesforce_wire import INTEGRATION_USER, error
from kpisync.connectors.sandbox.server import Request, Response

BULK_CHUNK = 50_000


@dataclass
class BulkJob:
    id: str
    state: QueryState
    info: dict[str, Any]
    polls: int = 0


class BulkRoutes:
    org: OrgStore
    jobs: dict[str, BulkJob]
    lock: threading.Lock
    _ids: itertools.count[int]

    def bulk_create(self, request: Request) -> Response:
        body = request.json() or {}
        soql = parse(str(body.get("query", "")))
        if soql.count or soql.order_by or soql.limit is not None:
            return error(400, "INVALIDJOB", "Bulk API 2.0 queries do not support COUNT(), ORDER BY or LIMIT here")
        operation = body.get("operation", "query")
        state = self.org.start_query(soql, include_deleted=operation == "queryAll")
        job_id = f"7508d{next(self._ids):010d}AAF"
        stamp = self.org.now()
        info = {
            "id": job_id,
            "operation": operation,
            "object": soql.sobject,
            "createdById": INTEGRATION_USER,
            "createdDate": stamp,
            "systemModstamp": stamp,
            "state": "UploadComplete",
            "concurrencyMode": "Parallel",
            "contentType": "CSV",
            "apiVersion": float(request.match.group("ver")) if request.match else 59.0,
            "lineEnding": body.get("lineEnding", "LF"),
            "columnDelimiter": body.get("columnDelimiter", "COMMA"),
        }
        with self.lock:
            self.jobs[job_id] = BulkJob(job_id, state, info)
        return Response(200, info)

    def bulk_status(self, request: Request) -> Response:
        job = self.jobs.get(request.match.group("job") if request.match else "")
        if job is None:
            return error(404, "NOT_FOUND", "job not found")
        job.polls += 1
        # the first poll finds the job still running, as a real org does for a moment
        state = "InProgress" if job.polls == 1 else "JobComplete"
        info = {
            **job.info,
            "state": state,
            "numberRecordsProcessed": job.state.total if state == "JobComplete" else 0,
            "retries": 0,
            "totalProcessingTime": 10,
            "isPkChunkingSupported": True,
        }
        return Response(200, info)

    def bulk_results(self, request: Request) -> Response:
        job = self.jobs.get(request.match.group("job") if request.match else "")
        if job is None:
            return error(404, "NOT_FOUND", "job not found")
        max_records = int(request.arg("maxRecords") or BULK_CHUNK)
        locator = request.arg("locator")
        expected = base64.b64encode(str(job.state.offset).encode()).decode() if job.state.offset else None
        if locator != expected:
            return error(400, "INVALIDLOCATOR", "invalid locator")
        out = io.StringIO()
        writer = csv.writer(out, quoting=csv.QUOTE_ALL, lineterminator="\n")
        writer.writerow(job.state.soql.fields)
        rows = 0
        for record in self.org.next_page(job.state, max_records):
            rows += 1
            writer.writerow([_csv_value(_dotted(record, f)) for f in job.state.soql.fields])
        done = job.state.offset >= job.state.total
        next_locator = "null" if done else base64.b64encode(str(job.state.offset).encode()).decode()
        headers = {"Sforce-NumberOfRecords": str(rows), "Sforce-Locator": next_locator}
        return Response(200, out.getvalue(), headers, content_type="text/csv")

    def bulk_delete(self, request: Request) -> Response:
        with self.lock:
            self.jobs.pop(request.match.group("job") if request.match else "", None)
        return Response(204)


def _dotted(record: dict[str, Any], name: str) -> Any:
    value: Any = record
    for part in name.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


def _csv_value(value: Any) -> str:
    # Bulk CSV: booleans lower-case, nulls empty, datetimes with Z (salesforce-api.md §3)
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str) and value.endswith("+0000") and "T" in value:
        return value[:-5] + "Z"
    return str(value)
