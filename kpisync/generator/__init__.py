"""A deterministic, realistic sales org, written straight into a canonical store.

The demo, the sandbox CRMs and the KPI tests all start from here::

    from kpisync.generator import build_org
    from kpisync.store import Store

    with Store.open(":memory:") as store:
        summary = build_org(store, "small", seed=7)
        summary.counts["activities"]  # about 10,000

The same (size, seed, now) always gives the same rows. The org covers the 15
months before `now` and nothing after it; only the installed base (customers
since before the window: their account, first deal and buyer) is older.

How the stories fit together: `funnel` (new people, SDR/BDR cadences, new
business deals), `deals` (one opportunity's stages and the owner's work on it),
`customers` (prospect accounts, the installed base, renewals, expansion, churn,
cases, surveys), `org` (reps, quotas, spend, eNPS). `world` holds the shared
state and writes rows in chunks, so memory stays bounded at any size.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field
from datetime import date, datetime

from kpisync.generator import customers, funnel, org
from kpisync.generator.bulk import bulk_load
from kpisync.generator.clock import DAY, add_months, day_text, epoch_of, stamp, to_epoch
from kpisync.generator.world import BUFFERS, World
from kpisync.store import Store

DEFAULT_NOW = "2026-11-20T12:00:00Z"
WINDOW_MONTHS = 15
GENERATED_TABLES = frozenset(name.partition(":")[0] for name in BUFFERS)

_BIG_TEAMS = (
    ("NA Enterprise", ("na",)),
    ("NA Commercial", ("na",)),
    ("EMEA", ("emea",)),
    ("APAC", ("apac",)),
    ("LATAM", ("latam",)),
)
_BIG_LINE_UP = ("manager", "sdr", "sdr", "sdr", "bdr", "ae", "ae", "ae", "am", "am")


@dataclass(frozen=True)
class OrgSize:
    """How big an org is. `people` is how many persons enter the funnel during
    the window; the other tables follow from the stories."""

    name: str
    teams: tuple[tuple[str, tuple[str, ...]], ...]  # (team, regions it covers)
    line_up: tuple[str, ...]  # roles of one team, its manager first
    people: int
    target_accounts: int  # prospect accounts that outbound works on
    installed_accounts: int  # customers since before the window

    @property
    def reps(self) -> int:
        return len(self.teams) * len(self.line_up)


SIZES: dict[str, OrgSize] = {
    # 15 reps in 3 teams (manager, SDR, BDR, AE, AM each); Americas covers na and latam.
    "small": OrgSize(
        "small",
        (("Americas", ("na", "latam")), ("EMEA", ("emea",)), ("APAC", ("apac",))),
        ("manager", "sdr", "bdr", "ae", "am"),
        people=1_800,
        target_accounts=220,
        installed_accounts=200,
    ),
    # 50 reps in 5 teams of 10: a manager, 3 SDRs, a BDR, 3 AEs and 2 AMs.
    "medium": OrgSize(
        "medium",
        _BIG_TEAMS,
        _BIG_LINE_UP,
        people=22_000,
        target_accounts=3_000,
        installed_accounts=2_000,
    ),
    "large": OrgSize(
        "large",
        _BIG_TEAMS,
        _BIG_LINE_UP,
        people=220_000,
        target_accounts=30_000,
        installed_accounts=20_000,
    ),
}


@dataclass(frozen=True)
class OrgSummary:
    size: str
    seed: int
    now: str  # the `now` the org was built for
    window_start: str  # `now` minus 15 months
    counts: dict[str, int] = field(default_factory=dict)  # rows written per table
    seconds: float = 0.0


def build_org(store: Store, size: str = "small", seed: int = 7, now: str | datetime | None = None) -> OrgSummary:
    """Fill every canonical table of `store` with a generated sales org.

    Deterministic for (size, seed, now); `now` defaults to DEFAULT_NOW so that
    tests and fixtures are reproducible. Meant for an empty store; building
    again into the same store overwrites the rows of the first build (ids are
    the same every time).
    """
    try:
        spec = SIZES[size]
    except KeyError:
        raise ValueError(f"unknown org size {size!r}; choose one of {', '.join(SIZES)}") from None
    began = time.perf_counter()
    now_t = to_epoch(now if now is not None else DEFAULT_NOW)
    now_day = date.fromisoformat(day_text(now_t // DAY))
    start_t = epoch_of(add_months(now_day, -WINDOW_MONTHS)) + now_t % DAY
    rng = random.Random(f"kpisync-org:{size}:{seed}")
    world = World(store, rng, now_t, start_t, chunk_rows=20_000)

    with bulk_load(store, GENERATED_TABLES):
        # Team quotas have a NULL in their key, so an upsert cannot replace them.
        with store.transaction() as conn:
            conn.execute("DELETE FROM quotas WHERE user_id IS NULL AND source = 'generator'")
        org.add_users(world, spec.teams, spec.line_up)
        customers.seed_accounts(world, spec.target_accounts, spec.installed_accounts)
        funnel.run_funnel(world, spec.people)
        customers.run_customers(world)
        customers.write_accounts(world)
        org.add_quotas(world)
        org.add_spend(world)
        org.add_enps(world)
        world.sink.flush()
    return OrgSummary(
        size=size,
        seed=seed,
        now=stamp(now_t),
        window_start=stamp(start_t),
        counts=dict(sorted(world.sink.written.items())),
        seconds=time.perf_counter() - began,
    )


__all__ = ["DEFAULT_NOW", "SIZES", "OrgSize", "OrgSummary", "build_org"]
