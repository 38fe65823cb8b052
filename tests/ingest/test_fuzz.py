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

from analytics_bp import create_app, rollups
from analytics_bp.stats.filters import OPERATORS
from analytics_bp.stats.query import DATE_RANGES, DIMENSIONS, METRICS
from tests.support.influx import Influx, flush

EXAMPLES = int(os.environ.get("ANALYTICS_FUZZ_EXAMPLES", "60"))
TOKEN = "fuzz-tk-8Hq2Lm5Xv9Rb3Nc7Wd1Zp4Ys6Tj0Ka"
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
                     ANALYTICS_AGENT_EXTRAS="outbound,downloads,engagement",
                     ANALYTICS_DASHBOARD_TOKEN=TOKEN, ANALYTICS_FLUSH_INTERVAL=0.2,
                     ANALYTICS_HMAC_SECRET="fuzz-secret")
    yield app
    app.extensions["analytics"].close()
    influx.admin.drop_with_rollups(bucket)


@FUZZ
@given(body=query_bodies | json_values)
def test_any_query_body_is_answered_or_refused_never_a_5xx(app: Flask, body: Any) -> None:
    resp = app.test_client().post("/analytics/api/v2/query", data=json.dumps(body),
                                  content_type="application/json",
                                  headers={"Authorization": f"Bearer {TOKEN}"})
    known_site = isinstance(body, dict) and body.get("site_id") == "example.com"
    unseen_site = isinstance(body, dict) and isinstance(body.get("site_id"), str) and not known_site \
        and body["site_id"] != ""
    # Plausible's statuses: 401 for a site the key cannot see, 400 for anything else wrong.
    assert resp.status_code == 401 if unseen_site else resp.status_code in (200, 400), (
        body, resp.get_data(as_text=True))
    event(f"status {resp.status_code}")
    data = resp.get_json()
    if resp.status_code == 200:
        assert set(data) == {"results", "meta", "query"}
    else:
        assert set(data) == {"error"} and isinstance(data["error"], str) and data["error"]


FILTERABLE = [d for d in DIMENSIONS if not d.startswith("time")]
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


# --- The collector: any bytes, any JSON, any header, for /pageview and /event -----------------

any_text = st.text(max_size=300)  # any code point, lone surrogates included
header_text = st.text(st.characters(min_codepoint=32, max_codepoint=255, exclude_characters="\x7f"),
                      max_size=120)
