"""Provisioning KPI fields (Tooling + field-level security) and writing values back with sObject Collections."""

from __future__ import annotations

from kpisync.config import Config
from kpisync.connectors.base import FieldDef, FieldWrite
from kpisync.connectors.salesforce import SalesforceConnector
from kpisync.connectors.sandbox.salesforce import SalesforceSandbox

FIELDS = [
    FieldDef("user", "KPI_Win_Rate__c", "KPI Win Rate", "ratio"),
    FieldDef("user", "KPI_Deals_Won__c", "KPI Deals Won", "count"),
    FieldDef("contact", "KPI_Touches__c", "KPI Touches", "count"),
    FieldDef("account", "KPI_CLV__c", "KPI CLV", "currency"),
]


def test_provisioning_creates_fields_grants_access_and_is_idempotent(
    sandbox: SalesforceSandbox, config: Config
) -> None:
    connector = SalesforceConnector(config)
    planned = connector.provision(FIELDS, dry_run=True)
    assert {(c.object, c.field) for c in planned if c.action == "create field"} == {
        ("User", "KPI_Win_Rate__c"),
        ("User", "KPI_Deals_Won__c"),
        ("Lead", "KPI_Touches__c"),
        ("Contact", "KPI_Touches__c"),
        ("Account", "KPI_CLV__c"),
    }
    assert not any(c.done for c in planned)
    assert sandbox.org.custom_fields("User", visible_only=False) == []  # a dry run creates nothing

    changes = connector.provision(FIELDS)
    actions = sorted({c.action for c in changes})
    assert actions == ["assign permission set", "create field", "create permission set", "grant field access"]
    assert all(c.done for c in changes)
    types = {
        name: (kind, precision, scale)
        for name, kind, precision, scale in sandbox.org.custom_fields("User", visible_only=False)
    }
    assert types == {"KPI_Win_Rate__c": ("percent", 6, 2), "KPI_Deals_Won__c": ("double", 18, 0)}
    # describe now shows the fields, writable: the permission set grants read and edit
    fields = {f["name"]: f for f in connector.client.describe("Lead")["fields"]}
    assert fields["KPI_Touches__c"]["updateable"] is True
    assert connector.provision(FIELDS) == []  # second run: nothing left to do
    checks = {c.name: c.ok for c in connector.check()}
    assert checks["write-back User.KPI_Win_Rate__c"] is True
    assert checks["write-back Opportunity.KPI_Days_Open__c"] is False  # a default target not provisioned here


def test_field_created_without_permission_is_invisible(sandbox: SalesforceSandbox, config: Config) -> None:
    sandbox.org.add_custom_field("User", "KPI_Hidden__c", "double", "Hidden", 16, 2)
    connector = SalesforceConnector(config)
    names = {f["name"] for f in connector.client.describe("User")["fields"]}
    assert "KPI_Hidden__c" not in names  # describe is filtered by field-level security
    changes = connector.provision([FieldDef("user", "KPI_Hidden__c", "Hidden", "days")])
    assert [c.action for c in changes if c.object == "User"] == ["grant field access"]  # exists: only granted
    assert connector.has_field("User", "KPI_Hidden__c")


def test_push_reports_each_record_and_flags_deleted_ones_as_gone(sandbox: SalesforceSandbox, config: Config) -> None:
    connector = SalesforceConnector(config)
    connector.provision(FIELDS)
    ava, ben, carla = (sandbox.sf_id(u) for u in ("u0001", "u0002", "u0003"))
    deleted_account = sandbox.sf_id("acc004")
    sandbox.delete(deleted_account)
    sandbox.fail_write(carla)  # UNABLE_TO_LOCK_ROW inside the batch
    writes = [
        FieldWrite("User", ava, "KPI_Win_Rate__c", 0.25),
        FieldWrite("User", ava, "KPI_Deals_Won__c", 3.0),
        FieldWrite("User", ben, "KPI_Win_Rate__c", None),
        FieldWrite("User", carla, "KPI_Win_Rate__c", 0.5),
        FieldWrite("User", "005000000000000AAA", "KPI_Win_Rate__c", 0.1),
        FieldWrite("Account", deleted_account, "KPI_CLV__c", 1200.0),
        FieldWrite("Account", sandbox.sf_id("acc001"), "KPI_CLV__c", 99.5),
        FieldWrite("Account", sandbox.sf_id("acc002"), "KPI_Nope__c", 1.0),
    ]
    before = sandbox.calls(r"/composite/sobjects")
    results = connector.push(writes)
    assert sandbox.calls(r"/composite/sobjects") - before == 2  # one call per object type, never mixed
    by_key = {(r.write.record_id, r.write.field): r for r in results}
    assert len(results) == len(writes)
    assert by_key[(ava, "KPI_Win_Rate__c")].ok and by_key[(ava, "KPI_Deals_Won__c")].ok
    assert sandbox.field_value(ava, "KPI_Win_Rate__c") == 25.0  # ratio 0–1 → percent field 0–100
    assert sandbox.field_value(ava, "KPI_Deals_Won__c") == 3.0
    assert by_key[(ben, "KPI_Win_Rate__c")].ok and sandbox.field_value(ben, "KPI_Win_Rate__c") is None
    locked = by_key[(carla, "KPI_Win_Rate__c")]
    assert not locked.ok and not locked.gone and "UNABLE_TO_LOCK_ROW" in (locked.error or "")
    assert sandbox.field_value(carla, "KPI_Win_Rate__c") is None
    assert by_key[("005000000000000AAA", "KPI_Win_Rate__c")].gone
    assert by_key[(deleted_account, "KPI_CLV__c")].gone
    assert by_key[(sandbox.sf_id("acc001"), "KPI_CLV__c")].ok
    bad_field = by_key[(sandbox.sf_id("acc002"), "KPI_Nope__c")]
    assert not bad_field.ok and not bad_field.gone and "INVALID_FIELD" in (bad_field.error or "")


def test_push_batches_two_hundred_records_a_call(sandbox: SalesforceSandbox, config: Config) -> None:
    connector = SalesforceConnector(config)
    connector.provision([FieldDef("contact", "KPI_Touches__c", "KPI Touches", "count")])
    owner = sandbox.sf_id("u0002")
    leads = [sandbox.insert("Lead", {"LastName": f"L{i}", "OwnerId": owner}) for i in range(450)]
    before = sandbox.calls(r"/composite/sobjects")
    results = connector.push([FieldWrite("Lead", lead, "KPI_Touches__c", float(i)) for i, lead in enumerate(leads)])
    assert sandbox.calls(r"/composite/sobjects") - before == 3
    assert all(r.ok for r in results)
    assert sandbox.field_value(leads[449], "KPI_Touches__c") == 449.0


def test_locate_routes_each_grain_to_its_object(config: Config) -> None:
    connector = SalesforceConnector(config)
    assert connector.locate("user", "005A", None, "2026-11") == ("User", "005A")
    assert connector.locate("contact", "00QA", "Lead", "all") == ("Lead", "00QA")
    assert connector.locate("contact", "003A", "Contact", "all") == ("Contact", "003A")
    assert connector.locate("contact", "00QB", None, "all") == ("Lead", "00QB")
    assert connector.locate("account", "001A", None, "all") == ("Account", "001A")
    assert connector.locate("opportunity", "006A", None, "all") == ("Opportunity", "006A")
    assert connector.locate("team", "Enterprise", None, "2026-11") is None
