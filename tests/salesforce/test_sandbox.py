"""The sandbox answers the way the recorded Salesforce payloads look, to the unmodified simple-salesforce."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from sfkit import FIXTURES
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import SalesforceMalformedRequest, SalesforceRefusedRequest

from kpisync.config import load_config
from kpisync.connectors.http import make_session
from kpisync.connectors.sandbox.salesforce import SalesforceSandbox
from kpisync.connectors.sandbox.salesforce_schema import SCHEMA

pytestmark = pytest.mark.skipif(not FIXTURES.is_dir(), reason="shared/fixtures/salesforce not present")


def fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


def paths(node: Any, prefix: str = "") -> set[str]:
    """Key structure: every dict key path, list items merged as []."""
    out: set[str] = set()
    if isinstance(node, dict):
        for key, val in node.items():
            out.add(prefix + key)
            out |= paths(val, f"{prefix}{key}.")
    elif isinstance(node, list):
        for item in node:
            out |= paths(item, f"{prefix}[].")
    return out


@pytest.fixture
def sf(sandbox: SalesforceSandbox) -> Salesforce:
    http = make_session(Path(sandbox.info["ca_bundle"]))
    login = http.post(
        f"{sandbox.url}/services/Soap/u/59.0",
        data=(
            '<?xml version="1.0" encoding="utf-8" ?><env:Envelope xmlns:env="http://schemas.xmlsoap.org/soap/'
            'envelope/"><env:Body><n1:login xmlns:n1="urn:partner.soap.sforce.com">'
            f"<n1:username>{sandbox.info['username']}</n1:username>"
            f"<n1:password>{sandbox.info['password']}{sandbox.info['security_token']}</n1:password>"
            "</n1:login></env:Body></env:Envelope>"
        ),
        headers={"Content-Type": "text/xml", "SOAPAction": "login"},
    )
    for tag in ("sessionId", "serverUrl", "userId", "metadataServerUrl", "passwordExpired"):
        assert f"<{tag}>" in login.text  # the elements simple-salesforce and soap_login_200.xml have
    session = re.search(r"<sessionId>(.*?)</sessionId>", login.text).group(1)  # type: ignore[union-attr]
    return Salesforce(instance_url=sandbox.url, session_id=session, session=http)


def _like(sf: Salesforce, name: str, obj: str, *, include_deleted: bool = False) -> tuple[set[str], set[str]]:
    """(fixture paths, sandbox paths) for a query selecting the fixture's fields the sandbox object has."""
    expected = fixture(name)
    first = expected["records"][0]
    fields = [k for k in first if k != "attributes" and k in {f.name for f in SCHEMA[obj]}]
    rels = [
        f"{k}.{sub}"
        for k, v in first.items()
        if isinstance(v, dict) and k != "attributes"
        for sub in v
        if sub != "attributes"
    ]
    rels = [r for r in rels if any(f.relationship == r.split(".")[0] for f in SCHEMA[obj])]
    got = sf.query(f"SELECT {', '.join(fields + rels)} FROM {obj}", include_deleted=include_deleted)
    keep = {*fields, *(r.split(".")[0] for r in rels), "attributes"}
    trimmed = {**expected, "records": [{k: v for k, v in r.items() if k in keep} for r in expected["records"]]}
    return paths(trimmed), paths(got)


@pytest.mark.parametrize(
    ("name", "obj"),
    [
        ("query_opportunity_page2_final_200.json", "Opportunity"),
        ("query_user_200.json", "User"),
        ("query_task_activities_200.json", "Task"),
        ("query_event_activities_200.json", "Event"),
        ("query_case_200.json", "Case"),
        ("query_leadhistory_200.json", "LeadHistory"),
        ("query_opportunityhistory_200.json", "OpportunityHistory"),
        ("query_opportunitystage_200.json", "OpportunityStage"),
        ("queryall_lead_with_deleted_200.json", "Lead"),
    ],
)
def test_query_results_have_the_recorded_key_structure(sf: Salesforce, name: str, obj: str) -> None:
    expected, got = _like(sf, name, obj, include_deleted=name.startswith("queryall"))
    assert expected <= got


def test_paging_count_and_describe(sf: Salesforce, sandbox: SalesforceSandbox) -> None:
    owner = sandbox.sf_id("u0001")
    stamp = "2026-01-01T00:00:00.000+0000"
    sandbox.org.insert_many(
        "Opportunity",
        [
            {
                "Id": f"0068d{i:010d}AAJ",
                "Name": f"O{i}",
                "OwnerId": owner,
                "StageName": "Prospecting",
                "CreatedDate": stamp,
                "SystemModstamp": stamp,
            }
            for i in range(2100)
        ],
    )
    first = sf.query("SELECT Id, StageName, Owner.Name, SystemModstamp FROM Opportunity ORDER BY SystemModstamp, Id")
    assert set(first) == set(fixture("query_opportunity_page1_200.json"))  # incl. nextRecordsUrl
    assert len(first["records"]) == 2000 and first["totalSize"] == 2106
    assert re.fullmatch(r"/services/data/v59\.0/query/\w+-2000", first["nextRecordsUrl"])
    rest = sf.query_more(first["nextRecordsUrl"], identifier_is_url=True)
    assert rest["done"] is True and len(rest["records"]) == 106
    count = sf.query("SELECT COUNT() FROM Opportunity")
    assert paths(count) == paths(fixture("query_count_200.json")) and count["totalSize"] == 2106
    describe = sf.Opportunity.describe()
    template = fixture("describe_opportunity_excerpt.json")
    assert set(describe) == set(template)
    assert set(describe["fields"][0]) == set(template["fields"][0])
    assert describe["keyPrefix"] == "006"


