"""Writing KPI values into Salesforce fields: sObject Collections PATCH, 200 records a call.

`PATCH composite/sobjects` with `allOrNone: false` answers HTTP 200 even when
records fail, with one result per record in request order; failed entries
may lack `id`, so results are matched by position and errors carry
`statusCode` (salesforce-api.md §4.2). Setup objects (User) are never mixed
with other objects in one call. All fields of one record go in one entry.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from kpisync.connectors.base import FieldWrite, WriteResult
from kpisync.connectors.salesforce.client import SalesforceClient
from kpisync.errors import RunError

BATCH = 200
# the record no longer exists: drop it locally, never retry (§4.4)
GONE = {"ENTITY_IS_DELETED", "INVALID_CROSS_REFERENCE_KEY", "NOT_FOUND", "INVALID_ID_FIELD"}


def _field_types(client: SalesforceClient, obj: str) -> dict[str, str]:
    try:
        describe = client.describe(obj)
    except RunError:
        return {}
    return {f["name"]: f.get("type", "") for f in describe.get("fields", [])}


def wire_value(value: float | None, field_type: str) -> float | None:
    """KPI ratios are fractions 0–1; Salesforce percent fields hold 0–100 (§2.2)."""
    if value is None:
        return None
    # rounded so 1.4661 is sent as 146.61, not 146.60999999999999 (Salesforce keeps the field's scale anyway)
    return round(value * 100.0, 9) if field_type == "percent" else value


def push(client: SalesforceClient, writes: Sequence[FieldWrite]) -> list[WriteResult]:
    by_record: dict[tuple[str, str], list[FieldWrite]] = {}
    for write in writes:
        by_record.setdefault((write.object, write.record_id), []).append(write)
    results: list[WriteResult] = []
    by_object: dict[str, list[tuple[str, list[FieldWrite]]]] = {}
    for (obj, record_id), group in by_record.items():
        by_object.setdefault(obj, []).append((record_id, group))
    for obj, records in by_object.items():
        types = _field_types(client, obj)
        for start in range(0, len(records), BATCH):
            batch = records[start : start + BATCH]
            body = {
                "allOrNone": False,
                "records": [
                    {
                        "attributes": {"type": obj},
                        "id": record_id,
                        **{w.field: wire_value(w.value, types.get(w.field, "")) for w in group},
                    }
                    for record_id, group in batch
                ],
            }
            answer = client.restful("composite/sobjects", method="PATCH", json=body)
            results.extend(_results(batch, answer))
    return results


def _results(batch: list[tuple[str, list[FieldWrite]]], answer: Any) -> list[WriteResult]:
    if not isinstance(answer, list) or len(answer) != len(batch):
        raise RunError(
            f"composite/sobjects answered {len(answer) if isinstance(answer, list) else answer!r} "
            f"results for {len(batch)} records"
        )
    out: list[WriteResult] = []
    for (_record_id, group), result in zip(batch, answer, strict=True):
        if result.get("success"):
            out.extend(WriteResult(w, ok=True) for w in group)
            continue
        errors = result.get("errors") or []
        codes = {str(e.get("statusCode") or e.get("errorCode")) for e in errors}
        text = "; ".join(f"{e.get('statusCode') or e.get('errorCode')}: {e.get('message')}" for e in errors)
        out.extend(WriteResult(w, ok=False, error=text or "failed", gone=bool(codes & GONE)) for w in group)
    return out
