"""The Stats API's filters as Plausible's Stats API v2 defines them (its public JSON schema, its
query parser's operators and modifiers), without InfluxDB: what is accepted, what is refused and
why, what each operator and tree means on one record, and that the echo can be posted again.

Every request these tests expect us to accept is first validated against Plausible's own schema
(tests/data/plausible), so each case is a request a Plausible user could send. The same filters
on real data, through InfluxDB and through the whole-visit path, are in test_stats.py and
test_visits.py.
"""

from __future__ import annotations

import json
from datetime import date
from typing import Any

import jsonschema
import pytest
from hypothesis import given
from hypothesis import strategies as st

from analytics_bp.stats import filters
from analytics_bp.stats.query import QueryError, parse
from tests.support.build import ROOT

SCHEMA = json.loads((ROOT / "tests" / "data" / "plausible" / "query-api-schema.json").read_text())
SITE = "site.test"


def plausible_valid(body: dict[str, Any]) -> None:
    jsonschema.validate(body, SCHEMA, format_checker=jsonschema.FormatChecker())


def body(*tree: Any) -> dict[str, Any]:
    return {"site_id": SITE, "metrics": ["visitors"], "date_range": "all", "filters": list(tree)}


def parsed(request: dict[str, Any]) -> Any:
    return parse(request, lambda: [SITE], "UTC", date(2026, 11, 23), lambda site: date(2026, 1, 1))


ACCEPTED = [
    ["is", "visit:source", ["google.com"]],
    ["is_not", "visit:country", ["DE", "FR"]],
    ["contains", "event:page", ["/blog"]],
    ["contains", "event:page", ["/BLOG"], {"case_sensitive": False}],
    ["contains_not", "visit:utm_campaign", ["spring"], {"case_sensitive": True}],
    ["is", "visit:browser", ["firefox"], {"case_sensitive": False}],
    ["matches", "event:page", ["^/blog/[0-9]+$"]],
    ["matches_not", "visit:entry_page", ["^/(docs|api)/"]],
    ["and", [["is", "visit:device", ["desktop"]], ["contains", "event:page", ["/p"]]]],
    ["or", [["is", "visit:source", ["google.com"]], ["is", "visit:source", ["bing.com"]]]],
    ["not", ["is", "visit:os", ["Linux"]]],
    ["or", [["and", [["is", "visit:device", ["mobile"]], ["not", ["is", "visit:os", ["iOS"]]]]],
            ["matches", "visit:exit_page", ["thanks"]]]],
    ["is", "event:props:note", ["twitter"]],
]


@pytest.mark.parametrize("tree", ACCEPTED, ids=lambda t: json.dumps(t)[:60])
def test_every_filter_plausible_accepts_is_accepted_and_echoed_so_it_can_be_posted_again(tree: Any) -> None:
    request = body(tree)
    plausible_valid(request)
    echo = parsed(request).as_json()
    assert echo["filters"] == [tree if tree[-1] != {"case_sensitive": True} else tree[:3]]
    again = {k: echo[k] for k in ("site_id", "metrics", "date_range", "filters")}
    assert parsed(again).filters == parsed(request).filters


REFUSED = [
    (["exists?", "event:name", ["foo"]], "unknown filter operator 'exists?'"),
    (["is", "event:name", "foo"], "filter values for event:name must be 1 to 20 non-empty strings"),
    (["is", "visit:name", ["foo"]], "cannot filter by 'visit:name'"),
    (["is", "visit:country", ["Germany"]], "2-letter country codes"),
    (["matches", "event:page", ["(?=lookahead)"]], "not a regular expression (RE2 syntax): '(?=lookahead)'"),
    (["matches", "event:page", ["a{1001}"]], "not a regular expression"),
    (["contains", "event:page", ["/a"], {"case_sensitive": "no"}], '{"case_sensitive": true or false}'),
    (["contains", "event:page", ["/a"], {"ignore_case": True}], '{"case_sensitive": true or false}'),
    (["and", []], '"and" takes a non-empty list of filters'),
    (["or", ["is", "event:page", ["/"]]], "each filter must be"),
    (["not", ["is", "event:page", ["/"]], ["is", "event:page", ["/a"]]], '"not" takes one filter'),
    (["not"], '"not" takes one filter'),
    ([], "each filter must be"),
    (["is", "event:page", ["/"], {}, "extra"], "each filter must be [operator, dimension, [values]]"),
]


