"""Fact families and their set-based rollups: facts → (grain, key, period) sums and samples.

A `Family` is one SQL query over the live temp tables whose rows are facts
about single records (`rec`), placed in a segment (`seg`) or already in a
period (`period`), with one column per grain they can be attributed to and
one column per measure. A family is rolled up once per compute for every
grain and period at once (pre-summed per segment first), and every KPI built
on it picks its measures (kpisync.kpi.aggregate). The same SQL, filtered,
lists the records behind a value for `kpi explain`.

Grain columns: org → '', team → team, user → user_id, region → region,
channel → channel, activity_type → atype, account → account_id,
contact → contact_id, opportunity → opportunity_id.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from kpisync.kpi.context import Context

Row = tuple[str, str, str, Any, Any, Any]  # grain, key, period, value, numerator, denominator
Wanted = dict[str, tuple[str, ...]]  # grain -> period labels to report
# grain -> periods reported only for keys that have data (record grains in calendar
# periods: an account without cases this month gets no row, not a 0)
Sparse = dict[str, frozenset[str]]
Key = tuple[str, str, str]  # grain, key, period

GRAIN_COLUMN = {
    "team": "team",
    "user": "user_id",
    "region": "region",
    "channel": "channel",
    "activity_type": "atype",
    "account": "account_id",
    "contact": "contact_id",
    "opportunity": "opportunity_id",
}


@dataclass(frozen=True)
class Family:
    name: str
    sql: str  # columns: rec, seg | period, the grain columns, the measures (or x)
    grains: tuple[str, ...]
    measures: tuple[str, ...] = ()  # summed columns; empty: a sample family with column x
    by: str = "seg"  # "seg": facts carry a segment; "period": facts carry a period label
    only: tuple[str, ...] = ()  # roll up these periods only (a record grain's rolling window)
    params: Callable[[Context], dict[str, Any]] = field(default=lambda ctx: {}, compare=False)
    # the same sums from far fewer rows (records counted together; `kpi explain` still
    # lists this family's records), used unless its bit masks cannot hold the segments
    fast: Family | None = None
    max_segments: int | None = None  # a fast twin's limit: segments its bit masks hold

    def __post_init__(self) -> None:
        fast = self.fast
        if fast is not None and (fast.name, fast.grains, fast.measures) != (self.name, self.grains, self.measures):
            raise ValueError(f"family {self.name}: its fast twin must have its name, grains and measures")

    @property
    def columns(self) -> list[str]:
        return [GRAIN_COLUMN[g] for g in self.grains if g != "org"]

    def summed(self, ctx: Context) -> Family:
        """The family whose rows are summed: the fast twin when it can place this
        compute's segments."""
        fast = self.fast
        if fast is None or (fast.max_segments is not None and len(ctx.segments.bounds) - 1 > fast.max_segments):
            return self
        return fast


# segments a record's bit mask (1 << seg for each segment it is counted in) can hold in
# SQLite's signed 64-bit integers; default settings make about twenty
MASK_BITS = 62


# a grain column's NULL in a presummed table: its key would hold NULLs as all different,
# one row per fact (a BLOB: no team or user id, which are TEXT, equals it)
_NULL_KEY = "x'00'"
RECORD_COLUMNS = frozenset({"account_id", "contact_id", "opportunity_id"})


def rollup_sql(fam: Family, presummed: str | None = None) -> str:
    """The family summed per (grain, key, period); `presummed`: a temp table that already
    holds its sums per segment (or period) and grain columns (`presum`)."""
    cols = fam.columns
    if presummed:
        keys = "".join(f"nullif({c}, {_NULL_KEY}) AS {c}, " for c in cols)
        first = f"SELECT {fam.by}, {keys}{', '.join(fam.measures)} FROM temp.{presummed}"
    else:
        sums = ", ".join(f"sum({m}) AS {m}" for m in fam.measures)
        where = " WHERE seg IS NOT NULL" if fam.by == "seg" else ""
        first = (
            f"SELECT {fam.by}, {''.join(f'{c}, ' for c in cols)}{sums} FROM ({fam.sql}){where} "
            f"GROUP BY {fam.by}{''.join(f', {c}' for c in cols)}"
        )
    if fam.by == "seg":
        # grouped by key, then period: a record grain's rows come out in the order of the
        # output's primary key and go into its B-tree in order, not a period at a time
        only = " AND ps.period IN (" + ", ".join(f"'{p}'" for p in fam.only) + ")" if fam.only else ""
        facts = f"""s AS MATERIALIZED ({first}),
            f AS MATERIALIZED (
              SELECT ps.period, {", ".join(f"s.{c}" for c in cols) + ", " if cols else ""}
                     {", ".join(f"sum(s.{m}) AS {m}" for m in fam.measures)}
              FROM s JOIN k_period_seg ps ON ps.seg = s.seg{only}
              GROUP BY {"".join(f"s.{c}, " for c in cols)}ps.period)"""
    else:
        facts = f"f AS MATERIALIZED ({first})"
    if len(fam.grains) == 1 and fam.grains[0] != "org":  # f is already per key and period
        col = GRAIN_COLUMN[fam.grains[0]]
        return (
            f"WITH {facts} SELECT '{fam.grains[0]}' AS grain, {col} AS key, period, {', '.join(fam.measures)} "
            f"FROM f WHERE {col} IS NOT NULL"
        )
    parts = []
    for grain in fam.grains:
        col = "''" if grain == "org" else GRAIN_COLUMN[grain]
        where = "" if grain == "org" else f" WHERE {col} IS NOT NULL"
        parts.append(
            f"SELECT '{grain}' AS grain, {col} AS key, period, {', '.join(f'sum({m}) AS {m}' for m in fam.measures)} "
            f"FROM f{where} GROUP BY {col}, period"
        )
    return f"WITH {facts} " + " UNION ALL ".join(parts)


