"""Replays of the recorded/documented Salesforce payloads (shared/fixtures/salesforce) through the parsing code."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

import pytest
from sfkit import FIXTURES
from simple_salesforce.exceptions import SalesforceGeneralError, SalesforceRefusedRequest

from kpisync.config import Config, Mapping, StageRule
from kpisync.connectors.base import FieldWrite
from kpisync.connectors.salesforce import mapping, writeback
from kpisync.connectors.salesforce.client import SalesforceClient
from kpisync.connectors.salesforce.connector import SalesforceConnector, _from_csv
from kpisync.errors import LimitReached, RetriableError

pytestmark = pytest.mark.skipif(not FIXTURES.is_dir(), reason="shared/fixtures/salesforce not present")


def records(name: str) -> list[dict[str, Any]]:
    return json.loads((FIXTURES / name).read_text())["records"]


def run(mapper: str, name: str, m: Mapping | None = None) -> dict[str, list[dict[str, Any]]]:
    ctx = mapping.Context(m or Mapping(), "2026-01-01T00:00:00Z")
    out: dict[str, list[dict[str, Any]]] = {}
    for record in records(name):
        for table, rows in mapping.MAPPERS[mapper](record, ctx).items():
            out.setdefault(table, []).extend(rows)
    return out


def test_users_with_default_role_mapping() -> None:
    users = {u["name"]: u for u in run("user", "query_user_200.json")["users"]}
    ava = users["Ava Lindqvist"]
    assert (ava["role"], ava["team"], ava["region"], ava["is_active"]) == ("ae", "Sales", "EMEA", 1)
    assert ava["manager_id"] == "0058d000004AbCfAAK"
    assert users["Ben Okafor"]["role"] == "sdr"
    assert users["Chloe Martins"]["role"] == "manager"
    assert any(u["is_active"] == 0 for u in users.values())


def test_leads_from_query_all_with_conversion_queue_owner_and_deletion() -> None:
    m = Mapping(sql=StageRule(lead_statuses=["Working - Contacted"]))
    out = run("lead", "queryall_lead_with_deleted_200.json", m)
    rows = {r["id"]: r for r in out["contacts"]}
    converted = rows["00Q8d00000Lm3CcEAJ"]
    assert converted["kind"] == "lead" and converted["converted_contact_id"] == "0038d00000Np4DeAAJ"
    assert converted["converted_at"] == "2025-02-03T00:00:00Z" and converted["lifecycle_stage"] == "opportunity"
    assert converted["channel"] == "inbound" and converted["created_at"] == "2025-01-21T09:14:03Z"
    assert rows["00Q8d00000Lm3CdEAJ"]["owner_id"] == "00G8d000002QuEaEAK"  # a queue, kept as is
    assert rows["00Q8d00000Lm3CdEAJ"]["lifecycle_stage"] == "sql"
    deleted = rows["00Q8d00000Lm3CeEAJ"]  # from the Recycle Bin: stored flagged, with its data
    assert (deleted["is_deleted"], deleted["email"], deleted["lead_status"]) == (1, None, "Open - Not Contacted")
    assert not any(e["contact_id"] == "00Q8d00000Lm3CeEAJ" for e in out["lifecycle_events"])
    events = {(e["contact_id"], e["stage"], e["source"]) for e in out["lifecycle_events"]}
    assert ("00Q8d00000Lm3CcEAJ", "lead", "lead_created") in events
    assert ("00Q8d00000Lm3CcEAJ", "opportunity", "converted") in events


def test_lead_history_status_rows_become_mql_sql_events() -> None:
    m = Mapping(mql=StageRule(lead_statuses=["Working - Contacted"]))
    events = run("lead_history", "query_leadhistory_200.json", m)["lifecycle_events"]
    assert {(e["stage"], e["entered_at"], e["source"]) for e in events} == {
        ("mql", "2025-01-22T11:03:56Z", "lead_history"),
        ("sql", "2025-02-03T08:30:01Z", "converted"),
    }


def test_tasks_and_events_become_activities() -> None:
    tasks = {a["id"]: a for a in run("task", "query_task_activities_200.json")["activities"]}
    call = tasks["00T8d00000Rs5EeEAJ"]
    assert (call["type"], call["direction"], call["duration_s"], call["outcome"]) == ("call", "outbound", 754, "booked")
    assert call["opportunity_id"] == "0068d00000Fh2BcAAJ" and call["occurred_at"] == "2025-04-08T13:31:07Z"
    email = tasks["00T8d00000Rs5EfEAJ"]
    assert (email["type"], email["direction"], email["outcome"]) == ("email", "outbound", "completed")
    todo = tasks["00T8d00000Rs5EgEAJ"]
    assert (todo["type"], todo["outcome"], todo["occurred_at"]) == ("task", None, "2025-04-11T07:58:40Z")
    events = run("event", "query_event_activities_200.json")["activities"]
    assert [e["id"] for e in events] == ["00U8d00000Tu6FfEAJ"]  # the invitee copy (IsChild) is not counted twice
    assert (events[0]["type"], events[0]["duration_s"]) == ("meeting", 3600)


def test_opportunity_pages_history_and_cases() -> None:
    opps = {
        o["id"]: o
        for name in ("query_opportunity_page1_200.json", "query_opportunity_page2_final_200.json")
        for o in run("opportunity", name)["opportunities"]
    }
    lost = opps["0068d00000Fh2BdAAJ"]
    assert (lost["amount"], lost["is_closed"], lost["is_won"], lost["closed_at"]) == (
        None,
        1,
        0,
        "2025-04-15T00:00:00Z",
    )
    assert lost["deal_type"] == "upsell"
    won = opps["0068d00000Fh2BbAAJ"]
    assert (won["amount"], won["is_won"], won["closed_at"]) == (48000.0, 1, "2025-03-28T00:00:00Z")
    history = run("stage_history", "query_opportunityhistory_200.json")["opportunity_stage_history"]
    assert ("0068d00000Fh2BcAAJ", "Needs Analysis", "2025-02-19T13:22:40Z", 20000.0) in [
        (h["opportunity_id"], h["stage"], h["entered_at"], h["amount"]) for h in history
    ]
    case = run("case", "query_case_200.json")["cases"][0]
    assert (case["status"], case["is_closed"], case["closed_at"]) == ("Closed", 1, "2025-03-18T16:20:00Z")


def test_bulk_csv_rows_map_like_rest_records() -> None:
    rows = list(csv.DictReader(io.StringIO((FIXTURES / "bulk2_query_results_page2_final.csv").read_text())))
    record = _from_csv(rows[0])
    assert record["Owner"] == {"Name": "Ben Okafor"} and record["Amount"] is None
    row = mapping.opportunity(record, mapping.Context(Mapping(), "2026-01-01T00:00:00Z"))["opportunities"][0]
    assert (row["is_won"], row["amount"], row["stage"]) == (0, None, "Closed Lost")


def test_composite_mixed_results_match_writes_by_position() -> None:
    request = json.loads((FIXTURES / "composite_sobjects_patch_request.json").read_text())
    answer = json.loads((FIXTURES / "composite_sobjects_patch_mixed_200.json").read_text())
    batch = [
        (r["id"], [FieldWrite("User", r["id"], k, v) for k, v in r.items() if k.startswith("KPI_")])
        for r in request["records"]
    ]
    results = writeback._results(batch, answer)
    assert [r.ok for r in results][:1] == [True]
    assert not any(r.gone for r in results)
    assert any("UNABLE_TO_LOCK_ROW" in (r.error or "") for r in results)


def test_error_payloads_translate_to_the_error_tree(config: Config) -> None:
    client = SalesforceConnector(config).client
    limit = json.loads((FIXTURES / "error_403_request_limit_exceeded.json").read_text())
    concurrent = json.loads((FIXTURES / "error_403_concurrent_long_running.json").read_text())

    def raising(exc: Exception) -> Any:
        def fn(sf: Any) -> Any:
            raise exc

        return fn

    client._sf = object()  # type: ignore[assignment]  # no login needed: the request fails before HTTP
    with pytest.raises(LimitReached):
        SalesforceClient._attempt(client, raising(SalesforceRefusedRequest("u", 403, "query", limit)), "query")
    with pytest.raises(RetriableError):
        SalesforceClient._attempt(client, raising(SalesforceRefusedRequest("u", 403, "query", concurrent)), "query")
    with pytest.raises(RetriableError):
        SalesforceClient._attempt(client, raising(SalesforceGeneralError("u", 503, "query", "down")), "query")
