"""Rollup tasks and dashboards on a real InfluxDB, against figures computed here independently."""

from __future__ import annotations

import statistics
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from analytics_bp import rollups, settings
from analytics_bp.schema import raw_line
from tests.support.datasets import (
    DAYS,
    ENGAGED_TRAFFIC,
    LINKS,
    engaged_views,
    event_lines,
    expected_daily_traffic,
    expected_engaged_traffic,
    make_dataset,
    run_all,
    run_rollup,
    setup_rollups,
    table,
    to_lines,
    write,
)
from tests.support.influx import Influx, flush, scratch_bucket


@pytest.fixture
def loaded(influx: Influx, bucket: str) -> list[dict[str, Any]]:
    rows = make_dataset()
    write(influx, bucket, to_lines(rows) + event_lines())
    return rows


def test_rollups_match_independent_figures_and_rerun_changes_nothing(
    influx: Influx, rolled: Any
) -> None:
    bucket, loaded = rolled
    snapshots = []
    for attempt in range(2):
        hour = lambda r: r["time"].replace(minute=0, second=0, microsecond=0)  # noqa: E731
        hourly = {}
        for measurement, keys in (("pageviews", []), ("pages", ["page"]), ("sources", ["source"]),
                                  ("agents", ["browser", "os", "device"]), ("countries", ["country"])):
            hourly[measurement] = table(influx, bucket + "_1h", measurement, ["domain", *keys])
            assert hourly[measurement] == dict(Counter(
                (hour(r), r["domain"], *[r[k] for k in keys]) for r in loaded)), measurement

        traffic = {k: v for k, v in table(influx, bucket + "_1d", "traffic", ["domain"]).items()}
        got = {}
        for r in influx.query('from(bucket: b) |> range(start: 0) '
                              '|> filter(fn: (r) => r._measurement == "traffic")',
                              b=bucket + "_1d"):
            got[(r["_time"], r["domain"], r["_field"])] = r["_value"]
        assert got == pytest.approx({**expected_daily_traffic(loaded), **expected_engaged_traffic()})
        assert traffic  # the same points, read the other way

        pages = table(influx, bucket + "_1d", "pages", ["domain", "page"])
        assert pages == dict(Counter(
            (r["time"].replace(hour=0, minute=0, second=0, microsecond=0), r["domain"], r["page"])
            for r in loaded))

        monthly = {(r["_time"].month, r["domain"], r["_field"]): r["_value"] for r in influx.query(
            'from(bucket: b) |> range(start: 0)', b=bucket + "_1mo")}
        daily = expected_daily_traffic(loaded)
        for month, days in ((2, DAYS[:1]), (3, DAYS[1:])):
            for domain in ("a.example", "b.example"):
                for field in ("pageviews", "sessions", "bounces"):
                    assert monthly[(month, domain, field)] == sum(
                        daily[(d, domain, field)] for d in days)
                assert monthly[(month, domain, "visitors")] == pytest.approx(
                    statistics.mean(daily[(d, domain, "visitors")] for d in days))
        # engaged time sums per month (b.example has it in March only): visit duration per month
        for field in ("visit_seconds", "engaged_visits"):
            assert monthly[(3, "b.example", field)] == sum(
                v for (d, domain, name), v in ENGAGED_TRAFFIC.items() if name == field)
            assert (2, "b.example", field) not in monthly and (3, "a.example", field) not in monthly
        snapshots.append((hourly, got, pages, monthly))
        if attempt == 0:
            run_all(influx, bucket)  # second pass: every window processed again
    assert snapshots[0] == snapshots[1]


