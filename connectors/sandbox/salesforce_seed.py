"""Translate a canonical org (kpisync.generator's store) into Salesforce records.

The inverse of the connector's mapping: everything canonical is written the way
a Salesforce org holds it (roles as UserRole names, deal types as Opportunity
Type picklist values, calls as Tasks with TaskSubtype/CallType/CallDisposition,
meetings as Events, MQL/SQL as LeadHistory Status rows, spend as Campaigns), and
`sandbox_mapping()` returns the YAML mapping that reads it back.
"""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Iterator
from datetime import date, timedelta
from typing import Any

from kpisync.connectors.sandbox.salesforce_org import OrgStore
from kpisync.connectors.sandbox.salesforce_schema import PREFIX

ROLE_NAMES = {
    "sdr": "Sales Development Rep",
    "bdr": "Business Development Rep",
    "ae": "Account Executive",
    "am": "Account Manager",
    "manager": "Sales Manager",
    "other": "Sales Operations",
}
DEAL_TYPES = {
    "new_business": "New Customer",
    "upsell": "Existing Customer - Upgrade",
    "cross_sell": "Existing Customer - Cross-Sell",
    "renewal": "Existing Customer - Renewal",
    "other": "Other",
}
OUTCOMES = {
    "connected": "Connected",
    "no_answer": "No Answer",
    "positive": "Interested",
    "negative": "Not Interested",
    "replied": "Replied",
    "booked": "Meeting Booked",
    "completed": "Completed",
    "no_show": "No Show",
    "canceled": "Canceled",
}
# canonical activity type → (object, TaskSubtype/EventSubtype, Type)
ACTIVITY_SHAPES = {
    "call": ("Task", "Call", "Call"),
    "email": ("Task", "Email", "Email"),
    "task": ("Task", "Task", "Other"),
    "note": ("Task", "Task", "Note"),
    "other": ("Task", "Task", "Other"),
    "meeting": ("Event", "Event", "Meeting"),
    "visit": ("Event", "Event", "Visit"),
}
MQL_STATUS, SQL_STATUS = "Marketing Qualified", "Sales Qualified"
BATCH = 5000


def sf_id(obj: str, canonical: str) -> str:
    """A stable 18-character id with the object's key prefix for a canonical id."""
    digest = hashlib.blake2b(canonical.encode(), digest_size=8).hexdigest()[:13]
    return f"{PREFIX[obj]}{digest}{'AA'}"


def sf_ts(value: str | None) -> str | None:
    """`2026-03-04T15:16:17Z` → `2026-03-04T15:16:17.000+0000` (salesforce-api.md §2.2)."""
    if not value:
        return None
    if len(value) == 10:
        value = f"{value}T00:00:00Z"
    return value[:19] + ".000+0000"


def _rows(conn: sqlite3.Connection, sql: str) -> Iterator[dict[str, Any]]:
    cur = conn.execute(sql)
    names = [d[0] for d in cur.description]
    for row in cur:
        yield dict(zip(names, row, strict=True))


