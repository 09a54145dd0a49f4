"""Canonical org (a kpisync Store, as `kpisync.generator.build_org` fills it) →
HubSpot records in a sandbox `Portal`.

The translation is the inverse of the connector's mapping: what HubSpot has
natively is written natively (lifecycle stage and its date-entered properties,
deal stages in a pipeline with metadata, call dispositions, meeting outcomes,
email directions, ticket pipeline stages); what a real portal would keep in a
custom property is written to one (`lead_source`, `sales_region`, `churn_date`,
`nps_score`, `competitor_price`, `sales_outcome`). `mapping_for(...)` returns
the YAML `mapping:` block that tells kpisync about those custom properties.
"""

from __future__ import annotations

import re
import sqlite3
from collections import defaultdict
from typing import Any

from kpisync.connectors.sandbox.hubspot_catalog import (
    CANONICAL_TO_LIFECYCLE,
    MEETING_OUTCOMES,
    TICKET_PIPELINE_DEFAULT,
    call_disposition,
)
from kpisync.connectors.sandbox.hubspot_portal import Portal, iso_to_ms, ms_to_iso

# id bases: HubSpot ids are numeric strings of type-typical lengths
_ID_BASE = {
    "contacts": 1000,
    "companies": 5_000_000_000,
    "deals": 18_000_000_000,
    "tickets": 31_000_000_000,
    "calls": 60_000_000_000,
    "emails": 61_000_000_000,
    "meetings": 62_000_000_000,
    "notes": 63_000_000_000,
    "tasks": 64_000_000_000,
}
OWNER_BASE, USER_BASE, TEAM_BASE = 72_000_000, 9_100_000, 4_100_000
_ACTIVITY_OBJECT = {
    "call": "calls",
    "email": "emails",
    "meeting": "meetings",
    "visit": "meetings",
    "task": "tasks",
    "note": "notes",
    "other": "notes",
}
_DEAL_TYPE = {
    "new_business": "newbusiness",
    "upsell": "existingbusiness",
    "cross_sell": "crosssell",
    "renewal": "renewal",
    "other": "other",
}


def _rows(conn: sqlite3.Connection, sql: str) -> list[dict[str, Any]]:
    cur = conn.execute(sql)
    names = [d[0] for d in cur.description]
    return [dict(zip(names, r, strict=True)) for r in cur]


def _iso(value: str | None) -> str | None:
    return ms_to_iso(iso_to_ms(value)) if value else None


def _ms(*values: str | None) -> int:
    stamps = [iso_to_ms(v) for v in values if v]
    return max(stamps) if stamps else 0


def role_team(role: str) -> str:
    return f"{role.upper()} reps"


def region_team(region: str) -> str:
    return f"Region {region}"


def stage_id(label: str) -> str:
    return re.sub(r"[^a-z0-9]", "", label.lower()) or "stage"