def test_breakdowns_events_usage_and_marks(influx: Influx, rolled: Any) -> None:
    bucket, loaded = rolled
    day = lambda r: r["time"].replace(hour=0, minute=0, second=0, microsecond=0)  # noqa: E731
    for measurement, keys in (("sources", ["source"]), ("countries", ["country"]),
                              ("agents", ["browser", "os", "device"]),
                              ("timezones", ["timezone", "platform"])):
        got = table(influx, bucket + "_1d", measurement, ["domain", *keys])
        assert got == dict(Counter((day(r), r["domain"], *[r[k] for k in keys]) for r in loaded))
    events = table(influx, bucket + "_1h", "events", ["domain", "event", "label", "destination", "file"])
    h10, h11 = DAYS[1] + timedelta(hours=10), DAYS[1] + timedelta(hours=11)
    assert events == {(h10, "a.example", "socialclick", "twitter", None, None): 2,
                      (h11, "a.example", "socialclick", "mastodon", None, None): 1,
                      (h11, "a.example", "signup", None, None, None): 1,
                      **{(DAYS[2] + timedelta(hours=11), "b.example", event, None, *(
                          (value, None) if tag == "destination" else (None, value))): n
                         for (event, tag, value), n in Counter(link[1:] for link in LINKS).items()}}
    # the extras' daily rollups: clicks by destination host, downloads by path, time on page
    links = table(influx, bucket + "_1d", "events", ["domain", "event", "destination", "file"])
    assert {k[1:]: v for k, v in links.items() if k[1] == "b.example"} == {
        ("b.example", "outbound", "github.com", None): 2,
        ("b.example", "outbound", "mastodon.social", None): 1,
        ("b.example", "download", None, "/files/report.pdf"): 2,
        ("b.example", "download", None, "cdn.example.net/x.zip"): 1}
    engagement = {(r["_time"], r["page"], r["_field"]): r["_value"] for r in influx.query(
        'from(bucket: b) |> range(start: 0) |> filter(fn: (r) => r._measurement == "engagement")',
        b=bucket + "_1d")}
    expected_pages: dict[tuple, Any] = {}
    for day in (DAYS[1], DAYS[2]):
        for page in ("/p0", "/p1"):
            views = engaged_views(day, page)
            if views:
                expected_pages[(day, page, "views")] = len(views)
                expected_pages[(day, page, "median")] = float(statistics.median(views.values()))
    assert engagement == expected_pages
    assert expected_pages[(DAYS[1], "/p0", "median")] == 12.0  # 5 then 12 on one pageview: 12
    assert table(influx, bucket + "_1h", "usage", ["action"]) == {(h10, "docs.extract"): 2}
    assert table(influx, bucket + "_1h", "usage_counts", ["category", "event"]) == {
        (h10, "api", "call"): 5}
    assert table(influx, bucket + "_1h", "rejected", ["reason"]) == {(h10, "bad_json"): 3}
    marks = influx.query('from(bucket: b) |> range(start: 0) |> filter(fn: (r) => '
                         'r._measurement == "mark" and r._field == "name")', b=bucket + "_1h")
    assert [m["_value"] for m in marks] == ["deploy v2"]


def test_late_points_are_counted_by_the_next_run(influx: Influx, bucket: str) -> None:
    setup_rollups(influx, bucket)
    t = DAYS[0] + timedelta(hours=10, minutes=50)
    pv = lambda i: raw_line("pageview", {  # noqa: E731
        "domain": "a.example", "page": "/", "source": "direct", "browser": "B", "os": "O",
        "device": "desktop", "country": "unknown", "count": 1, "visitor": "v", "sess_id": "s"},
        int(t.timestamp() * 1e9) + i)
    write(influx, bucket, [pv(0)])
    run_rollup(influx, bucket, "hourly", DAYS[0] + timedelta(hours=11))
    write(influx, bucket, [pv(1)])  # arrives late, after its hour was rolled up
    run_rollup(influx, bucket, "hourly", DAYS[0] + timedelta(hours=12))
    rows = influx.query('from(bucket: b) |> range(start: 0)'
                        ' |> filter(fn: (r) => r._measurement != "watermark")', b=bucket + "_1h")
    assert sorted((r["_measurement"], r["_time"], r["_value"]) for r in rows) == [
        (m, DAYS[0] + timedelta(hours=10), 2)
        for m in ("agents", "countries", "pages", "pageviews", "sources")]


