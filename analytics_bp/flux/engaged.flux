// Shared by the daily task (rollups.py puts it where a task has "// include: engaged.flux"; it
// uses ranked.flux's `points`) and Grafana's engaged-time panels, which compute today from raw
// points with it (grafana/panels.py reads this file and gives it its own `points`).
//
// Engaged time (the agent's data-engagement): one value per pageview and site day, the largest of
// the running totals it sent (a page hidden and shown again sends a larger one). A pageview is its
// session hash and its number in the session; sorting puts its largest total first for unique().
engaged = points(measurement: "engagement")
    |> filter(fn: (r) => r._field == "seconds" or r._field == "pageview" or r._field == "sess_id"
        or r._field == "page")
    |> pivot(rowKey: ["_time"], columnKey: ["_field"], valueColumn: "_value")
    // The collector always writes all three; a point written otherwise is left out, not allowed
    // to fail the whole task (and every other rollup of the day with it).
    |> filter(fn: (r) => exists r.sess_id and exists r.pageview and exists r.seconds)
    |> group(columns: ["domain"])
    |> window(every: 1d)
    |> map(fn: (r) => ({r with view: r.sess_id + ":" + string(v: r.pageview), _value: float(v: r.seconds)}))
    |> sort(columns: ["view", "_value"], desc: true)
    |> unique(column: "view")
