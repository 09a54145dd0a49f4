"""The KPI library API the CLI calls: compute, to_json, explain, catalog_rows.

    from kpisync.kpi.engine import compute, to_json
    result = compute(store, KpiSettings(timezone="Europe/Berlin"), as_of="2026-11-22T00:00:00Z")
    print(to_json(result)["kpis"][0])

A compute builds the store-as-of-`as_of` live tables once, asks every KPI for
all its grains and periods (one set-based query per shared fact family), and
replaces those KPIs' rows in `kpi_values` in one transaction. With several
workers (one per CPU by default) the KPIs sharing no family run side by side,
on connections of their own (kpisync.kpi.workers); on one, everything runs on
the store's connection over temp tables.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, overload

from kpisync.kpi import live, staging, workers
from kpisync.kpi.aggregate import families_of, tables_of
from kpisync.kpi.catalog import OUT_OF_REACH
from kpisync.kpi.context import Context, universe_tables
from kpisync.kpi.families import Sparse, Wanted
from kpisync.kpi.periods import parse_as_of
from kpisync.kpi.registry import GRAINS, RECORD_GRAINS, Breakdown, KpiDef, load
from kpisync.kpi.settings import KpiSettings
from kpisync.schema import KPI_VALUES
from kpisync.store import Store
from kpisync.timestamps import format_ts, utc_now

log = logging.getLogger(__name__)

__all__ = [
    "OUT_OF_REACH",
    "ComputeResult",
    "Explanation",
    "catalog_rows",
    "compute",
    "explain",
    "explanation_json",
    "render_text",
    "to_json",
]

FIELDS = ("kpi", "grain", "key", "period", "value", "numerator", "denominator", "unit")
# a worker's output: kpi_values less computed_at, in its key order, so that copying
# it into kpi_values fills that B-tree in order instead of at random places
_OUT_COLUMNS = ", ".join(f"{name} {kind}" for name, kind in KPI_VALUES.columns if name in FIELDS)
OUT_TABLE = f"({_OUT_COLUMNS}, PRIMARY KEY ({', '.join(KPI_VALUES.pk)})) WITHOUT ROWID"


class KpiRows(Sequence[dict[str, Any]]):
    """The values of one compute, as dicts with the FIELDS keys, read on demand.

    A large org has millions of values: they stream from the compute into the
    store and are read back from the store file when iterated (a new read-only
    connection, so the caller may have closed the store). An in-memory store
    keeps them here instead.
    """

    def __init__(self, path: str | None, where: str, params: Sequence[Any], rows: list[tuple[Any, ...]]) -> None:
        self._path, self._where, self._params = path, where, tuple(params)
        self._rows: list[tuple[Any, ...]] | None = None if path else rows
        self._len: int | None = None if path else len(rows)

    def _cursor(self, select: str) -> sqlite3.Cursor:
        conn = sqlite3.connect(f"file:{self._path}?mode=ro", uri=True)
        return conn.execute(f"SELECT {select} FROM kpi_values WHERE {self._where}", self._params)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        rows = self._rows if self._rows is not None else self._cursor(", ".join(FIELDS))
        for row in rows:
            yield dict(zip(FIELDS, row, strict=True))

    def __len__(self) -> int:
        if self._len is None:
            self._len = int(self._cursor("count(*)").fetchone()[0])
        return self._len

    @overload
    def __getitem__(self, index: int) -> dict[str, Any]: ...
    @overload
    def __getitem__(self, index: slice) -> list[dict[str, Any]]: ...
    def __getitem__(self, index: int | slice) -> dict[str, Any] | list[dict[str, Any]]:
        if self._rows is None:
            self._rows = list(self._cursor(", ".join(FIELDS)))
        if isinstance(index, slice):
            return [dict(zip(FIELDS, r, strict=True)) for r in self._rows[index]]
        return dict(zip(FIELDS, self._rows[index], strict=True))


@dataclass
class ComputeResult:
    as_of: str
    values: Sequence[dict[str, Any]]  # dicts with the FIELDS keys (a KpiRows)
    computed_at: str = ""
    # seconds per step: "live tables", each KPI id (a shared rollup counts for the
    # first KPI that needs it; with workers, KPIs run side by side), "kpis" (all of
    # them, wall clock), "write" (storing the values; with workers, mostly alongside them)
    timings: dict[str, float] = field(default_factory=dict)


def select(kpis: Sequence[str] | None = None, grains: Sequence[str] | None = None) -> list[tuple[KpiDef, list[str]]]:
    """The KPIs and grains a request names; ValueError for anything unknown."""
    registry = load()
    unknown = [k for k in kpis or () if k not in registry]
    if unknown:
        raise ValueError(f"unknown KPI {', '.join(unknown)} (see `kpisync kpi list`)")
    bad = [g for g in grains or () if g not in GRAINS]
    if bad:
        raise ValueError(f"unknown grain {', '.join(bad)}; grains are {', '.join(GRAINS)}")
    chosen = []
    for kpi_id in kpis or sorted(registry):
        defn = registry[kpi_id]
        wanted = [g for g in defn.grains if not grains or g in grains]
        if not wanted and kpis:
            raise ValueError(f"KPI {kpi_id} has no grain {', '.join(grains or ())} (it has {', '.join(defn.grains)})")
        if wanted:
            chosen.append((defn, wanted))
    return chosen


def periods_wanted(ctx: Context, defn: KpiDef, grains: Iterable[str]) -> tuple[Wanted, Sparse]:
    """grain -> the period labels this KPI reports at it; and, per record grain,
    the calendar periods reported only for records that have data."""
    wanted, sparse = {}, {}
    for grain in grains:
        labels: list[str] = []
        calendar: list[str] = []
        for token in defn.periods_for(grain):
            if token == "calendar":
                calendar += ctx.calendar
            elif token == "fixed":
                calendar += [p for p in ctx.calendar if ctx.periods[p].kind != "rolling"]
            else:
                labels.append(token)
        wanted[grain] = tuple(dict.fromkeys(calendar + labels))
        if grain in RECORD_GRAINS:
            sparse[grain] = frozenset(calendar) - set(labels)
    return wanted, sparse


# Seconds each KPI took in this process's last compute of it. A parallel compute starts
# the groups that took longest first, so that no long one is left to run alone at the
# end; a daemon computes every cycle, so from its second cycle on the order is measured.
_LAST_SECONDS: dict[str, float] = {}


def compute(
    store: Store,
    settings: KpiSettings,
    as_of: str | datetime | None = None,
    kpis: Sequence[str] | None = None,
    grains: Sequence[str] | None = None,
) -> ComputeResult:
    """Compute KPIs as of `as_of` (default now) and store them in `kpi_values`.

    The rows of the computed KPI ids and grains are replaced in one transaction;
    computing the whole catalog replaces the whole table. With more than one
    worker (settings.workers) the KPI families are computed on that many
    connections at once (kpisync.kpi.workers); the values are the same.
    """
    chosen = select(kpis, grains)
    moment = parse_as_of(as_of)
    with workers.tuned(store.conn):
        result = _compute(store, settings, moment, chosen, whole=kpis is None and grains is None)
    _LAST_SECONDS.update({defn.id: result.timings[defn.id] for defn, _ in chosen if defn.id in result.timings})
    return result


def _compute(store: Store, settings: KpiSettings, moment: datetime, chosen: list[Chosen], whole: bool) -> ComputeResult:
    groups = workers.sharing_groups(chosen, lambda c: families_of(c[0].compute))
    count = min(settings.worker_count, len(groups))
    # (a caller's own transaction cannot attach the scratch database)
    if count > 1 and not store.conn.in_transaction:
        result = _compute_in_parallel(store, settings, moment, chosen, groups, count, whole)
        if result is not None:
            return result
        log.warning("kpi compute: the store changed while its live tables were built; computing again in one snapshot")
    timings: dict[str, float] = {}
    began = time.perf_counter()
    with Context(store.conn, settings, moment) as ctx:
        timings["live tables"] = time.perf_counter() - began
        store.conn.execute(f"CREATE TEMP TABLE k_out {OUT_TABLE}")
        began = time.perf_counter()
        for group in groups:
            _compute_group(ctx, group, "temp.k_out", timings)
        timings["kpis"] = time.perf_counter() - began
        ctx.end_snapshot()
        return _write(store, chosen, timings, whole, moment)


def _compute_in_parallel(
    store: Store,
    settings: KpiSettings,
    moment: datetime,
    chosen: list[Chosen],
    groups: list[list[Chosen]],
    count: int,
    whole: bool,
) -> ComputeResult | None:
    """compute() on `count` worker connections, which start on a group as soon as the
    live tables it reads are built; None when another connection wrote to the store
    during the build (its tables are then not one snapshot).

    Each group's rows go to a file of its own; once the build is done, the store's
    connection copies each finished group into a staging table while the workers
    go on (kpisync.kpi.staging), so that only the last group is copied at the end."""
    conn = store.conn
    timings: dict[str, float] = {}
    table_needs = {i: tables_needed(group) for i, group in enumerate(groups)}
    took = {i: [_LAST_SECONDS.get(defn.id) for defn, _ in group] for i, group in enumerate(groups)}
    cost = None if any(None in t for t in took.values()) else {i: sum(t) for i, t in took.items()}  # type: ignore[arg-type]
    schedule = workers.Schedule(range(len(groups)), table_needs.__getitem__, while_building=count - 1, cost=cost)
    staged: list[str] = []  # the staging table, once made
    computed_at = ""
    with workers.scratch() as folder:
        workers.attach(conn, folder / "live.db", "k_live", shared=True)
        try:
            ctx = Context(conn, settings, moment, schema="k_live").open(build=False)
            version = _data_version(conn)

            def build() -> None:
                began = time.perf_counter()
                with workers.no_checkpoints(conn):
                    ctx.build(schedule.built)
                timings["live tables"] = time.perf_counter() - began

            def work(i: int, next_group: Callable[[], int | None]) -> None:
                own = workers.connect(folder / "live.db")
                try:
                    mine = ctx.worker(own)
                    while (g := next_group()) is not None:
                        workers.attach(own, folder / f"group{g}.db", "out")
                        own.execute(f"CREATE TABLE out.k_out {OUT_TABLE}")
                        own.execute("BEGIN")  # a read snapshot holding every table built by now
                        _compute_group(mine, groups[g], "out.k_out", timings)
                        own.execute("COMMIT")
                        own.execute("DETACH DATABASE out")
                        schedule.done(g)
                finally:
                    own.close()

            def copy_as_done() -> None:
                """After the build: copy each group as it is done, then swap the values in
                (while the workers close their connections)."""
                nonlocal computed_at
                conn.execute("DETACH DATABASE k_live")
                if _data_version(conn) != version:
                    schedule.fail()  # the workers stop; it is computed again
                    return
                stamp = utc_now()
                staged.append(staging.create(store))
                writing = 0.0  # the store connection's own time, alongside the workers but the end
                for g in schedule.finished(len(groups)):
                    began = time.perf_counter()
                    path = folder / f"group{g}.db"
                    workers.attach(conn, path, "k_group")
                    try:
                        staging.copy(store, staged[0], "k_group.k_out", stamp)
                    finally:
                        conn.execute("DETACH DATABASE k_group")
                    path.unlink()
                    writing += time.perf_counter() - began
                began = time.perf_counter()
                with store.transaction():
                    staging.swap_in(conn, staged.pop(), _pairs(chosen), whole)
                computed_at = stamp
                timings["write"] = writing + time.perf_counter() - began

            began = time.perf_counter()
            try:
                workers.run(schedule, count, work, build, copy_as_done)
            finally:
                ctx.close()
            timings["kpis"] = time.perf_counter() - began  # with the build and the write: they overlap
            if not computed_at:
                return None
            return _result(store, _pairs(chosen), computed_at, timings, moment)
        finally:
            attached = {row[1] for row in conn.execute("PRAGMA database_list")}
            for schema in sorted(attached & {"k_live", "k_group"}):
                conn.execute(f"DETACH DATABASE {schema}")
            if staged:
                staging.drop(store, staged[0])


def tables_needed(group: list[Chosen]) -> set[str]:
    """The live tables a group of KPIs reads: its queries' and its grains' universes
    (every table for a compute with code of its own)."""
    found = [tables_of(defn.compute) for defn, _ in group]
    if any(f is None for f in found):
        return {name for name, _ in live.LIVE_TABLES}
    grains = {grain for _, wanted in group for grain in wanted}
    return universe_tables(grains).union(*found)  # type: ignore[arg-type]


def _data_version(conn: sqlite3.Connection) -> int:
    """Changes when another connection commits to the store (PRAGMA data_version)."""
    return int(conn.execute("PRAGMA main.data_version").fetchone()[0])


Chosen = tuple[KpiDef, list[str]]


def _compute_group(ctx: Context, group: list[Chosen], out: str, timings: dict[str, float]) -> None:
    """Compute a group of KPIs (sharing families) into the table `out`, then free their rollups."""
    insert = f"INSERT OR REPLACE INTO {out} VALUES ({', '.join('?' for _ in FIELDS)})"
    conn = ctx.conn
    for defn, grains_wanted in group:
        assert defn.compute is not None, defn.id
        began = time.perf_counter()
        wanted, sparse = periods_wanted(ctx, defn, grains_wanted)
        in_python: Wanted = {}
        for grain, periods in wanted.items():
            dense = tuple(p for p in periods if p not in sparse.get(grain, ()))
            query = defn.compute.record_sql(ctx, grain, periods, dense) if grain in RECORD_GRAINS else None
            if query is None:
                in_python[grain] = periods
                continue
            sql, params = query
            conn.execute(
                f"""INSERT OR REPLACE INTO {out} SELECT :kpi, :grain, key, period, value, numerator, denominator, :unit
                FROM ({sql}) WHERE value IS NOT NULL""",
                {**params, "as_of": ctx.as_of_text, "kpi": defn.id, "grain": grain, "unit": defn.unit},
            )
        # a record-level value that does not apply (yet) is no row: write-back
        # reads a missing row as null, and there are millions of records
        conn.executemany(
            insert,
            (
                (defn.id, grain, key, period, value, num, den, defn.unit)
                for grain, key, period, value, num, den in defn.compute(ctx, in_python, sparse)
                if value is not None or grain not in RECORD_GRAINS
            ),
        )
        timings[defn.id] = time.perf_counter() - began
    ctx.forget(set().union(*(families_of(defn.compute) for defn, _ in group)))


def _write(
    store: Store,
    chosen: list[Chosen],
    timings: dict[str, float],
    whole: bool,
    moment: datetime,
) -> ComputeResult:
    """Replace the computed KPIs' rows in kpi_values by those of temp.k_out, in one
    transaction: staged and swapped in as a parallel compute's are, all at once."""
    began = time.perf_counter()
    computed_at = utc_now()
    pairs = _pairs(chosen)
    with store.transaction():
        staged = staging.create(store)
        staging.copy(store, staged, "temp.k_out", computed_at)
        staging.swap_in(store.conn, staged, pairs, whole)
    store.conn.execute("DROP TABLE IF EXISTS temp.k_out")
    timings["write"] = time.perf_counter() - began
    return _result(store, pairs, computed_at, timings, moment)