def test_soql_errors_as_salesforce_answers_them(sf: Salesforce) -> None:
    with pytest.raises(SalesforceMalformedRequest) as bad_field:
        sf.query("SELECT Id, KPI_Win_Rate__c FROM User")
    expected = fixture("error_400_invalid_field_query.json")
    assert paths(bad_field.value.content) == paths(expected)
    assert bad_field.value.content[0]["message"].startswith("\nSELECT Id, KPI_Win_Rate__c FROM User\n")
    assert bad_field.value.content[0]["errorCode"] == "INVALID_FIELD"
    with pytest.raises(SalesforceMalformedRequest) as malformed:
        sf.query("SELECT Id FROM Lead WHERE OR")
    assert malformed.value.content[0]["errorCode"] == "MALFORMED_QUERY"
    with pytest.raises(SalesforceMalformedRequest) as bad_type:
        sf.query("SELECT Id FROM ForecastingQuota")
    assert bad_type.value.content[0]["errorCode"] == "INVALID_TYPE"


def test_replication_limits_and_errors_shapes(sf: Salesforce, sandbox: SalesforceSandbox) -> None:
    import datetime as dt

    start = dt.datetime(2020, 1, 1, tzinfo=dt.UTC)
    end = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)
    sandbox.delete(sandbox.sf_id("acc003"))
    deleted = sf.Account.deleted(start, end)
    assert paths(deleted) == paths(fixture("sobject_getdeleted_200.json"))
    assert [d["id"] for d in deleted["deletedRecords"]] == [sandbox.sf_id("acc003")]
    assert paths(sf.Account.updated(start, end)) == paths(fixture("sobject_getupdated_200.json"))
    limits = sf.limits()
    assert {"DailyApiRequests.Max", "DailyApiRequests.Remaining"} <= paths(limits)
    assert sf.api_usage["api-usage"].total == limits["DailyApiRequests"]["Max"]
    sandbox.set_api_usage(sandbox.api.budget.limit)
    with pytest.raises(SalesforceRefusedRequest) as refused:
        sf.query("SELECT Id FROM User")
    assert refused.value.content == fixture("error_403_request_limit_exceeded.json")
    sandbox.set_api_usage(0)
    sandbox.expire_sessions()
    response = sf.session.get(f"{sf.base_url}limits/", headers=sf.headers)
    assert response.status_code == 401 and response.json() == fixture("error_401_invalid_session_id.json")
    assert response.headers["WWW-Authenticate"] == "Token"


def test_writes_tooling_and_bulk_shapes(sf: Salesforce, sandbox: SalesforceSandbox) -> None:
    created = sf.toolingexecute(
        "sobjects/CustomField", method="POST", data=fixture("tooling_customfield_create_request.json")
    )
    assert set(created) == set(fixture("tooling_customfield_create_201.json"))
    tooling = sf.toolingexecute("query/?q=SELECT+Id,+DeveloperName,+TableEnumOrId+FROM+CustomField")
    expected = fixture("tooling_query_customfield_200.json")
    assert set(tooling) == set(expected) and tooling["entityTypeName"] == "CustomField"
    perm = sf.PermissionSet.create({"Name": "KPI_Sync_Fields", "Label": "KPI Sync Fields"})
    assert set(perm) == set(fixture("sobject_create_201.json"))
    grant = {**fixture("fieldpermissions_create_request.json"), "ParentId": perm["id"]}
    assert sf.FieldPermissions.create(grant)["success"] is True
    request = fixture("composite_sobjects_patch_request.json")
    ids = [sandbox.sf_id(u) for u in ("u0001", "u0002", "u0003", "u0004")]
    for n, (record, record_id) in enumerate(zip(request["records"], ids, strict=False)):
        record["id"] = record_id
        if n != 1:  # record 1 keeps a field the org lacks: INVALID_FIELD
            record.pop("KPI_Avg_Days_To_Close__c")
    sandbox.fail_write(ids[2])
    answer = sf.restful("composite/sobjects", method="PATCH", json=request)
    assert paths(answer) == paths(fixture("composite_sobjects_patch_mixed_200.json"))
    assert [r["success"] for r in answer] == [True, False, False, True]
    assert sandbox.field_value(ids[0], "KPI_Win_Rate__c") == 41.7
    job = sf.restful("jobs/query", method="POST", json={"operation": "query", "query": "SELECT Id, Name FROM Account"})
    assert set(job) == set(fixture("bulk2_query_job_create_200.json"))
    chunks = list(sf.bulk2.Account.query("SELECT Id, Name, Owner.Name FROM Account", max_records=3, wait=0))
    assert len(chunks) == 2 and chunks[0].splitlines()[0] == '"Id","Name","Owner.Name"'


def test_the_written_config_validates_and_secrets_stay_out_of_it(sandbox: SalesforceSandbox) -> None:
    config = load_config(sandbox.config_path)
    assert config.connection.base_url == sandbox.url
    assert config.connection.ca_bundle == Path(sandbox.info["ca_bundle"])
    text = sandbox.config_path.read_text()
    assert sandbox.info["password"] not in text and sandbox.info["security_token"] not in text
    assert set(sandbox.info) == {"crm", "url", "config", "username", "password", "security_token", "ca_bundle"}
