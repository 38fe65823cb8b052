// Daily rollups: traffic figures and one breakdown per dimension, per domain and UTC day.
// Runs every hour over yesterday and today so far: today's figures are at most an hour old, and
// yesterday is recomputed (late points) until it is final. Points are stamped at the day's start,
// so each run overwrites the previous run's figures for the same day.
import "date"

option task = {name: "__TASK_NAME__", every: 1h, offset: 10m}

raw = "__RAW_BUCKET__"
out = "__DAILY_BUCKET__"
stop = date.truncate(t: now(), unit: 1h)
start = date.sub(d: 1d, from: date.truncate(t: now(), unit: 1d))

pageviews = from(bucket: raw)
    |> range(start: start, stop: stop)
    |> filter(fn: (r) => r._measurement == "pageview")

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

pageviews |> filter(fn: (r) => r._field == "count") |> daily(fn: sum, field: "pageviews")
pageviews
    |> filter(fn: (r) => r._field == "visitor")
    |> daily(fn: (tables=<-) => tables |> unique() |> count(), field: "visitors")
pageviews
    |> filter(fn: (r) => r._field == "load_ms")
    |> daily(fn: (tables=<-) => tables |> toFloat() |> quantile(q: 0.5, method: "exact_mean"), field: "load_ms_median")

// Per session and day: how many pages. Sessions, bounces (one page) and pages per session.
perSession = pageviews
    |> filter(fn: (r) => r._field == "sess_id")
    |> group(columns: ["domain"])
    |> window(every: 1d)
    |> duplicate(column: "_value", as: "sess")
    |> group(columns: ["domain", "_start", "_stop", "sess"])
    |> count()
    |> group(columns: ["domain", "_start", "_stop"])

sessionFigure = (tables=<-, fn, field) =>
    tables
        |> fn()
        |> duplicate(column: "_start", as: "_time")
        |> set(key: "_measurement", value: "traffic")
        |> set(key: "_field", value: field)
        |> to(bucket: out)
        |> yield(name: field)

perSession |> sessionFigure(fn: count, field: "sessions")
perSession |> sessionFigure(fn: mean, field: "pages_per_session")
perSession
    |> map(fn: (r) => ({r with _value: if r._value == 1 then 1 else 0}))
    |> sessionFigure(fn: sum, field: "bounces")

breakdown = (tables=<-, columns, name) =>
    tables
        |> group(columns: columns)
        |> aggregateWindow(every: 1d, fn: sum, timeSrc: "_start", createEmpty: false)
        |> set(key: "_measurement", value: name)
        |> set(key: "_field", value: "count")
        |> to(bucket: out)
        |> yield(name: name)

counts = pageviews |> filter(fn: (r) => r._field == "count")

counts |> breakdown(columns: ["domain", "page"], name: "pages")
counts |> breakdown(columns: ["domain", "source"], name: "sources")
counts |> breakdown(columns: ["domain", "browser", "os", "device"], name: "agents")
counts |> breakdown(columns: ["domain", "country"], name: "countries")
counts |> breakdown(columns: ["domain", "timezone", "platform"], name: "timezones")

from(bucket: raw)
    |> range(start: start, stop: stop)
    |> filter(fn: (r) => r._measurement == "event" and r._field == "count")
    |> breakdown(columns: ["domain", "event", "label"], name: "events")

// Distinct identifiers seen by the usage API: the latest count of each period, kept forever.
from(bucket: raw)
    |> range(start: start, stop: stop)
    |> filter(fn: (r) => r._measurement == "usage_seen")
    |> to(bucket: out)
    |> yield(name: "usage_seen")
