"""HubSpot records (parsed JSON, as the wire sends them) → canonical rows.

Every `map_*` function takes one record and returns rows per canonical table;
a record that cannot be mapped raises `SkippableRecord` and is quarantined by
the connector. Defaults for unset `mapping:` keys are documented in
docs/hubspot.md and live here as data.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from kpisync.config import Mapping, ValueMap
from kpisync.errors import SkippableRecord
from kpisync.timestamps import BadTimestamp, normalize_ts

Rows = dict[str, list[dict[str, Any]]]

DEFAULT_LIFECYCLE = {
    "subscriber": "subscriber",
    "lead": "lead",
    "marketingqualifiedlead": "mql",
    "salesqualifiedlead": "sql",
    "opportunity": "opportunity",
    "customer": "customer",
    "evangelist": "evangelist",
    "other": "other",
}
DEFAULT_CHANNEL = ValueMap(
    field="hs_analytics_source",
    values={
        "ORGANIC_SEARCH": "inbound",
        "DIRECT_TRAFFIC": "inbound",
        "SOCIAL_MEDIA": "inbound",
        "EMAIL_MARKETING": "inbound",
        "REFERRALS": "referral",
        "PAID_SEARCH": "paid",
        "PAID_SOCIAL": "paid",
        "OFFLINE": "outbound",
        "OTHER_CAMPAIGNS": "other",
        "AI_REFERRALS": "referral",
    },
)
DEFAULT_DEAL_TYPE = ValueMap(
    field="dealtype",
    values={
        "newbusiness": "new_business",
        "existingbusiness": "upsell",
        "upsell": "upsell",
        "crosssell": "cross_sell",
        "renewal": "renewal",
        "other": "other",
    },
)
# tried after the configured rules (first match wins): default call outcomes (§8.4), meeting outcomes, task status
DEFAULT_OUTCOMES = (
    ValueMap(
        field="hs_call_disposition",
        values={
            "f240bbac-87c9-4f6e-bf70-924b57d47db7": "connected",
            "73a0d17f-1163-4015-bdd5-ec830791da20": "no_answer",
            "b2cf5968-551e-4856-9783-52b3da59a7d0": "no_answer",
            "a4c4c377-d246-4b32-a13b-75a56a4cd0ff": "connected",
            "9d9162e7-6cf3-4944-bf63-4dff82258764": "no_answer",
            "17b47fee-58de-441e-a44c-c6300d46f273": "no_answer",
        },
    ),
    ValueMap(
        field="hs_meeting_outcome",
        values={
            "SCHEDULED": "booked",
            "RESCHEDULED": "booked",
            "COMPLETED": "completed",
            "NO_SHOW": "no_show",
            "CANCELED": "canceled",
        },
    ),
    ValueMap(field="hs_task_status", values={"COMPLETED": "completed"}),
)
DEFAULT_ROLE = ValueMap(
    field="team",
    match="contains",
    values={
        "sdr": "sdr",
        "bdr": "bdr",
        "account exec": "ae",
        "ae ": "ae",
        "account manag": "am",
        "am ": "am",
        "manager": "manager",
    },
)
ENGAGEMENT_TYPE = {"calls": "call", "emails": "email", "meetings": "meeting", "tasks": "task", "notes": "note"}
EMAIL_DIRECTION = {"EMAIL": "outbound", "INCOMING_EMAIL": "inbound"}
CALL_DIRECTION = {"OUTBOUND": "outbound", "INBOUND": "inbound"}
SUBJECT = {
    "calls": "hs_call_title",
    "emails": "hs_email_subject",
    "meetings": "hs_meeting_title",
    "tasks": "hs_task_subject",
    "notes": "hs_note_body",
}


def ts(value: Any) -> str | None:
    """HubSpot datetimes (`2026-01-05T10:00:00.000Z`, epoch ms) → canonical text; the common shape by slicing."""
    if value is None or value == "":
        return None
    if isinstance(value, str) and len(value) == 24 and value[19] == "." and value[23] == "Z":
        return value[:19] + "Z"
    return normalize_ts(value)


def ms(value: Any) -> int | None:
    """A modified-date property → epoch ms (for cursors)."""
    if value is None:
        return None
    from kpisync.timestamps import parse_ts

    text = str(value)
    return int(text) if text.isdigit() else round(parse_ts(text).timestamp() * 1000)


def _float(value: Any) -> float | None:
    return None if value in (None, "") else float(value)


class Lookup:
    """A ValueMap with its exact-match table precomputed: lookups run once per record."""

    def __init__(self, vmap: ValueMap) -> None:
        self.field = vmap.field
        self._vmap = vmap
        self._exact = {k.strip().lower(): v for k, v in vmap.values.items()} if vmap.match == "exact" else None
        self._default = vmap.default

    def lookup(self, raw: Any) -> str | None:
        if raw is None or raw == "":
            return self._default
        found = self._exact.get(str(raw).strip().lower()) if self._exact is not None else self.match(raw)
        return self._default if found is None else found

    def match(self, raw: Any) -> str | None:
        """The mapped value, or None when nothing matches (the default not applied)."""
        if raw is None or raw == "":
            return None
        if self._exact is None:
            return self._vmap.model_copy(update={"default": None}).lookup(raw)
        return self._exact.get(str(raw).strip().lower())


@dataclass
class Stage:
    label: str
    is_closed: bool | None
    is_won: bool | None


@dataclass
class Context:
    """What mapping needs beyond the record: the config mapping and the portal's pipelines."""

    mapping: Mapping
    deal_stages: dict[str, Stage] = field(default_factory=dict)  # stage id → label/flags
    deal_pipelines: dict[str, str] = field(default_factory=dict)  # pipeline id → label
    ticket_stages: dict[str, Stage] = field(default_factory=dict)
    lifecycle_stage_ids: list[str] = field(default_factory=lambda: list(DEFAULT_LIFECYCLE))
    synced_at: str = ""
    _names: dict[tuple[Any, ...], list[tuple[str, str, str]]] = field(default_factory=dict, repr=False)

    @cached_property
    def lifecycle(self) -> dict[str, str]:
        return {**DEFAULT_LIFECYCLE, **self.mapping.lifecycle_stages}

    @cached_property
    def channel(self) -> Lookup:
        return Lookup(self.mapping.channel or DEFAULT_CHANNEL)

    @cached_property
    def outcome_rules(self) -> list[Lookup]:
        return [Lookup(v) for v in (*self.mapping.activity_outcome, *DEFAULT_OUTCOMES)]

    @cached_property
    def maps(self) -> dict[str, Lookup | None]:
        m = self.mapping
        return {
            "region": Lookup(m.region) if m.region else None,
            "deal_type": Lookup(m.deal_type or DEFAULT_DEAL_TYPE),
            "activity_type": Lookup(m.activity_type) if m.activity_type else None,
            "activity_direction": Lookup(m.activity_direction) if m.activity_direction else None,
            "role": Lookup(m.role or DEFAULT_ROLE),
            "user_region": Lookup(m.user_region) if m.user_region else None,
        }

    def lifecycle_properties(self) -> list[tuple[str, str, str]]:
        """(canonical stage, hs_v2_date_entered_<id>, hs_date_entered_<id>) per mapped lifecycle stage."""
        key = ("lifecycle", tuple(self.lifecycle_stage_ids))
        if key not in self._names:
            lifecycle = self.lifecycle
            self._names[key] = [
                (lifecycle[s], f"hs_v2_date_entered_{s}", f"hs_date_entered_{s}")
                for s in self.lifecycle_stage_ids
                if lifecycle.get(s)
            ]
        return self._names[key]

    def deal_stage_properties(self) -> list[tuple[str, str, str]]:
        """(stage label, hs_v2_date_entered_<id>, hs_date_entered_<id>) per deal stage."""
        key = ("deal", id(self.deal_stages), len(self.deal_stages))  # stages are read once per connector
        if key not in self._names:
            self._names[key] = [
                (info.label, f"hs_v2_date_entered_{s}", f"hs_date_entered_{s}") for s, info in self.deal_stages.items()
            ]
        return self._names[key]

    def mapped_fields(self, mapper: str | None = None) -> set[str]:
        """Properties the `mapping:` reads — for one mapper's object, or for all (doctor)."""
        m = self.mapping
        per_mapper: dict[str, list[str | None]] = {
            "company": [m.region and m.region.field, m.churn_date_field],
            "contact": [self.channel.field, m.region and m.region.field, m.nps_field],
            "deal": [
                self.channel.field,
                m.region and m.region.field,
                (m.deal_type or DEFAULT_DEAL_TYPE).field,
                m.competitor_price_field,
            ],
            "engagement": [
                m.activity_type and m.activity_type.field,
                m.activity_direction and m.activity_direction.field,
                *(rule.field for rule in m.activity_outcome),
            ],
        }
        chosen = per_mapper.values() if mapper is None else [per_mapper.get(mapper, [])]
        return {f for fields in chosen for f in fields if f}


