"""Points per second one writer (the sink of one worker) delivers into a real influxd."""

from __future__ import annotations

import statistics
import tempfile
import time
from typing import Any

from dataset import pageviews

from analytics_bp.dev.admin import Admin
from analytics_bp.influx import InfluxTarget
from analytics_bp.sink import Sink

HOUR_NS = 3600 * 10**9


def deliver(target: InfluxTarget, lines: list[str], batch_size: int = 5000) -> float:
    """Write through the sink (spool, gzip batches) and return seconds until InfluxDB has them all."""
    with tempfile.TemporaryDirectory() as spool:
        sink = Sink(target, spool, flush_interval=0.2, batch_size=batch_size)
        started = time.perf_counter()
        for item in lines:
            sink.write(item)
        sink.close(timeout=600)
        elapsed = time.perf_counter() - started
        if sink.pending_segments():
            raise RuntimeError(f"sink left segments undelivered: {sink.stats}")
    return elapsed


def stored_count(admin: Admin, bucket: str, measurement: str = "pageview") -> int:
    rows = admin.query(
        'from(bucket: b) |> range(start: 0) |> filter(fn: (r) => r._measurement == m'
        ' and r._field == "count") |> group() |> sum()', params={"b": bucket, "m": measurement})
    return int(rows[0]["_value"]) if rows else 0


def measure(admin: Admin, target: InfluxTarget, n: int, now_ns: int, rounds: int,
            progress: Any) -> dict[str, Any]:
    """`rounds` deliveries of `n` points, each into its own day of one bucket. The first round
    creates every series (a new bucket); later ones write to series that exist, as a running
    collector mostly does. Reported: each round and the median."""
    rates = []
    for i in range(rounds):
        day_start = now_ns - (rounds - i) * 24 * HOUR_NS
        lines = list(pageviews(n, day_start, 24 * HOUR_NS, seed=7 + i))
        seconds = deliver(target, lines)
        rates.append(round(n / seconds))
        progress(f"sink round {i + 1}/{rounds}: {rates[-1]:,} points/s")
    stored = stored_count(admin, target.bucket)
    if stored != n * rounds:
        raise RuntimeError(f"wrote {n * rounds} points but InfluxDB holds {stored}")
    return {"points_per_round": n, "rounds": rates, "points_per_s": round(statistics.median(rates))}
