"""Rollup tasks and dashboards on a real InfluxDB, against figures computed here independently."""

from __future__ import annotations

import json
import re
import statistics
import sys
from collections import Counter, defaultdict
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from influxdb_client.client.write_api import SYNCHRONOUS

from analytics_bp import rollups, settings
from analytics_bp.points import line

from .conftest import Influx

ROOT = Path(__file__).parent.parent
sys.path.insert(0, str(ROOT / "grafana"))
import build_dashboards  # noqa: E402

DAYS = [datetime(2026, 2, 28, tzinfo=UTC), datetime(2026, 3, 1, tzinfo=UTC),
        datetime(2026, 3, 2, tzinfo=UTC)]


def make_dataset() -> list[dict[str, Any]]:
    """Pageviews on three days (10:00-11:59), two domains, sessions with 1..3 pages."""
    rows = []
    n = 0
    for d, day in enumerate(DAYS):
        for domain, sessions in (("a.example", 5 + d), ("b.example", 2)):
            for s in range(sessions):
                pages = 1 + (s + d) % 3
                for p in range(pages):
                    n += 1
                    rows.append({
                        "time": day + timedelta(hours=10, minutes=(7 * n) % 120, microseconds=n),
                        "domain": domain, "page": f"/p{(s + p) % 4}",
                        "source": ["direct", "google.com", "internal"][s % 3],
                        "browser": ["Chrome", "Firefox"][s % 2], "os": "Linux",
                        "device": ["desktop", "mobile"][p % 2], "country": ["GB", "DE"][s % 2],
                        "timezone": str(-60 * (s % 2)), "platform": "linux",
                        "sess": f"{domain[0]}{d}s{s}", "visitor": f"v{domain[0]}{d}-{s % 4}",
                        "load_ms": 100 + 10 * ((n * 37) % 50),
                    })
    return rows


def to_lines(rows: list[dict[str, Any]]) -> list[str]:
    out = []
    for r in rows:
        tags = {k: r[k] for k in ("domain", "page", "source", "browser", "os", "device",
                                  "country", "timezone", "platform")}
        fields = {"count": 1, "visitor": r["visitor"], "sess_id": r["sess"], "pages": 1,
                  "load_ms": r["load_ms"]}
        out.append(line("pageview", tags, fields, int(r["time"].timestamp() * 1e9)))
    return out


EVENTS = [
    (DAYS[1] + timedelta(hours=10, minutes=5), "a.example", "socialclick", "twitter"),
    (DAYS[1] + timedelta(hours=10, minutes=6), "a.example", "socialclick", "twitter"),
    (DAYS[1] + timedelta(hours=11, minutes=1), "a.example", "socialclick", "mastodon"),
    (DAYS[1] + timedelta(hours=11, minutes=2), "a.example", "signup", None),
]


# The agent's extras on b.example: engaged time (running totals per pageview: the largest counts)
# and link events. (time, page, session, pageview number in the session, seconds)
ENGAGED = [
    (DAYS[1] + timedelta(hours=10, minutes=1), "/p0", "e1", 1, 5),
    (DAYS[1] + timedelta(hours=10, minutes=3), "/p0", "e1", 1, 12),
    (DAYS[1] + timedelta(hours=10, minutes=4), "/p1", "e1", 2, 30),
    (DAYS[1] + timedelta(hours=10, minutes=5), "/p0", "e2", 1, 7),
    (DAYS[1] + timedelta(hours=10, minutes=6), "/p0", "e3", 1, 40),
    (DAYS[1] + timedelta(hours=10, minutes=7), "/p0", "e3", 1, 40),
    (DAYS[2] + timedelta(hours=10, minutes=1), "/p1", "e4", 1, 3),
    (DAYS[2] + timedelta(hours=10, minutes=2), "/p1", "e4", 2, 9),
    (DAYS[2] + timedelta(hours=10, minutes=3), "/p0", "e5", 1, 100),
]
# (time, event, tag, tag value)
LINKS = [
    (DAYS[2] + timedelta(hours=11, minutes=1), "outbound", "destination", "github.com"),
    (DAYS[2] + timedelta(hours=11, minutes=2), "outbound", "destination", "github.com"),
    (DAYS[2] + timedelta(hours=11, minutes=3), "outbound", "destination", "mastodon.social"),
    (DAYS[2] + timedelta(hours=11, minutes=4), "download", "file", "/files/report.pdf"),
    (DAYS[2] + timedelta(hours=11, minutes=5), "download", "file", "/files/report.pdf"),
    (DAYS[2] + timedelta(hours=11, minutes=6), "download", "file", "cdn.example.net/x.zip"),
]


