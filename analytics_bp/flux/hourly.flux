// Hourly rollups of the raw bucket. Each run re-aggregates the two complete hours before it (and
// every hour since the last run's stop, after missed runs: watermark.flux), so a late point is
// counted on the next run, and a window processed again overwrites the same points.
import "array"
import "date"

option task = {name: "__TASK_NAME__", every: 1h, offset: 5m}

raw = "__RAW_BUCKET__"
out = "__HOURLY_BUCKET__"
// ANALYTICS_TOP_VALUES: visitor-controlled values kept as tags per site and hour, by visitors.
top = int(v: "__TOP_VALUES__")
stop = date.truncate(t: now(), unit: 1h)

// include: watermark.flux

start = watermarkBefore(bucket: out, stop: stop, usual: date.sub(d: 2h, from: stop))

// include: ranked.flux

source = (measurement, field="count") =>
    points(measurement: measurement) |> filter(fn: (r) => r._field == field)

rollup = (tables=<-, columns, name) =>
    tables
        |> group(columns: columns)
        |> aggregateWindow(every: 1h, fn: sum, timeSrc: "_start", createEmpty: false)
        |> set(key: "_measurement", value: name)
        |> set(key: "_field", value: "count")
        |> to(bucket: out)
        |> yield(name: name)

source(measurement: "pageview")
    |> rollup(columns: ["domain"], name: "pageviews")

rankPages(every: 1h)
rankSources(every: 1h)
rankAgents(every: 1h)
rankCountries(every: 1h)
rankEvents(every: 1h)

source(measurement: "usage")
    |> rollup(columns: ["action"], name: "usage")

source(measurement: "usage_count")
    |> rollup(columns: ["category", "event"], name: "usage_counts")

source(measurement: "rejected")
    |> rollup(columns: ["reason"], name: "rejected")

// Marks are rare and keep their own time: copied as they are, for Grafana annotations.
from(bucket: raw)
    |> range(start: start, stop: stop)
    |> filter(fn: (r) => r._measurement == "mark")
    |> to(bucket: out)
    |> yield(name: "marks")

markWatermark(bucket: out, stop: stop)