def first(record: dict[str, Any], to_type: str) -> str | None:
    """The lowest associated id of a type: deterministic whichever endpoint (list inline, v4) supplied the links."""
    links = record.get("associations")
    if not links:
        return None
    results = (links.get(to_type) or {}).get("results")
    if not results:
        return None
    best = str(results[0]["id"])
    if len(results) == 1:
        return best
    for link in results:  # a pair comes twice (primary and unlabeled, §3.1): usually one id
        rid = str(link["id"])
        if rid != best and (len(rid), rid) < (len(best), best):  # numeric order of digit strings
            best = rid
    return best


def _region(ctx: Context, props: dict[str, Any]) -> str | None:
    vmap = ctx.maps["region"]
    return vmap.lookup(props.get(vmap.field)) if vmap else None


_RAW = json.JSONEncoder(
    separators=(",", ":"), check_circular=False
).encode  # built once: json.dumps(..., separators) is not


def merged_ids(record: dict[str, Any]) -> list[str]:
    """Ids merged into this record (§5.6): contacts `id:ms;…`, others `id;id`."""
    props = record.get("properties")
    if not props:
        return []
    raw = props.get("hs_calculated_merged_vids") or props.get("hs_merged_object_ids")
    if not raw:
        return []
    ids = [part.split(":")[0].strip() for part in str(raw).split(";") if part.strip()]
    return [i for i in ids if i and i != str(record.get("id"))]


