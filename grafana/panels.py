"""Every Grafana panel's Flux, readable in one place (build_dashboards.py assembles the dashboards).

Each query leaves only the columns a reader needs, named after what they hold (`page`,
`pageviews`), so a table shows no `_start`, `_stop` or `_value`; build_dashboards.py gives them
display names and units. Daily points keep the stamp the daily task gave them (the start of the
site day) and hourly sums are stamped at the start of their window, so a day is drawn where it
begins, not where aggregateWindow would end it.
"""

from __future__ import annotations

import json
from importlib import resources

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
    """The n largest sums by `columns` of a rollup alone (events, usage), as columns + `metric`;
    `where` is a Flux predicate on the rows (one event's rows)."""
    cols = json.dumps(columns)
    return (
        rollup(bucket, measurement)
        + (f"  |> filter(fn: (r) => {where})\n" if where else "")
        + f"  |> group(columns: {cols})\n  |> sum()\n"
        + ranked(columns, metric, n)
    )


def ranked(columns: list[str], metric: str, n: int) -> str:
    """Sums by `columns` as one table of named columns, largest first. A value only an earlier
    run of the day kept has zero rows (flux/ranked.flux): it is left out."""
    return (
        "  |> group()\n  |> filter(fn: (r) => r._value > 0)\n"
        + f'  |> rename(columns: {{_value: "{metric}"}})\n  |> keep(columns: {json.dumps([*columns, metric])})\n'
        + f'  |> sort(columns: ["{metric}"], desc: true)\n  |> limit(n: {n})'
    )


def indent(flux: str) -> str:
    return "\n".join("    " + line for line in flux.rstrip("\n").splitlines())


def both(rolled: str, fresh: str) -> str:
    return "union(tables: [\n" + indent(rolled) + ",\n" + indent(fresh) + ",\n])\n"


# The hourly rollup holds every hour up to its task's last stop (its watermark); the hour under
# way, and any the task has not reached yet, come from raw points, as the built-in dashboard
# reads them. Flux refuses an empty range, so a part that would be empty reads one nanosecond
# and filters it out.
def cut_at(bucket: str, truncate: str) -> str:
    """`cut`: where the rollup `bucket`'s task stopped (its watermark, `truncate`d), inside the
    range. `export grafana` writes the sites' time zone (ANALYTICS_TIMEZONE) into the location,
    so windows and midnights are the sites'."""
    return (
        'import "date"\n'
        'import "timezone"\n'
        'option location = timezone.location(name: "UTC")\n'
        f'mark = from(bucket: v.defaultBucket + "_{bucket}")\n'
        "  |> range(start: 0, stop: v.timeRangeStop)\n"
        '  |> filter(fn: (r) => r._measurement == "watermark" and r._field == "count")\n'
        "  |> last()\n"
        "  |> findRecord(fn: (key) => true, idx: 0)\n"
        f"done = if exists mark._time then {truncate} else v.timeRangeStart\n"
        "cut = if done < v.timeRangeStart then v.timeRangeStart else done\n"
        # the raw part's end: the range's, or an instant when the rollup reaches it
        "rawStop = if cut < v.timeRangeStop then v.timeRangeStop else date.add(d: 1ns, to: cut)\n"
    )


HOURLY_CUT = cut_at("1h", "mark._time")
# The site days before the daily task's watermark (truncated to the site's midnight) come from
# the daily rollup; the rest, always including today, from raw points, computed the way the daily
# task computes them (sessions.flux and visit_rows.flux are the task's own code).
DAILY_CUT = cut_at("1d", "date.truncate(t: mark._time, unit: 1d)")


def before_cut(bucket: str, measurement: str, fields: tuple[str, ...]) -> str:
    wanted = " or ".join(f'r._field == "{f}"' for f in fields)
    domain = "" if measurement in WITHOUT_DOMAIN else DOMAIN_FILTER
    return (
        f'from(bucket: v.defaultBucket + "_{bucket}")\n'
        "  |> range(start: v.timeRangeStart, stop: date.add(d: 1ns, to: cut))\n"
        f'  |> filter(fn: (r) => r._measurement == "{measurement}" and ({wanted}))\n'
        + domain + "  |> filter(fn: (r) => r._time < cut)\n"
    )


