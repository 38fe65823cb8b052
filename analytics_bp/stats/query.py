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
from . import dates
from . import filters as filtering
from .dates import DateRangeError, Period
from .filters import Filter, FilterError, Node, leaves, quote

METRICS = ("visitors", "visits", "pageviews", "views_per_visit", "bounce_rate", "events",
           "percentage", "median_load_time", "time_on_page", "visit_duration")
TAG_DIMENSIONS = schema.DIMENSION_KEYS  # dimension -> the raw key that holds it
TIME_DIMENSIONS = ("time:hour", "time:day", "time:week", "time:month")
# "time" picks one of them from the period's length, as Plausible's does (dates.py).
DIMENSIONS = (*TAG_DIMENSIONS, "time", *TIME_DIMENSIONS)
EVENT_ONLY = schema.carried_only_by("event", "pageview")  # an event's name and props
# Source and UTM values, and the entry and exit pages: a visit's, found from its pageviews.
PAGEVIEW_ONLY = schema.carried_only_by("pageview", "event") | schema.VISIT_KEYS
EVENT_SCOPE_METRICS = frozenset({"events", "visitors", "visits", "percentage"})
PAGEVIEW_METRICS = frozenset({"pageviews", "views_per_visit", "bounce_rate", "median_load_time"})
# From the agent's engaged time (measurement `engagement`), which carries no source or UTM.
ENGAGEMENT_METRICS = frozenset({"time_on_page", "visit_duration"})
DATE_RANGES = dates.SHORTCUTS
MAX_LIMIT = 10_000
MAX_HOURLY_DAYS = 31
BODY_KEYS = frozenset({"site_id", "metrics", "date_range", "dimensions", "filters", "order_by",
                       "pagination", "include"})
# Plausible's include keys, and ours: "answered_from" adds meta.answered_from (which rollups and
# days answered) and meta.time_zone. "imports" is accepted; there is never imported data.
INCLUDE_KEYS = ("time_labels", "total_rows", "imports", "answered_from")


class QueryError(ValueError):
    """A query the API refuses; the message says why (answered as 400)."""


__all__ = ["Filter", "Node", "Query", "QueryError", "parse"]