def engaged_views(day: datetime | None = None, page: str | None = None) -> dict[tuple, int]:
    """(day, session, number) -> seconds: each pageview's largest total, as documented."""
    out: dict[tuple, int] = {}
    for t, p, sess, number, seconds in ENGAGED:
        key = (t.replace(hour=0, minute=0), sess, number)
        if (day is None or key[0] == day) and (page is None or p == page):
            out[key] = max(out.get(key, 0), seconds)
    return out


def expected_engaged_traffic() -> dict[tuple, Any]:
    out: dict[tuple, Any] = {}
    for day in sorted({t.replace(hour=0, minute=0) for t, *_ in ENGAGED}):
        views = engaged_views(day)
        out[(day, "b.example", "engaged_views")] = len(views)
        out[(day, "b.example", "time_on_page_median")] = float(statistics.median(views.values()))
        out[(day, "b.example", "visit_seconds")] = sum(views.values())
        out[(day, "b.example", "engaged_visits")] = len({sess for _, sess, _ in views})
    return out


ENGAGED_TRAFFIC = expected_engaged_traffic()


def extras_lines() -> list[str]:
    out = []
    for i, (t, page, sess, number, seconds) in enumerate(ENGAGED):
        tags = {"domain": "b.example", "page": page, "browser": "Chrome", "os": "Linux",
                "device": "desktop", "country": "GB", "timezone": "0", "platform": "linux"}
        out.append(line("engagement", tags, {"sess_id": sess, "seconds": seconds, "pageview": number},
                        int(t.timestamp() * 1e9) + i))
    for i, (t, event, tag, value) in enumerate(LINKS):
        tags = {"domain": "b.example", "event": event, tag: value, "page": "/", "platform": "linux"}
        out.append(line("event", tags, {"count": 1, "note": value}, int(t.timestamp() * 1e9) + i))
    return out


def event_lines() -> list[str]:
    out = extras_lines()
    for i, (t, domain, event, label) in enumerate(EVENTS):
        tags = {"domain": domain, "event": event, "page": "/", "platform": "linux"}
        if label:
            tags["label"] = label
        out.append(line("event", tags, {"count": 1, "note": label or "x"},
                        int(t.timestamp() * 1e9) + i))
    t = int((DAYS[1] + timedelta(hours=10, minutes=30)).timestamp() * 1e9)
    out += [
        line("usage", {"action": "docs.extract"}, {"count": 1, "pseudonym_id": "p1"}, t),
        line("usage", {"action": "docs.extract"}, {"count": 1, "pseudonym_id": "p2"}, t + 1),
        line("usage_count", {"category": "api", "event": "call"}, {"count": 5}, t + 2),
        line("mark", {"category": "timeline"}, {"name": "deploy v2", "count": 1}, t + 3),
        line("rejected", {"reason": "bad_json"}, {"count": 3}, t + 4),
        line("usage_seen", {"category": "logins", "period": "day"}, {"distinct": 7},
             int(DAYS[1].timestamp() * 1e9)),
    ]
    return out


def write(influx: Influx, bucket: str, lines: list[str]) -> None:
    influx.client.write_api(write_options=SYNCHRONOUS).write(bucket=bucket, record=lines)


