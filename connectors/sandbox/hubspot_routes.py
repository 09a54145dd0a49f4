"""The sandbox portal's CRM endpoints: what hubspot-api-client 12.x calls, in
HubSpot's wire shapes (shared/fixtures/hubspot/). Auth and rate limits wrap
these handlers in `hubspot.py`.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from kpisync.connectors.sandbox.hubspot_catalog import (
    ASSOCIATION_TYPE_IDS,
    DEFAULT_PROPERTIES,
    ENGAGEMENT_DEFAULTS,
    LIFECYCLE_STAGES,
    OBJECT_TYPES,
    property_object,
)
from kpisync.connectors.sandbox.hubspot_portal import Portal, PortalError, error_body, ms_to_iso, now_ms
from kpisync.connectors.sandbox.hubspot_search import search
from kpisync.connectors.sandbox.server import Request, Response

if TYPE_CHECKING:
    from kpisync.connectors.sandbox.hubspot import HubSpotSandbox

_NUMBER_TYPES = ("number",)


def _bad(message: str, category: str = "VALIDATION_ERROR", status: int = 400, **extra: Any) -> PortalError:
    return PortalError(status, error_body(message, category, **extra))


def _int_id(value: Any) -> int | None:
    try:
        return int(str(value))
    except ValueError:
        return None


class CrmRoutes:
    def __init__(self, sandbox: HubSpotSandbox) -> None:
        self.sb = sandbox
        self.portal: Portal = sandbox.portal
        self._wire: dict[tuple[Any, ...], dict[int, bytes]] = {}
        self._wire_generation = -1

    # ------------------------------------------------------------ record shape

    def _created_prop(self, object_type: str) -> str:
        return "createdate" if object_type in ("contacts", "companies", "deals", "tickets") else "hs_createdate"

    def _wanted(self, object_type: str, requested: list[str]) -> list[str]:
        if not requested:
            return list(DEFAULT_PROPERTIES.get(object_type, ENGAGEMENT_DEFAULTS))
        always = ("hs_object_id", self._created_prop(object_type), self.portal.modified_prop(object_type))
        return list(dict.fromkeys([*requested, *always]))

    def records(
        self,
        object_type: str,
        rows: list[tuple[Any, ...]],
        requested: list[str],
        history: list[str] = (),  # type: ignore[assignment]
        associations: list[str] = (),  # type: ignore[assignment]
        archived: bool = False,
    ) -> list[dict[str, Any]]:
        wanted = self._wanted(object_type, requested)
        ids = [r[0] for r in rows]
        hist = self.portal.history_of(object_type, ids, list(history))
        linked = {
            to: self.portal.associations_of(object_type, ids, self.portal.resolve_type(to)) for to in associations
        }
        out = []
        singular = OBJECT_TYPES.get(object_type, ("", "", object_type))[2]
        created, modified = self._created_prop(object_type), self.portal.modified_prop(object_type)
        for row in rows:
            rid, props = row[0], row[1] if isinstance(row[1], dict) else json.loads(row[1])
            rec: dict[str, Any] = {
                "id": str(rid),
                "properties": {name: props.get(name) for name in wanted},
                # the property values are the same instants already formatted (strftime is the hot spot)
                "createdAt": props.get(created) or ms_to_iso(row[2]),
                "updatedAt": props.get(modified) or ms_to_iso(row[3]),
                "archived": archived,
            }
            if archived and len(row) > 5:
                rec["archivedAt"] = ms_to_iso(row[5])
            if history:
                rec["propertiesWithHistory"] = {
                    name: [
                        {"value": v, "timestamp": ms_to_iso(ts), "sourceType": src}
                        for v, ts, src in hist.get((rid, name))
                        or ([(props.get(name), row[3], "CRM_UI")] if props.get(name) is not None else [])
                    ]
                    for name in history
                }
            assoc_out = {}
            for to, by_id in linked.items():
                targets = by_id.get(rid)
                if targets:
                    to_singular = OBJECT_TYPES.get(to, ("", "", to))[2]
                    label = f"{singular}_to_{to_singular}"
                    # a pair appears twice, primary and unlabeled (§3.1)
                    assoc_out[to] = {
                        "results": [
                            r
                            for t in targets
                            for r in ({"id": str(t), "type": label}, {"id": str(t), "type": f"{label}_unlabeled"})
                        ]
                    }
            if assoc_out:
                rec["associations"] = assoc_out
            out.append(rec)
        return out

    # ------------------------------------------------------------ objects

    def list_objects(self, req: Request) -> Response:
        object_type = self.portal.resolve_type(req.match.group("type"))  # type: ignore[union-attr]
        history = req.args("propertiesWithHistory")
        limit = max(1, min(int(req.arg("limit") or 10), 50 if history else 100))
        after = _int_id(req.arg("after") or 0)
        if after is None:
            raise _bad("Invalid 'after' value")
        archived = (req.arg("archived") or "false").lower() == "true"
        ids = self.portal.list_ids(object_type, after - 1, limit + 1, archived)
        view = (object_type, tuple(req.args("properties")), tuple(history), tuple(req.args("associations")), archived)
        results = b",".join(self._rendered(view, ids[:limit]))
        paging = b""
        if len(ids) > limit:
            nxt = str(ids[limit])
            link = f"https://api.hubapi.com/crm/v3/objects/{object_type}?after={nxt}"
            paging = b',"paging":' + json.dumps({"next": {"after": nxt, "link": link}}).encode()
        return Response(200, b'{"results":[' + results + b"]" + paging + b"}")

    def _rendered(self, view: tuple[Any, ...], ids: list[int]) -> list[bytes]:
        """Each record's JSON as `records()` renders it, kept per request shape until the portal changes: a
        real portal serves a page in parallel server-side; the sandbox must not be the bottleneck of every
        client it is measured against (bench/sync_hubspot.py). Same bytes as rendering afresh."""
        if self._wire_generation != self.portal.generation:
            self._wire.clear()
            self._wire_generation = self.portal.generation
        cache = self._wire.setdefault(view, {})
        missing = [i for i in ids if i not in cache]
        if missing:
            object_type, properties, history, associations, archived = view
            rows = self.portal.rows_by_id(object_type, missing)
            rendered = self.records(object_type, rows, list(properties), list(history), list(associations), archived)
            for row, rec in zip(rows, rendered, strict=True):
                cache[row[0]] = json.dumps(rec, separators=(",", ":")).encode()
        return [cache[i] for i in ids]

    def _lookup(self, object_type: str, key: str, id_property: str | None) -> tuple[Any, ...] | None:
        if id_property and id_property != "hs_object_id":
            with self.portal.lock:
                for row in self.portal.conn.execute(
                    "SELECT id, props, created_ms, updated_ms, archived, archived_ms, merged_into FROM records "
                    "WHERE type=? AND archived=0 AND merged_into IS NULL",
                    (object_type,),
                ):
                    if json.loads(row[1]).get(id_property) == key:
                        return row  # type: ignore[no-any-return]
            return None
        rid = _int_id(key)
        row = self.portal.winner(object_type, rid) if rid is not None else None
        return row if row is not None and not row[4] else None

    def get_object(self, req: Request) -> Response:
        object_type = self.portal.resolve_type(req.match.group("type"))  # type: ignore[union-attr]
        row = self._lookup(object_type, req.match.group("id"), req.arg("idProperty"))  # type: ignore[union-attr]
        if row is None:
            return Response(404, error_body("Object not found.", "OBJECT_NOT_FOUND"))
        rec = self.records(
            object_type, [row], req.args("properties"), req.args("propertiesWithHistory"), req.args("associations")
        )
        return Response(200, rec[0])

    def batch_read(self, req: Request) -> Response:
        object_type = self.portal.resolve_type(req.match.group("type"))  # type: ignore[union-attr]
        body = req.json() or {}
        inputs = body.get("inputs") or []
        if len(inputs) > 100:
            raise _bad("Batch size exceeds the limit of 100")
        found, missing = [], []
        for item in inputs:
            row = self._lookup(object_type, str(item.get("id")), body.get("idProperty"))
            if row is None:
                missing.append(str(item.get("id")))
            elif all(r[0] != row[0] for r in found):
                found.append(row)
        results = self.records(
            object_type, found, body.get("properties") or [], body.get("propertiesWithHistory") or []
        )
        return self._batch_response(object_type, results, missing, "get")

    def _batch_response(
        self, object_type: str, results: list[dict[str, Any]], missing: list[str], verb: str
    ) -> Response:
        stamp = ms_to_iso(now_ms())
        body: dict[str, Any] = {"status": "COMPLETE", "results": results, "startedAt": stamp, "completedAt": stamp}
        if not missing:
            return Response(200, body)
        kind = OBJECT_TYPES.get(object_type, ("", "", object_type))[2].upper()
        body["numErrors"] = 1
        body["errors"] = [
            {
                "status": "error",
                "category": "OBJECT_NOT_FOUND",
                "message": f"Could not {verb} some {kind} objects, they may be deleted or not exist. Check that ids are valid.",
                "context": {"ids": missing},
            }
        ]
        return Response(207, body)

    def _validate(self, object_type: str, properties: dict[str, Any]) -> dict[str, str | None]:
        """Whole-batch validation (§3.4): unknown, read-only or invalid values reject the batch."""
        kinds = {p["name"]: p for p in self.portal.properties(object_type)}
        clean: dict[str, str | None] = {}
        for name, value in properties.items():
            prop = kinds.get(name)
            if prop is None:
                detail = {
                    "isValid": False,
                    "message": f'Property "{name}" does not exist',
                    "error": "PROPERTY_DOESNT_EXIST",
                    "name": name,
                }
                raise _bad(f"Property values were not valid: {json.dumps([detail])}")
            if prop["modificationMetadata"].get("readOnlyValue"):
                detail = {
                    "isValid": False,
                    "message": f"{name} is a read only property",
                    "error": "READ_ONLY_VALUE",
                    "name": name,
                }
                raise _bad(f"Property values were not valid: {json.dumps([detail])}")
            text = None if value is None or value == "" else str(value)
            if text is not None and prop["type"] in _NUMBER_TYPES:
                try:
                    float(text)
                except ValueError:
                    detail = {
                        "isValid": False,
                        "message": f"{text} was not a valid number.",
                        "error": "INVALID_DOUBLE",
                        "name": name,
                    }
                    raise _bad(f"Property values were not valid: {json.dumps([detail])}") from None
            clean[name] = text
        return clean

    def batch_update(self, req: Request) -> Response:
        object_type = self.portal.resolve_type(req.match.group("type"))  # type: ignore[union-attr]
        inputs = (req.json() or {}).get("inputs") or []
        if len(inputs) > 100:
            raise _bad("Batch size exceeds the limit of 100")
        checked = [(item, self._validate(object_type, item.get("properties") or {})) for item in inputs]
        results, missing = [], []
        for item, props in checked:
            row = self._lookup(object_type, str(item.get("id")), item.get("idProperty"))
            if row is None:
                missing.append(str(item.get("id")))
                continue
            stamp = self.portal.update(object_type, row[0], props, "INTEGRATION")
            modified = self.portal.modified_prop(object_type)
            results.append(
                {
                    "id": str(row[0]),
                    "properties": {**props, "hs_object_id": str(row[0]), modified: ms_to_iso(stamp)},
                    "createdAt": ms_to_iso(row[2]),
                    "updatedAt": ms_to_iso(stamp),
                    "archived": False,
                }
            )
        return self._batch_response(object_type, results, missing, "update")

    def batch_upsert(self, req: Request) -> Response:
        object_type = self.portal.resolve_type(req.match.group("type"))  # type: ignore[union-attr]
        inputs = (req.json() or {}).get("inputs") or []
        if len(inputs) > 100:
            raise _bad("Batch size exceeds the limit of 100")
        unique = {p["name"] for p in self.portal.properties(object_type) if p.get("hasUniqueValue")}
        checked = [(item, self._validate(object_type, item.get("properties") or {})) for item in inputs]
        results = []
        for item, props in checked:
            id_property = item.get("idProperty")
            if id_property not in unique:
                raise _bad(f"{id_property} is not a unique property of {object_type}")
            row = self._lookup(object_type, str(item.get("id")), id_property)
            if row is None:
                rid, new = self.portal.create(object_type, {**props, id_property: str(item["id"])}), True
            else:
                rid, new = row[0], False
                self.portal.update(object_type, rid, props, "INTEGRATION")
            rec = self.records(object_type, [self.portal.winner(object_type, rid)], [*props, id_property])[0]  # type: ignore[list-item]
            rec["new"] = new
            results.append(rec)
        return self._batch_response(object_type, results, [], "upsert")

    def update_object(self, req: Request) -> Response:
        object_type = self.portal.resolve_type(req.match.group("type"))  # type: ignore[union-attr]
        row = self._lookup(object_type, req.match.group("id"), req.arg("idProperty"))  # type: ignore[union-attr]
        if row is None:
            return Response(404, error_body("Object not found.", "OBJECT_NOT_FOUND"))
        props = self._validate(object_type, (req.json() or {}).get("properties") or {})
        self.portal.update(object_type, row[0], props, "INTEGRATION")
        return Response(200, self.records(object_type, [self.portal.winner(object_type, row[0])], list(props))[0])  # type: ignore[list-item]

    def archive_object(self, req: Request) -> Response:
        object_type = self.portal.resolve_type(req.match.group("type"))  # type: ignore[union-attr]
        row = self._lookup(object_type, req.match.group("id"), None)  # type: ignore[union-attr]
        if row is not None:
            self.portal.archive(object_type, row[0])
        return Response(204)  # also for unknown ids (§3.2)

    def search(self, req: Request) -> Response:
        object_type = self.portal.resolve_type(req.match.group("type"))  # type: ignore[union-attr]
        body = req.json() or {}
        found = search(self.portal, object_type, body, self.sb.search_lag_s)
        results = self.records(object_type, found["results"], body.get("properties") or [])
        for rec in results:
            rec["url"] = (
                f"https://app.hubspot.com/contacts/0/record/{OBJECT_TYPES.get(object_type, (object_type,))[0]}/{rec['id']}"
            )
        found["results"] = results
        return Response(200, found)

    # ------------------------------------------------------------ associations v4

    def assoc_batch_read(self, req: Request) -> Response:
        src = self.portal.resolve_type(req.match.group("from"))  # type: ignore[union-attr]
        dst = self.portal.resolve_type(req.match.group("to"))  # type: ignore[union-attr]
        inputs = (req.json() or {}).get("inputs") or []
        if len(inputs) > 1000:
            raise _bad("Batch size exceeds the limit of 1000")
        ids = [i for i in (_int_id(item.get("id")) for item in inputs) if i is not None]
        linked = self.portal.associations_of(src, ids, dst)
        type_id = ASSOCIATION_TYPE_IDS.get((src, dst), 0)
        results, missing = [], []
        for rid in ids:
            if rid not in linked:
                missing.append(str(rid))
                continue
            results.append(
                {
                    "from": {"id": str(rid)},
                    "to": [
                        {
                            "toObjectId": t,
                            "associationTypes": [{"category": "HUBSPOT_DEFINED", "typeId": type_id, "label": None}],
                        }
                        for t in linked[rid]
                    ],
                }
            )
        resp = self._batch_response(src, results, [], "read")
        if missing:  # records without associations are reported as errors, as HubSpot does (§9)
            resp.status = 207
            resp.body["numErrors"] = 1
            resp.body["errors"] = [
                {
                    "status": "error",
                    "category": "OBJECT_NOT_FOUND",
                    "message": "No associations found",
                    "context": {"fromObjectId": missing},
                }
            ]
        return resp

    # ------------------------------------------------------------ properties, groups, pipelines, owners

    def list_properties(self, req: Request) -> Response:
        object_type = self.portal.resolve_type(req.match.group("type"))  # type: ignore[union-attr]
        return Response(200, {"results": self.portal.properties(object_type)})

    def get_property(self, req: Request) -> Response:
        object_type = self.portal.resolve_type(req.match.group("type"))  # type: ignore[union-attr]
        for prop in self.portal.properties(object_type):
            if prop["name"] == req.match.group("name"):  # type: ignore[union-attr]
                return Response(200, prop)
        return Response(404, error_body("Property not found.", "OBJECT_NOT_FOUND"))

    def create_property(self, req: Request) -> Response:
        object_type = self.portal.resolve_type(req.match.group("type"))  # type: ignore[union-attr]
        body = req.json() or {}
        missing = [k for k in ("name", "label", "type", "fieldType", "groupName") if not body.get(k)]
        if missing:
            raise _bad(f"Missing required fields: {', '.join(missing)}")
        if body["groupName"] not in {g["name"] for g in self._groups(object_type)}:
            raise _bad(f"Property group {body['groupName']} does not exist")
        extra = {k: v for k, v in body.items() if k not in ("name", "type", "groupName")}
        prop = property_object(body["name"], body["type"], body["groupName"], **extra)
        prop["createdAt"] = prop["updatedAt"] = ms_to_iso(now_ms())
        self.portal.add_property(object_type, prop)
        return Response(201, prop)

    def _groups(self, object_type: str) -> list[dict[str, Any]]:
        default = {
            "contacts": "contactinformation",
            "companies": "companyinformation",
            "deals": "dealinformation",
            "tickets": "ticketinformation",
        }
        name = default.get(object_type, "engagementinformation")
        return list(
            self.portal.meta(
                f"groups:{object_type}", [{"name": name, "label": name.title(), "displayOrder": 0, "archived": False}]
            )
        )

    def list_groups(self, req: Request) -> Response:
        return Response(200, {"results": self._groups(self.portal.resolve_type(req.match.group("type")))})  # type: ignore[union-attr]

    def create_group(self, req: Request) -> Response:
        object_type = self.portal.resolve_type(req.match.group("type"))  # type: ignore[union-attr]
        body = req.json() or {}
        groups = self._groups(object_type)
        if any(g["name"] == body.get("name") for g in groups):
            raise _bad(f"Property group named '{body.get('name')}' already exists.", "OBJECT_ALREADY_EXISTS", 409)
        group = {
            "name": body.get("name"),
            "label": body.get("label"),
            "displayOrder": body.get("displayOrder", -1),
            "archived": False,
        }
        self.portal.set_meta(f"groups:{object_type}", [*groups, group])
        return Response(201, group)

    def pipelines(self, req: Request) -> Response:
        name = req.match.group("type")  # type: ignore[union-attr]
        if name in ("contacts", "0-1"):
            stages = [
                {
                    "label": s.title(),
                    "displayOrder": i,
                    "metadata": {},
                    "id": s,
                    "createdAt": "1970-01-01T00:00:00Z",
                    "updatedAt": "1970-01-01T00:00:00Z",
                    "archived": False,
                }
                for i, s in enumerate(LIFECYCLE_STAGES)
            ]
            pipes = [
                {
                    "label": "Lifecycle Stage Pipeline",
                    "displayOrder": 0,
                    "id": "contacts-lifecycle-pipeline",
                    "stages": stages,
                    "createdAt": "1970-01-01T00:00:00Z",
                    "updatedAt": "1970-01-01T00:00:00Z",
                    "archived": False,
                }
            ]
        else:
            pipes = self.portal.meta(f"pipelines:{self.portal.resolve_type(name)}", [])
        return Response(200, {"results": pipes})

    def owners(self, req: Request) -> Response:
        archived = (req.arg("archived") or "false").lower() == "true"
        limit = max(1, min(int(req.arg("limit") or 100), 500))
        after = _int_id(req.arg("after") or 0) or 0
        email = req.arg("email")
        pool = [
            o
            for o in self.portal.meta("owners", [])
            if o["archived"] == archived and (not email or o["email"] == email)
        ]
        pool = [o for o in sorted(pool, key=lambda o: int(o["id"])) if int(o["id"]) >= after]
        body: dict[str, Any] = {"results": pool[:limit]}
        if len(pool) > limit:
            nxt = pool[limit]["id"]
            body["paging"] = {"next": {"after": nxt, "link": f"https://api.hubapi.com/crm/v3/owners/?after={nxt}"}}
        return Response(200, body)

    def owner(self, req: Request) -> Response:
        for o in self.portal.meta("owners", []):
            if o["id"] == req.match.group("id"):  # type: ignore[union-attr]
                return Response(200, o)
        return Response(404, error_body("Owner not found.", "OBJECT_NOT_FOUND"))
