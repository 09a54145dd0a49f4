"""One opportunity's life: stages, amount, close, and the rep's work on it.

A deal moves through Salesforce's stock stages (vocabulary.OPEN_STAGES) and
either wins, loses at some stage, or is still open at `now`. Stage history keeps
only what happened by `now`, with the amount known at each step: the estimate
is revised when the proposal goes out. The owner's calls, emails, meetings and
visits are spread over the deal's life; most carry the opportunity id, some only
the contact, as reps log them in real CRMs (kpi-catalog: touches_to_close).
"""

from __future__ import annotations

from dataclasses import dataclass

from kpisync.generator import vocabulary as vocab
from kpisync.generator.clock import DAY, HOUR, MINUTE, business_time, stamp
from kpisync.generator.world import Account, Thread, Weighted, World

DEAL_TOUCHES = Weighted([("email", 40), ("call", 32), ("meeting", 22), ("visit", 4), ("task", 8), ("note", 5)])
CALL_OUTCOMES = Weighted([("connected", 45), ("no_answer", 35), ("positive", 8), ("negative", 5), ("booked", 7)])
MEETING_OUTCOMES = Weighted([("completed", 84), ("no_show", 6), ("canceled", 6), ("positive", 3), ("negative", 1)])
EMAIL_OUTCOMES = Weighted([(None, 70), ("replied", 22), ("positive", 5), ("negative", 3)])


@dataclass(frozen=True)
class DealPlan:
    deal_type: str
    account: Account
    contact_id: str | None
    owner_id: str
    created_by_id: str
    created_at: int
    amount: float
    win_probability: float
    cycle_days: float
    channel: str | None
    lead_source: str | None
    touches_per_week: float = 1.5  # the owner's effort; 0 for history before the window
    close_at: int | None = None  # force the close moment (installed base)


@dataclass(frozen=True)
class DealResult:
    opportunity_id: str
    won: bool
    closed_at: int | None  # None while open at `now`
    amount: float


def play_deal(w: World, plan: DealPlan) -> DealResult:
    rng = w.rng
    opp_id = w.new_id("opp", 6)
    stages = vocab.OPEN_STAGES if plan.deal_type == "new_business" else vocab.SHORT_STAGES
    won = rng.random() < plan.win_probability
    if plan.close_at is not None:
        close = max(plan.close_at, plan.created_at + DAY)
    else:
        cycle = max(2.0, w.lognormal(plan.cycle_days, 0.55)) * DAY
        offset = w.offset_of(plan.owner_id)
        close = business_time(plan.created_at + int(cycle), offset, rng)
    # Lost deals drop out at some stage, more often early.
    last = len(stages) if won else 1 + min(int(rng.expovariate(0.7)), len(stages) - 1)
    if not won:
        close = plan.created_at + int((close - plan.created_at) * last / len(stages))
    weights = [0.6 + rng.random() for _ in range(last)]
    span = close - plan.created_at
    total = sum(weights)
    amount = plan.amount
    final_amount = amount
    history = w.out["opportunity_stage_history"]
    entered = plan.created_at
    stage = stages[0]
    reached_proposal = False
    for index in range(last):
        if entered > w.now:
            break
        stage = stages[index]
        if stage == vocab.PROPOSAL_STAGE:
            reached_proposal = True
            final_amount = round(amount * w.lognormal(1.0, 0.15), -2) or amount
        history.append(
            {
                "opportunity_id": opp_id,
                "stage": stage,
                "entered_at": stamp(entered),
                "amount": final_amount,
            }
        )
        entered += int(span * weights[index] / total)
    is_closed = close <= w.now
    if is_closed:
        stage = vocab.WON_STAGE if won else vocab.LOST_STAGE
        history.append(
            {
                "opportunity_id": opp_id,
                "stage": stage,
                "entered_at": stamp(close),
                "amount": final_amount,
            }
        )
    competitor_price = None
    if reached_proposal and rng.random() < 0.35:
        competitor_price = round(final_amount * w.lognormal(1.04, 0.18), -2)
    account = plan.account
    w.out["opportunities"].append(
        {
            "id": opp_id,
            "name": f"{account.name} - {plan.deal_type.replace('_', ' ').title()}",
            "account_id": account.id,
            "contact_id": plan.contact_id,
            "owner_id": plan.owner_id,
            "created_by_id": plan.created_by_id,
            "amount": final_amount,
            "stage": stage,
            "pipeline": vocab.PIPELINES[plan.deal_type],
            "is_closed": int(is_closed),
            "is_won": int(is_closed and won),
            "created_at": stamp(plan.created_at),
            "closed_at": stamp(close) if is_closed else None,
            "deal_type": plan.deal_type,
            "lead_source": plan.lead_source,
            "channel": plan.channel,
            "competitor_price": competitor_price,
            # some deals carry no region; KPIs fall back to the account's
            "region": account.region if rng.random() > 0.03 else None,
            **w.tail(),
        }
    )
    if plan.touches_per_week > 0:
        _work_deal(w, plan, opp_id, min(close, w.now), is_closed and won, is_closed)
    if is_closed and won:
        w.record_won(plan.owner_id, close, final_amount)
    return DealResult(opp_id, won and is_closed, close if is_closed else None, final_amount)


