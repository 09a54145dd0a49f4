"""Creating the write-back fields: Tooling API CustomField, then field-level security.

A field created through the Tooling API is visible to nobody until a
FieldPermissions record grants it (salesforce-api.md §5.3), so provisioning
also keeps a permission set `KPI_Sync_Fields` granting read+edit on every KPI
field and assigns it to the integration user. Existence is checked with a
Tooling query, not describe (describe hides fields without FLS, §5.1). Every
step looks first and only creates what is missing: running it twice changes
nothing the second time.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from kpisync.connectors.base import Change, FieldDef
from kpisync.connectors.salesforce.client import SalesforceClient
from kpisync.errors import RunError

PERMISSION_SET = "KPI_Sync_Fields"
GRAIN_OBJECTS: dict[str, tuple[str, ...]] = {
    "user": ("User",),
    "contact": ("Lead", "Contact"),  # a person is a Lead until converted, then a Contact
    "account": ("Account",),
    "opportunity": ("Opportunity",),
}
# KPI unit → Salesforce field type, precision, scale (§5.2: Number/Currency/Percent need both)
FIELD_TYPES: dict[str, tuple[str, int, int]] = {
    "ratio": ("Percent", 6, 2),
    "currency": ("Currency", 16, 2),
    "count": ("Number", 18, 0),
    "score": ("Number", 5, 1),
}
DEFAULT_TYPE = ("Number", 16, 2)  # minutes, hours, days, per_day, multiple


def field_type(unit: str) -> tuple[str, int, int]:
    return FIELD_TYPES.get(unit, DEFAULT_TYPE)


def _quote(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _records(client: SalesforceClient, soql: str, *, tooling: bool = False) -> list[dict[str, Any]]:
    if tooling:
        return list(client.tooling("query/", params={"q": soql}).get("records", []))
    return [r for page in client.query_pages(soql, include_deleted=False) for r in page]


def provision(client: SalesforceClient, fields: Sequence[FieldDef], *, dry_run: bool = False) -> list[Change]:
    wanted = [(obj, f) for f in fields for obj in GRAIN_OBJECTS.get(f.grain, ())]
    if not wanted:
        return []
    objects = sorted({obj for obj, _f in wanted})
    existing = {
        (r["TableEnumOrId"], f"{r['DeveloperName']}__c")
        for r in _records(
            client,
            "SELECT Id, DeveloperName, TableEnumOrId FROM CustomField WHERE TableEnumOrId IN "
            f"({', '.join(_quote(o) for o in objects)})",
            tooling=True,
        )
    }
    changes: list[Change] = []
    for obj, f in wanted:
        if (obj, f.field) in existing:
            continue
        kind, precision, scale = field_type(f.unit)
        detail = f"{kind}({precision},{scale}) '{f.label}'"
        if not dry_run:
            _create_field(
                client,
                {
                    "FullName": f"{obj}.{f.field}",
                    "Metadata": {
                        "type": kind,
                        "label": f.label[:40],
                        "precision": precision,
                        "scale": scale,
                        "description": "Written by kpisync (Sales KPIs)",
                        "required": False,
                    },
                },
            )
            existing.add((obj, f.field))
        changes.append(Change(obj, f.field, "create field", done=not dry_run, detail=detail))
    changes += _grant(client, wanted, dry_run)
    client.forget_describe()
    return changes


def _create_field(client: SalesforceClient, body: dict[str, Any]) -> None:
    """POST a CustomField. A create whose answer was lost (reset, truncated body) is retried,
    and the retry is told DUPLICATE_DEVELOPER_NAME: the field is there, which is what we wanted."""
    try:
        client.tooling("sobjects/CustomField", method="POST", json=body)
    except RunError as exc:
        if "DUPLICATE_DEVELOPER_NAME" not in str(exc):
            raise


def _create_record(client: SalesforceClient, obj: str, body: dict[str, Any]) -> str | None:
    """POST an sObject; None when it already exists. A create whose answer was lost is retried,
    and the retry is told DUPLICATE_VALUE/DUPLICATE_DEVELOPER_NAME: the record is there."""
    try:
        return str(client.restful(f"sobjects/{obj}", method="POST", json=body)["id"])
    except RunError as exc:
        if "DUPLICATE_VALUE" not in str(exc) and "DUPLICATE_DEVELOPER_NAME" not in str(exc):
            raise
        return None


def _grant(client: SalesforceClient, wanted: list[tuple[str, FieldDef]], dry_run: bool) -> list[Change]:
    found = _records(client, f"SELECT Id FROM PermissionSet WHERE Name = {_quote(PERMISSION_SET)}")
    changes: list[Change] = []
    if found:
        parent: str | None = found[0]["Id"]
    elif dry_run:
        parent = None
        changes.append(Change("PermissionSet", PERMISSION_SET, "create permission set", done=False))
    else:
        parent = _create_record(client, "PermissionSet", {"Name": PERMISSION_SET, "Label": "KPI Sync Fields"})
        if parent is None:  # created by the attempt whose answer was lost
            parent = _records(client, f"SELECT Id FROM PermissionSet WHERE Name = {_quote(PERMISSION_SET)}")[0]["Id"]
        changes.append(Change("PermissionSet", PERMISSION_SET, "create permission set", done=True))
    granted: dict[str, dict[str, Any]] = {}
    if parent:
        for r in _records(
            client,
            "SELECT Id, Field, PermissionsRead, PermissionsEdit FROM FieldPermissions "
            f"WHERE ParentId = {_quote(parent)}",
        ):
            granted[r["Field"]] = r
    for obj, f in wanted:
        full = f"{obj}.{f.field}"
        have = granted.get(full)
        if have and have.get("PermissionsRead") and have.get("PermissionsEdit"):
            continue
        if not dry_run:
            body = {"PermissionsRead": True, "PermissionsEdit": True}
            if have:
                client.restful(f"sobjects/FieldPermissions/{have['Id']}", method="PATCH", json=body)
            else:
                _create_record(
                    client, "FieldPermissions", {"ParentId": parent, "SobjectType": obj, "Field": full, **body}
                )
        changes.append(Change(obj, f.field, "grant field access", done=not dry_run, detail=PERMISSION_SET))
    user_id = client.session.user_id if client.session else None
    if parent and user_id:
        assigned = _records(
            client,
            "SELECT Id FROM PermissionSetAssignment WHERE AssigneeId = "
            f"{_quote(user_id)} AND PermissionSetId = {_quote(parent)}",
        )
        if not assigned:
            if not dry_run:
                _create_record(client, "PermissionSetAssignment", {"AssigneeId": user_id, "PermissionSetId": parent})
            changes.append(
                Change(
                    "PermissionSetAssignment",
                    PERMISSION_SET,
                    "assign permission set",
                    done=not dry_run,
                    detail=f"to the integration user {user_id}",
                )
            )
    return changes
