"""Late points reach every rollup: the writer re-runs the tasks for exactly the windows they hit.

Why: each scheduled run of a task re-aggregates a few recent windows only (hourly: the two hours
before it; daily: yesterday and today; monthly: this month and the last), so a point that arrives
after its window's last scheduled run (spooled during an InfluxDB outage, a client clock behind)
would be in the raw bucket and missing from the rollups for good. The writer knows the timestamp of
every line it delivers: when a line's window is already past its last scheduled run, the window is
noted, and once the delivery is done the task is run for it (runs are idempotent: a window processed
again is overwritten, never doubled). Monthly windows are run after the daily ones they read.

`usage_seen` points are stamped at their period's start on purpose; the daily task reads them from
the month's start, so they never count as late here.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

log = logging.getLogger("analytics.backfill")

HOUR_NS = 3600 * 10**9
HOURLY_REACH = timedelta(hours=1)  # a point older than this may have missed its last hourly run
SKIP = (b"usage_seen,", b"usage_seen ")
RUN_BATCH = 500  # task runs queued at once at most (a long outage is worked off in batches)


def _stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class LateWindows:
    """The task runs that late lines need, as (task stem, scheduled time) pairs."""

    def __init__(self, timezone: str, now: Callable[[], float] = time.time) -> None:
        self.zone = ZoneInfo(timezone)
        self._now = now
        self.pending: set[tuple[str, str]] = set()

    def note(self, lines: Iterable[bytes]) -> None:
        now = self._now()
        oldest_on_time = int((now - HOURLY_REACH.total_seconds()) * 10**9)
        hours: set[int] = set()
        for item in lines:
            try:
                ts = int(item[item.rindex(b" ") + 1:])
            except ValueError:
                continue
            if ts < oldest_on_time and not item.startswith(SKIP):
                hours.add(ts // HOUR_NS)
        if hours:
            self._add(hours, datetime.fromtimestamp(now, UTC))

    def _add(self, hours: set[int], now: datetime) -> None:
        today = now.astimezone(self.zone).date()
        this_month = today.replace(day=1)
        for hour in hours:
            start = datetime.fromtimestamp(hour * 3600, UTC)
            # the hourly run an hour after the window covers it (and the hour before)
            self.pending.add(("hourly", _stamp(start + timedelta(hours=1))))
            day = start.astimezone(self.zone).date()
            if (today - day).days >= 2:  # scheduled daily runs cover yesterday and today only
                midnight = datetime.combine(day + timedelta(days=1), datetime.min.time(), self.zone)
                self.pending.add(("daily", _stamp(midnight)))
                month = day.replace(day=1)
                if (this_month.year - month.year) * 12 + this_month.month - month.month >= 2:
                    nxt = (month + timedelta(days=32)).replace(day=1)
                    self.pending.add(("monthly", _stamp(datetime.combine(nxt, datetime.min.time(),
                                                                           self.zone))))

    def take(self) -> list[list[tuple[str, str]]]:
        """The pending runs in stages (hourly and daily, then monthly), and forget them."""
        runs, self.pending = sorted(self.pending), set()
        first = [r for r in runs if r[0] != "monthly"]
        return [s for s in (first, [r for r in runs if r[0] == "monthly"]) if s]


class Backfill:
    """Runs the noted windows' tasks (`<bucket>_<stem>`) through a run_tasks callable."""

    def __init__(self, bucket: str, timezone: str,
                 run_tasks: Callable[[list[tuple[str, str]]], list[dict[str, object]]],
                 task_names: Callable[[], set[str]]) -> None:
        self.bucket = bucket
        self.windows = LateWindows(timezone)
        self._run_tasks = run_tasks
        self._task_names = task_names
        self.runs = 0

    def note(self, lines: Iterable[bytes]) -> None:
        self.windows.note(lines)

    def run_due(self) -> int:
        """Run what is pending; tasks that do not exist (no `flask analytics setup` for this
        bucket) are skipped. Returns how many runs were made."""
        stages = self.windows.take()
        if not stages:
            return 0
        existing = self._task_names()
        made = 0
        for stage in stages:
            runs = [(f"{self.bucket}_{stem}", at) for stem, at in stage
                    if f"{self.bucket}_{stem}" in existing]
            for i in range(0, len(runs), RUN_BATCH):
                results = self._run_tasks(runs[i : i + RUN_BATCH])
                failed = [r for r in results if r.get("status") != "success"]
                if failed:
                    log.warning("analytics: %d of %d late-window runs failed: %s", len(failed),
                                len(results), failed[0].get("logs"))
                made += len(results)
        if made:
            log.info("analytics: late points: re-ran %d rollup window(s)", made)
        self.runs += made
        return made
