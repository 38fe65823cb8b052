"""The collector's rules for the agent's extras (outbound links, downloads, engaged time), with a
real InfluxDB."""

from __future__ import annotations

import json
from typing import Any

import pytest
from flask import Flask, render_template_string

from analytics_bp import settings
from analytics_bp.snippet import agent_sri, script_tag
from tests.support.influx import Influx, flush
from tests.support.web import post, stored

EXTRAS = "outbound,downloads,engagement"
BASE = {"domain": "example.com", "page": "https://example.com/post?utm_source=x&secret=s1#frag",
        "sess_id": "tab-1", "timezone": 0, "platform": "Linux x86_64"}


# -- the collector's rules (Flask test client, real InfluxDB) -------------------------------------

def test_extras_events_are_refused_unless_switched_on(make_app: Any, influx: Influx,
                                                      bucket: str) -> None:
    app = make_app()
    for body in ({**BASE, "event": "outbound", "note": "github.com/x"},
                 {**BASE, "event": "engagement", "engaged": 3, "pages": 1}):
        resp = post(app, "event", body)
        assert (resp.status_code, resp.headers["X-Analytics-Reason"]) == (400, "event not permitted")
    app = make_app(ANALYTICS_AGENT_EXTRAS="outbound")
    assert post(app, "event", {**BASE, "event": "outbound", "note": "github.com/x"}).status_code == 204
    assert post(app, "event", {**BASE, "event": "download", "note": "/a.pdf"}).status_code == 400
    # with the extra off, a site's own event of the same name is an ordinary event
    app = make_app(ANALYTICS_PERMITTED_EVENTS="engagement,download", ANALYTICS_NOTE_EVENTS="")
    assert post(app, "event", {**BASE, "event": "engagement", "note": "newsletter"}).status_code == 204
    assert post(app, "event", {**BASE, "event": "download", "note": ""}).status_code == 204
    flush(app)
    rows = [r for r in stored(influx, bucket, "event") if r["event"] != "outbound"]
    assert sorted((r["event"], r.get("note") or "", r.get("file")) for r in rows) == [
        ("download", "", None), ("engagement", "newsletter", None)]
    assert stored(influx, bucket, "engagement") == []


def test_link_and_engagement_points_keep_host_and_path_only(make_app: Any, influx: Influx,
                                                            bucket: str) -> None:
    app = make_app(ANALYTICS_AGENT_EXTRAS=EXTRAS)
    sent = [
        {"event": "outbound", "note": "GitHub.com/org/repo?token=t0p#readme"},
        {"event": "download", "note": "example.com/files/Report%20Q1.pdf?sig=abc"},
        {"event": "download", "note": "/files/b.zip#x"},
        {"event": "download", "note": "cdn.example.net/x.zip?expires=1"},
        {"event": "engagement", "engaged": 42, "pages": 3},
        {"event": "engagement", "engaged": 5000, "pages": 4},  # capped at an hour
    ]
    for body in sent:
        resp = post(app, "event", {**BASE, **body})
        assert resp.status_code == 204, resp.get_data(as_text=True)
    flush(app)
    links = sorted(((r["event"], r.get("destination"), r.get("file"), r["note"], r["page"])
                    for r in stored(influx, bucket, "event")), key=str)
    assert links == sorted([
        ("outbound", "github.com", None, "github.com/org/repo", "/post"),
        ("download", None, "/files/Report Q1.pdf", "/files/Report Q1.pdf", "/post"),
        ("download", None, "/files/b.zip", "/files/b.zip", "/post"),
        ("download", None, "cdn.example.net/x.zip", "cdn.example.net/x.zip", "/post"),
    ], key=str)
    engaged = sorted((r["page"], r["seconds"], r["pageview"], len(r["sess_id"]), r["browser"])
                     for r in stored(influx, bucket, "engagement"))
    assert engaged == [("/post", 42, 3, 16, "Chrome"), ("/post", 3600, 4, 16, "Chrome")]
    assert all("visitor" not in r and "count" not in r for r in stored(influx, bucket, "engagement"))
    everything = json.dumps(influx.raw_rows(bucket), default=str)
    for secret in ("?", "#", "token", "t0p", "sig=", "expires", "secret", "s1", "utm_source=x", "tab-1"):
        assert secret not in everything, secret