def _s(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def translate(store_conn: sqlite3.Connection, portal: Portal) -> dict[str, Any]:
    """Fill `portal` from a canonical store; returns a summary (counts per object)."""
    ids: dict[str, tuple[str, int]] = {}
    counters: dict[str, int] = defaultdict(int)

    def new_id(kind: str, canonical: str) -> int:
        counters[kind] += 1
        hs = _ID_BASE[kind] + counters[kind]
        ids[canonical] = (kind, hs)
        return hs

    users = _rows(store_conn, "SELECT * FROM users ORDER BY id")
    # a rep sits on their team (primary), a function team and a region team, as portals organise them
    teams = sorted(
        {u["team"] for u in users if u["team"]}
        | {role_team(u["role"]) for u in users if u["role"]}
        | {region_team(u["region"]) for u in users if u["region"]}
    )
    team_ids = {t: str(TEAM_BASE + i + 1) for i, t in enumerate(teams)}
    owners, owner_of = [], {}
    for i, u in enumerate(users, start=1):
        owner_id = str(OWNER_BASE + i)
        owner_of[u["id"]] = owner_id
        ids[u["id"]] = ("owners", int(owner_id))
        first, _, last = (u["name"] or "").partition(" ")
        active = u["is_active"] in (1, None)
        owners.append(
            {
                "id": owner_id,
                "email": u["email"],
                "type": "PERSON",
                "firstName": first,
                "lastName": last,
                "userId": USER_BASE + i if active else None,
                "userIdIncludingInactive": USER_BASE + i,
                "createdAt": "2023-01-02T09:00:00.000Z",
                "updatedAt": "2024-06-01T09:00:00.000Z",
                "archived": not active,
                "teams": ([{"id": team_ids[u["team"]], "name": u["team"], "primary": True}] if u["team"] else [])
                + [
                    {"id": team_ids[name], "name": name, "primary": False}
                    for name in (
                        role_team(u["role"]) if u["role"] else None,
                        region_team(u["region"]) if u["region"] else None,
                    )
                    if name
                ],
            }
        )
    portal.set_meta("owners", owners)

    history = _rows(store_conn, "SELECT * FROM opportunity_stage_history ORDER BY entered_at")
    opps = _rows(store_conn, "SELECT * FROM opportunities ORDER BY id")
    # one pipeline per canonical pipeline value, stages in the order deals first enter them
    stage_order: dict[str, dict[str, int]] = defaultdict(dict)
    opp_pipeline = {o["id"]: o["pipeline"] or "Sales Pipeline" for o in opps}
    for h in history:
        order = stage_order[opp_pipeline.get(h["opportunity_id"], "Sales Pipeline")]
        order.setdefault(h["stage"], len(order))
    stage_flags: dict[tuple[str, str], tuple[int, int]] = {}
    for o in opps:
        pipe = opp_pipeline[o["id"]]
        stage_order[pipe].setdefault(o["stage"], len(stage_order[pipe]))
        stage_flags[(pipe, o["stage"])] = (o["is_closed"] or 0, o["is_won"] or 0)
    pipelines, pipeline_id = [], {}
    for n, (label, stages) in enumerate(sorted(stage_order.items())):
        pid = "default" if n == 0 else str(7_000_000 + n)
        pipeline_id[label] = pid
        pipelines.append(
            {
                "label": label,
                "displayOrder": n,
                "id": pid,
                "createdAt": "1970-01-01T00:00:00Z",
                "updatedAt": "1970-01-01T00:00:00Z",
                "archived": False,
                "stages": [
                    {
                        "label": stage,
                        "displayOrder": order,
                        "metadata": {
                            "isClosed": "true" if stage_flags.get((label, stage), (0, 0))[0] else "false",
                            "probability": ("1.0" if stage_flags.get((label, stage), (0, 0))[1] else "0.0")
                            if stage_flags.get((label, stage), (0, 0))[0]
                            else "0.5",
                        },
                        "id": stage_id(stage) if n == 0 else f"{pid}{order:03d}",
                        "createdAt": "1970-01-01T00:00:00Z",
                        "updatedAt": "1970-01-01T00:00:00Z",
                        "archived": False,
                        "writePermissions": "CRM_PERMISSIONS_ENFORCEMENT",
                    }
                    for stage, order in sorted(stages.items(), key=lambda kv: kv[1])
                ],
            }
        )
    portal.set_meta("pipelines:deals", pipelines)
    stage_ids = {(p["label"], s["label"]): s["id"] for p in pipelines for s in p["stages"]}

    cases = _rows(store_conn, "SELECT * FROM cases ORDER BY id")
    statuses = sorted({c["status"] for c in cases if c["status"]}) or [label for _, label, _ in TICKET_PIPELINE_DEFAULT]
    closed_status = {c["status"]: c["is_closed"] for c in cases}
    ticket_stage = {s: str(i + 1) for i, s in enumerate(statuses)}
    portal.set_meta(
        "pipelines:tickets",
        [
            {
                "label": "Support Pipeline",
                "displayOrder": 0,
                "id": "0",
                "createdAt": "1970-01-01T00:00:00Z",
                "updatedAt": "1970-01-01T00:00:00Z",
                "archived": False,
                "stages": [
                    {
                        "label": s,
                        "displayOrder": i,
                        "metadata": {
                            "ticketState": "CLOSED" if closed_status.get(s) else "OPEN",
                            "isClosed": "true" if closed_status.get(s) else "false",
                        },
                        "id": ticket_stage[s],
                        "createdAt": "1970-01-01T00:00:00Z",
                        "updatedAt": "1970-01-01T00:00:00Z",
                        "archived": False,
                        "writePermissions": "CRM_PERMISSIONS_ENFORCEMENT",
                    }
                    for i, s in enumerate(statuses)
                ],
            }
        ],
    )

    counts: dict[str, int] = {}
    assoc: list[tuple[str, int, str, int]] = []
    hist_rows: list[tuple[str, int, str, str, int, str]] = []
    with portal.batch():
        accounts = _rows(store_conn, "SELECT * FROM accounts ORDER BY id")
        batch = []
        for a in accounts:
            hs = new_id("companies", a["id"])
            created = a["created_at"]
            modified = _ms(created, a["churned_at"], a["synced_at"] and None)
            props = {
                "name": a["name"],
                "domain": None,
                "createdate": _iso(created),
                "hs_lastmodifieddate": ms_to_iso(modified),
                "hs_object_id": str(hs),
                "hubspot_owner_id": owner_of.get(a["owner_id"]),
                "type": a["type"],
                "industry": a["industry"],
                "country": a["country"],
                "state": a["state"],
                "city": a["city"],
                "sales_region": a["region"],
                "annualrevenue": _s(a["annual_revenue"]),
                "churn_date": _iso(a["churned_at"]),
                "hs_merged_object_ids": None,
            }
            batch.append((hs, props, iso_to_ms(created) if created else 0, modified))
        portal.insert("companies", batch)
        counts["companies"] = len(batch)

        # HubSpot keeps one record per person: a converted lead (Salesforce-style) is its contact
        person = dict(
            store_conn.execute("SELECT id, converted_contact_id FROM contacts WHERE converted_contact_id IS NOT NULL")
        )
        events: dict[str, dict[str, str]] = defaultdict(dict)
        for e in _rows(store_conn, "SELECT * FROM lifecycle_events"):
            stages = events[person.get(e["contact_id"], e["contact_id"])]
            stages[e["stage"]] = min(stages.get(e["stage"], e["entered_at"]), e["entered_at"])
        batch = []
        for c in _rows(store_conn, "SELECT * FROM contacts WHERE converted_contact_id IS NULL ORDER BY id"):
            hs = new_id("contacts", c["id"])
            first, _, last = (c["name"] or "").partition(" ")
            entered = events.get(c["id"], {})
            modified = _ms(c["created_at"], *entered.values())
            props = {
                "email": c["email"],
                "firstname": first or None,
                "lastname": last or None,
                "createdate": _iso(c["created_at"]),
                "lastmodifieddate": ms_to_iso(modified),
                "hs_object_id": str(hs),
                "hubspot_owner_id": owner_of.get(c["owner_id"]),
                "lifecyclestage": CANONICAL_TO_LIFECYCLE.get(c["lifecycle_stage"] or "", c["lifecycle_stage"]),
                "hs_lead_status": c["lead_status"],
                "lead_source": c["lead_source"],
                "country": c["country"],
                "state": c["state"],
                "city": c["city"],
                "sales_region": c["region"],
                "nps_score": _s(c["nps_score"]),
                "hs_calculated_merged_vids": None,
            }
            for stage, at in entered.items():
                value = CANONICAL_TO_LIFECYCLE.get(stage, stage)
                props[f"hs_v2_date_entered_{value}"] = _iso(at)
                props[f"hs_date_entered_{value}"] = _iso(at)
                props[f"hs_lifecyclestage_{value}_date"] = _iso(at)
                hist_rows.append(("contacts", hs, "lifecyclestage", value, iso_to_ms(at), "CRM_UI"))
            if c["account_id"] in ids:
                props["associatedcompanyid"] = str(ids[c["account_id"]][1])
                assoc.append(("contacts", hs, "companies", ids[c["account_id"]][1]))
            batch.append((hs, props, iso_to_ms(c["created_at"]) if c["created_at"] else 0, modified))
        portal.insert("contacts", batch)
        ids.update({lead: ids[contact] for lead, contact in person.items() if contact in ids})
        counts["contacts"] = len(batch)

        by_opp: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for h in history:
            by_opp[h["opportunity_id"]].append(h)
        batch = []
        for o in opps:
            hs = new_id("deals", o["id"])
            pipe = opp_pipeline[o["id"]]
            entries = by_opp.get(o["id"], [])
            modified = _ms(o["created_at"], o["closed_at"], *(h["entered_at"] for h in entries))
            props = {
                "dealname": o["name"],
                "amount": _s(o["amount"]),
                "amount_in_home_currency": _s(o["amount"]),
                "dealstage": stage_ids[(pipe, o["stage"])],
                "pipeline": pipeline_id[pipe],
                "closedate": _iso(o["closed_at"]),
                "createdate": _iso(o["created_at"]),
                "hs_lastmodifieddate": ms_to_iso(modified),
                "hs_object_id": str(hs),
                "hubspot_owner_id": owner_of.get(o["owner_id"]),
                "dealtype": _DEAL_TYPE.get(o["deal_type"] or "", o["deal_type"]),
                "hs_is_closed": "true" if o["is_closed"] else "false",
                "hs_is_closed_won": "true" if o["is_won"] else "false",
                "lead_source": o["lead_source"],
                "competitor_price": _s(o["competitor_price"]),
                "sales_region": o["region"],
                "hs_merged_object_ids": None,
            }
            for h in entries:  # date-entered keeps the latest entry of each stage (§8.3)
                sid = stage_ids.get((pipe, h["stage"]))
                if sid:
                    props[f"hs_date_entered_{sid}"] = _iso(h["entered_at"])
                    props[f"hs_v2_date_entered_{sid}"] = _iso(h["entered_at"])
                    hist_rows.append(("deals", hs, "dealstage", sid, iso_to_ms(h["entered_at"]), "CRM_UI"))
            if o["account_id"] in ids:
                assoc.append(("deals", hs, "companies", ids[o["account_id"]][1]))
            if o["contact_id"] in ids:
                assoc.append(("deals", hs, "contacts", ids[o["contact_id"]][1]))
            batch.append((hs, props, iso_to_ms(o["created_at"]) if o["created_at"] else 0, modified))
        portal.insert("deals", batch)
        counts["deals"] = len(batch)

        batch = []
        for c in cases:
            hs = new_id("tickets", c["id"])
            modified = _ms(c["created_at"], c["closed_at"], c["first_response_at"])
            props = {
                "subject": f"Case {c['id']}",
                "content": None,
                "hs_pipeline": "0",
                "hs_pipeline_stage": ticket_stage.get(c["status"]),
                "hs_ticket_priority": c["priority"],
                "createdate": _iso(c["created_at"]),
                "closed_date": _iso(c["closed_at"]),
                "first_agent_reply_date": _iso(c["first_response_at"]),
                "source_type": c["origin"],
                "hubspot_owner_id": owner_of.get(c["owner_id"]),
                "hs_object_id": str(hs),
                "hs_lastmodifieddate": ms_to_iso(modified),
                "time_to_close": str(iso_to_ms(c["closed_at"]) - iso_to_ms(c["created_at"]))
                if c["closed_at"] and c["created_at"]
                else None,
            }
            for kind, key in (("contacts", "contact_id"), ("companies", "account_id")):
                if c[key] in ids:
                    assoc.append(("tickets", hs, kind, ids[c[key]][1]))
            batch.append((hs, props, iso_to_ms(c["created_at"]) if c["created_at"] else 0, modified))
        portal.insert("tickets", batch)
        counts["tickets"] = len(batch)

        cursor = store_conn.execute("SELECT * FROM activities ORDER BY id")
        names = [d[0] for d in cursor.description]
        per_type: dict[str, list[tuple[int, dict[str, Any], int, int]]] = defaultdict(list)
        for values in cursor:
            a = dict(zip(names, values, strict=True))
            kind = _ACTIVITY_OBJECT.get(a["type"] or "other", "notes")
            hs = new_id(kind, a["id"])
            props, created = _engagement(a, kind, owner_of)
            props["hs_object_id"] = str(hs)
            modified = _ms(a["created_at"], a["occurred_at"])
            props["hs_lastmodifieddate"] = ms_to_iso(modified)
            for target, key in (("contacts", "contact_id"), ("companies", "account_id"), ("deals", "opportunity_id")):
                if a[key] in ids:
                    assoc.append((kind, hs, target, ids[a[key]][1]))
            per_type[kind].append((hs, props, created, modified))
            if len(per_type[kind]) >= 5000:
                portal.insert(kind, per_type[kind])
                counts[kind] = counts.get(kind, 0) + len(per_type[kind])
                per_type[kind] = []
            if len(assoc) >= 20000:
                portal.associate(assoc)
                assoc = []
        for kind, rows in per_type.items():
            portal.insert(kind, rows)
            counts[kind] = counts.get(kind, 0) + len(rows)
        portal.associate(assoc)
        portal.add_history(hist_rows)
        portal.conn.executemany(
            "INSERT OR REPLACE INTO idmap VALUES (?, ?, ?)", ((c, t, i) for c, (t, i) in ids.items())
        )
    for kind in _ID_BASE:
        portal.set_meta(f"next_id:{kind}", _ID_BASE[kind] + counters[kind] + 1)
    return counts


def _engagement(a: dict[str, Any], kind: str, owner_of: dict[str, str]) -> tuple[dict[str, Any], int]:
    occurred, created = _iso(a["occurred_at"]), _iso(a["created_at"]) or _iso(a["occurred_at"])
    props: dict[str, Any] = {
        "hs_timestamp": occurred,
        "hs_createdate": created,
        "hubspot_owner_id": owner_of.get(a["owner_id"]),
    }
    outcome, direction, duration = a["outcome"], a["direction"], a["duration_s"]
    native = False
    if kind == "calls":
        props.update(
            hs_call_direction={"outbound": "OUTBOUND", "inbound": "INBOUND"}.get(direction or ""),
            hs_call_duration=str(int(duration) * 1000) if duration is not None else None,
            hs_call_status="COMPLETED" if outcome in ("connected", "positive", "negative", "replied") else "NO_ANSWER",
            hs_call_title=a["subject"],
            hs_call_disposition=call_disposition(outcome) if outcome else None,
        )
        native = True
    elif kind == "emails":
        props.update(
            hs_email_direction={"outbound": "EMAIL", "inbound": "INCOMING_EMAIL"}.get(
                direction or "", "FORWARDED_EMAIL"
            ),
            hs_email_status="SENT",
            hs_email_subject=a["subject"],
        )
    elif kind == "meetings":
        end = ms_to_iso(iso_to_ms(occurred) + int(duration) * 1000) if occurred and duration is not None else None
        props.update(
            hs_meeting_title=a["subject"],
            hs_meeting_start_time=occurred,
            hs_meeting_end_time=end,
            hs_meeting_outcome=MEETING_OUTCOMES.get(outcome or ""),
            hs_meeting_source="CRM_UI",
            hs_activity_type="Visit" if a["type"] == "visit" else None,
        )
        native = outcome in MEETING_OUTCOMES or outcome is None
    elif kind == "tasks":
        props.update(
            hs_task_subject=a["subject"],
            hs_task_status="COMPLETED" if outcome == "completed" else "NOT_STARTED",
            hs_task_type="TODO",
            hs_task_completion_date=occurred if outcome == "completed" else None,
        )
        native = outcome in ("completed", None)
    else:
        props.update(hs_note_body=a["subject"], hs_activity_type="Other" if a["type"] == "other" else None)
    if outcome and not native:
        props["sales_outcome"] = outcome  # what a portal keeps in a custom property
    return props, iso_to_ms(created) if created else 0