def map_company(record: dict[str, Any], ctx: Context, object_type: str) -> Rows:
    p = record["properties"]
    churn = ctx.mapping.churn_date_field
    row = {
        "id": str(record["id"]),
        "name": p.get("name"),
        "owner_id": p.get("hubspot_owner_id"),
        "type": p.get("type"),
        "industry": p.get("industry"),
        "country": p.get("country"),
        "state": p.get("state"),
        "city": p.get("city"),
        "region": _region(ctx, p),
        "created_at": ts(p.get("createdate") or record.get("createdAt")),
        "churned_at": ts(p.get(churn)) if churn else None,
        "annual_revenue": _float(p.get("annualrevenue")),
        "is_deleted": 0,
        "raw": None,  # filled by map_record
        "synced_at": ctx.synced_at,
    }
    return {"accounts": [row]}


def map_contact(record: dict[str, Any], ctx: Context, object_type: str) -> Rows:
    p = record["properties"]
    rid = str(record["id"])
    lifecycle = ctx.lifecycle
    nps = ctx.mapping.nps_field
    name = " ".join(x for x in (p.get("firstname"), p.get("lastname")) if x) or None
    row = {
        "id": rid,
        "kind": "contact",
        "source_object": "contacts",
        "account_id": first(record, "companies") or p.get("associatedcompanyid"),
        "owner_id": p.get("hubspot_owner_id"),
        "email": p.get("email"),
        "name": name,
        "lifecycle_stage": lifecycle.get(p.get("lifecyclestage") or ""),
        "lead_status": p.get("hs_lead_status"),
        "lead_source": p.get(ctx.channel.field),
        "channel": ctx.channel.lookup(p.get(ctx.channel.field)),
        "country": p.get("country"),
        "state": p.get("state"),
        "city": p.get("city"),
        "region": _region(ctx, p),
        "created_at": ts(p.get("createdate") or record.get("createdAt")),
        "converted_at": None,
        "converted_contact_id": None,
        "nps_score": int(float(p[nps])) if nps and p.get(nps) not in (None, "") else None,
        "is_deleted": 0,
        "raw": None,  # filled by map_record
        "synced_at": ctx.synced_at,
    }
    events = []
    for stage, v2, v1 in ctx.lifecycle_properties():
        entered = p.get(v2) or p.get(v1)
        if entered:
            events.append({"contact_id": rid, "stage": stage, "entered_at": ts(entered), "source": "hs_date_entered"})
    return {"contacts": [row], "lifecycle_events": events}