def sums(ctx: Context, fam: Family) -> dict[Key, tuple[Any, ...]]:
    """Each measure summed per (grain, key, period); absent keys counted nothing."""

    def build() -> dict[Key, tuple[Any, ...]]:
        summed = fam.summed(ctx)
        table = presum(ctx, summed)
        rows = ctx.query(rollup_sql(summed, table), summed.params(ctx))
        if table:
            ctx.conn.execute(f"DROP TABLE temp.{table}")
        return {(g, str(k), p): tuple(v or 0 for v in vals) for g, k, p, *vals in rows}

    return ctx.memo(f"sums:{fam.name}", build)


def presum(ctx: Context, fam: Family) -> str | None:
    """The family's facts summed per segment (or period) and grain columns into a temp
    table (its name), for a family whose grains have few keys (no record grain); else None.

    Summed by upsert into that small table rather than by GROUP BY: SQLite groups by
    sorting every fact row (a million activities on a large org), while the sums per
    segment and rep are a few thousand rows that stay in the page cache (the ACTIVITY
    family: 3.1 s instead of 3.8-4.1 s on one connection, large bench org). Float sums
    are added in another order, so they may differ from GROUP BY's in the last bits."""
    cols = fam.columns
    if not fam.measures or RECORD_COLUMNS & set(cols):
        return None
    name = f"k_presum_{fam.name}"
    keys = ", ".join([fam.by, *cols])
    ctx.conn.execute(f"DROP TABLE IF EXISTS temp.{name}")
    ctx.conn.execute(f"CREATE TEMP TABLE {name} ({keys}, {', '.join(fam.measures)}, PRIMARY KEY ({keys}))")
    picked = ", ".join(
        [fam.by, *(f"coalesce({c}, {_NULL_KEY})" for c in cols), *(f"coalesce({m}, 0)" for m in fam.measures)]
    )
    added = ", ".join(f"{m} = {m} + excluded.{m}" for m in fam.measures)
    where = "seg IS NOT NULL" if fam.by == "seg" else "1"
    ctx.conn.execute(
        # (WHERE ... AND 1: an upsert's SELECT needs a WHERE, or ON CONFLICT reads as a join's ON)
        f"""INSERT INTO temp.{name} SELECT {picked} FROM ({fam.sql}) WHERE {where} AND 1
        ON CONFLICT ({keys}) DO UPDATE SET {added}""",
        {"as_of": ctx.as_of_text, **fam.params(ctx)},
    )
    return name


def samples(ctx: Context, fam: Family) -> dict[str, dict[tuple[str, str], list[float]]]:
    """The values of column x per grain, then per (key, period), for medians."""

    def build() -> dict[str, dict[tuple[str, str], list[float]]]:
        cols = fam.columns
        where = "seg IS NOT NULL" if fam.by == "seg" else "1"
        sql = f"SELECT {fam.by}, {''.join(c + ', ' for c in cols)}x FROM ({fam.sql}) WHERE {where} AND x IS NOT NULL"
        facts = ctx.query(sql, fam.params(ctx))
        out: dict[str, dict[tuple[str, str], list[float]]] = {}
        for grain in fam.grains:
            i = None if grain == "org" else 1 + cols.index(GRAIN_COLUMN[grain])
            # gathered per segment first, then joined per period: a fact is touched once,
            # not once per period containing it (a median does not depend on the order)
            placed: dict[tuple[str, Any], list[float]] = defaultdict(list)
            for fact in facts:
                key = "" if i is None else fact[i]
                if key is not None:
                    placed[(str(key), fact[0])].append(fact[-1])
            per_period: dict[tuple[str, str], list[float]] = defaultdict(list)
            for (key, where_in), xs in placed.items():
                for label in ctx.seg_periods.get(where_in, ()) if fam.by == "seg" else (where_in,):
                    per_period[(key, label)] += xs
            out[grain] = per_period
        return out

    return ctx.memo(f"samples:{fam.name}", build)


def records(ctx: Context, fam: Family, grain: str, key: str, period: str) -> list[dict[str, Any]]:
    """The fact rows behind one value (for `kpi explain`)."""
    where = []
    params = dict(fam.params(ctx))
    if grain != "org":
        where.append(f"{GRAIN_COLUMN[grain]} = :key")
        params["key"] = key
    if fam.by == "seg":
        where.append("seg IN (SELECT seg FROM k_period_seg WHERE period = :period)")
    else:
        where.append("period = :period")
    params["period"] = period
    cur = ctx.conn.execute(
        f"SELECT * FROM ({fam.sql}) WHERE {' AND '.join(where)} ORDER BY rec",
        {"as_of": ctx.as_of_text, **params},
    )
    names = [d[0] for d in cur.description]
    return [dict(zip(names, row, strict=True)) for row in cur]
