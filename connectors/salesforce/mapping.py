"""Salesforce records → canonical rows (canonical-model.md), one function per object.

Values are normalised here once: timestamps to `YYYY-MM-DDTHH:MM:SSZ`, dates to
`YYYY-MM-DD`, booleans to 0/1. Unset mapping keys fall back to the defaults
documented in docs/salesforce.md (e.g. role from `UserRole.Name`, channel from
`LeadSource`, activity type from `TaskSubtype`/`Type`). A `ValueMap` without
`values` passes the CRM value through unchanged (regions, teams).

Lifecycle events (canonical-model.md, lifecycle_events): `lead` when a Lead is
created; `mql`/`sql` from LeadHistory Status changes into the configured
statuses (or the rules' date fields); `sql` (and `opportunity` with an
opportunity) when a Lead is converted; `opportunity` when an opportunity is
created for a contact; `customer` when it is won. The store keeps the earliest
time per stage.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from datetime import date, timedelta
from typing import Any

from kpisync.config import Mapping
from kpisync.connectors.salesforce.values import (
    DEFAULT_CALL_OUTCOMES,
    DEFAULT_DEAL_TYPES,
    DEFAULT_ROLES,
    TASK_TYPES,
    Context,
    Rows,
    as_bool,
    as_float,
    channel_of,
    contains_rule,
    is_deleted_record,
    lookup,
    mapped,
    normalize_ts,
    record_tail,
    stage_event,
    value,
)
from kpisync.timestamps import normalize_date

__all__ = ["MAPPERS", "Context"]


# ---------------------------------------------------------------- per object


def user(record: dict[str, Any], ctx: Context) -> Rows:
    m = ctx.mapping
    role = (
        lookup(m.role, value(record, m.role.field))
        if m.role
        else contains_rule(DEFAULT_ROLES, value(record, "UserRole.Name"))
    )
    team = value(record, m.team_field or "Department")
    region = mapped(m.user_region, record) if m.user_region else record.get("Division")
    row = {
        "id": record["Id"],
        "name": record.get("Name"),
        "email": record.get("Email"),
        "role": role or ("other" if m.role is None else None),
        "team": team,
        "region": region,
        "manager_id": record.get("ManagerId"),
        "is_active": as_bool(record.get("IsActive")),
        **record_tail(record, ctx),
    }
    return {"users": [row]}


def account(record: dict[str, Any], ctx: Context) -> Rows:
    m = ctx.mapping
    churn = value(record, m.churn_date_field) if m.churn_date_field else None
    row = {
        "id": record["Id"],
        "name": record.get("Name"),
        "owner_id": record.get("OwnerId"),
        "type": record.get("Type"),
        "industry": record.get("Industry"),
        "country": record.get("BillingCountry"),
        "state": record.get("BillingState"),
        "city": record.get("BillingCity"),
        "region": mapped(m.region, record),
        "created_at": normalize_ts(record.get("CreatedDate")),
        "churned_at": normalize_ts(churn),
        "annual_revenue": as_float(record.get("AnnualRevenue")),
        **record_tail(record, ctx),
    }
    return {"accounts": [row]}


_STATUSES: dict[int, tuple[Any, frozenset[str]]] = {}


def _statuses(rule: Any) -> frozenset[str]:
    """A stage rule's lead statuses, lower-cased once per rule instead of once per lead."""
    if not rule:
        return frozenset()
    cached = _STATUSES.get(id(rule))
    if cached is None or cached[0] is not rule:
        cached = (rule, frozenset(s.lower() for s in rule.lead_statuses))
        _STATUSES[id(rule)] = cached
    return cached[1]


def _nps(record: dict[str, Any], m: Mapping) -> int | None:
    raw = value(record, m.nps_field) if m.nps_field else None
    return None if raw in (None, "") else round(float(raw))