def _work_deal(w: World, plan: DealPlan, opp_id: str, until: int, won: bool, closed: bool) -> None:
    """The owner's touches between creation and close (or `now`)."""
    rng = w.rng
    offset = w.offset_of(plan.owner_id)
    thread = Thread(w, plan.owner_id, plan.contact_id, plan.account.id, opp_id)
    mean_gap = 7 * DAY / plan.touches_per_week
    t = business_time(plan.created_at + int(rng.random() * DAY), offset, rng)
    while t < until:
        kind = DEAL_TOUCHES.pick(rng)
        on_deal = rng.random() < 0.85
        if kind == "call":
            outcome = CALL_OUTCOMES.pick(rng)
            thread.log(
                "call",
                "outbound",
                t,
                outcome,
                w.choice(vocab.CALL_SUBJECTS),
                call_seconds(w, outcome, 9 * MINUTE),
                on_deal=on_deal,
            )
        elif kind == "email":
            outcome = EMAIL_OUTCOMES.pick(rng)
            thread.log("email", "outbound", t, outcome, w.choice(vocab.EMAIL_SUBJECTS), on_deal=on_deal)
            reply = t + int(w.lognormal(4 * HOUR, 1.2))
            if (outcome is not None or rng.random() < 0.15) and reply < until:
                thread.log(
                    "email",
                    "inbound",
                    reply,
                    None,
                    "Re: " + w.choice(vocab.EMAIL_SUBJECTS).removeprefix("Re: "),
                    on_deal=on_deal,
                )
        elif kind == "meeting":
            thread.log(
                "meeting",
                "outbound",
                t,
                MEETING_OUTCOMES.pick(rng),
                w.choice(vocab.MEETING_SUBJECTS),
                int(w.lognormal(45 * MINUTE, 0.35)),
                booked_at=max(plan.created_at, t - int(rng.random() * 6 * DAY)),
                on_deal=on_deal,
            )
        elif kind == "visit":
            thread.log(
                "visit",
                "outbound",
                t,
                MEETING_OUTCOMES.pick(rng),
                "On-site visit",
                int(w.lognormal(90 * MINUTE, 0.3)),
                booked_at=max(plan.created_at, t - int(rng.random() * 10 * DAY)),
            )
        elif kind == "task":
            thread.log("task", None, t, "completed", w.choice(vocab.TASK_SUBJECTS))
        else:
            thread.log("note", None, t, None, w.choice(vocab.NOTE_SUBJECTS))
        t = business_time(t + int(rng.expovariate(1.0) * mean_gap) + HOUR, offset, rng)
    if closed:
        t = max(plan.created_at, until - int(rng.random() * 4 * HOUR))
        thread.log(
            "call",
            "outbound",
            t,
            "positive" if won else "negative",
            "Closing call",
            int(w.lognormal(12 * MINUTE, 0.5)),
        )


def call_seconds(w: World, outcome: str | None, median: float) -> int:
    """Unanswered calls ring for seconds; conversations last minutes."""
    if outcome == "no_answer":
        return int(w.rng.random() * 30)
    return int(w.lognormal(median, 0.6))
