"""The sales team and its numbers: reps, quotas, marketing spend, employee NPS.

Quotas and spend are set *after* the deals and leads exist, from what each rep
closed and what each channel brought in, the way sales ops calibrate a plan on
actuals: attainment then spreads around 100 % (a few reps above, most a little
below) instead of being all 0 % or all 500 %.
"""

from __future__ import annotations

from datetime import date

from kpisync.generator import vocabulary as vocab
from kpisync.generator.clock import DAY, day_text, epoch_of, month_starts
from kpisync.generator.world import World
from kpisync.schema import QUOTAS

QUOTA_ROLES = ("ae", "am")
# Each rep is expected to close about this share of their quota.
TYPICAL_ATTAINMENT = 0.9


def add_users(w: World, teams: tuple[tuple[str, tuple[str, ...]], ...], line_up: tuple[str, ...]) -> None:
    """`line_up` is one team's roles, its manager first. The first team's manager
    heads sales and reports to nobody; the other managers report to them."""
    head = None
    number = 0
    for team, regions in teams:
        for region in regions:
            w.region_teams.setdefault(region, []).append(team)
        manager = None
        for index, role in enumerate(line_up):
            number += 1
            user_id = f"u{number:04d}"
            region = regions[index % len(regions)]
            name, local = w.person_name()
            w.add_user(user_id, role, team, region)
            if role == "manager":
                manager, boss = user_id, head
                head = head or user_id
            else:
                boss = manager
            w.out["users"].append(
                _user_row(w, user_id, name, f"{local}@kpisync-demo.example", role, team, region, boss)
            )
    # An API user that was deleted: owns nothing and must not count as a rep.
    row = _user_row(
        w,
        f"u{number + 1:04d}",
        "Integration User",
        "integration@kpisync-demo.example",
        "other",
        None,
        None,
        None,
    )
    w.out["users"].append({**row, "is_active": 0, "is_deleted": 1})


def _user_row(
    w: World,
    user_id: str,
    name: str,
    email: str,
    role: str,
    team: str | None,
    region: str | None,
    manager_id: str | None,
) -> dict[str, object]:
    return {
        "id": user_id,
        "name": name,
        "email": email,
        "role": role,
        "team": team,
        "region": region,
        "manager_id": manager_id,
        "is_active": 1,
        "is_deleted": 0,
        "raw": None,
        "synced_at": w.synced_at,
    }


def _window_months(w: World) -> list[date]:
    return month_starts(date.fromisoformat(day_text(w.start // DAY)), date.fromisoformat(day_text(w.now // DAY)))


def _quarter_of(month: date) -> date:
    return date(month.year, 3 * ((month.month - 1) // 3) + 1, 1)


def _next_month(month: date) -> date:
    return date(month.year + month.month // 12, month.month % 12 + 1, 1)


def add_quotas(w: World) -> None:
    """Monthly and quarterly revenue quotas for AEs and AMs, quarterly team quotas.

    A rep's quarterly quota starts on the same day as the quarter's first
    monthly one; both fit because `period_end` is part of the quotas key
    (the spec's key leaves it out; older stores are migrated).
    """
    rng = w.rng
    months = _window_months(w)
    quarters = sorted({_quarter_of(m) for m in months})
    all_months = sorted({date(q.year, q.month + i, 1) for q in quarters for i in range(3)})
    rep_quarters = "period_end" in QUOTAS.pk
    team_quarter: dict[tuple[str, date], float] = {}
    for (team, role), members in w.staff.items():
        if role not in QUOTA_ROLES:
            continue
        for user_id in members:
            won = sum(w.won_by_owner_month[(user_id, m)] for m in months)
            base = max(won / len(months), 5_000.0) / TYPICAL_ATTAINMENT
            base *= w.lognormal(1.0, 0.15)
            monthly = {
                m: round(base * (0.9 + 0.2 * i / max(1, len(all_months) - 1)), -3) for i, m in enumerate(all_months)
            }
            for m in months:
                _quota(w, user_id, team, m, _next_month(m), monthly[m])
            for q in quarters:
                amount = sum(monthly[date(q.year, q.month + i, 1)] for i in range(3))
                team_quarter[(team, q)] = team_quarter.get((team, q), 0.0) + amount
                if rep_quarters:
                    _quota(w, user_id, team, q, _quarter_end(q), amount)
    for (team, q), amount in team_quarter.items():
        _quota(w, None, team, q, _quarter_end(q), round(amount * (0.97 + rng.random() * 0.06), -3))


def _quarter_end(quarter: date) -> date:
    return date(quarter.year + (quarter.month + 3 > 12), (quarter.month + 2) % 12 + 1, 1)


def _quota(w: World, user_id: str | None, team: str, start: date, end: date, amount: float) -> None:
    w.out["quotas"].append(
        {
            "user_id": user_id,
            "team": team,
            "period_start": start.isoformat(),
            "period_end": end.isoformat(),
            "amount": amount,
            "source": "generator",
        }
    )


def add_spend(w: World) -> None:
    """Monthly spend per campaign, proportional to the people each channel brought.

    Event budgets are booked per quarter, so those rows straddle months (the
    cost KPIs must pro-rate them). Months cut by the window's edges are
    budgeted in full.
    """
    months = _window_months(w)
    for campaign, channel, cost_per_person in vocab.CAMPAIGNS:
        by_period: dict[date, float] = {}
        for month in months:
            begin, end = epoch_of(month), epoch_of(_next_month(month))
            covered = min(end, w.now) - max(begin, w.start)
            people = w.people_by_channel_month[(channel, month)]
            full_month = people * (end - begin) / max(covered, DAY)
            period = _quarter_of(month) if channel == "event" else month
            by_period[period] = by_period.get(period, 0.0) + full_month * cost_per_person
        for period, amount in by_period.items():
            end = _quarter_end(period) if channel == "event" else _next_month(period)
            w.out["spend"].append(
                {
                    "id": w.new_id("spd", 5),
                    "campaign": campaign,
                    "channel": channel,
                    "period_start": period.isoformat(),
                    "period_end": end.isoformat(),
                    "amount": round(amount * w.lognormal(1.0, 0.08), 2),
                }
            )


def add_enps(w: World) -> None:
    """A quarterly employee NPS pulse; most reps answer."""
    rng = w.rng
    mood = {team: rng.gauss(0.0, 0.8) for team in dict.fromkeys(w.user_team.values())}
    for quarter in sorted({_quarter_of(m) for m in _window_months(w)}):
        sent = epoch_of(quarter) + 14 * DAY
        if not w.start <= sent <= w.now:
            continue
        for user_id, team in w.user_team.items():
            if rng.random() < 0.8:
                answered = sent + int(rng.random() * 7 * DAY)
                if answered <= w.now:
                    score = min(10, max(0, round(rng.gauss(7.3 + mood[team], 1.7))))
                    w.survey("enps", None, None, user_id, score, answered)