def pageviews_at(*stamps: datetime) -> list[str]:
    return [raw_line("pageview", {"domain": "a.example", "page": "/", "source": "direct", "count": 1,
                                  "visitor": f"v{i}", "sess_id": f"s{i}"}, int(t.timestamp() * 1e9))
            for i, t in enumerate(stamps)]


def test_the_hourly_task_catches_up_the_hours_its_missed_runs_would_have_rolled_up(
        influx: Influx, bucket: str) -> None:
    """influxd down from 11:30 to 15:30: the 12:05, 13:05, 14:05 and 15:05 runs never happen, and
    InfluxDB does not make them up. The 16:05 run rolls up every hour since the last run's stop,
    not only the usual two; ten days later, a run goes back seven days at most."""
    setup_rollups(influx, bucket)
    day = DAYS[0]
    write(influx, bucket, pageviews_at(*(day + timedelta(hours=h, minutes=20) for h in range(10, 16))))
    run_rollup(influx, bucket, "hourly", day + timedelta(hours=11, minutes=5))
    run_rollup(influx, bucket, "hourly", day + timedelta(hours=16, minutes=5))
    hours = table(influx, bucket + "_1h", "pageviews", ["domain"])
    assert hours == {(day + timedelta(hours=h), "a.example"): 1 for h in range(10, 16)}
    later = day + timedelta(days=10)
    write(influx, bucket, pageviews_at(day + timedelta(days=1, hours=3), day + timedelta(days=8, hours=3)))
    run_rollup(influx, bucket, "hourly", later + timedelta(minutes=5))
    hours = table(influx, bucket + "_1h", "pageviews", ["domain"])
    assert (day + timedelta(days=8, hours=3), "a.example") in hours  # within seven days: caught up
    assert (day + timedelta(days=1, hours=3), "a.example") not in hours  # older: `upgrade --since`


def test_the_daily_task_catches_up_the_days_its_missed_runs_would_have_rolled_up(
        influx: Influx, bucket: str) -> None:
    setup_rollups(influx, bucket)
    day = DAYS[0]
    write(influx, bucket, pageviews_at(*(day + timedelta(days=d, hours=12) for d in range(5))))
    run_rollup(influx, bucket, "daily", day + timedelta(days=1, minutes=10))
    run_rollup(influx, bucket, "daily", day + timedelta(days=5, minutes=10))  # four days down
    traffic = table(influx, bucket + "_1d", "traffic", ["domain"])
    got = {stamp: value for (stamp, _), value in traffic.items()}
    pageviews = {r["_time"]: r["_value"] for r in influx.query(
        'from(bucket: b) |> range(start: 0) |> filter(fn: (r) => r._measurement == "traffic"'
        ' and r._field == "pageviews")', b=bucket + "_1d")}
    assert got and pageviews == {day + timedelta(days=d): 1 for d in range(5)}


def test_past_runs_queued_together_each_roll_up_only_their_own_window(
        influx: Influx, bucket: str) -> None:
    """Late points, the demo data and the bench queue many past runs at once (`rollups.rerun`),
    and InfluxDB runs them side by side: none may take the watermark left before them for a gap
    and roll up every hour since (the 11:00 hour here, which no usual window covers)."""
    setup_rollups(influx, bucket)
    day = DAYS[0]
    write(influx, bucket, pageviews_at(*(day + timedelta(hours=h, minutes=20) for h in range(10, 16))))
    run_rollup(influx, bucket, "hourly", day + timedelta(hours=11))  # 09:00 and 10:00
    runs = [(f"{bucket}_hourly", (day + timedelta(hours=h)).strftime("%Y-%m-%dT%H:%M:%SZ"))
            for h in (14, 16)]
    assert [r["status"] for r in rollups.rerun(influx.admin, bucket, runs)] == ["success"] * 2
    hours = table(influx, bucket + "_1h", "pageviews", ["domain"])
    assert hours == {(day + timedelta(hours=h), "a.example"): 1 for h in (10, 12, 13, 14, 15)}
    last = influx.query('from(bucket: b) |> range(start: 0)'
                        ' |> filter(fn: (r) => r._measurement == "watermark") |> last()', b=bucket + "_1h")
    assert [r["_time"] for r in last] == [day + timedelta(hours=16)]  # the next run goes on from there