@dataclass(frozen=True)
class Query:
    site_id: str
    metrics: tuple[str, ...]
    period: Period  # [first, after) in the site's zone (dates.py)
    dimensions: tuple[str, ...]  # "time" already resolved to the time dimension it stands for
    filters: tuple[Node, ...]  # their conjunction (stats/filters.py)
    order_by: tuple[tuple[str, str], ...]
    limit: int
    offset: int
    include: frozenset[str]  # the include keys set to true
    tz: str

    @property
    def start(self) -> date:
        """The first site day the period touches."""
        return self.period.first_day

    @property
    def end(self) -> date:
        """The last site day the period touches."""
        return self.period.last_day

    @property
    def time_labels(self) -> bool:
        return "time_labels" in self.include

    @property
    def total_rows(self) -> bool:
        return "total_rows" in self.include

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
        """[first, after) as aware datetimes."""
        return self.period.first, self.period.after

    def as_json(self) -> dict[str, Any]:
        """The query as it ran, in Plausible's order and form, which can be posted again: the
        range as datetimes in the site's zone, `time` resolved, defaults filled in, include with
        only what is true."""
        return {
            "site_id": self.site_id,
            "metrics": list(self.metrics),
            "date_range": self.period.as_json(),
            "filters": [filtering.as_json(f) for f in self.filters],
            "dimensions": list(self.dimensions),
            "order_by": [list(o) for o in self.order_by],
            "include": {k: True for k in INCLUDE_KEYS if k in self.include},
            "pagination": {"limit": self.limit, "offset": self.offset},
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


def parse_date_range(value: Any, clock: date | datetime, first_day: dates.FirstDay,
                     tz: str = "UTC") -> Period:
    """`date_range` -> its period (dates.py); `clock` is now, or a day (taken at its noon)."""
    zone = ZoneInfo(tz)
    now = clock if isinstance(clock, datetime) else datetime.combine(clock, time(12), zone)
    try:
        return dates.parse(value, now, zone, first_day)
    except DateRangeError as err:
        raise QueryError(str(err)) from None


def _filters(value: Any) -> tuple[Node, ...]:
    try:
        return filtering.parse(value)
    except FilterError as err:
        raise QueryError(str(err)) from None


def _order_by(value: Any, metrics: tuple[str, ...], dimensions: tuple[str, ...]
              ) -> tuple[tuple[str, str], ...]:
    """Plausible's default when none is given: the time dimension ascending, if any, then the
    first metric descending. "time" in an entry stands for the query's time dimension."""
    time_dim = next((d for d in dimensions if d in TIME_DIMENSIONS), None)
    if value is None:
        return (((time_dim, "asc"),) if time_dim else ()) + ((metrics[0], "desc"),)
    if not isinstance(value, list):
        raise QueryError('order_by must be a list like [["visitors", "desc"]]')
    out = []
    for item in value:
        if not (isinstance(item, list) and len(item) == 2 and all(isinstance(v, str) for v in item)):
            raise QueryError('each order_by entry must be [metric or dimension, "asc" or "desc"]')
        key, direction = item
        if key == "time" and time_dim:
            key = time_dim
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


def _include(value: Any, dimensions: tuple[str, ...]) -> frozenset[str]:
    if value is None:
        return frozenset()
    if not isinstance(value, dict) or set(value) - set(INCLUDE_KEYS) or not all(
            isinstance(v, bool) for v in value.values()):
        raise QueryError("include must be an object of booleans, keys: " + ", ".join(INCLUDE_KEYS))
    chosen = frozenset(k for k, v in value.items() if v)
    if "time_labels" in chosen and not any(d in TIME_DIMENSIONS for d in dimensions):
        raise QueryError("include.time_labels needs a time dimension")
    return chosen


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
    if "percentage" in metrics and not dimensions:
        raise QueryError("percentage needs dimensions (a row's share of the visitors)")


class UnknownSite(QueryError):
    """A site_id this caller cannot see (answered as 401, as Plausible does)."""

    @classmethod
    def of(cls, site: str) -> UnknownSite:
        return cls(f"Invalid API key or site ID {quote(site)}: the key must have access to the "
                   "site requested")


def parse(body: Any, permitted: Callable[[], list[str]], tz: str, clock: date | datetime,
          first_day: Callable[[str], date | None]) -> Query:
    """Validate a query body. `permitted()` lists the sites, `clock` is now (or, in tests, the
    site's date), and `first_day(site)` finds the first day with data (asked only for "all")."""
    if not isinstance(body, dict):
        raise QueryError("the body must be a JSON object")
    site = body.get("site_id")
    if not isinstance(site, str) or not site:
        raise QueryError("site_id is required: a permitted domain")
    if site not in permitted():  # first, as Plausible's authentication comes before its parser
        raise UnknownSite.of(site)
    unknown = sorted(set(body) - BODY_KEYS)
    if unknown:
        raise QueryError(f"unknown key {quote(unknown[0])}; keys: {', '.join(sorted(BODY_KEYS))}")
    metrics = _list_of_str(body.get("metrics"), "metrics", METRICS, required=True)
    dimensions = _list_of_str(body.get("dimensions"), "dimensions", DIMENSIONS, required=False)
    if "date_range" not in body:
        raise QueryError("date_range is required")
    period = parse_date_range(body["date_range"], clock, lambda: first_day(site), tz)
    dimensions = tuple(dates.auto_time_dimension(period) if d == "time" else d for d in dimensions)
    filters = _filters(body.get("filters"))
    _check_combination(metrics, dimensions, filters)
    if "time:hour" in dimensions and period.after - period.first > timedelta(days=MAX_HOURLY_DAYS):
        raise QueryError(f"time:hour needs a date_range of at most {MAX_HOURLY_DAYS} days")
    limit, offset = _pagination(body.get("pagination"))
    return Query(site, metrics, period, dimensions, filters,
                 _order_by(body.get("order_by"), metrics, dimensions), limit, offset,
                 _include(body.get("include"), dimensions), tz)
