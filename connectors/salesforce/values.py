"""Reading values out of Salesforce records: timestamps, relationship fields, value maps and defaults.

The defaults apply when a `mapping` key is unset (docs/salesforce.md lists them).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date as _date
from datetime import datetime as _datetime
from typing import Any

import orjson

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


def encode_raw(record: dict[str, Any]) -> str:
    """The record as compact JSON text for `raw`: orjson, about ten times faster than json's encoder.

    Same text as `json.dumps(record, separators=(",", ":"), ensure_ascii=False)` for what a
    page parses into; anything else (a Bulk value json cannot hold) goes through str().
    """
    return orjson.dumps(record, default=str).decode()


@dataclass
class Context:
    mapping: Mapping
    synced_at: str
    # answers worked out once per connector, not per record (see mapping._classified)
    memo: dict[Any, Any] = field(default_factory=dict)


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


_MEMO_LIMIT = 4096  # distinct raw values remembered per map: picklists have a few dozen
_MEMO: dict[int, tuple[ValueMap, dict[str, str | None]]] = {}
_MISSING = object()


def lookup(vmap: ValueMap, raw: Any) -> str | None:
    """`ValueMap.lookup`, remembering each raw value's answer (it runs several times per record).

    A map's values are picklist values, so a page asks the same few questions
    thousands of times; free-text fields stop being remembered at `_MEMO_LIMIT`.
    """
    if type(raw) is not str:  # None, numbers, booleans: True == 1 would share a memo entry
        return vmap.lookup(raw)
    memo = _MEMO.get(id(vmap))
    if memo is None or memo[0] is not vmap:  # a new map (ids of dead objects are reused)
        memo = (vmap, {})
        _MEMO[id(vmap)] = memo
    answers = memo[1]
    found = answers.get(raw, _MISSING)
    if found is not _MISSING:
        return found  # type: ignore[return-value]
    found = vmap.lookup(raw)
    if len(answers) < _MEMO_LIMIT:
        answers[raw] = found
    return found


def mapped(vmap: ValueMap | None, record: dict[str, Any]) -> str | None:
    if vmap is None:
        return None
    name = vmap.field
    raw = record.get(name) if "." not in name else value(record, name)
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
    flag = record.get("IsDeleted")
    if flag is False or flag is None:  # REST's JSON booleans: nearly every record
        return False
    return bool(as_bool(flag))


def record_tail(record: dict[str, Any], ctx: Context) -> dict[str, Any]:
    # queryAll returns deleted rows whole: they are stored flagged, with their data (rows are never removed)
    return {
        "is_deleted": 1 if is_deleted_record(record) else 0,
        "raw": encode_raw(record),
        "synced_at": ctx.synced_at,
    }


def stage_event(contact: str | None, stage: str, at: Any, source: str) -> list[dict[str, Any]]:
    stamp = normalize_ts(at)
    if not contact or not stamp:
        return []
    return [{"contact_id": contact, "stage": stage, "entered_at": stamp, "source": source}]
