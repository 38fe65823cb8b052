"""The Grafana dashboards: built with Grafana's typed SDK and parsed back by it, importable with any
datasource, and every panel's query run on real rollups against figures computed here."""

from __future__ import annotations

import json
import re
import sys
from collections import Counter, defaultdict
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import dashboard as model

from analytics_bp import settings
from analytics_bp.schema import raw_line
from analytics_bp.stats.engine import Engine
from analytics_bp.stats.query import parse
from tests.support.build import ROOT
from tests.support.datasets import (
    DAYS,
    ENGAGED_TRAFFIC,
    event_lines,
    expected_daily_traffic,
    expected_engaged_traffic,
    grafana_queries,
    make_dataset,
    run_rollup,
    setup_rollups,
    substitute,
    to_lines,
    write,
)
from tests.support.influx import Influx
from tests.support.visits import figures, visits

sys.path.insert(0, str(ROOT / "grafana"))
import build_dashboards

Rows = list[dict[str, Any]]
BOARDS = sorted((ROOT / "grafana" / "dashboards").glob("*.json"))


def test_committed_dashboards_are_generated_from_the_definitions() -> None:
    rendered = build_dashboards.render_all()
    assert sorted(p.relative_to(ROOT) for p in rendered) == sorted(
        p.relative_to(ROOT) for p in (ROOT / "grafana").glob("*/*.json"))
    for path, text in rendered.items():
        assert path.read_text() == text, path


def lost(written: Any, parsed: Any, path: str = "") -> list[str]:
    """Where `parsed` (the SDK's model, encoded again) lacks or changed something of `written`;
    the defaults the parser fills in (an empty `custom`, `limit: 0`) are no loss."""
    if isinstance(written, dict) and isinstance(parsed, dict):
        return [miss for key, value in written.items()
                for miss in ([f"{path}/{key}"] if key not in parsed
                             else lost(value, parsed[key], f"{path}/{key}"))]
    if isinstance(written, list) and isinstance(parsed, list) and len(written) == len(parsed):
        return [miss for i, (a, b) in enumerate(zip(written, parsed, strict=True))
                for miss in lost(a, b, f"{path}[{i}]")]
    return [] if written == parsed else [path]


@pytest.mark.parametrize("path", BOARDS + sorted((ROOT / "grafana" / "import").glob("*.json")),
                         ids=lambda p: f"{p.parent.name}/{p.name}")
def test_the_sdk_parses_every_dashboard_without_losing_anything(path: Any) -> None:
    """The SDK's own parser reads each file into its typed models: nothing in it is a key the
    dashboard schema does not know (it would be dropped), and every target is a Flux query.
    The schema's annotation target has only the Grafana datasource's fields (the SDK says so in
    a TODO), so an InfluxDB annotation's query is read as a target on its own."""
    build_dashboards.register()
    data = json.loads(path.read_text())
    data.pop("__inputs", None), data.pop("__requires", None)
    annotations = [a.pop("target") for a in data["annotations"]["list"]]
    parsed = model.Dashboard.from_json(data)
    assert lost(data, json.loads(json.dumps(parsed, cls=JSONEncoder))) == []
    panels = parsed.panels or []
    assert panels and all(isinstance(t, build_dashboards.FluxQuery)
                          for p in panels for t in (p.targets or []))  # type: ignore[union-attr]
    assert [build_dashboards.FluxQuery.from_json(a).query for a in annotations] == [
        build_dashboards.q.MARKS]


def datasource_refs(node: Any) -> list[dict[str, Any]]:
    """Every `datasource` object anywhere in a dashboard: panels, targets, variables, annotations."""
    if isinstance(node, dict):
        found = [node["datasource"]] if isinstance(node.get("datasource"), dict) else []
        return found + [ref for value in node.values() for ref in datasource_refs(value)]
    if isinstance(node, list):
        return [ref for value in node for ref in datasource_refs(value)]
    return []


def grafana_import(text: str, chosen: dict[str, str]) -> dict[str, Any]:
    """What Grafana's import page does with a dashboard that has `__inputs`: each input becomes a
    choice, and `${NAME}` is replaced by the chosen datasource's uid everywhere in the JSON."""
    data = json.loads(text)
    for item in data["__inputs"]:
        assert item["type"] == "datasource" and item["pluginId"] == "influxdb"
        text = text.replace("${" + item["name"] + "}", chosen[item["name"]])
    imported: dict[str, Any] = json.loads(text)
    del imported["__inputs"], imported["__requires"]
    return imported


