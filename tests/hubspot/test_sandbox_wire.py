"""The sandbox speaks HubSpot's wire: shapes as in shared/fixtures/hubspot, the
quirks of hubspot-api.md, with the unmodified hubspot-api-client over HTTPS."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import hubspot
import pytest
import urllib3

from kpisync.connectors.sandbox.hubspot import OAUTH_CLIENT_ID, HubSpotSandbox

FIXTURES = Path(__file__).resolve().parents[3] / "shared" / "fixtures" / "hubspot"  # shared/ beside the checkout
pytestmark = pytest.mark.skipif(not FIXTURES.exists(), reason="shared fixtures not mounted")


def client(sb: HubSpotSandbox, token: str | None = None) -> hubspot.Client:
    return hubspot.Client.create(
        access_token=token or sb.info["access_token"], host=sb.url, ssl_ca_cert=sb.info["ca_bundle"]
    )


def raw(
    sb: HubSpotSandbox, method: str, path: str, body: Any = None, token: str | None = None
) -> tuple[int, dict[str, Any], Any]:
    pool = urllib3.PoolManager(ca_certs=sb.info["ca_bundle"])
    headers = {"Authorization": f"Bearer {token or sb.info['access_token']}", "Content-Type": "application/json"}
    r = pool.request(method, sb.url + path, body=json.dumps(body) if body is not None else None, headers=headers)
    return r.status, dict(r.headers), json.loads(r.data) if r.data else None


def shape(value: Any, prefix: str = "") -> set[str]:
    """Key paths of a JSON value; property maps collapse (their keys depend on the request)."""
    out: set[str] = set()
    if isinstance(value, dict):
        for key, item in value.items():
            path = f"{prefix}.{key}" if prefix else key
            out.add(path)
            if key in ("properties", "associations", "propertiesWithHistory", "metadata", "context"):
                continue
            out |= shape(item, path)
    elif isinstance(value, list) and value:
        for item in value:
            out |= shape(item, prefix + "[]")
    return out


def fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


OPTIONAL = {"results[].url", "results[].archivedAt", "paging", "paging.next", "paging.next.after", "paging.next.link"}


@pytest.mark.parametrize(
    ("fixture_name", "path"),
    [
        (
            "contacts_page.json",
            "/crm/v3/objects/contacts?limit=2&properties=email&propertiesWithHistory=lifecyclestage&associations=companies",
        ),
        (
            "deals_page_with_history.json",
            "/crm/v3/objects/deals?limit=2&propertiesWithHistory=dealstage&associations=contacts,companies",
        ),
        ("calls_page.json", "/crm/v3/objects/calls?limit=2&properties=hs_call_duration&associations=contacts"),
        ("tickets_page.json", "/crm/v3/objects/tickets?limit=2&properties=subject"),
        ("owners_page.json", "/crm/v3/owners/?limit=2"),
        ("pipelines_deals.json", "/crm/v3/pipelines/deals"),
        ("pipelines_tickets.json", "/crm/v3/pipelines/tickets"),
    ],
)
def test_response_key_structure_matches_fixtures(shared_sandbox: HubSpotSandbox, fixture_name: str, path: str) -> None:
    sandbox = shared_sandbox  # read-only: the module's shared portal
    status, headers, body = raw(sandbox, "GET", path)
    assert status == 200
    theirs, ours = shape(fixture(fixture_name)), shape(body)
    assert theirs - ours - OPTIONAL == set(), f"sandbox lacks {theirs - ours}"
    assert ours - theirs - OPTIONAL == set(), f"sandbox adds {ours - theirs}"
    assert headers["X-HubSpot-RateLimit-Max"] and headers["X-HubSpot-RateLimit-Daily-Remaining"]


def test_search_shape_cap_and_no_rate_headers(shared_sandbox: HubSpotSandbox) -> None:
    sandbox = shared_sandbox  # read-only: the module's shared portal
    body = {
        "filterGroups": [{"filters": [{"propertyName": "hs_lastmodifieddate", "operator": "GTE", "value": "0"}]}],
        "sorts": [{"propertyName": "hs_lastmodifieddate", "direction": "ASCENDING"}],
        "limit": 2,
        "properties": ["dealname"],
    }
    status, headers, found = raw(sandbox, "POST", "/crm/v3/objects/deals/search", body)
    assert status == 200 and found["total"] == 10 and found["paging"]["next"]["after"] == "2"
    assert shape(fixture("deals_search_page.json")) - shape(found) == set()
    assert not any(h.lower().startswith("x-hubspot-ratelimit") for h in headers)  # §4
    status, _, error = raw(sandbox, "POST", "/crm/v3/objects/deals/search", {**body, "after": "10000"})
    assert status == 400 and error["category"] == "VALIDATION_ERROR"
    status, _, _ = raw(sandbox, "POST", "/crm/v3/objects/deals/search", {**body, "limit": 201})
    assert status == 400


def test_real_client_models_and_repeated_parameters(shared_sandbox: HubSpotSandbox) -> None:
    sandbox = shared_sandbox  # read-only: the module's shared portal
    api = client(sandbox)
    page = api.crm.contacts.basic_api.get_page(
        limit=3, properties=["email", "lifecyclestage"], associations=["companies"], archived=False
    )
    assert len(page.results) == 3 and page.paging.next.after
    assert all(isinstance(v, str) or v is None for v in page.results[0].properties.values())
    everything = api.crm.deals.get_all(properties=["amount"])  # the naive path the benchmark compares with
    assert len(everything) == 10 and all(d.properties["amount"] for d in everything)
    calls = api.crm.objects.calls.basic_api.get_page(limit=100, properties=["hs_call_duration"])
    durations = [int(c.properties["hs_call_duration"]) for c in calls.results if c.properties["hs_call_duration"]]
    assert durations and all(d % 1000 == 0 for d in durations)  # milliseconds on the wire
    archived_owners = api.crm.owners.owners_api.get_page(archived=True).results
    assert [o.user_id for o in archived_owners] == [None] and archived_owners[0].user_id_including_inactive


def test_batch_update_200_207_400(sandbox: HubSpotSandbox) -> None:
    api = client(sandbox)
    from hubspot.crm.objects import BatchInputSimplePublicObjectBatchInput, SimplePublicObjectBatchInput

    def update(*inputs: tuple[str, dict[str, str]]) -> Any:
        body = BatchInputSimplePublicObjectBatchInput(
            inputs=[SimplePublicObjectBatchInput(id=i, properties=p) for i, p in inputs]
        )
        return api.crm.objects.batch_api.update("contacts", body)

    ok = update(("1001", {"nps_score": "9"}))
    assert ok.status == "COMPLETE" and not getattr(ok, "errors", None)
    partial = update(("1002", {"nps_score": "7"}), ("999999", {"nps_score": "1"}))
    assert partial.errors[0].category == "OBJECT_NOT_FOUND" and partial.errors[0].context["ids"] == ["999999"]
    assert sandbox.read("contacts", 1002)["nps_score"] == "7"
    with pytest.raises(hubspot.crm.objects.ApiException) as bad:
        update(("1003", {"nps_score": "7"}), ("1004", {"nps_score": "abc"}))
    assert bad.value.status == 400 and "INVALID_DOUBLE" in json.loads(bad.value.body)["message"]
    assert sandbox.read("contacts", 1003)["nps_score"] != "7"  # the whole batch was rejected


def test_merged_ids_resolve_to_the_survivor(sandbox: HubSpotSandbox) -> None:
    survivor = sandbox.merge("contacts", 1001, 1002)
    status, _, body = raw(sandbox, "GET", "/crm/v3/objects/contacts/1002?properties=hs_calculated_merged_vids")
    assert status == 200 and body["id"] == str(survivor)
    assert body["properties"]["hs_calculated_merged_vids"].startswith("1001:")
    status, _, read = raw(
        sandbox,
        "POST",
        "/crm/v3/objects/contacts/batch/read",
        {"inputs": [{"id": "1001"}, {"id": "424242"}], "properties": []},
    )
    assert (
        status == 207
        and read["results"][0]["id"] == str(survivor)
        and read["errors"][0]["context"]["ids"] == ["424242"]
    )


def test_rate_limit_enforced_with_real_429_bodies(sandbox: HubSpotSandbox) -> None:
    sandbox.limits.ten_secondly = 3
    statuses = [raw(sandbox, "GET", "/crm/v3/objects/contacts?limit=1")[0] for _ in range(3)]
    status, headers, body = raw(sandbox, "GET", "/crm/v3/objects/contacts?limit=1")
    assert statuses == [200, 200, 200] and status == 429
    assert body["policyName"] == "TEN_SECONDLY_ROLLING" and body["errorType"] == "RATE_LIMIT"
    assert headers["X-HubSpot-RateLimit-Remaining"] == "0"
    sandbox.limits.ten_secondly, sandbox.limits.search_per_s = None, 1
    search = {"filterGroups": [], "limit": 1}
    assert raw(sandbox, "POST", "/crm/v3/objects/deals/search", search)[0] == 200
    status, _, body = raw(sandbox, "POST", "/crm/v3/objects/deals/search", search)
    assert status == 429 and body == {
        **fixture("error_429_search_secondly.json"),
        "correlationId": body["correlationId"],
    }


def test_auth_private_app_and_oauth_refresh(sandbox: HubSpotSandbox) -> None:
    status, _, body = raw(sandbox, "GET", "/crm/v3/objects/contacts?limit=1", token="pat-na1-wrong")
    assert status == 401 and body["category"] == "INVALID_AUTHENTICATION"
    tokens = client(sandbox).oauth.tokens_api
    with pytest.raises(hubspot.oauth.ApiException) as dead:
        tokens.create(
            grant_type="refresh_token",
            client_id=OAUTH_CLIENT_ID,
            client_secret=sandbox.client_secret,
            refresh_token="nope",
        )
    assert json.loads(dead.value.body)["status"] == "BAD_REFRESH_TOKEN"
    fresh = tokens.create(
        grant_type="refresh_token",
        client_id=OAUTH_CLIENT_ID,
        client_secret=sandbox.client_secret,
        refresh_token=sandbox.refresh_token,
    )
    assert fresh.expires_in == 1800
    assert raw(sandbox, "GET", "/crm/v3/objects/contacts?limit=1", token=fresh.access_token)[0] == 200
    sandbox.expire_tokens()
    status, _, body = raw(sandbox, "GET", "/crm/v3/objects/contacts?limit=1", token=fresh.access_token)
    assert status == 401 and body["category"] == "EXPIRED_AUTHENTICATION" and "expired" in body["message"]


def test_properties_groups_and_schemas(sandbox: HubSpotSandbox) -> None:
    group = {"name": "sales_kpis", "label": "Sales KPIs", "displayOrder": -1}
    assert raw(sandbox, "POST", "/crm/v3/properties/deals/groups", group)[0] == 201
    status, _, body = raw(sandbox, "POST", "/crm/v3/properties/deals/groups", group)
    assert status == 409 and body["category"] == "OBJECT_ALREADY_EXISTS"
    prop = json.loads((FIXTURES / "request_property_create_number.json").read_text())
    prop = {k: v for k, v in prop.items() if not k.startswith("_")}
    prop["groupName"] = "sales_kpis"
    status, _, created = raw(sandbox, "POST", "/crm/v3/properties/deals", prop)
    assert status == 201 and shape(fixture("property_create_201.json")) <= shape(created) | {"hubspotDefined"}
    assert raw(sandbox, "POST", "/crm/v3/properties/deals", prop)[0] == 409
    schema = {
        "name": "sales_kpi_scorecard",
        "labels": {"singular": "S", "plural": "Ss"},
        "primaryDisplayProperty": "k",
        "properties": [{"name": "k", "label": "K", "type": "string", "fieldType": "text", "hasUniqueValue": True}],
    }
    status, _, made = raw(sandbox, "POST", "/crm-object-schemas/v3/schemas", schema)
    assert status == 201 and made["objectTypeId"].startswith("2-")
    upsert = {"inputs": [{"idProperty": "k", "id": "72000001:2026-11", "properties": {"hubspot_owner_id": "72000001"}}]}
    status, _, done = raw(sandbox, "POST", f"/crm/v3/objects/{made['objectTypeId']}/batch/upsert", upsert)
    assert status == 200 and done["results"][0]["new"] is True
    sandbox.custom_objects = False
    assert raw(sandbox, "GET", "/crm/v3/schemas")[0] == 403


def test_list_pages_kept_rendered_show_every_write(sandbox: HubSpotSandbox) -> None:
    """The portal keeps rendered records between requests (bench speed); any write must show at once."""
    path = "/crm/v3/objects/deals?limit=100&properties=dealname&associations=companies"
    _, _, before = raw(sandbox, "GET", path)
    _, _, again = raw(sandbox, "GET", path)
    assert again == before and len(before["results"]) == 10
    sandbox.change("deals", 18000000001, {"dealname": "Changed"})
    sandbox.archive("deals", 18000000002)
    new = sandbox.add("deals", {"dealname": "Brand new"}, {"companies": [5000000001]})
    _, _, after = raw(sandbox, "GET", path)
    names = {r["id"]: r["properties"]["dealname"] for r in after["results"]}
    assert names["18000000001"] == "Changed" and "18000000002" not in names and names[str(new)] == "Brand new"
    linked = next(r for r in after["results"] if r["id"] == str(new))["associations"]["companies"]["results"]
    assert {link["id"] for link in linked} == {"5000000001"}
