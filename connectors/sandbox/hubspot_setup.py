"""The kpisync YAML a sandbox portal writes beside itself: where it is, how to
authenticate, and the `mapping:` for the portal's custom properties."""

from __future__ import annotations

import collections
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from kpisync.config import OUTCOMES
from kpisync.connectors.sandbox.hubspot_catalog import DEFAULT_CALL_OUTCOMES, call_disposition
from kpisync.connectors.sandbox.hubspot_translate import region_team, role_team

if TYPE_CHECKING:
    from kpisync.connectors.sandbox.hubspot import HubSpotSandbox


def mapping_for(store_conn: Any) -> dict[str, Any]:
    """The YAML `mapping:` that tells kpisync about the sandbox portal's custom properties."""

    def pairs(sql: str) -> dict[str, str]:
        counts: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
        for raw, canonical in store_conn.execute(sql):
            if raw is not None and canonical is not None:
                counts[str(raw)][str(canonical)] += 1
        return {raw: c.most_common(1)[0][0] for raw, c in sorted(counts.items())}

    outcomes = OUTCOMES
    mapping: dict[str, Any] = {
        "churn_date_field": "churn_date",
        "nps_field": "nps_score",
        "competitor_price_field": "competitor_price",
        "activity_type": {"field": "hs_activity_type", "values": {"visit": "visit", "other": "other"}},
        "activity_outcome": [
            {
                "field": "hs_call_disposition",
                "values": {
                    call_disposition(o): o for o in outcomes if call_disposition(o) not in DEFAULT_CALL_OUTCOMES
                },
            },
            {"field": "sales_outcome", "values": {o: o for o in outcomes}},
        ],
    }
    channel_sql = "SELECT lead_source, channel FROM contacts UNION ALL SELECT lead_source, channel FROM opportunities"
    channel = pairs(channel_sql)
    if channel:
        mapping["channel"] = {"field": "lead_source", "values": channel}
        # the channel of records without a lead source (the generator's "other")
        unsourced = collections.Counter(c for s, c in store_conn.execute(channel_sql) if s is None and c is not None)
        if unsourced:
            mapping["channel"]["default"] = unsourced.most_common(1)[0][0]
    region = pairs("SELECT region, region FROM accounts UNION ALL SELECT region, region FROM contacts")
    if region:
        mapping["region"] = {"field": "sales_region", "values": region}
    roles = sorted({r for (r,) in store_conn.execute("SELECT DISTINCT role FROM users") if r})
    if roles:
        mapping["role"] = {"field": "team", "values": {role_team(r): r for r in roles}, "default": "other"}
    regions = sorted({r for (r,) in store_conn.execute("SELECT DISTINCT region FROM users") if r})
    if regions:
        mapping["user_region"] = {"field": "team", "values": {region_team(r): r for r in regions}}
    return mapping


def write_config(sandbox: HubSpotSandbox, mapping: dict[str, Any]) -> Path:
    config: dict[str, Any] = {
        "crm": "hubspot",
        "name": "hubspot-sandbox",
        "store": "hubspot-sandbox.db",
        # the token is a sandbox secret in a 0600 file beside this YAML, referenced rather than inlined
        "auth": {"method": "private_app", "access_token": "${file:hubspot.token}"},
        "connection": {"base_url": sandbox.url},
        "mapping": mapping,
    }
    if sandbox.server.ca_bundle:
        config["connection"]["ca_bundle"] = str(sandbox.server.ca_bundle.relative_to(sandbox.data_dir))
    sandbox.config_path.write_text(yaml.safe_dump(config, sort_keys=False))
    return sandbox.config_path
