"""Crafted input against the collector and the usage API: lone surrogates anywhere, odd but valid
values, and the bounds every registry and cache keeps whatever clients send."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.support.influx import Influx, flush
from tests.support.web import post, stored

LONE = "\ud800"
PV = {"domain": "example.com", "page": "/ok", "referrer": "https://t.co/", "timezone": 60,
      "platform": "Linux x86_64", "sess_id": "s-1", "pages": 1, "load_ms": 10}
EV = {"domain": "example.com", "page": "/ok", "event": "socialclick", "note": "x", "sess_id": "s-1"}


def raw_json(payload: dict[str, Any]) -> bytes:
    """json.dumps escapes a lone surrogate as \\ud800: exactly what an attacker sends."""
    return json.dumps(payload).encode()


FIELD_CASES = [(kind, field) for kind, base in (("pageview", PV), ("event", EV)) for field in base
               if isinstance(base[field], str)]


@pytest.mark.parametrize(("kind", "field"), FIELD_CASES, ids=[f"{k}-{f}" for k, f in FIELD_CASES])
def test_a_lone_surrogate_in_any_field_is_a_400_naming_it(make_app: Any, kind: str,
                                                          field: str) -> None:
    base = PV if kind == "pageview" else EV
    resp = post(make_app(), kind, raw_json({**base, field: f"a{LONE}b"}))
    assert resp.status_code == 400
    assert resp.headers["X-Analytics-Reason"] == f"bad field: {field}"


def test_a_lone_surrogate_in_an_unknown_key_or_nested_value_is_a_400(make_app: Any) -> None:
    app = make_app()
    for extra in ({f"k{LONE}": 1}, {"extra": {"deep": [f"x{LONE}"]}}):
        resp = post(app, "pageview", raw_json({**PV, **extra}))
        assert resp.status_code == 400
        assert resp.headers["X-Analytics-Reason"] == "bad field: string is not valid unicode"


def test_after_every_crafted_beacon_the_worker_still_stores(make_app: Any, influx: Influx,
                                                            bucket: str) -> None:
    """The attack of issue 17: crafted beacons, then a good one, all in one worker's buffer."""
    app = make_app(ANALYTICS_NOTE_EVENTS="socialclick")
    for kind, field in FIELD_CASES:
        base = PV if kind == "pageview" else EV
        assert post(app, kind, raw_json({**base, field: LONE})).status_code == 400
    assert post(app, "pageview", PV).status_code == 204
    assert post(app, "event", EV).status_code == 204
    flush(app)
    assert [r["page"] for r in stored(influx, bucket, "pageview")] == ["/ok"]
    assert [r["label"] for r in stored(influx, bucket, "event")] == ["x"]
    rejected = stored(influx, bucket, "rejected")
    assert sum(r["count"] for r in rejected) == len(FIELD_CASES)
    health = app.test_client().get("/analytics/health").get_json()["writer"]
    assert health["unencodable_points"] == 0 and health["rejected_points"] == 0


def test_usage_api_strings_that_utf8_cannot_encode_cost_only_their_character(
        make_app: Any, influx: Influx, bucket: str) -> None:
    app = make_app()
    analytics = app.extensions["analytics"]
    with app.app_context():
        analytics.log_event("mod", f"fn{LONE}", f"user{LONE}", note=f"n{LONE}")
        analytics.count(f"ev{LONE}", "cat")
        analytics.mark(f"release{LONE}")
        assert analytics.seen(f"id{LONE}", f"c{LONE}") is True
        assert analytics.get_pseudonymized_user_id(LONE) != analytics.get_pseudonymized_user_id("\udc00")
    flush(app)
    usage = stored(influx, bucket, "usage")
    assert [(r["action"], r["note"]) for r in usage] == [("mod.fn\ufffd", "n\ufffd")]
    assert [r["event"] for r in stored(influx, bucket, "usage_count")] == ["ev\ufffd"]
    assert [r["name"] for r in stored(influx, bucket, "mark") if r["name"] != "golive"] == ["release\ufffd"]
    assert [r["category"] for r in stored(influx, bucket, "usage_seen")] == ["c\ufffd"]


