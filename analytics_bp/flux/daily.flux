// Daily rollups: traffic figures and one breakdown per dimension, per domain and site day.
// Runs every hour over yesterday and today so far: today's figures are at most an hour old, and
// yesterday is recomputed (late points) until it is final. Points are stamped at the day's start,
// so each run overwrites the previous run's figures for the same day.
import "array"
import "date"
import "timezone"

option task = {name: "__TASK_NAME__", every: 1h, offset: 10m}
// Days are the sites' days (ANALYTICS_TIMEZONE): windows and truncation follow this location.
option location = timezone.location(name: "__TIMEZONE__")

raw = "__RAW_BUCKET__"
out = "__DAILY_BUCKET__"
// ANALYTICS_TOP_VALUES: visitor-controlled values kept as tags per site and day, by visitors.
top = int(v: "__TOP_VALUES__")
stop = date.truncate(t: now(), unit: 1h)

// include: watermark.flux

// Yesterday and today, or every day since the last run's stop (watermark.flux), from midnight.
start = date.truncate(t: watermarkBefore(bucket: out, stop: stop,
    usual: date.sub(d: 1d, from: date.truncate(t: now(), unit: 1d))), unit: 1d)

// include: ranked.flux

// A function, not a shared stream: each branch then reads only its own field, with the filters
// pushed down into storage (a stream shared by several branches made the task three times slower).
pageviews = (field) => points(measurement: "pageview") |> filter(fn: (r) => r._field == field)

// One row per (domain, day): `fn` reduces each window, the result becomes field `field`.
daily = (tables=<-, fn, field) =>
    tables
        |> group(columns: ["domain"])
        |> window(every: 1d)
        |> fn()
        |> duplicate(column: "_start", as: "_time")
        |> set(key: "_measurement", value: "traffic")
        |> set(key: "_field", value: field)
        |> to(bucket: out)
        |> yield(name: field)

pageviews(field: "count") |> daily(fn: sum, field: "pageviews")
pageviews(field: "visitor")
    |> daily(fn: (tables=<-) => tables |> distinct() |> count(), field: "visitors")
pageviews(field: "load_ms")
    |> daily(fn: (tables=<-) => tables |> toFloat() |> quantile(q: 0.5, method: "exact_mean"), field: "load_ms_median")

// Per session and day: sessions, bounces and pages per session, in one pass (sessions.flux).
// include: sessions.flux

pageviews(field: "sess_id")
    |> sessionsPerDay()
    |> map(fn: (r) => ({r with _time: r._start, _measurement: "traffic",
        pages_per_session: float(v: r.views) / float(v: r.sessions)}))
    |> to(
        bucket: out,
        tagColumns: ["domain"],
        fieldFn: (r) => ({"sessions": r.sessions, "bounces": r.bounces, "pages_per_session": r.pages_per_session}),
    )
    |> yield(name: "sessions")

rankPages(every: 1d)
rankSources(every: 1d)
rankAgents(every: 1d)
rankCountries(every: 1d)
rankEvents(every: 1d)

// Per visit: entry and exit pages, the visit's source and UTM values (visits.flux).
// include: visit_rows.flux
// include: visits.flux

// Only in the daily rollups: time zone and platform, and UTM values (pageviews with one).
points(measurement: "pageview")
    |> filter(fn: (r) => r._field == "count" or r._field == "visitor" or r._field == "timezone"
        or r._field == "platform")
    |> ranked(every: 1d, partition: site, values: ["timezone", "platform"], name: "timezones",
        prepare: (tables=<-) => tables |> fill(column: "timezone", value: "unknown")
            |> fill(column: "platform", value: "unknown"),
        fold: (tables=<-) => tables |> set(key: "timezone", value: "(other)")
            |> set(key: "platform", value: "(other)"))
points(measurement: "pageview")
    |> filter(fn: (r) => r._field == "count" or r._field == "visitor" or r._field == "utm_source"
        or r._field == "utm_medium" or r._field == "utm_campaign")
    |> ranked(every: 1d, partition: site, values: ["utm_source", "utm_medium", "utm_campaign"],
        name: "utms",
        prepare: (tables=<-) => tables
            |> filter(fn: (r) => exists r.utm_source or exists r.utm_medium or exists r.utm_campaign)
            |> fill(column: "utm_source", value: "") |> fill(column: "utm_medium", value: "")
            |> fill(column: "utm_campaign", value: ""),
        fold: (tables=<-) => tables |> set(key: "utm_source", value: "(other)")
            |> set(key: "utm_medium", value: "(other)") |> set(key: "utm_campaign", value: "(other)"))

// Engaged time: one value per pageview and site day (engaged.flux).
// include: engaged.flux

// Stamp one aggregate per table (domain or domain and page, and day) at the day's start.
engagedDaily = (tables=<-, fn, measurement, field) =>
    tables
        |> fn()
        |> duplicate(column: "_start", as: "_time")
        |> set(key: "_measurement", value: measurement)
        |> set(key: "_field", value: field)
        |> to(bucket: out)
        |> yield(name: measurement + "_" + field)

median = (tables=<-) => tables |> quantile(q: 0.5, method: "exact_mean")
engaged |> engagedDaily(fn: count, measurement: "traffic", field: "engaged_views")
engaged |> engagedDaily(fn: median, measurement: "traffic", field: "time_on_page_median")
engaged |> engagedDaily(fn: (tables=<-) => tables |> sum() |> toInt(), measurement: "traffic", field: "visit_seconds")
engaged
    |> engagedDaily(fn: (tables=<-) => tables |> distinct(column: "sess_id") |> count(), measurement: "traffic", field: "engaged_visits")

// Per page: the top pages of the site day by distinct sessions (then by views), like the
// breakdowns (ranked.flux), so a flood of engaged-time beacons cannot grow series; a median
// cannot be summed, so the other pages get no row.
perPage = engaged
    |> fill(column: "page", value: "")
    |> group(columns: ["domain", "page", "_start", "_stop"])
union(tables: [
    perPage |> count() |> toFloat() |> set(key: "_field", value: "views"),
    perPage |> median() |> set(key: "_field", value: "median"),
    perPage |> unique(column: "sess_id") |> count(column: "sess_id")
        |> rename(columns: {sess_id: "_value"}) |> toFloat() |> set(key: "_field", value: "visits"),
])
    |> group(columns: ["domain", "_start", "_stop"])
    |> pivot(rowKey: ["page"], columnKey: ["_field"], valueColumn: "_value")
    |> sort(columns: ["visits", "views"], desc: true)
    |> limit(n: top)
    |> duplicate(column: "_start", as: "_time")
    |> set(key: "_measurement", value: "engagement")
    |> to(bucket: out, tagColumns: ["domain", "page"],
        fieldFn: (r) => ({"views": int(v: r.views), "median": r.median}))
    |> yield(name: "engagement")

// Distinct identifiers seen by the usage API: the latest count of each period, kept forever.
// Their points are stamped at the period's UTC start, so a month's count must be read from the
// month's start (a day earlier, for sites west of UTC), not from yesterday.
seenStart = date.sub(d: 1d, from: date.truncate(t: start, unit: 1mo))
from(bucket: raw)
    |> range(start: seenStart, stop: stop)
    |> filter(fn: (r) => r._measurement == "usage_seen")
    |> to(bucket: out)
    |> yield(name: "usage_seen")

markWatermark(bucket: out, stop: stop)
