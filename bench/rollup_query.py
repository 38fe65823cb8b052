"""The 30-day top-pages panel on the daily rollup versus the same question asked of raw points."""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from dataset import pageviews
from ingest import deliver

from analytics_bp import rollups, settings
from analytics_bp.dev.admin import Admin
from analytics_bp.influx import InfluxTarget

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "grafana"))
import build_dashboards

RAW_TOP_PAGES = """
from(bucket: b)
  |> range(start: start, stop: stop)
  |> filter(fn: (r) => r._measurement == "pageview" and (r._field == "count" or r._field == "page"))
  |> pivot(rowKey: ["_time"], columnKey: ["_field"], valueColumn: "_value")
  |> group(columns: ["domain", "page"])
  |> sum(column: "count")
  |> rename(columns: {count: "_value"})
  |> group()
  |> sort(columns: ["_value"], desc: true)
  |> limit(n: 20)
"""


def timed(fn: Callable[[], list[dict[str, Any]]], repeat: int = 5) -> tuple[float, list[dict[str, Any]]]:
    """Median wall time of `repeat` runs (after one warm-up) and the last result."""
    rows = fn()
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        rows = fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times), rows


def install(admin: Admin, bucket: str) -> None:
    """Buckets (raw kept forever here, so 30 days ago is still writable) and the shipped tasks."""
    cfg = settings.load({"ANALYTICS_PERMITTED_DOMAINS": "a.example", "ANALYTICS_BUCKET": bucket,
                         "ANALYTICS_RAW_RETENTION": "0"})
    rollups.setup(cfg, admin)


def roll_up(admin: Admin, bucket: str, first_day: datetime, days: int, progress: Any) -> None:
    """Run the daily task as the scheduler would, once per day, after the day is complete."""
    for i in range(1, days + 1):
        at = (first_day + timedelta(days=i)).strftime("%Y-%m-%dT%H:%M:%SZ")
        result = admin.run_task(f"{bucket}_daily", at, timeout=300)
        if result["status"] != "success":
            raise RuntimeError(f"daily task at {at} failed: {result['logs'][-1:]}")
        if i % 5 == 0 or i == days:
            progress(f"daily rollup: {i}/{days} days")


def check_same_answer(rollup_rows: list[dict[str, Any]], raw_rows: list[dict[str, Any]]) -> None:
    """Same counts in the same order; pages tied at the cut may differ, their counts may not."""
    rollup = {(r["domain"], r["page"]): r["pageviews"] for r in rollup_rows}
    raw = {(r["domain"], r["page"]): r["_value"] for r in raw_rows}
    same = [k for k in rollup if k in raw]
    if [r["pageviews"] for r in rollup_rows] != [r["_value"] for r in raw_rows] or any(
            rollup[k] != raw[k] for k in same) or len(rollup_rows) != 20:
        raise RuntimeError(f"rollup and raw disagree:\n{rollup_rows[:3]}\n{raw_rows[:3]}")


def measure(admin: Admin, target: InfluxTarget, n: int, progress: Any) -> dict[str, Any]:
    days = 30
    first_day = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=days)
    start_ns = int(first_day.timestamp() * 1e9)
    install(admin, target.bucket)
    progress(f"writing {n:,} raw pageviews (and the engaged time of every second one) over {days} days "
             f"into {target.bucket}")
    seconds = deliver(target, list(pageviews(n, start_ns, days * 86400 * 10**9, seed=11, engaged_every=2)))
    progress(f"written in {seconds:.1f}s; rolling up")
    started = time.perf_counter()
    roll_up(admin, target.bucket, first_day, days, progress)
    task_s_per_day = (time.perf_counter() - started) / days

    start, stop = first_day.strftime("%Y-%m-%dT%H:%M:%SZ"), (first_day + timedelta(days=days))
    stop_s = stop.strftime("%Y-%m-%dT%H:%M:%SZ")
    panel = build_dashboards.bind(build_dashboards.panel_query("traffic.json", "Top pages"),
                                  target.bucket, start, stop_s)
    params = {"b": target.bucket, "start": first_day, "stop": stop}
    progress("timing the top-pages query on rollups and on raw points")
    rollup_s, rollup_rows = timed(lambda: admin.query(panel))
    raw_s, raw_rows = timed(lambda: admin.query(RAW_TOP_PAGES, params=params), repeat=3)
    check_same_answer(rollup_rows, raw_rows)
    return {"raw_points": n, "days": days, "write_seconds": round(seconds, 1),
            "rollup_ms": round(rollup_s * 1000, 1), "raw_ms": round(raw_s * 1000, 1),
            "ratio": round(raw_s / rollup_s, 1), "task_s_per_day": round(task_s_per_day, 1)}