def setup_rollups(influx: Influx, bucket: str, salt: str = "day") -> settings.Config:
    cfg = settings.load({"ANALYTICS_PERMITTED_DOMAINS": "a.example", "ANALYTICS_BUCKET": bucket,
                         "ANALYTICS_SALT_PERIOD": salt, "ANALYTICS_RAW_RETENTION": "0"})
    report = rollups.setup(cfg, influx.admin)
    assert set(report.values()) <= {"created", "unchanged"}
    return cfg


def run(influx: Influx, bucket: str, stem: str, at: datetime) -> None:
    result = influx.admin.run_task(f"{bucket}_{stem}", at.strftime("%Y-%m-%dT%H:%M:%SZ"))
    assert result["status"] == "success", result["logs"][-1]


def run_all(influx: Influx, bucket: str) -> None:
    for day in DAYS:
        run(influx, bucket, "hourly", day + timedelta(hours=12))
    for day in DAYS:
        run(influx, bucket, "daily", day + timedelta(days=1, hours=1))
    run(influx, bucket, "monthly", DAYS[-1] + timedelta(days=1))


def table(influx: Influx, bucket: str, measurement: str, keys: list[str]) -> dict[tuple, Any]:
    rows = influx.query('from(bucket: b) |> range(start: 0) '
                        '|> filter(fn: (r) => r._measurement == m)', b=bucket, m=measurement)
    return {tuple([r["_time"]] + [r.get(k) for k in keys]): r["_value"] for r in rows}


