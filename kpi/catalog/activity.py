"""B. Activity, SDR and BDR (kpi-catalog.md §B).

Activity counts go to the activity's owner; KPIs whose population is people
(prospects contacted, leads) go to the person's owner, even when another rep
made the touch (catalog, attribution).
"""

from __future__ import annotations

from kpisync.kpi.aggregate import (
    ByGrain,
    Mean,
    Median,
    PerWorkingDay,
    Ratio,
    RecordSql,
    Total,
)
from kpisync.kpi.catalog.funnel import FUNNEL
from kpisync.kpi.families import MASK_BITS, Family
from kpisync.kpi.live import TOUCH_TYPES
from kpisync.kpi.registry import Breakdown, KpiDef, register

OTU = ("org", "team", "user")

# Activities by their owner: touches and responses when they happened, meetings
# when booked, and the opportunities each rep sourced (activity → opportunity).
ACTIVITY = Family(
    "activity",
    """SELECT id AS rec, seg, owner_id AS user_id, team, is_touch AS touches,
           is_touch AND type = 'call' AS calls, is_touch AND type = 'email' AS emails,
           is_touch AND type = 'meeting' AS meetings, is_response AS responses,
           0 AS booked, 0 AS sourced
    FROM k_acts WHERE is_touch OR is_response
    UNION ALL
    SELECT id, booked_seg, owner_id, team, 0, 0, 0, 0, 0, 1, 0 FROM k_acts WHERE is_booked
    UNION ALL
    SELECT id, created_seg, creator_id, creator_team, 0, 0, 0, 0, 0, 0, 1 FROM k_opps""",
    OTU,
    ("touches", "calls", "emails", "meetings", "responses", "booked", "sourced"),
)

_TYPE_MASKS = ", ".join(
    f"sum(CASE WHEN b.first_type = '{t}' THEN 1 << b.seg ELSE 0 END) AS first_{t}" for t in TOUCH_TYPES
)
# the first touch in a period is in its earliest touched segment: the lowest bit seen
_FIRST_TYPE = " ".join(f"WHEN first_{t} & (seen & -seen) THEN '{t}'" for t in TOUCH_TYPES)

# PROSPECTS without a row per person and period: each person's touched, responded
# and positive segments (and the segments whose first touch was a call, ...) are bit
# masks; people with the same masks and owner are counted together, and a period is
# the mask of its segments [lo, hi). The same numbers, about ten times cheaper on
# large orgs (PROSPECTS' fast twin).
PROSPECTS_BY_MASK = Family(
    "prospects",
    f"""WITH by_seg AS (
        SELECT person_id, seg, max(is_touch) AS touched, max(is_response) AS responded,
               max(is_positive) AS positive,
               substr(min(CASE WHEN is_touch THEN occurred_at || type END), 21) AS first_type
        FROM k_acts
        WHERE person_id IS NOT NULL AND seg IS NOT NULL AND (is_touch OR is_response)
        GROUP BY person_id, seg),
    masks AS (
        SELECT b.person_id, sum(b.touched << b.seg) AS touched, sum(b.responded << b.seg) AS responded,
               sum(b.positive << b.seg) AS positive, {_TYPE_MASKS}
        FROM by_seg b GROUP BY b.person_id),
    groups AS MATERIALIZED (
        SELECT count(*) AS n, p.owner_id, p.team, s.customer_at IS NOT NULL AS customer,
               m.touched, m.responded, m.positive, {", ".join(f"m.first_{t}" for t in TOUCH_TYPES)}
        FROM masks m JOIN k_persons p ON p.id = m.person_id
        LEFT JOIN k_stages s ON s.person_id = m.person_id
        WHERE m.touched <> 0
        GROUP BY p.owner_id, p.team, customer, m.touched, m.responded, m.positive,
                 {", ".join(f"m.first_{t}" for t in TOUCH_TYPES)}),
    in_period AS (
        SELECT g.*, p.label AS period, (1 << p.hi) - (1 << p.lo) AS mask,
               g.touched & ((1 << p.hi) - (1 << p.lo)) AS seen
        FROM groups g JOIN k_periods p)
    -- rec: explain lists the people from PROSPECTS itself
    SELECT NULL AS rec, period, owner_id AS user_id, team,
           CASE {_FIRST_TYPE} END AS atype, n AS contacted,
           n * ((responded & mask) <> 0) AS responded, n * ((positive & mask) <> 0) AS positive,
           n * customer AS customers
    FROM in_period WHERE seen <> 0""",
    ("org", "team", "user", "activity_type"),
    ("contacted", "responded", "positive", "customers"),
    by="period",
    max_segments=MASK_BITS,
)

