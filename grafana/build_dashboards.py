"""Generate grafana/dashboards/*.json from the panel definitions below.

Why generated: every panel's Flux lives here once, readable; tests/rollups/test_rollups.py runs each
query against real rollup buckets, and checks the committed JSON matches this file's output.
Run `python grafana/build_dashboards.py` after changing a panel.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from analytics_bp.rollups import flux_string

OUT = Path(__file__).parent / "dashboards"
DS = {"type": "influxdb", "uid": "analytics-influxdb"}


# Server-side measurements have no domain tag: the domain variable does not apply to them.
WITHOUT_DOMAIN = {"usage", "usage_counts", "usage_seen", "rejected", "mark"}


def rollup(bucket: str, measurement: str, field: str = "count") -> str:
    """The start of every panel. The domain filter is a plain tag regex (no `or not exists`), so
    InfluxDB pushes it into the storage read instead of filtering row by row in Flux."""
    domain = ("" if measurement in WITHOUT_DOMAIN
              else '  |> filter(fn: (r) => r.domain =~ /^${domain:regex}$/)\n')
    return (
        f'from(bucket: v.defaultBucket + "_{bucket}")\n'
        "  |> range(start: v.timeRangeStart, stop: v.timeRangeStop)\n"
        f'  |> filter(fn: (r) => r._measurement == "{measurement}" and r._field == "{field}")\n'
        + domain
    )


def top(bucket: str, measurement: str, columns: list[str], n: int = 20, event: str = "") -> str:
    """The n largest sums by `columns`; `event` keeps one event's rows (outbound, download)."""
    cols = json.dumps(columns)
    where = f'  |> filter(fn: (r) => r.event == "{event}")\n' if event else ""
    return (
        rollup(bucket, measurement) + where
        + f"  |> group(columns: {cols})\n  |> sum()\n  |> group()\n"
        # a value only an earlier run of the day kept has zero rows (flux/ranked.flux)
        + "  |> filter(fn: (r) => r._value > 0)\n"
        + f'  |> sort(columns: ["_value"], desc: true)\n  |> limit(n: {n})'
    )


def series(bucket: str, measurement: str, by: list[str], fn: str = "sum", field: str = "count") -> str:
    return (
        rollup(bucket, measurement, field)
        + f"  |> group(columns: {json.dumps(by)})\n"
        + f"  |> aggregateWindow(every: v.windowPeriod, fn: {fn}, createEmpty: false)"
    )


def daily_ratio(numerator: str, denominator: str, scale: str = "") -> str:
    """A per-day ratio of two `_1d` traffic fields, per domain (0 on a day without the denominator)."""
    return (
        'from(bucket: v.defaultBucket + "_1d")\n'
        "  |> range(start: v.timeRangeStart, stop: v.timeRangeStop)\n"
        f'  |> filter(fn: (r) => r._measurement == "traffic" and (r._field == "{numerator}" or r._field == "{denominator}"))\n'
        '  |> filter(fn: (r) => r.domain =~ /^${domain:regex}$/)\n'
        '  |> pivot(rowKey: ["_time"], columnKey: ["_field"], valueColumn: "_value")\n'
        f"  |> map(fn: (r) => ({{_time: r._time, domain: r.domain, _value: if r.{denominator} > 0 then {scale}float(v: r.{numerator}) / float(v: r.{denominator}) else 0.0}}))\n"
        '  |> group(columns: ["domain"])'
    )


BOUNCE = daily_ratio("bounces", "sessions", "100.0 * ")
# Visit duration per day: the daily rollup's engaged seconds over the visits that sent them.
VISIT_DURATION = daily_ratio("visit_seconds", "engaged_visits")

# Median time on page per page over the range: the pageview-weighted median of the daily medians
# (the Stats API's time_on_page on rolled-up days): sort a page's days by median, add up their
# pageviews, keep the first day whose running total reaches half of the page's pageviews.
TIME_ON_PAGE = (
    'days = from(bucket: v.defaultBucket + "_1d")\n'
    "  |> range(start: v.timeRangeStart, stop: v.timeRangeStop)\n"
    '  |> filter(fn: (r) => r._measurement == "engagement")\n'
    '  |> filter(fn: (r) => r.domain =~ /^${domain:regex}$/)\n'
    '  |> pivot(rowKey: ["_time"], columnKey: ["_field"], valueColumn: "_value")\n'
    '  |> group(columns: ["domain", "page"])\n'
    'totals = days |> sum(column: "views") |> rename(columns: {views: "pageviews"})\n'
    "join(tables: {d: days |> sort(columns: [\"median\"]) |> cumulativeSum(columns: [\"views\"]), t: totals}, "
    'on: ["domain", "page"])\n'
    "  |> filter(fn: (r) => r.views * 2 >= r.pageviews)\n"
    '  |> first(column: "median")\n'
    '  |> map(fn: (r) => ({domain: r.domain, page: r.page, pageviews: r.pageviews, _value: r.median}))\n'
    "  |> group()\n"
    '  |> sort(columns: ["pageviews"], desc: true)\n'
    "  |> limit(n: 20)"
)

MARKS = (
    'from(bucket: v.defaultBucket + "_1h")\n'
    "  |> range(start: v.timeRangeStart, stop: v.timeRangeStop)\n"
    '  |> filter(fn: (r) => r._measurement == "mark" and r._field == "name")\n'
    '  |> keep(columns: ["_time", "_value", "category"])'
)