def expected_daily_traffic(rows: list[dict[str, Any]]) -> dict[tuple, Any]:
    by_day: dict[tuple, list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        day = r["time"].replace(hour=0, minute=0, second=0, microsecond=0)
        by_day[(day, r["domain"])].append(r)
    out: dict[tuple, Any] = {}
    for (day, domain), items in by_day.items():
        per_session = Counter(r["sess"] for r in items)
        out[(day, domain, "pageviews")] = len(items)
        out[(day, domain, "visitors")] = len({r["visitor"] for r in items})
        out[(day, domain, "sessions")] = len(per_session)
        out[(day, domain, "bounces")] = sum(1 for c in per_session.values() if c == 1)
        out[(day, domain, "pages_per_session")] = statistics.mean(per_session.values())
        out[(day, domain, "load_ms_median")] = float(statistics.median(r["load_ms"] for r in items))
    return out


@pytest.fixture
def loaded(influx: Influx, bucket: str) -> list[dict[str, Any]]:
    rows = make_dataset()
    write(influx, bucket, to_lines(rows) + event_lines())
    return rows


def new_loaded_bucket(influx: Influx, prefix: str) -> tuple[str, list[dict[str, Any]]]:
    """A new raw bucket holding the known dataset and events (for module-scoped fixtures)."""
    name = prefix + datetime.now(UTC).strftime("%H%M%S%f")
    influx.admin.ensure_bucket(name, 0, rollups.raw_shard_group_seconds(0))  # as setup makes it
    rows = make_dataset()
    write(influx, name, to_lines(rows) + event_lines())
    return name, rows


@pytest.fixture(scope="module")
def rolled(influx: Influx) -> Any:
    """One dataset rolled up once, for the tests that only read the rollups."""
    name, rows = new_loaded_bucket(influx, "t_rolled_")
    setup_rollups(influx, name)
    run_all(influx, name)
    yield name, rows
    influx.admin.drop_with_rollups(name)


def test_rollups_match_independent_figures_and_rerun_changes_nothing(
    influx: Influx, rolled: Any
) -> None:
    bucket, loaded = rolled
    snapshots = []
    for attempt in range(2):
        hourly = table(influx, bucket + "_1h", "pageviews", ["domain", "page", "source", "browser",
                                                              "os", "device", "country"])
        expected_hourly = Counter(
            (r["time"].replace(minute=0, second=0, microsecond=0), r["domain"], r["page"],
             r["source"], r["browser"], r["os"], r["device"], r["country"]) for r in loaded)
        assert hourly == dict(expected_hourly)

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
    pv = lambda i: line("pageview", {"domain": "a.example", "page": "/", "source": "direct",  # noqa: E731
                                     "browser": "B", "os": "O", "device": "desktop",
                                     "country": "unknown"},
                        {"count": 1, "visitor": "v", "sess_id": "s"}, int(t.timestamp() * 1e9) + i)
    write(influx, bucket, [pv(0)])
    run(influx, bucket, "hourly", DAYS[0] + timedelta(hours=11))
    write(influx, bucket, [pv(1)])  # arrives late, after its hour was rolled up
    run(influx, bucket, "hourly", DAYS[0] + timedelta(hours=12))
    rows = influx.query('from(bucket: b) |> range(start: 0)', b=bucket + "_1h")
    assert [(r["_time"], r["_value"]) for r in rows] == [(DAYS[0] + timedelta(hours=10), 2)]


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


def test_committed_dashboards_are_generated_from_the_definitions() -> None:
    for filename, text in build_dashboards.render_all().items():
        assert (ROOT / "grafana" / "dashboards" / filename).read_text() == text, filename


def grafana_queries() -> list[tuple[str, str, str]]:
    out = []
    for path in sorted((ROOT / "grafana" / "dashboards").glob("*.json")):
        board = json.loads(path.read_text())
        assert board["uid"].startswith("analytics-")
        for p in board["panels"]:
            for target in p["targets"]:
                out.append((path.stem, p["title"], target["query"]))
        for anno in board["annotations"]["list"]:
            out.append((path.stem, "annotation " + anno["name"], anno["target"]["query"]))
        for var in board["templating"]["list"]:
            out.append((path.stem, "variable " + var["name"], var["query"]))
    return out


def substitute(query: str, bucket: str, domain_regex: str = ".*") -> str:
    return build_dashboards.bind(query, bucket, "2026-02-01T00:00:00Z", "2026-04-01T00:00:00Z",
                                 domain_regex=domain_regex)


def day_of(r: dict[str, Any]) -> Any:
    """The day a panel row is about: aggregateWindow stamps a window at its end."""
    return (r["_time"] - timedelta(days=1)).date()


def daily(field: str) -> Callable[[list[dict[str, Any]], list[dict[str, Any]]], bool]:
    """A per-day traffic panel shows exactly the daily rollup's figure for each domain and day."""
    def check(rows: list[dict[str, Any]], data: list[dict[str, Any]]) -> bool:
        expected = {(day.date(), domain): value
                    for (day, domain, name), value in expected_daily_traffic(data).items() if name == field}
        return {(day_of(r), r["domain"]): r["_value"] for r in rows} == pytest.approx(expected)
    return check


def tops(*keys: str) -> Callable[[list[dict[str, Any]], list[dict[str, Any]]], bool]:
    """A top-N table shows the exact counts, largest first."""
    def check(rows: list[dict[str, Any]], data: list[dict[str, Any]]) -> bool:
        got = {tuple(r[k] for k in keys): r["_value"] for r in rows}
        values = [r["_value"] for r in rows]
        return got == dict(Counter(tuple(r[k] for k in keys) for r in data)) and values == sorted(
            values, reverse=True)
    return check


EVENT_DAY = DAYS[1].date()
LINK_DAY = DAYS[2].date()
EXPECTED_ROWS: dict[str, Callable[[list[dict[str, Any]], list[dict[str, Any]]], bool]] = {
    "Pageviews": lambda rows, data: {(day_of(r), r["domain"]): r["_value"] for r in rows} == dict(
        Counter((r["time"].date(), r["domain"]) for r in data)),
    "Unique visitors per day": daily("visitors"),
    "Sessions per day": daily("sessions"),
    "Pages per session": daily("pages_per_session"),
    "Median load time (ms)": daily("load_ms_median"),
    "Bounce rate (%)": lambda rows, data: {(r["_time"].date(), r["domain"]): r["_value"] for r in rows}
    == pytest.approx({(day.date(), domain): 100 * value / expected_daily_traffic(data)[
        (day, domain, "sessions")] for (day, domain, name), value in expected_daily_traffic(data).items()
        if name == "bounces"}),
    "Top pages": tops("domain", "page"),
    "Sources": tops("domain", "source"),
    "Browsers, OS and devices": tops("browser", "os", "device"),
    "Countries": tops("country"),
    "Timezones and platforms": tops("timezone", "platform"),
    "Events": lambda rows, data: {(day_of(r), r["event"]): r["_value"] for r in rows} == {
        (EVENT_DAY, "socialclick"): 3, (EVENT_DAY, "signup"): 1, (LINK_DAY, "outbound"): 3,
        (LINK_DAY, "download"): 3},
    "Events with notes": lambda rows, data: {(r["event"], r.get("label")): r["_value"]
                                             for r in rows} == {
        ("socialclick", "twitter"): 2, ("socialclick", "mastodon"): 1, ("signup", None): 1,
        ("outbound", None): 3, ("download", None): 3},
    "Outbound links by destination": lambda rows, data: [
        (r["domain"], r["destination"], r["_value"]) for r in rows] == [
        ("b.example", "github.com", 2), ("b.example", "mastodon.social", 1)],
    "Downloads by file": lambda rows, data: [(r["domain"], r["file"], r["_value"]) for r in rows] == [
        ("b.example", "/files/report.pdf", 2), ("b.example", "cdn.example.net/x.zip", 1)],
    "Median time on page (s)": lambda rows, data: {(day_of(r), r["domain"]): r["_value"] for r in rows}
    == {(day.date(), domain): value for (day, domain, name), value in expected_engaged_traffic().items()
        if name == "time_on_page_median"},
    "Visit duration (s)": lambda rows, data: {(r["_time"].date(), r["domain"]): r["_value"] for r in rows}
    == pytest.approx({(day.date(), domain): value / ENGAGED_TRAFFIC[(day, domain, "engaged_visits")]
                      for (day, domain, name), value in ENGAGED_TRAFFIC.items() if name == "visit_seconds"}),
    # /p0: day medians 12 (3 views) and 100 (1 view): 12; /p1: 30 (1 view) and 6 (2 views): 6
    "Time on page by page (median, s)": lambda rows, data: [
        (r["domain"], r["page"], r["pageviews"], r["_value"]) for r in rows] == [
        ("b.example", "/p0", 4, 12.0), ("b.example", "/p1", 3, 6.0)],
    "Usage by action": lambda rows, data: [(day_of(r), r["action"], r["_value"]) for r in rows] == [
        (EVENT_DAY, "docs.extract", 2)],
    "Counts by category and event": lambda rows, data: [
        (r["category"], r["event"], r["_value"]) for r in rows] == [("api", "call", 5)],
    "Distinct identifiers per period": lambda rows, data: [
        (r["category"], r["period"], r["_value"]) for r in rows] == [("logins", "day", 7)],
    "Rejected beacons by reason": lambda rows, data: [(day_of(r), r["reason"], r["_value"])
                                                      for r in rows] == [(EVENT_DAY, "bad_json", 3)],
    "annotation Marks": lambda rows, data: [r["_value"] for r in rows] == ["deploy v2"],
    "variable domain": lambda rows, data: [r["_value"] for r in rows] == ["a.example",
                                                                          "b.example"],
}


def test_every_dashboard_query_runs_on_the_rollups(influx: Influx, rolled: Any) -> None:
    bucket, loaded = rolled
    queries = grafana_queries()
    assert len(queries) >= 18
    assert {title for _, title, _ in queries} == set(EXPECTED_ROWS)  # every panel has exact values
    for board, title, query in queries:
        assert "v.timeRangeStart" in query or title.startswith("variable")
        rows = influx.query(substitute(query, bucket))
        assert rows, f"{board}/{title} returned nothing"
        assert EXPECTED_ROWS[title](rows, loaded), f"{board}/{title}: {rows[:3]}"
    # the domain variable narrows every panel that has a domain
    only_b = influx.query(substitute(dict(((t, q) for _, t, q in queries))["Pageviews"], bucket,
                                     re.escape("b.example")))
    assert {r["domain"] for r in only_b} == {"b.example"}
    assert sum(r["_value"] for r in only_b) == sum(1 for r in loaded if r["domain"] == "b.example")