class Seeder:
    def __init__(self, canonical: sqlite3.Connection, org: OrgStore) -> None:
        self.src = canonical
        self.org = org
        self.kinds: dict[str, str] = {}  # canonical contact id → Lead | Contact
        self.converted: dict[str, str] = {}  # lead id → contact id
        self.channels: dict[str, str] = {}  # lead source → channel
        self.regions: set[str] = set()
        self.user_regions: set[str] = set()
        self.ids: list[tuple[str, str]] = []

    def _put(self, obj: str, records: Iterator[dict[str, Any]]) -> int:
        batch: list[dict[str, Any]] = []
        n = 0
        for record in records:
            batch.append(record)
            if len(batch) >= BATCH:
                self.org.insert_many(obj, batch)
                n += len(batch)
                batch = []
        if batch:
            self.org.insert_many(obj, batch)
            n += len(batch)
        return n

    def _id(self, obj: str, canonical: str | None) -> str | None:
        if canonical is None:
            return None
        sid = sf_id(obj, canonical)
        self.ids.append((canonical, sid))
        return sid

    def _who(self, contact_id: str | None) -> str | None:
        if contact_id is None or contact_id not in self.kinds:
            return None
        return sf_id(self.kinds[contact_id], contact_id)

    def run(self) -> dict[str, int]:
        for row in _rows(self.src, "SELECT id, kind, converted_contact_id FROM contacts"):
            self.kinds[row["id"]] = "Lead" if row["kind"] == "lead" else "Contact"
            if row["converted_contact_id"]:
                self.converted[row["id"]] = row["converted_contact_id"]
        counts = {
            "User": self._put("User", self.users()),
            "Account": self._put("Account", self.accounts()),
            "Lead": self._put("Lead", self.people("Lead")),
            "Contact": self._put("Contact", self.people("Contact")),
            "LeadHistory": self._put("LeadHistory", self.lead_history()),
            "Opportunity": self._put("Opportunity", self.opportunities()),
            "OpportunityContactRole": self._put("OpportunityContactRole", self.contact_roles()),
            "OpportunityHistory": self._put("OpportunityHistory", self.stage_history()),
            "OpportunityStage": self._put("OpportunityStage", self.stages()),
            "Task": self._put("Task", self.activities("Task")),
            "Event": self._put("Event", self.activities("Event")),
            "Case": self._put("Case", self.cases()),
            "Campaign": self._put("Campaign", self.campaigns()),
        }
        with self.org.lock:
            self.org.conn.execute("BEGIN")
            self.org.conn.executemany("INSERT OR REPLACE INTO id_map VALUES (?, ?)", self.ids)
            self.org.conn.execute("COMMIT")
        return counts

    def users(self) -> Iterator[dict[str, Any]]:
        roles: dict[str, str] = {}
        for row in _rows(self.src, "SELECT * FROM users ORDER BY id"):
            role = row["role"] or "other"
            if role not in roles:
                roles[role] = sf_id("UserRole", f"role:{role}")
                self.org.insert_many(
                    "UserRole",
                    [
                        {
                            "Id": roles[role],
                            "Name": ROLE_NAMES.get(role, role),
                            "CreatedDate": "2020-01-01T00:00:00.000+0000",
                        }
                    ],
                )
            if row["region"]:
                self.user_regions.add(row["region"])
            first, _, last = (row["name"] or "Rep").partition(" ")
            stamp = sf_ts("2020-01-01T00:00:00Z")
            yield {
                "Id": self._id("User", row["id"]),
                "Username": (row["email"] or f"{row['id']}@example.invalid") + ".sandbox",
                "Name": row["name"],
                "FirstName": first,
                "LastName": last or first,
                "Email": row["email"],
                "IsActive": bool(row["is_active"]),
                "UserType": "Standard",
                "UserRoleId": roles[role],
                "ManagerId": self._id("User", row["manager_id"]),
                "Department": row["team"],
                "Division": row["region"],
                "Title": ROLE_NAMES.get(role, role),
                "TimeZoneSidKey": "Europe/London",
                "CreatedDate": stamp,
                "SystemModstamp": stamp,
            }

    def accounts(self) -> Iterator[dict[str, Any]]:
        for row in _rows(self.src, "SELECT * FROM accounts"):
            if row["region"]:
                self.regions.add(row["region"])
            yield {
                "Id": self._id("Account", row["id"]),
                "Name": row["name"],
                "Type": row["type"],
                "Industry": row["industry"],
                "AnnualRevenue": row["annual_revenue"],
                "BillingCountry": row["country"],
                "BillingState": row["state"],
                "BillingCity": row["city"],
                "OwnerId": self._id("User", row["owner_id"]),
                "Sales_Region__c": row["region"],
                "Churn_Date__c": sf_ts(row["churned_at"]),
                "CreatedDate": sf_ts(row["created_at"]),
                "SystemModstamp": sf_ts(max(filter(None, (row["created_at"], row["churned_at"])), default=None)),
                "IsDeleted": bool(row["is_deleted"]),
            }

    def people(self, obj: str) -> Iterator[dict[str, Any]]:
        kind = "lead" if obj == "Lead" else "contact"
        for row in _rows(self.src, f"SELECT * FROM contacts WHERE kind {'=' if kind == 'lead' else '!='} 'lead'"):
            if row["lead_source"] and row["channel"]:
                self.channels.setdefault(row["lead_source"], row["channel"])
            if row["region"]:
                self.regions.add(row["region"])
            first, _, last = (row["name"] or "Unknown").partition(" ")
            record: dict[str, Any] = {
                "Id": self._id(obj, row["id"]),
                "FirstName": first,
                "LastName": last or first,
                "Name": row["name"],
                "Email": row["email"],
                "OwnerId": self._id("User", row["owner_id"]),
                "LeadSource": row["lead_source"],
                "Sales_Region__c": row["region"],
                "NPS__c": row["nps_score"],
                "CreatedDate": sf_ts(row["created_at"]),
                "SystemModstamp": sf_ts(max(filter(None, (row["created_at"], row["converted_at"])), default=None)),
                "IsDeleted": bool(row["is_deleted"]),
            }
            if obj == "Lead":
                contact = row["converted_contact_id"]
                account = None
                if contact:
                    found = self.src.execute("SELECT account_id FROM contacts WHERE id = ?", (contact,)).fetchone()
                    account = found[0] if found else None
                record.update(
                    Company=row["name"],
                    Status=row["lead_status"],
                    Country=row["country"],
                    State=row["state"],
                    City=row["city"],
                    IsConverted=bool(contact or row["converted_at"]),
                    ConvertedDate=row["converted_at"][:10] if row["converted_at"] else None,
                    ConvertedContactId=self._who(contact),
                    ConvertedAccountId=sf_id("Account", account) if account else None,
                )
            else:
                record.update(
                    AccountId=self._id("Account", row["account_id"]),
                    MailingCountry=row["country"],
                    MailingState=row["state"],
                    MailingCity=row["city"],
                )
            yield record

    def lead_history(self) -> Iterator[dict[str, Any]]:
        sql = (
            "SELECT c.id, c.created_at, c.converted_at, e.stage, e.entered_at FROM contacts c "
            "LEFT JOIN lifecycle_events e ON e.contact_id = c.id AND e.stage IN ('mql', 'sql') "
            "WHERE c.kind = 'lead' ORDER BY c.id"
        )
        seen: set[str] = set()
        for row in _rows(self.src, sql):
            lead = sf_id("Lead", row["id"])
            if row["id"] not in seen:
                seen.add(row["id"])
                yield self._history(lead, "created", None, None, row["created_at"], "created")
                if row["converted_at"]:
                    yield self._history(lead, "leadConverted", None, None, row["converted_at"], "converted")
            if row["stage"]:
                status = MQL_STATUS if row["stage"] == "mql" else SQL_STATUS
                yield self._history(lead, "Status", None, status, row["entered_at"], row["stage"])

    def _history(self, lead: str, fld: str, old: Any, new: Any, at: str | None, tag: str) -> dict[str, Any]:
        return {
            "Id": sf_id("LeadHistory", f"{lead}:{tag}"),
            "LeadId": lead,
            "Field": fld,
            "DataType": "DynamicEnum" if fld == "Status" else "Text",
            "OldValue": old,
            "NewValue": new,
            "CreatedDate": sf_ts(at),
            "SystemModstamp": sf_ts(at),
        }

    def opportunities(self) -> Iterator[dict[str, Any]]:
        record_types: dict[str, str] = {}
        for row in _rows(self.src, "SELECT * FROM opportunities"):
            pipeline = row["pipeline"]
            if pipeline and pipeline not in record_types:
                record_types[pipeline] = sf_id("RecordType", f"pipeline:{pipeline}")
                self.org.insert_many(
                    "RecordType",
                    [
                        {
                            "Id": record_types[pipeline],
                            "Name": pipeline,
                            "DeveloperName": pipeline.replace(" ", "_"),
                            "SobjectType": "Opportunity",
                            "IsActive": True,
                            "CreatedDate": "2020-01-01T00:00:00.000+0000",
                        }
                    ],
                )
            if row["lead_source"] and row["channel"]:
                self.channels.setdefault(row["lead_source"], row["channel"])
            if row["region"]:
                self.regions.add(row["region"])
            contact = self.converted.get(row["contact_id"], row["contact_id"])
            yield {
                "Id": self._id("Opportunity", row["id"]),
                "Name": row["name"],
                "AccountId": self._id("Account", row["account_id"]),
                "OwnerId": self._id("User", row["owner_id"]),
                "CreatedById": self._id("User", row["created_by_id"]),
                "StageName": row["stage"],
                "Amount": row["amount"],
                "CloseDate": row["closed_at"][:10] if row["closed_at"] else None,
                "IsClosed": bool(row["is_closed"]),
                "IsWon": bool(row["is_won"]),
                "Type": DEAL_TYPES.get(row["deal_type"] or "", row["deal_type"]),
                "LeadSource": row["lead_source"],
                "ContactId": sf_id("Contact", contact) if contact and self.kinds.get(contact) == "Contact" else None,
                "Sales_Region__c": row["region"],
                "Competitor_Price__c": row["competitor_price"],
                "RecordTypeId": record_types.get(pipeline) if pipeline else None,
                "CreatedDate": sf_ts(row["created_at"]),
                "SystemModstamp": sf_ts(max(filter(None, (row["created_at"], row["closed_at"])), default=None)),
                "IsDeleted": bool(row["is_deleted"]),
            }

    def contact_roles(self) -> Iterator[dict[str, Any]]:
        for row in _rows(self.src, "SELECT id, contact_id, created_at FROM opportunities WHERE contact_id IS NOT NULL"):
            contact = self.converted.get(row["contact_id"], row["contact_id"])
            if self.kinds.get(contact) != "Contact":
                continue
            yield {
                "Id": sf_id("OpportunityContactRole", row["id"]),
                "OpportunityId": sf_id("Opportunity", row["id"]),
                "ContactId": sf_id("Contact", contact),
                "Role": "Decision Maker",
                "IsPrimary": True,
                "CreatedDate": sf_ts(row["created_at"]),
                "SystemModstamp": sf_ts(row["created_at"]),
            }

    def stage_history(self) -> Iterator[dict[str, Any]]:
        for row in _rows(self.src, "SELECT * FROM opportunity_stage_history"):
            key = f"{row['opportunity_id']}|{row['stage']}|{row['entered_at']}"
            yield {
                "Id": sf_id("OpportunityHistory", key),
                "OpportunityId": sf_id("Opportunity", row["opportunity_id"]),
                "StageName": row["stage"],
                "Amount": row["amount"],
                "CreatedDate": sf_ts(row["entered_at"]),
                "SystemModstamp": sf_ts(row["entered_at"]),
            }

    def stages(self) -> Iterator[dict[str, Any]]:
        sql = "SELECT stage, max(is_closed), max(is_won) FROM opportunities WHERE stage IS NOT NULL GROUP BY stage"
        for order, (stage, closed, won) in enumerate(self.src.execute(sql).fetchall()):
            yield {
                "Id": sf_id("OpportunityStage", stage),
                "ApiName": stage,
                "MasterLabel": stage,
                "IsActive": True,
                "IsClosed": bool(closed),
                "IsWon": bool(won),
                "SortOrder": order,
                "CreatedDate": "2020-01-01T00:00:00.000+0000",
            }

    def activities(self, obj: str) -> Iterator[dict[str, Any]]:
        types = [t for t, shape in ACTIVITY_SHAPES.items() if shape[0] == obj]
        where = f"type IN ({', '.join(repr(t) for t in types)})"
        if obj == "Task":
            where += f" OR type IS NULL OR type NOT IN ({', '.join(repr(t) for t in ACTIVITY_SHAPES)})"
        for row in _rows(self.src, f"SELECT * FROM activities WHERE {where}"):
            _o, subtype, kind = ACTIVITY_SHAPES.get(row["type"] or "other", ("Task", "Task", row["type"]))
            what = (
                sf_id("Opportunity", row["opportunity_id"])
                if row["opportunity_id"]
                else (sf_id("Account", row["account_id"]) if row["account_id"] else None)
            )
            direction = row["direction"].capitalize() if row["direction"] else None
            outcome = OUTCOMES.get(row["outcome"] or "", row["outcome"])
            record: dict[str, Any] = {
                "Id": self._id(obj, row["id"]),
                "Subject": row["subject"],
                "Type": kind,
                "WhoId": self._who(row["contact_id"]),
                "WhatId": what,
                "AccountId": sf_id("Account", row["account_id"]) if row["account_id"] else None,
                "OwnerId": sf_id("User", row["owner_id"]) if row["owner_id"] else None,
                "Direction__c": direction,
                "IsArchived": False,
                "CreatedDate": sf_ts(row["created_at"]),
                "SystemModstamp": sf_ts(row["created_at"]),
                "IsDeleted": bool(row["is_deleted"]),
            }
            if obj == "Task":
                is_call = subtype == "Call"
                record.update(
                    TaskSubtype=subtype,
                    Status="Completed" if row["occurred_at"] else "Not Started",
                    IsClosed=bool(row["occurred_at"]),
                    ActivityDate=row["occurred_at"][:10] if row["occurred_at"] else None,
                    CompletedDateTime=sf_ts(row["occurred_at"]),
                    CallType=direction if is_call else None,
                    CallDurationInSeconds=row["duration_s"] if is_call else None,
                    CallDisposition=outcome if is_call else None,
                    Outcome__c=None if is_call else outcome,
                )
            else:
                minutes = round(row["duration_s"] / 60) if row["duration_s"] is not None else None
                record.update(
                    EventSubtype="Event",
                    StartDateTime=sf_ts(row["occurred_at"]),
                    ActivityDateTime=sf_ts(row["occurred_at"]),
                    DurationInMinutes=minutes,
                    IsChild=False,
                    IsGroupEvent=False,
                    Outcome__c=outcome,
                )
            yield record

    def cases(self) -> Iterator[dict[str, Any]]:
        for n, row in enumerate(_rows(self.src, "SELECT * FROM cases"), start=1):
            yield {
                "Id": self._id("Case", row["id"]),
                "CaseNumber": f"{n:08d}",
                "Status": row["status"],
                "Priority": row["priority"],
                "Origin": row["origin"],
                "IsClosed": bool(row["is_closed"]),
                "ClosedDate": sf_ts(row["closed_at"]),
                "AccountId": sf_id("Account", row["account_id"]) if row["account_id"] else None,
                "ContactId": self._who(row["contact_id"]),
                "OwnerId": sf_id("User", row["owner_id"]) if row["owner_id"] else None,
                "CreatedDate": sf_ts(row["created_at"]),
                "SystemModstamp": sf_ts(max(filter(None, (row["created_at"], row["closed_at"])), default=None)),
                "IsDeleted": bool(row["is_deleted"]),
            }

    def campaigns(self) -> Iterator[dict[str, Any]]:
        by_channel = {channel: source for source, channel in sorted(self.channels.items())}
        for row in _rows(self.src, "SELECT * FROM spend"):
            source = by_channel.get(row["channel"]) if row["channel"] else None
            if row["channel"] and source is None:
                source = row["channel"].capitalize()
                self.channels[source] = row["channel"]
                by_channel[row["channel"]] = source
            end = date.fromisoformat(row["period_end"]) - timedelta(days=1) if row["period_end"] else None
            yield {
                "Id": self._id("Campaign", row["id"]),
                "Name": row["campaign"],
                "Type": source,
                "Status": "Completed",
                "StartDate": row["period_start"],
                "EndDate": end.isoformat() if end else None,
                "ActualCost": row["amount"],
                "IsActive": False,
                "CreatedDate": sf_ts(row["period_start"]),
                "SystemModstamp": sf_ts(row["period_start"]),
            }

    def mapping(self) -> dict[str, Any]:
        """The `mapping:` section of the sandbox's kpisync YAML: reads this org back into the canonical values."""
        return {
            "role": {"field": "UserRole.Name", "values": {name: role for role, name in ROLE_NAMES.items()}},
            "team_field": "Department",
            "user_region": {"field": "Division", "values": {r: r for r in sorted(self.user_regions)}},
            "region": {"field": "Sales_Region__c", "values": {r: r for r in sorted(self.regions)}},
            "channel": {"field": "LeadSource", "values": dict(sorted(self.channels.items()))},
            "deal_type": {"field": "Type", "values": {name: kind for kind, name in DEAL_TYPES.items()}},
            "activity_direction": {"field": "Direction__c", "values": {"Inbound": "inbound", "Outbound": "outbound"}},
            "activity_outcome": [
                {"field": "CallDisposition", "values": {label: o for o, label in OUTCOMES.items()}},
                {"field": "Outcome__c", "values": {label: o for o, label in OUTCOMES.items()}},
            ],
            "mql": {"lead_statuses": [MQL_STATUS]},
            "sql": {"lead_statuses": [SQL_STATUS]},
            "churn_date_field": "Churn_Date__c",
            "nps_field": "NPS__c",
            "competitor_price_field": "Competitor_Price__c",
        }