def after_cut(measurement: str, fields: tuple[str, ...]) -> str:
    wanted = " or ".join(f'r._field == "{f}"' for f in fields)
    domain = "" if measurement in WITHOUT_DOMAIN else DOMAIN_FILTER
    return (
        "from(bucket: v.defaultBucket)\n"
        "  |> range(start: cut, stop: rawStop)\n"
        f'  |> filter(fn: (r) => r._measurement == "{measurement}" and ({wanted}))\n'
        + domain
    )


# The raw measurement an hourly rollup sums (field `count`).
RAW_OF = {"pageviews": "pageview", "events": "event", "usage": "usage", "rejected": "rejected"}


def hourly(measurement: str, by: list[str]) -> str:
    """A count per Grafana window (`v.windowPeriod`), stamped at the window's start: the `_1h`
    rollup before the cut, raw points summed per hour after it."""
    group = f"  |> group(columns: {json.dumps(by)})\n"
    hours = '  |> aggregateWindow(every: 1h, fn: sum, timeSrc: "_start", createEmpty: false)\n'
    return (
        HOURLY_CUT
        + both(before_cut("1h", measurement, ("count",)) + group,
               after_cut(RAW_OF[measurement], ("count",)) + group + hours)
        + group
        + '  |> aggregateWindow(every: v.windowPeriod, fn: sum, timeSrc: "_start", createEmpty: false)\n'
        + f'  |> keep(columns: {json.dumps(["_time", "_value", *by])})'
    )


def flux_file(name: str) -> str:
    return (resources.files("analytics_bp") / "flux" / name).read_text()


PER_DAY = (
    "perDay = (tables=<-, fn) => tables\n"
    '  |> group(columns: ["domain"])\n'
    "  |> window(every: 1d)\n"
    "  |> fn()\n"
    "  |> map(fn: (r) => ({_time: r._start, _value: r._value, domain: r.domain}))\n"
)
SESSIONS = after_cut("pageview", ("sess_id",)) + "  |> sessionsPerDay()\n"

# A traffic field -> how raw points of a day give it (the daily task's definitions).
TODAY = {
    "visitors": after_cut("pageview", ("visitor",))
    + "  |> perDay(fn: (tables=<-) => tables |> distinct() |> count())",
    "sessions": SESSIONS + "  |> map(fn: (r) => ({_time: r._start, _value: r.sessions, domain: r.domain}))",
    "pages_per_session": SESSIONS + "  |> map(fn: (r) => ({_time: r._start, domain: r.domain,\n"
                                    "      _value: float(v: r.views) / float(v: r.sessions)}))",
    "load_ms_median": after_cut("pageview", ("load_ms",))
    + '  |> perDay(fn: (tables=<-) => tables |> toFloat() |> quantile(q: 0.5, method: "exact_mean"))',
}


def daily(field: str) -> str:
    """One traffic figure per site day, at the day's start, one series per domain: the daily
    rollup before the cut, raw points after it."""
    return (
        DAILY_CUT + PER_DAY + flux_file("sessions.flux")
        + both(before_cut("1d", "traffic", (field,)) + '  |> keep(columns: ["_time", "_value", "domain"])',
               TODAY[field])
        + '  |> group(columns: ["domain"])\n  |> sort(columns: ["_time"])'
    )


def bounce_rate() -> str:
    """Bounces of all visits per site day, in percent; a day without visits has no point."""
    rolled = (
        before_cut("1d", "traffic", ("bounces", "sessions"))
        + '  |> pivot(rowKey: ["_time"], columnKey: ["_field"], valueColumn: "_value")\n'
        + "  |> filter(fn: (r) => exists r.sessions and r.sessions > 0)\n"
        + "  |> map(fn: (r) => ({_time: r._time, domain: r.domain,\n"
        + "      _value: 100.0 * float(v: r.bounces) / float(v: r.sessions)}))"
    )
    fresh = SESSIONS + ("  |> map(fn: (r) => ({_time: r._start, domain: r.domain,\n"
                        "      _value: 100.0 * float(v: r.bounces) / float(v: r.sessions)}))")
    return (
        DAILY_CUT + flux_file("sessions.flux") + both(rolled, fresh)
        + '  |> group(columns: ["domain"])\n  |> sort(columns: ["_time"])'
    )


def daily_rollup(field: str) -> str:
    """One `_1d` traffic field per site day, at the day's start (today as of the task's last run)."""
    return (
        rollup("1d", "traffic", (field,))
        + '  |> group(columns: ["domain"])\n'
        + '  |> keep(columns: ["_time", "_value", "domain"])'
    )


