"""Buckets with retention, and the Flux tasks that downsample raw points into them.

Why placeholders and not string formatting: bucket and task names come from settings, so they are
validated (settings.BUCKET_NAME) and then inserted only as Flux string literals escaped by
`flux_string`, replacing a whole quoted placeholder such as "__RAW_BUCKET__". Nothing else of the
.flux files changes, so a test can parse and run exactly what is shipped.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from importlib import resources
from typing import Any, Protocol

from .settings import Config

TASK_FILES = ("hourly", "daily", "monthly")
FOREVER = 0
PLACEHOLDER = re.compile(r'"__([A-Z_]+)__"')
INCLUDE = re.compile(r"^// include: ([a-z_]+\.flux)$", re.MULTILINE)


class Admin(Protocol):
    def ensure_bucket(self, name: str, retention_seconds: int, shard_group_seconds: int = 0) -> str: ...
    def upsert_task(self, name: str, flux: str) -> str: ...
    def tasks(self, prefix: str = "") -> list[dict[str, Any]]: ...


class RunAdmin(Protocol):
    def write_lines(self, bucket: str, lines: list[str]) -> None: ...
    def run_tasks(self, runs: list[tuple[str, str]], timeout: float = 600) -> list[dict[str, Any]]: ...


def flux_string(value: str) -> str:
    """A Flux string literal: escape backslash, quote and `$` (interpolation)."""
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("$", "\\$")
    return '"' + escaped.replace("\n", "\\n") + '"'


@dataclass(frozen=True)
class Task:
    name: str
    flux: str


def bucket_retentions(cfg: Config) -> dict[str, int]:
    buckets = cfg.rollup_buckets
    return {
        cfg.bucket: cfg.raw_retention,
        buckets["1h"]: cfg.hourly_retention,
        buckets["1d"]: FOREVER,
        buckets["1mo"]: FOREVER,
    }


def render(template: str, values: dict[str, str]) -> str:
    def substitute(match: re.Match[str]) -> str:
        key = match.group(1)
        if key not in values:
            raise KeyError(f"no value for placeholder {key}")
        return flux_string(values[key])

    return PLACEHOLDER.sub(substitute, template)


def _flux_file(name: str) -> str:
    return resources.files("analytics_bp").joinpath("flux", name).read_text()


def _with_includes(template: str) -> str:
    """The task with each `// include: <file>` line replaced by that shipped file (the ranked
    breakdowns both the hourly and the daily task write)."""
    return INCLUDE.sub(lambda m: _flux_file(m.group(1)), template)


def tasks(cfg: Config) -> list[Task]:
    buckets = cfg.rollup_buckets
    out = []
    for stem in TASK_FILES:
        name = f"{cfg.bucket}_{stem}"
        template = _with_includes(_flux_file(f"{stem}.flux"))
        values = {
            "TASK_NAME": name,
            "RAW_BUCKET": cfg.bucket,
            "HOURLY_BUCKET": buckets["1h"],
            "DAILY_BUCKET": buckets["1d"],
            "MONTHLY_BUCKET": buckets["1mo"],
            "SALT_PERIOD": cfg.salt_period,
            "TIMEZONE": cfg.timezone,
            "TOP_VALUES": str(cfg.top_values),
        }
        out.append(Task(name, render(template, values)))
    return out


DAY_SECONDS = 86_400


def raw_shard_group_seconds(retention: int) -> int:
    """One-day shard groups for the raw bucket (an hour, InfluxDB's own choice, for a retention
    under a day: a group may not outlast the retention).

    Why: a read of today's raw points costs per series of the shard group holding today, points
    or not. With InfluxDB's 7-day groups (its default for a retention of 6 months or more, and
    forever) an empty day beside one day of 16,000 series took 52 ms, beside none 4 ms
    (docs/performance.md), and the Stats API's today-part of every dashboard query paid for the
    whole week so far: up to 245 ms, depending on the weekday."""
    return DAY_SECONDS if retention == FOREVER or retention >= DAY_SECONDS else 3600


def setup(cfg: Config, admin: Admin) -> dict[str, str]:
    """Create or update every bucket and task; idempotent. Returns what happened to each."""
    report = {}
    for bucket, retention in bucket_retentions(cfg).items():
        shards = raw_shard_group_seconds(retention) if bucket == cfg.bucket else 0
        report[f"bucket {bucket}"] = admin.ensure_bucket(bucket, retention, shards)
    for task in tasks(cfg):
        report[f"task {task.name}"] = admin.upsert_task(task.name, task.flux)
    return report


# The tasks whose runs write a watermark (flux/watermark.flux), and the rollup it goes to.
WATERMARKED = {"hourly": "1h", "daily": "1d"}


def rerun(admin: RunAdmin, bucket: str, runs: list[tuple[str, str]],
          timeout: float = 600) -> list[dict[str, Any]]:
    """Queue runs of `bucket`'s tasks (task name, RFC3339 scheduled time) for past windows, each
    rolling up its usual window only, and wait for them (InfluxAdmin.run_tasks).

    Why: a run starts from the last watermark before it when that is older than its usual start
    (the catch-up after missed runs). InfluxDB executes queued runs side by side, so a batch's
    runs each found the watermark the batch before wrote and rolled up every hour since: the
    bench's 360 hourly runs, 24 at a time, cost 7.8 times as much (docs/performance.md, run 11).
    A watermark one second before each run's stop (the hour it is scheduled in), written first,
    is the last one that run sees. What it claims is true once the run succeeds; callers report
    the runs that failed."""
    marks: dict[str, list[str]] = {}
    for name, at in runs:
        stem = name.removeprefix(bucket + "_")
        if stem in WATERMARKED:
            stop = datetime.fromisoformat(at).astimezone(UTC).replace(minute=0, second=0, microsecond=0)
            stamp = int((stop - timedelta(seconds=1)).timestamp()) * 1_000_000_000
            marks.setdefault(f"{bucket}_{WATERMARKED[stem]}", []).append(f"watermark count=1i {stamp}")
    for target, lines in marks.items():
        admin.write_lines(target, lines)
    return admin.run_tasks(runs, timeout=timeout)
