"""Result rows: the dimension values that key a row, and the labels of time buckets. Pure.

Why apart: the reads of rollups and of raw points must key a record the same way (or a day read
from each would land in two rows), and the answer's time labels must match those keys.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from .dates import week_start
from .query import TAG_DIMENSIONS, TIME_DIMENSIONS, Query

Key = tuple[str, ...]


def time_label(dimension: str, stamp: datetime, zone: ZoneInfo, period_first: date) -> str:
    """Plausible's labels: "YYYY-MM-DD HH:00:00" for hours, the day, the week's Monday (or the
    period's first day), the month's first day."""
    local = stamp.astimezone(zone)
    if dimension == "time:hour":
        return local.strftime("%Y-%m-%d %H:00:00")
    if dimension == "time:day":
        return local.date().isoformat()
    if dimension == "time:week":
        return week_start(local.date(), period_first).isoformat()
    return local.date().replace(day=1).isoformat()


def key(q: Query, rec: dict[str, Any], stamp: datetime | None, zone: ZoneInfo) -> Key | None:
    """The row's dimension values; None when the point lacks one (no UTM, no note label)."""
    out = []
    for dim in q.dimensions:
        if dim in TIME_DIMENSIONS:
            assert stamp is not None  # rows of a query by time keep their time
            out.append(time_label(dim, stamp, zone, q.start))
            continue
        value = rec.get(TAG_DIMENSIONS[dim])
        if value is None or value == "":
            return None
        out.append(str(value))
    return tuple(out)


def time_labels(q: Query, zone: ZoneInfo) -> list[str]:
    """Every label of the query's time dimension over its range, in order (empty ones too)."""
    dim = q.time_dimension
    if dim is None:
        return []
    first, after = q.utc_bounds()
    step = timedelta(hours=1) if dim == "time:hour" else timedelta(days=1)
    labels: list[str] = []
    moment = first.astimezone(UTC)
    while moment < after:
        label = time_label(dim, moment, zone, q.start)
        if not labels or labels[-1] != label:
            labels.append(label)
        moment += step
    return labels
