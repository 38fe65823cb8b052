-- wrk script: POST realistic pageview beacons (8 pages, 4 referrers) and report exact percentiles.
-- BENCH_DELAY_MS (env) paces each connection to measure latency below the maximum rate.
local pages = {"/", "/pricing", "/docs", "/docs/install", "/blog", "/blog/2026/launch", "/about", "/contact"}
local refs = {"", "https://www.google.com/search", "https://news.ycombinator.com/", "https://bench.example/"}
local bodies = {}
local delay_ms = tonumber(os.getenv("BENCH_DELAY_MS") or "0")

function init(args)
  for i = 1, 32 do
    bodies[i] = string.format(
      '{"domain":"bench.example","page":"%s?utm_source=news","referrer":"%s","timezone":-60,' ..
      '"platform":"Linux x86_64","sess_id":"s%08d","pages":%d,"load_ms":%d}',
      pages[(i % #pages) + 1], refs[(i % #refs) + 1], i, (i % 5) + 1, 200 + i)
  end
end

wrk.method = "POST"
wrk.headers["Content-Type"] = "text/plain;charset=UTF-8"
wrk.headers["Origin"] = "https://bench.example"
wrk.headers["User-Agent"] = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"

local n = 0
function request()
  n = n + 1
  return wrk.format(nil, "/analytics/pageview", nil, bodies[(n % #bodies) + 1])
end

function delay()
  return delay_ms
end

function done(summary, latency, requests)
  local non2xx = summary.errors.status
  io.write(string.format(
    'BENCH_JSON {"requests":%d,"duration_us":%d,"non_2xx":%d,"socket_errors":%d,' ..
    '"p50_us":%d,"p90_us":%d,"p99_us":%d,"max_us":%d}\n',
    summary.requests, summary.duration, non2xx,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max))
end