# Prospects contacted in each period (people with a touch in it), with whether
# they responded in it, responded positively in it, became customers by as_of,
# and the type of their first touch in it.
PROSPECTS = Family(
    "prospects",
    """WITH by_seg AS (
        SELECT person_id, seg, max(is_touch) AS touched, max(is_response) AS responded,
               max(is_positive) AS positive,
               min(CASE WHEN is_touch THEN occurred_at || type END) AS first_touch
        FROM k_acts
        WHERE person_id IS NOT NULL AND seg IS NOT NULL AND (is_touch OR is_response)
        GROUP BY person_id, seg),
    by_period AS (
        SELECT person_id, ps.period, max(touched) AS touched, max(responded) AS responded,
               max(positive) AS positive, min(first_touch) AS first_touch
        FROM by_seg JOIN k_period_seg ps ON ps.seg = by_seg.seg
        GROUP BY person_id, ps.period)
    SELECT b.person_id AS rec, b.period, p.owner_id AS user_id, p.team,
           substr(b.first_touch, 21) AS atype, 1 AS contacted, b.responded, b.positive,
           s.customer_at IS NOT NULL AS customers
    FROM by_period b JOIN k_persons p ON p.id = b.person_id
    LEFT JOIN k_stages s ON s.person_id = b.person_id
    WHERE b.touched""",
    ("org", "team", "user", "activity_type"),
    ("contacted", "responded", "positive", "customers"),
    by="period",
    fast=PROSPECTS_BY_MASK,
)


LEAD_RESPONSE = Family(
    "lead_response",
    """SELECT person_id AS rec, start_seg AS seg, owner_id AS user_id, team,
           (unixepoch(first_touch_at) - unixepoch(start_at)) / 60.0 AS x
    FROM k_first_touch WHERE first_touch_at IS NOT NULL""",
    OTU,
)

LEAD_CONTACT = Family(
    "lead_contact",
    """SELECT person_id AS rec, mql_seg AS seg, owner_id AS user_id, team, channel, 1 AS mqls,
           first_touch_at IS NOT NULL AS reached
    FROM k_first_touch WHERE mql_at IS NOT NULL""",
    ("org", "team", "user", "channel"),
    ("mqls", "reached"),
)

TOUCHES_TO_CLOSE = Family(
    "touches_to_close",
    """SELECT o.id AS rec, o.closed_seg AS seg, o.owner_id AS user_id, o.team,
           t.touches, 1 AS deals
    FROM k_opps o JOIN k_opp_touches t ON t.opportunity_id = o.id WHERE o.won""",
    OTU,
    ("touches", "deals"),
)

TOUCH_DETAIL = """SELECT t.type, t.id, t.occurred_at FROM k_touch t JOIN k_opps o ON o.id = :key
    WHERE (t.opportunity_id = o.id OR (t.opportunity_id IS NULL AND t.person_id = o.person_id))
      AND t.occurred_at <= coalesce(o.closed_at, :as_of)
    ORDER BY t.type, t.occurred_at, t.id"""

TOUCHES_BY_TYPE = Breakdown(
    "touches by type",
    # as k_opp_touches counts them; two arms, each searched through its own touch index
    """SELECT type, count(*) FROM (
        SELECT t.type FROM json_each(:keys) k JOIN k_opps o ON o.id = k.value
        JOIN k_touch t ON t.opportunity_id = o.id AND t.occurred_at <= coalesce(o.closed_at, :as_of)
        UNION ALL
        SELECT t.type FROM json_each(:keys) k JOIN k_opps o ON o.id = k.value
        JOIN k_touch t ON t.person_id = o.person_id AND t.occurred_at <= coalesce(o.closed_at, :as_of)
        WHERE t.opportunity_id IS NULL)
    GROUP BY type ORDER BY type""",
)

CONTACT_TOUCHES = RecordSql(
    """SELECT p.id, (SELECT count(*) FROM k_touch t WHERE t.person_id = p.id), NULL, NULL
    FROM k_persons p""",
    fill_value=(0, None, None),
)
CONTACT_RESPONSE = RecordSql(
    """SELECT person_id, (unixepoch(first_touch_at) - unixepoch(start_at)) / 60.0, NULL, NULL
    FROM k_first_touch"""
)
OPPORTUNITY_TOUCHES = RecordSql("SELECT opportunity_id, touches, NULL, NULL FROM k_opp_touches", detail=TOUCH_DETAIL)

