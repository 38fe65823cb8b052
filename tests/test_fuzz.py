"""Property-based fuzzing of what the internet (or a token holder) can send, against real services.

Bounded example counts keep `make test` fast; set ANALYTICS_FUZZ_EXAMPLES for a longer run.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from analytics_bp import create_app
from analytics_bp.stats_query import DATE_RANGES, DIMENSIONS, METRICS, OPERATORS

from .conftest import Influx

EXAMPLES = int(os.environ.get("ANALYTICS_FUZZ_EXAMPLES", "60"))
TOKEN = "f" * 40
FUZZ = settings(max_examples=EXAMPLES, deadline=None,
                suppress_health_check=[HealthCheck.too_slow])

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats(allow_nan=False)
    | st.text(max_size=40),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=12)
names = st.sampled_from(METRICS) | st.text(max_size=12)
dims = st.sampled_from(DIMENSIONS) | st.text(max_size=12)
filters = st.lists(st.tuples(st.sampled_from(OPERATORS) | st.text(max_size=6), dims,
                             st.lists(st.text(max_size=30), max_size=3)).map(list), max_size=3)
date_ranges = st.sampled_from(DATE_RANGES) | st.lists(
    st.dates().map(lambda d: d.isoformat()) | st.text(max_size=12), min_size=0, max_size=3)
query_bodies = st.fixed_dictionaries(
    {"site_id": st.sampled_from(["example.com", "evil.com"]) | json_values,
     "metrics": st.lists(names, max_size=4) | json_values},
    optional={"date_range": date_ranges | json_values, "dimensions": st.lists(dims, max_size=3) | json_values,
              "filters": filters | json_values,
              "order_by": st.lists(st.tuples(names | dims, st.sampled_from(["asc", "desc", "x"])).map(list),
                                   max_size=2) | json_values,
              "pagination": st.fixed_dictionaries({}, optional={"limit": json_values, "offset": json_values})
              | json_values,
              "include": json_values})


@pytest.fixture(scope="module")
def app(influx: Influx, tmp_path_factory: Any) -> Iterator[Flask]:
    """One collector for every example (a sink per example would only cost time)."""
    bucket = f"t_fuzz_{uuid.uuid4().hex[:8]}"
    influx.admin.ensure_bucket(bucket, 0)
    app = create_app(**influx.creds.as_env(), ANALYTICS_BUCKET=bucket,
                     ANALYTICS_STATE_DIR=str(tmp_path_factory.mktemp("fuzz")),
                     ANALYTICS_PERMITTED_DOMAINS="example.com", ANALYTICS_PERMITTED_EVENTS="signup",
                     ANALYTICS_DASHBOARD_TOKEN=TOKEN, ANALYTICS_FLUSH_INTERVAL=0.2,
                     ANALYTICS_HMAC_SECRET="fuzz-secret")
    yield app
    app.extensions["analytics"].close()
    influx.admin.delete_bucket(bucket)


@FUZZ
@given(body=query_bodies | json_values)
def test_any_query_body_is_answered_or_refused_never_a_5xx(app: Flask, body: Any) -> None:
    resp = app.test_client().post("/analytics/api/v2/query", data=json.dumps(body),
                                  content_type="application/json",
                                  headers={"Authorization": f"Bearer {TOKEN}"})
    assert resp.status_code in (200, 400), (body, resp.get_data(as_text=True))
    event(f"status {resp.status_code}")
    data = resp.get_json()
    if resp.status_code == 200:
        assert set(data) == {"results", "meta", "query"}
    else:
        assert set(data) == {"error"} and data["error"]["code"] == "bad_query" and data["error"]["message"]


FILTERABLE = [d for d in DIMENSIONS if not d.startswith("time:")]
valid_queries = st.fixed_dictionaries(
    {"site_id": st.just("example.com"),
     "metrics": st.lists(st.sampled_from(METRICS), min_size=1, max_size=4, unique=True),
     "date_range": st.sampled_from(DATE_RANGES) | st.tuples(st.dates(), st.integers(0, 40)).map(
         lambda t: [t[0].isoformat(), (t[0] + timedelta(days=t[1])).isoformat()])},
    optional={"dimensions": st.lists(st.sampled_from(DIMENSIONS), max_size=2, unique=True),
              "filters": st.lists(st.tuples(st.sampled_from(OPERATORS), st.sampled_from(FILTERABLE),
                                            st.lists(st.text(min_size=1, max_size=30), min_size=1, max_size=3)
                                            ).map(list), max_size=3)})


@FUZZ
@given(body=valid_queries)
def test_any_query_in_the_vocabulary_runs_or_says_why(app: Flask, body: dict[str, Any]) -> None:
    """Every combination of metrics, dimensions and filters (any values: quotes, `$`, newlines,
    Flux syntax) is answered, or refused as a combination; InfluxDB never sees a broken query."""
    resp = app.test_client().post("/analytics/api/v2/query", data=json.dumps(body),
                                  content_type="application/json",
                                  headers={"Authorization": f"Bearer {TOKEN}"})
    assert resp.status_code in (200, 400), (body, resp.get_data(as_text=True))
    event(f"status {resp.status_code}")
    if resp.status_code == 200:
        data = resp.get_json()
        for row in data["results"]:
            assert len(row["metrics"]) == len(body["metrics"])
            assert len(row["dimensions"]) == len(body.get("dimensions", []))
