"""Write-back (200/207/400), the scorecard custom object, our own echo, provisioning, doctor."""

from __future__ import annotations

from kpisync.config import Config
from kpisync.connectors.base import FieldDef, FieldWrite
from kpisync.connectors.hubspot import HubSpotConnector
from kpisync.connectors.hubspot.provision import NO_CUSTOM_OBJECTS
from kpisync.connectors.sandbox.hubspot import HubSpotSandbox
from kpisync.store import Store

from .conftest import drive

FIELDS = [
    FieldDef("contact", "kpi_touches", "Touches so far", "count"),
    FieldDef("account", "kpi_clv", "Customer lifetime value", "currency"),
    FieldDef("opportunity", "kpi_days_open", "Days open", "days"),
    FieldDef("user", "kpi_win_rate", "Win rate", "ratio"),
    FieldDef("user", "kpi_deals_won", "Deals won", "count"),
]


def test_provisioning_is_idempotent(sandbox: HubSpotSandbox, config: Config) -> None:
    connector = HubSpotConnector(config)
    planned = connector.provision(FIELDS, dry_run=True)
    assert planned and not any(c.done for c in planned)
    assert connector.provision(FIELDS, dry_run=True) == planned  # a dry run changes nothing
    made = connector.provision(FIELDS)
    assert {(c.object, c.field) for c in made} == {(c.object, c.field) for c in planned} and all(c.done for c in made)
    assert connector.provision(FIELDS) == []
    props = {p["name"]: p for p in sandbox.portal.properties("deals")}
    assert props["kpi_days_open"]["groupName"] == "sales_kpis" and props["kpi_days_open"]["type"] == "number"
    schema = connector.scorecard()
    assert schema is not None
    hints = {p["name"]: p.get("numberDisplayHint") for p in sandbox.portal.properties(schema["objectTypeId"])}
    assert hints["kpi_win_rate"] == "percentage"
    assert {p["name"]: p.get("numberDisplayHint") for p in sandbox.portal.properties("companies")}[
        "kpi_clv"
    ] == "currency"


def test_portal_without_custom_objects_says_so(sandbox: HubSpotSandbox, config: Config) -> None:
    sandbox.custom_objects = False
    connector = HubSpotConnector(config)
    changes = connector.provision(FIELDS)
    assert [c.detail for c in changes if c.object == "sales_kpi_scorecard"] == [NO_CUSTOM_OBJECTS]
    assert connector.locate("user", "72000001", None, "2026-11") is None
    assert connector.locate("contact", "1001", "contacts", "all") == ("contacts", "1001")
    custom = next(r for r in connector.check() if r.name == "custom objects")
    assert not custom.ok and custom.severity == "warning" and "no custom objects" in custom.detail


def test_push_reports_207_missing_ids_as_gone(sandbox: HubSpotSandbox, config: Config) -> None:
    connector = HubSpotConnector(config)
    connector.provision(FIELDS)
    writes = [FieldWrite("contacts", str(i), "kpi_touches", float(i)) for i in (1001, 1002, 1003)]
    writes.append(FieldWrite("contacts", "987654", "kpi_touches", 4.0))
    results = connector.push(writes)
    assert [r.ok for r in results] == [True, True, True, False] and results[3].gone
    assert sandbox.read("contacts", 1002)["kpi_touches"] == "1002"


def test_push_isolates_the_bad_input_of_a_rejected_batch(sandbox: HubSpotSandbox, config: Config) -> None:
    connector = HubSpotConnector(config)
    connector.provision(FIELDS)
    writes = [FieldWrite("deals", str(18000000001 + i), "kpi_days_open", 2.5 * i) for i in range(7)]
    writes[4] = FieldWrite("deals", "18000000005", "kpi_no_such_property", 1.0)
    results = connector.push(writes)
    assert [r.ok for r in results] == [True] * 4 + [False] + [True] * 2
    assert "PROPERTY_DOESNT_EXIST" in (results[4].error or "") and not results[4].gone
    assert sandbox.read("deals", 18000000007)["kpi_days_open"] == "15"
    assert sandbox.read("deals", 18000000002)["kpi_days_open"] == "2.5"


def test_scorecard_records_are_upserted_and_owned_by_the_rep(sandbox: HubSpotSandbox, config: Config) -> None:
    connector = HubSpotConnector(config)
    connector.provision(FIELDS)
    target = connector.locate("user", "72000002", None, "2026-11")
    assert target is not None
    obj, key = target
    for value in (0.25, 0.5):  # the second write updates the same record
        results = connector.push([FieldWrite(obj, key, "kpi_win_rate", value, owner_id="72000002")])
        assert all(r.ok for r in results)
    assert sandbox.portal.count(obj) == 1
    record = sandbox.read(obj, 1)
    assert (
        record["hubspot_owner_id"] == "72000002"
        and record["kpi_win_rate"] == "0.5"
        and record["kpi_period"] == "2026-11"
    )


def test_our_own_writes_are_not_restored_but_others_changes_are(sandbox: HubSpotSandbox, config: Config) -> None:
    connector = HubSpotConnector(config)
    connector.provision(FIELDS)
    store = Store.open(":memory:")
    drive(connector, store)
    ids = [str(1001 + i) for i in range(10)]
    connector.push([FieldWrite("contacts", i, "kpi_touches", 3.0) for i in ids])
    sandbox.change("contacts", 1005, {"hs_lead_status": "UNQUALIFIED"})  # someone else, after our write
    connector.close()
    again = HubSpotConnector(config)  # a new process: the ledger is read from beside the store
    stored = drive(again, store, objects=["contacts"])
    events = store.count("lifecycle_events", "contact_id = '1005'")
    assert stored["contacts"] == 1 + events  # only the record someone else touched (and its lifecycle rows)
    assert store.conn.execute("SELECT lead_status FROM contacts WHERE id = '1005'").fetchone()[0] == "UNQUALIFIED"


def test_doctor_reports_credentials_scopes_properties_and_budget(sandbox: HubSpotSandbox, config: Config) -> None:
    connector = HubSpotConnector(config)
    before = {r.name: r for r in connector.check()}
    assert before["credentials"].ok and before["scopes"].ok and before["mapped properties"].ok
    assert not before["write-back properties"].ok and "kpi_touches" in before["write-back properties"].detail
    assert before["daily API calls"].ok and "of 250000" in before["daily API calls"].detail
    sandbox.missing_scopes.add("tickets")
    assert "crm.objects.tickets.read" in {r.name: r for r in connector.check()}["scopes"].detail