def _pairs(chosen: list[Chosen]) -> list[tuple[str, str]]:
    return [(defn.id, grain) for defn, wanted in chosen for grain in wanted]


def _result(
    store: Store, pairs: list[tuple[str, str]], computed_at: str, timings: dict[str, float], moment: datetime
) -> ComputeResult:
    """The values just written (read back from the store when iterated)."""
    kpi_ids = sorted({kpi for kpi, _ in pairs})
    where = f"computed_at = ? AND kpi IN ({', '.join('?' for _ in kpi_ids)})"
    params = [computed_at, *kpi_ids]
    in_memory = store.path == ":memory:"
    rows = (
        store.conn.execute(f"SELECT {', '.join(FIELDS)} FROM kpi_values WHERE {where}", params).fetchall()
        if in_memory
        else []
    )
    values = KpiRows(None if in_memory else store.path, where, params, rows)
    return ComputeResult(format_ts(moment), values, computed_at, timings)


def to_json(result: ComputeResult) -> dict[str, Any]:
    """The interfaces.md §2 document: {"as_of": ..., "kpis": [...]}."""
    return {"as_of": result.as_of, "kpis": [{f: v[f] for f in FIELDS} for v in result.values]}


def catalog_rows() -> list[dict[str, Any]]:
    """The catalog for `kpisync kpi list`, in section order."""
    return [
        {
            "id": d.id,
            "name": d.name,
            "unit": d.unit,
            "grains": list(d.grains),
            "periods": {g: list(d.periods_for(g)) for g in d.grains},
            "formula": d.formula,
            "section": d.section,
            "source": d.source,
            "notes": d.notes,
        }
        for d in sorted(load().values(), key=lambda d: (d.section, d.id))
    ]


