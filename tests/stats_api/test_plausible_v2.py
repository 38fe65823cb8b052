"""The Stats API's periods, time dimensions, echo and meta as Plausible's Stats API v2 defines them,
against a real influxd.

Each case is translated from Plausible's own tests and docs (plausible/analytics
`test/plausible_web/controllers/api/external_stats_controller/query_test.exs`,
`lib/plausible/stats/query_parser.ex`, `query_optimizer.ex`, `query_result.ex`, `time.ex`;
plausible/docs `stats-api.md`, read in November 2026) onto our data: the same pageviews at the
same times, the same request, the answer Plausible's test expects. Every request is first
validated against Plausible's public JSON schema (tests/data/plausible), so each is one a
Plausible user could send; the few of ours (`24h`, `include.answered_from`) say so.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, date, datetime
from typing import Any

import jsonschema
import pytest

from analytics_bp import settings
from analytics_bp.schema import raw_line
from analytics_bp.stats.engine import Engine
from analytics_bp.stats.query import parse
from tests.support.build import ROOT
from tests.support.datasets import write
from tests.support.influx import Influx, scratch_bucket

SCHEMA = json.loads((ROOT / "tests" / "data" / "plausible" / "query-api-schema.json").read_text())
SITE = "plausible.test"
NOW = datetime(2021, 1, 8, 10, 0, tzinfo=UTC)  # "today" for the shortcuts: Friday 2021-01-08

# (when, visitor, session, page): Plausible's test pageviews, each a visitor of its own unless
# it shares one (their `user_id`).
PAGEVIEWS = [
    (datetime(2020, 12, 31, 12, 0, tzinfo=UTC), "v0", "s0", "/"),
    (datetime(2021, 1, 1, 0, 0, tzinfo=UTC), "v1", "s1", "/"),
    (datetime(2021, 1, 1, 0, 10, tzinfo=UTC), "v1", "s1", "/pricing"),
    (datetime(2021, 1, 1, 23, 0, tzinfo=UTC), "v2", "s2", "/"),
    (datetime(2021, 1, 3, 23, 59, tzinfo=UTC), "v3", "s3", "/"),
    (datetime(2021, 1, 7, 23, 59, tzinfo=UTC), "v4", "s4", "/docs"),
    (datetime(2021, 1, 8, 9, 30, tzinfo=UTC), "v5", "s5", "/"),  # today
]


def plausible_valid(body: dict[str, Any]) -> dict[str, Any]:
    jsonschema.validate(body, SCHEMA, format_checker=jsonschema.FormatChecker())
    return body


@pytest.fixture(scope="module")
def engine(influx: Influx) -> Iterator[Engine]:
    with scratch_bucket(influx, "t_plausible") as bucket:
        write(influx, bucket, [
            raw_line("pageview", {"domain": SITE, "count": 1, "visitor": visitor, "page": page,
                                  "source": "direct", "sess_id": sess, "pages": 1, "browser": "Firefox",
                                  "os": "Linux", "device": "desktop", "country": "EE",
                                  "timezone": "0", "platform": "linux"},
                     int(when.timestamp()) * 10**9 + i)
            for i, (when, visitor, sess, page) in enumerate(PAGEVIEWS)])
        cfg = settings.load({"ANALYTICS_PERMITTED_DOMAINS": SITE, "ANALYTICS_BUCKET": bucket,
                             "ANALYTICS_RAW_RETENTION": "0"})
        yield Engine(cfg, influx.admin, lambda suffix: None)


def ask(engine: Engine, body: dict[str, Any], tz: str = "UTC") -> dict[str, Any]:
    return engine.run(parse({"site_id": SITE, **body}, lambda: [SITE], tz, NOW, engine.first_day))


def test_weeks_start_on_monday_or_the_periods_first_day(engine: Engine) -> None:
    """query_test.exs "shows weekly data with time labels"."""
    body = plausible_valid({"site_id": SITE, "metrics": ["visitors"],
                            "date_range": ["2020-12-20", "2021-01-07"], "dimensions": ["time:week"],
                            "include": {"time_labels": True}})
    answer = ask(engine, body)
    # visitors are distinct per site day (the salt's period), summed over the week's days
    assert answer["results"] == [{"metrics": [4], "dimensions": ["2020-12-28"]},
                                 {"metrics": [1], "dimensions": ["2021-01-04"]}]
    assert answer["meta"] == {"time_labels": ["2020-12-20", "2020-12-21", "2020-12-28", "2021-01-04"]}


def test_hours_are_labelled_as_plausible_labels_them_with_every_hour_of_the_day(engine: Engine) -> None:
    """query_test.exs: time:hour over one day, labels "YYYY-MM-DD HH:00:00", all 24 of them."""
    body = plausible_valid({"site_id": SITE, "metrics": ["visitors", "pageviews", "visits"],
                            "date_range": ["2021-01-01", "2021-01-01"], "dimensions": ["time:hour"],
                            "include": {"time_labels": True}})
    answer = ask(engine, body)
    assert answer["results"] == [{"metrics": [1, 2, 1], "dimensions": ["2021-01-01 00:00:00"]},
                                 {"metrics": [1, 1, 1], "dimensions": ["2021-01-01 23:00:00"]}]
    assert answer["meta"]["time_labels"] == [f"2021-01-01 {h:02}:00:00" for h in range(24)]


@pytest.mark.parametrize(("date_range", "resolved"), [
    (["2021-01-01", "2021-01-02"], "time:hour"),  # 48 hours at most
    (["2021-01-01", "2021-01-03"], "time:day"),
    ("30d", "time:day"),
    ("12mo", "time:week"),  # 52 weeks
    (["2019-01-01", "2021-01-07"], "time:month"),
])
def test_time_resolves_to_the_dimension_plausible_picks_for_the_period(engine: Engine, date_range: Any,
                                                                       resolved: str) -> None:
    """query_optimizer.ex: hours up to 48 hours, days up to 40 days, weeks up to 52, else months;
    the echo names the resolved dimension, and so does the default order."""
    answer = ask(engine, plausible_valid({"site_id": SITE, "metrics": ["pageviews"], "date_range": date_range,
                                          "dimensions": ["time"]}))
    assert answer["query"]["dimensions"] == [resolved]
    assert answer["query"]["order_by"] == [[resolved, "asc"], ["pageviews", "desc"]]
    labels = [r["dimensions"][0] for r in answer["results"]]
    assert labels == sorted(labels)


@pytest.mark.parametrize(("date_range", "pageviews", "echoed"), [
    ("day", 1, ["2021-01-08T00:00:00+00:00", "2021-01-08T23:59:59+00:00"]),  # today
    ("7d", 5, ["2021-01-01T00:00:00+00:00", "2021-01-07T23:59:59+00:00"]),  # today not included
    ("month", 6, ["2021-01-01T00:00:00+00:00", "2021-01-31T23:59:59+00:00"]),  # the whole month
    ("6mo", 1, ["2020-07-01T00:00:00+00:00", "2020-12-31T23:59:59+00:00"]),  # whole months before
    ("year", 6, ["2021-01-01T00:00:00+00:00", "2021-12-31T23:59:59+00:00"]),
    ("all", 7, ["2020-12-31T00:00:00+00:00", "2021-01-08T23:59:59+00:00"]),
    # two datetimes: both ends included, to the second
    (["2021-01-01T00:00:00+00:00", "2021-01-01T00:10:00+00:00"], 2,
     ["2021-01-01T00:00:00+00:00", "2021-01-01T00:10:00+00:00"]),
    (["2021-01-01T00:00:01Z", "2021-01-01T23:00:00Z"], 2,
     ["2021-01-01T00:00:01+00:00", "2021-01-01T23:00:00+00:00"]),
])
def test_periods_are_plausibles(engine: Engine, date_range: Any, pageviews: int, echoed: list[str]) -> None:
    body = plausible_valid({"site_id": SITE, "metrics": ["pageviews"], "date_range": date_range})
    answer = ask(engine, body)
    assert answer["results"] == [{"metrics": [pageviews], "dimensions": []}]
    assert answer["query"]["date_range"] == echoed


def test_a_datetime_period_is_shown_in_the_sites_zone(engine: Engine) -> None:
    body = plausible_valid({"site_id": SITE, "metrics": ["pageviews"],
                            "date_range": ["2021-01-01T02:00:00+02:00", "2021-01-02T01:00:00+02:00"]})
    answer = ask(engine, body, tz="Europe/Tallinn")
    assert answer["results"] == [{"metrics": [3], "dimensions": []}]
    assert answer["query"]["date_range"] == ["2021-01-01T02:00:00+02:00", "2021-01-02T01:00:00+02:00"]


def test_24h_is_the_day_up_to_now(engine: Engine) -> None:
    """Ours (Plausible's schema has `realtime` and `30m` for its dashboard): the 24 hours up to now."""
    answer = ask(engine, {"metrics": ["pageviews"], "date_range": "24h"})
    assert answer["results"] == [{"metrics": [2], "dimensions": []}]  # 2021-01-07 23:59 and today's
    assert answer["query"]["date_range"] == ["2021-01-07T10:00:00+00:00", "2021-01-08T10:00:00+00:00"]


def test_the_echo_has_plausibles_defaults_and_can_be_posted_again(engine: Engine) -> None:
    """query_result.ex: site_id, metrics, date_range (datetimes), filters, dimensions, order_by (the
    default filled in), include (only what is true), pagination; meta only what include asks."""
    body = plausible_valid({"site_id": SITE, "metrics": ["visitors", "pageviews"], "date_range": "7d",
                            "dimensions": ["event:page"]})
    answer = ask(engine, body)
    assert answer["query"] == {
        "site_id": SITE, "metrics": ["visitors", "pageviews"],
        "date_range": ["2021-01-01T00:00:00+00:00", "2021-01-07T23:59:59+00:00"],
        "filters": [], "dimensions": ["event:page"], "order_by": [["visitors", "desc"]],
        "include": {}, "pagination": {"limit": 10000, "offset": 0}}
    assert list(answer["query"]) == ["site_id", "metrics", "date_range", "filters", "dimensions",
                                     "order_by", "include", "pagination"]
    assert answer["meta"] == {}
    assert answer["results"] == [{"metrics": [3, 3], "dimensions": ["/"]},
                                 {"metrics": [1, 1], "dimensions": ["/docs"]},
                                 {"metrics": [1, 1], "dimensions": ["/pricing"]}]
    again = ask(engine, plausible_valid(answer["query"]))
    assert again == answer


def test_meta_carries_only_what_include_asks(engine: Engine) -> None:
    body = plausible_valid({"site_id": SITE, "metrics": ["pageviews"], "date_range": "all",
                            "dimensions": ["event:page"], "pagination": {"limit": 1},
                            "include": {"total_rows": True, "imports": True}})
    answer = ask(engine, body)
    assert answer["meta"] == {"imports_included": False, "total_rows": 3}
    assert answer["query"]["include"] == {"imports": True, "total_rows": True}
    assert answer["results"] == [{"metrics": [5], "dimensions": ["/"]}]
    ours = ask(engine, {**body, "include": {"answered_from": True}})
    assert set(ours["meta"]) == {"answered_from", "time_zone"} and ours["meta"]["time_zone"] == "UTC"


def test_time_labels_need_a_time_dimension(engine: Engine) -> None:
    from analytics_bp.stats.query import QueryError

    with pytest.raises(QueryError, match=r"include\.time_labels needs a time dimension"):
        ask(engine, {"metrics": ["pageviews"], "date_range": "7d", "include": {"time_labels": True}})


def test_first_day_of_all_is_the_first_pageview(engine: Engine) -> None:
    assert engine.first_day(SITE) == date(2020, 12, 31)


def test_percentage_is_each_rows_share_of_the_visitors_without_the_dimension(engine: Engine) -> None:
    """special_metrics.ex: round(visitors / total visitors * 100, 1), the total with the same
    filters and no dimensions (a visitor of two pages counts in both rows)."""
    body = plausible_valid({"site_id": SITE, "metrics": ["visitors", "percentage"], "date_range": "7d",
                            "dimensions": ["event:page"]})
    answer = ask(engine, body)
    assert answer["results"] == [{"metrics": [3, 75.0], "dimensions": ["/"]},
                                 {"metrics": [1, 25.0], "dimensions": ["/docs"]},
                                 {"metrics": [1, 25.0], "dimensions": ["/pricing"]}]
    only = ask(engine, plausible_valid({**body, "metrics": ["percentage"],
                                        "filters": [["is_not", "event:page", ["/docs"]]]}))
    assert only["results"] == [{"metrics": [100.0], "dimensions": ["/"]},
                               {"metrics": [33.3], "dimensions": ["/pricing"]}]
    from analytics_bp.stats.query import QueryError

    with pytest.raises(QueryError, match="percentage needs dimensions"):
        ask(engine, {"metrics": ["percentage"], "date_range": "7d"})


def test_bounce_rate_is_a_whole_percent(engine: Engine) -> None:
    """special_metrics/expression.ex: round(bounces / visits * 100) as an integer; 5 of 6 visits."""
    answer = ask(engine, plausible_valid({"site_id": SITE, "metrics": ["visits", "bounce_rate"],
                                          "date_range": "all"}))
    assert answer["results"] == [{"metrics": [6, 83], "dimensions": []}]
    assert isinstance(answer["results"][0]["metrics"][1], int)


@pytest.mark.parametrize(("bounces", "visits", "rate"), [(1, 8, 12), (3, 8, 38), (5, 8, 62), (0, 0, 0)])
def test_a_half_percent_rounds_to_even_as_clickhouse_rounds_floats(bounces: int, visits: int,
                                                                  rate: int) -> None:
    from analytics_bp.stats.metrics import Components, bounce_rate

    assert bounce_rate(Components(bounces=bounces, visits=visits)) == rate
