// Shared by the hourly and daily tasks (rollups.py puts it where a task has the line
// "// include: watermark.flux"); the task imports "array" and "date".
//
// Why: InfluxDB runs a task for its schedule from now on; the runs it missed while influxd was
// down are never made up (and `tasks.lastSuccess()` returns its `orTime` in InfluxDB 2.x, always;
// influxdata/flux#5498). So each run writes the end of what it rolled up as a point, and the next
// run starts from the last such point when that is earlier than its usual start: the hours (days)
// of missed or failed runs are rolled up by the first run after them, the last seven days of them
// at most (`flask analytics upgrade --since` rebuilds anything older). A first run has no
// watermark and rolls up its usual window. Grafana's panels read raw points
// after the hourly watermark, so they show the hour under way.
watermarkBefore = (bucket, stop, usual) => {
    // one series, its last point: InfluxDB reads it from storage without scanning the range
    last = from(bucket: bucket)
        |> range(start: 0, stop: stop)
        |> filter(fn: (r) => r._measurement == "watermark" and r._field == "count")
        |> last()
        |> findRecord(fn: (key) => true, idx: 0)
    furthest = date.sub(d: 7d, from: stop)

    return if not exists last._time or last._time >= usual then usual
        else if last._time < furthest then furthest else last._time
}

markWatermark = (bucket, stop) =>
    array.from(rows: [{_time: stop, _measurement: "watermark", _field: "count", _value: 1}])
        |> to(bucket: bucket)
        |> yield(name: "watermark")
