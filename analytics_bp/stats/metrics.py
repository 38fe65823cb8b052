"""Every metric's formula, once, over additive per-row parts.

Why additive parts: a row's days may come partly from rollups and partly from raw points. Each
part below is a sum over days (or, for medians, the days' values with their weights), so both
halves add up exactly and the formulas never need to know where a day came from.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date


@dataclass
class Components:
    """Additive parts of every metric for one result row."""

    pageviews: int = 0
    visitors: int = 0  # daily distinct visitors, summed over days
    visits: int = 0
    bounces: int = 0
    views: int = 0  # pageviews inside a visit (those that carry a session)
    events: int = 0
    raw_load: dict[date, list[int]] = field(default_factory=lambda: defaultdict(list))
    day_medians: list[tuple[float, int]] = field(default_factory=list)
    raw_engaged: dict[date, list[int]] = field(default_factory=lambda: defaultdict(list))
    engaged_medians: list[tuple[float, int]] = field(default_factory=list)
    visit_seconds: int = 0
    engaged_visits: int = 0


def combined_median(raw: dict[date, list[int]], day_medians: list[tuple[float, int]]) -> float | None:
    """Exact median of raw values; with rolled-up days, the count-weighted median of daily medians
    (a daily rollup keeps one exact median per day, not every value)."""
    if not day_medians:
        values = [v for day in raw.values() for v in day]
        return float(statistics.median(values)) if values else None
    return weighted_median(day_medians + [(float(statistics.median(v)), len(v))
                                          for v in raw.values() if v])


def weighted_median(pairs: list[tuple[float, int]]) -> float | None:
    """The value at which half the total weight is reached, or None without weight."""
    total = sum(w for _, w in pairs)
    if total <= 0:
        return None
    running = 0
    for value, weight in sorted(pairs):
        running += weight
        if running * 2 >= total:
            return value
    return None  # pragma: no cover - the loop always returns


def views_per_visit(c: Components) -> float:
    return round(c.views / c.visits, 2) if c.visits else 0.0


def bounce_rate(c: Components) -> int:
    """A whole percent, as Plausible's (`round(bounces / visits * 100)`, 0 without visits)."""
    return round(100 * c.bounces / c.visits) if c.visits else 0


def percentage(visitors: int, total_visitors: int) -> float | None:
    """A row's share of all the period's visitors under the same filters, to one decimal, as
    Plausible's (`round(visitors / total * 100, 1)`; none without visitors)."""
    return round(100 * visitors / total_visitors, 1) if total_visitors > 0 else None


def visit_duration(c: Components) -> int | None:
    """Mean engaged seconds per visit that sent engaged time (exact across days: both parts are
    sums)."""
    return round(c.visit_seconds / c.engaged_visits) if c.engaged_visits else None


def median_load_time(c: Components) -> float | None:
    return combined_median(c.raw_load, c.day_medians)


def time_on_page(c: Components) -> float | None:
    return combined_median(c.raw_engaged, c.engaged_medians)


FORMULAS = {
    "views_per_visit": views_per_visit,
    "bounce_rate": bounce_rate,
    "median_load_time": median_load_time,
    "time_on_page": time_on_page,
    "visit_duration": visit_duration,
}


def value(name: str, c: Components, total_visitors: int = 0) -> float | int | None:
    """Metric `name` of one row: a formula, or one of the counted parts as it is; `percentage`
    from the row's visitors and the total without dimensions."""
    if name == "percentage":
        return percentage(c.visitors, total_visitors)
    formula = FORMULAS.get(name)
    return formula(c) if formula else int(getattr(c, name))
