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
