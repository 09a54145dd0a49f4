"""New people entering the funnel during the window, and what becomes of them.

Two paths, as in a Salesforce org:

- Marketing channels (inbound, paid, event, referral, other) create a **Lead**
  owned by an SDR. Leads that reach an opportunity are converted: the Lead row
  stays (kind `lead`, `converted_contact_id`, `converted_at`) and a new Contact
  row carries the rest of the story. The `sql` stage is recorded on both rows
  (the lead's status history, and the conversion), so a KPI that does not follow
  the person through `converted_contact_id` counts them twice.
- Outbound prospecting creates a **Contact** on a target account, owned by a
  BDR, whose whole story stays on that one row.

Stages are entered in order with shrinking probabilities (vocabulary.CHANNELS);
anything that would happen after `now` has not happened yet.
"""

from __future__ import annotations

from typing import NamedTuple

from kpisync.generator import vocabulary as vocab
from kpisync.generator.clock import DAY, HOUR, MINUTE, business_time
from kpisync.generator.deals import DealPlan, call_seconds, play_deal
from kpisync.generator.world import Account, Place, Thread, Weighted, World

CHANNEL_PICK = Weighted([(name, spec[0]) for name, spec in vocab.CHANNELS.items()])
# win rate of a new-business deal before the channel multiplier
BASE_WIN_RATE = 0.27


def run_funnel(w: World, people: int) -> None:
    rng = w.rng
    span = w.now - w.start
    # Volume grows over the window (density rises ~1.5x from first to last month).
    moments = sorted(w.start + int(span * rng.random() ** (1 / 1.25)) for _ in range(people))
    for t in moments:
        channel = CHANNEL_PICK.pick(rng)
        place = w.places.pick(rng)
        t = _arrival_time(w, t, place)
        month = w.month_of(t)
        if month is not None:
            w.people_by_channel_month[(channel, month)] += 1
        if channel == "outbound":
            _outbound_prospect(w, t, place)
        else:
            _marketing_lead(w, t, place, channel)
        w.sink.maybe_flush()


def _arrival_time(w: World, t: int, place: Place) -> int:
    """Most people arrive on weekdays in office hours of their own region."""
    rng = w.rng
    offset = w.region_offset[place.region]
    if rng.random() < 0.8:
        local_day = (t + offset * HOUR) // DAY
        if (local_day + 3) % 7 >= 5:
            local_day -= 2
        t = local_day * DAY + int((8 + rng.random() * 10) * HOUR) - offset * HOUR
    return min(max(t, w.start), w.now)


def _marketing_lead(w: World, created: int, place: Place, channel: str) -> None:
    rng = w.rng
    _share, p_mql, p_sql, p_opp, win_factor, sources = vocab.CHANNELS[channel]
    lead_source = w.choice(sources)
    team = w.team_for(place.region)
    sdr = w.rep(team, "sdr", "bdr")
    lead_id = w.new_id("lead")
    name, local = w.person_name()
    email = f"{local}{rng.randrange(100)}@{w.choice(vocab.COMPANY_WORDS).lower()}.example"
    company = w.company_name()

    stage = "lead"
    t_lead = created
    if channel == "inbound" and rng.random() < 0.2:
        # newsletter subscribers become leads when they fill in a form
        w.lifecycle(lead_id, "subscriber", created, "lead_history")
        t_lead = created + int(w.lognormal(9 * DAY, 1.0))
        stage = "subscriber"
    if t_lead <= w.now:
        w.lifecycle(lead_id, "lead", t_lead, "lead_created" if t_lead == created else "lead_history")
        stage = "lead"
    t_mql = None
    if t_lead <= w.now and rng.random() < p_mql:
        t_mql = t_lead if rng.random() < 0.6 else t_lead + int(w.lognormal(6 * DAY, 1.0))
        if t_mql <= w.now:
            w.lifecycle(lead_id, "mql", t_mql, "lead_history")
            stage = "mql"
        else:
            t_mql = None

    status = vocab.LEAD_STATUS_MQL if t_mql else vocab.LEAD_STATUS_OPEN
    t_sql = None
    # SDRs work nearly every MQL, and some of the other leads.
    if t_lead <= w.now and rng.random() < (0.93 if t_mql else 0.2):
        start = t_mql if t_mql else t_lead
        if t_mql:
            plan = _plan(rng.random(), sql=p_sql, positive=0.12, negative=0.18)
        else:
            plan = _plan(rng.random(), positive=0.04, negative=0.10)
        cadence = _cadence(
            Thread(w, sdr, lead_id, None),
            start,
            plan,
            max_steps=5 if t_mql else 2,
            first_gap=w.lognormal(40 * MINUTE if t_mql else 20 * HOUR, 1.7),
        )
        t_sql = cadence.sql_at
        if cadence.touched:
            status = vocab.LEAD_STATUS_WORKING
            if w.now - start > 45 * DAY and not t_sql:
                status = vocab.LEAD_STATUS_NURTURE if t_mql else vocab.LEAD_STATUS_DEAD
    if t_sql is not None:
        w.lifecycle(lead_id, "sql", t_sql, "lead_history")
        stage, status = "sql", vocab.LEAD_STATUS_SQL

    converted_at = contact_id = account = None
    if t_sql is not None and rng.random() < p_opp:
        t_opp = business_time(t_sql + int(rng.expovariate(1 / (2 * DAY))), w.offset_of(sdr), rng)
        if t_opp <= w.now:
            converted_at = t_opp
            status = vocab.LEAD_STATUS_CONVERTED
            ae = w.rep(team, "ae")
            account = w.prospect_account(place.region, t_opp) if rng.random() < 0.3 else None
            if account is None:
                account = w.new_account(place, t_opp, team, ae)
            contact_id = w.new_id("con")
            account.contacts.append(contact_id)
            # Conversion also stamps the new contact with the stage the lead was in.
            w.lifecycle(contact_id, "sql", t_opp, "converted")
            contact_stage = _new_business(w, account, contact_id, ae, sdr, t_opp, channel, lead_source, win_factor)
            w.contact_row(
                contact_id,
                kind="contact",
                account_id=account.id,
                owner_id=ae,
                name=name,
                email=email,
                stage=contact_stage,
                lead_status=None,
                lead_source=lead_source,
                channel=channel,
                place=place,
                created_at=t_opp,
            )
    w.contact_row(
        lead_id,
        kind="lead",
        account_id=account.id if account else None,
        owner_id=sdr,
        name=name,
        email=email,
        stage=stage,
        lead_status=status,
        lead_source=lead_source,
        channel=channel,
        place=place,
        created_at=created,
        converted_at=converted_at,
        converted_contact_id=contact_id,
        raw={"Company": company, "LeadSource": lead_source},
    )


