"""Helpers of the Salesforce tests: a small hand-made canonical org, and the engine's page loop.

The shared generator builds the big orgs; these tests need an org small enough
to reason about row by row, so `build_canonical` writes one by hand.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kpisync.store import Store
from kpisync.sync.engine import store_page

FIXTURES = Path(__file__).resolve().parents[3] / "shared" / "fixtures" / "salesforce"

USERS = [
    ("u0001", "Ava Lindqvist", "ae", "Enterprise", "EMEA", "u0004"),
    ("u0002", "Ben Okafor", "sdr", "Inbound", "EMEA", "u0004"),
    ("u0003", "Carla Diaz", "am", "Enterprise", "AMER", "u0004"),
    ("u0004", "Chloe Martins", "manager", "Enterprise", "EMEA", None),
]


def _ts(day: int, hour: int = 9) -> str:
    return f"2025-03-{day:02d}T{hour:02d}:00:00Z"


def build_canonical(path: Path) -> Path:
    """A small canonical org exercising every table and mapping the connector reads."""
    with Store.open(path) as store:
        store.upsert(
            "users",
            [
                {
                    "id": i,
                    "name": n,
                    "email": f"{i}@acme.example",
                    "role": r,
                    "team": t,
                    "region": g,
                    "manager_id": m,
                    "is_active": 1,
                    "is_deleted": 0,
                }
                for i, n, r, t, g, m in USERS
            ],
        )
        store.upsert(
            "accounts",
            [
                {
                    "id": f"acc{n:03d}",
                    "name": f"Account {n}",
                    "owner_id": "u0003" if n % 2 else "u0001",
                    "type": "Customer" if n < 3 else "Prospect",
                    "industry": "Software",
                    "country": "UK",
                    "state": None,
                    "city": "London",
                    "region": "EMEA",
                    "created_at": _ts(n),
                    "churned_at": "2025-03-20T00:00:00Z" if n == 2 else None,
                    "annual_revenue": 1000.0 * n,
                    "is_deleted": 0,
                }
                for n in range(1, 6)
            ],
        )
        people: list[dict[str, Any]] = []
        for n in range(1, 6):
            people.append(
                {
                    "id": f"con{n:03d}",
                    "kind": "contact",
                    "source_object": "Contact",
                    "account_id": f"acc{n:03d}",
                    "owner_id": "u0001",
                    "email": f"c{n}@x.example",
                    "name": f"Contact {n}",
                    "lead_status": None,
                    "lead_source": "Web" if n % 2 else "Partner Referral",
                    "channel": "inbound" if n % 2 else "referral",
                    "country": "UK",
                    "state": None,
                    "city": "Leeds",
                    "region": "EMEA",
                    "created_at": _ts(n + 1),
                    "converted_at": None,
                    "converted_contact_id": None,
                    "nps_score": 9 if n == 1 else None,
                    "is_deleted": 0,
                }
            )
        for n in range(1, 7):
            converted = n <= 2
            people.append(
                {
                    "id": f"lead{n:03d}",
                    "kind": "lead",
                    "source_object": "Lead",
                    "account_id": f"acc{n:03d}" if converted else None,
                    "owner_id": "u0002",
                    "email": f"l{n}@y.example",
                    "name": f"Lead {n}",
                    "lead_status": "Closed - Converted" if converted else "Working - Contacted",
                    "lead_source": "Web" if n % 2 else "Cold Call",
                    "channel": "inbound" if n % 2 else "outbound",
                    "country": "DE",
                    "state": None,
                    "city": "Berlin",
                    "region": "EMEA",
                    "created_at": _ts(n),
                    "converted_at": _ts(n + 5) if converted else None,
                    "converted_contact_id": f"con{n:03d}" if converted else None,
                    "nps_score": None,
                    "is_deleted": 0,
                }
            )
        store.upsert("contacts", people)
        store.upsert(
            "lifecycle_events",
            [
                {"contact_id": "lead001", "stage": "mql", "entered_at": _ts(2), "source": "lead_history"},
                {"contact_id": "lead001", "stage": "sql", "entered_at": _ts(4), "source": "lead_history"},
                {"contact_id": "lead003", "stage": "mql", "entered_at": _ts(5), "source": "lead_history"},
            ],
        )
        opps = []
        for n in range(1, 7):
            closed, won = n <= 4, n <= 2
            opps.append(
                {
                    "id": f"opp{n:03d}",
                    "name": f"Deal {n}",
                    "account_id": f"acc{(n % 5) + 1:03d}",
                    "contact_id": f"con{(n % 5) + 1:03d}",
                    "owner_id": "u0001" if n % 2 else "u0003",
                    "created_by_id": "u0002",
                    "amount": 1000.0 * n,
                    "stage": "Closed Won" if won else ("Closed Lost" if closed else "Proposal/Price Quote"),
                    "pipeline": "New Business" if n % 2 else "Expansion",
                    "is_closed": int(closed),
                    "is_won": int(won),
                    "created_at": _ts(n),
                    "closed_at": _ts(n + 10) if closed else None,
                    "deal_type": "new_business" if n % 2 else "upsell",
                    "lead_source": "Web",
                    "channel": "inbound",
                    "competitor_price": 900.0 if n == 1 else None,
                    "region": "EMEA",
                    "is_deleted": 0,
                }
            )
        store.upsert("opportunities", opps)
        store.upsert(
            "opportunity_stage_history",
            [
                {"opportunity_id": "opp001", "stage": "Prospecting", "entered_at": _ts(1), "amount": 1000.0},
                {"opportunity_id": "opp001", "stage": "Closed Won", "entered_at": _ts(11), "amount": 1000.0},
                {"opportunity_id": "opp005", "stage": "Prospecting", "entered_at": _ts(5), "amount": 5000.0},
                {"opportunity_id": "opp005", "stage": "Proposal/Price Quote", "entered_at": _ts(9), "amount": 5000.0},
            ],
        )
        kinds = [
            ("call", "outbound", "connected", 300),
            ("call", "inbound", "no_answer", 60),
            ("email", "outbound", "replied", None),
            ("meeting", "outbound", "booked", 1800),
            ("visit", "outbound", "completed", 3600),
            ("task", None, "completed", None),
        ]
        store.upsert(
            "activities",
            [
                {
                    "id": f"act{n:03d}",
                    "type": k[0],
                    "direction": k[1],
                    "owner_id": "u0002",
                    "contact_id": "lead003" if n % 2 else "con002",
                    "account_id": None if n % 2 else "acc002",
                    "opportunity_id": "opp002" if n % 3 == 0 else None,
                    "occurred_at": _ts(n % 28 + 1, 10),
                    "created_at": _ts(n % 28 + 1, 11),
                    "duration_s": k[3],
                    "outcome": k[2],
                    "subject": f"Touch {n}",
                    "is_deleted": 0,
                }
                for n, k in ((n, kinds[n % len(kinds)]) for n in range(1, 25))
            ],
        )
        store.upsert(
            "cases",
            [
                {
                    "id": f"case{n:03d}",
                    "account_id": "acc001",
                    "contact_id": "con001",
                    "owner_id": "u0003",
                    "status": "Closed" if n == 1 else "New",
                    "priority": "High",
                    "origin": "Email",
                    "created_at": _ts(n),
                    "first_response_at": None,
                    "closed_at": _ts(n + 2) if n == 1 else None,
                    "is_closed": int(n == 1),
                    "is_deleted": 0,
                }
                for n in range(1, 4)
            ],
        )
        store.upsert(
            "spend",
            [
                {
                    "id": "cmp001",
                    "campaign": "Spring webinar",
                    "channel": "inbound",
                    "period_start": "2025-03-01",
                    "period_end": "2025-04-01",
                    "amount": 2500.0,
                },
                {
                    "id": "cmp002",
                    "campaign": "Partner push",
                    "channel": "referral",
                    "period_start": "2025-01-01",
                    "period_end": "2025-04-01",
                    "amount": 1200.0,
                },
            ],
        )
    return path


def drive(
    connector: Any, store: Store, *, full: bool = False, objects: list[str] | None = None, max_pages: int | None = None
) -> int:
    """The sync engine's page loop (rows, quarantine and cursor in one transaction per page), with a way to
    die after `max_pages` pages like a killed process. Returns the pages stored."""
    stored = 0
    for spec in connector.objects():
        if objects is not None and spec.name not in objects:
            continue
        cursor = None if full else store.get_cursor("salesforce", spec.name)
        for page in connector.pull(spec, cursor, full=full):
            store_page(store, "salesforce", spec, page)
            stored += 1
            if max_pages is not None and stored >= max_pages:
                return stored
    return stored
