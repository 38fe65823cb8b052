"""Figures for the capacity plan (docs/scaling.md), measured on the bench month and one collector.

- CPU per beacon: the collector's gunicorn workers under wrk at their maximum rate, from
  /proc/<pid>/stat, and influxd's CPU for storing the same beacons: beacons per collector core-second
  and points per influxd core-second.
- Disk: bytes of each bucket of the bench month (raw and the three rollups, after the shipped hourly
  and daily tasks ran for every window) under influxd's engine directory, per million pageviews.
- Series: the raw bucket's series for one site over the month (`influxdb.cardinality`).
- influxd's resident memory at the end.
"""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import http_load

from analytics_bp import rollups
from analytics_bp.dev.admin import Admin

TICKS = os.sysconf("SC_CLK_TCK")
# Task runs queued at once. All 360 of the month at once failed on a slow day (2026-12-02:
# "could not execute task run: timeout", influxd's executor giving up on runs that waited).
QUEUED_RUNS = 24


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime + stime


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def bucket_bytes(admin: Admin, data_dir: Path, name: str) -> int:
    bucket = admin.client.buckets_api().find_bucket_by_name(name)
    root = data_dir / "engine" / "data" / bucket.id
    wal = data_dir / "engine" / "wal" / bucket.id
    return sum(p.stat().st_size for d in (root, wal) if d.exists() for p in d.rglob("*") if p.is_file())


def collector_cpu(creds: Any, state: Path, influxd_pid: int, seconds: int, progress: Any) -> dict[str, Any]:
    bucket = "bench_capacity"
    admin = Admin(creds.url, creds.org, creds.token)
    admin.ensure_bucket(bucket, 0)
    env = {**creds.as_env(), "ANALYTICS_PERMITTED_DOMAINS": "bench.example", "ANALYTICS_BUCKET": bucket,
           "ANALYTICS_STATE_DIR": str(state / "capacity")}
    server = http_load.server("analytics_bp:create_app()", env, state / "capacity.log")
    with server:
        http_load.wrk(server.url, 2)  # warm-up
        workers = server.worker_pids()
        before = sum(cpu_seconds(p) for p in workers), cpu_seconds(influxd_pid)
        progress(f"collector CPU per beacon: wrk at maximum rate, {seconds}s")
        peak = http_load.wrk(server.url, seconds)
        time.sleep(3)  # the last commits and deliveries
        after = sum(cpu_seconds(p) for p in workers), cpu_seconds(influxd_pid)
    collector_s, influxd_s = after[0] - before[0], after[1] - before[1]
    admin.close()
    return {"requests": peak.requests, "collector_cpu_s": round(collector_s, 2),
            "influxd_cpu_s": round(influxd_s, 2),
            "beacons_per_collector_core_s": round(peak.requests / collector_s),
            "points_per_influxd_core_s": round(peak.requests / influxd_s) if influxd_s else None}


def storage(admin: Admin, data_dir: Path, bucket: str, raw_points: int, days: int,
            progress: Any) -> dict[str, Any]:
    first_day = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=days)
    runs = [(f"{bucket}_hourly", (first_day + timedelta(hours=h)).strftime("%Y-%m-%dT%H:%M:%SZ"))
            for h in range(2, days * 24 + 1, 2)]
    progress(f"hourly rollups of the bench month: {len(runs)} task runs")
    started = time.perf_counter()
    results = []
    for first in range(0, len(runs), QUEUED_RUNS):  # influxd times out runs queued too long
        results += rollups.rerun(admin, bucket, runs[first:first + QUEUED_RUNS], timeout=1800)
        progress(f"hourly rollups: {min(first + QUEUED_RUNS, len(runs))}/{len(runs)} runs")
    if any(r["status"] != "success" for r in results):
        raise RuntimeError(f"hourly runs failed: {[r for r in results if r['status'] != 'success'][:1]}")
    hourly_s = time.perf_counter() - started
    # Each month's run at the next month's start, the current month's at today's midnight (a run
    # scheduled in the future would wait for that time).
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    month_starts = sorted({(first_day + timedelta(days=d)).replace(day=1) for d in range(days + 1)})
    monthly = [(f"{bucket}_monthly", min((m + timedelta(days=32)).replace(day=1), today)
                .strftime("%Y-%m-%dT%H:%M:%SZ")) for m in month_starts]
    if any(r["status"] != "success" for r in admin.run_tasks(monthly, timeout=600)):
        raise RuntimeError("monthly runs failed")
    sizes = {suffix or "raw": bucket_bytes(admin, data_dir, bucket + suffix)
             for suffix in ("", "_1h", "_1d", "_1mo")}
    series = admin.query(
        'import "influxdata/influxdb"\n'
        'influxdb.cardinality(bucket: b, start: -40d, predicate: (r) => r.domain == "a.example")',
        params={"b": bucket})
    sites = 3  # bench/dataset.py: a.example, b.example, c.example
    return {"raw_points": raw_points, "days": days,
            "bytes": sizes,
            "bytes_per_million": {k: round(v * 1_000_000 / raw_points) for k, v in sizes.items()},
            "raw_series_one_site_month": int(series[0]["_value"]) if series else 0,
            "sites": sites, "hourly_task_s_per_million": round(hourly_s * 1_000_000 / raw_points, 1)}


def measure(creds: Any, admin: Admin, data_dir: Path, influxd_pid: int, bucket: str, raw_points: int,
            task_s_per_day: float, state: Path, progress: Any) -> dict[str, Any]:
    out = storage(admin, data_dir, bucket, raw_points, 30, progress)
    out["daily_task_s_per_million"] = round(task_s_per_day * 30 * 1_000_000 / raw_points, 1)
    out.update(collector_cpu(creds, state, influxd_pid, 10, progress))
    out["influxd_rss_bytes"] = rss_bytes(influxd_pid)
    return out

