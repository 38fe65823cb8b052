"""Promises kept end to end (issue 16): what README, docs/privacy.md and the notice promise holds at
every layer, checked against the real services."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from analytics_bp import privacy, settings
from analytics_bp.cardinality import TagGuard
from analytics_bp.collector import Collector, RequestParts
from analytics_bp.dev.demo_traffic import LineCapture
from analytics_bp.points import line

from .conftest import CHROME_UA, Influx, flush
from .test_rollups import run, setup_rollups, write


def test_extra_cors_origins_match_exactly(make_app: Any) -> None:
    client = make_app(ANALYTICS_CORS_ORIGINS="https://partner.com").test_client()
    for origin, allowed in [("https://partner.com", True), ("https://partner.com.evil.net", False),
                            ("https://partner.computer", False), ("https://example.com", True)]:
        resp = client.options("/analytics/pageview", headers={
            "Origin": origin, "Access-Control-Request-Method": "POST"})
        assert resp.headers.get("Access-Control-Allow-Origin") == (origin if allowed else None), origin


def test_a_month_periods_seen_count_keeps_reaching_the_daily_rollup(influx: Influx, bucket: str) -> None:
    """seen() with a month salt stamps its count at the month's start; the daily task, reading from
    yesterday, stopped updating it on the 3rd. Written on the 1st and updated on the 15th:"""
    setup_rollups(influx, bucket, salt="month")
    march = datetime(2026, 3, 1, tzinfo=UTC)
    stamp = int(march.timestamp() * 1e9)
    write(influx, bucket, [line("usage_seen", {"category": "logins", "period": "month"},
                                {"distinct": 3}, stamp)])
    run(influx, bucket, "daily", march + timedelta(days=1, hours=1))
    write(influx, bucket, [line("usage_seen", {"category": "logins", "period": "month"},
                                {"distinct": 41}, stamp)])  # the same point, a later count
    run(influx, bucket, "daily", march + timedelta(days=15, hours=1))
    rows = influx.query('from(bucket: b) |> range(start: 0) |> filter(fn: (r) => '
                        'r._measurement == "usage_seen")', b=bucket + "_1d")
    assert [(r["_time"], r["_value"]) for r in rows] == [(march, 41)]


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def time(self) -> float:
        return self.now


def test_a_tab_open_across_midnight_cannot_be_linked(tmp_path: Path) -> None:
    """The same tab (session ID) and browser, one beacon before and one after the salt changes:
    nothing stored is equal across the boundary, and the session ID is never stored as sent."""
    cfg = settings.load({"ANALYTICS_PERMITTED_DOMAINS": "example.com",
                         "ANALYTICS_STATE_DIR": str(tmp_path)})
    midnight = datetime(2026, 3, 2, tzinfo=UTC).timestamp()
    clock = Clock(midnight - 1)
    lines = LineCapture()  # the demo month's writer that keeps lines
    collector = Collector(cfg, lambda: lines, privacy.SaltStore(cfg.salt_dir, "day", clock),
                          TagGuard(cfg.state_dir, 100))
    body = json.dumps({"domain": "example.com", "page": "/", "sess_id": "tab-1234"}).encode()
    parts = RequestParts(body, "text/plain", None, "203.0.113.5", None, CHROME_UA, None, None)
    assert collector.handle("pageview", parts).status == 204
    clock.now = midnight + 1
    assert collector.handle("pageview", parts).status == 204
    before, after = (dict(re.findall(r'(visitor|sess_id)="([0-9a-f]+)"', text)) for text in lines.lines)
    assert before["sess_id"] != after["sess_id"] and before["visitor"] != after["visitor"]
    assert all("tab-1234" not in text for text in lines.lines)


def test_health_details_only_for_this_host_or_the_dashboards_callers(make_app: Any) -> None:
    token = "health-3Fj8Qw2Zr7Lx5Cv9Bn1Mk4Hd6Gs0Pt"
    client = make_app(ANALYTICS_TRUSTED_PROXIES=1, ANALYTICS_DASHBOARD_TOKEN=token).test_client()
    public = client.get("/analytics/health", headers={"X-Forwarded-For": "203.0.113.7"})
    assert (public.status_code, public.get_json()) == (200, {"status": "ok"})
    authorised = client.get("/analytics/health", headers={"X-Forwarded-For": "203.0.113.7",
                                                           "Authorization": f"Bearer {token}"})
    local = client.get("/analytics/health")  # straight to the app, from this host
    for resp in (authorised, local):
        assert {"status", "version", "influxdb", "writer", "rejected"} == set(resp.get_json())


def test_set_aside_lines_are_deleted_after_the_raw_retention(make_app: Any, tmp_path: Path) -> None:
    import os
    import time

    app = make_app(ANALYTICS_RAW_RETENTION="2d")
    rejected = Path(app.extensions["analytics"].config.spool_dir) / "rejected"
    rejected.mkdir(parents=True, exist_ok=True)
    old, fresh = rejected / "1-old.lp", rejected / "2-fresh.lp"
    for path in (old, old.with_suffix(".reason"), fresh, fresh.with_suffix(".reason")):
        path.write_text("set aside line\n")
    three_days_ago = time.time() - 3 * 86400
    for path in (old, old.with_suffix(".reason")):
        os.utime(path, (three_days_ago, three_days_ago))
    app.extensions["analytics"].sink()  # a writer starts: it prunes
    assert sorted(p.name for p in rejected.iterdir()) == ["2-fresh.lp", "2-fresh.reason"]


def test_late_points_reach_every_rollup_level(make_app: Any, influx: Influx, bucket: str) -> None:
    """A 6-hour InfluxDB outage, and points from days and months back (a client clock behind):
    the scheduled runs have passed those windows, yet after delivery every rollup equals what the
    raw data says, because the writer re-ran exactly the windows its late points fell in."""
    from datetime import date

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
            sink.write(line("pageview", tags,
                            {"count": 1, "visitor": f"v{j}", "sess_id": f"s{j}"},
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


def test_the_notice_and_the_docs_say_the_same_true_thing(make_app: Any) -> None:
    notice = make_app(ANALYTICS_RAW_RETENTION="14d").test_client().get(
        "/analytics/privacy", headers={"Accept": "application/json"}).get_json()
    retention = notice["settings"]["ANALYTICS_RAW_RETENTION"]
    assert "14 days and then deleted" in retention and "count as personal data" in retention
    assert "could not be stored are deleted after at most 14 days" in retention
    docs = (Path(__file__).parent.parent / "docs" / "privacy.md").read_text()
    assert "ANALYTICS_SPOOL_DIR/rejected` | as long as raw points, at most 30 days" in docs
    assert "pseudonymous personal data" in docs and "stores no IP address or personal data" not in docs