def lead(record: dict[str, Any], ctx: Context) -> Rows:
    m = ctx.mapping
    status = str(record.get("Status") or "").lower()
    converted = bool(as_bool(record.get("IsConverted")))
    stage = "lead"
    if status in _statuses(m.mql):
        stage = "mql"
    if status in _statuses(m.sql):
        stage = "sql"
    if converted:
        stage = "opportunity" if record.get("ConvertedOpportunityId") else "sql"
    row = {
        "id": record["Id"],
        "kind": "lead",
        "source_object": "Lead",
        "account_id": record.get("ConvertedAccountId"),
        "owner_id": record.get("OwnerId"),
        "email": record.get("Email"),
        "name": record.get("Name"),
        "lifecycle_stage": stage,
        "lead_status": record.get("Status"),
        "lead_source": record.get("LeadSource"),
        "channel": channel_of(value(record, m.channel.field if m.channel else "LeadSource"), m),
        "country": record.get("Country"),
        "state": record.get("State"),
        "city": record.get("City"),
        "region": mapped(m.region, record),
        "created_at": normalize_ts(record.get("CreatedDate")),
        "converted_at": normalize_ts(record.get("ConvertedDate")),
        "converted_contact_id": record.get("ConvertedContactId"),
        "nps_score": _nps(record, m),
        **record_tail(record, ctx),
    }
    if is_deleted_record(record):
        return {"contacts": [row]}
    events = stage_event(record["Id"], "lead", record.get("CreatedDate"), "lead_created")
    for stage_name, rule in (("mql", m.mql), ("sql", m.sql)):
        if rule and rule.date_field:
            events += stage_event(record["Id"], stage_name, value(record, rule.date_field), "date_field")
    if converted:
        events += stage_event(record["Id"], "sql", record.get("ConvertedDate"), "converted")
        if record.get("ConvertedOpportunityId"):
            events += stage_event(record["Id"], "opportunity", record.get("ConvertedDate"), "converted")
    return {"contacts": [row], "lifecycle_events": events}


def contact(record: dict[str, Any], ctx: Context) -> Rows:
    m = ctx.mapping
    row = {
        "id": record["Id"],
        "kind": "contact",
        "source_object": "Contact",
        "account_id": record.get("AccountId"),
        "owner_id": record.get("OwnerId"),
        "email": record.get("Email"),
        "name": record.get("Name"),
        "lifecycle_stage": None,
        "lead_status": None,
        "lead_source": record.get("LeadSource"),
        "channel": channel_of(value(record, m.channel.field if m.channel else "LeadSource"), m),
        "country": record.get("MailingCountry"),
        "state": record.get("MailingState"),
        "city": record.get("MailingCity"),
        "region": mapped(m.region, record),
        "created_at": normalize_ts(record.get("CreatedDate")),
        "converted_at": None,
        "converted_contact_id": None,
        "nps_score": _nps(record, m),
        **record_tail(record, ctx),
    }
    return {"contacts": [row]}


def _deal_events(contact_id: str | None, created: Any, won: Any, close: Any) -> list[dict[str, Any]]:
    events = stage_event(contact_id, "opportunity", created, "opportunity_created")
    if as_bool(won):
        events += stage_event(contact_id, "customer", close, "won")
    return events


def opportunity(record: dict[str, Any], ctx: Context) -> Rows:
    m = ctx.mapping
    closed = as_bool(record.get("IsClosed"))
    deal_type = (
        mapped(m.deal_type, record)
        if m.deal_type
        else DEFAULT_DEAL_TYPES.get(str(record.get("Type") or "").lower(), "other" if record.get("Type") else None)
    )
    row = {
        "id": record["Id"],
        "name": record.get("Name"),
        "account_id": record.get("AccountId"),
        "owner_id": record.get("OwnerId"),
        "created_by_id": record.get("CreatedById"),
        "amount": as_float(record.get("Amount")),
        "stage": record.get("StageName"),
        "pipeline": value(record, "RecordType.Name"),  # record types are how orgs separate sales processes
        "is_closed": closed,
        "is_won": as_bool(record.get("IsWon")),
        "created_at": normalize_ts(record.get("CreatedDate")),
        "closed_at": normalize_ts(record.get("CloseDate")) if closed else None,
        "deal_type": deal_type,
        "lead_source": record.get("LeadSource"),
        "channel": channel_of(value(record, m.channel.field if m.channel else "LeadSource"), m),
        "competitor_price": as_float(value(record, m.competitor_price_field)) if m.competitor_price_field else None,
        "region": mapped(m.region, record),
        **record_tail(record, ctx),
    }
    contact_id = record.get("ContactId")
    if contact_id:  # only when known: an OpportunityContactRole may have set it, never clear it
        row["contact_id"] = contact_id
    if is_deleted_record(record):
        return {"opportunities": [row]}
    events = _deal_events(contact_id, record.get("CreatedDate"), record.get("IsWon"), record.get("CloseDate"))
    return {"opportunities": [row], "lifecycle_events": events}


