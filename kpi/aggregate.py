"""Compute kinds: how a KPI turns a family's rollup into values (count, ratio, mean,
median, per working day, record-level SQL), for every grain and period it reports.

The rollups are in kpisync.kpi.families; record grains are written from SQL
(kpisync.kpi.record_grains) when the kind can say them as a query.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from kpisync.kpi import live
from kpisync.kpi.context import Context
from kpisync.kpi.families import Family, Key, Row, Sparse, Wanted, records, samples, sums
from kpisync.kpi.record_grains import RecordQuery, fill_params, rollup_table, with_fill

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
            **fill_params(self.fill),
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
        return {kp: (_median(xs), None, len(xs)) for kp, xs in samples(ctx, self.family).get(grain, {}).items()}

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
        return with_fill(ctx, grain, got, periods, dense, self.fill), fill_params(self.fill)

    def explain(self, ctx: Context, grain: str, key: str, period: str) -> dict[str, Any]:
        if not self.detail:
            return {}
        cur = ctx.conn.execute(self.detail, {"as_of": ctx.as_of_text, "key": key})
        rows = [tuple(r) for r in cur]
        return {"numerator": rows, "numerator_columns": tuple(d[0] for d in cur.description)}


def families_of(compute: Any) -> set[str]:
    """Names of the families a compute reads (so their rollups can be freed after)."""
    if isinstance(compute, ByGrain):
        return families_of(compute.default).union(*(families_of(c) for c in compute.special.values()))
    names = {f.name for f in getattr(compute, "uses", ())}
    family = getattr(compute, "family", None)
    if isinstance(family, Family):
        names.add(family.name)
    return names


def averages(compute: Any, grain: str) -> bool:
    """Whether a compute's values at `grain` are a mean or a median: fractional even where
    the KPI counts things (touches to close: a count per deal, a mean per rep)."""
    if isinstance(compute, ByGrain):
        compute = compute.special.get(grain, compute.default)
    return isinstance(compute, Mean | Median)


def tables_of(compute: Any) -> set[str] | None:
    """The live tables a compute reads, from the SQL its fields hold; None for a compute
    with code of its own (a subclass, a custom kind), which may read any."""
    if type(compute) is ByGrain:
        found = [tables_of(c) for c in (compute.default, *compute.special.values())]
        return None if any(f is None for f in found) else set().union(*found)  # type: ignore[arg-type]
    if type(compute) in (Total, Ratio, Mean, Median, PerWorkingDay, RecordSql):
        return live.tables_read(repr(compute))
    return None


def _median(xs: list[float]) -> float:
    """statistics.median's value (the same float steps), sorting the list in place: a
    few hundred thousand small samples on a large org, where its call and copy show."""
    xs.sort()
    half = len(xs) // 2
    return xs[half] if len(xs) % 2 else (xs[half - 1] + xs[half]) / 2


def _contributing(rows: list[dict[str, Any]], measure: str) -> list[tuple[str, Any]]:
    return [(r["rec"], r[measure]) for r in rows if r[measure]]
