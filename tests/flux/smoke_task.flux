// Smoke task: sums `smoke.value` per hour of the two hours before now() into the output bucket.
import "date"

option task = {name: "__TASK_NAME__", every: 1h, offset: 1m}

stop = date.truncate(t: now(), unit: 1h)

from(bucket: "__RAW_BUCKET__")
    |> range(start: date.sub(d: 2h, from: stop), stop: stop)
    |> filter(fn: (r) => r._measurement == "smoke" and r._field == "value")
    |> aggregateWindow(every: 1h, fn: sum, timeSrc: "_start", createEmpty: false)
    |> set(key: "_measurement", value: "smoke_hourly")
    |> to(bucket: "__OUT_BUCKET__")
