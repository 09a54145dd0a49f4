"""Writing KPI values into HubSpot properties (hubspot-api.md §3.4, §7.3).

- Record KPIs: `batch/update` in 100s, one input per record with all its
  fields. 200 = all written; 207 (returned by the client as a `…WithErrors`
  object, not raised) lists missing ids → `gone=True`; 400 rejects the whole
  batch, so the batch is split in halves until the bad input stands alone.
- Rep KPIs: the "Sales KPI Scorecard" custom object, one record per
  (owner, period), upserted by the unique `kpi_scorecard_key` and owned by the
  rep through `hubspot_owner_id`.
- Our own echo: every write bumps the record's modified date (§5.7), so the
  next incremental search returns it. `EchoLedger` remembers the modified date
  each write produced; a pulled record whose modified date is still exactly
  that one changed only by our write and is not re-stored. The ledger lives in
  `<store>.hubspot-echo.json` so it survives between `writeback` and `sync`
  processes.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hubspot.crm.objects import (
    BatchInputSimplePublicObjectBatchInput,
    BatchInputSimplePublicObjectBatchInputUpsert,
    SimplePublicObjectBatchInput,
    SimplePublicObjectBatchInputUpsert,
)

from kpisync.connectors.base import FieldWrite, WriteResult
from kpisync.connectors.hubspot.client import ApiError
from kpisync.connectors.hubspot.mapping import ms
from kpisync.connectors.hubspot.objects import SCORECARD_KEY, SCORECARD_PERIOD

if TYPE_CHECKING:
    from kpisync.connectors.hubspot.connector import HubSpotConnector

BATCH = 100
_LEDGER_TTL_S = 7 * 86400


def scorecard_key(owner_id: str, period: str) -> str:
    return f"{owner_id}:{period}"


def value_text(value: float | None) -> str:
    """HubSpot number properties take plain decimal strings; "" clears (§0)."""
    if value is None:
        return ""
    if float(value).is_integer():
        return str(int(value))
    return f"{value:.10f}".rstrip("0").rstrip(".")


class EchoLedger:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._entries: dict[str, tuple[int, float]] | None = None  # "type/id" → (modified ms, noted at)
        self._dirty = False

    def _load(self) -> dict[str, tuple[int, float]]:
        if self._entries is None:
            try:
                raw = json.loads(self.path.read_text())
                self._entries = {k: (int(v[0]), float(v[1])) for k, v in raw.items()}
            except (OSError, ValueError, TypeError, IndexError):
                self._entries = {}
        return self._entries

    def note(self, object_type: str, record_id: str, modified: Any) -> None:
        stamp = ms(modified)
        if stamp is not None:
            self._load()[f"{object_type}/{record_id}"] = (stamp, time.time())
            self._dirty = True

    def any(self) -> bool:
        """Is any write-back noted? (None noted: no record can be our own echo.)"""
        return bool(self._load())

    def is_own_write(self, object_type: str, record_id: str, modified: Any) -> bool:
        entries = self._load()
        if not entries:
            return False
        entry = entries.get(f"{object_type}/{record_id}")
        if entry is None or modified is None:
            return False
        if ms(modified) == entry[0]:
            return True
        del entries[f"{object_type}/{record_id}"]  # changed by someone else since: pull it
        self._dirty = True
        return False

    def save(self) -> None:
        if not self._dirty or self._entries is None:
            return
        cutoff = time.time() - _LEDGER_TTL_S
        keep = {k: v for k, v in self._entries.items() if v[1] >= cutoff}
        if self.path.parent.exists():
            tmp = self.path.with_suffix(".tmp")
            tmp.write_text(json.dumps(keep))
            os.replace(tmp, self.path)
        self._dirty = False


def _by_record(writes: Sequence[FieldWrite]) -> dict[str, list[FieldWrite]]:
    grouped: dict[str, list[FieldWrite]] = {}
    for w in writes:
        grouped.setdefault(w.record_id, []).append(w)
    return grouped


def push(conn: HubSpotConnector, writes: Sequence[FieldWrite]) -> list[WriteResult]:
    results: list[WriteResult] = []
    by_object: dict[str, list[FieldWrite]] = {}
    for w in writes:
        by_object.setdefault(w.object, []).append(w)
    for obj, obj_writes in by_object.items():
        per_record = _by_record(obj_writes)
        ids = list(per_record)
        send = (
            _scorecard_sender(conn, obj, per_record) if obj.startswith("2-") else _update_sender(conn, obj, per_record)
        )
        for start in range(0, len(ids), BATCH):
            results += _send(conn, obj, ids[start : start + BATCH], per_record, send)
    conn.echo.save()
    return results


def _send(
    conn: HubSpotConnector,
    obj: str,
    ids: list[str],
    per_record: dict[str, list[FieldWrite]],
    send: Callable[[list[str]], Any],
) -> list[WriteResult]:
    try:
        answer = send(ids)
    except ApiError as exc:
        if exc.status == 400 and len(ids) > 1:  # whole batch rejected: isolate the bad input (§3.4)
            half = len(ids) // 2
            return _send(conn, obj, ids[:half], per_record, send) + _send(conn, obj, ids[half:], per_record, send)
        gone = exc.status == 404
        return [WriteResult(w, False, error=str(exc), gone=gone) for i in ids for w in per_record[i]]
    missing: set[str] = set()
    failed: dict[str, str] = {}
    for err in getattr(answer, "errors", None) or []:  # a 207 comes back as an object (§2.4)
        err_ids = [str(i) for i in ((err.context or {}).get("ids") or [])]
        if err.category == "OBJECT_NOT_FOUND":
            missing.update(err_ids)
        else:
            failed.update({i: f"{err.category}: {err.message}" for i in err_ids})
    modified = "lastmodifieddate" if obj == "contacts" else "hs_lastmodifieddate"
    for record in getattr(answer, "results", None) or []:
        conn.echo.note(obj, str(record.id), (record.properties or {}).get(modified))
    out = []
    for rid in ids:
        for w in per_record[rid]:
            if rid in missing:
                out.append(WriteResult(w, False, error=f"{obj} {rid} no longer exists in HubSpot", gone=True))
            elif rid in failed:
                out.append(WriteResult(w, False, error=failed[rid]))
            else:
                out.append(WriteResult(w, True))
    return out


def _update_sender(
    conn: HubSpotConnector, obj: str, per_record: dict[str, list[FieldWrite]]
) -> Callable[[list[str]], Any]:
    def send(ids: list[str]) -> Any:
        body = BatchInputSimplePublicObjectBatchInput(
            inputs=[
                SimplePublicObjectBatchInput(id=i, properties={w.field: value_text(w.value) for w in per_record[i]})
                for i in ids
            ]
        )
        return conn.client.model_with_headers(
            f"batch update {obj}", lambda a, kw: a.batch.update_with_http_info(obj, body, **kw)
        )

    return send


def _scorecard_sender(
    conn: HubSpotConnector, obj: str, per_record: dict[str, list[FieldWrite]]
) -> Callable[[list[str]], Any]:
    def send(ids: list[str]) -> Any:
        inputs = []
        for key in ids:
            owner, _, period = key.partition(":")
            owner = next((w.owner_id for w in per_record[key] if w.owner_id), None) or owner
            props = {w.field: value_text(w.value) for w in per_record[key]}
            props.update({SCORECARD_PERIOD: period, "hubspot_owner_id": owner})
            inputs.append(SimplePublicObjectBatchInputUpsert(id_property=SCORECARD_KEY, id=key, properties=props))
        body = BatchInputSimplePublicObjectBatchInputUpsert(inputs=inputs)
        return conn.client.model_with_headers(
            f"upsert scorecards {obj}", lambda a, kw: a.batch.upsert_with_http_info(obj, body, **kw)
        )

    return send
