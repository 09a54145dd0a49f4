"""The generator's shared state: randomness, clock, ids, staff, accounts, output.

Everything the stories (funnel, deals, customers) need from each other lives on
one `World`, so each story is a plain function of the world and a few facts.
Rows leave through `Sink`, which writes them in chunks so that memory stays
bounded however large the org: only accounts (tens of thousands) and a few
per-month tallies are held for the whole build.
"""

from __future__ import annotations

import bisect
import itertools
import json
import math
import random
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from kpisync.generator import vocabulary as vocab
from kpisync.generator.clock import DAY, day_text, stamp
from kpisync.store import Store

_to_json = json.JSONEncoder(sort_keys=True, ensure_ascii=False).encode
# Share of rows in each record table flagged `is_deleted = 1`.
DELETED_SHARE = 0.003

# Output buffers, in the order they are written: an update buffer
# ("table:purpose") always follows the inserts it updates.
BUFFERS = (
    "users",
    "accounts",
    "contacts",
    "lifecycle_events",
    "opportunities",
    "opportunity_stage_history",
    "activities",
    "cases",
    "surveys",
    "quotas",
    "spend",
    "contacts:nps",
    "contacts:stage",
)


class Sink:
    """Buffers rows per table and upserts them: one transaction per chunk of
    about `chunk_rows` rows, at most UPSERT_ROWS rows per `store.upsert` call."""

    UPSERT_ROWS = 20_000

    def __init__(self, store: Store, chunk_rows: int) -> None:
        self.store = store
        self.chunk_rows = chunk_rows
        self.rows: dict[str, list[dict[str, Any]]] = {name: [] for name in BUFFERS}
        self.written: Counter[str] = Counter()

    def maybe_flush(self) -> None:
        if sum(map(len, self.rows.values())) >= self.chunk_rows:
            self.flush()

    def flush(self) -> None:
        with self.store.transaction():
            for name, rows in self.rows.items():
                table = name.partition(":")[0]
                for start in range(0, len(rows), self.UPSERT_ROWS):
                    self.store.upsert(table, rows[start : start + self.UPSERT_ROWS])
                if table == name:
                    self.written[name] += len(rows)
                rows.clear()


class Weighted:
    """A fast weighted choice (bisect over cumulative weights)."""

    def __init__(self, pairs: Sequence[tuple[Any, float]]) -> None:
        self.items = [item for item, _ in pairs]
        self.cumulative: list[float] = []
        total = 0.0
        for _, weight in pairs:
            total += weight
            self.cumulative.append(total)
        self.total = total

    def pick(self, rng: random.Random) -> Any:
        return self.items[bisect.bisect_right(self.cumulative, rng.random() * self.total)]


class Account:
    """What the stories need to know about a company while the org is built."""

    __slots__ = (
        "annual_revenue",
        "arr",
        "churned_at",
        "city",
        "contacts",
        "country",
        "created_at",
        "customer_since",
        "health",
        "id",
        "industry",
        "installed",
        "name",
        "owner_id",
        "region",
        "state",
        "team",
        "won_deals",
    )

    def __init__(self, **fields: Any) -> None:
        self.customer_since: int | None = None
        self.churned_at: int | None = None
        self.arr = 0.0
        self.installed = False  # a customer since before the window
        self.won_deals = 0
        self.contacts: list[str] = []
        for name, value in fields.items():
            setattr(self, name, value)


@dataclass(frozen=True)
class Place:
    region: str
    country: str
    state: str | None
    city: str


