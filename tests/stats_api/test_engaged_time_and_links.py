"""Time on page, visit duration and the link dimensions from the Stats API, in every mode, on a
real influxd."""

from __future__ import annotations

import statistics
from collections import Counter
from datetime import date
from typing import Any

import pytest

from analytics_bp import settings
from analytics_bp.stats.engine import Engine
from analytics_bp.stats.query import QueryError, parse
from tests.support.datasets import make_dataset
from tests.support.influx import Influx


def test_visit_duration_and_time_on_page_refuse_what_they_cannot_answer() -> None:
    for body, reason in (
            ({"metrics": ["visit_duration"], "dimensions": ["event:page"]}, "visit_duration cannot be "
             "grouped or filtered by event:page"),
            ({"metrics": ["time_on_page"], "dimensions": ["event:props:destination"]},
             "time_on_page cannot be grouped or filtered by event:name or event:props:*"),
            ({"metrics": ["pageviews"], "filters": [["is", "event:props:file", ["/a.pdf"]]]},
             "pageviews cannot be grouped or filtered by event:name or event:props:*")):
        with pytest.raises(QueryError, match=reason):
            parse({"site_id": "a.example", "date_range": "7d", **body}, lambda: ["a.example"], "UTC",
                  date(2026, 11, 23), lambda site: None)


# -- the Stats API on rolled-up extras (test_rollups' dataset: b.example has them) ----------------

def weighted(pairs: list[tuple[float, int]]) -> float:
    """The documented median over rolled-up days, computed here again."""
    total, running = sum(w for _, w in pairs), 0
    for value, weight in sorted(pairs):
        running += weight
        if running * 2 >= total:
            return value
    raise AssertionError("no weights")


def expected_time_on_page(mode: str, page: str | None = None) -> float:
    from tests.support.datasets import DAYS, engaged_views

    days = [engaged_views(day, page) for day in DAYS]
    if mode == "rollups":  # every day from the rollups: one exact median per (page and) day
        return weighted([(float(statistics.median(v.values())), len(v)) for v in days if v])
    return float(statistics.median([s for v in days for s in v.values()]))  # raw: exact


@pytest.mark.parametrize("mode", ["raw", "rollups", "mixed"])
def test_time_on_page_visit_duration_and_link_dimensions_in_every_mode(
        influx: Influx, rolled: Any, mode: str) -> None:
    from tests.support.datasets import DAYS, LINKS, MODES, engaged_views

    bucket, _ = rolled
    cfg = settings.load({"ANALYTICS_PERMITTED_DOMAINS": "a.example,b.example", "ANALYTICS_BUCKET": bucket,
                         "ANALYTICS_RAW_RETENTION": "0"})
    engine = Engine(cfg, influx.admin, lambda suffix: MODES[mode])
    # mixed: only 2026-02-28 (no engaged time) from the rollups, so the days with it are raw
    exact_mode = "rollups" if mode == "rollups" else "raw"

    def ask(**body: Any) -> dict[str, Any]:
        body.setdefault("include", {"answered_from": True})
        return engine.run(parse({"site_id": "b.example", "date_range": ["2026-02-28", "2026-03-02"],
                                 **body}, lambda: ["a.example", "b.example"], "UTC", date(2026, 11, 23),
                                engine.first_day))

    views = [engaged_views(day) for day in DAYS]
    duration = round(sum(sum(v.values()) for v in views) / sum(len({s for _, s, _ in v}) for v in views))
    total = ask(metrics=["time_on_page", "visit_duration", "pageviews"])
    dataset_pages = Counter(r["page"] for r in make_dataset() if r["domain"] == "b.example")
    assert total["results"] == [{"metrics": [expected_time_on_page(exact_mode), duration,
                                             sum(dataset_pages.values())], "dimensions": []}]
    assert (expected_time_on_page("raw"), expected_time_on_page("rollups"), duration) == (12.0, 21.0, 40)
    by_day = ask(metrics=["time_on_page", "visit_duration"], dimensions=["time:day"])
    assert by_day["results"] == [
        {"metrics": [float(statistics.median(v.values())),
                     round(sum(v.values()) / len({s for _, s, _ in v}))],
         "dimensions": [day.date().isoformat()]} for day, v in zip(DAYS, views, strict=True) if v]
    pages = ask(metrics=["pageviews", "time_on_page"], dimensions=["event:page"],
                filters=[["is", "event:page", ["/p0", "/p1"]]], order_by=[["event:page", "asc"]])
    assert pages["results"] == [
        {"metrics": [dataset_pages[p], expected_time_on_page(exact_mode, p)], "dimensions": [p]}
        for p in ("/p0", "/p1")]
    if mode == "rollups":
        assert sorted(pages["meta"]["answered_from"]["rollups"]) == [f"{bucket}_1d:engagement",
                                                                    f"{bucket}_1d:pages"]
    links = Counter((event, value) for _, event, _, value in LINKS)
    for dimension, event in (("event:props:destination", "outbound"), ("event:props:file", "download")):
        answer = ask(metrics=["events"], dimensions=[dimension])
        assert answer["results"] == [{"metrics": [n], "dimensions": [value]} for (e, value), n in
                                     sorted(links.items(), key=lambda kv: (-kv[1], kv[0])) if e == event]
    github = ask(metrics=["events", "visitors"], filters=[["is", "event:props:destination", ["github.com"]]])
    assert github["results"][0]["metrics"][0] == 2