@pytest.mark.parametrize("name", ["traffic", "events", "usage"])
def test_an_exported_dashboard_imports_into_a_grafana_with_another_datasource_uid(name: str) -> None:
    text = (ROOT / "grafana" / "import" / f"{name}.json").read_text()
    imported = grafana_import(text, {"DS_ANALYTICS": "P951FEA4DE68E13C5"})
    refs = datasource_refs(imported)
    assert len(refs) >= 2 * len(imported["panels"])  # each panel and each of its targets
    assert all(ref == {"type": "influxdb", "uid": "P951FEA4DE68E13C5"} for ref in refs)
    assert "${DS_" not in json.dumps(imported)
    # the provisioned twin is the same dashboard on the fixed uid that provisioning creates
    provisioned = json.loads((ROOT / "grafana" / "dashboards" / f"{name}.json").read_text())
    assert json.loads(json.dumps(imported).replace("P951FEA4DE68E13C5", "analytics-influxdb")) == provisioned
    assert {r["uid"] for r in datasource_refs(provisioned)} == {"analytics-influxdb"}


def test_every_panel_has_a_unit_and_every_table_column_a_display_name(influx: Influx, rolled: Any) -> None:
    bucket, _ = rolled
    for path in BOARDS:
        for panel in json.loads(path.read_text())["panels"]:
            config = panel["fieldConfig"]
            if panel["type"] == "timeseries":
                assert {"unit", "decimals"} <= set(config["defaults"]), panel["title"]
                continue
            named = {o["matcher"]["options"]: {p["id"]: p.get("value") for p in o["properties"]}
                     for o in config["overrides"]}
            rows = influx.query(substitute(panel["targets"][0]["query"], bucket))
            columns = {k for r in rows for k in r if k not in ("result", "table")}
            assert columns and not [c for c in columns if c.startswith("_")], (panel["title"], columns)
            assert columns <= set(named), (panel["title"], columns - set(named))
            for column in columns:
                assert named[column]["displayName"][0].isupper(), (panel["title"], column)
                if isinstance(rows[0].get(column), int | float):
                    assert {"unit", "decimals"} <= set(named[column]), (panel["title"], column)


def test_units_of_the_figures_a_reader_compares() -> None:
    units = {(p["title"]): p["fieldConfig"]["defaults"].get("unit") for path in BOARDS
             for p in json.loads(path.read_text())["panels"] if p["type"] == "timeseries"}
    assert units["Bounce rate"] == "percent" and units["Median load time"] == "ms"
    assert units["Median time on page"] == units["Visit duration"] == "s"
    traffic = json.loads((ROOT / "grafana" / "dashboards" / "traffic.json").read_text())
    countries = next(p for p in traffic["panels"] if p["title"] == "Countries")
    mapping = next(prop["value"][0]["options"] for o in countries["fieldConfig"]["overrides"]
                   for prop in o["properties"] if prop["id"] == "mappings")
    assert mapping["DE"] == {"text": "Germany (DE)"} and mapping["GB"] == {"text": "United Kingdom (GB)"}
    assert len(mapping) >= 249  # every ISO 3166 code


def test_only_dashboards_whose_panels_have_a_domain_offer_the_domain_variable() -> None:
    for path in BOARDS:
        dash = json.loads(path.read_text())
        uses = [p["title"] for p in dash["panels"] if "${domain:regex}" in p["targets"][0]["query"]]
        names = [v["name"] for v in dash["templating"].get("list", [])]
        assert (names == ["domain"]) == bool(uses), path.name
        assert path.name != "usage.json" or not uses


def the_visits(data: Rows) -> dict[str, list[Any]]:
    by_domain: dict[str, list[Any]] = defaultdict(list)
    for domain in {r["domain"] for r in data}:
        by_domain[domain] = visits([r for r in data if r["domain"] == domain])
    return by_domain


