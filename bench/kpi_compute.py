"""Benchmark: full-catalog KPI compute on a generated org.

    python bench/kpi_compute.py --size small|medium|large [--seed 7] [--cache DIR]

Builds the org once (kpisync.generator) into a cached store file, in a child
process so the measured peak RSS is the compute's own; then times one full
recompute (every KPI, grain and period, written to kpi_values) as of the
generator's `now`. Prints a readable summary, and as the LAST line one JSON
object: size, activities, seconds, values, peak_rss_mb (and more).
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

    with Store.open(path) as store:
        counts = {t: store.count(t) for t in ("users", "contacts", "opportunities", "activities", "cases")}
        began = time.perf_counter()
        result = compute(store, KpiSettings(), as_of=DEFAULT_NOW)
        seconds = time.perf_counter() - began
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB
    slowest = sorted(result.timings.items(), key=lambda kv: -kv[1])[: args.top]
    print(f"kpisync KPI compute, {args.size} org (seed {args.seed}), as of {result.as_of}")
    print("  rows: " + ", ".join(f"{t} {n:,}" for t, n in counts.items()))
    print(f"  full recompute: {seconds:.2f} s, {len(result.values):,} values, peak RSS {peak_mb:.0f} MB")
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
                "values": len(result.values),
                "peak_rss_mb": round(peak_mb, 1),
                "store": str(path),
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