B = "B"
# fmt: off
for defn in (
    KpiDef("touches", "Touches", "count", (*OTU, "contact"),
           "outbound calls, emails, meetings and visits with occurred_at in P", "003 #11", B,
           record_periods={"contact": ("all",)},
           compute=ByGrain(Total(ACTIVITY, "touches"), {"contact": CONTACT_TOUCHES}),
           notes="contact grain, period all: touches on that person up to as_of (touches so far)"),
    KpiDef("calls", "Calls", "count", OTU, "touches of type call in P", "002 SDR", B,
           compute=Total(ACTIVITY, "calls")),
    KpiDef("emails", "Emails", "count", OTU, "touches of type email in P", "002 SDR", B,
           compute=Total(ACTIVITY, "emails")),
    KpiDef("meetings", "Meetings", "count", OTU, "touches of type meeting in P", "002 SDR", B,
           compute=Total(ACTIVITY, "meetings")),
    KpiDef("touches_per_day", "Touches per working day", "per_day", OTU,
           "touches / working days (Mon-Fri, org time zone) in P", "003 #11", B,
           compute=PerWorkingDay(ACTIVITY, "touches"),
           notes="a working day counts when its local midnight falls in P (the current "
           "period counts today)"),
    KpiDef("activity_to_opportunity", "Activity to opportunity", "ratio", OTU,
           "opportunities created in P by the rep (created_by_id, else owner) / rep's touches",
           "002 BDR, 003 #11", B, compute=Ratio(ACTIVITY, "sourced", "touches")),
    KpiDef("lead_response_minutes", "Lead response (minutes)", "minutes", (*OTU, "contact"),
           "minutes from start moment (mql entry, else created) to first touch at or after it; "
           "aggregates: median over people whose start moment is in P and who were touched",
           "002 SDR", B, record_periods={"contact": ("all",)},
           compute=ByGrain(Median(LEAD_RESPONSE), {"contact": CONTACT_RESPONSE})),
    KpiDef("lead_contact_rate", "Lead contact rate", "ratio", ("org", "team", "user", "channel"),
           "of people with an mql entry in P, the share touched at or after it", "002 SDR", B,
           compute=Ratio(LEAD_CONTACT, "reached", "mqls")),
    KpiDef("response_rate", "Response rate", "ratio", ("org", "team", "user", "activity_type"),
           "of prospects contacted in P, the share with a response in P", "002 SDR", B,
           compute=Ratio(PROSPECTS, "responded", "contacted"),
           notes="activity_type grain: a prospect counts under the type of its first touch in P"),
    KpiDef("positive_response_rate", "Positive response rate", "ratio",
           ("org", "team", "user", "activity_type"),
           "of prospects contacted in P, the share with a positive response in P", "002 SDR", B,
           compute=Ratio(PROSPECTS, "positive", "contacted"),
           notes="activity_type grain: a prospect counts under the type of its first touch in P"),
    KpiDef("meeting_booking_rate", "Meeting booking rate", "ratio", OTU,
           "meetings booked in P (at created_at, not canceled) / responses in P, by activity owner",
           "002 SDR", B, compute=Ratio(ACTIVITY, "booked", "responses"),
           notes="can exceed 1 (the catalog's two separate counts): a meeting booked in P with "
                 "no response logged in P counts in the numerator only"),
    KpiDef("touches_to_close", "Touches to close", "count", (*OTU, "opportunity"),
           "touches on the deal (or its contact, no deal set) up to close; "
           "aggregates: mean over won in P", "002, 003 #10", B,
           record_periods={"opportunity": ("all",)},
           compute=ByGrain(Mean(TOUCHES_TO_CLOSE, "touches", "deals"),
                           {"opportunity": OPPORTUNITY_TOUCHES}),
           breakdown=TOUCHES_BY_TYPE,
           notes="opportunity grain: open deals count touches up to as_of (touches so far)"),
    KpiDef("lead_conversion_rate", "Lead conversion rate", "ratio",
           ("org", "team", "user", "channel"),
           "of people with a lead entry in P, the share that entered opportunity by as_of",
           "002 SDR", B, compute=Ratio(FUNNEL, "lead_to_opportunity", "entered_lead")),
    KpiDef("acquisition_rate", "Acquisition rate", "ratio",
           ("org", "team", "user", "activity_type"),
           "of prospects contacted in P, the share that entered customer by as_of",
           "003 #7, 002 BDR", B, compute=Ratio(PROSPECTS, "customers", "contacted"),
           notes="activity_type grain: a prospect counts under the type of its first touch in P"),
):
    register(defn)
# fmt: on
