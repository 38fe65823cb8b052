"""A small known dataset (three days, two sites, events, links, engaged time) written as raw
points and rolled up by the shipped tasks on a real influxd; figures computed from it independently."""

from __future__ import annotations

import json
import statistics
import sys
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from influxdb_client.client.write_api import SYNCHRONOUS

from analytics_bp import rollups, settings
from analytics_bp.schema import raw_line
from tests.support.build import ROOT
from tests.support.influx import Influx

sys.path.insert(0, str(ROOT / "grafana"))
import build_dashboards

# For the Stats API: when the rollup tasks are complete up to (None = never ran: raw only).
# All days, or the first day only.
MODES = {"raw": None, "rollups": datetime(2026, 3, 3, tzinfo=UTC),
         "mixed": datetime(2026, 3, 1, tzinfo=UTC)}
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
        out.append(raw_line("pageview", {**tags, **fields}, int(r["time"].timestamp() * 1e9)))
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
        out.append(raw_line("engagement", {**tags, "sess_id": sess, "seconds": seconds, "pageview": number},
                            int(t.timestamp() * 1e9) + i))
    for i, (t, event, tag, value) in enumerate(LINKS):
        tags = {"domain": "b.example", "event": event, tag: value, "page": "/", "platform": "linux"}
        out.append(raw_line("event", {**tags, "count": 1, "note": value}, int(t.timestamp() * 1e9) + i))
    return out


def event_lines() -> list[str]:
    out = extras_lines()
    for i, (t, domain, event, label) in enumerate(EVENTS):
        tags = {"domain": domain, "event": event, "page": "/", "platform": "linux"}
        if label:
            tags["label"] = label
        out.append(raw_line("event", {**tags, "count": 1, "note": label or "x"},
                            int(t.timestamp() * 1e9) + i))
    t = int((DAYS[1] + timedelta(hours=10, minutes=30)).timestamp() * 1e9)
    out += [
        raw_line("usage", {"action": "docs.extract", "count": 1, "pseudonym_id": "p1"}, t),
        raw_line("usage", {"action": "docs.extract", "count": 1, "pseudonym_id": "p2"}, t + 1),
        raw_line("usage_count", {"category": "api", "event": "call", "count": 5}, t + 2),
        raw_line("mark", {"category": "timeline", "name": "deploy v2", "count": 1}, t + 3),
        raw_line("rejected", {"reason": "bad_json", "count": 3}, t + 4),
        raw_line("usage_seen", {"category": "logins", "period": "day", "distinct": 7},
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


def run_rollup(influx: Influx, bucket: str, stem: str, at: datetime) -> None:
    result = influx.admin.run_task(f"{bucket}_{stem}", at.strftime("%Y-%m-%dT%H:%M:%SZ"))
    assert result["status"] == "success", result["logs"][-1]


def run_all(influx: Influx, bucket: str) -> None:
    for day in DAYS:
        run_rollup(influx, bucket, "hourly", day + timedelta(hours=12))
    for day in DAYS:
        run_rollup(influx, bucket, "daily", day + timedelta(days=1, hours=1))
    run_rollup(influx, bucket, "monthly", DAYS[-1] + timedelta(days=1))


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
        for var in board["templating"].get("list", []):
            out.append((path.stem, "variable " + var["name"], var["query"]))
    return out


def substitute(query: str, bucket: str, domain_regex: str = ".*") -> str:
    return build_dashboards.bind(query, bucket, "2026-02-01T00:00:00Z", "2026-04-01T00:00:00Z",
                                 domain_regex=domain_regex)
