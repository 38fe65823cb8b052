"""How the daily task can find visits (issue 27, "visits as data") in Flux, fast enough: each step
and the alternatives timed on a real influxd.

    INFLUXD=... .venv/bin/python bench/visits_probe.py      (make influxd prints the path)

Writes `PROBE_POINTS` of the bench's pageviews (raw shape of 0.5.0: values as fields) on one fixed
day (2026-01-01; seeds fixed: the answer does not depend on the day it runs), then times, as one
Flux query each (median of `PROBE_REPEAT`, ms): reading and pivoting the day; one table per
session (`group` by session ID); finding entries with `sort` and `unique`; pairing each visit's
entry and exit with `join.inner`; and the shipped way (flux/visits.flux: entries and exits paired
by sorting and `fill(usePrevious)`, one `map` per visit), alone and with one breakdown by source.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(1, str(Path(__file__).resolve().parent.parent))

import dataset
import throwaway
from ingest import deliver
from raw_fields_probe import DAY_NS, pivoted_day

from analytics_bp.influx import InfluxTarget
from analytics_bp.rollups import _flux_file

POINTS = int(os.environ.get("PROBE_POINTS", "44000"))
REPEAT = int(os.environ.get("PROBE_REPEAT", "3"))
T0 = time.monotonic()

DAY = pivoted_day('"v2"', ("page", "visitor", "sess_id", "source", "count"))
COUNT = '|> count(column: "count") |> group()'
# The shipped text, with the task's names bound to one fixed day.
SHIPPED = ('import "array"\nraw = "v2"\nout = "v2"\ntop = 100\nstart = 2026-01-01T00:00:00Z\n'
           'stop = 2026-01-02T00:00:00Z\n'
           'points = (measurement) => from(bucket: raw) |> range(start: start, stop: stop) '
           '|> filter(fn: (r) => r._measurement == measurement)\nsite = ["domain", "_start", "_stop"]\n'
           + _flux_file("visits.flux").split("// One breakdown of the visits")[0])
STEPS = {
    "read and pivot the day": DAY + COUNT,
    "one table per session (group)": DAY + '|> group(columns: ["domain", "sess_id"]) '
                                     '|> count(column: "count") |> group() |> count(column: "count")',
    "entries: sort + unique": DAY + '|> sort(columns: ["sess_id", "_time"]) '
                              '|> unique(column: "sess_id") ' + COUNT,
    "entries and exits paired by join.inner": (
        'import "join"\nr = ' + DAY + '|> sort(columns: ["sess_id", "_time"])\n'
        'e = r |> unique(column: "sess_id")\n'
        'x = r |> sort(columns: ["sess_id", "_time"], desc: true) |> unique(column: "sess_id") '
        '|> keep(columns: ["domain", "sess_id", "page"])\n'
        'join.inner(left: e, right: x, on: (l, r) => l.sess_id == r.sess_id, '
        'as: (l, r) => ({l with exit_page: r.page})) |> group() |> count(column: "count")'),
    "shipped: visits (visits.flux)": SHIPPED + 'visits |> group() |> count(column: "pageviews")',
    "shipped: visits by source": SHIPPED + 'visits |> group(columns: ["domain", "source"]) '
                                 '|> sum(column: "pageviews") |> group()',
}


def progress(message: str) -> None:
    print(f"[probe {time.monotonic() - T0:5.0f}s] {message}", flush=True)


def main() -> None:
    with throwaway.influxd("visits-") as (_, creds, admin):
        admin.ensure_bucket("v2", 0, 86_400)
        progress(f"writing {POINTS:,} pageviews of one day")
        deliver(InfluxTarget(creds.url, creds.org, creds.token, "v2"),
                list(dataset.pageviews(POINTS, DAY_NS, 86_400 * 10**9, seed=7)))
        print(f"{'step (median of ' + str(REPEAT) + ', ms)':<44} {'ms':>8} {'rows':>6}")
        for name, flux in STEPS.items():
            progress(name)
            admin.query(flux)  # warm-up
            times, rows = [], []
            for _ in range(REPEAT):
                started = time.perf_counter()
                rows = admin.query(flux)
                times.append((time.perf_counter() - started) * 1000)
            print(f"{name:<44} {statistics.median(times):>8.0f} {len(rows):>6}", flush=True)


if __name__ == "__main__":
    main()