RECORD_COLUMNS = ("id", "value")


@dataclass
class Explanation:
    kpi: str
    name: str
    formula: str
    unit: str
    grain: str
    key: str
    period: str
    as_of: str
    value: Any
    numerator: Any
    denominator: Any
    numerator_records: list[tuple[Any, ...]] = field(default_factory=list)
    denominator_records: list[tuple[Any, ...]] = field(default_factory=list)
    # what the records' fields are: a record's id and what it adds, unless the KPI says otherwise
    numerator_columns: tuple[str, ...] = RECORD_COLUMNS
    denominator_columns: tuple[str, ...] = RECORD_COLUMNS
    breakdown: dict[str, int] = field(default_factory=dict)  # the KPI's Breakdown: label → count
    breakdown_title: str = ""
    notes: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


def explain(
    store: Store,
    settings: KpiSettings,
    kpi_id: str,
    grain: str,
    key: str,
    period: str,
    as_of: str | datetime | None = None,
) -> Explanation:
    """One value with its formula and the records behind its numerator and denominator."""
    chosen = select([kpi_id], [grain])
    ((defn, _),) = chosen
    moment = parse_as_of(as_of)
    # only the live tables this value reads: the whole build is most of an explain's time on a large org
    tables = tables_needed(chosen) | (live.tables_read(defn.breakdown.sql) if defn.breakdown else set())
    with Context(store.conn, settings, moment, tables=tables) as ctx:
        wanted, _ = periods_wanted(ctx, defn, [grain])
        if period not in wanted[grain]:
            raise ValueError(
                f"KPI {kpi_id} at grain {grain} has no period {period!r} (it has {', '.join(wanted[grain])})"
            )
        assert defn.compute is not None
        # every key of the grain's universe gets a row (filled when nothing counted), and so
        # does any key with a value: no row means no such key
        row = next((r for r in defn.compute(ctx, {grain: (period,)}) if r[1] == key), None)
        if row is None:
            raise ValueError(_unknown_key(grain, key))
        detail = defn.compute.explain(ctx, grain, key, period)
        behind = [key] if grain in RECORD_GRAINS else [r[0] for r in detail.get("numerator", [])]
        counted = _breakdown(ctx, defn.breakdown, behind)
    found = Explanation(
        defn.id,
        defn.name,
        defn.formula,
        defn.unit,
        grain,
        key,
        period,
        format_ts(moment),
        row[3],
        row[4],
        row[5],
        notes=defn.notes,
    )
    for side in ("numerator", "denominator"):
        setattr(found, f"{side}_records", [tuple(r) for r in detail.pop(side, [])])
        setattr(found, f"{side}_columns", tuple(detail.pop(f"{side}_columns", RECORD_COLUMNS)))
    found.breakdown = counted
    found.breakdown_title = defn.breakdown.title if defn.breakdown else ""
    found.extra = detail
    return found


