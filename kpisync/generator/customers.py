"""Accounts before and after they buy: prospects, the installed base, customer life.

Target accounts exist before outbound reaches them. The installed base are
customers since before the window (their first won deal, its contacts and
lifecycle events predate the window), so that renewals, churn, retention and
CLV have a history to work on from the first month. Every account that is a
customer at some point then lives on: yearly renewals (a lost renewal is a
churn), upsells and cross-sells, the account manager's touches, customer
emails that wait for an answer, support cases, NPS and CSAT surveys.
"""

from __future__ import annotations

from kpisync.generator import vocabulary as vocab
from kpisync.generator.clock import DAY, HOUR, MINUTE, business_time, stamp, stamp_or_none
from kpisync.generator.deals import CALL_OUTCOMES, DealPlan, call_seconds, play_deal
from kpisync.generator.funnel import CHANNEL_PICK
from kpisync.generator.world import Account, Place, Thread, Weighted, World

YEAR = 365 * DAY
AM_TOUCHES = Weighted([("email", 38), ("call", 35), ("meeting", 20), ("visit", 7)])
PRIORITIES = Weighted(list(vocab.CASE_PRIORITIES))
ORIGINS = Weighted(list(vocab.CASE_ORIGINS))


def seed_accounts(w: World, targets: int, installed: int) -> None:
    """Prospect accounts for outbound, and customers acquired before the window."""
    rng = w.rng
    span = w.now - w.start
    for _ in range(targets):
        place = w.places.pick(rng)
        team = w.team_for(place.region)
        if rng.random() < 0.7:
            created = w.start - int(rng.random() * 2 * YEAR)
        else:
            created = w.start + int(rng.random() * span)
        account = w.new_account(place, created, team, w.rep(team, "ae"))
        w.prospects[place.region].append(account)
    for _ in range(installed):
        place = w.places.pick(rng)
        team = w.team_for(place.region)
        since = w.start - int((20 + rng.random() * 3 * 365) * DAY)
        created = since - max(20 * DAY, int(w.lognormal(150 * DAY, 0.6)))
        account = w.new_account(place, created, team, w.rep(team, "am", "ae"))
        account.customer_since = since
        account.installed = True


def run_customers(w: World) -> None:
    for account in w.accounts:
        if account.customer_since is not None:
            if account.installed:
                _first_purchase(w, account)
            _customer_life(w, account)
            w.sink.maybe_flush()


def write_accounts(w: World) -> None:
    rng = w.rng
    for account in w.accounts:
        churned = account.churned_at
        if account.customer_since is None:
            kind = "Partner" if rng.random() < 0.03 else "Prospect"
        else:
            kind = "Former Customer" if churned is not None else "Customer"
        w.out["accounts"].append(
            {
                "id": account.id,
                "name": account.name,
                "owner_id": account.owner_id,
                "type": kind,
                "industry": account.industry,
                "country": account.country,
                "state": account.state,
                "city": account.city,
                "region": account.region,
                "created_at": stamp(account.created_at),
                "churned_at": stamp_or_none(churned),
                "annual_revenue": account.annual_revenue,
                **w.tail({"NumberOfEmployees": int(account.annual_revenue / 180_000) + 1}),
            }
        )
        w.sink.maybe_flush()


def _customer_contact(
    w: World, account: Account, created: int, owner: str, stage: str, channel: str | None = None
) -> str:
    contact_id = w.new_id("con")
    name, local = w.person_name()
    place = _place_of(account)
    lead_source = w.choice(vocab.CHANNELS[channel][5]) if channel else None
    w.contact_row(
        contact_id,
        kind="contact",
        account_id=account.id,
        owner_id=owner,
        name=name,
        email=f"{local}@{account.name.split()[0].lower()}.example",
        stage=stage,
        lead_status=None,
        lead_source=lead_source,
        channel=channel,
        place=place,
        created_at=created,
    )
    account.contacts.append(contact_id)
    return contact_id


def _place_of(account: Account) -> Place:
    return Place(account.region, account.country, account.state, account.city)


