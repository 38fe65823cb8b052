"""Every Grafana panel of the traffic and events dashboards (the bench month has no events, so
those panels only show the cost of asking) over the bench month (30 days to today's midnight), as
Grafana would ask it: each query of the shipped dashboards, bound with build_dashboards.bind,
timed against the rollups (after capacity.py's hourly runs, so the hourly panels read `_1h` up
to its watermark and raw points after it, as in production)."""

from __future__ import annotations

import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from analytics_bp.dev.admin import Admin

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "grafana"))
import build_dashboards

REPEAT = 5
# Grafana's window for a 30-day range on a panel about 1,000 pixels wide
WINDOW = "1h"


def queries() -> list[tuple[str, str]]:
    """(dashboard/panel, query) for every panel of the traffic and events dashboards."""
    import json
    out = []
    for name in ("traffic", "events"):
        board = json.loads((build_dashboards.OUT / f"{name}.json").read_text())
        out += [(f"{name}/{p['title']}", p["targets"][0]["query"]) for p in board["panels"]]
    return out


def measure(admin: Admin, bucket: str, progress: Any) -> dict[str, Any]:
    stop = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    start = stop - timedelta(days=30)
    fmt = "%Y-%m-%dT%H:%M:%SZ"
    times: dict[str, float] = {}
    progress(f"timing every Grafana panel over the bench month, {REPEAT} runs each")
    for title, query in queries():
        bound = build_dashboards.bind(query, bucket, start.strftime(fmt), stop.strftime(fmt), WINDOW)
        admin.query(bound)  # warm-up
        runs = []
        for _ in range(REPEAT):
            began = time.perf_counter()
            admin.query(bound)
            runs.append(time.perf_counter() - began)
        times[title] = round(statistics.median(runs) * 1000, 1)
    slowest = max(times, key=lambda t: times[t])
    return {"panels": times, "slowest": slowest, "slowest_ms": times[slowest],
            "all_ms": round(sum(times.values()), 1), "repeat": REPEAT}
