"""Regression check for KPI engine work: dump a bench org's full recompute, sorted.

    python bench/kpi_values_dump.py --size medium > before.tsv   # on the old commit
    python bench/kpi_values_dump.py --size medium > after.tsv    # on the new one
    cmp before.tsv after.tsv

Recomputes on a copy of the cached bench store (bench/kpi_compute.py builds it),
so the cache is left as it was, and prints every kpi_values row (computed_at
left out) in key order with full-precision reprs: a performance change must
leave this output byte for byte the same.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=("small", "medium", "large"), default="small")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--cache", default=os.path.join(tempfile.gettempdir(), "kpisync-bench"))
    parser.add_argument("--timezone", default="UTC")
    args = parser.parse_args(argv)
    cached = Path(args.cache) / f"org-{args.size}-seed{args.seed}.db"
    if not cached.exists():
        print(f"{cached}: no bench store; run bench/kpi_compute.py --size {args.size} first", file=sys.stderr)
        return 2

    from kpisync.generator import DEFAULT_NOW
    from kpisync.kpi.engine import compute
    from kpisync.kpi.settings import KpiSettings
    from kpisync.store import Store

    with tempfile.TemporaryDirectory() as scratch:
        copy = Path(scratch) / cached.name
        shutil.copyfile(cached, copy)
        with Store.open(copy) as store:
            compute(store, KpiSettings(timezone=args.timezone), as_of=DEFAULT_NOW)
            rows = store.conn.execute(
                "SELECT kpi, grain, key, period, value, numerator, denominator, unit FROM kpi_values "
                "ORDER BY kpi, grain, key, period"
            )
            out = sys.stdout
            for row in rows:
                out.write("\t".join(repr(x) for x in row) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
