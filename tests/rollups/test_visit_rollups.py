"""The daily task's visit tables (entry pages, exit pages, the visit's source and UTM values) on a
real influxd, against visits found here independently (tests/support/visits.py)."""

from __future__ import annotations

from datetime import timedelta

from analytics_bp import rollups, settings
from tests.support import visits as known
from tests.support.datasets import run_rollup, write
from tests.support.influx import Influx
from tests.support.visits import TABLES, stored

FIELDS = ("visits", "visitors", "pageviews", "bounces")


def rolled_up(influx: Influx, bucket: str, top: int, every_hours: int = 0) -> None:
    """The known visits rolled up by the daily task: once per day at midnight (the run that
    finishes the day and starts no other), or, with `every_hours`, also during the days, as
    the task runs every hour (each run rewrites today so far and yesterday)."""
    cfg = settings.load({"ANALYTICS_PERMITTED_DOMAINS": known.SITE, "ANALYTICS_BUCKET": bucket,
                         "ANALYTICS_RAW_RETENTION": "0", "ANALYTICS_TOP_VALUES": str(top)})
    rollups.setup(cfg, influx.admin)
    write(influx, bucket, known.to_lines(known.pageviews()))
    if every_hours:
        at = known.DAYS[0] + timedelta(hours=9)
        while at < known.DAYS[1] + timedelta(days=1):
            run_rollup(influx, bucket, "daily", at)
            at += timedelta(hours=every_hours)
    for day in known.DAYS:
        run_rollup(influx, bucket, "daily", day + timedelta(days=1))


def test_visit_tables_hold_each_visits_entry_exit_source_and_figures(influx: Influx, bucket: str) -> None:
    rolled_up(influx, bucket, top=100)
    found = known.visits(known.pageviews())
    for name, keys in TABLES.items():
        assert stored(influx, bucket, name, keys) == known.by_day_and(found, keys), name
    sources = stored(influx, bucket, "visit_sources", ("source",))
    # a visit's later pageviews count for its entry's source, and `internal` is only the source
    # of the half of the midnight visit that falls on the second day
    google = [v for v in found if v.source == "google.com"]
    assert sum(f["pageviews"] for (_, s), f in sources.items() if s == "google.com") == sum(
        v.pageviews for v in google) > len(google)
    assert [k for k in sources if k[1] == "internal"] == [(known.DAYS[1].date(), "internal")]
    # every visit's pageviews once, and the three pageviews without a session in none
    total = sum(f["pageviews"] for f in stored(influx, bucket, "entry_pages", ("entry_page",)).values())
    assert total == len(known.pageviews()) - 3


def assert_ranked(influx: Influx, bucket: str, top: int) -> None:
    """Each visit table of each day: the `top` values by visitors (then visits; ties either way)
    with their exact figures, the rest summed into `(other)`."""
    found = known.visits(known.pageviews())
    for name, keys in TABLES.items():
        expected = known.by_day_and(found, keys)
        got = stored(influx, bucket, name, keys)
        for day in {k[0] for k in expected}:
            rank = {k: (f["visitors"], f["visits"]) for k, f in expected.items() if k[0] == day}
            rows = {k: f for k, f in got.items() if k[0] == day}
            kept = {k for k in rows if "(other)" not in k}
            folded = set(rank) - kept
            assert len(kept) == min(top, len(rank)) and kept <= set(rank), name
            assert all(rows[k] == expected[k] for k in kept), name
            assert not folded or max(rank[k] for k in folded) <= min(rank[k] for k in kept), name
            if folded:
                other = rows[(day, *(["(other)"] * len(keys)))]
                assert other == {f: sum(expected[k][f] for k in folded) for f in FIELDS}, name
            assert sum(f["visits"] for f in rows.values()) == sum(
                1 for v in found if v.day == day and any(v.value(k) for k in keys)), name


def test_visit_tables_keep_the_top_values_by_visitors_and_fold_the_rest(influx: Influx, bucket: str) -> None:
    rolled_up(influx, bucket, top=2)
    assert_ranked(influx, bucket, top=2)


def test_runs_during_the_day_leave_no_row_a_later_run_dropped(influx: Influx, bucket: str) -> None:
    """The task rewrites today every hour: a value kept at 10:00 and folded by midnight, or an
    exit page no visit ends on any more once the visit went on, must not keep its earlier row
    (InfluxDB keeps a point until it is overwritten), or a day's rows add up to more than it had."""
    rolled_up(influx, bucket, top=2, every_hours=2)
    assert_ranked(influx, bucket, top=2)
    pages = stored(influx, bucket, "pages", ("page",))
    for day in known.DAYS:
        rows = {k: f for k, f in pages.items() if k[0] == day.date()}
        assert len(rows) <= 3
        assert sum(f["count"] for f in rows.values()) == sum(
            1 for r in known.pageviews() if r["time"].date() == day.date())
