"""Write-back: KPI values into CRM fields, only the ones that changed.

    changes = plan(store, connector, targets, timezone)     # nothing sent
    result = apply(store, connector, changes)                # push, record, retry later

Each target (config.writeback_targets()) says which KPI, grain and period goes
into which field. A value is compared, rounded to the field's precision, with
`writeback_state` (the last value the CRM accepted); only differences are sent,
so a cycle with no change costs zero API calls. A value that became null (or
whose KPI row disappeared) clears the field. Per-record failures go to
`writeback_errors` and are planned again next run; a record the CRM says is
gone is marked so in `writeback_state` and dropped from write-back.
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from kpisync.config import WritebackTarget
from kpisync.connectors.base import Connector, FieldWrite
from kpisync.kpi import registry
from kpisync.store import Store
from kpisync.timestamps import parse_ts, utc_now

log = logging.getLogger("kpisync.writeback")

# decimals kept per KPI unit: what a CRM field of that kind can show (a ratio of
# 0.3125 is a 31.25 % percent field), so float noise never causes a write
DECIMALS = {
    "ratio": 4,
    "multiple": 2,
    "currency": 2,
    "count": 2,
    "minutes": 1,
    "hours": 1,
    "days": 1,
    "score": 1,
    "per_day": 2,
}

# values sent between two records of their outcome (a multiple of both CRMs' batch sizes)
CHUNK = 1000

_TABLE_OF_GRAIN = {"contact": "contacts", "account": "accounts", "opportunity": "opportunities", "user": "users"}


@dataclass(frozen=True)
class ValueChange:
    object: str
    record_id: str
    field: str
    old: float | None
    new: float | None
    kpi: str
    owner_id: str | None = None
    had_state: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if k in ("object", "record_id", "field", "old", "new")}


@dataclass
class WritebackResult:
    changes: list[ValueChange]
    written: int = 0
    failed: int = 0
    gone: int = 0
    calls: int = 0


def period_label(period: str, as_of: datetime, timezone: str) -> str:
    """current_month → '2026-11' (in the org's time zone); rolling/all stay as they are."""
    local = as_of.astimezone(ZoneInfo(timezone))
    if period == "current_month":
        return f"{local.year:04d}-{local.month:02d}"
    if period == "current_quarter":
        return f"{local.year:04d}-Q{(local.month - 1) // 3 + 1}"
    if period == "current_year":
        return f"{local.year:04d}"
    return period


def written_value(kpi: str, value: float | None, unit: str) -> float | None:
    """What the CRM field gets for a KPI value: rounded to what the field shows, a
    record's age (`KpiDef.age`) to the whole days elapsed."""
    if value is None:
        return None
    defn = registry.get(kpi)
    if defn is not None and defn.age:
        return float(math.floor(value))
    return round(float(value), DECIMALS.get(unit, 4))


def _as_of(store: Store) -> datetime | None:
    row = store.conn.execute("SELECT max(computed_at) FROM kpi_values").fetchone()
    return parse_ts(row[0]) if row and row[0] else None


def plan(
    store: Store, connector: Connector, targets: Sequence[WritebackTarget], timezone: str = "UTC"
) -> list[ValueChange]:
    """The field values that differ from what the CRM last accepted."""
    as_of = _as_of(store)
    if as_of is None:
        return []
    crm = connector.crm
    state: dict[tuple[str, str, str], tuple[str | None, int]] = {
        (o, r, f): (v, g)
        for o, r, f, v, g in store.conn.execute(
            "SELECT object, record_id, field, value, coalesce(gone, 0) FROM writeback_state WHERE crm = ?", (crm,)
        )
    }
    gone_records = {(o, r) for (o, r, _f), (_v, g) in state.items() if g}
    changes: list[ValueChange] = []
    for target in targets:
        label = period_label(target.period, as_of, timezone)
        table = _TABLE_OF_GRAIN[target.grain]
        extra = "c.source_object" if target.grain == "contact" else "NULL"
        owner = "c.id" if target.grain == "user" else "c.owner_id"
        live = "coalesce(c.is_active, 1) = 1" if target.grain == "user" else "coalesce(c.is_deleted, 0) = 0"
        # every live record of the grain: those with a value, and those whose field must be cleared
        rows = store.conn.execute(
            f"SELECT c.id, {extra}, {owner}, v.value, v.unit FROM {table} c "
            "LEFT JOIN kpi_values v ON v.kpi = ? AND v.grain = ? AND v.period = ? AND v.key = c.id "
            f"WHERE {live}",
            (target.kpi, target.grain, label),
        )
        for key, source_object, owner_id, value, unit in rows:
            located = connector.locate(target.grain, key, source_object, label)
            if located is None:
                continue
            obj, record_id = located
            if (obj, record_id) in gone_records:
                continue
            new = written_value(target.kpi, value, unit or "")
            previous = state.get((obj, record_id, target.field))
            if previous is None:
                if new is None:
                    continue  # never written and nothing to write: the field is empty
                changes.append(ValueChange(obj, record_id, target.field, None, new, target.kpi, owner_id))
                continue
            old = float(previous[0]) if previous[0] not in (None, "") else None
            if old != new:
                changes.append(ValueChange(obj, record_id, target.field, old, new, target.kpi, owner_id, True))
    return changes


def apply(
    store: Store, connector: Connector, changes: Sequence[ValueChange], stop: threading.Event | None = None
) -> WritebackResult:
    """Send the changes in chunks; each chunk's outcome is recorded before the next is sent,
    so a stop (or a crash) between chunks loses nothing and resends nothing already accepted."""
    result = WritebackResult(list(changes))
    calls_before = connector.usage().calls
    for start in range(0, len(changes), CHUNK):
        if stop is not None and stop.is_set():
            log.info("write-back stopped after %d of %d values", start, len(changes))
            break
        _apply_chunk(store, connector, changes[start : start + CHUNK], result)
    result.calls = connector.usage().calls - calls_before
    return result


def _apply_chunk(store: Store, connector: Connector, changes: Sequence[ValueChange], result: WritebackResult) -> None:
    writes = [FieldWrite(c.object, c.record_id, c.field, c.new, c.owner_id) for c in changes]
    outcomes = connector.push(writes)
    now = utc_now()
    accepted, errors = [], []
    for outcome in outcomes:
        w = outcome.write
        value = None if w.value is None else repr(w.value)
        if outcome.ok or outcome.gone:
            accepted.append(
                {
                    "crm": connector.crm,
                    "object": w.object,
                    "record_id": w.record_id,
                    "field": w.field,
                    "value": None if outcome.gone else value,
                    "written_at": now,
                    "gone": int(outcome.gone),
                }
            )
        if not outcome.ok:
            errors.append(
                {
                    "crm": connector.crm,
                    "object": w.object,
                    "record_id": w.record_id,
                    "field": w.field,
                    "value": value,
                    "error": outcome.error or "rejected",
                    "at": now,
                }
            )
    with store.transaction():
        store.upsert("writeback_state", accepted)
        store.insert("writeback_errors", errors)
    gone = sum(1 for a in accepted if a["gone"])
    result.gone += gone
    result.written += len(accepted) - gone
    result.failed += len(errors) - gone
    for e in errors[:20]:
        log.warning("write-back %s %s.%s refused: %s", e["object"], e["record_id"], e["field"], e["error"])
