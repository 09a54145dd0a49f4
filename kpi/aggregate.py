"""Set-based rollups shared by the catalog: facts → (grain, key, period) values.

A `Family` is one SQL query over the live temp tables whose rows are facts
about single records (`rec`), placed in a segment (`seg`) or already in a
period (`period`), with one column per grain they can be attributed to and
one column per measure. A family is rolled up once per compute for every
grain and period at once (pre-summed per segment first), and every KPI built
on it picks its measures. The same SQL, filtered, lists the records behind a
value for `kpi explain`.

Grain columns: org → '', team → team, user → user_id, region → region,
channel → channel, activity_type → atype, account → account_id,
contact → contact_id, opportunity → opportunity_id.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Callable, Iterable
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

    @property
    def columns(self) -> list[str]:
        return [GRAIN_COLUMN[g] for g in self.grains if g != "org"]


def _rollup_sql(fam: Family) -> str:
    cols = fam.columns
    dims = "".join(f"{c}, " for c in cols)
    sums = ", ".join(f"sum({m}) AS {m}" for m in fam.measures)
    only = " AND ps.period IN (" + ", ".join(f"'{p}'" for p in fam.only) + ")" if fam.only else ""
    if fam.by == "seg":
        facts = f"""s AS MATERIALIZED (
              SELECT seg, {dims}{sums} FROM ({fam.sql}) WHERE seg IS NOT NULL
              GROUP BY seg{"".join(f", {c}" for c in cols)}),
            f AS MATERIALIZED (
              SELECT ps.period, {", ".join(f"s.{c}" for c in cols) + ", " if cols else ""}
                     {", ".join(f"sum(s.{m}) AS {m}" for m in fam.measures)}
              FROM s JOIN k_period_seg ps ON ps.seg = s.seg{only}
              GROUP BY ps.period{"".join(f", s.{c}" for c in cols)})"""
    else:
        facts = f"""f AS MATERIALIZED (
              SELECT period, {dims}{sums} FROM ({fam.sql})
              GROUP BY period{"".join(f", {c}" for c in cols)})"""
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
        rows = ctx.query(_rollup_sql(fam), fam.params(ctx))
        return {(g, str(k), p): tuple(v or 0 for v in vals) for g, k, p, *vals in rows}

    return ctx.memo(f"sums:{fam.name}", build)


def samples(ctx: Context, fam: Family) -> dict[Key, list[float]]:
    """The values of column x per (grain, key, period), for medians and means."""

    def build() -> dict[Key, list[float]]:
        cols = fam.columns
        where = "seg IS NOT NULL" if fam.by == "seg" else "1"
        sql = f"SELECT {fam.by}, {''.join(c + ', ' for c in cols)}x FROM ({fam.sql}) WHERE {where}"
        grains = [(g, None if g == "org" else cols.index(GRAIN_COLUMN[g])) for g in fam.grains]
        # gathered per segment first, then joined per period: a fact is touched once,
        # not once per period containing it (a median does not depend on the order)
        placed: dict[tuple[str, str, Any], list[float]] = defaultdict(list)
        for where_in, *dims, x in ctx.query(sql, fam.params(ctx)):
            if x is None:
                continue
            for grain, i in grains:
                key = "" if i is None else dims[i]
                if key is not None:
                    placed[(grain, str(key), where_in)].append(x)
        out: dict[Key, list[float]] = defaultdict(list)
        for (grain, key, where_in), xs in placed.items():
            for label in ctx.seg_periods.get(where_in, ()) if fam.by == "seg" else (where_in,):
                out[(grain, key, label)] += xs
        return dict(out)

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


# -- record grains in SQL: millions of rows never pass through Python ----------------------

RecordQuery = tuple[str, dict[str, Any]]  # SELECT key, period, value, numerator, denominator; params


def rollup_table(ctx: Context, fam: Family, grain: str) -> str:
    """The family's sums at one grain as a temp table (key, period, measures), built once."""

    def build() -> str:
        name = f"k_roll_{fam.name}_{grain}"
        measures = ", ".join(f"coalesce({m}, 0) AS {m}" for m in fam.measures)
        ctx.conn.execute(
            f"CREATE TEMP TABLE {name} AS SELECT key, period, {measures} FROM ({_rollup_sql(fam)}) WHERE grain = :grain",
            {"as_of": ctx.as_of_text, **fam.params(ctx), "grain": grain},
        )
        ctx.conn.execute(f"CREATE INDEX temp.{name}_key ON {name} (key, period)")
        return name

    return ctx.memo(f"table:{fam.name}:{grain}", build)


