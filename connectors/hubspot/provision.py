"""Setting up a portal for write-back, and checking it (hubspot-api.md §6, §7.3).

`provision` creates the "Sales KPIs" property group and each missing KPI
property on contacts/companies/deals (number; percentage or currency display
hints by KPI unit), and the "Sales KPI Scorecard" custom object for rep KPIs.
It lists first and creates what is missing; a 409 is "already there". Portals
without custom objects (Enterprise only) get a plain-worded Change saying rep
KPIs will not be written.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from kpisync.connectors.base import Change, CheckResult, FieldDef, ObjectSpec
from kpisync.connectors.hubspot.client import ApiError
from kpisync.connectors.hubspot.objects import (
    GRAIN_OBJECTS,
    OBJECTS,
    PROPERTY_GROUP,
    PROPERTY_GROUP_LABEL,
    SCORECARD_KEY,
    SCORECARD_NAME,
    SCORECARD_PERIOD,
)
from kpisync.errors import AuthError

if TYPE_CHECKING:
    from kpisync.connectors.hubspot.connector import HubSpotConnector

# numberDisplayHint by KPI unit (the 12.x PropertyCreate model lacks the field: send a dict, §2.5)
_DISPLAY_HINT = {"ratio": "percentage", "currency": "currency", "count": "unformatted", "score": "unformatted"}
_DESCRIPTION = "Maintained by kpisync — edits are overwritten on the next write-back."
NO_CUSTOM_OBJECTS = (
    "this portal has no custom objects (Enterprise only): rep-level KPIs are not written; record KPIs still are"
)


def property_body(field: FieldDef, group: str) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": field.field,
        "label": field.label,
        "type": "number",
        "fieldType": "number",
        "groupName": group,
        "description": _DESCRIPTION,
        "displayOrder": -1,
        "formField": False,
    }
    hint = _DISPLAY_HINT.get(field.unit, "formatted")
    body["numberDisplayHint"] = hint
    return body


def find_scorecard(conn: HubSpotConnector) -> dict[str, Any] | None:
    """The scorecard schema, or None (absent, or no custom objects in this portal)."""
    try:
        data = conn.client.json("custom object schemas", lambda a, kw: a.schemas.get_all(**kw))
    except (AuthError, ApiError):
        return None
    return next((s for s in data.get("results") or [] if s.get("name") == SCORECARD_NAME), None)


def _custom_objects_available(conn: HubSpotConnector) -> bool:
    try:
        conn.client.json("custom object schemas", lambda a, kw: a.schemas.get_all(**kw))
    except (AuthError, ApiError):
        return False
    return True


def _names(conn: HubSpotConnector, object_type: str) -> set[str]:
    return conn.property_names(object_type, refresh=True)


def _create(conn: HubSpotConnector, what: str, call: Any) -> str:
    """'created' or 'exists' (409 is success for idempotent setup, §6)."""
    try:
        conn.client.model(what, call)
    except ApiError as exc:
        if exc.status == 409:
            return "exists"
        raise
    return "created"


def provision(conn: HubSpotConnector, fields: Sequence[FieldDef], *, dry_run: bool = False) -> list[Change]:
    changes: list[Change] = []
    by_object: dict[str, list[FieldDef]] = {}
    for f in fields:
        if f.grain in GRAIN_OBJECTS:
            by_object.setdefault(GRAIN_OBJECTS[f.grain], []).append(f)
    for obj, obj_fields in by_object.items():
        groups = conn.client.json(f"property groups {obj}", lambda a, kw, obj=obj: a.groups.get_all(obj, **kw))
        if PROPERTY_GROUP not in {g["name"] for g in groups.get("results") or []}:
            body = {"name": PROPERTY_GROUP, "label": PROPERTY_GROUP_LABEL, "displayOrder": -1}
            if not dry_run:
                _create(conn, f"create group {obj}", lambda a, kw, obj=obj, body=body: a.groups.create(obj, body, **kw))
            changes.append(Change(obj, PROPERTY_GROUP, "create property group", not dry_run, PROPERTY_GROUP_LABEL))
        existing = _names(conn, obj)
        for f in obj_fields:
            if f.field in existing:
                continue
            body = property_body(f, PROPERTY_GROUP)
            if not dry_run:
                _create(
                    conn,
                    f"create property {obj}.{f.field}",
                    lambda a, kw, obj=obj, body=body: a.properties.create(obj, body, **kw),
                )
            changes.append(
                Change(obj, f.field, "create property", not dry_run, f"{f.label} ({body['numberDisplayHint']})")
            )
    user_fields = [f for f in fields if f.grain == "user"]
    if user_fields and conn.config.writeback.scorecard:
        changes += _provision_scorecard(conn, user_fields, dry_run)
    return changes


def _provision_scorecard(conn: HubSpotConnector, fields: list[FieldDef], dry_run: bool) -> list[Change]:
    if not _custom_objects_available(conn):
        return [Change(SCORECARD_NAME, "", "create custom object", False, NO_CUSTOM_OBJECTS)]
    schema = find_scorecard(conn)
    if schema is None:
        body = {
            "name": SCORECARD_NAME,
            "labels": {"singular": "Sales KPI Scorecard", "plural": "Sales KPI Scorecards"},
            "primaryDisplayProperty": SCORECARD_KEY,
            "requiredProperties": [SCORECARD_KEY],
            "searchableProperties": [SCORECARD_KEY, SCORECARD_PERIOD],
            "secondaryDisplayProperties": [SCORECARD_PERIOD],
            "associatedObjects": [],
            "properties": [
                {
                    "name": SCORECARD_KEY,
                    "label": "Scorecard key (owner:period)",
                    "type": "string",
                    "fieldType": "text",
                    "hasUniqueValue": True,
                },
                {"name": SCORECARD_PERIOD, "label": "Period", "type": "string", "fieldType": "text"},
                *[{k: v for k, v in property_body(f, "").items() if k != "groupName"} for f in fields],
            ],
        }
        if not dry_run:
            _create(conn, "create scorecard object", lambda a, kw: a.schemas.create(body, **kw))
        return [
            Change(SCORECARD_NAME, f.field, "create custom object property", not dry_run, f.label) for f in fields
        ] + [
            Change(
                SCORECARD_NAME,
                "",
                "create custom object",
                not dry_run,
                "Sales KPI Scorecard, one record per rep and period",
            )
        ]
    changes = []
    type_id = str(schema["objectTypeId"])
    existing = _names(conn, type_id)
    group = next((p.get("groupName") for p in schema.get("properties") or [] if p.get("groupName")), PROPERTY_GROUP)
    for f in fields:
        if f.field not in existing:
            body = property_body(f, group)
            if not dry_run:
                _create(
                    conn,
                    f"create property {SCORECARD_NAME}.{f.field}",
                    lambda a, kw, body=body: a.properties.create(type_id, body, **kw),
                )
            changes.append(Change(SCORECARD_NAME, f.field, "create property", not dry_run, f.label))
    return changes


def check(conn: HubSpotConnector) -> list[CheckResult]:
    """Scopes (one probe per object), mapped and write-back properties, custom objects."""
    results: list[CheckResult] = []
    missing_scope = []
    for spec in OBJECTS:
        if spec.options.get("kind") != "crm":
            continue
        try:
            conn.client.json(f"probe {spec.name}", lambda a, kw, n=spec.name: a.objects.get_page(n, limit=1, **kw))
        except AuthError as exc:
            missing_scope.append(str(exc))
    results.append(CheckResult("scopes", not missing_scope, "; ".join(missing_scope) or "every object is readable"))
    known: dict[str, set[str]] = {}
    by_mapper: dict[str, list[ObjectSpec]] = {}
    for spec in OBJECTS:
        if spec.options.get("kind") == "crm":
            by_mapper.setdefault(spec.options["mapper"], []).append(spec)
            try:
                known[spec.name] = _names(conn, spec.name)
            except AuthError:  # already reported under "scopes"
                known[spec.name] = set()
    absent: list[str] = []
    for mapper, specs in by_mapper.items():
        # one mapper serves all engagements: a rule's property need only exist on one of them (calls' disposition)
        mapped = conn.context().mapped_fields(mapper) - {p for s in specs for p in s.options["properties"]}
        have = set().union(*(known[s.name] for s in specs))
        label = specs[0].name if len(specs) == 1 else "/".join(s.name for s in specs)
        absent += [f"{label}.{name}" for name in sorted(mapped - have)]
    results.append(
        CheckResult(
            "mapped properties",
            not absent,
            f"not in the portal (not read; fix mapping: or create them): {', '.join(absent)}"
            if absent
            else "all found",
        )
    )
    targets = conn.config.writeback_targets()
    lacking = [
        f"{GRAIN_OBJECTS[t.grain]}.{t.field}"
        for t in targets
        if t.grain in GRAIN_OBJECTS and t.field not in known[GRAIN_OBJECTS[t.grain]]
    ]
    results.append(
        CheckResult(
            "write-back properties",
            not lacking,
            f"missing (run kpisync provision): {', '.join(lacking)}" if lacking else "all exist",
        )
    )
    if not _custom_objects_available(conn):
        results.append(CheckResult("custom objects", False, NO_CUSTOM_OBJECTS, "warning"))
    elif find_scorecard(conn) is None:
        results.append(
            CheckResult(
                "custom objects",
                False,
                "available, but the Sales KPI Scorecard is missing: run kpisync provision",
                "warning",
            )
        )
    else:
        results.append(CheckResult("custom objects", True, "available; Sales KPI Scorecard present"))
    return results
