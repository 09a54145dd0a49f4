"""`kpisync` on the command line: argument parsing and printing, nothing else.

Every command is a thin shell over a library call (kpisync.sync.jobs,
kpisync.kpi.engine, …). Exit codes: 0 success, 1 a run that failed, 2 bad usage
or configuration. Errors are one or two plain lines on stderr — never a
traceback (`-vvv` shows one for unexpected errors), never a secret.
"""

from __future__ import annotations

import json
import logging
import sys
import traceback
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

import click

from kpisync import __version__
from kpisync.errors import ConfigError, KpisyncError, UsageError
from kpisync.logs import redact, setup_logging

log = logging.getLogger("kpisync.cli")


def _fail(message: str, code: int) -> NoReturn:
    click.echo(redact(message), err=True)
    sys.exit(code)


class _Group(click.Group):
    """Turns known errors into plain lines and exit codes, in one place."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except ConfigError as exc:
            _fail(str(exc), 2)
        except KpisyncError as exc:
            _fail(f"error: {exc}", exc.exit_code)
        except (click.exceptions.Exit, click.exceptions.Abort, click.ClickException, SystemExit):
            raise
        except KeyboardInterrupt:
            _fail("interrupted", 130)
        except Exception as exc:
            verbose = (ctx.find_root().params or {}).get("verbose", 0)
            if verbose >= 3:
                click.echo(redact(traceback.format_exc()), err=True)
            _fail(f"internal error: {type(exc).__name__}: {exc} (run with -vvv for details)", 1)


def _load(path: str) -> Any:
    from kpisync.config import load_config

    return load_config(path)


def _store_for(file: str | None, store: str | None) -> tuple[Any, Any]:
    """(config or None, Store) from `FILE` or `--store DB`, for the commands that work on
    the store alone (no CRM call, so the config's secrets need not be set here)."""
    from kpisync.config import UnsetVariableWarning, load_config
    from kpisync.store import Store, StoreError

    if bool(file) == bool(store):
        raise UsageError("give a config FILE or --store DB (one of them)")
    if store:
        if not Path(store).exists():
            raise UsageError(f"{store}: no such store")
        try:
            return None, Store.open(store, create=False)
        except StoreError as exc:
            raise UsageError(str(exc)) from None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnsetVariableWarning)
        config = load_config(file or "", require_env=False)
    if not Path(config.store_path).exists():
        raise UsageError(f"{config.store_path}: no store yet (run `kpisync sync {file}` first)")
    return config, Store.open(config.store_path)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="kpisync")
@click.option("--log-format", type=click.Choice(["text", "json"]), default="text", help="log lines as text or JSON")
@click.option("-v", "--verbose", count=True, help="more logging (-v info, -vv debug, -vvv tracebacks)")
def main(log_format: str, verbose: int) -> None:
    """Pull CRM data, compute sales KPIs, write them back into the CRM."""
    setup_logging(log_format, verbose)


# ---------------------------------------------------------------- config


@main.group()
def config() -> None:
    """Check configuration files."""


@config.command("validate")
@click.argument("files", nargs=-1, required=True, type=click.Path())
def config_validate(files: Sequence[str]) -> None:
    """Check YAML files against the schema; print every problem with its key path."""
    from kpisync.config import load_config

    failed = False
    for file in files:
        try:
            load_config(file, require_env=False)
        except ConfigError as exc:
            failed = True
            click.echo(str(exc), err=True)
        else:
            click.echo(f"{file}: ok")
    if failed:
        sys.exit(2)


# ---------------------------------------------------------------- CRM jobs


@main.command()
@click.argument("file", type=click.Path())
def doctor(file: str) -> None:
    """Check credentials, API calls left, mapped fields and write-back fields."""
    from kpisync.sync import jobs

    checks = jobs.doctor(_load(file))
    bad = 0
    for check in checks:
        mark = "ok  " if check.ok else ("warn" if check.severity == "warning" else "FAIL")
        bad += (not check.ok) and check.severity == "error"
        click.echo(f"[{mark}] {check.name}" + (f" — {check.detail}" if check.detail else ""))
    sys.exit(1 if bad else 0)


@main.command()
@click.argument("file", type=click.Path())
@click.option("--dry-run", is_flag=True, help="say what would be created, create nothing")
def provision(file: str, dry_run: bool) -> None:
    """Create the custom fields/properties that write-back needs (safe to run again)."""
    from kpisync.sync import jobs

    changes = jobs.provision(_load(file), dry_run=dry_run)
    for change in changes:
        state = "would" if dry_run else ("done" if change.done else "exists")
        click.echo(f"{state:6} {change.action}: {change.object}.{change.field} {change.detail}".rstrip())
    if not changes:
        click.echo("nothing to create")


