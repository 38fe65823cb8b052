"""Visit dimensions and whole-visit filters in the Stats API, exact in raw-only, rollups-only and
mixed modes against visits found here independently (tests/support/visits.py)."""

from __future__ import annotations

import statistics
from collections import defaultdict
from datetime import date, timedelta
from typing import Any

import pytest

from analytics_bp import rollups, settings
from analytics_bp.stats.engine import Engine
from analytics_bp.stats.query import parse
from tests.support import visits as known
from tests.support.datasets import run_rollup, write
from tests.support.influx import Influx

METRICS = ["visitors", "visits", "pageviews", "bounce_rate", "views_per_visit"]
DIMENSIONS = {"visit:entry_page": "entry_page", "visit:exit_page": "exit_page",
              "visit:source": "source", "visit:utm_source": "utm_source",
              "visit:utm_medium": "utm_medium", "visit:utm_campaign": "utm_campaign",
              **{f"visit:{k}": k for k in known.AGENT_KEYS}}
RANGE = [known.DAYS[0].date().isoformat(), known.DAYS[1].date().isoformat()]


@pytest.fixture(scope="module")
def visit_bucket(influx: Influx) -> Any:
    name = "t_visits_" + known.DAYS[0].strftime("%H%M%S") + str(id(influx))[-6:]
    cfg = settings.load({"ANALYTICS_PERMITTED_DOMAINS": known.SITE, "ANALYTICS_BUCKET": name,
                         "ANALYTICS_RAW_RETENTION": "0"})
    rollups.setup(cfg, influx.admin)
    write(influx, name, known.to_lines(known.pageviews()) + known.event_lines() + known.engagement_lines())
    for day in known.DAYS:
        run_rollup(influx, name, "daily", day + timedelta(days=1))
    yield name
    influx.admin.drop_with_rollups(name)


def ask(influx: Influx, bucket: str, mode: str, **body: Any) -> dict[str, Any]:
    cfg = settings.load({"ANALYTICS_PERMITTED_DOMAINS": known.SITE, "ANALYTICS_BUCKET": bucket,
                         "ANALYTICS_RAW_RETENTION": "0"})
    mark = known.MODES[mode]
    engine = Engine(cfg, influx.admin, lambda suffix: mark)
    body.setdefault("include", {"answered_from": True})
    query = parse({"site_id": known.SITE, "date_range": RANGE, **body}, lambda: [known.SITE], "UTC",
                  date(2026, 11, 23), engine.first_day)
    return engine.run(query)


def metrics_of(found: list[known.Visit]) -> list[Any]:
    f = known.figures(found)
    return [f["visitors"], f["visits"], f["pageviews"], round(100 * f["bounces"] / f["visits"]),
            round(f["pageviews"] / f["visits"], 2)]


@pytest.mark.parametrize("mode", list(known.MODES))
def test_visit_dimensions_are_exact_in_every_mode(influx: Influx, visit_bucket: str, mode: str) -> None:
    found = known.visits(known.pageviews())
    for dimension, attr in DIMENSIONS.items():
        answer = ask(influx, visit_bucket, mode, metrics=METRICS, dimensions=[dimension],
                     order_by=[[dimension, "asc"]])
        groups: dict[str, list[known.Visit]] = defaultdict(list)
        for v in found:
            if v.value(attr) is not None:
                groups[str(v.value(attr))].append(v)
        assert answer["results"] == [{"metrics": metrics_of(g), "dimensions": [value]}
                                     for value, g in sorted(groups.items())], dimension
        rolled = answer["meta"]["answered_from"]["rollups"]
        assert bool(rolled) == (mode != "raw"), dimension


