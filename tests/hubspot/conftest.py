"""HubSpot tests run against the sandbox portal over real HTTPS with the real
hubspot-api-client. Until `kpisync.generator` lands, the portal is fed a small
canonical org built here by hand (deterministic, every mapped value covered)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from kpisync.config import load_config
from kpisync.connectors.sandbox import hubspot as hubspot_sandbox
from kpisync.store import Store

TEAMS = (("SDR East", "sdr", "east"), ("AE West", "ae", "west"), ("AM Central", "am", "central"))
OUTCOMES = ("connected", "no_answer", "positive", "negative", None)
STAGES = ("Prospecting", "Qualification", "Proposal/Price Quote", "Closed Won", "Closed Lost")


def _ts(day: int, hour: int = 9, minute: int = 0) -> str:
    moment = datetime(2026, 1, 1, hour, minute, tzinfo=UTC) + timedelta(days=day % 320)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def canonical_rows(n_contacts: int = 24, n_activities: int = 90, n_opps: int = 10) -> dict[str, list[dict[str, Any]]]:
    users = [
        {
            "id": f"u{i:04d}",
            "name": f"Rep{i} Person",
            "email": f"rep{i}@example.com",
            "role": TEAMS[i % 3][1],
            "team": TEAMS[i % 3][0],
            "region": TEAMS[i % 3][2],
            "manager_id": None,
            "is_active": 0 if i == 5 else 1,
        }
        for i in range(1, 6)
    ]
    accounts = [
        {
            "id": f"acc{i:06d}",
            "name": f"Account {i}",
            "owner_id": users[i % 5]["id"],
            "type": "Customer",
            "industry": "Software",
            "country": "Germany",
            "state": None,
            "city": "Berlin",
            "region": "emea" if i % 2 else "amer",
            "created_at": _ts(i),
            "churned_at": _ts(100 + i) if i == 3 else None,
            "annual_revenue": 1000.0 * i,
        }
        for i in range(1, 7)
    ]
    sources = (("Web", "inbound"), ("Partner", "referral"), ("Cold Call", "outbound"), ("Webinar", "event"))
    stages_seq = ("lead", "mql", "sql", "opportunity", "customer")
    contacts, events = [], []
    for i in range(1, n_contacts + 1):
        source, channel = sources[i % 4]
        reached = stages_seq[: 1 + i % 5]
        contacts.append(
            {
                "id": f"con{i:06d}",
                "kind": "contact",
                "source_object": "contacts",
                "account_id": accounts[i % 6]["id"],
                "owner_id": users[i % 5]["id"],
                "email": f"person{i}@example.org",
                "name": f"Person{i} Last{i}",
                "lifecycle_stage": reached[-1],
                "lead_status": "OPEN" if i % 2 else "CONNECTED",
                "lead_source": source,
                "channel": channel,
                "country": "Germany",
                "state": None,
                "city": "Hamburg",
                "region": "emea" if i % 2 else "amer",
                "created_at": _ts(i % 40),
                "converted_at": None,
                "converted_contact_id": None,
                "nps_score": i % 11 if i % 3 == 0 else None,
            }
        )
        for k, stage in enumerate(reached):
            events.append(
                {
                    "contact_id": f"con{i:06d}",
                    "stage": stage,
                    "entered_at": _ts(i % 40 + k * 3, 10),
                    "source": "hs_date_entered",
                }
            )
    opps, history = [], []
    for i in range(1, n_opps + 1):
        final = STAGES[i % 5]
        closed, won = final.startswith("Closed"), final == "Closed Won"
        source, channel = sources[i % 4]
        opps.append(
            {
                "id": f"opp{i:06d}",
                "name": f"Deal {i}",
                "account_id": accounts[i % 6]["id"],
                "contact_id": f"con{i:06d}",
                "owner_id": users[i % 5]["id"],
                "created_by_id": None,
                "amount": 500.0 * i,
                "stage": final,
                "pipeline": "Sales Pipeline",
                "is_closed": int(closed),
                "is_won": int(won),
                "created_at": _ts(i),
                "closed_at": _ts(i + 30) if closed else None,
                "deal_type": ("new_business", "upsell", "renewal")[i % 3],
                "lead_source": source,
                "channel": channel,
                "competitor_price": 400.0 if i % 4 == 0 else None,
                "region": "emea",
            }
        )
        path = [s for s in STAGES[: STAGES.index(final) + 1] if not s.startswith("Closed")] + (
            [final] if closed else []
        )
        for k, stage in enumerate(path):
            history.append(
                {
                    "opportunity_id": f"opp{i:06d}",
                    "stage": stage,
                    "entered_at": _ts(i + 30 if stage == final and closed else i + k * 5, 11),
                    "amount": None,
                }
            )
    kinds = (
        ("call", "outbound"),
        ("email", "outbound"),
        ("email", "inbound"),
        ("meeting", "outbound"),
        ("task", None),
        ("note", None),
        ("visit", "outbound"),
    )
    activities = []
    for i in range(1, n_activities + 1):
        kind, direction = kinds[i % len(kinds)]
        outcome = {
            "call": OUTCOMES[i % 5],
            "meeting": ("booked", "completed", "no_show", "canceled")[i % 4],
            "task": "completed" if i % 2 else None,
            "email": "replied" if direction == "inbound" and i % 2 else None,
        }.get(kind)
        activities.append(
            {
                "id": f"act{i:07d}",
                "type": kind,
                "direction": direction,
                "owner_id": users[i % 5]["id"],
                "contact_id": f"con{1 + i % n_contacts:06d}",
                "account_id": accounts[i % 6]["id"],
                "opportunity_id": f"opp{1 + i % n_opps:06d}" if i % 3 == 0 else None,
                "occurred_at": _ts(i % 60, 14, i % 60),
                "created_at": _ts(i % 60, 15, i % 60),
                "duration_s": (60 * (i % 7) if kind in ("call", "meeting", "visit") else None),
                "outcome": outcome,
                "subject": f"Touch {i}",
            }
        )
    cases = [
        {
            "id": f"case{i:05d}",
            "account_id": accounts[i % 6]["id"],
            "contact_id": f"con{i:06d}",
            "owner_id": users[i % 5]["id"],
            "status": "Closed" if i % 2 else "New",
            "priority": "HIGH",
            "origin": "EMAIL",
            "created_at": _ts(i),
            "first_response_at": _ts(i, 12),
            "closed_at": _ts(i + 2) if i % 2 else None,
            "is_closed": i % 2,
        }
        for i in range(1, 5)
    ]
    return {
        "users": users,
        "accounts": accounts,
        "contacts": contacts,
        "lifecycle_events": events,
        "opportunities": opps,
        "opportunity_stage_history": history,
        "activities": activities,
        "cases": cases,
    }


def canonical_store(path: Path | str = ":memory:", **sizes: int) -> Store:
    store = Store.open(path)
    for table, rows in canonical_rows(**sizes).items():
        store.upsert(table, rows)
    return store


@pytest.fixture(scope="module")
def org() -> Iterator[Store]:
    store = canonical_store()
    yield store
    store.close()


@pytest.fixture
def sandbox(tmp_path: Path, org: Store) -> Iterator[hubspot_sandbox.HubSpotSandbox]:
    sb = hubspot_sandbox.start(data_dir=tmp_path / "portal", canonical=org)
    yield sb
    sb.stop()


@pytest.fixture(scope="module")
def shared_sandbox(tmp_path_factory: pytest.TempPathFactory, org: Store) -> Iterator[hubspot_sandbox.HubSpotSandbox]:
    """One portal for the tests of a module that only read it: they never add, change, merge or archive
    records, set limits, scopes or faults, or expire tokens (those take `sandbox`, a portal of their own)."""
    sb = hubspot_sandbox.start(data_dir=tmp_path_factory.mktemp("shared") / "portal", canonical=org)
    yield sb
    sb.stop()


@pytest.fixture
def config(sandbox: hubspot_sandbox.HubSpotSandbox, tmp_path: Path) -> Any:
    return load_config(sandbox.config_path)


def drive(connector: Any, store: Store, *, full: bool = False, objects: list[str] | None = None) -> dict[str, int]:
    """What the sync engine does (kpisync.sync.engine, not on main yet): store each Page's rows and
    cursor in one transaction. Returns rows stored per object."""
    from kpisync.timestamps import utc_now

    counts: dict[str, int] = {}
    for spec in connector.objects():
        if objects and spec.name not in objects:
            continue
        cursor = store.get_cursor("hubspot", spec.name)
        for page in connector.pull(spec, cursor, full=full):
            with store.transaction():
                for table, rows in page.rows.items():
                    groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
                    for row in rows:
                        groups.setdefault(tuple(row), []).append(row)
                    for group in groups.values():
                        store.upsert(table, group)
                if page.quarantined:
                    store.upsert(
                        "quarantine",
                        [
                            {
                                "crm": "hubspot",
                                "object": spec.name,
                                "record_id": q.record_id,
                                "reason": q.reason,
                                "raw": q.raw,
                                "at": utc_now(),
                            }
                            for q in page.quarantined
                        ],
                    )
                if page.cursor is not None:
                    store.set_cursor("hubspot", spec.name, page.cursor)
            counts[spec.name] = counts.get(spec.name, 0) + page.count()
    return counts
