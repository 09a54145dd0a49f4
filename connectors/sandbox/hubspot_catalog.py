"""What the sandbox HubSpot portal knows before any data: object types, their
default properties, pipelines, call outcomes, owners' wire shape.

Everything here mirrors hubspot-api.md (§0 object table, §8 sales data model)
and the fixtures in shared/fixtures/hubspot/; the translation of a canonical
org (`hubspot_translate.py`) and the HTTP layer (`hubspot.py`) read it.
"""

from __future__ import annotations

import uuid
from typing import Any

# path name → (objectTypeId, modified-date property, singular for messages/association labels)
OBJECT_TYPES: dict[str, tuple[str, str, str]] = {
    "contacts": ("0-1", "lastmodifieddate", "contact"),
    "companies": ("0-2", "hs_lastmodifieddate", "company"),
    "deals": ("0-3", "hs_lastmodifieddate", "deal"),
    "tickets": ("0-5", "hs_lastmodifieddate", "ticket"),
    "calls": ("0-48", "hs_lastmodifieddate", "call"),
    "emails": ("0-49", "hs_lastmodifieddate", "email"),
    "meetings": ("0-47", "hs_lastmodifieddate", "meeting_event"),
    "notes": ("0-46", "hs_lastmodifieddate", "note"),
    "tasks": ("0-27", "hs_lastmodifieddate", "task"),
}
TYPE_BY_ID = {type_id: name for name, (type_id, _, _) in OBJECT_TYPES.items()}
ENGAGEMENTS = ("calls", "emails", "meetings", "notes", "tasks")

# Properties returned when a list call names none (§0).
DEFAULT_PROPERTIES: dict[str, tuple[str, ...]] = {
    "contacts": ("createdate", "email", "firstname", "hs_object_id", "lastmodifieddate", "lastname"),
    "companies": ("createdate", "domain", "hs_lastmodifieddate", "hs_object_id", "name"),
    "deals": (
        "amount",
        "closedate",
        "createdate",
        "dealname",
        "dealstage",
        "hs_lastmodifieddate",
        "hs_object_id",
        "pipeline",
    ),
    "tickets": (
        "content",
        "createdate",
        "hs_lastmodifieddate",
        "hs_object_id",
        "hs_pipeline",
        "hs_pipeline_stage",
        "subject",
    ),
}
ENGAGEMENT_DEFAULTS = ("hs_createdate", "hs_lastmodifieddate", "hs_object_id")

# HubSpot-defined association type ids (§9); unknown pairs get 0 with a label-less type.
ASSOCIATION_TYPE_IDS: dict[tuple[str, str], int] = {
    ("contacts", "companies"): 279,
    ("companies", "contacts"): 280,
    ("deals", "contacts"): 3,
    ("contacts", "deals"): 4,
    ("deals", "companies"): 341,
    ("companies", "deals"): 342,
    ("contacts", "tickets"): 15,
    ("tickets", "contacts"): 16,
    ("calls", "contacts"): 194,
    ("emails", "contacts"): 198,
    ("meetings", "contacts"): 200,
    ("notes", "contacts"): 202,
    ("tasks", "contacts"): 204,
    ("tickets", "companies"): 339,
    ("calls", "companies"): 182,
    ("calls", "deals"): 206,
    ("emails", "companies"): 186,
    ("emails", "deals"): 210,
    ("meetings", "companies"): 188,
    ("meetings", "deals"): 212,
    ("notes", "companies"): 190,
    ("notes", "deals"): 214,
    ("tasks", "companies"): 192,
    ("tasks", "deals"): 216,
}

LIFECYCLE_STAGES = (
    "subscriber",
    "lead",
    "marketingqualifiedlead",
    "salesqualifiedlead",
    "opportunity",
    "customer",
    "evangelist",
    "other",
)
# canonical stage (canonical-model.md) → HubSpot lifecyclestage value
CANONICAL_TO_LIFECYCLE = {
    "subscriber": "subscriber",
    "lead": "lead",
    "mql": "marketingqualifiedlead",
    "sql": "salesqualifiedlead",
    "opportunity": "opportunity",
    "customer": "customer",
    "evangelist": "evangelist",
    "other": "other",
}

