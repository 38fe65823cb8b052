"""Every Grafana panel's Flux, readable in one place (build_dashboards.py assembles the dashboards).

Each query leaves only the columns a reader needs, named after what they hold (`page`,
`pageviews`), so a table shows no `_start`, `_stop` or `_value`; build_dashboards.py gives them
display names and units. Daily points keep the stamp the daily task gave them (the start of the
site day) and hourly sums are stamped at the start of their window, so a day is drawn where it
begins, not where aggregateWindow would end it.
"""

from __future__ import annotations

import json

# Server-side measurements have no domain tag: the domain variable does not apply to them.
WITHOUT_DOMAIN = {"usage", "usage_counts", "usage_seen", "rejected", "mark"}

DOMAIN_FILTER = '  |> filter(fn: (r) => r.domain =~ /^${domain:regex}$/)\n'


def rollup(bucket: str, measurement: str, fields: tuple[str, ...] = ("count",)) -> str:
    """The start of every panel. The domain filter is a plain tag regex (no `or not exists`), so
    InfluxDB pushes it into the storage read instead of filtering row by row in Flux."""
    wanted = " or ".join(f'r._field == "{f}"' for f in fields)
    domain = "" if measurement in WITHOUT_DOMAIN else DOMAIN_FILTER
    return (
        f'from(bucket: v.defaultBucket + "_{bucket}")\n'
        "  |> range(start: v.timeRangeStart, stop: v.timeRangeStop)\n"
        f'  |> filter(fn: (r) => r._measurement == "{measurement}" and ({wanted}))\n'
        + domain
    )


def top(bucket: str, measurement: str, columns: list[str], metric: str = "pageviews", n: int = 20,
        where: str = "") -> str:
    """The n largest sums by `columns`, as columns + `metric`; `where` is a Flux predicate on the
    rows (one event's rows, no `internal` source)."""
    cols = json.dumps(columns)
    keep = json.dumps([*columns, metric])
    return (
        rollup(bucket, measurement)
        + (f"  |> filter(fn: (r) => {where})\n" if where else "")
        + f"  |> group(columns: {cols})\n  |> sum()\n  |> group()\n"
        # a value only an earlier run of the day kept has zero rows (flux/ranked.flux)
        + "  |> filter(fn: (r) => r._value > 0)\n"
        + f'  |> rename(columns: {{_value: "{metric}"}})\n  |> keep(columns: {keep})\n'
        + f'  |> sort(columns: ["{metric}"], desc: true)\n  |> limit(n: {n})'
    )


def visit_table(measurement: str, key: str, n: int = 20, where: str = "") -> str:
    """Whole visits by one visit key (a `_1d` visit table): visitors, visits, pageviews and bounce
    rate per value over the range, the largest by visitors first, as the built-in dashboard ranks."""
    keep = json.dumps(["domain", key, "visitors", "visits", "pageviews", "bounce_rate"])
    return (
        rollup("1d", measurement, ("visitors", "visits", "pageviews", "bounces"))
        + (f"  |> filter(fn: (r) => {where})\n" if where else "")
        + f'  |> group(columns: ["domain", "{key}", "_field"])\n  |> sum()\n'
        + f'  |> pivot(rowKey: ["domain", "{key}"], columnKey: ["_field"], valueColumn: "_value")\n'
        + "  |> group()\n  |> filter(fn: (r) => r.visits > 0)\n"
        + "  |> map(fn: (r) => ({r with bounce_rate: 100.0 * float(v: r.bounces) / float(v: r.visits)}))\n"
        + f"  |> keep(columns: {keep})\n"
        + f'  |> sort(columns: ["visitors", "visits"], desc: true)\n  |> limit(n: {n})'
    )


# The hourly rollup holds every hour up to its task's last stop (its watermark); the hour under
# way, and any the task has not reached yet, come from raw points, as the built-in dashboard
# reads them. Flux refuses an empty range, so each part reads one nanosecond more than it needs
# and filters the extra instant out.
HOURLY_CUT = (
    'import "date"\n'
    'mark = from(bucket: v.defaultBucket + "_1h")\n'
    "  |> range(start: 0, stop: v.timeRangeStop)\n"
    '  |> filter(fn: (r) => r._measurement == "watermark" and r._field == "count")\n'
    "  |> last()\n"
    "  |> findRecord(fn: (key) => true, idx: 0)\n"
    "cut = if not exists mark._time or mark._time < v.timeRangeStart then v.timeRangeStart else mark._time\n"
)

# The raw measurement an hourly rollup sums (field `count`).
RAW_OF = {"pageviews": "pageview", "events": "event", "usage": "usage", "rejected": "rejected"}


def hourly(measurement: str, by: list[str]) -> str:
    """A count per Grafana window (`v.windowPeriod`), stamped at the window's start: the `_1h`
    rollup before the cut, raw points summed per hour after it."""
    group = f"  |> group(columns: {json.dumps(by)})\n"
    domain = "" if measurement in WITHOUT_DOMAIN else DOMAIN_FILTER
    rolled = (
        f'from(bucket: v.defaultBucket + "_1h")\n'
        "  |> range(start: v.timeRangeStart, stop: date.add(d: 1ns, to: cut))\n"
        f'  |> filter(fn: (r) => r._measurement == "{measurement}" and r._field == "count")\n'
        + domain + "  |> filter(fn: (r) => r._time < cut)\n" + group
    )
    fresh = (
        "from(bucket: v.defaultBucket)\n"
        "  |> range(start: cut, stop: date.add(d: 1ns, to: v.timeRangeStop))\n"
        f'  |> filter(fn: (r) => r._measurement == "{RAW_OF[measurement]}" and r._field == "count")\n'
        + domain + "  |> filter(fn: (r) => r._time < v.timeRangeStop)\n" + group
        + '  |> aggregateWindow(every: 1h, fn: sum, timeSrc: "_start", createEmpty: false)\n'
    )
    return (
        HOURLY_CUT
        + "union(tables: [\n" + indent(rolled) + ",\n" + indent(fresh) + ",\n])\n"
        + group
        + '  |> aggregateWindow(every: v.windowPeriod, fn: sum, timeSrc: "_start", createEmpty: false)\n'
        + f'  |> keep(columns: {json.dumps(["_time", "_value", *by])})'
    )


