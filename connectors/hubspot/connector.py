"""HubSpotConnector: the `Connector` of connectors/base.py for HubSpot.

    connector = HubSpotConnector(load_config("hubspot.yaml"))
    for spec in connector.objects():
        for page in connector.pull(spec, cursor=None):
            ...

Reading is in `pull.py`, mapping in `mapping.py`, writing in `writeback.py`,
setup in `provision.py`; HTTP, pacing and retries in `client.py`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from kpisync.config import Config, HubSpotAuth
from kpisync.connectors.base import ApiUsage, Change, CheckResult, FieldDef, FieldWrite, ObjectSpec, Page, WriteResult
from kpisync.connectors.hubspot import provision as provisioning
from kpisync.connectors.hubspot import writeback
from kpisync.connectors.hubspot.client import ApiError, HubSpotClient
from kpisync.connectors.hubspot.mapping import Context, Stage
from kpisync.connectors.hubspot.objects import GRAIN_OBJECTS, OBJECTS, SCORECARD_NAME
from kpisync.connectors.hubspot.pull import Puller
from kpisync.errors import ConfigError, RunError

log = logging.getLogger("kpisync.hubspot")


class HubSpotConnector:
    crm = "hubspot"

    def __init__(self, config: Config) -> None:
        if not isinstance(config.auth, HubSpotAuth):
            raise ConfigError(config.source_file or "config", ["auth: HubSpot credentials expected (crm: hubspot)"])
        self.config = config
        self.client = HubSpotClient(config.connection, config.auth)
        self.echo = writeback.EchoLedger(Path(f"{config.store_path}.hubspot-echo.json"))
        self._context: Context | None = None
        self._scorecard: dict[str, Any] | bool | None = False  # False: not looked up yet
        self._property_names: dict[str, set[str]] = {}
        self._warned: set[tuple[str, frozenset[str]]] = set()

    # ------------------------------------------------------------ reading

    def objects(self) -> Sequence[ObjectSpec]:
        return OBJECTS

    def context(self) -> Context:
        """Pipelines (stage labels, closed/won flags), read once per connector (§8.3, §8.5)."""
        if self._context is None:
            ctx = Context(self.config.mapping)
            for pipeline in self._pipelines("deals"):
                ctx.deal_pipelines[pipeline["id"]] = pipeline["label"]
                for stage in pipeline.get("stages") or []:
                    meta = stage.get("metadata") or {}
                    closed = meta.get("isClosed")
                    prob = meta.get("probability")
                    ctx.deal_stages[stage["id"]] = Stage(
                        stage["label"],
                        None if closed is None else closed == "true",
                        None if closed is None or prob is None else closed == "true" and float(prob) >= 1.0,
                    )
            for pipeline in self._pipelines("tickets"):
                for stage in pipeline.get("stages") or []:
                    meta = stage.get("metadata") or {}
                    state = meta.get("isClosed") or meta.get("ticketState")
                    ctx.ticket_stages[stage["id"]] = Stage(
                        stage["label"], None if state is None else state in ("true", "CLOSED"), None
                    )
            lifecycle = [s["id"] for p in self._pipelines("contacts") for s in p.get("stages") or []]
            if lifecycle:
                ctx.lifecycle_stage_ids = lifecycle
            self._context = ctx
        return self._context

    def _pipelines(self, object_type: str) -> list[dict[str, Any]]:
        try:
            data = self.client.json(f"pipelines {object_type}", lambda a, kw: a.pipelines.get_all(object_type, **kw))
        except ApiError as exc:
            if exc.status in (400, 404):
                return []
            raise
        return list(data.get("results") or [])

    def properties_for(self, spec: ObjectSpec, *, refresh: bool = False) -> list[str]:
        """The `properties=` of a pull: the row's own (HubSpot-defined), the mapped ones the portal has, and
        the date-entered property of every lifecycle/deal stage. A mapped property the portal lacks never
        reaches a request (as Salesforce filters by describe); `doctor` names it."""
        ctx = self.context()
        names = list(spec.options.get("properties") or ())
        mapped = ctx.mapped_fields(spec.options.get("mapper")) - set(names)
        if mapped:
            missing = mapped - self.property_names(spec.name, refresh=refresh)
            if missing and (spec.name, frozenset(missing)) not in self._warned:
                self._warned.add((spec.name, frozenset(missing)))
                # info, not warning: an engagement rule's property lives on one engagement type only
                log.info(
                    "HubSpot %s: mapped properties not in the portal, not requested: %s (see kpisync doctor)",
                    spec.name,
                    ", ".join(sorted(missing)),
                )
            names += sorted(mapped - missing)
        if spec.name == "contacts":
            names += [
                f"{prefix}{s}"
                for s in ctx.lifecycle_stage_ids
                for prefix in ("hs_v2_date_entered_", "hs_date_entered_")
            ]
        if spec.name == "deals":
            names += [f"hs_v2_date_entered_{s}" for s in ctx.deal_stages]
        return list(dict.fromkeys(names))

    def property_names(self, object_type: str, *, refresh: bool = False) -> set[str]:
        """The portal's property names of an object (GET /crm/v3/properties), read once per connector and
        again on `refresh` (a full sync: the nightly reconcile sees properties created since)."""
        if refresh or object_type not in self._property_names:
            data = self.client.json(f"properties {object_type}", lambda a, kw: a.properties.get_all(object_type, **kw))
            self._property_names[object_type] = {p["name"] for p in data.get("results") or []}
        return self._property_names[object_type]

    def attach_associations(self, object_type: str, records: list[dict[str, Any]], to_types: list[str]) -> None:
        """Search results carry no associations (§4): one v4 batch read per type and page (§9)."""
        ids = [{"id": str(r["id"])} for r in records]
        by_id = {str(r["id"]): r for r in records}
        for to in to_types:
            data = self.client.json(
                f"associations {object_type}→{to}",
                lambda a, kw, to=to: a.associations.get_page(object_type, to, {"inputs": ids}, **kw),
            )
            for item in data.get("results") or []:
                record = by_id.get(str((item.get("from") or {}).get("id")))
                if record is not None:
                    links = [{"id": str(t["toObjectId"])} for t in item.get("to") or []]
                    record.setdefault("associations", {})[to] = {"results": links}

    def pull(self, spec: ObjectSpec, cursor: str | None, *, full: bool = False) -> Iterator[Page]:
        puller = Puller(self, spec)
        kind = spec.options.get("kind")
        if kind == "owners":
            return puller.owners(cursor, full=full)
        if kind == "archived":
            return puller.archived(cursor, full=full)
        if full or cursor is None:
            return puller.full()
        return puller.incremental(cursor)

    # ------------------------------------------------------------ writing

    def scorecard(self) -> dict[str, Any] | None:
        """The scorecard custom object's schema; None when absent or the portal has no custom objects."""
        if self._scorecard is False:
            self._scorecard = provisioning.find_scorecard(self)
        return self._scorecard  # type: ignore[return-value]

    def locate(self, grain: str, key: str, source_object: str | None, period: str) -> tuple[str, str] | None:
        if grain in GRAIN_OBJECTS:
            return GRAIN_OBJECTS[grain], key
        if grain == "user" and self.config.writeback.scorecard:
            schema = self.scorecard()
            if schema is not None:
                return str(schema["objectTypeId"]), writeback.scorecard_key(key, period)
        return None

    def push(self, writes: Sequence[FieldWrite]) -> list[WriteResult]:
        return writeback.push(self, writes)

    def provision(self, fields: Sequence[FieldDef], *, dry_run: bool = False) -> list[Change]:
        changes = provisioning.provision(self, fields, dry_run=dry_run)
        self._scorecard = False
        self._property_names.clear()
        return changes

    # ------------------------------------------------------------ doctor

    def check(self) -> list[CheckResult]:
        results: list[CheckResult] = []
        try:
            self.client.json("owners", lambda a, kw: a.owners.get_page(limit=1, **kw))
            results.append(CheckResult("credentials", True, f"token accepted by {self.client.host}"))
        except RunError as exc:
            return [CheckResult("credentials", False, str(exc))]
        results += provisioning.check(self)
        usage = self.usage()
        if usage.remaining is not None:
            ok = usage.remaining >= self.config.connection.min_api_calls_left
            results.append(
                CheckResult(
                    "daily API calls",
                    ok,
                    f"{usage.remaining} of {usage.limit} left today",
                    "error" if not ok else "warning",
                )
            )
        else:
            results.append(CheckResult("daily API calls", True, "no daily quota reported (OAuth app)", "warning"))
        return results

    def usage(self) -> ApiUsage:
        return ApiUsage(self.client.calls, self.client.daily_remaining, self.client.daily_limit)

    def close(self) -> None:
        self.echo.save()


__all__ = ["SCORECARD_NAME", "HubSpotConnector"]