def _labels(periods: Iterable[str]) -> str:
    return ", ".join(f"'{p}'" for p in periods)  # our own period labels, never user text


def with_fill(
    ctx: Context, grain: str, got: str, periods: tuple[str, ...], dense: tuple[str, ...], fill: tuple[Any, Any, Any]
) -> str:
    """`got` (key, period, value, numerator, denominator) in the wanted periods, and the
    fill row for every key of the grain (or with data) in a dense period without one.

    The same rows as `Compute.__call__` for one grain, less those a record grain
    never writes (a null value)."""
    rows = f"SELECT key, period, value, numerator, denominator FROM ({got}) WHERE period IN ({_labels(periods)})"
    if fill[0] is None or not dense:
        return rows
    return f"""WITH got AS MATERIALIZED ({rows})
        SELECT * FROM got
        UNION ALL
        SELECT k.key, d.period, :fill_value, :fill_numerator, :fill_denominator
        FROM ({ctx.universe_sql(grain)} UNION SELECT key FROM got) k
        CROSS JOIN ({" UNION ALL ".join(f"SELECT '{p}' AS period" for p in dense)}) d
        WHERE NOT EXISTS (SELECT 1 FROM got g WHERE g.key = k.key AND g.period = d.period)"""


def _fill_params(fill: tuple[Any, Any, Any]) -> dict[str, Any]:
    return dict(zip(("fill_value", "fill_numerator", "fill_denominator"), fill, strict=True))


# -- compute kinds: how a KPI turns a family's rollup into values --------------------------


class Compute:
    """Turns the shared rollups into rows for the grains and periods wanted."""

    fill: tuple[Any, Any, Any] = (None, None, None)  # value, numerator, denominator of "nothing"

    def values(self, ctx: Context, grain: str) -> dict[tuple[str, str], tuple[Any, Any, Any]]:
        raise NotImplementedError

    def __call__(self, ctx: Context, wanted: Wanted, sparse: Sparse | None = None) -> Iterable[Row]:
        for grain, periods in wanted.items():
            got = self.values(ctx, grain)
            wanted_periods = set(periods)
            keys = dict.fromkeys(ctx.universe(grain))
            for (key, period), value in got.items():
                if period in wanted_periods:
                    keys[key] = None
                    yield (grain, key, period, *value)
            dense = [p for p in periods if p not in (sparse or {}).get(grain, ())]
            for key in keys:
                for period in dense:
                    if (key, period) not in got:
                        yield (grain, key, period, *self.fill)

    def explain(self, ctx: Context, grain: str, key: str, period: str) -> dict[str, Any]:
        return {}

    def record_sql(
        self, ctx: Context, grain: str, periods: tuple[str, ...], dense: tuple[str, ...]
    ) -> RecordQuery | None:
        """The rows of a record grain as one query (the rows `__call__` yields, less
        null values), or None to go through Python."""
        return None


@dataclass
class _SummedInSql(Compute):
    """A compute on a summed family whose value is one SQL expression of its measures."""

    family: Family

    def value_sql(self) -> str:  # value, numerator, denominator
        raise NotImplementedError

    def record_sql(
        self, ctx: Context, grain: str, periods: tuple[str, ...], dense: tuple[str, ...]
    ) -> RecordQuery | None:
        table = rollup_table(ctx, self.family, grain)
        got = f"SELECT key, period, {self.value_sql()} FROM {table}"
        return with_fill(ctx, grain, got, periods, dense, self.fill), {
            "scale": getattr(self, "scale", 1.0),
            **_fill_params(self.fill),
        }


