// Shared by the daily task (rollups.py puts it where a task has "// include: sessions.flux") and
// Grafana's per-day panels, which compute today from raw points with it (grafana/panels.py reads
// this file), so both count sessions and bounces the same way.
//
// A site day's sessions, bounces (sessions with one pageview that day) and pageviews in
// sessions, from its pageviews' `sess_id` field: one row per domain and day. Sorting by session
// ID puts each session's pageviews side by side, so `reduce` counts runs: a new ID is a new
// session (a bounce until its second pageview). Grouping by session instead made one table per
// session and was several times slower.
sessionsPerDay = (tables=<-) =>
    tables
        |> group(columns: ["domain"])
        |> window(every: 1d)
        |> keep(columns: ["domain", "_start", "_stop", "_value"])
        |> sort(columns: ["_value"])
        |> reduce(
            identity: {prev: "", run: 0, sessions: 0, views: 0, bounces: 0},
            fn: (r, accumulator) => {
                same = r._value == accumulator.prev
                return {
                    prev: r._value,
                    run: if same then accumulator.run + 1 else 1,
                    sessions: accumulator.sessions + (if same then 0 else 1),
                    views: accumulator.views + 1,
                    bounces: accumulator.bounces + (if not same then 1 else if accumulator.run == 1 then -1 else 0),
                }
            },
        )
