"""Which buckets answer a query, and which days each answers: pure, no I/O.

Why apart: the choice decides both correctness (days from rollups and days from raw points must
add up exactly, and never overlap) and speed (a rollup is hundreds of times cheaper than raw
points), so it is unit-tested on its own, without InfluxDB (tests/stats_api/test_stats_plan.py). The
reads follow the plan; they never choose.

The rules (docs/schema.md, "Which bucket answers what"): a query is answered from the rollups
that keep all its metrics with all its dimensions and filters, for the days their tasks have
finished; the rest (today, and anything not rolled up yet) comes from raw points. A query no
rollup can answer is answered from raw points while they are kept, else refused with the reason.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from .. import schema
from .query import ENGAGEMENT_METRICS, Query, QueryError

BREAKDOWNS = {tier: schema.breakdowns(tier) for tier in ("1h", "1d")}  # measurement -> its tags
VISIT_BREAKDOWNS = schema.visit_breakdowns("1d")
# What the visit tables keep: per value and day, visits, distinct visitors, pageviews, bounces.
VISIT_METRICS = frozenset({"visitors", "visits", "pageviews", "views_per_visit", "bounce_rate"})
EVENT_TAGS = schema.rollup_tags("1d", "events")
DAY_SECONDS = 86_400


@dataclass(frozen=True)
class Source:
    """A rollup that can answer a query: bucket suffix, measurement, and how to read it."""

    suffix: str  # "_1d" or "_1h"
    measurement: str
    kind: str  # "traffic" (daily figures), "count" (a count per tag combination), "visits" (visit
    # figures per visit value) or "engagement"


TRAFFIC = Source("_1d", "traffic", "traffic")


@dataclass(frozen=True)
class Span:
    """[start, stop) in UTC-aware datetimes."""

    start: datetime
    stop: datetime

    def label(self) -> str:
        return f"{self.start.date().isoformat()}..{self.stop.date().isoformat()}"


@dataclass(frozen=True)
class Plan:
    sources: tuple[Source, ...]  # empty: raw points only
    rollup: Span | None  # the days the sources answer
    raw: Span | None  # the days raw points answer


Watermark = Callable[[str], datetime | None]  # bucket suffix -> complete up to (None: never ran)


def whole_hour_zone(zone: ZoneInfo, now: datetime) -> bool:
    """True when the zone's offset is whole hours, now and half a year on (summer and winter):
    only then do hourly rollups' hours fall on the site's hours."""
    offsets = {now.astimezone(zone).utcoffset(),
               (now + timedelta(days=183)).astimezone(zone).utcoffset()}
    return all(o is not None and o.total_seconds() % 3600 == 0 for o in offsets)


def rollup_sources(q: Query, hours_align: bool) -> tuple[Source, ...]:
    """The rollups that answer every metric of `q`, or () when only raw points can."""
    hourly = q.time_dimension == "time:hour"
    if hourly and not hours_align:
        return ()
    tags = q.tags
    metrics = set(q.metrics)
    sources: list[Source] = []
    engaged = metrics & ENGAGEMENT_METRICS
    metrics -= engaged
    if engaged:
        source = _engagement_source(engaged, tags, hourly)
        if source is None:
            return ()
        sources.append(source)
    if q.event_scope or "events" in metrics:
        if (metrics - {"events"} and q.event_scope) or not tags <= EVENT_TAGS:
            return ()
        sources.append(Source("_1h" if hourly else "_1d", "events", "count"))
        metrics.discard("events")
    if metrics:
        source = _pageview_source(metrics, tags, hourly, q.whole_visits)
        if source is None:
            return ()
        sources.append(source)
    return tuple(dict.fromkeys(sources))  # traffic once, even when two groups need it


def _engagement_source(engaged: set[str], tags: frozenset[str], hourly: bool) -> Source | None:
    if hourly:
        return None
    if not tags:
        return TRAFFIC
    if engaged == {"time_on_page"} and tags <= {"page"}:
        return Source("_1d", "engagement", "engagement")
    return None


def _pageview_source(metrics: set[str], tags: frozenset[str], hourly: bool,
                     whole_visits: bool) -> Source | None:
    if not tags and not hourly:
        return TRAFFIC
    if whole_visits:
        return _visit_source(metrics, tags, hourly)
    if metrics != {"pageviews"}:
        return None
    tier = "1h" if hourly else "1d"
    fitting = [(len(keep), m) for m, keep in BREAKDOWNS[tier].items() if tags <= keep]
    if not fitting:
        return None
    return Source("_" + tier, min(fitting)[1], "count")  # the fewest tags: the fewest rows


def _visit_source(metrics: set[str], tags: frozenset[str], hourly: bool) -> Source | None:
    """The visit table of the query's one visit key (whole visits, per site day), if any: one key
    per table, since distinct visitors summed over a second key could count a visitor twice."""
    if hourly or not metrics <= VISIT_METRICS:
        return None
    fitting = [m for m, keep in VISIT_BREAKDOWNS.items() if tags == keep]
    return Source("_1d", fitting[0], "visits") if fitting else None


def raw_horizon(raw_retention: int, zone: ZoneInfo, now: datetime) -> date | None:
    """The first whole site day still in the raw bucket (None: kept forever)."""
    if not raw_retention:
        return None
    oldest = now - timedelta(seconds=raw_retention)
    return oldest.astimezone(zone).date() + timedelta(days=1)


def plan(q: Query, watermark: Watermark, zone: ZoneInfo, raw_retention: int,
         now: datetime | None = None) -> Plan:
    """The buckets and days that answer `q`; QueryError when it needs raw days no longer kept."""
    now = now or datetime.now(UTC)
    first, after = q.utc_bounds()
    # A period between two datetimes starts or ends inside a day: no daily rollup has its part.
    sources = rollup_sources(q, whole_hour_zone(zone, now)) if q.period.whole_days else ()
    until = _rollups_complete_until(sources, watermark, zone)
    if until is None:
        sources, split = (), first
    else:
        split = max(first, min(after, until))
    rollup = Span(first, split) if split > first else None
    raw = Span(split, after) if after > split else None
    if raw is not None:
        _check_raw_horizon(raw.start, raw_retention, zone, now)
    return Plan(sources, rollup, raw)


def _rollups_complete_until(sources: tuple[Source, ...], watermark: Watermark,
                            zone: ZoneInfo) -> datetime | None:
    """The site midnight before which every source is complete (None: no source, or one never
    ran). Whole site days only: a day is read from one place, never half from each."""
    marks = [watermark(s.suffix) for s in sources]
    if not sources or any(m is None for m in marks):
        return None
    until = min(m for m in marks if m is not None)
    return datetime.combine(until.astimezone(zone).date(), datetime.min.time(), zone)


def _check_raw_horizon(start: datetime, raw_retention: int, zone: ZoneInfo, now: datetime) -> None:
    horizon = raw_horizon(raw_retention, zone, now)
    if horizon is not None and start.astimezone(zone).date() < horizon:
        days = raw_retention // DAY_SECONDS
        raise QueryError(
            "this query needs raw data (no rollup keeps these metrics with these dimensions "
            f"and filters, or the rollups have not reached these days), and raw data is kept "
            f"for {days} days (ANALYTICS_RAW_RETENTION): choose a date_range from "
            f"{horizon.isoformat()}, or fewer dimensions and filters")