def test_month_salt_gives_true_monthly_uniques(influx: Influx, bucket: str,
                                               loaded: list[dict[str, Any]]) -> None:
    setup_rollups(influx, bucket, salt="month")
    run_all(influx, bucket)
    rows = influx.query('from(bucket: b) |> range(start: 0) '
                        '|> filter(fn: (r) => r._field == "visitors")', b=bucket + "_1mo")
    got = {(r["_time"].month, r["domain"]): r["_value"] for r in rows}
    expected = {}
    for month in (2, 3):
        for domain in ("a.example", "b.example"):
            expected[(month, domain)] = float(len({r["visitor"] for r in loaded
                                                   if r["time"].month == month
                                                   and r["domain"] == domain}))
    assert got == expected


def test_setup_is_idempotent_and_updates_changed_tasks(influx: Influx, bucket: str) -> None:
    cfg = setup_rollups(influx, bucket)
    again = rollups.setup(cfg, influx.admin)
    assert set(again.values()) == {"unchanged"}
    changed = settings.load({"ANALYTICS_PERMITTED_DOMAINS": "a.example", "ANALYTICS_BUCKET": bucket,
                             "ANALYTICS_SALT_PERIOD": "month", "ANALYTICS_RAW_RETENTION": "40d"})
    report = rollups.setup(changed, influx.admin)
    assert report[f"task {bucket}_monthly"] == "updated"
    assert report[f"task {bucket}_hourly"] == "unchanged"
    assert report[f"bucket {bucket}"] == "updated"
    assert influx.admin.bucket_retention(bucket) == 40 * 86400
    assert influx.admin.bucket_retention(bucket + "_1d") == 0
    names = [t["name"] for t in influx.admin.tasks(prefix=bucket + "_")]
    assert names == [f"{bucket}_daily", f"{bucket}_hourly", f"{bucket}_monthly"]


def test_the_raw_bucket_gets_one_day_shard_groups(influx: Influx) -> None:
    """Today's raw reads then touch only today's series (docs/performance.md): a raw bucket made
    with InfluxDB's default (7 days, for a retention of forever) is brought to one day."""
    name = "t_shards_" + datetime.now(UTC).strftime("%H%M%S%f")
    influx.admin.ensure_bucket(name, 0)
    try:
        assert influx.admin.bucket_shard_group(name) == 7 * 86400
        cfg = settings.load({"ANALYTICS_PERMITTED_DOMAINS": "a.example", "ANALYTICS_BUCKET": name,
                             "ANALYTICS_RAW_RETENTION": "0"})
        assert rollups.setup(cfg, influx.admin)[f"bucket {name}"] == "updated"
        assert influx.admin.bucket_shard_group(name) == 86400
        assert influx.admin.bucket_shard_group(name + "_1d") == 7 * 86400  # rollups: the default
        assert set(rollups.setup(cfg, influx.admin).values()) == {"unchanged"}
        short = settings.load({**cfg_env(name), "ANALYTICS_RAW_RETENTION": "12h"})
        rollups.setup(short, influx.admin)
        assert influx.admin.bucket_retention(name) == 12 * 3600
        assert influx.admin.bucket_shard_group(name) == 3600  # under a day: InfluxDB's own choice
    finally:
        influx.admin.drop_with_rollups(name)


def cfg_env(bucket: str) -> dict[str, str]:
    return {"ANALYTICS_PERMITTED_DOMAINS": "a.example", "ANALYTICS_BUCKET": bucket}


@pytest.mark.parametrize("name", ['a"b', "x${y}", "back\\slash", 'q\\"${'])
def test_flux_string_escapes_everything(influx: Influx, name: str) -> None:
    rows = influx.query("import \"array\"\narray.from(rows: [{v: " + rollups.flux_string(name)
                        + "}])")
    assert rows[0]["v"] == name