class World:
    """Randomness, the clock, ids, the staff, the accounts and the output of one build."""

    def __init__(self, store: Store, rng: random.Random, now: int, start: int, chunk_rows: int):
        self.rng = rng
        self.now = now
        self.start = start
        self.synced_at = stamp(now)
        self.sink = Sink(store, chunk_rows)
        self.out = self.sink.rows
        self._ids: dict[str, tuple[Iterator[int], str]] = {}
        self._random = rng.random
        self._activity_numbers = itertools.count(1)
        # users
        self.user_team: dict[str, str] = {}
        self.user_region: dict[str, str] = {}
        self.staff: dict[tuple[str, str], list[str]] = {}
        self.region_teams: dict[str, list[str]] = {}
        # accounts
        self.accounts: list[Account] = []
        self.prospects: dict[str, list[Account]] = {region: [] for region in vocab.REGIONS}
        # tallies for quotas and spend: (user or channel, month start) -> value
        self.won_by_owner_month: Counter[tuple[str, date]] = Counter()
        self.people_by_channel_month: Counter[tuple[str, date]] = Counter()
        self._first_day = start // DAY
        self._month_of_day: list[date] = []
        day = self._first_day
        while day <= now // DAY:
            self._month_of_day.append(date.fromisoformat(day_text(day)[:8] + "01"))
            day += 1
        self.places = Weighted(
            [
                (Place(region, country, state, city), region_weight * weight / len(cities))
                for region, region_weight in vocab.REGION_WEIGHTS.items()
                for country, (weight, cities) in vocab.REGIONS[region][1].items()
                for state, city in cities
            ]
        )
        self.region_offset = {region: spec[0] for region, spec in vocab.REGIONS.items()}

    # -- ids and small draws --

    def new_id(self, prefix: str, width: int = 7) -> str:
        """`prefix` + a zero-padded sequence number: ids are unique across tables."""
        sequence = self._ids.get(prefix)
        if sequence is None:
            sequence = self._ids[prefix] = (itertools.count(1), f"{prefix}%0{width}d")
        return sequence[1] % next(sequence[0])

    def activity_id(self) -> str:
        return f"act{next(self._activity_numbers):07d}"

    def choice(self, items: Sequence[Any]) -> Any:
        """`random.choice`, without its overhead (called millions of times)."""
        return items[int(self._random() * len(items))]

    def deleted(self) -> int:
        return 1 if self.rng.random() < DELETED_SHARE else 0

    def lognormal(self, median: float, sigma: float) -> float:
        return median * math.exp(self.rng.gauss(0.0, sigma))

    def month_of(self, t: int) -> date | None:
        index = t // DAY - self._first_day
        if 0 <= index < len(self._month_of_day):
            return self._month_of_day[index]
        return None

    def person_name(self) -> tuple[str, str]:
        first = self.choice(vocab.FIRST_NAMES)
        last = self.choice(vocab.LAST_NAMES)
        return f"{first} {last}", f"{first}.{last}".lower()

    def company_name(self) -> str:
        return (
            f"{self.choice(vocab.COMPANY_WORDS)} {self.choice(vocab.COMPANY_KINDS)} "
            f"{self.choice(vocab.COMPANY_SUFFIXES)}"
        )

    # -- staff --

    def add_user(self, user_id: str, role: str, team: str, region: str) -> None:
        self.user_team[user_id] = team
        self.user_region[user_id] = region
        self.staff.setdefault((team, role), []).append(user_id)

    def rep(self, team: str, *roles: str) -> str:
        """A rep of the first of `roles` the team has (small teams lack some roles)."""
        for role in roles:
            people = self.staff.get((team, role))
            if people:
                return people[0] if len(people) == 1 else self.choice(people)
        raise LookupError(f"team {team} has none of {roles}")

    def team_for(self, region: str) -> str:
        teams = self.region_teams[region]
        return teams[0] if len(teams) == 1 else self.choice(teams)

    def offset_of(self, user_id: str) -> int:
        return self.region_offset[self.user_region[user_id]]

    # -- accounts --

    def new_account(self, place: Place, created_at: int, team: str, owner_id: str) -> Account:
        rng = self.rng
        account = Account(
            id=self.new_id("acc", 6),
            name=self.company_name(),
            region=place.region,
            country=place.country,
            state=place.state,
            city=place.city,
            industry=self.choice(vocab.INDUSTRIES),
            created_at=created_at,
            team=team,
            owner_id=owner_id,
            annual_revenue=round(self.lognormal(40e6, 1.4), -4),
            health=rng.betavariate(5, 2),
        )
        self.accounts.append(account)
        return account

    def prospect_account(self, region: str, at: int) -> Account | None:
        """An existing, not-yet-customer account of the region, known at `at`."""
        pool = self.prospects[region]
        for _ in range(3):
            if not pool:
                return None
            account = self.choice(pool)
            if account.created_at <= at and (account.customer_since is None or account.customer_since > at):
                return account
        return None

    def record_won(self, owner_id: str, closed_at: int, amount: float) -> None:
        month = self.month_of(closed_at)
        if month is not None:
            self.won_by_owner_month[(owner_id, month)] += amount

    # -- rows --

    def tail(self, raw: dict[str, Any] | None = None) -> dict[str, Any]:
        return {
            "is_deleted": self.deleted(),
            "raw": _to_json(raw) if raw else None,
            "synced_at": self.synced_at,
        }

    def survey(
        self,
        kind: str,
        contact_id: str | None,
        account_id: str | None,
        user_id: str | None,
        score: int,
        submitted: int,
    ) -> None:
        self.out["surveys"].append(
            {
                "id": self.new_id("srv"),
                "kind": kind,
                "contact_id": contact_id,
                "account_id": account_id,
                "user_id": user_id,
                "score": score,
                "submitted_at": stamp(submitted),
            }
        )

    def lifecycle(self, contact_id: str, stage: str, t: int, source: str) -> None:
        self.out["lifecycle_events"].append(
            {"contact_id": contact_id, "stage": stage, "entered_at": stamp(t), "source": source}
        )

    def contact_row(
        self,
        contact_id: str,
        *,
        kind: str,
        account_id: str | None,
        owner_id: str,
        name: str,
        email: str,
        stage: str,
        lead_status: str | None,
        lead_source: str | None,
        channel: str | None,
        place: Place,
        created_at: int,
        converted_at: int | None = None,
        converted_contact_id: str | None = None,
        raw: dict[str, Any] | None = None,
    ) -> None:
        self.out["contacts"].append(
            {
                "id": contact_id,
                "kind": kind,
                "source_object": "Lead" if kind == "lead" else "Contact",
                "account_id": account_id,
                "owner_id": owner_id,
                "email": email,
                "name": name,
                "lifecycle_stage": stage,
                "lead_status": lead_status,
                "lead_source": lead_source,
                "channel": channel,
                "country": place.country,
                "state": place.state,
                "city": place.city,
                # a few people have no mapped region (unknown is NULL)
                "region": place.region if self.rng.random() > 0.01 else None,
                "created_at": stamp(created_at),
                "converted_at": None if converted_at is None else stamp(converted_at),
                "converted_contact_id": converted_contact_id,
                "nps_score": None,
                **self.tail(raw),
            }
        )