def _outbound_prospect(w: World, created: int, place: Place) -> None:
    rng = w.rng
    _share, p_mql, p_sql, p_opp, win_factor, sources = vocab.CHANNELS["outbound"]
    lead_source = w.choice(sources)
    team = w.team_for(place.region)
    bdr = w.rep(team, "bdr", "sdr")
    account = w.prospect_account(place.region, created)
    if account is None:
        account = w.new_account(place, created, team, w.rep(team, "ae"))
        w.prospects[place.region].append(account)
    contact_id = w.new_id("con")
    account.contacts.append(contact_id)
    name, local = w.person_name()
    w.lifecycle(contact_id, "lead", created, "lead_created")
    stage = "lead"
    # The prospect becomes an MQL when they answer positively.
    plan = _plan(rng.random(), sql=p_mql * p_sql, positive=p_mql * (1 - p_sql), negative=0.12)
    cadence = _cadence(
        Thread(w, bdr, contact_id, account.id),
        created,
        plan,
        max_steps=5,
        first_gap=w.lognormal(3 * HOUR, 1.2),
        outbound=True,
    )
    if cadence.answered_at is not None and plan != "negative":
        w.lifecycle(contact_id, "mql", cadence.answered_at, "lead_history")
        stage = "mql"
    t_sql = cadence.sql_at
    if t_sql is not None:
        w.lifecycle(contact_id, "sql", t_sql, "lead_history")
        stage = "sql"
        if rng.random() < p_opp:
            t_opp = business_time(t_sql + int(rng.expovariate(1 / (2 * DAY))), w.offset_of(bdr), rng)
            if t_opp <= w.now:
                stage = _new_business(
                    w,
                    account,
                    contact_id,
                    w.rep(team, "ae"),
                    bdr,
                    t_opp,
                    "outbound",
                    lead_source,
                    win_factor,
                )
    w.contact_row(
        contact_id,
        kind="contact",
        account_id=account.id,
        owner_id=bdr,
        name=name,
        email=f"{local}@{account.name.split()[0].lower()}.example",
        stage=stage,
        lead_status=None,
        lead_source=lead_source,
        channel="outbound",
        place=place,
        created_at=created,
    )


def _new_business(
    w: World,
    account: Account,
    contact_id: str,
    ae: str,
    sourced_by: str,
    t_opp: int,
    channel: str,
    lead_source: str | None,
    win_factor: float,
) -> str:
    """Open the first deal for a qualified person; returns their lifecycle stage now."""
    rng = w.rng
    w.lifecycle(contact_id, "opportunity", t_opp, "opportunity_created")
    amount = round(w.lognormal(18_000 * (account.annual_revenue / 40e6) ** 0.15, 0.75), -2)
    result = play_deal(
        w,
        DealPlan(
            deal_type="new_business",
            account=account,
            contact_id=contact_id,
            owner_id=ae,
            created_by_id=sourced_by,
            created_at=t_opp,
            amount=max(amount, 1_000.0),
            win_probability=min(0.8, BASE_WIN_RATE * win_factor),
            cycle_days=35 * (amount / 18_000) ** 0.25,
            channel=channel,
            lead_source=lead_source,
            touches_per_week=1.2 + rng.random(),
        ),
    )
    if result.won and result.closed_at is not None:
        w.lifecycle(contact_id, "customer", result.closed_at, "won")
        account.won_deals += 1
        account.arr += result.amount
        if account.customer_since is None or result.closed_at < account.customer_since:
            account.customer_since = result.closed_at
            account.owner_id = w.rep(account.team, "am", "ae")
        return "customer"
    return "opportunity"