@pytest.mark.parametrize(("tree", "reason"), REFUSED, ids=lambda t: json.dumps(t)[:50])
def test_a_bad_filter_is_refused_with_a_reason_that_names_it(tree: Any, reason: str) -> None:
    with pytest.raises(QueryError) as err:
        parsed(body(tree))
    assert reason in str(err.value)


def test_trees_are_bounded_in_depth_and_in_leaves() -> None:
    deep: Any = ["is", "event:page", ["/"]]
    for _ in range(filters.MAX_DEPTH):
        deep = ["not", deep]
    with pytest.raises(QueryError, match=f"nest at most {filters.MAX_DEPTH} deep"):
        parsed(body(deep))
    parsed(body(deep[1]))  # one level less is fine
    wide = ["or", [["is", "event:page", [f"/{i}"]] for i in range(filters.MAX_LEAVES + 1)]]
    with pytest.raises(QueryError, match=f"at most {filters.MAX_LEAVES} filters"):
        parsed(body(wide))


PAGE = {"page": "/Blog/42", "source": "google.com", "country": "DE", "device": "desktop"}
NO_SOURCE = {"page": "/", "country": "FR", "device": "mobile"}


@pytest.mark.parametrize(("tree", "on_page", "on_no_source"), [
    (["is", "event:page", ["/Blog/42"]], True, False),
    (["is", "event:page", ["/blog/42"]], False, False),  # case-sensitive by default, as Plausible
    (["is", "event:page", ["/blog/42"], {"case_sensitive": False}], True, False),
    (["is_not", "visit:source", ["google.com"]], False, True),  # without a source: not google.com
    (["contains", "event:page", ["Blog"]], True, False),
    (["contains", "event:page", ["blog"]], False, False),
    (["contains", "event:page", ["BLOG"], {"case_sensitive": False}], True, False),
    (["contains_not", "visit:source", ["google"]], False, True),
    (["contains_not", "event:page", ["blog"], {"case_sensitive": False}], False, True),
    (["matches", "event:page", ["^/Blog/[0-9]+$"]], True, False),
    (["matches", "event:page", ["[0-9]"]], True, False),  # found anywhere, as ClickHouse's match
    (["matches", "event:page", ["^/blog"]], False, False),
    (["matches", "event:page", ["^/blog"], {"case_sensitive": False}], True, False),
    (["matches_not", "visit:source", ["^google\\."]], False, True),
    (["and", [["is", "visit:country", ["DE"]], ["is", "visit:device", ["desktop"]]]], True, False),
    (["or", [["is", "visit:country", ["DE"]], ["is", "visit:device", ["mobile"]]]], True, True),
    (["not", ["or", [["is", "visit:country", ["DE"]], ["is", "visit:device", ["mobile"]]]]], False, False),
    (["not", ["is", "visit:source", ["google.com"]]], False, True),
    (["is", "event:page", ["/x", "/Blog/42"]], True, False),  # any of the values
])
def test_each_operator_and_tree_means_what_plausible_says(tree: Any, on_page: bool,
                                                         on_no_source: bool) -> None:
    nodes = parsed(body(tree)).filters
    assert filters.matches(nodes, PAGE) is on_page
    assert filters.matches(nodes, NO_SOURCE) is on_no_source


def test_the_top_level_list_is_a_conjunction() -> None:
    nodes = parsed(body(["is", "visit:country", ["DE"]], ["contains", "event:page", ["/Blog"]])).filters
    assert filters.matches(nodes, PAGE)
    nodes = parsed(body(["is", "visit:country", ["DE"]], ["contains", "event:page", ["/x"]])).filters
    assert not filters.matches(nodes, PAGE)


JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=12),
                    lambda inner: st.lists(inner, max_size=4)
                    | st.dictionaries(st.text(max_size=8), inner, max_size=3), max_leaves=20)
OPERATOR = st.sampled_from([*filters.OPERATORS, *filters.LOGIC]) | st.text(max_size=8)


@given(st.lists(st.lists(OPERATOR | JSON, max_size=5) | JSON, max_size=4))
def test_any_json_as_filters_is_either_accepted_or_refused_with_a_reason(value: Any) -> None:
    try:
        nodes = parsed({**body(), "filters": value}).filters
    except QueryError as err:
        assert str(err)
        return
    assert filters.matches(nodes, PAGE) in (True, False)


@given(st.text(max_size=30))
def test_any_pattern_is_compiled_by_re2_or_refused(pattern: str) -> None:
    try:
        nodes = parsed(body(["matches", "event:page", [pattern]])).filters
    except QueryError as err:
        assert "RE2" in str(err) or "filter values" in str(err)
        return
    assert filters.matches(nodes, PAGE) in (True, False)
