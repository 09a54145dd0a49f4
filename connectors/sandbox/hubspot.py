"""A HubSpot portal on 127.0.0.1 that the unmodified hubspot-api-client talks to.

    sandbox = start(size="small", data_dir=Path("data/sandbox"))
    client = hubspot.Client.create(access_token=sandbox.info["access_token"],
                                   host=sandbox.url, ssl_ca_cert=sandbox.info["ca_bundle"])

It serves the generated canonical org (`kpisync.generator.build_org`)
translated into HubSpot records (`hubspot_translate.py`), held in SQLite under
`data_dir` and reused across starts. HTTPS with a generated CA, so TLS
verification is exercised (hubspot-api.md §2.2: `ssl_ca_cert` reaches every
generated API's urllib3 pool).

Wire behaviour (auth, rate limits, errors) lives here; records and search in
`hubspot_portal.py`/`hubspot_search.py`; endpoints in `hubspot_routes.py`.
Tests steer it through hooks (`add`, `change`, `merge`, `archive`,
`expire_tokens`, `read`) and the shared fault injection (`.server.faults`).
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from kpisync.connectors.sandbox.hubspot_catalog import property_object
from kpisync.connectors.sandbox.hubspot_limits import RateLimits
from kpisync.connectors.sandbox.hubspot_portal import Portal, PortalError, error_body, ms_to_iso, now_ms
from kpisync.connectors.sandbox.hubspot_routes import CrmRoutes
from kpisync.connectors.sandbox.hubspot_setup import mapping_for, write_config
from kpisync.connectors.sandbox.hubspot_translate import translate
from kpisync.connectors.sandbox.server import Request, Response, Router, SandboxServer

OAUTH_CLIENT_ID = "kpisync-sandbox-client"
PORTAL_ID = 20260001


_LIMIT_MESSAGES = {"TEN_SECONDLY_ROLLING": "ten_secondly_rolling", "SECONDLY": "secondly", "DAILY": "daily"}


class HubSpotSandbox:
    def __init__(
        self, portal: Portal, data_dir: Path, *, custom_objects: bool = True, tls: bool = True, port: int = 0
    ) -> None:
        self.portal = portal
        self.data_dir = data_dir
        self.custom_objects = custom_objects
        self.limits = RateLimits()
        self.search_lag_s = 0.0
        self.missing_scopes: set[str] = set()  # object types answered with 403 MISSING_SCOPES
        self.token_ttl_s = 1800
        self.private_token = self._secret("hubspot.token", "pat-na1-sandbox-")
        self.refresh_token = self._secret("hubspot.refresh_token", "sandbox-refresh-")
        self.client_secret = self._secret("hubspot.client_secret", "sandbox-secret-")
        self._oauth_tokens: dict[str, float] = {}  # access token → expiry (epoch s)
        self._lock = threading.Lock()
        router = Router()
        self._routes(router)
        self.server = SandboxServer(router, port=port, tls_dir=data_dir / "tls" if tls else None)
        self.url = self.server.url
        self.config_path = data_dir / "hubspot.yaml"

    def _secret(self, name: str, prefix: str) -> str:
        file = self.data_dir / name
        if not file.exists():
            file.write_text(prefix + secrets.token_hex(16))
            file.chmod(0o600)
        return file.read_text().strip()

    @property
    def info(self) -> dict[str, Any]:
        out = {"crm": "hubspot", "url": self.url, "config": str(self.config_path), "access_token": self.private_token}
        if self.server.ca_bundle:
            out["ca_bundle"] = str(self.server.ca_bundle)
        return out

    def start(self) -> HubSpotSandbox:
        self.server.start()
        return self

    def stop(self) -> None:
        self.server.stop()
        self.portal.close()

    # ------------------------------------------------------------ test hooks

    def add(
        self, object_type: str, properties: dict[str, Any], associations: dict[str, list[int]] | None = None
    ) -> int:
        rid = self.portal.create(object_type, properties)
        with self.portal.lock:
            self.portal.associate((object_type, rid, to, t) for to, ids in (associations or {}).items() for t in ids)
        return rid

    def bulk_add(self, object_type: str, rows: list[dict[str, Any]], modified_ms: list[int]) -> list[int]:
        """Many records at given modified dates (page-edge and 10,000-cap tests)."""
        modified_prop = self.portal.modified_prop(object_type)
        with self.portal.batch():
            first = self.portal.next_id(object_type)
            ids = list(range(first, first + len(rows)))
            self.portal.set_meta(f"next_id:{object_type}", first + len(rows))
            batch = []
            for rid, props, stamp in zip(ids, rows, modified_ms, strict=True):
                full = {k: (None if v is None else str(v)) for k, v in props.items()}
                full.update({"hs_object_id": str(rid), modified_prop: ms_to_iso(stamp)})
                full.setdefault("createdate", ms_to_iso(stamp))
                batch.append((rid, full, stamp, stamp))
            self.portal.insert(object_type, batch)
        return ids

    def change(self, object_type: str, record_id: int, properties: dict[str, Any]) -> int:
        return self.portal.update(object_type, record_id, properties, "CRM_UI")

    def merge(self, object_type: str, primary: int, loser: int) -> int:
        return self.portal.merge(object_type, primary, loser)

    def archive(self, object_type: str, record_id: int) -> None:
        self.portal.archive(object_type, record_id)

    def read(self, object_type: str, record_id: int) -> dict[str, Any]:
        row = self.portal.winner(self.portal.resolve_type(object_type), record_id)
        return json.loads(row[1]) if row else {}

    def expire_tokens(self) -> None:
        """Every OAuth access token issued so far is now expired (401 EXPIRED_AUTHENTICATION)."""
        with self._lock:
            for token in self._oauth_tokens:
                self._oauth_tokens[token] = time.time() - 75

    def hs_id(self, canonical_id: str) -> tuple[str, int]:
        return self.portal.hs_id(canonical_id)

    # ------------------------------------------------------------ wire: auth and limits

    def _auth_error(self, req: Request) -> Response | None:
        header = req.headers.get("authorization", "")
        token = header[7:] if header.lower().startswith("bearer ") else ""
        if token and token == self.private_token:
            return None
        with self._lock:
            expiry = self._oauth_tokens.get(token)
        if expiry is None:
            return Response(
                401,
                error_body(
                    "Authentication credentials not found. This API supports OAuth 2.0 authentication and you can find more "
                    "details at https://developers.hubspot.com/docs/methods/auth/oauth-overview",
                    "INVALID_AUTHENTICATION",
                ),
            )
        if expiry <= time.time():
            ago = int(time.time() - expiry)
            return Response(
                401,
                error_body(
                    f"The OAuth token used to make this call expired {ago} second(s) ago.",
                    "EXPIRED_AUTHENTICATION",
                    context={"expire time": [ms_to_iso(int(expiry * 1000))]},
                ),
            )
        return None

    def _api(self, handler: Callable[[Request], Response], *, is_search: bool = False) -> Callable[[Request], Response]:
        def wrapped(req: Request) -> Response:
            denied = self._auth_error(req)
            if denied is not None:
                return denied
            kind = (req.match.groupdict().get("type") if req.match else None) or ""
            if kind in self.missing_scopes:
                return Response(
                    403,
                    error_body(
                        "This app hasn't been granted all required scopes to make this call.",
                        "MISSING_SCOPES",
                        errors=[
                            {
                                "message": "missing scope",
                                "context": {"requiredGranularScopes": [f"crm.objects.{kind}.read"]},
                            }
                        ],
                    ),
                )
            policy = self.limits.take(is_search)
            if policy is not None:
                body = {
                    "status": "error",
                    "message": f"You have reached your {_LIMIT_MESSAGES[policy]} limit.",
                    "errorType": "RATE_LIMIT",
                    "correlationId": "00000000-0000-4000-8000-000000000429",
                    "policyName": policy,
                }
                headers = {} if is_search else {**self.limits.headers(), "X-HubSpot-RateLimit-Remaining": "0"}
                return Response(429, body, headers)
            try:
                response = handler(req)
            except PortalError as exc:
                response = Response(exc.status, exc.body)
            if not is_search:  # search responses carry no rate-limit headers (§4)
                response.headers.update(self.limits.headers())
            return response

        return wrapped

    # ------------------------------------------------------------ OAuth and schemas

    def oauth_token(self, req: Request) -> Response:
        form = {k: v[0] for k, v in parse_qs(req.body.decode()).items()}
        if (
            form.get("grant_type") != "refresh_token"
            or form.get("client_id") != OAUTH_CLIENT_ID
            or form.get("client_secret") != self.client_secret
        ):
            return Response(
                400,
                {"status": "BAD_CLIENT_ID", "message": "missing or invalid client credentials", "correlationId": "0"},
            )
        if form.get("refresh_token") != self.refresh_token:
            return Response(
                400,
                {
                    "status": "BAD_REFRESH_TOKEN",
                    "message": "missing or unknown refresh token",
                    "correlationId": "0",
                    "error": "invalid_grant",
                    "error_description": "missing or unknown refresh token",
                },
            )
        token = "sandbox-oauth-" + secrets.token_hex(16)
        with self._lock:
            self._oauth_tokens[token] = time.time() + self.token_ttl_s
        return Response(
            200,
            {
                "token_type": "bearer",
                "refresh_token": self.refresh_token,
                "access_token": token,
                "expires_in": self.token_ttl_s,
            },
        )

    def token_info(self, req: Request) -> Response:
        token = req.match.group("token")  # type: ignore[union-attr]
        with self._lock:
            expiry = self._oauth_tokens.get(token)
        if expiry is None or expiry <= time.time():
            return Response(404, {"status": "error", "message": "Token not found", "category": "OBJECT_NOT_FOUND"})
        return Response(
            200,
            {
                "token": token,
                "hub_id": PORTAL_ID,
                "app_id": 1,
                "expires_in": int(expiry - time.time()),
                "token_type": "access",
                "scopes": sorted(SCOPES),
                "user": "sandbox@example.com",
            },
        )

    def list_schemas(self, req: Request) -> Response:
        if not self.custom_objects:
            return self._no_custom_objects()
        return Response(200, {"results": self.portal.meta("schemas", [])})

    def _no_custom_objects(self) -> Response:
        return Response(
            403,
            error_body(
                "This portal does not have access to custom objects (requires an Enterprise subscription).",
                "MISSING_SCOPES",
                errors=[
                    {
                        "message": "custom objects unavailable",
                        "context": {"requiredGranularScopes": ["crm.schemas.custom.write"]},
                    }
                ],
            ),
        )

    def create_schema(self, req: Request) -> Response:
        if not self.custom_objects:
            return self._no_custom_objects()
        body = req.json() or {}
        schemas = list(self.portal.meta("schemas", []))
        name = str(body.get("name", ""))
        if not name or any(s["name"] == name for s in schemas):
            return Response(
                409, error_body(f"An object type with name '{name}' already exists.", "OBJECT_ALREADY_EXISTS")
            )
        type_id = f"2-{100 + len(schemas) + 1}"
        group = f"{name}_information"
        stamp = ms_to_iso(now_ms())
        props = [
            property_object(
                p["name"], p.get("type", "string"), group, **{k: v for k, v in p.items() if k not in ("name", "type")}
            )
            for p in body.get("properties") or []
        ]
        props += [
            property_object(n, k, group, hubspot_defined=True)
            for n, k in (
                ("hs_object_id", "number"),
                ("hubspot_owner_id", "enumeration"),
                ("hs_createdate", "datetime"),
                ("hs_lastmodifieddate", "datetime"),
            )
        ]
        schema = {
            "id": str(len(schemas) + 1),
            "objectTypeId": type_id,
            "fullyQualifiedName": f"p{PORTAL_ID}_{name}",
            "name": name,
            "labels": body.get("labels", {}),
            "primaryDisplayProperty": body.get("primaryDisplayProperty"),
            "requiredProperties": body.get("requiredProperties", []),
            "searchableProperties": body.get("searchableProperties", []),
            "secondaryDisplayProperties": body.get("secondaryDisplayProperties", []),
            "properties": props,
            "associations": [],
            "metaType": "PORTAL_SPECIFIC",
            "createdAt": stamp,
            "updatedAt": stamp,
            "archived": False,
        }
        self.portal.set_meta("schemas", [*schemas, schema])
        self.portal.set_meta(f"properties:{type_id}", props)
        self.portal.set_meta(
            f"groups:{type_id}", [{"name": group, "label": "Information", "displayOrder": 0, "archived": False}]
        )
        return Response(201, schema)

    def _routes(self, router: Router) -> None:
        crm = CrmRoutes(self)
        obj = r"/crm/v3/objects/(?P<type>[A-Za-z0-9_\-]+)"
        for method, path, handler in (
            ("GET", obj, crm.list_objects),
            ("GET", obj + r"/(?P<id>[^/]+)", crm.get_object),
            ("PATCH", obj + r"/(?P<id>[^/]+)", crm.update_object),
            ("DELETE", obj + r"/(?P<id>[^/]+)", crm.archive_object),
            ("POST", obj + "/batch/read", crm.batch_read),
            ("POST", obj + "/batch/update", crm.batch_update),
            ("POST", obj + "/batch/upsert", crm.batch_upsert),
            ("POST", r"/crm/v4/associations/(?P<from>[\w\-]+)/(?P<to>[\w\-]+)/batch/read", crm.assoc_batch_read),
            ("GET", r"/crm/v3/properties/(?P<type>[\w\-]+)", crm.list_properties),
            ("POST", r"/crm/v3/properties/(?P<type>[\w\-]+)", crm.create_property),
            ("GET", r"/crm/v3/properties/(?P<type>[\w\-]+)/groups", crm.list_groups),
            ("POST", r"/crm/v3/properties/(?P<type>[\w\-]+)/groups", crm.create_group),
            ("GET", r"/crm/v3/properties/(?P<type>[\w\-]+)/(?P<name>[\w\-]+)", crm.get_property),
            ("GET", r"/crm/v3/pipelines/(?P<type>[\w\-]+)", crm.pipelines),
            ("GET", r"/crm/v3/owners/?", crm.owners),
            ("GET", r"/crm/v3/owners/(?P<id>\d+)", crm.owner),
            ("GET", r"/(?:crm-object-schemas|crm)/v3/schemas", self.list_schemas),
            ("POST", r"/(?:crm-object-schemas|crm)/v3/schemas", self.create_schema),
        ):
            router.add(method, path, self._api(handler))
        router.add("POST", obj + "/search", self._api(crm.search, is_search=True))
        router.add("POST", "/oauth/v1/token", self.oauth_token)
        router.add("GET", r"/oauth/v1/access-tokens/(?P<token>[^/]+)", self.token_info)


SCOPES = {
    "crm.objects.contacts.read",
    "crm.objects.contacts.write",
    "crm.objects.companies.read",
    "crm.objects.companies.write",
    "crm.objects.deals.read",
    "crm.objects.deals.write",
    "tickets",
    "crm.objects.owners.read",
    "crm.schemas.contacts.write",
    "crm.schemas.companies.write",
    "crm.schemas.deals.write",
    "crm.objects.custom.read",
    "crm.objects.custom.write",
    "crm.schemas.custom.write",
}


def start(
    size: str = "small",
    seed: int = 7,
    data_dir: Path | str = Path("data/hubspot-sandbox"),
    port: int = 0,
    now: Any = None,
    custom_objects: bool = True,
    *,
    canonical: Any = None,
    tls: bool = True,
) -> HubSpotSandbox:
    """Build (or reuse) the portal under `data_dir` and serve it; `canonical`: a Store to translate instead of the generator's org."""
    from kpisync.store import Store

    data_dir = Path(data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    label = f"{size}:{seed}" if canonical is None else f"store:{id(canonical)}"
    portal_file = data_dir / "hubspot_portal.db"
    canonical_file = data_dir / "hubspot_canonical.db"
    portal = Portal(portal_file)
    if portal.meta("built_from") != label or canonical is not None:
        portal.close()
        for suffix in ("", "-wal", "-shm"):
            Path(f"{portal_file}{suffix}").unlink(missing_ok=True)
        portal = Portal(portal_file)
        source = canonical
        if source is None:
            from kpisync.generator import build_org  # type: ignore[import-not-found]

            canonical_file.unlink(missing_ok=True)
            source = Store.open(canonical_file)
            build_org(source, size=size, seed=seed, now=now)
        translate(source.conn, portal)
        portal.set_meta("mapping", mapping_for(source.conn))
        portal.set_meta("built_from", label)
        if canonical is None:
            source.close()
    sandbox = HubSpotSandbox(portal, data_dir, custom_objects=custom_objects, tls=tls, port=port)
    write_config(sandbox, portal.meta("mapping", {}))
    return sandbox.start()