def contact_role(record: dict[str, Any], ctx: Context) -> Rows:
    if is_deleted_record(record) or not as_bool(record.get("IsPrimary")):
        return {}
    opp = record.get("Opportunity") or {}
    contact_id = record.get("ContactId")
    events = _deal_events(contact_id, opp.get("CreatedDate"), opp.get("IsWon"), opp.get("CloseDate"))
    return {
        "opportunities": [{"id": record["OpportunityId"], "contact_id": contact_id}],
        "lifecycle_events": events,
    }


def stage_history(record: dict[str, Any], ctx: Context) -> Rows:
    if is_deleted_record(record):
        return {}
    row = {
        "opportunity_id": record["OpportunityId"],
        "stage": record.get("StageName"),
        "entered_at": normalize_ts(record.get("CreatedDate")),
        "amount": as_float(record.get("Amount")),
    }
    return {"opportunity_stage_history": [row]}


def _activity_type(record: dict[str, Any], m: Mapping, obj: str) -> str:
    if m.activity_type and m.activity_type.field in record:
        found = lookup(m.activity_type, record.get(m.activity_type.field))
        if found:
            return found
    subtype = str(record.get("TaskSubtype") or "").lower()
    kind = str(record.get("Type") or "").lower()
    if obj == "Event":
        return "visit" if "visit" in kind else "meeting"
    if subtype == "call":
        return "call"
    if subtype in ("email", "listemail"):
        return "email"
    return TASK_TYPES.get(kind, "task")


def _direction(record: dict[str, Any], m: Mapping, kind: str) -> str | None:
    vmap = m.activity_direction
    if vmap and vmap.field in record:
        return mapped(vmap, record)
    if kind == "call":
        call_type = str(record.get("CallType") or "").lower()
        return call_type if call_type in ("inbound", "outbound") else None
    if str(record.get("TaskSubtype") or "").lower() in ("email", "listemail"):
        return "outbound"  # logged from Salesforce: the rep sent it
    return None


def _outcome(record: dict[str, Any], m: Mapping) -> str | None:
    if m.activity_outcome:
        for rule in m.activity_outcome:
            if rule.field in record:
                found = mapped(rule, record)
                if found:
                    return found
        return None
    found = contains_rule(DEFAULT_CALL_OUTCOMES, record.get("CallDisposition"))
    if found is None and str(record.get("Status") or "").lower() == "completed":
        found = "completed"
    return found


_NO_FIELD = object()  # a field the record lacks: "not in record" decides differently from None
_CLASS_MEMO_LIMIT = 4096  # picklist combinations remembered; past it, each record is worked out


def _class_fields(m: Mapping) -> tuple[str, ...]:
    """Every field that `_activity_type`, `_direction` and `_outcome` read."""
    names = ["TaskSubtype", "Type", "CallType", "CallDisposition", "Status"]
    for vmap in (m.activity_type, m.activity_direction, *(m.activity_outcome or ())):
        if vmap:
            names.append(vmap.field)
    return tuple(dict.fromkeys(names))


def _classified(record: dict[str, Any], ctx: Context, obj: str) -> tuple[str, str | None, str | None]:
    """An activity's (type, direction, outcome), worked out once per combination of the values they read.

    They depend only on a handful of picklists, so a page of 2,000 tasks asks
    a few dozen distinct questions; the answers are kept for the connector's life.
    """
    m, memo = ctx.mapping, ctx.memo
    fields = memo.get("activity fields")
    if fields is None:
        fields = memo["activity fields"] = _class_fields(m)
    key = (obj, *map(record.get, fields, itertools.repeat(_NO_FIELD)))
    try:
        found: tuple[str, str | None, str | None] | None = memo.get(key)
    except TypeError:  # a mapped field holding an object: not a picklist, work it out
        found, key = None, None
    if found is None:
        kind = _activity_type(record, m, obj)
        found = (kind, _direction(record, m, kind), _outcome(record, m))
        if key is not None and len(memo) < _CLASS_MEMO_LIMIT:
            memo[key] = found
    return found