def test_unsafe_bucket_names_are_refused() -> None:
    with pytest.raises(settings.ConfigError, match="ANALYTICS_BUCKET"):
        settings.load({"ANALYTICS_PERMITTED_DOMAINS": "a", "ANALYTICS_BUCKET": 'x") |> drop('})


def test_a_malformed_engagement_point_cannot_stop_the_daily_rollup(influx: Influx, bucket: str) -> None:
    """An engagement point the collector would never write (no session hash) is left out by the
    daily task; the task succeeds and every other figure of the day is rolled up."""

    at = int((DAYS[1] + timedelta(hours=10)).timestamp() * 1e9)
    tags = {"domain": "a.example", "page": "/p"}
    write(influx, bucket, [
        raw_line("pageview", {**tags, "source": "direct", "count": 1, "visitor": "v", "sess_id": "s"}, at),
        raw_line("engagement", {**tags, "sess_id": "s", "seconds": 7, "pageview": 1}, at + 1),
        raw_line("engagement", {**tags, "seconds": 99, "pageview": 1}, at + 2),
    ])
    setup_rollups(influx, bucket)
    run_rollup(influx, bucket, "daily", DAYS[1] + timedelta(days=1, hours=1))
    traffic = {r["_field"]: r["_value"] for r in influx.query(
        'from(bucket: b) |> range(start: 0) |> filter(fn: (r) => r._measurement == "traffic")',
        b=bucket + "_1d")}
    assert (traffic["pageviews"], traffic["engaged_views"], traffic["visit_seconds"]) == (1, 1, 7)


def test_a_month_periods_seen_count_keeps_reaching_the_daily_rollup(influx: Influx, bucket: str) -> None:
    """seen() with a month salt stamps its count at the month's start; the daily task, reading from
    yesterday, stopped updating it on the 3rd. Written on the 1st and updated on the 15th:"""
    setup_rollups(influx, bucket, salt="month")
    march = datetime(2026, 3, 1, tzinfo=UTC)
    stamp = int(march.timestamp() * 1e9)
    write(influx, bucket, [raw_line("usage_seen", {"category": "logins", "period": "month", "distinct": 3},
                                    stamp)])
    run_rollup(influx, bucket, "daily", march + timedelta(days=1, hours=1))
    write(influx, bucket, [raw_line("usage_seen", {"category": "logins", "period": "month", "distinct": 41},
                                    stamp)])  # the same point, a later count
    run_rollup(influx, bucket, "daily", march + timedelta(days=15, hours=1))
    rows = influx.query('from(bucket: b) |> range(start: 0) |> filter(fn: (r) => '
                        'r._measurement == "usage_seen")', b=bucket + "_1d")
    assert [(r["_time"], r["_value"]) for r in rows] == [(march, 41)]


