"""The Stats API on a real influxd: exact figures from raw points, rollups and the mix of both."""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from analytics_bp import rollups, settings
from analytics_bp.stats.engine import Engine
from analytics_bp.stats.query import DIMENSIONS, QueryError, parse
from tests.support.datasets import EVENTS, MODES, grafana_queries, substitute
from tests.support.influx import Influx

SITE = "a.example"
RANGE = ["2026-02-28", "2026-03-02"]
TOKEN = "stats-6Yp1Rz8Kc3Vn5Xq7Lm2Wb9Jd4Hf0Gt"


def engine_for(influx: Influx, bucket: str, mode: str) -> Engine:
    cfg = settings.load({"ANALYTICS_PERMITTED_DOMAINS": "a.example,b.example",
                         "ANALYTICS_BUCKET": bucket, "ANALYTICS_RAW_RETENTION": "0"})
    mark = MODES[mode]
    return Engine(cfg, influx.admin, lambda suffix: mark)


def ask(engine: Engine, **body: Any) -> dict[str, Any]:
    body.setdefault("include", {"answered_from": True})
    query = parse({"site_id": SITE, "date_range": RANGE, **body}, lambda: ["a.example", "b.example"],
                  "UTC", date(2026, 11, 23), engine.first_day)
    return engine.run(query)


def site_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in rows if r["domain"] == SITE]