def _pick(rollup: dict[Key, Any], grain: str) -> dict[tuple[str, str], Any]:
    return {(k, p): v for (g, k, p), v in rollup.items() if g == grain}


@dataclass
class Total(_SummedInSql):
    """A count or sum: value only."""

    measure: str

    def __post_init__(self) -> None:
        self.fill = (0, None, None)

    def value_sql(self) -> str:
        return f"{self.measure} AS value, NULL AS numerator, NULL AS denominator"

    def values(self, ctx: Context, grain: str) -> dict[tuple[str, str], tuple[Any, Any, Any]]:
        i = self.family.measures.index(self.measure)
        return {kp: (v[i], None, None) for kp, v in _pick(sums(ctx, self.family), grain).items()}

    def explain(self, ctx: Context, grain: str, key: str, period: str) -> dict[str, Any]:
        rows = records(ctx, self.family, grain, key, period)
        return {"numerator": _contributing(rows, self.measure)}


@dataclass
class Ratio(_SummedInSql):
    """numerator ÷ denominator (× scale); null when the denominator is 0."""

    num: str
    den: str
    scale: float = 1.0

    def __post_init__(self) -> None:
        self.fill = (None, 0, 0)

    def value_sql(self) -> str:  # as in values(): (scale × num) ÷ den, the same float steps
        n, d = self.num, self.den
        return f"CASE WHEN {d} <> 0 THEN :scale * {n} / {d} END AS value, {n} AS numerator, {d} AS denominator"

    def values(self, ctx: Context, grain: str) -> dict[tuple[str, str], tuple[Any, Any, Any]]:
        i, j = self.family.measures.index(self.num), self.family.measures.index(self.den)
        return {
            kp: (self.scale * v[i] / v[j] if v[j] else None, v[i], v[j])
            for kp, v in _pick(sums(ctx, self.family), grain).items()
        }

    def explain(self, ctx: Context, grain: str, key: str, period: str) -> dict[str, Any]:
        rows = records(ctx, self.family, grain, key, period)
        return {
            "numerator": _contributing(rows, self.num),
            "denominator": _contributing(rows, self.den),
        }


@dataclass
class Mean(_SummedInSql):
    """sum ÷ n (× scale), reported with n as denominator and no numerator."""

    total: str
    n: str
    scale: float = 1.0

    def __post_init__(self) -> None:
        self.fill = (None, None, 0)

    def value_sql(self) -> str:
        t, n = self.total, self.n
        return f"CASE WHEN {n} <> 0 THEN :scale * {t} / {n} END AS value, NULL AS numerator, {n} AS denominator"

    def values(self, ctx: Context, grain: str) -> dict[tuple[str, str], tuple[Any, Any, Any]]:
        i, j = self.family.measures.index(self.total), self.family.measures.index(self.n)
        return {
            kp: (self.scale * v[i] / v[j] if v[j] else None, None, v[j])
            for kp, v in _pick(sums(ctx, self.family), grain).items()
        }

    def explain(self, ctx: Context, grain: str, key: str, period: str) -> dict[str, Any]:
        rows = records(ctx, self.family, grain, key, period)
        return {
            "numerator": _contributing(rows, self.total),
            "denominator": _contributing(rows, self.n),
        }


@dataclass
class Median(Compute):
    """Median of a sample family's x, with the sample size as denominator."""

    family: Family

    def __post_init__(self) -> None:
        self.fill = (None, None, 0)

    def values(self, ctx: Context, grain: str) -> dict[tuple[str, str], tuple[Any, Any, Any]]:
        return {
            kp: (statistics.median(xs), None, len(xs)) for kp, xs in _pick(samples(ctx, self.family), grain).items()
        }

    def explain(self, ctx: Context, grain: str, key: str, period: str) -> dict[str, Any]:
        rows = records(ctx, self.family, grain, key, period)
        return {"denominator": [(r["rec"], r["x"]) for r in rows if r["x"] is not None]}


