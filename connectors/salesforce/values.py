"""Reading values out of Salesforce records: timestamps, relationship fields, value maps and defaults.

The defaults apply when a `mapping` key is unset (docs/salesforce.md lists them).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date as _date
from datetime import datetime as _datetime
from typing import Any

from kpisync.config import Mapping, ValueMap
from kpisync.timestamps import BadTimestamp
from kpisync.timestamps import normalize_ts as _normalize_ts

Rows = dict[str, list[dict[str, Any]]]

# Defaults when the YAML leaves a key unset (docs/salesforce.md lists them).
DEFAULT_ROLES: tuple[tuple[str, str], ...] = (
    ("business development", "bdr"),
    ("bdr", "bdr"),
    ("sales development", "sdr"),
    ("sdr", "sdr"),
    ("account executive", "ae"),
    ("ae", "ae"),
    ("account manager", "am"),
    ("customer success", "am"),
    ("manager", "manager"),
    ("director", "manager"),
    ("head", "manager"),
    ("vp", "manager"),
)
DEFAULT_DEAL_TYPES = {
    "new customer": "new_business",
    "new business": "new_business",
    "existing customer - upgrade": "upsell",
    "upsell": "upsell",
    "existing customer - cross-sell": "cross_sell",
    "cross-sell": "cross_sell",
    "existing customer - renewal": "renewal",
    "renewal": "renewal",
    "existing customer - replacement": "renewal",
    "existing customer - downgrade": "other",
}
DEFAULT_CALL_OUTCOMES: tuple[tuple[str, str], ...] = (
    ("no answer", "no_answer"),
    ("voicemail", "no_answer"),
    ("left message", "no_answer"),
    ("busy", "no_answer"),
    ("not interested", "negative"),
    ("interested", "positive"),
    ("meeting", "booked"),
    ("connected", "connected"),
)
DEFAULT_CHANNELS: tuple[tuple[str, str], ...] = (
    ("referral", "referral"),
    ("partner", "referral"),
    ("web", "inbound"),
    ("inbound", "inbound"),
    ("phone inquiry", "inbound"),
    ("organic", "inbound"),
    ("cold call", "outbound"),
    ("outbound", "outbound"),
    ("purchased list", "outbound"),
    ("trade show", "event"),
    ("event", "event"),
    ("webinar", "event"),
    ("seminar", "event"),
    ("advertisement", "paid"),
    ("paid", "paid"),
    ("adwords", "paid"),
)
TASK_TYPES = {"call": "call", "email": "email", "meeting": "meeting", "visit": "visit", "note": "note"}


def normalize_ts(raw: Any) -> str | None:
    """Salesforce's own formats take a fast path; anything else goes through kpisync.timestamps.

    `2025-03-28T15:40:09.000+0000` (REST, always UTC, §2.2), `…Z` (Bulk CSV, §3) and
    `2025-03-28` (date fields) are most values of every page.
    """
    if isinstance(raw, str):
        n = len(raw)
        # the fast paths still check the calendar: a stored 2026-02-30 would break every KPI run
        try:
            if n == 28 and raw[23:] == "+0000" and raw[10] == "T":
                _datetime.fromisoformat(raw[:19])
                return raw[:19] + "Z"
            if n == 24 and raw[23] == "Z" and raw[10] == "T":
                _datetime.fromisoformat(raw[:19])
                return raw[:19] + "Z"
            if n == 10 and raw[4] == "-" and raw[7] == "-" and raw[:4].isdigit():
                _date.fromisoformat(raw)
                return raw + "T00:00:00Z"
        except ValueError:
            raise BadTimestamp(f"not a timestamp: {raw!r}") from None
    return _normalize_ts(raw)


_ENCODE = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, check_circular=False).encode


@dataclass
class Context:
    mapping: Mapping
    synced_at: str


def value(record: dict[str, Any], name: str) -> Any:
    """A field or a `Relationship.Field` of a REST record (parents are nested objects or null, §2.1)."""
    if "." not in name:
        return record.get(name)
    current: Any = record
    for part in name.split("."):
        if not isinstance(current, dict):
            return None
        current = current.get(part)
    return current


_EXACT: dict[int, tuple[ValueMap, dict[str, str]]] = {}


def lookup(vmap: ValueMap, raw: Any) -> str | None:
    """`ValueMap.lookup`, with exact-match maps compiled once into a dict (it runs for every record)."""
    if vmap.match != "exact":
        return vmap.lookup(raw)
    cached = _EXACT.get(id(vmap))
    if cached is None or cached[0] is not vmap:
        cached = (vmap, {k.strip().lower(): v for k, v in reversed(vmap.values.items())})
        _EXACT[id(vmap)] = cached
    if raw is None or raw == "":
        return vmap.default
    return cached[1].get(str(raw).strip().lower(), vmap.default)


def mapped(vmap: ValueMap | None, record: dict[str, Any]) -> str | None:
    if vmap is None:
        return None
    raw = value(record, vmap.field)
    if not vmap.values:
        return vmap.default if raw in (None, "") else str(raw)
    return lookup(vmap, raw)


def contains_rule(rules: tuple[tuple[str, str], ...], raw: Any) -> str | None:
    if not raw:
        return None
    text = str(raw).lower()
    for probe, result in rules:
        if probe in text.split() if len(probe) <= 3 else probe in text:
            return result
    return None


def channel_of(raw_source: Any, m: Mapping) -> str | None:
    """The canonical channel of a lead source (the YAML's `channel` map, else the defaults)."""
    if m.channel is not None:
        return lookup(m.channel, raw_source) if m.channel.values else (str(raw_source) if raw_source else None)
    if not raw_source:
        return None
    return contains_rule(DEFAULT_CHANNELS, raw_source) or "other"


def as_bool(raw: Any) -> int | None:
    if raw is None or raw == "":
        return None
    if isinstance(raw, str):
        return 1 if raw.lower() == "true" else 0
    return 1 if raw else 0


def as_float(raw: Any) -> float | None:
    return None if raw is None or raw == "" else float(raw)


def is_deleted_record(record: dict[str, Any]) -> bool:
    return bool(as_bool(record.get("IsDeleted")))


def record_tail(record: dict[str, Any], ctx: Context) -> dict[str, Any]:
    # queryAll returns deleted rows whole: they are stored flagged, with their data (rows are never removed)
    return {
        "is_deleted": 1 if is_deleted_record(record) else 0,
        "raw": _ENCODE(record),
        "synced_at": ctx.synced_at,
    }


def stage_event(contact: str | None, stage: str, at: Any, source: str) -> list[dict[str, Any]]:
    stamp = normalize_ts(at)
    if not contact or not stamp:
        return []
    return [{"contact_id": contact, "stage": stage, "entered_at": stamp, "source": source}]
