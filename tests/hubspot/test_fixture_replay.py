"""HubSpot payloads from shared/fixtures/hubspot replayed through the parsing code."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from kpisync.config import Mapping
from kpisync.connectors.hubspot.mapping import Context, Stage, map_record, merged_ids
from kpisync.errors import SkippableRecord

FIXTURES = Path(__file__).resolve().parents[3] / "shared" / "fixtures" / "hubspot"  # shared/ beside the checkout
pytestmark = pytest.mark.skipif(not FIXTURES.exists(), reason="shared fixtures not mounted")


def load(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


@pytest.fixture
def ctx() -> Context:
    """A Context built from the pipeline fixtures, as the connector builds it from the API."""
    context = Context(Mapping())
    for pipeline in load("pipelines_deals.json")["results"]:
        context.deal_pipelines[pipeline["id"]] = pipeline["label"]
        for s in pipeline["stages"]:
            closed = s["metadata"]["isClosed"] == "true"
            context.deal_stages[s["id"]] = Stage(
                s["label"], closed, closed and float(s["metadata"]["probability"]) >= 1.0
            )
    for pipeline in load("pipelines_tickets.json")["results"]:
        for s in pipeline["stages"]:
            context.ticket_stages[s["id"]] = Stage(s["label"], s["metadata"].get("ticketState") == "CLOSED", None)
    context.synced_at = "2026-11-25T00:00:00Z"
    return context


def rows(mapper: str, fixture: str, ctx: Context, object_type: str) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for record in load(fixture)["results"]:
        for table, table_rows in map_record(mapper, record, ctx, object_type).items():
            out.setdefault(table, []).extend(table_rows)
    return out


def test_contacts_page(ctx: Context) -> None:
    out = rows("contact", "contacts_page.json", ctx, "contacts")
    maria = next(r for r in out["contacts"] if r["id"] == "1451")
    assert maria["lifecycle_stage"] == "sql" and maria["owner_id"] == "72011001" and maria["account_id"] == "9301"
    assert maria["created_at"] == "2025-01-06T08:14:22Z" and maria["name"] == "Maria Ruiz"
    stages = {(e["stage"], e["entered_at"]) for e in out["lifecycle_events"] if e["contact_id"] == "1451"}
    assert stages == {
        ("lead", "2025-01-06T08:14:22Z"),
        ("mql", "2025-01-09T11:40:00Z"),
        ("sql", "2025-01-21T14:05:37Z"),
    }
    assert json.loads(maria["raw"])["id"] == "1451"


def test_deals_with_pipeline_metadata(ctx: Context) -> None:
    out = rows("deal", "deals_page_with_history.json", ctx, "deals")
    won = next(r for r in out["opportunities"] if r["id"] == "18274650011")
    assert (won["is_closed"], won["is_won"], won["stage"], won["amount"]) == (1, 1, "Closed Won", 24000.0)
    assert won["closed_at"] == "2025-03-01T12:00:00Z" and won["deal_type"] == "new_business"
    history = {
        (h["stage"], h["entered_at"]) for h in out["opportunity_stage_history"] if h["opportunity_id"] == "18274650011"
    }
    assert ("Qualified To Buy", "2025-01-31T09:30:00Z") in history and ("Closed Won", "2025-03-01T12:00:00Z") in history
    open_deal = next(r for r in out["opportunities"] if r["id"] != "18274650011")
    assert open_deal["is_closed"] == 0 and open_deal["closed_at"] is None


def test_engagements(ctx: Context) -> None:
    calls = rows("engagement", "calls_page.json", ctx, "calls")["activities"]
    assert [(c["outcome"], c["duration_s"], c["direction"]) for c in calls] == [
        ("connected", 412, "outbound"),
        ("no_answer", 24, "outbound"),
    ]
    emails = rows("engagement", "emails_page.json", ctx, "emails")["activities"]
    assert {e["direction"] for e in emails} == {"outbound", "inbound"}
    meetings = rows("engagement", "meetings_page.json", ctx, "meetings")["activities"]
    assert [m["outcome"] for m in meetings] == ["completed", "no_show"] and meetings[0]["duration_s"] == 2700
    assert meetings[0]["opportunity_id"] == "18274650011" and meetings[0]["occurred_at"] == "2025-02-10T14:00:00Z"
    for fixture, kind in (("tasks_page.json", "task"), ("notes_page.json", "note")):
        object_type = fixture.split("_")[0]
        assert {a["type"] for a in rows("engagement", fixture, ctx, object_type)["activities"]} == {kind}


def test_tickets_owners_companies(ctx: Context) -> None:
    cases = rows("ticket", "tickets_page.json", ctx, "tickets")["cases"]
    assert cases[0]["is_closed"] == 1 and cases[0]["status"] == "Closed" and cases[1]["is_closed"] == 0
    owners = (
        rows("owner", "owners_page.json", ctx, "owners")["users"]
        + rows("owner", "owners_archived.json", ctx, "owners")["users"]
    )
    assert owners[0]["team"] == "SDR Team" and owners[0]["role"] == "sdr" and owners[0]["is_active"] == 1
    assert owners[-1]["is_active"] == 0
    companies = load("companies_page.json")["results"]
    merged = [i for c in companies for i in merged_ids(c)]
    assert merged, "the fixture's hs_merged_object_ids names ids merged away"
    assert all(r["id"] for r in rows("company", "companies_page.json", ctx, "companies")["accounts"])


def test_search_and_batch_payloads_parse(ctx: Context) -> None:
    found = rows("deal", "deals_search_page.json", ctx, "deals")["opportunities"]
    assert found and all(r["account_id"] is None for r in found)  # search carries no associations (§4)
    assert load("search_empty.json")["results"] == []


def test_a_broken_record_is_skippable(ctx: Context) -> None:
    record = load("calls_page.json")["results"][0]
    record["properties"]["hs_timestamp"] = "yesterday-ish"
    with pytest.raises(SkippableRecord, match="calls 60112233401"):
        map_record("engagement", record, ctx, "calls")


def test_every_fixture_body_parses_as_json_loads_does_keeping_each_result_text() -> None:
    from kpisync.connectors.hubspot.wire import loads_page

    bodies = [f for f in sorted(FIXTURES.glob("*.json")) if isinstance(load(f.name), dict)]
    assert len(bodies) > 30
    for file in bodies:
        text = file.read_bytes()
        data, raws = loads_page(text)
        assert data == json.loads(text), file.name
        assert [json.loads(r) for r in raws] == (data.get("results") or []), file.name
        if data.get("results"):
            assert all(r.startswith("{") and r.endswith("}") for r in raws), file.name  # exact slices


@pytest.mark.parametrize("cut", [1, 2, 3, 5, 10])
def test_a_cut_short_page_body_is_a_json_error(cut: int) -> None:
    from kpisync.connectors.hubspot.wire import loads_page

    text = (FIXTURES / "contacts_page.json").read_bytes()
    with pytest.raises(json.JSONDecodeError):
        loads_page(text[: len(text) * cut // 11])


@pytest.mark.parametrize(
    "body",
    [
        # as the sandbox spells non-ASCII (json.dumps' default): the record's text is not orjson's
        '{"results":[{"id":"1","properties":{"city":"Bogot\\u00e1"}},{"id":"2","properties":{"city":"Lima"}}]}',
        '{"results":[{"id":"1","properties":{"city":"Bogotá"}}]}',  # raw UTF-8, as orjson writes it
        '{ "results" : [ {"id": "1", "n": 1e3} ,\n {"id":"2","n":-0.50} ] , "paging": {"next": {"after": "2"}}}',
        '{"paging":{"results":[{"id":"1"}]},"results":[{"id":"1"},{"id":"3"}]}',  # nested "results" first
        '{"total":2,"results":[{"id":"1","big":123456789012345678901234567890}]}',  # orjson refuses: scanned
        '{"results":[{"id":"1","s":"a \\"results\\":[ b"},{"id":"2","e":"\\ud83d\\ude00 \\/"}]}',
        '{"results":[],"paging":null}',
        '{"results":"none"}',
        '{"status":"error"}',
    ],
)
def test_loads_page_keeps_the_exact_wire_text_of_each_result(body: str) -> None:
    from kpisync.connectors.hubspot.wire import loads_page

    for given in (body, body.encode()):
        data, raws = loads_page(given)
        assert data == json.loads(body)
        results = data.get("results")
        assert raws == ([_slice(body, r) for r in results] if isinstance(results, list) else [])


def _slice(body: str, record: dict[str, object]) -> str:
    """The text of `record` in `body`, by the standard library's scanner."""
    decoder = json.JSONDecoder()
    start = body.index("[", body.rindex('"results"')) + 1
    while True:
        while body[start] in " \n\t\r,":
            start += 1
        item, end = decoder.raw_decode(body, start)
        if item == record:
            return body[start:end]
        start = end