def per_day(rows: list[dict[str, Any]]) -> dict[date, list[dict[str, Any]]]:
    out: dict[date, list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        out[r["time"].date()].append(r)
    return out


def expected_traffic(rows: list[dict[str, Any]], exact_median: bool) -> dict[str, Any]:
    """Figures for a set of pageviews, computed here the documented way (per-day components)."""
    visitors = visits = bounces = 0
    medians = []
    for items in per_day(rows).values():
        sessions = Counter(r["sess"] for r in items)
        visitors += len({r["visitor"] for r in items})
        visits += len(sessions)
        bounces += sum(1 for n in sessions.values() if n == 1)
        medians.append((float(statistics.median(r["load_ms"] for r in items)), len(items)))
    if exact_median:
        median = float(statistics.median(r["load_ms"] for r in rows))
    else:  # pageview-weighted median of the daily medians
        total, running, median = sum(w for _, w in medians), 0, 0.0
        for value, weight in sorted(medians):
            running += weight
            if running * 2 >= total:
                median = value
                break
    return {"visitors": visitors, "visits": visits, "pageviews": len(rows),
            "views_per_visit": round(len(rows) / visits, 2), "bounce_rate": round(100 * bounces / visits),
            "median_load_time": median}


TRAFFIC = ["visitors", "visits", "pageviews", "views_per_visit", "bounce_rate", "median_load_time"]


@pytest.mark.parametrize("mode", list(MODES))
def test_top_figures_and_days_are_exact_in_every_mode(influx: Influx, rolled: Any, mode: str) -> None:
    bucket, loaded = rolled
    engine = engine_for(influx, bucket, mode)
    rows = site_rows(loaded)
    total = ask(engine, metrics=[*TRAFFIC, "events"])
    expected = expected_traffic(rows, exact_median=mode == "raw")
    assert total["results"] == [{"metrics": [*(expected[m] for m in TRAFFIC), len(EVENTS)],
                                 "dimensions": []}]
    by_day = ask(engine, metrics=TRAFFIC, dimensions=["time:day"])
    assert by_day["results"] == [
        {"metrics": [expected_traffic(items, exact_median=True)[m] for m in TRAFFIC],
         "dimensions": [day.isoformat()]} for day, items in sorted(per_day(rows).items())]
    assert ask(engine, metrics=["pageviews"], date_range="all")["query"]["date_range"] == [
        "2026-02-28T00:00:00+00:00", "2026-11-23T23:59:59+00:00"]
    answered = total["meta"]["answered_from"]
    assert bool(answered["rollups"]) == (mode != "raw")
    assert (answered["raw_days"] is not None) == (mode != "rollups")


BREAKDOWNS = [("event:page", "page"), ("visit:source", "source"), ("visit:browser", "browser"),
              ("visit:os", "os"), ("visit:device", "device"), ("visit:country", "country"),
              ("visit:timezone", "timezone"), ("visit:platform", "platform")]


@pytest.mark.parametrize("mode", list(MODES))
def test_pageview_breakdowns_filters_and_hours_are_exact_in_every_mode(
        influx: Influx, rolled: Any, mode: str) -> None:
    bucket, loaded = rolled
    engine = engine_for(influx, bucket, mode)
    rows = site_rows(loaded)
    for dimension, key in BREAKDOWNS:
        answer = ask(engine, metrics=["pageviews"], dimensions=[dimension])
        counts = Counter(r[key] for r in rows)
        ordered = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
        assert answer["results"] == [{"metrics": [n], "dimensions": [v]} for v, n in ordered], dimension
    # a filter and a second dimension the hourly rollup keeps together
    answer = ask(engine, metrics=["pageviews"], dimensions=["visit:browser"],
                 filters=[["is", "event:page", ["/p1", "/p2"]], ["is_not", "visit:country", ["DE"]]])
    picked = [r for r in rows if r["page"] in ("/p1", "/p2") and r["country"] != "DE"]
    assert {tuple(r["dimensions"]): r["metrics"][0] for r in answer["results"]} == {
        (b,): n for b, n in Counter(r["browser"] for r in picked).items()}
    hours = ask(engine, metrics=["pageviews"], dimensions=["time:hour"],
                filters=[["contains", "event:page", ["P3"], {"case_sensitive": False}]])
    expected = Counter(r["time"].strftime("%Y-%m-%d %H:00:00") for r in rows if "p3" in r["page"])
    assert {r["dimensions"][0]: r["metrics"][0] for r in hours["results"]} == dict(expected)


PLAUSIBLE_FILTERS = [
    ([["matches", "event:page", ["^/p[12]$"]]], lambda r: r["page"] in ("/p1", "/p2")),
    ([["contains_not", "event:page", ["1"]]], lambda r: "1" not in r["page"]),
    ([["matches_not", "event:page", ["[03]"]]], lambda r: r["page"] in ("/p1", "/p2")),
    ([["is", "event:page", ["/P1"], {"case_sensitive": False}]], lambda r: r["page"] == "/p1"),
    ([["is", "event:page", ["/P1"]]], lambda r: False),
    ([["or", [["is", "event:page", ["/p0"]], ["is", "visit:country", ["DE"]]]]],
     lambda r: r["page"] == "/p0" or r["country"] == "DE"),
    ([["not", ["and", [["is", "visit:browser", ["Chrome"]], ["contains", "event:page", ["p2"]]]]]],
     lambda r: not (r["browser"] == "Chrome" and "p2" in r["page"])),
    ([["is_not", "visit:country", ["GB"]], ["or", [["matches", "event:page", ["0$"]],
                                                  ["contains", "event:page", ["3"]]]]],
     lambda r: r["country"] != "GB" and r["page"] in ("/p0", "/p3")),
]


@pytest.mark.parametrize("mode", list(MODES))
def test_plausible_operators_case_and_filter_trees_are_exact_in_every_mode(
        influx: Influx, rolled: Any, mode: str) -> None:
    """Pageviews by page under each of Plausible's operators, its case rule (case-sensitive
    unless the filter says otherwise) and and/or/not trees, against the rows picked here."""
    bucket, loaded = rolled
    engine = engine_for(influx, bucket, mode)
    rows = site_rows(loaded)
    for tree, picks in PLAUSIBLE_FILTERS:
        answer = ask(engine, metrics=["pageviews"], dimensions=["event:page"], filters=tree)
        expected = Counter(r["page"] for r in rows if picks(r))
        assert {r["dimensions"][0]: r["metrics"][0] for r in answer["results"]} == dict(expected), tree


@pytest.mark.parametrize("mode", list(MODES))
def test_events_and_notes_are_exact_in_every_mode(influx: Influx, rolled: Any, mode: str) -> None:
    bucket, _ = rolled
    engine = engine_for(influx, bucket, mode)
    names = ask(engine, metrics=["events"], dimensions=["event:name"])
    assert names["results"] == [{"metrics": [3], "dimensions": ["socialclick"]},
                                {"metrics": [1], "dimensions": ["signup"]}]
    notes = ask(engine, metrics=["events"], dimensions=["event:props:note"],
                filters=[["is", "event:name", ["socialclick"]]])
    assert notes["results"] == [{"metrics": [2], "dimensions": ["twitter"]},
                                {"metrics": [1], "dimensions": ["mastodon"]}]


def test_filtered_visitor_figures_come_from_raw_and_are_exact(influx: Influx, rolled: Any) -> None:
    """Visitor figures by source under a device filter: whole visits by their first pageview's
    source and device (this dataset's sessions switch device on every other pageview, so counting
    pageviews by their own device would give other figures), from raw points: no visit table keeps
    two keys."""
    bucket, loaded = rolled
    engine = engine_for(influx, bucket, "rollups")  # the rollups cannot answer this: raw is read
    rows = site_rows(loaded)
    answer = ask(engine, metrics=["visitors", "visits", "bounce_rate"], dimensions=["visit:source"],
                 filters=[["is", "visit:device", ["mobile"]]])
    assert answer["meta"]["answered_from"]["rollups"] == []
    got = {r["dimensions"][0]: r["metrics"] for r in answer["results"]}
    visits: dict[tuple[Any, str], list[dict[str, Any]]] = {}
    for r in sorted(rows, key=lambda r: r["time"]):
        visits.setdefault((r["time"].date(), r["sess"]), []).append(r)
    mobile = {k: v for k, v in visits.items() if v[0]["device"] == "mobile"}
    touched = {k for k, v in visits.items() if any(r["device"] == "mobile" for r in v)}
    assert mobile and set(mobile) != touched  # not the visits with a pageview on a phone
    expected = {}
    for source in {v[0]["source"] for v in mobile.values()}:
        picked = {k: v for k, v in mobile.items() if v[0]["source"] == source}
        visitors = len({(day, v[0]["visitor"]) for (day, _), v in picked.items()})
        bounce = round(100 * sum(len(v) == 1 for v in picked.values()) / len(picked))
        expected[source] = [visitors, len(picked), bounce]
    assert got == expected


def test_numbers_equal_the_grafana_panels(influx: Influx, rolled: Any) -> None:
    bucket, _ = rolled
    engine = engine_for(influx, bucket, "rollups")
    panels = {title: q for _, title, q in grafana_queries()}

    def panel(title: str) -> list[dict[str, Any]]:
        return influx.query(substitute(panels[title], bucket, SITE.replace(".", "\\.")))

    top = {r["page"]: r["pageviews"] for r in panel("Top pages")}
    api = ask(engine, metrics=["pageviews"], dimensions=["event:page"])
    assert {r["dimensions"][0]: r["metrics"][0] for r in api["results"]} == top
    countries = {r["country"]: r["pageviews"] for r in panel("Countries")}
    api = ask(engine, metrics=["pageviews"], dimensions=["visit:country"])
    assert {r["dimensions"][0]: r["metrics"][0] for r in api["results"]} == countries
    # Sources as the built-in dashboard asks for them: whole visits, never `internal`
    # bounce rate a whole percent in both, rounded half to even (Plausible's ClickHouse round)
    sources = {r["source"]: [r["visitors"], r["visits"], r["pageviews"], r["bounce_rate"]]
               for r in panel("Sources")}
    api = ask(engine, metrics=["visitors", "visits", "pageviews", "bounce_rate"],
              dimensions=["visit:source"], filters=[["is_not", "visit:source", ["internal"]]])
    assert {r["dimensions"][0]: r["metrics"] for r in api["results"]} == sources
    for table, dimension in (("Entry pages", "visit:entry_page"), ("Exit pages", "visit:exit_page")):
        key = dimension.split(":")[1]
        shown = {r[key]: [r["visitors"], r["visits"], r["bounce_rate"]] for r in panel(table)}
        api = ask(engine, metrics=["visitors", "visits", "bounce_rate"], dimensions=[dimension])
        assert {r["dimensions"][0]: r["metrics"] for r in api["results"]} == shown, table
    notes = {(r["event"], r.get("label")): r["events"] for r in panel("Events with notes")
             if r.get("label")}
    api = ask(engine, metrics=["events"], dimensions=["event:name", "event:props:note"])
    assert {tuple(r["dimensions"]): r["metrics"][0] for r in api["results"]} == notes
    # Per-day panels: a day's value is stamped at the day's start, as the API labels it.
    by_day = ask(engine, metrics=["visitors", "visits", "bounce_rate", "views_per_visit"],
                 dimensions=["time:day"])
    api_days = {r["dimensions"][0]: r["metrics"] for r in by_day["results"]}
    for title, index in (("Unique visitors per day", 0), ("Visits per day", 1), ("Bounce rate", 2),
                         ("Views per visit", 3)):
        shown = {r["_time"].date().isoformat(): r["_value"] if index == 2 else round(r["_value"], 2)
                 for r in panel(title)}
        assert shown == {day: values[index] for day, values in api_days.items()}, title


BAD: list[tuple[dict[str, Any], str]] = [
    ({"metrics": ["visitors"]}, "date_range is required"),
    ({"date_range": "7d"}, "metrics must be a non-empty list"),
    ({"metrics": ["nope"], "date_range": "7d"}, "unknown metric: 'nope'"),
    ({"metrics": ["visitors"], "date_range": "fortnight"}, "unknown date_range 'fortnight'"),
    ({"metrics": ["visitors"], "date_range": ["2026-03-02", "2026-03-01"]}, "ends before it starts"),
    ({"metrics": ["visitors"], "date_range": ["2026-3-1", "2026-03-02"]},
     "is neither an ISO date nor an ISO 8601 datetime"),
    ({"metrics": ["visitors"], "date_range": "7d", "dimensions": ["visit:city"]},
     "unknown dimension: 'visit:city'"),
    ({"metrics": ["visitors"], "date_range": "7d", "filters": [["wildcard", "event:page", ["/"]]]},
     "unknown filter operator 'wildcard'"),
    ({"metrics": ["visitors"], "date_range": "7d", "filters": [["is", "time:day", ["x"]]]},
     "cannot filter by 'time:day'"),
    ({"metrics": ["visitors"], "date_range": "7d", "filters": [["is", "event:page", []]]},
     "filter values for event:page"),
    ({"metrics": ["visitors"], "date_range": "7d", "filters": [["is", "event:page", ["a\ud800"]]]},
     "filter values for event:page"),
    ({"metrics": ["pageviews"], "date_range": "7d", "dimensions": ["event:name"]},
     "cannot be grouped or filtered by event:name"),
    ({"metrics": ["visitors"], "date_range": "12mo", "dimensions": ["time:hour"]},
     "time:hour needs a date_range of at most 31 days"),
    ({"metrics": ["visitors"], "date_range": "7d", "pagination": {"limit": 0}}, "pagination.limit"),
    ({"metrics": ["visitors"], "date_range": "7d", "order_by": [["pageviews", "desc"]]},
     "order_by 'pageviews' is not among"),
    ({"metrics": ["visitors"], "date_range": "7d", "extra": 1}, "unknown key 'extra'"),
    ({"metrics": "visitors", "date_range": "7d"}, "metrics must be a non-empty list"),
]


@pytest.mark.parametrize(("body", "reason"), BAD, ids=[r for _, r in BAD])
def test_bad_queries_are_400_with_the_reason(make_app: Any, body: dict[str, Any], reason: str) -> None:
    app = make_app(ANALYTICS_DASHBOARD_TOKEN=TOKEN, ANALYTICS_PERMITTED_DOMAINS="a.example")
    resp = app.test_client().post("/analytics/api/v2/query", json={"site_id": SITE, **body},
                                  headers={"Authorization": f"Bearer {TOKEN}"})
    assert resp.status_code == 400
    assert reason in resp.get_json()["error"]  # Plausible's shape: {"error": "<message>"}


def test_a_site_the_key_cannot_see_is_401_as_in_plausible(make_app: Any) -> None:
    app = make_app(ANALYTICS_DASHBOARD_TOKEN=TOKEN, ANALYTICS_PERMITTED_DOMAINS="a.example")
    client = app.test_client()
    for path, kwargs in (("/analytics/api/v2/query", {"json": {"site_id": "evil.com", "metrics": ["visitors"],
                                                               "date_range": "7d"}}),
                         ("/analytics/api/v1/stats/realtime/visitors?site_id=evil.com", {})):
        resp = (client.post if "json" in kwargs else client.get)(
            path, headers={"Authorization": f"Bearer {TOKEN}"}, **kwargs)
        assert resp.status_code == 401
        assert resp.get_json() == {"error": "Invalid API key or site ID 'evil.com': the key must have "
                                            "access to the site requested"}


def test_past_the_raw_retention_a_raw_only_query_is_refused(make_app: Any) -> None:
    app = make_app(ANALYTICS_DASHBOARD_TOKEN=TOKEN, ANALYTICS_PERMITTED_DOMAINS="a.example",
                   ANALYTICS_RAW_RETENTION="30d")
    resp = app.test_client().post(
        "/analytics/api/v2/query", headers={"Authorization": f"Bearer {TOKEN}"},
        json={"site_id": SITE, "metrics": ["visitors"], "date_range": "12mo",
              "filters": [["is", "event:page", ["/"]]]})
    assert resp.status_code == 400
    assert "raw data is kept for 30 days (ANALYTICS_RAW_RETENTION)" in resp.get_json()["error"]


def test_access_is_off_by_default_and_needs_the_token(make_app: Any) -> None:
    body = {"site_id": SITE, "metrics": ["visitors"], "date_range": "day"}
    off = make_app(ANALYTICS_PERMITTED_DOMAINS="a.example").test_client()
    for path in ("/analytics/dashboard", "/analytics/api/v1/stats/realtime/visitors?site_id=a.example",
                 "/analytics/dashboard/dashboard.js"):
        assert off.get(path).status_code == 404
    assert off.post("/analytics/api/v2/query", json=body).status_code == 404
    with pytest.raises(settings.ConfigError,
                       match=r"ANALYTICS_DASHBOARD_TOKEN=\(hidden\): expected a random token of at "
                             r"least 32 characters"):
        make_app(ANALYTICS_DASHBOARD_TOKEN="short")
    client = make_app(ANALYTICS_DASHBOARD_TOKEN=TOKEN, ANALYTICS_PERMITTED_DOMAINS="a.example").test_client()
    assert client.post("/analytics/api/v2/query", json=body).status_code == 401
    wrong = client.post("/analytics/api/v2/query", json=body, headers={"Authorization": "Bearer " + "x" * 40})
    assert wrong.status_code == 401
    ok = client.post("/analytics/api/v2/query", json=body, headers={"Authorization": f"Bearer {TOKEN}"})
    assert ok.status_code == 200
    assert ok.get_json()["results"] == [{"metrics": [0], "dimensions": []}]
    first, last = ok.get_json()["query"]["date_range"]  # "day": today, the whole day
    assert first[:10] == last[:10] and first[10:] == "T00:00:00+00:00" and last[10:] == "T23:59:59+00:00"
    login_page = client.get("/analytics/dashboard").get_data(as_text=True)
    assert "a.example" not in login_page and 'name="token"' in login_page
    bad = client.post("/analytics/dashboard/login", data={"token": "x" * 40})
    assert bad.status_code == 303 and "failed=1" in bad.headers["Location"]
    good = client.post("/analytics/dashboard/login", data={"token": TOKEN})
    cookie = good.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/analytics" in cookie
    page = client.get("/analytics/dashboard")
    assert page.status_code == 200 and 'id="figures"' in page.get_data(as_text=True)
    assert client.post("/analytics/api/v2/query", json=body).status_code == 200  # by cookie
    assert client.post("/analytics/api/v2/query", data="{}", content_type="text/plain").status_code == 415


def test_a_host_apps_own_check_replaces_the_token(influx: Influx, bucket: str, tmp_path: Any) -> None:
    from flask import Flask, request

    from analytics_bp import Analytics

    app = Flask(__name__)
    app.config.update(ANALYTICS_PERMITTED_DOMAINS="a.example", ANALYTICS_BUCKET=bucket,
                      ANALYTICS_STATE_DIR=str(tmp_path), **influx.creds.as_env())
    allow: Callable[[], bool] = lambda: request.headers.get("X-Staff") == "yes"  # noqa: E731
    Analytics(app, dashboard_auth=allow)
    client = app.test_client()
    body = {"site_id": SITE, "metrics": ["pageviews"], "date_range": "7d"}
    assert client.post("/analytics/api/v2/query", json=body).status_code == 401
    assert client.post("/analytics/api/v2/query", json=body, headers={"X-Staff": "yes"}).status_code == 200
    assert client.get("/analytics/dashboard").status_code == 403
    assert client.get("/analytics/dashboard", headers={"X-Staff": "yes"}).status_code == 200
    app.extensions["analytics"].close()


def test_realtime_counts_visitors_of_the_last_five_minutes(make_app: Any) -> None:
    from tests.support.influx import flush
    from tests.support.web import post

    app = make_app(ANALYTICS_DASHBOARD_TOKEN=TOKEN)
    for ip in ("203.0.113.1", "203.0.113.2", "203.0.113.2"):
        assert post(app, "pageview", {"domain": "example.com", "page": "/"}, ip=ip).status_code == 204
    flush(app)
    resp = app.test_client().get("/analytics/api/v1/stats/realtime/visitors?site_id=example.com",
                                 headers={"Authorization": f"Bearer {TOKEN}"})
    assert resp.get_json() == 2
    today = app.test_client().post("/analytics/api/v2/query", headers={"Authorization": f"Bearer {TOKEN}"},
                                   json={"site_id": "example.com", "metrics": ["visitors", "pageviews"],
                                         "date_range": "day"})
    assert today.get_json()["results"] == [{"metrics": [2, 3], "dimensions": []}]  # seconds after


def test_date_range_shortcuts_are_plausibles() -> None:
    """As Plausible's query parser defines them (docs/api.md): "Nd" the N days before today,
    "Nmo" whole months before the current one, "month" and "year" whole, datetimes to the second."""
    from analytics_bp.stats.query import parse_date_range

    now = datetime(2026, 11, 23, 15, 30, 12, 500_000, tzinfo=UTC)
    first = lambda: date(2025, 5, 4)  # noqa: E731

    def days(value: Any, tz: str = "UTC") -> tuple[str, str]:
        period = parse_date_range(value, now, first, tz)
        return period.first.isoformat(), period.last.isoformat()

    assert days("day") == ("2026-11-23T00:00:00+00:00", "2026-11-23T23:59:59+00:00")
    assert days("7d") == ("2026-11-16T00:00:00+00:00", "2026-11-22T23:59:59+00:00")
    assert days("28d")[0] == "2026-10-26T00:00:00+00:00"
    assert days("30d") == ("2026-10-24T00:00:00+00:00", "2026-11-22T23:59:59+00:00")
    assert days("91d")[0] == "2026-08-24T00:00:00+00:00"
    assert days("month") == ("2026-11-01T00:00:00+00:00", "2026-11-30T23:59:59+00:00")
    assert days("6mo") == ("2026-05-01T00:00:00+00:00", "2026-10-31T23:59:59+00:00")
    assert days("12mo") == ("2025-11-01T00:00:00+00:00", "2026-10-31T23:59:59+00:00")
    assert days("year") == ("2026-01-01T00:00:00+00:00", "2026-12-31T23:59:59+00:00")
    assert days("all") == ("2025-05-04T00:00:00+00:00", "2026-11-23T23:59:59+00:00")
    assert days("24h") == ("2026-11-22T15:30:12+00:00", "2026-11-23T15:30:12+00:00")
    assert days("3d", "Pacific/Auckland") == ("2026-11-21T00:00:00+13:00", "2026-11-23T23:59:59+13:00")
    assert days(["2024-01-01T12:00:00+02:00", "2024-01-01T15:59:59Z"], "Europe/Tallinn") == (
        "2024-01-01T12:00:00+02:00", "2024-01-01T17:59:59+02:00")
    for bad, reason in (("fortnight", "unknown date_range"), ("0d", "unknown date_range"),
                        ("5001d", "unknown date_range"), ("101mo", "unknown date_range"),
                        (["2020-01-01", "2026-01-01"], "spans more than"),
                        (["2024-01-01T12:00:00", "2024-01-02T12:00:00"], "needs its UTC offset"),
                        (["2024-01-02T00:00:00Z", "2024-01-01T00:00:00Z"], "ends before it starts")):
        with pytest.raises(QueryError, match=reason):
            parse_date_range(bad, now, first)


ZONE = "Pacific/Auckland"  # UTC+13 in February: the dataset's 10:00-12:00 UTC straddles midnight


@pytest.fixture(scope="module")
def rolled_in_zone(influx: Influx) -> Any:
    from tests.support.datasets import new_loaded_bucket

    name, rows = new_loaded_bucket(influx, "t_zone_")
    cfg = settings.load({"ANALYTICS_PERMITTED_DOMAINS": "a.example", "ANALYTICS_BUCKET": name,
                         "ANALYTICS_RAW_RETENTION": "0", "ANALYTICS_TIMEZONE": ZONE})
    rollups.setup(cfg, influx.admin)
    zone = ZoneInfo(ZONE)
    runs = [(f"{name}_daily", datetime(2026, 3, d, tzinfo=zone).astimezone(UTC)) for d in (1, 2, 3, 4)]
    results = influx.admin.run_tasks([(n, at.strftime("%Y-%m-%dT%H:%M:%SZ")) for n, at in runs])
    assert {r["status"] for r in results} == {"success"}
    yield name, rows, cfg
    influx.admin.drop_with_rollups(name)


@pytest.mark.parametrize("mode", ["raw", "rollups"])
def test_site_days_follow_the_time_zone_in_rollups_and_raw(influx: Influx, rolled_in_zone: Any,
                                                           mode: str) -> None:
    _, loaded, cfg = rolled_in_zone
    zone = ZoneInfo(ZONE)
    mark = None if mode == "raw" else datetime(2026, 3, 4, tzinfo=zone).astimezone(UTC)
    engine = Engine(cfg, influx.admin, lambda suffix: mark)
    query = parse({"site_id": SITE, "metrics": ["visitors", "visits", "pageviews"],
                   "date_range": ["2026-02-28", "2026-03-03"], "dimensions": ["time:day"],
                   "include": {"answered_from": True}},
                  lambda: [SITE], ZONE, date(2026, 11, 23), engine.first_day)
    answer = engine.run(query)
    assert bool(answer["meta"]["answered_from"]["rollups"]) == (mode == "rollups")
    local = [{**r, "time": r["time"].astimezone(zone)} for r in site_rows(loaded)]
    expected = [{"metrics": [len({r["visitor"] for r in items}), len({r["sess"] for r in items}),
                             len(items)],
                 "dimensions": [day.isoformat()]} for day, items in sorted(per_day(local).items())]
    assert len(expected) == 4  # the UTC days split across four Auckland days
    assert answer["results"] == expected


def test_answers_hold_aggregates_only(make_app: Any, influx: Influx, bucket: str) -> None:
    """No session ID, visitor hash or note of an event outside ANALYTICS_NOTE_EVENTS in any answer."""
    from tests.support.influx import flush
    from tests.support.web import post

    app = make_app(ANALYTICS_DASHBOARD_TOKEN=TOKEN, ANALYTICS_NOTE_EVENTS="socialclick")
    secret_sess, secret_note = "sessSECRET42", "private words"
    pageview = {"domain": "example.com", "page": "/a", "sess_id": secret_sess}
    assert post(app, "pageview", pageview).status_code == 204
    assert post(app, "event", {"domain": "example.com", "page": "/a", "event": "signup",
                               "note": secret_note, "sess_id": secret_sess}).status_code == 204
    flush(app)
    visitors = {r["_value"] for r in influx.query(
        'from(bucket: b) |> range(start: 0) |> filter(fn: (r) => r._field == "visitor")', b=bucket)}
    assert len(visitors) == 1
    client = app.test_client()
    answers = []
    for dimension in DIMENSIONS:
        metrics = ["events"] if dimension.startswith("event:") and dimension != "event:page" else \
            ["visitors", "visits", "pageviews"]
        resp = client.post("/analytics/api/v2/query", headers={"Authorization": f"Bearer {TOKEN}"},
                           json={"site_id": "example.com", "metrics": metrics, "date_range": "day",
                                 "dimensions": [dimension]})
        assert resp.status_code == 200, (dimension, resp.get_data(as_text=True))
        answers.append(resp.get_data(as_text=True))
    text = "\n".join(answers)
    assert '"dimensions":["/a"]' in text.replace(" ", "")  # the data is there...
    for secret in (secret_sess, secret_note, *visitors):  # ...and nothing that identifies or was free text
        assert secret not in text


def test_the_sites_api_tells_the_dashboard_what_only_events_or_pageviews_carry(make_app: Any) -> None:
    """The dashboard keeps event filters off pageview queries and source/UTM filters off event
    queries; which dimensions those are comes from the catalogue, through /api/v1/sites."""
    app = make_app(ANALYTICS_DASHBOARD_TOKEN=TOKEN, ANALYTICS_PERMITTED_DOMAINS="a.example")
    info = app.test_client().get("/analytics/api/v1/sites",
                                 headers={"Authorization": f"Bearer {TOKEN}"}).get_json()
    assert info["event_dimensions"] == ["event:name", "event:props:note", "event:props:destination",
                                        "event:props:file"]
    assert info["pageview_only_dimensions"] == ["visit:source", "visit:utm_source", "visit:utm_medium",
                                                "visit:utm_campaign", "visit:entry_page",
                                                "visit:exit_page"]
