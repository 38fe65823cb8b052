"""Schema v2's second measurement (docs/schema-v2-plan.md): can the daily task choose the values it
keeps as tags by distinct visitors, in Flux, over raw points whose values are fields, fast enough?

    INFLUXD=... .venv/bin/python bench/topn_probe.py      (make influxd prints the path)

Writes one fixed day (2026-01-01) of the bench's pageviews shaped as v2's raw bucket (values as
fields; `raw_fields_probe.as_v2`), plus a flood: one visitor sending `PROBE_JUNK` pageviews, each
to a new page. Then, for one dimension (page), it times the two steps a v2 daily task needs, as
one Flux query each (median of `PROBE_REPEAT`), and checks their answer:

1. rank: distinct visitors per value of the site day, top `PROBE_TOP` kept;
2. fold: every pageview's value looked up in the kept set (a dictionary), the rest `(other)`,
   then pageviews and distinct visitors per kept value, the rows the task would write.

It prints whether every junk page was folded and every page with two or more visitors kept, and
the series the output would create: at most `PROBE_TOP + 1` per site day, whatever the flood.
Seeds and dates are fixed: the answer does not depend on the day it runs. The defaults are two
hours of the 4 M-point month (11,000 pageviews) and 2,000 junk pages: a whole day (133,000) took
more than ten minutes here, which is the finding (docs/schema-v2-plan.md).

Kept as the record of a measurement taken on 0.4.0, whose raw points held visitor-controlled
values as tags; since 0.5.0 the bench's dataset writes them as fields (docs/schema.md), so the
"tags" shape here is no longer what the collector writes.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import dataset
import throwaway
from ingest import deliver
from raw_fields_probe import DAY_NS, as_v2, pivoted_day

from analytics_bp.dev.admin import Admin
from analytics_bp.influx import InfluxTarget

POINTS = int(os.environ.get("PROBE_POINTS", "11000"))  # two hours of the 4 M-point month
JUNK = int(os.environ.get("PROBE_JUNK", "2000"))
TOP = int(os.environ.get("PROBE_TOP", "100"))
REPEAT = int(os.environ.get("PROBE_REPEAT", "3"))
T0 = time.monotonic()

DAY = pivoted_day("b", ("page", "visitor", "count"))
RANK = (DAY + '|> group(columns: ["domain", "page"]) |> distinct(column: "visitor") |> count() '
        '|> group(columns: ["domain"]) |> top(n: n, columns: ["_value"]) ')
KEPT = ('import "array"\nimport "dict"\n'
        'kept = ' + RANK + '|> map(fn: (r) => ({r with key: r.domain + "\\n" + r.page})) |> group() '
        '|> findColumn(fn: (key) => true, column: "key")\n'
        'known = dict.fromList(pairs: array.map(arr: kept, fn: (x) => ({key: x, value: true})))\n'
        + DAY + '|> map(fn: (r) => ({r with page: if dict.get(dict: known, key: r.domain + "\\n" + r.page, '
        'default: false) then r.page else "(other)"})) |> group(columns: ["domain", "page"]) ')
FOLD = KEPT + ('|> reduce(identity: {pageviews: 0}, '
               'fn: (r, accumulator) => ({pageviews: accumulator.pageviews + r.count})) |> group()')
VISITORS = KEPT + '|> distinct(column: "visitor") |> count() |> group()'
# Where the fold's time goes: each part alone, and the fold done with a join instead of a lookup.
PARTS = {
    "part: read and pivot the day": DAY + '|> count(column: "count") |> group()',
    "part: one table per page": DAY + '|> group(columns: ["domain", "page"]) |> sum(column: "count") '
                                '|> group()',
    "part: a lookup in map, every row": 'import "dict"\n'
                                        'known = dict.fromList(pairs: [{key: "a", value: true}])\n'
                                        + DAY + '|> map(fn: (r) => ({r with page: if dict.get(dict: known, '
                                        'key: r.page, default: false) then r.page else "(other)"})) '
                                        '|> count(column: "count") |> group()',
    "fold with join.left instead": 'import "join"\nkept = ' + RANK + '|> keep(columns: ["domain", "page"]) '
                                   '|> group()\njoin.left(left: ' + DAY + '|> group(), right: kept, '
                                   'on: (l, r) => l.domain == r.domain and l.page == r.page, '
                                   'as: (l, r) => ({l with page: if exists r.page then l.page '
                                   'else "(other)"})) '
                                   '|> group(columns: ["domain", "page"]) |> sum(column: "count") |> group()',
}


def progress(message: str) -> None:
    print(f"[probe {time.monotonic() - T0:5.0f}s] {message}", flush=True)


def junk_lines() -> list[str]:
    """One visitor, `JUNK` new pages, spread over the day (a flood from one client)."""
    step = 86_400 * 10**9 // max(JUNK, 1)
    return [f'pageview,device=desktop,domain=a.example count=1i,visitor="f100d",sess_id="flood",'
            f'page="/junk-{i}",source="direct",browser="Chrome",os="Linux",country="-",'
            f'timezone="0",platform="linux" {DAY_NS + i * step + 7}' for i in range(JUNK)]


def timed(admin: Admin, flux: str) -> tuple[float, list[dict[str, object]]]:
    params = {"b": "v2", "n": TOP}
    admin.query(flux, params=params)  # warm-up
    times = []
    rows: list[dict[str, object]] = []
    for _ in range(REPEAT):
        started = time.perf_counter()
        rows = admin.query(flux, params=params)
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times), rows


def visitors_per_page(admin: Admin) -> dict[tuple[str, str], int]:
    """Distinct visitors per (domain, page) of the day, counted here, in Python."""
    rows = admin.query(DAY + '|> keep(columns: ["domain", "page", "visitor"]) |> group()',
                       params={"b": "v2"})
    visitors: dict[tuple[str, str], set[str]] = {}
    for r in rows:
        visitors.setdefault((str(r["domain"]), str(r["page"])), set()).add(str(r["visitor"]))
    return {k: len(v) for k, v in visitors.items()}


def check(rows: list[dict[str, object]], visitors: dict[tuple[str, str], int], total: int) -> str:
    """Whether the fold kept the right values: no junk, and no folded page with more visitors
    than a kept page of its site (ties at the edge may go either way)."""
    kept = {(str(r["domain"]), str(r["page"])) for r in rows}
    sites = {d for d, _ in visitors}
    junk_kept = sum(1 for _, p in kept if p.startswith("/junk-"))
    wrong = 0
    for site in sites:
        inside = [n for (d, p), n in visitors.items() if d == site and (d, p) in kept]
        outside = [n for (d, p), n in visitors.items() if d == site and (d, p) not in kept]
        wrong += bool(inside and outside and max(outside) > min(inside))
    widest = max(sum(1 for d, _ in kept if d == s) for s in sites)
    stored = sum(int(str(r["pageviews"])) for r in rows)
    return (f"  junk pages kept: {junk_kept}; sites where a folded page beats a kept one: {wrong}; "
            f"most rows of one site: {widest} (bound {TOP + 1}); pageviews: {stored:,} of {total:,}")


def main() -> None:
    with throwaway.influxd("topn-") as (_, creds, admin):
        admin.ensure_bucket("v2", 0, 86_400)
        progress(f"writing {POINTS:,} pageviews of one day and a flood of {JUNK:,} junk pages")
        lines = list(as_v2(dataset.pageviews(POINTS, DAY_NS, 86_400 * 10**9, seed=7))) + junk_lines()
        deliver(InfluxTarget(creds.url, creds.org, creds.token, "v2"), lines)
        visitors = visitors_per_page(admin)
        print(f"{'step (median of ' + str(REPEAT) + ', ms)':<44} {'ms':>8} {'rows':>8}")
        steps = {"rank: top values by visitors": RANK, "fold + pageviews per kept value": FOLD,
                 "fold + visitors per kept value": VISITORS, **PARTS}
        for name, flux in steps.items():
            ms, rows = timed(admin, flux)
            print(f"{name:<44} {ms:>8.0f} {len(rows):>8}")
            if name.startswith("fold + pageviews"):
                print(check(rows, visitors, len(lines)))

if __name__ == "__main__":
    main()
