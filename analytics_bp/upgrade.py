"""`flask analytics upgrade`: rebuild the rollups from the raw points still kept, after an upgrade
changed what the tasks write (0.5.0: the hourly rollup per dimension, the daily visit tables).

Why a command and not the tasks alone: a task only ever rewrites its last hours or days, so the
rollups a new version adds would start on the day of the upgrade, and until the raw points of
the days before expire the Stats API would answer those days from rollups that lack them. This
runs the shipped tasks' own text for every past window still in the raw bucket, as of the end of
that window (`InfluxAdmin.run_flux_as_of`), oldest first: the same figures the tasks would have
written had the new version run then. Rollups older than the raw retention keep their shape and
stay readable (docs/schema.md, CHANGES.md).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from . import rollups
from .settings import Config

HOURLY_STEP = timedelta(hours=2)  # each hourly run rolls up the two hours before it

FIRST_PAGEVIEW = ('from(bucket: bucket) |> range(start: 0) '
                  '|> filter(fn: (r) => r._measurement == "pageview" and r._field == "count") '
                  '|> first() |> group() |> min(column: "_time")')


class Admin(rollups.Admin, Protocol):
    def query(self, flux: str, params: dict[str, Any] | None = None) -> list[dict[str, Any]]: ...
    def run_flux_as_of(self, flux: str, now: datetime) -> None: ...


def first_raw_day(cfg: Config, admin: Admin) -> date | None:
    """The site day of the oldest raw pageview still kept (None: the raw bucket has none)."""
    rows = admin.query(FIRST_PAGEVIEW, {"bucket": cfg.bucket})
    if not rows:
        return None
    stamp: datetime = rows[0]["_time"]
    return stamp.astimezone(ZoneInfo(cfg.timezone)).date()


def rebuild(cfg: Config, admin: Admin, first: date, last: date,
            progress: Callable[[str], None]) -> int:
    """Run the hourly and daily tasks over every window of the site days [first, last], then the
    monthly task over their months; returns the days rebuilt."""
    flux = {task.name.removeprefix(cfg.bucket + "_"): task.flux for task in rollups.tasks(cfg)}
    zone = ZoneInfo(cfg.timezone)
    days = (last - first).days + 1
    for n in range(days):
        day = first + timedelta(days=n)
        start = datetime.combine(day, time(), zone)
        after = datetime.combine(day + timedelta(days=1), time(), zone)
        at = start.astimezone(UTC).replace(minute=0, second=0, microsecond=0) + HOURLY_STEP
        while at - HOURLY_STEP < after:
            admin.run_flux_as_of(flux["hourly"], at)
            at += HOURLY_STEP
        admin.run_flux_as_of(flux["daily"], after)
        progress(f"rebuilt {day.isoformat()} ({n + 1} of {days} days)")
    month = first.replace(day=1)
    while month <= last:  # each monthly run recomputes its month so far and the one before
        next_month = (month + timedelta(days=32)).replace(day=1)
        admin.run_flux_as_of(flux["monthly"],
                             datetime.combine(min(next_month, last + timedelta(days=1)), time(), zone))
        month = next_month
    progress(f"rebuilt the monthly figures from {first.replace(day=1).isoformat()}")
    return days
