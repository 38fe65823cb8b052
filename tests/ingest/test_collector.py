"""The collector against a real InfluxDB: statuses, reasons, stored points, privacy, CORS."""

from __future__ import annotations

import json
import random
import string
from typing import Any

import pytest

from analytics_bp import privacy
from analytics_bp.collector import RequestParts
from analytics_bp.enrich import PLATFORM_FAMILIES
from tests.support.influx import Influx, flush
from tests.support.web import CHROME_UA, CLIENT_IP, post, stored

IPHONE_UA = ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 "
             "(KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1")
BOT_UA = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"


PV = {"domain": "example.com", "page": "/pricing?utm_source=Newsletter&secret=hunter2",
      "referrer": "https://www.google.com/search?q=private+words", "timezone": -60,
      "platform": "Linux x86_64", "sess_id": "s-1", "pages": 2, "load_ms": 420}
EV = {"domain": "example.com", "page": "/", "event": "SocialClick", "note": "twitter",
      "sess_id": "s-1", "timezone": 0, "platform": "iPhone"}

CASES = [
    # (name, kind, payload, extra headers, status, reason)
    ("pageview", "pageview", PV, {}, 204, ""),
    ("event", "event", EV, {}, 204, ""),
    ("origin agrees", "pageview", PV, {"Origin": "https://example.com"}, 204, ""),
    ("wildcard domain", "pageview", {**PV, "domain": "blog.example.org"}, {}, 204, ""),
    ("bad json", "pageview", b"{nope", {}, 400, "body is not a JSON object"),
    ("missing page", "pageview", {"domain": "example.com"}, {}, 400, "missing field: page"),
    ("bad timezone", "pageview", {**PV, "timezone": 9999}, {}, 400, "bad field: timezone"),
    ("foreign domain", "pageview", {**PV, "domain": "evil.com"}, {}, 400, "domain not permitted"),
    ("origin mismatch", "pageview", PV, {"Origin": "https://evil.com"}, 400,
     "origin does not match domain"),
    ("event not permitted", "event", {**EV, "event": "spam"}, {}, 400, "event not permitted"),
    ("form body", "pageview", PV, {"Content-Type": "application/x-www-form-urlencoded"}, 400,
     "content type must be application/json or text/plain"),
    ("oversize", "pageview", {**PV, "pad": "x" * 5000}, {}, 413, "body too large"),
]


@pytest.mark.parametrize(("name", "kind", "payload", "headers", "status", "reason"), CASES,
                         ids=[c[0] for c in CASES])
def test_beacon_table(make_app: Any, influx: Influx, bucket: str, name: str, kind: str,
                      payload: Any, headers: dict[str, str], status: int, reason: str) -> None:
    app = make_app()
    resp = post(app, kind, payload, **headers)
    assert resp.status_code == status
    assert resp.headers.get("X-Analytics-Reason", "") == reason
    if reason:
        assert resp.get_data(as_text=True) == reason + "\n"
    flush(app)
    rows = stored(influx, bucket, kind)
    assert len(rows) == (1 if status == 204 else 0)
    if status != 204:
        rejected = stored(influx, bucket, "rejected")
        assert [r["count"] for r in rejected] == [1]
        assert rejected[0]["reason"] in {"bad_json", "missing_field", "bad_field",
                                         "domain_not_permitted", "origin_mismatch",
                                         "event_not_permitted", "bad_content_type", "too_large"}


def test_pageview_point_has_the_schema(make_app: Any, influx: Influx, bucket: str) -> None:
    app = make_app()
    assert post(app, "pageview", PV).status_code == 204
    flush(app)
    [row] = stored(influx, bucket, "pageview")
    visitor = row.pop("visitor")
    row.pop("_time")
    assert len(visitor) == 16 and all(c in string.hexdigits for c in visitor)
    assert row == {
        "domain": "example.com", "page": "/pricing", "source": "google.com",
        "browser": "Chrome", "os": "Linux", "device": "desktop", "country": "unknown",
        "timezone": "-60", "platform": "linux", "utm_source": "newsletter",
        "count": 1, "sess_id": privacy.session_hash(app.extensions["analytics"].salts.current(),
                                                    "example.com", "s-1"),
        "pages": 2, "load_ms": 420,
    }


