"""The Stats API's latency for the whole dashboard: every query the page sends for a 30-day view.

Run on a bench month that `rollup_query.measure` wrote and rolled up with the shipped daily task,
through the real app (token check, parsing, the engine, JSON) with Flask's test client, so the
figure is the server's work per query without a network in between.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from analytics_bp import create_app
from analytics_bp.dev.admin import Admin
from analytics_bp.dev.localinflux import InfluxCredentials

TOKEN = "bench-Tz4Nq8Ls1Xc6Vb3Rm9Kd2Jw7Hy5Fp0"
SITE = "a.example"
REPEAT = 20


def dashboard_queries(site: str, period: str = "30d",
                      visit_filter: list[Any] | None = None) -> list[tuple[str, str, dict[str, Any] | None]]:
    """(name, path, body) of what dashboard.js asks for one view, in its order, with the agent's
    extras switched on (the engaged-time cards, time on page for the ten top pages shown, the Links
    panel's first tab). With `visit_filter` (a source, UTM, entry or exit page: what a click on a
    Sources row adds), every query carries it as the dashboard's `filtersFor` does and the median
    load is asked apart."""
    q = "/analytics/api/v2/query"
    figures = ["visitors", "visits", "pageviews", "bounce_rate", "views_per_visit", "median_load_time"]
    filters = [visit_filter] if visit_filter else []
    span = "day" if period == "30d" else "month"  # as dashboard.js charts a period

    def query(**body: Any) -> dict[str, Any]:
        return {"site_id": site, "date_range": period, **body,
                "filters": filters + body.get("filters", [])}

    shown = [f"/docs/page-{i}" for i in range(10)]  # the bench month's most viewed pages
    breakdowns = [("top pages", "event:page", ["pageviews"], []),
                  ("time on page, pages shown", "event:page", ["time_on_page"],
                   [["is", "event:page", shown]]),
                  ("sources", "visit:source", ["pageviews"], [["is_not", "visit:source", ["internal"]]]),
                  ("browsers", "visit:browser", ["pageviews"], []),
                  ("countries", "visit:country", ["pageviews"], []),
                  ("time zones", "visit:timezone", ["pageviews"], []),
                  ("outbound links", "event:props:destination", ["events"], []),
                  ("events", "event:name", ["events"], [])]
    engaged = ("engaged figures", q, query(metrics=["visit_duration", "time_on_page"]))
    where = {"answered_from": True}  # the bench reports which rollups and days answered
    if visit_filter:
        top = [("top figures", q, query(metrics=figures[:-1], include=where)),
               ("median load, apart", q, query(metrics=figures[-1:])), engaged]
    else:
        top = [("top figures", q, query(metrics=figures, include=where)), engaged]
    return [
        ("sites", "/analytics/api/v1/sites", None),
        ("first day (all)", q, {"site_id": site, "metrics": ["pageviews"], "date_range": "all"}),
        *top,
        (f"chart by {span}", q, query(metrics=["visitors", "pageviews"], dimensions=[f"time:{span}"],
                                      include={"time_labels": True})),
        *[(name, q, query(metrics=metrics, dimensions=[dim], filters=extra,
                          pagination={"limit": 10})) for name, dim, metrics, extra in breakdowns],
        ("realtime", f"/analytics/api/v1/stats/realtime/visitors?site_id={site}", None),
        ("server usage", f"/analytics/api/v1/usage?date_range={period}", None),
    ]


# The views timed: the default one, the same with a visit filter, and 12 months (11 of them older
# rollups, the 12th the bench month) with and without it. Filtered views read raw points for
# their breakdowns (no rollup keeps two keys), seconds per query on a busy month, so they are
# timed fewer times.
SOURCE_FILTER = ["is", "visit:source", ["google.com"]]
VIEWS = {"30d": ("30d", None, REPEAT), "30d, source filter": ("30d", SOURCE_FILTER, 1),
         "12mo": ("12mo", None, REPEAT), "12mo, source filter": ("12mo", SOURCE_FILTER, 1)}
OLDER_MONTHS = 11


def add_older_months(creds: InfluxCredentials, bucket: str, progress: Callable[[str], None]) -> int:
    """Eleven months of daily rollups before the bench month, copied from its own rolled-up days
    shifted back 30 days at a time, so that a 12-month view reads 11 months of rollups and the raw
    month (generating and rolling up raw points for them would take hours here). Returns the
    points written."""
    admin = Admin(creds.url, creds.org, creds.token, timeout_ms=600_000)
    daily = bucket + "_1d"
    first = admin.query('from(bucket: b) |> range(start: 0) |> filter(fn: (r) => r._measurement == "traffic")'
                        ' |> keep(columns: ["_time"]) |> group() |> first(column: "_time")',
                        params={"b": daily})[0]["_time"]
    written = 0
    for k in range(1, OLDER_MONTHS + 1):
        rows = admin.query(
            f"""from(bucket: b) |> range(start: start, stop: stop)
  |> filter(fn: (r) => r._measurement != "usage_seen")
  |> timeShift(duration: -{30 * k}d) |> to(bucket: b)
  |> keep(columns: ["_measurement"]) |> group() |> count(column: "_measurement")""",
            params={"b": daily, "start": first, "stop": first + timedelta(days=30)})
        written += int(rows[0]["_measurement"]) if rows else 0
        progress(f"older rollups: month {k}/{OLDER_MONTHS} written ({written:,} points)")
    admin.close()
    return written


def time_view(client: Any, headers: dict[str, str], queries: list[tuple[str, str, dict[str, Any] | None]],
              repeat: int) -> dict[str, Any]:
    """Every query of one view `repeat` times after a warm-up pass: p50/p95 per query, the slowest,
    and the whole page's (one pass: every query one after another)."""
    times: dict[str, list[float]] = {name: [] for name, _, _ in queries}
    answered: dict[str, Any] = {}
    for _ in range(repeat + 1):  # the first pass warms up
        for name, path, body in queries:
            started = time.perf_counter()
            resp = (client.post(path, json=body, headers=headers) if body
                    else client.get(path, headers=headers))
            elapsed = time.perf_counter() - started
            if resp.status_code != 200:
                raise RuntimeError(f"{name}: {resp.status_code} {resp.get_data(as_text=True)[:300]}")
            if len(times[name]) < repeat and name in answered:
                times[name].append(elapsed)
            answered[name] = resp.get_json()
    per_query = {name: {"p50_ms": round(statistics.median(t) * 1000, 1),
                        "p95_ms": round(sorted(t)[max(int(0.95 * len(t)) - 1, 0)] * 1000, 1)}
                 for name, t in times.items()}
    slowest = max(per_query, key=lambda n: per_query[n]["p95_ms"])
    passes = sorted(sum(times[name][i] for name in times) for i in range(repeat))
    figures = answered["top figures"]
    return {"queries": len(queries), "repeat": repeat, "per_query": per_query, "slowest": slowest,
            "slowest_p95_ms": per_query[slowest]["p95_ms"],
            "page_p50_ms": round(statistics.median(passes) * 1000, 1),
            "page_p95_ms": round(passes[max(int(0.95 * repeat) - 1, 0)] * 1000, 1),
            "answered_from": figures["meta"]["answered_from"],
            "pageviews": figures["results"][0]["metrics"][2]}