user_agents = st.sampled_from([
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/18.1 Mobile/15E148 Safari/604.1"]) | header_text
beacon_values = st.none() | st.booleans() | st.integers(-10**6, 10**6) | st.floats() | any_text \
    | st.lists(any_text, max_size=2) | st.dictionaries(any_text, any_text, max_size=2)
beacon_objects = st.fixed_dictionaries(
    {"domain": st.sampled_from(["example.com", "blog.example.org", "EXAMPLE.COM.", "evil.com"])
     | beacon_values,
     "page": st.sampled_from(["/", "/a?utm_source=X&utm_campaign=Y", "https://example.com/p#f"])
     | beacon_values},
    optional={key: beacon_values for key in ("referrer", "timezone", "platform", "sess_id", "pages",
                                              "load_ms", "event", "note", "engaged", "extra")})
plausible = st.fixed_dictionaries(
    {"domain": st.sampled_from(["example.com", "blog.example.org"]), "page": any_text},
    optional={"referrer": any_text, "timezone": st.integers(-840, 840), "platform": any_text,
              "sess_id": st.from_regex(r"\A[A-Za-z0-9_-]{1,64}\Z"), "pages": st.integers(1, 10**5),
              "load_ms": st.integers(0, 600_000) | st.floats(0, 600_000),
              # the extras' events too: any note as a link, any number of engaged seconds
              "event": st.sampled_from(["signup", "outbound", "download", "engagement"]),
              "note": any_text | st.from_regex(r"\A([a-zA-Z0-9.-]{1,30})?/.{0,60}\Z"),
              "engaged": st.integers(-5, 90_000) | st.floats(-1, 1e6)})
bodies = (st.binary(max_size=600) | json_values.map(lambda v: json.dumps(v).encode())
          | beacon_objects.map(lambda v: json.dumps(v).encode())
          | beacon_objects.map(lambda v: json.dumps(v, ensure_ascii=False).encode("utf-8",
                                                                                   "surrogatepass")))
headers = st.fixed_dictionaries({}, optional={
    "Content-Type": st.sampled_from(["text/plain", "application/json; charset=utf-16",
                                     "text/plain;charset=UTF-8", "application/x-www-form-urlencoded",
                                     ""]) | header_text,
    "Origin": st.sampled_from(["https://example.com", "null", "https://evil.com"]) | header_text,
    "User-Agent": user_agents, "X-Forwarded-For": header_text, "DNT": header_text,
    "Sec-GPC": header_text, "Content-Encoding": st.sampled_from(["gzip", "br"]) | header_text})


@FUZZ
@given(kind=st.sampled_from(["pageview", "event"]), body=bodies, extra=headers)
def test_any_beacon_is_a_204_or_a_4xx(app: Flask, kind: str, body: bytes, extra: dict[str, str]) -> None:
    resp = app.test_client().post(f"/analytics/{kind}", data=body, headers=extra,
                                  environ_base={"REMOTE_ADDR": "203.0.113.9"})
    assert resp.status_code == 204 or 400 <= resp.status_code < 500, (body, extra, resp.status_code)
    event(f"{kind} {resp.status_code}")
    if resp.status_code >= 400:
        reason = resp.headers["X-Analytics-Reason"]
        assert reason and resp.get_data(as_text=True) == reason + "\n"


@FUZZ
@given(kind=st.sampled_from(["pageview", "event"]), body=plausible, agent=user_agents)
def test_plausible_beacons_with_any_strings_are_stored_or_refused(app: Flask, kind: str,
                                                                  body: dict[str, Any], agent: str) -> None:
    """Well-formed beacons whose strings are anything at all: accepted (and then stored: checked
    below) or refused with a reason, a lone surrogate always refused."""
    raw = json.dumps(body).encode()
    resp = app.test_client().post(f"/analytics/{kind}", data=raw, headers={
        "Content-Type": "text/plain", "User-Agent": agent}, environ_base={"REMOTE_ADDR": "203.0.113.9"})
    event(f"plausible {kind} {resp.status_code}")
    has_surrogate = any(isinstance(v, str) and any(0xD800 <= ord(c) <= 0xDFFF for c in v)
                        for v in body.values())
    if has_surrogate:
        assert resp.status_code == 400
    else:
        assert resp.status_code == 204 or 400 <= resp.status_code < 500


@FUZZ
@given(calls=st.lists(st.tuples(st.sampled_from(["log_event", "count", "seen", "mark"]), any_text,
                                any_text, st.dictionaries(any_text, beacon_values, max_size=3)),
                      max_size=5))
def test_the_usage_api_takes_any_strings(app: Flask,
                                         calls: list[tuple[str, str, str, dict[str, Any]]]) -> None:
    """Any strings as names, categories and identifiers; any field name and value: the call works
    or refuses the field with TypeError/ValueError (the documented contract), never breaks a commit."""
    usage = app.extensions["analytics"]
    for method, first, second, fields in calls:
        if method == "log_event":
            try:
                usage.log_event(first, second, first, **fields)
            except (TypeError, ValueError):
                event("field refused")
        elif method == "count":
            usage.count(first, second, 2)
        elif method == "seen":
            usage.seen(first, second)
        else:
            usage.mark(first, second)


def test_after_the_fuzzing_every_accepted_line_is_in_influxd(app: Flask, influx: Influx) -> None:
    """Runs after the fuzz tests above (file order): the writer is healthy and InfluxDB took every
    line they produced; nothing was set aside."""
    flush(app)
    health = app.extensions["analytics"].sink().health()
    assert health["accepted"] > 0
    assert (health["rejected_points"], health["unencodable_points"], health["write_errors"]) == (0, 0, 0)
    assert health["delivered"] == health["accepted"]
    bucket = app.extensions["analytics"].config.bucket
    stored = influx.query('from(bucket: b) |> range(start: 0) |> filter(fn: (r) => r._field == "count") '
                          '|> group() |> count()', b=bucket)
    assert stored and stored[0]["_value"] > 0


def test_the_fuzzed_values_roll_up_without_failing_a_task_or_losing_a_pageview(
        app: Flask, influx: Influx) -> None:
    """Runs after the fuzzing: every string the fuzzer got stored (as raw fields) becomes a tag
    value of a ranked rollup or `(other)`; no value fails the shipped hourly or daily task, and
    every breakdown still adds up to every raw pageview."""
    cfg = app.extensions["analytics"].config
    rollups.setup(cfg, influx.admin)
    task = {t.name.rsplit("_", 1)[1]: t.flux for t in rollups.tasks(cfg)}
    stamps = [r["_time"] for r in influx.query(
        'from(bucket: b) |> range(start: -1d) |> filter(fn: (r) => r._measurement == "pageview" '
        'and r._field == "count") |> group()', b=cfg.bucket)]
    assert stamps
    for hour in sorted({t.replace(minute=0, second=0, microsecond=0) for t in stamps}):
        for stem in ("hourly", "daily"):
            influx.admin.run_flux_as_of(task[stem], hour + timedelta(hours=1))

    def total(bucket: str, measurement: str) -> int:
        rows = influx.query('from(bucket: b) |> range(start: -2d, stop: 2d) |> filter(fn: (r) => '
                            'r._measurement == m and r._field == "count") |> group() |> sum()',
                            b=bucket, m=measurement)
        return int(rows[0]["_value"]) if rows else 0

    assert total(cfg.bucket, "pageview") == len(stamps)
    for tier, measurements in (("1h", ("pageviews", "pages", "sources", "agents", "countries")),
                               ("1d", ("pages", "sources", "agents", "countries", "timezones"))):
        for measurement in measurements:
            assert total(f"{cfg.bucket}_{tier}", measurement) == len(stamps), (tier, measurement)


header_text = st.text(st.characters(min_codepoint=0x20, max_codepoint=0xFF), max_size=60)
AUTH_REQUESTS = [("GET", "/analytics/dashboard"), ("POST", "/analytics/dashboard/login"),
                 ("POST", "/analytics/dashboard/logout"), ("GET", "/analytics/api/v1/sites"),
                 ("GET", "/analytics/health")]


@FUZZ
@given(authorization=header_text | st.builds("Bearer {}".format, header_text), cookie=header_text,
       origin=st.none() | header_text, fetch_site=st.none() | header_text,
       proto=st.none() | header_text, forwarded=st.none() | header_text, token=header_text,
       request=st.sampled_from(AUTH_REQUESTS))
def test_any_sign_in_headers_are_refused_or_answered_never_a_5xx(
        app: Flask, authorization: str, cookie: str, origin: str | None, fetch_site: str | None,
        proto: str | None, forwarded: str | None, token: str, request: tuple[str, str]) -> None:
    """Whatever a client sends as token, cookie or the headers sign-in reads, it gets an answer
    below 500, and the right token still works afterwards (once its throttle is reset: wrong
    tokens from the test client's one address are throttled, as they should be)."""
    from analytics_bp.sessions import FailureThrottle

    optional = {"Origin": origin, "Sec-Fetch-Site": fetch_site, "X-Forwarded-Proto": proto,
                "X-Forwarded-For": forwarded}
    headers = {"Authorization": authorization, **{k: v for k, v in optional.items() if v is not None}}
    client = app.test_client()
    client.set_cookie("analytics_dashboard", cookie, path="/analytics")
    method, path = request
    resp = client.open(path, method=method, headers=headers, data={"token": token})
    assert resp.status_code < 500, (request, headers, resp.status_code)
    event(f"{path} {resp.status_code}")
    app.extensions["analytics"].auth_throttle = FailureThrottle()
    right = app.test_client().get("/analytics/api/v1/sites", headers={"Authorization": f"Bearer {TOKEN}"})
    assert right.status_code == 200