def test_event_point_and_note_tag_only_for_note_events(make_app: Any, influx: Influx,
                                                       bucket: str) -> None:
    app = make_app()
    assert post(app, "event", EV, ua=IPHONE_UA).status_code == 204
    assert post(app, "event", {**EV, "event": "signup", "note": "free text"}).status_code == 204
    flush(app)
    rows = sorted(stored(influx, bucket, "event"), key=lambda r: r["event"])
    assert [(r["event"], r.get("note")) for r in rows] == [("signup", "free text"),
                                                           ("socialclick", "twitter")]
    # the note is also tag `label` (bounded) only for ANALYTICS_NOTE_EVENTS
    assert [(r["event"], r.get("label")) for r in rows] == [("signup", None),
                                                            ("socialclick", "twitter")]
    social = rows[1]
    assert (social["device"], social["os"], social["platform"]) == ("mobile", "iOS", "ios")


@pytest.mark.parametrize(
    ("headers", "ua", "domain"),
    [
        ({"DNT": "1"}, CHROME_UA, "example.com"),
        ({"Sec-GPC": "1"}, CHROME_UA, "example.com"),
        ({}, BOT_UA, "example.com"),
        ({}, "", "example.com"),
        ({}, CHROME_UA, "staging.example.com"),
    ],
    ids=["dnt", "gpc", "bot", "no-ua", "skip-domain"],
)
def test_ignored_requests_look_accepted_but_store_nothing(
    make_app: Any, influx: Influx, bucket: str, headers: dict[str, str], ua: str, domain: str
) -> None:
    app = make_app(ANALYTICS_SKIP_DOMAINS="staging.example.com",
                   ANALYTICS_PERMITTED_DOMAINS="example.com,staging.example.com")
    resp = post(app, "pageview", {**PV, "domain": domain}, ua=ua, **headers)
    assert resp.status_code == 204 and "X-Analytics-Reason" not in resp.headers
    flush(app)
    assert {r["_measurement"] for r in influx.raw_rows(bucket)} == {"mark"}  # golive only


def test_dnt_recorded_when_not_respected(make_app: Any, influx: Influx, bucket: str) -> None:
    app = make_app(ANALYTICS_RESPECT_DNT=False)
    assert post(app, "pageview", PV, DNT="1").status_code == 204
    flush(app)
    assert len(stored(influx, bucket, "pageview")) == 1


def test_privacy_scan_finds_no_ip_ua_or_raw_input(make_app: Any, influx: Influx,
                                                  bucket: str) -> None:
    app = make_app(ANALYTICS_GEOIP=True)
    ips = ["203.0.113.77", "81.2.69.142", "2001:db8:85a3::8a2e:370:7334"]
    for ip in ips:
        for ua in (CHROME_UA, IPHONE_UA):
            assert post(app, "pageview", PV, ua=ua, ip=ip).status_code == 204
            assert post(app, "event", EV, ua=ua, ip=ip).status_code == 204
    flush(app)
    rows = influx.raw_rows(bucket)
    assert len(rows) > 20
    values = [str(v) for row in rows for v in row.values()]
    forbidden = [*ips, "203.0.113", "81.2.69", "2001:db8", "Mozilla", "AppleWebKit",
                 "hunter2", "secret", "private words", "search?q", "Linux x86_64"]
    for needle in forbidden:
        assert not [v for v in values if needle in v], needle
    countries = {row["_value"] for row in rows if row["_field"] == "country"}
    assert "GB" in countries  # 81.2.69.0/24 is in the UK; only the truncated address is looked up


def test_identical_beacons_in_the_same_millisecond_never_overwrite(
    make_app: Any, influx: Influx, bucket: str
) -> None:
    app = make_app()
    collector = app.extensions["analytics"].collector
    parts = RequestParts(json.dumps(PV).encode(), "text/plain", None, CLIENT_IP, None,
                         CHROME_UA, None, None)
    outcomes = [collector.handle("pageview", parts) for _ in range(2000)]
    assert {o.status for o in outcomes} == {204}
    flush(app)
    rows = influx.query('from(bucket: b) |> range(start: 0) |> filter(fn: (r) => '
                        'r._measurement == "pageview" and r._field == "count") |> group() |> sum()',
                        b=bucket)
    assert rows[0]["_value"] == 2000