def visit_rows(key: str, exclude: tuple[str, ...] = ()) -> Callable[[Rows, Rows], bool]:
    """A visit table: visitors, visits, pageviews and bounce rate per (domain, first or last
    value) from the visits computed here, largest by visitors first."""
    def check(rows: Rows, data: Rows) -> bool:
        expected = {}
        for domain, found in the_visits(data).items():
            groups: dict[str, list[Any]] = defaultdict(list)
            for v in found:
                groups[v.value("source" if key == "source" else key)].append(v)
            for value, group in groups.items():
                if value not in exclude:
                    f = figures(group)
                    expected[(domain, value)] = (f["visitors"], f["visits"], f["pageviews"],
                                                 round(100 * f["bounces"] / f["visits"]))
        got = {(r["domain"], r[key]): (r["visitors"], r["visits"], r["pageviews"], r["bounce_rate"])
               for r in rows}
        order = [(r["visitors"], r["visits"]) for r in rows]
        return bool(got == expected and order == sorted(order, reverse=True))
    return check


def daily(field: str) -> Callable[[Rows, Rows], bool]:
    """A per-day traffic panel shows exactly the daily rollup's figure, at the day's start."""
    def check(rows: Rows, data: Rows) -> bool:
        expected = {(day, domain): value
                    for (day, domain, name), value in expected_daily_traffic(data).items() if name == field}
        return {(r["_time"], r["domain"]): r["_value"] for r in rows} == pytest.approx(expected)
    return check


def tops(*keys: str, metric: str = "pageviews",
         rename: Callable[[str], str] = str) -> Callable[[Rows, Rows], bool]:
    """A top-N table shows the exact counts, largest first."""
    def check(rows: Rows, data: Rows) -> bool:
        got = {tuple(r[k] for k in keys): r[metric] for r in rows}
        values = [r[metric] for r in rows]
        want = Counter(tuple(rename(r[k]) if k == "timezone" else r[k] for k in keys) for r in data)
        return got == dict(want) and values == sorted(values, reverse=True)
    return check


MINUS = "\u2212"  # as the built-in dashboard writes a zone west of UTC


def zone(minutes_west: str) -> str:
    east = -int(minutes_west)
    return f"UTC{'+' if east >= 0 else MINUS}{abs(east) // 60:02d}:{abs(east) % 60:02d}"


EVENT_DAY, LINK_DAY = DAYS[1], DAYS[2]
H10 = timedelta(hours=10)
EXPECTED_ROWS: dict[str, Callable[[Rows, Rows], bool]] = {
    # hourly sums in one-day windows (bind's windowPeriod), stamped at the window's start
    "Pageviews": lambda rows, data: {(r["_time"], r["domain"]): r["_value"] for r in rows} == dict(
        Counter((r["time"].replace(hour=0, minute=0, second=0, microsecond=0), r["domain"]) for r in data)),
    "Unique visitors per day": daily("visitors"),
    "Visits per day": daily("sessions"),
    "Views per visit": daily("pages_per_session"),
    "Median load time": daily("load_ms_median"),
    "Bounce rate": lambda rows, data: {(r["_time"], r["domain"]): r["_value"] for r in rows}
    == {(day, domain): round(100 * value / expected_daily_traffic(data)[(day, domain, "sessions")])
        for (day, domain, name), value in expected_daily_traffic(data).items() if name == "bounces"},
    "Top pages": tops("domain", "page"),
    "Entry pages": visit_rows("entry_page"),
    "Exit pages": visit_rows("exit_page"),
    # `internal` is where a visit's later pages came from, never a visit's source
    "Sources": visit_rows("source", exclude=("internal",)),
    "Browsers, OS and devices": tops("browser", "os", "device"),
    "Countries": tops("country"),
    "Time zones and platforms": tops("timezone", "platform", rename=zone),
    "Events": lambda rows, data: {(r["_time"], r["event"]): r["_value"] for r in rows} == {
        (EVENT_DAY, "socialclick"): 3, (EVENT_DAY, "signup"): 1, (LINK_DAY, "outbound"): 3,
        (LINK_DAY, "download"): 3},
    "Events with notes": lambda rows, data: {(r["event"], r.get("label")): r["events"] for r in rows} == {
        ("socialclick", "twitter"): 2, ("socialclick", "mastodon"): 1, ("signup", None): 1,
        ("outbound", None): 3, ("download", None): 3},
    "Outbound links by destination": lambda rows, data: [
        (r["domain"], r["destination"], r["clicks"]) for r in rows] == [
        ("b.example", "github.com", 2), ("b.example", "mastodon.social", 1)],
    "Downloads by file": lambda rows, data: [(r["domain"], r["file"], r["downloads"]) for r in rows] == [
        ("b.example", "/files/report.pdf", 2), ("b.example", "cdn.example.net/x.zip", 1)],
    "Median time on page": lambda rows, data: {(r["_time"], r["domain"]): r["_value"] for r in rows}
    == {(day, domain): value for (day, domain, name), value in expected_engaged_traffic().items()
        if name == "time_on_page_median"},
    "Visit duration": lambda rows, data: {(r["_time"], r["domain"]): r["_value"] for r in rows}
    == pytest.approx({(day, domain): value / ENGAGED_TRAFFIC[(day, domain, "engaged_visits")]
                      for (day, domain, name), value in ENGAGED_TRAFFIC.items() if name == "visit_seconds"}),
    # /p0: day medians 12 (3 views) and 100 (1 view): 12; /p1: 30 (1 view) and 6 (2 views): 6
    "Time on page by page": lambda rows, data: [
        (r["domain"], r["page"], r["pageviews"], r["time_on_page"]) for r in rows] == [
        ("b.example", "/p0", 4, 12.0), ("b.example", "/p1", 3, 6.0)],
    "Usage by action": lambda rows, data: [(r["_time"], r["action"], r["_value"]) for r in rows] == [
        (EVENT_DAY, "docs.extract", 2)],
    "Counts by category and event": lambda rows, data: [
        (r["category"], r["event"], r["count"]) for r in rows] == [("api", "call", 5)],
    "Distinct identifiers per period": lambda rows, data: [
        (r["category"], r["period"], r["distinct"]) for r in rows] == [("logins", "day", 7)],
    "Rejected beacons by reason": lambda rows, data: [(r["_time"], r["reason"], r["_value"])
                                                      for r in rows] == [(EVENT_DAY, "bad_json", 3)],
    "annotation Marks": lambda rows, data: [r["_value"] for r in rows] == ["deploy v2"],
    "variable domain": lambda rows, data: [r["_value"] for r in rows] == ["a.example", "b.example"],
}