def map_deal(record: dict[str, Any], ctx: Context, object_type: str) -> Rows:
    p = record["properties"]
    rid = str(record["id"])
    stage = ctx.deal_stages.get(p.get("dealstage") or "")
    is_closed = stage.is_closed if stage and stage.is_closed is not None else p.get("hs_is_closed") == "true"
    is_won = stage.is_won if stage and stage.is_won is not None else p.get("hs_is_closed_won") == "true"
    deal_type = ctx.maps["deal_type"]
    assert deal_type is not None
    price = ctx.mapping.competitor_price_field
    row = {
        "id": rid,
        "name": p.get("dealname"),
        "account_id": first(record, "companies"),
        "contact_id": first(record, "contacts"),
        "owner_id": p.get("hubspot_owner_id"),
        "created_by_id": None,
        "amount": _float(p.get("amount_in_home_currency"))
        if p.get("amount_in_home_currency") not in (None, "")
        else _float(p.get("amount")),
        "stage": stage.label if stage else p.get("dealstage"),
        "pipeline": ctx.deal_pipelines.get(p.get("pipeline") or "", p.get("pipeline")),
        "is_closed": int(bool(is_closed)),
        "is_won": int(bool(is_won)),
        "created_at": ts(p.get("createdate") or record.get("createdAt")),
        "closed_at": ts(p.get("closedate")) if is_closed else None,
        "deal_type": deal_type.lookup(p.get(deal_type.field)),
        "lead_source": p.get(ctx.channel.field),
        "channel": ctx.channel.lookup(p.get(ctx.channel.field)),
        "competitor_price": _float(p.get(price)) if price else None,
        "region": _region(ctx, p),
        "is_deleted": 0,
        "raw": None,  # filled by map_record
        "synced_at": ctx.synced_at,
    }
    history = []
    for label, v2, v1 in ctx.deal_stage_properties():
        entered = p.get(v2) or p.get(v1)
        if entered:
            history.append({"opportunity_id": rid, "stage": label, "entered_at": ts(entered), "amount": None})
    return {"opportunities": [row], "opportunity_stage_history": history}


def _outcome(ctx: Context, p: dict[str, Any]) -> str | None:
    for rule in ctx.outcome_rules:
        value = p.get(rule.field)
        if value is not None and value != "":
            found = rule.lookup(value)
            if found is not None:
                return found
    return None


def map_engagement(record: dict[str, Any], ctx: Context, object_type: str) -> Rows:
    p = record["properties"]
    kind = ENGAGEMENT_TYPE[object_type]
    maps = ctx.maps
    type_map, direction_map = maps["activity_type"], maps["activity_direction"]
    if type_map is not None and p.get(type_map.field) not in (None, ""):
        kind = type_map.lookup(p.get(type_map.field)) or kind
    if object_type == "calls":
        direction = CALL_DIRECTION.get(p.get("hs_call_direction") or "")
    elif object_type == "emails":
        direction = EMAIL_DIRECTION.get(p.get("hs_email_direction") or "")
    else:
        direction = "outbound" if object_type == "meetings" else None
    if direction_map is not None and p.get(direction_map.field) not in (None, ""):
        direction = direction_map.lookup(p.get(direction_map.field)) or direction
    occurred = p.get("hs_timestamp")
    duration = None
    if object_type == "calls" and p.get("hs_call_duration") not in (None, ""):
        duration = round(float(p["hs_call_duration"]) / 1000)  # milliseconds on the wire (§0)
    elif object_type == "meetings":
        occurred = p.get("hs_meeting_start_time") or occurred
        start, end = ms(p.get("hs_meeting_start_time")), ms(p.get("hs_meeting_end_time"))
        duration = round((end - start) / 1000) if start is not None and end is not None else None
    elif object_type == "tasks":
        occurred = p.get("hs_task_completion_date") or occurred
    subject = p.get(SUBJECT[object_type])
    row = {
        "id": str(record["id"]),
        "type": kind,
        "direction": direction,
        "owner_id": p.get("hubspot_owner_id"),
        "contact_id": first(record, "contacts"),
        "account_id": first(record, "companies"),
        "opportunity_id": first(record, "deals"),
        "occurred_at": ts(occurred),
        "created_at": ts(p.get("hs_createdate") or record.get("createdAt")),
        "duration_s": duration,
        "outcome": _outcome(ctx, p),
        "subject": subject[:255] if subject else None,
        "is_deleted": 0,
        "raw": None,  # filled by map_record
        "synced_at": ctx.synced_at,
    }
    return {"activities": [row]}


