"""The Stats API's answer from the merged rows: metrics, order, pages, meta. Pure.

Why apart: ordering and paging must see every row of every part (rollups and raw points), so
they run once, after the reads, on the merged rows.
"""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo

from . import metrics
from .metrics import Components
from .plan import Plan
from .query import Query
from .rows import Key, time_labels


def answer(q: Query, rows: dict[Key, Components], plan: Plan, bucket: str,
           zone: ZoneInfo, total_visitors: int = 0) -> dict[str, Any]:
    """`total_visitors`: the query's visitors without its dimensions (for `percentage`)."""
    if not q.dimensions and not rows:
        rows[()] = Components()
    table = sorted((([metrics.value(m, c, total_visitors) for m in q.metrics], list(k))
                    for k, c in rows.items()), key=lambda r: r[1])
    for name, direction in reversed(q.order_by):  # stable sorts: the first key sorts last
        if name in q.metrics:
            i = q.metrics.index(name)
            table.sort(key=lambda r: r[0][i] or 0, reverse=direction == "desc")
        else:
            i = q.dimensions.index(name)
            table.sort(key=lambda r: r[1][i], reverse=direction == "desc")
    results = [{"metrics": m, "dimensions": d} for m, d in table]
    return {"results": results[q.offset: q.offset + q.limit], "meta": meta(q, len(results), plan,
                                                                            bucket, zone),
            "query": q.as_json()}


def meta(q: Query, total_rows: int, plan: Plan, bucket: str, zone: ZoneInfo) -> dict[str, Any]:
    """Only what `include` asks for, keys sorted as Plausible's are."""
    out: dict[str, Any] = {}
    if "answered_from" in q.include:
        out["answered_from"] = answered_from(plan, bucket)
        out["time_zone"] = q.tz
    if "imports" in q.include:
        out["imports_included"] = False  # nothing is ever imported here
    if q.time_labels:
        out["time_labels"] = time_labels(q, zone)
    if q.total_rows:
        out["total_rows"] = total_rows
    return dict(sorted(out.items()))


def answered_from(plan: Plan, bucket: str) -> dict[str, Any]:
    """Where each part of the answer came from (our extra, in meta)."""
    return {
        "rollups": [bucket + s.suffix + ":" + s.measurement for s in plan.sources]
        if plan.rollup else [],
        "rollup_days": plan.rollup.label() if plan.rollup else None,
        "raw_days": plan.raw.label() if plan.raw else None,
    }
