"""`flask analytics upgrade` on a real influxd: the rollups a new version adds, rebuilt from the raw
points of the days before it, equal what the tasks write for new days."""

from __future__ import annotations

from collections import Counter
from typing import Any

from tests.support import visits as known
from tests.support.datasets import write
from tests.support.influx import Influx
from tests.support.visits import TABLES, stored


def test_upgrade_rebuilds_every_rollup_of_the_raw_days(make_app: Any, influx: Influx, bucket: str) -> None:
    # raw points of two days that no task of this version rolled up (as after an upgrade)
    write(influx, bucket, known.to_lines(known.pageviews()))
    app = make_app(ANALYTICS_PERMITTED_DOMAINS=known.SITE, ANALYTICS_RAW_RETENTION="0")
    result = app.test_cli_runner().invoke(args=["analytics", "upgrade", "--until", "2026-03-02"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert "rebuilt 2026-03-01 (1 of 2 days)" in lines
    assert lines[-1] == "done: 2 days rebuilt from the raw points"
    found = known.visits(known.pageviews())
    for name, keys in TABLES.items():
        assert stored(influx, bucket, name, keys) == known.by_day_and(found, keys), name
    hourly = {(r["_time"], r["page"]): r["_value"] for r in influx.query(
        'from(bucket: b) |> range(start: 0) |> filter(fn: (r) => r._measurement == "pages")',
        b=bucket + "_1h")}
    assert hourly == dict(Counter((r["time"].replace(minute=0, second=0, microsecond=0), r["page"])
                                  for r in known.pageviews()))
    monthly = {r["_field"]: r["_value"] for r in influx.query(
        'from(bucket: b) |> range(start: 0) |> filter(fn: (r) => r._measurement == "traffic")',
        b=bucket + "_1mo")}
    assert monthly["pageviews"] == len(known.pageviews())
    # run again: the same rollups (every window is rewritten, none doubled)
    again = app.test_cli_runner().invoke(args=["analytics", "upgrade", "--since", "2026-03-01",
                                               "--until", "2026-03-02"])
    assert again.exit_code == 0, again.output
    assert stored(influx, bucket, "entry_pages", ("entry_page",)) == known.by_day_and(found, ("entry_page",))
