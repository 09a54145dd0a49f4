"""The store as it stood at `as_of`: temp tables every KPI query reads.

Built once per compute. Each table keeps only live rows (not deleted, created
by `as_of`) and blanks what had not happened yet (a deal won after `as_of` is
open; a churn after `as_of` has not happened). People are merged: a converted
Salesforce Lead maps to the Contact it became (`k_person_map`), so the same
person is never counted twice (canonical-model.md, contacts).

Attribution columns (user, team, region, channel) are resolved here once, by
the catalog's attribution table, so KPI queries only pick columns.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Callable, Collection, Sequence

TOUCH_TYPES = ("call", "email", "meeting", "visit")
RESPONSE_OUTCOMES = ("positive", "negative", "replied")
FUNNEL_STAGES = ("lead", "mql", "sql", "opportunity", "customer")
EXPANSION_TYPES = ("upsell", "cross_sell")

_LIVE = "coalesce({t}.is_deleted, 0) = 0"
# an opportunity is closed as of as_of when it was closed (or won) by then
_CLOSED = "(CASE WHEN (o.is_closed = 1 OR o.is_won = 1) AND o.closed_at <= :as_of THEN o.closed_at END)"
_LIVE_ACCOUNT = "coalesce(a.is_deleted, 0) = 0 AND coalesce(a.created_at, '') <= :as_of"

# Statements run in order; :as_of is bound, kpi_seg(ts) places a timestamp in a segment.
# The order is the order parallel workers can start (kpisync.kpi.workers): first the
# cheap tables the deal and support KPIs read (a worker starts on those within
# seconds), then the people, and k_acts (the largest) with the tables built from it last.
# Later tables copy only rows up to as_of: the KPI queries need not filter them again.
LIVE_TABLES: tuple[tuple[str, str], ...] = (
    (
        "k_users",
        # every user, deleted too: a rep who left still owns history; the user
        # grain lists only live ones (Context.universe)
        """SELECT id, team, region, coalesce(is_deleted, 0) AS is_deleted FROM main.users WHERE id IS NOT NULL""",
    ),
    ("k_quotas", "SELECT user_id, team, period_start, period_end, amount FROM main.quotas"),
    ("k_spend", "SELECT channel, period_start, period_end, amount FROM main.spend"),
    (
        "k_contacts",
        # a lead converted (by as_of) into a deleted contact is that deleted person;
        # only the columns read below (c.* copied every record's raw JSON, ~1.3 KB on a synced store)
        f"""SELECT c.id, c.owner_id, c.account_id, c.region, c.channel, c.lifecycle_stage,
               c.created_at, c.converted_at, c.converted_contact_id
        FROM main.contacts c
        WHERE {_LIVE.format(t="c")} AND coalesce(c.created_at, '') <= :as_of AND c.id IS NOT NULL
          AND NOT EXISTS (SELECT 1 FROM main.contacts t WHERE t.id = c.converted_contact_id
                          AND t.id <> c.id AND t.is_deleted = 1
                          AND coalesce(t.created_at, '') <= :as_of
                          AND (c.converted_at IS NULL OR c.converted_at <= :as_of))""",
    ),
    (
        "k_person_map",
        # converted leads follow the person to the contact, once that contact exists
        """SELECT c.id AS contact_id,
               CASE WHEN t.id IS NOT NULL AND (c.converted_at IS NULL OR c.converted_at <= :as_of)
                    THEN t.id ELSE c.id END AS person_id
        FROM k_contacts c LEFT JOIN k_contacts t
          ON t.id = c.converted_contact_id AND t.id <> c.id""",
    ),
    (
        "k_opps",
        f"""SELECT o.id, o.owner_id, u.team, coalesce(o.region, a.region) AS region, o.channel,
               o.account_id, m.person_id, coalesce(o.created_by_id, o.owner_id) AS creator_id,
               cu.team AS creator_team, o.amount, o.created_at, o.deal_type, o.competitor_price,
               {_CLOSED} AS closed_at, {_CLOSED} IS NOT NULL AND o.is_won = 1 AS won,
               {_CLOSED} IS NOT NULL AND coalesce(o.is_won, 0) = 0 AS lost,
               kpi_seg(o.created_at) AS created_seg, kpi_seg({_CLOSED}) AS closed_seg
        FROM main.opportunities o
        LEFT JOIN main.accounts a ON a.id = o.account_id AND {_LIVE_ACCOUNT}
        LEFT JOIN k_users u ON u.id = o.owner_id
        LEFT JOIN k_users cu ON cu.id = coalesce(o.created_by_id, o.owner_id)
        LEFT JOIN k_person_map m ON m.contact_id = o.contact_id
        WHERE {_LIVE.format(t="o")} AND coalesce(o.created_at, '') <= :as_of AND o.id IS NOT NULL""",
    ),
    (
        "k_won_ranked",
        """SELECT account_id, closed_at, amount, channel,
               row_number() OVER (PARTITION BY account_id ORDER BY closed_at, id) AS n
        FROM k_opps WHERE won AND account_id IS NOT NULL""",
    ),
    (
        "k_accounts",
        f"""SELECT a.id, a.owner_id, u.team, a.region,
               CASE WHEN a.churned_at <= :as_of THEN a.churned_at END AS churned_at,
               w.customer_since, w.second_won_at, coalesce(w.won_count, 0) AS won_count,
               w.won_amount, w.first_channel, kpi_seg(w.customer_since) AS since_seg,
               kpi_seg(w.second_won_at) AS second_seg,
               kpi_seg(CASE WHEN a.churned_at <= :as_of THEN a.churned_at END) AS churn_seg
        FROM main.accounts a
        LEFT JOIN (SELECT account_id, min(closed_at) AS customer_since,
                          max(CASE WHEN n = 2 THEN closed_at END) AS second_won_at,
                          count(*) AS won_count, sum(amount) AS won_amount,
                          max(CASE WHEN n = 1 THEN channel END) AS first_channel
                   FROM k_won_ranked GROUP BY account_id) w ON w.account_id = a.id
        LEFT JOIN k_users u ON u.id = a.owner_id
        WHERE {_LIVE.format(t="a")} AND coalesce(a.created_at, '') <= :as_of AND a.id IS NOT NULL""",
    ),
    (
        "k_cases",
        f"""SELECT c.id, c.owner_id, u.team, a.region, c.account_id, m.person_id, c.created_at,
               CASE WHEN c.closed_at <= :as_of THEN c.closed_at END AS closed_at,
               CASE WHEN c.first_response_at <= :as_of THEN c.first_response_at END
                   AS first_response_at,
               kpi_seg(c.created_at) AS created_seg,
               kpi_seg(CASE WHEN c.closed_at <= :as_of THEN c.closed_at END) AS closed_seg
        FROM main.cases c
        LEFT JOIN main.accounts a ON a.id = c.account_id AND {_LIVE_ACCOUNT}
        LEFT JOIN k_users u ON u.id = c.owner_id
        LEFT JOIN k_person_map m ON m.contact_id = c.contact_id
        WHERE {_LIVE.format(t="c")} AND c.created_at <= :as_of""",
    ),
    (
        "k_stage_history",
        # the KPI queries read only live tables (a parallel compute's workers see
        # nothing else), so the stage history, quotas and spend they use are copied
        """SELECT opportunity_id, stage, entered_at, kpi_seg(entered_at) AS seg
        FROM main.opportunity_stage_history WHERE entered_at <= :as_of""",
    ),
    (
        "k_persons",
        # a person is a record that is its own person (k_person_map), or one that converted
        # leads map to: those merged records fill in its blank owner, region, channel and
        # account (the largest of theirs), and its creation is the earliest of them all;
        # only the merged records are grouped, not every contact
        """WITH merged AS MATERIALIZED (
            SELECT m.person_id, min(c.created_at) AS created_at, max(c.owner_id) AS owner_id,
                   max(c.region) AS region, max(c.channel) AS channel, max(c.account_id) AS account_id
            FROM k_person_map m JOIN k_contacts c ON c.id = m.contact_id
            WHERE m.person_id <> m.contact_id
            GROUP BY m.person_id),
        persons AS (
            SELECT p.id, coalesce(p.owner_id, g.owner_id) AS owner_id,
                   coalesce(p.region, g.region) AS region, coalesce(p.channel, g.channel) AS channel,
                   coalesce(p.account_id, g.account_id) AS account_id, p.lifecycle_stage,
                   CASE WHEN g.person_id IS NULL THEN p.created_at
                        WHEN s.person_id <> p.id THEN g.created_at
                        ELSE coalesce(min(p.created_at, g.created_at), p.created_at, g.created_at)
                   END AS created_at
            FROM k_contacts p JOIN k_person_map s ON s.contact_id = p.id
            LEFT JOIN merged g ON g.person_id = p.id
            WHERE s.person_id = p.id OR g.person_id IS NOT NULL)
        SELECT p.id, p.owner_id, u.team, p.region, p.channel, p.account_id, p.created_at,
               p.lifecycle_stage, kpi_seg(p.created_at) AS created_seg
        FROM persons p LEFT JOIN k_users u ON u.id = p.owner_id""",
    ),
    (
        "k_lc",
        # lifecycle stages per person: the first entry of any of its records
        """SELECT m.person_id, e.stage, min(e.entered_at) AS entered_at,
               kpi_seg(min(e.entered_at)) AS seg
        FROM main.lifecycle_events e JOIN k_person_map m ON m.contact_id = e.contact_id
        WHERE e.entered_at <= :as_of AND e.stage IS NOT NULL
        GROUP BY m.person_id, e.stage""",
    ),
    (
        "k_stages",
        """SELECT person_id,
               max(CASE WHEN stage = 'lead' THEN entered_at END) AS lead_at,
               max(CASE WHEN stage = 'mql' THEN entered_at END) AS mql_at,
               max(CASE WHEN stage = 'sql' THEN entered_at END) AS sql_at,
               max(CASE WHEN stage = 'opportunity' THEN entered_at END) AS opportunity_at,
               max(CASE WHEN stage = 'customer' THEN entered_at END) AS customer_at,
               max(entered_at) AS latest_at
        FROM k_lc GROUP BY person_id""",
    ),
    (
        "k_surveys",
        """SELECT s.id, s.kind, s.score, s.submitted_at, kpi_seg(s.submitted_at) AS seg,
               s.user_id, su.team AS user_team,
               a.id AS account_id, a.owner_id AS account_owner, a.team AS account_team
        FROM main.surveys s
        LEFT JOIN k_person_map m ON m.contact_id = s.contact_id
        LEFT JOIN k_persons p ON p.id = m.person_id
        LEFT JOIN k_accounts a ON a.id = coalesce(s.account_id, p.account_id)
        LEFT JOIN k_users su ON su.id = s.user_id
        WHERE s.submitted_at <= :as_of AND s.score IS NOT NULL""",
    ),
    (
        "k_acts",
        # an activity exists once logged (created_at); it is a touch or a
        # response once it happened (occurred_at); a meeting counts as booked
        # at its created_at (kpi-catalog.md, shared definitions)
        # (the person's account is looked up only for the activities without one; the
        # segment is placed from the plain column, which the inlined search reads at
        # each of its steps)
        f"""SELECT a.id, a.type, a.owner_id, u.team, m.person_id,
               coalesce(a.account_id, (SELECT p.account_id FROM k_persons p WHERE p.id = m.person_id))
                   AS account_id,
               a.opportunity_id, a.occurred_at, a.duration_s,
               coalesce(a.occurred_at <= :as_of AND a.direction = 'outbound'
                        AND a.type IN {TOUCH_TYPES}, 0) AS is_touch,
               coalesce(a.occurred_at <= :as_of AND (a.direction = 'inbound'
                        OR a.outcome IN {RESPONSE_OUTCOMES}), 0) AS is_response,
               coalesce(a.occurred_at <= :as_of AND a.direction = 'inbound', 0) AS is_inbound,
               coalesce(a.occurred_at <= :as_of AND a.outcome = 'positive', 0) AS is_positive,
               coalesce(a.type = 'meeting' AND coalesce(a.outcome, '') <> 'canceled', 0)
                   AS is_booked,
               CASE WHEN a.occurred_at <= :as_of THEN kpi_seg(a.occurred_at) END AS seg,
               CASE WHEN a.type = 'meeting' THEN kpi_seg(coalesce(a.created_at, a.occurred_at)) END
                   AS booked_seg
        FROM main.activities a
        LEFT JOIN k_users u ON u.id = a.owner_id
        LEFT JOIN k_person_map m ON m.contact_id = a.contact_id
        WHERE {_LIVE.format(t="a")} AND coalesce(a.created_at, a.occurred_at) <= :as_of""",
    ),
    (
        "k_account_seg",
        # per account and segment: touches and inbound activities, call/meeting seconds
        """SELECT account_id, seg, sum(is_touch OR is_inbound) AS engaged,
               sum(CASE WHEN type IN ('call', 'meeting') THEN coalesce(duration_s, 0) ELSE 0 END) AS seconds
        FROM k_acts WHERE account_id IS NOT NULL AND seg IS NOT NULL
        GROUP BY account_id, seg""",
    ),
    (
        "k_touch",
        # a view: the touches are read through the partial indexes on k_acts
        """SELECT id, person_id, opportunity_id, account_id, owner_id, type, occurred_at, seg
        FROM k_acts WHERE is_touch""",
    ),
    (
        "k_first_touch",
        # lead response: the first touch at or after the person's start moment
        # (its mql entry, else its creation)
        """SELECT p.id AS person_id, p.owner_id, p.team, p.channel, s.mql_at,
               kpi_seg(s.mql_at) AS mql_seg, coalesce(s.mql_at, p.created_at) AS start_at,
               kpi_seg(coalesce(s.mql_at, p.created_at)) AS start_seg,
               (SELECT min(t.occurred_at) FROM k_touch t WHERE t.person_id = p.id
                  AND t.occurred_at >= coalesce(s.mql_at, p.created_at)) AS first_touch_at
        FROM k_persons p LEFT JOIN k_stages s ON s.person_id = p.id""",
    ),
    (
        "k_opp_touches",
        # touches_to_close: touches on the deal, or on its contact with no deal
        # set, up to its close (open deals: up to as_of)
        """SELECT o.id AS opportunity_id,
               (SELECT count(*) FROM k_touch t WHERE t.opportunity_id = o.id
                  AND t.occurred_at <= coalesce(o.closed_at, :as_of))
             + (SELECT count(*) FROM k_touch t WHERE t.opportunity_id IS NULL
                  AND t.person_id = o.person_id
                  AND t.occurred_at <= coalesce(o.closed_at, :as_of)) AS touches
        FROM k_opps o""",
    ),
    (
        "k_inbound",
        # inbound activities (at occurred_at) and cases (at created_at), with the
        # first later touch on the same person (a case: first_response_at when set)
        """SELECT a.id AS rec, a.seg, a.owner_id AS user_id, a.team, a.account_id,
               a.occurred_at AS asked_at,
               (SELECT min(t.occurred_at) FROM k_touch t WHERE t.person_id = a.person_id
                  AND t.occurred_at > a.occurred_at) AS answered_at
        FROM k_acts a WHERE a.is_inbound
        UNION ALL
        SELECT c.id, c.created_seg, c.owner_id, c.team, c.account_id, c.created_at,
               coalesce(c.first_response_at,
                        (SELECT min(t.occurred_at) FROM k_touch t WHERE t.person_id = c.person_id
                           AND t.occurred_at > c.created_at))
        FROM k_cases c""",
    ),
)

# tables stored in the order of a key of their own (WITHOUT ROWID): a lookup by that key is
# one B-tree search, not an index search and then another in the table (k_acts looks up
# a user and a person for each of its million rows). Their SELECTs skip rows without that
# key (a store's id can be NULL in SQLite; no record could refer to such a row).
KEYS: dict[str, str] = {
    "k_users": "id",
    "k_contacts": "id",
    "k_person_map": "contact_id",
    "k_opps": "id",
    "k_accounts": "id",
    "k_persons": "id",
    "k_lc": "person_id, stage",
    "k_stages": "person_id",
}
# indexes made right after their table, for the tables built from it ({s}: the schema)
INDEXES: dict[str, tuple[str, ...]] = {
    "k_opps": ("CREATE INDEX {s}.k_opps_account ON k_opps (account_id)",),
    "k_acts": (
        "CREATE INDEX {s}.k_touch_person ON k_acts (person_id, occurred_at) WHERE is_touch",
        "CREATE INDEX {s}.k_touch_opp ON k_acts (opportunity_id, occurred_at) WHERE is_touch AND opportunity_id IS NOT NULL",
    ),
    "k_stage_history": ("CREATE INDEX {s}.k_stage_history_opp ON k_stage_history (opportunity_id, entered_at)",),
}
# live "tables" that are views: no copy of a million rows when an index serves the reads
VIEWS = frozenset({"k_touch"})


def build(
    conn: sqlite3.Connection,
    as_of: str,
    bounds: Sequence[str],
    schema: str = "temp",
    on_table: Callable[[str, int], None] | None = None,
    only: Collection[str] | None = None,
) -> None:
    """Create the live tables for one compute in `schema`: temp, or an attached scratch
    database that parallel workers read. `on_table(name, rows)` follows each table
    (with its indexes). `only`: just these tables and those they are built from."""
    wanted = None if only is None else with_inputs(only)
    for name, select in LIVE_TABLES:
        if wanted is not None and name not in wanted:
            continue
        if name in VIEWS:
            conn.execute(f"CREATE VIEW {schema}.{name} AS {select}")
        elif name in KEYS:
            _create_keyed(conn, f"{schema}.{name}", inline_segments(select, bounds), KEYS[name], {"as_of": as_of})
        else:
            conn.execute(f"CREATE TABLE {schema}.{name} AS {inline_segments(select, bounds)}", {"as_of": as_of})
        for statement in INDEXES.get(name, ()):
            conn.execute(statement.format(s=schema))
        if on_table is not None:
            # (a table just built by CREATE TABLE AS numbers its rows from 1 without gaps)
            counted = "count(*)" if name in KEYS else "max(rowid)"
            rows = 0 if name in VIEWS else conn.execute(f"SELECT {counted} FROM {schema}.{name}").fetchone()[0]
            on_table(name, rows or 0)


def _create_keyed(conn: sqlite3.Connection, table: str, select: str, key: str, params: dict[str, str]) -> None:
    """CREATE TABLE AS, but WITHOUT ROWID in the order of `key`: the same columns and
    declared types (read from an empty CREATE TABLE AS), filled in key order."""
    conn.execute(f"CREATE TABLE {table} AS SELECT * FROM ({select}) LIMIT 0", params)
    schema, name = table.split(".")
    columns = [(row[1], row[2]) for row in conn.execute(f"PRAGMA {schema}.table_info({name})")]
    conn.execute(f"DROP TABLE {table}")
    defined = ", ".join(f'"{column}" {kind}' for column, kind in columns)
    conn.execute(f"CREATE TABLE {table} ({defined}, PRIMARY KEY ({key})) WITHOUT ROWID")
    # ordered on the SELECT itself, by position (its joins may share a column name), so
    # that SQLite sees when its GROUP BY or its scan already gives that order
    names = [column for column, _ in columns]
    order = ", ".join(str(names.index(part.strip()) + 1) for part in key.split(","))
    conn.execute(f"INSERT INTO {table} {select} ORDER BY {order}", params)


def inline_segments(sql: str, bounds: Sequence[str]) -> str:
    """Replace each `kpi_seg(x)` by a binary search over the bounds in plain SQL.

    The same as the Python function registered under that name (Context),
    about twenty times cheaper than calling into Python for millions of rows.
    """
    out, at = [], 0
    while (start := sql.find("kpi_seg(", at)) >= 0:
        depth, i = 0, start + len("kpi_seg")
        while True:
            depth += {"(": 1, ")": -1}.get(sql[i], 0)
            if depth == 0:
                break
            i += 1
        out += [sql[at:start], segment_case(sql[start + len("kpi_seg(") : i], bounds)]
        at = i + 1
    return "".join([*out, sql[at:]])


def segment_case(expr: str, bounds: Sequence[str]) -> str:
    def search(lo: int, hi: int) -> str:  # segment index in [lo, hi)
        if hi - lo == 1:
            return str(lo)
        mid = (lo + hi) // 2
        return f"CASE WHEN x < '{bounds[mid]}' THEN {search(lo, mid)} ELSE {search(mid, hi)} END"

    x = f"({expr})"
    if len(bounds) < 2:
        return "NULL"
    body = search(0, len(bounds) - 1).replace("x <", f"{x} <")
    return f"(CASE WHEN {x} IS NULL OR {x} < '{bounds[0]}' OR {x} >= '{bounds[-1]}' THEN NULL ELSE {body} END)"


def tables_read(text: str) -> set[str]:
    """The live tables and views a query (or any text holding queries) reads, and the tables
    under those views."""
    names = set(re.findall(r"\bk_\w+", text)) & {name for name, _ in LIVE_TABLES}
    for view in names & VIEWS:
        names |= tables_read(dict(LIVE_TABLES)[view])
    return names


def with_inputs(names: Collection[str]) -> set[str]:
    """`names` and every live table their own SELECTs read, down to the store's tables."""
    selects = dict(LIVE_TABLES)
    found: set[str] = set()
    todo = list(names)
    while todo:
        name = todo.pop()
        if name not in found:
            found.add(name)
            todo += tables_read(selects[name]) - found
    return found


def drop(conn: sqlite3.Connection, schema: str = "temp") -> None:
    for name, _ in reversed(LIVE_TABLES):
        conn.execute(f"DROP {'VIEW' if name in VIEWS else 'TABLE'} IF EXISTS {schema}.{name}")
    conn.execute("DROP TABLE IF EXISTS temp.k_out")
    conn.execute(f"DROP TABLE IF EXISTS {schema}.k_periods")
    conn.execute(f"DROP TABLE IF EXISTS {schema}.k_period_seg")