def test_every_dashboard_query_runs_on_the_rollups(influx: Influx, rolled: Any) -> None:
    bucket, loaded = rolled
    queries = grafana_queries()
    assert len(queries) >= 20
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


def test_the_domain_variable_lists_a_site_before_its_first_rollup(influx: Influx, bucket: str) -> None:
    """A site whose first beacon arrived seconds ago is in the raw bucket only; it is listed."""
    setup_rollups(influx, bucket)
    variable = next(q for _, t, q in grafana_queries() if t == "variable domain")
    line = raw_line("pageview", {"domain": "c.example", "count": 1, "visitor": "v", "page": "/",
                                 "source": "direct"}, int((DAYS[2] + H10).timestamp() * 1e9))
    write(influx, bucket, [line])
    assert [r["_value"] for r in influx.query(substitute(variable, bucket))] == ["c.example"]


def test_the_hourly_panels_include_the_hour_under_way(influx: Influx, bucket: str) -> None:
    """At 11:50 the hourly task has rolled up 10:00-11:00; the pageview of 11:40 and the event of
    11:45 are raw points only, and the panels show them (from raw points after the task's
    watermark), each hour once."""
    setup_rollups(influx, bucket)
    day = DAYS[0]
    stamp = lambda h, m: int((day + timedelta(hours=h, minutes=m)).timestamp() * 1e9)  # noqa: E731
    visit = {"domain": "a.example", "count": 1, "visitor": "v", "sess_id": "s", "page": "/"}
    write(influx, bucket, [raw_line("pageview", {**visit, "source": "direct"}, stamp(10, 20)),
                           raw_line("pageview", {**visit, "source": "internal"}, stamp(11, 40)),
                           raw_line("event", {**visit, "event": "signup"}, stamp(11, 45))])
    run_rollup(influx, bucket, "hourly", day + timedelta(hours=11, minutes=5))
    panels = {t: q for _, t, q in grafana_queries()}
    at = lambda h, m: (day + timedelta(hours=h, minutes=m)).strftime("%Y-%m-%dT%H:%M:%SZ")  # noqa: E731

    def shown(title: str, stop: str) -> list[tuple[Any, Any]]:
        query = build_dashboards.bind(panels[title], bucket, at(0, 0), stop, window="1h")
        return sorted((r["_time"], r["_value"]) for r in influx.query(query))

    assert shown("Pageviews", at(11, 50)) == [(day + timedelta(hours=10), 1), (day + timedelta(hours=11), 1)]
    assert shown("Events", at(11, 50)) == [(day + timedelta(hours=11), 1)]
    # a range ending exactly at the watermark, and one ending before it
    assert shown("Pageviews", at(11, 0)) == [(day + timedelta(hours=10), 1)]
    assert shown("Pageviews", at(10, 30)) == [(day + timedelta(hours=10), 1)]