@main.command()
@click.argument("file", type=click.Path())
@click.option("--full", is_flag=True, help="re-pull everything (backfill, reconcile deletions)")
@click.option("--object", "objects", multiple=True, help="only this CRM object (repeatable)")
def sync(file: str, full: bool, objects: Sequence[str]) -> None:
    """One incremental pull (or a full re-pull) into the store."""
    from kpisync.sync import jobs

    summary = jobs.sync(_load(file), full=full, objects=list(objects), progress=sys.stderr.isatty())
    for obj in summary.objects:
        click.echo(f"{obj.name:28} {obj.status:8} {obj.rows:>9} rows" + (f"  {obj.error}" if obj.error else ""))
    click.echo(f"{summary.status}: {summary.rows} rows, {summary.api_calls} API calls")
    sys.exit(0 if summary.ok else 1)


@main.command()
@click.argument("file", type=click.Path())
@click.option("--dry-run", is_flag=True, help="print the changes, send nothing")
@click.option("--json", "as_json", is_flag=True, help="with --dry-run: one JSON object of changes")
def writeback(file: str, dry_run: bool, as_json: bool) -> None:
    """Push changed KPI values into the CRM fields."""
    from kpisync.sync import jobs

    result = jobs.writeback(_load(file), dry_run=dry_run)
    if as_json:
        click.echo(json.dumps({"changes": [c.as_dict() for c in result.changes]}, default=str))
    else:
        for c in result.changes:
            click.echo(f"{c.object:12} {c.record_id:20} {c.field:36} {c.old!s:>14} → {c.new!s}")
        verb = "would write" if dry_run else "wrote"
        click.echo(f"{verb} {len(result.changes)} value(s); {result.failed} failed; {result.calls} API call(s)")
    sys.exit(1 if result.failed else 0)


@main.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path())
def run(paths: Sequence[str]) -> None:
    """The daemon: schedule sync → compute → write-back for each CRM file until SIGTERM."""
    from kpisync.sync import daemon

    sys.exit(daemon.run_daemon([Path(p) for p in paths]))


@main.command()
@click.argument("file", type=click.Path())
@click.option("--json", "as_json", is_flag=True)
def status(file: str, as_json: bool) -> None:
    """The last runs and the next scheduled ones."""
    from kpisync.sync import jobs

    info = jobs.status(_load(file))
    if as_json:
        click.echo(json.dumps(info, default=str))
        return
    click.echo(f"store: {info['store']}")
    for name, when in info["next"].items():
        click.echo(f"next {name:10} {when}")
    for r in info["runs"]:
        click.echo(
            f"{r['started_at']}  {r['kind'] or '':18} {r['status']:8} {r['rows'] or 0:>8} rows "
            f"{r['api_calls'] or 0:>5} calls  {r['error'] or ''}"
        )


# ---------------------------------------------------------------- KPIs


@main.group()
def kpi() -> None:
    """The KPI catalog: list, compute, explain."""


@kpi.command("list")
@click.option("--json", "as_json", is_flag=True)
def kpi_list(as_json: bool) -> None:
    """The catalog: id, name, unit, grains, formula; and what is out of the CRM's reach."""
    from kpisync.kpi import engine

    rows = engine.catalog_rows()
    if as_json:
        click.echo(json.dumps({"kpis": rows, "out_of_reach": engine.OUT_OF_REACH}, default=str))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title="KPI catalog")
    for col in ("id", "name", "unit"):
        table.add_column(col, no_wrap=True)
    table.add_column("grains", overflow="fold", max_width=24)
    table.add_column("formula", overflow="fold", min_width=60)
    for r in rows:
        table.add_row(r["id"], r["name"], r["unit"], " ".join(r["grains"]), r["formula"])
    console = Console(width=max(180, Console().width))
    console.print(table)
    console.print("\n[b]Out of the CRM's reach[/b] (not computed):")
    for item in engine.OUT_OF_REACH:
        if isinstance(item, dict):
            console.print(f"  {item.get('id') or item.get('name')}: {item.get('reason', '')}")
        else:
            console.print(f"  {item}")