def map_ticket(record: dict[str, Any], ctx: Context, object_type: str) -> Rows:
    p = record["properties"]
    stage = ctx.ticket_stages.get(p.get("hs_pipeline_stage") or "")
    is_closed = stage.is_closed if stage and stage.is_closed is not None else bool(p.get("closed_date"))
    row = {
        "id": str(record["id"]),
        "account_id": first(record, "companies"),
        "contact_id": first(record, "contacts"),
        "owner_id": p.get("hubspot_owner_id"),
        "status": stage.label if stage else p.get("hs_pipeline_stage"),
        "priority": p.get("hs_ticket_priority"),
        "origin": p.get("source_type"),
        "created_at": ts(p.get("createdate") or record.get("createdAt")),
        "first_response_at": ts(p.get("first_agent_reply_date")),
        "closed_at": ts(p.get("closed_date")),
        "is_closed": int(is_closed),
        "is_deleted": 0,
        "raw": None,  # filled by map_record
        "synced_at": ctx.synced_at,
    }
    return {"cases": [row]}


def _owner_value(lookup: Lookup | None, fields: dict[str, Any], team_names: list[str]) -> str | None:
    """`field: team` tries every team the owner is on, primary first (a rep is often on a region team
    and a function team); other fields are owner keys (`email`, `firstName`, …)."""
    if lookup is None:
        return None
    candidates = team_names if lookup.field == "team" else [fields.get(lookup.field)]
    for raw in candidates:
        found = lookup.match(raw)
        if found is not None:
            return found
    return lookup.lookup(None)


def map_owner(owner: dict[str, Any], ctx: Context, object_type: str) -> Rows:
    teams = sorted(owner.get("teams") or [], key=lambda t: not t.get("primary"))
    team_names = [t.get("name") for t in teams if t.get("name")]
    primary = next((t.get("name") for t in teams if t.get("primary")), None)
    fields = {**owner, "team": primary}
    team = fields.get(ctx.mapping.team_field) if ctx.mapping.team_field else fields["team"]
    name = " ".join(x for x in (owner.get("firstName"), owner.get("lastName")) if x) or owner.get("email")
    row = {
        "id": str(owner["id"]),
        "name": name,
        "email": owner.get("email"),
        "role": _owner_value(ctx.maps["role"], fields, team_names),
        "team": team,
        "region": _owner_value(ctx.maps["user_region"], fields, team_names),
        "manager_id": None,
        "is_active": 0 if owner.get("archived") else 1,
        "is_deleted": 0,
        "raw": None,  # filled by map_record
        "synced_at": ctx.synced_at,
    }
    return {"users": [row]}


MAPPERS: dict[str, Callable[[dict[str, Any], Context, str], Rows]] = {
    "company": map_company,
    "contact": map_contact,
    "deal": map_deal,
    "engagement": map_engagement,
    "ticket": map_ticket,
    "owner": map_owner,
}


def map_record(mapper: str, record: dict[str, Any], ctx: Context, object_type: str, raw: str | None = None) -> Rows:
    """One record's rows; the main row (first table) keeps `raw`, the record's JSON as it came over the wire
    (encoded again only when there is none, e.g. after associations were attached to a search result)."""
    try:
        rows = MAPPERS[mapper](record, ctx, object_type)
    except (KeyError, TypeError, ValueError, BadTimestamp) as exc:
        raise SkippableRecord(f"{object_type} {record.get('id')}: {type(exc).__name__}: {exc}") from None
    for main in rows.values():  # the first table's row
        main[0]["raw"] = raw if raw is not None else _RAW(record)
        break
    return rows
