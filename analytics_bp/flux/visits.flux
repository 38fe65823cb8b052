// Visits as data (issue 27): the daily task's per-visit breakdowns of the visits that
// visit_rows.flux finds. rollups.py puts this file where the daily task has the line
// "// include: visits.flux", after ranked.flux and visit_rows.flux (it uses `visits`, `site`,
// `out` and `top`).

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