@kpi.command("compute")
@click.argument("file", required=False, type=click.Path())
@click.option(
    "--store",
    "store_path",
    type=click.Path(),
    help="a canonical store instead of a config (then: UTC, default periods, no input CSVs)",
)
@click.option("--as-of", "as_of", help="compute as of this UTC time (ISO 8601); default now")
@click.option("--kpi", "kpis", multiple=True, help="only this KPI id (repeatable)")
@click.option("--grain", "grains", multiple=True, help="only this grain (repeatable)")
@click.option("--json", "as_json", is_flag=True, help="print the values as JSON")
def kpi_compute(
    file: str | None,
    store_path: str | None,
    as_of: str | None,
    kpis: Sequence[str],
    grains: Sequence[str],
    as_json: bool,
) -> None:
    """Compute KPIs into kpi_values (with a config FILE: its input CSVs loaded first, and
    its time zone and periods; with --store DB: UTC and the default periods)."""
    config, store = _store_for(file, store_path)
    from kpisync.kpi import engine
    from kpisync.sync import jobs

    with store:
        try:
            if config is None:
                result = engine.compute(
                    store, jobs.kpi_settings(None), as_of=as_of, kpis=list(kpis) or None, grains=list(grains) or None
                )
            else:
                result = jobs.compute(config, store=store, as_of=as_of, kpis=kpis, grains=grains)
        except ValueError as exc:
            raise UsageError(str(exc)) from None
    if as_json:
        click.echo(json.dumps(engine.to_json(result)))
    else:
        click.echo(f"computed {len(result.values)} values as of {result.as_of}")


@kpi.command("explain")
@click.argument("kpi_id")
@click.argument("file", required=False, type=click.Path())
@click.option("--grain", required=True)
@click.option("--key", default="", help="the grain's key (user id, team, …; empty for org)")
@click.option("--period", required=True, help="2026-11, 2026-Q4, 2026, rolling-30d or all")
@click.option(
    "--store",
    "store_path",
    type=click.Path(),
    help="a canonical store instead of a config (then: UTC, default periods, no input CSVs)",
)
@click.option("--as-of", "as_of")
@click.option("--json", "as_json", is_flag=True, help="print the explanation as JSON, every record listed")
def kpi_explain(
    kpi_id: str,
    file: str | None,
    grain: str,
    key: str,
    period: str,
    store_path: str | None,
    as_of: str | None,
    as_json: bool,
) -> None:
    """The formula, numerator, denominator and the records that made them."""
    config, store = _store_for(file, store_path)
    from kpisync.kpi import engine
    from kpisync.sync.jobs import kpi_settings

    with store:
        try:
            explanation = engine.explain(store, kpi_settings(config), kpi_id, grain, key, period, as_of=as_of)
        except ValueError as exc:
            raise UsageError(str(exc)) from None
    if as_json:
        click.echo(json.dumps(engine.explanation_json(explanation), default=str))
    else:
        click.echo(engine.render_text(explanation))


# ---------------------------------------------------------------- report, demo, sandbox


@main.command()
@click.argument("file", required=False, type=click.Path())
@click.option("--store", "store_path", type=click.Path())
@click.option("--out", required=True, type=click.Path(), help="the HTML file to write")
def report(file: str | None, store_path: str | None, out: str) -> None:
    """A self-contained HTML report with charts."""
    from kpisync import report as report_mod

    config, store = _store_for(file, store_path)
    with store:
        path = report_mod.write_report(store, Path(out), title=config.name if config else Path(store.path).stem)
    click.echo(f"report written to {path}")


@main.command()
@click.option("--crm", type=click.Choice(["salesforce", "hubspot"]), default="salesforce")
@click.option("--size", type=click.Choice(["small", "medium", "large"]), default="small")
@click.option("--out", type=click.Path(), default="kpisync-demo", help="folder for the store, config and report")
def demo(crm: str, size: str, out: str) -> None:
    """Run the whole job against a built-in sandbox CRM: no account, no network."""
    from kpisync import demo as demo_mod

    sys.exit(demo_mod.run_demo(crm, size, Path(out)))


@main.group()
def sandbox() -> None:
    """The built-in sandbox CRMs (127.0.0.1 only)."""


@sandbox.command("serve")
@click.option("--crm", type=click.Choice(["salesforce", "hubspot"]), required=True)
@click.option("--port", type=int, default=0, help="default: a free port")
@click.option("--size", type=click.Choice(["small", "medium", "large"]), default="small")
@click.option("--seed", type=int, default=7)
@click.option("--data-dir", type=click.Path(), default=None, help="where the org, config and CA live")
def sandbox_serve(crm: str, port: int, size: str, seed: int, data_dir: str | None) -> None:
    """Run a sandbox CRM until SIGTERM/SIGINT. First stdout line: JSON with url, config, credentials."""
    from kpisync.connectors import sandbox as sandbox_mod

    sys.exit(sandbox_mod.serve(crm, port=port, size=size, seed=seed, data_dir=Path(data_dir) if data_dir else None))


if __name__ == "__main__":
    main()
