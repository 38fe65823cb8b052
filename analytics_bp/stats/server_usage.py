"""Server-side usage for the dashboard (`log_event`, `count`, `mark`): totals over a date range.

Why apart: it reads its own measurements with its own split (hours the hourly task finished come
from `_1h`, later ones from raw points) and shares nothing with the Stats API's plan.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from datetime import datetime
from typing import Any

from ..settings import Config
from .dates import Period
from .read import Reader

TOTALS = ("from(bucket: bucket) |> range(start: start, stop: stop) "
          '|> filter(fn: (r) => (r._measurement == mu or r._measurement == mc) '
          'and r._field == "count") |> group(columns: ["_measurement", "action", '
          '"category", "event"]) |> sum()')
MARKS = ("from(bucket: bucket) |> range(start: start, stop: stop) "
         '|> filter(fn: (r) => r._measurement == "mark" and r._field == "name") |> group()')


def usage(cfg: Config, reader: Reader, hourly_mark: Callable[[], datetime | None],
          period: Period) -> dict[str, Any]:
    """Actions, counts and marks in the period (whole days from the hourly rollup where it has
    them; a period between datetimes from raw points)."""
    start, stop = period.first, period.after
    mark = hourly_mark()
    split = max(start, min(stop, mark)) if mark is not None and period.whole_days else start
    actions: dict[str, int] = defaultdict(int)
    counts: dict[tuple[str, str], int] = defaultdict(int)
    marks: list[dict[str, Any]] = []
    parts = ((cfg.rollup_buckets["1h"], start, split, ("usage", "usage_counts")),
             (cfg.bucket, split, stop, ("usage", "usage_count")))
    for bucket, a, b, (m_usage, m_counts) in parts:
        if b <= a:
            continue
        params = {"bucket": bucket, "start": a, "stop": b, "mu": m_usage, "mc": m_counts}
        for rec in reader.query(TOTALS, params):
            if rec["_measurement"] == m_usage:
                actions[str(rec.get("action"))] += int(rec["_value"])
            else:
                counts[(str(rec.get("category")), str(rec.get("event")))] += int(rec["_value"])
        marks += [{"time": r["_time"].isoformat(), "name": r["_value"], "category": r.get("category")}
                  for r in reader.query(MARKS, params)]
    return {
        "date_range": period.as_json(),
        "actions": sorted(([k, v] for k, v in actions.items()), key=lambda r: (-r[1], r[0])),
        "counts": sorted(([c, e, v] for (c, e), v in counts.items()), key=lambda r: (-r[2], r[0], r[1])),
        "marks": sorted(marks, key=lambda m: m["time"]),
    }