def test_every_panel_shows_today_from_raw_points_as_the_stats_api_does(
        influx: Influx, bucket: str) -> None:
    """The daily task last ran at 00:10 on the third day (its watermark: midnight), so the first
    two days come from the rollups and the third ("today") from raw points: engaged time, events
    and visits of both kinds of day in one range. A pageview of the first day written after that
    run is not in the rollup yet: Grafana and the Stats API both leave it out until the next
    run. Every panel, annotation and variable equals the figures computed here, and the per-day
    panels the Stats API's for the same days."""
    rows = make_dataset()
    write(influx, bucket, to_lines(rows) + event_lines())
    setup_rollups(influx, bucket)
    run_rollup(influx, bucket, "daily", DAYS[1] + timedelta(minutes=10))
    run_rollup(influx, bucket, "daily", DAYS[2] + timedelta(minutes=10))
    late = {**rows[0], "time": DAYS[0] + timedelta(hours=15), "visitor": "late", "sess": "late"}
    write(influx, bucket, to_lines([late]))
    expected = expected_daily_traffic(rows)
    panels = {t: q for _, t, q in grafana_queries()}

    def shown(title: str) -> dict[tuple[Any, str], Any]:
        query = build_dashboards.bind(panels[title], bucket, "2026-02-28T00:00:00Z", "2026-03-03T00:00:00Z")
        return {(r["_time"], r["domain"]): r["_value"] for r in influx.query(query)}

    def want(name: str) -> dict[tuple[Any, str], Any]:
        return {(day, domain): value for (day, domain, field), value in expected.items() if field == name}

    # every panel, annotation and variable: the first day from the rollups, the rest raw
    for _, title, query in grafana_queries():
        bound = build_dashboards.bind(query, bucket, "2026-02-28T00:00:00Z", "2026-03-03T00:00:00Z")
        # the hourly task never ran: every hour is raw, the late pageview too
        data = [*rows, late] if title == "Pageviews" else rows
        assert EXPECTED_ROWS[title](influx.query(bound), data), title
    assert shown("Unique visitors per day") == want("visitors")
    assert shown("Visits per day") == want("sessions")
    assert shown("Views per visit") == pytest.approx(want("pages_per_session"))
    assert shown("Median load time") == pytest.approx(want("load_ms_median"))
    assert shown("Bounce rate") == {k: round(100 * b / want("sessions")[k])
                                    for k, b in want("bounces").items()}
    cfg = settings.load({"ANALYTICS_PERMITTED_DOMAINS": "a.example,b.example", "ANALYTICS_BUCKET": bucket,
                         "ANALYTICS_RAW_RETENTION": "0"})
    engine = Engine(cfg, influx.admin, lambda suffix: DAYS[2])
    for site in ("a.example", "b.example"):
        query = parse({"site_id": site, "date_range": ["2026-02-28", "2026-03-02"],
                       "dimensions": ["time:day"],
                       "metrics": ["visitors", "visits", "bounce_rate", "views_per_visit"]},
                      lambda: ["a.example", "b.example"], "UTC", date(2026, 11, 23), engine.first_day)
        api = {r["dimensions"][0]: r["metrics"] for r in engine.run(query)["results"]}
        grafana = {day.date().isoformat(): [
            shown("Unique visitors per day")[(day, site)], shown("Visits per day")[(day, site)],
            shown("Bounce rate")[(day, site)], round(shown("Views per visit")[(day, site)], 2)]
            for day in DAYS}
        assert grafana == api, site


def test_a_range_the_daily_rollup_covers_is_read_from_it_alone(influx: Influx, bucket: str) -> None:
    """The daily task's last run at 00:10 on the day after the range wrote its watermark at that
    midnight, the range's end: every per-day panel reads the whole range from the rollup, and
    shows the same rows with the raw points gone (as raw retention removes them)."""
    rows = make_dataset()
    write(influx, bucket, to_lines(rows) + event_lines())
    setup_rollups(influx, bucket)
    for day in DAYS:
        run_rollup(influx, bucket, "daily", day + timedelta(days=1, minutes=10))
    influx.admin.delete_points(bucket, "2026-01-01T00:00:00Z", "2026-04-01T00:00:00Z")
    daily_panels = [(title, query) for _, title, query in grafana_queries()
                    if 'mark = from(bucket: v.defaultBucket + "_1d")' in query]
    assert len(daily_panels) == 19
    for title, query in daily_panels:
        bound = build_dashboards.bind(query, bucket, "2026-02-28T00:00:00Z", "2026-03-03T00:00:00Z")
        assert EXPECTED_ROWS[title](influx.query(bound), rows), title