# Default call outcomes (§8.4); the sandbox portal adds custom ones for the rest.
DEFAULT_CALL_OUTCOMES = {
    "f240bbac-87c9-4f6e-bf70-924b57d47db7": "Connected",
    "73a0d17f-1163-4015-bdd5-ec830791da20": "No answer",
    "b2cf5968-551e-4856-9783-52b3da59a7d0": "Left voicemail",
    "a4c4c377-d246-4b32-a13b-75a56a4cd0ff": "Left live message",
    "9d9162e7-6cf3-4944-bf63-4dff82258764": "Busy",
    "17b47fee-58de-441e-a44c-c6300d46f273": "Wrong number",
}
_GUID_BY_OUTCOME = {
    "connected": "f240bbac-87c9-4f6e-bf70-924b57d47db7",
    "no_answer": "73a0d17f-1163-4015-bdd5-ec830791da20",
}


def call_disposition(outcome: str) -> str:
    """The disposition GUID a canonical call outcome is logged with (custom outcomes: portal GUIDs)."""
    return _GUID_BY_OUTCOME.get(outcome) or str(uuid.uuid5(uuid.NAMESPACE_URL, f"kpisync-sandbox-outcome:{outcome}"))


MEETING_OUTCOMES = {"booked": "SCHEDULED", "completed": "COMPLETED", "no_show": "NO_SHOW", "canceled": "CANCELED"}

TICKET_PIPELINE_DEFAULT = [
    ("1", "New", "OPEN"),
    ("2", "Waiting on contact", "OPEN"),
    ("3", "Waiting on us", "OPEN"),
    ("4", "Closed", "CLOSED"),
]

# (name, type, fieldType) of the properties the portal defines per object; anything
# the translation writes must be declared here, as in a real portal (§6).
_DT, _NUM, _STR, _ENUM, _DATE = "datetime", "number", "string", "enumeration", "date"
_COMMON = [("hs_object_id", _NUM), ("hubspot_owner_id", _ENUM), ("hs_merged_object_ids", _ENUM), ("sales_region", _STR)]
_ENGAGEMENT_COMMON = [
    ("hs_timestamp", _DT),
    ("hs_createdate", _DT),
    ("hs_lastmodifieddate", _DT),
    ("hs_activity_type", _ENUM),
    ("sales_outcome", _STR),
]
BASE_PROPERTIES: dict[str, list[tuple[str, str]]] = {
    "contacts": [
        ("email", _STR),
        ("firstname", _STR),
        ("lastname", _STR),
        ("createdate", _DT),
        ("lastmodifieddate", _DT),
        ("lifecyclestage", _ENUM),
        ("hs_lead_status", _ENUM),
        ("hs_analytics_source", _ENUM),
        ("lead_source", _STR),
        ("country", _STR),
        ("state", _STR),
        ("city", _STR),
        ("nps_score", _NUM),
        ("associatedcompanyid", _NUM),
        ("hs_calculated_merged_vids", _ENUM),
        ("hubspot_owner_assigneddate", _DT),
        *[(f"hs_v2_date_entered_{s}", _DT) for s in LIFECYCLE_STAGES],
        *[(f"hs_date_entered_{s}", _DT) for s in LIFECYCLE_STAGES],
        *[(f"hs_lifecyclestage_{s}_date", _DT) for s in LIFECYCLE_STAGES],
    ],
    "companies": [
        ("name", _STR),
        ("domain", _STR),
        ("createdate", _DT),
        ("hs_lastmodifieddate", _DT),
        ("type", _ENUM),
        ("industry", _ENUM),
        ("country", _STR),
        ("state", _STR),
        ("city", _STR),
        ("annualrevenue", _NUM),
        ("lifecyclestage", _ENUM),
        ("churn_date", _DT),
    ],
    "deals": [
        ("dealname", _STR),
        ("amount", _NUM),
        ("amount_in_home_currency", _NUM),
        ("dealstage", _ENUM),
        ("pipeline", _ENUM),
        ("closedate", _DT),
        ("createdate", _DT),
        ("hs_lastmodifieddate", _DT),
        ("dealtype", _ENUM),
        ("hs_is_closed", "bool"),
        ("hs_is_closed_won", "bool"),
        ("lead_source", _STR),
        ("competitor_price", _NUM),
        ("hs_closed_won_date", _DT),
    ],
    "tickets": [
        ("subject", _STR),
        ("content", _STR),
        ("hs_pipeline", _ENUM),
        ("hs_pipeline_stage", _ENUM),
        ("hs_ticket_priority", _ENUM),
        ("createdate", _DT),
        ("closed_date", _DT),
        ("first_agent_reply_date", _DT),
        ("time_to_close", _NUM),
        ("source_type", _ENUM),
        ("hs_lastmodifieddate", _DT),
    ],
    "calls": [
        ("hs_call_direction", _ENUM),
        ("hs_call_duration", _NUM),
        ("hs_call_disposition", _STR),
        ("hs_call_status", _ENUM),
        ("hs_call_title", _STR),
    ],
    "emails": [("hs_email_direction", _ENUM), ("hs_email_status", _ENUM), ("hs_email_subject", _STR)],
    "meetings": [
        ("hs_meeting_title", _STR),
        ("hs_meeting_start_time", _DT),
        ("hs_meeting_end_time", _DT),
        ("hs_meeting_outcome", _ENUM),
        ("hs_meeting_source", _ENUM),
    ],
    "notes": [("hs_note_body", _STR)],
    "tasks": [
        ("hs_task_subject", _STR),
        ("hs_task_status", _ENUM),
        ("hs_task_type", _ENUM),
        ("hs_task_priority", _ENUM),
        ("hs_task_completion_date", _DT),
    ],
}
_FIELD_TYPE = {_DT: "date", _DATE: "date", _NUM: "number", _STR: "text", _ENUM: "select", "bool": "booleancheckbox"}
_GROUP = {
    "contacts": "contactinformation",
    "companies": "companyinformation",
    "deals": "dealinformation",
    "tickets": "ticketinformation",
}