def test_late_points_reach_every_rollup_level(make_app: Any, influx: Influx, bucket: str) -> None:
    """A 6-hour InfluxDB outage, and points from days and months back (a client clock behind):
    the scheduled runs have passed those windows, yet after delivery every rollup equals what the
    raw data says, because the writer re-ran exactly the windows its late points fell in."""

    app = make_app()
    setup_rollups(influx, bucket)
    now = datetime.now(UTC)
    hour = now.replace(minute=0, second=0, microsecond=0)
    outage = [hour - timedelta(hours=h, minutes=17) for h in range(1, 7)]
    old_day = hour - timedelta(days=3, hours=2)
    old_month = (hour.replace(day=1) - timedelta(days=70)).replace(hour=12)
    # The scheduler already ran for those windows, while InfluxDB had none of these points:
    hourly_runs = {(t + timedelta(hours=1)).replace(minute=0) for t in outage}
    scheduled = [(f"{bucket}_hourly", t) for t in hourly_runs]
    scheduled += [(f"{bucket}_daily",
                   datetime.combine(d.date() + timedelta(days=1), datetime.min.time(), UTC))
                  for d in (old_day, old_month)]
    scheduled += [(f"{bucket}_monthly", (old_month.replace(day=1) + timedelta(days=32)).replace(day=1))]
    results = influx.admin.run_tasks([(n, t.strftime("%Y-%m-%dT%H:%M:%SZ")) for n, t in scheduled])
    assert {r["status"] for r in results} == {"success"}

    sink = app.extensions["analytics"].sink()
    moments = [*outage, old_day, old_month]
    for i, moment in enumerate(moments):  # what the spool held: accepted back then, delivered now
        for j in range(i + 1):
            tags = {"domain": "example.com", "page": f"/p{i}", "source": "direct", "browser": "B",
                    "os": "O", "device": "desktop", "country": "unknown"}
            sink.write(raw_line("pageview", {**tags, "count": 1, "visitor": f"v{j}", "sess_id": f"s{j}"},
                                int(moment.timestamp() * 1e9) + j))
    flush(app)
    assert sink.backfill is not None and sink.backfill.runs >= len(outage) + 2 + 1

    hourly = {r["_time"]: r["_value"] for r in influx.query(
        'from(bucket: b) |> range(start: 0) |> filter(fn: (r) => r._measurement == "pageviews") '
        '|> group(columns: ["_time"]) |> sum()', b=bucket + "_1h")}
    assert hourly == {m.replace(minute=0): i + 1 for i, m in enumerate(moments)}
    daily = {r["_time"].date(): r["_value"] for r in influx.query(
        'from(bucket: b) |> range(start: 0) |> filter(fn: (r) => r._measurement == "traffic" and '
        'r._field == "pageviews")', b=bucket + "_1d")}
    assert daily[old_day.date()] == 7 and daily[old_month.date()] == 8
    monthly = {r["_time"].date(): r["_value"] for r in influx.query(
        'from(bucket: b) |> range(start: 0) |> filter(fn: (r) => r._measurement == "traffic" and '
        'r._field == "pageviews")', b=bucket + "_1mo")}
    assert monthly[date(old_month.year, old_month.month, 1)] == 8


def test_raw_points_written_by_0_3_0_roll_up_as_the_same_figures(influx: Influx, rolled: Any) -> None:
    """The upgrade path for raw points: 0.3.0 wrote visitor-controlled values as tags, 0.5.0
    writes them as fields. The shipped tasks pivot every raw point, which turns both into the
    same columns, so a bucket of old points rolls up exactly as one of new points."""
    from analytics_bp.points import line

    old_lines = []
    for r in make_dataset():
        tags = {k: r[k] for k in ("domain", "page", "source", "browser", "os", "device",
                                  "country", "timezone", "platform")}
        fields = {"count": 1, "visitor": r["visitor"], "sess_id": r["sess"], "pages": 1,
                  "load_ms": r["load_ms"]}
        old_lines.append(line("pageview", tags, fields, int(r["time"].timestamp() * 1e9)))
    new_bucket, _ = rolled
    with scratch_bucket(influx, "t_old_") as old_bucket:
        write(influx, old_bucket, old_lines)
        setup_rollups(influx, old_bucket)
        run_all(influx, old_bucket)
        for tier, measurement, keys in (
                ("_1h", "pageviews", []), ("_1h", "pages", ["page"]), ("_1h", "agents", ["browser", "os"]),
                ("_1d", "pages", ["page"]), ("_1d", "sources", ["source"]),
                ("_1d", "timezones", ["timezone", "platform"]), ("_1d", "traffic", ["_field"])):
            old = table(influx, old_bucket + tier, measurement, ["domain", *keys])
            new = table(influx, new_bucket + tier, measurement, ["domain", *keys])
            if measurement == "traffic":  # the new bucket also holds engaged time (extras)
                new = {k: v for k, v in new.items() if k[2] in {"pageviews", "visitors", "sessions",
                       "bounces", "pages_per_session", "load_ms_median"}}
            assert old and old == new, (tier, measurement)
