// Visits as data: one row per visit. rollups.py puts this file where the daily task has the line
// "// include: visit_rows.flux" (it uses ranked.flux's `points`); Grafana's visit tables compute
// today's visits with it from raw points (grafana/panels.py reads this file, and gives it its own
// `points`), so both find visits the same way.
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
