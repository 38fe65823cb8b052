"""The Stats API's planner and Flux text, without InfluxDB: which rollup answers which query, which
days come from rollups and which from raw points, and that caller values never reach Flux text.

The real reads of these plans are tested against a real influxd in test_stats.py; here each rule
of stats/plan.py is one case, so a change of rule shows which queries it moves.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import re2
from hypothesis import given
from hypothesis import strategies as st

from analytics_bp.stats import flux
from analytics_bp.stats.filters import OPERATORS
from analytics_bp.stats.plan import TRAFFIC, Source, Span, plan, raw_horizon, rollup_sources
from analytics_bp.stats.query import Query, QueryError, parse

SITE = "site.test"
TODAY = date(2026, 11, 23)
NOW = datetime(2026, 11, 23, 15, 30, tzinfo=UTC)
DAY = 86_400


def query(tz: str = "UTC", **body: Any) -> Query:
    body = {"site_id": SITE, "date_range": ["2026-11-01", "2026-11-23"], **body}
    return parse(body, lambda: [SITE], tz, TODAY, lambda site: date(2026, 1, 1))


def marks(daily: datetime | None = None, hourly: datetime | None = None) -> Any:
    return lambda suffix: {"_1d": daily, "_1h": hourly}[suffix]


@pytest.mark.parametrize(("body", "expected"), [
    ({"metrics": ["visitors", "pageviews", "bounce_rate"]}, (TRAFFIC,)),
    ({"metrics": ["visit_duration", "time_on_page"]}, (TRAFFIC,)),
    ({"metrics": ["pageviews", "events"]}, (Source("_1d", "events", "count"), TRAFFIC)),
    ({"metrics": ["pageviews"], "dimensions": ["event:page"]}, (Source("_1d", "pages", "count"),)),
    ({"metrics": ["pageviews"], "dimensions": ["visit:browser"],
      "filters": [["is", "visit:device", ["mobile"]]]}, (Source("_1d", "agents", "count"),)),
    # a visit's keys (source, UTM, entry and exit page): the visit tables, whole visits
    ({"metrics": ["pageviews"], "dimensions": ["visit:utm_medium"]},
     (Source("_1d", "visit_utm_mediums", "visits"),)),
    # counting visits by a key every pageview carries: whole visits by their first pageview's
    ({"metrics": ["visitors", "bounce_rate"], "dimensions": ["visit:browser"]},
     (Source("_1d", "visit_browsers", "visits"),)),
    ({"metrics": ["visitors", "visits", "pageviews"], "filters": [["is", "visit:country", ["FR"]]]},
     (Source("_1d", "visit_countries", "visits"),)),
    ({"metrics": ["views_per_visit"], "dimensions": ["time:day"],
      "filters": [["is_not", "visit:platform", ["ios"]]]}, (Source("_1d", "visit_platforms", "visits"),)),
    ({"metrics": ["visits"], "dimensions": ["visit:timezone"]},
     (Source("_1d", "visit_timezones", "visits"),)),
    ({"metrics": ["bounce_rate"], "filters": [["is", "visit:source", ["google.com"]]]},
     (Source("_1d", "visit_sources", "visits"),)),
    ({"metrics": ["visitors", "visits", "views_per_visit"], "dimensions": ["visit:entry_page"]},
     (Source("_1d", "entry_pages", "visits"),)),
    ({"metrics": ["visitors"], "dimensions": ["visit:exit_page"]}, (Source("_1d", "exit_pages", "visits"),)),
    # by the hour: the hourly breakdown with the fewest tags that keeps the query's
    ({"metrics": ["pageviews"], "dimensions": ["time:hour"]}, (Source("_1h", "pageviews", "count"),)),
    ({"metrics": ["pageviews"], "dimensions": ["time:hour", "event:page"]},
     (Source("_1h", "pages", "count"),)),
    ({"metrics": ["pageviews"], "dimensions": ["time:hour", "visit:os"],
      "filters": [["is", "visit:device", ["mobile"]]]}, (Source("_1h", "agents", "count"),)),
    ({"metrics": ["events"], "dimensions": ["event:name"]}, (Source("_1d", "events", "count"),)),
    ({"metrics": ["events"], "dimensions": ["time:hour", "event:props:note"]},
     (Source("_1h", "events", "count"),)),
    ({"metrics": ["time_on_page"], "dimensions": ["event:page"]},
     (Source("_1d", "engagement", "engagement"),)),
    # no rollup keeps these: raw points only
    ({"metrics": ["pageviews"], "dimensions": ["visit:source"],
      "filters": [["is", "event:page", ["/a"]]]}, ()),
    ({"metrics": ["visitors"], "dimensions": ["event:page"]}, ()),
    ({"metrics": ["visitors"], "dimensions": ["visit:exit_page"],
      "filters": [["is", "visit:source", ["google.com"]]]}, ()),
    ({"metrics": ["median_load_time"], "dimensions": ["visit:entry_page"]}, ()),
    ({"metrics": ["visits"], "dimensions": ["time:hour", "visit:source"]}, ()),
    ({"metrics": ["visitors"], "dimensions": ["event:name"]}, ()),
    ({"metrics": ["pageviews"], "dimensions": ["visit:timezone", "visit:utm_source"]}, ()),
    # one visit table per key: two keys (distinct visitors would be summed over the second)
    ({"metrics": ["pageviews"], "dimensions": ["visit:utm_source", "visit:utm_campaign"]}, ()),
    ({"metrics": ["visitors"], "dimensions": ["visit:browser"],
      "filters": [["is", "visit:device", ["mobile"]]]}, ()),
    ({"metrics": ["visitors"], "dimensions": ["time:hour"]}, ()),
    ({"metrics": ["time_on_page"], "dimensions": ["visit:browser"]}, ()),
    ({"metrics": ["time_on_page"], "dimensions": ["time:hour"]}, ()),
])
def test_each_query_is_answered_by_the_rollups_that_keep_it(body: dict[str, Any],
                                                            expected: tuple[Source, ...]) -> None:
    assert rollup_sources(query(**body), hours_align=True) == expected


def test_hourly_rollups_do_not_answer_by_hour_in_a_zone_of_half_hours() -> None:
    """Kolkata is UTC+05:30: an hourly rollup's hour is two halves of the site's hours."""
    q = query("Asia/Kolkata", metrics=["pageviews"], dimensions=["time:hour"])
    assert rollup_sources(q, hours_align=True) == (Source("_1h", "pageviews", "count"),)
    assert plan(q, marks(NOW, NOW), ZoneInfo("Asia/Kolkata"), 30 * DAY, NOW).sources == ()
    london = query("Europe/London", metrics=["pageviews"], dimensions=["time:hour"])
    assert plan(london, marks(NOW, NOW), ZoneInfo("Europe/London"), 30 * DAY, NOW).sources


def test_finished_days_come_from_the_rollups_and_the_rest_from_raw_points() -> None:
    q = query(metrics=["visitors"])
    chosen = plan(q, marks(daily=datetime(2026, 11, 20, 10, tzinfo=UTC)), ZoneInfo("UTC"),
                  30 * DAY, NOW)
    assert chosen.sources == (TRAFFIC,)
    assert chosen.rollup == Span(datetime(2026, 11, 1, tzinfo=UTC), datetime(2026, 11, 20, tzinfo=UTC))
    assert chosen.raw == Span(datetime(2026, 11, 20, tzinfo=UTC), datetime(2026, 11, 24, tzinfo=UTC))


def test_the_split_is_a_site_midnight_so_no_day_is_half_from_each() -> None:
    """03:00 UTC on the 20th is still the 19th in New York: the 19th is not finished there."""
    zone = ZoneInfo("America/New_York")
    q = query("America/New_York", metrics=["pageviews"])
    chosen = plan(q, marks(daily=datetime(2026, 11, 20, 3, tzinfo=UTC)), zone, 30 * DAY, NOW)
    assert chosen.rollup is not None and chosen.raw is not None
    assert chosen.rollup.stop == chosen.raw.start == datetime(2026, 11, 19, tzinfo=zone)
    assert chosen.rollup.start == datetime(2026, 11, 1, tzinfo=zone)


def test_the_slowest_rollup_sets_the_split() -> None:
    q = query(metrics=["pageviews", "events"])
    chosen = plan(q, marks(daily=datetime(2026, 11, 22, 5, tzinfo=UTC)), ZoneInfo("UTC"), 30 * DAY, NOW)
    assert chosen.rollup is not None and chosen.rollup.stop == datetime(2026, 11, 22, tzinfo=UTC)
    q = query(metrics=["pageviews"], dimensions=["time:hour"], date_range=["2026-11-20", "2026-11-23"])
    chosen = plan(q, marks(daily=datetime(2026, 11, 22, tzinfo=UTC),
                           hourly=datetime(2026, 11, 21, 7, tzinfo=UTC)), ZoneInfo("UTC"), 30 * DAY, NOW)
    assert chosen.rollup == Span(datetime(2026, 11, 20, tzinfo=UTC), datetime(2026, 11, 21, tzinfo=UTC))


def test_a_rollup_whose_task_never_ran_answers_nothing() -> None:
    chosen = plan(query(metrics=["visitors"]), marks(), ZoneInfo("UTC"), 30 * DAY, NOW)
    assert chosen.sources == ()
    assert chosen.rollup is None
    assert chosen.raw == Span(datetime(2026, 11, 1, tzinfo=UTC), datetime(2026, 11, 24, tzinfo=UTC))


def test_days_the_rollups_finished_need_no_raw_points() -> None:
    q = query(metrics=["visitors"], date_range=["2025-01-01", "2025-12-31"])
    chosen = plan(q, marks(daily=NOW), ZoneInfo("UTC"), 30 * DAY, NOW)
    assert chosen.raw is None
    assert chosen.rollup == Span(datetime(2025, 1, 1, tzinfo=UTC), datetime(2026, 1, 1, tzinfo=UTC))


def test_raw_days_past_the_retention_are_refused_with_the_first_day_kept() -> None:
    q = query(metrics=["visitors"], dimensions=["event:page"], date_range=["2026-09-01", "2026-11-23"])
    with pytest.raises(QueryError, match=r"raw data is kept for 30 days .* from 2026-10-25"):
        plan(q, marks(daily=NOW), ZoneInfo("UTC"), 30 * DAY, NOW)
    recent = query(metrics=["visitors"], dimensions=["event:page"], date_range=["2026-10-25", "2026-11-23"])
    assert plan(recent, marks(daily=NOW), ZoneInfo("UTC"), 30 * DAY, NOW).raw is not None
    assert plan(q, marks(daily=NOW), ZoneInfo("UTC"), 0, NOW).raw is not None  # kept forever


def test_the_raw_horizon_is_the_first_whole_site_day_kept() -> None:
    assert raw_horizon(30 * DAY, ZoneInfo("UTC"), NOW) == date(2026, 10, 25)
    # 2026-10-24 15:30 UTC is 2026-10-25 00:30 in Tokyo: its first whole day is the 26th
    assert raw_horizon(30 * DAY, ZoneInfo("Asia/Tokyo"), NOW) == date(2026, 10, 26)
    assert raw_horizon(0, ZoneInfo("UTC"), NOW) is None


VALUE = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=40)


@given(st.lists(VALUE, min_size=1, max_size=5), st.sampled_from(OPERATORS),
       st.sampled_from(["event:page", "visit:source", "visit:utm_campaign", "event:name"]),
       st.booleans())
def test_caller_values_reach_influxdb_only_as_parameters(values: list[str], op: str,
                                                         dimension: str, case_sensitive: bool) -> None:
    """The Flux text of any filter values is the text of placeholder values: they cannot shape it
    (a pattern of `matches` too: it is compiled from a parameter)."""
    metrics = ["events"] if dimension == "event:name" else ["pageviews"]
    if "matches" in op:
        values = [re2.escape(v) for v in values]

    def reads(vals: list[str]) -> list[flux.Read]:
        leaf = [op, dimension, vals] + ([] if case_sensitive else [{"case_sensitive": False}])
        q = query(metrics=metrics, filters=[["and", [leaf]]])
        return [flux.raw_points(q, "analytics", "pageview", NOW, NOW, ("count",)),
                flux.rollup(q, "analytics_1h", Source("_1h", "pageviews", "count"), NOW, NOW)]

    for read, placeholder in zip(reads(values), reads(["v"] * len(values)), strict=True):
        assert read.flux == placeholder.flux
        expected = [v if case_sensitive else "(?i)" + v if "matches" in op else v.lower()
                    for v in values]
        assert [read.params[f"p{i + 5}"] for i in range(len(values))] == expected
        assert read.params["site"] == SITE and SITE not in read.flux