@dataclass
class PerWorkingDay(Compute):
    """A summed measure ÷ the working days (Mon–Fri, org time zone) of the period."""

    family: Family
    measure: str

    def __post_init__(self) -> None:
        self.fill = (None, 0, None)

    def values(self, ctx: Context, grain: str) -> dict[tuple[str, str], tuple[Any, Any, Any]]:
        i = self.family.measures.index(self.measure)
        return {
            (k, p): (v[i] / d if (d := ctx.periods[p].working_days) else None, v[i], d)
            for (k, p), v in _pick(sums(ctx, self.family), grain).items()
        }

    def __call__(self, ctx: Context, wanted: Wanted, sparse: Sparse | None = None) -> Iterable[Row]:
        for grain, key, period, value, num, _ in super().__call__(ctx, wanted, sparse):
            days = ctx.periods[period].working_days
            yield grain, key, period, value if num or not days else 0.0, num, days

    def explain(self, ctx: Context, grain: str, key: str, period: str) -> dict[str, Any]:
        rows = records(ctx, self.family, grain, key, period)
        return {"numerator": _contributing(rows, self.measure)}


@dataclass
class ByGrain(Compute):
    """Different computes for different grains (a record grain next to the rollups)."""

    default: Compute
    special: dict[str, Compute]

    def __call__(self, ctx: Context, wanted: Wanted, sparse: Sparse | None = None) -> Iterable[Row]:
        for grain, periods in wanted.items():
            yield from self.special.get(grain, self.default)(ctx, {grain: periods}, sparse)

    def explain(self, ctx: Context, grain: str, key: str, period: str) -> dict[str, Any]:
        return self.special.get(grain, self.default).explain(ctx, grain, key, period)

    def record_sql(
        self, ctx: Context, grain: str, periods: tuple[str, ...], dense: tuple[str, ...]
    ) -> RecordQuery | None:
        return self.special.get(grain, self.default).record_sql(ctx, grain, periods, dense)


@dataclass
class RecordSql(Compute):
    """A record-level value from one query with columns key, value, numerator, denominator.

    Only the `all` period (or the one given); records without a row get `fill`.
    """

    sql: str
    period: str = "all"
    fill_value: tuple[Any, Any, Any] = (None, None, None)
    detail: str | None = None  # SQL listing the records behind one key (:key)

    def __post_init__(self) -> None:
        self.fill = self.fill_value

    def values(self, ctx: Context, grain: str) -> dict[tuple[str, str], tuple[Any, Any, Any]]:
        return {(str(k), self.period): (v, n, d) for k, v, n, d in ctx.query(self.sql)}

    def record_sql(
        self, ctx: Context, grain: str, periods: tuple[str, ...], dense: tuple[str, ...]
    ) -> RecordQuery | None:
        got = f"""WITH r(key, value, numerator, denominator) AS ({self.sql})
            SELECT key, '{self.period}' AS period, value, numerator, denominator FROM r"""
        return with_fill(ctx, grain, got, periods, dense, self.fill), _fill_params(self.fill)

    def explain(self, ctx: Context, grain: str, key: str, period: str) -> dict[str, Any]:
        if not self.detail:
            return {}
        return {"numerator": [tuple(r) for r in ctx.query(self.detail, {"key": key})]}


def families_of(compute: Any) -> set[str]:
    """Names of the families a compute reads (so their rollups can be freed after)."""
    if isinstance(compute, ByGrain):
        return families_of(compute.default).union(*(families_of(c) for c in compute.special.values()))
    names = {f.name for f in getattr(compute, "uses", ())}
    family = getattr(compute, "family", None)
    if isinstance(family, Family):
        names.add(family.name)
    return names


def _contributing(rows: list[dict[str, Any]], measure: str) -> list[tuple[str, Any]]:
    return [(r["rec"], r[measure]) for r in rows if r[measure]]
