"""The Stats API's reads: rollups and raw points into per-row, per-day parts.

Why the parts are per day: a visitor or visit is distinct per site day (the daily rollup counts
them so), so raw points are grouped by day before they are counted; a row's figure is then the
sum of its days wherever each came from (stats/metrics.py).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import replace
from datetime import date, datetime
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from . import filters as filtering
from . import flux, visits
from .metrics import Components
from .plan import Source, Span
from .query import ENGAGEMENT_METRICS, Query
from .rows import Key, key

Rows = dict[Key, Components]
Record = dict[str, Any]
Viewed = list[tuple[Record, bool]]  # pageviews with their visit's values, and whether it bounced


class Reader(Protocol):
    """What the engine needs from InfluxDB (sink.InfluxAdmin has it)."""

    def query(self, flux: str, params: dict[str, Any] | None = None) -> list[dict[str, Any]]: ...


class Reads:
    def __init__(self, reader: Reader, bucket: str, zone: ZoneInfo) -> None:
        self.reader = reader
        self.bucket = bucket
        self.zone = zone

    def _run(self, read: flux.Read) -> list[Record]:
        return self.reader.query(read.flux, read.params)

    # -- rollups -----------------------------------------------------------------------------
    def rollup(self, q: Query, source: Source, span: Span, rows: Rows) -> None:
        records = self._run(flux.rollup(q, self.bucket + source.suffix, source, span.start,
                                        span.stop))
        if source.kind == "traffic":
            self._add_traffic(q, records, rows)
        elif source.kind == "visits":
            self._add_visits(q, records, rows)
        elif source.kind == "engagement":
            self._add_engagement(q, records, rows)
        else:
            self._add_counts(q, source, records, rows)

    def _add_counts(self, q: Query, source: Source, records: list[Record], rows: Rows) -> None:
        for rec in records:
            k = key(q, rec, rec.get("_time"), self.zone)
            if k is None or not rec["_value"]:
                continue  # a zero row: a value an earlier run of the task kept (ranked.flux)
            if source.measurement == "events":
                rows[k].events += int(rec["_value"])
            else:
                rows[k].pageviews += int(rec["_value"])

    def _add_visits(self, q: Query, records: list[Record], rows: Rows) -> None:
        """A visit table's figures (one field per record) into rows; its pageviews are all in a
        visit, so they are also the views that views_per_visit divides."""
        for rec in records:
            k = key(q, rec, rec.get("_time"), self.zone)
            if k is None or not rec["_value"]:
                continue  # zero: nothing to add, and no row for a value an earlier run kept
            row, n = rows[k], int(rec["_value"])
            field = rec["_field"]
            if field == "pageviews":
                row.pageviews += n
                row.views += n
            elif field in ("visits", "visitors", "bounces"):
                setattr(row, field, getattr(row, field) + n)

    def _add_traffic(self, q: Query, records: list[Record], rows: Rows) -> None:
        """`_1d` `traffic`: the site's daily figures, one field per record."""
        days: dict[datetime, dict[str, float]] = defaultdict(dict)
        for rec in records:
            days[rec["_time"]][rec["_field"]] = rec["_value"]
        engaged_only = set(q.metrics) <= ENGAGEMENT_METRICS
        for stamp, values in days.items():
            k = key(q, {}, stamp, self.zone)
            if k is None or (engaged_only and "engaged_views" not in values):
                continue  # a day without engaged time has no row, as from raw points
            _add_day(rows[k], values)

    def _add_engagement(self, q: Query, records: list[Record], rows: Rows) -> None:
        """`_1d` `engagement` rows (pivoted): one median and pageview count per page and day."""
        for rec in records:
            k = key(q, rec, rec["_time"], self.zone)
            if k is not None and rec.get("median") is not None:
                rows[k].engaged_medians.append((float(rec["median"]), int(rec.get("views") or 0)))

    # -- raw points ----------------------------------------------------------------------------
    def raw(self, q: Query, span: Span, rows: Rows) -> None:
        # A query counting whole visits attributes the span's pageviews to their visits once, for
        # its pageviews, events and engaged time alike (each read costs the whole span).
        viewed = (list(visits.attributed(self._visit_pageviews(q, span), self.zone))
                  if q.whole_visits else None)
        if not q.event_scope and set(q.metrics) - {"events"} - ENGAGEMENT_METRICS:
            if viewed is not None:
                self._raw_visits(q, viewed, rows)
            else:
                self._raw_measurement(q, "pageview", span, rows)
        if set(q.metrics) & ENGAGEMENT_METRICS:
            self._raw_engagement(q, span, rows, viewed)
        if "events" in q.metrics or q.event_scope:
            if viewed is not None:
                self._raw_events_in_visits(q, span, viewed, rows)
            else:
                self._raw_measurement(q, "event", span, rows)

    def _raw_points(self, q: Query, measurement: str, span: Span,
                    fields: tuple[str, ...]) -> list[Record]:
        return self._run(flux.raw_points(q, self.bucket, measurement, span.start, span.stop, fields))

    def _raw_measurement(self, q: Query, measurement: str, span: Span, rows: Rows) -> None:
        """Raw points of one measurement, pivoted to one row per point, aggregated per day."""
        records = self._raw_points(q, measurement, span, ("count", "visitor", "sess_id", "load_ms"))
        counts_visitors = measurement == "event" if q.event_scope else measurement == "pageview"
        visitors: dict[tuple[Key, date], set[str]] = defaultdict(set)
        sessions: dict[tuple[Key, date], set[str]] = defaultdict(set)
        for rec in records:
            stamp: datetime = rec["_time"]
            k = key(q, rec, stamp, self.zone)
            if k is None:
                continue
            day = stamp.astimezone(self.zone).date()
            _add_point(rows[k], measurement, rec, day)
            if counts_visitors:
                if rec.get("visitor"):
                    visitors[(k, day)].add(str(rec["visitor"]))
                if rec.get("sess_id"):
                    sessions[(k, day)].add(str(rec["sess_id"]))
        if not counts_visitors:
            return
        singles = self._single_page_sessions(q, span, records) if measurement == "pageview" \
            else set()
        for (k, _day), found in visitors.items():
            rows[k].visitors += len(found)
        for (k, day), found in sessions.items():
            rows[k].visits += len(found)
            rows[k].bounces += sum(1 for s in found if (day, s) in singles)

    def _visit_pageviews(self, q: Query, span: Span) -> list[Record]:
        """The site's pageviews of the span, unfiltered, with what attributing them needs and
        nothing more: each field is a column of every row read (and pivoted) from a month of raw
        points, so the visit keys the query does not use are left out."""
        load = ("load_ms",) if "median_load_time" in q.metrics else ()
        wanted = ("count", "visitor", "sess_id", "page", *load,
                  *sorted(q.tags & flux.RAW_FIELDS["pageview"]))
        return self._raw_points(replace(q, filters=()), "pageview", span, wanted)

    def _in_visits(self, q: Query, span: Span, viewed: Viewed, measurement: str,
                   fields: tuple[str, ...]) -> list[Record]:
        """Raw points of `measurement` in the visits the query selects, each with its visit's
        values in place of its own (its session's visit that site day); a point outside any
        visit is left out."""
        found = {(rec["_time"].astimezone(self.zone).date(), str(rec["sess_id"])): rec
                 for rec, _ in viewed}
        points = self._raw_points(replace(q, filters=()), measurement, span,
                                  (*fields, "sess_id", *sorted(q.tags & flux.RAW_FIELDS[measurement])))
        out = []
        for point in points:
            visit = found.get((point["_time"].astimezone(self.zone).date(), str(point.get("sess_id"))))
            if visit is None:
                continue
            rec = {**point, **{k: visit.get(k) for k in (*visits.FROM_ENTRY, "entry_page", "exit_page")
                               if k != "visitor"}}
            if filtering.matches(q.filters, rec):
                out.append(rec)
        return out

    def _raw_events_in_visits(self, q: Query, span: Span, viewed: Viewed, rows: Rows) -> None:
        """Events of the visits a visit key selects, counted by their visit's values."""
        seen: dict[tuple[Key, date], set[str]] = defaultdict(set)
        counted: dict[tuple[Key, date], set[str]] = defaultdict(set)
        for rec in self._in_visits(q, span, viewed, "event", ("count", "visitor")):
            k = key(q, rec, rec["_time"], self.zone)
            if k is None:
                continue
            day = rec["_time"].astimezone(self.zone).date()
            rows[k].events += int(rec.get("count") or 0)
            if q.event_scope:
                seen[(k, day)].add(str(rec.get("visitor") or ""))
                counted[(k, day)].add(str(rec["sess_id"]))
        for (k, _day), found_visitors in seen.items():
            rows[k].visitors += len(found_visitors)
        for (k, _day), found_visits in counted.items():
            rows[k].visits += len(found_visits)

    def _raw_visits(self, q: Query, viewed: Viewed, rows: Rows) -> None:
        """Pageviews attributed to whole visits (stats/visits.py), then filtered and counted per
        day as the daily task's visit tables count them."""
        seen: dict[tuple[Key, date], set[str]] = defaultdict(set)
        counted: dict[tuple[Key, date], dict[str, bool]] = defaultdict(dict)
        for rec, bounced in viewed:
            k = key(q, rec, rec["_time"], self.zone)
            if k is None or not filtering.matches(q.filters, rec):
                continue
            day = rec["_time"].astimezone(self.zone).date()
            _add_point(rows[k], "pageview", rec, day)
            seen[(k, day)].add(str(rec.get("visitor") or ""))
            counted[(k, day)][str(rec["sess_id"])] = bounced
        for (k, _day), found in seen.items():
            rows[k].visitors += len(found)
        for (k, _day), found_visits in counted.items():
            rows[k].visits += len(found_visits)
            rows[k].bounces += sum(found_visits.values())

    def _raw_engagement(self, q: Query, span: Span, rows: Rows, viewed: Viewed | None) -> None:
        """Engaged time from raw points, counted as the daily rollup does: per site day, each
        pageview (session hash and number) once, with the largest running total it sent; in a
        query that counts whole visits, the engaged time of those visits, by their values."""
        fields = ("seconds", "pageview", "sess_id")
        records = (self._raw_points(q, "engagement", span, fields) if viewed is None
                   else self._in_visits(q, span, viewed, "engagement", fields))
        views: dict[tuple[date, str, int], Record] = {}
        for rec in records:
            view = (rec["_time"].astimezone(self.zone).date(), str(rec.get("sess_id")),
                    int(rec.get("pageview") or 0))
            if view not in views or int(rec.get("seconds") or 0) > int(views[view].get("seconds") or 0):
                views[view] = rec
        visits: dict[tuple[Key, date, str], int] = defaultdict(int)
        for (day, sess, _), rec in views.items():
            k = key(q, rec, rec["_time"], self.zone)
            if k is None:
                continue
            seconds = int(rec.get("seconds") or 0)
            rows[k].raw_engaged[day].append(seconds)
            visits[(k, day, sess)] += seconds
        for (k, _day, _sess), seconds in visits.items():
            rows[k].visit_seconds += seconds
            rows[k].engaged_visits += 1

    def _single_page_sessions(self, q: Query, span: Span,
                              records: list[Record]) -> set[tuple[date, str]]:
        """(day, session) pairs with exactly one pageview that day, over all the site's pages
        (with filters, read again without them: a bounce is a property of the whole session)."""
        if q.filters:
            found = self._run(flux.session_ids(q.site_id, self.bucket, span.start, span.stop))
            pairs = [(r["_time"], r["_value"]) for r in found]
        else:
            pairs = [(r["_time"], r.get("sess_id")) for r in records]
        per_session: dict[tuple[date, str], int] = defaultdict(int)
        for stamp, sess in pairs:
            if sess:
                per_session[(stamp.astimezone(self.zone).date(), str(sess))] += 1
        return {k for k, n in per_session.items() if n == 1}


def _add_day(row: Components, values: dict[str, float]) -> None:
    """One day of `_1d` `traffic` into a row."""
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


def _add_point(row: Components, measurement: str, rec: Record, day: date) -> None:
    """One raw pageview or event into a row (visitors and visits are counted per day apart)."""
    count = int(rec.get("count") or 0)
    if measurement == "event":
        row.events += count
        return
    row.pageviews += count
    if rec.get("sess_id"):
        row.views += count
    if rec.get("load_ms") is not None:
        row.raw_load[day].append(int(rec["load_ms"]))
