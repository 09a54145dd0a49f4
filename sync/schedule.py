"""Schedule expressions from the YAML (`every 15 minutes`, `1h`, `*/15 * * * *`)
as APScheduler 3.x triggers, in the org's time zone."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from kpisync.config import Config, parse_interval


def trigger_for(expr: str, timezone: str) -> BaseTrigger:
    interval = parse_interval(expr)
    if interval is not None:
        return IntervalTrigger(seconds=interval.total_seconds(), timezone=ZoneInfo(timezone))
    return CronTrigger.from_crontab(expr, timezone=ZoneInfo(timezone))


def job_triggers(config: Config) -> dict[str, BaseTrigger]:
    """The daemon's jobs for one CRM: the cycle (sync → compute → write-back) and the reconcile,
    plus compute/write-back on their own schedule when the YAML gives them one."""
    sched = config.schedule
    jobs = {
        "cycle": trigger_for(sched.sync, config.timezone),
        "reconcile": trigger_for(sched.reconcile, config.timezone),
    }
    if sched.compute != "after_sync":
        jobs["compute"] = trigger_for(sched.compute, config.timezone)
    if sched.writeback not in ("after_compute", "never"):
        jobs["writeback"] = trigger_for(sched.writeback, config.timezone)
    return jobs


def next_runs(config: Config, now: datetime | None = None) -> dict[str, str]:
    now = now or datetime.now(UTC)
    out = {}
    for name, trigger in job_triggers(config).items():
        fire = trigger.get_next_fire_time(None, now)
        out[name] = fire.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if fire else "never"
    return out