def _unknown_key(grain: str, key: str) -> str:
    if grain == "org":
        return f"grain org takes no --key (got {key!r})"
    if not key:
        return f"grain {grain} needs --key: which {grain}"
    return f"no {grain} {key!r} in the store"


def _breakdown(ctx: Context, breakdown: Breakdown | None, keys: Sequence[Any]) -> dict[str, int]:
    """`breakdown` over the records `keys`; {} for a KPI without one."""
    if breakdown is None:
        return {}
    return {str(label): int(n) for label, n in ctx.query(breakdown.sql, {"keys": json.dumps(keys)})}


def explanation_json(explanation: Explanation) -> dict[str, Any]:
    """`kpi explain --json`: the value, its formula and every record behind it, each
    record an object of its fields (not cut at 200 as on the terminal)."""
    e = explanation
    head = ("kpi", "name", "formula", "unit", "grain", "key", "period", "as_of", "value", "numerator", "denominator")
    doc: dict[str, Any] = {f: getattr(e, f) for f in head}
    for side in ("numerator", "denominator"):
        columns = getattr(e, f"{side}_columns")
        doc[f"{side}_records"] = [dict(zip(columns, r, strict=True)) for r in getattr(e, f"{side}_records")]
    doc["breakdown"] = {"title": e.breakdown_title, "counts": e.breakdown} if e.breakdown_title else None
    doc["notes"] = e.notes
    doc["extra"] = e.extra
    return doc


def render_text(explanation: Explanation) -> str:
    """A plain-text explanation for the terminal."""
    e = explanation
    lines = [
        f"{e.kpi} ({e.name}), {e.grain} {e.key or '(org)'}, period {e.period}, as of {e.as_of}",
        f"formula: {e.formula}",
        f"value: {e.value} {e.unit}   numerator: {e.numerator}   denominator: {e.denominator}",
    ]
    if e.notes:
        lines.append(f"notes: {e.notes}")
    if e.breakdown:
        lines.append(f"{e.breakdown_title}: " + ", ".join(f"{t} {n}" for t, n in e.breakdown.items()))
    for title, records in (
        ("numerator", e.numerator_records),
        ("denominator", e.denominator_records),
    ):
        if records:
            lines.append(f"{title} records ({len(records)}):")
            lines += ["  " + "  ".join(str(x) for x in r) for r in records[:200]]
            if len(records) > 200:
                lines.append(f"  … {len(records) - 200} more (--json lists them all)")
    for name, value in e.extra.items():
        lines.append(f"{name}: {value}")
    return "\n".join(lines)
