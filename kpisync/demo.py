"""`kpisync demo`: the whole job against a built-in sandbox CRM, no account, no network.

Starts the sandbox (Salesforce or HubSpot wire protocol on 127.0.0.1) with a
generated org, then runs exactly what an admin runs against a real CRM —
provision → sync → compute → write-back — through the same library calls, and
shows the result: a scorecard per team and rep, a few CRM records with the
fields reps now see, and an HTML report.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from kpisync.config import Config, load_config
from kpisync.report import fmt, write_report
from kpisync.store import Store
from kpisync.sync import jobs
from kpisync.sync.writeback import period_label
from kpisync.timestamps import parse_ts, utc_now

TEAM_KPIS = ("revenue_won", "deals_won", "win_rate", "quota_attainment", "touches", "lead_response_minutes")
REP_KPIS = ("revenue_won", "win_rate", "quota_attainment", "touches", "meeting_booking_rate", "lead_response_minutes")


def run_demo(crm: str, size: str, out: Path, console: Console | None = None) -> int:
    from kpisync.connectors import sandbox as sandbox_mod

    console = console or Console()
    out = out.resolve()
    # a demo starts clean: a fresh org, an empty store
    for stale in ("sandbox", "data", "report.html"):
        target = out / stale
        if target.is_dir():
            shutil.rmtree(target)
        elif target.exists():
            target.unlink()
    out.mkdir(parents=True, exist_ok=True)
    console.rule(f"[b]kpisync demo[/b] — {crm} sandbox, {size} org")
    t0 = time.monotonic()
    with console.status(f"generating a {size} org and starting the {crm} sandbox on 127.0.0.1…"):
        sandbox = sandbox_mod.start(crm, size=size, seed=7, data_dir=out / "sandbox", now=utc_now())
    console.print(f"sandbox {crm} at [cyan]{sandbox.url}[/cyan] (config: {sandbox.config_path})")
    try:
        config = load_config(sandbox.config_path)
        changes = jobs.provision(config)
        created = sum(1 for c in changes if c.done)
        console.print(f"[green]provision[/green]  {created} field(s) created, {len(changes) - created} already there")
        summary = jobs.sync(config, progress=console.is_terminal)
        console.print(
            f"[green]sync[/green]       {summary.rows:,} rows in {len(summary.objects)} objects, "
            f"{summary.api_calls} API calls ({summary.status})"
        )
        if not summary.ok:
            console.print(f"[red]sync did not complete:[/red] {summary.error}")
            return 1
        result = jobs.compute(config)
        console.print(f"[green]compute[/green]    {len(result.values):,} KPI values as of {result.as_of}")
        written = jobs.writeback(config)
        console.print(
            f"[green]write-back[/green] {written.written:,} field values written in {written.calls} API calls"
            + (f", [red]{written.failed} failed[/red]" if written.failed else "")
        )
        with Store.open(config.store_path) as store:
            _scorecards(console, store, config, result.as_of)
            _records(console, store, crm)
            report = write_report(store, out / "report.html", title=f"{config.name} (demo)")
    finally:
        sandbox.stop()
    console.rule()
    console.print(f"done in {time.monotonic() - t0:.0f}s")
    console.print(f"  report   [cyan]{report}[/cyan]")
    console.print(
        f"  store    {config.store_path}   (try: kpisync kpi explain win_rate {sandbox.config_path} --grain org "
        f"--period {period_label('current_quarter', parse_ts(result.as_of), config.timezone)})"
    )
    console.print(f"  config   {sandbox.config_path}   (kpisync sandbox serve --crm {crm} runs the sandbox alone)")
    return 1 if written.failed else 0


def _values(store: Store, kpi: str, grain: str, period: str) -> dict[str, tuple[float | None, str]]:
    return {
        key: (value, unit)
        for key, value, unit in store.conn.execute(
            "SELECT key, value, unit FROM kpi_values WHERE kpi = ? AND grain = ? AND period = ?", (kpi, grain, period)
        )
    }


def _scorecards(console: Console, store: Store, config: Config, as_of: str) -> None:
    quarter = period_label("current_quarter", parse_ts(as_of), config.timezone)
    for grain, kpis, title, limit in (
        ("team", TEAM_KPIS, f"Teams — {quarter}", 20),
        ("user", REP_KPIS, f"Top reps by revenue won — {quarter}", 12),
    ):
        columns = {k: _values(store, k, grain, quarter) for k in kpis}
        keys = sorted(columns["revenue_won"], key=lambda k: -(columns["revenue_won"][k][0] or 0))[:limit]
        names = dict(store.conn.execute("SELECT id, coalesce(name, id) FROM users")) if grain == "user" else {}
        table = Table(title=title, title_justify="left")
        table.add_column(grain)
        for k in kpis:
            table.add_column(k.replace("_", " "), justify="right")
        for key in keys:
            table.add_row(names.get(key, key) or "(none)", *(fmt(*columns[k].get(key, (None, "count"))) for k in kpis))
        console.print(table)


def _records(console: Console, store: Store, crm: str) -> None:
    """A few records as a rep sees them in the CRM: the fields kpisync wrote."""
    rows = store.conn.execute(
        "SELECT object, record_id, field, value FROM writeback_state WHERE crm = ? AND coalesce(gone, 0) = 0 "
        "AND value IS NOT NULL ORDER BY object, record_id, field",
        (crm,),
    ).fetchall()
    by_record: dict[tuple[str, str], list[tuple[str, Any]]] = {}
    for obj, record_id, field, value in rows:
        by_record.setdefault((obj, record_id), []).append((field, value))
    shown: dict[str, int] = {}
    table = Table(title="In the CRM now (fields in the 'Sales KPIs' group)", title_justify="left")
    table.add_column("record")
    table.add_column("field")
    table.add_column("value", justify="right")
    for (obj, record_id), fields in by_record.items():
        if shown.get(obj, 0) >= 1 or len(fields) < 2:
            continue
        shown[obj] = shown.get(obj, 0) + 1
        for i, (field, value) in enumerate(fields[:6]):
            table.add_row(f"{obj} {record_id}" if i == 0 else "", field, str(value))
        table.add_section()
    console.print(table)