class Thread:
    """One rep's activities with one person, on an account and maybe a deal.

    `log` writes an activity row; `on_deal=False` leaves the opportunity id
    out, as reps often log work only against the person.
    """

    __slots__ = ("account_id", "contact_id", "opportunity_id", "owner_id", "w")

    def __init__(
        self,
        w: World,
        owner_id: str,
        contact_id: str | None,
        account_id: str | None,
        opportunity_id: str | None = None,
    ) -> None:
        self.w = w
        self.owner_id = owner_id
        self.contact_id = contact_id
        self.account_id = account_id
        self.opportunity_id = opportunity_id

    def log(
        self,
        kind: str,
        direction: str | None,
        t: int,
        outcome: str | None,
        subject: str,
        duration_s: int | None = None,
        booked_at: int | None = None,
        on_deal: bool = True,
    ) -> None:
        w = self.w
        if booked_at is None:
            # logged a little after it happened, sometimes at the end of the day
            lag = w.rng.random()
            created_at = t + (int(lag * 600) if lag < 0.85 else int(lag * 6 * 3600))
            if created_at > w.now:
                created_at = w.now
        else:
            created_at = booked_at  # a meeting is created when it is booked
        w.out["activities"].append(
            {
                "id": w.activity_id(),
                "type": kind,
                "direction": direction,
                "owner_id": self.owner_id,
                "contact_id": self.contact_id,
                "account_id": self.account_id,
                "opportunity_id": self.opportunity_id if on_deal else None,
                "occurred_at": stamp(t),
                "created_at": stamp(created_at),
                "duration_s": duration_s,
                "outcome": outcome,
                "subject": subject,
                "is_deleted": 1 if w.rng.random() < DELETED_SHARE else 0,
                "raw": None,
                "synced_at": w.synced_at,
            }
        )
