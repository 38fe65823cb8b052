// Visits as data (issue 27): the daily task's per-visit breakdowns. rollups.py puts this file where
// the daily task has the line "// include: visits.flux", after ranked.flux (it uses `points`,
// `site`, `out` and `top`).
//
// A visit is one session ID's pageviews in one site day (the agent's per-tab session, as the
// `traffic` figures count it). Its attributes are its first pageview's (entry page, source, UTM
// values) and its last pageview's page (exit page); its figures are its pageviews and whether it
// bounced (one pageview). A pageview without a session ID belongs to no visit.
//
// Why this shape: Flux's `map` costs about 25 µs per row here and grouping by session one table
// per visit (about 85 µs each), so each visit is found with native steps only (bench/visits_probe.py):
// the day's pageviews sorted by session and time; `unique` keeps each session's first row (the
// entry), the same on the reversed order its last (the exit); the exit row sorts just before its
// entry, so `fill(usePrevious)` carries its page and running count onto the entry. One `map` then
// runs per visit, not per pageview.
visitRows = points(measurement: "pageview")
    |> filter(fn: (r) => r._field == "count" or r._field == "visitor" or r._field == "sess_id"
        or r._field == "page" or r._field == "source" or r._field == "utm_source"
        or r._field == "utm_medium" or r._field == "utm_campaign" or r._field == "browser"
        or r._field == "os" or r._field == "device" or r._field == "country"
        or r._field == "timezone" or r._field == "platform")
    |> pivot(rowKey: ["_time"], columnKey: ["_field"], valueColumn: "_value")
    |> filter(fn: (r) => exists r.sess_id)
    |> fill(column: "visitor", value: "")
    |> fill(column: "count", value: 1)
    |> fill(column: "page", value: "unknown")
    |> group(columns: ["domain"])
    |> window(every: 1d)
    |> sort(columns: ["sess_id", "_time"])
    |> duplicate(column: "count", as: "seen")
    |> cumulativeSum(columns: ["seen"])
entries = visitRows
    |> unique(column: "sess_id")
    |> set(key: "role", value: "entry")
exits = visitRows
    |> sort(columns: ["sess_id", "_time"], desc: true)
    |> unique(column: "sess_id")
    |> keep(columns: ["domain", "_start", "_stop", "sess_id", "page", "seen"])
    |> rename(columns: {page: "exit_page", seen: "exit_seen"})
    |> set(key: "role", value: "_exit")
visits = union(tables: [entries, exits])
    |> sort(columns: ["sess_id", "role"])
    |> fill(column: "exit_page", usePrevious: true)
    |> fill(column: "exit_seen", usePrevious: true)
    |> filter(fn: (r) => r.role == "entry")
    |> map(fn: (r) => {
        views = r.exit_seen - r.seen + r.count
        return {r with entry_page: r.page, pageviews: views, bounce: if views == 1 then 1 else 0}
    })

// One breakdown of the visits, ranked like ranked.flux's: per site day, the `top` values by
// distinct visitors (then visits) keep their own rows; the rest is one "(other)" row whose
// visitors are the sum of its values' (a visitor of two folded values counts twice there).
rankedVisits = (tables=<-, values, name, fold, prepare=(tables=<-) => tables) => {
    rows = tables
        |> prepare()
        |> group(columns: site |> array.concat(v: values))
    parts = union(tables: [
        rows |> count(column: "pageviews") |> rename(columns: {pageviews: "_value"})
            |> set(key: "_field", value: "visits"),
        rows |> unique(column: "visitor") |> count(column: "visitor")
            |> rename(columns: {visitor: "_value"}) |> set(key: "_field", value: "visitors"),
        rows |> sum(column: "pageviews") |> rename(columns: {pageviews: "_value"})
            |> set(key: "_field", value: "pageviews"),
        rows |> sum(column: "bounce") |> rename(columns: {bounce: "_value"})
            |> set(key: "_field", value: "bounces"),
    ])
    sorted = parts
        |> group(columns: site)
        |> pivot(rowKey: values, columnKey: ["_field"], valueColumn: "_value")
        |> sort(columns: ["visitors", "visits"], desc: true)
    kept = sorted |> limit(n: top)
    rest = sorted
        |> limit(n: 1000000000, offset: top)
        |> reduce(
            identity: {visits: 0, visitors: 0, pageviews: 0, bounces: 0},
            fn: (r, accumulator) => ({
                visits: accumulator.visits + r.visits,
                visitors: accumulator.visitors + r.visitors,
                pageviews: accumulator.pageviews + r.pageviews,
                bounces: accumulator.bounces + r.bounces,
            }),
        )
        |> filter(fn: (r) => r.visits > 0)
        |> fold()

    tags = ["domain"] |> array.concat(v: values)

    return union(tables: [kept, rest])
        |> withStale(name: name, field: "visits", tags: tags, prepare: prepare,
            zero: (tables=<-) => tables
                |> map(fn: (r) => ({r with visits: 0, visitors: 0, pageviews: 0, bounces: 0})))
        |> set(key: "_measurement", value: name)
        |> to(
            bucket: out,
            tagColumns: tags,
            fieldFn: (r) => ({"visits": r.visits, "visitors": r.visitors, "pageviews": r.pageviews,
                "bounces": r.bounces}),
        )
        |> yield(name: name)
}

// One table per visit key (schema.VISIT_TABLES), so that each table's distinct visitors are exact
// for its key. A key every pageview carries is "unknown" where a point lacked it (the entry and
// exit pages never do); a UTM table holds only the visits that have its value (`has`).
visitsWith = (key, name, has=(r) => true) => visits
    |> rankedVisits(values: [key], name: name,
        prepare: (tables=<-) => tables |> filter(fn: has) |> fill(column: key, value: "unknown"),
        fold: (tables=<-) => tables |> set(key: key, value: "(other)"))

visitsWith(key: "entry_page", name: "entry_pages")
visitsWith(key: "exit_page", name: "exit_pages")
visitsWith(key: "source", name: "visit_sources")
visitsWith(key: "utm_source", name: "visit_utm_sources", has: (r) => exists r.utm_source)
visitsWith(key: "utm_medium", name: "visit_utm_mediums", has: (r) => exists r.utm_medium)
visitsWith(key: "utm_campaign", name: "visit_utm_campaigns", has: (r) => exists r.utm_campaign)
visitsWith(key: "browser", name: "visit_browsers")
visitsWith(key: "os", name: "visit_oses")
visitsWith(key: "device", name: "visit_devices")
visitsWith(key: "country", name: "visit_countries")
visitsWith(key: "timezone", name: "visit_timezones")
visitsWith(key: "platform", name: "visit_platforms")