def indent(flux: str) -> str:
    return "\n".join("    " + line for line in flux.rstrip("\n").splitlines())


def daily(field: str) -> str:
    """One `_1d` traffic field per site day, at the day's start, one series per domain."""
    return (
        rollup("1d", "traffic", (field,))
        + '  |> group(columns: ["domain"])\n'
        + '  |> keep(columns: ["_time", "_value", "domain"])'
    )


def daily_ratio(numerator: str, denominator: str, scale: str = "") -> str:
    """A per-day ratio of two `_1d` traffic fields, per domain; a day without the denominator has
    no point (no visits: no bounce rate), rather than a 0 that reads as a figure."""
    return (
        rollup("1d", "traffic", (numerator, denominator))
        + '  |> pivot(rowKey: ["_time"], columnKey: ["_field"], valueColumn: "_value")\n'
        + f"  |> filter(fn: (r) => exists r.{denominator} and r.{denominator} > 0)\n"
        + f"  |> map(fn: (r) => ({{_time: r._time, domain: r.domain, _value: {scale}float(v: r.{numerator}) / float(v: r.{denominator})}}))\n"
        + '  |> group(columns: ["domain"])'
    )


# Time zones are stored as the browser gives them, minutes west of UTC (-60 for UTC+01:00); shown
# as the built-in dashboard shows them. `unknown` and `(other)` stay as they are.
ZONE_NAME = (
    'pad = (n) => if n < 10 then "0" + string(v: n) else string(v: n)\n'
    "zoneName = (z) => {\n"
    "    east = if z =~ /^-?[0-9]+$/ then 0 - int(v: z) else 0\n"
    "    a = if east < 0 then 0 - east else east\n"
    '    return if z !~ /^-?[0-9]+$/ then z\n'
    '        else "UTC" + (if east < 0 then "\u2212" else "+") + pad(n: a / 60) + ":" + pad(n: a % 60)\n'
    "}\n"
)

TIMEZONES = (
    ZONE_NAME
    + top("1d", "timezones", ["timezone", "platform"])
    + "\n  |> map(fn: (r) => ({r with timezone: zoneName(z: r.timezone)}))"
)

BOUNCE = daily_ratio("bounces", "sessions", "100.0 * ")
# Visit duration per day: the daily rollup's engaged seconds over the visits that sent them.
VISIT_DURATION = daily_ratio("visit_seconds", "engaged_visits")

# Median time on page per page over the range: the pageview-weighted median of the daily medians
# (the Stats API's time_on_page on rolled-up days): sort a page's days by median, add up their
# pageviews, keep the first day whose running total reaches half of the page's pageviews.
TIME_ON_PAGE = (
    "days = " + rollup("1d", "engagement", ("views", "median"))
    + '  |> pivot(rowKey: ["_time"], columnKey: ["_field"], valueColumn: "_value")\n'
    '  |> group(columns: ["domain", "page"])\n'
    'totals = days |> sum(column: "views") |> rename(columns: {views: "pageviews"})\n'
    "join(tables: {d: days |> sort(columns: [\"median\"]) |> cumulativeSum(columns: [\"views\"]), t: totals}, "
    'on: ["domain", "page"])\n'
    "  |> filter(fn: (r) => r.views * 2 >= r.pageviews)\n"
    '  |> first(column: "median")\n'
    "  |> map(fn: (r) => ({domain: r.domain, page: r.page, pageviews: r.pageviews,\n"
    "      time_on_page: r.median}))\n"
    "  |> group()\n"
    '  |> sort(columns: ["pageviews"], desc: true)\n'
    "  |> limit(n: 20)"
)

DISTINCT_IDS = (
    rollup("1d", "usage_seen", ("distinct",))
    + '  |> group(columns: ["category", "period"])\n  |> last()\n  |> group()\n'
    + '  |> rename(columns: {_value: "distinct"})\n'
    + '  |> keep(columns: ["category", "period", "distinct"])'
)

MARKS = (
    'from(bucket: v.defaultBucket + "_1h")\n'
    "  |> range(start: v.timeRangeStart, stop: v.timeRangeStop)\n"
    '  |> filter(fn: (r) => r._measurement == "mark" and r._field == "name")\n'
    '  |> keep(columns: ["_time", "_value", "category"])'
)

# Every site with data: one seen seconds ago is in the raw bucket before any rollup has it, one
# whose raw points have expired is in the daily rollup.
DOMAINS = (
    'import "influxdata/influxdb/schema"\n'
    "union(tables: [\n"
    '    schema.tagValues(bucket: v.defaultBucket, tag: "domain", start: -400d),\n'
    '    schema.tagValues(bucket: v.defaultBucket + "_1d", tag: "domain", start: -400d),\n'
    "])\n"
    "  |> group()\n"
    "  |> distinct()\n"
    '  |> sort()'
)
