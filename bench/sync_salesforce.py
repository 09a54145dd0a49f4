"""Benchmark: a full Salesforce sync from the sandbox, against the raw floor, in one run.

    python bench/sync_salesforce.py --size small|medium|large [--data-dir DIR]

The sandbox runs in its own process (`kpisync sandbox serve`), so the peak RSS
measured here is kpisync's alone. Figures:
- kpisync: a first sync (every object, empty store on disk) through the sync engine;
- floor: plain requests + json over the same SOQL and pages, nothing stored; run before
  and after kpisync, the mean of the two is the floor (the machine's load drifts);
- ratio = kpisync records/s ÷ floor records/s (goal ≥ 0.7);
- API calls against the minimum ⌈rows/2000⌉ per object (kpisync also describes each object once);
- a no-change incremental sync's API calls (goal: one query per object);
- peak RSS of this process (goal ≤ 250 MB on large).
The last line printed is one JSON object with these figures.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import requests

from kpisync.config import load_config
from kpisync.connectors.salesforce import SalesforceConnector
from kpisync.store import Store
from kpisync.sync.engine import sync


def start_sandbox(size: str, data_dir: Path) -> tuple[subprocess.Popen[str], dict[str, Any]]:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "kpisync.cli",
            "sandbox",
            "serve",
            "--crm",
            "salesforce",
            "--size",
            size,
            "--data-dir",
            str(data_dir),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line:
        proc.wait()
        raise SystemExit(f"the sandbox did not start (exit {proc.returncode})")
    return proc, json.loads(line)


def floor(info: dict[str, Any], queries: dict[str, tuple[str, bool]]) -> tuple[int, float, dict[str, int]]:
    """Plain requests + json over the same pages: (records, seconds, records per object)."""
    http = requests.Session()
    http.trust_env = False  # the environment's CA bundle would override verify (salesforce-api.md §1.5)
    http.verify = info["ca_bundle"]
    body = (
        '<?xml version="1.0" encoding="utf-8" ?><env:Envelope xmlns:env="http://schemas.xmlsoap.org/soap/envelope/">'
        '<env:Body><n1:login xmlns:n1="urn:partner.soap.sforce.com">'
        f"<n1:username>{info['username']}</n1:username>"
        f"<n1:password>{info['password']}{info['security_token']}</n1:password></n1:login></env:Body></env:Envelope>"
    )
    login = http.post(
        f"{info['url']}/services/Soap/u/59.0", data=body, headers={"Content-Type": "text/xml", "SOAPAction": "login"}
    )
    session = login.text.split("<sessionId>")[1].split("</sessionId>")[0]
    headers = {"Authorization": f"Bearer {session}"}
    per_object: dict[str, int] = {}
    t0 = time.perf_counter()
    for name, (query, include_deleted) in queries.items():
        resource_name = "queryAll" if include_deleted else "query"
        page = http.get(
            f"{info['url']}/services/data/v59.0/{resource_name}/", params={"q": query}, headers=headers
        ).json()
        count = len(page["records"])
        while not page["done"]:
            page = http.get(info["url"] + page["nextRecordsUrl"], headers=headers).json()
            count += len(page["records"])
        per_object[name] = count
    return sum(per_object.values()), time.perf_counter() - t0, per_object


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=("small", "medium", "large"), default="small")
    parser.add_argument("--data-dir", type=Path, default=None, help="sandbox org folder (reused between runs)")
    args = parser.parse_args()
    data_dir = args.data_dir or Path(tempfile.gettempdir()) / f"kpisync-bench-salesforce-{args.size}"
    t_start = time.perf_counter()
    proc, info = start_sandbox(args.size, data_dir)
    print(f"sandbox {info['url']} ready in {time.perf_counter() - t_start:.1f}s ({args.size} org)", flush=True)
    try:
        config = load_config(info["config"])
        with tempfile.TemporaryDirectory() as tmp:
            connector = SalesforceConnector(config)
            # the floor reads exactly what kpisync reads: same SOQL, same pages
            queries = {spec.name: connector.query_for(spec.name) for spec in connector.objects()}
            # the floor runs before and after kpisync and its mean is the figure: on a shared
            # machine whose load drifts, one side measured alone would carry that drift
            records, floor_before_s, per_object = floor(info, queries)
            store = Store.open(Path(tmp) / "bench.db")
            t0 = time.perf_counter()
            summary = sync(connector, store)
            kpisync_s = time.perf_counter() - t0
            if not summary.ok:
                raise SystemExit(f"sync failed: {summary.error}")
            _, floor_after_s, _ = floor(info, queries)
            floor_s = (floor_before_s + floor_after_s) / 2
            incremental = sync(connector, store)
            store.close()
        min_calls = sum(max(1, math.ceil(n / 2000)) for n in per_object.values())
        for name, n in per_object.items():
            print(f"  {name:<24} {n:>9,} records")
        result = {
            "size": args.size,
            "records": records,
            "records_per_s": round(records / kpisync_s, 1),
            "floor_records_per_s": round(records / floor_s, 1),
            "ratio": round(floor_s / kpisync_s, 3),
            "seconds": round(kpisync_s, 2),
            "floor_seconds": round(floor_s, 2),
            "floor_seconds_before_after": [round(floor_before_s, 2), round(floor_after_s, 2)],
            "rows_stored": summary.rows,
            "api_calls": summary.api_calls + len(per_object),  # + the describes made before the timed sync
            "min_api_calls": min_calls,
            "incremental_api_calls": incremental.api_calls,
            "objects": len(per_object),
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        }
        print(
            f"kpisync {result['records_per_s']:,.0f} records/s, floor {result['floor_records_per_s']:,.0f} "
            f"records/s, ratio {result['ratio']}; API calls {result['api_calls']} (minimum {min_calls}); "
            f"no-change incremental {result['incremental_api_calls']} calls for {len(per_object)} objects; "
            f"peak RSS {result['peak_rss_mb']} MB"
        )
        print(json.dumps(result))
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        if os.environ.get("KPISYNC_BENCH_VERBOSE"):
            print(f"total {time.perf_counter() - t_start:.1f}s", file=sys.stderr)


if __name__ == "__main__":
    main()