def measure(creds: InfluxCredentials, bucket: str, state: str, raw_points: int,
            progress: Callable[[str], None], months: int = 1) -> dict[str, Any]:
    """The views of `months` (1: the 30-day ones on the bench month alone; 12: first writes the
    older months' rollups, so run it after whatever measures the bucket's size)."""
    app = create_app(**creds.as_env(), ANALYTICS_BUCKET=bucket, ANALYTICS_STATE_DIR=state,
                     ANALYTICS_PERMITTED_DOMAINS="a.example,b.example,c.example",
                     ANALYTICS_DASHBOARD_TOKEN=TOKEN, ANALYTICS_RAW_RETENTION="0",
                     ANALYTICS_AGENT_EXTRAS="outbound,downloads,engagement")
    client = app.test_client()
    headers = {"Authorization": f"Bearer {TOKEN}"}
    period = "30d" if months == 1 else "12mo"
    older = add_older_months(creds, bucket, progress) if months == 12 else 0
    views: dict[str, Any] = {}
    for name, (view_period, visit_filter, repeat) in VIEWS.items():
        if view_period != period:
            continue
        queries = dashboard_queries(SITE, period, visit_filter)
        progress(f"timing the dashboard's {len(queries)} queries, view {name!r}, {repeat} times each")
        views[name] = time_view(client, headers, queries, repeat)
    app.extensions["analytics"].close()
    return {"raw_points": raw_points, **views[period], "views": views, "older_rollup_points": older}
