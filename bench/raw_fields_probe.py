"""Schema v2's first measurement (docs/schema-v2-plan.md): visitor-controlled values as tags (today)
or as fields (v2) in the raw bucket, on one site day of the bench's 4 M-point month.

    INFLUXD=... .venv/bin/python bench/raw_fields_probe.py      (make influxd prints the path)

Writes the same pageviews twice, into a bucket shaped like today's (11 tags) and one shaped like
v2's (tags `domain` and `device` only), then reports the series each holds and the median time of
the today-part queries the dashboard sends (InfluxDB's answer, read with the client), so the
choice between the shapes rests on figures taken on this machine kind. Seeds and dates are fixed:
the answer does not depend on the day it runs.

Kept as the record of a measurement taken on 0.4.0, whose raw points held visitor-controlled
values as tags; since 0.5.0 the bench's dataset writes them as fields (docs/schema.md), so the
"tags" shape here is no longer what the collector writes.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import dataset
import throwaway
from ingest import deliver

from analytics_bp.dev.admin import Admin
from analytics_bp.influx import InfluxTarget

DAY_NS = 1_767_225_600 * 10**9  # 2026-01-01T00:00:00Z: a fixed day, whatever the date of the run
POINTS = int(os.environ.get("PROBE_POINTS", "133000"))  # one day of the 4 M-point month
REPEAT = int(os.environ.get("PROBE_REPEAT", "9"))
V2_TAGS = ("domain", "device")
T0 = time.monotonic()


def progress(message: str) -> None:
    print(f"[probe {time.monotonic() - T0:5.0f}s] {message}", flush=True)


def as_v2(lines: Iterator[str]) -> Iterator[str]:
    """The same points with every tag but domain and device moved into a string field."""
    for text in lines:
        head, fields, ts = text.rsplit(" ", 2)
        measurement, *pairs = head.split(",")
        tags = dict(p.split("=", 1) for p in pairs)  # the bench's values hold no escaped commas
        kept = {k: v for k, v in tags.items() if k in V2_TAGS}
        moved = ",".join(f'{k}="{_unescape(v)}"' for k, v in tags.items() if k not in V2_TAGS)
        yield f"{measurement},{','.join(f'{k}={v}' for k, v in kept.items())} {fields},{moved} {ts}"


def _unescape(tag_value: str) -> str:
    """A tag value's line-protocol escapes undone, then escaped as a string field's."""
    plain = tag_value.replace("\\ ", " ").replace("\\,", ",").replace("\\=", "=")
    return plain.replace("\\", "\\\\").replace('"', '\\"')


def pivoted_day(bucket: str, fields: tuple[str, ...]) -> str:
    """Flux reading the fixed day's pageviews with `fields`, one row per point, per site: where
    the probes' queries start (`bucket` is Flux: a parameter name or a quoted literal)."""
    wanted = " or ".join(f'r._field == "{f}"' for f in fields)
    return (f'from(bucket: {bucket}) |> range(start: 2026-01-01T00:00:00Z, stop: 2026-01-02T00:00:00Z) '
            f'|> filter(fn: (r) => r._measurement == "pageview" and ({wanted})) '
            '|> pivot(rowKey: ["_time"], columnKey: ["_field"], valueColumn: "_value") '
            '|> group(columns: ["domain"]) ')