def test_export_writes_the_sites_time_zone_into_every_dashboard(tmp_path: Any) -> None:
    from analytics_bp import deploy
    cfg = settings.load({"ANALYTICS_PERMITTED_DOMAINS": "a.example",
                         "ANALYTICS_TIMEZONE": "Europe/Berlin"})
    target = settings.InfluxTarget("http://127.0.0.1:8086", "org", "secret-token", cfg.bucket)
    deploy.export_grafana(cfg, target, tmp_path)
    for folder in ("dashboards", "import"):
        for path in (tmp_path / folder).glob("*.json"):
            dash = json.loads(path.read_text())
            assert dash["timezone"] == "Europe/Berlin", path
            queries = [t["query"] for p in dash["panels"] for t in p["targets"]]
            zoned = [q for q in queries if "timezone.location" in q]
            assert zoned and all('timezone.location(name: "Europe/Berlin")' in q for q in zoned)
            assert path.name != "traffic.json" or len(zoned) >= 6


def test_exported_panels_follow_the_sites_time_zone_as_the_stats_api_does(
        influx: Influx, bucket: str, tmp_path: Any) -> None:
    """Sites in Pacific/Auckland (UTC+13 in February: the dataset's 10:00-12:00 UTC straddles its
    midnight): the exported dashboards' days start at its midnight, in the rollups and in the raw
    part alike, and equal the Stats API's days in that zone."""
    from zoneinfo import ZoneInfo

    from analytics_bp import deploy, rollups
    zone_name = "Pacific/Auckland"
    zone = ZoneInfo(zone_name)
    rows = make_dataset()
    write(influx, bucket, to_lines(rows))
    cfg = settings.load({"ANALYTICS_PERMITTED_DOMAINS": "a.example,b.example", "ANALYTICS_BUCKET": bucket,
                         "ANALYTICS_RAW_RETENTION": "0", "ANALYTICS_TIMEZONE": zone_name})
    rollups.setup(cfg, influx.admin)
    midnight = lambda m, d: datetime(2026, m, d, tzinfo=zone).astimezone(UTC)  # noqa: E731
    for day in (1, 2):  # the daily task as scheduled after two local midnights: cut at March 2nd
        run_rollup(influx, bucket, "daily", midnight(3, day) + timedelta(minutes=10))
    deploy.export_grafana(cfg, settings.InfluxTarget("http://x", "o", "t", bucket), tmp_path)
    board = json.loads((tmp_path / "dashboards" / "traffic.json").read_text())
    panels = {p["title"]: p["targets"][0]["query"] for p in board["panels"]}
    fmt = "%Y-%m-%dT%H:%M:%SZ"

    def shown(title: str, site: str) -> dict[str, Any]:
        query = build_dashboards.bind(panels[title], bucket, midnight(2, 28).strftime(fmt),
                                      midnight(3, 4).strftime(fmt))
        return {r["_time"].astimezone(zone).date().isoformat(): r["_value"]
                for r in influx.query(query) if r["domain"] == site}

    engine = Engine(cfg, influx.admin, lambda suffix: midnight(3, 2))
    for site in ("a.example", "b.example"):
        query = parse({"site_id": site, "date_range": ["2026-02-28", "2026-03-03"],
                       "dimensions": ["time:day"], "metrics": ["visitors", "visits", "pageviews"],
                       "include": {"answered_from": True}},
                      lambda: ["a.example", "b.example"], zone_name, date(2026, 11, 23), engine.first_day)
        answer = engine.run(query)
        assert answer["meta"]["answered_from"]["rollups"]  # the first days from the rollups
        api = {r["dimensions"][0]: r["metrics"][:2] for r in answer["results"]}
        visitors, visits = shown("Unique visitors per day", site), shown("Visits per day", site)
        assert {day: [visitors[day], visits[day]] for day in visitors} == api, site
        local_days = {r["time"].astimezone(zone).date().isoformat() for r in rows if r["domain"] == site}
        assert set(visitors) == local_days