def _first_purchase(w: World, account: Account) -> None:
    """The installed base's first deal: won before the window, no activity kept."""
    rng = w.rng
    since = account.customer_since
    assert since is not None
    channel = CHANNEL_PICK.pick(rng)
    ae = w.rep(account.team, "ae")
    sourced_by = w.rep(account.team, "bdr" if channel == "outbound" else "sdr", "sdr", "bdr")
    cycle = int(w.lognormal(40 * DAY, 0.5))
    opened = max(account.created_at + DAY, since - cycle)
    known = account.created_at + int(rng.random() * (opened - account.created_at))
    contact_id = _customer_contact(w, account, known, account.owner_id, "customer", channel)
    w.lifecycle(contact_id, "lead", known, "lead_created")
    qualified = known + int((opened - known) * (0.3 + 0.4 * rng.random()))
    w.lifecycle(contact_id, "mql", known + (qualified - known) // 2, "lead_history")
    w.lifecycle(contact_id, "sql", qualified, "lead_history")
    w.lifecycle(contact_id, "opportunity", opened, "opportunity_created")
    w.lifecycle(contact_id, "customer", since, "won")
    result = play_deal(
        w,
        DealPlan(
            deal_type="new_business",
            account=account,
            contact_id=contact_id,
            owner_id=ae,
            created_by_id=sourced_by,
            created_at=opened,
            amount=max(1_000.0, round(w.lognormal(20_000, 0.75), -2)),
            win_probability=1.0,
            cycle_days=0,
            channel=channel,
            lead_source=w.choice(vocab.CHANNELS[channel][5]),
            touches_per_week=0,
            close_at=since,
        ),
    )
    account.arr = result.amount
    account.won_deals = 1


def _customer_life(w: World, account: Account) -> None:
    rng = w.rng
    since = account.customer_since
    assert since is not None
    am = account.owner_id
    active_from = max(since, w.start)
    for _ in range(int(rng.random() * 3)):
        created = since + int(rng.random() * max(DAY, w.now - since))
        contact_id = _customer_contact(w, account, created, am, "customer")
        w.lifecycle(contact_id, "customer", created, "company_lifecycle")
    end = _renewals(w, account, am)
    if end is None and rng.random() < 0.02:
        # a customer lost outside a renewal (acquired, went out of business)
        end = active_from + int(rng.random() * (w.now - active_from))
    account.churned_at = end
    end = w.now if end is None else end
    _expansions(w, account, am, active_from, end)
    _engagement(w, account, am, active_from, end)
    _cases(w, account, am, active_from, end)
    _nps(w, account, active_from, end)


def _renewals(w: World, account: Account, am: str) -> int | None:
    """One renewal a year; returns the churn moment if one is lost."""
    rng = w.rng
    since = account.customer_since
    assert since is not None
    year = 1
    while True:
        anniversary = since + year * YEAR
        opened = anniversary - int((60 + rng.random() * 30) * DAY)
        year += 1
        if opened > w.now:
            return None
        if anniversary < w.start + 7 * DAY:
            continue  # renewed before the window
        # Renewals due early in the window were opened before it; they show as
        # opened on its first day, so that churn does not pause for two months.
        opened = max(opened, w.start)
        result = play_deal(
            w,
            DealPlan(
                deal_type="renewal",
                account=account,
                contact_id=w.choice(account.contacts),
                owner_id=am,
                created_by_id=am,
                created_at=opened,
                amount=max(1_000.0, round(account.arr * w.lognormal(1.03, 0.06), -2)),
                win_probability=0.5 + 0.45 * account.health,
                cycle_days=0,
                channel=None,
                lead_source=None,
                touches_per_week=0.25,
                close_at=business_time(anniversary - int(rng.random() * 10 * DAY), w.offset_of(am), rng),
            ),
        )
        if result.closed_at is None:
            return None
        if result.won:
            account.arr = result.amount
            account.won_deals += 1
        else:
            churned = max(result.closed_at, anniversary) + int(rng.random() * 10 * DAY)
            return churned if churned <= w.now else None


def _expansions(w: World, account: Account, am: str, start: int, end: int) -> None:
    rng = w.rng
    rate = 0.9 * (0.5 + account.health) / YEAR
    t = business_time(start + int(rng.expovariate(rate)), w.offset_of(am), rng)
    while t < end:
        deal_type = "upsell" if rng.random() < 0.6 else "cross_sell"
        result = play_deal(
            w,
            DealPlan(
                deal_type=deal_type,
                account=account,
                contact_id=w.choice(account.contacts),
                owner_id=am,
                created_by_id=am,
                created_at=t,
                amount=max(500.0, round(w.lognormal(0.3 * account.arr + 2_000, 0.6), -2)),
                win_probability=0.45,
                cycle_days=25,
                channel="other",
                lead_source="Existing Customer",
                touches_per_week=0.45,
            ),
        )
        if result.won:
            account.arr += result.amount
            account.won_deals += 1
        t = business_time(t + int(rng.expovariate(rate)), w.offset_of(am), rng)


def _engagement(w: World, account: Account, am: str, start: int, end: int) -> None:
    """Account manager check-ins, and customers writing in and waiting for an answer."""
    rng = w.rng
    offset = w.offset_of(am)
    contacts = account.contacts
    mean_gap = 110 * DAY
    t = business_time(start + int(rng.expovariate(1.0) * mean_gap), offset, rng)
    while t < end:
        kind = AM_TOUCHES.pick(rng)
        thread = Thread(w, am, w.choice(contacts), account.id)
        if kind == "call":
            outcome = CALL_OUTCOMES.pick(rng)
            thread.log(
                "call",
                "outbound",
                t,
                outcome,
                "Check-in call",
                call_seconds(w, outcome, 12 * MINUTE),
            )
        elif kind == "email":
            thread.log("email", "outbound", t, "replied" if rng.random() < 0.3 else None, "Check-in")
        else:
            thread.log(
                kind,
                "outbound",
                t,
                "completed" if rng.random() < 0.9 else "canceled",
                "Quarterly business review" if kind == "meeting" else "On-site visit",
                int(w.lognormal(50 * MINUTE if kind == "meeting" else 2 * HOUR, 0.3)),
                booked_at=max(start, t - int(rng.random() * 10 * DAY)),
            )
        t = business_time(t + int(rng.expovariate(1.0) * mean_gap) + HOUR, offset, rng)
    # inbound requests, answered after a while (or never)
    t = start + int(rng.expovariate(1.0) * mean_gap * 1.5)
    while t < end:
        thread = Thread(w, am, w.choice(contacts), account.id)
        if rng.random() < 0.2:
            thread.log("call", "inbound", t, "connected", "Question", int(w.lognormal(8 * MINUTE, 0.6)))
        else:
            thread.log("email", "inbound", t, None, "Question")
            answer = business_time(t + int(w.lognormal(3 * HOUR, 1.1)), offset, rng)
            if answer < end and rng.random() < 0.9:
                thread.log("email", "outbound", answer, None, "Re: Question")
        t += int(rng.expovariate(1.0) * mean_gap * 1.5) + HOUR


def _cases(w: World, account: Account, am: str, start: int, end: int) -> None:
    rng = w.rng
    mean_gap = 85 * DAY / (1.6 - account.health)
    t = start + int(rng.expovariate(1.0) * mean_gap)
    while t < end:
        priority = PRIORITIES.pick(rng)
        urgency = {"Critical": 0.2, "High": 0.5, "Medium": 1.0, "Low": 1.8}[priority]
        first = t + int(w.lognormal(2 * HOUR * urgency, 1.0))
        closed = first + int(w.lognormal(26 * HOUR * urgency, 1.1))
        is_closed = closed <= w.now
        answered = first <= w.now
        if is_closed:
            status = "Closed"
        else:
            status = "Escalated" if priority == "Critical" else "Working" if answered else "New"
        contact_id = w.choice(account.contacts)
        case_id = w.new_id("case", 6)
        w.out["cases"].append(
            {
                "id": case_id,
                "account_id": account.id,
                "contact_id": contact_id,
                "owner_id": am,
                "status": status,
                "priority": priority,
                "origin": ORIGINS.pick(rng),
                "created_at": stamp(t),
                "first_response_at": stamp(first) if answered and rng.random() > 0.03 else None,
                "closed_at": stamp(closed) if is_closed else None,
                "is_closed": int(is_closed),
                **w.tail({"Subject": w.choice(vocab.CASE_SUBJECTS)}),
            }
        )
        if is_closed and rng.random() < 0.35:
            answered_at = closed + int(rng.random() * 3 * DAY)
            if answered_at <= w.now:
                hours = (closed - t) / HOUR
                score = 5 if hours < 8 else 4 if hours < 48 else 3 if hours < 120 else 2
                score = min(5, max(1, score + w.choice((-1, 0, 0, 0, 1))))
                w.survey("csat", contact_id, account.id, None, score, answered_at)
        t += int(rng.expovariate(1.0) * mean_gap)


def _nps(w: World, account: Account, start: int, end: int) -> None:
    """A relationship NPS survey each quarter to every contact of a customer."""
    rng = w.rng
    since = account.customer_since
    assert since is not None
    latest: dict[str, int] = {}
    promoters: set[str] = set()
    t = w.start + 20 * DAY
    while t <= w.now:
        if start <= t < end and t - since > 60 * DAY:
            for contact_id in account.contacts:
                if rng.random() < 0.3:
                    sent = t + int(rng.random() * 14 * DAY)
                    if sent > w.now:
                        continue
                    score = min(10, max(0, round(rng.gauss(3.5 + 6.5 * account.health, 1.8))))
                    w.survey("nps", contact_id, account.id, None, score, sent)
                    latest[contact_id] = score
                    if score >= 9 and contact_id not in promoters and rng.random() < 0.1:
                        promoters.add(contact_id)
                        w.lifecycle(contact_id, "evangelist", sent, "nps_promoter")
                        w.out["contacts:stage"].append({"id": contact_id, "lifecycle_stage": "evangelist"})
        t += 91 * DAY
    for contact_id, score in latest.items():
        w.out["contacts:nps"].append({"id": contact_id, "nps_score": score})
