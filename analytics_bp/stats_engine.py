"""Answer a parsed Stats API query: exact now (raw points), cheap later (rollups).

How: every metric is built from per-day components (pageviews, daily distinct visitors, daily
sessions, bounces, views in sessions, events, load times), so days read from a rollup and days read
from raw points add up exactly. The planner picks, for the query's metrics, dimensions and filters,
the rollup that can answer them (docs/schema.md, "Which bucket answers what"); days the rollup
tasks have finished come from it, the rest (today, and anything not rolled up yet) from the raw
bucket. A query no rollup can answer is answered from raw points while they exist; past
ANALYTICS_RAW_RETENTION it is refused with the reason.

Only names from stats_query's vocabularies shape the Flux text; every caller value (site, filter
values, times, bucket) is passed as a query parameter.
"""

from __future__ import annotations

import json
import statistics
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from . import schema
from .beacons import domain_matches
from .expiring import Expiring
from .settings import Config
from .stats_query import ENGAGEMENT_METRICS, TAG_DIMENSIONS, TIME_DIMENSIONS, Filter, Query, QueryError

DAILY_BREAKDOWNS = schema.daily_breakdowns()  # 1d measurement -> the tags it keeps besides domain
HOURLY_PAGEVIEW_TAGS = schema.hourly_pageview_tags()
EVENT_TAGS = frozenset(schema.EVENT_ROLLUP_TAGS)
REALTIME_MINUTES = 5


class Reader(Protocol):
    """What the engine needs from InfluxDB (sink.InfluxAdmin has it)."""

    def query(self, flux: str, params: dict[str, Any] | None = None) -> list[dict[str, Any]]: ...


@dataclass(frozen=True)
class Source:
    """A rollup that can answer a query: bucket suffix, measurement, and how to read it."""

    suffix: str  # "_1d" or "_1h"
    measurement: str
    kind: str  # "traffic" (daily figures), "count" (a count per tag combination) or "engagement"


TRAFFIC = Source("_1d", "traffic", "traffic")


@dataclass
class Components:
    """Additive parts of every metric for one result row."""

    pageviews: int = 0
    visitors: int = 0
    visits: int = 0
    bounces: int = 0
    views: int = 0
    events: int = 0
    raw_load: dict[date, list[int]] = field(default_factory=lambda: defaultdict(list))
    day_medians: list[tuple[float, int]] = field(default_factory=list)
    raw_engaged: dict[date, list[int]] = field(default_factory=lambda: defaultdict(list))
    engaged_medians: list[tuple[float, int]] = field(default_factory=list)
    visit_seconds: int = 0
    engaged_visits: int = 0

    def median_load(self) -> float | None:
        return combined_median(self.raw_load, self.day_medians)

    def time_on_page(self) -> float | None:
        return combined_median(self.raw_engaged, self.engaged_medians)

    def visit_duration(self) -> int | None:
        """Mean engaged seconds per visit that sent engaged time (exact across days: both parts
        are sums)."""
        return round(self.visit_seconds / self.engaged_visits) if self.engaged_visits else None


def combined_median(raw: dict[date, list[int]], day_medians: list[tuple[float, int]]) -> float | None:
    """Exact median of raw values; with rolled-up days, the count-weighted median of daily medians
    (a daily rollup keeps one exact median per day, not every value)."""
    if not day_medians:
        values = [v for day in raw.values() for v in day]
        return float(statistics.median(values)) if values else None
    return weighted_median(day_medians + [(float(statistics.median(v)), len(v))
                                          for v in raw.values() if v])


def weighted_median(pairs: list[tuple[float, int]]) -> float | None:
    total = sum(w for _, w in pairs)
    if total <= 0:
        return None
    running = 0
    for value, weight in sorted(pairs):
        running += weight
        if running * 2 >= total:
            return value
    return None  # pragma: no cover - the loop always returns


@dataclass(frozen=True)
class Plan:
    sources: tuple[Source, ...]  # empty: raw points only
    rollup_until: datetime | None  # days before this (site midnight) come from the rollups