def pageviews_by(measurement: str, keys: list[str], per_site: bool = False, n: int = 20,
                 shown: str = "") -> str:
    """Pageviews by one or more pageview keys: the daily breakdown `measurement` before the cut,
    raw points after it (a point lacking a key counts as "unknown", as the task counts it).
    One key is read as it is; more are pivoted into a row per pageview first. `per_site`: a row
    per site and value, else per value over the sites chosen."""
    columns = (["domain"] if per_site else []) + keys
    group = f"  |> group(columns: {json.dumps(columns)})\n"
    if len(keys) == 1:
        fresh = (after_cut("pageview", (keys[0],))
                 + f'  |> duplicate(column: "_value", as: "{keys[0]}")\n' + group + "  |> count()\n")
    else:
        fresh = (after_cut("pageview", tuple(keys))
                 + '  |> pivot(rowKey: ["_time"], columnKey: ["_field"], valueColumn: "_value")\n'
                 + "".join(f'  |> fill(column: "{k}", value: "unknown")\n' for k in keys)
                 + '  |> set(key: "_value", value: "1")\n' + group + "  |> count()\n")
    return (
        DAILY_CUT + shown
        + both(before_cut("1d", measurement, ("count",)) + group + "  |> sum()\n", fresh)
        + group + "  |> sum()\n" + ranked(columns, "pageviews", n)
    )


# Grafana's own `points` for visit_rows.flux: the raw part of the range, this site's points.
VISIT_POINTS = (
    "points = (measurement) => from(bucket: v.defaultBucket)\n"
    "  |> range(start: cut, stop: rawStop)\n"
    "  |> filter(fn: (r) => r._measurement == measurement)\n"
    + DOMAIN_FILTER
)


def visit_table(measurement: str, key: str, n: int = 20, where: str = "") -> str:
    """Whole visits by one visit key: visitors, visits, pageviews and bounce rate per value over
    the range, the largest by visitors first, as the built-in dashboard ranks. The `_1d` visit
    table before the cut; after it, the visits visit_rows.flux finds in raw points (the daily
    task's own code), with distinct visitors per day, as the table counts them."""
    fields = ("visitors", "visits", "pageviews", "bounces")
    keep = json.dumps(["domain", key, "visitors", "visits", "pageviews", "bounce_rate"])
    only = f"  |> filter(fn: (r) => {where})\n" if where else ""
    by = f'  |> group(columns: ["domain", "{key}", "_field"])\n  |> sum()\n'
    parts = [('count(column: "pageviews") |> rename(columns: {pageviews: "_value"})', "visits"),
             ('unique(column: "visitor") |> count(column: "visitor") |> rename(columns: {visitor: "_value"})',
              "visitors"),
             ('sum(column: "pageviews") |> rename(columns: {pageviews: "_value"})', "pageviews"),
             ('sum(column: "bounce") |> rename(columns: {bounce: "_value"})', "bounces")]
    fresh = ",\n".join(f'    rows |> {steps} |> set(key: "_field", value: "{name}")' for steps, name in parts)
    return (
        DAILY_CUT + VISIT_POINTS + flux_file("visit_rows.flux")
        + "rolled = " + before_cut("1d", measurement, fields) + only + by
        + f'rows = visits\n  |> fill(column: "{key}", value: "unknown")\n' + only
        + f'  |> group(columns: ["domain", "{key}", "_start"])\n'
        + "fresh = union(tables: [\n" + fresh + ",\n])\n" + by
        + "union(tables: [rolled, fresh])\n" + by
        + f'  |> pivot(rowKey: ["domain", "{key}"], columnKey: ["_field"], valueColumn: "_value")\n'
        + "  |> group()\n  |> filter(fn: (r) => r.visits > 0)\n"
        + "  |> map(fn: (r) => ({r with bounce_rate: 100.0 * float(v: r.bounces) / float(v: r.visits)}))\n"
        + f"  |> keep(columns: {keep})\n"
        + f'  |> sort(columns: ["visitors", "visits"], desc: true)\n  |> limit(n: {n})'
    )


def daily_ratio(numerator: str, denominator: str, scale: str = "") -> str:
    """A per-day ratio of two `_1d` traffic fields, per domain; a day without the denominator has
    no point (no visits: no figure), rather than a 0 that reads as one."""
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
    pageviews_by("timezones", ["timezone", "platform"], shown=ZONE_NAME)
    + "\n  |> map(fn: (r) => ({r with timezone: zoneName(z: r.timezone)}))"
)

BOUNCE = bounce_rate()
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
