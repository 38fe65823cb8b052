// Monthly traffic per domain from the daily rollups, recomputed daily for this month so far and
// the previous month (points stamped at the month's start overwrite the previous run's).
// Engaged time (the agent's extras): visit_seconds and engaged_visits sum, so the month's visit
// duration is their ratio, exact.
// Unique visitors: with a daily salt a visitor's hash changes every day, so the monthly figure is
// the average of daily uniques (as seed 001 does); with a monthly salt, true monthly uniques.
import "date"
import "timezone"

option task = {name: "__TASK_NAME__", every: 1d, offset: 30m}
option location = timezone.location(name: "__TIMEZONE__")

raw = "__RAW_BUCKET__"
daily = "__DAILY_BUCKET__"
out = "__MONTHLY_BUCKET__"
saltPeriod = "__SALT_PERIOD__"
stop = date.truncate(t: now(), unit: 1d)
start = date.sub(d: 1mo, from: date.truncate(t: now(), unit: 1mo))

monthly = (tables=<-, fn, name) =>
    tables
        |> group(columns: ["domain", "_field"])
        |> aggregateWindow(every: 1mo, fn: fn, timeSrc: "_start", createEmpty: false)
        |> set(key: "_measurement", value: "traffic")
        |> to(bucket: out)
        |> yield(name: name)

traffic = from(bucket: daily)
    |> range(start: start, stop: stop)
    |> filter(fn: (r) => r._measurement == "traffic")

traffic
    |> filter(fn: (r) => r._field == "pageviews" or r._field == "sessions" or r._field == "bounces"
        or r._field == "visit_seconds" or r._field == "engaged_visits")
    |> monthly(fn: sum, name: "sums")

visitorsFromDays = () =>
    traffic
        |> filter(fn: (r) => r._field == "visitors")
        |> toFloat()
        |> set(key: "_field", value: "visitors")

visitorsFromRaw = () =>
    from(bucket: raw)
        |> range(start: start, stop: stop)
        |> filter(fn: (r) => r._measurement == "pageview" and r._field == "visitor")
        |> group(columns: ["domain"])
        |> window(every: 1mo)
        |> unique()
        |> count()
        |> toFloat()
        |> duplicate(column: "_start", as: "_time")
        |> set(key: "_field", value: "visitors")
        |> window(every: inf)

if saltPeriod == "month" then
    visitorsFromRaw() |> monthly(fn: sum, name: "visitors")
else
    visitorsFromDays() |> monthly(fn: mean, name: "visitors")
