"""CRM search for the sandbox portal (hubspot-api.md §4): filterGroups (OR of
AND-ed filters), one sort, numeric `after` offsets, limit ≤ 200, and the hard
10,000-result cap. Archived and merged-away records are never found; records
modified within the configured search lag are not found yet.

Filters on the modified date and `hs_object_id` (what an incremental sync
uses) become SQL, so windows over large portals stay fast; anything else is
evaluated in Python over the SQL-narrowed rows.
"""

from __future__ import annotations

import json
from typing import Any

from kpisync.connectors.sandbox.hubspot_portal import SEARCH_CAP, Portal, PortalError, error_body, iso_to_ms, now_ms

_OPERATORS = {
    "EQ",
    "NEQ",
    "LT",
    "LTE",
    "GT",
    "GTE",
    "BETWEEN",
    "IN",
    "NOT_IN",
    "HAS_PROPERTY",
    "NOT_HAS_PROPERTY",
    "CONTAINS_TOKEN",
    "NOT_CONTAINS_TOKEN",
}
_SQL_OPS = {"EQ": "=", "LT": "<", "LTE": "<=", "GT": ">", "GTE": ">="}


def _bad(message: str) -> PortalError:
    return PortalError(400, error_body(message, "VALIDATION_ERROR"))


def _column(portal: Portal, object_type: str, prop: str) -> str | None:
    if prop == portal.modified_prop(object_type):
        return "updated_ms"
    if prop == "hs_object_id":
        return "id"
    if prop in ("createdate", "hs_createdate"):
        return "created_ms"
    return None


def _number(portal: Portal, column: str, value: Any) -> int:
    try:
        return int(value) if column == "id" else iso_to_ms(str(value))
    except ValueError as exc:
        raise _bad(f"Invalid value '{value}' for a date/number filter") from exc


def _comparable(kind: str, value: Any) -> Any:
    if value is None:
        return None
    if kind in ("number",):
        try:
            return float(value)
        except ValueError:
            return None
    if kind in ("datetime", "date"):
        try:
            return iso_to_ms(str(value))
        except ValueError:
            return None
    return str(value).lower()


def _match(flt: dict[str, Any], props: dict[str, Any], kinds: dict[str, str]) -> bool:
    op = flt.get("operator", "EQ")
    name = flt.get("propertyName", "")
    kind = kinds.get(name, "string")
    have = _comparable(kind, props.get(name))
    if op == "HAS_PROPERTY":
        return have is not None
    if op == "NOT_HAS_PROPERTY":
        return have is None
    if op in ("IN", "NOT_IN"):
        values = {_comparable(kind, v) for v in flt.get("values") or []}
        return (have in values) == (op == "IN")
    want = _comparable(kind, flt.get("value"))
    if op == "CONTAINS_TOKEN":
        return have is not None and str(want).strip("*") in str(have)
    if op == "NOT_CONTAINS_TOKEN":
        return have is None or str(want).strip("*") not in str(have)
    if op == "NEQ":
        return have != want
    if have is None or want is None:
        return False
    if op == "BETWEEN":
        high = _comparable(kind, flt.get("highValue"))
        return high is not None and want <= have <= high
    return bool(
        {"EQ": have == want, "LT": have < want, "LTE": have <= want, "GT": have > want, "GTE": have >= want}[op]
    )


def search(portal: Portal, object_type: str, body: dict[str, Any], lag_s: float = 0.0) -> dict[str, Any]:
    groups = body.get("filterGroups") or []
    if len(groups) > 5 or sum(len(g.get("filters") or []) for g in groups) > 18:
        raise _bad("Too many filters: at most 5 filterGroups and 18 filters in total")
    limit = int(body.get("limit") or 10)
    if limit > 200:
        raise _bad("limit must be at most 200")
    after = int(body.get("after") or 0)
    if after >= SEARCH_CAP:
        # §4: the offset cannot pass 10,000 — HubSpot answers 400 for the page past the cap
        raise _bad("Search results are limited to 10,000 total results. Please refine your search criteria.")
    sorts = body.get("sorts") or []
    sort = sorts[0] if sorts else {"propertyName": "hs_object_id", "direction": "ASCENDING"}
    if isinstance(sort, str):
        sort = {"propertyName": sort.lstrip("-"), "direction": "DESCENDING" if sort.startswith("-") else "ASCENDING"}
    for group in groups:
        for flt in group.get("filters") or []:
            if flt.get("operator", "EQ") not in _OPERATORS:
                raise _bad(f"Unknown operator {flt.get('operator')}")

    where = ["type=?", "archived=0", "merged_into IS NULL"]
    params: list[Any] = [object_type]
    if lag_s > 0:
        where.append("updated_ms<=?")
        params.append(now_ms() - int(lag_s * 1000))
    python_filters: list[list[dict[str, Any]]] = []
    if len(groups) == 1:
        rest = []
        for flt in groups[0].get("filters") or []:
            column = _column(portal, object_type, flt.get("propertyName", ""))
            op = flt.get("operator", "EQ")
            if column and op in _SQL_OPS and flt.get("value") is not None:
                where.append(f"{column}{_SQL_OPS[op]}?")
                params.append(_number(portal, column, flt["value"]))
            elif column and op == "BETWEEN":
                where.append(f"{column} BETWEEN ? AND ?")
                params += [_number(portal, column, flt["value"]), _number(portal, column, flt["highValue"])]
            else:
                rest.append(flt)
        if rest:
            python_filters = [rest]
    elif groups:
        python_filters = [g.get("filters") or [] for g in groups]

    sort_column = _column(portal, object_type, sort.get("propertyName", ""))
    descending = str(sort.get("direction", "ASCENDING")).upper().startswith("DESC")
    sql_where = " AND ".join(where)
    with portal.lock:
        if not python_filters and sort_column:
            total = portal.conn.execute(f"SELECT count(*) FROM records WHERE {sql_where}", params).fetchone()[0]
            order = f"{sort_column} {'DESC' if descending else 'ASC'}, id {'DESC' if descending else 'ASC'}"
            rows = portal.conn.execute(
                f"SELECT id, props, created_ms, updated_ms FROM records WHERE {sql_where} ORDER BY {order} LIMIT ? OFFSET ?",
                (*params, limit, after),
            ).fetchall()
            page = [(r[0], json.loads(r[1]), r[2], r[3]) for r in rows]
        else:
            kinds = portal.property_types(object_type)
            found = []
            for rid, raw, created, updated in portal.conn.execute(
                f"SELECT id, props, created_ms, updated_ms FROM records WHERE {sql_where}", params
            ):
                props = json.loads(raw)
                if not python_filters or any(all(_match(f, props, kinds) for f in group) for group in python_filters):
                    found.append((rid, props, created, updated))
            name = sort.get("propertyName", "hs_object_id")
            kind = kinds.get(name, "string")
            if sort_column:
                index = {"id": 0, "created_ms": 2, "updated_ms": 3}[sort_column]
                found.sort(key=lambda r: (r[index], r[0]), reverse=descending)
            else:
                found.sort(
                    key=lambda r: (
                        _comparable(kind, r[1].get(name)) is None,
                        _comparable(kind, r[1].get(name)) or 0,
                        r[0],
                    ),
                    reverse=descending,
                )
            total = len(found)
            page = found[after : after + limit]
    out: dict[str, Any] = {"total": total, "results": page}
    if after + limit < total:
        out["paging"] = {
            "next": {
                "after": str(after + limit),
                "link": "https://api.hubapi.com/crm/v3/objects/search?after=" + str(after + limit),
            }
        }
    return out
