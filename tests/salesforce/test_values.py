"""The value helpers every mapped record goes through: raw JSON text and value-map lookups."""

from __future__ import annotations

import json
from typing import Any

from kpisync.config import ValueMap
from kpisync.connectors.salesforce.values import encode_raw, lookup


def test_raw_text_is_what_json_writes_compactly() -> None:
    record: dict[str, Any] = {
        "attributes": {"type": "Task", "url": "/services/data/v59.0/sobjects/Task/00T1"},
        "Id": "00T1",
        "Subject": 'Café — follow-up "quoted"',
        "CallDurationInSeconds": 120,
        "Amount": 0.1,
        "Big": 1e16,
        "IsDeleted": False,
        "WhoId": None,
        "Owner": {"Name": "Zoë"},
    }
    assert encode_raw(record) == json.dumps(record, separators=(",", ":"), ensure_ascii=False)
    assert json.loads(encode_raw(record)) == record


def test_lookup_answers_like_the_value_map_every_time() -> None:
    vmap = ValueMap(field="CallDisposition", values={"Connected": "connected", "1": "one"}, default="other")
    for _ in range(3):  # the second and third answers come from the memo
        assert lookup(vmap, "Connected") == "connected"
        assert lookup(vmap, " connected ") == "connected"
        assert lookup(vmap, "Voicemail") == "other"
        assert lookup(vmap, None) == "other"
        assert lookup(vmap, "") == "other"
        assert lookup(vmap, "1") == "one"
        # True == 1 in a dict: a boolean must not get the answer remembered for another value
        assert lookup(vmap, 1) == "one"
        assert lookup(vmap, True) == "other"


def test_lookup_keeps_maps_apart() -> None:
    a = ValueMap(field="Type", values={"Web": "inbound"})
    b = ValueMap(field="Type", values={"Web": "paid"})
    assert lookup(a, "Web") == "inbound"
    assert lookup(b, "Web") == "paid"
    assert lookup(a, "Web") == "inbound"


def test_activity_classification_memo_tells_missing_fields_from_null_ones() -> None:
    """Tasks sharing a context reuse (type, direction, outcome) answers only when every value they read matches."""
    from kpisync.config import Mapping
    from kpisync.connectors.salesforce.mapping import Context, task

    m = Mapping(
        activity_direction=ValueMap(field="Direction__c", values={"Inbound": "inbound"}),
        activity_outcome=[ValueMap(field="Outcome__c", values={"Replied": "replied"})],
    )
    ctx = Context(m, "2026-01-01T00:00:00Z")
    base = {"Id": "00T1", "TaskSubtype": "Call", "CallType": "Outbound", "Status": "Completed"}

    def classify(record: dict[str, Any]) -> tuple[Any, ...]:
        row = task(record, ctx)["activities"][0]
        return row["type"], row["direction"], row["outcome"]

    # no Direction__c on the record: the call's own CallType decides; the mapped field, present but null, does not
    assert classify(base) == ("call", "outbound", None)
    assert classify({**base, "Direction__c": None}) == ("call", None, None)
    assert classify({**base, "Direction__c": "Inbound", "Outcome__c": "Replied"}) == ("call", "inbound", "replied")
    assert classify(base) == ("call", "outbound", None)  # asked again: the memo's answer is the same
    assert classify({**base, "TaskSubtype": "Email", "CallType": None}) == ("email", "outbound", None)
    # a mapped field holding an object (not a picklist) is worked out, not remembered
    assert classify({**base, "Outcome__c": {"Name": "x"}})[0] == "call"