@pytest.mark.parametrize("mode", list(known.MODES))
def test_a_visit_filter_selects_whole_visits(influx: Influx, visit_bucket: str, mode: str) -> None:
    found = known.visits(known.pageviews())
    google = [v for v in found if v.source == "google.com"]
    answer = ask(influx, visit_bucket, mode, metrics=METRICS,
                 filters=[["is", "visit:source", ["google.com"]]])
    assert answer["results"] == [{"metrics": metrics_of(google), "dimensions": []}]
    assert answer["results"][0]["metrics"][4] > 1  # a visit's later pages count for its source
    # two visit keys together: read raw (no table keeps both), the same figures
    picked = [v for v in found if v.source != "direct" and "p" in v.entry_page]
    both = ask(influx, visit_bucket, mode, metrics=METRICS, dimensions=["visit:exit_page"],
               filters=[["is_not", "visit:source", ["direct"]],
                        ["contains", "visit:entry_page", ["P"], {"case_sensitive": False}]],
               order_by=[["visit:exit_page", "asc"]])
    groups: dict[str, list[known.Visit]] = defaultdict(list)
    for v in picked:
        groups[v.exit_page].append(v)
    assert both["results"] == [{"metrics": metrics_of(g), "dimensions": [p]}
                               for p, g in sorted(groups.items())]
    assert both["meta"]["answered_from"]["rollups"] == []


@pytest.mark.parametrize("mode", list(known.MODES))
def test_a_tree_of_visit_filters_selects_whole_visits(influx: Influx, visit_bucket: str, mode: str) -> None:
    """An or/not tree of Plausible's operators on visit keys: whole visits, by exit page."""
    found = known.visits(known.pageviews())
    tree = ["or", [["is", "visit:source", ["google.com"]],
                   ["not", ["matches", "visit:entry_page", ["^/(docs|blog)$"]]]]]
    picked = [v for v in found if v.source == "google.com" or v.entry_page not in ("/docs", "/blog")]
    answer = ask(influx, visit_bucket, mode, metrics=METRICS, dimensions=["visit:exit_page"],
                 filters=[tree], order_by=[["visit:exit_page", "asc"]])
    groups: dict[str, list[known.Visit]] = defaultdict(list)
    for v in picked:
        groups[v.exit_page].append(v)
    assert len(picked) < len(found) and groups
    assert answer["results"] == [{"metrics": metrics_of(g), "dimensions": [p]}
                                 for p, g in sorted(groups.items())]


@pytest.mark.parametrize("mode", list(known.MODES))
def test_a_visit_filter_selects_the_events_of_those_visits(influx: Influx, visit_bucket: str,
                                                           mode: str) -> None:
    found = {(v.day, v.session): v for v in known.visits(known.pageviews())}
    in_visits = [(found[(e["time"].date(), e["sess"])], e) for e in known.events()
                 if (e["time"].date(), e.get("sess")) in found]
    assert len(in_visits) == len(known.events()) - 2  # one has no session, one no visit that day
    by_source: dict[str, int] = defaultdict(int)
    for visit, _ in in_visits:
        by_source[visit.source] += 1
    answer = ask(influx, visit_bucket, mode, metrics=["events"], dimensions=["visit:source"],
                 order_by=[["visit:source", "asc"]])
    assert answer["results"] == [{"metrics": [n], "dimensions": [s]} for s, n in sorted(by_source.items())]
    google = [(v, e) for v, e in in_visits if v.source == "google.com"]
    named = ask(influx, visit_bucket, mode, metrics=["events", "visitors", "visits"],
                dimensions=["event:name"], filters=[["is", "visit:source", ["google.com"]]])
    days: dict[date, set[str]] = defaultdict(set)
    for _, e in google:
        days[e["time"].date()].add(e["visitor"])
    assert named["results"] == [{"metrics": [len(google), sum(len(d) for d in days.values()),
                                             len({(v.day, v.session) for v, _ in google})],
                                 "dimensions": ["signup"]}]