BAD = [
    ({"event": "outbound", "note": ""}, "bad field: note"),
    ({"event": "outbound", "note": "/only/a/path"}, "bad field: note"),
    ({"event": "outbound", "note": "example.com/own/site"}, "bad field: note"),
    ({"event": "outbound", "note": "not a host/x"}, "bad field: note"),
    ({"event": "download", "note": ""}, "bad field: note"),
    ({"event": "engagement", "pages": 1}, "missing field: engaged"),
    ({"event": "engagement", "engaged": 3}, "missing field: pages"),
    ({"event": "engagement", "engaged": -1, "pages": 1}, "bad field: engaged"),
    ({"event": "engagement", "engaged": 86_401, "pages": 1}, "bad field: engaged"),
    ({"event": "engagement", "engaged": "5", "pages": 1}, "bad field: engaged"),
    ({"event": "engagement", "engaged": True, "pages": 1}, "bad field: engaged"),
    ({"event": "engagement", "engaged": 5, "pages": 0}, "bad field: pages"),
    ({"event": "engagement", "engaged": 5, "pages": 1, "sess_id": ""}, "missing field: sess_id"),
]


@pytest.mark.parametrize(("body", "reason"), BAD, ids=[r + " " + json.dumps(b) for b, r in BAD])
def test_bad_extras_beacons_are_400_and_store_nothing(make_app: Any, influx: Influx, bucket: str,
                                                      body: dict[str, Any], reason: str) -> None:
    app = make_app(ANALYTICS_AGENT_EXTRAS=EXTRAS)
    resp = post(app, "event", {**BASE, **body})
    assert (resp.status_code, resp.headers["X-Analytics-Reason"]) == (400, reason)
    flush(app)
    assert stored(influx, bucket, "event") == [] and stored(influx, bucket, "engagement") == []


def test_script_tag_switches_to_the_extras_build(make_app: Any) -> None:
    assert 'src="/analytics/agent.js"' in script_tag("/analytics")
    tag = script_tag("/analytics", outbound=True, downloads="pdf,zip", engagement=True)
    assert tag == ('<script defer src="/analytics/agent.extras.js" integrity="'
                   + agent_sri("agent.extras.min.js") + '" crossorigin="anonymous" data-outbound '
                   'data-downloads="pdf,zip" data-engagement></script>')
    app: Flask = make_app(ANALYTICS_AGENT_EXTRAS=EXTRAS)
    with app.test_request_context("/"):
        html = render_template_string("{{ analytics_script(downloads=True) }}")
    assert 'src="/analytics/agent.extras.js"' in html and " data-downloads>" in html
    with pytest.raises(TypeError):
        script_tag("/analytics", clicks=True)


def test_privacy_notice_lists_each_switched_on_extra(make_app: Any) -> None:
    off = make_app().test_client().get("/analytics/privacy", headers={"Accept": "application/json"})
    assert off.get_json()["collected"]["extras"] == []
    assert "Links and time on page" not in make_app().test_client().get("/analytics/privacy").get_data(
        as_text=True)
    app = make_app(ANALYTICS_AGENT_EXTRAS="outbound,engagement")
    notice = app.test_client().get("/analytics/privacy", headers={"Accept": "application/json"}).get_json()
    assert len(notice["collected"]["extras"]) == 2
    assert notice["collected"]["extras"][0].startswith("Clicks on links to other sites: the "
                                                       "destination's host and path")
    assert notice["collected"]["extras"][1].startswith("Time on page: whole seconds")
    assert notice["settings"]["ANALYTICS_AGENT_EXTRAS"] == (
        "Also recorded: outbound link clicks, time on page.")
    page = app.test_client().get("/analytics/privacy").get_data(as_text=True)
    assert "<h3>Links and time on page</h3>" in page and "links to files" not in page
    every = make_app(ANALYTICS_AGENT_EXTRAS=EXTRAS).test_client().get(
        "/analytics/privacy", headers={"Accept": "application/json"}).get_json()["collected"]["extras"]
    assert [line.split(":")[0] for line in every] == [
        "Clicks on links to other sites", "Clicks on links to files (such as PDF or ZIP)", "Time on page"]


def test_bad_extras_setting_is_one_config_error(make_app: Any) -> None:
    with pytest.raises(settings.ConfigError, match=r"ANALYTICS_AGENT_EXTRAS='outbound,clicks': "
                                                   "expected a comma list of outbound, downloads, "
                                                   "engagement; unknown: clicks"):
        make_app(ANALYTICS_AGENT_EXTRAS="outbound,clicks")
