"""Record grains (account, contact, opportunity) in SQL: their millions of rows go
from one query straight into the compute's output table, never through Python.

A compute kind that can say its record-grain rows as SQL (`Compute.record_sql`)
builds it from these: a family's sums at one grain as an indexed temp table,
and the fill rows for keys without data in the dense periods.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from kpisync.kpi.context import Context
from kpisync.kpi.families import Family, rollup_sql

RecordQuery = tuple[str, dict[str, Any]]  # SELECT key, period, value, numerator, denominator; params


def rollup_table(ctx: Context, fam: Family, grain: str) -> str:
    """The family's sums at one grain as a temp table (key, period, measures), built once.

    Its rows are in key order (rollup_sql groups by key, then period), so that the
    values made from them fill the output's B-tree in order. No index: the queries
    on it read it whole."""

    def build() -> str:
        name = f"k_roll_{fam.name}_{grain}"
        summed = fam.summed(ctx)
        measures = ", ".join(f"coalesce({m}, 0) AS {m}" for m in summed.measures)
        ctx.conn.execute(
            f"CREATE TEMP TABLE {name} AS SELECT key, period, {measures} FROM ({rollup_sql(summed)}) WHERE grain = :grain",
            {"as_of": ctx.as_of_text, **summed.params(ctx), "grain": grain},
        )
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


def fill_params(fill: tuple[Any, Any, Any]) -> dict[str, Any]:
    return dict(zip(("fill_value", "fill_numerator", "fill_denominator"), fill, strict=True))