def _activity(record: dict[str, Any], ctx: Context, obj: str) -> Rows:
    kind, direction, outcome = _classified(record, ctx, obj)
    what = record.get("WhatId") or ""
    if obj == "Task":
        occurred = record.get("CompletedDateTime") or record.get("ActivityDate") or record.get("CreatedDate")
        seconds = record.get("CallDurationInSeconds")
    else:
        occurred = record.get("StartDateTime") or record.get("ActivityDateTime")
        minutes = record.get("DurationInMinutes")
        seconds = None if minutes in (None, "") else int(float(minutes)) * 60
    row = {
        "id": record["Id"],
        "type": kind,
        "direction": direction,
        "owner_id": record.get("OwnerId"),
        "contact_id": record.get("WhoId"),
        "account_id": record.get("AccountId"),
        "opportunity_id": what if what.startswith("006") else None,  # key prefix 006 = Opportunity (§0)
        "occurred_at": normalize_ts(occurred),
        "created_at": normalize_ts(record.get("CreatedDate")),
        "duration_s": None if seconds in (None, "") else int(float(seconds)),
        "outcome": outcome,
        "subject": record.get("Subject"),
        **record_tail(record, ctx),
    }
    return {"activities": [row]}


def task(record: dict[str, Any], ctx: Context) -> Rows:
    return _activity(record, ctx, "Task")


def event(record: dict[str, Any], ctx: Context) -> Rows:
    if as_bool(record.get("IsChild")):
        return {}  # an invitee's copy of a group event: counting it would double the meeting (§7)
    return _activity(record, ctx, "Event")


def case(record: dict[str, Any], ctx: Context) -> Rows:
    row = {
        "id": record["Id"],
        "account_id": record.get("AccountId"),
        "contact_id": record.get("ContactId"),
        "owner_id": record.get("OwnerId"),
        "status": record.get("Status"),
        "priority": record.get("Priority"),
        "origin": record.get("Origin"),
        "created_at": normalize_ts(record.get("CreatedDate")),
        "first_response_at": None,
        "closed_at": normalize_ts(record.get("ClosedDate")),
        "is_closed": as_bool(record.get("IsClosed")),
        **record_tail(record, ctx),
    }
    return {"cases": [row]}


def campaign(record: dict[str, Any], ctx: Context) -> Rows:
    if is_deleted_record(record):
        return {}
    m = ctx.mapping
    end = normalize_date(record.get("EndDate"))
    channel = channel_of(record.get("Type"), m)  # campaigns carry their channel as a lead-source-like Type
    row = {
        "id": record["Id"],
        "campaign": record.get("Name"),
        "channel": channel,
        "period_start": normalize_date(record.get("StartDate")),
        # Campaign.EndDate is inclusive, spend.period_end exclusive (canonical-model.md)
        "period_end": (date.fromisoformat(end) + timedelta(days=1)).isoformat() if end else None,
        "amount": as_float(record.get("ActualCost")),
    }
    return {"spend": [row]}


def lead_history(record: dict[str, Any], ctx: Context) -> Rows:
    if is_deleted_record(record):
        return {}
    m = ctx.mapping
    lead_id, fld = record.get("LeadId"), record.get("Field")
    events: list[dict[str, Any]] = []
    if fld == "Status":
        new = str(record.get("NewValue") or "").lower()
        for stage_name, rule in (("mql", m.mql), ("sql", m.sql)):
            if new in _statuses(rule):
                events += stage_event(lead_id, stage_name, record.get("CreatedDate"), "lead_history")
    elif fld == "leadConverted":
        events += stage_event(lead_id, "sql", record.get("CreatedDate"), "converted")
    return {"lifecycle_events": events} if events else {}


MAPPERS: dict[str, Callable[[dict[str, Any], Context], Rows]] = {
    "user": user,
    "account": account,
    "lead": lead,
    "contact": contact,
    "opportunity": opportunity,
    "contact_role": contact_role,
    "stage_history": stage_history,
    "task": task,
    "event": event,
    "case": case,
    "campaign": campaign,
    "lead_history": lead_history,
}