RANGE = 'from(bucket: b) |> range(start: 2026-01-01T00:00:00Z, stop: 2026-01-02T00:00:00Z) '
SITE = '|> filter(fn: (r) => r._measurement == "pageview" and r.domain == "a.example") '
QUERIES = {
    "pageviews by page": {
        "tags": RANGE + SITE + '|> filter(fn: (r) => r._field == "count") |> group(columns: ["page"]) '
                '|> sum() |> group() |> sort(columns: ["_value"], desc: true) |> limit(n: 10)',
        "fields": RANGE + SITE + '|> filter(fn: (r) => r._field == "page") '
                  '|> duplicate(column: "_value", as: "page") |> group(columns: ["page"]) |> count() '
                  '|> group() |> sort(columns: ["_value"], desc: true) |> limit(n: 10)',
    },
    "visitors by source": {
        "tags": RANGE + SITE + '|> filter(fn: (r) => r._field == "visitor") |> group(columns: ["source"]) '
                '|> distinct() |> count() |> group() |> sort(columns: ["_value"], desc: true)',
        "fields": RANGE + SITE + '|> filter(fn: (r) => r._field == "visitor" or r._field == "source") '
                  '|> pivot(rowKey: ["_time"], columnKey: ["_field"], valueColumn: "_value") '
                  '|> group(columns: ["source"]) |> distinct(column: "visitor") |> count() |> group() '
                  '|> sort(columns: ["_value"], desc: true)',
    },
    "pageviews of one page, by source": {
        "tags": RANGE + SITE + '|> filter(fn: (r) => r._field == "count" and r.page == "/docs/page-3") '
                '|> group(columns: ["source"]) |> sum() |> group()',
        "fields": RANGE + SITE + '|> filter(fn: (r) => r._field == "page" or r._field == "source") '
                  '|> pivot(rowKey: ["_time"], columnKey: ["_field"], valueColumn: "_value") '
                  '|> filter(fn: (r) => r.page == "/docs/page-3") |> group(columns: ["source"]) '
                  '|> count(column: "page") |> rename(columns: {page: "_value"}) |> group()',
    },
    "pageviews and visitors (site)": {
        "tags": RANGE + SITE + '|> filter(fn: (r) => r._field == "visitor") |> group() |> distinct() '
                '|> count()',
        "fields": RANGE + SITE + '|> filter(fn: (r) => r._field == "visitor") |> group() |> distinct() '
                  '|> count()',
    },
}


def series(admin: Admin, bucket: str) -> int:
    rows = admin.query(f'import "influxdata/influxdb"\ninfluxdb.cardinality(bucket: "{bucket}", '
                       'start: 2025-12-01T00:00:00Z)')
    return int(rows[0]["_value"])


def timed(admin: Admin, flux: str, bucket: str) -> tuple[float, list[dict[str, object]]]:
    admin.query(flux, params={"b": bucket})  # warm-up
    times = []
    for _ in range(REPEAT):
        started = time.perf_counter()
        rows = admin.query(flux, params={"b": bucket})
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times), rows


def main() -> None:
    with throwaway.influxd("probe-") as (_, creds, admin):
        for bucket in ("shape_tags", "shape_fields"):
            admin.ensure_bucket(bucket, 0)
        progress(f"writing {POINTS:,} pageviews of one day, as tags and as fields")
        day = 86_400 * 10**9
        for bucket, lines in (("shape_tags", dataset.pageviews(POINTS, DAY_NS, day, seed=7)),
                              ("shape_fields", as_v2(dataset.pageviews(POINTS, DAY_NS, day, seed=7)))):
            deliver(InfluxTarget(creds.url, creds.org, creds.token, bucket), list(lines))
        print(f"{'raw series':<36} {series(admin, 'shape_tags'):>10,} {series(admin, 'shape_fields'):>10,}")
        print(f"{'query (median of ' + str(REPEAT) + ', ms)':<36} {'tags':>10} {'fields':>10}")
        for name, shapes in QUERIES.items():
            tags_ms, tags_rows = timed(admin, shapes["tags"], "shape_tags")
            fields_ms, fields_rows = timed(admin, shapes["fields"], "shape_fields")
            same = sorted(r["_value"] for r in tags_rows) == sorted(r["_value"] for r in fields_rows)
            print(f"{name:<36} {tags_ms:>10.0f} {fields_ms:>10.0f}" + ("" if same else "  DIFFERENT ANSWERS"))


if __name__ == "__main__":
    main()
