// Shared by the hourly and daily tasks: rollups.py puts this file where a task has the line
// "// include: ranked.flux". It expects `raw`, `start`, `stop`, `out` (the bucket
// written) and `top` (ANALYTICS_TOP_VALUES), and the task imports "array".
//
// Why ranking: raw points hold every visitor-controlled value as a field, so a beacon adds no
// series (docs/schema.md, "Series bounds"). A value becomes a tag only here, if it is among the
// `top` values of its window (an hour, a site day) by distinct visitors, then by count; the rest
// of the window is one row whose values are "(other)". So a rollup holds at most `top` + 1 rows
// per site, window and measurement (per event name for events), and a flood from one visitor
// never outranks a value that two visitors used.
//
// Why aggregates and not rows: Flux's `map` and `join` cost 50-300 µs per row here, grouping and
// pivoting 10-35 µs (bench/topn_probe.py), so each raw row is grouped once, and only the few
// per-value rows are sorted, cut and folded.
// A window's rows as this run computed them (stamped at the window's start), plus a zero row for
// each row an earlier run wrote for the same window that this run no longer has: a value folded
// into "(other)" since, an exit page no visit ends on any more. InfluxDB overwrites a point of
// the same series and time, and a task cannot delete one, so without the zeros a window's rows
// would add up to more than its figures. Only the few per-value rows are touched, never raw ones.
// `field` is one field every row of `name` has; `prepare` gives the earlier rows the columns the
// new ones have (a prop or UTM part that is no tag is "" in the new rows); `zero` adds the fields.
withStale = (tables=<-, name, field, tags, prepare, zero) => {
    fresh = tables
        |> duplicate(column: "_start", as: "_time")
        |> drop(columns: ["_start", "_stop"])
        |> set(key: "stale", value: "0")
    earlier = from(bucket: out)
        |> range(start: start, stop: stop)
        |> filter(fn: (r) => r._measurement == name and r._field == field)
        |> keep(columns: ["_time"] |> array.concat(v: tags))
        |> prepare()
        |> zero()
        |> set(key: "stale", value: "1")

    return union(tables: [fresh, earlier])
        |> group(columns: ["_time"] |> array.concat(v: tags))
        |> sort(columns: ["stale"])
        |> first(column: "stale")
        |> group(columns: tags)
}

ranked = (tables=<-, every, partition, values, fold, name, prepare=(tables=<-) => tables) => {
    rows = tables
        |> pivot(rowKey: ["_time"], columnKey: ["_field"], valueColumn: "_value")
        // A point without a visitor (none from the collector) counts as one unknown visitor,
        // never as a failed task; `prepare` keeps the points that carry this breakdown's values
        // and gives every table their columns.
        |> fill(column: "visitor", value: "")
        |> prepare()
        |> window(every: every)
        |> group(columns: partition |> array.concat(v: values))
    hits = rows
        |> sum(column: "count")
        |> rename(columns: {count: "_value"})
        |> set(key: "_field", value: "hits")
    visitors = rows
        |> unique(column: "visitor")
        |> count(column: "visitor")
        |> rename(columns: {visitor: "_value"})
        |> set(key: "_field", value: "visitors")
    sorted = union(tables: [hits, visitors])
        |> group(columns: partition)
        |> pivot(rowKey: values, columnKey: ["_field"], valueColumn: "_value")
        |> sort(columns: ["visitors", "hits"], desc: true)
    kept = sorted |> limit(n: top)
    rest = sorted
        |> limit(n: 1000000000, offset: top)
        |> sum(column: "hits")
        |> filter(fn: (r) => exists r.hits)
        |> fold()

    tags = partition |> array.filter(fn: (x) => x != "_start" and x != "_stop") |> array.concat(v: values)

    return union(tables: [kept, rest])
        |> withStale(name: name, field: "count", tags: tags, prepare: prepare,
            zero: (tables=<-) => tables |> map(fn: (r) => ({r with hits: 0})))
        |> set(key: "_measurement", value: name)
        |> to(bucket: out, tagColumns: tags, fieldFn: (r) => ({"count": r.hits}))
        |> yield(name: name)
}

// An event carries at most one of the three props (its note as `label` for ANALYTICS_NOTE_EVENTS,
// the host of an `outbound` click, the file of a `download`); "" is no value, and `to()` writes no
// tag for it. The folded row of an event name gets "(other)" in the prop its name carries.
eventProps = (tables=<-) => tables
    |> fill(column: "label", value: "")
    |> fill(column: "destination", value: "")
    |> fill(column: "file", value: "")
foldEventProps = (tables=<-) => tables
    |> map(fn: (r) => ({r with
        label: if r.event == "outbound" or r.event == "download" then "" else "(other)",
        destination: if r.event == "outbound" then "(other)" else "",
        file: if r.event == "download" then "(other)" else "",
    }))

// The points of one measurement; each call then names the fields it needs in a filter of plain
// comparisons, which InfluxDB pushes down into storage (`contains()` would not be). Expects the
// task's `raw`, `start` and `stop`.
points = (measurement) => from(bucket: raw)
    |> range(start: start, stop: stop)
    |> filter(fn: (r) => r._measurement == measurement)

site = ["domain", "_start", "_stop"]

// The breakdowns both tasks write, per window (`every`: 1h or 1d). A point lacking the value (the
// collector always writes it) counts as "unknown", never as a failed task.
rankPages = (every) => points(measurement: "pageview")
    |> filter(fn: (r) => r._field == "count" or r._field == "visitor" or r._field == "page")
    |> ranked(every: every, partition: site, values: ["page"], name: "pages",
        prepare: (tables=<-) => tables |> fill(column: "page", value: "unknown"),
        fold: (tables=<-) => tables |> set(key: "page", value: "(other)"))
rankSources = (every) => points(measurement: "pageview")
    |> filter(fn: (r) => r._field == "count" or r._field == "visitor" or r._field == "source")
    |> ranked(every: every, partition: site, values: ["source"], name: "sources",
        prepare: (tables=<-) => tables |> fill(column: "source", value: "unknown"),
        fold: (tables=<-) => tables |> set(key: "source", value: "(other)"))
rankAgents = (every) => points(measurement: "pageview")
    |> filter(fn: (r) => r._field == "count" or r._field == "visitor" or r._field == "browser"
        or r._field == "os" or r._field == "device")
    |> ranked(every: every, partition: site, values: ["browser", "os", "device"], name: "agents",
        prepare: (tables=<-) => tables |> fill(column: "browser", value: "unknown")
            |> fill(column: "os", value: "unknown") |> fill(column: "device", value: "unknown"),
        fold: (tables=<-) => tables |> set(key: "browser", value: "(other)")
            |> set(key: "os", value: "(other)") |> set(key: "device", value: "(other)"))
rankCountries = (every) => points(measurement: "pageview")
    |> filter(fn: (r) => r._field == "count" or r._field == "visitor" or r._field == "country")
    |> ranked(every: every, partition: site, values: ["country"], name: "countries",
        prepare: (tables=<-) => tables |> fill(column: "country", value: "unknown"),
        fold: (tables=<-) => tables |> set(key: "country", value: "(other)"))
rankEvents = (every) => points(measurement: "event")
    |> filter(fn: (r) => r._field == "count" or r._field == "visitor" or r._field == "label"
        or r._field == "destination" or r._field == "file")
    |> ranked(every: every, partition: ["domain", "event", "_start", "_stop"], name: "events",
        values: ["label", "destination", "file"], prepare: eventProps, fold: foldEventProps)
