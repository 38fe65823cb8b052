"""The Stats API's latency for the whole dashboard: every query the page sends for a 30-day view.

Run on a bench month that `rollup_query.measure` wrote and rolled up with the shipped daily task,
through the real app (token check, parsing, the engine, JSON) with Flask's test client, so the
figure is the server's work per query without a network in between.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any

from analytics_bp import create_app
from analytics_bp.dev.localinflux import InfluxCredentials

TOKEN = "bench-Tz4Nq8Ls1Xc6Vb3Rm9Kd2Jw7Hy5Fp0"
SITE = "a.example"
REPEAT = 20


def dashboard_queries(site: str, period: str = "30d") -> list[tuple[str, str, dict[str, Any] | None]]:
    """(name, path, body) of what dashboard.js asks for one view, in its order, with the agent's
    extras switched on (the engaged-time cards, time on page for the ten top pages shown, the Links
    panel's first tab)."""
    q = "/analytics/api/v2/query"
    figures = ["visitors", "visits", "pageviews", "bounce_rate", "views_per_visit", "median_load_time"]

    def query(**body: Any) -> dict[str, Any]:
        return {"site_id": site, "date_range": period, **body}

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
    return [
        ("sites", "/analytics/api/v1/sites", None),
        ("first day (all)", q, {"site_id": site, "metrics": ["pageviews"], "date_range": "all"}),
        ("top figures", q, query(metrics=figures)),
        ("engaged figures", q, query(metrics=["visit_duration", "time_on_page"])),
        ("chart by day", q, query(metrics=["visitors", "pageviews"], dimensions=["time:day"],
                                  include={"time_labels": True})),
        *[(name, q, query(metrics=metrics, dimensions=[dim], filters=filters,
                          pagination={"limit": 10})) for name, dim, metrics, filters in breakdowns],
        ("realtime", f"/analytics/api/v1/stats/realtime/visitors?site_id={site}", None),
        ("server usage", f"/analytics/api/v1/usage?date_range={period}", None),
    ]


def measure(creds: InfluxCredentials, bucket: str, state: str, raw_points: int,
            progress: Callable[[str], None]) -> dict[str, Any]:
    app = create_app(**creds.as_env(), ANALYTICS_BUCKET=bucket, ANALYTICS_STATE_DIR=state,
                     ANALYTICS_PERMITTED_DOMAINS="a.example,b.example,c.example",
                     ANALYTICS_DASHBOARD_TOKEN=TOKEN, ANALYTICS_RAW_RETENTION="0",
                     ANALYTICS_AGENT_EXTRAS="outbound,downloads,engagement")
    client = app.test_client()
    headers = {"Authorization": f"Bearer {TOKEN}"}
    queries = dashboard_queries(SITE)
    times: dict[str, list[float]] = {name: [] for name, _, _ in queries}
    answered: dict[str, Any] = {}
    progress(f"timing the dashboard's {len(queries)} queries {REPEAT} times each")
    for _ in range(REPEAT + 1):  # the first pass warms up
        for name, path, body in queries:
            started = time.perf_counter()
            resp = (client.post(path, json=body, headers=headers) if body
                    else client.get(path, headers=headers))
            elapsed = time.perf_counter() - started
            if resp.status_code != 200:
                raise RuntimeError(f"{name}: {resp.status_code} {resp.get_data(as_text=True)[:300]}")
            if len(times[name]) < REPEAT and name in answered:
                times[name].append(elapsed)
            answered[name] = resp.get_json()
    app.extensions["analytics"].close()
    per_query = {name: {"p50_ms": round(statistics.median(t) * 1000, 1),
                        "p95_ms": round(sorted(t)[int(0.95 * len(t)) - 1] * 1000, 1)}
                 for name, t in times.items()}
    slowest = max(per_query, key=lambda n: per_query[n]["p95_ms"])
    passes = [sum(times[name][i] for name in times) for i in range(REPEAT)]
    figures = answered["top figures"]
    return {"raw_points": raw_points, "queries": len(queries), "repeat": REPEAT, "per_query": per_query,
            "slowest": slowest, "slowest_p95_ms": per_query[slowest]["p95_ms"],
            "page_p50_ms": round(statistics.median(passes) * 1000, 1),
            "page_p95_ms": round(sorted(passes)[int(0.95 * REPEAT) - 1] * 1000, 1),
            "answered_from": figures["meta"]["answered_from"],
            "pageviews_30d": figures["results"][0]["metrics"][2]}
