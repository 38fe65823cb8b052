"""Buckets with retention, and the Flux tasks that downsample raw points into them.

Why placeholders and not string formatting: bucket and task names come from settings, so they are
validated (settings.BUCKET_NAME) and then inserted only as Flux string literals escaped by
`flux_string`, replacing a whole quoted placeholder such as "__RAW_BUCKET__". Nothing else of the
.flux files changes, so a test can parse and run exactly what is shipped.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources
from typing import Any, Protocol

from .settings import Config

TASK_FILES = ("hourly", "daily", "monthly")
FOREVER = 0
PLACEHOLDER = re.compile(r'"__([A-Z_]+)__"')


class Admin(Protocol):
    def ensure_bucket(self, name: str, retention_seconds: int) -> str: ...
    def upsert_task(self, name: str, flux: str) -> str: ...
    def tasks(self, prefix: str = "") -> list[dict[str, Any]]: ...


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


def tasks(cfg: Config) -> list[Task]:
    buckets = cfg.rollup_buckets
    out = []
    for stem in TASK_FILES:
        name = f"{cfg.bucket}_{stem}"
        template = resources.files("analytics_bp").joinpath("flux", f"{stem}.flux").read_text()
        values = {
            "TASK_NAME": name,
            "RAW_BUCKET": cfg.bucket,
            "HOURLY_BUCKET": buckets["1h"],
            "DAILY_BUCKET": buckets["1d"],
            "MONTHLY_BUCKET": buckets["1mo"],
            "SALT_PERIOD": cfg.salt_period,
            "TIMEZONE": cfg.timezone,
        }
        out.append(Task(name, render(template, values)))
    return out


def setup(cfg: Config, admin: Admin) -> dict[str, str]:
    """Create or update every bucket and task; idempotent. Returns what happened to each."""
    report = {}
    for bucket, retention in bucket_retentions(cfg).items():
        report[f"bucket {bucket}"] = admin.ensure_bucket(bucket, retention)
    for task in tasks(cfg):
        report[f"task {task.name}"] = admin.upsert_task(task.name, task.flux)
    return report
