"""What kpisync reads from Salesforce, as a table: adding an object is adding a row.

Each row names the sObject, the canonical tables it feeds, the fields it always
wants, the mapping keys that add fields (`config.mapping`), its replication key
and whether deletions are read (queryAll `IsDeleted`, salesforce-api.md §2.4).
The SOQL is built from the intersection of the wanted fields and the org's
describe, so a field the org lacks is reported by `check()` instead of failing
the query (§5.1, describe is filtered by field-level security).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from kpisync.config import Mapping
from kpisync.connectors.base import ObjectSpec


@dataclass(frozen=True)
class SObject:
    name: str
    tables: tuple[str, ...]
    fields: tuple[str, ...]
    mapper: str  # a function name in mapping.py
    cursor_field: str = "SystemModstamp"
    deletions: bool = True  # has IsDeleted: read through queryAll
    mapped: Callable[[Mapping], list[str]] = lambda m: []
    # getDeleted feed (§2.7) read on full pulls: catches records purged from the Recycle Bin,
    # which queryAll no longer returns; only for objects whose first table is keyed by the record id
    purges: bool = False
    sibling: str | None = None  # Task/Event share mapping keys: a field on only one of them is expected

    def spec(self) -> ObjectSpec:
        return ObjectSpec(self.name, self.tables, self.cursor_field, {"mapper": self.mapper})


def _region(m: Mapping) -> list[str]:
    return [m.region.field] if m.region else []


def _channel(m: Mapping) -> list[str]:
    return [m.channel.field if m.channel else "LeadSource"]


def _lead_fields(m: Mapping) -> list[str]:
    rules = [r.date_field for r in (m.mql, m.sql) if r and r.date_field]
    return [*_region(m), *_channel(m), *([m.nps_field] if m.nps_field else []), *rules]


def _activity_fields(m: Mapping) -> list[str]:
    out = [v.field for v in (m.activity_type, m.activity_direction) if v]
    out += [rule.field for rule in m.activity_outcome]
    return out


_AUDIT = ("Id", "CreatedDate", "SystemModstamp")
_DELETED = ("IsDeleted",)

OBJECTS: tuple[SObject, ...] = (
    SObject(
        "User",
        ("users",),
        (*_AUDIT, "Name", "Email", "IsActive", "ManagerId", "UserRole.Name", "Department", "Division", "Title"),
        "user",
        deletions=False,  # users are deactivated, never deleted (§7)
        mapped=lambda m: [
            v
            for v in (m.role.field if m.role else None, m.team_field, m.user_region.field if m.user_region else None)
            if v
        ],
    ),
    SObject(
        "Account",
        ("accounts",),
        (
            *_AUDIT,
            *_DELETED,
            "Name",
            "OwnerId",
            "Type",
            "Industry",
            "AnnualRevenue",
            "BillingCountry",
            "BillingState",
            "BillingCity",
        ),
        "account",
        purges=True,
        mapped=lambda m: [*_region(m), *([m.churn_date_field] if m.churn_date_field else [])],
    ),
    SObject(
        "Lead",
        ("contacts", "lifecycle_events"),
        (
            *_AUDIT,
            *_DELETED,
            "Name",
            "Email",
            "OwnerId",
            "Status",
            "LeadSource",
            "Country",
            "State",
            "City",
            "IsConverted",
            "ConvertedDate",
            "ConvertedContactId",
            "ConvertedAccountId",
            "ConvertedOpportunityId",
        ),
        "lead",
        purges=True,
        mapped=_lead_fields,
    ),
    SObject(
        "Contact",
        ("contacts",),
        (
            *_AUDIT,
            *_DELETED,
            "Name",
            "Email",
            "OwnerId",
            "AccountId",
            "LeadSource",
            "MailingCountry",
            "MailingState",
            "MailingCity",
        ),
        "contact",
        purges=True,
        mapped=lambda m: [*_region(m), *_channel(m), *([m.nps_field] if m.nps_field else [])],
    ),
    SObject(
        "Opportunity",
        ("opportunities", "lifecycle_events"),
        (
            *_AUDIT,
            *_DELETED,
            "Name",
            "AccountId",
            "ContactId",
            "OwnerId",
            "CreatedById",
            "Amount",
            "StageName",
            "IsClosed",
            "IsWon",
            "CloseDate",
            "Type",
            "LeadSource",
            "RecordType.Name",
        ),
        "opportunity",
        purges=True,
        mapped=lambda m: [
            *_region(m),
            *_channel(m),
            m.deal_type.field if m.deal_type else "Type",
            *([m.competitor_price_field] if m.competitor_price_field else []),
        ],
    ),
    SObject(
        "OpportunityContactRole",
        ("opportunities", "lifecycle_events"),
        (
            *_AUDIT,
            *_DELETED,
            "OpportunityId",
            "ContactId",
            "IsPrimary",
            "Opportunity.CreatedDate",
            "Opportunity.IsWon",
            "Opportunity.CloseDate",
        ),
        "contact_role",
    ),
    SObject(
        "OpportunityHistory",
        ("opportunity_stage_history",),
        (*_AUDIT, *_DELETED, "OpportunityId", "StageName", "Amount"),
        "stage_history",
    ),
    SObject(
        "Task",
        ("activities",),
        (
            *_AUDIT,
            *_DELETED,
            "Subject",
            "Type",
            "TaskSubtype",
            "Status",
            "ActivityDate",
            "CompletedDateTime",
            "WhoId",
            "WhatId",
            "AccountId",
            "OwnerId",
            "CallType",
            "CallDurationInSeconds",
            "CallDisposition",
        ),
        "task",
        purges=True,
        mapped=_activity_fields,
        sibling="Event",
    ),
    SObject(
        "Event",
        ("activities",),
        (
            *_AUDIT,
            *_DELETED,
            "Subject",
            "Type",
            "EventSubtype",
            "StartDateTime",
            "ActivityDateTime",
            "DurationInMinutes",
            "WhoId",
            "WhatId",
            "AccountId",
            "OwnerId",
            "IsChild",
        ),
        "event",
        purges=True,
        mapped=_activity_fields,
        sibling="Task",
    ),
    SObject(
        "Case",
        ("cases",),
        (
            *_AUDIT,
            *_DELETED,
            "AccountId",
            "ContactId",
            "OwnerId",
            "Status",
            "Priority",
            "Origin",
            "IsClosed",
            "ClosedDate",
        ),
        "case",
        purges=True,
    ),
    SObject(
        "Campaign",
        ("spend",),
        (*_AUDIT, *_DELETED, "Name", "Type", "StartDate", "EndDate", "ActualCost"),
        "campaign",
    ),
    SObject(
        "LeadHistory",
        ("lifecycle_events",),
        # field history has no SystemModstamp: insert-only, paged by CreatedDate (§2.6, §7)
        ("Id", "CreatedDate", "IsDeleted", "LeadId", "Field", "NewValue"),
        "lead_history",
        cursor_field="CreatedDate",
    ),
)
BY_NAME: dict[str, SObject] = {o.name: o for o in OBJECTS}


def wanted_fields(obj: SObject, mapping: Mapping) -> list[str]:
    out: list[str] = []
    for name in (*obj.fields, *obj.mapped(mapping)):
        if name not in out:
            out.append(name)
    return out


def available(describe: dict[str, Any], name: str) -> bool:
    """A field (or `Relationship.Field`) the org shows this user."""
    fields = describe.get("fields") or []
    if "." in name:
        rel = name.split(".", 1)[0]
        return any(f.get("relationshipName") == rel for f in fields)
    return any(f.get("name") == name for f in fields)


def select_fields(obj: SObject, mapping: Mapping, describe: dict[str, Any]) -> tuple[list[str], list[str]]:
    """(fields to select, wanted fields the org does not have)."""
    wanted = wanted_fields(obj, mapping)
    have = [f for f in wanted if available(describe, f)]
    return have, [f for f in wanted if f not in have]


def soql(obj: SObject, fields: list[str], cursor: str | None, *, ordered: bool = True) -> str:
    """SELECT … WHERE <cursor> >= <literal> ORDER BY <cursor>, Id.

    The boundary is inclusive: rows sharing the cursor's timestamp at a page
    edge are read again (upserts make that harmless) instead of lost (§2.6).
    """
    text = f"SELECT {', '.join(fields)} FROM {obj.name}"
    if cursor:
        text += f" WHERE {obj.cursor_field} >= {cursor}"
    if ordered:
        text += f" ORDER BY {obj.cursor_field}, Id"
    return text
