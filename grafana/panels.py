"""Every Grafana panel's Flux, readable in one place (build_dashboards.py assembles the dashboards).

Every panel answers as the built-in dashboard does: from a rollup up to where its task stopped
(the watermark each run writes, flux/watermark.flux), and from raw points after it, so the hour
under way and today are in every panel, exactly. The raw part reuses the tasks' own Flux
(flux/sessions.flux, flux/visit_rows.flux, flux/engaged.flux), so a figure of today is computed
the way the daily task will compute it; tests/rollups/test_grafana.py checks both parts against
figures computed independently, and against the Stats API.

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
WITHOUT_DOMAIN = {"usage", "usage_counts", "usage_count", "usage_seen", "rejected", "mark"}

DOMAIN_FILTER = '  |> filter(fn: (r) => r.domain =~ /^${domain:regex}$/)\n'


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
# reads them. Flux refuses an empty range, so a part that must be empty reads the epoch's first
# nanosecond, where nothing is stamped (the collector stamps points with its own clock). Why not
# one nanosecond more and a filter on `_time`: that filter keeps InfluxDB from summing in storage,
# and cost the 30-day top pages 100 ms of its 130 (`make bench`, run 11).
def cut_at(bucket: str, truncate: str) -> str:
    """`cut`: where the rollup `bucket`'s task stopped (its last watermark, `truncate`d), inside
    the range; the rollup part reads [rollStart, rollStop), the raw part [rawStart, rawStop).
    Any watermark counts, later than the range too: it says everything before it is rolled up.
    `export grafana` writes the sites' time zone (ANALYTICS_TIMEZONE) into the location, so
    windows and midnights are the sites'."""
    return (
        'import "date"\n'
        'import "math"\n'
        'import "timezone"\n'
        'option location = timezone.location(name: "UTC")\n'
        f'mark = from(bucket: v.defaultBucket + "_{bucket}")\n'
        "  |> range(start: 0)\n"
        '  |> filter(fn: (r) => r._measurement == "watermark" and r._field == "count")\n'
        "  |> last()\n"
        "  |> findRecord(fn: (key) => true, idx: 0)\n"
        f"done = if exists mark._time then {truncate} else v.timeRangeStart\n"
        "cut = if done < v.timeRangeStart then v.timeRangeStart\n"
        "    else if done > v.timeRangeStop then v.timeRangeStop else done\n"
        "rollupShown = cut > v.timeRangeStart\n"
        "rawShown = cut < v.timeRangeStop\n"
        "rollStart = if rollupShown then v.timeRangeStart else 1970-01-01T00:00:00Z\n"
        "rollStop = if rollupShown then cut else 1970-01-01T00:00:00.000000001Z\n"
        "rawStart = if rawShown then cut else 1970-01-01T00:00:00Z\n"
        "rawStop = if rawShown then v.timeRangeStop else 1970-01-01T00:00:00.000000001Z\n"
    )


HOURLY_CUT = cut_at("1h", "date.truncate(t: mark._time, unit: 1h)")
# The site days before the daily task's watermark (truncated to the site's midnight) come from
# the daily rollup; the rest, always including today, from raw points, computed the way the daily
# task computes them (sessions.flux and visit_rows.flux are the task's own code).
DAILY_CUT = cut_at("1d", "date.truncate(t: mark._time, unit: 1d)")


def before_cut(bucket: str, measurement: str, fields: tuple[str, ...]) -> str:
    wanted = " or ".join(f'r._field == "{f}"' for f in fields)
    domain = "" if measurement in WITHOUT_DOMAIN else DOMAIN_FILTER
    return (
        f'from(bucket: v.defaultBucket + "_{bucket}")\n'
        "  |> range(start: rollStart, stop: rollStop)\n"
        f'  |> filter(fn: (r) => r._measurement == "{measurement}" and ({wanted}))\n'
        + domain
    )