@pytest.mark.parametrize("mode", list(known.MODES))
def test_a_device_country_or_zone_filter_counts_whole_visits_by_their_first_pageview(
        influx: Influx, visit_bucket: str, mode: str) -> None:
    """The dashboard's figures under a country filter: the visits that began in France, with all
    their pageviews (the midnight visit's French pageviews count under its first, British one)."""
    found = known.visits(known.pageviews())
    french = [v for v in found if v.value("country") == "FR"]
    answer = ask(influx, visit_bucket, mode, metrics=METRICS, filters=[["is", "visit:country", ["FR"]]])
    assert answer["results"] == [{"metrics": metrics_of(french), "dimensions": []}]
    chart = ask(influx, visit_bucket, mode, metrics=["visitors", "pageviews"], dimensions=["time:day"],
                filters=[["is", "visit:browser", ["Chrome"]]])
    chrome = [v for v in found if v.value("browser") == "Chrome"]
    days = sorted({v.day for v in chrome})
    per_day = [known.figures([v for v in chrome if v.day == d]) for d in days]
    assert chart["results"] == [{"metrics": [f["visitors"], f["pageviews"]], "dimensions": [d.isoformat()]}
                                for d, f in zip(days, per_day, strict=True)]
    assert bool(answer["meta"]["answered_from"]["rollups"]) == (mode != "raw")


@pytest.mark.parametrize("mode", list(known.MODES))
def test_pageviews_alone_by_a_device_country_or_zone_count_each_pageview_by_its_own(
        influx: Influx, visit_bucket: str, mode: str) -> None:
    rows = known.pageviews()
    answer = ask(influx, visit_bucket, mode, metrics=["pageviews"], dimensions=["visit:country"],
                 order_by=[["visit:country", "asc"]])
    counted: dict[str, int] = defaultdict(int)
    for r in rows:
        counted[r["country"]] += 1
    assert answer["results"] == [{"metrics": [n], "dimensions": [c]} for c, n in sorted(counted.items())]
    by_visit = {c: known.figures([v for v in known.visits(rows) if v.value("country") == c])["pageviews"]
                for c in counted}
    assert by_visit != dict(counted)  # the midnight visit's French pageviews, and those in no visit


@pytest.mark.parametrize("mode", list(known.MODES))
def test_a_visit_filter_selects_the_engaged_time_of_those_visits(influx: Influx, visit_bucket: str,
                                                                 mode: str) -> None:
    """Visit duration and time on page by entry page and under a source filter: the engaged time
    of those visits' pageviews (each pageview's largest running total), from raw points."""
    visit_of = {(v.day, v.session): v for v in known.visits(known.pageviews())}
    largest: dict[tuple[date, str, int], int] = {}
    for e in known.engagement():
        view = (e["time"].date(), e["sess"], e["pageview"])
        largest[view] = max(largest.get(view, 0), e["seconds"])

    def expected(keep: Any) -> list[Any]:
        per_visit: dict[tuple[date, str], int] = defaultdict(int)
        seconds = []
        for (day, sess, _), n in largest.items():
            if keep(visit_of[(day, sess)]):
                per_visit[(day, sess)] += n
                seconds.append(n)
        return [round(sum(per_visit.values()) / len(per_visit)), float(statistics.median(seconds))]

    answer = ask(influx, visit_bucket, mode, metrics=["visit_duration", "time_on_page"],
                 filters=[["is", "visit:source", ["google.com"]]])
    assert answer["results"] == [{"metrics": expected(lambda v: v.source == "google.com"),
                                  "dimensions": []}]
    assert answer["results"] != [{"metrics": expected(lambda v: True), "dimensions": []}]
    by_entry = ask(influx, visit_bucket, mode, metrics=["visit_duration", "time_on_page"],
                   dimensions=["visit:entry_page"], order_by=[["visit:entry_page", "asc"]])
    assert by_entry["results"] == [{"metrics": expected(lambda v, p=p: v.entry_page == p), "dimensions": [p]}
                                   for p in sorted({v.entry_page for v in visit_of.values()})]