DOMAIN_VARIABLE = {
    "name": "domain", "type": "query", "datasource": DS, "includeAll": True, "multi": True,
    "current": {"text": "All", "value": "$__all"}, "refresh": 2,
    "query": 'import "influxdata/influxdb/schema"\n'
             'schema.tagValues(bucket: v.defaultBucket + "_1d", tag: "domain", '
             "start: -400d)",
}

DASHBOARDS: dict[str, dict[str, Any]] = {
    "traffic": {
        "uid": "analytics-traffic", "title": "Analytics: traffic",
        "panels": [
            ("timeseries", "Pageviews", series("1h", "pageviews", ["domain"])),
            ("timeseries", "Unique visitors per day", series("1d", "traffic", ["domain"], "max", "visitors")),
            ("timeseries", "Sessions per day", series("1d", "traffic", ["domain"], "max", "sessions")),
            ("timeseries", "Bounce rate (%)", BOUNCE),
            ("timeseries", "Pages per session", series("1d", "traffic", ["domain"], "mean", "pages_per_session")),
            ("timeseries", "Median load time (ms)", series("1d", "traffic", ["domain"], "mean", "load_ms_median")),
            ("table", "Top pages", top("1d", "pages", ["domain", "page"])),
            ("table", "Sources", top("1d", "sources", ["domain", "source"])),
            ("table", "Browsers, OS and devices", top("1d", "agents", ["browser", "os", "device"])),
            ("table", "Countries", top("1d", "countries", ["country"])),
            ("table", "Timezones and platforms", top("1d", "timezones", ["timezone", "platform"])),
            ("timeseries", "Median time on page (s)",
             series("1d", "traffic", ["domain"], "mean", "time_on_page_median")),
            ("timeseries", "Visit duration (s)", VISIT_DURATION),
            ("table", "Time on page by page (median, s)", TIME_ON_PAGE),
        ],
    },
    "events": {
        "uid": "analytics-events", "title": "Analytics: events",
        "panels": [
            ("timeseries", "Events", series("1h", "events", ["event"])),
            ("table", "Events with notes", top("1d", "events", ["event", "label"], 50)),
            ("table", "Outbound links by destination", top("1d", "events", ["domain", "destination"], 50, "outbound")),
            ("table", "Downloads by file", top("1d", "events", ["domain", "file"], 50, "download")),
        ],
    },
    "usage": {
        "uid": "analytics-usage", "title": "Analytics: server usage",
        "panels": [
            ("timeseries", "Usage by action", series("1h", "usage", ["action"])),
            ("table", "Counts by category and event", top("1h", "usage_counts", ["category", "event"], 50)),
            ("table", "Distinct identifiers per period", rollup("1d", "usage_seen", "distinct")
             + '  |> group(columns: ["category", "period"])\n  |> last()'),
            ("timeseries", "Rejected beacons by reason", series("1h", "rejected", ["reason"])),
        ],
    },
}


def panel(index: int, kind: str, title: str, query: str) -> dict[str, Any]:
    return {
        "id": index + 1, "type": kind, "title": title, "datasource": DS,
        "gridPos": {"h": 8, "w": 12, "x": 12 * (index % 2), "y": 8 * (index // 2)},
        "targets": [{"refId": "A", "datasource": DS, "query": query}],
    }


def dashboard(spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "uid": spec["uid"], "title": spec["title"], "schemaVersion": 39, "version": 1,
        "editable": True, "time": {"from": "now-30d", "to": "now"}, "tags": ["analytics"],
        "templating": {"list": [DOMAIN_VARIABLE]},
        "annotations": {"list": [{
            "name": "Marks", "enable": True, "datasource": DS, "iconColor": "purple",
            "target": {"refId": "Anno", "query": MARKS},
        }]},
        "panels": [panel(i, *p) for i, p in enumerate(spec["panels"])],
    }


def render_all() -> dict[str, str]:
    return {f"{name}.json": json.dumps(dashboard(spec), indent=2) + "\n"
            for name, spec in DASHBOARDS.items()}


def bind(query: str, bucket: str, start: str, stop: str, window: str = "1d",
         domain_regex: str = ".*") -> str:
    """Do what Grafana does before sending a panel's query: bind v.* and ${domain:regex}.

    Tests and the benchmark run panels exactly as shipped through this one function.
    """
    prelude = (f"v = {{timeRangeStart: {start}, timeRangeStop: {stop}, windowPeriod: {window}, "
               f"defaultBucket: {flux_string(bucket)}}}")
    lines = query.replace("${domain:regex}", domain_regex).splitlines()
    imports = [ln for ln in lines if ln.startswith("import ")]
    rest = [ln for ln in lines if not ln.startswith("import ")]
    return "\n".join([*imports, prelude, *rest])


def panel_query(filename: str, title: str) -> str:
    """The first query of the panel `title` in the committed dashboard `filename`."""
    board = json.loads((OUT / filename).read_text())
    return next(p["targets"][0]["query"] for p in board["panels"] if p["title"] == title)


if __name__ == "__main__":
    OUT.mkdir(exist_ok=True)
    for filename, text in render_all().items():
        (OUT / filename).write_text(text)
        print("wrote", OUT / filename)