def test_platforms_are_stored_as_their_family_whatever_is_sent(
    make_app: Any, influx: Influx, bucket: str
) -> None:
    """`navigator.platform` is visitor-controlled: only its family (a closed vocabulary) is kept."""
    app = make_app()
    rng = random.Random(7)
    for _ in range(200):
        platform = "".join(rng.choices(string.ascii_letters + " _", k=rng.randrange(1, 30)))
        assert post(app, "pageview", {"domain": "example.com", "page": "/", "platform": platform}
                    ).status_code == 204
    assert post(app, "pageview", {"domain": "example.com", "page": "/", "platform": "Win32"}
                ).status_code == 204
    flush(app)
    stored_platforms = {r["platform"] for r in stored(influx, bucket, "pageview")}
    vocabulary = {family for _, family in PLATFORM_FAMILIES} | {"other", "unknown"}
    assert stored_platforms <= vocabulary and "windows" in stored_platforms


def test_cors_allows_only_permitted_origins(make_app: Any) -> None:
    client = make_app().test_client()
    for origin, allowed in [("https://example.com", True), ("http://example.com", True),
                            ("https://blog.example.org", True), ("https://evil.com", False),
                            ("https://example.com.evil.com", False)]:
        resp = client.options("/analytics/pageview", headers={
            "Origin": origin, "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type"})
        assert resp.status_code == 200
        assert resp.headers.get("Access-Control-Allow-Origin") == (origin if allowed else None)
        assert resp.headers.get("Access-Control-Allow-Origin") != "*"


def test_cors_star_only_when_configured(make_app: Any) -> None:
    client = make_app(ANALYTICS_CORS_ORIGINS="*").test_client()
    resp = client.options("/analytics/event", headers={
        "Origin": "https://any.site", "Access-Control-Request-Method": "POST"})
    assert resp.headers.get("Access-Control-Allow-Origin") == "*"


def test_health_reports_writer_and_influx(make_app: Any) -> None:
    resp = make_app().test_client().get("/analytics/health")
    assert resp.status_code == 200
    body = resp.get_json()
    assert body["status"] == "ok" and body["influxdb"]["reachable"] is True
    assert {"buffered", "spool_segments", "spool_bytes", "delivered"} <= set(body["writer"])


def test_health_is_503_when_influx_is_unreachable(make_app: Any) -> None:
    from analytics_bp.dev.localinflux import free_port

    app = make_app(INFLUXDB_V2_URL=f"http://127.0.0.1:{free_port()}")
    resp = app.test_client().get("/analytics/health")
    assert resp.status_code == 503
    assert resp.get_json()["influxdb"]["reachable"] is False


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE"])
def test_wrong_methods_are_4xx(make_app: Any, method: str) -> None:
    resp = make_app().test_client().open("/analytics/pageview", method=method)
    assert resp.status_code == 405


def test_garbage_never_gives_5xx(make_app: Any) -> None:
    app = make_app()
    rng = random.Random(3)
    for _ in range(300):
        blob = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 400)))
        for kind in ("pageview", "event"):
            assert post(app, kind, blob).status_code in (400, 413)
    for tricky in [b"null", b"{}", b'{"domain": null, "page": null}', b'"str"', b"1e400",
                   b'{"domain": "example.com", "page": "/", "pages": 1e308}']:
        assert post(app, "pageview", tricky).status_code == 400


@pytest.mark.parametrize("secret", ["", "none"])
def test_init_app_fails_on_empty_hmac_secret(make_app: Any, secret: str) -> None:
    from analytics_bp import ConfigError

    with pytest.raises(ConfigError, match="ANALYTICS_HMAC_SECRET"):
        make_app(ANALYTICS_HMAC_SECRET=secret)


def test_init_app_fails_without_permitted_domains(make_app: Any) -> None:
    from analytics_bp import ConfigError

    with pytest.raises(ConfigError, match="ANALYTICS_PERMITTED_DOMAINS"):
        make_app(ANALYTICS_PERMITTED_DOMAINS="")


def test_extra_cors_origins_match_exactly(make_app: Any) -> None:
    client = make_app(ANALYTICS_CORS_ORIGINS="https://partner.com").test_client()
    for origin, allowed in [("https://partner.com", True), ("https://partner.com.evil.net", False),
                            ("https://partner.computer", False), ("https://example.com", True)]:
        resp = client.options("/analytics/pageview", headers={
            "Origin": origin, "Access-Control-Request-Method": "POST"})
        assert resp.headers.get("Access-Control-Allow-Origin") == (origin if allowed else None), origin
