"""Points per second one writer (the sink of one worker) delivers into a real influxd."""

from __future__ import annotations

import tempfile
import time
from typing import Any

from dataset import pageviews

from analytics_bp.sink import InfluxAdmin, InfluxTarget, Sink

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


def stored_count(admin: InfluxAdmin, bucket: str, measurement: str = "pageview") -> int:
    rows = admin.query(
        'from(bucket: b) |> range(start: 0) |> filter(fn: (r) => r._measurement == m'
        ' and r._field == "count") |> group() |> sum()', params={"b": bucket, "m": measurement})
    return int(rows[0]["_value"]) if rows else 0


def measure(admin: InfluxAdmin, target: InfluxTarget, n: int, now_ns: int) -> dict[str, Any]:
    lines = list(pageviews(n, now_ns - 24 * HOUR_NS, 24 * HOUR_NS, seed=7))
    seconds = deliver(target, lines)
    stored = stored_count(admin, target.bucket)
    if stored != n:
        raise RuntimeError(f"wrote {n} points but InfluxDB holds {stored}")
    return {"points": n, "seconds": round(seconds, 2), "points_per_s": round(n / seconds)}
