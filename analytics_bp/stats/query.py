"""Parse and validate a Stats API query (the shape of Plausible's Stats API v2); no Flask, no I/O.

Why strict and separate: the body comes from whoever holds the token (or a page script), and only
names from the fixed vocabularies below ever reach a query's structure; caller values travel as
query parameters. Every refusal is a `QueryError` with a reason that names the offending part,
never a 5xx. The parsed `Query` is echoed back (`as_json`) with every default filled in.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from .. import schema
from . import filters as filtering
from .filters import Filter, FilterError, Node, leaves, quote

METRICS = ("visitors", "visits", "pageviews", "views_per_visit", "bounce_rate", "events",
           "median_load_time", "time_on_page", "visit_duration")
TAG_DIMENSIONS = schema.DIMENSION_KEYS  # dimension -> the raw key that holds it
TIME_DIMENSIONS = ("time:hour", "time:day", "time:month")
DIMENSIONS = (*TAG_DIMENSIONS, *TIME_DIMENSIONS)
EVENT_ONLY = schema.carried_only_by("event", "pageview")  # an event's name and props
# Source and UTM values, and the entry and exit pages: a visit's, found from its pageviews.
PAGEVIEW_ONLY = schema.carried_only_by("pageview", "event") | schema.VISIT_KEYS
EVENT_SCOPE_METRICS = frozenset({"events", "visitors", "visits"})
PAGEVIEW_METRICS = frozenset({"pageviews", "views_per_visit", "bounce_rate", "median_load_time"})
# From the agent's engaged time (measurement `engagement`), which carries no source or UTM.
ENGAGEMENT_METRICS = frozenset({"time_on_page", "visit_duration"})
DATE_RANGES = ("day", "7d", "30d", "month", "6mo", "12mo", "all")
MAX_LIMIT = 10_000
MAX_SPAN_DAYS = 5 * 366
MAX_HOURLY_DAYS = 31
BODY_KEYS = frozenset({"site_id", "metrics", "date_range", "dimensions", "filters", "order_by",
                       "pagination", "include"})


class QueryError(ValueError):
    """A query the API refuses; the message says why (answered as 400)."""


__all__ = ["Filter", "Node", "Query", "QueryError", "parse"]


@dataclass(frozen=True)
class Query:
    site_id: str
    metrics: tuple[str, ...]
    start: date  # first local day, inclusive
    end: date  # last local day, inclusive
    date_range: Any  # as given, for the echo
    dimensions: tuple[str, ...]
    filters: tuple[Node, ...]  # their conjunction (stats/filters.py)
    order_by: tuple[tuple[str, str], ...]
    limit: int
    offset: int
    time_labels: bool
    total_rows: bool
    tz: str

    @property
    def tags(self) -> frozenset[str]:
        """Every raw tag the query groups or filters by."""
        dims = {TAG_DIMENSIONS[d] for d in self.dimensions if d in TAG_DIMENSIONS}
        return frozenset(dims | {f.tag for f in leaves(self.filters)})

    @property
    def whole_visits(self) -> bool:
        """True when the query counts whole visits by their values: grouped or filtered by a visit
        key, or counting visits by a key a visit takes from its first pageview (schema.py)."""
        return bool(self.tags & schema.VISIT_KEYS) or bool(
            self.tags & schema.VISIT_ATTRIBUTE_KEYS and schema.VISIT_COUNTS & set(self.metrics))

    @property
    def time_dimension(self) -> str | None:
        return next((d for d in self.dimensions if d in TIME_DIMENSIONS), None)

    @property
    def event_scope(self) -> bool:
        """True when the query is about events (grouped or filtered by an event's name or note)."""
        return bool(self.tags & EVENT_ONLY)

    def utc_bounds(self) -> tuple[datetime, datetime]:
        """[start of the first local day, start of the day after the last) as aware datetimes."""
        zone = ZoneInfo(self.tz)
        first = datetime.combine(self.start, time(), zone)
        after = datetime.combine(self.end + timedelta(days=1), time(), zone)
        return first, after

    def as_json(self) -> dict[str, Any]:
        return {
            "site_id": self.site_id,
            "metrics": list(self.metrics),
            "date_range": [self.start.isoformat(), self.end.isoformat()],
            "dimensions": list(self.dimensions),
            "filters": [filtering.as_json(f) for f in self.filters],
            "order_by": [list(o) for o in self.order_by],
            "pagination": {"limit": self.limit, "offset": self.offset},
            "include": {"time_labels": self.time_labels, "total_rows": self.total_rows},
            "time_zone": self.tz,
        }


def _list_of_str(value: Any, what: str, allowed: tuple[str, ...], required: bool) -> tuple[str, ...]:
    if value is None and not required:
        return ()
    if not isinstance(value, list) or (required and not value):
        raise QueryError(f"{what} must be a non-empty list" if required else f"{what} must be a list")
    out: list[str] = []
    for item in value:
        if not isinstance(item, str):
            raise QueryError(f"{what}: every entry must be a string")
        if item not in allowed:
            raise QueryError(f"unknown {what[:-1] if what.endswith('s') else what}: "
                             f"{quote(item)}; one of {', '.join(allowed)}")
        if item in out:
            raise QueryError(f"{what}: {item} given twice")
        out.append(item)
    return tuple(out)


FirstDay = Callable[[], date | None]


def parse_date_range(value: Any, today: date, first_day: FirstDay) -> tuple[date, date]:
    """A shortcut or ["YYYY-MM-DD", "YYYY-MM-DD"] -> (first, last) local days, inclusive."""
    if isinstance(value, str):
        if value not in DATE_RANGES:
            raise QueryError(f"unknown date_range {quote(value)}; one of {', '.join(DATE_RANGES)} "
                             "or [\"YYYY-MM-DD\", \"YYYY-MM-DD\"]")
        return _shortcut(value, today, first_day)
    if (not isinstance(value, list) or len(value) != 2
            or not all(isinstance(v, str) for v in value)):
        raise QueryError('date_range must be a shortcut or ["YYYY-MM-DD", "YYYY-MM-DD"]')
    try:
        first, last = (date.fromisoformat(v) for v in value if len(v) == 10)
    except ValueError:
        raise QueryError('date_range dates must be ISO dates such as "2026-03-01"') from None
    if last < first:
        raise QueryError("date_range ends before it starts")
    if (last - first).days >= MAX_SPAN_DAYS:
        raise QueryError(f"date_range spans more than {MAX_SPAN_DAYS} days")
    return first, last


def _months_back(today: date, months: int) -> date:
    index = today.year * 12 + today.month - 1 - months
    return date(index // 12, index % 12 + 1, 1)


def _shortcut(value: str, today: date, first_day: FirstDay) -> tuple[date, date]:
    if value == "day":
        return today, today
    if value in ("7d", "30d"):
        return today - timedelta(days=int(value[:-1]) - 1), today
    if value == "month":
        return today.replace(day=1), today
    if value in ("6mo", "12mo"):
        return _months_back(today, int(value[:-2]) - 1), today
    return (first_day() or today), today  # "all": from the first day with data


def _filters(value: Any) -> tuple[Node, ...]:
    try:
        return filtering.parse(value)
    except FilterError as err:
        raise QueryError(str(err)) from None


def _order_by(value: Any, metrics: tuple[str, ...], dimensions: tuple[str, ...]
              ) -> tuple[tuple[str, str], ...]:
    if value is None:
        time_dim = next((d for d in dimensions if d in TIME_DIMENSIONS), None)
        if time_dim:
            return ((time_dim, "asc"),)
        return ((metrics[0], "desc"),) if dimensions else ()
    if not isinstance(value, list):
        raise QueryError('order_by must be a list like [["visitors", "desc"]]')
    out = []
    for item in value:
        if not (isinstance(item, list) and len(item) == 2 and all(isinstance(v, str) for v in item)):
            raise QueryError('each order_by entry must be [metric or dimension, "asc" or "desc"]')
        key, direction = item
        if key not in metrics and key not in dimensions:
            raise QueryError(f"order_by {quote(key)} is not among the query's metrics or dimensions")
        if direction not in ("asc", "desc"):
            raise QueryError('order_by direction must be "asc" or "desc"')
        out.append((key, direction))
    return tuple(out)


def _pagination(value: Any) -> tuple[int, int]:
    if value is None:
        return MAX_LIMIT, 0
    if not isinstance(value, dict) or set(value) - {"limit", "offset"}:
        raise QueryError("pagination must be {\"limit\": n, \"offset\": n}")
    limit, offset = value.get("limit", MAX_LIMIT), value.get("offset", 0)
    for name, number, low in (("limit", limit, 1), ("offset", offset, 0)):
        if isinstance(number, bool) or not isinstance(number, int) or number < low:
            raise QueryError(f"pagination.{name} must be an integer >= {low}")
    if limit > MAX_LIMIT:
        raise QueryError(f"pagination.limit must be at most {MAX_LIMIT}")
    return limit, offset


def _include(value: Any) -> tuple[bool, bool]:
    if value is None:
        return False, False
    if not isinstance(value, dict) or set(value) - {"time_labels", "total_rows"} or not all(
            isinstance(v, bool) for v in value.values()):
        raise QueryError('include must be {"time_labels": bool, "total_rows": bool}')
    return value.get("time_labels", False), value.get("total_rows", False)


def _check_combination(metrics: tuple[str, ...], dimensions: tuple[str, ...],
                       filters: tuple[Node, ...]) -> None:
    tags = {TAG_DIMENSIONS[d] for d in dimensions if d in TAG_DIMENSIONS} | {f.tag for f in leaves(filters)}
    if tags & EVENT_ONLY:
        wrong = [m for m in metrics if m not in EVENT_SCOPE_METRICS]
        if wrong:
            raise QueryError(f"{', '.join(wrong)} cannot be grouped or filtered by event:name or "
                             "event:props:* (events, visitors and visits can)")
    # Events and engaged time by (or filtered by) a visit key are those of the visits it selects
    # (stats/visits.py).
    if "visit_duration" in metrics and "page" in tags:
        raise QueryError("visit_duration cannot be grouped or filtered by event:page (a visit spans "
                         "pages): use time_on_page")
    if sum(d in TIME_DIMENSIONS for d in dimensions) > 1:
        raise QueryError("at most one time dimension")


def parse(body: Any, permitted: Callable[[], list[str]], tz: str, today: date,
          first_day: Callable[[str], date | None]) -> Query:
    """Validate a query body. `permitted()` lists the sites, `today` is the site's date, and
    `first_day(site)` finds the first day with data (asked only for date_range "all")."""
    if not isinstance(body, dict):
        raise QueryError("the body must be a JSON object")
    unknown = sorted(set(body) - BODY_KEYS)
    if unknown:
        raise QueryError(f"unknown key {quote(unknown[0])}; keys: {', '.join(sorted(BODY_KEYS))}")
    site = body.get("site_id")
    if not isinstance(site, str) or not site:
        raise QueryError("site_id is required: a permitted domain")
    if site not in permitted():
        raise QueryError(f"unknown site_id {quote(site)}")
    metrics = _list_of_str(body.get("metrics"), "metrics", METRICS, required=True)
    dimensions = _list_of_str(body.get("dimensions"), "dimensions", DIMENSIONS, required=False)
    if "date_range" not in body:
        raise QueryError("date_range is required")
    start, end = parse_date_range(body["date_range"], today, lambda: first_day(site))
    filters = _filters(body.get("filters"))
    _check_combination(metrics, dimensions, filters)
    if "time:hour" in dimensions and (end - start).days >= MAX_HOURLY_DAYS:
        raise QueryError(f"time:hour needs a date_range of at most {MAX_HOURLY_DAYS} days")
    limit, offset = _pagination(body.get("pagination"))
    time_labels, total_rows = _include(body.get("include"))
    return Query(site, metrics, start, end, body["date_range"], dimensions, filters,
                 _order_by(body.get("order_by"), metrics, dimensions), limit, offset,
                 time_labels, total_rows, tz)