def _plan(roll: float, **odds: float) -> str:
    """What a person will do when worked: the first of `odds` whose cumulative
    probability exceeds `roll`, else `silent`."""
    for plan, probability in odds.items():
        if roll < probability:
            return plan
        roll -= probability
    return "silent"


CADENCE_KINDS = Weighted([("call", 50), ("email", 45), ("task", 5)])


class Cadence(NamedTuple):
    touched: bool
    answered_at: int | None  # when the person answered (positively or not)
    sql_at: int | None  # end of the first held meeting, for people who qualify


def _cadence(
    thread: Thread, start: int, plan: str, max_steps: int, first_gap: float, outbound: bool = False
) -> Cadence:
    """An SDR/BDR sequence of calls and emails from `start`.

    `plan` is what the person will do: `sql` (answer, then hold a meeting),
    `positive` or `negative` (answer, no meeting held) or `silent`.
    """
    w = thread.w
    rng = w.rng
    offset = w.offset_of(thread.owner_id)
    steps = rng.randint(min(2, max_steps), max(1, max_steps))
    answer_at = rng.randint(1, steps) if plan != "silent" else 0
    t = business_time(start + int(first_gap), offset, rng)
    for step in range(1, steps + 1):
        if t > w.now:
            return Cadence(step > 1, None, None)
        kind = "email" if outbound and rng.random() < 0.6 else CADENCE_KINDS.pick(rng)
        if kind == "task":
            thread.log("task", None, t, "completed", "Research account")
            kind = "call"
        if step == answer_at:
            return _answer(thread, t, kind, plan)
        if kind == "call":
            outcome = "no_answer" if rng.random() < 0.7 else "connected"
            thread.log("call", "outbound", t, outcome, "Call", call_seconds(w, outcome, 3 * MINUTE))
        else:
            thread.log("email", "outbound", t, None, w.choice(vocab.EMAIL_SUBJECTS))
        t = business_time(t + int((1 + rng.random() * 3) * DAY), offset, rng)
    return Cadence(True, None, None)


def _answer(thread: Thread, t: int, kind: str, plan: str) -> Cadence:
    """The touch the person answers, and the meeting it may lead to."""
    w = thread.w
    rng = w.rng
    offset = w.offset_of(thread.owner_id)
    positive = plan != "negative"
    if kind == "call":
        outcome = ("booked" if plan == "sql" else "positive") if positive else "negative"
        thread.log("call", "outbound", t, outcome, "Call", int(w.lognormal(6 * MINUTE, 0.5)))
        answered = t
    else:
        thread.log("email", "outbound", t, "replied", w.choice(vocab.EMAIL_SUBJECTS))
        answered = t + int(w.lognormal(5 * HOUR, 1.3))
        if answered > w.now:
            return Cadence(True, None, None)
        thread.log("email", "inbound", answered, "positive" if positive else "negative", "Re: Intro")
    if plan != "sql":
        if positive and rng.random() < 0.3:
            # a meeting that never happens
            meet = business_time(answered + int((1 + rng.random() * 5) * DAY), offset, rng)
            if meet <= w.now:
                thread.log(
                    "meeting",
                    "outbound",
                    meet,
                    w.choice(("canceled", "no_show")),
                    "Discovery meeting",
                    None,
                    booked_at=answered,
                )
        return Cadence(True, answered, None)
    booked = answered
    meet = business_time(booked + int((1 + rng.random() * 6) * DAY), offset, rng)
    if rng.random() < 0.12 and meet <= w.now:
        thread.log("meeting", "outbound", meet, "no_show", "Discovery meeting", 0, booked_at=booked)
        booked = meet + HOUR
        meet = business_time(meet + int((2 + rng.random() * 5) * DAY), offset, rng)
    duration = int(w.lognormal(30 * MINUTE, 0.3))
    if meet + duration > w.now:
        return Cadence(True, answered, None)
    thread.log("meeting", "outbound", meet, "completed", "Discovery meeting", duration, booked_at=booked)
    if rng.random() < 0.5:
        thread.log("note", None, meet + duration, None, "Meeting notes")
    return Cadence(True, answered, meet + duration)