def property_catalog(object_type: str, deal_stage_ids: list[str] = ()) -> list[dict[str, Any]]:  # type: ignore[assignment]
    """Full Property objects (§6 shape, as property_create_201.json) for one object type."""
    props = list(BASE_PROPERTIES.get(object_type, []))
    props += _ENGAGEMENT_COMMON if object_type in ENGAGEMENTS else []
    props += _COMMON
    if object_type == "deals":
        for stage in deal_stage_ids:
            props += [(f"hs_date_entered_{stage}", _DT), (f"hs_v2_date_entered_{stage}", _DT)]
    seen: set[str] = set()
    out = []
    for name, kind in props:
        if name in seen:
            continue
        seen.add(name)
        out.append(property_object(name, kind, _GROUP.get(object_type, "engagementinformation"), hubspot_defined=True))
    return out


def property_object(name: str, kind: str, group: str, *, hubspot_defined: bool = False, **extra: Any) -> dict[str, Any]:
    read_only = name in ("hs_object_id", "lastmodifieddate", "hs_lastmodifieddate", "createdate", "hs_createdate")
    body: dict[str, Any] = {
        "updatedAt": "2024-01-01T00:00:00.000Z",
        "createdAt": "2024-01-01T00:00:00.000Z",
        "name": name,
        "label": name.replace("_", " ").title(),
        "type": kind,
        "fieldType": _FIELD_TYPE.get(kind, "text"),
        "description": "",
        "groupName": group,
        "options": [],
        "displayOrder": -1,
        "calculated": False,
        "externalOptions": False,
        "hasUniqueValue": False,
        "hidden": False,
        "modificationMetadata": {
            "archivable": not hubspot_defined,
            "readOnlyDefinition": hubspot_defined,
            "readOnlyValue": read_only,
        },
        "formField": False,
        "dataSensitivity": "non_sensitive",
        "archived": False,
    }
    if hubspot_defined:
        body["hubspotDefined"] = True
    body.update(extra)
    return body