class Watermarks:
    """Up to when each rollup is complete, from its task's last finished run (cached briefly)."""

    def __init__(self, tasks: Callable[[], list[dict[str, Any]]], bucket: str, ttl: float = 30) -> None:
        self._bucket = bucket
        self._marks = Expiring(lambda: self._read(tasks()), ttl)

    @staticmethod
    def _read(tasks: list[dict[str, Any]]) -> dict[str, datetime]:
        # a run covers the complete hours before its scheduled time
        return {t["name"]: t["last_run"].replace(minute=0, second=0, microsecond=0)
                for t in tasks if isinstance(t.get("last_run"), datetime)}

    def __call__(self, suffix: str) -> datetime | None:
        name = {"_1d": "daily", "_1h": "hourly"}[suffix]
        return self._marks().get(f"{self._bucket}_{name}")


class Engine:
    def __init__(self, cfg: Config, reader: Reader,
                 watermark: Callable[[str], datetime | None]) -> None:
        self.cfg = cfg
        self.reader = reader
        self.watermark = watermark
        self.zone = ZoneInfo(cfg.timezone)
        self.sites = Expiring(self._find_sites, ttl=60)  # asked by every query: read once a minute

    # -- planning ---------------------------------------------------------------------------
    def _whole_hour_zone(self) -> bool:
        now = datetime.now(UTC)
        offsets = {now.astimezone(self.zone).utcoffset(), (now + timedelta(days=183))
                   .astimezone(self.zone).utcoffset()}
        return all(o is not None and o.total_seconds() % 3600 == 0 for o in offsets)

    def rollup_sources(self, q: Query) -> tuple[Source, ...]:
        """The rollups that answer every metric of `q`, or () when only raw points can."""
        hourly = q.time_dimension == "time:hour"
        if hourly and not self._whole_hour_zone():
            return ()
        tags = q.tags
        metrics = set(q.metrics)
        sources: list[Source] = []
        engaged = metrics & ENGAGEMENT_METRICS
        metrics -= engaged
        if engaged:
            if hourly:
                return ()
            if not tags:
                sources.append(TRAFFIC)
            elif engaged == {"time_on_page"} and tags <= {"page"}:
                sources.append(Source("_1d", "engagement", "engagement"))
            else:
                return ()
        if q.event_scope or "events" in metrics:
            if metrics - {"events"} and q.event_scope:
                return ()
            if not tags <= EVENT_TAGS:
                return ()
            sources.append(Source("_1h" if hourly else "_1d", "events", "count"))
            metrics.discard("events")
        if metrics:
            if not tags and not hourly:
                sources.append(TRAFFIC)
            elif metrics == {"pageviews"}:
                daily = next((m for m, keep in DAILY_BREAKDOWNS.items() if tags <= keep), None)
                if daily and not hourly:
                    sources.append(Source("_1d", daily, "count"))
                elif tags <= HOURLY_PAGEVIEW_TAGS:
                    sources.append(Source("_1h", "pageviews", "count"))
                else:
                    return ()
            else:
                return ()
        return tuple(dict.fromkeys(sources))  # traffic once, even when two groups need it

    def plan(self, q: Query) -> Plan:
        sources = self.rollup_sources(q)
        marks = [self.watermark(s.suffix) for s in sources]
        if not sources or any(m is None for m in marks):
            return Plan((), None)
        until = min(m for m in marks if m is not None)
        local_midnight = datetime.combine(until.astimezone(self.zone).date(), datetime.min.time(),
                                          self.zone)
        return Plan(sources, local_midnight)

    def raw_horizon(self) -> date | None:
        """The first whole site day still in the raw bucket (None: kept forever)."""
        if not self.cfg.raw_retention:
            return None
        oldest = datetime.now(UTC) - timedelta(seconds=self.cfg.raw_retention)
        return oldest.astimezone(self.zone).date() + timedelta(days=1)

    # -- answering ----------------------------------------------------------------------------
    def run(self, q: Query) -> dict[str, Any]:
        first, after = q.utc_bounds()
        plan = self.plan(q)
        split = after if plan.rollup_until is None else max(first, min(after, plan.rollup_until))
        if not plan.sources:
            split = first
        rows: dict[tuple[str, ...], Components] = defaultdict(Components)
        answered: dict[str, str] = {}
        if split > first:
            for source in plan.sources:
                self._read_rollup(q, source, first, split, rows)
            answered["rollups"] = f"{first.date().isoformat()}..{split.date().isoformat()}"
        if after > split:
            self._check_raw_horizon(q, split)
            self._read_raw(q, split, after, rows)
            answered["raw"] = f"{split.date().isoformat()}..{after.date().isoformat()}"
        return self._answer(q, rows, plan, answered)

    def _check_raw_horizon(self, q: Query, start: datetime) -> None:
        horizon = self.raw_horizon()
        if horizon is not None and start.astimezone(self.zone).date() < horizon:
            days = self.cfg.raw_retention // 86400
            raise QueryError(
                "this query needs raw data (no rollup keeps these metrics with these dimensions "
                f"and filters, or the rollups have not reached these days), and raw data is kept "
                f"for {days} days (ANALYTICS_RAW_RETENTION): choose a date_range from "
                f"{horizon.isoformat()}, or fewer dimensions and filters")

    def realtime_visitors(self, site: str) -> int:
        flux = (f'from(bucket: bucket) |> range(start: -{REALTIME_MINUTES}m) '
                '|> filter(fn: (r) => r._measurement == "pageview" and r._field == "visitor" '
                'and r.domain == site) |> group() |> distinct() |> count()')
        rows = self.reader.query(flux, {"bucket": self.cfg.bucket, "site": site})
        return int(rows[0]["_value"]) if rows else 0

    def first_day(self, site: str) -> date | None:
        """The first site day with data (for date_range "all")."""
        # The daily rollup holds every finished day; raw points are read only when it has none
        # (a new install), with first() per series, which InfluxDB answers from its index.
        for bucket, measurement, field_name in ((self.cfg.rollup_buckets["1d"], "traffic", "pageviews"),
                                                (self.cfg.bucket, "pageview", "count")):
            rows = self._rows_if_bucket(
                'from(bucket: bucket) |> range(start: 0) |> filter(fn: (r) => r._measurement == m '
                'and r._field == f and r.domain == site) |> first() |> keep(columns: ["_time"])',
                {"bucket": bucket, "m": measurement, "f": field_name, "site": site})
            if rows:
                first: datetime = min(r["_time"] for r in rows)
                return first.astimezone(self.zone).date()
        return None

    def sites_with(self, site: object) -> list[str]:
        """The sites, read again (at most every 2 s) when `site` would be a new host under a
        wildcard domain: a new site answers seconds after its first visit, not a minute later."""
        known = self.sites()
        patterns = tuple(d for d in self.cfg.permitted_domains if d.startswith("*."))
        if isinstance(site, str) and site not in known and domain_matches(site, patterns):
            known = self.sites.refresh(min_age=2.0)
        return known

    def _find_sites(self) -> list[str]:
        """Permitted exact hosts, plus hosts seen under a wildcard in the last 400 days."""
        exact = [d for d in self.cfg.permitted_domains if not d.startswith("*.")]
        if len(exact) == len(self.cfg.permitted_domains):
            return sorted(exact)
        seen: set[str] = set()
        for bucket, days in ((self.cfg.rollup_buckets["1d"], 400), (self.cfg.bucket, 2)):
            rows = self._rows_if_bucket(
                'import "influxdata/influxdb/schema"\n'
                f'schema.tagValues(bucket: bucket, tag: "domain", start: -{days}d)', {"bucket": bucket})
            seen |= {str(r["_value"]) for r in rows}
        patterns = tuple(d for d in self.cfg.permitted_domains if d.startswith("*."))
        return sorted(set(exact) | {d for d in seen if domain_matches(d, patterns)})

    def usage(self, first: date, last: date) -> dict[str, Any]:
        """Server-side usage for the dashboard: actions, counts and marks in [first, last].

        Hours the hourly task has finished come from `_1h`, later ones from raw points."""
        start = datetime.combine(first, datetime.min.time(), self.zone)
        stop = datetime.combine(last + timedelta(days=1), datetime.min.time(), self.zone)
        mark = self.watermark("_1h")
        split = max(start, min(stop, mark)) if mark is not None else start
        actions: dict[str, int] = defaultdict(int)
        counts: dict[tuple[str, str], int] = defaultdict(int)
        marks: list[dict[str, Any]] = []
        parts = ((self.cfg.rollup_buckets["1h"], start, split, ("usage", "usage_counts")),
                 (self.cfg.bucket, split, stop, ("usage", "usage_count")))
        for bucket, a, b, (m_usage, m_counts) in parts:
            if b <= a:
                continue
            params = {"bucket": bucket, "start": a, "stop": b, "mu": m_usage, "mc": m_counts}
            for rec in self.reader.query(
                    "from(bucket: bucket) |> range(start: start, stop: stop) "
                    '|> filter(fn: (r) => (r._measurement == mu or r._measurement == mc) '
                    'and r._field == "count") |> group(columns: ["_measurement", "action", '
                    '"category", "event"]) |> sum()', params):
                if rec["_measurement"] == m_usage:
                    actions[str(rec.get("action"))] += int(rec["_value"])
                else:
                    counts[(str(rec.get("category")), str(rec.get("event")))] += int(rec["_value"])
            marks += [{"time": r["_time"].isoformat(), "name": r["_value"], "category": r.get("category")}
                      for r in self.reader.query(
                          "from(bucket: bucket) |> range(start: start, stop: stop) "
                          '|> filter(fn: (r) => r._measurement == "mark" and r._field == "name") '
                          "|> group()", params)]
        return {
            "date_range": [first.isoformat(), last.isoformat()],
            "actions": sorted(([k, v] for k, v in actions.items()), key=lambda r: (-r[1], r[0])),
            "counts": sorted(([c, e, v] for (c, e), v in counts.items()), key=lambda r: (-r[2], r[0], r[1])),
            "marks": sorted(marks, key=lambda m: m["time"]),
        }

    def _rows_if_bucket(self, flux: str, params: dict[str, Any]) -> list[dict[str, Any]]:
        """Rows, or none when the bucket does not exist yet (`flask analytics setup` not run)."""
        try:
            return self.reader.query(flux, params)
        except Exception as err:
            if "could not find bucket" not in str(err):
                raise
            return []

    # -- Flux ----------------------------------------------------------------------------------
    @staticmethod
    def _filter_expr(filters: Iterable[Filter], params: dict[str, Any]) -> str:
        """`filter(fn:)` body for the query's filters; values go in as parameters p0, p1, …"""
        clauses = []
        for f in filters:
            names = []
            for value in f.values:
                name = f"p{len(params)}"
                params[name] = value.lower() if f.op == "contains" else value
                names.append(name)
            tag = f"r.{f.tag}"
            if f.op == "is":
                clauses.append("(" + " or ".join(f"{tag} == {n}" for n in names) + ")")
            elif f.op == "is_not":
                clauses.append(f"(not exists {tag} or (" + " and ".join(
                    f"{tag} != {n}" for n in names) + "))")
            else:
                clauses.append(f"(exists {tag} and (" + " or ".join(
                    f"strings.containsStr(v: strings.toLower(v: {tag}), substr: {n})"
                    for n in names) + "))")
        return " and ".join(clauses) or "true"

    def _read(self, flux: str, params: dict[str, Any]) -> list[dict[str, Any]]:
        return self.reader.query('import "strings"\n' + flux, params)

    def _read_rollup(self, q: Query, source: Source, start: datetime, stop: datetime,
                     rows: dict[tuple[str, ...], Components]) -> None:
        params: dict[str, Any] = {"bucket": self.cfg.bucket + source.suffix, "site": q.site_id,
                                  "start": start, "stop": stop, "m": source.measurement}
        where = self._filter_expr(q.filters, params)
        flux = ("from(bucket: bucket) |> range(start: start, stop: stop) "
                "|> filter(fn: (r) => r._measurement == m and r.domain == site) "
                f"|> filter(fn: (r) => {where})")
        if source.kind == "count" and q.time_dimension is None:
            # Sum in InfluxDB: one row per combination instead of one per day and combination.
            tags = [TAG_DIMENSIONS[d] for d in q.dimensions]
            flux += f" |> group(columns: {json.dumps(tags)}) |> sum() |> group()"
        elif source.kind == "engagement":
            # One row per page and day, and only the four columns used: a month of a site's pages
            # is thousands of rows, and the client's cost is per cell.
            flux += (' |> pivot(rowKey: ["_time"], columnKey: ["_field"], valueColumn: "_value") '
                     '|> keep(columns: ["_time", "page", "median", "views"]) |> group()')
        records = self._read(flux, params)
        if source.kind == "traffic":
            self._add_traffic(q, records, rows)
            return
        if source.kind == "engagement":
            self._add_engagement(q, records, rows)
            return
        for rec in records:
            key = self._key(q, rec, rec.get("_time"))
            if key is None:
                continue
            if source.measurement == "events":
                rows[key].events += int(rec["_value"])
            else:
                rows[key].pageviews += int(rec["_value"])

    def _add_traffic(self, q: Query, records: list[dict[str, Any]],
                     rows: dict[tuple[str, ...], Components]) -> None:
        days: dict[datetime, dict[str, float]] = defaultdict(dict)
        for rec in records:
            days[rec["_time"]][rec["_field"]] = rec["_value"]
        engaged_only = set(q.metrics) <= ENGAGEMENT_METRICS
        for stamp, values in days.items():
            key = self._key(q, {}, stamp)
            if key is None or (engaged_only and "engaged_views" not in values):
                continue  # a day without engaged time has no row, as from raw points
            row = rows[key]
            pageviews = int(values.get("pageviews", 0))
            sessions = int(values.get("sessions", 0))
            row.pageviews += pageviews
            row.visitors += int(values.get("visitors", 0))
            row.visits += sessions
            row.bounces += int(values.get("bounces", 0))
            row.views += round(float(values.get("pages_per_session", 0)) * sessions)
            if "load_ms_median" in values:
                row.day_medians.append((float(values["load_ms_median"]), pageviews))
            if "time_on_page_median" in values:
                row.engaged_medians.append((float(values["time_on_page_median"]),
                                            int(values.get("engaged_views", 0))))
            row.visit_seconds += int(values.get("visit_seconds", 0))
            row.engaged_visits += int(values.get("engaged_visits", 0))

    def _add_engagement(self, q: Query, records: list[dict[str, Any]],
                        rows: dict[tuple[str, ...], Components]) -> None:
        """`_1d` `engagement` rows (pivoted): one median and pageview count per page and day."""
        for rec in records:
            key = self._key(q, rec, rec["_time"])
            if key is not None and rec.get("median") is not None:
                rows[key].engaged_medians.append((float(rec["median"]), int(rec.get("views") or 0)))

    def _read_raw(self, q: Query, start: datetime, stop: datetime,
                  rows: dict[tuple[str, ...], Components]) -> None:
        if not q.event_scope and set(q.metrics) - {"events"} - ENGAGEMENT_METRICS:
            self._raw_measurement(q, "pageview", start, stop, rows)
        if set(q.metrics) & ENGAGEMENT_METRICS:
            self._raw_engagement(q, start, stop, rows)
        if "events" in q.metrics or q.event_scope:
            self._raw_measurement(q, "event", start, stop, rows)

    def _raw_points(self, q: Query, measurement: str, start: datetime, stop: datetime,
                    fields: tuple[str, ...]) -> list[dict[str, Any]]:
        """The site's raw points of one measurement in [start, stop) passing the query's filters,
        pivoted to one row per point with `fields` (names from this module) as columns."""
        params: dict[str, Any] = {"bucket": self.cfg.bucket, "site": q.site_id, "start": start,
                                  "stop": stop, "m": measurement}
        where = self._filter_expr(q.filters, params)
        picked = " or ".join(f'r._field == "{name}"' for name in fields)
        return self._read(
            "from(bucket: bucket) |> range(start: start, stop: stop) "
            f"|> filter(fn: (r) => r._measurement == m and r.domain == site and ({picked})) "
            f"|> filter(fn: (r) => {where}) "
            '|> pivot(rowKey: ["_time"], columnKey: ["_field"], valueColumn: "_value") '
            '|> drop(columns: ["_start", "_stop", "_measurement"]) |> group()', params)

    def _raw_measurement(self, q: Query, measurement: str, start: datetime, stop: datetime,
                         rows: dict[tuple[str, ...], Components]) -> None:
        """Raw points of one measurement, pivoted to one row per point, aggregated per day."""
        records = self._raw_points(q, measurement, start, stop,
                                   ("count", "visitor", "sess_id", "load_ms"))
        counts_visitors = measurement == "event" if q.event_scope else measurement == "pageview"
        visitors: dict[tuple[tuple[str, ...], date], set[str]] = defaultdict(set)
        sessions: dict[tuple[tuple[str, ...], date], set[str]] = defaultdict(set)
        for rec in records:
            stamp: datetime = rec["_time"]
            key = self._key(q, rec, stamp)
            if key is None:
                continue
            day = stamp.astimezone(self.zone).date()
            row = rows[key]
            sess = rec.get("sess_id")
            count = int(rec.get("count") or 0)
            if measurement == "event":
                row.events += count
            else:
                row.pageviews += count
                if sess:
                    row.views += count
                if rec.get("load_ms") is not None:
                    row.raw_load[day].append(int(rec["load_ms"]))
            if counts_visitors:
                if rec.get("visitor"):
                    visitors[(key, day)].add(str(rec["visitor"]))
                if sess:
                    sessions[(key, day)].add(str(sess))
        if not counts_visitors:
            return
        singles = self._single_page_sessions(q, start, stop, records) if measurement == "pageview" \
            else set()
        for (key, _day), found in visitors.items():
            rows[key].visitors += len(found)
        for (key, day), found in sessions.items():
            rows[key].visits += len(found)
            rows[key].bounces += sum(1 for s in found if (day, s) in singles)

    def _raw_engagement(self, q: Query, start: datetime, stop: datetime,
                        rows: dict[tuple[str, ...], Components]) -> None:
        """Engaged time from raw points, counted as the daily rollup does: per site day, each
        pageview (session hash and number) once, with the largest running total it sent."""
        records = self._raw_points(q, "engagement", start, stop, ("seconds", "pageview", "sess_id"))
        views: dict[tuple[date, str, int], dict[str, Any]] = {}
        for rec in records:
            view = (rec["_time"].astimezone(self.zone).date(), str(rec.get("sess_id")),
                    int(rec.get("pageview") or 0))
            if view not in views or int(rec.get("seconds") or 0) > int(views[view].get("seconds") or 0):
                views[view] = rec
        visits: dict[tuple[tuple[str, ...], date, str], int] = defaultdict(int)
        for (day, sess, _), rec in views.items():
            key = self._key(q, rec, rec["_time"])
            if key is None:
                continue
            seconds = int(rec.get("seconds") or 0)
            rows[key].raw_engaged[day].append(seconds)
            visits[(key, day, sess)] += seconds
        for (key, _day, _sess), seconds in visits.items():
            rows[key].visit_seconds += seconds
            rows[key].engaged_visits += 1

    def _single_page_sessions(self, q: Query, start: datetime, stop: datetime,
                              records: list[dict[str, Any]]) -> set[tuple[date, str]]:
        """(day, session) pairs with exactly one pageview that day, over all the site's pages
        (with filters, read again without them: a bounce is a property of the whole session)."""
        if q.filters:
            records = self._read(
                "from(bucket: bucket) |> range(start: start, stop: stop) "
                '|> filter(fn: (r) => r._measurement == "pageview" and r.domain == site '
                'and r._field == "sess_id") |> keep(columns: ["_time", "_value"]) |> group()',
                {"bucket": self.cfg.bucket, "site": q.site_id, "start": start, "stop": stop})
            pairs = [(r["_time"], r["_value"]) for r in records]
        else:
            pairs = [(r["_time"], r.get("sess_id")) for r in records]
        per_session: dict[tuple[date, str], int] = defaultdict(int)
        for stamp, sess in pairs:
            if sess:
                per_session[(stamp.astimezone(self.zone).date(), str(sess))] += 1
        return {k for k, n in per_session.items() if n == 1}

    # -- rows ---------------------------------------------------------------------------------
    def _time_label(self, dimension: str, stamp: datetime) -> str:
        local = stamp.astimezone(self.zone)
        if dimension == "time:hour":
            return local.strftime("%Y-%m-%d %H:00:00")
        if dimension == "time:day":
            return local.date().isoformat()
        return local.date().replace(day=1).isoformat()

    def _key(self, q: Query, rec: dict[str, Any], stamp: datetime | None) -> tuple[str, ...] | None:
        """The row's dimension values; None when the point lacks one (no UTM, no note label)."""
        out = []
        for dim in q.dimensions:
            if dim in TIME_DIMENSIONS:
                assert stamp is not None  # rows of a query by time keep their time
                out.append(self._time_label(dim, stamp))
                continue
            value = rec.get(TAG_DIMENSIONS[dim])
            if value is None or value == "":
                return None
            out.append(str(value))
        return tuple(out)

    def time_labels(self, q: Query) -> list[str]:
        dim = q.time_dimension
        if dim is None:
            return []
        first, after = q.utc_bounds()
        step = timedelta(hours=1) if dim == "time:hour" else timedelta(days=1)
        labels: list[str] = []
        moment = first.astimezone(UTC)
        while moment < after:
            label = self._time_label(dim, moment)
            if not labels or labels[-1] != label:
                labels.append(label)
            moment += step
        return labels

    @staticmethod
    def metric(name: str, c: Components) -> float | int | None:
        if name == "views_per_visit":
            return round(c.views / c.visits, 2) if c.visits else 0.0
        if name == "bounce_rate":
            return round(100 * c.bounces / c.visits, 1) if c.visits else 0.0
        if name == "median_load_time":
            return c.median_load()
        if name == "time_on_page":
            return c.time_on_page()
        if name == "visit_duration":
            return c.visit_duration()
        return int(getattr(c, name))

    def _answer(self, q: Query, rows: dict[tuple[str, ...], Components], plan: Plan,
                answered: dict[str, str]) -> dict[str, Any]:
        if not q.dimensions and not rows:
            rows[()] = Components()
        table = sorted((([self.metric(m, c) for m in q.metrics], list(key))
                        for key, c in rows.items()), key=lambda r: r[1])
        for name, direction in reversed(q.order_by):  # stable sorts: the first key sorts last
            if name in q.metrics:
                i = q.metrics.index(name)
                table.sort(key=lambda r: r[0][i] or 0, reverse=direction == "desc")
            else:
                i = q.dimensions.index(name)
                table.sort(key=lambda r: r[1][i], reverse=direction == "desc")
        results = [{"metrics": m, "dimensions": d} for m, d in table]
        meta: dict[str, Any] = {
            "time_zone": q.tz,
            "answered_from": {
                "rollups": [self.cfg.bucket + s.suffix + ":" + s.measurement for s in plan.sources]
                if "rollups" in answered else [],
                "rollup_days": answered.get("rollups"),
                "raw_days": answered.get("raw"),
            },
        }
        if q.total_rows:
            meta["total_rows"] = len(results)
        if q.time_labels:
            meta["time_labels"] = self.time_labels(q)
        page = results[q.offset: q.offset + q.limit]
        return {"results": page, "meta": meta, "query": q.as_json()}
