"""Benchmark: full-catalog KPI compute on a generated org.

    python bench/kpi_compute.py --size small|medium|large [--seed 7] [--cache DIR]
                                [--workers N] [--side-by-side]

Builds the org once (kpisync.generator) into a cached store file, in a child
process so the measured peak RSS is the compute's own; then times one full
recompute (every KPI, grain and period, written to kpi_values) as of the
generator's `now`, on one connection per CPU (or --workers). --side-by-side
first times the same compute on one connection, in the same process, and
prints the speedup. Prints a readable summary, and as the LAST line one JSON
object: size, activities, seconds, values, peak_rss_mb, cpu_seconds (and more).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def build(path: Path, size: str, seed: int) -> None:
    from kpisync.generator import build_org
    from kpisync.store import Store

    partial = path.with_suffix(".building")
    partial.unlink(missing_ok=True)
    with Store.open(partial) as store:
        summary = build_org(store, size, seed=seed)
        store.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    partial.replace(path)
    print(f"built {size} org in {summary.seconds:.1f} s: {summary.counts}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=("small", "medium", "large"), default="small")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--cache", default=os.path.join(tempfile.gettempdir(), "kpisync-bench"))
    parser.add_argument("--build-only", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--top", type=int, default=8, help="slowest steps to show")
    parser.add_argument("--workers", type=int, help="connections computing at once (default: one per CPU, up to 4)")
    parser.add_argument(
        "--side-by-side",
        action="store_true",
        help="also time the compute on one connection, in the same run, and print the speedup",
    )
    args = parser.parse_args(argv)
    path = Path(args.cache) / f"org-{args.size}-seed{args.seed}.db"
    path.parent.mkdir(parents=True, exist_ok=True)
    if args.build_only:
        build(path, args.size, args.seed)
        return 0
    if not path.exists():
        subprocess.run(
            [
                sys.executable,
                __file__,
                "--size",
                args.size,
                "--seed",
                str(args.seed),
                "--cache",
                args.cache,
                "--build-only",
            ],
            check=True,
        )

    from kpisync.generator import DEFAULT_NOW
    from kpisync.kpi.engine import compute
    from kpisync.kpi.settings import KpiSettings
    from kpisync.store import Store

    settings = KpiSettings(workers=args.workers)
    extra: dict[str, float] = {}
    with Store.open(path) as store:
        counts = {t: store.count(t) for t in ("users", "contacts", "opportunities", "activities", "cases")}
        if args.side_by_side:
            began, cpu = time.perf_counter(), _cpu_seconds()
            compute(store, KpiSettings(workers=1), as_of=DEFAULT_NOW)
            extra["seconds_one_connection"] = round(time.perf_counter() - began, 3)
            extra["cpu_seconds_one_connection"] = round(_cpu_seconds() - cpu, 1)
        began, cpu = time.perf_counter(), _cpu_seconds()
        result = compute(store, settings, as_of=DEFAULT_NOW)
        seconds = time.perf_counter() - began
        cpu_seconds = _cpu_seconds() - cpu
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB
    slowest = sorted(result.timings.items(), key=lambda kv: -kv[1])[: args.top]
    print(f"kpisync KPI compute, {args.size} org (seed {args.seed}), as of {result.as_of}")
    print("  rows: " + ", ".join(f"{t} {n:,}" for t, n in counts.items()))
    print(
        f"  full recompute on {settings.worker_count} connection(s): {seconds:.2f} s, "
        f"{len(result.values):,} values, peak RSS {peak_mb:.0f} MB, CPU {cpu_seconds:.1f} s (user + sys)"
    )
    if extra:
        extra["speedup"] = round(extra["seconds_one_connection"] / seconds, 2)
        print(
            f"  on one connection, same run: {extra['seconds_one_connection']:.2f} s "
            f"(CPU {extra['cpu_seconds_one_connection']:.1f} s): {extra['speedup']:.2f}x"
        )
    print("  slowest steps: " + ", ".join(f"{k} {v:.2f} s" for k, v in slowest))
    print(
        json.dumps(
            {
                "size": args.size,
                "seed": args.seed,
                "activities": counts["activities"],
                "contacts": counts["contacts"],
                "opportunities": counts["opportunities"],
                "seconds": round(seconds, 3),
                "cpu_seconds": round(cpu_seconds, 1),
                "values": len(result.values),
                "peak_rss_mb": round(peak_mb, 1),
                "workers": settings.worker_count,
                **extra,
                "store": str(path),
            }
        )
    )
    return 0


def _cpu_seconds() -> float:
    """This process's CPU time (user + sys, every thread). The same compute takes from
    about 45 to over 70 CPU seconds on the shared 2-core box as its speed varies: this
    figure says which state a run met."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


if __name__ == "__main__":
    sys.exit(main())