def after_cut(measurement: str, fields: tuple[str, ...]) -> str:
    wanted = " or ".join(f'r._field == "{f}"' for f in fields)
    domain = "" if measurement in WITHOUT_DOMAIN else DOMAIN_FILTER
    return (
        "from(bucket: v.defaultBucket)\n"
        "  |> range(start: rawStart, stop: rawStop)\n"
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
    """Bounces of all visits per site day, a whole percent as the Stats API's and Plausible's
    (half to even, as ClickHouse's round on floats); a day without visits has no point."""
    rolled = (
        before_cut("1d", "traffic", ("bounces", "sessions"))
        + '  |> pivot(rowKey: ["_time"], columnKey: ["_field"], valueColumn: "_value")\n'
        + "  |> filter(fn: (r) => exists r.sessions and r.sessions > 0)\n"
        + "  |> map(fn: (r) => ({_time: r._time, domain: r.domain,\n"
        + "      _value: math.roundtoeven(x: 100.0 * float(v: r.bounces) / float(v: r.sessions))}))"
    )
    fresh = SESSIONS + ("  |> map(fn: (r) => ({_time: r._start, domain: r.domain,\n"
                        "      _value: math.roundtoeven(x: 100.0 * float(v: r.bounces)"
                        " / float(v: r.sessions))}))")
    return (
        DAILY_CUT + flux_file("sessions.flux") + both(rolled, fresh)
        + '  |> group(columns: ["domain"])\n  |> sort(columns: ["_time"])'
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
    "  |> range(start: rawStart, stop: rawStop)\n"
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
        + "  |> map(fn: (r) => ({r with bounce_rate: math.roundtoeven(x: 100.0 * float(v: r.bounces)\n"
        + "      / float(v: r.visits))}))\n"
        + f"  |> keep(columns: {keep})\n"
        + f'  |> sort(columns: ["visitors", "visits"], desc: true)\n  |> limit(n: {n})'
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
# Engaged time: the daily rollup before the cut; after it, engaged.flux (the daily task's own
# code) on raw engagement points: one value per pageview and site day.
ENGAGED = DAILY_CUT + VISIT_POINTS + flux_file("engaged.flux")
PER_TABLE_DAY = "  |> map(fn: (r) => ({_time: r._start, _value: r._value, domain: r.domain}))"

TIME_ON_PAGE_SERIES = (
    ENGAGED
    + both(before_cut("1d", "traffic", ("time_on_page_median",)) + '  |> keep(columns: ["_time", "_value", "domain"])',
           'engaged\n  |> quantile(q: 0.5, method: "exact_mean")\n' + PER_TABLE_DAY)
    + '  |> group(columns: ["domain"])\n  |> sort(columns: ["_time"])'
)

# Visit duration per day: engaged seconds over the visits that sent them (a day without engaged
# time has no point).
VISIT_DURATION = (
    ENGAGED
    + both(before_cut("1d", "traffic", ("visit_seconds", "engaged_visits"))
           + '  |> pivot(rowKey: ["_time"], columnKey: ["_field"], valueColumn: "_value")\n'
           + "  |> filter(fn: (r) => exists r.engaged_visits and r.engaged_visits > 0)\n"
           + "  |> map(fn: (r) => ({_time: r._time, domain: r.domain,\n"
           + "      _value: float(v: r.visit_seconds) / float(v: r.engaged_visits)}))",
           "union(tables: [\n"
           + '    engaged |> sum() |> toInt() |> set(key: "_field", value: "seconds"),\n'
           + '    engaged |> distinct(column: "sess_id") |> count() |> set(key: "_field", value: "visits"),\n'
           + "])\n"
           + '  |> group(columns: ["domain", "_start"])\n'
           + '  |> pivot(rowKey: ["_start"], columnKey: ["_field"], valueColumn: "_value")\n'
           + "  |> map(fn: (r) => ({_time: r._start, domain: r.domain,\n"
           + "      _value: float(v: r.seconds) / float(v: r.visits)}))")
    + '  |> group(columns: ["domain"])\n  |> sort(columns: ["_time"])'
)

# Median time on page per page over the range: the pageview-weighted median of the daily medians
# (the Stats API's time_on_page): sort a page's days by median, add up their pageviews, keep the
# first day whose running total reaches half of the page's pageviews. Days before the cut from
# the daily `engagement` rows, the rest from raw engaged time, per page and day.
TIME_ON_PAGE = (
    ENGAGED
    + 'perPage = engaged |> fill(column: "page", value: "") |> group(columns: ["domain", "page", "_start"])\n'
    + "days = "
    + both(before_cut("1d", "engagement", ("views", "median"))
           + '  |> pivot(rowKey: ["_time"], columnKey: ["_field"], valueColumn: "_value")\n'
           + '  |> map(fn: (r) => ({_time: r._time, domain: r.domain, page: r.page, views: r.views,\n'
           + "      median: r.median}))",
           "union(tables: [\n"
           + '    perPage |> count() |> toFloat() |> set(key: "_field", value: "views"),\n'
           + '    perPage |> quantile(q: 0.5, method: "exact_mean") |> set(key: "_field", value: "median"),\n'
           + "])\n"
           + '  |> group(columns: ["domain", "page", "_start"])\n'
           + '  |> pivot(rowKey: ["_start"], columnKey: ["_field"], valueColumn: "_value")\n'
           + "  |> map(fn: (r) => ({_time: r._start, domain: r.domain, page: r.page, views: int(v: r.views),\n"
           + "      median: r.median}))")
    + '  |> group(columns: ["domain", "page"])\n'
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

def events_by(columns: list[str], metric: str, n: int = 50, event: str = "") -> str:
    """Events by name and prop (or one event's rows by its prop: `event`), the daily `events`
    breakdown before the cut and raw event points after it."""
    group = f"  |> group(columns: {json.dumps(columns)})\n"
    only = f'  |> filter(fn: (r) => r.event == "{event}")\n' if event else ""
    props = tuple(c for c in columns if c not in ("domain", "event"))
    fresh = (after_cut("event", ("count", *props)) + only
             + '  |> pivot(rowKey: ["_time"], columnKey: ["_field"], valueColumn: "_value")\n'
             + "".join(f"  |> filter(fn: (r) => exists r.{p})\n" for p in props if event)
             + group + '  |> sum(column: "count")\n  |> rename(columns: {count: "_value"})\n')
    return (
        DAILY_CUT
        + both(before_cut("1d", "events", ("count",)) + only + group + "  |> sum()\n", fresh)
        + group + "  |> sum()\n" + ranked(columns, metric, n)
    )


# `count` sums of the usage API by category and event: the hourly rollup before its watermark,
# raw points after it.
USAGE_COUNTS = (
    HOURLY_CUT
    + both(before_cut("1h", "usage_counts", ("count",)) + '  |> group(columns: ["category", "event"])\n  |> sum()\n',
           after_cut("usage_count", ("count",)) + '  |> group(columns: ["category", "event"])\n  |> sum()\n')
    + '  |> group(columns: ["category", "event"])\n  |> sum()\n'
    + ranked(["category", "event"], "count", 50)
)

# The latest distinct count of each `seen` period: the daily rollup's copies before the cut, the
# raw points after it.
DISTINCT_IDS = (
    DAILY_CUT
    + both(before_cut("1d", "usage_seen", ("distinct",)), after_cut("usage_seen", ("distinct",)))
    + '  |> group(columns: ["category", "period"])\n  |> sort(columns: ["_time"])\n  |> last()\n'
    + '  |> group()\n  |> rename(columns: {_value: "distinct"})\n'
    + '  |> keep(columns: ["category", "period", "distinct"])'
)

# Marks, as annotations: the hourly rollup's copies before its watermark, raw points after it.
MARKS = (
    HOURLY_CUT
    + both(before_cut("1h", "mark", ("name",)), after_cut("mark", ("name",)))
    + '  |> keep(columns: ["_time", "_value", "category"])\n'
    + "  |> group()\n"
    + '  |> sort(columns: ["_time"])'
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