def test_the_user_agent_cache_holds_little_whatever_clients_send() -> None:
    import tracemalloc

    from analytics_bp import agents

    judge = agents.AgentJudge(0)  # every judgement final, so every one is a candidate for the cache
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    for i in range(6000):  # 6,000 distinct attacker-chosen User-Agents of 8 KB each
        judge.describe(f"Mozilla/5.0 {i:05d} " + "x" * 8192)
    grown = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    assert judge.cached() == agents.AGENT_CACHE
    assert grown < 8 * 2**20, f"{grown / 2**20:.1f} MiB"  # 6,000 x 8 KB would be 47 MiB


def test_seen_and_count_registries_are_bounded(make_app: Any, influx: Influx, bucket: str,
                                                tmp_path: Path) -> None:
    app = make_app(ANALYTICS_MAX_SEEN=5, ANALYTICS_MAX_TAG_VALUES=3)
    usage = app.extensions["analytics"]
    assert [usage.seen(f"user-{i}", "logins") for i in range(8)] == [True] * 5 + [False] * 3
    for i in range(50):  # 50 caller-chosen categories, each with its own event
        usage.count(f"event-{i}", f"category-{i}")
    flush(app)
    rows = stored(influx, bucket, "usage_seen")
    assert max(r["distinct"] for r in rows) == 5
    counted = {(r["category"], r["event"]) for r in stored(influx, bucket, "usage_count")}
    assert {c for c, _ in counted} == {"category-0", "category-1", "category-2", "(other)"}
    registries = [p for p in (tmp_path / "state" / "tags").rglob("*") if p.is_file()]
    # one for categories, one per admitted category's events (3 and `(other)`), one for seen's
    # categories, one for marks' (the `golive` mark): 50 categories opened no more
    assert len(registries) == 1 + 4 + 1 + 1


GOOD = json.dumps({"domain": "example.com", "page": "/odd"}).encode()
ODD_INPUTS = [
    # (name, body, headers, status, reason)
    ("utf-8 BOM", b"\xef\xbb\xbf" + GOOD, {}, 204, ""),
    ("charset utf-8", GOOD, {"Content-Type": "application/json; charset=UTF-8"}, 204, ""),
    ("charset quoted", GOOD, {"Content-Type": 'text/plain; charset="utf-8"'}, 204, ""),
    ("no content type", GOOD, {"Content-Type": ""}, 204, ""),
    ("charset latin-1", GOOD, {"Content-Type": "text/plain; charset=iso-8859-1"}, 400,
     "content type must be application/json or text/plain"),
    ("utf-16 body", json.dumps({"domain": "example.com", "page": "/"}).encode("utf-16"), {}, 400,
     "body is not a JSON object"),
    ("gzip encoding", GOOD, {"Content-Encoding": "gzip"}, 400, "content encoding not supported"),
    ("identity encoding", GOOD, {"Content-Encoding": "identity"}, 204, ""),
    ("boolean timezone", json.dumps({"domain": "example.com", "page": "/", "timezone": True}).encode(),
     {}, 400, "bad field: timezone"),
    ("float load time rounds", json.dumps({"domain": "example.com", "page": "/", "load_ms": 12.5}).encode(),
     {}, 204, ""),
    ("huge float", json.dumps({"domain": "example.com", "page": "/", "load_ms": 1e308}).encode(), {}, 400,
     "bad field: load_ms"),
    ("4,000-digit integer", b'{"domain": "example.com", "page": "/", "pages": 1' + b"0" * 4000 + b"}", {},
     400, "bad field: pages"),
    ("empty domain", json.dumps({"domain": "", "page": "/"}).encode(), {}, 400, "missing field: domain"),
    ("port on the domain", json.dumps({"domain": "example.com:8080", "page": "/"}).encode(), {}, 400,
     "bad field: domain"),
]


@pytest.mark.parametrize(("name", "body", "headers", "status", "reason"), ODD_INPUTS,
                         ids=[o[0] for o in ODD_INPUTS])
def test_odd_but_valid_inputs_follow_the_documented_policy(make_app: Any, name: str, body: bytes,
                                                           headers: dict[str, str], status: int,
                                                           reason: str) -> None:
    resp = post(make_app(), "pageview", body, **headers)
    assert resp.status_code == status
    assert resp.headers.get("X-Analytics-Reason", "") == reason
